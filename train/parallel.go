package train

import (
	"errors"
	"fmt"
	"math"
	"unsafe"

	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
)

// Data parallelism, the way DDP does it and with the same numbers as one
// process running the shards in turn:
//   - every rank draws the same global batch (same seeded order, same
//     augmentation draws, so a slot's example and crop do not depend on
//     the rank) and keeps its shards' rows;
//   - each shard's random start is drawn from a generator keyed by (seed,
//     epoch, step, shard), so it is the same wherever the shard runs;
//   - each shard has its own batch-norm statistics (per-process batch norm,
//     DDP's default), its loss scaled by 1/shards; the gradients are
//     summed over the ranks, then clipped and applied by the optimiser;
//   - the running batch-norm statistics are shard 0's: rank 0 restores
//     them after any other shard it runs and broadcasts them after every
//     step, so every rank evaluates and checkpoints the same network, and
//     it is the same network however the shards are spread over processes.
// Only rank 0 writes checkpoints, logs and results.

// streamShard keys the shards' random starts.
const streamShard uint64 = 4 << 60

func shardSeed(seed int64, epoch, step, shard int) int64 {
	return deriveSeed(seed, streamShard|uint64(epoch)<<36|uint64(step)<<12|uint64(shard))
}

// setupShards resolves the recipe's batch shards for the group and
// checks they split evenly; a run with one shard and one process keeps
// the single-process step, number for number.
func (t *trainer) setupShards() error {
	t.world, t.rank = 1, 0
	if g := t.opts.Group; g != nil {
		t.world, t.rank = g.World(), g.Rank()
	}
	if t.r.BatchShards == 0 && t.world > 1 {
		t.r.BatchShards = t.world
	}
	t.shards = max(t.r.BatchShards, 1)
	if t.shards%t.world != 0 {
		return fmt.Errorf("train: batch shards %d must be a multiple of the %d data-parallel processes", t.shards, t.world)
	}
	if t.r.BatchSize%t.shards != 0 || t.r.BatchSize/t.shards < 2 {
		return fmt.Errorf("train: batch size %d does not split into %d shards of at least 2 examples", t.r.BatchSize, t.shards)
	}
	if t.shards > 1 && t.r.Precision == amp.FP16 {
		return fmt.Errorf("train: precision fp16 with %d batch shards: the loss scaler is not sharded yet; use bf16 or fp32", t.shards)
	}
	return nil
}

// ShardFor splits an evaluation across g's ranks (nil without a group or
// alone in it): the one place a process group becomes an attack.Shard.
func ShardFor(g *dist.Group) *attack.Shard {
	if g == nil || g.World() == 1 {
		return nil
	}
	return &attack.Shard{Rank: g.Rank(), Size: g.World(), Sum: g.Sum}
}

// evalShard is this run's share of an evaluation.
func (t *trainer) evalShard() *attack.Shard { return ShardFor(t.opts.Group) }

// primary is the rank that writes files and logs progress.
func (t *trainer) primary() bool { return t.rank == 0 }

// sharded reports whether steps go through shardedStep.
func (t *trainer) sharded() bool { return t.shards > 1 || t.world > 1 }

// shardedStep is step for a sharded batch: this rank's shards forward
// and backward in turn, gradients summed over the ranks, then one update.
// The loss and accuracy returned are the whole batch's.
func (t *trainer) shardedStep(b *data.Batch, lr float64, epoch int) (float64, int64, error) {
	x, y, err := torchbatch.Tensors(b, t.device)
	if err != nil {
		return 0, 0, err
	}
	defer drop(x, y)
	// The batch holds this rank's rows only (data.Part): its shards.
	local := t.shards / t.world
	size := int64(b.N / local)
	// sums: loss×examples, correct, examples, non-finite losses
	sums := make([]float64, 4)
	for j := range local {
		s := t.rank*local + j
		// The running batch-norm statistics are shard 0's (rank 0's, as
		// DDP keeps): rank 0 puts them back after any other shard it runs,
		// so they do not depend on how many shards a process holds.
		var saved []*ts.Tensor
		if s != 0 && t.rank == 0 {
			if saved, err = t.saveBuffers(); err != nil {
				return 0, 0, err
			}
		}
		err := t.shardPass(x, y, int64(j)*size, size, shardSeed(t.r.Seed, epoch, b.Index, s), sums)
		if saved != nil {
			err = errors.Join(err, t.restoreBuffers(saved))
		}
		if err != nil {
			return 0, 0, err
		}
	}
	if g := t.opts.Group; g != nil {
		if err := g.Sum(sums); err != nil {
			return 0, 0, err
		}
	}
	loss := sums[0] / sums[2]
	if sums[3] > 0 || math.IsNaN(loss) || math.IsInf(loss, 0) {
		return 0, 0, &NonFiniteLossError{Loss: loss}
	}
	if g := t.opts.Group; g != nil {
		if err := g.ReduceGradients(t.opt.paramPointers(), 1); err != nil {
			return 0, 0, err
		}
	}
	if _, err := t.opt.Step(lr); err != nil {
		return 0, 0, err
	}
	if g := t.opts.Group; g != nil && len(t.buffers) > 0 {
		if err := g.BroadcastBuffers(t.buffers); err != nil {
			return 0, 0, err
		}
	}
	return loss, int64(sums[1]), nil
}

// shardPass runs one shard (rows [off, off+n) of the batch): its loss,
// scaled by 1/shards, backward into the accumulated gradients.
func (t *trainer) shardPass(x, y *ts.Tensor, off, n int64, seed int64, sums []float64) error {
	xs, err := x.Narrow(0, off, n, false)
	if err != nil {
		return err
	}
	defer drop(xs)
	ys, err := y.Narrow(0, off, n, false)
	if err != nil {
		return err
	}
	defer drop(ys)
	torchrt.Seed(seed)
	loss, logits, err := batchLoss(t.net, xs, ys, t.r)
	if err != nil {
		return err
	}
	defer drop(loss, logits)
	v, err := item(loss)
	if err != nil {
		return err
	}
	var ok int64
	ts.NoGrad(func() { ok, err = countCorrect(logits, ys) })
	if err != nil {
		return err
	}
	sums[0] += v * float64(n)
	sums[1] += float64(ok)
	sums[2] += float64(n)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		sums[3]++
		return nil // every rank learns of it from the sums and stops
	}
	var sc scalars
	defer sc.drop()
	scaled, err := loss.MulScalar(sc.float(1/float64(t.shards)), false)
	if err != nil {
		return err
	}
	defer drop(scaled)
	if err := scaled.Backward(); err != nil {
		return fmt.Errorf("backward: %w", err)
	}
	return nil
}

// saveBuffers copies the network's buffers (batch-norm statistics).
func (t *trainer) saveBuffers() ([]*ts.Tensor, error) {
	var out []*ts.Tensor
	for _, v := range t.vars {
		if v.trainable {
			continue
		}
		c, err := v.t.DetachCopy(false)
		if err != nil {
			drop(out...)
			return nil, fmt.Errorf("save batch-norm statistics: %w", err)
		}
		out = append(out, c)
	}
	return out, nil
}

// restoreBuffers writes saved (from saveBuffers) back and frees it.
func (t *trainer) restoreBuffers(saved []*ts.Tensor) error {
	defer drop(saved...)
	k := 0
	for _, v := range t.vars {
		if v.trainable {
			continue
		}
		if err := copyInto(v.t, saved[k]); err != nil {
			return fmt.Errorf("restore batch-norm statistics: %w", err)
		}
		k++
	}
	return nil
}

// syncStart makes every rank hold rank 0's weights, buffers and momentum
// before the first step (rank 0 initialised or resumed them).
func (t *trainer) syncStart() error {
	g := t.opts.Group
	if g == nil {
		return nil
	}
	all := make([]unsafe.Pointer, 0, len(t.vars))
	for _, v := range t.vars {
		if v.trainable {
			all = append(all, v.t.Ctensor())
		} else {
			t.buffers = append(t.buffers, v.t.Ctensor())
		}
	}
	all = append(all, t.buffers...)
	for _, s := range t.opt.State() {
		all = append(all, s.Tensor.Ctensor())
	}
	if err := g.BroadcastWeights(all); err != nil {
		return fmt.Errorf("train: start data-parallel run: %w", err)
	}
	return nil
}
