package data

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
)

// FashionMNISTDir is where Debian's dataset-fashion-mnist package installs
// the gzipped IDX files.
const FashionMNISTDir = "/usr/share/datasets/fashion-mnist"

// IDX magic numbers: two zero bytes, a type code (0x08 = unsigned byte) and
// the number of dimensions.
const (
	idxImagesMagic = 0x00000803
	idxLabelsMagic = 0x00000801
	// maxIDXBytes rejects headers that would make us allocate absurd
	// amounts before reading a single pixel.
	maxIDXBytes = 1 << 34
)

// openMaybeGzip opens path and transparently decompresses it when it starts
// with the gzip magic bytes 0x1f 0x8b, whatever its name. plainSize is the
// file's size when it is not compressed, -1 otherwise.
func openMaybeGzip(path string) (r io.Reader, plainSize int64, closeFn func() error, err error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, nil, err
	}
	info, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, 0, nil, err
	}
	br := bufio.NewReaderSize(f, 1<<16)
	head, _ := br.Peek(2)
	if len(head) == 2 && head[0] == 0x1f && head[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, 0, nil, fmt.Errorf("gzip header: %w", err)
		}
		return bufio.NewReaderSize(zr, 1<<16), -1, func() error { zr.Close(); return f.Close() }, nil
	}
	return br, info.Size(), f.Close, nil
}

// readIDX reads one IDX file of unsigned bytes whose magic must be
// wantMagic, returning its dimensions and payload.
func readIDX(path string, wantMagic uint32) (dims []int, payload []uint8, err error) {
	r, plainSize, closeFn, err := openMaybeGzip(path)
	if err != nil {
		return nil, nil, err
	}
	defer closeFn()

	var magic uint32
	if err := binary.Read(r, binary.BigEndian, &magic); err != nil {
		return nil, nil, fmt.Errorf("truncated: no 4-byte magic number: %w", err)
	}
	if magic != wantMagic {
		return nil, nil, fmt.Errorf("wrong magic number 0x%08x: want 0x%08x (unsigned bytes, %d dimensions)", magic, wantMagic, wantMagic&0xff)
	}
	ndim := int(wantMagic & 0xff)
	header := make([]uint32, ndim)
	if err := binary.Read(r, binary.BigEndian, header); err != nil {
		return nil, nil, fmt.Errorf("truncated: header wants %d dimension sizes: %w", ndim, err)
	}
	total := int64(1)
	dims = make([]int, ndim)
	for i, d := range header {
		dims[i] = int(d)
		total *= int64(d)
		if total > maxIDXBytes {
			return nil, nil, fmt.Errorf("header dimensions %v exceed %d bytes", header, int64(maxIDXBytes))
		}
	}
	headerBytes := int64(4 + 4*ndim)
	if plainSize >= 0 && plainSize != headerBytes+total {
		if plainSize < headerBytes+total {
			return nil, nil, fmt.Errorf("truncated: header says %v = %d data bytes, file has %d", dims, total, plainSize-headerBytes)
		}
		return nil, nil, fmt.Errorf("trailing data: header says %v = %d data bytes, file has %d", dims, total, plainSize-headerBytes)
	}
	// A gzipped file's size says nothing about its content, so grow the
	// buffer as data arrives rather than trusting the header up front.
	buf := bytes.NewBuffer(make([]byte, 0, min(total, 1<<26)))
	if n, err := io.CopyN(buf, r, total); err != nil {
		return nil, nil, fmt.Errorf("truncated: header says %v = %d data bytes, read %d: %w", dims, total, n, err)
	}
	payload = buf.Bytes()
	// Reading to EOF also makes gzip verify its checksum.
	var one [1]byte
	if n, err := r.Read(one[:]); n > 0 || (err != nil && !errors.Is(err, io.EOF)) {
		if n > 0 {
			return nil, nil, fmt.Errorf("trailing data after %d data bytes", total)
		}
		return nil, nil, fmt.Errorf("after data: %w", err)
	}
	return dims, payload, nil
}

// ReadIDX reads an IDX image file (magic 0x00000803, N×H×W bytes) and its
// IDX label file (magic 0x00000801, N bytes), plain or gzipped (detected by
// content). classes > 0 bounds the labels; classes <= 0 takes the largest
// label + 1.
func ReadIDX(imagesPath, labelsPath string, classes int) (*Dataset, error) {
	dims, images, err := readIDX(imagesPath, idxImagesMagic)
	if err != nil {
		return nil, fmt.Errorf("read IDX images %s: %w", imagesPath, err)
	}
	ldims, raw, err := readIDX(labelsPath, idxLabelsMagic)
	if err != nil {
		return nil, fmt.Errorf("read IDX labels %s: %w", labelsPath, err)
	}
	if dims[0] != ldims[0] {
		return nil, fmt.Errorf("read IDX %s and %s: mismatched counts: %d images, %d labels", imagesPath, labelsPath, dims[0], ldims[0])
	}
	if dims[1] == 0 || dims[2] == 0 {
		return nil, fmt.Errorf("read IDX images %s: image size %d×%d must be positive", imagesPath, dims[1], dims[2])
	}
	labels := make([]int64, len(raw))
	maxLabel := int64(-1)
	for i, b := range raw {
		labels[i] = int64(b)
		maxLabel = max(maxLabel, int64(b))
	}
	if classes <= 0 {
		classes = int(maxLabel) + 1
		if classes <= 0 {
			return nil, fmt.Errorf("read IDX labels %s: no labels to infer the class count from", labelsPath)
		}
	}
	if i, ok := firstOutOfRange(labels, classes); !ok {
		return nil, fmt.Errorf("read IDX labels %s: label %d at index %d out of range [0,%d)", labelsPath, labels[i], i, classes)
	}
	d := &Dataset{Images: images, Labels: labels, N: dims[0], C: 1, H: dims[1], W: dims[2], Classes: classes}
	return d, d.Validate()
}

// LoadMNIST reads MNIST's train or test split from dir, which holds the
// standard files train-images-idx3-ubyte, train-labels-idx1-ubyte,
// t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte, each optionally ending
// in .gz.
func LoadMNIST(dir string, split Split) (*Dataset, error) {
	return loadIDXDir(dir, split)
}

// LoadFashionMNIST reads Fashion-MNIST, which uses MNIST's file names and
// format; an empty dir means FashionMNISTDir.
func LoadFashionMNIST(dir string, split Split) (*Dataset, error) {
	if dir == "" {
		dir = FashionMNISTDir
	}
	return loadIDXDir(dir, split)
}

func loadIDXDir(dir string, split Split) (*Dataset, error) {
	if err := split.validate(); err != nil {
		return nil, err
	}
	prefix := "train"
	if split == Test {
		prefix = "t10k"
	}
	images, err := findFile(dir, prefix+"-images-idx3-ubyte")
	if err != nil {
		return nil, err
	}
	labels, err := findFile(dir, prefix+"-labels-idx1-ubyte")
	if err != nil {
		return nil, err
	}
	return ReadIDX(images, labels, 10)
}

// findFile returns dir/name or dir/name.gz, whichever exists.
func findFile(dir, name string) (string, error) {
	for _, candidate := range []string{name, name + ".gz"} {
		p := filepath.Join(dir, candidate)
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("no %s or %s.gz in %s", name, name, dir)
}
