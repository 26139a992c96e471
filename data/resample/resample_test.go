package resample

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// reference computes output pixel (ox, oy, c) straight from the definition:
// the 2-D triangle-weighted mean of the source pixels around the output's
// centre, in float64, without weight tables.
func reference(src []byte, w, h int, r Rect, outW, outH, ox, oy, c int) float64 {
	sx, sy := (r.X1-r.X0)/float64(outW), (r.Y1-r.Y0)/float64(outH)
	supX, supY := math.Max(sx, 1), math.Max(sy, 1)
	cx, cy := r.X0+(float64(ox)+0.5)*sx, r.Y0+(float64(oy)+0.5)*sy
	var num, den float64
	for y := range h {
		wy := 1 - math.Abs(float64(y)+0.5-cy)/supY
		if wy <= 0 {
			continue
		}
		for x := range w {
			wx := 1 - math.Abs(float64(x)+0.5-cx)/supX
			if wx <= 0 {
				continue
			}
			num += wx * wy * float64(src[3*(y*w+x)+c])
			den += wx * wy
		}
	}
	return num / den
}

func TestRGBToCHWMatchesDefinition(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	w, h := 61, 47
	src := make([]byte, 3*w*h)
	for i := range src {
		src[i] = byte(rng.IntN(256))
	}
	tests := []struct {
		name       string
		r          Rect
		outW, outH int
	}{
		{"shrink whole image", Rect{0, 0, 61, 47}, 13, 9},
		{"shrink fractional crop", Rect{3.25, 5.5, 50.75, 40.125}, 11, 17},
		{"enlarge a small crop", Rect{10, 10, 16, 13}, 24, 12},
		{"identity", Rect{0, 0, 61, 47}, 61, 47},
		{"one pixel out", Rect{0, 0, 61, 47}, 1, 1},
	}
	var rs Resampler // shared: tables must be rebuilt between cases
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dst := make([]byte, 3*tc.outW*tc.outH)
			require.NoError(t, rs.RGBToCHW(dst, src, w, h, tc.r, tc.outW, tc.outH, false))
			flipped := make([]byte, len(dst))
			require.NoError(t, rs.RGBToCHW(flipped, src, w, h, tc.r, tc.outW, tc.outH, true))
			plane := tc.outW * tc.outH
			for c := range 3 {
				for oy := range tc.outH {
					for ox := range tc.outW {
						want := reference(src, w, h, tc.r, tc.outW, tc.outH, ox, oy, c)
						got := dst[c*plane+oy*tc.outW+ox]
						// float32 sums, then rounding: within one level.
						require.InDelta(t, want, float64(got), 0.5+1e-3, "c=%d (%d,%d)", c, ox, oy)
						assert.Equal(t, got, flipped[c*plane+oy*tc.outW+tc.outW-1-ox])
					}
				}
			}
		})
	}
}

func TestRGBToCHWKeepsFlatImagesFlat(t *testing.T) {
	w, h := 40, 30
	src := make([]byte, 3*w*h)
	for i := range src {
		src[i] = []byte{200, 100, 7}[i%3]
	}
	dst := make([]byte, 3*8*8)
	var rs Resampler
	require.NoError(t, rs.RGBToCHW(dst, src, w, h, Rect{0.3, 1.7, 39.9, 29.2}, 8, 8, false))
	for i, v := range dst {
		require.Equal(t, []byte{200, 100, 7}[i/64], v, "pixel %d", i)
	}
}

func TestRGBToCHWRejectsBadArguments(t *testing.T) {
	var rs Resampler
	src := make([]byte, 3*4*4)
	dst := make([]byte, 3*2*2)
	for _, tc := range []struct {
		name string
		err  error
	}{
		{"crop outside", rs.RGBToCHW(dst, src, 4, 4, Rect{0, 0, 5, 4}, 2, 2, false)},
		{"empty crop", rs.RGBToCHW(dst, src, 4, 4, Rect{1, 1, 1, 3}, 2, 2, false)},
		{"short source", rs.RGBToCHW(dst, src[:10], 4, 4, Rect{0, 0, 4, 4}, 2, 2, false)},
		{"short output", rs.RGBToCHW(dst[:5], src, 4, 4, Rect{0, 0, 4, 4}, 2, 2, false)},
	} {
		assert.Error(t, tc.err, tc.name)
	}
}
