package sweeprun

import (
	"context"
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"gopkg.in/yaml.v3"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/internal/devicename"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
	"github.com/robarch/robarch/sweep/store"
)

// keyCase is how TestEveryKeyIsHonoured sets one sweep-file key.
type keyCase struct {
	// values are candidates written as `--set key=value` takes them; the
	// first that changes the shipped file's value is set.
	values []string
	// pick, instead of values, chooses a value from the loaded file.
	pick func(t *testing.T, f *sweep.File) string
	// with are the assignments the value needs beside it (design random
	// needs samples); when set, the key alone must be refused by the
	// loader naming it, or be honoured alone.
	with []string
	// want is what the stored config holds for a value, when it is not
	// the value itself (a budget written 243K is the count).
	want func(t *testing.T, value string) any
	// honoured checks what the trial does with the value, beyond carrying
	// it in its stored config.
	honoured func(t *testing.T, run plannedRun, value any)
}

// plannedRun is a sweep as planned and stored: its plan, its trials as
// the store returns them, and for the first trial the config decoded from
// what the store keeps and the recipe the trial runs from it.
type plannedRun struct {
	plan   *sweep.Plan
	trials []results.Trial
	cfg    sweep.TrialConfig
	recipe recipe.Recipe
	extra  []string
}

// keyCases covers every key of sweep.Keys; TestEveryKeyIsHonoured fails
// for a key without one, so a new key must say how it is honoured.
var keyCases = map[string]keyCase{
	"name": {values: []string{"renamed"}, honoured: func(t *testing.T, r plannedRun, v any) {
		for _, tr := range r.trials {
			assert.Equal(t, v, tr.Sweep)
		}
	}},
	"description": {values: []string{"another description"}},
	"baseline": {pick: otherBaseline, honoured: func(t *testing.T, r plannedRun, v any) {
		for _, tr := range r.trials {
			var spec arch.Spec
			require.NoError(t, json.Unmarshal(tr.Spec, &spec))
			assert.True(t, strings.HasPrefix(spec.Name, v.(string)+"/"), "trial %s has spec %s", tr.Key(), spec.Name)
		}
	}},
	"budget": {pick: smallerBudget, want: func(t *testing.T, v string) any {
		n, err := arch.ParseBudget(v)
		require.NoError(t, err)
		return n
	}, honoured: func(t *testing.T, r plannedRun, v any) { assert.Equal(t, int64(v.(float64)), r.plan.Budget) }},
	"tolerance": {values: []string{"0.05", "0.04"}, honoured: func(t *testing.T, r plannedRun, v any) {
		for _, variant := range r.plan.Feasible() {
			assert.LessOrEqual(t, abs(variant.Deviation), v.(float64)+1e-6, variant.Name)
		}
	}},
	"scale_depth": {values: []string{"true"}},
	"quantum":     {values: []string{"4", "16"}},
	"design": {values: []string{"random"}, with: []string{"samples=2", "seeds=[0]"}, honoured: func(t *testing.T, r plannedRun, _ any) {
		for _, v := range r.plan.Variants[1:] {
			assert.Equal(t, string(sweep.Random), v.Factor, v.Name)
		}
	}},
	"samples": {values: []string{"3"}, with: []string{"design=random", "seeds=[0]"}, honoured: func(t *testing.T, r plannedRun, v any) {
		assert.Len(t, r.plan.Variants, 1+int(v.(float64)), "the baseline and the samples")
	}},
	"seeds":            {values: []string{"[1, 2]", "[3]"}, honoured: seedsHonoured},
	"seeds.list":       {values: []string{"[3, 4]"}, with: []string{"seeds={}"}, honoured: seedsHonoured},
	"seeds.start":      {values: []string{"2", "4"}, with: []string{"seeds.add=1", "seeds.max=5"}, honoured: seedsHonoured},
	"seeds.add":        {values: []string{"1", "3"}, with: []string{"seeds.start=2", "seeds.max=6"}, honoured: seedsHonoured},
	"seeds.max":        {values: []string{"6", "7"}, with: []string{"seeds.start=2", "seeds.add=1"}, honoured: seedsHonoured},
	"seeds.max_trials": {values: []string{"50"}, with: []string{"seeds.start=2", "seeds.add=1", "seeds.max=5"}, honoured: seedsHonoured},
	"seeds.offset":     {values: []string{"5"}, honoured: seedsHonoured},
	"factors": {values: []string{"[{name: kernel, levels: ['7']}]"}, honoured: func(t *testing.T, r plannedRun, _ any) {
		for _, v := range r.plan.Variants {
			assert.Contains(t, []string{results.BaselineFactor, sweep.FactorKernel}, v.Factor, v.Name)
		}
	}},
	"dataset.name":       {values: []string{"synthetic", "mnist"}},
	"dataset.dir":        {values: []string{"/elsewhere/data"}},
	"dataset.train_size": {values: []string{"1000", "2000"}},
	"dataset.test_size":  {values: []string{"500", "600"}},

	"train.method":          {values: []string{"trades", "pgd"}},
	"train.eps":             {values: []string{"0.05", "0.06"}},
	"train.step_size":       {values: []string{"0.01"}, with: []string{"train.method=pgd"}},
	"train.steps":           {values: []string{"3", "4"}, with: []string{"train.method=pgd"}},
	"train.beta":            {values: []string{"2", "3"}, with: []string{"train.method=trades"}},
	"train.epochs":          {values: []string{"3", "4"}},
	"train.batch_size":      {values: []string{"64", "96"}},
	"train.batch_shards":    {values: []string{"2", "4"}},
	"train.lr":              {values: []string{"0.05", "0.06"}},
	"train.momentum":        {values: []string{"0.8"}},
	"train.no_momentum":     {values: []string{"true"}},
	"train.nesterov":        {values: []string{"true"}},
	"train.weight_decay":    {values: []string{"0.001"}},
	"train.no_decay":        {values: []string{"true"}},
	"train.schedule":        {values: []string{"step", "cosine"}},
	"train.peak_at":         {values: []string{"0.3"}, with: []string{"train.schedule=onecycle"}},
	"train.warmup_epochs":   {values: []string{"0.5"}, with: []string{"train.schedule=cosine"}},
	"train.milestones":      {values: []string{"[0.5, 1.5]"}, with: []string{"train.schedule=step"}},
	"train.gamma":           {values: []string{"0.5"}, with: []string{"train.schedule=step"}},
	"train.label_smoothing": {values: []string{"0.2", "0.15"}},
	"train.grad_clip":       {values: []string{"1"}},
	"train.crop_pad":        {values: []string{"2", "4"}},
	"train.hflip":           {values: []string{"true", "false"}},
	"train.eval_size":       {values: []string{"100", "200"}},
	"train.eval_steps":      {values: []string{"3", "4"}},
	"train.eval_batch_size": {values: []string{"32"}},
	"train.overfit_drop":    {values: []string{"0.3"}},
	"train.stop_on_overfit": {values: []string{"true"}},
	"train.precision":       {values: []string{"bf16"}, honoured: precisionHonoured},

	"eval.attacks": {values: []string{"[pgd7, fgsm]"}, honoured: func(t *testing.T, r plannedRun, _ any) {
		assert.Equal(t, 7, r.recipe.FinalSteps, "the final evaluation runs pgd7")
		assert.Equal(t, []string{"fgsm"}, r.extra, "the other attacks go to the robust evaluator")
	}},
	"eval.eps": {values: []string{"0.05"}, honoured: func(t *testing.T, r plannedRun, v any) {
		assert.Equal(t, v, r.recipe.EvalEps)
	}},
	"eval.size": {values: []string{"123"}, honoured: func(t *testing.T, r plannedRun, v any) {
		assert.Equal(t, int(v.(float64)), r.recipe.FinalSize)
	}},
	"eval.check.attacks": {values: []string{"[apgd-dlr]"}, honoured: func(t *testing.T, r plannedRun, _ any) {
		assert.True(t, r.cfg.Sweep.Checks(r.cfg.Sweep.Seeds.Order()[0]), "the first seed runs the check")
	}},
	"eval.check.size":  {values: []string{"123"}, with: []string{"eval.check.attacks=[apgd-ce]"}},
	"eval.check.seeds": {values: []string{"2"}, with: []string{"eval.check.attacks=[apgd-ce]"}},
	"device":           {values: []string{"cpu", "cuda:0"}, honoured: deviceHonoured},
	"nproc_per_trial": {values: []string{"2"}, with: []string{"device=cpu"}, honoured: func(t *testing.T, r plannedRun, v any) {
		if r.cfg.Sweep.Train.BatchShards == 0 {
			assert.Equal(t, int(v.(float64)), r.recipe.BatchShards, "batch shards default to the processes")
		}
	}},
}

// TestEveryKeyIsHonoured is issue 37's done-when: every shipped sweep
// file is loaded with each documented key (sweep.Keys, the list
// docs/sweep-file.md is generated from) set by `--set` to a value unlike
// the file's, planned and turned into the trials the store keeps; every
// trial's stored config must carry the value and, for train.* keys, the
// recipe the trial trains with (sweep.File.TrialRecipe, what Executor.Run
// passes to train.Run) must too. A key the sweep sets itself is refused
// by the loader, naming it. Keys resolved where the trial runs (device,
// train.precision) are checked where they are resolved.
func TestEveryKeyIsHonoured(t *testing.T) {
	for _, k := range sweep.Keys() {
		t.Run(k.Name, func(t *testing.T) {
			if _, ok := sweep.SetBySweep[k.Name]; ok {
				for _, name := range sweep.ShippedSweeps() {
					_, err := load(t, name, k.Name+"=5")
					assert.ErrorContains(t, err, k.Name+": a sweep sets it", name)
				}
				return
			}
			c, ok := keyCases[k.Name]
			if !ok {
				t.Fatalf("documented key %s has no case in keyCases: give it a value and say how a trial honours it", k.Name)
			}
			s := openStore(t) // one per key: the shipped sweeps' names differ
			for _, name := range sweep.ShippedSweeps() {
				t.Run(name, func(t *testing.T) { checkKey(t, s, name, k, c) })
			}
		})
	}
}

func checkKey(t *testing.T, s store.Store, name string, k sweep.Key, c keyCase) {
	base, err := sweep.LoadFile(name)
	require.NoError(t, err)
	value, want := chooseValue(t, base, k, c)
	assign := k.Name + "=" + value
	f, err := load(t, name, assign)
	if err != nil {
		require.NotEmpty(t, c.with, "%s refused: %v", assign, err)
		assert.True(t, namesKey(err, k.Name), "%s refused without naming the key: %v", assign, err)
		t.Logf("%s alone is refused (%v); with %v it is honoured", assign, err, c.with)
		f, err = load(t, name, append([]string{assign}, c.with...)...)
		require.NoError(t, err, "%s with %v", assign, c.with)
	}
	// Planned and enqueued as robarch sweep does; the trials are read
	// back from the store, as a worker claims them.
	p, err := sweep.MakePlan(f)
	require.NoError(t, err)
	_, err = Enqueue(context.Background(), s, p, f)
	require.NoError(t, err)
	trials, err := s.Trials(context.Background(), f.Name)
	require.NoError(t, err)
	require.NotEmpty(t, trials, "%s: nothing to run", assign)
	var run plannedRun
	for i, tr := range trials {
		cfg, err := sweep.DecodeTrialConfig(tr) // what a worker reads from the store
		require.NoError(t, err)
		assert.Equal(t, want, normal(t, k.Get(cfg.Sweep).Interface()), "%s: trial %s's stored config", assign, tr.Key())
		r, extra, err := cfg.Sweep.TrialRecipe(tr.Seed)
		require.NoError(t, err)
		if strings.HasPrefix(k.Name, "train.") {
			got := reflect.ValueOf(r).FieldByIndex(k.Index[1:]).Interface()
			assert.Equal(t, want, normal(t, got), "%s: the recipe trial %s trains with", assign, tr.Key())
		}
		if i == 0 {
			run = plannedRun{plan: p, trials: trials, cfg: cfg, recipe: r, extra: extra}
		}
	}
	if c.honoured != nil {
		c.honoured(t, run, want)
	}
}

// chooseValue returns the first candidate that changes the file's value,
// and what the stored config must then hold (normalised by normal).
func chooseValue(t *testing.T, base *sweep.File, k sweep.Key, c keyCase) (string, any) {
	values := c.values
	if c.pick != nil {
		values = []string{c.pick(t, base)}
	}
	current := normal(t, k.Get(base).Interface())
	for _, v := range values {
		var want any
		if c.want != nil {
			want = normal(t, c.want(t, v))
		} else {
			var y any
			require.NoError(t, yaml.Unmarshal([]byte(v), &y), v)
			want = normal(t, y)
		}
		if !reflect.DeepEqual(want, current) {
			return v, want
		}
	}
	t.Fatalf("%s: every candidate %v is the file's own value %v; add another", k.Name, values, current)
	return "", nil
}

func load(t *testing.T, name string, assignments ...string) (*sweep.File, error) {
	set, err := sweep.ParseSet(assignments)
	require.NoError(t, err)
	return sweep.Load(name, set)
}

// normal is v as JSON reads it back (numbers float64, structs mappings),
// so a value written in a file and a field compare by content.
func normal(t *testing.T, v any) any {
	b, err := json.Marshal(v)
	require.NoError(t, err)
	var out any
	require.NoError(t, json.Unmarshal(b, &out))
	return out
}

// namesKey reports whether a loader error names key: whole, or (for a
// nested key, as study.Seeds words its errors) its mapping and its name.
func namesKey(err error, key string) bool {
	msg := err.Error()
	if strings.Contains(msg, key) {
		return true
	}
	parent, leaf, nested := strings.Cut(key, ".")
	return nested && strings.Contains(msg, parent) && strings.Contains(msg, leaf)
}

func seedsHonoured(t *testing.T, r plannedRun, _ any) {
	s := r.cfg.Sweep.Seeds
	want := s.Order()[:s.Looks()[0]]
	var got []int64
	for _, tr := range r.trials {
		if !slices.Contains(got, tr.Seed) {
			got = append(got, tr.Seed)
		}
	}
	assert.ElementsMatch(t, want, got, "the first round's seeds of %v", s)
}

// precisionHonoured checks the precision a trial trains at, where auto
// is resolved (on a CPU sweep: this machine has no CUDA device).
func precisionHonoured(t *testing.T, r plannedRun, v any) {
	if n, err := devicename.Parse(r.cfg.Sweep.Device); err != nil || n.CUDA {
		return
	}
	p, err := TrainPrecision(r.cfg.Sweep)
	require.NoError(t, err)
	assert.Equal(t, v, string(p))
}

// deviceHonoured checks the device a trial runs on, as Executor.Run
// resolves it: the device, or an error naming it where this machine
// lacks it.
func deviceHonoured(t *testing.T, r plannedRun, v any) {
	d, err := torchrt.ParseDevice(r.cfg.Sweep.Device)
	n, perr := devicename.Parse(v.(string))
	require.NoError(t, perr)
	switch {
	case !n.CUDA:
		require.NoError(t, err)
		assert.Equal(t, gotch.CPU, d)
	case err != nil:
		assert.ErrorContains(t, err, v.(string))
	default:
		assert.Equal(t, gotch.CudaBuilder(uint(n.Index)), d)
	}
}

// otherBaseline is another preset with the baseline's input and classes.
func otherBaseline(t *testing.T, f *sweep.File) string {
	base, err := arch.Get(f.Baseline)
	require.NoError(t, err)
	base = base.WithDefaults()
	for _, name := range arch.List() {
		s, err := arch.Get(name)
		require.NoError(t, err)
		s = s.WithDefaults()
		in, bin := s.Input, base.Input
		if name != f.Baseline && [3]int{in.Channels, in.Height, in.Width} == [3]int{bin.Channels, bin.Height, bin.Width} && s.Classes == base.Classes {
			return name
		}
	}
	t.Fatalf("no preset but %s takes %+v", f.Baseline, base.Input)
	return ""
}

// smallerBudget is 90% of the file's budget, written as a flag writes it.
func smallerBudget(t *testing.T, f *sweep.File) string {
	p, err := sweep.MakePlan(f)
	require.NoError(t, err)
	return arch.FormatBudget(p.Budget * 9 / 10)
}

func abs(x float64) float64 { return max(x, -x) }
