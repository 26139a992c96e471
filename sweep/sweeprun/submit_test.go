package sweeprun

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/sweep"
)

// captureLog sends slog's default logger to a buffer for the test.
func captureLog(t *testing.T) *bytes.Buffer {
	var buf bytes.Buffer
	restore := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(&buf, nil)))
	t.Cleanup(func() { slog.SetDefault(restore) })
	return &buf
}

// A plan Preflight refuses leaves the store empty; a runnable one is
// enqueued once (again: no new trials), infeasible variants named in the
// log.
func TestPlanAndEnqueue(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	f, _ := planForTest(t)

	bad := *f
	bad.Eval.Attacks = []string{"pgd10", "nosuch"}
	_, err := PlanAndEnqueue(ctx, s, &bad, PreflightOptions{})
	require.ErrorContains(t, err, "eval.attacks[1]")
	c, err := s.Counts(ctx, f.Name)
	require.NoError(t, err)
	assert.Zero(t, c.Total(), "nothing enqueued before the plan is known to run")

	log := captureLog(t)
	f.Tolerance = 1e-9 // no variant can hit the budget exactly
	p, err := PlanAndEnqueue(ctx, s, f, PreflightOptions{})
	require.NoError(t, err)
	c, err = s.Counts(ctx, f.Name)
	require.NoError(t, err)
	assert.Equal(t, len(p.Feasible())*2, c.Pending)
	for _, v := range p.Variants {
		if !v.Feasible {
			assert.Contains(t, log.String(), fmt.Sprintf("variant left out: does not fit the budget\" variant=%q", v.Name))
		}
	}
	assert.Contains(t, log.String(), "sweep enqueued")

	log.Reset()
	_, err = PlanAndEnqueue(ctx, s, f, PreflightOptions{})
	require.NoError(t, err)
	assert.Contains(t, log.String(), "new_trials=0")
}

// The training precision is logged with its reason, with a warning where
// this CPU only emulates it; a bad device is left to Preflight.
func TestLogTrainPrecision(t *testing.T) {
	f, err := sweep.Load("fashion-mnist-micro", map[string]any{"train.precision": "bf16", "device": "cpu"})
	require.NoError(t, err)
	log := captureLog(t)
	LogTrainPrecision(f)
	assert.Contains(t, log.String(), "training precision")
	assert.Contains(t, log.String(), "precision=bf16")
	assert.Equal(t, !amp.DetectCPU().CPUBF16, bytes.Contains(log.Bytes(), []byte("level=WARN")), log.String())

	log.Reset()
	f.Device = "tpu"
	LogTrainPrecision(f)
	assert.Empty(t, log.String())
}
