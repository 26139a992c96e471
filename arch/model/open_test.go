package model_test

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/torchrt"
)

// stateValues is every tensor of net's state dict as float64s, by name.
func stateValues(t *testing.T, net *model.Net) map[string][]float64 {
	t.Helper()
	sd, err := net.StateDict()
	require.NoError(t, err)
	out := map[string][]float64{}
	for _, nt := range sd {
		out[nt.Name] = nt.Tensor.Float64Values()
	}
	return out
}

func TestOpenEveryReference(t *testing.T) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	micro, err := arch.Get("micro") // 1×28×28, 10 classes
	require.NoError(t, err)
	fmnist := arch.DataShape{Name: "fashion-mnist", Channels: 1, Height: 28, Width: 28, Classes: 10}
	small := arch.DataShape{Name: "small", Channels: 1, Height: 16, Width: 16, Classes: 4}
	rgb := arch.DataShape{Name: "rgb", Channels: 3, Height: 28, Width: 28, Classes: 10}
	cpu := model.OpenOptions{Device: gotch.CPU, Format: model.Contiguous}
	with := func(d arch.DataShape) model.OpenOptions { o := cpu; o.Data = &d; return o }

	// The weights every file reference below holds.
	torchrt.Seed(7)
	src, err := model.Open(model.Ref{Model: "micro"}, cpu)
	require.NoError(t, err)
	defer src.Vars.Destroy()
	dir := t.TempDir()
	ckpt := filepath.Join(dir, "model.safetensors")
	require.NoError(t, model.SaveCheckpoint(ckpt, src.Net, map[string]string{"eval_eps": "0.1"}))
	sd := filepath.Join(dir, "state.safetensors")
	require.NoError(t, model.ExportWeights(src.Net, sd))
	want := stateValues(t, src.Net)

	t.Run("preset fitted to the data", func(t *testing.T) {
		o, err := model.Open(model.Ref{Model: "micro"}, with(small))
		require.NoError(t, err)
		defer o.Vars.Destroy()
		assert.Equal(t, 16, o.Spec.Input.Height)
		assert.Equal(t, 4, o.Spec.Classes)
		assert.Equal(t, "micro", o.Name)
		assert.Nil(t, o.Checkpoint)
	})
	t.Run("channels are never fitted", func(t *testing.T) {
		_, err := model.Open(model.Ref{Model: "micro"}, with(rgb))
		assert.ErrorContains(t, err, "channels cannot be fitted")
	})
	t.Run("a planned spec must match as it is", func(t *testing.T) {
		_, err := model.Open(model.Ref{Spec: &micro}, with(small))
		assert.ErrorContains(t, err, "takes 1x28x28 inputs with 10 classes but small has 1x16x16 images with 4 classes")
		o, err := model.Open(model.Ref{Spec: &micro}, with(fmnist))
		require.NoError(t, err)
		o.Vars.Destroy()
	})
	t.Run("checkpoint carries its spec and metadata", func(t *testing.T) {
		o, err := model.Open(model.Ref{Weights: ckpt}, with(fmnist))
		require.NoError(t, err)
		defer o.Vars.Destroy()
		require.NotNil(t, o.Checkpoint)
		assert.Equal(t, "0.1", o.Checkpoint.Meta["eval_eps"])
		assert.Equal(t, micro.Name, o.Name)
		assert.Equal(t, want, stateValues(t, o.Net))
	})
	t.Run("checkpoint against other data is refused, not refitted", func(t *testing.T) {
		_, err := model.Open(model.Ref{Weights: ckpt}, with(small))
		assert.ErrorContains(t, err, "takes 1x28x28 inputs")
	})
	t.Run("state dict plus a model", func(t *testing.T) {
		o, err := model.Open(model.Ref{Model: "micro", Weights: sd}, with(fmnist))
		require.NoError(t, err)
		defer o.Vars.Destroy()
		assert.Nil(t, o.Checkpoint)
		assert.Equal(t, want, stateValues(t, o.Net))
	})
	t.Run("state dict into a net fitted to other classes", func(t *testing.T) {
		_, err := model.Open(model.Ref{Model: "micro", Weights: sd}, with(small))
		assert.ErrorContains(t, err, "import weights")
	})
	t.Run("state dict without a model", func(t *testing.T) {
		_, err := model.Open(model.Ref{Weights: sd}, with(fmnist))
		assert.ErrorIs(t, err, model.ErrNoModel)
		assert.ErrorContains(t, err, "is not a robarch checkpoint")
	})
	t.Run("nothing named", func(t *testing.T) {
		_, err := model.Open(model.Ref{}, cpu)
		assert.ErrorIs(t, err, model.ErrNoModel)
	})
	t.Run("unknown preset", func(t *testing.T) {
		_, err := model.Open(model.Ref{Model: "no-such-net"}, cpu)
		assert.Error(t, err)
	})
}

// Open builds a network from any reference — here a preset fitted to the
// data it will see (CIFAR-10's 3×32×32 images, 10 classes).
func ExampleOpen() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	torchrt.Seed(0)
	cifar := arch.DataShape{Name: "cifar10", Channels: 3, Height: 32, Width: 32, Classes: 10}
	net, err := model.Open(model.Ref{Model: "resnet18-cifar"}, model.OpenOptions{Device: gotch.CPU, Format: model.Contiguous, Data: &cifar})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer net.Vars.Destroy()
	fmt.Println(net.Name, net.Net.NumParams(), "parameters")
	// Output: resnet18-cifar 11173962 parameters
}
