package data

import (
	"image"
	"image/color"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// writeFolder makes dir/{cat,dog} with a few PNG and JPEG images and a
// stray text file that must be ignored.
func writeFolder(t *testing.T, dir string) {
	t.Helper()
	writeImage(t, filepath.Join(dir, "dog", "b.png"), solidImage(40, 30, color.RGBA{0, 255, 0, 255}))
	writeImage(t, filepath.Join(dir, "dog", "a.jpg"), gradientImage(50, 40))
	writeImage(t, filepath.Join(dir, "cat", "x.PNG"), halvesImage(64, 48))
	writeImage(t, filepath.Join(dir, "cat", "y.jpeg"), gradientImage(30, 60))
	writeImage(t, filepath.Join(dir, "cat", "z.png"), image.NewGray(image.Rect(0, 0, 20, 20)))
	writeFile(t, filepath.Join(dir, "cat", "notes.txt"), []byte("not an image"))
}

func TestNewImageFolder(t *testing.T) {
	dir := t.TempDir()
	writeFolder(t, dir)
	f, err := NewImageFolder(dir, 16, false)
	require.NoError(t, err)
	assert.Equal(t, []string{"cat", "dog"}, f.ClassNames)
	assert.Equal(t, 5, f.Len())
	assert.Equal(t, []int64{0, 0, 0, 1, 1}, f.Labels)
	assert.Equal(t, "a.jpg", filepath.Base(f.Files[3]), "files sorted within a class")
	c, h, w := f.Shape()
	assert.Equal(t, []int{3, 16, 16}, []int{c, h, w})
	assert.Equal(t, 2, f.NumClasses())

	dst := make([]float32, 3*16*16)
	for i := range f.Len() {
		require.NoError(t, f.Fill(i, dst, nil), f.Files[i])
		assertUnit(t, dst)
	}
}

func TestImageFolderErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(t *testing.T, dir string)
		size    int
		wantErr string
	}{
		{name: "no class folders", setup: func(t *testing.T, dir string) { writeFile(t, filepath.Join(dir, "a.png"), nil) }, size: 8, wantErr: "no class subfolders"},
		{name: "empty class", setup: func(t *testing.T, dir string) {
			writeImage(t, filepath.Join(dir, "a", "1.png"), solidImage(4, 4, color.RGBA{A: 255}))
			require.NoError(t, os.MkdirAll(filepath.Join(dir, "b"), 0o755))
		}, size: 8, wantErr: `class "b" has no images`},
		{name: "bad size", setup: func(*testing.T, string) {}, size: 0, wantErr: "size 0 must be positive"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			tc.setup(t, dir)
			_, err := NewImageFolder(dir, tc.size, false)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}

	t.Run("missing dir", func(t *testing.T) {
		_, err := NewImageFolder(filepath.Join(t.TempDir(), "nope"), 8, false)
		require.ErrorContains(t, err, "no such file")
	})

	t.Run("corrupt image", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "a", "broken.jpg"), []byte("definitely not a jpeg"))
		f, err := NewImageFolder(dir, 8, true)
		require.NoError(t, err)
		err = f.Fill(0, make([]float32, 3*8*8), rand.New(rand.NewPCG(1, 2)))
		require.ErrorContains(t, err, "broken.jpg")
	})
}

func TestImageFolderEvalTransform(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "a", "solid.png"), solidImage(37, 23, color.RGBA{200, 100, 50, 255}))
	writeImage(t, filepath.Join(dir, "a", "halves.png"), halvesImage(64, 32))
	f, err := NewImageFolder(dir, 8, false)
	require.NoError(t, err)
	plane := 8 * 8

	// A constant image stays that constant through crop and resize.
	dst := make([]float32, 3*plane)
	require.NoError(t, f.Fill(1, dst, nil))
	for p := range plane {
		require.InDelta(t, 200.0/255, dst[p], 1e-6)
		require.InDelta(t, 100.0/255, dst[plane+p], 1e-6)
		require.InDelta(t, 50.0/255, dst[2*plane+p], 1e-6)
	}

	// The centre crop of a red|blue image keeps red on the left and blue on
	// the right, and is the same every time.
	require.NoError(t, f.Fill(0, dst, nil))
	for y := range 8 {
		assert.Greater(t, dst[y*8+0], float32(0.9), "red at left, row %d", y)
		assert.Less(t, dst[2*plane+y*8+0], float32(0.1), "no blue at left, row %d", y)
		assert.Greater(t, dst[2*plane+y*8+7], float32(0.9), "blue at right, row %d", y)
		assert.Less(t, dst[y*8+7], float32(0.1), "no red at right, row %d", y)
	}
	again := make([]float32, 3*plane)
	require.NoError(t, f.Fill(0, again, nil))
	assert.Equal(t, dst, again)
}

func TestImageFolderTrainTransform(t *testing.T) {
	dir := t.TempDir()
	writeImage(t, filepath.Join(dir, "a", "g.png"), gradientImage(80, 60))
	f, err := NewImageFolder(dir, 12, true)
	require.NoError(t, err)
	fill := func(seed uint64) []float32 {
		dst := make([]float32, 3*12*12)
		require.NoError(t, f.Fill(0, dst, rand.New(rand.NewPCG(seed, 0))))
		assertUnit(t, dst)
		return dst
	}
	assert.Equal(t, fill(1), fill(1), "same generator, same crop")
	assert.NotEqual(t, fill(1), fill(2), "different generators, different crops")
}

func TestRandomResizedCrop(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for _, size := range [][2]int{{500, 375}, {32, 32}, {1000, 10}, {3, 200}, {1, 1}} {
		w, h := size[0], size[1]
		for range 200 {
			r := randomResizedCrop(w, h, rng)
			require.True(t, r.In(image.Rect(0, 0, w, h)), "%v inside %dx%d", r, w, h)
			require.False(t, r.Empty(), "%v in %dx%d", r, w, h)
			if w == 500 { // roomy image: the random branch always succeeds
				area := float64(r.Dx()*r.Dy()) / float64(w*h)
				ratio := float64(r.Dx()) / float64(r.Dy())
				require.GreaterOrEqual(t, area, rrcMinScale*0.95)
				require.InDelta(t, 0, math.Log(ratio), math.Log(rrcMaxRatio)*1.1)
			}
		}
	}
	// A very wide image falls back to the widest central crop with ratio 4/3.
	r := randomResizedCrop(1000, 10, rand.New(rand.NewPCG(1, 1)))
	assert.Equal(t, image.Rect(493, 0, 506, 10), r)
}

func TestCenterCrop(t *testing.T) {
	// 224 from a 256-sided square: the classic resize-256/crop-224.
	assert.Equal(t, image.Rect(16, 16, 240, 240), centerCrop(256, 256, 224))
	// Landscape: the square sits in the middle of the longer side.
	assert.Equal(t, image.Rect(86, 16, 310, 240), centerCrop(396, 256, 224))
	// Tiny output from a tiny image never goes empty.
	assert.Equal(t, image.Rect(0, 0, 1, 1), centerCrop(1, 1, 1))
}

func TestMaterialize(t *testing.T) {
	dir := t.TempDir()
	writeFolder(t, dir)
	f, err := NewImageFolder(dir, 10, false)
	require.NoError(t, err)
	d, err := Materialize(f, 3)
	require.NoError(t, err)
	require.NoError(t, d.Validate())
	assert.Equal(t, f.Labels, d.Labels)
	assert.Equal(t, []int{5, 3, 10, 10, 2}, []int{d.N, d.C, d.H, d.W, d.Classes})
	want := make([]float32, 3*10*10)
	got := make([]float32, 3*10*10)
	for i := range f.Len() {
		require.NoError(t, f.Fill(i, want, nil))
		require.NoError(t, d.Fill(i, got, nil))
		assert.InDeltaSlice(t, want, got, 0.5/255+1e-6, "example %d", i)
	}

	writeFile(t, filepath.Join(dir, "dog", "c.png"), []byte("broken"))
	f, err = NewImageFolder(dir, 10, false)
	require.NoError(t, err)
	_, err = Materialize(f, 2)
	require.ErrorContains(t, err, "c.png")
}

// assertUnit checks that every value lies in [0,1].
func assertUnit(t *testing.T, xs []float32) {
	t.Helper()
	for i, v := range xs {
		if v < 0 || v > 1 || v != v {
			t.Fatalf("value %d = %v outside [0,1]", i, v)
		}
	}
}
