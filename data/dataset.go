// Package data reads image-classification datasets (MNIST-style IDX files,
// CIFAR binary batches, ImageNet-style class folders, a synthetic set for
// tests) and feeds them to training through a seeded, prefetching Loader.
//
// Everything here is pure Go: batches come out as []float32 in [0,1] plus
// []int64 labels. Converting a batch to libtorch tensors lives in the
// sub-package data/torchbatch, so planning code and these tests need no
// libtorch. Normalisation (mean/std) belongs to the model, not here.
package data

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
)

// Split names one half of a dataset.
type Split string

// The two splits every dataset has.
const (
	Train Split = "train"
	Test  Split = "test"
)

func (s Split) validate() error {
	if s != Train && s != Test {
		return fmt.Errorf("split %q: allowed values are %q, %q", string(s), Train, Test)
	}
	return nil
}

// Source is anything the Loader can draw examples from: an in-memory
// Dataset, a lazily decoded ImageFolder, or a Subset of either.
type Source interface {
	// Len is the number of examples.
	Len() int
	// Shape is the channels, height and width of every example.
	Shape() (c, h, w int)
	// NumClasses is the number of labels; labels are 0..NumClasses()-1.
	NumClasses() int
	// Label returns the class of example i.
	Label(i int) int64
	// Fill writes example i into dst (length c*h*w, layout C×H×W) as
	// float32 values in [0,1]. Sources with random transforms (training
	// crops of an ImageFolder) draw from rng; a nil rng asks for the
	// deterministic evaluation transform. Fill must be safe to call from
	// several goroutines at once.
	Fill(i int, dst []float32, rng *rand.Rand) error
}

// PixelSource is a Source that can also write an example as C×H×W bytes
// (0..255), a quarter of the memory of Fill's floats. The Loader then
// hands out byte batches (Batch.Pixels) and the conversion to float runs
// in libtorch (data/torchbatch). The same rng draws give the same image
// as Fill, rounded to bytes.
type PixelSource interface {
	Source
	FillPixels(i int, dst []uint8, rng *rand.Rand) error
}

// AsPixelSource returns src as a PixelSource when it is one, looking
// through Subsets.
func AsPixelSource(src Source) (PixelSource, bool) {
	switch s := src.(type) {
	case *Subset:
		if _, ok := AsPixelSource(s.Src); ok {
			return s, true
		}
		return nil, false
	case PixelSource:
		return s, true
	}
	return nil, false
}

// Dataset is a fully decoded dataset held in memory as bytes, which is four
// times smaller than float32 and exact for 8-bit image formats.
type Dataset struct {
	// Images holds N×C×H×W pixel values, row-major, 0..255.
	Images []uint8
	// Labels holds N class indices in [0, Classes).
	Labels []int64
	// Coarse holds CIFAR-100's 20 superclass labels; nil for other sets.
	Coarse     []int64
	N, C, H, W int
	Classes    int
}

// Validate checks that sizes agree and every label is in range.
func (d *Dataset) Validate() error {
	if d.N < 0 || d.C <= 0 || d.H <= 0 || d.W <= 0 {
		return fmt.Errorf("dataset shape N=%d C=%d H=%d W=%d: all must be positive (N may be 0)", d.N, d.C, d.H, d.W)
	}
	if d.Classes <= 0 {
		return fmt.Errorf("dataset classes=%d: must be positive", d.Classes)
	}
	if want := d.N * d.C * d.H * d.W; len(d.Images) != want {
		return fmt.Errorf("dataset images: have %d bytes, N×C×H×W = %d×%d×%d×%d = %d", len(d.Images), d.N, d.C, d.H, d.W, want)
	}
	if len(d.Labels) != d.N {
		return fmt.Errorf("dataset labels: have %d, want N=%d", len(d.Labels), d.N)
	}
	if i, ok := firstOutOfRange(d.Labels, d.Classes); !ok {
		return fmt.Errorf("dataset label %d at index %d out of range [0,%d)", d.Labels[i], i, d.Classes)
	}
	if d.Coarse != nil && len(d.Coarse) != d.N {
		return fmt.Errorf("dataset coarse labels: have %d, want N=%d", len(d.Coarse), d.N)
	}
	return nil
}

// firstOutOfRange returns the index of the first label outside [0,classes)
// and false, or (0, true) when all are in range.
func firstOutOfRange(labels []int64, classes int) (int, bool) {
	for i, l := range labels {
		if l < 0 || l >= int64(classes) {
			return i, false
		}
	}
	return 0, true
}

// Len implements Source.
func (d *Dataset) Len() int { return d.N }

// Shape implements Source.
func (d *Dataset) Shape() (c, h, w int) { return d.C, d.H, d.W }

// NumClasses implements Source.
func (d *Dataset) NumClasses() int { return d.Classes }

// Label implements Source.
func (d *Dataset) Label(i int) int64 { return d.Labels[i] }

// Image returns the C×H×W bytes of example i (a view, not a copy).
func (d *Dataset) Image(i int) []uint8 {
	size := d.C * d.H * d.W
	return d.Images[i*size : (i+1)*size]
}

// byteToUnit maps a pixel byte to [0,1]; a table is faster than dividing.
var byteToUnit = func() (t [256]float32) {
	for i := range t {
		t[i] = float32(i) / 255
	}
	return t
}()

// Fill implements Source; rng is unused because the bytes are final.
func (d *Dataset) Fill(i int, dst []float32, _ *rand.Rand) error {
	if i < 0 || i >= d.N {
		return fmt.Errorf("dataset index %d out of range [0,%d)", i, d.N)
	}
	img := d.Image(i)
	if len(dst) != len(img) {
		return fmt.Errorf("dataset fill: dst has %d values, want %d", len(dst), len(img))
	}
	for j, b := range img {
		dst[j] = byteToUnit[b]
	}
	return nil
}

// Materialize decodes every example of src (with its deterministic
// evaluation transform) on `workers` goroutines into an in-memory Dataset,
// so a lazily decoded folder that is read many times is decoded once.
// workers <= 0 means GOMAXPROCS.
func Materialize(src Source, workers int) (*Dataset, error) {
	if d, ok := src.(*Dataset); ok {
		return d, nil
	}
	c, h, w := src.Shape()
	n, size := src.Len(), c*h*w
	out := &Dataset{Images: make([]uint8, n*size), Labels: make([]int64, n), N: n, C: c, H: h, W: w, Classes: src.NumClasses()}
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	var (
		wg       sync.WaitGroup
		errOnce  sync.Once
		firstErr error
	)
	next := make(chan int)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]float32, size)
			for i := range next {
				if err := src.Fill(i, buf, nil); err != nil {
					errOnce.Do(func() { firstErr = fmt.Errorf("materialize example %d: %w", i, err) })
					continue
				}
				img := out.Images[i*size : (i+1)*size]
				for j, v := range buf {
					img[j] = unitToByte(v)
				}
				out.Labels[i] = src.Label(i)
			}
		}()
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	if firstErr != nil {
		return nil, firstErr
	}
	return out, nil
}

// unitToByte rounds a [0,1] value back to a pixel byte, clamping strays.
func unitToByte(v float32) uint8 {
	x := v*255 + 0.5
	switch {
	case x <= 0:
		return 0
	case x >= 255:
		return 255
	}
	return uint8(x)
}
