package data

import (
	"fmt"
	"image"
	_ "image/jpeg" // register the JPEG decoder for image.Decode
	_ "image/png"  // register the PNG decoder for image.Decode
	"io"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/image/draw"
)

// Random-resized-crop ranges, the usual ImageNet training choice: the crop
// covers 8%–100% of the image's area with an aspect ratio in [3/4, 4/3].
const (
	rrcMinScale = 0.08
	rrcMaxScale = 1.0
	rrcMinRatio = 3.0 / 4.0
	rrcMaxRatio = 4.0 / 3.0
	rrcAttempts = 10
	// evalCropFraction: evaluation resizes the shorter side to size/0.875
	// (256 for 224) and keeps the central size×size square.
	evalCropFraction = 0.875
)

// ImageFolder is an ImageNet-style dataset: one subfolder per class (sorted
// by name, the label is the position), JPEG or PNG files inside. Images are
// decoded lazily in Fill, so a Loader's worker goroutines decode in
// parallel; every example comes out as 3×Size×Size RGB.
type ImageFolder struct {
	Root       string
	Size       int
	Train      bool     // random-resized-crop when true, centre crop otherwise
	ClassNames []string // sorted subfolder names
	Files      []string // image paths, grouped by class, sorted within each
	Labels     []int64  // class of each file
}

// imageExts are the file endings ImageFolder picks up (case-insensitive).
var imageExts = []string{".jpg", ".jpeg", ".png"}

// NewImageFolder lists dir's class subfolders and their images. size is the
// side of the square output; train selects the training transform.
func NewImageFolder(dir string, size int, train bool) (*ImageFolder, error) {
	if size <= 0 {
		return nil, fmt.Errorf("image folder %s: size %d must be positive", dir, size)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("image folder: %w", err)
	}
	f := &ImageFolder{Root: dir, Size: size, Train: train}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			f.ClassNames = append(f.ClassNames, e.Name())
		}
	}
	slices.Sort(f.ClassNames)
	if len(f.ClassNames) == 0 {
		return nil, fmt.Errorf("image folder %s: no class subfolders", dir)
	}
	for label, class := range f.ClassNames {
		files, err := os.ReadDir(filepath.Join(dir, class))
		if err != nil {
			return nil, fmt.Errorf("image folder class %q: %w", class, err)
		}
		found := 0
		for _, e := range files {
			ext := strings.ToLower(filepath.Ext(e.Name()))
			if !e.IsDir() && slices.Contains(imageExts, ext) { // symlinks count too
				f.Files = append(f.Files, filepath.Join(dir, class, e.Name())) // ReadDir sorts by name
				f.Labels = append(f.Labels, int64(label))
				found++
			}
		}
		if found == 0 {
			return nil, fmt.Errorf("image folder %s: class %q has no images (allowed endings %v)", dir, class, imageExts)
		}
	}
	return f, nil
}

// Len implements Source.
func (f *ImageFolder) Len() int { return len(f.Files) }

// Shape implements Source.
func (f *ImageFolder) Shape() (c, h, w int) { return 3, f.Size, f.Size }

// NumClasses implements Source.
func (f *ImageFolder) NumClasses() int { return len(f.ClassNames) }

// Label implements Source.
func (f *ImageFolder) Label(i int) int64 { return f.Labels[i] }

// Fill implements Source: decode file i, crop (random-resized for training
// when rng is set, central otherwise), resize to Size×Size with an
// antialiasing bilinear kernel and write RGB planes in [0,1].
func (f *ImageFolder) Fill(i int, dst []float32, rng *rand.Rand) error {
	if i < 0 || i >= len(f.Files) {
		return fmt.Errorf("image folder index %d out of range [0,%d)", i, len(f.Files))
	}
	if want := 3 * f.Size * f.Size; len(dst) != want {
		return fmt.Errorf("image folder fill: dst has %d values, want %d", len(dst), want)
	}
	img, err := decodeImage(f.Files[i])
	if err != nil {
		return err
	}
	b := img.Bounds()
	var crop image.Rectangle
	if f.Train && rng != nil {
		crop = randomResizedCrop(b.Dx(), b.Dy(), rng)
	} else {
		crop = centerCrop(b.Dx(), b.Dy(), f.Size)
	}
	crop = crop.Add(b.Min)
	out := image.NewRGBA(image.Rect(0, 0, f.Size, f.Size))
	draw.BiLinear.Scale(out, out.Rect, img, crop, draw.Src, nil)
	rgbaToCHW(out, dst)
	return nil
}

// maxImagePixels bounds an image's size (ImageNet's largest has about 12
// million pixels).
const maxImagePixels = 1 << 26

func decodeImage(path string) (image.Image, error) {
	file, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("decode image: %w", err)
	}
	defer file.Close()
	// A corrupt header claiming 60000×60000 pixels would make the decoder
	// allocate gigabytes before it finds the data short.
	if cfg, format, err := image.DecodeConfig(file); err == nil && int64(cfg.Width)*int64(cfg.Height) > maxImagePixels {
		return nil, fmt.Errorf("decode image %s (%s): %d×%d pixels, more than the %d allowed (corrupt header?)",
			path, format, cfg.Width, cfg.Height, maxImagePixels)
	}
	if _, err := file.Seek(0, io.SeekStart); err != nil {
		return nil, fmt.Errorf("decode image %s: %w", path, err)
	}
	img, format, err := image.Decode(file)
	if err != nil {
		return nil, fmt.Errorf("decode image %s: %w", path, err)
	}
	if b := img.Bounds(); b.Empty() {
		return nil, fmt.Errorf("decode image %s (%s): empty %v", path, format, b)
	}
	return img, nil
}

// rgbaToCHW writes an RGBA image's colour planes as [0,1] floats; alpha is
// dropped (transparent pixels come out black because RGBA is premultiplied).
func rgbaToCHW(img *image.RGBA, dst []float32) {
	w, h := img.Rect.Dx(), img.Rect.Dy()
	plane := w * h
	for y := range h {
		row := img.Pix[y*img.Stride : y*img.Stride+4*w]
		for x := range w {
			p := y*w + x
			dst[p] = byteToUnit[row[4*x]]
			dst[plane+p] = byteToUnit[row[4*x+1]]
			dst[2*plane+p] = byteToUnit[row[4*x+2]]
		}
	}
}

// randomResizedCrop picks a crop of random area and aspect ratio within a
// w×h image; after rrcAttempts misses it falls back to the largest central
// crop whose ratio lies in the allowed range.
func randomResizedCrop(w, h int, rng *rand.Rand) image.Rectangle {
	area := float64(w * h)
	logLo, logHi := math.Log(rrcMinRatio), math.Log(rrcMaxRatio)
	for range rrcAttempts {
		target := area * (rrcMinScale + rng.Float64()*(rrcMaxScale-rrcMinScale))
		ratio := math.Exp(logLo + rng.Float64()*(logHi-logLo))
		cw := int(math.Round(math.Sqrt(target * ratio)))
		ch := int(math.Round(math.Sqrt(target / ratio)))
		if cw > 0 && ch > 0 && cw <= w && ch <= h {
			x0 := rng.IntN(w - cw + 1)
			y0 := rng.IntN(h - ch + 1)
			return image.Rect(x0, y0, x0+cw, y0+ch)
		}
	}
	cw, ch := w, h
	switch ratio := float64(w) / float64(h); {
	case ratio < rrcMinRatio:
		ch = int(math.Round(float64(w) / rrcMinRatio))
	case ratio > rrcMaxRatio:
		cw = int(math.Round(float64(h) * rrcMaxRatio))
	}
	cw, ch = max(1, min(cw, w)), max(1, min(ch, h))
	x0, y0 := (w-cw)/2, (h-ch)/2
	return image.Rect(x0, y0, x0+cw, y0+ch)
}

// centerCrop is the source rectangle that "resize the shorter side to
// size/0.875, then take the central size×size" reads from, so a single
// scaling pass does both steps.
func centerCrop(w, h, size int) image.Rectangle {
	shorter := min(w, h)
	resized := math.Round(float64(size) / evalCropFraction)
	side := int(math.Round(float64(shorter) * float64(size) / resized))
	side = max(1, min(side, shorter))
	x0, y0 := (w-side)/2, (h-side)/2
	return image.Rect(x0, y0, x0+side, y0+side)
}
