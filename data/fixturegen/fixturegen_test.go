package fixturegen

import (
	"bytes"
	"context"
	"image/jpeg"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteIsDeterministicAndPhotoSized(t *testing.T) {
	cfg := Config{Classes: 2, PerClass: 2, Seed: 7}
	a, b := t.TempDir(), t.TempDir()
	n1, err := Write(context.Background(), a, Config{Classes: 2, PerClass: 2, Seed: 7, Workers: 1})
	require.NoError(t, err)
	n2, err := Write(context.Background(), b, Config{Classes: 2, PerClass: 2, Seed: 7, Workers: 3})
	require.NoError(t, err)
	assert.Equal(t, n1, n2)
	for _, rel := range []string{"class000/img00000.jpg", "class001/img00001.jpg"} {
		x, err := os.ReadFile(filepath.Join(a, rel))
		require.NoError(t, err)
		y, err := os.ReadFile(filepath.Join(b, rel))
		require.NoError(t, err)
		assert.Equal(t, x, y, "%s is the same whatever the worker count", rel)
		hd, err := jpeg.DecodeConfig(bytes.NewReader(x))
		require.NoError(t, err)
		assert.Equal(t, [2]int{500, 375}, [2]int{hd.Width, hd.Height})
		// Photographs of this size at quality 90 take tens of KB; a flat
		// pattern would take a few.
		assert.Greater(t, len(x), 30<<10, rel)
		assert.Less(t, len(x), 120<<10, rel)
	}
	other, err := Encode(cfg, 0, 1)
	require.NoError(t, err)
	first, err := os.ReadFile(filepath.Join(a, "class000/img00000.jpg"))
	require.NoError(t, err)
	assert.NotEqual(t, first, other, "images differ within a class")
}

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Classes: -1}, "classes -1"},
		{Config{PerClass: -2}, "per-class -2"},
		{Config{Width: 4}, "size 4×375"},
		{Config{Quality: 101}, "quality 101: allowed values are 1-100"},
	} {
		assert.ErrorContains(t, tc.cfg.Validate(), tc.want)
	}
	assert.NoError(t, Config{}.Validate())
}

// train/ and val/ have the same classes, val its own count and pictures.
func TestWriteTrainVal(t *testing.T) {
	dir := t.TempDir()
	cfg := Config{Classes: 2, PerClass: 2, Width: 16, Height: 16, Seed: 3}
	w, err := WriteTrainVal(context.Background(), dir, cfg, 1)
	require.NoError(t, err)
	assert.Equal(t, 6, w.Images)
	var size int64
	for _, rel := range []string{"train/class000/img00000.jpg", "train/class000/img00001.jpg", "train/class001/img00000.jpg",
		"train/class001/img00001.jpg", "val/class000/img00000.jpg", "val/class001/img00000.jpg"} {
		st, err := os.Stat(filepath.Join(dir, rel))
		require.NoError(t, err, rel)
		size += st.Size()
	}
	assert.Equal(t, size, w.Bytes)
	_, err = os.Stat(filepath.Join(dir, "val/class000/img00001.jpg"))
	assert.True(t, os.IsNotExist(err))
	train, err := os.ReadFile(filepath.Join(dir, "train/class000/img00000.jpg"))
	require.NoError(t, err)
	val, err := os.ReadFile(filepath.Join(dir, "val/class000/img00000.jpg"))
	require.NoError(t, err)
	assert.NotEqual(t, train, val, "val's pictures are not train's")

	none := t.TempDir()
	w, err = WriteTrainVal(context.Background(), none, cfg, 0)
	require.NoError(t, err)
	assert.Equal(t, 4, w.Images)
	assert.NoDirExists(t, filepath.Join(none, "val"))

	_, err = WriteTrainVal(context.Background(), none, cfg, -1)
	assert.ErrorContains(t, err, "val-per-class -1: must not be negative")
}
