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

func TestShardBatches(t *testing.T) {
	src := labelled(make([]int64, 11), 1) // pixel = index
	tests := []struct {
		batch, rank, size int
		want              []int
	}{
		{batch: 3, rank: 0, size: 2, want: []int{0, 1, 2, 6, 7, 8}},
		{batch: 3, rank: 1, size: 2, want: []int{3, 4, 5, 9, 10}},
		{batch: 4, rank: 2, size: 3, want: []int{8, 9, 10}},
		{batch: 20, rank: 1, size: 2, want: nil}, // fewer batches than ranks
	}
	for _, tc := range tests {
		shard, err := ShardBatches(src, tc.batch, tc.rank, tc.size)
		require.NoError(t, err)
		got := shard.(*Subset).Indices
		assert.Equal(t, tc.want, got, "batch %d rank %d of %d", tc.batch, tc.rank, tc.size)
	}
	// Every example in exactly one shard, whatever the split.
	for size := 1; size <= 4; size++ {
		seen := map[int]int{}
		for rank := range size {
			shard, err := ShardBatches(src, 2, rank, size)
			require.NoError(t, err)
			for i := range shard.Len() {
				px := make([]float32, 1)
				require.NoError(t, shard.Fill(i, px, nil))
				seen[int(px[0]*255+0.5)]++
			}
		}
		assert.Len(t, seen, 11, "size %d", size)
		for i, n := range seen {
			assert.Equal(t, 1, n, "example %d in %d shards (size %d)", i, n, size)
		}
	}
	for _, bad := range [][3]int{{0, 0, 1}, {2, 2, 2}, {2, -1, 2}, {2, 0, 0}} {
		_, err := ShardBatches(src, bad[0], bad[1], bad[2])
		assert.ErrorContains(t, err, "want batch size >= 1", "%v", bad)
	}
}
