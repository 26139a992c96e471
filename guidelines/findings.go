package guidelines

import (
	"cmp"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
)

// PaperRatioBand is the width-to-depth ratio range of the follow-up paper
// (mean of width ÷ depth over all stages but the last), measured on
// basic-block WideResNets on CIFAR-10.
var PaperRatioBand = [2]float64{7.5, 13.5}

// PaperSource names where the built-in findings come from.
const PaperSource = "Peng et al. 2023, RobArch: Designing Robust Architectures against Adversarial Attacks (arXiv:2301.03110), as rebuilt from its official code (ShengYun-Peng/RobArch) and the follow-up Robust Principles (Peng et al., BMVC 2023, arXiv:2308.16258)"

// Where the findings' claims come from (cited per row of the table).
const (
	srcModelMk = "RobArch code, MODEL.mk (RobArch-S/M/L configs)"
	srcYAML    = "RobArch code, configs/model/model.yaml (studied, ResNet-50's choice kept)"
	srcModelPy = "RobArch code, robustarch/models/model.py (option present, not adopted)"
	srcBMVC    = "Robust Principles, BMVC 2023 (arXiv:2308.16258)"
	srcSAT     = "Smooth Adversarial Training (Xie et al., arXiv:2006.14536)"
)

// direction is what a finding predicts for a variant relative to the spec
// it is compared with (the baseline in a one-factor sweep, the factor's
// reference level in a random one).
type direction int

const (
	unrelated    direction = iota // the pair does not bear on the finding
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

// Finding is one of the RobArch paper's 18 guidelines as a prediction
// about pairs of specs: whichever factor produced a variant, the finding
// looks at what changed between the two networks, never at level syntax.
type Finding struct {
	ID        string
	Guideline int    // its number in ../shared/PAPER-GUIDELINES.md's order, 1–18
	Claim     string // what the paper says
	Source    string // where the claim comes from
	// Factors are the sweep factors that usually produce pairs this
	// finding bears on (a hint for the "not tested" reason; any factor
	// may produce such a pair).
	Factors []string
	// predict says what the finding predicts for level relative to
	// base; both are complete specs (WithDefaults), as trained.
	predict func(base, level arch.Spec) direction
	// custom evaluates findings that are not about pairs.
	custom func(a *Analysis) FindingResult
}

// FindingResult is a finding's outcome in this sweep.
type FindingResult struct {
	ID        string   `json:"id"`
	Guideline int      `json:"guideline"`
	Claim     string   `json:"claim"`
	Source    string   `json:"source"`
	Factors   []string `json:"factors"`
	Outcome   string   `json:"outcome"` // agrees, disagrees, inconclusive, not tested by this sweep
	Summary   string   `json:"summary"`
	Evidence  []string `json:"evidence,omitempty"`
}

// Findings returns the paper's 18 guidelines, in the order of
// ../shared/PAPER-GUIDELINES.md.
func Findings() []Finding {
	return []Finding{
		{ID: "deeper-narrower", Guideline: 1, Source: srcModelMk + "; " + srcBMVC,
			Claim:   "At a fixed parameter budget, deeper and narrower networks are more robust than shallower, wider ones (RobArch-S: 27 blocks vs ResNet-50's 16, both 26M).",
			Factors: []string{sweep.FactorDepthWidth, sweep.FactorStageDepths}, predict: predictDeeperNarrower},
		{ID: "width-depth-ratio", Guideline: 2, Source: srcBMVC,
			Claim:   "Robust networks have a width-to-depth ratio of about 7.5 to 13.5 (mean of width ÷ depth over all stages but the last; measured on basic-block WideResNets on CIFAR-10).",
			Factors: []string{sweep.FactorDepthWidth, sweep.FactorStageDepths}, custom: ratioFinding},
		{ID: "stage-depths", Guideline: 3, Source: srcModelMk,
			Claim:   "Put most of the depth in stage 3 (the second-to-last stage) and a single block in the last stage (5,8,13,1).",
			Factors: []string{sweep.FactorStageDepths}, predict: predictStageDepths},
		{ID: "two-groups", Guideline: 4, Source: srcModelMk,
			Claim:   "2 groups in the k×k convolution of each bottleneck block help robustness.",
			Factors: []string{sweep.FactorGroupWidth}, predict: predictTwoGroups},
		{ID: "wide-stem", Guideline: 5, Source: srcModelMk,
			Claim:   "A wider stem (96 channels instead of ResNet-50's 64) helps robustness.",
			Factors: []string{sweep.FactorStemWidth}, predict: predictWideStem},
		{ID: "postponed-downsampling", Guideline: 6, Source: srcModelMk,
			Claim:   "Postponing downsampling (no max-pool in the stem; stride 2 in the first stage instead) helps robustness.",
			Factors: []string{sweep.FactorDownsample}, predict: predictPostponed},
		{ID: "conv-stem", Guideline: 7, Source: srcBMVC,
			Claim:   "A convolutional stem is more robust than a patchify stem.",
			Factors: []string{sweep.FactorStemType}, predict: predictConvStem},
		{ID: "kernel-3x3", Guideline: 8, Source: srcYAML,
			Claim:   "3×3 kernels in the blocks; larger kernels do not improve robustness at a fixed budget (direction unsure).",
			Factors: []string{sweep.FactorKernel}, predict: predictSmallKernel},
		{ID: "no-dilation", Guideline: 9, Source: srcYAML,
			Claim:   "Dilation stays 1; dilated k×k convolutions do not improve robustness (direction unsure).",
			Factors: []string{sweep.FactorDilation}, predict: predictNoDilation},
		{ID: "smooth-activation", Guideline: 10, Source: srcModelMk + "; " + srcBMVC + "; " + srcSAT,
			Claim:   "Smooth activations (SiLU, GELU) are more robust than ReLU.",
			Factors: []string{sweep.FactorActivation}, predict: predictSmoothActivation},
		{ID: "parametric-activation", Guideline: 11, Source: srcModelPy + "; " + srcBMVC,
			Claim:   "Parametric activations (PReLU, PSiLU, PSSiLU) are no better than their plain counterparts (ReLU, SiLU).",
			Factors: []string{sweep.FactorActivation}, predict: predictParametric},
		{ID: "se-0.25", Guideline: 12, Source: srcModelMk + "; " + srcBMVC,
			Claim:   "Squeeze-and-excitation with ratio 0.25 helps robustness.",
			Factors: []string{sweep.FactorSERatio}, predict: predictSE},
		{ID: "fewer-norms", Guideline: 13, Source: srcModelMk,
			Claim:   "Fewer normalization layers in each block help robustness (RobArch drops the norm after the first 1×1 convolution).",
			Factors: []string{sweep.FactorNorm}, predict: predictFewerNorms},
		{ID: "norm-type", Guideline: 14, Source: srcModelPy,
			Claim:   "Batch norm is kept: instance, group or layer norm in its place do not improve robustness (direction unsure).",
			Factors: []string{sweep.FactorNorm}, predict: predictNormType},
		{ID: "bottleneck-0.25", Guideline: 15, Source: srcYAML,
			Claim:   "The bottleneck multiplier stays 0.25: other multipliers do not improve robustness (direction unsure).",
			Factors: []string{sweep.FactorBottleneckMult}, predict: predictBottleneck},
		{ID: "no-preact", Guideline: 16, Source: srcModelPy,
			Claim:   "Pre-activation blocks do not improve robustness (not adopted).",
			Factors: []string{sweep.FactorPreact}, predict: predictNoPreact},
		{ID: "no-dense", Guideline: 17, Source: srcYAML,
			Claim:   "Dense connections within stages do not improve robustness (not adopted).",
			Factors: []string{sweep.FactorDenseRatio}, predict: predictNoDense},
		{ID: "shortcut-norm-stem-kernel", Guideline: 18, Source: srcYAML,
			Claim:   "Batch norm on the projection shortcut and ResNet's stem kernel are kept: removing the shortcut norm or changing the stem kernel does not improve robustness.",
			Factors: []string{sweep.FactorNorm, sweep.FactorStemKernel}, predict: predictShortcutStem},
	}
}

// compareFindings evaluates every built-in finding against the effects.
func (a *Analysis) compareFindings() []FindingResult {
	pairs := a.specPairs()
	var out []FindingResult
	for _, f := range Findings() {
		var r FindingResult
		if f.custom != nil {
			r = f.custom(a)
		} else {
			r = a.pairFinding(f, pairs)
		}
		r.ID, r.Guideline, r.Claim, r.Source, r.Factors = f.ID, f.Guideline, f.Claim, f.Source, f.Factors
		out = append(out, r)
	}
	return out
}

// combined describes the spec factor's levels: whole networks scored
// against the baseline, the paper's headline test (RobArch-S against
// ResNet-50 at one budget).
func (a *Analysis) combined() []string {
	var out []string
	for _, e := range a.Effects {
		if e.Factor == sweep.FactorSpec {
			out = append(out, fmt.Sprintf("%s: %s, %s", e.Label(), a.describe(e), e.Verdict))
		}
	}
	return out
}

// specPair is one effect with the two specs it compares.
type specPair struct {
	effect      Effect
	base, level arch.Spec
}

// specPairs pairs every effect with the specs it compares: a one-factor
// sweep's variant with the baseline, as the sweep built and fitted them
// (stored with the trials); a random sweep's factor level with its
// reference level, each applied to the baseline and refitted the way the
// sweep fits. Effects of the spec factor compare whole alternative
// networks, so they bear on no single guideline and are left out.
func (a *Analysis) specPairs() []specPair {
	base := a.baselineSpec()
	if base == nil {
		return nil
	}
	specs := map[string]arch.Spec{}
	for _, g := range a.Groups {
		if s, ok := decodeSpec(g.Spec); ok {
			specs[g.Variant] = s
		}
	}
	var out []specPair
	for _, e := range a.Effects {
		if e.Factor == sweep.FactorSpec {
			continue
		}
		if a.Design == "ofat" {
			if s, ok := specs[e.Variant]; ok {
				out = append(out, specPair{effect: e, base: *base, level: s})
			}
			continue
		}
		ref, okRef := a.appliedSpec(*base, e.Factor, a.References[e.Factor])
		lvl, okLvl := a.appliedSpec(*base, e.Factor, e.Level)
		if okRef && okLvl {
			out = append(out, specPair{effect: e, base: ref, level: lvl})
		}
	}
	return out
}

// appliedSpec is base with the factor at level, refitted to the sweep's
// budget with its fit settings (random designs only).
func (a *Analysis) appliedSpec(base arch.Spec, factor, level string) (arch.Spec, bool) {
	s, err := sweep.ApplyLevel(base, factor, level)
	if err != nil {
		return arch.Spec{}, false
	}
	tol, quantum, scaleDepth := sweepFitSettings(a.Baseline.Config)
	budget := a.Budget
	if budget == 0 {
		return s.WithDefaults(), true
	}
	fitted, _, err := arch.Fit(s, budget, arch.FitOptions{Tolerance: cmp.Or(tol, arch.DefaultTolerance),
		Quantum: cmp.Or(quantum, arch.DefaultQuantum), ScaleDepth: scaleDepth})
	if err != nil {
		return arch.Spec{}, false
	}
	return fitted.WithDefaults(), true
}

func decodeSpec(raw json.RawMessage) (arch.Spec, bool) {
	if len(raw) == 0 {
		return arch.Spec{}, false
	}
	var s arch.Spec
	if err := json.Unmarshal(raw, &s); err != nil {
		return arch.Spec{}, false
	}
	return s.WithDefaults(), true
}

// baselineSpec decodes the baseline's spec, or nil when the store has
// none that decodes.
func (a *Analysis) baselineSpec() *arch.Spec {
	if a.Baseline == nil {
		return nil
	}
	s, ok := decodeSpec(a.Baseline.Spec)
	if !ok {
		return nil
	}
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

func (a *Analysis) pairFinding(f Finding, pairs []specPair) FindingResult {
	var agree, disagree, open int
	var r FindingResult
	for _, p := range pairs {
		d := f.predict(p.base, p.level)
		if d == unrelated {
			continue
		}
		est, _ := p.effect.Estimate(a.RobustMetric)
		outcome := judgeLevel(d, p.effect.Verdict, est.CI)
		switch outcome {
		case Agrees:
			agree++
		case Disagrees:
			disagree++
		default:
			open++
		}
		line := fmt.Sprintf("%s: %s; %s, %s → %s", p.effect.Label(), a.describe(p.effect), d, p.effect.Verdict, outcome)
		if d == expectNoGain && outcome == NotConclusive && est.CI != nil {
			line += fmt.Sprintf(" (a gain up to %+.2f pts is not ruled out; agreeing needs the interval below %+.0f pt)", Points(est.CI.High), Points(NoGainMargin))
		}
		r.Evidence = append(r.Evidence, line)
	}
	switch {
	case agree+disagree+open == 0:
		r.Outcome = NotTested
		switch {
		case len(pairs) == 0 && len(a.Effects) > 0:
			r.Summary = "the store holds no specs to compare (not written by robarch sweep)"
		case len(a.testedLevels(f.Factors)) > 0:
			r.Summary = fmt.Sprintf("the sweep's levels (%s) do not bear on this finding", strings.Join(clip(a.testedLevels(f.Factors)), ", "))
		default:
			r.Summary = fmt.Sprintf("no variant of the sweep changes what this finding is about (usually varied by %s)", strings.Join(f.Factors, " or "))
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

// NoGainMargin is the largest robust-accuracy gain a "does not improve"
// guideline tolerates: such a claim agrees only when the level's 95%
// interval rules out gains above it. The paper gives no per-guideline
// effect sizes; its follow-up reports +1 to +3 AutoAttack points on CIFAR
// from all principles combined (../shared/PAPER-GUIDELINES.md), so a
// single component's gain under one point is not what a guideline is
// about, while "no clear effect" from an underpowered sweep is no
// evidence of no gain at all.
const NoGainMargin = 0.01

// judgeLevel compares one level's verdict (and its robust interval, for
// a no-gain prediction) with the finding's prediction.
func judgeLevel(d direction, verdict string, ci *Interval) string {
	switch {
	case verdict == Inconclusive:
		return NotConclusive
	case d == expectUp && verdict == Helps, d == expectDown && verdict == Hurts:
		return Agrees
	case d == expectUp && verdict == Hurts, d == expectDown && verdict == Helps:
		return Disagrees
	case d == expectNoGain && verdict == Helps:
		return Disagrees
	case d == expectNoGain && ci != nil && ci.High <= NoGainMargin:
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

// ratioFinding compares variants inside the ratio band with those outside
// it, among the baseline and the variants that change depth (the only
// ones whose ratio moves for a reason other than refitting), or among all
// variants of a random sweep. The band was measured on basic-block
// WideResNets; for a sweep of bottleneck networks the ratios are listed
// and no verdict is drawn, since the band was never measured there
// (ResNet-50 is at 128, RobArch-S at 72).
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
		label := fmt.Sprintf("%s (ratio %.2f, %s %.2f%%, n=%d)", g.Variant, g.WidthDepthRatio, shortMetric(a.RobustMetric), Points(study.Mean(vals)), g.N())
		if g.WidthDepthRatio >= PaperRatioBand[0] && g.WidthDepthRatio <= PaperRatioBand[1] {
			in, inN = append(in, vals...), append(inN, label)
		} else {
			out, outN = append(out, vals...), append(outN, label)
		}
	}
	r.Evidence = append(r.Evidence, "in band: "+orNone(inN), "outside: "+orNone(outN))
	if why := a.ratioOutOfScope(); why != "" {
		r.Outcome = NotTested
		r.Summary = fmt.Sprintf("the band [%.1f, %.1f] was measured on basic-block WideResNets on CIFAR-10; %s, where it was never measured (ResNet-50's ratio is 128, RobArch-S's 72), so the ratios are listed without a verdict",
			PaperRatioBand[0], PaperRatioBand[1], why)
		return r
	}
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

// ratioOutOfScope says why the ratio band does not apply to this sweep
// ("" when it does): it needs basic blocks and CIFAR-10.
func (a *Analysis) ratioOutOfScope() string {
	base := a.baselineSpec()
	if base == nil {
		return ""
	}
	if !allBasic(*base) {
		return "this sweep's baseline has bottleneck blocks"
	}
	if a.Baseline != nil {
		if c, err := sweep.ParseTrialConfig(a.Baseline.Config); err == nil && c.Sweep.Dataset.Name != "" && !strings.HasPrefix(c.Sweep.Dataset.Name, "cifar") {
			return fmt.Sprintf("this sweep trains on %s", c.Sweep.Dataset.Name)
		}
	}
	return ""
}

func allBasic(s arch.Spec) bool {
	for _, st := range s.Stages {
		if st.Block != arch.Basic {
			return false
		}
	}
	return len(s.Stages) > 0
}

func orNone(xs []string) string {
	if len(xs) == 0 {
		return "none"
	}
	return strings.Join(clip(xs), "; ")
}

// compareToBaseline turns "the level has the property / the base has
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
func predictDeeperNarrower(base, level arch.Spec) direction {
	if len(base.Stages) != len(level.Stages) {
		return unrelated
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
		return expectUp
	case dl < db && wider && !narrower:
		return expectDown
	}
	return unrelated
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

func predictStageDepths(base, level arch.Spec) direction {
	if slices.Equal(base.Depths(), level.Depths()) {
		return unrelated
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

func predictTwoGroups(base, level arch.Spec) direction {
	gb, gl := sweep.GroupsOf(base), sweep.GroupsOf(level)
	if slices.Equal(gb, gl) {
		return unrelated
	}
	return compareToBaseline(allEqual(gl, 2), allEqual(gb, 2))
}

func predictWideStem(base, level arch.Spec) direction {
	if base.Stem.Kind != level.Stem.Kind {
		return unrelated
	}
	switch {
	case level.Stem.Width > base.Stem.Width:
		return expectUp
	case level.Stem.Width < base.Stem.Width:
		return expectDown
	}
	return unrelated
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
func predictPostponed(base, level arch.Spec) direction {
	if base.Stem.Kind != level.Stem.Kind {
		return unrelated
	}
	fb, fl := downsampling(base), downsampling(level)
	if len(fb) != len(fl) || fb[len(fb)-1] != fl[len(fl)-1] || slices.Equal(fb, fl) {
		return unrelated
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
		return expectUp
	case earlier && !later:
		return expectDown
	}
	return unrelated
}

func predictConvStem(base, level arch.Spec) direction {
	switch {
	case base.Stem.Kind == arch.StemConv && level.Stem.Kind == arch.StemPatch:
		return expectDown
	case base.Stem.Kind == arch.StemPatch && level.Stem.Kind == arch.StemConv:
		return expectUp
	}
	return unrelated
}

// stageValues is one field of every stage, for comparisons.
func stageValues(s arch.Spec, field func(arch.Stage) int) []int {
	out := make([]int, len(s.Stages))
	for i, st := range s.Stages {
		out[i] = field(st)
	}
	return out
}

func predictSmallKernel(base, level arch.Spec) direction {
	kernel := func(st arch.Stage) int { return st.Kernel }
	kb, kl := stageValues(base, kernel), stageValues(level, kernel)
	switch {
	case slices.Equal(kb, kl):
		return unrelated
	case allEqual(kb, 3) && slices.Max(kl) > 3 && slices.Min(kl) >= 3:
		return expectNoGain
	case allEqual(kl, 3) && slices.Min(kb) >= 3:
		return expectUp
	}
	return unrelated
}

func predictNoDilation(base, level arch.Spec) direction {
	dil := func(st arch.Stage) int { return st.Dilation }
	db, dl := stageValues(base, dil), stageValues(level, dil)
	if allEqual(db, 1) && !allEqual(dl, 1) && slices.Min(dl) >= 1 {
		return expectNoGain
	}
	return unrelated
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

func predictSmoothActivation(base, level arch.Spec) direction {
	ab, al := base.Block.Activations, level.Block.Activations
	switch {
	case slices.Equal(ab, al):
		return unrelated
	case allIn(ab, "relu") && allIn(al, smoothActivations...):
		return expectUp
	case allIn(ab, smoothActivations...) && allIn(al, "relu"):
		return expectDown
	}
	return unrelated
}

// plainCounterpart maps a parametric activation to the plain one it
// generalises (PReLU's slope 0 is ReLU; PSiLU's and PSSiLU's alpha 1 and
// beta 0 are SiLU).
var plainCounterpart = map[string]string{"prelu": "relu", "psilu": "silu", "pssilu": "silu"}

// predictParametric: a level whose activations differ from the base's
// only by parametric versions of the same function should not gain.
func predictParametric(base, level arch.Spec) direction {
	ab, al := base.Block.Activations, level.Block.Activations
	if len(ab) != len(al) || slices.Equal(ab, al) {
		return unrelated
	}
	for i := range ab {
		if ab[i] == al[i] {
			continue
		}
		if plainCounterpart[al[i]] != ab[i] {
			return unrelated
		}
	}
	return expectNoGain
}

func isPaperSE(r float64) bool { return math.Abs(r-0.25) < 1e-9 }

func predictSE(base, level arch.Spec) direction {
	rb, rl := base.Block.SERatio, level.Block.SERatio
	switch {
	case rb == 0 && isPaperSE(rl):
		return expectUp
	case isPaperSE(rb) && rl == 0:
		return expectDown
	}
	return unrelated
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
func predictFewerNorms(base, level arch.Spec) direction {
	nb, kb := blockNorms(base)
	nl, kl := blockNorms(level)
	if !slices.Equal(kb, kl) || nl == 0 || nb == 0 {
		return unrelated
	}
	switch {
	case nl < nb:
		return expectUp
	case nl > nb:
		return expectDown
	}
	return unrelated
}

// predictNormType: batch norm replaced by another norm at the same
// positions should not gain.
func predictNormType(base, level arch.Spec) direction {
	nb, nl := base.Block.Norms, level.Block.Norms
	if len(nb) != len(nl) || slices.Equal(nb, nl) {
		return unrelated
	}
	for i := range nb {
		if (nb[i] == arch.Identity) != (nl[i] == arch.Identity) {
			return unrelated
		}
		if nb[i] != nl[i] && nb[i] != arch.BatchNorm {
			return unrelated
		}
	}
	return expectNoGain
}

func predictBottleneck(base, level arch.Spec) direction {
	mult := func(s arch.Spec) []float64 {
		out := make([]float64, len(s.Stages))
		for i, st := range s.Stages {
			out[i] = st.BottleneckMultiplier
		}
		return out
	}
	mb, ml := mult(base), mult(level)
	if slices.Equal(mb, ml) || !allBottleneck(base) || !allBottleneck(level) {
		return unrelated
	}
	for _, m := range mb {
		if m != 0.25 {
			return unrelated
		}
	}
	return expectNoGain
}

func allBottleneck(s arch.Spec) bool {
	for _, st := range s.Stages {
		if st.Block != arch.Bottleneck {
			return false
		}
	}
	return len(s.Stages) > 0
}

func predictNoPreact(base, level arch.Spec) direction {
	if base.Block.Order == arch.PostAct && level.Block.Order == arch.PreAct {
		return expectNoGain
	}
	return unrelated
}

// denseActive: RobArch's dense connections only touch stages of three or
// more blocks (the stage output sums features from the third block on).
func denseActive(s arch.Spec) bool {
	return s.Block.DenseRatio > 0 && slices.Max(s.Depths()) >= 3
}

func predictNoDense(base, level arch.Spec) direction {
	if !denseActive(base) && denseActive(level) {
		return expectNoGain
	}
	return unrelated
}

// predictShortcutStem: dropping the projection shortcut's batch norm, or
// a conv stem kernel other than the base's, should not gain.
func predictShortcutStem(base, level arch.Spec) direction {
	switch {
	case base.Block.ShortcutNorm == arch.BatchNorm && level.Block.ShortcutNorm == arch.Identity:
		return expectNoGain
	case base.Stem.Kind == arch.StemConv && level.Stem.Kind == arch.StemConv && base.Stem.Kernel != level.Stem.Kernel:
		return expectNoGain
	}
	return unrelated
}

// ByPairs says whether the finding is judged from pairs of specs (all
// but the width/depth ratio band, judged from the variants' ratios).
func (f Finding) ByPairs() bool { return f.predict != nil }

// Bearing lists the numbers of the guidelines a variant bears on: those
// whose prediction for level against base is not "unrelated". Both specs
// are completed with defaults. `robarch sweep plan` shows it per variant,
// so a study's coverage of the paper is known before anything trains.
func Bearing(base, level arch.Spec) []int {
	base, level = base.WithDefaults(), level.WithDefaults()
	var out []int
	for _, f := range Findings() {
		if f.predict != nil && f.predict(base, level) != unrelated {
			out = append(out, f.Guideline)
		}
	}
	return out
}
