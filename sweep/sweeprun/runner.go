// Package sweeprun runs a sweep's trials: it enqueues a plan in a store
// (package sweep/store), claims trials with leases, executes each one
// (build, train, attack, record) and starts an adaptive sweep's next seed
// rounds; a failing trial fails alone. What a sweep is (file, plan,
// factors) is package sweep's.
package sweeprun

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/sweep"
	"github.com/robarch/robarch/sweep/store"
)

// TrialFunc runs one trial in dir (its own folder, kept across restarts so
// the trial resumes from its last checkpoint) and returns its metrics.
// It must return promptly with ctx's error when ctx is cancelled.
type TrialFunc func(ctx context.Context, t results.Trial, cfg sweep.TrialConfig, dir string) (map[string]float64, error)

// Runner claims a sweep's trials from a store and runs them one at a time.
type Runner struct {
	Store   store.Store
	Run     TrialFunc
	WorkDir string        // trial folders live in WorkDir/<sweep>/<variant>/seed-<n>
	Worker  string        // lease holder name; default store.NewWorkerID()
	Lease   time.Duration // default 2 minutes, renewed every third of it
	// Wait keeps a worker polling while other workers hold running trials,
	// so it can take over any whose lease expires; without it the worker
	// stops when nothing is pending.
	Wait bool
	// WaitLogEvery is how often a waiting worker logs the trials it waits
	// for (default a minute).
	WaitLogEvery time.Duration
	Env          map[string]string // recorded with every finished trial
	Log          *slog.Logger
	// OnProgress, if set, is called when a trial starts and when it ends,
	// with the sweep's counts (a progress bar); log lines are written
	// regardless.
	OnProgress func(Progress)

	crowdWarned bool // said once that the store has more workers than it serves well
}

// Progress is where a sweep stands, as OnProgress sees it.
type Progress struct {
	Counts  store.Counts
	Worker  Stats          // this worker's trials so far
	Elapsed time.Duration  // since this worker started
	ETA     time.Duration  // from this worker's finished trials; 0 when unknown
	Current *results.Trial // the trial starting now; nil when one has ended
}

// Stats summarise a Work call.
type Stats struct {
	Done, Failed int
	Seconds      float64
}

// Enqueue adds the plan's trials to the store; trials already there keep
// their state, so re-running a sweep resumes it.
func Enqueue(ctx context.Context, s store.Store, p *sweep.Plan, f *sweep.File) (int, error) {
	trials, err := p.Trials(f)
	if err != nil {
		return 0, err
	}
	return s.AddTrials(ctx, trials)
}

// TrialDir is where a trial's checkpoints live.
func TrialDir(workDir string, t results.Trial) string {
	return filepath.Join(workDir, t.Sweep, t.Variant, "seed-"+strconv.FormatInt(t.Seed, 10))
}

// Work runs trials of sweep until none is left or ctx is cancelled. A
// trial interrupted by ctx is handed back (Release) to resume later from
// its checkpoint; a trial that errors is marked failed with the error.
func (r *Runner) Work(ctx context.Context, sweep string) (Stats, error) {
	log := r.Log
	if log == nil {
		log = slog.Default()
	}
	if r.Worker == "" {
		r.Worker = store.NewWorkerID()
	}
	if r.Lease == 0 {
		r.Lease = 2 * time.Minute
	}
	// Every trial's torch work on one OS thread: libgomp keeps a thread
	// pool for each thread that calls into it, and beyond one OpenMP
	// thread per core every barrier sleeps instead of spinning
	// (docs/gotch.md). The goroutine would otherwise be free to change
	// threads between trials (model building happens before train.Run
	// locks).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if r.WaitLogEvery == 0 {
		r.WaitLogEvery = time.Minute
	}
	var st Stats
	start := time.Now()
	var lastWaitLog time.Time
	for ctx.Err() == nil {
		if err := r.reclaimDead(ctx, sweep, log); err != nil {
			return st, err
		}
		t, err := r.Store.Claim(ctx, sweep, r.Worker, r.Lease)
		if errors.Is(err, store.ErrNoTrial) {
			c, cerr := r.Store.Counts(ctx, sweep)
			if cerr != nil {
				return st, cerr
			}
			if c.Running == 0 {
				n, err := r.nextRounds(ctx, sweep, log)
				if err != nil {
					return st, err
				}
				if n > 0 {
					continue
				}
			}
			if !r.Wait || c.Running == 0 {
				if c.Running > 0 {
					log.Warn("stopping while other workers still run trials (--no-wait); the sweep is not finished", "running", c.Running)
				}
				break
			}
			if time.Since(lastWaitLog) >= r.WaitLogEvery {
				lastWaitLog = time.Now()
				r.logWaiting(ctx, sweep, log)
			}
			select {
			case <-ctx.Done():
			case <-time.After(min(r.Lease/3, 5*time.Second)):
			}
			continue
		}
		if err != nil {
			return st, err
		}
		r.progress(ctx, sweep, st, start, t)
		ok, err := r.runOne(ctx, log, *t)
		if err != nil {
			return st, err
		}
		if ok {
			st.Done++
		} else if ctx.Err() == nil {
			st.Failed++
		}
		r.logProgress(ctx, log, sweep, st, start)
		r.progress(ctx, sweep, st, start, nil)
	}
	st.Seconds = time.Since(start).Seconds()
	return st, ctx.Err()
}

// nextRounds calls NextRound for the sweep, or for every sweep in the
// store when the worker serves any.
func (r *Runner) nextRounds(ctx context.Context, sweep string, log *slog.Logger) (int, error) {
	names := []string{sweep}
	if sweep == "" {
		var err error
		if names, err = r.Store.Sweeps(ctx); err != nil {
			return 0, err
		}
	}
	total := 0
	for _, name := range names {
		n, err := NextRound(ctx, r.Store, name, log)
		if err != nil {
			return total, err
		}
		total += n
	}
	return total, nil
}

// runOne runs a claimed trial under a heartbeat. It reports whether the
// trial finished; an error means the store itself failed.
func (r *Runner) runOne(ctx context.Context, log *slog.Logger, t results.Trial) (bool, error) {
	log = log.With("trial", t.Key())
	cfg, err := sweep.DecodeTrialConfig(t)
	if err != nil {
		return false, r.Store.Fail(ctx, t.Key(), r.Worker, err)
	}
	dir := TrialDir(r.WorkDir, t)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return false, fmt.Errorf("trial folder: %w", err)
	}
	trialCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go r.heartbeat(trialCtx, cancel, log, t.Key())

	log.Info("trial started", "factor", t.Factor, "level", t.Level, "seed", t.Seed, "params", t.Params, "attempt", t.Attempts)
	started := time.Now()
	metrics, runErr := r.safeRun(trialCtx, t, cfg, dir)
	cause := context.Cause(trialCtx)
	cancel(nil)

	// Store calls below use a fresh context: the trial's may be cancelled,
	// and its outcome must still be recorded.
	bg, done := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
	defer done()
	switch {
	case errors.Is(cause, store.ErrLeaseLost):
		log.Warn("lease lost to another worker; dropping the trial", "err", cause)
		return false, nil
	case runErr != nil && ctx.Err() != nil:
		log.Info("interrupted; trial handed back and resumes from its checkpoint")
		if err := r.Store.Release(bg, t.Key(), r.Worker); err != nil && !errors.Is(err, store.ErrLeaseLost) {
			return false, err
		}
		return false, nil
	case runErr != nil:
		log.Error("trial failed", "err", runErr)
		if err := r.Store.Fail(bg, t.Key(), r.Worker, runErr); err != nil && !errors.Is(err, store.ErrLeaseLost) {
			return false, err
		}
		return false, nil
	}
	t.Metrics = metrics
	t.Env = withTrialEnv(r.Env, cfg)
	t.FinishedAt = time.Now().UTC()
	t.Seconds = time.Since(started).Seconds()
	if err := r.Store.Finish(bg, t); err != nil {
		if errors.Is(err, store.ErrLeaseLost) || errors.Is(err, store.ErrFinished) {
			log.Warn("result not recorded: another worker holds or finished the trial", "err", err)
			return false, nil
		}
		return false, err
	}
	log.Info("trial done", "seconds", fmt.Sprintf("%.0f", t.Seconds), "metrics", metrics)
	return true, nil
}

// safeRun runs the trial and turns a panic in it (Net.ForwardT panics on
// a libtorch error; index errors; nil tensors) into the trial's error, so
// that a failing trial fails alone and the worker goes on.
func (r *Runner) safeRun(ctx context.Context, t results.Trial, cfg sweep.TrialConfig, dir string) (metrics map[string]float64, err error) {
	defer func() {
		if p := recover(); p != nil {
			metrics, err = nil, fmt.Errorf("trial panicked: %v\n%s", p, debug.Stack())
		}
	}()
	return r.Run(ctx, t, cfg, dir)
}

// reclaimDead hands back at once the running trials whose lease holder
// was a process on this host that no longer exists (killed, crashed):
// waiting for its lease to expire would only idle. From the same list of
// leases it warns, once, when the fleet outgrows a SQLite store.
func (r *Runner) reclaimDead(ctx context.Context, sweep string, log *slog.Logger) error {
	leases, err := r.Store.Leases(ctx, sweep)
	if err != nil {
		return err
	}
	if !r.crowdWarned {
		r.crowdWarned = store.WarnCrowded(log, r.Store.Backend(), store.FleetSize(leases, r.Worker))
	}
	for _, l := range leases {
		h, ok := store.ParseHolder(l.Worker)
		if !ok || l.Worker == r.Worker || !h.Dead() {
			continue
		}
		err := r.Store.Release(ctx, l.Key, l.Worker)
		switch {
		case errors.Is(err, store.ErrLeaseLost):
			continue // taken or finished meanwhile
		case err != nil:
			return err
		}
		log.Warn("reclaimed a trial whose worker process is gone", "trial", l.Key, "dead_worker", l.Worker,
			"pid", h.PID, "lease_left", l.Left.Round(time.Second))
	}
	return nil
}

// logWaiting writes one line per trial running elsewhere: which trial,
// which worker, when its lease expires.
func (r *Runner) logWaiting(ctx context.Context, sweep string, log *slog.Logger) {
	leases, err := r.Store.Leases(ctx, sweep)
	if err != nil {
		log.Warn("waiting for trials held by other workers", "err", err)
		return
	}
	for _, l := range leases {
		log.Info("waiting for a trial held by another worker (--no-wait stops instead)", "trial", l.Key, "worker", l.Worker,
			"lease_expires_in", l.Left.Round(time.Second))
	}
}

func (r *Runner) progress(ctx context.Context, sweep string, st Stats, start time.Time, current *results.Trial) {
	if r.OnProgress == nil {
		return
	}
	c, err := r.Store.Counts(ctx, sweep)
	if err != nil {
		return
	}
	p := Progress{Counts: c, Worker: st, Elapsed: time.Since(start), Current: current}
	if n := st.Done + st.Failed; n > 0 {
		p.ETA = p.Elapsed / time.Duration(n) * time.Duration(c.Pending+c.Running)
	}
	r.OnProgress(p)
}

func (r *Runner) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, log *slog.Logger, key string) {
	tick := time.NewTicker(r.Lease / 3)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
			err := r.Store.Heartbeat(ctx, key, r.Worker, r.Lease)
			if errors.Is(err, store.ErrLeaseLost) || errors.Is(err, store.ErrNotFound) {
				cancel(fmt.Errorf("%w: %v", store.ErrLeaseLost, err))
				return
			}
			if err != nil && ctx.Err() == nil {
				log.Warn("heartbeat failed; retrying", "err", err)
			}
		}
	}
}

func (r *Runner) logProgress(ctx context.Context, log *slog.Logger, sweep string, st Stats, start time.Time) {
	c, err := r.Store.Counts(ctx, sweep)
	if err != nil {
		return
	}
	finished := c.Done + c.Failed
	elapsed := time.Since(start)
	args := []any{"finished", fmt.Sprintf("%d/%d", finished, c.Total()), "failed", c.Failed, "this_worker", st.Done + st.Failed,
		"elapsed", elapsed.Round(time.Second)}
	if n := st.Done + st.Failed; n > 0 {
		per := elapsed / time.Duration(n)
		args = append(args, "per_trial", per.Round(time.Second), "eta", (per * time.Duration(c.Pending+c.Running)).Round(time.Second))
	}
	log.Info("sweep progress", args...)
}
