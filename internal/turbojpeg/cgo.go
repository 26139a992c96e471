//go:build cgo

package turbojpeg

/*
#cgo LDFLAGS: -lturbojpeg
#include <stdlib.h>
#include <turbojpeg.h>

static tjscalingfactor scaling_at(tjscalingfactor *f, int i) { return f[i]; }
*/
import "C"

import (
	"fmt"
	"slices"
	"sync"
	"unsafe"
)

// Available reports whether libjpeg-turbo is linked in.
const Available = true

var subsampNames = map[C.int]string{
	C.TJSAMP_444: "4:4:4", C.TJSAMP_422: "4:2:2", C.TJSAMP_420: "4:2:0",
	C.TJSAMP_GRAY: "grey", C.TJSAMP_440: "4:4:0", C.TJSAMP_411: "4:1:1",
}

var scales = sync.OnceValue(func() []Scale {
	var n C.int
	f := C.tjGetScalingFactors(&n)
	var out []Scale
	for i := range int(n) {
		s := C.scaling_at(f, C.int(i))
		out = append(out, Scale{int(s.num), int(s.denom)})
	}
	slices.SortFunc(out, func(a, b Scale) int { return a.Num*b.Denom - b.Num*a.Denom })
	return out
})

// Scales lists the decoder's DCT scaling factors, smallest first.
func Scales() []Scale { return scales() }

// Decoder decodes JPEGs; it holds a TurboJPEG handle and is not safe for
// concurrent use (keep one per worker). Close frees it.
type Decoder struct{ h C.tjhandle }

// NewDecoder opens a decompression handle.
func NewDecoder() (*Decoder, error) {
	h := C.tjInitDecompress()
	if h == nil {
		return nil, fmt.Errorf("turbojpeg: init decompressor: %s", C.GoString(C.tjGetErrorStr2(nil)))
	}
	return &Decoder{h: h}, nil
}

// Close frees the handle; the Decoder must not be used afterwards.
func (d *Decoder) Close() {
	if d.h != nil {
		C.tjDestroy(d.h)
		d.h = nil
	}
}

func (d *Decoder) err(what string) error {
	return fmt.Errorf("%s: %s", what, C.GoString(C.tjGetErrorStr2(d.h)))
}

// Header reads the image size and subsampling without decoding.
func (d *Decoder) Header(jpeg []byte) (Header, error) {
	if len(jpeg) == 0 {
		return Header{}, fmt.Errorf("read JPEG header: empty file")
	}
	var w, h, samp, cs C.int
	if C.tjDecompressHeader3(d.h, (*C.uchar)(unsafe.Pointer(&jpeg[0])), C.ulong(len(jpeg)), &w, &h, &samp, &cs) != 0 {
		return Header{}, d.err("read JPEG header")
	}
	name, ok := subsampNames[samp]
	if !ok {
		name = fmt.Sprintf("subsampling %d", int(samp))
	}
	return Header{Width: int(w), Height: int(h), Subsampling: name}, nil
}

// DecodeRGB decodes jpeg at scale s into dst as interleaved RGB rows
// (3 bytes a pixel, no padding), growing dst when it is too small, and
// returns the pixels and their size. Warnings (a truncated file, corrupt
// data the decoder papered over) are errors: a training set should not
// silently contain grey half-images.
func (d *Decoder) DecodeRGB(jpeg []byte, hd Header, s Scale, dst []byte) (pix []byte, w, h int, err error) {
	w, h = s.Of(hd.Width), s.Of(hd.Height)
	need := 3 * w * h
	if cap(dst) < need {
		dst = make([]byte, need)
	}
	dst = dst[:need]
	rc := C.tjDecompress2(d.h, (*C.uchar)(unsafe.Pointer(&jpeg[0])), C.ulong(len(jpeg)),
		(*C.uchar)(unsafe.Pointer(&dst[0])), C.int(w), C.int(3*w), C.int(h), C.TJPF_RGB, C.TJFLAG_STOPONWARNING)
	if rc != 0 {
		return dst, 0, 0, d.err(fmt.Sprintf("decode JPEG at scale %v", s))
	}
	return dst, w, h, nil
}

// Encoder compresses RGB pixels; like Decoder, one per goroutine.
type Encoder struct{ h C.tjhandle }

// NewEncoder opens a compression handle.
func NewEncoder() (*Encoder, error) {
	h := C.tjInitCompress()
	if h == nil {
		return nil, fmt.Errorf("turbojpeg: init compressor: %s", C.GoString(C.tjGetErrorStr2(nil)))
	}
	return &Encoder{h: h}, nil
}

// Close frees the handle.
func (e *Encoder) Close() {
	if e.h != nil {
		C.tjDestroy(e.h)
		e.h = nil
	}
}

// EncodeRGB compresses w×h interleaved RGB pixels at quality (1-100) with
// 4:2:0 chroma subsampling, the usual choice for photographs.
func (e *Encoder) EncodeRGB(pix []byte, w, h, quality int) ([]byte, error) {
	if quality < 1 || quality > 100 {
		return nil, fmt.Errorf("JPEG quality %d: allowed values are 1-100", quality)
	}
	if w <= 0 || h <= 0 || len(pix) < 3*w*h {
		return nil, fmt.Errorf("encode JPEG: %d bytes do not hold %d×%d RGB pixels", len(pix), w, h)
	}
	var out *C.uchar
	var size C.ulong
	if C.tjCompress2(e.h, (*C.uchar)(unsafe.Pointer(&pix[0])), C.int(w), C.int(3*w), C.int(h), C.TJPF_RGB,
		&out, &size, C.TJSAMP_420, C.int(quality), 0) != 0 {
		if out != nil {
			C.tjFree(out)
		}
		return nil, fmt.Errorf("encode JPEG: %s", C.GoString(C.tjGetErrorStr2(e.h)))
	}
	defer C.tjFree(out)
	return C.GoBytes(unsafe.Pointer(out), C.int(size)), nil
}
