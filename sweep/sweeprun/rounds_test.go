package sweeprun

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
)

func TestSeedsPolicyInSweepFiles(t *testing.T) {
	dir := t.TempDir()
	tests := []struct {
		name, seeds string
		want        study.Seeds
		err         string
	}{
		{"list", "[0, 1, 2]", study.Seeds{List: []int64{0, 1, 2}}, ""},
		{"policy", "{start: 3, add: 2, max: 7, max_trials: 30}", study.Seeds{Start: 3, Add: 2, Max: 7, MaxTrials: 30}, ""},
		{"duplicate", "[0, 0]", study.Seeds{}, "seeds: 0 appears twice"},
		{"start too small", "{start: 1, add: 1, max: 4}", study.Seeds{}, "start 1: want at least 2"},
		{"max below start", "{start: 4, add: 2, max: 3}", study.Seeds{}, "max 3: want at least start (4)"},
		{"unknown key", "{start: 3, add: 2, maks: 7}", study.Seeds{}, "maks"},
		{"add without start", "{add: 2, max: 7}", study.Seeds{}, "need start"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(dir, tt.name+".yaml")
			require.NoError(t, os.WriteFile(path, []byte(fmt.Sprintf(`name: s
baseline: micro
quantum: 2
seeds: %s
factors: [{name: kernel, levels: ["5"]}]
dataset: {name: synthetic}
train: {method: fgsm-rs, eps: 0.1, epochs: 1}
`, tt.seeds)), 0o644))
			f, err := sweep.LoadFile(path)
			if tt.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, f.Seeds)
			// The stored config round-trips the policy.
			var back sweep.File
			require.NoError(t, json.Unmarshal(f.JSON(), &back))
			assert.Equal(t, f.Seeds, back.Seeds)
		})
	}
	t.Run("flag list", func(t *testing.T) {
		f, err := sweep.Load("fashion-mnist-micro", map[string]any{"seeds": "4,5"})
		require.NoError(t, err)
		assert.Equal(t, study.Seeds{List: []int64{4, 5}}, f.Seeds)
	})
}

// A seed fixes the data order and the evaluation subset of every
// variant: the recipe a trial runs with depends on the seed alone, which
// is what lets the analysis pair variants by seed.
func TestSeedFixesRecipeAcrossVariants(t *testing.T) {
	f, p := planForTest(t)
	trials, err := p.Trials(f)
	require.NoError(t, err)
	bySeed := map[int64]string{}
	for _, tr := range trials {
		cfg, err := sweep.DecodeTrialConfig(tr)
		require.NoError(t, err)
		r, _, err := cfg.Sweep.TrialRecipe(tr.Seed)
		require.NoError(t, err)
		key := fmt.Sprintf("%+v", r)
		if prev, ok := bySeed[tr.Seed]; ok {
			assert.Equal(t, prev, key, "seed %d: variant %s trains with another recipe", tr.Seed, tr.Variant)
		}
		bySeed[tr.Seed] = key
	}
	require.GreaterOrEqual(t, len(bySeed), 2)
	assert.NotEqual(t, bySeed[f.Seeds.Order()[0]], bySeed[f.Seeds.Order()[1]])
}

// scoredTrial returns PGD accuracy = a per-variant true effect plus a
// per-seed shift plus trial noise, all fixed by (variant, seed), so the
// same trials give the same values whoever runs them.
func scoredTrial(effects map[string]float64) TrialFunc {
	return func(ctx context.Context, t results.Trial, cfg sweep.TrialConfig, dir string) (map[string]float64, error) {
		h := fnv.New64a()
		fmt.Fprintf(h, "%s/%d", t.Variant, t.Seed)
		rng := rand.New(rand.NewPCG(h.Sum64(), uint64(t.Seed)))
		seedShift := rand.New(rand.NewPCG(uint64(t.Seed), 1)).NormFloat64() * 0.01
		v := 0.6 + effects[t.Variant] + seedShift + rng.NormFloat64()*0.01
		return map[string]float64{results.CleanAcc: 0.8, results.PGDAcc: v, "eval_examples": 1000}, nil
	}
}

func adaptiveFile(t *testing.T) (*sweep.File, *sweep.Plan) {
	f, err := sweep.LoadFile("fashion-mnist-micro")
	require.NoError(t, err)
	f.Seeds = study.Seeds{Start: 3, Add: 2, Max: 7}
	f.Eval.Check = sweep.CheckConfig{}
	// Each seed draws its own evaluation subset of the whole test split,
	// so no fixed-subset error is added to the seed noise.
	f.Dataset.TestSize, f.Eval.Size = 0, 1000
	p, err := sweep.MakePlan(f)
	require.NoError(t, err)
	return f, p
}

// An adaptive sweep enqueues its rounds itself; one worker or three
// racing workers end with the same trials and the same values.
func TestAdaptiveRoundsDoNotDependOnWorkers(t *testing.T) {
	ctx := context.Background()
	f, p := adaptiveFile(t)
	effects := map[string]float64{}
	for i, v := range p.Feasible() {
		// One clear effect, the others null or small.
		effects[v.Name] = []float64{0, -0.05, 0, 0.004, 0}[i%5]
	}
	run := func(workers int) map[string]map[string]float64 {
		s := openStore(t)
		_, err := Enqueue(ctx, s, p, f)
		require.NoError(t, err)
		var wg sync.WaitGroup
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := &Runner{Store: s, Run: scoredTrial(effects), WorkDir: t.TempDir(), Lease: 300 * time.Millisecond,
					Worker: fmt.Sprintf("w%d", w), Wait: workers > 1}
				_, err := r.Work(ctx, f.Name)
				assert.NoError(t, err)
			}()
		}
		wg.Wait()
		return rows(t, s, f.Name)
	}
	one := run(1)
	three := run(3)
	assert.Equal(t, one, three)
	n := len(p.Feasible())
	assert.Greater(t, len(one), n*3, "at least one extra round ran")
	assert.Less(t, len(one), n*7, "levels with a verdict got no more seeds")
	// The clear level stopped at the first look; the baseline has every seed used.
	count := map[string]int{}
	for key := range one {
		count[key[:len(key)-2]]++
	}
	clear := p.Feasible()[1].Name
	assert.Equal(t, 3, count[f.Name+"/"+clear], "%s has a -5 pt effect: decided after the first round", clear)
}
