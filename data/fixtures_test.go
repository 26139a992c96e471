package data

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// Fixture writers: tests build their own small files in the formats the
// readers accept.

// idxBytes encodes an IDX file of unsigned bytes.
func idxBytes(magic uint32, dims []uint32, payload []byte) []byte {
	var buf bytes.Buffer
	_ = binary.Write(&buf, binary.BigEndian, magic)
	_ = binary.Write(&buf, binary.BigEndian, dims)
	buf.Write(payload)
	return buf.Bytes()
}

func gzipBytes(t testing.TB, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(raw)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Bytes()
}

func writeFile(t testing.TB, path string, raw []byte) string {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(path), 0o755))
	require.NoError(t, os.WriteFile(path, raw, 0o644))
	return path
}

// idxFixture is n images of h×w where pixel j of image i is (i*7+j)%256,
// and labels i%classes.
func idxFixture(n, h, w, classes int) (images, labels []byte) {
	pixels := make([]byte, n*h*w)
	for i := range n {
		for j := range h * w {
			pixels[i*h*w+j] = byte((i*7 + j) % 256)
		}
	}
	lab := make([]byte, n)
	for i := range lab {
		lab[i] = byte(i % classes)
	}
	return idxBytes(idxImagesMagic, []uint32{uint32(n), uint32(h), uint32(w)}, pixels),
		idxBytes(idxLabelsMagic, []uint32{uint32(n)}, lab)
}

// writeMNISTDir writes both splits with the standard names; gz picks
// gzipped files with a .gz ending, as Debian ships them.
func writeMNISTDir(t testing.TB, dir string, nTrain, nTest int, gz bool) {
	t.Helper()
	for _, s := range []struct {
		prefix string
		n      int
	}{{"train", nTrain}, {"t10k", nTest}} {
		img, lab := idxFixture(s.n, 28, 28, 10)
		suffix := ""
		if gz {
			img, lab, suffix = gzipBytes(t, img), gzipBytes(t, lab), ".gz"
		}
		writeFile(t, filepath.Join(dir, s.prefix+"-images-idx3-ubyte"+suffix), img)
		writeFile(t, filepath.Join(dir, s.prefix+"-labels-idx1-ubyte"+suffix), lab)
	}
}

// cifarRecords makes n records; record i has label i%classes (coarse label
// i%20 first when cifar100) and channel ch filled with byte(i+ch*50).
func cifarRecords(n int, cifar100 bool, classes int) []byte {
	var buf bytes.Buffer
	for i := range n {
		if cifar100 {
			buf.WriteByte(byte(i % 20))
		}
		buf.WriteByte(byte(i % classes))
		for ch := range 3 {
			buf.Write(bytes.Repeat([]byte{byte(i + ch*50)}, cifarSide*cifarSide))
		}
	}
	return buf.Bytes()
}

// writeImage saves img as PNG or JPEG (by the path's ending).
func writeImage(t testing.TB, path string, img image.Image) {
	t.Helper()
	var buf bytes.Buffer
	switch filepath.Ext(path) {
	case ".png":
		require.NoError(t, png.Encode(&buf, img))
	default:
		require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 95}))
	}
	writeFile(t, path, buf.Bytes())
}

func solidImage(w, h int, c color.RGBA) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, c)
		}
	}
	return img
}

// halvesImage is red on the left half and blue on the right half.
func halvesImage(w, h int) *image.RGBA {
	img := solidImage(w, h, color.RGBA{255, 0, 0, 255})
	for y := range h {
		for x := w / 2; x < w; x++ {
			img.SetRGBA(x, y, color.RGBA{0, 0, 255, 255})
		}
	}
	return img
}

// gradientImage has every pixel different, so crops are distinguishable.
func gradientImage(w, h int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.SetRGBA(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), uint8((x + y) % 256), 255})
		}
	}
	return img
}
