package data

import (
	"image/color"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpen(t *testing.T) {
	mnistDir := t.TempDir()
	writeMNISTDir(t, mnistDir, 40, 20, true)
	cifarDir := t.TempDir()
	writeCIFAR10Dir(t, cifarDir, 4)
	cifar100Dir := t.TempDir()
	writeCIFAR100Dir(t, cifar100Dir, 10)
	folder := t.TempDir()
	writeFolder(t, filepath.Join(folder, "train"))
	writeFolder(t, filepath.Join(folder, "val"))

	tests := []struct {
		name             string
		opts             Options
		wantTrain        int
		wantTest         int
		wantCHW          [3]int
		wantClasses      int
		wantTrainSubset  bool
		wantTestIsFolder bool
	}{
		{name: "fashion-mnist", opts: Options{Dir: mnistDir}, wantTrain: 40, wantTest: 20, wantCHW: [3]int{1, 28, 28}, wantClasses: 10},
		{name: "mnist", opts: Options{Dir: mnistDir, TrainSize: 15, TestSize: 5}, wantTrain: 15, wantTest: 5, wantCHW: [3]int{1, 28, 28}, wantClasses: 10, wantTrainSubset: true},
		{name: "cifar10", opts: Options{Dir: cifarDir}, wantTrain: 20, wantTest: 5, wantCHW: [3]int{3, 32, 32}, wantClasses: 10},
		{name: "cifar100", opts: Options{Dir: cifar100Dir}, wantTrain: 10, wantTest: 5, wantCHW: [3]int{3, 32, 32}, wantClasses: 100},
		{name: "imagefolder:" + folder, opts: Options{ImageSize: 12}, wantTrain: 5, wantTest: 5, wantCHW: [3]int{3, 12, 12}, wantClasses: 2, wantTestIsFolder: true},
		{name: "synthetic", opts: Options{TrainSize: 30, TestSize: 10, ImageSize: 8, Channels: 3, Classes: 4}, wantTrain: 30, wantTest: 10, wantCHW: [3]int{3, 8, 8}, wantClasses: 4},
		{name: "synthetic", opts: Options{}, wantTrain: 2048, wantTest: 512, wantCHW: [3]int{1, 28, 28}, wantClasses: 10},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(tc.name, tc.opts)
			require.NoError(t, err)
			assert.Equal(t, tc.wantTrain, s.Train.Len())
			assert.Equal(t, tc.wantTest, s.Test.Len())
			assert.Equal(t, tc.wantCHW, [3]int{s.C, s.H, s.W})
			assert.Equal(t, tc.wantClasses, s.Classes)
			_, isSubset := s.Train.(*Subset)
			assert.Equal(t, tc.wantTrainSubset, isSubset)
			if tc.wantTestIsFolder {
				f := s.Test.(*ImageFolder)
				assert.False(t, f.Train, "evaluation split uses the centre crop")
				assert.True(t, s.Train.(*ImageFolder).Train)
			}
		})
	}
}

func TestOpenErrors(t *testing.T) {
	folder := t.TempDir()
	writeFolder(t, filepath.Join(folder, "train"))
	writeImage(t, filepath.Join(folder, "test", "cat", "1.png"), solidImage(4, 4, color.RGBA{A: 255}))
	tests := []struct {
		name    string
		opts    Options
		wantErr string
	}{
		{name: "imagenet", wantErr: `unknown dataset "imagenet": allowed names are fashion-mnist, mnist, cifar10, cifar100, imagefolder:DIR, synthetic`},
		{name: "mnist", wantErr: "needs a directory"},
		{name: "cifar10", wantErr: "needs a directory"},
		{name: "cifar100", opts: Options{Dir: t.TempDir()}, wantErr: "train.bin: no such file"},
		{name: "fashion-mnist", opts: Options{Dir: t.TempDir()}, wantErr: "no train-images-idx3-ubyte"},
		{name: "imagefolder:", wantErr: "imagefolder needs a directory"},
		{name: "imagefolder:" + folder, wantErr: "class folders differ: train has [cat dog], test has [cat]"},
		{name: "synthetic", opts: Options{TrainSize: -1}, wantErr: "train size -1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Open(tc.name, tc.opts)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

// TestFashionMNISTInstalled reads the real data set that Debian's
// dataset-fashion-mnist package installs.
func TestFashionMNISTInstalled(t *testing.T) {
	if _, err := os.Stat(filepath.Join(FashionMNISTDir, "train-images-idx3-ubyte.gz")); err != nil {
		t.Skipf("Fashion-MNIST not installed in %s (apt-get install dataset-fashion-mnist)", FashionMNISTDir)
	}
	for _, tc := range []struct {
		split Split
		n     int
	}{{Train, 60000}, {Test, 10000}} {
		d, err := LoadFashionMNIST("", tc.split)
		require.NoError(t, err)
		assert.Equal(t, []int{tc.n, 1, 28, 28, 10}, []int{d.N, d.C, d.H, d.W, d.Classes})
		counts := make([]int, 10)
		for _, l := range d.Labels {
			counts[l]++
		}
		for k, c := range counts {
			assert.Equal(t, tc.n/10, c, "%s class %d (Fashion-MNIST is balanced)", tc.split, k)
		}
		var lo, hi uint8 = 255, 0
		for _, p := range d.Images[:28*28*100] {
			lo, hi = min(lo, p), max(hi, p)
		}
		assert.Equal(t, []uint8{0, 255}, []uint8{lo, hi}, "pixels span the full byte range")
	}
}
