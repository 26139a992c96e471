package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/robarch/robarch/internal/pgtest"
	"github.com/robarch/robarch/results"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// The store load test: worker processes (this test binary re-executed as
// TestStoreLoadWorker) claim, renew, fail and finish synthetic trials on
// one store while the test kills them with SIGKILL and starts new ones.
// `make test` runs it small; at full size:
//
//	ROBARCH_LOAD_WORKERS=64 ROBARCH_LOAD_TRIALS=10000 ROBARCH_LOAD_LEASE_MS=20000 \
//	  go test ./sweep/store -run 'TestStoreLoad$' -v -timeout 60m
//
// BenchmarkStoreLoad measures claims per second and claim latency with
// b.N trials (docs/reliability.md has the figures):
//
//	go test ./sweep/store -run '^$' -bench 'StoreLoad/sqlite/workers=64$' -benchtime 10000x
const (
	envLoadDSN    = "ROBARCH_LOAD_HELPER_DSN"
	envLoadSweep  = "ROBARCH_LOAD_HELPER_SWEEP"
	envLoadName   = "ROBARCH_LOAD_HELPER_NAME" // empty: NewWorkerID()
	envLoadLease  = "ROBARCH_LOAD_HELPER_LEASE"
	envLoadTrial  = "ROBARCH_LOAD_HELPER_TRIAL"
	envLoadFailN  = "ROBARCH_LOAD_HELPER_FAIL_EVERY"
	envLoadStallN = "ROBARCH_LOAD_HELPER_STALL_EVERY"
	loadPrefix    = "LOAD "
	loadFailCause = "synthetic failure on the first attempt"
)

// loadMetric is the made-up result of a trial: a function of its key, so
// the test can tell a stored result from a lost or mixed-up one.
func loadMetric(key string) float64 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return float64(h.Sum32()%100_000) / 100_000
}

// loadPicks reports whether the trial is one in every n picked for a
// what ("fail", "stall") by its key's hash.
func loadPicks(what, key string, n int) bool {
	if n <= 0 {
		return false
	}
	h := fnv.New32a()
	_, _ = h.Write([]byte(what + "/" + key))
	return h.Sum32()%uint32(n) == 0
}

// TestStoreLoadWorker is not a test: it is the body of a load-test worker
// process. It follows sweeprun.Runner's protocol against the store (hand
// back trials of dead holders on this host, claim, renew, fail or finish)
// with a trial that only sleeps, and reports every step on stdout. It
// waits for a line on stdin before its first claim, so that the parent
// can start all workers at once.
func TestStoreLoadWorker(t *testing.T) {
	dsn := os.Getenv(envLoadDSN)
	if dsn == "" {
		t.Skip("helper process for the store load test")
	}
	os.Exit(loadWorker(dsn))
}

func loadWorker(dsn string) int {
	sweep := os.Getenv(envLoadSweep)
	lease, err1 := time.ParseDuration(os.Getenv(envLoadLease))
	trialTime, err2 := time.ParseDuration(os.Getenv(envLoadTrial))
	failEvery, err3 := strconv.Atoi(os.Getenv(envLoadFailN))
	stallEvery, err4 := strconv.Atoi(os.Getenv(envLoadStallN))
	name := os.Getenv(envLoadName)
	if name == "" {
		name = NewWorkerID()
	}
	out := bufio.NewWriter(os.Stdout)
	say := func(format string, args ...any) {
		fmt.Fprintf(out, loadPrefix+format+"\n", args...)
		_ = out.Flush() // before the next store call: a kill may come at any moment
	}
	fatal := func(op string, err error) int {
		say("error %s %s", op, strings.ReplaceAll(err.Error(), "\n", " "))
		return 3
	}
	if err := errors.Join(err1, err2, err3, err4); err != nil {
		return fatal("env", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Minute)
	defer cancel()
	s, err := Open(ctx, dsn)
	if err != nil {
		return fatal("open", err)
	}
	defer s.Close()
	say("ready %s", name)
	if _, err := bufio.NewReader(os.Stdin).ReadString('\n'); err != nil {
		return fatal("wait-for-start", err)
	}

	for {
		// As sweeprun.Runner.reclaimDead: a dead process's lease on this
		// host is handed back at once rather than left to expire.
		leases, err := s.Leases(ctx, sweep)
		if err != nil {
			return fatal("leases", err)
		}
		for _, l := range leases {
			h, ok := ParseHolder(l.Worker)
			if !ok || l.Worker == name || !h.Dead() {
				continue
			}
			switch err := s.Release(ctx, l.Key, l.Worker); {
			case errors.Is(err, ErrLeaseLost):
			case err != nil:
				return fatal("release", err)
			default:
				say("reclaimed %s %s", l.Key, l.Worker)
			}
		}

		start := time.Now()
		tr, err := s.Claim(ctx, sweep, name, lease)
		latency := time.Since(start)
		if errors.Is(err, ErrNoTrial) {
			c, err := s.Counts(ctx, sweep)
			if err != nil {
				return fatal("counts", err)
			}
			// Failed trials come back (the parent re-queues them, as `sweep
			// retry` would), so only an all-done sweep ends the worker.
			if c.Done == c.Total() {
				say("exit")
				return 0
			}
			time.Sleep(20 * time.Millisecond)
			continue
		}
		if err != nil {
			return fatal("claim", err)
		}
		key := tr.Key()
		say("claimed %s %d %d", key, tr.Attempts, latency.Microseconds())

		// The trial: half its time, a renewal, the other half. A stalled
		// first attempt stops for longer than its lease, as a frozen
		// process or VM would, before its renewal or before its result,
		// and should find its lease taken. The next attempt runs for a
		// whole lease, so that the stalled worker wakes while the trial
		// has a live holder.
		stall := tr.Attempts == 1 && loadPicks("stall", key, stallEvery)
		late := loadPicks("late", key, 2)
		length := trialTime
		if tr.Attempts == 2 && loadPicks("stall", key, stallEvery) {
			length = lease
		}
		pause := func() {
			say("stalled %s", key)
			time.Sleep(lease + lease/2)
		}
		time.Sleep(length / 2)
		if stall && !late {
			pause()
		}
		if err := s.Heartbeat(ctx, key, name, lease); errors.Is(err, ErrLeaseLost) {
			say("lost %s", key)
			continue
		} else if err != nil {
			return fatal("heartbeat", err)
		}
		time.Sleep(length - length/2)
		if stall && late {
			pause()
		}

		if tr.Attempts == 1 && loadPicks("fail", key, failEvery) {
			switch err := s.Fail(ctx, key, name, errors.New(loadFailCause)); {
			case errors.Is(err, ErrLeaseLost):
				say("lost %s", key)
			case err != nil:
				return fatal("fail", err)
			default:
				say("failed %s", key)
			}
			continue
		}
		tr.Metrics = map[string]float64{results.CleanAcc: loadMetric(key)}
		tr.Env = map[string]string{"load_worker": name}
		switch err := s.Finish(ctx, *tr); {
		case errors.Is(err, ErrLeaseLost), errors.Is(err, ErrFinished):
			say("rejected %s", key)
		case err != nil:
			return fatal("finish", err)
		default:
			say("finished %s", key)
		}
	}
}

// loadConfig sizes a load run.
type loadConfig struct {
	dsn        string
	trials     int
	workers    int           // worker processes alive at once
	trialTime  time.Duration // each trial sleeps this long, renewing its lease halfway
	lease      time.Duration
	failEvery  int // the first attempt of every failEvery-th trial fails (0: none)
	stallEvery int // the first attempt of every stallEvery-th trial outlives its lease (0: none)
	// killEvery is the mean time between SIGKILLs of a random worker, which
	// is replaced at once (0: no kills).
	killEvery time.Duration
	// foreignEvery: every foreignEvery-th worker has a name that says
	// nothing of its process (as a worker on another host), so its trials
	// come back only when their lease expires (0: none).
	foreignEvery int
	// grace is how long past its expiry a dead worker's lease may be seen
	// before the next claim takes it over.
	grace time.Duration
	limit time.Duration // the whole run
}

// loadReport is what a load run saw.
type loadReport struct {
	claims      int
	elapsed     time.Duration // from the start signal to the last finished trial
	latencies   []time.Duration
	kills       int
	reclaimed   int // trials of dead holders handed back before their lease ran out
	expiredTook int // claims of a trial whose previous holder was killed and not reclaimed
	lost        int // renewals, failures or finishes refused because the lease had gone
	failures    int // synthetic first-attempt failures
	stalls      int // first attempts stalled past their lease
	samples     int
	maxOverrun  time.Duration  // the longest a dead worker's lease was seen past its expiry
	violations  []string       // the first 50
	kinds       map[string]int // every violation, by kind
}

func (r *loadReport) percentile(p float64) time.Duration {
	if len(r.latencies) == 0 {
		return 0
	}
	l := slices.Clone(r.latencies)
	slices.Sort(l)
	i := int(float64(len(l))*p+0.999999) - 1
	return l[max(0, min(i, len(l)-1))]
}

func (r *loadReport) claimsPerSecond() float64 {
	if r.elapsed <= 0 {
		return 0
	}
	return float64(r.claims) / r.elapsed.Seconds()
}

func (r *loadReport) violate(format string, args ...any) {
	if r.kinds == nil {
		r.kinds = map[string]int{}
	}
	r.kinds[format]++
	if len(r.violations) < 50 {
		r.violations = append(r.violations, fmt.Sprintf(format, args...))
	}
}

// loadProc is one worker process.
type loadProc struct {
	id      int
	name    string
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	stderr  *tailBuffer
	killed  bool
	exited  bool
	stalled string // the trial it stalls on ("" when none), which a kill would cut short
}

type loadEvent struct {
	p      *loadProc
	fields []string // nil: the process exited
	err    error    // its exit status
	at     time.Time
}

// tailBuffer keeps the last 4 kB written to it (a worker's stderr).
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > 4096 {
		b.buf = b.buf[len(b.buf)-4096:]
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// runLoad enqueues cfg.trials trials, runs cfg.workers worker processes on
// them until all are done, killing and replacing workers if asked, and
// checks along the way that the store's counts add up and that no dead
// worker keeps a lease past its expiry; at the end, that every trial was
// finished exactly once with its own result.
func runLoad(tb testing.TB, cfg loadConfig) *loadReport {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cfg.limit)
	defer cancel()
	s, err := Open(ctx, cfg.dsn)
	require.NoError(tb, err)
	defer s.Close()
	const sweep = "load"
	trials := make([]results.Trial, cfg.trials)
	for i := range trials {
		trials[i] = results.Trial{Sweep: sweep, Variant: fmt.Sprintf("v%05d", i), Factor: "load", Level: strconv.Itoa(i), Seed: 1}
	}
	n, err := s.AddTrials(ctx, trials)
	require.NoError(tb, err)
	require.Equal(tb, cfg.trials, n)

	rep := &loadReport{}
	events := make(chan loadEvent, 4096)
	var procs []*loadProc
	live := 0
	start := func(goNow bool) *loadProc {
		p := &loadProc{id: len(procs), stderr: &tailBuffer{}}
		env := append(os.Environ(), envLoadDSN+"="+cfg.dsn, envLoadSweep+"="+sweep,
			envLoadLease+"="+cfg.lease.String(), envLoadTrial+"="+cfg.trialTime.String(),
			envLoadFailN+"="+strconv.Itoa(cfg.failEvery), envLoadStallN+"="+strconv.Itoa(cfg.stallEvery))
		if cfg.foreignEvery > 0 && p.id%cfg.foreignEvery == cfg.foreignEvery-1 {
			env = append(env, envLoadName+"="+fmt.Sprintf("remote%d", p.id))
		}
		p.cmd = exec.Command(os.Args[0], "-test.run=^TestStoreLoadWorker$", "-test.count=1", "-test.v=false")
		p.cmd.Env = env
		p.cmd.Stderr = p.stderr
		stdout, err := p.cmd.StdoutPipe()
		require.NoError(tb, err)
		p.stdin, err = p.cmd.StdinPipe()
		require.NoError(tb, err)
		require.NoError(tb, p.cmd.Start())
		if goNow {
			_, _ = io.WriteString(p.stdin, "go\n")
		}
		procs = append(procs, p)
		live++
		go func() {
			sc := bufio.NewScanner(stdout)
			for sc.Scan() {
				if line, ok := strings.CutPrefix(sc.Text(), loadPrefix); ok {
					events <- loadEvent{p: p, fields: strings.Fields(line), at: time.Now()}
				}
			}
			err := p.cmd.Wait()
			events <- loadEvent{p: p, err: err, at: time.Now()}
		}()
		return p
	}
	defer func() {
		for _, p := range procs {
			if !p.exited {
				_ = p.cmd.Process.Kill()
			}
		}
		for live > 0 {
			if ev := <-events; ev.fields == nil {
				live--
			}
		}
	}()

	finishedBy := map[string][]string{} // trial → workers told their finish was recorded
	failedEv := map[string]int{}
	dead := map[string]bool{}     // names of killed workers
	holder := map[string]string{} // trial → worker that last claimed it
	var lastFinish time.Time
	handle := func(ev loadEvent) {
		p, f := ev.p, ev.fields
		if f == nil {
			p.exited = true
			live--
			if !p.killed && ev.err != nil {
				rep.violate("worker %d (%s) exited: %v; stderr: %s", p.id, p.name, ev.err, p.stderr.String())
			}
			return
		}
		if f[0] == "stalled" && len(f) == 2 {
			p.stalled = f[1]
		} else if f[0] != "lost" && f[0] != "rejected" {
			p.stalled = ""
		}
		switch {
		case f[0] == "ready" && len(f) == 2:
			p.name = f[1]
		case f[0] == "claimed" && len(f) == 4:
			rep.claims++
			us, _ := strconv.ParseInt(f[3], 10, 64)
			rep.latencies = append(rep.latencies, time.Duration(us)*time.Microsecond)
			if prev, ok := holder[f[1]]; ok && dead[prev] {
				rep.expiredTook++
			}
			holder[f[1]] = p.name
		case f[0] == "finished" && len(f) == 2:
			finishedBy[f[1]] = append(finishedBy[f[1]], p.name)
			lastFinish = ev.at
		case f[0] == "failed" && len(f) == 2:
			failedEv[f[1]]++
			rep.failures++
		case f[0] == "stalled" && len(f) == 2:
			rep.stalls++
		case f[0] == "reclaimed" && len(f) == 3:
			rep.reclaimed++
			holder[f[1]] = "" // handed back: a later claim is not a takeover
		case (f[0] == "lost" || f[0] == "rejected") && len(f) == 2:
			// Only a worker that stopped past its lease may lose it.
			if f[1] != p.stalled {
				rep.violate("worker %s lost its lease on %s while renewing it in time", p.name, f[1])
			}
			p.stalled = ""
			rep.lost++
		case f[0] == "exit":
		case f[0] == "error":
			rep.violate("worker %d (%s): %s", p.id, p.name, strings.Join(f[1:], " "))
		default:
			rep.violate("worker %d: unexpected line %q", p.id, strings.Join(f, " "))
		}
	}

	// Start every worker, wait until each has opened the store, then let
	// them all go at once: the clock measures claims, not process start-up.
	for range cfg.workers {
		start(false)
	}
	for ready := 0; ready < cfg.workers; {
		select {
		case ev := <-events:
			handle(ev)
			if ev.fields == nil {
				require.FailNow(tb, "a worker exited before it was ready", "%v", rep.violations)
			}
			if ev.fields[0] == "ready" {
				ready++
			}
		case <-ctx.Done():
			require.FailNow(tb, "workers not ready in time")
		}
	}
	began := time.Now()
	for _, p := range procs {
		_, _ = io.WriteString(p.stdin, "go\n")
	}

	sample := time.NewTicker(100 * time.Millisecond)
	defer sample.Stop()
	nextKill := func() <-chan time.Time {
		if cfg.killEvery <= 0 {
			return nil
		}
		return time.After(time.Duration((0.5 + rand.Float64()) * float64(cfg.killEvery)))
	}
	kill := nextKill()
	lastDone, allDone := 0, false
	for !allDone || live > 0 {
		select {
		case ev := <-events:
			handle(ev)
		case <-kill:
			kill = nextKill()
			if allDone {
				continue
			}
			var victims []*loadProc
			for _, p := range procs {
				if !p.exited && !p.killed && p.stalled == "" && p.name != "" {
					victims = append(victims, p)
				}
			}
			if len(victims) == 0 {
				continue
			}
			v := victims[rand.IntN(len(victims))]
			if err := v.cmd.Process.Signal(syscall.SIGKILL); err != nil {
				continue // it exited meanwhile
			}
			v.killed, dead[v.name] = true, true
			rep.kills++
			start(true)
		case <-sample.C:
			// What `robarch sweep status` shows must add up at any moment.
			finishedSeen := len(finishedBy)
			c, err := s.Counts(ctx, sweep)
			if err != nil {
				rep.violate("counts: %v", err)
				continue
			}
			rep.samples++
			switch {
			case c.Total() != cfg.trials:
				rep.violate("status counts %+v add up to %d, not %d trials", c, c.Total(), cfg.trials)
			case c.Done < lastDone:
				rep.violate("done went down from %d to %d", lastDone, c.Done)
			case c.Done < finishedSeen:
				rep.violate("status shows %d done after workers were told %d finishes were recorded", c.Done, finishedSeen)
			case c.Running > len(procs):
				rep.violate("%d running trials but only %d workers ever started", c.Running, len(procs))
			}
			lastDone = max(lastDone, c.Done)
			allDone = c.Done == cfg.trials
			leases, err := s.Leases(ctx, sweep)
			if err != nil {
				rep.violate("leases: %v", err)
				continue
			}
			for _, l := range leases {
				if !dead[l.Worker] || l.Left >= 0 {
					continue
				}
				rep.maxOverrun = max(rep.maxOverrun, -l.Left)
				if -l.Left > cfg.grace {
					rep.violate("trial %s still leased to killed worker %s %v past the lease's expiry", l.Key, l.Worker, -l.Left)
				}
			}
			if c.Failed > 0 { // as `robarch sweep retry`
				if _, err := s.Requeue(ctx, sweep, results.StatusFailed); err != nil {
					rep.violate("requeue: %v", err)
				}
			}
			// A worker that died of an error (not killed) is replaced, as a
			// job system would; the error is already a violation.
			for live < cfg.workers && !allDone {
				start(true)
			}
		case <-ctx.Done():
		}
		if ctx.Err() != nil {
			// The deferred cleanup kills and reaps what is left.
			rep.violate("not finished in %v: last counts had %d of %d done", cfg.limit, lastDone, cfg.trials)
			return rep
		}
	}
	rep.elapsed = lastFinish.Sub(began)

	// The store agrees with what the workers were told: every trial done
	// once, with its own result, by the worker whose finish was accepted.
	c, err := s.Counts(ctx, sweep)
	require.NoError(tb, err)
	if c != (Counts{Done: cfg.trials}) {
		rep.violate("final counts %+v, want all %d done", c, cfg.trials)
	}
	rows, err := s.(*sqlStore).db.QueryContext(ctx, "SELECT trial_key, finishes FROM trials")
	require.NoError(tb, err)
	finishes := map[string]int{}
	for rows.Next() {
		var key string
		var f int
		require.NoError(tb, rows.Scan(&key, &f))
		finishes[key] = f
	}
	require.NoError(tb, rows.Err())
	rows.Close()
	stored, err := s.Trials(ctx, sweep)
	require.NoError(tb, err)
	if len(stored) != cfg.trials {
		rep.violate("%d trials stored, want %d", len(stored), cfg.trials)
	}
	for _, tr := range stored {
		key := tr.Key()
		if finishes[key] != 1 {
			rep.violate("trial %s: %d finishes accepted", key, finishes[key])
		}
		if got := tr.Metrics[results.CleanAcc]; got != loadMetric(key) {
			rep.violate("trial %s: stored metric %v, its own is %v", key, got, loadMetric(key))
		}
		if tr.Env["load_worker"] != tr.Worker {
			rep.violate("trial %s: finished by %s but recorded for %s", key, tr.Env["load_worker"], tr.Worker)
		}
		switch by := finishedBy[key]; {
		case len(by) > 1:
			rep.violate("trial %s: %d workers were told their finish was recorded: %v", key, len(by), by)
		case len(by) == 1 && by[0] != tr.Worker:
			rep.violate("trial %s: %s was told its finish was recorded, the store has %s", key, by[0], tr.Worker)
		case len(by) == 0 && !dead[tr.Worker]:
			// Only a worker killed between its finish and its report may
			// leave a stored result unreported.
			rep.violate("trial %s: done by %s, which never reported it and was not killed", key, tr.Worker)
		}
		fails := loadPicks("fail", key, cfg.failEvery)
		if failedEv[key] > 0 && !fails {
			rep.violate("trial %s failed though it never fails", key)
		}
		if fails && tr.Attempts < 2 {
			rep.violate("trial %s fails its first attempt but is done after %d", key, tr.Attempts)
		}
	}
	return rep
}

func (r *loadReport) String() string {
	return fmt.Sprintf("%d claims in %v: %.0f claims/s, claim latency p50 %v p99 %v max %v; %d kills, %d trials of dead workers reclaimed at once, %d taken over after their lease, %d stalled past their lease, %d heartbeats or finishes refused for a lost lease, %d synthetic failures re-queued, %d status samples, longest dead lease past expiry %v",
		r.claims, r.elapsed.Round(time.Millisecond), r.claimsPerSecond(), r.percentile(0.5), r.percentile(0.99), r.percentile(1),
		r.kills, r.reclaimed, r.expiredTook, r.stalls, r.lost, r.failures, r.samples, r.maxOverrun.Round(time.Millisecond))
}

func envInt(tb testing.TB, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(tb, err, "%s", name)
	return n
}

// TestStoreLoad runs the load test on both stores: by default 4 workers
// and 300 trials, a SIGKILL every ~250 ms, a first attempt in 10 failing
// and one in 40 (at most ~25 in all) stalling past its 2 s lease.
// ROBARCH_LOAD_WORKERS, ROBARCH_LOAD_TRIALS and ROBARCH_LOAD_LEASE_MS size
// it up. The lease must outlast the store's slowest call, or workers that
// renew on time lose it: 1 s failed here when other work held both cores
// (claims of 1.8 s).
func TestStoreLoad(t *testing.T) {
	workers := envInt(t, "ROBARCH_LOAD_WORKERS", 4)
	trials := envInt(t, "ROBARCH_LOAD_TRIALS", 300)
	lease := time.Duration(envInt(t, "ROBARCH_LOAD_LEASE_MS", 2000)) * time.Millisecond
	for _, tc := range []struct {
		backend string
		dsn     func(t *testing.T) string
	}{
		{"sqlite", func(t *testing.T) string { return filepath.Join(t.TempDir(), "results.db") }},
		{"postgres", func(t *testing.T) string { return pgtest.Start(t).NewDatabase(t) }},
	} {
		t.Run(tc.backend, func(t *testing.T) {
			rep := runLoad(t, loadConfig{
				dsn: tc.dsn(t), trials: trials, workers: workers,
				trialTime: 10 * time.Millisecond, lease: lease, failEvery: 10, stallEvery: max(40, trials/25),
				killEvery: 250 * time.Millisecond, foreignEvery: 2, grace: lease + time.Second,
				limit: 10 * time.Minute,
			})
			t.Logf("%s, %d workers, %d trials: %v", tc.backend, workers, trials, rep)
			assert.Empty(t, rep.violations, "violations by kind: %v", rep.kinds)
			// The run must have exercised what it claims to test.
			assert.Positive(t, rep.kills, "kills")
			assert.Positive(t, rep.failures, "synthetic failures")
			assert.Positive(t, rep.stalls, "stalled trials")
			assert.Positive(t, rep.lost, "a stalled worker finds its lease taken")
			assert.GreaterOrEqual(t, rep.claims, trials+rep.failures, "claims")
		})
	}
}

// BenchmarkStoreLoad runs b.N trials of 20 ms (ROBARCH_LOAD_BENCH_TRIAL_MS)
// on 1, 4, 16 and 64 worker processes (ROBARCH_LOAD_BENCH_WORKERS,
// comma-separated) and reports claims per second and the claim latency's
// p50, p99 and maximum. No kills unless ROBARCH_LOAD_BENCH_KILL_MS sets the
// mean time between them.
func BenchmarkStoreLoad(b *testing.B) {
	counts := []int{1, 4, 16, 64}
	if v := os.Getenv("ROBARCH_LOAD_BENCH_WORKERS"); v != "" {
		counts = nil
		for _, f := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(f))
			require.NoError(b, err, "ROBARCH_LOAD_BENCH_WORKERS")
			counts = append(counts, n)
		}
	}
	killEvery := time.Duration(envInt(b, "ROBARCH_LOAD_BENCH_KILL_MS", 0)) * time.Millisecond
	trialTime := time.Duration(envInt(b, "ROBARCH_LOAD_BENCH_TRIAL_MS", 20)) * time.Millisecond
	var cluster *pgtest.Cluster // one server for every sub-benchmark
	whole := b                  // a sub-benchmark's cleanups run after each of its runs
	for _, backend := range []string{"sqlite", "postgres"} {
		for _, w := range counts {
			b.Run(fmt.Sprintf("%s/workers=%d", backend, w), func(b *testing.B) {
				dsn := filepath.Join(b.TempDir(), "results.db")
				if backend == "postgres" {
					if cluster == nil {
						c, err := pgtest.StartCluster(context.Background())
						if errors.Is(err, pgtest.ErrNotInstalled) {
							b.Skip(err)
						}
						require.NoError(b, err)
						cluster = c
						whole.Cleanup(func() { _ = c.Stop() })
					}
					dsn = cluster.NewDatabase(b)
				}
				rep := runLoad(b, loadConfig{
					dsn: dsn, trials: b.N, workers: w,
					trialTime: trialTime, lease: 30 * time.Second,
					killEvery: killEvery, grace: 30 * time.Second, limit: 30 * time.Minute,
				})
				if len(rep.violations) > 0 {
					b.Fatalf("%d violations, first: %s", len(rep.violations), rep.violations[0])
				}
				b.ReportMetric(rep.claimsPerSecond(), "claims/s")
				b.ReportMetric(float64(rep.percentile(0.5).Microseconds())/1000, "p50-ms")
				b.ReportMetric(float64(rep.percentile(0.99).Microseconds())/1000, "p99-ms")
				b.ReportMetric(float64(rep.percentile(1).Microseconds())/1000, "max-ms")
				b.ReportMetric(0, "ns/op") // the whole run is one measurement, not b.N timed iterations
				b.Logf("%s, %d workers, %d trials: %v", backend, w, b.N, rep)
			})
		}
	}
}
