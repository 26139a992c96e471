// Package model builds arch.Specs on libtorch through gotch and moves
// their weights in and out: our checkpoints, safetensors files and PyTorch
// state dicts (torch.save .pt files). Parameter names follow torchvision's
// ResNets (naming "torchvision") or the official RobArch ConfigurableModel
// (naming "robarch"), so published weights load and exported weights load
// into the Python models with load_state_dict(strict=True).
//
// Torch work must run on one goroutine locked to its OS thread (see
// internal/torchrt); a Net is not safe for concurrent use.
package model

import (
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
)

// Var is one named tensor of a Net's state: a trainable parameter or a
// buffer (norm running statistics, the input mean and std).
type Var struct {
	Name   string
	Tensor *ts.Tensor
	Buffer bool
	// Export is false for buffers that are not part of the naming
	// scheme's state dict (torchvision models have no mean/std).
	Export bool
}

// Net is a built spec: a gotch ts.ModuleT over images in [0,1] pixel
// space (it normalises by the spec's mean and std itself).
type Net struct {
	spec   arch.Spec
	layout arch.Layout
	names  namer
	format MemoryFormat // "" until SetMemoryFormat: contiguous
	vars   []Var
	byName map[string]int
	// batchNorms are the names of batch-norm layers, whose PyTorch state
	// dicts also hold num_batches_tracked.
	batchNorms []string

	mean, std *ts.Tensor // [1, C, 1, 1], nil without normalisation
	stemConv  conv
	stemNorm  *norm // nil in pre-activation order
	maxPool   bool
	stages    []*stage
	finalNorm *norm
	finalAct  act
	fcW, fcB  *ts.Tensor
}

var _ ts.ModuleT = (*Net)(nil)

// Build creates spec's variables in vs (on vs's device, float32) with
// torchvision's initialisation and returns the network. Variables are
// drawn from libtorch's global generator: seed it (torchrt.Seed) first for
// reproducible weights. vs should be empty or hold only other modules'
// variables under different names.
func Build(vs *nn.VarStore, spec arch.Spec) (*Net, error) {
	l, err := arch.Resolve(spec)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	s := l.Spec
	nm, err := newNamer(s.Naming, s.Block.Order)
	if err != nil {
		return nil, fmt.Errorf("build: %w", err)
	}
	b := &builder{vs: vs, net: &Net{spec: s, layout: l, names: nm, byName: map[string]int{}}, names: nm}
	if err := b.build(); err != nil {
		b.net.free()
		return nil, fmt.Errorf("build %s: %w", s.Name, err)
	}
	return b.net, nil
}

// Spec returns the spec the net was built from (defaults filled in).
func (n *Net) Spec() arch.Spec { return n.spec.Clone() }

// Layout returns the resolved layout of the net.
func (n *Net) Layout() arch.Layout { return n.layout }

// Vars returns the net's parameters and buffers in construction order.
func (n *Net) Vars() []Var { return slices.Clone(n.vars) }

// NumParams counts the elements of the trainable parameters as built,
// which equals arch.Params(spec).
func (n *Net) NumParams() int64 {
	var total int64
	for _, v := range n.vars {
		if !v.Buffer {
			total += int64(v.Tensor.Numel())
		}
	}
	return total
}

// ForwardT maps images [N, C, H, W] in [0,1] to logits [N, classes]; train
// selects batch-norm's batch statistics (and updates the running ones).
// It panics on a libtorch error; Forward returns the error instead.
func (n *Net) ForwardT(x *ts.Tensor, train bool) *ts.Tensor {
	var h *ts.Tensor
	if n.mean != nil {
		h = must(x.Sub(n.mean, false))
		h = must(h.Div(n.std, true))
	} else {
		h = clone(x)
	}
	h = n.stemConv.apply(h)
	if n.stemNorm != nil {
		h = freshActivation("relu", n.stemNorm.apply(h, train))
	}
	if n.maxPool {
		p := must(h.MaxPool2d([]int64{3, 3}, []int64{2, 2}, []int64{1, 1}, []int64{1, 1}, false, false))
		drop(h)
		h = p
	}
	for _, st := range n.stages {
		next := st.forward(h, train)
		drop(h)
		h = next
	}
	if n.finalNorm != nil {
		h = n.finalNorm.apply(h, train)
		h = n.finalAct.apply(layoutSafe(n.finalAct.name, h, n.format == ChannelsLast))
	}
	pooled := must(h.MeanDim([]int64{2, 3}, false, h.DType(), true))
	out := must(ts.Linear(pooled, n.fcW, n.fcB))
	drop(pooled)
	return out
}

// Forward is ForwardT returning libtorch errors (a wrong input shape, for
// example) instead of panicking.
func (n *Net) Forward(x *ts.Tensor, train bool) (out *ts.Tensor, err error) {
	defer func() {
		if r := recover(); r != nil {
			var fe forwardError
			if e, ok := r.(error); ok && errors.As(e, &fe) {
				err = fmt.Errorf("forward %s: %w", n.spec.Name, fe.err)
				return
			}
			panic(r)
		}
	}()
	return n.ForwardT(x, train), nil
}

// free drops the net's own tensor handles that are not VarStore variables.
func (n *Net) free() {
	drop(n.mean, n.std)
}

// builder creates the variables of a net.
type builder struct {
	vs    *nn.VarStore
	net   *Net
	names namer
}

func (b *builder) device() gotch.Device { return b.vs.Device() }

// add registers t under name (dots separate path segments) in the
// VarStore, taking ownership of t.
func (b *builder) add(name string, t *ts.Tensor, buffer, export bool) (*ts.Tensor, error) {
	if _, dup := b.net.byName[name]; dup {
		drop(t)
		return nil, fmt.Errorf("duplicate variable name %q", name)
	}
	// Build the path from the root for every variable: gotch's Path.Sub
	// shares its slice between siblings.
	parts := strings.Split(name, ".")
	p := b.vs.Root()
	for _, part := range parts[:len(parts)-1] {
		p = p.Sub(part)
	}
	var opts []nn.AddOpt
	if buffer {
		opts = append(opts, nn.WithVarType("buffer"))
	}
	v, err := p.Add(parts[len(parts)-1], t, !buffer, opts...)
	drop(t)
	if err != nil {
		return nil, fmt.Errorf("add %s: %w", name, err)
	}
	b.net.byName[name] = len(b.net.vars)
	b.net.vars = append(b.net.vars, Var{Name: name, Tensor: v, Buffer: buffer, Export: export})
	return v, nil
}

func (b *builder) randn(dims []int64, std float64) (*ts.Tensor, error) {
	t, err := ts.Randn(dims, gotch.Float, b.device())
	if err != nil {
		return nil, err
	}
	return t.MulScalar(ts.FloatScalar(std), true)
}

// uniform draws from U(-bound, bound).
func (b *builder) uniform(dims []int64, bound float64) (*ts.Tensor, error) {
	t, err := ts.Rand(dims, gotch.Float, b.device())
	if err != nil {
		return nil, err
	}
	if t, err = t.MulScalar(ts.FloatScalar(2*bound), true); err != nil {
		return nil, err
	}
	return t.AddScalar(ts.FloatScalar(-bound), true)
}

func (b *builder) fill(dims []int64, v float64) (*ts.Tensor, error) {
	if v == 0 {
		return ts.Zeros(dims, gotch.Float, b.device())
	}
	t, err := ts.Ones(dims, gotch.Float, b.device())
	if err != nil || v == 1 {
		return t, err
	}
	return t.MulScalar(ts.FloatScalar(v), true)
}

// newConv creates a bias-free conv with torchvision's init:
// kaiming_normal_(mode="fan_out", nonlinearity="relu"), that is
// N(0, 2/(out×k×k)). With bias (SE only), the bias follows PyTorch's
// default U(±1/sqrt(fan_in)).
func (b *builder) newConv(name string, in, out, kernel, stride, pad, dilation, groups int, bias bool) (conv, error) {
	c := conv{stride: int64(stride), pad: int64(pad), dilation: int64(dilation), groups: int64(groups)}
	dims := []int64{int64(out), int64(in / groups), int64(kernel), int64(kernel)}
	w, err := b.randn(dims, math.Sqrt(2/float64(out*kernel*kernel)))
	if err != nil {
		return c, err
	}
	if c.w, err = b.add(name+".weight", w, false, true); err != nil {
		return c, err
	}
	if bias {
		bs, err := b.uniform([]int64{int64(out)}, 1/math.Sqrt(float64(in/groups*kernel*kernel)))
		if err != nil {
			return c, err
		}
		if c.b, err = b.add(name+".bias", bs, false, true); err != nil {
			return c, err
		}
	}
	return c, nil
}

// newNorm creates a norm layer of kind over channels: weight 1, bias 0
// (gotch's own batch norm would draw the weight from U(0,1)).
func (b *builder) newNorm(name, kind string, channels int) (norm, error) {
	n := norm{kind: kind}
	if kind == arch.Identity {
		return n, nil
	}
	dims := []int64{int64(channels)}
	var err error
	add := func(suffix string, v float64, buffer bool) *ts.Tensor {
		if err != nil {
			return nil
		}
		var t *ts.Tensor
		if t, err = b.fill(dims, v); err != nil {
			return nil
		}
		var out *ts.Tensor
		out, err = b.add(name+"."+suffix, t, buffer, true)
		return out
	}
	n.w = add("weight", 1, false)
	n.b = add("bias", 0, false)
	switch kind {
	case arch.BatchNorm:
		n.rm = add("running_mean", 0, true)
		n.rv = add("running_var", 1, true)
		b.net.batchNorms = append(b.net.batchNorms, name)
	case arch.GroupNorm:
		n.groups = int64(gcd(b.net.spec.Block.NormGroups, channels))
	}
	return n, err
}

// newAct creates an activation instance of kind name, with its
// parameters under prefix for the parametric ones, initialised as
// PyTorch's modules: nn.PReLU's weight 0.25, RobArch's PSiLU's alpha 1,
// PSSiLU's alpha 1 and beta 1e-4.
func (b *builder) newAct(prefix, name string) (act, error) {
	a := act{name: name}
	param := func(suffix string, v float64) (*ts.Tensor, error) {
		t, err := b.fill([]int64{1}, v)
		if err != nil {
			return nil, err
		}
		return b.add(prefix+"."+suffix, t, false, true)
	}
	var err error
	switch name {
	case arch.PReLU:
		a.w, err = param("weight", 0.25)
	case arch.PSiLU:
		a.alpha, err = param("alpha", 1)
	case arch.PSSiLU:
		if a.alpha, err = param("alpha", 1); err == nil {
			a.beta, err = param("beta", 1e-4)
		}
	}
	return a, err
}

func gcd(a, b int) int {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

func (b *builder) build() error {
	l, s, nm, net := b.net.layout, b.net.spec, b.names, b.net
	pre := s.Block.Order == arch.PreAct

	if len(s.Input.Mean) > 0 {
		if err := b.normalization(s.Input); err != nil {
			return err
		}
	}

	st := l.Stem
	var err error
	if net.stemConv, err = b.newConv(nm.stemConv(), st.In, st.Out, st.Kernel, st.Stride, st.Padding, 1, 1, false); err != nil {
		return err
	}
	if st.Norm {
		n, err := b.newNorm(nm.stemNorm(), arch.BatchNorm, st.Out)
		if err != nil {
			return err
		}
		net.stemNorm = &n
	}
	net.maxPool = st.MaxPool

	for si, sl := range l.Stages {
		sg := &stage{dense: s.Block.DenseRatio}
		for bi, bl := range sl.Blocks {
			blk, err := b.block(nm.block(si, bi), bl, pre)
			if err != nil {
				return err
			}
			sg.blocks = append(sg.blocks, blk)
		}
		net.stages = append(net.stages, sg)
	}

	if l.FinalNorm {
		n, err := b.newNorm(nm.finalNorm(), s.Block.Norms[0], l.FinalWidth)
		if err != nil {
			return err
		}
		net.finalNorm = &n
		if net.finalAct, err = b.newAct(nm.finalAct(), s.Block.Activations[0]); err != nil {
			return err
		}
	}

	// nn.Linear's default init: U(±1/sqrt(fan_in)) for weight and bias.
	bound := 1 / math.Sqrt(float64(l.FinalWidth))
	w, err := b.uniform([]int64{int64(s.Classes), int64(l.FinalWidth)}, bound)
	if err != nil {
		return err
	}
	if net.fcW, err = b.add(nm.fc()+".weight", w, false, true); err != nil {
		return err
	}
	bs, err := b.uniform([]int64{int64(s.Classes)}, bound)
	if err != nil {
		return err
	}
	net.fcB, err = b.add(nm.fc()+".bias", bs, false, true)
	return err
}

// normalization registers the input mean and std as buffers of shape [C]
// (as RobArch's NormalizeByChannelMeanStd does) and keeps [1,C,1,1] views
// for the forward pass.
func (b *builder) normalization(in arch.Input) error {
	export := b.names.exportsNormalization()
	prefix := b.names.normalization()
	c := int64(len(in.Mean))
	for _, x := range []struct {
		name string
		vals []float64
		dst  **ts.Tensor
	}{{"mean", in.Mean, &b.net.mean}, {"std", in.Std, &b.net.std}} {
		vals := make([]float32, len(x.vals))
		for i, v := range x.vals {
			vals[i] = float32(v)
		}
		t, err := ts.OfSlice(vals)
		if err != nil {
			return err
		}
		if t, err = t.To(b.device(), true); err != nil {
			return err
		}
		v, err := b.add(prefix+"."+x.name, t, true, export)
		if err != nil {
			return err
		}
		if *x.dst, err = v.View([]int64{1, c, 1, 1}, false); err != nil {
			return err
		}
	}
	return nil
}

// block creates the variables of one residual block and returns it.
func (b *builder) block(prefix string, bl arch.BlockLayout, pre bool) (*block, error) {
	s := b.net.spec
	blk := &block{kind: bl.Kind, pre: pre, acts: make([]act, len(s.Block.Activations))}
	for p, name := range s.Block.Activations {
		blk.acts[p].name = name
	}
	blk.seFirst = bl.SE > 0 && bl.Kind == arch.Basic && s.Block.SEPosition == arch.SEFirst
	// Create variables in the PyTorch module order (per position: conv
	// then norm, or norm then conv in pre-activation), SE after the k×k
	// position, shortcut last.
	convs, normWidths := blockConvs(bl, pre)
	seAfter := 1 // a bottleneck's k×k conv, a basic block's last conv
	if blk.seFirst {
		seAfter = 0
	}
	for p, cs := range convs {
		if err := b.blockPosition(blk, prefix, bl, p, cs, normWidths[p]); err != nil {
			return nil, err
		}
		if bl.SE > 0 && p == seAfter {
			if err := b.blockSE(blk, prefix, bl); err != nil {
				return nil, err
			}
		}
	}
	if bl.Projection {
		if err := b.blockProjection(blk, prefix, bl); err != nil {
			return nil, err
		}
	}
	if !pre {
		if err := b.blockAct(blk, prefix, 2); err != nil {
			return nil, err
		}
	}
	return blk, nil
}

// convSpec is one convolution of a block.
type convSpec struct{ in, out, kernel, stride, pad, dilation, groups int }

// blockConvs lists a block's convolutions by position and the width of
// each position's norm: after its conv, or before it in pre-activation
// order.
func blockConvs(bl arch.BlockLayout, pre bool) ([]convSpec, []int) {
	if bl.Kind == arch.Bottleneck {
		convs := []convSpec{
			{bl.In, bl.Mid, 1, 1, 0, 1, 1},
			{bl.Mid, bl.Mid, bl.Kernel, bl.Stride, bl.Padding, bl.Dilation, bl.Groups},
			{bl.Mid, bl.Out, 1, 1, 0, 1, 1},
		}
		if pre {
			return convs, []int{bl.In, bl.Mid, bl.Mid}
		}
		return convs, []int{bl.Mid, bl.Mid, bl.Out}
	}
	convs := []convSpec{
		{bl.In, bl.Mid, bl.Kernel, bl.Stride, bl.Padding, bl.Dilation, bl.Groups},
		{bl.Mid, bl.Out, bl.Kernel, 1, bl.Padding, bl.Dilation, bl.Groups},
	}
	if pre {
		return convs, []int{bl.In, bl.Mid}
	}
	return convs, []int{bl.Mid, bl.Out}
}

// blockPosition creates position p of a block: its convolution cs, its
// norm of normWidth channels and its activation, in the PyTorch module
// order.
func (b *builder) blockPosition(blk *block, prefix string, bl arch.BlockLayout, p int, cs convSpec, normWidth int) error {
	s, nm := b.net.spec, b.names
	var n norm
	var err error
	if blk.pre {
		if n, err = b.newNorm(nm.norm(prefix, p), s.Block.Norms[p], normWidth); err != nil {
			return err
		}
		if err = b.blockAct(blk, prefix, p); err != nil {
			return err
		}
	}
	c, err := b.newConv(nm.conv(prefix, p), cs.in, cs.out, cs.kernel, cs.stride, cs.pad, cs.dilation, cs.groups, false)
	if err != nil {
		return err
	}
	// The padding mode applies to the block's first k×k convolution:
	// position 0 of a basic block, 1 of a bottleneck.
	kxk := 0
	if bl.Kind == arch.Bottleneck {
		kxk = 1
	}
	if p == kxk && bl.PadLow != bl.PadHigh {
		c.asym, c.pad, c.padLow, c.padHigh = true, 0, int64(bl.PadLow), int64(bl.PadHigh)
	}
	if !blk.pre {
		if n, err = b.newNorm(nm.norm(prefix, p), s.Block.Norms[p], normWidth); err != nil {
			return err
		}
		if p < 2 { // position 2 follows the residual add: created last
			if err = b.blockAct(blk, prefix, p); err != nil {
				return err
			}
		}
	}
	blk.convs = append(blk.convs, c)
	blk.norms = append(blk.norms, n)
	return nil
}

// blockAct creates the block's activation of position p, if the block
// uses it.
func (b *builder) blockAct(blk *block, prefix string, p int) error {
	s := b.net.spec
	if !slices.Contains(arch.ActivationPositions(blk.kind, s.Block.Order), p) {
		return nil
	}
	var err error
	blk.acts[p], err = b.newAct(b.names.act(prefix, p), s.Block.Activations[p])
	return err
}

// blockSE creates the block's squeeze-and-excitation, on the bottleneck
// width of a bottleneck block and the output width of a basic one.
func (b *builder) blockSE(blk *block, prefix string, bl arch.BlockLayout) error {
	ch := bl.Mid
	if bl.Kind == arch.Basic {
		ch = bl.Out
	}
	sePrefix := b.names.se(prefix)
	fc1, err := b.newConv(sePrefix+".fc1", ch, bl.SE, 1, 1, 0, 1, 1, true)
	if err != nil {
		return err
	}
	fc2, err := b.newConv(sePrefix+".fc2", bl.SE, ch, 1, 1, 0, 1, 1, true)
	if err != nil {
		return err
	}
	blk.se = &se{fc1: fc1, fc2: fc2, act: b.net.spec.Block.SEActivation}
	return nil
}

// blockProjection creates the block's projection shortcut and its norm.
func (b *builder) blockProjection(blk *block, prefix string, bl arch.BlockLayout) error {
	nm := b.names
	pc, err := b.newConv(nm.projConv(prefix), bl.In, bl.Out, bl.ShortcutKernel, bl.Stride, bl.ShortcutPadLow, 1, 1, false)
	if err != nil {
		return err
	}
	if bl.ShortcutPadLow != bl.ShortcutPadHigh {
		pc.asym, pc.pad, pc.padLow, pc.padHigh = true, 0, int64(bl.ShortcutPadLow), int64(bl.ShortcutPadHigh)
	}
	blk.proj = &pc
	blk.rawShortcut = bl.ShortcutRaw
	blk.projNorm, err = b.newNorm(nm.projNorm(prefix), b.net.spec.Block.ShortcutNorm, bl.Out)
	return err
}
