package sweeprun

import (
	"context"
	"fmt"

	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
	"github.com/robarch/robarch/internal/attackname"
	"github.com/robarch/robarch/train"
)

// EvaluateAttacks is the default RobustEvaluator: the attack package's
// attacks by name (aa, aa-fast, apgd-ce, apgd-t, fab-t, square, ...) at
// L∞ radius eps on the test examples, in eval mode. Each attack's accuracy
// is stored as "<name>_acc" (AutoAttack as results.AAAcc), and the worst
// case over them as "robust_acc".
func EvaluateAttacks(ctx context.Context, m train.Model, test data.Source, names []string, eps float64, seed int64) (map[string]float64, error) {
	return EvaluateAttacksSharded(nil)(ctx, m, test, names, eps, seed)
}

// evalBatch is the batch size of a trial's attack evaluation; sharded
// evaluations split the points by batches of this size.
const evalBatch = 128

// EvaluateAttacksSharded is EvaluateAttacks as one process's share of an
// evaluation split across processes (nil: all of it); the counts are
// summed, so every process returns the whole evaluation's metrics.
func EvaluateAttacksSharded(shard *attack.Shard) RobustEvaluator {
	return func(ctx context.Context, m train.Model, test data.Source, names []string, eps float64, seed int64) (map[string]float64, error) {
		return evaluateAttacks(ctx, m, test, names, eps, seed, shard)
	}
}

func evaluateAttacks(ctx context.Context, m train.Model, test data.Source, names []string, eps float64, seed int64, shard *attack.Shard) (map[string]float64, error) {
	attacks := make([]attack.Attack, len(names))
	for i, n := range names {
		a, err := attack.ByName(n, attack.Linf, eps, seed)
		if err != nil {
			return nil, err
		}
		attacks[i] = a
	}
	if shard != nil {
		var err error
		if test, err = data.ShardBatches(test, evalBatch, shard.Rank, shard.Size); err != nil {
			return nil, err
		}
	}
	loader, err := data.NewLoader(test, data.LoaderConfig{BatchSize: evalBatch})
	if err != nil {
		return nil, err
	}
	device := m.Vars.Device()
	net, release, err := train.EvalModule(m.Net) // batch norms folded: same function, fewer ops
	if err != nil {
		return nil, err
	}
	defer release()
	rep, err := attack.Evaluate(ctx, attack.FromModuleT(net), torchbatch.Stream(ctx, loader, device, attack.NewBatch), attacks, attack.EvalOptions{Shard: shard})
	if err != nil {
		return nil, err
	}
	out := map[string]float64{"robust_acc": rep.RobustAcc}
	for name, acc := range rep.PerAttack {
		n, err := attackname.Parse(name)
		if err != nil {
			return nil, fmt.Errorf("evaluate: attack %q reported under a name outside the vocabulary: %w", name, err)
		}
		out[n.MetricKey()] = acc
	}
	return out, nil
}
