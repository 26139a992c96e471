package guidelines

import (
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
)

// PaperRatioBand is the width-to-depth ratio range the RobArch paper
// recommends (mean of width ÷ depth over all stages but the last).
var PaperRatioBand = [2]float64{7.5, 13.5}

// PaperSource names where the built-in findings come from.
const PaperSource = "Peng et al. 2023, RobArch: Designing Robust Architectures against Adversarial Attacks (arXiv:2301.03110)"

// direction is what a finding predicts for one level relative to the
// baseline.
type direction int

const (
	unrelated    direction = iota // the level does not bear on the finding
	expectUp                      // robust accuracy should rise
	expectDown                    // robust accuracy should fall
	expectNoGain                  // robust accuracy should not rise
)

func (d direction) String() string {
	switch d {
	case expectUp:
		return "expected to help"
	case expectDown:
		return "expected to hurt"
	case expectNoGain:
		return "expected no gain"
	}
	return "unrelated"
}

// Finding is one of the RobArch paper's findings, mapped to the factors
// and levels of this package.
type Finding struct {
	ID      string
	Claim   string
	Factors []string
	// expect says what the finding predicts for a level, given the
	// baseline (nil when the store holds no baseline spec).
	expect func(level string, base *arch.Spec) direction
	// custom evaluates findings that are not about single levels.
	custom func(a *Analysis) FindingResult
}

// FindingResult is a finding's outcome in this sweep.
type FindingResult struct {
	ID       string   `json:"id"`
	Claim    string   `json:"claim"`
	Factors  []string `json:"factors"`
	Outcome  string   `json:"outcome"` // agrees, disagrees, inconclusive, not tested by this sweep
	Summary  string   `json:"summary"`
	Evidence []string `json:"evidence,omitempty"`
}

// Findings returns the built-in table of the paper's findings.
func Findings() []Finding {
	return []Finding{
		{ID: "deeper-narrower", Claim: "At a fixed parameter budget, deeper and narrower networks are more robust than shallower, wider ones.",
			Factors: []string{sweep.FactorDepthWidth}, expect: expectDepthWidth},
		{ID: "width-depth-ratio", Claim: "Robust networks have a width-to-depth ratio of about 7.5 to 13.5 (mean of width ÷ depth over all stages but the last).",
			Factors: []string{sweep.FactorDepthWidth, sweep.FactorStageDepths}, custom: ratioFinding},
		{ID: "stage-depths", Claim: "Put most of the depth in stage 3 (the second-to-last stage) and a single block in the last stage.",
			Factors: []string{sweep.FactorStageDepths}, expect: expectStageDepths},
		{ID: "two-groups", Claim: "Convolutions with 2 groups in the k×k layer of each block help robustness.",
			Factors: []string{sweep.FactorGroupWidth}, expect: expectTwoGroups},
		{ID: "wide-stem", Claim: "A wider stem (96 channels instead of ResNet-50's 64) helps robustness.",
			Factors: []string{sweep.FactorStemWidth}, expect: expectWideStem},
		{ID: "postponed-downsampling", Claim: "Postponing downsampling (no max-pool in the stem; stride 2 in the first stage instead) helps robustness.",
			Factors: []string{sweep.FactorDownsample}, expect: expectPostponed},
		{ID: "conv-stem", Claim: "A convolutional stem is more robust than a patchify stem.",
			Factors: []string{sweep.FactorStemType}, expect: expectConvStem},
		{ID: "kernel-3x3", Claim: "3×3 kernels in the blocks; larger kernels do not improve robustness at a fixed budget.",
			Factors: []string{sweep.FactorKernel}, expect: expectSmallKernel},
		{ID: "smooth-activation", Claim: "SiLU or GELU activations are more robust than ReLU.",
			Factors: []string{sweep.FactorActivation}, expect: expectSmoothActivation},
		{ID: "parametric-activation", Claim: "Parametric activations (e.g. PReLU, parametric shifted SiLU) are no better than their plain counterparts.",
			Factors: []string{sweep.FactorActivation}, expect: expectParametric},
		{ID: "se-0.25", Claim: "Squeeze-and-excitation with ratio 0.25 helps robustness.",
			Factors: []string{sweep.FactorSERatio}, expect: expectSE},
		{ID: "fewer-norms", Claim: "Fewer normalization layers in each block help robustness.",
			Factors: []string{sweep.FactorNorm}, expect: expectFewerNorms},
		{ID: "no-preact", Claim: "Pre-activation blocks do not improve robustness (not adopted).",
			Factors: []string{sweep.FactorPreact}, expect: expectNoPreact},
		{ID: "no-dense", Claim: "Dense connections within stages do not improve robustness (not adopted).",
			Factors: []string{sweep.FactorDenseRatio}, expect: expectNoDense},
	}
}

// compareFindings evaluates every built-in finding against the effects.
func (a *Analysis) compareFindings() []FindingResult {
	base := a.baselineSpec()
	var out []FindingResult
	for _, f := range Findings() {
		var r FindingResult
		if f.custom != nil {
			r = f.custom(a)
		} else {
			r = a.levelFinding(f, base)
		}
		r.ID, r.Claim, r.Factors = f.ID, f.Claim, f.Factors
		out = append(out, r)
	}
	return out
}

// baselineSpec decodes the baseline's spec, or nil when the store has
// none that decodes.
func (a *Analysis) baselineSpec() *arch.Spec {
	if a.Baseline == nil || len(a.Baseline.Spec) == 0 {
		return nil
	}
	var s arch.Spec
	if err := json.Unmarshal(a.Baseline.Spec, &s); err != nil {
		return nil
	}
	s = s.WithDefaults()
	return &s
}

func (a *Analysis) testedLevels(factors []string) []string {
	var out []string
	for _, e := range a.Effects {
		if slices.Contains(factors, e.Factor) {
			out = append(out, e.Label())
		}
	}
	return out
}

func (a *Analysis) levelFinding(f Finding, base *arch.Spec) FindingResult {
	var agree, disagree, open int
	var r FindingResult
	for _, e := range a.Effects {
		if !slices.Contains(f.Factors, e.Factor) {
			continue
		}
		d := f.expect(e.Level, base)
		if d == unrelated {
			continue
		}
		outcome := judgeLevel(d, e.Verdict)
		switch outcome {
		case Agrees:
			agree++
		case Disagrees:
			disagree++
		default:
			open++
		}
		r.Evidence = append(r.Evidence, fmt.Sprintf("%s: %s; %s, %s → %s", e.Label(), a.describe(e), d, e.Verdict, outcome))
	}
	switch {
	case agree+disagree+open == 0:
		r.Outcome = NotTested
		if tested := a.testedLevels(f.Factors); len(tested) > 0 {
			r.Summary = fmt.Sprintf("the sweep's levels (%s) do not bear on this finding", strings.Join(tested, ", "))
		} else {
			r.Summary = fmt.Sprintf("the sweep did not vary %s", strings.Join(f.Factors, " or "))
		}
	case agree > 0 && disagree == 0:
		r.Outcome = Agrees
	case disagree > 0 && agree == 0:
		r.Outcome = Disagrees
	default:
		r.Outcome = NotConclusive
	}
	if r.Summary == "" {
		r.Summary = fmt.Sprintf("%d level(s) agree, %d disagree, %d inconclusive", agree, disagree, open)
	}
	return r
}

// judgeLevel compares one level's verdict with the finding's prediction.
// "No clear effect" counts as agreement only for a no-gain prediction.
func judgeLevel(d direction, verdict string) string {
	switch {
	case verdict == Inconclusive:
		return NotConclusive
	case d == expectUp && verdict == Helps, d == expectDown && verdict == Hurts:
		return Agrees
	case d == expectUp && verdict == Hurts, d == expectDown && verdict == Helps:
		return Disagrees
	case d == expectNoGain && verdict == Helps:
		return Disagrees
	case d == expectNoGain:
		return Agrees
	}
	return NotConclusive
}

// describe renders an effect's robust figure with its interval and counts.
func (a *Analysis) describe(e Effect) string {
	r, _ := e.Estimate(a.RobustMetric)
	return fmt.Sprintf("%s %s (n=%d vs %d)", shortMetric(a.RobustMetric), formatEffect(r), r.N, r.NBaseline)
}

// formatInterval is "[+0.40, +2.10]" in points, or "—".
func formatInterval(i *Interval) string {
	if i == nil {
		return "—"
	}
	return fmt.Sprintf("[%+.2f, %+.2f]", Points(i.Low), Points(i.High))
}

// formatEffect is "+1.23 pts [+0.40, +2.10]" or "+1.23 pts [no interval]".
func formatEffect(e Estimate) string {
	if e.CI == nil {
		return fmt.Sprintf("%+.2f pts [no interval]", Points(e.Effect))
	}
	return fmt.Sprintf("%+.2f pts [%+.2f, %+.2f]", Points(e.Effect), Points(e.CI.Low), Points(e.CI.High))
}

// ratioFinding compares variants inside the paper's ratio band with those
// outside it, among the baseline and the variants that change depth (the
// only ones whose ratio moves for a reason other than refitting), or
// among all variants of a random sweep.
func ratioFinding(a *Analysis) FindingResult {
	var r FindingResult
	var in, out []float64
	var inN, outN []string
	for _, g := range a.Groups {
		if a.Design == "ofat" && g.Factor != results.BaselineFactor && g.Factor != sweep.FactorDepthWidth && g.Factor != sweep.FactorStageDepths {
			continue
		}
		if g.WidthDepthRatio <= 0 {
			continue
		}
		vals := g.Values[a.RobustMetric]
		label := fmt.Sprintf("%s (ratio %.2f, %s %.2f%%, n=%d)", g.Variant, g.WidthDepthRatio, shortMetric(a.RobustMetric), Points(Mean(vals)), g.N())
		if g.WidthDepthRatio >= PaperRatioBand[0] && g.WidthDepthRatio <= PaperRatioBand[1] {
			in, inN = append(in, vals...), append(inN, label)
		} else {
			out, outN = append(out, vals...), append(outN, label)
		}
	}
	r.Evidence = append(r.Evidence, "in band: "+orNone(inN), "outside: "+orNone(outN))
	if len(in) == 0 || len(out) == 0 {
		r.Outcome = NotTested
		r.Summary = fmt.Sprintf("no comparison: %d variant(s) in the band [%.1f, %.1f], %d outside", len(inN), PaperRatioBand[0], PaperRatioBand[1], len(outN))
		return r
	}
	est := a.diffEstimate(a.RobustMetric, in, out, "width-depth-ratio")
	r.Summary = fmt.Sprintf("in band minus outside: %s %s over %d vs %d trials", shortMetric(a.RobustMetric), formatEffect(est), len(in), len(out))
	r.Outcome = map[string]string{Helps: Agrees, Hurts: Disagrees}[verdictOf(est)]
	if r.Outcome == "" {
		r.Outcome = NotConclusive
	}
	return r
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(xs, "; ")
}

func expectDepthWidth(level string, _ *arch.Spec) direction {
	m, err := sweep.DepthMultiplier(level)
	ok := err == nil
	switch {
	case !ok:
		return unrelated
	case m > 1:
		return expectUp
	case m < 1:
		return expectDown
	}
	return unrelated
}

// stage3Heavy: the second-to-last stage is the deepest and the last has
// one block (stage 3 of ResNet-50's four).
func stage3Heavy(ds []int) bool {
	n := len(ds)
	if n < 2 || ds[n-1] != 1 {
		return false
	}
	return slices.Max(ds) == ds[n-2]
}

// compareToBaseline turns "the level has the property / the baseline has
// it" into a prediction: gaining the property should help, losing it hurt.
func compareToBaseline(level, base bool) direction {
	switch {
	case level && !base:
		return expectUp
	case !level && base:
		return expectDown
	}
	return unrelated
}

func expectStageDepths(level string, base *arch.Spec) direction {
	ds, err := sweep.IntList(level)
	if err != nil {
		return unrelated
	}
	baseHeavy := false
	if base != nil {
		baseHeavy = stage3Heavy(base.Depths())
	}
	return compareToBaseline(stage3Heavy(ds), baseHeavy)
}

// groupsOf returns the number of groups of every stage's k×k convolution.
func groupsOf(s arch.Spec) []int {
	out := make([]int, len(s.Stages))
	for i, st := range s.Stages {
		bw := arch.BottleneckWidth(st.Width, st.BottleneckMultiplier)
		out[i] = 1
		if st.GroupWidth > 0 && bw > 0 {
			out[i] = bw / st.GroupWidth
		}
	}
	return out
}

func allEqual(xs []int, v int) bool {
	for _, x := range xs {
		if x != v {
			return false
		}
	}
	return len(xs) > 0
}

func expectTwoGroups(level string, base *arch.Spec) direction {
	baseTwo := base != nil && allEqual(groupsOf(*base), 2)
	levelTwo := false
	if rest, ok := strings.CutPrefix(level, "groups:"); ok {
		levelTwo = strings.TrimSpace(rest) == "2"
	} else if gw, err := strconv.Atoi(level); err == nil && base != nil {
		s := base.Clone()
		for i := range s.Stages {
			s.Stages[i].GroupWidth = gw
		}
		levelTwo = allEqual(groupsOf(s), 2)
	} else {
		return unrelated
	}
	return compareToBaseline(levelTwo, baseTwo)
}

func expectWideStem(level string, base *arch.Spec) direction {
	w, err := strconv.Atoi(level)
	if err != nil {
		return unrelated
	}
	b := 64 // ResNet-50's stem when the baseline is unknown
	if base != nil {
		b = base.Stem.Width
	}
	switch {
	case w > b:
		return expectUp
	case w < b:
		return expectDown
	}
	return unrelated
}

func expectPostponed(level string, _ *arch.Spec) direction {
	if level == "postponed" {
		return expectUp
	}
	return unrelated
}

func expectConvStem(level string, base *arch.Spec) direction {
	baseConv := base == nil || base.Stem.Kind == arch.StemConv
	kind, _, _ := strings.Cut(level, ":")
	switch kind {
	case arch.StemPatch:
		if baseConv {
			return expectDown
		}
	case arch.StemConv:
		if !baseConv {
			return expectUp
		}
	}
	return unrelated
}

func expectSmallKernel(level string, base *arch.Spec) direction {
	k, err := strconv.Atoi(level)
	if err != nil {
		return unrelated
	}
	b := 3
	if base != nil && len(base.Stages) > 0 {
		b = base.Stages[0].Kernel
	}
	switch {
	case b == 3 && k > 3:
		return expectNoGain
	case b > 3 && k == 3:
		return expectUp
	}
	return unrelated
}

func activations(level string) []string {
	parts := strings.Split(level, ",")
	for i := range parts {
		parts[i] = strings.ToLower(strings.TrimSpace(parts[i]))
	}
	return parts
}

func allIn(xs []string, set ...string) bool {
	for _, x := range xs {
		if !slices.Contains(set, x) {
			return false
		}
	}
	return len(xs) > 0
}

func expectSmoothActivation(level string, base *arch.Spec) direction {
	baseReLU := base == nil || allIn(base.Block.Activations, "relu")
	if baseReLU && allIn(activations(level), "silu", "gelu") {
		return expectUp
	}
	return unrelated
}

// parametricActivations are the parametric activations the paper tried;
// robarch's design space has none yet, so this finding is reported as not
// tested unless a sweep adds one.
var parametricActivations = []string{"prelu", "pssilu", "psilu", "parametric_silu", "parametric_relu"}

func expectParametric(level string, _ *arch.Spec) direction {
	for _, a := range activations(level) {
		if slices.Contains(parametricActivations, a) {
			return expectNoGain
		}
	}
	return unrelated
}

func expectSE(level string, base *arch.Spec) direction {
	r, err := strconv.ParseFloat(level, 64)
	if err != nil {
		return unrelated
	}
	baseOff := base == nil || base.Block.SERatio == 0
	switch {
	case baseOff && r == 0.25:
		return expectUp
	case !baseOff && base.Block.SERatio == 0.25 && r == 0:
		return expectDown
	}
	return unrelated
}

// normLayers counts the normalization layers per block a norm level (or a
// spec, when level is empty) has, shortcut included.
func normLayers(level string, base *arch.Spec) (int, bool) {
	norms, shortcut := []string{arch.BatchNorm, arch.BatchNorm, arch.BatchNorm}, arch.BatchNorm
	if base != nil {
		norms, shortcut = base.Block.Norms, base.Block.ShortcutNorm
	}
	if level != "" {
		if rest, ok := strings.CutPrefix(level, "shortcut:"); ok {
			shortcut = strings.TrimSpace(rest)
		} else {
			parts := activations(level)
			if len(parts) == 1 {
				parts = []string{parts[0], parts[0], parts[0]}
			}
			if len(parts) != 3 {
				return 0, false
			}
			norms = parts
		}
	}
	n := 0
	for _, x := range append(slices.Clone(norms), shortcut) {
		if x != arch.Identity {
			n++
		}
	}
	return n, true
}

func expectFewerNorms(level string, base *arch.Spec) direction {
	n, ok := normLayers(level, base)
	b, _ := normLayers("", base)
	switch {
	case !ok:
		return unrelated
	case n < b && n > 0:
		return expectUp
	case n > b:
		return expectDown
	}
	return unrelated
}

func expectNoPreact(level string, base *arch.Spec) direction {
	pre, err := strconv.ParseBool(level)
	basePre := base != nil && base.Block.Order == arch.PreAct
	if err != nil || pre == basePre {
		return unrelated
	}
	if pre {
		return expectNoGain
	}
	return unrelated
}

func expectNoDense(level string, base *arch.Spec) direction {
	r, err := strconv.Atoi(level)
	if err != nil || (base != nil && base.Block.DenseRatio > 0) {
		return unrelated
	}
	if r > 0 {
		return expectNoGain
	}
	return unrelated
}
