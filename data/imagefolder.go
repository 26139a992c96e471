package data

import (
	"fmt"
	"image"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
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
	// Decoder picks the JPEG decoder: DecoderAuto (libjpeg-turbo with DCT
	// scaling when built with cgo), DecoderTurbo or DecoderGo.
	Decoder Decoder
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

// Fill implements Source: FillPixels, then bytes to [0,1] floats.
func (f *ImageFolder) Fill(i int, dst []float32, rng *rand.Rand) error {
	if want := 3 * f.Size * f.Size; len(dst) != want {
		return fmt.Errorf("image folder fill: dst has %d values, want %d", len(dst), want)
	}
	px := make([]uint8, len(dst))
	if err := f.FillPixels(i, px, rng); err != nil {
		return err
	}
	for j, b := range px {
		dst[j] = byteToUnit[b]
	}
	return nil
}

// FillPixels implements PixelSource: decode file i, pick the crop (random
// resized for training when rng is set, central otherwise) from the image
// size alone, decode JPEGs straight to the smallest DCT scale that still
// covers the crop at Size×Size, and resample only the crop, once, into RGB
// planes of bytes. The random draws depend on the image size only, never
// on the decoder, so the crops are the same with or without libjpeg-turbo.
func (f *ImageFolder) FillPixels(i int, dst []uint8, rng *rand.Rand) error {
	if i < 0 || i >= len(f.Files) {
		return fmt.Errorf("image folder index %d out of range [0,%d)", i, len(f.Files))
	}
	if want := 3 * f.Size * f.Size; len(dst) != want {
		return fmt.Errorf("image folder fill: dst has %d bytes, want %d", len(dst), want)
	}
	path := f.Files[i]
	w := getWorkspace()
	defer putWorkspace(w)
	if err := w.read(path); err != nil {
		return fmt.Errorf("decode image: %w", err)
	}
	crop := func(width, height int) image.Rectangle {
		if f.Train && rng != nil {
			return randomResizedCrop(width, height, rng)
		}
		return centerCrop(width, height, f.Size)
	}
	img, err := w.decode(path, crop, square(f.Size), f.Decoder)
	if err != nil {
		return err
	}
	return w.rs.RGBToCHW(dst, img.pix, img.w, img.h, img.crop, f.Size, f.Size, false)
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
