package data

import (
	"fmt"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func writeCIFAR10Dir(t *testing.T, dir string, perBatch int) {
	t.Helper()
	for b := 1; b <= 5; b++ {
		writeFile(t, filepath.Join(dir, fmt.Sprintf("data_batch_%d.bin", b)), cifarRecords(perBatch, false, 10))
	}
	writeFile(t, filepath.Join(dir, "test_batch.bin"), cifarRecords(perBatch+1, false, 10))
}

func writeCIFAR100Dir(t *testing.T, dir string, n int) {
	t.Helper()
	writeFile(t, filepath.Join(dir, "train.bin"), cifarRecords(n, true, 100))
	writeFile(t, filepath.Join(dir, "test.bin"), cifarRecords(n/2, true, 100))
}

func TestReadCIFAR10(t *testing.T) {
	dir := t.TempDir()
	writeCIFAR10Dir(t, dir, 3)

	train, err := ReadCIFAR10(dir, Train)
	require.NoError(t, err)
	assert.Equal(t, []int{15, 3, 32, 32, 10}, []int{train.N, train.C, train.H, train.W, train.Classes})
	assert.Equal(t, []int64{0, 1, 2, 0, 1, 2}, train.Labels[:6], "batches concatenate in order")
	img := train.Image(1)
	assert.Equal(t, []uint8{1, 51, 101}, []uint8{img[0], img[1024], img[2048]}, "R, G, B planes of record 1")
	assert.Nil(t, train.Coarse)

	test, err := ReadCIFAR10(dir, Test)
	require.NoError(t, err)
	assert.Equal(t, 4, test.N)

	// The archive's own folder name is found from its parent.
	parent := t.TempDir()
	writeCIFAR10Dir(t, filepath.Join(parent, "cifar-10-batches-bin"), 2)
	test, err = ReadCIFAR10(parent, Test)
	require.NoError(t, err)
	assert.Equal(t, 3, test.N)
}

func TestReadCIFAR100(t *testing.T) {
	dir := t.TempDir()
	writeCIFAR100Dir(t, filepath.Join(dir, "cifar-100-binary"), 8)
	train, err := ReadCIFAR100(dir, Train)
	require.NoError(t, err)
	assert.Equal(t, []int{8, 100}, []int{train.N, train.Classes})
	assert.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7}, train.Labels)
	assert.Equal(t, []int64{0, 1, 2, 3, 4, 5, 6, 7}, train.Coarse)
	assert.Equal(t, uint8(3+100), train.Image(3)[2*1024], "blue plane of record 3")
	test, err := ReadCIFAR100(dir, Test)
	require.NoError(t, err)
	assert.Equal(t, 4, test.N)
}

func TestReadCIFARFilesErrors(t *testing.T) {
	good10 := cifarRecords(2, false, 10)
	badLabel := append([]byte{}, good10...)
	badLabel[3073] = 10 // second record's label
	badCoarse := cifarRecords(2, true, 100)
	badCoarse[0] = 20
	badFine := cifarRecords(2, true, 100)
	badFine[1] = 100
	tests := []struct {
		name     string
		content  []byte
		cifar100 bool
		wantErr  string
	}{
		{name: "truncated record", content: good10[:len(good10)-100], wantErr: "truncated: 6046 bytes is not a whole number of 3073-byte records (last record has 2973 bytes)"},
		{name: "empty", content: []byte{}, wantErr: "empty file"},
		{name: "label out of range", content: badLabel, wantErr: "record 1: label 10 out of range [0,10)"},
		{name: "coarse out of range", content: badCoarse, cifar100: true, wantErr: "record 0: coarse label 20 out of range [0,20)"},
		{name: "fine out of range", content: badFine, cifar100: true, wantErr: "record 0: label 100 out of range [0,100)"},
		{name: "CIFAR-10 file read as CIFAR-100", content: good10, cifar100: true, wantErr: "not a whole number of 3074-byte records"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, filepath.Join(t.TempDir(), "batch.bin"), tc.content)
			_, err := ReadCIFARFiles([]string{path}, tc.cifar100)
			require.ErrorContains(t, err, tc.wantErr)
		})
	}

	t.Run("gzipped batch", func(t *testing.T) {
		path := writeFile(t, filepath.Join(t.TempDir(), "batch.bin"), gzipBytes(t, good10))
		d, err := ReadCIFARFiles([]string{path}, false)
		require.NoError(t, err)
		assert.Equal(t, 2, d.N)
	})

	t.Run("missing batch", func(t *testing.T) {
		dir := t.TempDir()
		writeFile(t, filepath.Join(dir, "data_batch_1.bin"), good10)
		_, err := ReadCIFAR10(dir, Train)
		require.ErrorContains(t, err, "data_batch_2.bin")
	})
}
