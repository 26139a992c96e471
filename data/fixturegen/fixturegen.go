// Package fixturegen writes ImageNet-like class folders of synthetic JPEGs
// for benchmarks and tests. The images are meant to cost a decoder what
// photographs do: smooth lighting, a few soft-edged objects and fine
// multi-octave texture, so that they compress at quality 90 to roughly the
// size of a real 500×375 photograph (60-70 KB) rather than to the few KB
// of a flat test pattern.
package fixturegen

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/jpeg"
	"math"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"sync"

	"github.com/robarch/robarch/internal/atomicfile"
)

// Config says what to write. Zero fields take the defaults shown.
type Config struct {
	Classes  int // 4
	PerClass int // 200
	Width    int // 500
	Height   int // 375
	Quality  int // 90
	Seed     uint64
	// Split, when set, writes Dir/Split/class/... instead of Dir/class/...
	Split   string
	Workers int // GOMAXPROCS
}

func (c Config) withDefaults() Config {
	def := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Classes, 4)
	def(&c.PerClass, 200)
	def(&c.Width, 500)
	def(&c.Height, 375)
	def(&c.Quality, 90)
	def(&c.Workers, runtime.GOMAXPROCS(0))
	return c
}

// Validate names the first bad field.
func (c Config) Validate() error {
	c = c.withDefaults()
	switch {
	case c.Classes < 1:
		return fmt.Errorf("fixtures classes %d: must be at least 1", c.Classes)
	case c.PerClass < 1:
		return fmt.Errorf("fixtures per-class %d: must be at least 1", c.PerClass)
	case c.Width < 8 || c.Height < 8:
		return fmt.Errorf("fixtures size %d×%d: both sides must be at least 8", c.Width, c.Height)
	case c.Quality < 1 || c.Quality > 100:
		return fmt.Errorf("fixtures quality %d: allowed values are 1-100", c.Quality)
	case c.Workers < 0:
		return fmt.Errorf("fixtures workers %d: must not be negative (0 = one per core)", c.Workers)
	}
	return nil
}

// Write creates the folder tree under dir and returns the number of bytes
// written. Image i of class k is the same for a given seed whatever the
// worker count, and files that exist are rewritten.
func Write(ctx context.Context, dir string, cfg Config) (int64, error) {
	if err := cfg.Validate(); err != nil {
		return 0, err
	}
	cfg = cfg.withDefaults()
	root := filepath.Join(dir, cfg.Split)
	for k := range cfg.Classes {
		if err := os.MkdirAll(filepath.Join(root, className(k)), 0o755); err != nil {
			return 0, fmt.Errorf("fixtures: %w", err)
		}
	}
	type job struct{ class, i int }
	jobs := make(chan job)
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		total int64
		first error
	)
	for range cfg.Workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				raw, err := Encode(cfg, j.class, j.i)
				if err == nil {
					path := filepath.Join(root, className(j.class), fmt.Sprintf("img%05d.jpg", j.i))
					err = atomicfile.WriteFileUnsynced(path, raw, 0o644)
				}
				mu.Lock()
				if err != nil && first == nil {
					first = fmt.Errorf("fixtures class %d image %d: %w", j.class, j.i, err)
				}
				total += int64(len(raw))
				mu.Unlock()
			}
		}()
	}
feed:
	for k := range cfg.Classes {
		for i := range cfg.PerClass {
			select {
			case jobs <- job{k, i}:
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return total, first
}

func className(k int) string { return fmt.Sprintf("class%03d", k) }

// Encode returns the JPEG bytes of image i of class k.
func Encode(cfg Config, class, i int) ([]byte, error) {
	cfg = cfg.withDefaults()
	img := Picture(cfg.Width, cfg.Height, class, cfg.Seed^uint64(class)<<40^uint64(i))
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: cfg.Quality}); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// Picture draws one w×h scene: a lit background in the class's hues, a few
// soft ellipses and value-noise texture at several scales.
func Picture(w, h, class int, seed uint64) *image.RGBA {
	rng := rand.New(rand.NewPCG(seed, 0x5eed))
	hue := float64(class%12) / 12
	base := [3]float64{}
	for c := range 3 {
		base[c] = 0.35 + 0.3*math.Cos(2*math.Pi*(hue+float64(c)/3))
	}
	// Lighting: a linear gradient in a random direction.
	angle := rng.Float64() * 2 * math.Pi
	gx, gy := math.Cos(angle)/float64(w), math.Sin(angle)/float64(h)
	type blob struct {
		cx, cy, rx, ry float64
		col            [3]float64
	}
	blobs := make([]blob, 3+rng.IntN(5))
	for b := range blobs {
		blobs[b] = blob{cx: rng.Float64() * float64(w), cy: rng.Float64() * float64(h),
			rx: (0.05 + 0.25*rng.Float64()) * float64(w), ry: (0.05 + 0.25*rng.Float64()) * float64(h),
			col: [3]float64{rng.Float64(), rng.Float64(), rng.Float64()}}
	}
	octaves := []*noise{newNoise(rng, 48), newNoise(rng, 12), newNoise(rng, 3), newNoise(rng, 1.5)}
	amps := []float64{0.12, 0.08, 0.05, 0.04}
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			light := 0.75 + 0.5*((float64(x)-float64(w)/2)*gx+(float64(y)-float64(h)/2)*gy)
			px := base
			for _, b := range blobs {
				dx, dy := (float64(x)-b.cx)/b.rx, (float64(y)-b.cy)/b.ry
				// A soft edge about two pixels wide.
				a := 1 / (1 + math.Exp((math.Sqrt(dx*dx+dy*dy)-1)*b.rx/2))
				for c := range 3 {
					px[c] += a * (b.col[c] - px[c])
				}
			}
			tex := 0.0
			for o, n := range octaves {
				tex += amps[o] * n.at(float64(x), float64(y))
			}
			o := y*img.Stride + 4*x
			for c := range 3 {
				img.Pix[o+c] = clampByte(255 * (px[c]*light + tex*(0.6+0.4*float64(c)/2)))
			}
			img.Pix[o+3] = 255
		}
	}
	return img
}

// noise is value noise on a lattice of the given cell size, bilinearly
// interpolated, values in [-1,1].
type noise struct {
	cell float64
	grid []float64
	gw   int
}

func newNoise(rng *rand.Rand, cell float64) *noise {
	const span = 512 // lattice points per side before wrapping
	n := &noise{cell: cell, gw: span, grid: make([]float64, span*span)}
	for i := range n.grid {
		n.grid[i] = 2*rng.Float64() - 1
	}
	return n
}

func (n *noise) at(x, y float64) float64 {
	fx, fy := x/n.cell, y/n.cell
	ix, iy := int(fx), int(fy)
	tx, ty := fx-float64(ix), fy-float64(iy)
	g := func(i, j int) float64 { return n.grid[(j%n.gw)*n.gw+i%n.gw] }
	top := g(ix, iy)*(1-tx) + g(ix+1, iy)*tx
	bot := g(ix, iy+1)*(1-tx) + g(ix+1, iy+1)*tx
	return top*(1-ty) + bot*ty
}

func clampByte(v float64) uint8 {
	switch {
	case v <= 0:
		return 0
	case v >= 255:
		return 255
	}
	return uint8(v + 0.5)
}
