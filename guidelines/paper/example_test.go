package paper_test

import (
	"fmt"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/guidelines/paper"
)

// Which of the paper's guidelines a change to ResNet-50 bears on, and
// what each predicts: SiLU in every block position is guideline 10
// (smooth activations help).
func ExampleBearing() {
	base, err := arch.Get("resnet50")
	if err != nil {
		panic(err)
	}
	base = base.WithDefaults()
	silu := base.Clone()
	silu.Block.Activations = []string{"silu", "silu", "silu"}
	for _, n := range paper.Bearing(base, silu) {
		g := paper.All()[n-1]
		fmt.Printf("%d %s: %s\n", g.Number, g.ID, g.Predict(base, silu))
	}
	// Output:
	// 10 smooth-activation: expected to help
}
