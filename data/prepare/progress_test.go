package prepare

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSourceDir(t *testing.T) {
	dir, err := SourceDir("imagefolder:/data/imagenet")
	require.NoError(t, err)
	assert.Equal(t, "/data/imagenet", dir)
	for _, bad := range []string{"imagefolder:", "cifar10", "/data/imagenet"} {
		_, err := SourceDir(bad)
		assert.ErrorContains(t, err, "allowed form is imagefolder:DIR", bad)
	}
}

// Without a bar: the first report and the last are logged, those in
// between only every ten seconds; with one, the bar is drawn on w and
// finish ends its line.
func TestReporter(t *testing.T) {
	var logged bytes.Buffer
	restore := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&logged, nil)))
	t.Cleanup(func() { slog.SetDefault(restore) })

	var w bytes.Buffer
	report, finish := Reporter(&w, false)
	report(Stats{Total: 3, Resized: 1})
	report(Stats{Total: 3, Resized: 1, Copied: 1})
	report(Stats{Total: 3, Resized: 1, Copied: 1, Skipped: 1})
	finish()
	assert.Empty(t, w.String())
	lines := strings.Split(strings.TrimSpace(logged.String()), "\n")
	require.Len(t, lines, 2, logged.String())
	assert.Contains(t, lines[0], "done=1 total=3")
	assert.Contains(t, lines[1], "done=3 total=3 resized=1 copied=1 skipped=1")

	logged.Reset()
	report, finish = Reporter(&w, true)
	report(Stats{Total: 2, Copied: 2})
	finish()
	assert.Empty(t, logged.String())
	assert.Contains(t, w.String(), "prepare")
	assert.Contains(t, w.String(), "2/2")
	assert.True(t, strings.HasSuffix(w.String(), "\n"))
}
