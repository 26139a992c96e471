package data

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// collect runs one epoch and returns its batches.
func collect(t *testing.T, l *Loader, epoch int) []*Batch {
	t.Helper()
	var out []*Batch
	for b, err := range l.Batches(context.Background(), epoch) {
		require.NoError(t, err)
		out = append(out, b)
	}
	return out
}

func newTestLoader(t *testing.T, src Source, cfg LoaderConfig) *Loader {
	t.Helper()
	l, err := NewLoader(src, cfg)
	require.NoError(t, err)
	return l
}

func TestLoaderCoversEveryExampleOnce(t *testing.T) {
	src, err := Synthetic(103, 4, 2, 5, 5, 1)
	require.NoError(t, err)
	for _, dropLast := range []bool{false, true} {
		l := newTestLoader(t, src, LoaderConfig{BatchSize: 10, Shuffle: true, Seed: 3, DropLast: dropLast, Workers: 3})
		batches := collect(t, l, 0)
		wantBatches, wantSeen, wantLast := 11, 103, 3
		if dropLast {
			wantBatches, wantSeen, wantLast = 10, 100, 10
		}
		require.Len(t, batches, wantBatches)
		assert.Equal(t, wantBatches, l.NumBatches())
		var seen []int
		for k, b := range batches {
			assert.Equal(t, k, b.Index)
			assert.Equal(t, 0, b.Epoch)
			assert.Equal(t, []int{2, 5, 5}, []int{b.C, b.H, b.W})
			require.Len(t, b.Images, b.N*50)
			require.Len(t, b.Labels, b.N)
			for j, i := range b.Indices {
				want := make([]float32, 50)
				require.NoError(t, src.Fill(i, want, nil))
				require.Equal(t, want, b.Images[j*50:(j+1)*50], "batch %d example %d holds source %d", k, j, i)
				require.Equal(t, src.Labels[i], b.Labels[j])
			}
			seen = append(seen, b.Indices...)
		}
		assert.Equal(t, wantLast, batches[len(batches)-1].N, "last batch size")
		assert.Len(t, seen, wantSeen)
		slices.Sort(seen)
		assert.Len(t, slices.Compact(seen), wantSeen, "no example twice")
	}
}

func TestLoaderOrder(t *testing.T) {
	src, err := Synthetic(50, 5, 1, 4, 4, 1)
	require.NoError(t, err)
	cfg := LoaderConfig{BatchSize: 8, Shuffle: true, Seed: 42}
	a := newTestLoader(t, src, cfg)
	b := newTestLoader(t, src, cfg)
	assert.Equal(t, a.Order(0), b.Order(0), "same seed, same order")
	assert.NotEqual(t, a.Order(0), a.Order(1), "each epoch reshuffles")
	cfg.Seed = 43
	assert.NotEqual(t, a.Order(0), newTestLoader(t, src, cfg).Order(0), "different seed, different order")

	cfg.Shuffle = false
	plain := newTestLoader(t, src, cfg).Order(7)
	for i, v := range plain {
		require.Equal(t, i, v)
	}
}

// TestLoaderDeterministic: batches, including their augmentation, depend
// only on (seed, epoch, batch), not on worker count, prefetch depth or
// whether earlier epochs ran, so a run resumed at epoch 2 sees what an
// uninterrupted run sees.
func TestLoaderDeterministic(t *testing.T) {
	src, err := Synthetic(70, 3, 3, 8, 8, 9)
	require.NoError(t, err)
	cfg := LoaderConfig{BatchSize: 16, Shuffle: true, Seed: 5, Augment: Augment{CropPad: 2, HFlip: true}}

	cfg.Workers, cfg.Prefetch = 1, 1
	serial := newTestLoader(t, src, cfg)
	var uninterrupted [][]*Batch
	for epoch := range 3 {
		uninterrupted = append(uninterrupted, collect(t, serial, epoch))
	}

	cfg.Workers, cfg.Prefetch = 4, 3
	resumed := newTestLoader(t, src, cfg)
	assert.Equal(t, uninterrupted[2], collect(t, resumed, 2))
	assert.NotEqual(t, uninterrupted[0][0].Images, uninterrupted[1][0].Images)

	direct, err := resumed.Batch(1, 3)
	require.NoError(t, err)
	assert.Equal(t, uninterrupted[1][3], direct)
	_, err = resumed.Batch(1, 5)
	require.ErrorContains(t, err, "batch 5 out of range [0,5)")

	// Augmentation really happened: some batch differs from the raw pixels.
	cfg.Augment = Augment{}
	plain, err := newTestLoader(t, src, cfg).Batch(0, 0)
	require.NoError(t, err)
	assert.Equal(t, plain.Indices, uninterrupted[0][0].Indices)
	assert.NotEqual(t, plain.Images, uninterrupted[0][0].Images)
	assertUnit(t, uninterrupted[0][0].Images)
}

func TestLoaderEarlyStopReleasesWorkers(t *testing.T) {
	src, err := Synthetic(400, 2, 1, 4, 4, 1)
	require.NoError(t, err)
	l := newTestLoader(t, src, LoaderConfig{BatchSize: 4, Workers: 4, Prefetch: 8})
	before := runtime.NumGoroutine()
	for range 5 {
		n := 0
		for _, err := range l.Batches(context.Background(), 0) {
			require.NoError(t, err)
			if n++; n == 3 {
				break
			}
		}
	}
	// Batches waits for its goroutines before returning.
	assert.LessOrEqual(t, runtime.NumGoroutine(), before)
}

func TestLoaderCancel(t *testing.T) {
	src, err := Synthetic(400, 2, 1, 4, 4, 1)
	require.NoError(t, err)
	l := newTestLoader(t, src, LoaderConfig{BatchSize: 4, Workers: 2})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	n := 0
	var gotErr error
	for _, err := range l.Batches(ctx, 0) {
		if err != nil {
			gotErr = err
			break
		}
		if n++; n == 2 {
			cancel()
		}
	}
	require.ErrorIs(t, gotErr, context.Canceled)
	assert.Less(t, n, l.NumBatches())
}

// failingSource breaks on one example.
type failingSource struct {
	*Dataset
	bad int
}

func (f failingSource) Fill(i int, dst []float32, rng *rand.Rand) error {
	if i == f.bad {
		return errors.New("disk on fire")
	}
	return f.Dataset.Fill(i, dst, rng)
}

func TestLoaderSourceError(t *testing.T) {
	d, err := Synthetic(40, 2, 1, 4, 4, 1)
	require.NoError(t, err)
	l := newTestLoader(t, failingSource{d, 25}, LoaderConfig{BatchSize: 10, Workers: 3})
	var got []int
	var gotErr error
	for b, err := range l.Batches(context.Background(), 0) {
		if err != nil {
			gotErr = err
			break
		}
		got = append(got, b.Index)
	}
	assert.Equal(t, []int{0, 1}, got, "batches before the broken one arrive")
	require.ErrorContains(t, gotErr, "loader epoch 0 batch 2 example 25: disk on fire")
}

func TestNewLoaderErrors(t *testing.T) {
	d, err := Synthetic(4, 2, 1, 4, 4, 1)
	require.NoError(t, err)
	tests := []struct {
		cfg     LoaderConfig
		wantErr string
	}{
		{LoaderConfig{BatchSize: 0}, "batch size 0"},
		{LoaderConfig{BatchSize: 2, Workers: -1}, "workers=-1"},
		{LoaderConfig{BatchSize: 2, Augment: Augment{CropPad: 4}}, "smaller than the image"},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.cfg), func(t *testing.T) {
			_, err := NewLoader(d, tc.cfg)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
	_, err = NewLoader(nil, LoaderConfig{BatchSize: 1})
	require.ErrorContains(t, err, "nil source")

	l := newTestLoader(t, d, LoaderConfig{BatchSize: 3})
	assert.Positive(t, l.Config().Workers)
	assert.Equal(t, 2*l.Config().Workers, l.Config().Prefetch)
}

// TestLoaderPrefetches: while the consumer is busy, workers build ahead,
// so with a slow consumer the wait for each next batch is short.
func TestLoaderPrefetches(t *testing.T) {
	src, err := Synthetic(64, 2, 1, 4, 4, 1)
	require.NoError(t, err)
	slow := slowSource{src, 5 * time.Millisecond}
	l := newTestLoader(t, slow, LoaderConfig{BatchSize: 4, Workers: 2, Prefetch: 4})
	var waits []time.Duration
	last := time.Now()
	for _, err := range l.Batches(context.Background(), 0) {
		require.NoError(t, err)
		waits = append(waits, time.Since(last))
		time.Sleep(40 * time.Millisecond) // the "training step"; building a batch takes ≥20ms
		last = time.Now()
	}
	slices.Sort(waits)
	assert.Less(t, waits[len(waits)/2], 10*time.Millisecond, "median wait for a batch (≥20ms without prefetching)")
}

type slowSource struct {
	*Dataset
	delay time.Duration
}

func (s slowSource) Fill(i int, dst []float32, rng *rand.Rand) error {
	time.Sleep(s.delay)
	return s.Dataset.Fill(i, dst, rng)
}

// A data-parallel rank's part of every batch is exactly its rows of the
// whole batch, augmentation included, for any number of parts (even
// uneven ones in a last batch).
func TestLoaderPartsAreRowsOfTheWholeBatch(t *testing.T) {
	src, err := Synthetic(70, 3, 1, 8, 8, 4)
	require.NoError(t, err)
	cfg := LoaderConfig{BatchSize: 12, Shuffle: true, Seed: 5, Augment: Augment{CropPad: 2, HFlip: true}, Workers: 2}
	whole, err := NewLoader(src, cfg)
	require.NoError(t, err)
	for _, of := range []int{2, 3, 4} {
		parts := make([]*Loader, of)
		for r := range of {
			c := cfg
			c.Part = Part{Rank: r, Of: of}
			parts[r], err = NewLoader(src, c)
			require.NoError(t, err)
		}
		for k := range whole.NumBatches() {
			w, err := whole.Batch(2, k)
			require.NoError(t, err)
			var images []float32
			var labels []int64
			rows := 0
			for r := range of {
				p, err := parts[r].Batch(2, k)
				require.NoError(t, err)
				assert.Equal(t, rows, p.Offset, "part %d/%d batch %d", r, of, k)
				assert.Equal(t, w.N, p.Total)
				rows += p.N
				images = append(images, p.Images...)
				labels = append(labels, p.Labels...)
			}
			assert.Equal(t, w.N, rows)
			assert.Equal(t, w.Images, images, "%d parts, batch %d", of, k)
			assert.Equal(t, w.Labels, labels)
		}
	}
	_, err = NewLoader(src, LoaderConfig{BatchSize: 4, Part: Part{Rank: 2, Of: 2}})
	assert.ErrorContains(t, err, "loader part 2 of 2")
}
