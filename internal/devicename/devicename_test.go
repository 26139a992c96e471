package devicename

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Name
	}{
		{"", Name{}}, {"cpu", Name{}}, {" CPU ", Name{}},
		{"cuda", Name{CUDA: true}}, {"cuda:0", Name{CUDA: true}}, {"CUDA:3", Name{CUDA: true, Index: 3}},
	} {
		got, err := Parse(tc.in)
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, tc.in)
	}
	assert.Equal(t, "cuda:3", Name{CUDA: true, Index: 3}.String())
	for _, bad := range []struct{ in, want string }{
		{"gpu", "want cpu, cuda or cuda:N"},
		{"cuda:", "with N >= 0"},
		{"cuda:-1", "with N >= 0"},
		{"cuda:01", "with N >= 0"},
		{"cuda:x", "with N >= 0"},
	} {
		_, err := Parse(bad.in)
		assert.ErrorContains(t, err, bad.want, bad.in)
	}
}
