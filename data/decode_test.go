package data

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/data/fixturegen"
	"github.com/robarch/robarch/internal/turbojpeg"
)

// writeFixtures writes n photograph-like JPEGs of w×h into dir/c0 and
// dir/c1 and returns their paths.
func writeFixtures(t testing.TB, dir string, n, w, h int) []string {
	t.Helper()
	var paths []string
	for i := range n {
		raw, err := fixturegen.Encode(fixturegen.Config{Width: w, Height: h, Seed: 3}, i%2, i)
		require.NoError(t, err)
		paths = append(paths, writeFile(t, filepath.Join(dir, fmt.Sprint("c", i%2), fmt.Sprintf("%03d.jpg", i)), raw))
	}
	return paths
}

// pilReference asks PIL (the library torchvision's ImageFolder decodes
// with) for the crop box of path resized to size×size with its bilinear,
// antialiased filter, as planes of bytes. It skips the test when Debian's
// python3 has no PIL.
func pilReference(t *testing.T, path string, box image.Rectangle, size int) []byte {
	t.Helper()
	const script = `
import sys, json
from PIL import Image
a = json.loads(sys.argv[1])
im = Image.open(a["path"]).convert("RGB").resize((a["size"], a["size"]), Image.BILINEAR, box=tuple(a["box"]))
sys.stdout.buffer.write(b"".join(band.tobytes() for band in im.split()))
`
	arg, err := json.Marshal(map[string]any{"path": path, "size": size, "box": []int{box.Min.X, box.Min.Y, box.Max.X, box.Max.Y}})
	require.NoError(t, err)
	out, err := exec.Command("/usr/bin/python3", "-c", script, string(arg)).Output()
	if err != nil {
		t.Skipf("no PIL reference (python3-pil): %v", err)
	}
	require.Len(t, out, 3*size*size)
	return out
}

// diffStats returns the mean absolute difference and the largest one.
func diffStats(a, b []byte) (mean float64, worst int) {
	var sum int
	for i := range a {
		d := int(a[i]) - int(b[i])
		if d < 0 {
			d = -d
		}
		sum += d
		worst = max(worst, d)
	}
	return float64(sum) / float64(len(a)), worst
}

// TestPixelsMatchPIL compares robarch's decode + crop + resize with PIL's
// decode + resize(box) on photograph-like JPEGs. Stated tolerances:
//   - full-size decode (crops too small for DCT scaling): mean absolute
//     difference ≤ 0.5 levels, every pixel within 3 levels: the decoders
//     are the same library, the filters the same triangle; PIL rounds to
//     bytes between its horizontal and vertical passes.
//   - DCT-scaled decode (1/2, 1/4: large images, centre crops): mean ≤ 2
//     levels, worst ≤ 32 levels: libjpeg's scaled IDCT drops the highest
//     frequencies before our filter averages, instead of after, which
//     moves sharp edges by a fraction of a pixel.
func TestPixelsMatchPIL(t *testing.T) {
	if !turbojpeg.Available {
		t.Skip("built without cgo")
	}
	dir := t.TempDir()
	small := writeFixtures(t, filepath.Join(dir, "small"), 2, 500, 375)
	large := writeFixtures(t, filepath.Join(dir, "large"), 1, 1200, 900)
	huge := writeFixtures(t, filepath.Join(dir, "huge"), 1, 1800, 1350)
	tests := []struct {
		name      string
		path      string
		train     bool
		seed      uint64
		wantScale turbojpeg.Scale
		mean      float64
		worst     int
	}{
		{"500x375 random crop", small[0], true, 1, turbojpeg.Full, 0.5, 3},
		{"500x375 centre crop", small[1], false, 0, turbojpeg.Full, 0.5, 3},
		{"1200x900 centre crop at 1/2", large[0], false, 0, turbojpeg.Scale{Num: 1, Denom: 2}, 2, 32},
		{"1800x1350 centre crop at 1/4", huge[0], false, 0, turbojpeg.Scale{Num: 1, Denom: 4}, 2, 32},
	}
	const size = 224
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := &ImageFolder{Size: size, Train: tc.train, Files: []string{tc.path}, Labels: []int64{0}}
			var rng, rng2 *rand.Rand
			if tc.train {
				rng, rng2 = rand.New(rand.NewPCG(tc.seed, 0)), rand.New(rand.NewPCG(tc.seed, 0))
			}
			got := make([]byte, 3*size*size)
			require.NoError(t, f.FillPixels(0, got, rng))
			// The same draws give the crop PIL is asked for.
			cfg, err := os.ReadFile(tc.path)
			require.NoError(t, err)
			im, _, err := image.DecodeConfig(bytes.NewReader(cfg))
			require.NoError(t, err)
			var box image.Rectangle
			if tc.train {
				box = randomResizedCrop(im.Width, im.Height, rng2)
			} else {
				box = centerCrop(im.Width, im.Height, size)
			}
			assert.Equal(t, tc.wantScale, turbojpeg.Shrink(dctScales, box.Dx(), box.Dy(), size, size), "crop %v", box)
			mean, worst := diffStats(got, pilReference(t, tc.path, box, size))
			t.Logf("crop %v: mean |robarch - PIL| %.3f levels, worst %d", box, mean, worst)
			assert.LessOrEqual(t, mean, tc.mean)
			assert.LessOrEqual(t, worst, tc.worst)
		})
	}
}

// The Go fallback decoder and libjpeg-turbo agree within a few levels, so
// a binary without cgo trains on the same images.
func TestGoFallbackAgreesWithTurbo(t *testing.T) {
	if !turbojpeg.Available {
		t.Skip("built without cgo")
	}
	paths := writeFixtures(t, t.TempDir(), 1, 500, 375)
	fill := func(dec Decoder) []byte {
		f := &ImageFolder{Size: 96, Files: paths, Labels: []int64{0}, Decoder: dec}
		out := make([]byte, 3*96*96)
		require.NoError(t, f.FillPixels(0, out, nil))
		return out
	}
	mean, worst := diffStats(fill(DecoderTurbo), fill(DecoderGo))
	assert.LessOrEqual(t, mean, 1.0)
	assert.LessOrEqual(t, worst, 16, "Go's chroma upsampling differs from libjpeg's")
}

// Crops and flips depend on the seed only, never on how many workers
// build the batches, and the byte and float paths agree.
func TestImageFolderBatchesIndependentOfWorkers(t *testing.T) {
	dir := t.TempDir()
	writeFixtures(t, dir, 12, 160, 120)
	f, err := NewImageFolder(dir, 32, true)
	require.NoError(t, err)
	epoch := func(workers int, reuse bool) [][]byte {
		l, err := NewLoader(f, LoaderConfig{BatchSize: 5, Shuffle: true, Seed: 9, Augment: Augment{HFlip: true}, Workers: workers, Reuse: reuse})
		require.NoError(t, err)
		var out [][]byte
		for b, err := range l.Batches(context.Background(), 1) {
			require.NoError(t, err)
			require.Nil(t, b.Images)
			out = append(out, append([]byte(nil), b.Pixels...))
		}
		return out
	}
	one := epoch(1, false)
	assert.Equal(t, one, epoch(3, true))
	assert.Equal(t, one, epoch(4, false))
	assert.Len(t, one, 3)

	// The float path (Fill + Apply) draws the same crops and flips.
	l, err := NewLoader(f, LoaderConfig{BatchSize: 5, Shuffle: true, Seed: 9, Augment: Augment{HFlip: true}})
	require.NoError(t, err)
	order := l.Order(1)
	scratch, dst := make([]float32, 3*32*32), make([]float32, 3*32*32)
	for j, i := range order[:5] {
		rng := newRand(9, exampleStream(1, 0, j))
		require.NoError(t, f.Fill(i, scratch, rng))
		Augment{HFlip: true}.Apply(dst, scratch, 3, 32, 32, rng)
		for k, v := range dst {
			require.Equal(t, byteToUnit[one[0][j*3*32*32+k]], v)
		}
	}
}

// With Reuse the loader allocates at most Prefetch+1 batches however
// many epochs run: its memory is bounded by the prefetch depth.
func TestLoaderReuseBoundsBatches(t *testing.T) {
	src, err := Synthetic(200, 2, 3, 8, 8, 1)
	require.NoError(t, err)
	for _, prefetch := range []int{1, 3} {
		l, err := NewLoader(src, LoaderConfig{BatchSize: 10, Workers: 2, Prefetch: prefetch, Reuse: true, Augment: Augment{HFlip: true}})
		require.NoError(t, err)
		for e := range 3 {
			for b, err := range l.Batches(context.Background(), e) {
				require.NoError(t, err)
				require.Len(t, b.Images, 10*3*8*8)
			}
		}
		assert.LessOrEqual(t, l.allocated.Load(), int64(prefetch+1), "prefetch %d", prefetch)
	}
	// Without Reuse every batch is new.
	l, err := NewLoader(src, LoaderConfig{BatchSize: 10})
	require.NoError(t, err)
	for range l.Batches(context.Background(), 0) {
	}
	assert.Equal(t, int64(20), l.allocated.Load())
}

// Broken files fail with an error that names them, in both decoders.
func TestCorruptJPEGsNameTheFile(t *testing.T) {
	dir := t.TempDir()
	good := writeFixtures(t, dir, 1, 200, 150)[0]
	raw, err := os.ReadFile(good)
	require.NoError(t, err)
	truncated := writeFile(t, filepath.Join(dir, "c0", "truncated.jpg"), raw[:len(raw)*2/3])
	garbage := append([]byte{0xFF, 0xD8, 0xFF}, bytes.Repeat([]byte{0x42}, 500)...)
	corrupt := writeFile(t, filepath.Join(dir, "c0", "corrupt.jpg"), garbage)
	empty := writeFile(t, filepath.Join(dir, "c0", "empty.jpg"), nil)
	for _, dec := range []Decoder{DecoderAuto, DecoderGo} {
		for _, path := range []string{truncated, corrupt, empty} {
			f := &ImageFolder{Size: 32, Files: []string{path}, Labels: []int64{0}, Decoder: dec}
			err := f.FillPixels(0, make([]byte, 3*32*32), nil)
			require.Error(t, err, "%s with decoder %q", path, dec)
			assert.Contains(t, err.Error(), path)
		}
	}
	// A corrupt file does not spoil the next one (the pooled handle is
	// replaced after an error).
	f := &ImageFolder{Size: 32, Files: []string{corrupt, good}, Labels: []int64{0, 0}}
	for range 3 {
		require.Error(t, f.FillPixels(0, make([]byte, 3*32*32), nil))
		require.NoError(t, f.FillPixels(1, make([]byte, 3*32*32), nil))
	}
	_, err = ParseDecoder("pil")
	assert.ErrorContains(t, err, `decoder "pil": allowed values are auto, turbo, go`)
}

func TestShortSide(t *testing.T) {
	dir := t.TempDir()
	paths := writeFixtures(t, dir, 1, 600, 400)
	rgb, w, h, err := ShortSide(paths[0], 256, DecoderAuto)
	require.NoError(t, err)
	assert.Equal(t, [2]int{384, 256}, [2]int{w, h})
	require.Len(t, rgb, 3*w*h)
	// Mean colour is preserved by the resize.
	var sum float64
	for _, v := range rgb {
		sum += float64(v)
	}
	full, _, _, err := ShortSide(paths[0], 400, DecoderAuto)
	require.NoError(t, err)
	assert.Nil(t, full, "an image already small enough is left as it is")
	assert.True(t, sum/float64(len(rgb)) > 10 && !math.IsNaN(sum))
	_, _, _, err = ShortSide(paths[0], 0, DecoderAuto)
	assert.ErrorContains(t, err, "short side 0")
}
