package dist

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/libtch"
	"github.com/sugarme/gotch/ts"
)

// The tests start real processes on 127.0.0.1 (this test binary, which
// runs a scenario instead of the tests when scenarioEnv is set).
const scenarioEnv = "ROBARCH_DIST_SCENARIO"

func TestMain(m *testing.M) {
	if s := os.Getenv(scenarioEnv); s != "" {
		if err := runScenario(s); err != nil {
			fmt.Fprintln(os.Stderr, "scenario error:", err)
			os.Exit(3)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// collectives is what each rank of the "collectives" scenario reports.
type collectives struct {
	Rank         int
	GradMean     float64 // of a channels-last gradient, after averaging
	GradMax      float64
	ChannelsLast bool
	NoGradKept   bool // a parameter without a gradient still has none
	Broadcast    []float64
	Counter      int64
	Sums         []float64
}

func runScenario(name string) error {
	e, ok, err := FromEnv(os.Getenv)
	if err != nil || !ok {
		return fmt.Errorf("environment: ok %v, %v", ok, err)
	}
	timeout := 20 * time.Second
	if s := os.Getenv("ROBARCH_DIST_TIMEOUT"); s != "" {
		if timeout, err = time.ParseDuration(s); err != nil {
			return err
		}
	}
	g, err := Join(e, timeout)
	if err != nil {
		return err
	}
	defer g.Close()
	switch name {
	case "collectives":
		return scenarioCollectives(g)
	case "allreduce-bench":
		return scenarioAllreduceBench(g)
	case "peer-dies":
		if g.Rank() == 1 {
			os.Exit(0) // gone without a word
		}
		start := time.Now()
		err := g.Barrier()
		fmt.Printf("%s\n", mustJSON(map[string]any{"err": fmt.Sprint(err), "seconds": time.Since(start).Seconds()}))
		return nil
	}
	return fmt.Errorf("unknown scenario %q", name)
}

func scenarioCollectives(g *Group) error {
	r := float64(g.Rank() + 1)
	// A channels-last parameter whose gradient is rank+1 everywhere, and
	// one without a gradient.
	p := ts.MustOnes([]int64{4, 3, 5, 5}, gotch.Float, gotch.CPU)
	if err := libtch.RobarchSetMemoryFormat([]unsafe.Pointer{p.Ctensor()}, true); err != nil {
		return err
	}
	p.MustRequiresGrad_(true)
	q := ts.MustOnes([]int64{7}, gotch.Float, gotch.CPU)
	q.MustRequiresGrad_(true)
	loss := p.MustSum(gotch.Float, false).MustMulScalar(ts.FloatScalar(r), true)
	if err := loss.Backward(); err != nil {
		return err
	}
	if err := g.ReduceGradients([]unsafe.Pointer{p.Ctensor(), q.Ctensor()}, 1/float64(g.World())); err != nil {
		return err
	}
	grad := p.MustGrad(false)
	cl, err := libtch.RobarchIsChannelsLast(grad.Ctensor())
	if err != nil {
		return err
	}
	out := collectives{Rank: g.Rank(), GradMean: grad.MustMean(gotch.Double, false).Float64Values()[0],
		GradMax: grad.MustMax(false).Float64Values()[0], ChannelsLast: cl, NoGradKept: !q.MustGrad(false).MustDefined()}

	b := ts.MustOnes([]int64{3}, gotch.Float, gotch.CPU).MustMulScalar(ts.FloatScalar(r*10), true)
	c := ts.MustOnes([]int64{1}, gotch.Int64, gotch.CPU).MustMulScalar(ts.IntScalar(int64(g.Rank()+5)), true)
	if err := g.BroadcastBuffers([]unsafe.Pointer{b.Ctensor(), c.Ctensor()}); err != nil {
		return err
	}
	out.Broadcast = b.Float64Values()
	out.Counter = c.Int64Values()[0]
	out.Sums = []float64{r, 0.5}
	if err := g.Sum(out.Sums); err != nil {
		return err
	}
	if err := g.Barrier(); err != nil {
		return err
	}
	fmt.Println(mustJSON(out))
	return nil
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

// launchScenario runs a scenario on n ranks and returns each rank's
// standard output (rank 0's as is, the others' under "[rank k] ").
func launchScenario(t *testing.T, name string, n int, extraEnv ...string) (map[int]string, error) {
	t.Helper()
	if !Available() {
		t.Fatal("this build has no c10d Gloo backend: install libgloo-dev and rebuild")
	}
	var out, errb bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	err := Launch{N: n, Exe: os.Args[0], Args: []string{"-test.run=^$"},
		Env: append(append(os.Environ(), scenarioEnv+"="+name), extraEnv...), Stdout: &out, Stderr: &errb}.Run(ctx)
	t.Logf("stderr:\n%s", errb.String())
	lines := map[int]string{}
	for _, line := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		rank := 0
		if rest, ok := strings.CutPrefix(line, "[rank "); ok {
			num, text, _ := strings.Cut(rest, "] ")
			rank, _ = strconv.Atoi(num)
			line = text
		}
		if strings.HasPrefix(line, "{") {
			lines[rank] = line
		}
	}
	return lines, err
}

func TestCollectivesOnTwoRanks(t *testing.T) {
	lines, err := launchScenario(t, "collectives", 2)
	require.NoError(t, err)
	require.Len(t, lines, 2)
	for rank := range 2 {
		var c collectives
		require.NoError(t, json.Unmarshal([]byte(lines[rank]), &c), lines[rank])
		assert.Equal(t, rank, c.Rank)
		assert.Equal(t, 1.5, c.GradMean, "mean of 1 and 2")
		assert.Equal(t, 1.5, c.GradMax)
		assert.True(t, c.ChannelsLast, "the gradient keeps its memory format")
		assert.True(t, c.NoGradKept)
		assert.Equal(t, []float64{10, 10, 10}, c.Broadcast, "rank 0's values")
		assert.Equal(t, int64(5), c.Counter, "rank 0's integer buffer")
		assert.Equal(t, []float64{3, 1}, c.Sums)
	}
}

func TestDeadPeerIsAnErrorNotAHang(t *testing.T) {
	lines, err := launchScenario(t, "peer-dies", 2, "ROBARCH_DIST_TIMEOUT=30s")
	require.NoError(t, err, "rank 1 exits 0 and rank 0 reports")
	var got struct {
		Err     string
		Seconds float64
	}
	require.NoError(t, json.Unmarshal([]byte(lines[0]), &got), lines[0])
	assert.Contains(t, got.Err, "rank 0: barrier")
	assert.Less(t, got.Seconds, 31.0, "bounded by the timeout")
}

func TestJoinRefusesAPortInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	_, err = Join(Env{Addr: "127.0.0.1", Port: port, Rank: 0, World: 2, LocalWorld: 2}, time.Second)
	require.Error(t, err)
	assert.Contains(t, err.Error(), fmt.Sprintf("MASTER_PORT=%d is in use", port))
}

func TestLaunchNamesTheFailedRankAndStopsTheOthers(t *testing.T) {
	start := time.Now()
	err := Launch{N: 3, Exe: "sh", Args: []string{"-c", `if [ "$RANK" = 2 ]; then echo "rank $RANK of $WORLD_SIZE failing" >&2; exit 7; fi; sleep 60`},
		Stdout: &bytes.Buffer{}, Stderr: &bytes.Buffer{}, Grace: time.Second}.Run(context.Background())
	require.Error(t, err)
	var re *RankError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 2, re.Rank)
	assert.Contains(t, err.Error(), "exit status 7")
	assert.Less(t, time.Since(start), 30*time.Second, "the sleeping ranks were stopped")
}

func TestLaunchPrefixesOtherRanks(t *testing.T) {
	var out bytes.Buffer
	err := Launch{N: 2, Exe: "sh", Args: []string{"-c", `echo "hello from $RANK/$WORLD_SIZE local $LOCAL_RANK/$LOCAL_WORLD_SIZE at $MASTER_ADDR"`},
		Stdout: &out, Stderr: &bytes.Buffer{}}.Run(context.Background())
	require.NoError(t, err)
	assert.Contains(t, out.String(), "hello from 0/2 local 0/2 at 127.0.0.1\n")
	assert.Contains(t, out.String(), "[rank 1] hello from 1/2 local 1/2 at 127.0.0.1\n")
}

// allreduceReps is how many timed allreduces each side of the benchmark
// runs after two untimed ones.
const allreduceReps = 10

// benchGradients is ResNet-50's gradient volume (25.6M floats) as 160
// tensors of 160,000, the same list on both sides of the benchmark.
const benchTensors, benchTensorSize = 160, 160_000

func scenarioAllreduceBench(g *Group) error {
	ptrs := make([]unsafe.Pointer, benchTensors)
	keep := make([]*ts.Tensor, benchTensors)
	for i := range ptrs {
		p := ts.MustOnes([]int64{benchTensorSize}, gotch.Float, gotch.CPU)
		p.MustRequiresGrad_(true)
		loss := p.MustSum(gotch.Float, false)
		if err := loss.Backward(); err != nil {
			return err
		}
		keep[i], ptrs[i] = p, p.Ctensor()
	}
	var times []float64
	for rep := range allreduceReps + 2 {
		start := time.Now()
		if err := g.ReduceGradients(ptrs, 1/float64(g.World())); err != nil {
			return err
		}
		if rep >= 2 {
			times = append(times, time.Since(start).Seconds()*1000)
		}
	}
	fmt.Println(mustJSON(map[string]any{"ms": median(times)}))
	return nil
}

func median(xs []float64) float64 {
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// pytorchAllreduce is the peer: torch.distributed (Gloo) under Debian's
// torchrun, the same tensors in the same 25 MiB buckets, flattened,
// all-reduced asynchronously, averaged and copied back, as robarch does.
const pytorchAllreduce = `
import json, os, statistics, time, torch, torch.distributed as dist
torch.set_num_threads(1)
dist.init_process_group("gloo")
world = dist.get_world_size()
ps = [torch.ones(%d, requires_grad=True) for _ in range(%d)]
for p in ps:
    p.sum().backward()
cap = 25 << 20
buckets, cur, size = [], [], 0
for p in ps:
    n = p.numel() * 4
    if cur and size + n > cap:
        buckets.append(cur); cur, size = [], 0
    cur.append(p); size += n
buckets.append(cur)
flats = [torch.zeros(sum(p.numel() for p in b)) for b in buckets]
times = []
for rep in range(%d + 2):
    t0 = time.perf_counter()
    works = []
    for b, f in zip(buckets, flats):
        off = 0
        for p in b:
            f[off:off + p.numel()].copy_(p.grad.view(-1)); off += p.numel()
        works.append(dist.all_reduce(f, async_op=True))
    for b, f, w in zip(buckets, flats, works):
        w.wait(); f.mul_(1.0 / world)
        off = 0
        for p in b:
            p.grad.view(-1).copy_(f[off:off + p.numel()]); off += p.numel()
    if rep >= 2:
        times.append((time.perf_counter() - t0) * 1000)
if dist.get_rank() == 0:
    print(json.dumps({"ms": statistics.median(times)}))
dist.destroy_process_group()
`

// BenchmarkAllreduceResNet50Gradients times one bucketed gradient
// allreduce of ResNet-50's volume on 2 ranks × 1 thread over 127.0.0.1,
// robarch and PyTorch (Debian's torchrun, Gloo) in the same invocation:
//
//	go test ./internal/dist -run '^$' -bench AllreduceResNet50 -benchtime 1x
func BenchmarkAllreduceResNet50Gradients(b *testing.B) {
	for range b.N {
		robarchMS := benchRobarch(b)
		torchMS := benchTorch(b)
		b.ReportMetric(robarchMS, "robarch-ms")
		b.ReportMetric(torchMS, "pytorch-ms")
		b.ReportMetric(torchMS/robarchMS, "speedup-vs-pytorch")
	}
}

func benchRobarch(b *testing.B) float64 {
	var out, errb bytes.Buffer
	err := Launch{N: 2, Exe: os.Args[0], Args: []string{"-test.run=^$", "-test.bench=^$"},
		Env: append(os.Environ(), scenarioEnv+"=allreduce-bench"), Stdout: &out, Stderr: &errb}.Run(context.Background())
	if err != nil {
		b.Fatalf("%v\n%s", err, errb.String())
	}
	return msFrom(b, out.String())
}

func benchTorch(b *testing.B) float64 {
	dir := b.TempDir()
	script := filepath.Join(dir, "allreduce.py")
	if err := os.WriteFile(script, []byte(fmt.Sprintf(pytorchAllreduce, benchTensorSize, benchTensors, allreduceReps)), 0o644); err != nil {
		b.Fatal(err)
	}
	port, err := FreePort()
	if err != nil {
		b.Fatal(err)
	}
	cmd := exec.Command("/usr/bin/python3", "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_addr", "127.0.0.1",
		"--master_port", strconv.Itoa(port), "--redirects", "1", "--tee", "1", script)
	cmd.Env = append(os.Environ(), "OMP_NUM_THREADS=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("pytorch peer: %v\n%s", err, out)
	}
	return msFrom(b, string(out))
}

func msFrom(b *testing.B, out string) float64 {
	for _, line := range strings.Split(out, "\n") {
		if i := strings.Index(line, `{"ms"`); i >= 0 {
			var v struct{ MS float64 }
			if err := json.Unmarshal([]byte(line[i:]), &v); err == nil {
				return v.MS
			}
		}
	}
	b.Fatalf("no timing in:\n%s", out)
	return 0
}
