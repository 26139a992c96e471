// Package recipe holds training recipes as values: the method, the
// radius, the optimiser's and the schedule's settings, their defaults and
// their validation, and the learning rate at any point of a run. It is
// pure Go (no libtorch) so that sweep files and reports can read and check
// recipes without cgo; package train runs them.
package recipe

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/robarch/robarch/internal/precision"
)

// Method is a training method.
type Method string

// The training methods.
const (
	Standard Method = "standard" // clean examples only
	FGSMRS   Method = "fgsm-rs"  // Fast-AT: one FGSM step from a uniform random start
	PGD      Method = "pgd"      // PGD-AT: k projected sign-gradient steps from a random start
	TRADES   Method = "trades"   // clean cross-entropy + β·KL(clean ‖ adversarial)
)

// Methods lists the accepted methods.
func Methods() []Method { return []Method{Standard, FGSMRS, PGD, TRADES} }

// ScheduleKind names a learning-rate schedule.
type ScheduleKind string

// The learning-rate schedules.
const (
	// OneCycle rises linearly from 0 to the peak LR at PeakAt of the run,
	// then falls linearly to 0 at the end: Fast-AT's piecewise-linear
	// ("cyclic") schedule.
	OneCycle ScheduleKind = "onecycle"
	// Cosine anneals from the peak LR to 0 along half a cosine, after an
	// optional linear warm-up.
	Cosine ScheduleKind = "cosine"
	// Step multiplies the LR by Gamma at each milestone epoch.
	Step ScheduleKind = "step"
	// Constant keeps the LR fixed.
	Constant ScheduleKind = "constant"
)

// Schedules lists the accepted schedules.
func Schedules() []ScheduleKind { return []ScheduleKind{OneCycle, Cosine, Step, Constant} }

// Recipe is everything that decides the numbers a training run produces.
// Two runs with equal recipes, models and data give equal results, which
// is what a resume checks. Zero values mean the defaults of WithDefaults.
type Recipe struct {
	Method Method `json:"method"` // standard, fgsm-rs (Fast-AT, the default), pgd (PGD-AT) or trades
	// Eps is the L∞ radius in [0,1] pixel units (default 8/255 ≈ 0.0314;
	// standard training is evaluated at it).
	Eps float64 `json:"eps"`
	// StepSize of the inner maximisation; default 1.25·Eps for fgsm-rs
	// (Wong et al.), 2.5·Eps/Steps for pgd (Madry et al.), Eps/4 for trades.
	StepSize float64 `json:"step_size"`
	// Steps of the inner maximisation for pgd and trades (default 10).
	Steps int `json:"steps"`
	// Beta weighs the TRADES robustness term (default 6).
	Beta float64 `json:"beta"`

	Epochs    int `json:"epochs"`     // passes over the training set (default 10)
	BatchSize int `json:"batch_size"` // default 128
	// BatchShards splits each batch into this many equal shards, each
	// with its own batch-norm statistics and random starts, whose
	// gradients are averaged: one per process in a data-parallel run
	// (0, the default, means one per process, so 1 alone), or several run
	// in turn on one device (gradient accumulation). A run's numbers
	// depend on the shards, not on how many processes run them.
	BatchShards int `json:"batch_shards,omitempty"`

	// LR is the peak learning rate (default 0.2 for onecycle, 0.1 otherwise).
	LR          float64 `json:"lr"`
	Momentum    float64 `json:"momentum"` // default 0.9; set NoMomentum for plain SGD
	NoMomentum  bool    `json:"no_momentum,omitempty"`
	Nesterov    bool    `json:"nesterov"`
	WeightDecay float64 `json:"weight_decay"` // default 5e-4; applied to parameters with 2+ dimensions only
	NoDecay     bool    `json:"no_decay,omitempty"`

	Schedule ScheduleKind `json:"schedule"` // default onecycle for fgsm-rs, cosine otherwise
	// PeakAt is where onecycle peaks, as a fraction of the run (default 0.4).
	PeakAt float64 `json:"peak_at,omitempty"`
	// WarmupEpochs of linear warm-up before the cosine schedule.
	WarmupEpochs float64 `json:"warmup_epochs,omitempty"`
	// Milestones (epochs) and Gamma of the step schedule; default
	// milestones at 50% and 75% of the run, Gamma 0.1.
	Milestones []float64 `json:"milestones,omitempty"`
	Gamma      float64   `json:"gamma,omitempty"`

	LabelSmoothing float64 `json:"label_smoothing"`
	// GradClip caps the global L2 norm of the gradient; 0 disables it.
	GradClip float64 `json:"grad_clip"`

	// CropPad and HFlip augment training images (random crop from a
	// zero-padded image, horizontal flip).
	CropPad int  `json:"crop_pad,omitempty"`
	HFlip   bool `json:"hflip,omitempty"`

	Seed int64 `json:"seed"` // set per trial by the sweep's seeds

	// EvalSize is how many test examples (a stratified, seeded subset) the
	// per-epoch evaluation uses; 0 means all. EvalSteps is its PGD's step
	// count (default 10). The best checkpoint is chosen on these numbers.
	EvalSize  int `json:"eval_size"`
	EvalSteps int `json:"eval_steps"`
	// FinalSize and FinalSteps are the same for the final evaluation of
	// the chosen checkpoint (defaults: all test examples, 20 steps).
	FinalSize  int `json:"final_size"`
	FinalSteps int `json:"final_steps"`
	// EvalEps is the evaluation radius (default Eps; must be set for
	// standard training to get a PGD accuracy).
	EvalEps float64 `json:"eval_eps"`
	// EvalBatchSize defaults to BatchSize: a PGD evaluation holds a
	// graph as large as a training step's.
	EvalBatchSize int `json:"eval_batch_size"`

	// OverfitDrop is the fall of per-epoch PGD accuracy below its best
	// (absolute, default 0.2) that counts as catastrophic overfitting;
	// StopOnOverfit ends training when it happens.
	OverfitDrop   float64 `json:"overfit_drop"`
	StopOnOverfit bool    `json:"stop_on_overfit"`

	// Precision of the training forward passes (the inner maximisation's
	// included): "" is fp32; bf16 and fp16 run them under autocast with
	// fp32 weights, losses and perturbations (package amp). fp16 adds a
	// dynamic loss scaler and needs CUDA. Evaluations stay fp32. auto
	// must be resolved for the device (amp.Resolve) before it gets here.
	Precision precision.Precision `json:"precision,omitempty"`
}

// The recipe's defaults: the one place each lives. WithDefaults applies
// them; robarch train's flags show them as their defaults.
const (
	DefaultMethod      = FGSMRS    // robarch is for robustness: Fast-AT unless told otherwise
	DefaultEps         = 8.0 / 255 // the L∞ radius of CIFAR's benchmarks
	DefaultEpochs      = 10        // training epochs
	DefaultSteps       = 10        // inner maximisation steps (pgd, trades)
	DefaultBeta        = 6.0       // TRADES β
	DefaultBatchSize   = 128       // training batch
	DefaultLR          = 0.1       // peak LR, cosine and step schedules
	DefaultOneCycleLR  = 0.2       // peak LR, onecycle
	DefaultMomentum    = 0.9       // SGD momentum
	DefaultWeightDecay = 5e-4      // on parameters with 2+ dimensions
	DefaultPeakAt      = 0.4       // where onecycle peaks, a fraction of the run
	DefaultGamma       = 0.1       // step schedule's factor per milestone
	DefaultEvalSteps   = 10        // PGD steps of the per-epoch evaluation
	DefaultFinalSteps  = 20        // PGD steps of the final evaluation
	DefaultOverfitDrop = 0.2       // PGD accuracy fall that counts as catastrophic overfitting
)

// WithDefaults returns r with every zero field that has a default filled in.
func (r Recipe) WithDefaults() Recipe {
	if r.Method == "" {
		r.Method = DefaultMethod
	}
	if r.Eps == 0 {
		r.Eps = DefaultEps
	}
	if r.Epochs == 0 {
		r.Epochs = DefaultEpochs
	}
	if r.Steps == 0 {
		r.Steps = DefaultSteps
	}
	if r.StepSize == 0 {
		switch r.Method {
		case FGSMRS:
			r.StepSize = 1.25 * r.Eps
		case PGD:
			r.StepSize = 2.5 * r.Eps / float64(r.Steps)
		case TRADES:
			r.StepSize = r.Eps / 4
		}
	}
	if r.Beta == 0 && r.Method == TRADES {
		r.Beta = DefaultBeta
	}
	if r.BatchSize == 0 {
		r.BatchSize = DefaultBatchSize
	}
	if r.Schedule == "" {
		r.Schedule = Cosine
		if r.Method == FGSMRS {
			r.Schedule = OneCycle
		}
	}
	if r.LR == 0 {
		r.LR = DefaultLR
		if r.Schedule == OneCycle {
			r.LR = DefaultOneCycleLR
		}
	}
	if r.Momentum == 0 && !r.NoMomentum {
		r.Momentum = DefaultMomentum
	}
	if r.WeightDecay == 0 && !r.NoDecay {
		r.WeightDecay = DefaultWeightDecay
	}
	if r.PeakAt == 0 && r.Schedule == OneCycle {
		r.PeakAt = DefaultPeakAt
	}
	if r.Schedule == Step {
		if len(r.Milestones) == 0 {
			r.Milestones = []float64{0.5 * float64(r.Epochs), 0.75 * float64(r.Epochs)}
		}
		if r.Gamma == 0 {
			r.Gamma = DefaultGamma
		}
	}
	if r.EvalSteps == 0 {
		r.EvalSteps = DefaultEvalSteps
	}
	if r.FinalSteps == 0 {
		r.FinalSteps = DefaultFinalSteps
	}
	if r.EvalEps == 0 {
		r.EvalEps = r.Eps
	}
	if r.EvalBatchSize == 0 {
		r.EvalBatchSize = r.BatchSize
	}
	if r.OverfitDrop == 0 {
		r.OverfitDrop = DefaultOverfitDrop
	}
	if r.Precision == precision.FP32 {
		r.Precision = "" // fp32 and unset are the same recipe (and resume)
	}
	return r
}

// validateSchedule is Validate's part for the LR schedule's keys.
func (r Recipe) validateSchedule(bad func(string, ...any), finite func(string, float64) bool) {
	if finite("peak at", r.PeakAt) && r.Schedule == OneCycle && (r.PeakAt <= 0 || r.PeakAt >= 1) {
		bad("peak at %v: must be in (0,1)", r.PeakAt)
	}
	if finite("warmup epochs", r.WarmupEpochs) && (r.WarmupEpochs < 0 || r.WarmupEpochs >= float64(max(r.Epochs, 1))) {
		bad("warmup epochs %v: must be in [0, epochs)", r.WarmupEpochs)
	}
	if r.Schedule != Step {
		return
	}
	if finite("gamma", r.Gamma) && (r.Gamma <= 0 || r.Gamma > 1) {
		bad("gamma %v: must be in (0,1]", r.Gamma)
	}
	for i, m := range r.Milestones {
		if m <= 0 || (i > 0 && m <= r.Milestones[i-1]) {
			bad("milestones %v: must be positive and increasing", r.Milestones)
			break
		}
	}
}

// Validate checks a recipe after WithDefaults, naming the bad field and
// what it accepts.
func (r Recipe) Validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	if !slices.Contains(Methods(), r.Method) {
		bad("method %q: allowed values are %s", r.Method, join(Methods()))
	}
	if !slices.Contains(Schedules(), r.Schedule) {
		bad("schedule %q: allowed values are %s", r.Schedule, join(Schedules()))
	}
	finite := func(name string, v float64) bool {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			bad("%s %v: must be a finite number", name, v)
			return false
		}
		return true
	}
	if finite("eps", r.Eps) && (r.Eps < 0 || r.Eps > 1) {
		bad("eps %v: must be in [0,1] (pixel scale; write 8/255 or 8px for 8 pixel levels)", r.Eps)
	}
	if r.Method != Standard && r.Eps <= 0 {
		bad("eps %v: method %s needs a positive eps", r.Eps, r.Method)
	}
	if finite("eval eps", r.EvalEps) && (r.EvalEps < 0 || r.EvalEps > 1) {
		bad("eval eps %v: must be in [0,1]", r.EvalEps)
	}
	if finite("step size", r.StepSize) && r.StepSize < 0 {
		bad("step size %v: must not be negative", r.StepSize)
	}
	if r.Steps < 1 || r.EvalSteps < 1 || r.FinalSteps < 1 {
		bad("steps %d, eval steps %d, final steps %d: must be at least 1", r.Steps, r.EvalSteps, r.FinalSteps)
	}
	if finite("beta", r.Beta) && r.Beta < 0 {
		bad("beta %v: must not be negative", r.Beta)
	}
	if r.Epochs < 1 {
		bad("epochs %d: must be at least 1", r.Epochs)
	}
	if r.BatchSize < 2 || r.EvalBatchSize < 1 {
		bad("batch size %d, eval batch size %d: training batches need at least 2 examples (batch norm), evaluation at least 1", r.BatchSize, r.EvalBatchSize)
	}
	if r.BatchShards < 0 || (r.BatchShards > 0 && r.BatchSize%r.BatchShards != 0) {
		bad("batch shards %d: must be 0 (one per process) or divide the batch size %d", r.BatchShards, r.BatchSize)
	} else if r.BatchShards > 0 && r.BatchSize/r.BatchShards < 2 {
		bad("batch shards %d: each shard of the batch size %d needs at least 2 examples (batch norm)", r.BatchShards, r.BatchSize)
	}
	if finite("lr", r.LR) && r.LR <= 0 {
		bad("lr %v: must be positive", r.LR)
	}
	if finite("momentum", r.Momentum) && (r.Momentum < 0 || r.Momentum >= 1) {
		bad("momentum %v: must be in [0,1)", r.Momentum)
	}
	if r.Nesterov && r.Momentum == 0 {
		bad("nesterov: needs a positive momentum")
	}
	if finite("weight decay", r.WeightDecay) && r.WeightDecay < 0 {
		bad("weight decay %v: must not be negative", r.WeightDecay)
	}
	r.validateSchedule(bad, finite)
	if finite("label smoothing", r.LabelSmoothing) && (r.LabelSmoothing < 0 || r.LabelSmoothing >= 1) {
		bad("label smoothing %v: must be in [0,1)", r.LabelSmoothing)
	}
	if finite("grad clip", r.GradClip) && r.GradClip < 0 {
		bad("grad clip %v: must be 0 (off) or positive", r.GradClip)
	}
	if r.CropPad < 0 {
		bad("crop pad %d: must be 0 (off) or positive", r.CropPad)
	}
	if r.EvalSize < 0 || r.FinalSize < 0 {
		bad("eval size %d, final size %d: must be 0 (all) or positive", r.EvalSize, r.FinalSize)
	}
	if finite("overfit drop", r.OverfitDrop) && (r.OverfitDrop <= 0 || r.OverfitDrop > 1) {
		bad("overfit drop %v: must be in (0,1]", r.OverfitDrop)
	}
	switch r.Precision {
	case "", precision.FP32, precision.BF16, precision.FP16:
	case precision.Auto:
		bad("precision auto: resolve it for the training device first (amp.Resolve)")
	default:
		bad("precision %q: allowed values are fp32, bf16, fp16", r.Precision)
	}
	if len(errs) > 0 {
		return fmt.Errorf("training recipe: %s", strings.Join(errs, "; "))
	}
	return nil
}

// ParseEps reads an L∞ perturbation radius written as a fraction of the
// pixel range ("0.1", "0.0314"), as a ratio ("8/255") or in pixel levels
// ("8px", meaning 8/255). A bare number above 1 is refused: it is almost
// surely meant in pixel levels, and guessing would silently change the
// radius. It is the one reader of radii: train, sweep files, bench and
// eval use it (and ParseL2Eps for L2).
func ParseEps(s string) (float64, error) {
	s = strings.TrimSpace(s)
	var v float64
	var err error
	switch {
	case strings.HasSuffix(s, "px"):
		v, err = strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(s, "px")), 64)
		v /= 255
	case strings.Contains(s, "/"):
		v, err = parseRatio(s)
	default:
		v, err = strconv.ParseFloat(s, 64)
		if err == nil && v > 1 {
			return 0, fmt.Errorf("eps %q: above 1; write %s/255 or %spx for pixel levels, or a fraction in [0,1]", s, s, s)
		}
	}
	if err != nil {
		return 0, fmt.Errorf("eps %q: want a fraction (0.1), a ratio (8/255) or pixel levels (8px): %w", s, err)
	}
	if math.IsNaN(v) || v < 0 || v > 1 {
		return 0, fmt.Errorf("eps %q = %v: must be in [0,1]", s, v)
	}
	return v, nil
}

// ParseL2Eps reads an L2 radius: a positive number or ratio ("0.5",
// "128/255"). L2 radii are not bounded by 1 (0.5 and 1.5 are usual on
// CIFAR) and have no pixel-level form.
func ParseL2Eps(s string) (float64, error) {
	s = strings.TrimSpace(s)
	var v float64
	var err error
	if strings.Contains(s, "/") {
		v, err = parseRatio(s)
	} else {
		v, err = strconv.ParseFloat(s, 64)
	}
	if err != nil || !(v > 0) || math.IsInf(v, 0) {
		return 0, fmt.Errorf("eps %q: want a positive number or fraction such as 8/255 or 0.5", s)
	}
	return v, nil
}

// parseRatio reads "num/den", spaces allowed around either.
func parseRatio(s string) (float64, error) {
	num, den, _ := strings.Cut(s, "/")
	n, err := strconv.ParseFloat(strings.TrimSpace(num), 64)
	if err != nil {
		return 0, err
	}
	d, err := strconv.ParseFloat(strings.TrimSpace(den), 64)
	if err != nil {
		return 0, err
	}
	if d == 0 {
		return 0, fmt.Errorf("zero denominator")
	}
	return n / d, nil
}

func join[T ~string](xs []T) string {
	s := make([]string, len(xs))
	for i, x := range xs {
		s[i] = string(x)
	}
	return strings.Join(s, ", ")
}
