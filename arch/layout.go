package arch

import (
	"fmt"
	"math"
)

// Layout is a spec resolved into concrete layers: every block's widths,
// groups and strides, and the feature-map size after each part for the
// spec's input. Counting and building both read it, so they cannot
// disagree about the network's shape.
type Layout struct {
	Spec   Spec // with defaults filled in
	Stem   StemLayout
	Stages []StageLayout
	// FinalNorm is true in pre-activation order: a norm and activation
	// (Block.Norms[0], Block.Activations[0]) after the last stage.
	FinalNorm  bool
	FinalWidth int
	Head       Count // the classifier (and FinalNorm's norm and activation)
	Total      Count
}

// StemLayout is the resolved stem.
type StemLayout struct {
	In, Out, Kernel, Stride, Padding int
	Norm                             bool // batch norm + ReLU after the conv (post-activation order)
	MaxPool                          bool
	OutH, OutW                       int
	Count                            Count
}

// StageLayout is one resolved stage.
type StageLayout struct {
	Index  int
	Blocks []BlockLayout
	OutH   int
	OutW   int
	Count  Count
}

// BlockLayout is one resolved block. Mid is the bottleneck width (the
// width between the two convolutions of a basic block, equal to Out).
type BlockLayout struct {
	Kind     string
	In, Mid  int
	Out      int
	Groups   int
	Kernel   int
	Dilation int
	Padding  int
	// PadLow and PadHigh are the first k×k convolution's padding above
	// and left, below and right: both Padding, except with asymmetric
	// padding (Block.Padding) on a strided convolution.
	PadLow, PadHigh int
	Stride          int
	SE              int  // squeeze width, 0 without SE
	Projection      bool // projection shortcut (a convolution)
	// ShortcutKernel is the projection's kernel (1 or 3) and
	// ShortcutPadLow/High its padding above and left, below and right;
	// ShortcutRaw says it convolves the block's raw input in
	// pre-activation order (Block.ShortcutInput).
	ShortcutKernel                  int
	ShortcutPadLow, ShortcutPadHigh int
	ShortcutRaw                     bool
	InH, InW                        int
	OutH, OutW                      int
	Count                           Count
}

// Count is a number of trainable parameters and of multiply-accumulates.
type Count struct {
	Params int64
	MACs   int64
}

func (c *Count) add(o Count) { c.Params += o.Params; c.MACs += o.MACs }

// convOut is the output size of a convolution (PyTorch's formula).
func convOut(in, kernel, stride, padding, dilation int) int {
	span := in + 2*padding - dilation*(kernel-1) - 1
	if span < 0 {
		return 0 // the kernel does not fit; Go's division would truncate to 1
	}
	return span/stride + 1
}

// conv counts a convolution without bias applied to an outH×outW output.
func conv(in, out, kernel, groups, outH, outW int) Count {
	w := int64(out) * int64(in/groups) * int64(kernel) * int64(kernel)
	return Count{Params: w, MACs: w * int64(outH) * int64(outW)}
}

// normParams counts an affine norm layer's weight and bias (every kind
// but identity has both, of one value per channel; instancenorm is
// affine, see Block.Norms); identity has none.
func normParams(kind string, channels int) int64 {
	if kind == Identity {
		return 0
	}
	return 2 * int64(channels)
}

// ActivationParams is the number of learnable parameters of one instance
// of activation name: 1 for prelu (its slope) and psilu (alpha), 2 for
// pssilu (alpha and beta), 0 for the others.
func ActivationParams(name string) int64 {
	switch name {
	case PReLU, PSiLU:
		return 1
	case PSSiLU:
		return 2
	}
	return 0
}

// ActivationPositions lists the positions of Block.Activations that a
// block of kind uses in order (post or pre; see Block): every one in a
// bottleneck; 0 and 2 (after the residual add) in a post-activation basic
// block; 0 and 1 in a pre-activation basic block, where nothing follows
// the add. Each used position is its own activation instance, with its
// own parameters where it has any.
func ActivationPositions(kind, order string) []int {
	switch {
	case kind == Bottleneck:
		return []int{0, 1, 2}
	case order == PreAct:
		return []int{0, 1}
	}
	return []int{0, 2}
}

// roundHalfEven rounds like Python 3's round(), which the RobArch and
// pycls code use for bottleneck and squeeze widths.
func roundHalfEven(x float64) int { return int(math.RoundToEven(x)) }

// BottleneckWidth is round(width × multiplier), rounding halves to even
// as Python does.
func BottleneckWidth(width int, multiplier float64) int {
	return roundHalfEven(float64(width) * multiplier)
}

// SEWidth is the squeeze width for a block with the given input width.
func SEWidth(ratio float64, inWidth int) int {
	if ratio <= 0 {
		return 0
	}
	return roundHalfEven(ratio * float64(inWidth))
}

// Resolve validates s and resolves it into its Layout at the spec's input
// size.
//
// MACs convention: multiply-accumulates of convolutions and linear layers
// only (including SE's two 1×1 convolutions on its pooled 1×1 map and the
// classifier), for one image. Bias additions, norms, activations, pooling,
// residual and dense additions and SE's channel scaling are not counted,
// as in fvcore and torchvision's published GFLOPS (ResNet-50 at 224×224:
// 4.09 G).
func Resolve(s Spec) (Layout, error) {
	s = s.WithDefaults()
	if err := s.Validate(); err != nil {
		return Layout{}, err
	}
	return resolve(s)
}

// resolve assumes s is defaulted and valid apart from spatial sizes, which
// it checks.
func resolve(s Spec) (Layout, error) {
	var l Layout
	l.Spec = s
	pre := s.Block.Order == PreAct

	st, err := stemLayout(s)
	if err != nil {
		return l, err
	}
	l.Stem = st
	l.Total.add(st.Count)

	in, h, w := st.Out, st.OutH, st.OutW
	for si, stage := range s.Stages {
		sl := StageLayout{Index: si}
		for bi := 0; bi < stage.Depth; bi++ {
			bl, err := blockLayout(s, si, bi, in, h, w)
			if err != nil {
				return l, err
			}
			sl.Blocks = append(sl.Blocks, bl)
			sl.Count.add(bl.Count)
			in, h, w = bl.Out, bl.OutH, bl.OutW
		}
		sl.OutH, sl.OutW = h, w
		l.Stages = append(l.Stages, sl)
		l.Total.add(sl.Count)
	}

	l.FinalWidth = in
	l.FinalNorm = pre
	if pre {
		l.Head.Params += normParams(s.Block.Norms[0], in) + ActivationParams(s.Block.Activations[0])
	}
	fc := int64(in) * int64(s.Classes)
	l.Head.Params += fc + int64(s.Classes)
	l.Head.MACs += fc
	l.Total.add(l.Head)
	return l, nil
}

// stemLayout resolves the stem for s's input size.
func stemLayout(s Spec) (StemLayout, error) {
	st := StemLayout{In: s.Input.Channels, Out: s.Stem.Width, Kernel: s.Stem.Kernel, Norm: s.Block.Order != PreAct}
	if s.Stem.Kind == StemPatch {
		st.Stride = s.Stem.Kernel
	} else {
		st.Stride = s.Stem.Stride
		st.Padding = (s.Stem.Kernel - 1) / 2
		st.MaxPool = s.Stem.MaxPool
	}
	st.OutH = convOut(s.Input.Height, st.Kernel, st.Stride, st.Padding, 1)
	st.OutW = convOut(s.Input.Width, st.Kernel, st.Stride, st.Padding, 1)
	if st.OutH < 1 || st.OutW < 1 {
		return st, fmt.Errorf("input %dx%d is too small for the stem (kernel %d, stride %d)", s.Input.Height, s.Input.Width, st.Kernel, st.Stride)
	}
	st.Count = conv(st.In, st.Out, st.Kernel, 1, st.OutH, st.OutW)
	if st.Norm {
		st.Count.Params += normParams(BatchNorm, st.Out)
	}
	if st.MaxPool {
		st.OutH = convOut(st.OutH, 3, 2, 1, 1)
		st.OutW = convOut(st.OutW, 3, 2, 1, 1)
	}
	return st, nil
}

// blockLayout resolves block bi of stage si, which sees in channels on an
// h×w map.
func blockLayout(s Spec, si, bi, in, h, w int) (BlockLayout, error) {
	stage, b := s.Stages[si], s.Block
	bl := BlockLayout{
		Kind:     stage.Block,
		In:       in,
		Out:      stage.Width,
		Kernel:   stage.Kernel,
		Dilation: stage.Dilation,
		Padding:  (stage.Kernel - 1) / 2 * stage.Dilation,
		Stride:   1,
		Groups:   1,
		InH:      h,
		InW:      w,
	}
	if bi == 0 {
		bl.Stride = stage.Stride
	}
	bl.Projection = bl.In != bl.Out || bl.Stride != 1
	bl.SE = SEWidth(b.SERatio, in)
	if b.SEWidthFrom == SEFromOutput {
		bl.SE = SEWidth(b.SERatio, bl.Out)
	}
	if err := bl.pad(b, si); err != nil {
		return bl, err
	}
	// PyTorch's output size with the total padding split in two.
	bl.OutH = convOut(h+bl.PadLow+bl.PadHigh-2*bl.Padding, bl.Kernel, bl.Stride, bl.Padding, bl.Dilation)
	bl.OutW = convOut(w+bl.PadLow+bl.PadHigh-2*bl.Padding, bl.Kernel, bl.Stride, bl.Padding, bl.Dilation)
	if bl.OutH < 1 || bl.OutW < 1 {
		return bl, fmt.Errorf("stages[%d]: a %dx%d feature map is too small for kernel %d, dilation %d, stride %d; use a larger input", si, h, w, bl.Kernel, bl.Dilation, bl.Stride)
	}
	if stage.Block == Bottleneck {
		bl.Mid = BottleneckWidth(stage.Width, stage.BottleneckMultiplier)
		if stage.GroupWidth > 0 {
			bl.Groups = bl.Mid / stage.GroupWidth
		}
	} else {
		bl.Mid = stage.Width
		bl.Groups = max(stage.Groups, 1)
	}
	bl.Count = blockCount(bl, b)
	return bl, nil
}

// pad sets the padding of the block's first k×k convolution and of its
// shortcut (Block.Padding, Block.ShortcutKernel, Block.ShortcutInput) for
// a block of stage si whose size, stride and input map are set.
func (bl *BlockLayout) pad(b Block, si int) error {
	asym := b.Padding == PadAsymmetric && bl.Stride == 2
	bl.PadLow, bl.PadHigh = bl.Padding, bl.Padding
	if asym {
		bl.PadLow, bl.PadHigh = 0, 1
		// On an odd map the one-sided padding keeps one row less
		// than the strided shortcut: the residual sum would not
		// add up (RobustBench's DM blocks fail the same way).
		if bl.InH%2 != 0 || bl.InW%2 != 0 {
			return fmt.Errorf("stages[%d]: asymmetric padding needs an even feature map at a stride-2 block, got %dx%d; use an input size divisible by the total downsampling or symmetric padding", si, bl.InH, bl.InW)
		}
	}
	bl.ShortcutKernel, bl.ShortcutRaw = b.ShortcutKernel, b.ShortcutInput == ShortcutRaw
	if bl.ShortcutKernel == 3 {
		// Padded like the block's first 3×3 convolution, so the
		// two branches sample the same grid.
		bl.ShortcutPadLow, bl.ShortcutPadHigh = 1, 1
		if asym {
			bl.ShortcutPadLow, bl.ShortcutPadHigh = 0, 1
		}
	}
	return nil
}

// blockCount counts one block's parameters and MACs.
func blockCount(bl BlockLayout, b Block) Count {
	var c Count
	pre := b.Order == PreAct
	hw := func(cnt Count) { c.add(cnt) }
	if bl.Kind == Bottleneck {
		// 1×1 at the input resolution, k×k (strided), 1×1.
		hw(conv(bl.In, bl.Mid, 1, 1, bl.InH, bl.InW))
		hw(conv(bl.Mid, bl.Mid, bl.Kernel, bl.Groups, bl.OutH, bl.OutW))
		hw(conv(bl.Mid, bl.Out, 1, 1, bl.OutH, bl.OutW))
		if pre {
			c.Params += normParams(b.Norms[0], bl.In) + normParams(b.Norms[1], bl.Mid) + normParams(b.Norms[2], bl.Mid)
		} else {
			c.Params += normParams(b.Norms[0], bl.Mid) + normParams(b.Norms[1], bl.Mid) + normParams(b.Norms[2], bl.Out)
		}
		if bl.SE > 0 {
			c.add(seCount(bl.Mid, bl.SE))
		}
	} else {
		hw(conv(bl.In, bl.Mid, bl.Kernel, bl.Groups, bl.OutH, bl.OutW))
		hw(conv(bl.Mid, bl.Out, bl.Kernel, bl.Groups, bl.OutH, bl.OutW))
		if pre {
			c.Params += normParams(b.Norms[0], bl.In) + normParams(b.Norms[1], bl.Mid)
		} else {
			c.Params += normParams(b.Norms[0], bl.Mid) + normParams(b.Norms[1], bl.Out)
		}
		if bl.SE > 0 {
			c.add(seCount(bl.Out, bl.SE))
		}
	}
	if bl.Projection {
		hw(conv(bl.In, bl.Out, bl.ShortcutKernel, 1, bl.OutH, bl.OutW))
		c.Params += normParams(b.ShortcutNorm, bl.Out)
	}
	for _, p := range ActivationPositions(bl.Kind, b.Order) {
		c.Params += ActivationParams(b.Activations[p])
	}
	return c
}

// seCount counts squeeze-and-excitation: two 1×1 convolutions with bias
// on the pooled 1×1 map.
func seCount(channels, squeeze int) Count {
	w := 2 * int64(channels) * int64(squeeze)
	return Count{Params: w + int64(squeeze) + int64(channels), MACs: w}
}

// Params is the exact number of trainable parameters of the network s
// describes (norm running statistics and the input normalisation are
// buffers, not parameters).
func Params(s Spec) (int64, error) {
	l, err := Resolve(s)
	if err != nil {
		return 0, err
	}
	return l.Total.Params, nil
}

// MACs is the number of multiply-accumulates for one image of size
// height×width (0 keeps the spec's input size); see Resolve for the
// convention.
func MACs(s Spec, height, width int) (int64, error) {
	s = s.WithDefaults()
	if height > 0 {
		s.Input.Height = height
	}
	if width > 0 {
		s.Input.Width = width
	}
	l, err := Resolve(s)
	if err != nil {
		return 0, err
	}
	return l.Total.MACs, nil
}
