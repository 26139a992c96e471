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

// A byte batch becomes floats in libtorch: x/255, or with a normalisation
// (x/255 - mean)/std per channel, the same as the float path gives.
func TestConvertPixels(t *testing.T) {
	n, c, h, w := 2, 3, 2, 2
	pixels := make([]uint8, n*c*h*w)
	floats := make([]float32, len(pixels))
	for i := range pixels {
		pixels[i] = uint8(i * 37 % 256)
		floats[i] = float32(pixels[i]) / 255
	}
	norm := &torchbatch.Normalize{Mean: []float64{0.5, 0.25, 0}, Std: []float64{0.5, 2, 1}}
	byteBatch := &data.Batch{Pixels: pixels, Labels: []int64{1, 0}, N: n, C: c, H: h, W: w}
	floatBatch := &data.Batch{Images: floats, Labels: []int64{1, 0}, N: n, C: c, H: h, W: w}
	wk := torchrt.NewWorker()
	defer wk.Close()
	values := func(b *data.Batch, norm *torchbatch.Normalize) ([]float64, gotch.DType, error) {
		x, y, err := torchbatch.Convert(b, gotch.CPU, norm)
		if err != nil {
			return nil, gotch.Invalid, err
		}
		defer x.Drop()
		defer y.Drop()
		return x.Float64Values(), x.DType(), nil
	}
	err := wk.Do(func() error {
		for _, nm := range []*torchbatch.Normalize{nil, norm} {
			got, dtype, err := values(byteBatch, nm)
			if err != nil {
				return err
			}
			ref, _, err := values(floatBatch, nm)
			if err != nil {
				return err
			}
			assert.Equal(t, gotch.Float, dtype)
			for i, p := range pixels {
				want := float64(p) / 255
				if nm != nil {
					ch := i / (h * w) % c
					want = (want - nm.Mean[ch]) / nm.Std[ch]
				}
				assert.InDelta(t, want, got[i], 1e-6, "value %d", i)
				assert.InDelta(t, ref[i], got[i], 1e-6, "value %d, float path", i)
			}
		}
		_, _, err := torchbatch.Convert(byteBatch, gotch.CPU, &torchbatch.Normalize{Mean: []float64{0}, Std: []float64{1}})
		assert.ErrorContains(t, err, "1 means and 1 stds for 3 channels")
		return nil
	})
	require.NoError(t, err)
}
