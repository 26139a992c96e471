package paper

import (
	"math"
	"slices"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/sweep"
)

// compareToBaseline turns "the level has the property / the base has
// it" into a prediction: gaining the property should help, losing it hurt.
func compareToBaseline(level, base bool) Direction {
	switch {
	case level && !base:
		return ExpectUp
	case !level && base:
		return ExpectDown
	}
	return Unrelated
}

func sum(xs []int) int {
	n := 0
	for _, x := range xs {
		n += x
	}
	return n
}

// predictDeeperNarrower: more blocks and no stage wider (some narrower)
// at the budget both were fitted to should help; the reverse hurt.
// Whichever factor made the change — depth_width, stage_depths — counts.
func predictDeeperNarrower(base, level arch.Spec) Direction {
	if len(base.Stages) != len(level.Stages) {
		return Unrelated
	}
	db, dl := sum(base.Depths()), sum(level.Depths())
	narrower, wider := false, false
	for i := range base.Stages {
		switch w, wb := level.Stages[i].Width, base.Stages[i].Width; {
		case w < wb:
			narrower = true
		case w > wb:
			wider = true
		}
	}
	switch {
	case dl > db && narrower && !wider:
		return ExpectUp
	case dl < db && wider && !narrower:
		return ExpectDown
	}
	return Unrelated
}

// stage3Heavy: the second-to-last stage is strictly the deepest and the
// last has one block (stage 3 of ResNet-50's four: 5,8,13,1). Equal
// depths everywhere are not stage-3-heavy.
func stage3Heavy(ds []int) bool {
	n := len(ds)
	if n < 2 || ds[n-1] != 1 {
		return false
	}
	for i, d := range ds {
		if i != n-2 && d >= ds[n-2] {
			return false
		}
	}
	return true
}

func predictStageDepths(base, level arch.Spec) Direction {
	if slices.Equal(base.Depths(), level.Depths()) {
		return Unrelated
	}
	return compareToBaseline(stage3Heavy(level.Depths()), stage3Heavy(base.Depths()))
}

func allEqual(xs []int, v int) bool {
	for _, x := range xs {
		if x != v {
			return false
		}
	}
	return len(xs) > 0
}

func predictTwoGroups(base, level arch.Spec) Direction {
	gb, gl := sweep.GroupsOf(base), sweep.GroupsOf(level)
	if slices.Equal(gb, gl) {
		return Unrelated
	}
	return compareToBaseline(allEqual(gl, 2), allEqual(gb, 2))
}

func predictWideStem(base, level arch.Spec) Direction {
	if base.Stem.Kind != level.Stem.Kind {
		return Unrelated
	}
	switch {
	case level.Stem.Width > base.Stem.Width:
		return ExpectUp
	case level.Stem.Width < base.Stem.Width:
		return ExpectDown
	}
	return Unrelated
}

// downsampling is the cumulative downsampling after the stem and after
// every stage.
func downsampling(s arch.Spec) []int {
	f := s.Stem.Kernel // patchify: stride = kernel
	if s.Stem.Kind == arch.StemConv {
		f = max(1, s.Stem.Stride)
		if s.Stem.MaxPool {
			f *= 2
		}
	}
	out := []int{f}
	for _, st := range s.Stages {
		f *= max(1, st.Stride)
		out = append(out, f)
	}
	return out
}

// predictPostponed: the same total downsampling, done no earlier anywhere
// and later somewhere (RobArch: max-pool removed, stride 2 moved into
// stage 1) should help; the reverse hurt. Stems of different kinds are
// the conv-stem finding's business.
func predictPostponed(base, level arch.Spec) Direction {
	if base.Stem.Kind != level.Stem.Kind {
		return Unrelated
	}
	fb, fl := downsampling(base), downsampling(level)
	if len(fb) != len(fl) || fb[len(fb)-1] != fl[len(fl)-1] || slices.Equal(fb, fl) {
		return Unrelated
	}
	later, earlier := false, false
	for i := range fb {
		switch {
		case fl[i] < fb[i]:
			later = true
		case fl[i] > fb[i]:
			earlier = true
		}
	}
	switch {
	case later && !earlier:
		return ExpectUp
	case earlier && !later:
		return ExpectDown
	}
	return Unrelated
}

func predictConvStem(base, level arch.Spec) Direction {
	switch {
	case base.Stem.Kind == arch.StemConv && level.Stem.Kind == arch.StemPatch:
		return ExpectDown
	case base.Stem.Kind == arch.StemPatch && level.Stem.Kind == arch.StemConv:
		return ExpectUp
	}
	return Unrelated
}

// stageValues is one field of every stage, for comparisons.
func stageValues(s arch.Spec, field func(arch.Stage) int) []int {
	out := make([]int, len(s.Stages))
	for i, st := range s.Stages {
		out[i] = field(st)
	}
	return out
}

func predictSmallKernel(base, level arch.Spec) Direction {
	kernel := func(st arch.Stage) int { return st.Kernel }
	kb, kl := stageValues(base, kernel), stageValues(level, kernel)
	switch {
	case slices.Equal(kb, kl):
		return Unrelated
	case allEqual(kb, 3) && slices.Max(kl) > 3 && slices.Min(kl) >= 3:
		return ExpectNoGain
	case allEqual(kl, 3) && slices.Min(kb) >= 3:
		return ExpectUp
	}
	return Unrelated
}

func predictNoDilation(base, level arch.Spec) Direction {
	dil := func(st arch.Stage) int { return st.Dilation }
	db, dl := stageValues(base, dil), stageValues(level, dil)
	if allEqual(db, 1) && !allEqual(dl, 1) && slices.Min(dl) >= 1 {
		return ExpectNoGain
	}
	return Unrelated
}

// smoothActivations are the smooth, non-parametric activations of the
// design space (SiLU as RobArch adopts; GELU, softplus and Mish as in
// Smooth Adversarial Training).
var smoothActivations = []string{"silu", "gelu", "softplus", "mish"}

func allIn(xs []string, set ...string) bool {
	for _, x := range xs {
		if !slices.Contains(set, x) {
			return false
		}
	}
	return len(xs) > 0
}

func predictSmoothActivation(base, level arch.Spec) Direction {
	ab, al := base.Block.Activations, level.Block.Activations
	switch {
	case slices.Equal(ab, al):
		return Unrelated
	case allIn(ab, "relu") && allIn(al, smoothActivations...):
		return ExpectUp
	case allIn(ab, smoothActivations...) && allIn(al, "relu"):
		return ExpectDown
	}
	return Unrelated
}

// plainCounterpart maps a parametric activation to the plain one it
// generalises (PReLU's slope 0 is ReLU; PSiLU's and PSSiLU's alpha 1 and
// beta 0 are SiLU).
var plainCounterpart = map[string]string{"prelu": "relu", "psilu": "silu", "pssilu": "silu"}

// predictParametric: a level whose activations differ from the base's
// only by parametric versions of the same function should not gain.
func predictParametric(base, level arch.Spec) Direction {
	ab, al := base.Block.Activations, level.Block.Activations
	if len(ab) != len(al) || slices.Equal(ab, al) {
		return Unrelated
	}
	for i := range ab {
		if ab[i] == al[i] {
			continue
		}
		if plainCounterpart[al[i]] != ab[i] {
			return Unrelated
		}
	}
	return ExpectNoGain
}

func isPaperSE(r float64) bool { return math.Abs(r-0.25) < 1e-9 }

func predictSE(base, level arch.Spec) Direction {
	rb, rl := base.Block.SERatio, level.Block.SERatio
	switch {
	case rb == 0 && isPaperSE(rl):
		return ExpectUp
	case isPaperSE(rb) && rl == 0:
		return ExpectDown
	}
	return Unrelated
}

// blockNorms counts the normalization layers of a block's three
// positions and lists the kinds used.
func blockNorms(s arch.Spec) (int, []string) {
	n := 0
	var kinds []string
	for _, x := range s.Block.Norms {
		if x != arch.Identity {
			n++
			if !slices.Contains(kinds, x) {
				kinds = append(kinds, x)
			}
		}
	}
	slices.Sort(kinds)
	return n, kinds
}

// predictFewerNorms: fewer norms of the same kind in each block (at least
// one left) should help, more hurt.
func predictFewerNorms(base, level arch.Spec) Direction {
	nb, kb := blockNorms(base)
	nl, kl := blockNorms(level)
	if !slices.Equal(kb, kl) || nl == 0 || nb == 0 {
		return Unrelated
	}
	switch {
	case nl < nb:
		return ExpectUp
	case nl > nb:
		return ExpectDown
	}
	return Unrelated
}

// predictNormType: batch norm replaced by another norm at the same
// positions should not gain.
func predictNormType(base, level arch.Spec) Direction {
	nb, nl := base.Block.Norms, level.Block.Norms
	if len(nb) != len(nl) || slices.Equal(nb, nl) {
		return Unrelated
	}
	for i := range nb {
		if (nb[i] == arch.Identity) != (nl[i] == arch.Identity) {
			return Unrelated
		}
		if nb[i] != nl[i] && nb[i] != arch.BatchNorm {
			return Unrelated
		}
	}
	return ExpectNoGain
}

func predictBottleneck(base, level arch.Spec) Direction {
	mult := func(s arch.Spec) []float64 {
		out := make([]float64, len(s.Stages))
		for i, st := range s.Stages {
			out[i] = st.BottleneckMultiplier
		}
		return out
	}
	mb, ml := mult(base), mult(level)
	if slices.Equal(mb, ml) || !allBlocks(base, arch.Bottleneck) || !allBlocks(level, arch.Bottleneck) {
		return Unrelated
	}
	for _, m := range mb {
		if m != 0.25 {
			return Unrelated
		}
	}
	return ExpectNoGain
}

func predictNoPreact(base, level arch.Spec) Direction {
	if base.Block.Order == arch.PostAct && level.Block.Order == arch.PreAct {
		return ExpectNoGain
	}
	return Unrelated
}

// denseActive: RobArch's dense connections only touch stages of three or
// more blocks (the stage output sums features from the third block on).
func denseActive(s arch.Spec) bool {
	return s.Block.DenseRatio > 0 && slices.Max(s.Depths()) >= 3
}

func predictNoDense(base, level arch.Spec) Direction {
	if !denseActive(base) && denseActive(level) {
		return ExpectNoGain
	}
	return Unrelated
}

// predictShortcutStem: dropping the projection shortcut's batch norm, or
// a conv stem kernel other than the base's, should not gain.
func predictShortcutStem(base, level arch.Spec) Direction {
	switch {
	case base.Block.ShortcutNorm == arch.BatchNorm && level.Block.ShortcutNorm == arch.Identity:
		return ExpectNoGain
	case base.Stem.Kind == arch.StemConv && level.Stem.Kind == arch.StemConv && base.Stem.Kernel != level.Stem.Kernel:
		return ExpectNoGain
	}
	return Unrelated
}
