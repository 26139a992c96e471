package statusview

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep/store"
	"github.com/robarch/robarch/sweep/sweeprun"
	"github.com/robarch/robarch/train"
)

type fakeCounter struct {
	counts map[string]store.Counts
	err    error
}

func (f fakeCounter) Sweeps(context.Context) ([]string, error) {
	return []string{"a", "bb"}, nil
}

func (f fakeCounter) Counts(_ context.Context, s string) (store.Counts, error) {
	return f.counts[s], f.err
}

func TestWriteCounts(t *testing.T) {
	var buf bytes.Buffer
	s := fakeCounter{counts: map[string]store.Counts{"a": {Pending: 1, Running: 2, Done: 3, Failed: 4}, "bb": {Done: 12}}}
	require.NoError(t, WriteCounts(context.Background(), &buf, s))
	assert.Equal(t, "SWEEP  PENDING  RUNNING  DONE  FAILED\n"+
		"a      1        2        3     4\n"+
		"bb     0        0        12    0\n", buf.String())

	s.err = errors.New("store gone")
	assert.ErrorContains(t, WriteCounts(context.Background(), &buf, s), "store gone")
}

func TestBar(t *testing.T) {
	assert.Equal(t, "[     ]", bar(0, 0, 5))
	assert.Equal(t, "[==   ]", bar(2, 5, 5))
	assert.Equal(t, "[=====]", bar(9, 5, 5), "capped at full")
	assert.Equal(t, "[     ]", bar(-1, 5, 5))
}

// Log lines scroll above the two lines; each redraw first erases the
// last; Close leaves them on screen.
func TestDisplay(t *testing.T) {
	var buf bytes.Buffer
	d := NewDisplay(&buf)
	_, err := d.Write([]byte("before any progress\n"))
	require.NoError(t, err)
	assert.Equal(t, "before any progress\n", buf.String(), "nothing to draw yet")

	tr := results.Trial{Sweep: "s", Variant: "v", Seed: 1}
	d.Sweep(sweeprun.Progress{Counts: store.Counts{Pending: 2, Done: 1, Failed: 1}, Elapsed: 90 * time.Second, Current: &tr})
	assert.Contains(t, buf.String(), "sweep [===============               ] 2/4 trials, 1 failed, 0 running, elapsed 1m30s, ETA after the first trial\ntrial s/v/1: starting")

	buf.Reset()
	d.Step(tr, train.Progress{Epoch: 1, Epochs: 2, Step: 10, Steps: 10, Loss: 0.5, ImagesPerSec: 100, ETA: time.Minute})
	out := buf.String()
	assert.True(t, strings.HasPrefix(out, "\r\x1b[2K\x1b[1A\r\x1b[2K"), "the old lines erased first: %q", out)
	assert.Contains(t, out, "trial s/v/1: epoch 1/2 [====================] 10/10 loss 0.500 100 img/s ETA 1m0s")

	buf.Reset()
	d.Step(tr, train.Progress{Epoch: 2, Epochs: 2, Step: 1, Steps: 10})
	assert.Empty(t, buf.String(), "a mid-epoch step within 200ms is not drawn")

	buf.Reset()
	_, err = d.Write([]byte("a log line\n"))
	require.NoError(t, err)
	assert.Contains(t, buf.String(), "a log line\nsweep [")

	buf.Reset()
	d.Close()
	assert.Equal(t, "\n", buf.String())
}
