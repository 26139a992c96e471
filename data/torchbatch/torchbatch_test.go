package torchbatch_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
	"github.com/robarch/robarch/internal/torchrt"
)

// TestTensorsRoundTrip converts every batch of a small epoch on a locked
// torch thread, as training does, and reads the tensors back. Inside the
// worker only non-fatal asserts are used: FailNow must not run there.
func TestTensorsRoundTrip(t *testing.T) {
	src, err := data.Synthetic(10, 3, 2, 3, 4, 1)
	require.NoError(t, err)
	loader, err := data.NewLoader(src, data.LoaderConfig{BatchSize: 4, Shuffle: true, Seed: 2, Augment: data.Augment{CropPad: 1, HFlip: true}})
	require.NoError(t, err)

	w := torchrt.NewWorker()
	defer w.Close()
	var sizes [][]int64
	err = w.Do(func() error {
		for b, err := range loader.Batches(context.Background(), 0) {
			if err != nil {
				return err
			}
			x, y, err := torchbatch.Tensors(b, gotch.CPU)
			if err != nil {
				return err
			}
			shape, err := x.Size()
			if err != nil {
				return err
			}
			sizes = append(sizes, shape)
			assert.Equal(t, gotch.Float, x.DType())
			assert.Equal(t, gotch.Int64, y.DType())
			got := x.Float64Values()
			if len(got) != len(b.Images) {
				return fmt.Errorf("tensor has %d values, batch %d", len(got), len(b.Images))
			}
			for i, v := range b.Images {
				if float64(v) != got[i] {
					return fmt.Errorf("batch %d value %d: tensor %v, batch %v", b.Index, i, got[i], v)
				}
			}
			assert.Equal(t, b.Labels, y.Int64Values())
			_ = x.Drop()
			_ = y.Drop()
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, [][]int64{{4, 2, 3, 4}, {4, 2, 3, 4}, {2, 2, 3, 4}}, sizes)
}

func TestTensorsRejectsBadBatches(t *testing.T) {
	_, _, err := torchbatch.Tensors(&data.Batch{}, gotch.CPU)
	require.ErrorContains(t, err, "empty batch")
	_, _, err = torchbatch.Tensors(&data.Batch{Images: make([]float32, 5), Labels: []int64{0}, N: 1, C: 1, H: 2, W: 2}, gotch.CPU)
	require.ErrorContains(t, err, "5 image values and 1 labels do not fit shape [1 1 2 2]")
}

// BenchmarkTensors measures converting a 128×1×28×28 batch, in images/s.
func BenchmarkTensors(b *testing.B) {
	src, err := data.Synthetic(128, 10, 1, 28, 28, 1)
	require.NoError(b, err)
	loader, err := data.NewLoader(src, data.LoaderConfig{BatchSize: 128})
	require.NoError(b, err)
	batch, err := loader.Batch(0, 0)
	require.NoError(b, err)
	b.ResetTimer()
	for range b.N {
		x, y, err := torchbatch.Tensors(batch, gotch.CPU)
		if err != nil {
			b.Fatal(err)
		}
		_ = x.Drop()
		_ = y.Drop()
	}
	b.ReportMetric(float64(128*b.N)/b.Elapsed().Seconds(), "images/s")
}

// Stream yields every batch of an epoch as tensors and stops when the
// consumer does.
func TestStreamYieldsTheEpoch(t *testing.T) {
	src, err := data.Synthetic(10, 3, 2, 3, 4, 1)
	require.NoError(t, err)
	loader, err := data.NewLoader(src, data.LoaderConfig{BatchSize: 4})
	require.NoError(t, err)
	type pair struct{ n, labels int64 }
	w := torchrt.NewWorker()
	defer w.Close()
	var all, first []pair
	err = w.Do(func() error {
		wrap := func(x, y *ts.Tensor) pair { return pair{x.MustSize()[0], y.MustSize()[0]} }
		for p, err := range torchbatch.Stream(context.Background(), loader, gotch.CPU, wrap) {
			if err != nil {
				return err
			}
			all = append(all, p)
		}
		for p, err := range torchbatch.Stream(context.Background(), loader, gotch.CPU, wrap) {
			if err != nil {
				return err
			}
			first = append(first, p)
			break
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []pair{{4, 4}, {4, 4}, {2, 2}}, all)
	assert.Equal(t, []pair{{4, 4}}, first)
}
