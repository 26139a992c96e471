// Package sweep is what a sweep is: its file (read, defaulted and
// validated completely at load), the one factor vocabulary (names, level
// syntax, help) and the plan that turns a baseline network and the
// factors into budget-matched variants and their trials. It is pure Go
// (no libtorch), so that reports and tools can read sweeps without cgo;
// package sweep/sweeprun runs them.
package sweep

import (
	"encoding/json"
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/go-viper/mapstructure/v2"
	"gopkg.in/yaml.v3"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/configs"
	"github.com/robarch/robarch/internal/attackname"
	"github.com/robarch/robarch/internal/devicename"
	"github.com/robarch/robarch/internal/precision"
	"github.com/robarch/robarch/recipe"
	"github.com/robarch/robarch/study"
)

// Design is how variants are drawn from the design space.
type Design string

const (
	// OneFactor changes one factor at a time around the baseline, as the
	// RobArch study does.
	OneFactor Design = "ofat"
	// Random samples the joint space of all factors, as pycls's
	// design-space studies do.
	Random Design = "random"
)

// File is a sweep definition, as written in configs/sweeps/*.yaml.
type File struct {
	Name        string `json:"name"`                  // names the sweep in the store and the report
	Description string `json:"description,omitempty"` // one line, shown by the report
	// Baseline is a preset name (arch.List) or a spec file path.
	Baseline string `json:"baseline"`
	// Budget is the parameter budget, written 26M, 300K or 26143228 and
	// held as the count once read; absent means the baseline's own count.
	Budget     Budget  `json:"budget,omitempty"`
	Tolerance  float64 `json:"tolerance,omitempty"`   // allowed distance to the budget, a fraction (default arch.DefaultTolerance, ±2%)
	ScaleDepth bool    `json:"scale_depth,omitempty"` // let Fit change depths too
	// Quantum is the multiple fitted widths are rounded to (default 8, as
	// RobArch; small networks need a finer one to land near the budget).
	Quantum int `json:"quantum,omitempty"`

	Design  Design `json:"design"`            // ofat (one factor at a time) or random
	Samples int    `json:"samples,omitempty"` // random design: how many variants
	// Seeds is a list ([0, 1, 2]) or an adaptive policy ({start: 4,
	// add: 2, max: 8}); see study.Seeds.
	Seeds   study.Seeds `json:"seeds"`
	Factors []Factor    `json:"factors"` // the factors and levels to vary (below)

	Dataset DatasetConfig `json:"dataset"`
	Train   recipe.Recipe `json:"train"`
	Eval    EvalConfig    `json:"eval"`
	Device  string        `json:"device,omitempty"` // cpu, cuda or cuda:N
	// NprocPerTrial trains every trial data-parallel on this many local
	// processes the worker starts (0 or 1: in the worker's own process);
	// train.batch_shards then defaults to it, so the numbers are those of
	// one process with that many batch shards (docs/distributed.md).
	NprocPerTrial int `json:"nproc_per_trial,omitempty"`
}

// Factor is one architecture component and the levels it takes.
type Factor struct {
	Name   string   `json:"name"`
	Levels []string `json:"levels"`
}

// DatasetConfig names the data of every trial.
type DatasetConfig struct {
	Name      string `json:"name"`                 // fashion-mnist, mnist, cifar10, cifar100, imagefolder:DIR or synthetic
	Dir       string `json:"dir,omitempty"`        // its folder (default: where Debian or the dataset's convention puts it)
	TrainSize int    `json:"train_size,omitempty"` // a stratified subset of the training split (0 = all)
	TestSize  int    `json:"test_size,omitempty"`  // a stratified subset of the test split (0 = all)
}

// EvalConfig is the final robustness evaluation of each trial.
type EvalConfig struct {
	// Attacks by name: pgd<k> (e.g. pgd20), aa (AutoAttack standard),
	// aa-fast, apgd-ce, apgd-t, fab-t, square.
	Attacks []string `json:"attacks"`
	Eps     float64  `json:"eps"`            // evaluation radius (default: train.eps)
	Size    int      `json:"size,omitempty"` // test examples attacked (0 = all of the test split)
	// Check re-scores the first seeds of every variant with stronger
	// attacks on one fixed subset, to catch PGD gains that are gradient
	// masking.
	Check CheckConfig `json:"check"`
}

// CheckConfig is the AutoAttack check of a sweep: for the first Seeds
// seeds of every variant, the sweep's PGD and Attacks are run on the same
// Size test examples (one fixed stratified subset), stored as
// check_pgd_acc and check_aa_acc (the worst case over Attacks).
type CheckConfig struct {
	Attacks []string `json:"attacks,omitempty"` // e.g. [aa] or the cheaper [apgd-ce, apgd-dlr]; empty: no check
	Size    int      `json:"size,omitempty"`    // default 500
	Seeds   int      `json:"seeds,omitempty"`   // default 1
}

// LoadFile reads a sweep definition: a shipped name (configs/sweeps) or a
// YAML/JSON path. Keys the file leaves out keep the defaults.
func LoadFile(nameOrPath string) (*File, error) { return Load(nameOrPath, nil) }

// Load reads a sweep definition and, before decoding, replaces the keys
// named in set (dotted: "train.epochs"); values may be text, as a flag
// gives them. It is how `robarch sweep`'s flags override a file: the
// command line, its ROBARCH_SWEEP_* variables and --config reach a sweep
// only through those flags, so there is one config path.
func Load(nameOrPath string, set map[string]any) (*File, error) {
	data, err := readSweepSource(nameOrPath)
	if err != nil {
		return nil, err
	}
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("sweep %s: %w", nameOrPath, err)
	}
	if raw == nil {
		raw = map[string]any{}
	}
	// In key order, so that a mapping comes before the keys inside it
	// (--set seeds={...} --set seeds.offset=5 is the same whatever the
	// map's order).
	for _, key := range slices.Sorted(maps.Keys(set)) {
		setKey(raw, key, set[key])
	}
	// After the replacements, so that a mistyped --set key is named too.
	if err := checkMappingKeys(raw, ""); err != nil {
		return nil, fmt.Errorf("sweep %s: %w", nameOrPath, err)
	}
	if err := checkKeys(raw); err != nil {
		return nil, fmt.Errorf("sweep %s: %w", nameOrPath, err)
	}
	if err := checkSetBySweep(raw); err != nil {
		return nil, fmt.Errorf("sweep %s: %w", nameOrPath, err)
	}
	if err := parseEpsKeys(raw); err != nil {
		return nil, fmt.Errorf("sweep file: %w", err)
	}
	if err := parseBudgetKey(raw); err != nil {
		return nil, fmt.Errorf("sweep %s: %w", nameOrPath, err)
	}
	var f File
	dec, err := mapstructure.NewDecoder(&mapstructure.DecoderConfig{
		TagName:          "json",
		ErrorUnused:      true,
		WeaklyTypedInput: true,
		Squash:           true,
		DecodeHook:       mapstructure.ComposeDecodeHookFunc(seedsHook, mapstructure.StringToSliceHookFunc(",")),
		Result:           &f,
	})
	if err != nil {
		return nil, err
	}
	if err := dec.Decode(raw); err != nil {
		return nil, fmt.Errorf("sweep file: %w", err)
	}
	f = f.WithDefaults()
	if err := f.Validate(); err != nil {
		return nil, err
	}
	return &f, nil
}

// ParseSet reads `--set key=value` assignments (pycls's opts): any dotted
// sweep-file key, its value written as in the file (YAML: 7, 0.05,
// [pgd10, aa], "{start: 3, add: 2, max: 5}"). Load checks the keys.
func ParseSet(assignments []string) (map[string]any, error) {
	out := map[string]any{}
	for _, a := range assignments {
		key, text, ok := strings.Cut(a, "=")
		key = strings.TrimSpace(key)
		if !ok || key == "" {
			return nil, fmt.Errorf("--set %q: want key=value, e.g. train.lr=0.05 (keys: docs/sweep-file.md)", a)
		}
		if _, dup := out[key]; dup {
			return nil, fmt.Errorf("--set %s: given twice", key)
		}
		var v any
		if err := yaml.Unmarshal([]byte(text), &v); err != nil {
			return nil, fmt.Errorf("--set %s: value %q: %w", key, text, err)
		}
		if v == nil {
			v = text
		}
		out[key] = v
	}
	return out, nil
}

// getKey and setKey read and write a dotted key of nested YAML mappings;
// setKey creates the mappings it needs and replaces whatever was there.
func getKey(m map[string]any, key string) any {
	head, rest, nested := strings.Cut(key, ".")
	if !nested {
		return m[head]
	}
	sub, _ := m[head].(map[string]any)
	if sub == nil {
		return nil
	}
	return getKey(sub, rest)
}

func setKey(m map[string]any, key string, value any) {
	head, rest, nested := strings.Cut(key, ".")
	if !nested {
		m[head] = value
		return
	}
	sub, _ := m[head].(map[string]any)
	if sub == nil {
		sub = map[string]any{}
		m[head] = sub
	}
	setKey(sub, rest, value)
}

// seedsHook reads `seeds` as a list ([0, 1], or "0,1" from a flag) or as
// a policy mapping.
func seedsHook(from, to reflect.Type, data any) (any, error) {
	if to != reflect.TypeOf(study.Seeds{}) {
		return data, nil
	}
	switch d := data.(type) {
	case string:
		var list []int64
		for part := range strings.SplitSeq(d, ",") {
			part = strings.TrimSpace(part)
			if part == "" {
				continue
			}
			n, err := strconv.ParseInt(part, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("seeds: %q: want integers such as 0,1,2", d)
			}
			list = append(list, n)
		}
		return study.Seeds{List: list}, nil
	case []any:
		list := make([]int64, len(d))
		for i, v := range d {
			n, err := strconv.ParseInt(strings.TrimSpace(fmt.Sprint(v)), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("seeds[%d]: %v: want an integer", i, v)
			}
			list[i] = n
		}
		return study.Seeds{List: list}, nil
	case []int64:
		return study.Seeds{List: d}, nil
	case []string:
		return seedsHook(from, to, strings.Join(d, ","))
	}
	return data, nil
}

func readSweepSource(nameOrPath string) ([]byte, error) {
	if b, err := configs.FS.ReadFile("sweeps/" + nameOrPath + ".yaml"); err == nil {
		return b, nil
	}
	b, err := os.ReadFile(nameOrPath)
	if err != nil {
		return nil, fmt.Errorf("sweep %q is neither a shipped sweep (%s) nor a readable file: %w",
			nameOrPath, strings.Join(ShippedSweeps(), ", "), err)
	}
	return b, nil
}

// ShippedSweeps lists the sweeps under configs/sweeps.
func ShippedSweeps() []string {
	entries, _ := configs.FS.ReadDir("sweeps")
	var names []string
	for _, e := range entries {
		if n, ok := strings.CutSuffix(e.Name(), ".yaml"); ok {
			names = append(names, n)
		}
	}
	return names
}

// WithDefaults fills zero fields.
func (f File) WithDefaults() File {
	if f.Tolerance == 0 {
		f.Tolerance = arch.DefaultTolerance
	}
	if f.Design == "" {
		f.Design = OneFactor
	}
	if !f.Seeds.Adaptive() && len(f.Seeds.List) == 0 {
		f.Seeds.List = []int64{0}
	}
	if len(f.Eval.Check.Attacks) > 0 {
		if f.Eval.Check.Size == 0 {
			f.Eval.Check.Size = 500
		}
		if f.Eval.Check.Seeds == 0 {
			f.Eval.Check.Seeds = 1
		}
	}
	if f.Eval.Eps == 0 {
		f.Eval.Eps = f.Train.Eps
	}
	if len(f.Eval.Attacks) == 0 {
		f.Eval.Attacks = []string{DefaultAttack}
	}
	if f.Device == "" {
		f.Device = "cpu"
	}
	f.Train.Precision = normalPrecision(f.Train.Precision)
	return f
}

// Validate reports the first problems, naming fields and allowed values:
// every key of the file is checked here, when it is read, the recipe each
// trial will train with included.
func (f File) Validate() error {
	var errs []string
	bad := func(format string, args ...any) { errs = append(errs, fmt.Sprintf(format, args...)) }
	f.validateDesign(bad)
	f.validateEval(bad)
	f.validateRun(bad)
	if len(errs) > 0 {
		return fmt.Errorf("sweep %s: %s", f.Name, strings.Join(errs, "; "))
	}
	return nil
}

// validateDesign checks what decides the variants and seeds.
func (f File) validateDesign(bad func(string, ...any)) {
	if f.Name == "" {
		bad("name: must not be empty")
	}
	if f.Baseline == "" {
		bad("baseline: want a preset name or a spec file")
	}
	if f.Budget < 0 {
		bad("budget: %d, want a positive count (or none: the baseline's own)", f.Budget)
	}
	if f.Tolerance <= 0 || f.Tolerance >= 1 {
		bad("tolerance: %g, want a fraction in (0,1)", f.Tolerance)
	}
	if f.Quantum < 0 {
		bad("quantum: %d, want 0 (the default, 8) or a positive multiple", f.Quantum)
	}
	switch f.Design {
	case OneFactor:
		if f.Samples != 0 {
			bad("samples: %d, only design random draws samples (design is ofat)", f.Samples)
		}
	case Random:
		if f.Samples <= 0 {
			bad("samples: %d, want > 0 for design random", f.Samples)
		}
	default:
		bad("design: %q, want ofat or random", f.Design)
	}
	seen := map[string]bool{}
	for i, fa := range f.Factors {
		if !slices.Contains(FactorNames(), fa.Name) {
			bad("factors[%d].name: %q, want one of %s", i, fa.Name, strings.Join(FactorNames(), ", "))
		}
		if seen[fa.Name] {
			bad("factors[%d].name: %q appears twice", i, fa.Name)
		}
		seen[fa.Name] = true
		if len(fa.Levels) == 0 {
			bad("factors[%d].levels: empty", i)
		}
	}
	if err := f.Seeds.Validate(); err != nil {
		bad("%v", err)
	}
	if f.Seeds.Adaptive() && f.Design != OneFactor {
		bad("seeds: an adaptive policy needs design ofat (verdicts per level decide the rounds)")
	}
}

// validateEval checks the final evaluation and the AutoAttack check.
func (f File) validateEval(bad func(string, ...any)) {
	for i, a := range f.Eval.Attacks {
		if _, err := attackname.Parse(a); err != nil {
			bad("eval.attacks[%d]: %v", i, err)
		}
	}
	for i, a := range f.Eval.Check.Attacks {
		n, err := attackname.Parse(a)
		switch {
		case err != nil:
			bad("eval.check.attacks[%d]: %v", i, err)
		case n.IsPGD():
			bad("eval.check.attacks[%d]: %q: the check runs the sweep's PGD itself; list stronger attacks (%s)", i, a, strings.Join(strongerThanPGD(), ", "))
		}
	}
	if f.Eval.Size < 0 {
		bad("eval.size: %d, want 0 (the whole test split) or more", f.Eval.Size)
	}
	if f.Eval.Check.Size < 0 || f.Eval.Check.Seeds < 0 {
		bad("eval.check: size %d, seeds %d: want 0 (default) or more", f.Eval.Check.Size, f.Eval.Check.Seeds)
	}
	if len(f.Eval.Check.Attacks) == 0 {
		if f.Eval.Check.Size != 0 {
			bad("eval.check.size: %d, but no check runs without eval.check.attacks", f.Eval.Check.Size)
		}
		if f.Eval.Check.Seeds != 0 {
			bad("eval.check.seeds: %d, but no check runs without eval.check.attacks", f.Eval.Check.Seeds)
		}
	}
	if f.Eval.Eps <= 0 {
		bad("eval.eps: %g, want > 0 (or set train.eps)", f.Eval.Eps)
	}
}

// validateRun checks the data, the device and the recipe of every trial.
func (f File) validateRun(bad func(string, ...any)) {
	if f.Dataset.Name == "" {
		bad("dataset.name: must not be empty")
	}
	if f.Dataset.TrainSize < 0 || f.Dataset.TestSize < 0 {
		bad("dataset: train_size %d, test_size %d: want 0 (all) or more", f.Dataset.TrainSize, f.Dataset.TestSize)
	}
	device, err := devicename.Parse(f.Device)
	if err != nil {
		bad("device: %v", err)
	}
	switch {
	case f.NprocPerTrial < 0:
		bad("nproc_per_trial: %d, want 0 or 1 (in the worker's process) or more (data-parallel)", f.NprocPerTrial)
	case f.NprocPerTrial > 1 && device.CUDA:
		bad("nproc_per_trial: %d with device %s: data-parallel training on CUDA needs c10d's NCCL backend, which this build does not have yet; use device cpu", f.NprocPerTrial, f.Device)
	}
	if f.NprocPerTrial > 1 && f.Train.BatchShards != 0 && f.Train.BatchShards%f.NprocPerTrial != 0 {
		bad("train.batch_shards: %d must be a multiple of nproc_per_trial %d", f.Train.BatchShards, f.NprocPerTrial)
	}
	if err := checkPrecision(f.Train.Precision); err != nil {
		bad("train.%v", err)
	}
	for _, u := range f.Train.Unread() {
		bad("train.%s: %s (remove it, or set the method or schedule that reads it)", u.Key, u.Reason)
	}
	if r, _, err := f.TrialRecipe(0); err == nil {
		// Precision is checked above; auto is resolved where the trial runs.
		r.Precision = ""
		if err := r.WithDefaults().Validate(); err != nil {
			bad("train: %v", err)
		}
	}
}

// JSON returns the file as JSON, the resolved config stored with trials.
func (f File) JSON() json.RawMessage {
	b, _ := json.Marshal(f)
	return b
}

// normalPrecision writes aliases (bfloat16, half) as their names and fp32
// as recipe.Recipe does (unset), so that equal sweeps compare equal; an
// unknown value is kept for checkPrecision to report.
func normalPrecision(p precision.Precision) precision.Precision {
	got, err := precision.Parse(string(p))
	switch {
	case err != nil:
		return p
	case got == precision.FP32:
		return ""
	}
	return got
}

func checkPrecision(p precision.Precision) error {
	_, err := precision.Parse(string(p))
	return err
}

// strongerThanPGD lists the attack names an AutoAttack-style check may
// use: every name but PGD's and FGSM's.
func strongerThanPGD() []string {
	var out []string
	for _, name := range attackname.Names() {
		if n, err := attackname.Parse(name); err == nil && n.Kind != attackname.FGSM {
			out = append(out, name)
		}
	}
	return out
}
