package data

import (
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// ramp is a C×H×W image with distinct values in (0,1].
func ramp(c, h, w int) []float32 {
	x := make([]float32, c*h*w)
	for i := range x {
		x[i] = float32(i+1) / float32(len(x))
	}
	return x
}

func TestShiftFlipMirror(t *testing.T) {
	c, h, w := 2, 3, 4
	src := ramp(c, h, w)
	dst := make([]float32, len(src))
	shiftFlip(dst, src, c, h, w, 0, 0, true)
	for ch := range c {
		for y := range h {
			for x := range w {
				require.Equal(t, src[(ch*h+y)*w+(w-1-x)], dst[(ch*h+y)*w+x])
			}
		}
	}
	shiftFlip(dst, src, c, h, w, 0, 0, false)
	assert.Equal(t, src, dst, "no shift, no flip is a copy")
}

func TestShiftFlipShift(t *testing.T) {
	c, h, w := 1, 3, 3
	src := ramp(c, h, w) // 1..9 / 9
	dst := make([]float32, 9)
	shiftFlip(dst, src, c, h, w, 1, -1, false) // dst(y,x) = src(y-1, x+1)
	want := []float32{0, 0, 0, 2. / 9, 3. / 9, 0, 5. / 9, 6. / 9, 0}
	assert.InDeltaSlice(t, want, dst, 1e-7)
}

// TestAugmentInvariants: every augmented image keeps its shape and [0,1]
// range and equals the source shifted by at most CropPad pixels (zeros
// entering from the border), mirrored or not; over many draws both flips
// and every shift occur.
func TestAugmentInvariants(t *testing.T) {
	c, h, w, pad := 3, 6, 5, 2
	src := ramp(c, h, w)
	aug := Augment{CropPad: pad, HFlip: true}
	rng := rand.New(rand.NewPCG(1, 2))
	seenFlip := map[bool]bool{}
	seenShift := map[[2]int]bool{}
	dst := make([]float32, len(src))
	for range 400 {
		aug.Apply(dst, src, c, h, w, rng)
		assertUnit(t, dst)
		dx, dy, flip, ok := explain(dst, src, c, h, w, pad)
		require.True(t, ok, "output is not a padded crop (+flip) of the input")
		seenFlip[flip] = true
		seenShift[[2]int{dx, dy}] = true
	}
	assert.Len(t, seenFlip, 2)
	assert.Len(t, seenShift, (2*pad+1)*(2*pad+1))

	noop := Augment{}
	assert.False(t, noop.Enabled())
	noop.Apply(dst, src, c, h, w, rng)
	assert.Equal(t, src, dst)
}

// explain finds the shift and flip that turn src into dst.
func explain(dst, src []float32, c, h, w, pad int) (dx, dy int, flip, ok bool) {
	want := make([]float32, len(src))
	for _, flip := range []bool{false, true} {
		for dy := -pad; dy <= pad; dy++ {
			for dx := -pad; dx <= pad; dx++ {
				shiftFlip(want, src, c, h, w, dx, dy, flip)
				if equal(want, dst) {
					return dx, dy, flip, true
				}
			}
		}
	}
	return 0, 0, false, false
}

func equal(a, b []float32) bool {
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return len(a) == len(b)
}

func TestAugmentValidate(t *testing.T) {
	require.NoError(t, Augment{CropPad: 4, HFlip: true}.validate(32, 32))
	require.ErrorContains(t, Augment{CropPad: -1}.validate(32, 32), "crop padding -1")
	require.ErrorContains(t, Augment{CropPad: 8}.validate(8, 16), "smaller than the image (8×16)")
}
