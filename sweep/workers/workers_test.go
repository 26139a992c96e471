package workers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
	"github.com/robarch/robarch/sweep/store"
	"github.com/robarch/robarch/sweep/sweeprun"
)

// The test binary stands in for robarch: as a helper worker it prints its
// command line and exits with WORKERS_TEST_EXIT; as a rank of a
// data-parallel trial, rank 0 leaves metrics naming the world size.
func TestMain(m *testing.M) {
	switch os.Getenv("WORKERS_TEST_AS") {
	case "helper":
		fmt.Fprintln(os.Stderr, "args:", strings.Join(os.Args[1:], " "))
		fmt.Println("a line on stdout")
		code := 0
		fmt.Sscan(os.Getenv("WORKERS_TEST_EXIT"), &code)
		os.Exit(code)
	case "rank":
		dir := os.Args[slices.Index(os.Args, "--dir")+1]
		if _, err := os.Stat(filepath.Join(dir, TrialFile)); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if os.Getenv("RANK") == "0" {
			var world float64
			fmt.Sscan(os.Getenv("WORLD_SIZE"), &world)
			if err := writeMetrics(dir, map[string]float64{"world": world}); err != nil {
				os.Exit(1)
			}
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func TestThreads(t *testing.T) {
	for _, tc := range []struct{ threads, n, want int }{
		{8, 1, 8}, {8, 2, 4}, {8, 3, 2}, {2, 4, 1}, {0, 1, runtime.NumCPU()}, {-1, 1, runtime.NumCPU()}, {8, 0, 8},
	} {
		assert.Equal(t, tc.want, Threads(tc.threads, tc.n), "%d threads among %d", tc.threads, tc.n)
	}
}

func TestHelperArgs(t *testing.T) {
	h := Helper{Store: "r.db", Work: "trials", MemoryFormat: "auto", LogLevel: "info", Lease: 2 * time.Minute, Threads: 3}
	base := "sweep worker --store r.db --work trials --lease 2m0s --threads 3 --memory-format auto --log-level info --progress none"
	for _, tc := range []struct {
		sweep, want string
	}{
		{"", base},
		{"micro", base + " --name micro"},
	} {
		h.Sweep = tc.sweep
		assert.Equal(t, tc.want, strings.Join(h.Args(), " "))
	}
}

func TestDataParallelArgs(t *testing.T) {
	d := DataParallel{MemoryFormat: "channels-last", LogLevel: "debug"}
	assert.Equal(t, "--threads 2 --memory-format channels-last --log-level debug sweep trial --dir t/x",
		strings.Join(d.Args(2, "t/x"), " "))
}

func TestStartHelpersPrefixesTheirLinesAndReportsFailures(t *testing.T) {
	t.Setenv("WORKERS_TEST_AS", "helper")
	t.Setenv("WORKERS_TEST_EXIT", "3")
	var log bytes.Buffer
	hs, err := StartHelpers(context.Background(), os.Args[0], 2, Helper{Store: "r.db", Sweep: "micro"}, &log)
	require.NoError(t, err)
	err = hs.Wait()
	for _, k := range []string{"2", "3"} {
		assert.Contains(t, log.String(), "worker "+k+": args: sweep worker --store r.db")
		assert.Contains(t, log.String(), "worker "+k+": a line on stdout")
		assert.ErrorContains(t, err, "helper worker "+k+": exit status 3")
	}
}

// trialConfig is a trial of the shipped micro sweep on n processes.
func trialConfig(t *testing.T, n int) (results.Trial, sweep.TrialConfig) {
	f, err := sweep.LoadFile("fashion-mnist-micro")
	require.NoError(t, err)
	f.NprocPerTrial = n
	cfg := sweep.TrialConfig{Sweep: f, Variant: "baseline", Seed: 1}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	return results.Trial{Sweep: f.Name, Variant: "baseline", Seed: 1, Config: raw}, cfg
}

func TestDataParallelTrial(t *testing.T) {
	var inProcess []string
	run := func(_ context.Context, tr results.Trial, _ sweep.TrialConfig, _ string) (map[string]float64, error) {
		inProcess = append(inProcess, tr.Key())
		return map[string]float64{"world": 1}, nil
	}
	t.Setenv("WORKERS_TEST_AS", "rank")
	for _, tc := range []struct {
		name      string
		n         int
		inProcess bool
	}{
		{"one process: here", 1, true},
		{"two processes: ranks", 2, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			inProcess = nil
			dir := t.TempDir()
			// Metrics of an earlier launch are not taken for this one's.
			require.NoError(t, writeMetrics(dir, map[string]float64{"world": -1}))
			tr, cfg := trialConfig(t, tc.n)
			var log bytes.Buffer
			d := DataParallel{Run: run, Exe: os.Args[0], Threads: 4, MemoryFormat: "auto", LogLevel: "info", LogTo: &log}
			metrics, err := d.Trial(context.Background(), tr, cfg, dir)
			require.NoError(t, err, log.String())
			if tc.inProcess {
				assert.Equal(t, []string{tr.Key()}, inProcess)
				assert.Equal(t, map[string]float64{"world": 1}, metrics)
				return
			}
			assert.Empty(t, inProcess)
			assert.Equal(t, map[string]float64{"world": float64(tc.n)}, metrics)
			got, gotCfg, err := ReadTrial(dir)
			require.NoError(t, err)
			assert.Equal(t, tr.Key(), got.Key())
			assert.Equal(t, tc.n, gotCfg.Sweep.NprocPerTrial)
		})
	}
}

func TestDataParallelTrialWithoutMetrics(t *testing.T) {
	t.Setenv("WORKERS_TEST_AS", "helper") // exits 0 and writes nothing
	tr, cfg := trialConfig(t, 2)
	d := DataParallel{Exe: os.Args[0], LogTo: &bytes.Buffer{}}
	_, err := d.Trial(context.Background(), tr, cfg, t.TempDir())
	assert.ErrorContains(t, err, "rank 0 left no metrics")
}

func TestReadTrialRefuses(t *testing.T) {
	for _, tc := range []struct {
		name, content, err string
	}{
		{"missing", "", "sweep trial: open"},
		{"not JSON", "{", "sweep trial: " + TrialFile},
		{"no config", `{"sweep": "s", "variant": "v"}`, "trial s/v"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.content != "" {
				require.NoError(t, os.WriteFile(filepath.Join(dir, TrialFile), []byte(tc.content), 0o644))
			}
			_, _, err := ReadTrial(dir)
			assert.ErrorContains(t, err, tc.err)
		})
	}
}

// Local runs this process's trials with Trial, wraps it for data-parallel
// ones, and starts and waits for the helpers, whose lines join the log.
func TestLocalWork(t *testing.T) {
	t.Setenv("WORKERS_TEST_AS", "helper")
	t.Setenv("WORKERS_TEST_EXIT", "0")
	f, err := sweep.LoadFile("fashion-mnist-micro")
	require.NoError(t, err)
	f.Seeds = study.Seeds{List: []int64{0}}
	p, err := sweep.MakePlan(f)
	require.NoError(t, err)
	for _, workers := range []int{1, 2} {
		t.Run(fmt.Sprint(workers, " workers"), func(t *testing.T) {
			ctx := context.Background()
			s, err := store.Open(ctx, filepath.Join(t.TempDir(), "results.db"))
			require.NoError(t, err)
			defer s.Close()
			n, err := sweeprun.Enqueue(ctx, s, p, f)
			require.NoError(t, err)
			var mu sync.Mutex
			ran := 0
			trial := func(context.Context, results.Trial, sweep.TrialConfig, string) (map[string]float64, error) {
				mu.Lock()
				defer mu.Unlock()
				ran++
				return map[string]float64{results.CleanAcc: 0.5, results.PGDAcc: 0.25}, nil
			}
			var log bytes.Buffer
			l := Local{Runner: &sweeprun.Runner{Store: s, WorkDir: t.TempDir()}, Trial: trial, Workers: workers, Threads: 1,
				Store: "results.db", MemoryFormat: "auto", LogLevel: "info", LogTo: &log, Exe: os.Args[0]}
			st, err := l.Work(ctx, f.Name)
			require.NoError(t, err)
			assert.Equal(t, n, st.Done)
			assert.Equal(t, n, ran)
			assert.Equal(t, workers > 1, strings.Contains(log.String(), "worker 2: args: sweep worker --store results.db"), log.String())
		})
	}
}
