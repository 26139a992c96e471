package data

import "math/rand/v2"

// Random streams: each use of a seed draws from its own stream so that, e.g.,
// the epoch order and the augmentation of batch 0 are unrelated. The top
// four bits tag the use; epoch and batch numbers fill the rest.
const (
	streamSyntheticPatterns uint64 = 1 << 60
	streamSyntheticTrain    uint64 = 2 << 60
	streamSyntheticTest     uint64 = 3 << 60
	streamSubset            uint64 = 4 << 60
	streamOrder             uint64 = 5 << 60
	streamExample           uint64 = 7 << 60
)

// exampleStream is the stream of the example in slot j of batch k of an
// epoch (16 bits of epoch, 24 of batch number, 20 of slot): its random
// transforms depend on where it sits in the global batch, not on which
// worker or data-parallel rank builds it.
func exampleStream(epoch, k, j int) uint64 {
	return streamExample | uint64(epoch&(1<<16-1))<<44 | uint64(k&(1<<24-1))<<20 | uint64(j&(1<<20-1))
}

// newRand derives an independent generator for (seed, stream), so different
// uses of one seed (order, augmentation, patterns) do not share draws.
func newRand(seed int64, stream uint64) *rand.Rand {
	var p rand.PCG
	reseed(&p, seed, stream)
	return rand.New(&p)
}

// reseed puts p in newRand's state for (seed, stream): a generator reused
// across streams draws what a new one would.
func reseed(p *rand.PCG, seed int64, stream uint64) {
	p.Seed(splitmix(uint64(seed)), splitmix(stream^0x6a09e667f3bcc909))
}

// splitmix scrambles a 64-bit value (SplitMix64's finaliser) so nearby
// seeds give unrelated generator states.
func splitmix(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}
