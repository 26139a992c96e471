package data

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
)

// BenchmarkLoader measures the loader alone in images/s: one full epoch of
// shuffled batches of 128, without and with the crop+flip augmentation.
// Run: go test -run '^$' -bench Loader -benchtime 3x ./data/
func BenchmarkLoader(b *testing.B) {
	fashion, fashionErr := LoadFashionMNIST("", Train)
	cifarLike, err := Synthetic(10000, 10, 3, 32, 32, 1)
	if err != nil {
		b.Fatal(err)
	}
	mnistLike, err := Synthetic(60000, 10, 1, 28, 28, 1)
	if err != nil {
		b.Fatal(err)
	}
	sources := []struct {
		name string
		src  Source
	}{{"synthetic-28x28", mnistLike}, {"synthetic-3x32x32", cifarLike}}
	if fashionErr == nil {
		sources = append(sources, struct {
			name string
			src  Source
		}{"fashion-mnist", fashion})
	}
	for _, s := range sources {
		for _, aug := range []Augment{{}, {CropPad: 4, HFlip: true}} {
			b.Run(fmt.Sprintf("%s/pad%d-flip%v", s.name, aug.CropPad, aug.HFlip), func(b *testing.B) {
				benchEpoch(b, s.src, LoaderConfig{BatchSize: 128, Shuffle: true, Seed: 1, Augment: aug})
			})
		}
	}
}

// BenchmarkImageFolder measures JPEG decode + random-resized-crop to 64×64
// on images of 320×240 made for the benchmark.
func BenchmarkImageFolder(b *testing.B) {
	dir := b.TempDir()
	for i := range 64 {
		writeImage(b, filepath.Join(dir, fmt.Sprint("c", i%4), fmt.Sprint(i, ".jpg")), gradientImage(320, 240))
	}
	f, err := NewImageFolder(dir, 64, true)
	if err != nil {
		b.Fatal(err)
	}
	benchEpoch(b, f, LoaderConfig{BatchSize: 32, Shuffle: true, Seed: 1, Augment: Augment{HFlip: true}})
}

func benchEpoch(b *testing.B, src Source, cfg LoaderConfig) {
	l, err := NewLoader(src, cfg)
	if err != nil {
		b.Fatal(err)
	}
	images := 0
	b.ResetTimer()
	for i := range b.N {
		for batch, err := range l.Batches(context.Background(), i) {
			if err != nil {
				b.Fatal(err)
			}
			images += batch.N
		}
	}
	b.ReportMetric(float64(images)/b.Elapsed().Seconds(), "images/s")
}
