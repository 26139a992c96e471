package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/robarch/robarch/sweep"
)

// These tests run robarch as a separate process, as a user does: the
// binary named by ROBARCH_BIN (e.g. .build/bin/robarch), or else this test
// binary, which runs main() when ROBARCH_TEST_AS_MAIN is set. Either way
// it is the real command tree, exit status, signals and all.
func TestMain(m *testing.M) {
	if os.Getenv("ROBARCH_TEST_AS_MAIN") == "1" {
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func robarchCmd(ctx context.Context, dir string, args ...string) *exec.Cmd {
	bin := os.Getenv("ROBARCH_BIN")
	if bin == "" {
		bin = os.Args[0]
	}
	cmd := exec.CommandContext(ctx, bin, append([]string{"--threads", "1"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ROBARCH_TEST_AS_MAIN=1")
	return cmd
}

type result struct {
	stdout, stderr string
	code           int
}

func robarch(t *testing.T, dir string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := robarchCmd(ctx, dir, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit, "robarch %v: %v\n%s", args, err, errb.String())
		code = exit.ExitCode()
	}
	return result{out.String(), errb.String(), code}
}

// tinySweep is two quick trials on synthetic data: the micro net, two
// epochs of 4 steps, PGD-2 on 64 images.
const tinySweep = `name: tiny
baseline: micro
seeds: [0, 1]
dataset: {name: synthetic, train_size: 256, test_size: 64}
train: {method: fgsm-rs, eps: 8/255, epochs: 2, batch_size: 64, lr: 0.1, eval_size: 64, eval_steps: 2}
eval: {attacks: [pgd2], eps: 8px, size: 64}
`

func writeSweep(t *testing.T, dir, text string) string {
	t.Helper()
	path := filepath.Join(dir, "sweep.yaml")
	require.NoError(t, os.WriteFile(path, []byte(text), 0o644))
	return path
}

// enqueuedSweeps enqueues tinySweep with the extra flags into a fresh
// store and returns the sweep config stored with each trial.
func enqueuedSweeps(t *testing.T, flags ...string) []sweep.File {
	t.Helper()
	dir := t.TempDir()
	sw := writeSweep(t, dir, tinySweep)
	r := robarch(t, dir, append([]string{"sweep", "enqueue", "--sweep", sw, "--store", "r.db"}, flags...)...)
	require.Equal(t, 0, r.code, r.stderr)
	r = robarch(t, dir, "results", "export", "--store", "r.db", "--format", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var trials []struct {
		Config struct {
			Sweep sweep.File `json:"sweep"`
		} `json:"config"`
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &trials))
	out := make([]sweep.File, len(trials))
	for i, tr := range trials {
		out[i] = tr.Config.Sweep
	}
	return out
}

// Problem 1: a typo in what a trial needs is reported when the sweep is
// planned, by plan, --dry-run and the run itself, before anything trains.
func TestSweepRefusesWhatATrialCannotRunBeforeTraining(t *testing.T) {
	for _, tc := range []struct {
		name, from, to string
		want           []string
	}{
		{"attack typo", "attacks: [pgd2]", "attacks: [pgd2, autoatack]", []string{"eval.attacks[1]", `"autoatack"`, "want one of", "aa-fast"}},
		{"bad pgd", "attacks: [pgd2]", "attacks: [pgd0]", []string{"eval.attacks[0]", "pgdK with K >= 1"}},
		{"check attack", "attacks: [pgd2]", "attacks: [pgd2], check: {attacks: [apgd-xx]}", []string{"eval.check.attacks[0]", "apgd-xx"}},
		{"recipe", "lr: 0.1", "lr: -1", []string{"train:", "lr -1: must be positive"}},
		{"dataset", "name: synthetic", "name: cifar10", []string{"dataset", "cifar10", "needs a directory"}},
		{"device", "name: tiny", "name: tiny\ndevice: gpu", []string{"device:", `"gpu"`, "want cpu, cuda or cuda:N"}},
		{"shape", "baseline: micro", "baseline: resnet18-cifar", []string{"dataset synthetic: variant baseline", "takes 3x32x32 inputs with 10 classes but synthetic has 1x28x28 images"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			sw := writeSweep(t, dir, strings.Replace(tinySweep, tc.from, tc.to, 1))
			commands := [][]string{
				{"sweep", "plan", "--sweep", sw},
				{"sweep", "--sweep", sw, "--store", "r.db", "--work", "w"},
			}
			if tc.name == "attack typo" { // the case, through every door
				commands = append(commands, []string{"sweep", "--sweep", sw, "--dry-run"},
					[]string{"sweep", "enqueue", "--sweep", sw, "--store", "r.db"})
			}
			for _, args := range commands {
				r := robarch(t, dir, args...)
				assert.Equal(t, 1, r.code, "%v must fail\n%s", args, r.stderr)
				for _, w := range tc.want {
					assert.Contains(t, r.stderr, w, "%v", args)
				}
				assert.NotContains(t, r.stderr, "trial started", "%v", args)
			}
			_, err := os.Stat(filepath.Join(dir, "w"))
			assert.ErrorIs(t, err, os.ErrNotExist, "no trial folder: nothing trained")
		})
	}
}

// Problem 3 and unknown keys: a sweep file given to --config, and keys
// that nothing reads, are errors naming the nearest valid key.
func TestUnknownKeysAndSweepFileAsConfig(t *testing.T) {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "robarch.yaml")
	require.NoError(t, os.WriteFile(cfg, []byte("thread: 2\nlog-level: warn\n"), 0o644))
	repo, err := filepath.Abs("../..")
	require.NoError(t, err)
	for _, tc := range []struct {
		name string
		args []string
		want []string
	}{
		{"sweep file as --config", []string{"sweep", "--config", filepath.Join(repo, "configs/sweeps/robarch-imagenet-26m.yaml"), "--budget", "26M", "--dry-run"},
			[]string{"is a sweep file", "--sweep " + filepath.Join(repo, "configs/sweeps/robarch-imagenet-26m.yaml")}},
		{"unknown --config key", []string{"arch", "list", "--config", cfg}, []string{"thread: not a flag", "did you mean threads?"}},
		{"unknown sweep key", []string{"sweep", "plan", "--sweep", writeSweep(t, t.TempDir(), strings.Replace(tinySweep, "eval: {attacks", "eval: {atacks", 1))},
			[]string{"eval.atacks: unknown key; did you mean attacks?"}},
		{"unknown nested sweep key", []string{"sweep", "plan", "--sweep", writeSweep(t, t.TempDir(), strings.Replace(tinySweep, "epochs: 2", "epoch: 2", 1))},
			[]string{"train.epoch: unknown key; did you mean epochs?"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := robarch(t, dir, tc.args...)
			assert.Equal(t, 1, r.code, r.stderr)
			for _, w := range tc.want {
				assert.Contains(t, r.stderr, w)
			}
			assert.NotContains(t, r.stdout, "variants feasible", "nothing was planned")
		})
	}
	// The valid config still works.
	require.NoError(t, os.WriteFile(cfg, []byte("threads: 1\nlog-level: warn\n"), 0o644))
	r := robarch(t, dir, "arch", "list", "--config", cfg)
	assert.Equal(t, 0, r.code, r.stderr)
}

// Problem 6: one ε syntax in sweep files and flags; the stored config
// keeps the exact value.
func TestSweepEpsSyntax(t *testing.T) {
	trials := enqueuedSweeps(t, "--eps", "4/255", "--eval-eps", "4px")
	require.Len(t, trials, 2)
	assert.Equal(t, 4.0/255, trials[0].Train.Eps)
	assert.Equal(t, 4.0/255, trials[0].Eval.Eps)

	dir := t.TempDir()
	sw := writeSweep(t, dir, tinySweep)
	r := robarch(t, dir, "sweep", "plan", "--sweep", sw, "--eps", "300")
	assert.Equal(t, 1, r.code)
	assert.Contains(t, r.stderr, "train.eps")
	assert.Contains(t, r.stderr, "300/255 or 300px")
}

type row struct {
	Key     string
	Status  string
	Metrics map[string]float64
}

// rowsOf reads a store's trials, leaving out the metrics that measure time
// and memory rather than the network.
func rowsOf(t *testing.T, dir, store string) map[string]row {
	t.Helper()
	r := robarch(t, dir, "results", "export", "--store", store, "--format", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var trials []struct {
		Sweep, Variant, Status string
		Seed                   int64
		Metrics                map[string]float64
	}
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &trials))
	out := map[string]row{}
	for _, tr := range trials {
		for k := range tr.Metrics {
			if strings.Contains(k, "seconds") || strings.Contains(k, "per_s") || strings.Contains(k, "rss") {
				delete(tr.Metrics, k)
			}
		}
		key := tr.Sweep + "/" + tr.Variant + "/" + strconv.FormatInt(tr.Seed, 10)
		out[key] = row{key, tr.Status, tr.Metrics}
	}
	return out
}

// Problems 2 and 5: kill -9 of a real sweep mid-trial, then the same
// command at once resumes at once (long before the lease would expire)
// and ends with the rows of an uninterrupted run. The uninterrupted run
// draws its bars; the others, not on a terminal, write lines.
func TestKill9MidTrialResumesAtOnceWithTheSameRows(t *testing.T) {
	dir := t.TempDir()
	sw := writeSweep(t, dir, tinySweep)

	whole := robarch(t, dir, "sweep", "--sweep", sw, "--store", "whole.db", "--work", "whole", "--progress", "bar")
	require.Equal(t, 0, whole.code, whole.stderr)
	assert.Contains(t, whole.stderr, "sweep [")
	assert.Contains(t, whole.stderr, "2/2 trials, 0 failed")
	assert.Contains(t, whole.stderr, "trial tiny/baseline/0: epoch 2/2")
	assert.Contains(t, whole.stderr, "ETA")
	want := rowsOf(t, dir, "whole.db")
	require.Len(t, want, 2)

	// A long lease: resuming must not wait for it.
	args := []string{"sweep", "--sweep", sw, "--store", "killed.db", "--work", "killed", "--lease", "10m"}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := robarchCmd(ctx, dir, args...)
	stderr, err := cmd.StderrPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	lines := bufio.NewScanner(stderr)
	for lines.Scan() {
		// Mid-trial: the second trial has started training.
		if strings.Contains(lines.Text(), "trial started") && strings.Contains(lines.Text(), "tiny/baseline/1") {
			break
		}
	}
	time.Sleep(300 * time.Millisecond)
	require.NoError(t, cmd.Process.Signal(syscall.SIGKILL))
	go func() {
		for lines.Scan() {
		}
	}()
	_ = cmd.Wait()

	status := robarch(t, dir, "sweep", "status", "--store", "killed.db")
	require.Equal(t, 0, status.code)
	assert.Regexp(t, `tiny\s+0\s+1\s+1\s+0`, status.stdout, "killed mid-trial: one running, one done")

	start := time.Now()
	again := robarch(t, dir, args...)
	require.Equal(t, 0, again.code, again.stderr)
	assert.Contains(t, again.stderr, "reclaimed a trial whose worker process is gone")
	assert.Contains(t, again.stderr, "sweep progress", "not a terminal: progress lines")
	assert.NotContains(t, again.stderr, "\x1b[", "no terminal escapes in a log")
	assert.Less(t, time.Since(start), 5*time.Minute)
	assert.Equal(t, want, rowsOf(t, dir, "killed.db"))
}

// Problem 4: a trial whose libtorch work fails (its stored head has 2
// outputs for 10 classes) fails alone; the worker runs the other trial,
// says so in its exit status, and `sweep retry` re-queues the failure.
func TestFailingTrialFailsAloneAndRetryRequeues(t *testing.T) {
	dir := t.TempDir()
	sw := writeSweep(t, dir, tinySweep)
	r := robarch(t, dir, "sweep", "enqueue", "--sweep", sw, "--store", "r.db")
	require.Equal(t, 0, r.code, r.stderr)

	db, err := sql.Open("sqlite", filepath.Join(dir, "r.db"))
	require.NoError(t, err)
	var spec string
	require.NoError(t, db.QueryRow(`SELECT spec FROM trials WHERE trial_key = 'tiny/baseline/0'`).Scan(&spec))
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(spec), &m))
	m["classes"] = 2
	b, _ := json.Marshal(m)
	_, err = db.Exec(`UPDATE trials SET spec = ? WHERE trial_key = 'tiny/baseline/0'`, string(b))
	require.NoError(t, err)
	require.NoError(t, db.Close())

	r = robarch(t, dir, "sweep", "--sweep", sw, "--store", "r.db", "--work", "w")
	assert.Equal(t, 1, r.code, r.stderr)
	assert.Contains(t, r.stderr, "trial failed")
	assert.Contains(t, r.stderr, "1 trial(s) failed")
	rows := rowsOf(t, dir, "r.db")
	assert.Equal(t, "failed", rows["tiny/baseline/0"].Status)
	assert.Equal(t, "done", rows["tiny/baseline/1"].Status, "the worker went on")

	r = robarch(t, dir, "sweep", "retry", "--store", "r.db")
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "1 trial(s) re-queued")
	assert.Equal(t, "pending", rowsOf(t, dir, "r.db")["tiny/baseline/0"].Status)
}

// --workers 2 runs the two trials at once in two processes (this one and
// a helper `sweep worker`), each on its own lease, and stores the rows one
// worker would: the trials are the same computations, only side by side.
func TestWorkersRunTrialsSideBySideWithTheSameRows(t *testing.T) {
	dir := t.TempDir()
	sw := writeSweep(t, dir, tinySweep)
	one := robarch(t, dir, "sweep", "--sweep", sw, "--store", "one.db", "--work", "one", "--progress", "lines")
	require.Equal(t, 0, one.code, one.stderr)
	two := robarch(t, dir, "sweep", "--sweep", sw, "--store", "two.db", "--work", "two", "--progress", "lines", "--workers", "2")
	require.Equal(t, 0, two.code, two.stderr)
	assert.Contains(t, two.stderr, "helper workers started")
	assert.Contains(t, two.stderr, "worker 2: ", "the helper's lines reach this process's log")
	assert.Equal(t, rowsOf(t, dir, "one.db"), rowsOf(t, dir, "two.db"))

	r := robarch(t, dir, "results", "export", "--store", "two.db", "--format", "json")
	require.Equal(t, 0, r.code, r.stderr)
	var trials []struct{ Worker string }
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &trials))
	require.Len(t, trials, 2)
	assert.NotEqual(t, trials[0].Worker, trials[1].Worker, "each worker took one trial")

	bad := robarch(t, dir, "sweep", "--sweep", sw, "--store", "bad.db", "--workers", "0")
	assert.Equal(t, 1, bad.code)
	assert.Contains(t, bad.stderr, "--workers 0: must be at least 1")
	assert.NoFileExists(t, filepath.Join(dir, "bad.db"), "refused before the store is made")
}
