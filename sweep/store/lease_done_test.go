package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/robarch/robarch/internal/pgtest"
	"github.com/robarch/robarch/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A worker acting on a lease it no longer holds must get ErrLeaseLost
// even when the trial has meanwhile been finished by someone else:
// sweeprun.Runner ignores ErrLeaseLost there and stops on any other error.
// Found by TestStoreLoad: a worker listed a dead holder's lease, another
// worker handed it back, claimed and finished the trial, and the first
// worker's Release then failed with ErrFinished alone, which ended it as
// `robarch sweep worker` would end ("release ...: trial already finished").
func TestLateCallsOnAFinishedTrialAreLeaseLost(t *testing.T) {
	cluster := pgtest.Start(t)
	for _, backend := range []struct {
		name string
		dsn  func(t *testing.T) string
	}{{"sqlite", sqliteDSN}, {"postgres", postgresDSN(cluster)}} {
		t.Run(backend.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, backend.dsn(t))
			_, err := s.AddTrials(ctx, plan("s", 1))
			require.NoError(t, err)
			// "dead" holds the trial; w2 hands it back and finishes it; the
			// late calls below are those of "dead" itself (its lease expired
			// while it was stopped) and of a worker acting on a stale lease list.
			stale := mustClaim(t, s, "s", "dead", time.Hour)
			require.NoError(t, s.Release(ctx, stale.Key(), "dead"))
			taken := mustClaim(t, s, "s", "w2", time.Hour)
			taken.Metrics = map[string]float64{results.CleanAcc: 0.7}
			require.NoError(t, s.Finish(ctx, *taken))

			late := *stale
			late.Metrics = map[string]float64{results.CleanAcc: 0.1}
			for _, c := range []struct {
				op   string
				call func() error
			}{
				{"release", func() error { return s.Release(ctx, stale.Key(), "dead") }},
				{"fail", func() error { return s.Fail(ctx, stale.Key(), "dead", errors.New("late")) }},
				{"heartbeat", func() error { return s.Heartbeat(ctx, stale.Key(), "dead", time.Minute) }},
				{"finish", func() error { return s.Finish(ctx, late) }},
				{"second finish by the holder", func() error { return s.Finish(ctx, *taken) }},
			} {
				err := c.call()
				assert.ErrorIs(t, err, ErrLeaseLost, c.op)
				assert.ErrorIs(t, err, ErrFinished, c.op)
				assert.ErrorContains(t, err, "by w2", c.op)
			}
			got, err := s.Get(ctx, stale.Key())
			require.NoError(t, err)
			assert.Equal(t, results.StatusDone, got.Status)
			assert.Equal(t, 0.7, got.Metrics[results.CleanAcc], "the accepted result stands")
			assert.Equal(t, "w2", got.Worker)
		})
	}
}
