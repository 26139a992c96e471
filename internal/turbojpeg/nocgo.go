//go:build !cgo

package turbojpeg

// Available reports whether libjpeg-turbo is linked in.
const Available = false

// Scales lists the decoder's DCT scaling factors: none without cgo.
func Scales() []Scale { return nil }

// Decoder is a stand-in that fails every call.
type Decoder struct{}

// NewDecoder reports ErrUnavailable.
func NewDecoder() (*Decoder, error) { return nil, ErrUnavailable }

// Close does nothing.
func (d *Decoder) Close() {}

// Header reports ErrUnavailable.
func (d *Decoder) Header([]byte) (Header, error) { return Header{}, ErrUnavailable }

// DecodeRGB reports ErrUnavailable.
func (d *Decoder) DecodeRGB(_ []byte, _ Header, _ Scale, dst []byte) ([]byte, int, int, error) {
	return dst, 0, 0, ErrUnavailable
}

// Encoder is a stand-in that fails every call.
type Encoder struct{}

// NewEncoder reports ErrUnavailable.
func NewEncoder() (*Encoder, error) { return nil, ErrUnavailable }

// Close does nothing.
func (e *Encoder) Close() {}

// EncodeRGB reports ErrUnavailable.
func (e *Encoder) EncodeRGB([]byte, int, int, int) ([]byte, error) { return nil, ErrUnavailable }
