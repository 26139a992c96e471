// Package prepare writes a resized copy of an image-folder tree (every
// image's shorter side brought down to a fixed length, ImageNet's usual
// 256), so that repeated studies decode small files instead of full-size
// photographs. It runs in parallel and is resumable: each output is
// written to a temporary name and renamed when complete, so a file that
// exists is finished and a second run skips it.
package prepare

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/internal/atomicfile"
	"github.com/robarch/robarch/internal/turbojpeg"
)

// Config is one prepare run.
type Config struct {
	Src, Out  string
	ShortSide int // 256 when 0
	Quality   int // JPEG quality of the resized files, 90 when 0
	Workers   int // GOMAXPROCS when 0
	Decoder   data.Decoder
	// Progress, when set, is called after each file (from several
	// goroutines, with the totals so far).
	Progress func(Stats)
}

// Stats counts a run's files.
type Stats struct {
	Total int `json:"total"` // images found
	// Resized were shrunk and re-encoded, Copied already small enough,
	// Skipped already present in Out (an earlier run).
	Resized, Copied, Skipped int
}

// Done is the number of images handled so far.
func (s Stats) Done() int { return s.Resized + s.Copied + s.Skipped }

var imageExts = []string{".jpg", ".jpeg", ".png"}

// Validate names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Src == "":
		return fmt.Errorf("prepare: source folder: required")
	case c.Out == "":
		return fmt.Errorf("prepare --out: required")
	case c.ShortSide < 0:
		return fmt.Errorf("prepare --short-side %d: must be positive (0 = 256)", c.ShortSide)
	case c.Quality < 0 || c.Quality > 100:
		return fmt.Errorf("prepare --quality %d: allowed values are 1-100 (0 = 90)", c.Quality)
	case c.Workers < 0:
		return fmt.Errorf("prepare --workers %d: must not be negative (0 = one per core)", c.Workers)
	}
	src, err1 := filepath.Abs(c.Src)
	out, err2 := filepath.Abs(c.Out)
	if err1 == nil && err2 == nil && (src == out || strings.HasPrefix(out, src+string(filepath.Separator))) {
		return fmt.Errorf("prepare --out %s: must lie outside the source folder %s", c.Out, c.Src)
	}
	return nil
}

// Run resizes every image under Src into the same relative path under Out.
func Run(ctx context.Context, cfg Config) (Stats, error) {
	if err := cfg.Validate(); err != nil {
		return Stats{}, err
	}
	if cfg.ShortSide == 0 {
		cfg.ShortSide = 256
	}
	if cfg.Quality == 0 {
		cfg.Quality = 90
	}
	if cfg.Workers == 0 {
		cfg.Workers = runtime.GOMAXPROCS(0)
	}
	files, err := list(cfg.Src)
	if err != nil {
		return Stats{}, err
	}
	var (
		mu    sync.Mutex
		st    = Stats{Total: len(files)}
		first error
		wg    sync.WaitGroup
		next  atomic.Int64
	)
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var enc *turbojpeg.Encoder
			defer func() {
				if enc != nil {
					enc.Close()
				}
			}()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(files) || ctx.Err() != nil {
					return
				}
				kind, err := one(cfg, files[i], &enc)
				mu.Lock()
				switch {
				case err != nil:
					if first == nil {
						first = err
					}
				case kind == resized:
					st.Resized++
				case kind == copied:
					st.Copied++
				default:
					st.Skipped++
				}
				snapshot := st
				mu.Unlock()
				if err != nil {
					return
				}
				if cfg.Progress != nil {
					cfg.Progress(snapshot)
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return st, first
}

// list returns the images under root (relative paths, sorted), skipping
// hidden files and folders.
func list(root string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if path != root && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.IsDir() && slices.Contains(imageExts, strings.ToLower(filepath.Ext(path))) {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			out = append(out, rel)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("prepare: list %s: %w", root, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("prepare: no images (endings %v) under %s", imageExts, root)
	}
	return out, nil
}

type outcome int

const (
	skipped outcome = iota
	copied
	resized
)

// one handles one file: skip it if its output exists, else resize (or
// copy) it to a temporary file and rename that into place.
func one(cfg Config, rel string, enc **turbojpeg.Encoder) (outcome, error) {
	src, dst := filepath.Join(cfg.Src, rel), filepath.Join(cfg.Out, rel)
	if _, err := os.Stat(dst); err == nil {
		return skipped, nil
	}
	rgb, w, h, err := data.ShortSide(src, cfg.ShortSide, cfg.Decoder)
	if err != nil {
		return 0, fmt.Errorf("prepare %s: %w", src, err)
	}
	kind := resized
	var raw []byte
	if rgb == nil {
		kind = copied
		raw, err = os.ReadFile(src)
	} else if ext := strings.ToLower(filepath.Ext(rel)); ext == ".png" {
		raw, err = encodePNG(rgb, w, h)
	} else {
		raw, err = encodeJPEG(rgb, w, h, cfg.Quality, enc)
	}
	if err != nil {
		return 0, fmt.Errorf("prepare %s: %w", src, err)
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return 0, fmt.Errorf("prepare: %w", err)
	}
	if err := atomicfile.WriteFileUnsynced(dst, raw, 0o644); err != nil {
		return 0, fmt.Errorf("prepare: %w", err)
	}
	return kind, nil
}

func encodeJPEG(rgb []byte, w, h, quality int, enc **turbojpeg.Encoder) ([]byte, error) {
	if turbojpeg.Available {
		if *enc == nil {
			e, err := turbojpeg.NewEncoder()
			if err != nil {
				return nil, err
			}
			*enc = e
		}
		return (*enc).EncodeRGB(rgb, w, h, quality)
	}
	var buf bytes.Buffer
	err := jpeg.Encode(&buf, rgbaOf(rgb, w, h), &jpeg.Options{Quality: quality})
	return buf.Bytes(), err
}

func encodePNG(rgb []byte, w, h int) ([]byte, error) {
	var buf bytes.Buffer
	err := png.Encode(&buf, rgbaOf(rgb, w, h))
	return buf.Bytes(), err
}

func rgbaOf(rgb []byte, w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for p := range w * h {
		copy(img.Pix[4*p:4*p+3], rgb[3*p:3*p+3])
		img.Pix[4*p+3] = 255
	}
	return img
}
