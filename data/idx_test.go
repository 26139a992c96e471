package data

import (
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestReadIDX(t *testing.T) {
	goodImages, goodLabels := idxFixture(5, 4, 3, 3)
	badLabel := idxBytes(idxLabelsMagic, []uint32{5}, []byte{0, 1, 2, 9, 0})
	tests := []struct {
		name           string
		images, labels func(t *testing.T) []byte
		classes        int
		wantErr        string // substring; empty means success
		wantClasses    int
	}{
		{name: "plain", images: raw(goodImages), labels: raw(goodLabels), classes: 3, wantClasses: 3},
		{name: "gzipped", images: gz(goodImages), labels: gz(goodLabels), classes: 3, wantClasses: 3},
		{name: "classes inferred from labels", images: raw(goodImages), labels: raw(goodLabels), classes: 0, wantClasses: 3},
		{
			name:    "wrong image magic",
			images:  raw(idxBytes(0x00000801, []uint32{5}, make([]byte, 5))),
			labels:  raw(goodLabels),
			wantErr: "wrong magic number 0x00000801",
		},
		{
			name:    "labels file given as images",
			images:  raw(goodImages),
			labels:  raw(goodImages),
			wantErr: "wrong magic number 0x00000803",
		},
		{name: "truncated images", images: raw(goodImages[:len(goodImages)-7]), labels: raw(goodLabels), wantErr: "truncated"},
		{name: "truncated gzipped images", images: gz(goodImages[:len(goodImages)-7]), labels: raw(goodLabels), wantErr: "truncated"},
		{name: "cut gzip stream", images: func(t *testing.T) []byte { z := gzipBytes(t, goodImages); return z[:len(z)/2] }, labels: raw(goodLabels), wantErr: "truncated"},
		{name: "truncated header", images: raw(goodImages[:6]), labels: raw(goodLabels), wantErr: "truncated"},
		{name: "empty file", images: raw(nil), labels: raw(goodLabels), wantErr: "truncated"},
		{name: "trailing data", images: raw(append(append([]byte{}, goodImages...), 1, 2)), labels: raw(goodLabels), wantErr: "trailing data"},
		{name: "trailing data gzipped", images: gz(append(append([]byte{}, goodImages...), 1, 2)), labels: raw(goodLabels), wantErr: "trailing data"},
		{name: "label out of range", images: raw(goodImages), labels: raw(badLabel), classes: 3, wantErr: "label 9 at index 3 out of range [0,3)"},
		{
			name:    "mismatched counts",
			images:  raw(goodImages),
			labels:  raw(idxBytes(idxLabelsMagic, []uint32{4}, []byte{0, 1, 2, 0})),
			classes: 3,
			wantErr: "mismatched counts: 5 images, 4 labels",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			// Names without .gz: compression must be detected by content.
			imgPath := writeFile(t, filepath.Join(dir, "images"), tc.images(t))
			labPath := writeFile(t, filepath.Join(dir, "labels"), tc.labels(t))
			d, err := ReadIDX(imgPath, labPath, tc.classes)
			if tc.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, []int{5, 1, 4, 3}, []int{d.N, d.C, d.H, d.W})
			assert.Equal(t, tc.wantClasses, d.Classes)
			assert.Equal(t, []int64{0, 1, 2, 0, 1}, d.Labels)
			assert.Equal(t, byte((2*7+5)%256), d.Image(2)[5], "pixel 5 of image 2")
			require.NoError(t, d.Validate())
		})
	}
}

func raw(b []byte) func(*testing.T) []byte { return func(*testing.T) []byte { return b } }

func gz(b []byte) func(*testing.T) []byte {
	return func(t *testing.T) []byte { return gzipBytes(t, b) }
}

func TestLoadMNISTDir(t *testing.T) {
	for _, gzipped := range []bool{false, true} {
		dir := t.TempDir()
		writeMNISTDir(t, dir, 12, 7, gzipped)
		train, err := LoadMNIST(dir, Train)
		require.NoError(t, err, "gz=%v", gzipped)
		test, err := LoadFashionMNIST(dir, Test)
		require.NoError(t, err, "gz=%v", gzipped)
		assert.Equal(t, 12, train.N)
		assert.Equal(t, 7, test.N)
		assert.Equal(t, 10, train.Classes)
		assert.Equal(t, 28, train.H)
	}

	_, err := LoadMNIST(t.TempDir(), Train)
	require.ErrorContains(t, err, "no train-images-idx3-ubyte or train-images-idx3-ubyte.gz")

	_, err = LoadMNIST(t.TempDir(), Split("validation"))
	require.ErrorContains(t, err, `split "validation": allowed values are "train", "test"`)
}

func TestDatasetValidate(t *testing.T) {
	ok := func() *Dataset {
		return &Dataset{Images: make([]uint8, 2*3*2*2), Labels: []int64{0, 1}, N: 2, C: 3, H: 2, W: 2, Classes: 2}
	}
	tests := []struct {
		name    string
		mutate  func(d *Dataset)
		wantErr string
	}{
		{name: "valid", mutate: func(*Dataset) {}},
		{name: "short images", mutate: func(d *Dataset) { d.Images = d.Images[1:] }, wantErr: "have 23 bytes"},
		{name: "label count", mutate: func(d *Dataset) { d.Labels = d.Labels[:1] }, wantErr: "labels: have 1, want N=2"},
		{name: "label range", mutate: func(d *Dataset) { d.Labels[1] = 2 }, wantErr: "label 2 at index 1 out of range [0,2)"},
		{name: "negative label", mutate: func(d *Dataset) { d.Labels[0] = -1 }, wantErr: "label -1 at index 0"},
		{name: "zero classes", mutate: func(d *Dataset) { d.Classes = 0 }, wantErr: "classes=0"},
		{name: "zero channels", mutate: func(d *Dataset) { d.C = 0 }, wantErr: "all must be positive"},
		{name: "coarse count", mutate: func(d *Dataset) { d.Coarse = []int64{1} }, wantErr: "coarse labels: have 1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := ok()
			tc.mutate(d)
			err := d.Validate()
			if tc.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tc.wantErr)
		})
	}
}

func TestDatasetFill(t *testing.T) {
	d := &Dataset{Images: []uint8{0, 51, 255, 128}, Labels: []int64{1, 0}, N: 2, C: 1, H: 1, W: 2, Classes: 2}
	dst := make([]float32, 2)
	require.NoError(t, d.Fill(1, dst, nil))
	assert.Equal(t, []float32{1, 128.0 / 255}, dst)
	require.NoError(t, d.Fill(0, dst, nil))
	assert.InDelta(t, 0.2, dst[1], 1e-7)
	require.ErrorContains(t, d.Fill(2, dst, nil), "index 2 out of range")
	require.ErrorContains(t, d.Fill(0, make([]float32, 3), nil), "dst has 3 values, want 2")
}
