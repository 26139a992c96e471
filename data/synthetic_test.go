package data

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSyntheticShapeAndBalance(t *testing.T) {
	d, err := Synthetic(103, 10, 3, 8, 6, 7)
	require.NoError(t, err)
	require.NoError(t, d.Validate())
	assert.Equal(t, []int{103, 3, 8, 6, 10}, []int{d.N, d.C, d.H, d.W, d.Classes})
	counts := make([]int, 10)
	for _, l := range d.Labels {
		counts[l]++
	}
	for k, c := range counts {
		assert.Contains(t, []int{10, 11}, c, "class %d", k)
	}

	again, err := Synthetic(103, 10, 3, 8, 6, 7)
	require.NoError(t, err)
	assert.Equal(t, d, again, "same seed, same data")
	other, err := Synthetic(103, 10, 3, 8, 6, 8)
	require.NoError(t, err)
	assert.NotEqual(t, d.Images, other.Images, "different seed, different data")

	_, err = Synthetic(10, 0, 1, 4, 4, 1)
	require.ErrorContains(t, err, "classes=0")
	_, err = Synthetic(-1, 2, 1, 4, 4, 1)
	require.ErrorContains(t, err, "n=-1")
}

// TestSyntheticLearnable shows the classes are separable from the pixels:
// a nearest-class-mean classifier fitted on the train split labels the
// unseen test split almost perfectly, while a different seed's class means
// (other patterns) do no better than chance.
func TestSyntheticLearnable(t *testing.T) {
	cfg := SyntheticConfig{Classes: 10, C: 1, H: 28, W: 28, Seed: 5}
	train, err := cfg.Generate(500, Train)
	require.NoError(t, err)
	test, err := cfg.Generate(200, Test)
	require.NoError(t, err)
	assert.NotEqual(t, train.Images[:784], test.Images[:784], "splits hold different examples")

	means := classMeans(train)
	assert.Greater(t, accuracy(test, means), 0.95)

	cfg.Seed = 6
	unrelated, err := cfg.Generate(500, Train)
	require.NoError(t, err)
	assert.Less(t, accuracy(test, classMeans(unrelated)), 0.4)
}

func classMeans(d *Dataset) [][]float64 {
	size := d.C * d.H * d.W
	means := make([][]float64, d.Classes)
	counts := make([]float64, d.Classes)
	for k := range means {
		means[k] = make([]float64, size)
	}
	for i := range d.N {
		l := d.Labels[i]
		counts[l]++
		for j, b := range d.Image(i) {
			means[l][j] += float64(b)
		}
	}
	for k := range means {
		for j := range means[k] {
			means[k][j] /= counts[k]
		}
	}
	return means
}

func accuracy(d *Dataset, means [][]float64) float64 {
	correct := 0
	for i := range d.N {
		best, bestDist := -1, 0.0
		for k, m := range means {
			dist := 0.0
			for j, b := range d.Image(i) {
				diff := float64(b) - m[j]
				dist += diff * diff
			}
			if best < 0 || dist < bestDist {
				best, bestDist = k, dist
			}
		}
		if int64(best) == d.Labels[i] {
			correct++
		}
	}
	return float64(correct) / float64(d.N)
}
