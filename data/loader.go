package data

import (
	"context"
	"fmt"
	"iter"
	"runtime"
	"sync"
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
	// Augment is applied to every example, seeded by (Seed, epoch, batch).
	Augment Augment
	// Workers is the number of goroutines building batches; 0 means
	// min(GOMAXPROCS, 4).
	Workers int
	// Prefetch bounds the batches being built or waiting to be consumed;
	// 0 means 2×Workers.
	Prefetch int
}

// Batch is one Go-side batch: images N×C×H×W in [0,1] and their labels.
// Convert it to tensors on the torch goroutine (see data/torchbatch).
type Batch struct {
	Images     []float32
	Labels     []int64
	Indices    []int // positions in the Source, for debugging and tests
	N, C, H, W int
	Epoch      int
	Index      int // batch number within the epoch
}

// Loader cuts a Source into batches, building them on worker goroutines
// ahead of the consumer. The result is independent of Workers and Prefetch:
// each batch is built by one worker from its own seeded generator.
type Loader struct {
	src Source
	cfg LoaderConfig
}

// NewLoader checks cfg against src and fills in defaults.
func NewLoader(src Source, cfg LoaderConfig) (*Loader, error) {
	if src == nil {
		return nil, fmt.Errorf("loader: nil source")
	}
	if cfg.BatchSize <= 0 {
		return nil, fmt.Errorf("loader batch size %d: must be positive", cfg.BatchSize)
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
	return &Loader{src: src, cfg: cfg}, nil
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

// build fills batch k from order, seeding the random transforms by
// (Seed, epoch, k) so the batch does not depend on which worker built it.
func (l *Loader) build(epoch, k int, order []int) (*Batch, error) {
	bs := l.cfg.BatchSize
	idx := order[k*bs : min((k+1)*bs, len(order))]
	c, h, w := l.src.Shape()
	size := c * h * w
	b := &Batch{
		Images:  make([]float32, len(idx)*size),
		Labels:  make([]int64, len(idx)),
		Indices: append([]int(nil), idx...),
		N:       len(idx), C: c, H: h, W: w,
		Epoch: epoch, Index: k,
	}
	rng := newRand(l.cfg.Seed, batchStream(epoch, k))
	aug := l.cfg.Augment
	var scratch []float32
	if aug.Enabled() {
		scratch = make([]float32, size)
	}
	for j, i := range idx {
		dst := b.Images[j*size : (j+1)*size]
		if aug.Enabled() {
			if err := l.src.Fill(i, scratch, rng); err != nil {
				return nil, fmt.Errorf("loader epoch %d batch %d example %d: %w", epoch, k, i, err)
			}
			aug.Apply(dst, scratch, c, h, w, rng)
		} else if err := l.src.Fill(i, dst, rng); err != nil {
			return nil, fmt.Errorf("loader epoch %d batch %d example %d: %w", epoch, k, i, err)
		}
		b.Labels[j] = l.src.Label(i)
	}
	return b, nil
}
