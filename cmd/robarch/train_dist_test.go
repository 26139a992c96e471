package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/internal/dist"
)

// dpTrainArgs is a quick data-parallel run: micro on synthetic data, one
// epoch of 4 global batches of 64.
var dpTrainArgs = []string{"train", "--model", "micro", "--dataset", "synthetic", "--train-size", "256", "--test-size", "64",
	"--epochs", "1", "--batch-size", "64", "--eps", "8/255", "--eval-size", "64", "--final-size", "64",
	"--eval-steps", "2", "--final-steps", "2", "--progress", "none"}

// bestWeights returns the bytes of the chosen epoch's weights file of a
// run directory.
func bestWeights(t *testing.T, dir string) []byte {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(dir, "state.json"))
	require.NoError(t, err)
	var st struct {
		BestFile string `json:"best_file"`
	}
	require.NoError(t, json.Unmarshal(raw, &st))
	require.NotEmpty(t, st.BestFile)
	b, err := os.ReadFile(filepath.Join(dir, st.BestFile))
	require.NoError(t, err)
	return b
}

// TestTrainDataParallelLaunchers: `--nproc-per-node 2` and Debian's
// torchrun starting the same command give the same weights, bit for bit.
func TestTrainDataParallelLaunchers(t *testing.T) {
	require.True(t, dist.Available(), "this build has no c10d Gloo backend: install libgloo-dev and rebuild")
	dir := t.TempDir()
	r := robarch(t, dir, append(dpTrainArgs, "--out", "standalone", "--nproc-per-node", "2")...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Contains(t, r.stdout, "clean_acc")
	assert.Contains(t, r.stderr, "data-parallel")

	port, err := dist.FreePort()
	require.NoError(t, err)
	bin := os.Getenv("ROBARCH_BIN")
	if bin == "" {
		bin = os.Args[0]
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	args := append([]string{"-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
		"--master_port", strconv.Itoa(port), "--redirects", "1", "--tee", "1", "--no_python", bin, "--threads", "1"},
		append(dpTrainArgs, "--out", "torchrun")...)
	cmd := exec.CommandContext(ctx, "/usr/bin/python3", args...) // Debian's, with python3-torch
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "ROBARCH_TEST_AS_MAIN=1")
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Contains(t, string(out), "launcher=torchrun")

	assert.Equal(t, bestWeights(t, filepath.Join(dir, "standalone")), bestWeights(t, filepath.Join(dir, "torchrun")),
		"the same job under both launchers")
}

// TestTrainDataParallelRefusesBadInput: inconsistent launch settings are
// refused before any data is read or any process started.
func TestTrainDataParallelRefusesBadInput(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string
	}{
		{"more processes than cores", nil, []string{"--nproc-per-node", strconv.Itoa(runtime.NumCPU() + 1)},
			fmt.Sprintf("--nproc-per-node %d exceeds the %d CPU cores", runtime.NumCPU()+1, runtime.NumCPU())},
		{"cuda without nccl", nil, []string{"--nproc-per-node", "2", "--device", "cuda"}, "needs c10d's NCCL backend"},
		{"rank beyond world", []string{"WORLD_SIZE=2", "RANK=5"}, nil, "RANK=5: must be in [0, 2)"},
		{"rank without world", []string{"RANK=1"}, nil, "RANK=1 without WORLD_SIZE"},
		{"shards that do not split", nil, []string{"--batch-shards", "3"}, "batch shards 3: must be 0 (one per process) or divide the batch size 64"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			cmd := robarchCmd(ctx, dir, append(append(append([]string{}, dpTrainArgs...), "--out", "run"), tt.args...)...)
			cmd.Env = append(cmd.Env, tt.env...)
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "%s", out)
			assert.Contains(t, string(out), tt.want)
			assert.NoDirExists(t, filepath.Join(dir, "run"), "refused before any work")
		})
	}
}

// TestEvalShardedEqualsOneProcess: `robarch eval --nproc-per-node 2`
// splits the points by batches and sums the counts; every accuracy equals
// one process's on the same points.
func TestEvalShardedEqualsOneProcess(t *testing.T) {
	require.True(t, dist.Available(), "this build has no c10d Gloo backend: install libgloo-dev and rebuild")
	ckpt, _ := microWeights(t)
	dir := t.TempDir()
	// 5 batches of 16 (the last of 8): the ranks get 3 and 2.
	args := []string{"eval", "--weights", ckpt, "--dataset", "synthetic", "--size", "72", "--batch-size", "16",
		"--eps", "0.1", "--attacks", "pgd3,apgd-ce,square", "--json"}
	reports := map[string]map[string]any{}
	for name, extra := range map[string][]string{"one": nil, "two": {"--nproc-per-node", "2"}} {
		r := robarch(t, dir, append(append([]string{}, args...), extra...)...)
		require.Equal(t, 0, r.code, r.stderr)
		var rep map[string]any
		require.NoError(t, json.Unmarshal([]byte(r.stdout), &rep), "%s: stdout is rank 0's JSON alone:\n%s", name, r.stdout)
		reports[name] = rep
	}
	one, two := reports["one"], reports["two"]
	assert.EqualValues(t, 72, two["n"])
	for _, key := range []string{"n", "clean_acc", "robust_acc", "per_attack"} {
		assert.Equal(t, one[key], two[key], key)
	}
	assert.Less(t, one["robust_acc"].(float64), one["clean_acc"].(float64), "the attacks lower accuracy, so the comparison can fail")

	r := robarch(t, dir, "eval", "--weights", ckpt, "--dataset", "synthetic", "--nproc-per-node", "2", "--device", "cuda:1")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "several processes take one GPU each (cuda:LOCAL_RANK); give --device cuda")
}

// TestSweepTrialOnTwoProcesses: a sweep with nproc_per_trial 2 trains each
// trial as a 2-process data-parallel job started by the worker; its rows
// equal those of one process with train.batch_shards 2.
func TestSweepTrialOnTwoProcesses(t *testing.T) {
	require.True(t, dist.Available(), "this build has no c10d Gloo backend: install libgloo-dev and rebuild")
	dir := t.TempDir()
	sw := writeSweep(t, dir, tinySweep)
	for name, set := range map[string]string{"two.db": "nproc_per_trial=2", "one.db": "train.batch_shards=2"} {
		r := robarch(t, dir, "sweep", "--sweep", sw, "--seeds", "0", "--store", name, "--work", name+"-trials", "--progress", "none", "--set", set)
		require.Equal(t, 0, r.code, r.stderr)
		if name == "two.db" {
			assert.Contains(t, r.stderr, "trial starts data-parallel")
			assert.Contains(t, r.stderr, "data-parallel trial", "the ranks' lines reach the worker's log")
		}
	}
	two, one := rowsOf(t, dir, "two.db"), rowsOf(t, dir, "one.db")
	require.Len(t, two, 1)
	for key, want := range one {
		got, ok := two[key]
		require.True(t, ok, key)
		assert.Equal(t, "done", got.Status)
		assert.Equal(t, want.Metrics, got.Metrics, "%s: the same numbers on 2 processes as 2 shards in one", key)
	}

	r := robarch(t, dir, "sweep", "--sweep", sw, "--store", "bad.db", "--dry-run", "--set", "nproc_per_trial=-1")
	assert.NotEqual(t, 0, r.code)
	assert.Contains(t, r.stderr, "nproc_per_trial: -1, want 0 or 1")
}

// rankPID finds the process of the given rank among parent's children
// (their environment holds RANK).
func rankPID(t *testing.T, parent, rank int) int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	require.NoError(t, err)
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so cut after ')'.
		fields := strings.Fields(string(stat[bytes.LastIndexByte(stat, ')')+1:]))
		if len(fields) < 2 || fields[1] != strconv.Itoa(parent) {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		for _, kv := range bytes.Split(env, []byte{0}) {
			if string(kv) == "RANK="+strconv.Itoa(rank) {
				return pid
			}
		}
	}
	return 0
}

// TestTrainDataParallelRankKilledResumes: kill -9 of rank 1 after the
// first epoch stops the job with an error naming the rank; the same
// command with --resume restarts the group from the last checkpoint and
// ends with the weights of an uninterrupted run, bit for bit.
func TestTrainDataParallelRankKilledResumes(t *testing.T) {
	require.True(t, dist.Available(), "this build has no c10d Gloo backend: install libgloo-dev and rebuild")
	dir := t.TempDir()
	args := append(append([]string{}, dpTrainArgs...), "--nproc-per-node", "2", "--epochs", "3", "--train-size", "512")
	r := robarch(t, dir, append(args, "--out", "whole")...)
	require.Equal(t, 0, r.code, r.stderr)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := robarchCmd(ctx, dir, append(args, "--out", "killed")...)
	var errb bytes.Buffer
	cmd.Stderr = &errb
	require.NoError(t, cmd.Start())
	first := filepath.Join(dir, "killed", "last-0001.ot")
	deadline := time.Now().Add(3 * time.Minute)
	for {
		if _, err := os.Stat(first); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "no first-epoch checkpoint: %s", errb.String())
		time.Sleep(20 * time.Millisecond)
	}
	pid := rankPID(t, cmd.Process.Pid, 1)
	require.NotZero(t, pid, "rank 1's process")
	require.NoError(t, syscall.Kill(pid, syscall.SIGKILL))
	err := cmd.Wait()
	require.Error(t, err, "the job fails when a rank dies")
	assert.Contains(t, errb.String(), "rank 1")

	r = robarch(t, dir, append(args, "--out", "killed", "--resume")...)
	require.Equal(t, 0, r.code, r.stderr)
	assert.Equal(t, bestWeights(t, filepath.Join(dir, "whole")), bestWeights(t, filepath.Join(dir, "killed")),
		"resumed after a rank died: the weights of the uninterrupted run")
}
