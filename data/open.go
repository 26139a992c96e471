package data

import (
	"fmt"
	"github.com/robarch/robarch/arch"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// Dataset names accepted by Open.
const (
	NameFashionMNIST = "fashion-mnist"
	NameMNIST        = "mnist"
	NameCIFAR10      = "cifar10"
	NameCIFAR100     = "cifar100"
	NameImageFolder  = "imagefolder" // written imagefolder:DIR
	NameSynthetic    = "synthetic"
)

// Names lists the dataset names Open accepts, as a user would write them.
func Names() []string {
	return []string{NameFashionMNIST, NameMNIST, NameCIFAR10, NameCIFAR100, NameImageFolder + ":DIR", NameSynthetic}
}

// Options tune Open. Zero values mean the defaults given per field.
type Options struct {
	// Dir overrides where the files are: default FashionMNISTDir for
	// fashion-mnist; required for mnist, cifar10 and cifar100; imagefolder
	// takes its directory from the name.
	Dir string
	// TrainSize and TestSize keep a stratified, seeded subset of each split
	// (0 = all). For synthetic they are the split sizes (default 2048/512).
	TrainSize, TestSize int
	// Seed drives subset selection and the synthetic data.
	Seed int64
	// ImageSize is the output side for imagefolder (default 224) and
	// synthetic (default 28).
	ImageSize int
	// Channels and Classes shape synthetic data (default 1 and 10).
	Channels, Classes int
}

// Splits is what Open returns: both splits of one dataset.
type Splits struct {
	Name        string
	Train, Test Source
	Classes     int
	C, H, W     int
}

// Open loads a dataset by name (see Names), applies the subset sizes and
// returns its train and test splits.
func Open(name string, opts Options) (*Splits, error) {
	if opts.TrainSize < 0 || opts.TestSize < 0 {
		return nil, fmt.Errorf("open %s: train size %d, test size %d: must be 0 (all) or positive", name, opts.TrainSize, opts.TestSize)
	}
	train, test, err := openSplits(name, opts)
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", name, err)
	}
	if name != NameSynthetic {
		if train, err = SelectStratified(train, opts.TrainSize, opts.Seed); err != nil {
			return nil, fmt.Errorf("open %s train subset: %w", name, err)
		}
		if test, err = SelectStratified(test, opts.TestSize, opts.Seed); err != nil {
			return nil, fmt.Errorf("open %s test subset: %w", name, err)
		}
	}
	c, h, w := train.Shape()
	tc, th, tw := test.Shape()
	if c != tc || h != th || w != tw || train.NumClasses() != test.NumClasses() {
		return nil, fmt.Errorf("open %s: train is %d×%d×%d with %d classes, test is %d×%d×%d with %d", name,
			c, h, w, train.NumClasses(), tc, th, tw, test.NumClasses())
	}
	return &Splits{Name: name, Train: train, Test: test, Classes: train.NumClasses(), C: c, H: h, W: w}, nil
}

func openSplits(name string, opts Options) (train, test Source, err error) {
	if dir, ok := strings.CutPrefix(name, NameImageFolder+":"); ok {
		return openImageFolder(dir, opts)
	}
	switch name {
	case NameFashionMNIST:
		return both(func(s Split) (*Dataset, error) { return LoadFashionMNIST(opts.Dir, s) })
	case NameMNIST:
		if opts.Dir == "" {
			return nil, nil, fmt.Errorf("needs a directory (dir option) holding the MNIST IDX files")
		}
		return both(func(s Split) (*Dataset, error) { return LoadMNIST(opts.Dir, s) })
	case NameCIFAR10, NameCIFAR100:
		if opts.Dir == "" {
			return nil, nil, fmt.Errorf("needs a directory (dir option) holding the CIFAR binary batches")
		}
		read := ReadCIFAR10
		if name == NameCIFAR100 {
			read = ReadCIFAR100
		}
		return both(func(s Split) (*Dataset, error) { return read(opts.Dir, s) })
	case NameSynthetic:
		cfg := SyntheticConfig{Classes: orDefault(opts.Classes, 10), C: orDefault(opts.Channels, 1), H: orDefault(opts.ImageSize, 28), W: orDefault(opts.ImageSize, 28), Seed: opts.Seed}
		return both(func(s Split) (*Dataset, error) {
			if s == Train {
				return cfg.Generate(orDefault(opts.TrainSize, 2048), s)
			}
			return cfg.Generate(orDefault(opts.TestSize, 512), s)
		})
	}
	return nil, nil, fmt.Errorf("unknown dataset %q: allowed names are %s", name, strings.Join(Names(), ", "))
}

// both runs load for the train and the test split.
func both(load func(Split) (*Dataset, error)) (train, test Source, err error) {
	tr, err := load(Train)
	if err != nil {
		return nil, nil, err
	}
	te, err := load(Test)
	if err != nil {
		return nil, nil, err
	}
	return tr, te, nil
}

// openImageFolder reads DIR/train and DIR/val (or DIR/test); both must have
// the same class subfolders so that labels mean the same thing.
func openImageFolder(dir string, opts Options) (train, test Source, err error) {
	if dir == "" {
		return nil, nil, fmt.Errorf("imagefolder needs a directory: imagefolder:DIR")
	}
	size := orDefault(opts.ImageSize, 224)
	tr, err := NewImageFolder(filepath.Join(dir, "train"), size, true)
	if err != nil {
		return nil, nil, err
	}
	evalDir := filepath.Join(dir, "val")
	if _, err := os.Stat(evalDir); err != nil {
		evalDir = filepath.Join(dir, "test")
	}
	te, err := NewImageFolder(evalDir, size, false)
	if err != nil {
		return nil, nil, fmt.Errorf("evaluation split (val or test): %w", err)
	}
	if !slices.Equal(tr.ClassNames, te.ClassNames) {
		return nil, nil, fmt.Errorf("class folders differ: train has %v, %s has %v", tr.ClassNames, filepath.Base(evalDir), te.ClassNames)
	}
	return tr, te, nil
}

// orDefault returns v, or def when v is zero.
func orDefault(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}

// Shape is what the splits feed a network, for arch.ForData.
func (s *Splits) Shape() arch.DataShape {
	return arch.DataShape{Name: s.Name, Channels: s.C, Height: s.H, Width: s.W, Classes: s.Classes}
}
