package prepare

import (
	"context"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/fixturegen"
)

func TestRunResizesAndResumes(t *testing.T) {
	src, out := t.TempDir(), filepath.Join(t.TempDir(), "out")
	for i, size := range [][2]int{{300, 200}, {120, 160}, {90, 60}} {
		raw, err := fixturegen.Encode(fixturegen.Config{Width: size[0], Height: size[1]}, i, i)
		require.NoError(t, err)
		path := filepath.Join(src, "train", fmt.Sprint("c", i%2), fmt.Sprint(i, ".jpg"))
		require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
		require.NoError(t, os.WriteFile(path, raw, 0o644))
	}
	pngPath := filepath.Join(src, "train", "c1", "p.png")
	f, err := os.Create(pngPath)
	require.NoError(t, err)
	require.NoError(t, png.Encode(f, image.NewRGBA(image.Rect(0, 0, 200, 100))))
	require.NoError(t, f.Close())
	require.NoError(t, os.WriteFile(filepath.Join(src, "train", "c1", "notes.txt"), []byte("x"), 0o644))

	var calls int
	st, err := Run(context.Background(), Config{Src: src, Out: out, ShortSide: 80, Workers: 2, Progress: func(Stats) { calls++ }})
	require.NoError(t, err)
	assert.Equal(t, Stats{Total: 4, Resized: 3, Copied: 1}, st)
	assert.Equal(t, 4, calls)
	for rel, want := range map[string][2]int{
		"train/c0/0.jpg": {120, 80}, "train/c1/1.jpg": {80, 107}, "train/c0/2.jpg": {90, 60}, "train/c1/p.png": {160, 80},
	} {
		f, err := os.Open(filepath.Join(out, rel))
		require.NoError(t, err)
		cfg, _, err := image.DecodeConfig(f)
		f.Close()
		require.NoError(t, err, rel)
		assert.Equal(t, want, [2]int{cfg.Width, cfg.Height}, rel)
	}
	_, err = os.Stat(filepath.Join(out, "train", "c1", "notes.txt"))
	assert.True(t, os.IsNotExist(err), "non-images are not copied")

	// An interrupted run leaves finished files only; a rerun skips them.
	require.NoError(t, os.Remove(filepath.Join(out, "train", "c0", "0.jpg")))
	st, err = Run(context.Background(), Config{Src: src, Out: out, ShortSide: 80})
	require.NoError(t, err)
	assert.Equal(t, Stats{Total: 4, Resized: 1, Skipped: 3}, st)

	// The copy reads as an image folder.
	folder, err := data.NewImageFolder(filepath.Join(out, "train"), 32, false)
	require.NoError(t, err)
	assert.Equal(t, 4, folder.Len())
}

func TestRunErrors(t *testing.T) {
	src := t.TempDir()
	for _, tc := range []struct {
		cfg  Config
		want string
	}{
		{Config{Src: src}, "--out: required"},
		{Config{Src: src, Out: filepath.Join(src, "x")}, "must lie outside the source folder"},
		{Config{Src: src, Out: t.TempDir(), Quality: 101}, "--quality 101: allowed values are 1-100"},
		{Config{Src: src, Out: t.TempDir()}, "no images"},
	} {
		_, err := Run(context.Background(), tc.cfg)
		assert.ErrorContains(t, err, tc.want)
	}
	require.NoError(t, os.WriteFile(filepath.Join(src, "bad.jpg"), []byte{0xFF, 0xD8, 0xFF, 1, 2, 3}, 0o644))
	_, err := Run(context.Background(), Config{Src: src, Out: t.TempDir()})
	assert.ErrorContains(t, err, "bad.jpg")
}
