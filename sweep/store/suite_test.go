package store

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/robarch/robarch/internal/pgtest"
	"github.com/robarch/robarch/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// newDSN gives each subtest the address of a fresh, empty store.
type newDSN func(t *testing.T) string

func sqliteDSN(t *testing.T) string { return filepath.Join(t.TempDir(), "results.db") }

func postgresDSN(c *pgtest.Cluster) newDSN {
	return func(t *testing.T) string { return c.NewDatabase(t) }
}

func TestSQLiteStore(t *testing.T) {
	runStoreSuite(t, sqliteDSN)
}

func TestPostgresStore(t *testing.T) {
	runStoreSuite(t, postgresDSN(pgtest.Start(t)))
}

func openStore(t *testing.T, dsn string) Store {
	t.Helper()
	s, err := Open(context.Background(), dsn)
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// plan makes n trials of one sweep, variants v00, v01, ... with seed 1.
func plan(sweep string, n int) []results.Trial {
	out := make([]results.Trial, n)
	for i := range out {
		out[i] = results.Trial{
			Sweep: sweep, Variant: fmt.Sprintf("v%02d", i), Factor: "kernel", Level: fmt.Sprint(3 + 2*i), Seed: 1,
			Params: 1_000_000 + int64(i), MACs: 50_000_000 + int64(i), WidthDepthRatio: 1.5 + float64(i)/8,
		}
	}
	return out
}

func keys(ts []results.Trial) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.Key()
	}
	return out
}

func mustClaim(t *testing.T, s Store, sweep, worker string, lease time.Duration) *results.Trial {
	t.Helper()
	tr, err := s.Claim(context.Background(), sweep, worker, lease)
	require.NoError(t, err)
	require.NotNil(t, tr)
	return tr
}

// runStoreSuite is the behaviour both backends must share.
func runStoreSuite(t *testing.T, dsn newDSN) {
	ctx := context.Background()
	open := func(t *testing.T) Store { return openStore(t, dsn(t)) }

	t.Run("schema is versioned", func(t *testing.T) {
		addr := dsn(t)
		s := openStore(t, addr)
		_, err := s.AddTrials(ctx, plan("s", 2))
		require.NoError(t, err)
		require.NoError(t, s.Close())

		// Reopening migrates nothing and keeps the data.
		s = openStore(t, addr)
		c, err := s.Counts(ctx, "s")
		require.NoError(t, err)
		assert.Equal(t, 2, c.Pending)
		db := s.(*sqlStore).db
		var versions []int
		rows, err := db.QueryContext(ctx, "SELECT version FROM schema_migrations ORDER BY version")
		require.NoError(t, err)
		for rows.Next() {
			var v int
			require.NoError(t, rows.Scan(&v))
			versions = append(versions, v)
		}
		require.NoError(t, rows.Err())
		want := make([]int, SchemaVersion())
		for i := range want {
			want[i] = i + 1
		}
		assert.Equal(t, want, versions)

		// A store written by a newer robarch is refused, not damaged.
		_, err = db.ExecContext(ctx, s.(*sqlStore).d.sql("INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, 'future', '')"), SchemaVersion()+1)
		require.NoError(t, err)
		require.NoError(t, s.Close())
		_, err = Open(ctx, addr)
		require.ErrorIs(t, err, ErrSchemaTooNew)
		assert.ErrorContains(t, err, fmt.Sprintf("schema version %d, this robarch knows up to %d", SchemaVersion()+1, SchemaVersion()))
	})

	t.Run("concurrent opens migrate once", func(t *testing.T) {
		addr := dsn(t)
		var wg sync.WaitGroup
		errs := make([]error, 4)
		for i := range errs {
			wg.Add(1)
			go func() {
				defer wg.Done()
				s, err := Open(ctx, addr)
				if err == nil {
					err = s.Close()
				}
				errs[i] = err
			}()
		}
		wg.Wait()
		for _, err := range errs {
			require.NoError(t, err)
		}
	})

	t.Run("add is idempotent and never erases results", func(t *testing.T) {
		s := open(t)
		n, err := s.AddTrials(ctx, plan("s", 3))
		require.NoError(t, err)
		assert.Equal(t, 3, n)

		tr := mustClaim(t, s, "s", "w1", time.Minute)
		tr.Metrics = map[string]float64{results.CleanAcc: 0.8}
		require.NoError(t, s.Finish(ctx, *tr))

		// Re-planning with changed descriptions and a claimed status adds
		// only the new trial and changes none of the old ones.
		again := plan("s", 4)
		for i := range again {
			again[i].Params = 7
			again[i].Status = results.StatusDone
		}
		n, err = s.AddTrials(ctx, again)
		require.NoError(t, err)
		assert.Equal(t, 1, n)

		got, err := s.Trials(ctx, "s")
		require.NoError(t, err)
		require.Len(t, got, 4)
		assert.Equal(t, results.StatusDone, got[0].Status)
		assert.Equal(t, map[string]float64{results.CleanAcc: 0.8}, got[0].Metrics)
		assert.Equal(t, int64(1_000_000), got[0].Params)
		assert.Equal(t, results.StatusPending, got[1].Status)
		assert.Equal(t, int64(1_000_001), got[1].Params)
		assert.Equal(t, results.StatusPending, got[3].Status, "new trials start pending whatever the caller says")
		assert.Equal(t, int64(7), got[3].Params)
	})

	t.Run("add rejects trials without a usable key", func(t *testing.T) {
		s := open(t)
		tests := []struct {
			name  string
			trial results.Trial
			want  string
		}{
			{"empty sweep", results.Trial{Variant: "v"}, "sweep is empty"},
			{"slash in sweep", results.Trial{Sweep: "a/b", Variant: "v"}, "must not contain '/'"},
			{"empty variant", results.Trial{Sweep: "s"}, "variant is empty"},
			{"bad spec json", results.Trial{Sweep: "s", Variant: "v", Spec: json.RawMessage("{")}, "spec is not valid JSON"},
		}
		for _, tc := range tests {
			t.Run(tc.name, func(t *testing.T) {
				good := plan("s", 1)[0]
				_, err := s.AddTrials(ctx, []results.Trial{good, tc.trial})
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.want)
			})
		}
		c, err := s.Counts(ctx, "")
		require.NoError(t, err)
		assert.Equal(t, 0, c.Total(), "a rejected batch adds nothing")
	})

	t.Run("claims in plan order and by sweep", func(t *testing.T) {
		s := open(t)
		a := plan("a", 3)
		a[0].Variant, a[1].Variant, a[2].Variant = "zeta", "alpha", "mid" // plan order, not name order
		_, err := s.AddTrials(ctx, a)
		require.NoError(t, err)
		_, err = s.AddTrials(ctx, plan("b", 2))
		require.NoError(t, err)

		first := mustClaim(t, s, "b", "w1", time.Minute)
		assert.Equal(t, "b/v00/1", first.Key())
		assert.Equal(t, results.StatusRunning, first.Status)
		assert.Equal(t, "w1", first.Worker)
		assert.Equal(t, 1, first.Attempts)
		assert.WithinDuration(t, time.Now(), first.StartedAt, 5*time.Second)
		assert.Equal(t, time.UTC, first.StartedAt.Location())

		var order []string
		for range 3 {
			order = append(order, mustClaim(t, s, "a", "w1", time.Minute).Variant)
		}
		assert.Equal(t, []string{"zeta", "alpha", "mid"}, order)
		_, err = s.Claim(ctx, "a", "w1", time.Minute)
		assert.ErrorIs(t, err, ErrNoTrial)

		// An empty sweep name claims from any sweep.
		fromAny := mustClaim(t, s, "", "w2", time.Minute)
		assert.Equal(t, "b/v01/1", fromAny.Key())
		_, err = s.Claim(ctx, "", "w2", time.Minute)
		assert.ErrorIs(t, err, ErrNoTrial)
	})

	t.Run("claim validates its arguments", func(t *testing.T) {
		s := open(t)
		_, err := s.Claim(ctx, "s", "", time.Minute)
		assert.ErrorContains(t, err, "worker name is empty")
		_, err = s.Claim(ctx, "s", "w", 0)
		assert.ErrorContains(t, err, "lease 0s: must be at least 1ms")
	})

	t.Run("a live lease is not taken over", func(t *testing.T) {
		s := open(t)
		_, err := s.AddTrials(ctx, plan("s", 1))
		require.NoError(t, err)
		mustClaim(t, s, "s", "w1", time.Minute)
		_, err = s.Claim(ctx, "s", "w2", time.Minute)
		assert.ErrorIs(t, err, ErrNoTrial)
	})

	t.Run("an expired lease is re-queued and the old holder is locked out", func(t *testing.T) {
		s := open(t)
		_, err := s.AddTrials(ctx, plan("s", 1))
		require.NoError(t, err)
		old := mustClaim(t, s, "s", "w1", 100*time.Millisecond)
		time.Sleep(250 * time.Millisecond)

		taken := mustClaim(t, s, "s", "w2", time.Minute)
		assert.Equal(t, old.Key(), taken.Key())
		assert.Equal(t, "w2", taken.Worker)
		assert.Equal(t, 2, taken.Attempts)

		err = s.Heartbeat(ctx, old.Key(), "w1", time.Minute)
		assert.ErrorIs(t, err, ErrLeaseLost)
		assert.ErrorContains(t, err, "now held by w2")
		old.Metrics = map[string]float64{results.CleanAcc: 0.1}
		assert.ErrorIs(t, s.Finish(ctx, *old), ErrLeaseLost)
		assert.ErrorIs(t, s.Fail(ctx, old.Key(), "w1", errors.New("late")), ErrLeaseLost)

		taken.Metrics = map[string]float64{results.CleanAcc: 0.9}
		require.NoError(t, s.Finish(ctx, *taken))
		got, err := s.Get(ctx, taken.Key())
		require.NoError(t, err)
		assert.Equal(t, results.StatusDone, got.Status)
		assert.Equal(t, 0.9, got.Metrics[results.CleanAcc])
		assert.Equal(t, "w2", got.Worker)
	})

	t.Run("heartbeat extends the lease", func(t *testing.T) {
		s := open(t)
		_, err := s.AddTrials(ctx, plan("s", 1))
		require.NoError(t, err)
		tr := mustClaim(t, s, "s", "w1", 100*time.Millisecond)
		require.NoError(t, s.Heartbeat(ctx, tr.Key(), "w1", time.Minute))
		time.Sleep(250 * time.Millisecond)
		_, err = s.Claim(ctx, "s", "w2", time.Minute)
		assert.ErrorIs(t, err, ErrNoTrial, "the heartbeat's lease still runs")

		require.NoError(t, s.Heartbeat(ctx, tr.Key(), "w1", time.Millisecond))
		time.Sleep(50 * time.Millisecond)
		assert.Equal(t, tr.Key(), mustClaim(t, s, "s", "w2", time.Minute).Key())

		assert.ErrorIs(t, s.Heartbeat(ctx, "s/nope/1", "w1", time.Minute), ErrNotFound)
		assert.ErrorContains(t, s.Heartbeat(ctx, tr.Key(), "w2", 0), "at least 1ms")
	})

	t.Run("release hands the trial back at once", func(t *testing.T) {
		s := open(t)
		_, err := s.AddTrials(ctx, plan("s", 1))
		require.NoError(t, err)
		tr := mustClaim(t, s, "s", "w1", time.Hour)
		assert.ErrorIs(t, s.Release(ctx, tr.Key(), "w2"), ErrLeaseLost, "only the holder releases")
		require.NoError(t, s.Release(ctx, tr.Key(), "w1"))
		again := mustClaim(t, s, "s", "w2", time.Hour)
		assert.Equal(t, tr.Key(), again.Key(), "claimable without waiting for the hour-long lease")
		assert.ErrorIs(t, s.Release(ctx, tr.Key(), "w1"), ErrLeaseLost)
	})

	t.Run("finish is accepted exactly once from the lease holder", func(t *testing.T) {
		s := open(t)
		_, err := s.AddTrials(ctx, plan("s", 2))
		require.NoError(t, err)
		tr := mustClaim(t, s, "s", "w1", time.Minute)

		wrong := *tr
		wrong.Worker = "w2"
		assert.ErrorIs(t, s.Finish(ctx, wrong), ErrLeaseLost)
		noWorker := *tr
		noWorker.Worker = ""
		assert.ErrorContains(t, s.Finish(ctx, noWorker), "worker is empty")
		pending := plan("s", 2)[1]
		pending.Worker = "w1"
		assert.ErrorIs(t, s.Finish(ctx, pending), ErrLeaseLost, "a pending trial is held by nobody")
		unknown := results.Trial{Sweep: "s", Variant: "nope", Seed: 1, Worker: "w1"}
		assert.ErrorIs(t, s.Finish(ctx, unknown), ErrNotFound)

		tr.Metrics = map[string]float64{results.CleanAcc: 0.5}
		require.NoError(t, s.Finish(ctx, *tr))
		tr.Metrics = map[string]float64{results.CleanAcc: 0.0}
		assert.ErrorIs(t, s.Finish(ctx, *tr), ErrFinished)
		assert.ErrorIs(t, s.Fail(ctx, tr.Key(), "w1", errors.New("x")), ErrFinished)
		assert.ErrorIs(t, s.Heartbeat(ctx, tr.Key(), "w1", time.Minute), ErrFinished)

		got, err := s.Get(ctx, tr.Key())
		require.NoError(t, err)
		assert.Equal(t, 0.5, got.Metrics[results.CleanAcc], "the first result stands")
	})

	t.Run("record fields round-trip", func(t *testing.T) {
		s := open(t)
		in := plan("s", 1)[0]
		in.Spec = json.RawMessage(`{"stem":"patchify","depths":[3,4,6,3]}`)
		in.Config = json.RawMessage(`{"epochs":10}`)
		in.Env = map[string]string{"host": "a"}
		_, err := s.AddTrials(ctx, []results.Trial{in})
		require.NoError(t, err)

		tr := mustClaim(t, s, "s", "w1", time.Minute)
		assert.JSONEq(t, string(in.Spec), string(tr.Spec))
		assert.Equal(t, in.Env, tr.Env)
		assert.Equal(t, in.WidthDepthRatio, tr.WidthDepthRatio)

		start := tr.StartedAt
		tr.FinishedAt = start.Add(90 * time.Second)
		tr.Config = json.RawMessage(`{"epochs":10,"resolved":true}`)
		tr.Env = map[string]string{"host": "b", "libtorch": "1.13.1"}
		tr.Metrics = map[string]float64{
			results.CleanAcc: 0.91, results.PGDAcc: 0.52, results.AAAcc: 0.48,
			"train_loss": math.NaN(), "grad_norm": math.Inf(1),
		}
		require.NoError(t, s.Finish(ctx, *tr))

		got, err := s.Get(ctx, tr.Key())
		require.NoError(t, err)
		assert.Equal(t, 90.0, got.Seconds, "seconds derived from start and finish")
		assert.True(t, got.FinishedAt.Equal(tr.FinishedAt), "finished_at %v", got.FinishedAt)
		assert.True(t, got.StartedAt.Equal(start), "started_at %v vs %v", got.StartedAt, start)
		assert.JSONEq(t, `{"epochs":10,"resolved":true}`, string(got.Config))
		assert.JSONEq(t, string(in.Spec), string(got.Spec))
		assert.Equal(t, tr.Env, got.Env)
		assert.Equal(t, 0.52, got.Metrics[results.PGDAcc])
		assert.True(t, math.IsNaN(got.Metrics["train_loss"]))
		assert.True(t, math.IsInf(got.Metrics["grad_norm"], 1))
		assert.Empty(t, got.Error)
	})

	t.Run("failures keep their error and can be re-queued", func(t *testing.T) {
		s := open(t)
		_, err := s.AddTrials(ctx, plan("s", 2))
		require.NoError(t, err)
		tr := mustClaim(t, s, "s", "w1", time.Minute)
		require.NoError(t, s.Fail(ctx, tr.Key(), "w1", errors.New("loss is NaN at epoch 3")))

		got, err := s.Get(ctx, tr.Key())
		require.NoError(t, err)
		assert.Equal(t, results.StatusFailed, got.Status)
		assert.Equal(t, "loss is NaN at epoch 3", got.Error)

		second := mustClaim(t, s, "s", "w1", time.Minute)
		assert.NotEqual(t, tr.Key(), second.Key(), "failed trials are not retried on their own")
		_, err = s.Claim(ctx, "s", "w1", time.Minute)
		assert.ErrorIs(t, err, ErrNoTrial)

		n, err := s.Requeue(ctx, "s", results.StatusFailed)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		retry := mustClaim(t, s, "s", "w2", time.Minute)
		assert.Equal(t, tr.Key(), retry.Key())
		assert.Equal(t, 2, retry.Attempts)
		retry.Metrics = map[string]float64{results.CleanAcc: 0.7}
		require.NoError(t, s.Finish(ctx, *retry))
		got, err = s.Get(ctx, tr.Key())
		require.NoError(t, err)
		assert.Empty(t, got.Error, "a finished retry clears the old error")

		// Re-queueing a running trial locks its holder out.
		n, err = s.Requeue(ctx, "", results.StatusRunning)
		require.NoError(t, err)
		assert.Equal(t, 1, n)
		assert.ErrorIs(t, s.Heartbeat(ctx, second.Key(), "w1", time.Minute), ErrLeaseLost)

		for _, bad := range []results.Status{results.StatusDone, results.StatusPending, "bogus"} {
			_, err = s.Requeue(ctx, "s", bad)
			assert.ErrorContains(t, err, "allowed: failed, running", bad)
		}
		_, err = s.Requeue(ctx, "s")
		assert.ErrorContains(t, err, "no status given")
		c, err := s.Counts(ctx, "s")
		require.NoError(t, err)
		assert.Equal(t, Counts{Pending: 1, Done: 1}, c)
	})

	t.Run("counts, sweeps and filters", func(t *testing.T) {
		s := open(t)
		_, err := s.AddTrials(ctx, plan("beta", 4))
		require.NoError(t, err)
		base := plan("alpha", 1)
		base[0].Factor = results.BaselineFactor
		_, err = s.AddTrials(ctx, base)
		require.NoError(t, err)

		done := mustClaim(t, s, "beta", "w", time.Minute)
		require.NoError(t, s.Finish(ctx, *done))
		failed := mustClaim(t, s, "beta", "w", time.Minute)
		require.NoError(t, s.Fail(ctx, failed.Key(), "w", nil))
		mustClaim(t, s, "beta", "w", time.Minute)

		c, err := s.Counts(ctx, "beta")
		require.NoError(t, err)
		assert.Equal(t, Counts{Pending: 1, Running: 1, Done: 1, Failed: 1}, c)
		assert.False(t, c.Finished())
		c, err = s.Counts(ctx, "")
		require.NoError(t, err)
		assert.Equal(t, 5, c.Total())
		c, err = s.Counts(ctx, "nope")
		require.NoError(t, err)
		assert.Equal(t, Counts{}, c)
		assert.True(t, c.Finished())

		sweeps, err := s.Sweeps(ctx)
		require.NoError(t, err)
		assert.Equal(t, []string{"alpha", "beta"}, sweeps)

		got, err := s.List(ctx, Filter{Status: []results.Status{results.StatusDone, results.StatusFailed}})
		require.NoError(t, err)
		assert.Equal(t, []string{done.Key(), failed.Key()}, keys(got))
		failedOnes, err := s.List(ctx, Filter{Sweep: "beta", Status: []results.Status{results.StatusFailed}})
		require.NoError(t, err)
		require.Len(t, failedOnes, 1)
		assert.Equal(t, "unknown error", failedOnes[0].Error)
		got, err = s.List(ctx, Filter{Factor: results.BaselineFactor})
		require.NoError(t, err)
		assert.Equal(t, []string{"alpha/v00/1"}, keys(got))
		_, err = s.List(ctx, Filter{Status: []results.Status{"finished"}})
		assert.ErrorContains(t, err, `status "finished"; allowed: pending, running, done, failed`)
		_, err = s.Get(ctx, "alpha/nope/1")
		assert.ErrorIs(t, err, ErrNotFound)
	})

	t.Run("concurrent claims never hand out a trial twice", func(t *testing.T) {
		s := open(t)
		const trials, workers = 40, 8
		_, err := s.AddTrials(ctx, plan("s", trials))
		require.NoError(t, err)

		var mu sync.Mutex
		claimedBy := map[string][]string{}
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				name := fmt.Sprintf("w%d", w)
				for {
					tr, err := s.Claim(ctx, "s", name, time.Minute)
					if errors.Is(err, ErrNoTrial) {
						return
					}
					if err != nil {
						errs <- err
						return
					}
					mu.Lock()
					claimedBy[tr.Key()] = append(claimedBy[tr.Key()], name)
					mu.Unlock()
					if err := s.Finish(ctx, *tr); err != nil {
						errs <- err
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			require.NoError(t, err)
		}
		require.Len(t, claimedBy, trials)
		for key, by := range claimedBy {
			assert.Len(t, by, 1, "trial %s claimed by %v", key, by)
		}
		c, err := s.Counts(ctx, "s")
		require.NoError(t, err)
		assert.Equal(t, Counts{Done: trials}, c)
	})

	t.Run("export round trip", func(t *testing.T) {
		s := open(t)
		_, err := s.AddTrials(ctx, plan("s", 3))
		require.NoError(t, err)
		for i, m := range []map[string]float64{
			{results.CleanAcc: 0.9, results.PGDAcc: 0.5, results.AAAcc: 0.45, "zeta": 2, "alpha": 1},
			{results.CleanAcc: 0.8, "alpha": math.NaN()},
		} {
			tr := mustClaim(t, s, "s", "w", time.Minute)
			tr.Metrics = m
			tr.Seconds = float64(10 * (i + 1))
			require.NoError(t, s.Finish(ctx, *tr))
		}
		trials, err := s.Trials(ctx, "s")
		require.NoError(t, err)

		var js bytes.Buffer
		require.NoError(t, Export(&js, FormatJSON, trials))
		back, err := Decode(&js, FormatJSON)
		require.NoError(t, err)
		require.Len(t, back, 3)
		for i := range trials {
			assertSameTrial(t, trials[i], back[i], true)
		}

		var csvBuf bytes.Buffer
		require.NoError(t, Export(&csvBuf, FormatCSV, trials))
		header, _, _ := bytes.Cut(csvBuf.Bytes(), []byte("\n"))
		assert.Equal(t, "sweep,variant,factor,level,seed,params,macs,width_depth_ratio,status,clean_acc,pgd_acc,aa_acc,seconds,alpha,zeta", string(header))
		back, err = Decode(&csvBuf, FormatCSV)
		require.NoError(t, err)
		require.Len(t, back, 3)
		for i := range trials {
			assertSameTrial(t, trials[i], back[i], false)
		}
	})
}

// assertSameTrial compares what an export carries; full adds the fields
// only JSON has.
func assertSameTrial(t *testing.T, want, got results.Trial, full bool) {
	t.Helper()
	assert.Equal(t, want.Key(), got.Key())
	assert.Equal(t, want.Factor, got.Factor)
	assert.Equal(t, want.Level, got.Level)
	assert.Equal(t, want.Params, got.Params)
	assert.Equal(t, want.MACs, got.MACs)
	assert.Equal(t, want.WidthDepthRatio, got.WidthDepthRatio)
	assert.Equal(t, want.Status, got.Status)
	assert.Equal(t, want.Seconds, got.Seconds)
	require.Len(t, got.Metrics, len(want.Metrics), "metrics of %s", want.Key())
	for k, v := range want.Metrics {
		if math.IsNaN(v) {
			assert.True(t, math.IsNaN(got.Metrics[k]), "metric %s of %s", k, want.Key())
			continue
		}
		assert.Equal(t, v, got.Metrics[k], "metric %s of %s", k, want.Key())
	}
	if full {
		assert.Equal(t, want.Worker, got.Worker)
		assert.Equal(t, want.Attempts, got.Attempts)
		assert.True(t, want.StartedAt.Equal(got.StartedAt))
		assert.True(t, want.FinishedAt.Equal(got.FinishedAt))
	}
}
