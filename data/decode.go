package data

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // register the JPEG decoder for image.Decode (fallback)
	_ "image/png"  // register the PNG decoder for image.Decode
	"io"
	"os"
	"runtime"
	"slices"

	"github.com/robarch/robarch/data/resample"
	"github.com/robarch/robarch/internal/turbojpeg"
)

// Decoder names how an ImageFolder decodes JPEGs.
type Decoder string

// The decoders. PNG files always go through Go's image/png.
const (
	// DecoderAuto is libjpeg-turbo when the binary has it, Go otherwise.
	DecoderAuto Decoder = ""
	// DecoderTurbo is libjpeg-turbo with DCT-domain scaling; an error
	// where the binary was built without cgo.
	DecoderTurbo Decoder = "turbo"
	// DecoderGo is Go's image/jpeg at full resolution.
	DecoderGo Decoder = "go"
)

// ParseDecoder reads a decoder name as a flag gives it ("auto" = "").
func ParseDecoder(s string) (Decoder, error) {
	switch s {
	case "", "auto":
		return DecoderAuto, nil
	case string(DecoderTurbo), string(DecoderGo):
		return Decoder(s), nil
	}
	return "", fmt.Errorf("decoder %q: allowed values are auto, turbo, go", s)
}

// dctScales are the DCT scalings used: 1/2, 1/4 and 1/8 have SIMD inverse
// DCTs in libjpeg-turbo, the other M/8 do not and measured no faster than
// a full decode (docs/input-pipeline.md).
var dctScales = func() []turbojpeg.Scale {
	var out []turbojpeg.Scale
	for _, s := range turbojpeg.Scales() {
		if s.Num == 1 && (s.Denom == 2 || s.Denom == 4 || s.Denom == 8) {
			out = append(out, s)
		}
	}
	return out
}()

// workspace is one decode's reusable memory: the file's bytes, the
// decoded pixels, the resampler's tables and a libjpeg-turbo handle.
// Workspaces are pooled so a loader worker allocates nothing per image
// once warm.
type workspace struct {
	file []byte
	pix  []byte
	rs   resample.Resampler
	dec  *turbojpeg.Decoder
}

// workspaces is a bounded free list rather than a sync.Pool: a Pool drops
// items at garbage collection without a way to free their C handles.
var workspaces = make(chan *workspace, 2*runtime.GOMAXPROCS(0)+2)

func getWorkspace() *workspace {
	select {
	case w := <-workspaces:
		return w
	default:
		return &workspace{}
	}
}

func putWorkspace(w *workspace) {
	select {
	case workspaces <- w:
	default:
		if w.dec != nil {
			w.dec.Close()
		}
	}
}

// read loads the whole file into w.file, reusing its memory.
func (w *workspace) read(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	n := int(st.Size())
	if cap(w.file) < n+1 {
		w.file = make([]byte, n+1)
	}
	w.file = w.file[:n+1]
	got, err := io.ReadFull(f, w.file)
	if err != io.ErrUnexpectedEOF && err != nil {
		return fmt.Errorf("read %s: %w", path, err)
	}
	w.file = w.file[:got]
	return nil
}

// decoded is an RGB image and the crop to resample from it, in its pixels.
type decoded struct {
	pix  []byte
	w, h int
	crop resample.Rect
}

// decode turns w.file into RGB pixels; crop chooses the region from the
// full image size, and out is the side it will be resampled to.
func (w *workspace) decode(path string, crop func(width, height int) image.Rectangle, out int, which Decoder) (decoded, error) {
	isJPEG := len(w.file) >= 3 && w.file[0] == 0xFF && w.file[1] == 0xD8 && w.file[2] == 0xFF
	if isJPEG && which != DecoderGo {
		if turbojpeg.Available {
			return w.decodeTurbo(path, crop, out)
		}
		if which == DecoderTurbo {
			return decoded{}, fmt.Errorf("decode image %s: %w", path, turbojpeg.ErrUnavailable)
		}
	}
	img, format, err := image.Decode(bytes.NewReader(w.file))
	if err != nil {
		return decoded{}, fmt.Errorf("decode image %s: %w", path, err)
	}
	b := img.Bounds()
	if b.Empty() {
		return decoded{}, fmt.Errorf("decode image %s (%s): empty %v", path, format, b)
	}
	w.pix = toRGB(w.pix, img)
	r := crop(b.Dx(), b.Dy())
	return decoded{pix: w.pix, w: b.Dx(), h: b.Dy(), crop: rectOf(r)}, nil
}

func (w *workspace) decodeTurbo(path string, crop func(width, height int) image.Rectangle, out int) (decoded, error) {
	if w.dec == nil {
		d, err := turbojpeg.NewDecoder()
		if err != nil {
			return decoded{}, fmt.Errorf("decode image %s: %w", path, err)
		}
		w.dec = d
	}
	hd, err := w.dec.Header(w.file)
	if err != nil {
		return decoded{}, fmt.Errorf("decode image %s: %w", path, err)
	}
	if hd.Width <= 0 || hd.Height <= 0 {
		return decoded{}, fmt.Errorf("decode image %s: empty %d×%d JPEG", path, hd.Width, hd.Height)
	}
	r := crop(hd.Width, hd.Height)
	s := turbojpeg.Shrink(dctScales, r.Dx(), r.Dy(), out, out)
	pix, sw, sh, err := w.dec.DecodeRGB(w.file, hd, s, w.pix)
	w.pix = pix
	if err != nil {
		return decoded{}, fmt.Errorf("decode image %s (%d×%d, %s): %w", path, hd.Width, hd.Height, hd.Subsampling, err)
	}
	// The scaled image's pixel j covers full-size pixels [j/s, (j+1)/s);
	// clamp for the rounded-up last row and column.
	c := rectOf(r).Scale(float64(sw)/float64(hd.Width), float64(sh)/float64(hd.Height))
	c.X1, c.Y1 = min(c.X1, float64(sw)), min(c.Y1, float64(sh))
	return decoded{pix: pix, w: sw, h: sh, crop: c}, nil
}

func rectOf(r image.Rectangle) resample.Rect {
	return resample.Rect{X0: float64(r.Min.X), Y0: float64(r.Min.Y), X1: float64(r.Max.X), Y1: float64(r.Max.Y)}
}

// toRGB converts any decoded image to interleaved RGB bytes, reusing dst.
// Alpha is dropped after premultiplying (transparent pixels come out
// black), as image/draw's RGBA conversion does.
func toRGB(dst []byte, img image.Image) []byte {
	b := img.Bounds()
	w, h := b.Dx(), b.Dy()
	dst = slices.Grow(dst[:0], 3*w*h)[:3*w*h]
	rgba, ok := img.(*image.RGBA)
	if !ok {
		rgba = image.NewRGBA(image.Rect(0, 0, w, h))
		draw.Draw(rgba, rgba.Rect, img, b.Min, draw.Src)
	}
	for y := range h {
		row := rgba.Pix[y*rgba.Stride : y*rgba.Stride+4*w]
		out := dst[3*w*y : 3*w*(y+1)]
		for x := range w {
			out[3*x], out[3*x+1], out[3*x+2] = row[4*x], row[4*x+1], row[4*x+2]
		}
	}
	return dst
}
