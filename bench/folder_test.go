package bench

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/data/fixturegen"
)

// A small folder through both loaders: every image of every epoch is
// counted on both sides, the summary reads the epochs after the first,
// and the table and JSON writers take the report.
func TestRunFolderWithPeer(t *testing.T) {
	dir := t.TempDir()
	for _, split := range []string{"train", "val"} {
		_, err := fixturegen.Write(context.Background(), dir, fixturegen.Config{Classes: 2, PerClass: 5, Width: 120, Height: 90, Split: split})
		require.NoError(t, err)
	}
	cfg := FolderConfig{Dir: dir, Size: 32, Batch: 4, Workers: 2, Epochs: 2, Threads: 1, Peer: true, Logger: quiet()}
	rep, err := RunFolder(context.Background(), cfg)
	if errors.Is(err, ErrNoTorch) {
		t.Skip(err)
	}
	require.NoError(t, err)
	require.Len(t, rep.Epochs, 4)
	for _, e := range rep.Epochs {
		assert.Equal(t, 10, e.Images, "%s epoch %d", e.Transform, e.Epoch)
		assert.Positive(t, e.ImagesPerS)
		assert.Positive(t, e.PeerImagesPerS)
		assert.InDelta(t, e.ImagesPerS/e.PeerImagesPerS, e.Ratio, 1e-9)
		assert.Positive(t, e.RSSBytes)
	}
	sum := rep.Summary()
	require.Len(t, sum, 2)
	assert.Equal(t, TransformTrain, sum[0].Transform)
	assert.Equal(t, rep.Epochs[1].ImagesPerS, sum[0].ImagesPerS, "one epoch after the first")
	var table, lines bytes.Buffer
	require.NoError(t, WriteFolderTable(&table, rep))
	assert.Contains(t, table.String(), "median*")
	assert.Equal(t, PeerMallocRobarch, rep.PeerMalloc, "the default")
	assert.Contains(t, table.String(), "robarch's malloc settings)")
	require.NoError(t, WriteFolderJSON(&lines, rep))
	assert.Equal(t, 6, bytes.Count(lines.Bytes(), []byte("\n")))
	assert.Equal(t, 2, bytes.Count(lines.Bytes(), []byte(`"peer_malloc":"robarch"`)), "on each summary line")
}

func TestFolderConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		cfg  FolderConfig
		want string
	}{
		{FolderConfig{}, "imagefolder needs a directory"},
		{FolderConfig{Dir: "x", Transforms: []string{"test"}}, `transform "test": allowed values are train, eval`},
		{FolderConfig{Dir: "x", Workers: -1}, "workers -1 must be positive"},
		{FolderConfig{Dir: "x", Decoder: "pil"}, `decoder "pil"`},
		{FolderConfig{Dir: "x", PeerMalloc: PeerMallocDefault}, "peer malloc default: sets the PyTorch peer's allocator, so it needs --peer"},
		{FolderConfig{Dir: "x", Peer: true, PeerMalloc: "tcmalloc"}, `peer malloc "tcmalloc": want robarch`},
	} {
		assert.ErrorContains(t, tc.cfg.Validate(), tc.want)
	}
}
