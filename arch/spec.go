// Package arch describes the networks the RobArch study explores as plain
// data: a Spec names a ResNet-style network (stem, stages of basic or
// bottleneck blocks, activations, normalisation, squeeze-and-excitation,
// pre/post activation order, dense connections). The package validates
// specs, counts their parameters and multiply-accumulates exactly without
// building them, fits them to a parameter budget and keeps the registry of
// presets. It is pure Go: building a Spec on libtorch lives in arch/model.
package arch

import "slices"

// Spec is one network of the design space. The zero values of optional
// fields mean "default"; WithDefaults fills them in.
type Spec struct {
	// Name is informational (a preset's registry name, or a variant's label).
	Name        string `yaml:"name,omitempty" json:"name,omitempty" mapstructure:"name"`
	Description string `yaml:"description,omitempty" json:"description,omitempty" mapstructure:"description"` // one line, shown by robarch arch list
	// Naming picks the parameter-name layout used for weight interop:
	// "robarch" (the official RobArch ConfigurableModel's),
	// "torchvision" (torchvision's ResNet names), "robustbench-wrn"
	// (RobustBench's classic WideResNet), "robustbench-dm" (RobustBench's
	// DMWideResNet, whose names its RaWRN, NormalizedWideResNet, shares) or
	// "robustbench-dm-preact" (RobustBench's DMPreActResNet).
	Naming  string  `yaml:"naming,omitempty" json:"naming,omitempty" mapstructure:"naming"`
	Input   Input   `yaml:"input" json:"input" mapstructure:"input"`                           // the images the network takes
	Classes int     `yaml:"classes,omitempty" json:"classes,omitempty" mapstructure:"classes"` // outputs of the classifier head
	Stem    Stem    `yaml:"stem" json:"stem" mapstructure:"stem"`                              // the first layer
	Stages  []Stage `yaml:"stages" json:"stages" mapstructure:"stages"`                        // the stages, in order (at least one)
	Block   Block   `yaml:"block" json:"block" mapstructure:"block"`                           // choices shared by every block
}

// Input is what the network receives: images of Channels×Height×Width in
// [0,1] pixel space. Mean and Std (one value per channel, or both empty for
// none) normalise inside the model, so attacks never see normalised pixels.
type Input struct {
	Channels int       `yaml:"channels,omitempty" json:"channels,omitempty" mapstructure:"channels"` // image channels (1 grey, 3 RGB)
	Height   int       `yaml:"height,omitempty" json:"height,omitempty" mapstructure:"height"`       // image height in pixels
	Width    int       `yaml:"width,omitempty" json:"width,omitempty" mapstructure:"width"`          // image width in pixels (default: the height)
	Mean     []float64 `yaml:"mean,omitempty" json:"mean,omitempty" mapstructure:"mean"`             // per-channel mean subtracted inside the model
	Std      []float64 `yaml:"std,omitempty" json:"std,omitempty" mapstructure:"std"`                // per-channel standard deviation divided by inside the model
}

// Stem is the first layer. Kind "conv" is a Kernel×Kernel convolution with
// Stride (padding (Kernel-1)/2), followed in post-activation order by batch
// norm and ReLU, and optionally a 3×3 stride-2 max-pool (a total downsample
// of 4 instead of 2 with Stride 2). A small-image stem is Kernel 3, Stride 1
// without max-pool. Kind "patchify" is a Kernel×Kernel convolution with
// stride Kernel and no padding (Stride and MaxPool must be left unset).
type Stem struct {
	Kind    string `yaml:"kind,omitempty" json:"kind,omitempty" mapstructure:"kind"`             // conv or patchify
	Width   int    `yaml:"width" json:"width" mapstructure:"width"`                              // output channels
	Kernel  int    `yaml:"kernel,omitempty" json:"kernel,omitempty" mapstructure:"kernel"`       // kernel size (patchify: also its stride)
	Stride  int    `yaml:"stride,omitempty" json:"stride,omitempty" mapstructure:"stride"`       // conv stem stride
	MaxPool bool   `yaml:"max_pool,omitempty" json:"max_pool,omitempty" mapstructure:"max_pool"` // conv stem: a 3×3 stride-2 max-pool after it
}

// Stage is a run of Depth blocks with Width output channels; the first
// block applies Stride (on its k×k convolution) and, when the shape
// changes, a 1×1 projection shortcut.
//
// Block "bottleneck" is 1×1, k×k, 1×1 with a bottleneck width of
// round(Width × BottleneckMultiplier) (a multiplier above 1 makes an
// inverted bottleneck) and groups = bottleneck width / GroupWidth on the
// k×k convolution (GroupWidth 0 means one group). Block "basic" is two k×k
// convolutions of Width channels; it takes neither a multiplier other than
// 1 nor a group width, but Groups (0 or 1: one group) splits both of its
// convolutions into that many groups, as RobustBench's RaWRN does.
type Stage struct {
	Depth                int     `yaml:"depth" json:"depth" mapstructure:"depth"`                                                                     // blocks in the stage (at least 1)
	Width                int     `yaml:"width" json:"width" mapstructure:"width"`                                                                     // output channels of every block
	Stride               int     `yaml:"stride,omitempty" json:"stride,omitempty" mapstructure:"stride"`                                              // stride of the first block
	Block                string  `yaml:"block,omitempty" json:"block,omitempty" mapstructure:"block"`                                                 // bottleneck or basic
	BottleneckMultiplier float64 `yaml:"bottleneck_multiplier,omitempty" json:"bottleneck_multiplier,omitempty" mapstructure:"bottleneck_multiplier"` // bottleneck width / block width (1 for basic)
	GroupWidth           int     `yaml:"group_width,omitempty" json:"group_width,omitempty" mapstructure:"group_width"`                               // bottleneck: channels per group of the k×k convolution (0: one group)
	Groups               int     `yaml:"groups,omitempty" json:"groups,omitempty" mapstructure:"groups"`                                              // basic: groups of both convolutions (0 or 1: one)
	Kernel               int     `yaml:"kernel,omitempty" json:"kernel,omitempty" mapstructure:"kernel"`                                              // k of the k×k convolutions
	Dilation             int     `yaml:"dilation,omitempty" json:"dilation,omitempty" mapstructure:"dilation"`                                        // dilation of the k×k convolutions
}

// Block holds the choices shared by every block of the network.
//
// Positions of Activations and Norms: in a bottleneck block, 0 follows the
// first 1×1 convolution, 1 the k×k convolution, 2 the last 1×1 (norm) and
// the residual add (activation). In a basic block, 0 follows the first k×k
// convolution, norm 1 the second, activation 2 the residual add;
// activation 1 and norm 2 are unused. In pre-activation order each norm and
// activation comes before the convolution of the same position instead,
// and nothing follows the add.
type Block struct {
	// Order is "post" (conv, norm, act; the default) or "pre"
	// (norm, act, conv as in He et al. 2016 and wide ResNets: the stem is
	// a bare convolution, a final norm and activation of position 0
	// follow the last stage, and a projection shortcut sees the
	// pre-activated input).
	Order string `yaml:"order,omitempty" json:"order,omitempty" mapstructure:"order"`
	// Activations is the activation at each of the three positions
	// (above). "prelu", "psilu" and "pssilu" are the RobArch code's
	// parametric ones, each instance with its own learnable scalars:
	// prelu is torch.nn.PReLU() (one slope, weight, init 0.25), psilu is
	// x·σ(αx) (alpha, init 1), pssilu is x·(σ(αx) − β)/(1 − β + 1e-6)
	// (alpha, init 1, and beta, init 1e-4, whose value is clamped to [0,1]
	// at every forward pass as RobArch's PSSiLU does).
	Activations []string `yaml:"activations,omitempty" json:"activations,omitempty" mapstructure:"activations"`
	// Norms is the norm at each of the three positions (above).
	// "instancenorm" is torch.nn.InstanceNorm2d(C, affine=True) without
	// running statistics: PyTorch's default (and the RobArch code's) is
	// affine=False, but with a weight and bias of C like every other
	// norm here, the norms compared at one parameter budget differ only
	// in what they normalise over (at initialisation the two compute the
	// same function). "layernorm" normalises over the C channels at each
	// pixel with a weight and bias of C, as torchvision's LayerNorm2d
	// (ConvNeXt's; eps 1e-5, PyTorch's default, where ConvNeXt passes
	// 1e-6); the RobArch code's nn.LayerNorm(C) applied to an NCHW
	// tensor would normalise over the width axis instead, which is not
	// what is meant. Neither keeps running statistics, so both compute
	// the same in training and evaluation, and folding leaves them alone.
	Norms []string `yaml:"norms,omitempty" json:"norms,omitempty" mapstructure:"norms"`
	// NormGroups is the group count of "groupnorm" (default 32); a layer
	// with C channels uses gcd(NormGroups, C) groups so any width works.
	NormGroups int `yaml:"norm_groups,omitempty" json:"norm_groups,omitempty" mapstructure:"norm_groups"`
	// ShortcutNorm is the norm after a projection shortcut's
	// convolution; "identity" turns it off.
	ShortcutNorm string `yaml:"shortcut_norm,omitempty" json:"shortcut_norm,omitempty" mapstructure:"shortcut_norm"`
	// ShortcutKernel is the projection shortcut's kernel: 1 (the default)
	// or 3 (DeepMind's pre-activation ResNets). A 3×3 shortcut is padded
	// like the block's first convolution (see Padding: one on every side,
	// or none above and left and one below and right at stride 2), so its
	// output lines up with the residual branch's.
	ShortcutKernel int `yaml:"shortcut_kernel,omitempty" json:"shortcut_kernel,omitempty" mapstructure:"shortcut_kernel"`
	// ShortcutInput is what a projection shortcut convolves in
	// pre-activation order: "preactivated" (the default: the block's
	// input after its first norm and activation, as in He et al.'s
	// pre-activation ResNets and wide ResNets) or "raw" (the block's
	// input itself, as RobustBench's DMPreActResNet). Post-activation
	// blocks have nothing before their first convolution, so there it
	// must stay at the default; the default does not depend on the order
	// so that switching the order of a spec keeps it valid.
	ShortcutInput string `yaml:"shortcut_input,omitempty" json:"shortcut_input,omitempty" mapstructure:"shortcut_input"`
	// SERatio > 0 adds squeeze-and-excitation after the k×k convolution
	// (after the second one in basic blocks) with a squeeze width of
	// round(SERatio × block input width).
	SERatio float64 `yaml:"se_ratio,omitempty" json:"se_ratio,omitempty" mapstructure:"se_ratio"`
	// SEActivation is the activation inside squeeze-and-excitation; the
	// parametric activations are not offered there.
	SEActivation string `yaml:"se_activation,omitempty" json:"se_activation,omitempty" mapstructure:"se_activation"`
	// SEWidthFrom is the width the squeeze width is a ratio of: "input"
	// (the default; the block's input width, as RobArch's
	// BottleneckTransform) or "output" (the block's output width, as
	// RobustBench's RaWRN blocks).
	SEWidthFrom string `yaml:"se_width_from,omitempty" json:"se_width_from,omitempty" mapstructure:"se_width_from"`
	// SEPosition is "last" (the default: after the k×k convolution of a
	// bottleneck, after the second convolution of a basic block) or
	// "first" (basic blocks in pre-activation order only: after the first
	// convolution, before the second norm; RobustBench's se_order 1).
	SEPosition string `yaml:"se_position,omitempty" json:"se_position,omitempty" mapstructure:"se_position"`
	// Padding is how a block's first k×k convolution pads: "symmetric"
	// (the default: (k-1)/2·dilation on every side) or "asymmetric"
	// (DeepMind's wide ResNets, which imitate TensorFlow's SAME padding:
	// with stride 2 no row or column above and left and one below and
	// right, with stride 1 one on every side; kernel 3, dilation 1 and
	// strides 1 or 2 only). Asymmetric padding shifts every strided
	// convolution's sampling grid by a pixel, so the two are different
	// functions of the same weights.
	Padding string `yaml:"padding,omitempty" json:"padding,omitempty" mapstructure:"padding"`
	// DenseRatio > 0 adds the outputs of that many earlier blocks of a
	// stage into the input of later blocks and into the stage's output,
	// as the RobArch code's dense_ratio does; it adds no parameters.
	DenseRatio int `yaml:"dense_ratio,omitempty" json:"dense_ratio,omitempty" mapstructure:"dense_ratio"`
}

// The allowed values of the design space's enumerations.
var (
	Activations = []string{"relu", "leaky_relu", "elu", "gelu", "silu", "mish", "softplus", "hardswish", "prelu", "psilu", "pssilu", "identity"}
	// ParametricActivations are the Activations with learnable
	// parameters; SEActivations the ones allowed inside SE (the others).
	ParametricActivations = []string{"prelu", "psilu", "pssilu"}
	SEActivations         = []string{"relu", "leaky_relu", "elu", "gelu", "silu", "mish", "softplus", "hardswish", "identity"}
	Norms                 = []string{"batchnorm", "groupnorm", "instancenorm", "layernorm", "identity"}
	BlockKinds            = []string{"bottleneck", "basic"}
	StemKinds             = []string{"conv", "patchify"}
	Orders                = []string{"post", "pre"}
	Namings               = []string{"robarch", "torchvision", "robustbench-wrn", "robustbench-dm", "robustbench-dm-preact"}
	Paddings              = []string{"symmetric", "asymmetric"}
	SEPositions           = []string{"last", "first"}
	SEWidthRefs           = []string{"input", "output"}
	// ShortcutInputs are the values of Block.ShortcutInput.
	ShortcutInputs = []string{"preactivated", "raw"}
)

// Named values, for code that builds specs.
const (
	Bottleneck        = "bottleneck"
	Basic             = "basic"
	StemConv          = "conv"
	StemPatch         = "patchify"
	PostAct           = "post"
	PreAct            = "pre"
	BatchNorm         = "batchnorm"
	GroupNorm         = "groupnorm"
	InstanceNorm      = "instancenorm"
	LayerNorm         = "layernorm"
	PReLU             = "prelu"
	PSiLU             = "psilu"
	PSSiLU            = "pssilu"
	Identity          = "identity"
	NamingRobArch     = "robarch"
	NamingTorchvision = "torchvision"
	NamingRBWRN       = "robustbench-wrn"
	NamingRBDM        = "robustbench-dm"
	NamingRBDMPreAct  = "robustbench-dm-preact"
	PadSymmetric      = "symmetric"
	PadAsymmetric     = "asymmetric"
	SELast            = "last"
	SEFirst           = "first"
	SEFromInput       = "input"
	SEFromOutput      = "output"
	ShortcutPreAct    = "preactivated"
	ShortcutRaw       = "raw"
)

// Default values filled in by WithDefaults.
const (
	DefaultClasses    = 1000
	DefaultChannels   = 3
	DefaultSize       = 224
	DefaultNormGroups = 32
)

// WithDefaults returns a deep copy of s with unset optional fields filled
// in: naming robarch, input 3×224×224, 1000 classes, stem kind conv with
// kernel 3 and stride 1, stage stride 1, block bottleneck with multiplier
// 0.25 (1 for basic), kernel 3, dilation 1, post-activation, ReLU and batch
// norm at every position, batch norm on the shortcut, ReLU in SE with its
// width from the block input and placed last, symmetric padding, a 1×1
// projection shortcut taking the pre-activated input in pre-activation
// order.
func (s Spec) WithDefaults() Spec {
	s = s.Clone()
	if s.Naming == "" {
		s.Naming = NamingRobArch
	}
	if s.Input.Channels == 0 {
		s.Input.Channels = DefaultChannels
	}
	if s.Input.Height == 0 {
		s.Input.Height = DefaultSize
	}
	if s.Input.Width == 0 {
		s.Input.Width = s.Input.Height
	}
	if s.Classes == 0 {
		s.Classes = DefaultClasses
	}
	if s.Stem.Kind == "" {
		s.Stem.Kind = StemConv
	}
	if s.Stem.Kernel == 0 {
		s.Stem.Kernel = 3
	}
	if s.Stem.Stride == 0 && s.Stem.Kind == StemConv {
		s.Stem.Stride = 1
	}
	for i := range s.Stages {
		st := &s.Stages[i]
		if st.Stride == 0 {
			st.Stride = 1
		}
		if st.Block == "" {
			st.Block = Bottleneck
		}
		if st.BottleneckMultiplier == 0 {
			st.BottleneckMultiplier = 0.25
			if st.Block == Basic {
				st.BottleneckMultiplier = 1
			}
		}
		if st.Kernel == 0 {
			st.Kernel = 3
		}
		if st.Dilation == 0 {
			st.Dilation = 1
		}
	}
	b := &s.Block
	if b.Order == "" {
		b.Order = PostAct
	}
	if len(b.Activations) == 0 {
		b.Activations = []string{"relu", "relu", "relu"}
	}
	if len(b.Norms) == 0 {
		b.Norms = []string{BatchNorm, BatchNorm, BatchNorm}
	}
	if b.NormGroups == 0 {
		b.NormGroups = DefaultNormGroups
	}
	if b.ShortcutNorm == "" {
		b.ShortcutNorm = BatchNorm
	}
	if b.SEActivation == "" {
		b.SEActivation = "relu"
	}
	if b.SEWidthFrom == "" {
		b.SEWidthFrom = SEFromInput
	}
	if b.SEPosition == "" {
		b.SEPosition = SELast
	}
	if b.Padding == "" {
		b.Padding = PadSymmetric
	}
	if b.ShortcutKernel == 0 {
		b.ShortcutKernel = 1
	}
	if b.ShortcutInput == "" {
		b.ShortcutInput = ShortcutPreAct
	}
	return s
}

// Clone returns a deep copy of s (slices are not shared).
func (s Spec) Clone() Spec {
	s.Input.Mean = slices.Clone(s.Input.Mean)
	s.Input.Std = slices.Clone(s.Input.Std)
	s.Stages = slices.Clone(s.Stages)
	s.Block.Activations = slices.Clone(s.Block.Activations)
	s.Block.Norms = slices.Clone(s.Block.Norms)
	return s
}

// SetKernel sets the k×k kernel size of every stage.
func (s *Spec) SetKernel(k int) {
	for i := range s.Stages {
		s.Stages[i].Kernel = k
	}
}

// SetDepths sets the depth of each stage; it panics unless len(depths)
// equals the number of stages (a programming error).
func (s *Spec) SetDepths(depths ...int) {
	if len(depths) != len(s.Stages) {
		panic("arch: SetDepths: one depth per stage")
	}
	for i, d := range depths {
		s.Stages[i].Depth = d
	}
}

// Depths returns the depth of each stage.
func (s Spec) Depths() []int {
	out := make([]int, len(s.Stages))
	for i, st := range s.Stages {
		out[i] = st.Depth
	}
	return out
}

// Widths returns the output width of each stage.
func (s Spec) Widths() []int {
	out := make([]int, len(s.Stages))
	for i, st := range s.Stages {
		out[i] = st.Width
	}
	return out
}

// WidthDepthRatio is the mean of width ÷ depth over every stage but the
// last (the RobArch guideline's measure; the last stage is excluded because
// its depth is typically 1). A one-stage spec gives that stage's ratio;
// stages of depth 0 are skipped.
func WidthDepthRatio(s Spec) float64 {
	stages := s.Stages
	if len(stages) > 1 {
		stages = stages[:len(stages)-1]
	}
	var sum float64
	n := 0
	for _, st := range stages {
		if st.Depth <= 0 {
			continue
		}
		sum += float64(st.Width) / float64(st.Depth)
		n++
	}
	if n == 0 {
		return 0
	}
	return sum / float64(n)
}
