package structdoc

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestComments(t *testing.T) {
	src := `package p

// Alone is a struct declared on its own.
type Alone struct {
	// A has a doc comment
	// over two lines.
	A int
	B, C string // share a line comment
	d    bool
}

type (
	// Grouped is one of a group.
	Grouped struct{ E int }
	NotAStruct int
)
`
	path := filepath.Join(t.TempDir(), "p.go")
	require.NoError(t, os.WriteFile(path, []byte(src), 0o644))
	got, err := Comments(path)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{
		"Alone":     "Alone is a struct declared on its own.\n",
		"Alone.A":   "A has a doc comment over two lines.",
		"Alone.B":   "share a line comment",
		"Alone.C":   "share a line comment",
		"Alone.d":   "",
		"Grouped":   "Grouped is one of a group.\n",
		"Grouped.E": "",
	}, got)

	_, err = Comments(filepath.Join(t.TempDir(), "missing.go"))
	assert.Error(t, err)
}
