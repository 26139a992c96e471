package sweep

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/robarch/robarch/arch"
)

// Reading a sweep's levels back, for whoever analyses its trials: a random
// sample's Level string (this package writes it) and the part of a spec a
// factor's level set (Transplant), so that no reader needs a level parser
// of its own.

// A FactorLevel is one factor's level in a random sample.
type FactorLevel struct {
	Factor, Level string
}

// SampleLevel is the Level of a random sample's trials: every factor's
// level as "name=level;name=level", in the order given (the sweep file's).
func SampleLevel(levels []FactorLevel) string {
	parts := make([]string, len(levels))
	for i, l := range levels {
		parts[i] = l.Factor + "=" + l.Level
	}
	return strings.Join(parts, ";")
}

// ParseSample reads a random sample's Level ("kernel=5;activation=silu")
// back into every factor's level.
func ParseSample(level string) (map[string]string, error) {
	out := map[string]string{}
	for part := range strings.SplitSeq(level, ";") {
		name, value, ok := strings.Cut(part, "=")
		name, value = strings.TrimSpace(name), strings.TrimSpace(value)
		if !ok || name == "" || value == "" {
			return nil, fmt.Errorf("random sample level %q: want factor=level pairs separated by ';'", level)
		}
		out[name] = value
	}
	return out, nil
}

// ErrUnknownFactor is returned (wrapped) for a factor name this package
// does not define.
var ErrUnknownFactor = errors.New("unknown factor")

func lookup(name string) (factor, error) {
	f, ok := factors[name]
	if !ok {
		return factor{}, fmt.Errorf("factor %q: %w (want one of %s)", name, ErrUnknownFactor, strings.Join(FactorNames(), ", "))
	}
	return f, nil
}

// Spec parts: what of a network the factors control. Transplanting two
// factors that control the same part cannot both be kept.
const (
	PartDepths      = "depths"
	PartKernel      = "kernel"
	PartDilation    = "dilation"
	PartBottleneck  = "bottleneck"
	PartGroups      = "groups"
	PartActivations = "activations"
	PartSE          = "se"
	PartNorms       = "norms"
	PartStemWidth   = "stem.width"
	PartStemLayout  = "stem.layout"
	PartStemKernel  = "stem.kernel"
	PartStrides     = "strides"
	PartDense       = "dense"
	PartOrder       = "order"
)

// AllParts lists every part a factor can control, in a fixed order.
var AllParts = []string{PartDepths, PartKernel, PartDilation, PartBottleneck, PartGroups, PartActivations, PartSE,
	PartNorms, PartStemWidth, PartStemLayout, PartStemKernel, PartStrides, PartDense, PartOrder}

// Parts lists the parts of a network the factor controls.
func Parts(name string) ([]string, error) {
	f, err := lookup(name)
	if err != nil {
		return nil, err
	}
	return slices.Clone(f.parts), nil
}

// Transplant copies the parts of a spec the factor controls from donor (a
// spec built at one of its levels, as stored with a trial) into dst, so
// that a recommendation or a comparison follows whatever the planner did
// without parsing the level. groups holds the number of groups of every
// stage's k×k convolution (GroupsOf(*dst)): the group_width factor
// transplants group counts, not group widths, since a later refit
// changes widths; the caller turns them back into widths. It fails for an
// unknown factor (ErrUnknownFactor) and when donor's stages do not match
// dst's.
func Transplant(name string, dst *arch.Spec, groups []int, donor arch.Spec) error {
	f, err := lookup(name)
	if err != nil {
		return err
	}
	return f.transplant(dst, donor, groups)
}

// GroupsOf returns the number of groups of every stage's k×k convolution.
func GroupsOf(s arch.Spec) []int {
	out := make([]int, len(s.Stages))
	for i, st := range s.Stages {
		out[i] = 1
		if st.Block == arch.Basic {
			out[i] = max(1, st.Groups)
			continue
		}
		bw := arch.BottleneckWidth(st.Width, st.BottleneckMultiplier)
		if st.GroupWidth > 0 && bw > 0 {
			out[i] = bw / st.GroupWidth
		}
	}
	return out
}

// errStages is what a transplant between networks of different stage
// counts says (in the words of the recommendation, its first reader).
var errStages = errors.New("the winning variant has a different number of stages")

// The transplants of the factors (factors.go names each one's).

func copyDepths(dst *arch.Spec, donor arch.Spec, _ []int) error {
	if len(donor.Stages) != len(dst.Stages) {
		return errStages
	}
	dst.SetDepths(donor.Depths()...)
	return nil
}

func perStage(f func(d *arch.Stage, s arch.Stage)) func(*arch.Spec, arch.Spec, []int) error {
	return func(dst *arch.Spec, donor arch.Spec, _ []int) error {
		if len(donor.Stages) != len(dst.Stages) {
			return errStages
		}
		for i := range dst.Stages {
			f(&dst.Stages[i], donor.Stages[i])
		}
		return nil
	}
}

// copyWhole replaces everything but the input and classes: a whole
// alternative network.
func copyWhole(dst *arch.Spec, d arch.Spec, groups []int) error {
	in, classes := dst.Input, dst.Classes
	*dst = d.Clone()
	dst.Input, dst.Classes = in, classes
	if len(groups) != len(d.Stages) {
		return errStages
	}
	copy(groups, GroupsOf(d))
	return nil
}

func copyGroups(dst *arch.Spec, donor arch.Spec, groups []int) error {
	if len(donor.Stages) != len(dst.Stages) {
		return errStages
	}
	copy(groups, GroupsOf(donor))
	return nil
}

func copyStemType(dst *arch.Spec, d arch.Spec, _ []int) error {
	w := dst.Stem.Width
	dst.Stem = d.Stem
	dst.Stem.Width = w
	return nil
}

func copyDownsampling(dst *arch.Spec, d arch.Spec, _ []int) error {
	if len(d.Stages) != len(dst.Stages) {
		return errStages
	}
	dst.Stem.MaxPool = d.Stem.MaxPool
	for i := range dst.Stages {
		dst.Stages[i].Stride = d.Stages[i].Stride
	}
	return nil
}

// copyBlock copies one field of the block settings.
func copyBlock(f func(d *arch.Block, s arch.Block)) func(*arch.Spec, arch.Spec, []int) error {
	return func(dst *arch.Spec, donor arch.Spec, _ []int) error {
		f(&dst.Block, donor.Block)
		return nil
	}
}
