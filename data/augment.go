package data

import (
	"fmt"
	"math/rand/v2"
)

// Augment is the Go-side training augmentation: a random crop of the image
// zero-padded by CropPad pixels on each side (the usual CIFAR recipe with
// CropPad 4) and a horizontal flip with probability 1/2.
type Augment struct {
	CropPad int
	HFlip   bool
}

// Enabled reports whether the augmentation changes anything.
func (a Augment) Enabled() bool { return a.CropPad > 0 || a.HFlip }

func (a Augment) validate(h, w int) error {
	if a.CropPad < 0 {
		return fmt.Errorf("augment crop padding %d: must be 0 (off) or positive", a.CropPad)
	}
	if a.CropPad >= h || a.CropPad >= w {
		return fmt.Errorf("augment crop padding %d: must be smaller than the image (%d×%d)", a.CropPad, h, w)
	}
	return nil
}

// Apply writes an augmented copy of the C×H×W image src into dst, drawing
// the crop offset and the flip from rng.
func (a Augment) Apply(dst, src []float32, c, h, w int, rng *rand.Rand) {
	dx, dy, flip := a.draw(rng)
	shiftFlip(dst, src, c, h, w, dx, dy, flip)
}

// draw picks the crop offset and the flip, in this order.
func (a Augment) draw(rng *rand.Rand) (dx, dy int, flip bool) {
	if a.CropPad > 0 {
		dx = rng.IntN(2*a.CropPad+1) - a.CropPad
		dy = rng.IntN(2*a.CropPad+1) - a.CropPad
	}
	return dx, dy, a.HFlip && rng.IntN(2) == 1
}

// ApplyPixels is Apply for byte images; it draws from rng exactly as
// Apply does.
func (a Augment) ApplyPixels(dst, src []uint8, c, h, w int, rng *rand.Rand) {
	dx, dy, flip := a.draw(rng)
	shiftFlip(dst, src, c, h, w, dx, dy, flip)
}

// shiftFlip sets dst(y, x) = src(y+dy, x'+dx) with x' = w-1-x when flip,
// x otherwise, and zero where that falls outside src: a crop of the padded
// image at offset (pad+dx, pad+dy), then a mirror.
func shiftFlip[T uint8 | float32](dst, src []T, c, h, w, dx, dy int, flip bool) {
	for ch := range c {
		base := ch * h * w
		for y := range h {
			out := dst[base+y*w : base+(y+1)*w]
			sy := y + dy
			if sy < 0 || sy >= h {
				clear(out)
				continue
			}
			in := src[base+sy*w : base+(sy+1)*w]
			for x := range w {
				xs := x
				if flip {
					xs = w - 1 - x
				}
				xs += dx
				if xs < 0 || xs >= w {
					out[x] = 0
				} else {
					out[x] = in[xs]
				}
			}
		}
	}
}
