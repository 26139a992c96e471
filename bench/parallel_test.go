package bench

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/dist"
)

// TestMain makes this test binary a data-parallel bench worker when
// RunParallel starts it as one.
func TestMain(m *testing.M) {
	if IsWorker() {
		if err := ServeWorker(context.Background()); err != nil {
			fmt.Fprintln(os.Stderr, "bench worker:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// runParallelTiny runs the data-parallel bench briefly on real processes
// on 127.0.0.1: robarch's 2 ranks (this test binary as the worker) and
// its one-process configuration, with peer PyTorch's DDP under torchrun
// and its one process too, on a tiny net and a tiny allreduce; it checks
// that every figure is sane.
func runParallelTiny(t *testing.T, peer bool) *ParallelReport {
	if !dist.Available() {
		t.Skip("this build has no c10d Gloo backend")
	}
	start := time.Now()
	rep, err := RunParallel(context.Background(), Config{
		Model: "micro", Spec: microSpec(t), Workloads: []Workload{Train, Allreduce},
		Batch: 4, Steps: 2, Warmup: 1, Threads: 1, Nproc: 2, Peer: peer, Logger: quiet(),
		PeerMemoryFormat: model.ChannelsLast, AllreduceFloats: 40_000, AllreduceTensors: 4,
		Worker: []string{os.Args[0], "-test.run=^$"},
	})
	require.NoError(t, err)
	t.Logf("took %s", time.Since(start))
	assert.Equal(t, model.ChannelsLast, rep.MemoryFormat)
	require.Len(t, rep.Results, 2)
	train, ar := rep.Results[0], rep.Results[1]
	configs := map[bool]int{true: 4, false: 2}[peer]
	require.Len(t, train.Configs, configs)
	for _, c := range train.Configs {
		assert.Greater(t, c.StepSeconds, 0.0, c.Name)
		assert.Greater(t, c.ImagesPerS, 0.0, c.Name)
		assert.GreaterOrEqual(t, c.AllreduceShare, 0.0, c.Name)
		assert.LessOrEqual(t, c.AllreduceShare, 1.0, c.Name)
		ddp := c.Name == robarchDDP || c.Name == pytorchDDP
		assert.Equal(t, map[bool]int{true: 2, false: 1}[ddp], c.Processes, c.Name)
		assert.Equal(t, 8, c.Processes*c.BatchPerProcess, "the same global batch: %s", c.Name)
		if ddp {
			assert.Greater(t, c.AllreduceSeconds, 0.0, c.Name)
		} else {
			assert.Zero(t, c.AllreduceSeconds, c.Name)
		}
	}
	assert.Greater(t, train.Configs[0].BroadcastSeconds, 0.0, "robarch broadcasts the batch-norm statistics")
	assert.Greater(t, train.ScalingEfficiency, 0.0)
	require.Len(t, ar.Configs, configs/2, "the allreduce runs on the data-parallel configurations only")
	for _, c := range ar.Configs {
		assert.Greater(t, c.StepSeconds, 0.0, c.Name)
		assert.Greater(t, c.AllreduceShare, 0.5, "the step is the allreduce (each rank's own over the slowest's time): %s", c.Name)
		assert.LessOrEqual(t, c.AllreduceShare, 1.0, c.Name)
	}
	assert.EqualValues(t, 40_000, ar.Floats)
	var buf bytes.Buffer
	require.NoError(t, WriteParallelTable(&buf, rep))
	t.Log(buf.String())
	assert.Contains(t, buf.String(), "scaling efficiency (2×1 over 1×2)")
	buf.Reset()
	require.NoError(t, WriteParallelJSON(&buf, rep))
	lines := decodeLines(t, buf.Bytes())
	require.Len(t, lines, 2)
	for _, f := range []string{"workload", "configs", "scaling_efficiency", "nproc", "batch_per_process"} {
		assert.Contains(t, lines[0], f)
	}
	return rep
}

func TestRunParallelOnTwoProcesses(t *testing.T) {
	rep := runParallelTiny(t, false)
	assert.Zero(t, rep.Results[0].PairedRatio, "no peer, no ratio")
}

// TestRunParallelWithPyTorchDDP: the same with PyTorch's side (slower to
// start: torchrun and three Python processes import torch).
func TestRunParallelWithPyTorchDDP(t *testing.T) {
	startTestPeer(t).close() // skip early when torch is missing
	rep := runParallelTiny(t, true)
	assert.NotEmpty(t, rep.Torch)
	train, ar := rep.Results[0], rep.Results[1]
	assert.Greater(t, train.PairedRatio, 0.0)
	assert.Greater(t, train.PeerScalingEfficiency, 0.0)
	assert.Greater(t, ar.PairedRatio, 0.0)
	var buf bytes.Buffer
	require.NoError(t, WriteParallelTable(&buf, rep))
	assert.Contains(t, buf.String(), "PyTorch DDP, 2 proc × 1 thr (Gloo)")
}

func TestParallelConfigIsChecked(t *testing.T) {
	base := Config{Model: "micro", Spec: microSpec(t), Workloads: []Workload{Train}, Batch: 4, Steps: 1, Nproc: 2, Worker: []string{"x"}}
	for _, tc := range []struct {
		edit func(*Config)
		want string
	}{
		{func(c *Config) { c.Nproc = 1 }, "at least 2 processes"},
		{func(c *Config) { c.Workloads = []Workload{PGD10} }, "train and allreduce"},
		{func(c *Config) { c.Worker = nil }, "no worker command"},
		{func(c *Config) { c.PeerFold = true }, "one process's workloads"},
	} {
		c := base
		tc.edit(&c)
		_, err := RunParallel(context.Background(), c)
		require.Error(t, err)
		assert.Contains(t, err.Error(), tc.want)
	}
	_, err := ParseParallelWorkloads("train,pgd10")
	assert.ErrorContains(t, err, "train and allreduce")
	ws, err := ParseParallelWorkloads("allreduce, train,train")
	require.NoError(t, err)
	assert.Equal(t, []Workload{Allreduce, Train}, ws)
}
