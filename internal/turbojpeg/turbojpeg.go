// Package turbojpeg decodes and encodes JPEG files through libjpeg-turbo's
// TurboJPEG API (Debian's libturbojpeg0-dev). Its point is DCT-domain
// scaling: a JPEG can be decoded straight to M/8 of its size, which skips
// most of the inverse DCT and colour conversion work when the image will
// be shrunk anyway. Built without cgo, every call reports ErrUnavailable
// and callers fall back to Go's image/jpeg.
package turbojpeg

import (
	"errors"
	"fmt"
)

// ErrUnavailable is returned by every function of a build without cgo.
var ErrUnavailable = errors.New("turbojpeg: built without cgo; libjpeg-turbo is unavailable")

// Header is what a JPEG's header says about the image.
type Header struct {
	Width, Height int
	// Subsampling is the chroma subsampling, e.g. "4:2:0" (for messages).
	Subsampling string
}

// Scale is a DCT-domain scaling factor Num/Denom.
type Scale struct{ Num, Denom int }

// Full is the unscaled decode.
var Full = Scale{1, 1}

// Of is the size a side of n pixels has once decoded at s (libjpeg rounds
// up, as TJSCALED does).
func (s Scale) Of(n int) int { return (n*s.Num + s.Denom - 1) / s.Denom }

// Value is the factor as a number.
func (s Scale) Value() float64 { return float64(s.Num) / float64(s.Denom) }

func (s Scale) String() string { return fmt.Sprintf("%d/%d", s.Num, s.Denom) }

// Shrink picks, among the factors libjpeg-turbo offers (Scales), the
// smallest one that still decodes a cropW×cropH region to at least
// outW×outH pixels, so that the final resampling only ever shrinks (and
// never enlarges what the decoder shrank). Crops smaller than the output
// decode at full size.
func Shrink(scales []Scale, cropW, cropH, outW, outH int) Scale {
	best := Full
	for _, s := range scales {
		if s.Value() > 1 || s.Value() >= best.Value() {
			continue
		}
		// Compare in integers: cropW·num/denom ≥ outW.
		if cropW*s.Num >= outW*s.Denom && cropH*s.Num >= outH*s.Denom {
			best = s
		}
	}
	return best
}
