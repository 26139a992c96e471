package attack_test

import (
	"fmt"
	"runtime"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/internal/torchrt"
)

// linear is a classifier of 3×4×4 images into 3 classes: logits = x·w.
func linear(w *ts.Tensor) attack.Model {
	return func(x *ts.Tensor) (*ts.Tensor, error) {
		flat, err := x.Flatten(1, -1, false)
		if err != nil {
			return nil, err
		}
		defer flat.MustDrop()
		return flat.Matmul(w, false)
	}
}

// accuracy is the fraction of x that m classifies as y.
func accuracy(m attack.Model, x, y *ts.Tensor) float64 {
	z, err := m(x)
	if err != nil {
		panic(err)
	}
	defer z.MustDrop()
	right := z.MustArgmax([]int64{1}, false, false).MustEqTensor(y, true).MustSum(gotch.Float, true)
	defer right.MustDrop()
	return right.Float64Values()[0] / float64(x.MustSize()[0])
}

// largest is max |t| over every entry.
func largest(t *ts.Tensor) float64 {
	m := t.MustAbs(false).MustMax(true)
	defer m.MustDrop()
	return m.Float64Values()[0]
}

// maxMove is the largest |adv − x| over every pixel (the L∞ distance).
func maxMove(adv, x *ts.Tensor) float64 {
	d := adv.MustSub(x, false)
	defer d.MustDrop()
	return largest(d)
}

// Build attacks from their names and run them on a model. The images are
// labelled with the model's own predictions, so clean accuracy is 1.
func ExampleByName() {
	// Torch work runs on one goroutine locked to its OS thread.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	torchrt.Seed(1)
	w := ts.MustRandn([]int64{48, 3}, gotch.Float, gotch.CPU)
	defer w.MustDrop()
	model := linear(w)
	x := ts.MustRand([]int64{32, 3, 4, 4}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	z, _ := model(x)
	y := z.MustArgmax([]int64{1}, false, true)
	defer y.MustDrop()
	const eps = 8.0 / 255
	clean := accuracy(model, x, y)
	for _, name := range []string{"fgsm", "pgd20", "apgd-t"} {
		a, err := attack.ByName(name, attack.Linf, eps, 0)
		if err != nil {
			fmt.Println(err)
			return
		}
		adv, err := a.Perturb(model, x, y)
		if err != nil {
			fmt.Println(err)
			return
		}
		fmt.Printf("%s: accuracy did not rise: %v, within the ball: %v\n",
			a.Name(), accuracy(model, adv, y) <= clean, maxMove(adv, x) <= eps+1e-6)
		adv.MustDrop()
	}
	// Output:
	// fgsm: accuracy did not rise: true, within the ball: true
	// pgd20: accuracy did not rise: true, within the ball: true
	// apgd-t: accuracy did not rise: true, within the ball: true
}

// An Ascent maximises any objective of the input: here the first class's
// summed logit, from a random start, with the last iterate kept.
func ExampleAscent() {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	torchrt.Seed(1)
	w := ts.MustRandn([]int64{48, 3}, gotch.Float, gotch.CPU)
	defer w.MustDrop()
	model := linear(w)
	x := ts.MustRand([]int64{8, 3, 4, 4}, gotch.Float, gotch.CPU)
	defer x.MustDrop()
	firstClass := func(xin *ts.Tensor) (*ts.Tensor, error) {
		z, err := model(xin)
		if err != nil {
			return nil, err
		}
		defer z.MustDrop()
		return z.MustSelect(1, 0, false).Sum(gotch.Float, true)
	}
	a := attack.Ascent{Norm: attack.Linf, Eps: 0.1, StepSize: 0.025, Steps: 10}
	start, err := a.Start(x)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer start.MustDrop()
	delta, err := a.Run(x, start, firstClass)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer delta.MustDrop()
	value := func(d *ts.Tensor) float64 {
		xd := x.MustAdd(d, false)
		defer xd.MustDrop()
		l, err := firstClass(xd)
		if err != nil {
			panic(err)
		}
		defer l.MustDrop()
		return l.Float64Values()[0]
	}
	fmt.Println("objective rose:", value(delta) > value(start))
	fmt.Println("within the ball:", largest(delta) <= 0.1+1e-6)
	// Output:
	// objective rose: true
	// within the ball: true
}
