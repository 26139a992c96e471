package figure

import (
	"bytes"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func checkImages(t *testing.T, png, svg []byte, err error) {
	t.Helper()
	require.NoError(t, err)
	assert.True(t, bytes.HasPrefix(png, []byte("\x89PNG")), "a PNG")
	assert.Contains(t, string(svg), "<svg")
}

func TestDrawEveryKind(t *testing.T) {
	png, svg, err := Bars{Title: "effects", XLabel: "Δ", GapAt: 1, GapLabel: "(3 more levels)", Rows: []Bar{
		{Label: "a=1", Value: 1.5, CI: true, Low: 0.5, High: 2.5, Tone: Helps},
		{Label: "b=2", Value: -0.5, Tone: None},
	}}.Draw(8, 3)
	checkImages(t, png, svg, err)
	assert.Contains(t, string(svg), "(3 more levels)")

	png, svg, err = Bars{Title: "nothing yet", GapAt: -1}.Draw(8, 3)
	checkImages(t, png, svg, err)

	png, svg, err = Scatter{Title: "s", Clean: Series{Name: "clean", Points: []XY{{1, 80}, {2, 81}}},
		Robust: Series{Name: "robust", Points: []XY{{1, 45}, {2, 46}}}}.Draw(8, 5)
	checkImages(t, png, svg, err)

	pts := []Variant{{X: 10, Y: 45, Label: "baseline", Baseline: true, Trials: []XY{{10, 44.5}, {10, 45.5}}},
		{X: 12, Y: 47, Label: "kernel=5"}}
	png, svg, banded, err := Variants{Title: "v", Points: pts, PadX: 0.08, PadY: 0.1, Band: &[2]float64{7.5, 13.5}, BandLabel: "band"}.Draw(8, 5)
	checkImages(t, png, svg, err)
	assert.True(t, banded, "the band is near the points")
	_, _, banded, err = Variants{Title: "v", Points: pts, PadX: 0.08, PadY: 0.1, Band: &[2]float64{700, 800}}.Draw(8, 5)
	require.NoError(t, err)
	assert.False(t, banded, "a band far from the points is not drawn")

	png, svg, err = EDFs{Title: "e", Grey: 1, Curves: []Curve{
		{Label: "baseline", Values: []float64{0.5, 0.55}, Baseline: true, Coloured: true},
		{Label: "k=3", Values: []float64{0.52, 0.6}, Coloured: true},
		{Label: "k=5", Values: []float64{0.53}},
	}}.Draw(8, 4.5)
	checkImages(t, png, svg, err)
	assert.Contains(t, string(svg), "1 more levels")
}
