package arch

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// FieldError is one invalid field of a Spec: its path (as in the YAML
// file, e.g. "stages[2].group_width"), the value found and what is allowed.
type FieldError struct {
	Field   string
	Value   any
	Allowed string
}

func (e *FieldError) Error() string {
	return fmt.Sprintf("%s: %v is invalid; want %s", e.Field, e.Value, e.Allowed)
}

// ValidationError lists every invalid field of a spec.
type ValidationError struct {
	Name   string
	Fields []*FieldError
}

func (e *ValidationError) Error() string {
	msgs := make([]string, len(e.Fields))
	for i, f := range e.Fields {
		msgs[i] = f.Error()
	}
	name := ""
	if e.Name != "" {
		name = " " + e.Name
	}
	return fmt.Sprintf("invalid spec%s: %s", name, strings.Join(msgs, "; "))
}

// Unwrap exposes the field errors to errors.Is/As.
func (e *ValidationError) Unwrap() []error {
	out := make([]error, len(e.Fields))
	for i, f := range e.Fields {
		out[i] = f
	}
	return out
}

type checker struct{ errs []*FieldError }

func (c *checker) fail(field string, value any, allowed string, args ...any) {
	c.errs = append(c.errs, &FieldError{Field: field, Value: value, Allowed: fmt.Sprintf(allowed, args...)})
}

func (c *checker) oneOf(field, value string, allowed []string) {
	if !slices.Contains(allowed, value) {
		c.fail(field, fmt.Sprintf("%q", value), "one of %s", strings.Join(allowed, ", "))
	}
}

func (c *checker) positive(field string, v int) {
	if v < 1 {
		c.fail(field, v, "an integer >= 1")
	}
}

// Validate checks a spec whose defaults are filled in (see WithDefaults)
// and returns a *ValidationError naming every bad field and its allowed
// values, or nil.
func (s Spec) Validate() error {
	var c checker
	c.oneOf("naming", s.Naming, Namings)
	s.checkInput(&c)
	c.positive("classes", s.Classes)
	s.checkStem(&c)
	if len(s.Stages) == 0 {
		c.fail("stages", "[]", "at least one stage")
	}
	for i := range s.Stages {
		s.checkStage(&c, i)
	}
	s.checkBlock(&c)
	s.checkNaming(&c)
	if len(c.errs) > 0 {
		return &ValidationError{Name: s.Name, Fields: c.errs}
	}
	return nil
}

// checkInput checks the input's size and its normalization.
func (s Spec) checkInput(c *checker) {
	in := s.Input
	c.positive("input.channels", in.Channels)
	c.positive("input.height", in.Height)
	c.positive("input.width", in.Width)
	if len(in.Mean) != len(in.Std) {
		c.fail("input.std", in.Std, "as many values as input.mean (%d)", len(in.Mean))
	}
	if len(in.Mean) != 0 && len(in.Mean) != in.Channels {
		c.fail("input.mean", in.Mean, "one value per input channel (%d) or none", in.Channels)
	}
	for i, v := range in.Std {
		if v <= 0 {
			c.fail(fmt.Sprintf("input.std[%d]", i), v, "a value > 0")
		}
	}
}

// checkStem checks the stem: a convolution with an odd kernel, or a
// patchify convolution whose stride is its kernel and has no max-pool.
func (s Spec) checkStem(c *checker) {
	st := s.Stem
	c.oneOf("stem.kind", st.Kind, StemKinds)
	c.positive("stem.width", st.Width)
	switch st.Kind {
	case StemConv:
		if st.Kernel < 1 || st.Kernel%2 == 0 {
			c.fail("stem.kernel", st.Kernel, "an odd integer >= 1")
		}
		c.positive("stem.stride", st.Stride)
	case StemPatch:
		c.positive("stem.kernel", st.Kernel)
		if st.Stride != 0 && st.Stride != st.Kernel {
			c.fail("stem.stride", st.Stride, "0 or stem.kernel (%d): a patchify stem's stride is its kernel", st.Kernel)
		}
		if st.MaxPool {
			c.fail("stem.max_pool", st.MaxPool, "false with a patchify stem")
		}
	}
}

// checkStage checks stage i: the fields every stage has, then those its
// block kind constrains.
func (s Spec) checkStage(c *checker, i int) {
	sg := s.Stages[i]
	f := func(name string) string { return fmt.Sprintf("stages[%d].%s", i, name) }
	c.positive(f("depth"), sg.Depth)
	c.positive(f("width"), sg.Width)
	c.positive(f("stride"), sg.Stride)
	c.oneOf(f("block"), sg.Block, BlockKinds)
	if sg.Kernel < 1 || sg.Kernel%2 == 0 {
		c.fail(f("kernel"), sg.Kernel, "an odd integer >= 1")
	}
	c.positive(f("dilation"), sg.Dilation)
	if sg.GroupWidth < 0 {
		c.fail(f("group_width"), sg.GroupWidth, "0 (one group) or a divisor of the bottleneck width")
	}
	if sg.Groups < 0 {
		c.fail(f("groups"), sg.Groups, "0 or 1 (one group) or a number of groups dividing the block widths")
	}
	switch sg.Block {
	case Basic:
		s.checkBasicStage(c, i, f)
	case Bottleneck:
		checkBottleneckStage(c, sg, f)
	}
}

// checkBasicStage checks the grouping and bottleneck fields of a stage of
// basic blocks; f names stage i's fields.
func (s Spec) checkBasicStage(c *checker, i int, f func(string) string) {
	sg := s.Stages[i]
	if sg.Groups > 1 {
		// Both convolutions are grouped: the first sees the
		// stage's input width, both produce Width channels.
		in := s.Stem.Width
		if i > 0 {
			in = s.Stages[i-1].Width
		}
		if sg.Width%sg.Groups != 0 || (sg.Depth > 0 && in%sg.Groups != 0) {
			c.fail(f("groups"), sg.Groups, "a divisor of the stage width %d and of its input width %d", sg.Width, in)
		}
	}
	if sg.BottleneckMultiplier != 1 {
		c.fail(f("bottleneck_multiplier"), sg.BottleneckMultiplier, "1 (or unset) for basic blocks")
	}
	if sg.GroupWidth != 0 {
		c.fail(f("group_width"), sg.GroupWidth, "0 (or unset) for basic blocks, which have no grouped convolution")
	}
}

// checkBottleneckStage checks the grouping and bottleneck width of a stage
// of bottleneck blocks; f names its fields.
func checkBottleneckStage(c *checker, sg Stage, f func(string) string) {
	if sg.Groups > 1 {
		c.fail(f("groups"), sg.Groups, "0 (or unset) for bottleneck blocks, whose groups come from group_width")
	}
	if sg.BottleneckMultiplier <= 0 {
		c.fail(f("bottleneck_multiplier"), sg.BottleneckMultiplier, "a value > 0")
		return
	}
	mid := BottleneckWidth(sg.Width, sg.BottleneckMultiplier)
	if mid < 1 {
		c.fail(f("bottleneck_multiplier"), sg.BottleneckMultiplier, "a value giving a bottleneck width round(%d × m) >= 1", sg.Width)
		return
	}
	if sg.GroupWidth > 0 && (sg.GroupWidth > mid || mid%sg.GroupWidth != 0) {
		c.fail(f("group_width"), sg.GroupWidth, "0 or a divisor of the bottleneck width %d (width %d × multiplier %g)", mid, sg.Width, sg.BottleneckMultiplier)
	}
}

// checkBlock checks the block fields shared by every stage: order,
// activations and norms, then squeeze-and-excitation, padding, the
// shortcut and dense connections.
func (s Spec) checkBlock(c *checker) {
	b := s.Block
	c.oneOf("block.order", b.Order, Orders)
	if len(b.Activations) != 3 {
		c.fail("block.activations", b.Activations, "3 activations (after the first conv, the k×k conv, the residual add)")
	}
	for i, a := range b.Activations {
		c.oneOf(fmt.Sprintf("block.activations[%d]", i), a, Activations)
	}
	if len(b.Norms) != 3 {
		c.fail("block.norms", b.Norms, "3 norms (after the first conv, the k×k conv, the last conv)")
	}
	for i, n := range b.Norms {
		c.oneOf(fmt.Sprintf("block.norms[%d]", i), n, Norms)
	}
	c.positive("block.norm_groups", b.NormGroups)
	c.oneOf("block.shortcut_norm", b.ShortcutNorm, Norms)
	s.checkSE(c)
	s.checkPadding(c)
	if b.ShortcutKernel != 1 && b.ShortcutKernel != 3 {
		c.fail("block.shortcut_kernel", b.ShortcutKernel, "1 or 3")
	}
	c.oneOf("block.shortcut_input", b.ShortcutInput, ShortcutInputs)
	if b.ShortcutInput == ShortcutRaw && b.Order != PreAct {
		c.fail("block.shortcut_input", fmt.Sprintf("%q", b.ShortcutInput), "preactivated (the default) in post-activation order, whose shortcut always sees the block's input")
	}
	if b.DenseRatio < 0 {
		c.fail("block.dense_ratio", b.DenseRatio, "0 (off) or a number of earlier blocks >= 1")
	}
	s.checkSEWidths(c)
}

// checkSE checks squeeze-and-excitation's ratio, activation, width
// reference and position.
func (s Spec) checkSE(c *checker) {
	b := s.Block
	if b.SERatio < 0 {
		c.fail("block.se_ratio", b.SERatio, "0 (off) or a value > 0")
	}
	if slices.Contains(ParametricActivations, b.SEActivation) {
		c.fail("block.se_activation", fmt.Sprintf("%q", b.SEActivation), "one of %s (parametric activations are not offered inside squeeze-and-excitation)", strings.Join(SEActivations, ", "))
	} else {
		c.oneOf("block.se_activation", b.SEActivation, SEActivations)
	}
	c.oneOf("block.se_width_from", b.SEWidthFrom, SEWidthRefs)
	c.oneOf("block.se_position", b.SEPosition, SEPositions)
	if b.SEPosition == SEFirst && b.SERatio > 0 {
		for i, sg := range s.Stages {
			if sg.Block != Basic || b.Order != PreAct {
				c.fail("block.se_position", fmt.Sprintf("%q", b.SEPosition), "last, unless every block is basic in pre-activation order (stages[%d] is %s, order %s)", i, sg.Block, b.Order)
				break
			}
		}
	}
}

// checkPadding checks the padding mode: asymmetric padding is for 3×3
// undilated convolutions of stride 1 or 2 only.
func (s Spec) checkPadding(c *checker) {
	b := s.Block
	c.oneOf("block.padding", b.Padding, Paddings)
	if b.Padding != PadAsymmetric {
		return
	}
	for i, sg := range s.Stages {
		if sg.Kernel != 3 || sg.Dilation != 1 || sg.Stride > 2 {
			c.fail("block.padding", fmt.Sprintf("%q", b.Padding), "symmetric unless every stage has kernel 3, dilation 1 and stride 1 or 2 (stages[%d] has kernel %d, dilation %d, stride %d)", i, sg.Kernel, sg.Dilation, sg.Stride)
			return
		}
	}
}

// checkSEWidths checks that squeeze-and-excitation's ratio leaves every
// block a squeeze width >= 1; that width depends on each block's input
// (or output) width.
func (s Spec) checkSEWidths(c *checker) {
	b := s.Block
	if b.SERatio <= 0 {
		return
	}
	in := s.Stem.Width
	for i, sg := range s.Stages {
		widths := []int{in, sg.Width}
		if b.SEWidthFrom == SEFromOutput {
			widths = []int{sg.Width}
		}
		for _, w := range widths {
			if sg.Depth > 0 && SEWidth(b.SERatio, w) < 1 {
				c.fail("block.se_ratio", b.SERatio, "a ratio giving a squeeze width >= 1 (stages[%d] has blocks of input width %d)", i, w)
				return
			}
		}
		in = sg.Width
	}
}

// Check fills in s's defaults, validates it and checks that its input
// size survives every downsampling; it returns nil for a spec that can be
// counted and built.
func Check(s Spec) error {
	_, err := Resolve(s)
	return err
}

// IsValidation reports whether err is (or wraps) a *ValidationError.
func IsValidation(err error) bool {
	var v *ValidationError
	return errors.As(err, &v)
}

// checkNaming rejects specs that RobustBench's ResNet classes cannot
// express, so that every layer has a name in their state dicts: the three
// namings want pre-activation basic blocks with a bare projection
// shortcut and a plain convolutional stem; the classic WideResNet and
// DMPreActResNet have no squeeze-and-excitation.
func (s Spec) checkNaming(c *checker) {
	if s.Naming != NamingRBWRN && s.Naming != NamingRBDM && s.Naming != NamingRBDMPreAct {
		return
	}
	why := func(field string, value any, allowed string) {
		c.fail(field, value, "%s with naming %s", allowed, s.Naming)
	}
	if s.Block.Order != PreAct {
		why("block.order", fmt.Sprintf("%q", s.Block.Order), "pre")
	}
	for i, sg := range s.Stages {
		if sg.Block != Basic {
			why(fmt.Sprintf("stages[%d].block", i), fmt.Sprintf("%q", sg.Block), "basic")
		}
	}
	if s.Block.ShortcutNorm != Identity {
		why("block.shortcut_norm", fmt.Sprintf("%q", s.Block.ShortcutNorm), "identity (a bare convolution)")
	}
	if s.Stem.Kind != StemConv || s.Stem.MaxPool {
		why("stem", fmt.Sprintf("%s, max_pool %v", s.Stem.Kind, s.Stem.MaxPool), "a conv stem without max-pool")
	}
	if s.Block.DenseRatio != 0 {
		why("block.dense_ratio", s.Block.DenseRatio, "0")
	}
	if s.Naming == NamingRBWRN && s.Block.SERatio != 0 {
		why("block.se_ratio", s.Block.SERatio, "0 (the classic WideResNet has no SE; use robustbench-dm)")
	}
	// The wide ResNets' shortcut is a 1×1 convolution of the
	// pre-activated input; DMPreActResNet's a 3×3 one of the raw input.
	// Both would load into the other's names with the wrong function or
	// shapes, so each naming fixes its own.
	kernel, input := 1, ShortcutPreAct
	if s.Naming == NamingRBDMPreAct {
		kernel, input = 3, ShortcutRaw
		if s.Block.SERatio != 0 {
			why("block.se_ratio", s.Block.SERatio, "0 (DMPreActResNet has no SE)")
		}
		for i, sg := range s.Stages {
			if sg.Groups > 1 {
				why(fmt.Sprintf("stages[%d].groups", i), sg.Groups, "0 or 1 (DMPreActResNet has no grouped convolutions)")
			}
		}
	}
	if s.Block.ShortcutKernel != kernel {
		why("block.shortcut_kernel", s.Block.ShortcutKernel, fmt.Sprint(kernel))
	}
	if s.Block.ShortcutInput != input {
		why("block.shortcut_input", fmt.Sprintf("%q", s.Block.ShortcutInput), input)
	}
}
