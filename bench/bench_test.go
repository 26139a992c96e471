package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/opprof"
	"github.com/robarch/robarch/internal/torchrt"
)

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestParseWorkloads(t *testing.T) {
	tests := []struct {
		in      string
		want    []Workload
		wantErr string
	}{
		{in: "train", want: []Workload{Train}},
		{in: "fgsm-rs, PGD10", want: []Workload{FGSMRS, PGD10}},
		{in: "infer,train,infer", want: []Workload{Infer, Train}},
		{in: "apgd-ce,loader", want: []Workload{APGDCE, Loader}},
		{in: "all", want: Workloads()},
		{in: "pgd", wantErr: `workload "pgd": allowed values are train, fgsm-rs, pgd10, apgd-ce, infer, loader`},
		{in: "train,fgsm", wantErr: `workload "fgsm": allowed values are`},
		{in: " , ", wantErr: "name at least one of train, fgsm-rs"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseWorkloads(tt.in)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestPassesFollowTheConvention(t *testing.T) {
	// Attack gradients cost forward + input backward (2), training steps
	// forward + full backward (3).
	assert.Equal(t, 1.0, Infer.Passes())
	assert.Equal(t, 3.0, Train.Passes())
	assert.Equal(t, 5.0, FGSMRS.Passes())
	assert.Equal(t, 20.0, PGD10.Passes())
	assert.Equal(t, 203.0, APGDCE.Passes())
	assert.Equal(t, 0.0, Loader.Passes())
}

func TestSummarize(t *testing.T) {
	s := Summarize([]float64{5, 1, 4, 2, 3})
	assert.Equal(t, Spread{Median: 3, P25: 2, P75: 4, Min: 1, Max: 5}, s)
	s = Summarize([]float64{10, 20})
	assert.Equal(t, 15.0, s.Median)
	assert.Equal(t, 12.5, s.P25)
	assert.Equal(t, Spread{}, Summarize(nil))
}

func TestConfigValidateNamesTheField(t *testing.T) {
	ok := Config{Workloads: []Workload{Train}, Batch: 8, Steps: 2}
	require.NoError(t, ok.Validate())
	tests := []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no workloads", func(c *Config) { c.Workloads = nil }, "workloads: name at least one"},
		{"unknown workload", func(c *Config) { c.Workloads = []Workload{"pgd"} }, `workload "pgd": allowed values are train`},
		{"batch", func(c *Config) { c.Batch = 1 }, "batch 1: must be at least 2"},
		{"steps", func(c *Config) { c.Steps = 0 }, "steps 0: must be at least 1"},
		{"rss steps", func(c *Config) { c.RSSSteps = -1 }, "rss steps -1"},
		{"profile steps", func(c *Config) { c.ProfileSteps = -1 }, "profile steps -1: must not be negative"},
		{"block", func(c *Config) { c.Block = -1 }, "block -1: must not be negative"},
		{"threads", func(c *Config) { c.Threads = -2 }, "threads -2"},
		{"eps", func(c *Config) { c.Eps = 2 }, "eps 2: must be in [0,1]"},
		{"memory format", func(c *Config) { c.MemoryFormat = "nhwc" }, `memory format "nhwc": want one of [auto contiguous channels-last]`},
		{"peer memory format", func(c *Config) { c.PeerMemoryFormat = model.AutoFormat }, `peer memory format "auto": want contiguous or channels-last`},
		{"peer fold without peer", func(c *Config) { c.PeerFold = true }, "peer fold: folds the PyTorch peer's batch norms, so it needs --peer"},
		{"peer malloc without peer", func(c *Config) { c.PeerMalloc = PeerMallocDefault }, "peer malloc default: sets the PyTorch peer's allocator, so it needs --peer"},
		{"peer malloc", func(c *Config) { c.Peer, c.PeerMalloc = true, "jemalloc" }, `peer malloc "jemalloc": want robarch (robarch's settings) or default (glibc's)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := ok
			tt.edit(&c)
			err := c.Validate()
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

func TestProcStatusReadsMemory(t *testing.T) {
	rss, err := RSS()
	require.NoError(t, err)
	peak, err := PeakRSS()
	require.NoError(t, err)
	assert.Greater(t, rss, int64(1<<20))
	assert.GreaterOrEqual(t, peak, rss)
}

// requiredFields are the JSON fields the issue asks of every object, and
// those --peer adds.
var (
	requiredFields = []string{"model", "workload", "batch", "images_per_s", "gflops", "peak_rss_bytes"}
	peerFields     = []string{"peer_images_per_s", "ratio", "paired_ratio", "peer_malloc"}
)

func decodeLines(t *testing.T, out []byte) []map[string]any {
	t.Helper()
	var objs []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		var m map[string]any
		require.NoError(t, json.Unmarshal([]byte(line), &m), line)
		objs = append(objs, m)
	}
	return objs
}

func microSpec(t testing.TB) arch.Spec {
	spec, err := arch.Get("micro")
	require.NoError(t, err)
	return spec
}

// TestRunEveryWorkload is a tiny real run of each workload without the
// peer: positive rates, FLOPs where a workload has them, memory figures,
// and JSON with the required fields and none of the peer's.
func TestRunEveryWorkload(t *testing.T) {
	rep, err := Run(context.Background(), Config{
		Model: "micro", Spec: microSpec(t), Workloads: Workloads(),
		Batch: 8, Steps: 2, Warmup: 1, Threads: 1, Logger: quiet(),
	})
	require.NoError(t, err)
	require.Len(t, rep.Results, len(Workloads()))
	assert.Greater(t, rep.CeilingGFLOPS, 0.0)
	wantParams, err := arch.Params(microSpec(t))
	require.NoError(t, err)
	assert.Equal(t, wantParams, rep.Params)
	for i, res := range rep.Results {
		assert.Equal(t, Workloads()[i], res.Workload)
		assert.Greater(t, res.ImagesPerS, 0.0, res.Workload)
		assert.LessOrEqual(t, res.Spread.Min, res.ImagesPerS)
		assert.GreaterOrEqual(t, res.Spread.Max, res.ImagesPerS)
		assert.Greater(t, res.PeakRSSBytes, int64(0))
		assert.Equal(t, 2, res.RSSGrowthSteps)
		assert.Zero(t, res.PeerImagesPerS)
		if res.Workload == Loader {
			assert.Zero(t, res.GFLOPS)
		} else {
			assert.InDelta(t, res.ImagesPerS*2*float64(rep.MACs)*res.Workload.Passes()/1e9, res.GFLOPS, 1e-9)
			assert.Greater(t, res.CeilingFraction, 0.0)
		}
	}

	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, rep))
	objs := decodeLines(t, buf.Bytes())
	require.Len(t, objs, len(Workloads()))
	for _, obj := range objs {
		for _, f := range requiredFields {
			assert.Contains(t, obj, f)
		}
		for _, f := range peerFields {
			assert.NotContains(t, obj, f)
		}
		assert.Equal(t, "micro", obj["model"])
		assert.Equal(t, 8.0, obj["batch"])
	}

	buf.Reset()
	require.NoError(t, WriteTable(&buf, rep))
	table := buf.String()
	for _, w := range Workloads() {
		assert.Contains(t, table, string(w))
	}
	assert.NotContains(t, table, "PyTorch")
}

// TestRSSWindow checks that the RSS window covers RSSSteps for the
// workloads it applies to and the timed steps for the others.
func TestRSSWindow(t *testing.T) {
	rep, err := Run(context.Background(), Config{
		Spec: microSpec(t), Workloads: []Workload{Train, Infer},
		Batch: 4, Steps: 2, Warmup: -1, RSSSteps: 5, Threads: 1, Logger: quiet(),
	})
	require.NoError(t, err)
	assert.Equal(t, 5, rep.Results[0].RSSGrowthSteps)
	assert.Equal(t, 2, rep.Results[1].RSSGrowthSteps)
	assert.Equal(t, 0, rep.Results[0].Warmup)
}

// startTestPeer starts the peer or skips the test when torch is missing.
func startTestPeer(t *testing.T) *peer {
	t.Helper()
	p, err := startPeer("", PeerMallocRobarch)
	if err != nil && strings.Contains(err.Error(), ErrNoTorch.Error()) {
		t.Skipf("skipping the PyTorch peer: %v", err)
	}
	if err != nil && strings.Contains(err.Error(), "start the PyTorch peer") {
		t.Skipf("skipping the PyTorch peer: %v", err)
	}
	require.NoError(t, err)
	t.Cleanup(p.close)
	return p
}

// TestPeerStartsWithTheAskedAllocator: the peer process gets robarch's
// malloc settings, or no malloc variable at all (glibc's defaults), even
// one of the user's own.
func TestPeerStartsWithTheAskedAllocator(t *testing.T) {
	startTestPeer(t) // skip early when torch is missing
	peerMallocEnv := func(t *testing.T, m PeerMalloc) (malloc, env []string) {
		p, err := startPeer("", m)
		require.NoError(t, err)
		defer p.close()
		raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", p.cmd.Process.Pid))
		require.NoError(t, err)
		env = strings.Split(string(raw), "\x00")
		for _, kv := range env {
			name, _, _ := strings.Cut(kv, "=")
			if slices.Contains(torchrt.AllocatorEnvVars(), name) || name == torchrt.TunablesMarker {
				malloc = append(malloc, kv)
			}
		}
		return malloc, env
	}
	t.Run("robarch", func(t *testing.T) {
		want := torchrt.AllocatorEnv()
		require.NotEmpty(t, want, "robarch tunes malloc here (is a MALLOC_* variable set?)")
		malloc, _ := peerMallocEnv(t, PeerMallocRobarch)
		for _, kv := range want {
			assert.Contains(t, malloc, kv)
		}
	})
	t.Run("default", func(t *testing.T) {
		t.Setenv("MALLOC_TOP_PAD_", "65536")
		malloc, env := peerMallocEnv(t, PeerMallocDefault)
		assert.Empty(t, malloc, "glibc's defaults: no malloc variable")
		assert.Contains(t, env, "PATH="+os.Getenv("PATH"), "the rest of the environment is kept")
	})
}

// TestPeerBuildsTheSameNetwork: the peer's own builder, fed the spec,
// makes exactly arch.Params parameters and arch.MACs multiply-accumulates,
// and refuses a wrong count.
func TestPeerBuildsTheSameNetwork(t *testing.T) {
	p := startTestPeer(t)
	specs := map[string]arch.Spec{}
	for _, name := range []string{"micro", "resnet18-cifar", "resnet50", "robarch-s", "wrn-28-10", "rb-dm-preact-resnet-18-silu"} {
		spec, err := arch.Get(name)
		require.NoError(t, err)
		specs[name] = spec
	}
	// Dense connections, group norm and GELU appear in no preset.
	dense := microSpec(t)
	dense.SetDepths(4, 4, 1)
	dense.Block.DenseRatio = 2
	dense.Block.Norms = []string{arch.GroupNorm, arch.BatchNorm, arch.GroupNorm}
	dense.Block.NormGroups = 8
	dense.Block.Activations = []string{"gelu", "silu", "relu"}
	specs["micro-dense-gn"] = dense
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			want, err := arch.Params(spec)
			require.NoError(t, err)
			macs, err := arch.MACs(spec, 0, 0)
			require.NoError(t, err)
			s := peerSetup{Spec: spec.WithDefaults(), Params: want, MACs: macs, Threads: 1, Batch: 2,
				Eps: DefaultEps, LR: DefaultLR, MemoryFormat: model.Contiguous, Precision: amp.FP32, Device: "cpu"}
			r, err := p.setup(s)
			require.NoError(t, err)
			assert.Equal(t, want, r.Params)
			assert.Equal(t, macs, r.MACs)
			// Its forward pass runs (SE, dense connections, pre-activation).
			folded, err := p.prepare(Infer, 0)
			require.NoError(t, err)
			assert.Zero(t, folded, "no folding unless asked")
			r, err = p.step()
			require.NoError(t, err)
			assert.Greater(t, r.Seconds, 0.0)
			assert.Greater(t, r.CPUSeconds, 0.0)
			assert.Equal(t, 2, r.Images)

			// Folded, it folds as many batch norms as robarch's Fold
			// (which ones, and that the function stays: arch/model's
			// TestSpecNetMatchesRobarch), and still runs.
			fold := s
			fold.Fold = true
			_, err = p.setup(fold)
			require.NoError(t, err)
			folded, err = p.prepare(Infer, 1)
			require.NoError(t, err)
			assert.Equal(t, robarchFolds(t, spec), folded)
			folded, err = p.prepare(Train, 0)
			require.NoError(t, err)
			assert.Zero(t, folded, "training runs batch statistics: nothing folded")

			bad := s
			bad.Params++
			_, err = p.setup(bad)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "parameters, arch.Params says")
			bad = s
			bad.MACs--
			_, err = p.setup(bad)
			require.Error(t, err)
			assert.Contains(t, err.Error(), "MACs per image, arch.MACs says")
		})
	}
}

// robarchFolds is how many batch norms robarch's Fold folds in spec.
func robarchFolds(t *testing.T, spec arch.Spec) int {
	t.Helper()
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	vs, net, err := model.New(spec, gotch.CPU, model.Contiguous)
	require.NoError(t, err)
	defer vs.Destroy()
	f, err := net.Fold()
	require.NoError(t, err)
	defer f.Close()
	return f.Norms
}

// TestRunWithPeer is a tiny side-by-side run: the peer's rates and the
// ratio appear in the result and in the JSON.
func TestRunWithPeer(t *testing.T) {
	startTestPeer(t) // skip early when torch is missing
	rep, err := Run(context.Background(), Config{
		Model: "micro", Spec: microSpec(t), Workloads: []Workload{Train, FGSMRS, PGD10, Infer, Loader},
		Batch: 8, Steps: 2, Warmup: 1, Threads: 1, Peer: true, Logger: quiet(),
		PeerMemoryFormat: model.ChannelsLast, PeerFold: true,
	})
	require.NoError(t, err)
	assert.NotEmpty(t, rep.Torch)
	assert.Equal(t, model.ChannelsLast, rep.MemoryFormat, "auto on the CPU")
	assert.Equal(t, model.ChannelsLast, rep.PeerMemoryFormat)
	assert.True(t, rep.FoldBN)
	assert.True(t, rep.PeerFoldBN)
	assert.Equal(t, PeerMallocRobarch, rep.PeerMalloc, "robarch's settings unless asked")
	for _, res := range rep.Results {
		if res.Workload == Loader {
			assert.Zero(t, res.PeerImagesPerS)
			continue
		}
		assert.Greater(t, res.PeerImagesPerS, 0.0, res.Workload)
		assert.Equal(t, res.Workload == PGD10 || res.Workload == Infer, res.FoldedBN, res.Workload)
		assert.Equal(t, res.FoldedBN, res.PeerFoldedBN, "both sides fold the same workloads: %s", res.Workload)
		assert.InDelta(t, res.ImagesPerS/res.PeerImagesPerS, res.Ratio, 1e-9)
		assert.Greater(t, res.PairedRatio, 0.0, res.Workload)
		assert.Nil(t, res.RatioInterval, "2 steps are too few for a 95 percent interval")
		assert.Greater(t, res.PeerPeakRSSBytes, int64(0))
	}
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, rep))
	for _, obj := range decodeLines(t, buf.Bytes()) {
		if obj["workload"] == string(Loader) {
			continue
		}
		for _, f := range append(requiredFields, peerFields...) {
			assert.Contains(t, obj, f)
		}
		evaluates := obj["workload"] == string(PGD10) || obj["workload"] == string(Infer)
		assert.Equal(t, evaluates, obj["peer_folded_bn"] == true, obj["workload"])
	}
	buf.Reset()
	require.NoError(t, WriteTable(&buf, rep))
	assert.Contains(t, buf.String(), "ratio")
	assert.Contains(t, buf.String(), "; PyTorch: channels-last weights, fp32 forward, batch norms folded in pgd10/apgd-ce/infer, robarch's malloc settings")
}

// TestRunWithPeerGivesTheRatiosInterval: with 6 steps or more the paired
// ratio comes with its interval, which holds it, in the result and in the
// table.
func TestRunWithPeerGivesTheRatiosInterval(t *testing.T) {
	startTestPeer(t)
	rep, err := Run(context.Background(), Config{
		Model: "micro", Spec: microSpec(t), Workloads: []Workload{Infer},
		Batch: 8, Steps: 6, Warmup: 1, Threads: 1, Peer: true, Logger: quiet(),
	})
	require.NoError(t, err)
	require.Len(t, rep.Results, 1)
	res := rep.Results[0]
	require.NotNil(t, res.RatioInterval)
	assert.LessOrEqual(t, res.RatioInterval.Lo, res.PairedRatio)
	assert.GreaterOrEqual(t, res.RatioInterval.Hi, res.PairedRatio)
	assert.Equal(t, RatioLevel, res.RatioInterval.Level)
	var buf bytes.Buffer
	require.NoError(t, WriteTable(&buf, rep))
	assert.Contains(t, buf.String(), "paired [95%]")
	assert.Contains(t, buf.String(), fmt.Sprintf("%.2fx [%.2f, %.2f]", res.PairedRatio, res.RatioInterval.Lo, res.RatioInterval.Hi))
}

// With --precision bf16 and --peer-precision bf16 both sides run their
// forward passes under autocast and the report says so, per workload too.
func TestRunWithPeerInBF16(t *testing.T) {
	startTestPeer(t)
	rep, err := Run(context.Background(), Config{
		Model: "micro", Spec: microSpec(t), Workloads: []Workload{Train, PGD10},
		Batch: 8, Steps: 2, Warmup: 1, Threads: 1, Peer: true, Logger: quiet(),
		PeerMemoryFormat: model.ChannelsLast, Precision: amp.BF16, PeerPrecision: amp.BF16,
	})
	require.NoError(t, err)
	assert.Equal(t, amp.BF16, rep.Precision)
	assert.Equal(t, amp.BF16, rep.PeerPrecision)
	var buf bytes.Buffer
	require.NoError(t, WriteJSON(&buf, rep))
	for _, obj := range decodeLines(t, buf.Bytes()) {
		assert.Equal(t, "bf16", obj["precision"])
		assert.Equal(t, "bf16", obj["peer_precision"])
		assert.Equal(t, "channels-last", obj["peer_memory_format"])
		assert.Greater(t, obj["peer_images_per_s"], 0.0)
	}
	buf.Reset()
	require.NoError(t, WriteTable(&buf, rep))
	assert.Contains(t, buf.String(), "robarch: channels-last weights, bf16 forward")
	assert.Contains(t, buf.String(), "PyTorch: channels-last weights, bf16 forward, batch norms as layers")
}

// TestProfileSeesTheSameConvolutionsOnBothSides profiles a training and
// an fgsm-rs step on each side: both frameworks run micro's convolutions
// forward and backward the same number of times per step (the like-with-
// like premise of the comparison), the attack's extra pass shows as more
// convolutions than training, and the table prints them.
func TestProfileSeesTheSameConvolutionsOnBothSides(t *testing.T) {
	startTestPeer(t)
	rep, err := Run(context.Background(), Config{
		Model: "micro", Spec: microSpec(t), Workloads: []Workload{Train, FGSMRS},
		Batch: 8, Steps: 3, Block: 2, Warmup: 1, Threads: 1, Peer: true, Logger: quiet(),
		PeerMemoryFormat: model.ChannelsLast, ProfileSteps: 2,
	})
	require.NoError(t, err)
	convs := map[Workload]float64{}
	for _, res := range rep.Results {
		assert.Equal(t, 2, res.Block, "blocks of 2 steps per side (the last one 1)")
		assert.Positive(t, res.PeerImagesPerS)
		pr := res.Profile
		require.NotNil(t, pr, res.Workload)
		assert.Equal(t, 2, pr.Steps)
		count := func(tab opprof.Table, name string) float64 {
			op, _ := tab.Find(name)
			return op.Calls
		}
		for _, name := range []string{"aten::convolution", "aten::convolution_backward"} {
			assert.Positive(t, count(pr.Ops, name), "%s %s", res.Workload, name)
			assert.Equal(t, count(pr.PeerOps, name), count(pr.Ops, name), "%s %s", res.Workload, name)
		}
		convs[res.Workload] = count(pr.Ops, "aten::convolution")
		assert.Positive(t, pr.StepMS)
		assert.Positive(t, pr.PeerStepMS)
		assert.Positive(t, pr.Ops.SelfUS(), "time inside operators")
	}
	assert.Equal(t, 2*convs[Train], convs[FGSMRS], "fgsm-rs runs the network forward twice")
	var buf bytes.Buffer
	require.NoError(t, WriteTable(&buf, rep))
	assert.Contains(t, buf.String(), "operator profile, fgsm-rs: 2 steps")
	assert.Contains(t, buf.String(), "PyTorch self ms")
}

// TestPeerWithoutTorch shadows torch with a module that fails to import:
// the error says what to install.
func TestPeerWithoutTorch(t *testing.T) {
	if _, err := os.Stat(SystemPython); err != nil {
		t.Skipf("skipping: no %s", SystemPython)
	}
	dir := t.TempDir()
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "torch"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "torch", "__init__.py"), []byte("raise ImportError('no torch here')\n"), 0o644))
	t.Setenv("PYTHONPATH", dir)
	_, err := startPeer("", PeerMallocRobarch)
	require.ErrorIs(t, err, ErrNoTorch)
	assert.Contains(t, err.Error(), "apt-get install python3-torch")
}

func TestPeerWithoutPython(t *testing.T) {
	_, err := startPeer(filepath.Join(t.TempDir(), "no-python"), PeerMallocRobarch)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "apt-get install python3 python3-torch")
}
