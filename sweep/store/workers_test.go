package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
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

// Environment of a helper worker process (see TestHelperWorker).
const (
	envHelperDSN    = "ROBARCH_STORE_HELPER_DSN"
	envHelperWorker = "ROBARCH_STORE_HELPER_WORKER"
	helperSweep     = "fleet"
	helperLease     = time.Second
	helperPrefix    = "HELPER "
)

// TestHelperWorker is not a test: it is the body of a worker process that
// the fleet tests start by re-executing the test binary. It claims trials
// until the sweep is finished, "trains" each for ~60ms with heartbeats and
// reports every step on stdout.
func TestHelperWorker(t *testing.T) {
	dsn, name := os.Getenv(envHelperDSN), os.Getenv(envHelperWorker)
	if dsn == "" {
		t.Skip("helper process for the worker fleet tests")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	s, err := Open(ctx, dsn)
	require.NoError(t, err)
	defer s.Close()
	say := func(event, key string) { fmt.Printf("%s%s %s %s\n", helperPrefix, name, event, key) }

	for {
		tr, err := s.Claim(ctx, helperSweep, name, helperLease)
		if errors.Is(err, ErrNoTrial) {
			c, err := s.Counts(ctx, helperSweep)
			require.NoError(t, err)
			if c.Finished() {
				return
			}
			time.Sleep(50 * time.Millisecond) // a dead worker's lease may still run
			continue
		}
		require.NoError(t, err)
		say("claimed", tr.Key())
		lost := false
		for range 3 {
			time.Sleep(20 * time.Millisecond)
			if err := s.Heartbeat(ctx, tr.Key(), name, helperLease); err != nil {
				say("lost", tr.Key())
				lost = true
				break
			}
		}
		if lost {
			continue
		}
		tr.Metrics = map[string]float64{results.CleanAcc: 0.5}
		if err := s.Finish(ctx, *tr); err != nil {
			say("rejected", tr.Key())
			continue
		}
		say("finished", tr.Key())
	}
}

func TestPostgresWorkerFleetSurvivesKill(t *testing.T) {
	runWorkerFleet(t, pgtest.Start(t).NewDatabase(t))
}

func TestSQLiteWorkerFleetSurvivesKill(t *testing.T) {
	runWorkerFleet(t, filepath.Join(t.TempDir(), "results.db"))
}

type workerEvent struct{ worker, kind, key string }

// runWorkerFleet runs 3 worker processes on one store and SIGKILLs one of
// them in the middle of a trial: every trial must still end done, accepted
// exactly once, the killed one by another worker after its lease expired.
func runWorkerFleet(t *testing.T, dsn string) {
	const trials, workers = 18, 3
	ctx := context.Background()
	s := openStore(t, dsn)
	_, err := s.AddTrials(ctx, plan(helperSweep, trials))
	require.NoError(t, err)

	events := make(chan workerEvent, 1000)
	procs := make([]*exec.Cmd, workers)
	var wg sync.WaitGroup
	for i := range procs {
		name := fmt.Sprintf("w%d", i)
		cmd := exec.Command(os.Args[0], "-test.run=^TestHelperWorker$", "-test.count=1", "-test.v=false")
		cmd.Env = append(os.Environ(), envHelperDSN+"="+dsn, envHelperWorker+"="+name)
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		procs[i] = cmd
		wg.Add(1)
		go func() {
			defer wg.Done()
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if f := strings.Fields(strings.TrimPrefix(sc.Text(), helperPrefix)); strings.HasPrefix(sc.Text(), helperPrefix) && len(f) == 3 {
					events <- workerEvent{f[0], f[1], f[2]}
				}
			}
		}()
	}
	go func() { wg.Wait(); close(events) }()
	t.Cleanup(func() {
		for _, p := range procs {
			_ = p.Process.Kill()
			_ = p.Wait()
		}
	})

	// Kill w0 right after its second claim, mid-trial.
	var killedKey string
	claims := map[string]int{}
	finishedBy := map[string][]string{}
	var log []workerEvent
	deadline := time.After(45 * time.Second)
collect:
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				break collect
			}
			log = append(log, ev)
			switch ev.kind {
			case "claimed":
				claims[ev.worker]++
				if ev.worker == "w0" && claims["w0"] == 2 {
					require.NoError(t, procs[0].Process.Signal(syscall.SIGKILL))
					killedKey = ev.key
				}
			case "finished":
				finishedBy[ev.key] = append(finishedBy[ev.key], ev.worker)
			}
		case <-deadline:
			t.Fatalf("workers did not finish in time; events: %v", log)
		}
	}
	for i, p := range procs {
		err := p.Wait()
		if i == 0 {
			var exit *exec.ExitError
			require.ErrorAs(t, err, &exit)
			assert.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal(), "w0 was killed")
		} else {
			assert.NoError(t, err, "worker w%d", i)
		}
	}
	t.Logf("killed %s mid-trial; events: %v", killedKey, log)
	require.NotEmpty(t, killedKey, "w0 never claimed a second trial; events: %v", log)

	// Every trial was reported finished exactly once, the killed one by a survivor.
	require.Len(t, finishedBy, trials, "events: %v", log)
	for key, by := range finishedBy {
		assert.Len(t, by, 1, "trial %s finished by %v", key, by)
	}
	require.Len(t, finishedBy[killedKey], 1)
	assert.NotEqual(t, "w0", finishedBy[killedKey][0])

	// The store agrees: all done, each finish accepted once, the killed
	// trial claimed again after its lease ran out.
	c, err := s.Counts(ctx, helperSweep)
	require.NoError(t, err)
	assert.Equal(t, Counts{Done: trials}, c)
	rows, err := s.(*sqlStore).db.QueryContext(ctx, "SELECT trial_key, finishes FROM trials")
	require.NoError(t, err)
	defer rows.Close()
	n := 0
	for rows.Next() {
		var key string
		var finishes int
		require.NoError(t, rows.Scan(&key, &finishes))
		assert.Equal(t, 1, finishes, "accepted finishes of %s", key)
		n++
	}
	require.NoError(t, rows.Err())
	assert.Equal(t, trials, n)
	killed, err := s.Get(ctx, killedKey)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, killed.Attempts, 2)
	assert.Equal(t, finishedBy[killedKey][0], killed.Worker)
}
