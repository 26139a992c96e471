package attack

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func evaluate(t *testing.T, m Model, x, y *ts.Tensor, batch int, attacks ...Attack) Report {
	t.Helper()
	var rep Report
	onTorch(t, func() error {
		var err error
		rep, err = Evaluate(context.Background(), m, TensorBatches(x, y, batch), attacks, EvalOptions{Log: quiet})
		return err
	})
	return rep
}

func TestEvaluateReport(t *testing.T) {
	f := trained(t, 10)
	fgsm := FGSM{Eps: 0.05}
	pgd := PGD{Eps: 0.05, Steps: 5}
	aa := &AutoAttack{Eps: 0.05, Steps: 5, Targets: 2, Queries: 30, Seed: 1}
	rep := evaluate(t, f.net.model(), f.x, f.y, 40, fgsm, pgd, aa)

	n := int(size(f.x)[0])
	assert.Equal(t, n, rep.N)
	assert.InDelta(t, float64(f.cleanRight)/float64(n), rep.CleanAcc, 1e-12)
	assert.Equal(t, []string{"fgsm", "pgd5", "aa"}, rep.Attacks)

	// Deterministic attacks give the same accuracy as attacking the whole
	// set at once (batching does not change them).
	var wantFGSM, wantPGD, worstByHand int
	onTorch(t, func() error {
		a, err := fgsm.Perturb(f.net.model(), f.x, f.y)
		require.NoError(t, err)
		b, err := pgd.Perturb(f.net.model(), f.x, f.y)
		require.NoError(t, err)
		defer drop(a, b)
		wantFGSM, wantPGD = countRight(f.net.model(), a, f.y), countRight(f.net.model(), b, f.y)
		ra, rb := correct(f.net.model(), a, f.y), correct(f.net.model(), b, f.y)
		defer drop(ra, rb)
		worstByHand = int(count(ra.MustLogicalAnd(rb, false)))
		return nil
	})
	assert.InDelta(t, float64(wantFGSM)/float64(n), rep.PerAttack["fgsm"], 1e-12)
	assert.InDelta(t, float64(wantPGD)/float64(n), rep.PerAttack["pgd5"], 1e-12)
	for name, acc := range rep.PerAttack {
		assert.LessOrEqual(t, rep.RobustAcc, acc, name)
		assert.LessOrEqual(t, acc, rep.CleanAcc, name)
	}
	assert.LessOrEqual(t, rep.RobustAcc, float64(worstByHand)/float64(n))
	assert.Less(t, rep.RobustAcc, rep.CleanAcc)

	// AutoAttack's stages are cumulative and end at its own accuracy.
	st := rep.Stages["aa"]
	require.Len(t, st, 4)
	assert.Equal(t, "apgd-ce", st[0].Attack)
	for i := 1; i < len(st); i++ {
		assert.LessOrEqual(t, st[i].RobustAcc, st[i-1].RobustAcc)
	}
	assert.InDelta(t, rep.PerAttack["aa"], st[3].RobustAcc, 1e-12)
	assert.Empty(t, rep.Warnings, "a plain trained model passes the sanity checks")

	raw, err := json.Marshal(rep)
	require.NoError(t, err)
	var back map[string]any
	require.NoError(t, json.Unmarshal(raw, &back))
	for _, key := range []string{"n", "clean_acc", "robust_acc", "per_attack"} {
		assert.Contains(t, back, key)
	}
	assert.Contains(t, back["per_attack"], "pgd5")
}

func TestEvaluateRejectsBadInput(t *testing.T) {
	f := trained(t, 10)
	onTorch(t, func() error {
		_, err := Evaluate(context.Background(), f.net.model(), TensorBatches(f.x, f.y, 32),
			[]Attack{PGD{Eps: 0.1, Steps: 1}, PGD{Eps: 0.2, Steps: 1}}, EvalOptions{})
		assert.ErrorContains(t, err, "twice")
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		_, err = Evaluate(ctx, f.net.model(), TensorBatches(f.x, f.y, 32), []Attack{FGSM{Eps: 0.1}}, EvalOptions{})
		assert.ErrorIs(t, err, context.Canceled)
		_, err = Evaluate(context.Background(), f.net.model(), TensorBatches(f.x, f.y, 0), nil, EvalOptions{})
		assert.Error(t, err)
		return nil
	})
}

func TestSanityWarnings(t *testing.T) {
	f := trained(t, 10)
	base := f.net.model()
	randomised := func(x *ts.Tensor) (*ts.Tensor, error) {
		z, err := base(x)
		if err != nil {
			return nil, err
		}
		noise := z.MustRandnLike(false).MustMulScalar(ts.FloatScalar(0.5), true)
		defer drop(noise)
		return z.Add(noise, true)
	}
	probabilities := func(x *ts.Tensor) (*ts.Tensor, error) {
		z, err := base(x)
		if err != nil {
			return nil, err
		}
		return z.Softmax(1, gotch.Float, true)
	}
	// Logits scaled by 1e4: the softmax saturates, the cross-entropy's
	// gradient is exactly zero, and only the black-box attack gets through.
	masked := func(x *ts.Tensor) (*ts.Tensor, error) {
		z, err := base(x)
		if err != nil {
			return nil, err
		}
		return z.MulScalar(ts.FloatScalar(1e4), true)
	}
	for _, tc := range []struct {
		name    string
		m       Model
		attacks []Attack
		want    []string
	}{
		{"randomised", randomised, nil, []string{"randomised"}},
		{"probabilities", probabilities, nil, []string{"probabilities"}},
		{"masked gradients", masked, []Attack{PGD{Eps: 0.07, Steps: 5}, Square{Eps: 0.07, Queries: 200, Seed: 1}}, []string{"zero input gradient", "Square attack beat"}},
		{"scale-invariant DLR sees through", masked, []Attack{&AutoAttack{Eps: 0.07, Steps: 5, Targets: 1, Queries: 50, Seed: 1}}, []string{"zero input gradient"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rep := evaluate(t, tc.m, f.x, f.y, 96, tc.attacks...)
			assert.Len(t, rep.Warnings, len(tc.want), "%q", rep.Warnings)
			for _, w := range tc.want {
				found := false
				for _, got := range rep.Warnings {
					found = found || strings.Contains(got, w)
				}
				assert.True(t, found, "want a warning about %q in %q", w, rep.Warnings)
			}
		})
	}
}

func TestSquareWarningsInAutoAttackStages(t *testing.T) {
	rep := Report{
		Attacks:   []string{"aa"},
		PerAttack: map[string]float64{"aa": 0.40},
		Stages: map[string][]StageAcc{"aa": {
			{"apgd-ce", 0.50}, {"apgd-t", 0.45}, {"fab-t", 0.45}, {"square", 0.40},
		}},
	}
	w := squareWarnings(rep)
	require.Len(t, w, 1)
	assert.Contains(t, w[0], "Square fooled samples")
	rep.Stages["aa"][3].RobustAcc = 0.449
	assert.Empty(t, squareWarnings(rep), "within 0.2 points is noise")

	rep = Report{Attacks: []string{"pgd20", "square"}, PerAttack: map[string]float64{"pgd20": 0.5, "square": 0.499}}
	assert.Empty(t, squareWarnings(rep))
	rep.PerAttack["square"] = 0.45
	assert.Len(t, squareWarnings(rep), 1)
}

// seen wraps an attack and counts the points it was asked to perturb.
type seen struct {
	Attack
	points *int
}

func (s seen) Perturb(m Model, x, y *ts.Tensor) (*ts.Tensor, error) {
	*s.points += int(size(x)[0])
	return s.Attack.Perturb(m, x, y)
}

func TestEvaluateAttacksOnlyStandingPoints(t *testing.T) {
	f := trained(t, 10)
	n := int(size(f.x)[0])
	y := mislabelled(t, f.y, 3, 10)
	defer drop(y)
	right := countRight(f.net.model(), f.x, y)
	require.Less(t, right, n, "some points misclassified clean")
	var points int
	rep := evaluate(t, f.net.model(), f.x, y, 16, seen{PGD{Eps: 0.05, Steps: 3, RandomStart: true, Seed: 4}, &points})
	assert.Equal(t, right, points, "only the points classified correctly are attacked")
	assert.InDelta(t, float64(right)/float64(n), rep.CleanAcc, 1e-12)
	assert.Less(t, rep.RobustAcc, rep.CleanAcc)
}

// shardOf is the batches of a sharded evaluation's process rank.
func shardOf(all func(func(Batch, error) bool), rank, size int) func(func(Batch, error) bool) {
	return func(yield func(Batch, error) bool) {
		k := 0
		for b, err := range all {
			if err != nil || k%size == rank {
				if !yield(b, err) {
					return
				}
			}
			k++
		}
	}
}

func TestEvaluateShardedEqualsOneProcess(t *testing.T) {
	f := trained(t, 10)
	attacks := func() []Attack {
		return []Attack{
			PGD{Eps: 0.05, Steps: 4, RandomStart: true, Seed: 3},
			&AutoAttack{Eps: 0.05, Steps: 4, Targets: 2, Queries: 20, Seed: 1},
		}
	}
	const batch = 16                // 6 batches of the fixture: ranks get 3 and 3, or 2, 2 and 2
	y := mislabelled(t, f.y, 4, 10) // points lost before any attack, in every shard
	defer drop(y)
	whole := evaluate(t, f.net.model(), f.x, y, batch, attacks()...)
	for _, size := range []int{2, 3} {
		// The processes run one after another here; Sum adds the vectors of
		// the ranks that ran before, so the last rank's report is the total.
		var total []float64
		var last Report
		for rank := size - 1; rank >= 0; rank-- {
			sh := &Shard{Rank: rank, Size: size, Sum: func(v []float64) error {
				if total == nil {
					total = make([]float64, len(v))
				}
				require.Len(t, v, len(total), "every rank sums a vector of the same length")
				for i := range v {
					total[i] += v[i]
					v[i] = total[i]
				}
				return nil
			}}
			onTorch(t, func() error {
				var err error
				last, err = Evaluate(context.Background(), f.net.model(), shardOf(TensorBatches(f.x, y, batch), rank, size), attacks(), EvalOptions{Log: quiet, Shard: sh})
				return err
			})
		}
		assert.Equal(t, whole.N, last.N, "size %d", size)
		assert.Equal(t, whole.CleanAcc, last.CleanAcc, "size %d", size)
		assert.Equal(t, whole.RobustAcc, last.RobustAcc, "size %d", size)
		assert.Equal(t, whole.PerAttack, last.PerAttack, "size %d", size)
		assert.Equal(t, whole.Stages, last.Stages, "size %d", size)
	}
	_, err := Evaluate(context.Background(), f.net.model(), TensorBatches(f.x, f.y, batch), nil, EvalOptions{Log: quiet, Shard: &Shard{Rank: 0, Size: 2}})
	assert.ErrorContains(t, err, "no Sum")
}

// mislabelled is y with every k-th label moved to the next class, so that
// a model right on y is wrong on those points.
func mislabelled(t *testing.T, y *ts.Tensor, k, classes int64) *ts.Tensor {
	t.Helper()
	labels := int64s(y)
	for i := range labels {
		if int64(i)%k == 0 {
			labels[i] = (labels[i] + 1) % classes
		}
	}
	out, err := ts.NewTensorFromData(labels, []int64{int64(len(labels))})
	require.NoError(t, err)
	moved, err := out.To(device(y), true)
	require.NoError(t, err)
	return moved
}
