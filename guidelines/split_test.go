package guidelines

import (
	"go/parser"
	"go/token"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// renderingFiles are the package's only files that render: figures.go
// (what the plots show, drawn by package figure), view.go (the templates'
// view) and report.go (writing the files). The analysis files import
// none of the rendering packages, so analysis and rendering stay apart.
var renderingFiles = []string{"figures.go", "report.go", "view.go"}

func isRenderingImport(path string) bool {
	switch path {
	case "html/template", "text/template", "embed", "image/color", "encoding/base64", "encoding/csv", "os",
		"github.com/robarch/robarch/internal/atomicfile", "github.com/robarch/robarch/guidelines/figure":
		return true
	}
	return strings.HasPrefix(path, "gonum.org/v1/plot")
}

func TestAnalysisFilesDoNotRender(t *testing.T) {
	files, err := filepath.Glob("*.go")
	require.NoError(t, err)
	fs := token.NewFileSet()
	analysis := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") || slices.Contains(renderingFiles, name) {
			continue
		}
		analysis++
		f, err := parser.ParseFile(fs, name, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			assert.False(t, isRenderingImport(path), "%s imports %s: rendering belongs in %v or package figure", name, path, renderingFiles)
		}
	}
	assert.Greater(t, analysis, 5)
}

// Package figure draws whatever it is given and knows nothing of sweeps.
func TestFigurePackageImportsNoRobarch(t *testing.T) {
	files, err := filepath.Glob("figure/*.go")
	require.NoError(t, err)
	require.NotEmpty(t, files)
	fs := token.NewFileSet()
	for _, name := range files {
		f, err := parser.ParseFile(fs, name, nil, parser.ImportsOnly)
		require.NoError(t, err)
		for _, im := range f.Imports {
			path, _ := strconv.Unquote(im.Path.Value)
			assert.False(t, strings.HasPrefix(path, "github.com/robarch/"), "%s imports %s", name, path)
		}
	}
}
