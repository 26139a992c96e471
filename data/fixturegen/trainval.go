package fixturegen

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// Written counts the JPEGs a WriteTrainVal call wrote.
type Written struct {
	Images int
	Bytes  int64
}

// valSeed is added to the seed of the val split, so that its pictures
// are not the train split's.
const valSeed = 1 << 32

// WriteTrainVal writes an ImageNet-style tree: dir/train with cfg (its
// Split ignored) and, when valPerClass > 0, dir/val with valPerClass
// images per class drawn from another seed.
func WriteTrainVal(ctx context.Context, dir string, cfg Config, valPerClass int) (Written, error) {
	if valPerClass < 0 {
		return Written{}, fmt.Errorf("fixtures val-per-class %d: must not be negative", valPerClass)
	}
	cfg.Split = "train"
	n, err := Write(ctx, dir, cfg)
	if err != nil {
		return Written{}, err
	}
	c := cfg.withDefaults()
	out := Written{Images: c.Classes * c.PerClass, Bytes: n}
	if valPerClass == 0 {
		return out, nil
	}
	val := cfg
	val.Split, val.PerClass, val.Seed = "val", valPerClass, cfg.Seed+valSeed
	m, err := Write(ctx, dir, val)
	if err != nil {
		return Written{}, err
	}
	out.Images += c.Classes * valPerClass
	out.Bytes += m
	return out, nil
}

// WriteCIFAR10 writes a CIFAR-10 binary folder in dir: n test records
// with labels 0, 1, …, 9, 0, … and deterministic pixels, and one record
// in each of the five train batches (data.Open reads them too).
func WriteCIFAR10(dir string, n int) error {
	rec := func(i int) []byte {
		b := make([]byte, 1+3*32*32)
		b[0] = byte(i % 10)
		for j := 1; j < len(b); j++ {
			b[j] = byte((i*131 + j*7) % 256)
		}
		return b
	}
	var test []byte
	for i := range n {
		test = append(test, rec(i)...)
	}
	if err := os.WriteFile(filepath.Join(dir, "test_batch.bin"), test, 0o644); err != nil {
		return fmt.Errorf("cifar-10 fixture: %w", err)
	}
	for k := 1; k <= 5; k++ {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", k)), rec(k), 0o644); err != nil {
			return fmt.Errorf("cifar-10 fixture: %w", err)
		}
	}
	return nil
}
