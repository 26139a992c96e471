package sweeprun

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
	"github.com/robarch/robarch/sweep/store"
)

// fakeTrial "trains" for a few epochs, checkpointing each epoch in dir, and
// returns metrics that depend only on the trial, like a seeded real run.
// cancelAfter cancels the whole sweep after that many epochs in total.
type fakeTrial struct {
	epochs      int
	epochsRun   atomic.Int64
	cancelAfter int64
	cancel      context.CancelFunc
	failVariant string
	// panicVariant panics as Net.ForwardT does on a libtorch error.
	panicVariant string
}

func (f *fakeTrial) run(ctx context.Context, t results.Trial, cfg sweep.TrialConfig, dir string) (map[string]float64, error) {
	if t.Variant == f.failVariant {
		return nil, errors.New("loss is NaN at epoch 1 step 3")
	}
	if t.Variant == f.panicVariant {
		panic("forward: libtorch: shape mismatch")
	}
	ckpt := filepath.Join(dir, "epoch")
	done := 0
	if b, err := os.ReadFile(ckpt); err == nil {
		done, _ = strconv.Atoi(string(b))
	}
	for e := done; e < f.epochs; e++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if err := os.WriteFile(ckpt, []byte(strconv.Itoa(e+1)), 0o644); err != nil {
			return nil, err
		}
		if n := f.epochsRun.Add(1); f.cancel != nil && n == f.cancelAfter {
			f.cancel()
		}
	}
	score := float64(len(t.Variant)%7)/10 + float64(t.Seed)/100
	return map[string]float64{results.CleanAcc: 0.5 + score, results.PGDAcc: score}, nil
}

func planForTest(t *testing.T) (*sweep.File, *sweep.Plan) {
	f, err := sweep.LoadFile("fashion-mnist-micro")
	require.NoError(t, err)
	// A fixed list: these tests are about the runner, not seed rounds.
	f.Seeds = study.Seeds{List: []int64{0, 1}}
	p, err := sweep.MakePlan(f)
	require.NoError(t, err)
	return f, p
}

func openStore(t *testing.T) store.Store {
	s, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "results.db"))
	require.NoError(t, err)
	t.Cleanup(func() { s.Close() })
	return s
}

func rows(t *testing.T, s store.Store, sweep string) map[string]map[string]float64 {
	trials, err := s.Trials(context.Background(), sweep)
	require.NoError(t, err)
	out := map[string]map[string]float64{}
	for _, tr := range trials {
		require.Equal(t, results.StatusDone, tr.Status, tr.Key())
		out[tr.Key()] = tr.Metrics
	}
	return out
}

func TestRunnerRunsEveryTrialOnce(t *testing.T) {
	ctx := context.Background()
	f, p := planForTest(t)
	s := openStore(t)
	n, err := Enqueue(ctx, s, p, f)
	require.NoError(t, err)
	require.Equal(t, len(p.Feasible())*len(f.Seeds.Order()), n)

	fake := &fakeTrial{epochs: 3}
	r := &Runner{Store: s, Run: fake.run, WorkDir: t.TempDir(), Lease: time.Minute, Env: map[string]string{"host": "test"}}
	st, err := r.Work(ctx, f.Name)
	require.NoError(t, err)
	assert.Equal(t, n, st.Done)
	assert.Equal(t, int64(3*n), fake.epochsRun.Load())
	got := rows(t, s, f.Name)
	assert.Len(t, got, n)

	again, err := Enqueue(ctx, s, p, f)
	require.NoError(t, err)
	assert.Zero(t, again, "re-planning adds nothing")
	st, err = r.Work(ctx, f.Name)
	require.NoError(t, err)
	assert.Zero(t, st.Done, "finished trials are skipped")
}

func TestRunnerResumesAnInterruptedSweepToTheSameRows(t *testing.T) {
	f, p := planForTest(t)

	straight := openStore(t)
	_, err := Enqueue(context.Background(), straight, p, f)
	require.NoError(t, err)
	_, err = (&Runner{Store: straight, Run: (&fakeTrial{epochs: 3}).run, WorkDir: t.TempDir()}).Work(context.Background(), f.Name)
	require.NoError(t, err)

	s := openStore(t)
	_, err = Enqueue(context.Background(), s, p, f)
	require.NoError(t, err)
	work := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	fake := &fakeTrial{epochs: 3, cancelAfter: 7, cancel: cancel}
	_, err = (&Runner{Store: s, Run: fake.run, WorkDir: work}).Work(ctx, f.Name)
	require.ErrorIs(t, err, context.Canceled)
	c, err := s.Counts(context.Background(), f.Name)
	require.NoError(t, err)
	assert.Equal(t, 2, c.Done, "two whole trials before the interrupt")
	assert.Zero(t, c.Running, "the interrupted trial was handed back")

	resumed := &fakeTrial{epochs: 3}
	_, err = (&Runner{Store: s, Run: resumed.run, WorkDir: work}).Work(context.Background(), f.Name)
	require.NoError(t, err)
	total := int64(3 * c.Total())
	assert.Equal(t, total-7, resumed.epochsRun.Load(), "no finished epoch is run twice")
	assert.Equal(t, rows(t, straight, f.Name), rows(t, s, f.Name))
}

func TestRunnerRecordsFailures(t *testing.T) {
	ctx := context.Background()
	f, p := planForTest(t)
	s := openStore(t)
	_, err := Enqueue(ctx, s, p, f)
	require.NoError(t, err)
	fake := &fakeTrial{epochs: 1, failVariant: "activation=silu"}
	st, err := (&Runner{Store: s, Run: fake.run, WorkDir: t.TempDir()}).Work(ctx, f.Name)
	require.NoError(t, err)
	assert.Equal(t, len(f.Seeds.Order()), st.Failed)
	failed, err := s.List(ctx, store.Filter{Sweep: f.Name, Status: []results.Status{results.StatusFailed}})
	require.NoError(t, err)
	require.Len(t, failed, len(f.Seeds.Order()))
	assert.Contains(t, failed[0].Error, "NaN at epoch 1 step 3")
}

// A panic in trial code fails that trial alone; the worker runs the rest.
func TestRunnerTurnsATrialPanicIntoAFailedTrial(t *testing.T) {
	ctx := context.Background()
	f, p := planForTest(t)
	s := openStore(t)
	n, err := Enqueue(ctx, s, p, f)
	require.NoError(t, err)
	fake := &fakeTrial{epochs: 1, panicVariant: results.BaselineFactor}
	st, err := (&Runner{Store: s, Run: fake.run, WorkDir: t.TempDir()}).Work(ctx, f.Name)
	require.NoError(t, err)
	seeds := len(f.Seeds.Order())
	assert.Equal(t, seeds, st.Failed)
	assert.Equal(t, n-seeds, st.Done)
	failed, err := s.List(ctx, store.Filter{Sweep: f.Name, Status: []results.Status{results.StatusFailed}})
	require.NoError(t, err)
	require.Len(t, failed, seeds)
	assert.Contains(t, failed[0].Error, "trial panicked: forward: libtorch: shape mismatch")
}

// A lease held by a process of this host that is gone is taken over at
// once, however long the lease has left; a live holder's is not.
func TestRunnerReclaimsALeaseOfADeadProcessAtOnce(t *testing.T) {
	ctx := context.Background()
	f, p := planForTest(t)
	s := openStore(t)
	_, err := Enqueue(ctx, s, p, f)
	require.NoError(t, err)
	dead := exec.Command("true")
	require.NoError(t, dead.Run())
	host, err := os.Hostname()
	require.NoError(t, err)
	deadWorker := host + "-" + strconv.Itoa(dead.Process.Pid) + "-12345-beef"
	_, err = s.Claim(ctx, f.Name, deadWorker, time.Hour)
	require.NoError(t, err)
	live, err := s.Claim(ctx, f.Name, store.NewWorkerID(), time.Hour) // this process: alive
	require.NoError(t, err)

	fake := &fakeTrial{epochs: 1}
	st, err := (&Runner{Store: s, Run: fake.run, WorkDir: t.TempDir()}).Work(ctx, f.Name)
	require.NoError(t, err)
	c, err := s.Counts(ctx, f.Name)
	require.NoError(t, err)
	assert.Equal(t, 1, c.Running, "the live holder keeps its trial")
	assert.Equal(t, c.Total()-1, c.Done, "the dead holder's trial ran")
	assert.Equal(t, c.Total()-1, st.Done)
	got, err := s.Get(ctx, live.Key())
	require.NoError(t, err)
	assert.Equal(t, results.StatusRunning, got.Status)
}

// A worker does not stop while another live worker holds a trial: it says
// which trial it waits for, and takes the trial over when its lease ends.
// With Wait off it stops at once, saying the sweep is not finished.
func TestRunnerWaitsForTrialsHeldElsewhere(t *testing.T) {
	ctx := context.Background()
	for _, wait := range []bool{true, false} {
		f, p := planForTest(t)
		s := openStore(t)
		_, err := Enqueue(ctx, s, p, f)
		require.NoError(t, err)
		other, err := s.Claim(ctx, f.Name, "elsewhere-1-2-abcd", 2*time.Second) // another host: never "dead"
		require.NoError(t, err)
		var logs bytes.Buffer
		r := &Runner{Store: s, Run: (&fakeTrial{epochs: 1}).run, WorkDir: t.TempDir(), Wait: wait,
			Lease: 300 * time.Millisecond, WaitLogEvery: time.Millisecond, Log: slog.New(slog.NewTextHandler(&logs, nil))}
		_, err = r.Work(ctx, f.Name)
		require.NoError(t, err)
		got, err := s.Get(ctx, other.Key())
		require.NoError(t, err)
		if wait {
			assert.Equal(t, results.StatusDone, got.Status, "taken over after its lease expired")
			assert.Contains(t, logs.String(), "waiting for a trial held by another worker")
			assert.Contains(t, logs.String(), "worker=elsewhere-1-2-abcd")
			assert.Contains(t, logs.String(), "lease_expires_in=")
		} else {
			assert.Equal(t, results.StatusRunning, got.Status)
			assert.Contains(t, logs.String(), "the sweep is not finished")
		}
	}
}
