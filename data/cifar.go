package data

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
)

// CIFAR binary layout: each record is its label byte(s) followed by a
// 32×32 image stored as the red, green and blue planes, i.e. already C×H×W.
const (
	cifarSide      = 32
	cifarImageSize = 3 * cifarSide * cifarSide
)

// ReadCIFAR10 reads CIFAR-10's binary version from dir (or its
// cifar-10-batches-bin subfolder): data_batch_1.bin … data_batch_5.bin for
// the train split, test_batch.bin for the test split.
func ReadCIFAR10(dir string, split Split) (*Dataset, error) {
	if err := split.validate(); err != nil {
		return nil, err
	}
	dir = preferSubdir(dir, "cifar-10-batches-bin", "test_batch.bin")
	names := []string{"test_batch.bin"}
	if split == Train {
		names = []string{"data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin", "data_batch_5.bin"}
	}
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = filepath.Join(dir, n)
	}
	return ReadCIFARFiles(paths, false)
}

// ReadCIFAR100 reads CIFAR-100's binary version from dir (or its
// cifar-100-binary subfolder): train.bin or test.bin. Labels are the 100
// fine classes; the 20 coarse ones go to Dataset.Coarse.
func ReadCIFAR100(dir string, split Split) (*Dataset, error) {
	if err := split.validate(); err != nil {
		return nil, err
	}
	dir = preferSubdir(dir, "cifar-100-binary", "test.bin")
	return ReadCIFARFiles([]string{filepath.Join(dir, string(split)+".bin")}, true)
}

// preferSubdir returns dir/sub when dir itself lacks probe but dir/sub has
// it, so both the archive's folder and its parent work.
func preferSubdir(dir, sub, probe string) string {
	if _, err := os.Stat(filepath.Join(dir, probe)); err == nil {
		return dir
	}
	if _, err := os.Stat(filepath.Join(dir, sub, probe)); err == nil {
		return filepath.Join(dir, sub)
	}
	return dir
}

// ReadCIFARFiles reads and concatenates CIFAR binary batch files (plain or
// gzipped). cifar100 selects the 2-label-byte CIFAR-100 record (coarse,
// fine) instead of CIFAR-10's single label byte.
func ReadCIFARFiles(paths []string, cifar100 bool) (*Dataset, error) {
	labelBytes, classes, name := 1, 10, "CIFAR-10"
	if cifar100 {
		labelBytes, classes, name = 2, 100, "CIFAR-100"
	}
	record := labelBytes + cifarImageSize
	d := &Dataset{C: 3, H: cifarSide, W: cifarSide, Classes: classes}
	if cifar100 {
		d.Coarse = []int64{}
	}
	for _, path := range paths {
		raw, err := readAllMaybeGzip(path)
		if err != nil {
			return nil, fmt.Errorf("read %s batch %s: %w", name, path, err)
		}
		if len(raw) == 0 {
			return nil, fmt.Errorf("read %s batch %s: empty file", name, path)
		}
		if len(raw)%record != 0 {
			return nil, fmt.Errorf("read %s batch %s: truncated: %d bytes is not a whole number of %d-byte records (last record has %d bytes)",
				name, path, len(raw), record, len(raw)%record)
		}
		n := len(raw) / record
		d.Images = slices.Grow(d.Images, n*cifarImageSize)
		d.Labels = slices.Grow(d.Labels, n)
		for r := range n {
			rec := raw[r*record : (r+1)*record]
			fine := int64(rec[labelBytes-1])
			if fine >= int64(classes) {
				return nil, fmt.Errorf("read %s batch %s: record %d: label %d out of range [0,%d)", name, path, r, fine, classes)
			}
			if cifar100 {
				coarse := int64(rec[0])
				if coarse >= 20 {
					return nil, fmt.Errorf("read %s batch %s: record %d: coarse label %d out of range [0,20)", name, path, r, coarse)
				}
				d.Coarse = append(d.Coarse, coarse)
			}
			d.Labels = append(d.Labels, fine)
			d.Images = append(d.Images, rec[labelBytes:]...)
		}
		d.N += n
	}
	return d, d.Validate()
}

// readAllMaybeGzip reads a whole file, decompressing it if it is gzipped.
func readAllMaybeGzip(path string) ([]byte, error) {
	r, plainSize, closeFn, err := openMaybeGzip(path)
	if err != nil {
		return nil, err
	}
	defer closeFn()
	if plainSize >= 0 {
		buf := make([]byte, plainSize)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return buf, nil
	}
	return io.ReadAll(r)
}
