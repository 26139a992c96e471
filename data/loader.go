package data

import (
	"context"
	"fmt"
	"iter"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
)

// LoaderConfig says how a Loader batches a Source.
type LoaderConfig struct {
	BatchSize int
	// Shuffle draws a new order every epoch from (Seed, epoch), so a run
	// resumed at epoch e sees exactly the order it would have seen.
	Shuffle bool
	Seed    int64
	// DropLast drops a final batch smaller than BatchSize.
	DropLast bool
	// Augment is applied to every example, seeded by (Seed, epoch, batch,
	// slot in the batch).
	Augment Augment
	// Part, when Of > 1, builds only this data-parallel rank's rows of
	// every batch (see Part); the rows are those of the whole batch.
	Part Part
	// Workers is the number of goroutines building batches; 0 means
	// min(GOMAXPROCS, 4).
	Workers int
	// Prefetch bounds the batches being built or waiting to be consumed;
	// 0 means 2×Workers.
	Prefetch int
	// Reuse recycles batch memory: a yielded batch is valid only until the
	// loop body returns, and the loader then holds at most Prefetch+1
	// batches' buffers however many epochs it runs. Consumers that convert
	// each batch to tensors at once (train, evaluation, bench) set it.
	Reuse bool
}

// Part is a data-parallel rank's share of every batch: of a batch of n
// examples, rows [Rank·n/Of, (Rank+1)·n/Of). Every rank draws the same
// order and each example's random transforms come from its slot in the
// whole batch, so the parts of all ranks together are the whole batch.
type Part struct{ Rank, Of int }

// rows returns the bounds of the part in a batch of n.
func (p Part) rows(n int) (lo, hi int) {
	if p.Of <= 1 {
		return 0, n
	}
	return p.Rank * n / p.Of, (p.Rank + 1) * n / p.Of
}

// Batch is one Go-side batch: images N×C×H×W in [0,1] and their labels.
// Convert it to tensors on the torch goroutine (see data/torchbatch).
type Batch struct {
	// Images holds the values as floats in [0,1]; nil when Pixels is set.
	Images []float32
	// Pixels holds them as bytes 0..255 instead, for sources that are
	// PixelSources (image folders): a quarter of the memory to fill and
	// to copy, converted to float by libtorch.
	Pixels     []uint8
	Labels     []int64
	Indices    []int // positions in the Source, for debugging and tests
	N, C, H, W int
	Epoch      int
	Index      int // batch number within the epoch
	// Offset and Total place the rows in the whole batch: rows
	// [Offset, Offset+N) of Total (a data-parallel part), else 0 and N.
	Offset, Total int
}

// Loader cuts a Source into batches, building them on worker goroutines
// ahead of the consumer. The result is independent of Workers and Prefetch:
// each batch is built by one worker from its own seeded generator.
type Loader struct {
	src    Source
	pixels PixelSource // src as a PixelSource, or nil
	cfg    LoaderConfig
	// free holds recycled batches (Reuse); allocated counts the batches
	// ever made, which tests compare with the Prefetch bound.
	free      chan *Batch
	allocated atomic.Int64
}

// NewLoader checks cfg against src and fills in defaults.
func NewLoader(src Source, cfg LoaderConfig) (*Loader, error) {
	if src == nil {
		return nil, fmt.Errorf("loader: nil source")
	}
	if cfg.BatchSize <= 0 {
		return nil, fmt.Errorf("loader batch size %d: must be positive", cfg.BatchSize)
	}
	if cfg.Part.Of < 0 || (cfg.Part.Of > 0 && (cfg.Part.Rank < 0 || cfg.Part.Rank >= cfg.Part.Of)) {
		return nil, fmt.Errorf("loader part %d of %d: want 0 <= rank < of", cfg.Part.Rank, cfg.Part.Of)
	}
	if cfg.Workers < 0 || cfg.Prefetch < 0 {
		return nil, fmt.Errorf("loader workers=%d prefetch=%d: must not be negative (0 = default)", cfg.Workers, cfg.Prefetch)
	}
	_, h, w := src.Shape()
	if err := cfg.Augment.validate(h, w); err != nil {
		return nil, fmt.Errorf("loader: %w", err)
	}
	if cfg.Workers == 0 {
		cfg.Workers = min(runtime.GOMAXPROCS(0), 4)
	}
	if cfg.Prefetch == 0 {
		cfg.Prefetch = 2 * cfg.Workers
	}
	l := &Loader{src: src, cfg: cfg}
	if ps, ok := AsPixelSource(src); ok {
		l.pixels = ps
	}
	if cfg.Reuse {
		l.free = make(chan *Batch, cfg.Prefetch+1)
	}
	return l, nil
}

// Source returns the data the loader reads.
func (l *Loader) Source() Source { return l.src }

// Config returns the configuration with defaults filled in.
func (l *Loader) Config() LoaderConfig { return l.cfg }

// NumBatches is the number of batches in one epoch.
func (l *Loader) NumBatches() int {
	n, bs := l.src.Len(), l.cfg.BatchSize
	if l.cfg.DropLast {
		return n / bs
	}
	return (n + bs - 1) / bs
}

// Order returns the example order of an epoch: a permutation seeded by
// (Seed, epoch) when shuffling, 0..N-1 otherwise.
func (l *Loader) Order(epoch int) []int {
	n := l.src.Len()
	if !l.cfg.Shuffle {
		order := make([]int, n)
		for i := range order {
			order[i] = i
		}
		return order
	}
	return newRand(l.cfg.Seed, streamOrder|uint64(uint32(epoch))).Perm(n)
}

// Batches yields the batches of one epoch in order; the loop body runs on
// the caller's goroutine, so it may do torch work on a locked thread while
// workers prepare the next batches. Breaking out of the loop or cancelling
// ctx stops the workers. A non-nil error ends the sequence.
func (l *Loader) Batches(ctx context.Context, epoch int) iter.Seq2[*Batch, error] {
	return func(yield func(*Batch, error) bool) {
		order := l.Order(epoch)
		nb := l.NumBatches()
		ctx, cancel := context.WithCancel(ctx)
		var wg sync.WaitGroup
		defer wg.Wait() // runs after cancel: workers finish their batch and exit
		defer cancel()

		type result struct {
			b   *Batch
			err error
		}
		slots := make([]chan result, nb) // slot k receives batch k exactly once
		for k := range slots {
			slots[k] = make(chan result, 1)
		}
		jobs := make(chan int)
		tokens := make(chan struct{}, l.cfg.Prefetch)

		wg.Add(1)
		go func() { // dispatcher: hands out batch numbers in order, at most Prefetch ahead
			defer wg.Done()
			defer close(jobs)
			for k := range nb {
				select {
				case tokens <- struct{}{}:
				case <-ctx.Done():
					return
				}
				select {
				case jobs <- k:
				case <-ctx.Done():
					return
				}
			}
		}()
		for range min(l.cfg.Workers, max(nb, 1)) {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for k := range jobs {
					b, err := l.build(epoch, k, order)
					slots[k] <- result{b, err}
				}
			}()
		}

		for k := range nb {
			var r result
			select {
			case r = <-slots[k]:
			case <-ctx.Done():
				yield(nil, fmt.Errorf("loader epoch %d batch %d: %w", epoch, k, ctx.Err()))
				return
			}
			<-tokens
			if r.err != nil {
				yield(nil, r.err)
				return
			}
			if !yield(r.b, nil) {
				return
			}
			l.recycle(r.b)
		}
	}
}

// Batch builds batch k of an epoch directly, without workers; Batches
// yields exactly the same values.
func (l *Loader) Batch(epoch, k int) (*Batch, error) {
	if k < 0 || k >= l.NumBatches() {
		return nil, fmt.Errorf("loader batch %d out of range [0,%d)", k, l.NumBatches())
	}
	return l.build(epoch, k, l.Order(epoch))
}

// build fills batch k (this part of it) from order, seeding each
// example's random transforms by (Seed, epoch, k, slot) so the batch does
// not depend on which worker or rank built it.
func (l *Loader) build(epoch, k int, order []int) (*Batch, error) {
	bs := l.cfg.BatchSize
	all := order[k*bs : min((k+1)*bs, len(order))]
	lo, hi := l.cfg.Part.rows(len(all))
	idx := all[lo:hi]
	c, h, w := l.src.Shape()
	size := c * h * w
	b := l.newBatch(len(idx), size)
	b.Indices = append(b.Indices[:0], idx...)
	b.N, b.C, b.H, b.W, b.Epoch, b.Index = len(idx), c, h, w, epoch, k
	b.Offset, b.Total = lo, len(all)
	aug := l.cfg.Augment
	var fscratch []float32
	var pscratch []uint8
	// One generator per batch, reseeded to each example's stream: the
	// draws of newRand without two allocations per example.
	var pcg rand.PCG
	rng := rand.New(&pcg)
	for j, i := range idx {
		reseed(&pcg, l.cfg.Seed, exampleStream(epoch, k, lo+j))
		var err error
		switch {
		case l.pixels != nil && aug.Enabled():
			pscratch = slices.Grow(pscratch[:0], size)[:size]
			if err = l.pixels.FillPixels(i, pscratch, rng); err == nil {
				aug.ApplyPixels(b.Pixels[j*size:(j+1)*size], pscratch, c, h, w, rng)
			}
		case l.pixels != nil:
			err = l.pixels.FillPixels(i, b.Pixels[j*size:(j+1)*size], rng)
		case aug.Enabled():
			fscratch = slices.Grow(fscratch[:0], size)[:size]
			if err = l.src.Fill(i, fscratch, rng); err == nil {
				aug.Apply(b.Images[j*size:(j+1)*size], fscratch, c, h, w, rng)
			}
		default:
			err = l.src.Fill(i, b.Images[j*size:(j+1)*size], rng)
		}
		if err != nil {
			return nil, fmt.Errorf("loader epoch %d batch %d example %d: %w", epoch, k, i, err)
		}
		b.Labels[j] = l.src.Label(i)
	}
	return b, nil
}

// newBatch returns a batch with room for n examples of size values,
// recycled when Reuse allows.
func (l *Loader) newBatch(n, size int) *Batch {
	var b *Batch
	select {
	case b = <-l.free: // a nil channel (no Reuse) never delivers
	default:
		b = &Batch{}
		l.allocated.Add(1)
	}
	if l.pixels != nil {
		b.Pixels = slices.Grow(b.Pixels[:0], n*size)[:n*size]
		b.Images = nil
	} else {
		b.Images = slices.Grow(b.Images[:0], n*size)[:n*size]
	}
	b.Labels = slices.Grow(b.Labels[:0], n)[:n]
	return b
}

// recycle hands a consumed batch back for reuse (Reuse only).
func (l *Loader) recycle(b *Batch) {
	if l.free == nil {
		return
	}
	select {
	case l.free <- b:
	default:
	}
}
