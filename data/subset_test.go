package data

import (
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// labelled is a Dataset of 1×1×1 images whose pixel is the example index,
// with the given labels.
func labelled(labels []int64, classes int) *Dataset {
	images := make([]uint8, len(labels))
	for i := range images {
		images[i] = uint8(i)
	}
	return &Dataset{Images: images, Labels: labels, N: len(labels), C: 1, H: 1, W: 1, Classes: classes}
}

func TestSelectStratified(t *testing.T) {
	// 3 classes of 40, 30 and 5 examples.
	var labels []int64
	for k, n := range []int{40, 30, 5} {
		for range n {
			labels = append(labels, int64(k))
		}
	}
	src := labelled(labels, 3)

	tests := []struct {
		n          int
		wantCounts []int
	}{
		{n: 9, wantCounts: []int{3, 3, 3}},
		{n: 10, wantCounts: []int{4, 3, 3}},
		{n: 30, wantCounts: []int{13, 12, 5}}, // class 2 runs out
		{n: 74, wantCounts: []int{39, 30, 5}},
	}
	for _, tc := range tests {
		sub, err := SelectStratified(src, tc.n, 11)
		require.NoError(t, err)
		require.Equal(t, tc.n, sub.Len())
		counts := make([]int, 3)
		for i := range sub.Len() {
			counts[sub.Label(i)]++
		}
		assert.Equal(t, tc.wantCounts, counts, "n=%d", tc.n)

		s := sub.(*Subset)
		assert.True(t, slices.IsSorted(s.Indices), "indices keep the source order")
		assert.Len(t, slices.Compact(slices.Clone(s.Indices)), tc.n, "no duplicates")
		dst := make([]float32, 1)
		require.NoError(t, sub.Fill(2, dst, nil))
		assert.Equal(t, float32(s.Indices[2])/255, dst[0], "Fill reads through to the source")
		assert.Equal(t, labels[s.Indices[2]], sub.Label(2))
	}

	a, err := SelectStratified(src, 20, 1)
	require.NoError(t, err)
	b, err := SelectStratified(src, 20, 1)
	require.NoError(t, err)
	c, err := SelectStratified(src, 20, 2)
	require.NoError(t, err)
	assert.Equal(t, a.(*Subset).Indices, b.(*Subset).Indices, "same seed, same subset")
	assert.NotEqual(t, a.(*Subset).Indices, c.(*Subset).Indices, "different seed, different subset")

	for _, n := range []int{0, 75, 1000} {
		all, err := SelectStratified(src, n, 1)
		require.NoError(t, err)
		assert.Same(t, src, all, "n=%d keeps everything", n)
	}
	_, err = SelectStratified(src, -3, 1)
	require.ErrorContains(t, err, "subset size -3")
	require.ErrorContains(t, a.Fill(20, make([]float32, 1), nil), "subset index 20 out of range")
}
