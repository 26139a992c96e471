package data

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The fuzz targets feed outside input to each reader: any input must give
// a dataset that validates or an error, never a panic or a hang. `make
// fuzz` runs each for a while; the seeds below run with `go test`.

func FuzzReadIDX(f *testing.F) {
	images, labels := idxFixture(5, 4, 3, 3)
	f.Add(images, labels)
	f.Add(gzipBytes(f, images), labels)
	f.Add(idxBytes(idxImagesMagic, []uint32{1, 1, 1}, []byte{7}), idxBytes(idxLabelsMagic, []uint32{1}, []byte{0}))
	f.Add(idxBytes(idxImagesMagic, []uint32{0xffffffff, 0xffffffff, 0xffffffff}, nil), labels)
	f.Add([]byte{}, []byte{0, 0, 8, 1})
	f.Fuzz(func(t *testing.T, images, labels []byte) {
		dir := t.TempDir()
		imgPath := writeFile(t, filepath.Join(dir, "images"), images)
		labPath := writeFile(t, filepath.Join(dir, "labels"), labels)
		d, err := ReadIDX(imgPath, labPath, 0)
		if err == nil {
			checkDataset(t, d)
		}
	})
}

func FuzzReadCIFAR(f *testing.F) {
	f.Add(cifarRecords(2, false, 10), false)
	f.Add(cifarRecords(2, true, 100), true)
	f.Add(gzipBytes(f, cifarRecords(1, false, 10)), false)
	f.Add([]byte{0x1f, 0x8b}, false)
	f.Fuzz(func(t *testing.T, raw []byte, cifar100 bool) {
		path := writeFile(t, filepath.Join(t.TempDir(), "batch.bin"), raw)
		d, err := ReadCIFARFiles([]string{path}, cifar100)
		if err == nil {
			checkDataset(t, d)
		}
	})
}

// FuzzImageFolder puts one file, of any content, in a class folder and
// reads it as training and as evaluation images.
func FuzzImageFolder(f *testing.F) {
	img := image.NewRGBA(image.Rect(0, 0, 5, 3))
	for i := range img.Pix {
		img.Pix[i] = byte(i * 7)
	}
	var p, j bytes.Buffer
	if err := png.Encode(&p, img); err != nil {
		f.Fatal(err)
	}
	if err := jpeg.Encode(&j, img, nil); err != nil {
		f.Fatal(err)
	}
	gray := image.NewGray(image.Rect(0, 0, 1, 1))
	gray.SetGray(0, 0, color.Gray{Y: 200})
	var g bytes.Buffer
	if err := png.Encode(&g, gray); err != nil {
		f.Fatal(err)
	}
	f.Add(p.Bytes(), ".png")
	f.Add(j.Bytes(), ".jpg")
	f.Add(g.Bytes(), ".png")
	f.Add(p.Bytes()[:len(p.Bytes())/2], ".png")
	f.Fuzz(func(t *testing.T, raw []byte, ext string) {
		if ext != ".png" && ext != ".jpg" {
			ext = ".jpeg"
		}
		dir := t.TempDir()
		if err := os.MkdirAll(filepath.Join(dir, "cat"), 0o755); err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, "cat", "x"+ext), raw)
		for _, train := range []bool{false, true} {
			folder, err := NewImageFolder(dir, 8, train)
			if err != nil {
				t.Fatal(err) // the folder itself is well formed
			}
			dst := make([]float32, 3*8*8)
			if err := folder.Fill(0, dst, rand.New(rand.NewPCG(1, 2))); err != nil {
				continue
			}
			for _, v := range dst {
				if !(v >= 0 && v <= 1) {
					t.Fatalf("pixel %v outside [0,1]", v)
				}
			}
		}
	})
}

// checkDataset asserts what every reader promises of a dataset it returns.
func checkDataset(t *testing.T, d *Dataset) {
	t.Helper()
	if err := d.Validate(); err != nil {
		t.Fatalf("reader returned an invalid dataset: %v", err)
	}
	c, h, w := d.Shape()
	if len(d.Images) != d.N*c*h*w || len(d.Labels) != d.N {
		t.Fatalf("dataset of %d images %dx%dx%d holds %d bytes and %d labels", d.N, c, h, w, len(d.Images), len(d.Labels))
	}
}

// A JPEG whose frame header claims 60000×60000 pixels is refused before
// decoding instead of allocating gigabytes (found by reading the decoder,
// which allocates the whole image at the first scan).
func TestImageFolderRefusesAHugeImageHeader(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 8, 8))
	var j bytes.Buffer
	if err := jpeg.Encode(&j, img, nil); err != nil {
		t.Fatal(err)
	}
	raw := j.Bytes()
	sof := bytes.Index(raw, []byte{0xff, 0xc0})
	if sof < 0 {
		t.Fatal("no SOF0 marker")
	}
	// SOF0: marker, length (2), precision (1), height (2), width (2).
	raw[sof+5], raw[sof+6], raw[sof+7], raw[sof+8] = 0xea, 0x60, 0xea, 0x60
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "cat"), 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "cat", "huge.jpg"), raw)
	folder, err := NewImageFolder(dir, 8, false)
	if err != nil {
		t.Fatal(err)
	}
	err = folder.Fill(0, make([]float32, 3*8*8), nil)
	if err == nil || !strings.Contains(err.Error(), "60000×60000 pixels") {
		t.Fatalf("want a size error, got %v", err)
	}
}
