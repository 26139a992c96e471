package data

import (
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The RobustBench protocol takes the first N test points in file order: on
// a small fake CIFAR-10 test batch whose labels and first pixels number the
// records, the chosen examples are exactly records 0..N-1, in order.
func TestFirstNTakesTheFileOrder(t *testing.T) {
	dir := t.TempDir()
	const records = 30
	raw := make([]byte, 0, records*(1+cifarImageSize))
	for i := range records {
		rec := make([]byte, 1+cifarImageSize)
		rec[0] = byte((i * 7) % 10) // labels not sorted, so stratification would reorder
		rec[1] = byte(i)            // the first red pixel numbers the record
		raw = append(raw, rec...)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, "test_batch.bin"), raw, 0o644))
	test, err := ReadCIFAR10(dir, Test)
	require.NoError(t, err)
	cases := []struct {
		n, want int
	}{{0, records}, {12, 12}, {records, records}}
	for _, c := range cases {
		sub, err := FirstN(test, c.n)
		require.NoError(t, err)
		require.Equal(t, c.want, sub.Len())
		dst := make([]float32, cifarImageSize)
		for i := range sub.Len() {
			require.NoError(t, sub.Fill(i, dst, nil))
			assert.Equal(t, int64((i*7)%10), sub.Label(i), "label of example %d", i)
			assert.InDelta(t, float32(i)/255, dst[0], 1e-6, "example %d is record %d", i, i)
		}
	}
	strat, err := SelectStratified(test, 12, 0)
	require.NoError(t, err)
	first, err := FirstN(test, 12)
	require.NoError(t, err)
	assert.NotEqual(t, strat.(*Subset).Indices, first.(*Subset).Indices, "robarch's default subset is not RobustBench's")

	_, err = FirstN(test, records+1)
	assert.ErrorContains(t, err, "only 30")
	_, err = FirstN(test, -1)
	assert.ErrorContains(t, err, "positive")
}

func TestRobustBenchImageNetList(t *testing.T) {
	ids := RobustBenchImageNetIDs()
	require.Len(t, ids, 5000)
	assert.Equal(t, "n09468604/ILSVRC2012_val_00015253.JPEG", ids[0], "RobustBench's first image")
	seen := map[string]bool{}
	for _, id := range ids {
		assert.False(t, seen[id], "duplicate %s", id)
		seen[id] = true
	}
}

// The ImageNet set follows the list's order and labels by sorted folder;
// a missing file is named.
func TestNewRobustBenchImageNet(t *testing.T) {
	ids := RobustBenchImageNetIDs()[:3]
	dir := t.TempDir()
	img := image.NewRGBA(image.Rect(0, 0, 300, 260))
	for _, id := range ids {
		p := filepath.Join(dir, filepath.FromSlash(id))
		require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
		out, err := os.Create(p) // PNG bytes under a .JPEG name: image.Decode sniffs
		require.NoError(t, err)
		require.NoError(t, png.Encode(out, img))
		require.NoError(t, out.Close())
	}
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "n00000000"), 0o755)) // sorts first: shifts every label by one
	f, err := NewRobustBenchImageNet(dir, 3)
	require.NoError(t, err)
	require.Equal(t, 3, f.Len())
	for i, id := range ids {
		assert.Equal(t, filepath.Join(dir, filepath.FromSlash(id)), f.Files[i])
		assert.Equal(t, id[:9], f.ClassNames[f.Labels[i]])
	}
	assert.Equal(t, "n00000000", f.ClassNames[0])
	dst := make([]float32, 3*224*224)
	require.NoError(t, f.Fill(0, dst, nil))

	_, err = NewRobustBenchImageNet(dir, 4)
	assert.ErrorContains(t, err, "1 of 4 listed images")
	_, err = NewRobustBenchImageNet(dir, 5001)
	assert.ErrorContains(t, err, "up to 5000")
}
