package model

import (
	"fmt"

	lib "github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
)

// Ownership convention of the forward pass: every apply(x) consumes x (it
// drops x's handle) and returns a fresh handle. Identity layers return a
// shallow clone, so callers never need to know whether a layer did
// anything. Dropping a handle does not free what autograd still needs.

// forwardError carries a libtorch failure out of ForwardT, whose signature
// has no error: Net.Forward and torchrt.Safely turn it back into an error.
type forwardError struct{ err error }

func (e forwardError) Error() string { return e.err.Error() }

// must panics with a forwardError rather than calling log.Fatal, so the
// process survives a bad input.
func must(t *ts.Tensor, err error) *ts.Tensor {
	if err != nil {
		panic(forwardError{err})
	}
	return t
}

func drop(ts ...*ts.Tensor) {
	for _, t := range ts {
		if t != nil {
			_ = t.Drop()
		}
	}
}

func clone(x *ts.Tensor) *ts.Tensor { return must(x.ShallowClone()) }

// conv is a 2-D convolution; b is nil without bias. When asym is set the
// input is zero-padded by padLow above and left and padHigh below and
// right first (arch's asymmetric padding) and pad is 0.
type conv struct {
	w, b                          *ts.Tensor
	stride, pad, dilation, groups int64
	asym                          bool
	padLow, padHigh               int64
}

func (c *conv) apply(x *ts.Tensor) *ts.Tensor {
	b := c.b
	if b == nil {
		b = ts.NewTensor() // an undefined tensor: no bias
		defer drop(b)
	}
	if c.asym {
		// ConstantPadNd lists the last dimension first: left, right,
		// top, bottom.
		p := must(x.ConstantPadNd([]int64{c.padLow, c.padHigh, c.padLow, c.padHigh}, false))
		drop(x)
		x = p
	}
	y := must(ts.Conv2d(x, c.w, b, []int64{c.stride, c.stride}, []int64{c.pad, c.pad},
		[]int64{c.dilation, c.dilation}, c.groups))
	drop(x)
	return y
}

// norm is a normalisation layer of one of arch.Norms.
type norm struct {
	kind         string
	w, b, rm, rv *ts.Tensor // rm, rv: batch norm's running statistics
	groups       int64
}

// PyTorch's defaults.
const (
	bnMomentum = 0.1
	normEps    = 1e-5
)

func (n *norm) apply(x *ts.Tensor, train bool) *ts.Tensor {
	if (n.kind == arch.GroupNorm || n.kind == arch.LayerNorm) && x.DType() != n.w.DType() {
		// libtorch 1.13's CPU group and layer norms refuse a bf16 input
		// with fp32 weights ("expected scalar type BFloat16 but found
		// Float"), and CPU autocast does not cast for them (PyTorch's
		// nn.GroupNorm and nn.LayerNorm fail the same way under
		// torch.autocast("cpu")). Normalise in the weights' fp32 and round
		// the result once, as the fp32 activations are.
		in := x.DType()
		y := n.apply(must(x.Totype(n.w.DType(), true)), train)
		return must(y.Totype(in, true))
	}
	var y *ts.Tensor
	switch n.kind {
	case arch.BatchNorm:
		y = must(ts.BatchNorm(x, n.w, n.b, n.rm, n.rv, train, bnMomentum, normEps, false))
	case arch.GroupNorm:
		y = must(ts.GroupNorm(x, n.groups, n.w, n.b, normEps, false))
	case arch.InstanceNorm:
		// nn.InstanceNorm2d(C, affine=True): batch statistics in both
		// modes, no running ones (undefined tensors).
		none := ts.NewTensor()
		y = must(ts.InstanceNorm(x, n.w, n.b, none, none, true, bnMomentum, normEps, false))
		drop(none)
		y = likeFormat(x, y)
	case arch.LayerNorm:
		// torchvision's LayerNorm2d: layer_norm over C of the NHWC view.
		nhwc := must(x.Permute([]int64{0, 2, 3, 1}, false))
		shape, err := x.Size()
		if err != nil {
			drop(nhwc)
			panic(forwardError{err})
		}
		ln := must(ts.LayerNorm(nhwc, shape[1:2], n.w, n.b, normEps, false))
		drop(nhwc)
		y = likeFormat(x, must(ln.Permute([]int64{0, 3, 1, 2}, true)))
	default:
		return x
	}
	drop(x)
	return y
}

// likeFormat returns y (which it consumes) in x's memory format. The
// instance norm kernel returns NCHW-contiguous output whatever its input,
// the layer norm above channels-last; a net keeps its activations in one
// layout, as its other layers do (see layoutSafe for what mixed layouts
// cost on the CPU).
func likeFormat(x, y *ts.Tensor) *ts.Tensor {
	xcl, err := lib.RobarchIsChannelsLast(x.Ctensor())
	if err != nil {
		panic(forwardError{err})
	}
	ycl, err := lib.RobarchIsChannelsLast(y.Ctensor())
	if err != nil {
		panic(forwardError{err})
	}
	switch {
	case xcl == ycl:
		return y
	case xcl:
		nhwc := must(y.Permute([]int64{0, 2, 3, 1}, true))
		dense := must(nhwc.Contiguous(true))
		return must(dense.Permute([]int64{0, 3, 1, 2}, true))
	}
	return must(y.Contiguous(true))
}

// act is one activation instance: its name and, for the parametric
// ones (arch.ParametricActivations), its parameters: prelu's slope w,
// psilu's alpha, pssilu's alpha and beta, each of shape [1].
type act struct {
	name        string
	w           *ts.Tensor
	alpha, beta *ts.Tensor
}

// apply applies the activation to x (which it consumes).
func (a *act) apply(x *ts.Tensor) *ts.Tensor {
	switch a.name {
	case arch.PReLU, arch.PSiLU, arch.PSSiLU:
	default:
		return activation(a.name, x)
	}
	// The parameters are fp32; under bf16 autocast x is bf16. Compute in
	// the parameters' dtype and round the result once, as SiLU and Mish
	// are (torchbuild's autocast kernels), rather than let type
	// promotion carry fp32 activations into the next layer.
	var pdt = a.alpha
	if a.name == arch.PReLU {
		pdt = a.w
	}
	in := x.DType()
	if in != pdt.DType() {
		xf := must(x.Totype(pdt.DType(), true))
		y := a.parametric(xf)
		drop(xf)
		return must(y.Totype(in, true))
	}
	y := a.parametric(x)
	drop(x)
	return y
}

// parametric computes the parametric activations on x (which it
// borrows), in the order of operations of PyTorch's definitions so that
// the values match theirs to the last bit where the kernels do.
func (a *act) parametric(x *ts.Tensor) *ts.Tensor {
	switch a.name {
	case arch.PReLU:
		// max(0, x) + w·min(0, x): x where x > 0, w·x elsewhere, as
		// torch.prelu computes with one slope.
		pos := must(x.ClampMin(ts.FloatScalar(0), false))
		neg := must(x.ClampMax(ts.FloatScalar(0), false))
		wneg := must(neg.Mul(a.w, true))
		y := must(pos.Add(wneg, true))
		drop(wneg)
		return y
	case arch.PSiLU:
		// x · σ(alpha·x)
		s := must(must(a.alpha.Mul(x, false)).Sigmoid(true))
		y := must(x.Mul(s, false))
		drop(s)
		return y
	}
	// PSSiLU: x · (σ(alpha·x) − beta) / (1 − beta + 1e-6), with beta's
	// value clamped to [0, 1] first, in place and outside autograd, as
	// RobArch's PSSiLU sets beta.data. Autograd saves no copy of beta
	// itself (subtraction does not need its operands and the division
	// keeps its own denominator), so clamping it between a forward pass
	// and its backward pass is safe, as it is in PyTorch.
	alias := must(a.beta.Detach(false))
	err := alias.Clamp_(ts.FloatScalar(0), ts.FloatScalar(1))
	drop(alias)
	if err != nil {
		panic(forwardError{err})
	}
	s := must(must(a.alpha.Mul(x, false)).Sigmoid(true))
	gate := must(s.Sub(a.beta, true))
	num := must(x.Mul(gate, false))
	drop(gate)
	den := must(must(a.beta.RsubScalar(ts.FloatScalar(1), false)).AddScalar(ts.FloatScalar(1e-6), true))
	y := must(num.Div(den, true))
	drop(den)
	return y
}

// activation applies one of arch.Activations that has no parameters.
func activation(name string, x *ts.Tensor) *ts.Tensor {
	switch name {
	case "relu":
		return must(x.Relu(true))
	case "leaky_relu":
		return must(x.LeakyRelu(true)) // slope 0.01, PyTorch's default
	case "elu":
		return must(x.Elu(true))
	case "gelu":
		return must(x.Gelu("none", true))
	case "silu": // under bf16 autocast in fp32, rounded once (torchbuild's autocast kernels)
		return must(x.Silu(true))
	case "mish":
		return must(x.Mish(true))
	case "softplus":
		return must(x.Softplus(true))
	case "hardswish":
		return must(x.Hardswish(true))
	case "sigmoid":
		return must(x.Sigmoid(true))
	case arch.Identity:
		return x
	}
	panic(forwardError{fmt.Errorf("activation %q: want one of %v", name, arch.Activations)})
}

// layoutSafe returns x ready for activation name in a net whose weights
// have memory format cl (channels-last when true). libtorch 1.13's CPU
// GELU (approximate "none") computes a wrong input gradient, different
// on every call and up to 1e38, when its input is NCHW-contiguous and the
// gradient arriving from the next layer is channels-last — what happens
// in a channels-last net wherever an activation comes from a layer whose
// weights are the same in both layouts (a stem over one input channel, a
// 1×1 stem, the input normalisation) or from a sum of a channels-last and
// a contiguous tensor. Reproduced in PyTorch 1.13 alone (F.gelu, then
// F.conv2d with channels-last weights; TestGELULayoutWorkaround); every
// other activation and norm here, GELU's tanh form, and GELU with a
// channels-last input and either gradient layout are correct. So in a
// channels-last net GELU gets a channels-last input: the values are the
// same, only the strides change.
func layoutSafe(name string, x *ts.Tensor, cl bool) *ts.Tensor {
	if !cl || name != "gelu" || x.Dim() != 4 {
		return x
	}
	shape, err := x.Size()
	if err != nil {
		panic(forwardError{err})
	}
	if shape[1] == 1 || shape[2]*shape[3] == 1 {
		return x // the two layouts store these in the same order
	}
	if is, err := lib.RobarchIsChannelsLast(x.Ctensor()); err == nil && is {
		return x
	}
	// A contiguous NHWC copy viewed back as NCHW has channels-last
	// strides; autograd sees a permute and a copy.
	nhwc := must(x.Permute([]int64{0, 2, 3, 1}, false))
	dense := must(nhwc.Contiguous(true))
	y := must(dense.Permute([]int64{0, 3, 1, 2}, true))
	drop(x)
	return y
}

// freshActivation is activation for an x that nothing else holds (a
// norm's or a convolution's output, a sum): ReLU then runs in place, as in
// torchvision's ResNets, which saves an allocation and a pass over memory.
// Autograd allows it because ReLU's backward needs only its output, and
// none of the ops that produce x need their output for theirs. Other
// activations need their input for the backward pass.
func freshActivation(name string, x *ts.Tensor) *ts.Tensor {
	if name != "relu" {
		return activation(name, x)
	}
	if err := x.Relu_(); err != nil {
		drop(x)
		panic(forwardError{err})
	}
	return x
}

// se is squeeze-and-excitation: global average, 1×1 conv, activation,
// 1×1 conv, sigmoid, channel-wise scale (torchvision's
// SqueezeExcitation).
type se struct {
	fc1, fc2 conv
	act      string
}

func (s *se) apply(x *ts.Tensor) *ts.Tensor {
	g := must(x.MeanDim([]int64{2, 3}, true, x.DType(), false))
	g = s.fc1.apply(g)
	g = activation(s.act, g)
	g = s.fc2.apply(g)
	g = activation("sigmoid", g)
	y := must(x.Mul(g, true))
	drop(g)
	return y
}

// block is one residual block of a resolved arch.BlockLayout.
type block struct {
	kind     string
	pre      bool
	convs    []conv // 3 for bottleneck, 2 for basic
	norms    []norm // one per position used
	acts     []act  // by position; unused positions have only a name
	se       *se
	seFirst  bool // SE right after the first conv (pre-activation basic blocks)
	proj     *conv
	projNorm norm
	// rawShortcut: in pre-activation order the projection convolves the
	// block's input itself, not its pre-activation (DMPreActResNet).
	rawShortcut bool
	// channelsLast: the net's weights are channels-last (see layoutSafe).
	channelsLast bool
}

// act applies the block's activation of position p to x.
func (b *block) act(p int, x *ts.Tensor) *ts.Tensor {
	a := &b.acts[p]
	return a.apply(layoutSafe(a.name, x, b.channelsLast))
}

// freshAct is act for an x nothing else holds (see freshActivation).
func (b *block) freshAct(p int, x *ts.Tensor) *ts.Tensor {
	a := &b.acts[p]
	if a.name != "relu" {
		return a.apply(layoutSafe(a.name, x, b.channelsLast))
	}
	return freshActivation(a.name, x)
}

// forward borrows x and returns a fresh tensor.
func (b *block) forward(x *ts.Tensor, train bool) *ts.Tensor {
	if b.pre {
		return b.forwardPre(x, train)
	}
	h := clone(x)
	last := len(b.convs) - 1
	for p := range b.convs {
		h = b.convs[p].apply(h)
		if p == 1 && b.kind == arch.Bottleneck && b.se != nil {
			// Bottleneck SE follows the k×k conv's norm and activation,
			// as in RobArch's BottleneckTransform.
			h = b.norms[p].apply(h, train)
			h = b.freshAct(p, h)
			h = b.se.apply(h)
			continue
		}
		h = b.norms[p].apply(h, train)
		if p < last {
			h = b.freshAct(p, h)
		}
	}
	if b.kind == arch.Basic && b.se != nil {
		h = b.se.apply(h)
	}
	var out *ts.Tensor
	if b.proj != nil {
		sc := b.projNorm.apply(b.proj.apply(clone(x)), train)
		out = must(h.Add(sc, true))
		drop(sc)
	} else {
		out = must(h.Add(x, true))
	}
	return b.freshAct(2, out)
}

// forwardPre is the pre-activation block: norm and activation before each
// conv; a projection shortcut takes the pre-activated input, or the raw
// one with rawShortcut.
func (b *block) forwardPre(x *ts.Tensor, train bool) *ts.Tensor {
	a := b.act(0, b.norms[0].apply(clone(x), train))
	var sc *ts.Tensor
	if b.proj != nil {
		in := a
		if b.rawShortcut {
			in = x
		}
		sc = b.projNorm.apply(b.proj.apply(clone(in)), train)
	}
	h := b.convs[0].apply(a)
	if b.seFirst {
		h = b.se.apply(h)
	}
	for p := 1; p < len(b.convs); p++ {
		if p == 2 && b.se != nil { // bottleneck: SE after the k×k conv
			h = b.se.apply(h)
		}
		h = b.act(p, b.norms[p].apply(h, train))
		h = b.convs[p].apply(h)
	}
	if b.kind == arch.Basic && b.se != nil && !b.seFirst {
		h = b.se.apply(h)
	}
	if sc != nil {
		out := must(h.Add(sc, true))
		drop(sc)
		return out
	}
	return must(h.Add(x, true))
}

// stage is a run of blocks with optional dense connections.
type stage struct {
	blocks []*block
	dense  int
}

// forward borrows x and returns a fresh tensor.
func (s *stage) forward(x *ts.Tensor, train bool) *ts.Tensor {
	if s.dense == 0 {
		cur := x
		for _, b := range s.blocks {
			next := b.forward(cur, train)
			if cur != x {
				drop(cur)
			}
			cur = next
		}
		return cur
	}
	// RobArch's Stage.forward: block i > 2 also receives the outputs of
	// up to dense earlier blocks (features[-3-j]), and so does the
	// stage's output. features[0] (the stage input) is never added, since
	// its shape may differ.
	features := []*ts.Tensor{x}
	for i, b := range s.blocks {
		in := features[len(features)-1]
		fresh := false
		if i > 2 {
			for j := 0; j < s.dense && j+4 <= len(features); j++ {
				sum := must(in.Add(features[len(features)-3-j], false))
				if fresh {
					drop(in)
				}
				in, fresh = sum, true
			}
		}
		features = append(features, b.forward(in, train))
		if fresh {
			drop(in)
		}
	}
	out := clone(features[len(features)-1])
	for k := 0; k < s.dense && k+4 <= len(features); k++ {
		out = must(out.Add(features[len(features)-3-k], true))
	}
	drop(features[1:]...)
	return out
}
