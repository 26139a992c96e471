package turbojpeg

import (
	"bytes"
	"image"
	"image/color"
	"image/jpeg"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testJPEG(t testing.TB, w, h int) []byte {
	img := image.NewRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, color.RGBA{uint8(x * 255 / w), uint8(y * 255 / h), 90, 255})
		}
	}
	var buf bytes.Buffer
	require.NoError(t, jpeg.Encode(&buf, img, &jpeg.Options{Quality: 90}))
	return buf.Bytes()
}

func TestShrink(t *testing.T) {
	scales := []Scale{{1, 8}, {1, 4}, {3, 8}, {1, 2}, {5, 8}, {3, 4}, {7, 8}, {1, 1}, {2, 1}}
	tests := []struct {
		cropW, cropH, out int
		want              Scale
	}{
		{1000, 1000, 224, Scale{1, 4}}, // 250 ≥ 224; 1/8 gives 125
		{448, 500, 224, Scale{1, 2}},
		{447, 500, 224, Scale{5, 8}}, // 1/2 would give 223.5 < 224
		{300, 240, 224, Scale{1, 1}}, // 7/8 of 240 is 210
		{100, 100, 224, Scale{1, 1}}, // never enlarge in the DCT
		{2000, 1800, 224, Scale{1, 8}},
	}
	for _, tc := range tests {
		assert.Equal(t, tc.want, Shrink(scales, tc.cropW, tc.cropH, tc.out, tc.out), "%d×%d to %d", tc.cropW, tc.cropH, tc.out)
	}
}

func TestDecodeAgreesWithGo(t *testing.T) {
	if !Available {
		t.Skip("built without cgo")
	}
	raw := testJPEG(t, 96, 64)
	d, err := NewDecoder()
	require.NoError(t, err)
	defer d.Close()
	hd, err := d.Header(raw)
	require.NoError(t, err)
	assert.Equal(t, Header{96, 64, "4:2:0"}, hd)
	ref, err := jpeg.Decode(bytes.NewReader(raw))
	require.NoError(t, err)

	pix, w, h, err := d.DecodeRGB(raw, hd, Full, nil)
	require.NoError(t, err)
	require.Equal(t, [2]int{96, 64}, [2]int{w, h})
	// Two decoders of one file differ only by their IDCT and chroma
	// upsampling rounding: a few levels at most.
	var worst int
	for y := range h {
		for x := range w {
			r, g, b, _ := ref.At(x, y).RGBA()
			for c, want := range []uint32{r >> 8, g >> 8, b >> 8} {
				worst = max(worst, absInt(int(pix[3*(y*w+x)+c])-int(want)))
			}
		}
	}
	assert.LessOrEqual(t, worst, 6)

	half, w2, h2, err := d.DecodeRGB(raw, hd, Scale{1, 2}, pix)
	require.NoError(t, err)
	assert.Equal(t, [2]int{48, 32}, [2]int{w2, h2})
	assert.Len(t, half, 3*48*32)
}

func TestDecodeErrors(t *testing.T) {
	if !Available {
		t.Skip("built without cgo")
	}
	d, err := NewDecoder()
	require.NoError(t, err)
	defer d.Close()
	_, err = d.Header([]byte("not a jpeg at all"))
	require.Error(t, err)
	_, err = d.Header(nil)
	require.ErrorContains(t, err, "empty")

	raw := testJPEG(t, 256, 256)
	cut := raw[:len(raw)/2]
	hd, err := d.Header(cut)
	require.NoError(t, err, "the header survives the cut")
	_, _, _, err = d.DecodeRGB(cut, hd, Full, nil)
	require.Error(t, err, "a truncated file is an error, not a grey half-image")
}

func TestEncodeRoundTrip(t *testing.T) {
	if !Available {
		t.Skip("built without cgo")
	}
	e, err := NewEncoder()
	require.NoError(t, err)
	defer e.Close()
	w, h := 40, 24
	pix := bytes.Repeat([]byte{10, 200, 60}, w*h)
	raw, err := e.EncodeRGB(pix, w, h, 95)
	require.NoError(t, err)
	img, err := jpeg.Decode(bytes.NewReader(raw))
	require.NoError(t, err)
	assert.Equal(t, image.Rect(0, 0, w, h), img.Bounds())
	r, g, b, _ := img.At(20, 12).RGBA()
	assert.InDelta(t, 10, float64(r>>8), 3)
	assert.InDelta(t, 200, float64(g>>8), 3)
	assert.InDelta(t, 60, float64(b>>8), 3)
	_, err = e.EncodeRGB(pix, w, h, 0)
	require.ErrorContains(t, err, "allowed values are 1-100")
}

func absInt(v int) int {
	if v < 0 {
		return -v
	}
	return v
}

// BenchmarkDecode times a 500×375 fixture-like JPEG at each scale.
func BenchmarkDecode(b *testing.B) {
	raw := testJPEG(b, 500, 375)
	d, err := NewDecoder()
	if err != nil {
		b.Skip(err)
	}
	defer d.Close()
	hd, _ := d.Header(raw)
	var buf []byte
	for _, s := range Scales() {
		if s.Value() > 1 {
			continue
		}
		b.Run(s.String(), func(b *testing.B) {
			for b.Loop() {
				buf, _, _, err = d.DecodeRGB(raw, hd, s, buf)
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
