package arch_test

import (
	"fmt"

	"github.com/robarch/robarch/arch"
)

// Get returns a preset by name, with its defaults filled in and validated;
// Params counts its trainable parameters exactly, as PyTorch would.
func ExampleGet() {
	spec, err := arch.Get("resnet50")
	if err != nil {
		fmt.Println(err)
		return
	}
	params, err := arch.Params(spec)
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(spec.Name, len(spec.Stages), "stages,", params, "parameters")
	// Output: resnet50 4 stages, 25557032 parameters
}

// ParseBudget reads a parameter budget as a user writes it; Fit rescales
// a spec's stage widths until its count lands within the tolerance of the
// budget (2% by default), here with widths kept multiples of 8.
func ExampleFit() {
	spec, _ := arch.Get("resnet50")
	budget, err := arch.ParseBudget("26M")
	if err != nil {
		fmt.Println(err)
		return
	}
	fitted, params, err := arch.Fit(spec, budget, arch.FitOptions{Quantum: 8})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println("budget", budget)
	fmt.Println("fitted", params, "parameters")
	for i, sg := range fitted.Stages {
		fmt.Printf("stages[%d]: depth %d, width %d\n", i, sg.Depth, sg.Width)
	}
	// Output:
	// budget 26000000
	// fitted 26006160 parameters
	// stages[0]: depth 3, width 256
	// stages[1]: depth 4, width 528
	// stages[2]: depth 6, width 1032
	// stages[3]: depth 3, width 2064
}

// ParseBudget accepts a plain count or one with a K, M or G suffix (and _
// or , as separators); FormatBudget writes a count back the short way.
func ExampleParseBudget() {
	for _, text := range []string{"26M", "1.5M", "500K", "26_143_228"} {
		n, err := arch.ParseBudget(text)
		if err != nil {
			fmt.Println(err)
			continue
		}
		fmt.Println(text, n, arch.FormatBudget(n))
	}
	// Output:
	// 26M 26000000 26M
	// 1.5M 1500000 1.5M
	// 500K 500000 500K
	// 26_143_228 26143228 26.14M
}
