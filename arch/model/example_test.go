package model_test

import (
	"fmt"
	"runtime"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/torchrt"
)

// New builds a spec on libtorch: here the micro preset (28×28 grey
// images, 10 classes) on the CPU, run in evaluation mode on a batch of
// two blank images.
func ExampleNew() {
	// Torch work stays on one OS thread (grad mode is thread-local).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	torchrt.Seed(0)
	spec, err := arch.Get("micro")
	if err != nil {
		fmt.Println(err)
		return
	}
	vs, net, err := model.New(spec, gotch.CPU, model.Contiguous)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer vs.Destroy()

	in := spec.Input
	x, err := ts.Zeros([]int64{2, int64(in.Channels), int64(in.Height), int64(in.Width)}, gotch.Float, gotch.CPU)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer x.MustDrop()
	logits, err := net.Forward(x, false)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer logits.MustDrop()
	shape, err := logits.Size()
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(spec.Name, net.NumParams(), "parameters; logits", shape)
	// Output: micro 272186 parameters; logits [2 10]
}
