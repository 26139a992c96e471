package doctor

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestBLASIn(t *testing.T) {
	line := func(path string) string { return "7f00-7f01 r-xp 00000000 08:01 42 " + path + "\n" }
	for _, tc := range []struct {
		name, maps, want string
	}{
		{"none", line("/usr/lib/libc.so.6") + "7f00-7f01 rw-p 00000000 00:00 0\n", "none loaded (libtorch uses its own kernels or MKL statically)"},
		{"openblas, once", line("/nonexistent/libopenblas.so.0") + line("/nonexistent/libopenblas.so.0"), "/nonexistent/libopenblas.so.0"},
		{"sorted", line("/x/libmkl_core.so") + line("/a/libblas.so.3"), "/a/libblas.so.3, /x/libmkl_core.so"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.Equal(t, tc.want, blasIn(strings.NewReader(tc.maps)))
		})
	}
}

func TestWrite(t *testing.T) {
	facts := []Fact{{"libtorch", "2.5.1"}, {"matmul 1024²", "80.0 GFLOP/s"}}
	for _, tc := range []struct {
		name     string
		problems []string
		want     string
	}{
		{"ok", nil, "libtorch        2.5.1\nmatmul 1024²    80.0 GFLOP/s\nok\n"},
		{"problems", []string{"a", "b"}, "libtorch        2.5.1\nmatmul 1024²    80.0 GFLOP/s\nPROBLEM: a\nPROBLEM: b\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var b strings.Builder
			Report{Facts: facts, Problems: tc.problems}.Write(&b)
			assert.Equal(t, tc.want, b.String())
		})
	}
}

func TestCheck(t *testing.T) {
	r, err := Check(1)
	require.NoError(t, err)
	var names []string
	for _, f := range r.Facts {
		names = append(names, f.Name)
		assert.NotEmpty(t, f.Value, f.Name)
	}
	assert.Equal(t, []string{"libtorch", "libtorch build", "devices", "threads", "BLAS", "malloc", "Go sysmon", "matmul 1024²",
		"precision auto", "gotch"}, names)
}
