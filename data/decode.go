package data

import (
	"bytes"
	"fmt"
	"image"
	"image/draw"
	_ "image/jpeg" // register the JPEG decoder for image.Decode (fallback)
	_ "image/png"  // register the PNG decoder for image.Decode
	"io"
	"math"
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
	pix    []byte
	w, h   int
	crop   resample.Rect
	scaled bool // decoded below full size
}

// outSize gives the output size for an image's full size (and the crop
// chosen in it); the DCT scale must decode the crop to at least that.
type outSize func(crop image.Rectangle) (w, h int)

// square is the outSize of a Size×Size example.
func square(side int) outSize { return func(image.Rectangle) (int, int) { return side, side } }

// decode turns w.file into RGB pixels; crop chooses the region from the
// full image size, and out the size it will be resampled to.
func (w *workspace) decode(path string, crop func(width, height int) image.Rectangle, out outSize, which Decoder) (decoded, error) {
	isJPEG := len(w.file) >= 3 && w.file[0] == 0xFF && w.file[1] == 0xD8 && w.file[2] == 0xFF
	if isJPEG && which != DecoderGo {
		if turbojpeg.Available {
			return w.decodeTurbo(path, crop, out)
		}
		if which == DecoderTurbo {
			return decoded{}, fmt.Errorf("decode image %s: %w", path, turbojpeg.ErrUnavailable)
		}
	}
	// A corrupt header claiming 60000×60000 pixels would make the decoder
	// allocate gigabytes before it finds the data short.
	if cfg, format, err := image.DecodeConfig(bytes.NewReader(w.file)); err == nil {
		if err := checkPixels(path, format, cfg.Width, cfg.Height); err != nil {
			return decoded{}, err
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

func (w *workspace) decodeTurbo(path string, crop func(width, height int) image.Rectangle, out outSize) (decoded, error) {
	if w.dec == nil {
		d, err := turbojpeg.NewDecoder()
		if err != nil {
			return decoded{}, fmt.Errorf("decode image %s: %w", path, err)
		}
		w.dec = d
	}
	hd, err := w.dec.Header(w.file)
	if err != nil {
		w.dropDecoder()
		return decoded{}, fmt.Errorf("decode image %s: %w", path, err)
	}
	if hd.Width <= 0 || hd.Height <= 0 {
		return decoded{}, fmt.Errorf("decode image %s: empty %d×%d JPEG", path, hd.Width, hd.Height)
	}
	if err := checkPixels(path, "jpeg", hd.Width, hd.Height); err != nil {
		return decoded{}, err
	}
	r := crop(hd.Width, hd.Height)
	ow, oh := out(r)
	s := turbojpeg.Shrink(dctScales, r.Dx(), r.Dy(), ow, oh)
	pix, sw, sh, err := w.dec.DecodeRGB(w.file, hd, s, w.pix)
	w.pix = pix
	if err != nil {
		w.dropDecoder()
		return decoded{}, fmt.Errorf("decode image %s (%d×%d, %s): %w", path, hd.Width, hd.Height, hd.Subsampling, err)
	}
	// The scaled image's pixel j covers full-size pixels [j/s, (j+1)/s);
	// clamp for the rounded-up last row and column.
	c := rectOf(r).Scale(float64(sw)/float64(hd.Width), float64(sh)/float64(hd.Height))
	c.X1, c.Y1 = min(c.X1, float64(sw)), min(c.Y1, float64(sh))
	return decoded{pix: pix, w: sw, h: sh, crop: c, scaled: s != turbojpeg.Full}, nil
}

// dropDecoder discards the handle after a failed call: libjpeg-turbo 2.1
// can keep reading the failed file's state on the next call with that
// handle ("Unsupported marker" for a good file after a corrupt one).
func (w *workspace) dropDecoder() {
	w.dec.Close()
	w.dec = nil
}

// maxImagePixels bounds an image's size (ImageNet's largest has about 12
// million pixels).
const maxImagePixels = 1 << 26

// checkPixels refuses a header whose size no real image has.
func checkPixels(path, format string, w, h int) error {
	if int64(w)*int64(h) > maxImagePixels {
		return fmt.Errorf("decode image %s (%s): %d×%d pixels, more than the %d allowed (corrupt header?)", path, format, w, h, maxImagePixels)
	}
	return nil
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

// ShortSide returns the image at path resized so that its shorter side is
// short pixels (never enlarged: smaller images come back as they are), as
// interleaved RGB bytes. JPEGs are decoded at the DCT scale closest above
// the target. rgb is nil when the image is already that small: the file
// can be kept as it is. It is safe for concurrent use.
func ShortSide(path string, short int, which Decoder) (rgb []byte, w, h int, err error) {
	if short < 1 {
		return nil, 0, 0, fmt.Errorf("short side %d: must be positive", short)
	}
	ws := getWorkspace()
	defer putWorkspace(ws)
	if err := ws.read(path); err != nil {
		return nil, 0, 0, fmt.Errorf("decode image: %w", err)
	}
	whole := func(width, height int) image.Rectangle { return image.Rect(0, 0, width, height) }
	// The target comes from the full size, which only the JPEG path sees
	// before decoding; the Go path decodes at full size anyway.
	target := func(r image.Rectangle) (int, int) {
		w, h = shortSideSize(r.Dx(), r.Dy(), short)
		return w, h
	}
	img, err := ws.decode(path, whole, target, which)
	if err != nil {
		return nil, 0, 0, err
	}
	if w == 0 {
		target(image.Rect(0, 0, img.w, img.h))
	}
	if !img.scaled && w == img.w && h == img.h {
		return nil, w, h, nil
	}
	planes := make([]byte, 3*w*h)
	if err := ws.rs.RGBToCHW(planes, img.pix, img.w, img.h, img.crop, w, h, false); err != nil {
		return nil, 0, 0, fmt.Errorf("resize %s: %w", path, err)
	}
	rgb = make([]byte, 3*w*h)
	for p := range w * h {
		rgb[3*p], rgb[3*p+1], rgb[3*p+2] = planes[p], planes[w*h+p], planes[2*w*h+p]
	}
	return rgb, w, h, nil
}

// shortSideSize scales w×h so that the shorter side is short, rounding
// the longer one; images already that small keep their size.
func shortSideSize(w, h, short int) (int, int) {
	if min(w, h) <= short {
		return w, h
	}
	if w < h {
		return short, max(1, int(math.Round(float64(h)*float64(short)/float64(w))))
	}
	return max(1, int(math.Round(float64(w)*float64(short)/float64(h)))), short
}
