package data

import (
	"fmt"
	"math/rand/v2"
	"slices"
)

// Subset is a view of some examples of a Source, in Indices order.
type Subset struct {
	Src     Source
	Indices []int
}

// Len implements Source.
func (s *Subset) Len() int { return len(s.Indices) }

// Shape implements Source.
func (s *Subset) Shape() (c, h, w int) { return s.Src.Shape() }

// NumClasses implements Source.
func (s *Subset) NumClasses() int { return s.Src.NumClasses() }

// Label implements Source.
func (s *Subset) Label(i int) int64 { return s.Src.Label(s.Indices[i]) }

// Fill implements Source.
func (s *Subset) Fill(i int, dst []float32, rng *rand.Rand) error {
	if i < 0 || i >= len(s.Indices) {
		return fmt.Errorf("subset index %d out of range [0,%d)", i, len(s.Indices))
	}
	return s.Src.Fill(s.Indices[i], dst, rng)
}

// FillPixels implements PixelSource when Src is one (see AsPixelSource).
func (s *Subset) FillPixels(i int, dst []uint8, rng *rand.Rand) error {
	if i < 0 || i >= len(s.Indices) {
		return fmt.Errorf("subset index %d out of range [0,%d)", i, len(s.Indices))
	}
	ps, ok := AsPixelSource(s.Src)
	if !ok {
		return fmt.Errorf("subset of %T: the source has no byte pixels", s.Src)
	}
	return ps.FillPixels(s.Indices[i], dst, rng)
}

// SelectStratified picks n examples of src for quick runs (--train-size,
// --test-size). It is stratified and deterministic in seed: examples are
// shuffled with the seed, then the classes take turns in label order, each
// contributing its next shuffled example, until n are chosen; so class
// counts differ by at most one unless a class runs out. The chosen indices
// keep src's order. n == 0 or n >= src.Len() returns src itself.
func SelectStratified(src Source, n int, seed int64) (Source, error) {
	if n < 0 {
		return nil, fmt.Errorf("subset size %d: must be 0 (all) or positive", n)
	}
	total := src.Len()
	if n == 0 || n >= total {
		return src, nil
	}
	byClass := make([][]int, src.NumClasses())
	for _, i := range newRand(seed, streamSubset).Perm(total) {
		l := src.Label(i)
		if l < 0 || int(l) >= len(byClass) {
			return nil, fmt.Errorf("subset: label %d of example %d out of range [0,%d)", l, i, len(byClass))
		}
		byClass[l] = append(byClass[l], i)
	}
	chosen := make([]int, 0, n)
	for round := 0; len(chosen) < n; round++ {
		for _, members := range byClass {
			if round < len(members) && len(chosen) < n {
				chosen = append(chosen, members[round])
			}
		}
	}
	slices.Sort(chosen)
	return &Subset{Src: src, Indices: chosen}, nil
}

// ShardBatches is this process's share of src for an evaluation split
// across size processes by whole batches: global batches rank, rank+size,
// rank+2·size, ... of batchSize examples in src's order. A loader with the
// same batch size over the shard yields exactly those batches, so anything
// computed per batch (an attack that reseeds per batch) is the same as in
// one process. size 1 returns src itself.
func ShardBatches(src Source, batchSize, rank, size int) (Source, error) {
	if batchSize < 1 || size < 1 || rank < 0 || rank >= size {
		return nil, fmt.Errorf("shard batches: batch size %d, rank %d of %d: want batch size >= 1 and 0 <= rank < size", batchSize, rank, size)
	}
	if size == 1 {
		return src, nil
	}
	n := src.Len()
	var idx []int
	for start := rank * batchSize; start < n; start += size * batchSize {
		for i := start; i < min(start+batchSize, n); i++ {
			idx = append(idx, i)
		}
	}
	return &Subset{Src: src, Indices: idx}, nil
}
