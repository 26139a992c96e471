package fixturegen

import (
	"context"
	"fmt"
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
