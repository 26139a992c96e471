package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/archview"
	"github.com/robarch/robarch/internal/dist"
)

// Allreduce is a data-parallel workload (RunParallel only): the gradient
// exchange of a training step alone, Config.AllreduceFloats floats in
// Config.AllreduceTensors tensors summed over the processes and averaged
// in 25 MiB buckets.
const Allreduce Workload = "allreduce"

// ParallelWorkloads are the workloads RunParallel measures.
func ParallelWorkloads() []Workload { return []Workload{Train, Allreduce} }

// Defaults of the allreduce workload: ResNet-50's gradient volume (25.6M
// floats) as 160 tensors.
const (
	DefaultAllreduceFloats  = 25_600_000
	DefaultAllreduceTensors = 160
)

// ParseParallelWorkloads reads a comma-separated list of RunParallel's
// workloads (train, allreduce).
func ParseParallelWorkloads(list string) ([]Workload, error) {
	var out []Workload
	for _, part := range strings.Split(list, ",") {
		w := Workload(strings.ToLower(strings.TrimSpace(part)))
		switch {
		case w == "":
		case !slices.Contains(ParallelWorkloads(), w):
			return nil, fmt.Errorf("workload %q: with several processes the allowed values are train and allreduce", part)
		case !slices.Contains(out, w):
			out = append(out, w)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("workload %q: name train, allreduce or both", list)
	}
	return out, nil
}

// The configurations a data-parallel bench runs, one step of each in turn.
const (
	robarchDDP    = "robarch-ddp"
	robarchSingle = "robarch-single"
	pytorchDDP    = "pytorch-ddp"
	pytorchSingle = "pytorch-single"
)

// ParallelReport is a data-parallel bench: per workload, every
// configuration's figures.
type ParallelReport struct {
	Model  string `json:"model"`
	Params int64  `json:"params"`
	MACs   int64  `json:"macs"`
	Input  string `json:"input"`
	// Nproc processes × ThreadsPerProcess threads, Batch examples each;
	// the one-process configurations run Nproc×Batch on Nproc×Threads.
	Nproc             int                `json:"nproc"`
	ThreadsPerProcess int                `json:"threads_per_process"`
	Batch             int                `json:"batch_per_process"`
	MemoryFormat      model.MemoryFormat `json:"memory_format"`
	PeerMemoryFormat  model.MemoryFormat `json:"peer_memory_format,omitempty"`
	Precision         amp.Precision      `json:"precision"`
	PeerPrecision     amp.Precision      `json:"peer_precision,omitempty"`
	PeerMalloc        PeerMalloc         `json:"peer_malloc,omitempty"`
	Torch             string             `json:"peer_torch,omitempty"`
	Results           []ParallelResult   `json:"results"`
}

// ParallelResult is one workload. JSON field names are stable.
type ParallelResult struct {
	Model             string   `json:"model"`
	Workload          Workload `json:"workload"`
	Nproc             int      `json:"nproc"`
	ThreadsPerProcess int      `json:"threads_per_process"`
	Batch             int      `json:"batch_per_process"`
	Steps             int      `json:"steps"`
	Warmup            int      `json:"warmup"`
	// Floats and Tensors: the allreduce workload's volume.
	Floats  int64 `json:"floats,omitempty"`
	Tensors int   `json:"tensors,omitempty"`
	// Configs: robarch-ddp, robarch-single (train), and with a peer
	// pytorch-ddp, pytorch-single (train).
	Configs []ConfigResult `json:"configs"`
	// PairedRatio is the median step-by-step ratio of robarch's
	// data-parallel rate over PyTorch DDP's (above 1: robarch faster),
	// with its 95% interval (6 steps or more).
	PairedRatio   float64   `json:"paired_ratio,omitempty"`
	RatioInterval *Interval `json:"paired_ratio_interval,omitempty"`
	// ScalingEfficiency is the median step-by-step ratio of the
	// throughput of Nproc processes × Threads over that of one process
	// with all the threads on the same global batch (robarch's), with its
	// interval; PeerScalingEfficiency PyTorch's.
	ScalingEfficiency     float64   `json:"scaling_efficiency,omitempty"`
	ScalingInterval       *Interval `json:"scaling_efficiency_interval,omitempty"`
	PeerScalingEfficiency float64   `json:"peer_scaling_efficiency,omitempty"`
	PeerScalingInterval   *Interval `json:"peer_scaling_efficiency_interval,omitempty"`
}

// ConfigResult is one configuration of a workload: medians over the timed
// steps. A step's time is the slowest process's; the allreduce and
// broadcast times are the processes' mean.
type ConfigResult struct {
	Name              string  `json:"name"`
	Processes         int     `json:"processes"`
	ThreadsPerProcess int     `json:"threads_per_process"`
	BatchPerProcess   int     `json:"batch_per_process"`
	StepSeconds       float64 `json:"step_s"`
	StepSpread        Spread  `json:"step_s_spread"`
	// ImagesPerS is the median of the steps' global images/s (train).
	ImagesPerS float64 `json:"images_per_s,omitempty"`
	// AllreduceSeconds is the time inside the gradient allreduce (robarch:
	// the blocking call after backward; PyTorch DDP: its own
	// backward_comm_time, first bucket's start to last bucket's end, partly
	// during the backward pass); AllreduceShare the median of its ratio to
	// the step time; OverlapSeconds the part of PyTorch's that overlapped
	// the backward pass; BroadcastSeconds robarch's broadcast of rank 0's
	// batch-norm statistics (PyTorch's is inside its forward pass).
	AllreduceSeconds float64 `json:"allreduce_s"`
	AllreduceShare   float64 `json:"allreduce_share"`
	OverlapSeconds   float64 `json:"allreduce_overlap_s,omitempty"`
	BroadcastSeconds float64 `json:"broadcast_s,omitempty"`
	rates            []float64
}

// RunParallel measures cfg's workloads (ParallelWorkloads) on cfg.Nproc
// processes of cfg.Threads threads each (0: cores ÷ Nproc) on 127.0.0.1:
// robarch's ranks started by internal/dist's standalone launcher running
// cfg.Worker, and with cfg.Peer PyTorch's DDP under Debian's torchrun;
// for train also one process with all the threads on the same global
// batch, robarch's and PyTorch's. Every process is driven over a socket by
// this one, one configuration's step at a time, so that they take turns
// on the machine as Run's two sides do.
func RunParallel(ctx context.Context, cfg Config) (*ParallelReport, error) {
	cfg = cfg.withDefaults()
	if cfg.Threads == 0 {
		cfg.Threads = max(1, runtime.NumCPU()/max(cfg.Nproc, 1))
	}
	if err := cfg.validateParallel(); err != nil {
		return nil, err
	}
	layout, err := arch.Resolve(cfg.Spec)
	if err != nil {
		return nil, fmt.Errorf("bench %s: %w", cfg.Model, err)
	}
	spec := layout.Spec
	rep := &ParallelReport{Model: cfg.Model, Params: layout.Total.Params, MACs: layout.Total.MACs,
		Input: archview.InputString(spec.Input),
		Nproc: cfg.Nproc, ThreadsPerProcess: cfg.Threads, Batch: cfg.Batch, Precision: cfg.Precision}
	if cfg.Peer {
		rep.PeerMemoryFormat, rep.PeerPrecision, rep.PeerMalloc = cfg.PeerMemoryFormat, cfg.PeerPrecision, cfg.PeerMalloc
		if rep.PeerMalloc == "" {
			rep.PeerMalloc = PeerMallocRobarch
		}
	}
	c, err := startCoordinator(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer c.stop()
	if rep.Torch, err = c.accept(ctx); err != nil {
		return nil, err
	}
	for _, w := range cfg.Workloads {
		res, format, err := c.workload(ctx, w, spec, rep)
		if err != nil {
			return nil, fmt.Errorf("bench %s %s on %d processes: %w", cfg.Model, w, cfg.Nproc, err)
		}
		if format != "" {
			rep.MemoryFormat = format
		}
		rep.Results = append(rep.Results, res)
	}
	return rep, nil
}

func (c Config) validateParallel() error {
	switch {
	case c.Nproc < 2:
		return fmt.Errorf("nproc %d: a data-parallel bench needs at least 2 processes", c.Nproc)
	case c.Nproc > runtime.NumCPU():
		return fmt.Errorf("nproc %d exceeds the %d CPU cores of this machine: each process needs at least one", c.Nproc, runtime.NumCPU())
	case !dist.Available():
		return fmt.Errorf("nproc %d: this build has no c10d Gloo backend; install libgloo-dev and run make setup", c.Nproc)
	case c.Device.IsCuda():
		return fmt.Errorf("nproc %d with device %s: the data-parallel bench runs on the CPU (Gloo)", c.Nproc, deviceName(c.Device))
	case len(c.Worker) == 0:
		return fmt.Errorf("nproc %d: no worker command to start robarch's processes with", c.Nproc)
	case c.ProfileSteps > 0 || c.PeerFold || c.NoFold:
		return fmt.Errorf("nproc %d: --profile, --peer-fold and --no-fold apply to one process's workloads", c.Nproc)
	case c.AllreduceFloats < 0 || c.AllreduceTensors < 0:
		return fmt.Errorf("allreduce floats %d, tensors %d: must not be negative", c.AllreduceFloats, c.AllreduceTensors)
	}
	for _, w := range c.Workloads {
		if !slices.Contains(ParallelWorkloads(), w) {
			return fmt.Errorf("workload %q: with several processes the allowed values are train and allreduce", w)
		}
	}
	one := c
	one.Workloads = []Workload{Train}
	return one.Validate()
}

// coordinator drives every worker process of a data-parallel bench.
type coordinator struct {
	cfg    Config
	ln     net.Listener
	sides  []*side
	exited chan sideExit
	dir    string // the peer's files
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// side is one configuration: its processes (by rank) and their output.
type side struct {
	name                  string
	procs, threads, batch int
	conns                 []*workerConn
	log                   *tailBuffer
	// done is closed when the processes have exited, with exitErr.
	done    chan struct{}
	exitErr error
}

// exitStatus says how the side's processes ended, if they did within a
// second (for error messages).
func (s *side) exitStatus() string {
	select {
	case <-s.done:
		return fmt.Sprintf(" (its processes exited: %v)", s.exitErr)
	case <-time.After(time.Second):
		return ""
	}
}

type sideExit struct {
	name string
	err  error
}

type workerConn struct {
	c   net.Conn
	enc *json.Encoder
	rd  *bufio.Reader
}

// startCoordinator listens on 127.0.0.1 and starts every configuration's
// processes; they connect back.
func startCoordinator(ctx context.Context, cfg Config) (*coordinator, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("bench coordinator: %w", err)
	}
	ctx, cancel := context.WithCancel(ctx)
	c := &coordinator{cfg: cfg, ln: ln, cancel: cancel, exited: make(chan sideExit, 4)}
	n, t, b := cfg.Nproc, cfg.Threads, cfg.Batch
	c.sides = []*side{{name: robarchDDP, procs: n, threads: t, batch: b}}
	if cfg.Peer {
		c.sides = append(c.sides, &side{name: pytorchDDP, procs: n, threads: t, batch: b})
	}
	if slices.Contains(cfg.Workloads, Train) {
		c.sides = append(c.sides, &side{name: robarchSingle, procs: 1, threads: n * t, batch: n * b})
		if cfg.Peer {
			c.sides = append(c.sides, &side{name: pytorchSingle, procs: 1, threads: n * t, batch: n * b})
		}
	}
	if cfg.Peer {
		if c.dir, err = os.MkdirTemp("", "robarch-peer-"); err == nil {
			err = writePeerFiles(c.dir)
		}
		if err != nil {
			c.stop()
			return nil, fmt.Errorf("peer: %w", err)
		}
	}
	for _, s := range c.sides {
		s.log, s.done = &tailBuffer{max: 16 << 10}, make(chan struct{})
		if err := c.start(ctx, s); err != nil {
			c.stop()
			return nil, err
		}
	}
	return c, nil
}

// start launches one side's processes.
func (c *coordinator) start(ctx context.Context, s *side) error {
	env := append(withoutLauncherEnv(os.Environ()), WorkerEnv+"="+c.ln.Addr().String(), sideEnv+"="+s.name)
	var run func() error
	switch s.name {
	case robarchDDP:
		l := dist.Launch{N: s.procs, Exe: c.cfg.Worker[0], Args: c.cfg.Worker[1:], Env: env, Stdout: s.log, Stderr: s.log, Grace: 5 * time.Second}
		run = func() error { return l.Run(ctx) }
	case robarchSingle:
		cmd := exec.CommandContext(ctx, c.cfg.Worker[0], c.cfg.Worker[1:]...)
		cmd.Env, cmd.Stdout, cmd.Stderr = env, s.log, s.log
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start robarch's worker %s: %w", c.cfg.Worker[0], err)
		}
		run = cmd.Wait
	default:
		python := c.cfg.Python
		if python == "" {
			python = SystemPython
		}
		script := filepath.Join(c.dir, "ddp_peer.py")
		args := []string{script}
		if s.name == pytorchDDP {
			port, err := dist.FreePort()
			if err != nil {
				return err
			}
			args = []string{"-m", "torch.distributed.run", "--nproc_per_node", strconv.Itoa(s.procs), "--master_addr", "127.0.0.1",
				"--master_port", strconv.Itoa(port), "--redirects", "1", "--tee", "1", script}
		}
		cmd := exec.CommandContext(ctx, python, args...)
		cmd.Env = append(withoutLauncherEnv(peerEnv(c.cfg.PeerMalloc)), WorkerEnv+"="+c.ln.Addr().String(), sideEnv+"="+s.name,
			"OMP_NUM_THREADS="+strconv.Itoa(s.threads))
		cmd.Dir, cmd.Stdout, cmd.Stderr = c.dir, s.log, s.log
		if err := cmd.Start(); err != nil {
			return fmt.Errorf("start the PyTorch peer with %s: %w; %s", python, err, installHint)
		}
		run = cmd.Wait
	}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		s.exitErr = run()
		close(s.done)
		c.exited <- sideExit{s.name, s.exitErr}
	}()
	return nil
}

// withoutLauncherEnv drops the variables of a launcher this process may
// run under: each side's processes get their own.
func withoutLauncherEnv(env []string) []string {
	return slices.DeleteFunc(slices.Clone(env), func(kv string) bool {
		k, _, _ := strings.Cut(kv, "=")
		switch k {
		case "RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT", "GROUP_RANK", "ROLE_RANK":
			return true
		}
		return strings.HasPrefix(k, "TORCHELASTIC_") || strings.HasPrefix(k, "SLURM_")
	})
}

// acceptTimeout bounds the start of every process (torch's import, the
// rendezvous).
const acceptTimeout = 3 * time.Minute

// accept waits for every process's greeting and returns the peer's torch
// version.
func (c *coordinator) accept(ctx context.Context) (string, error) {
	want := 0
	for _, s := range c.sides {
		want += s.procs
		s.conns = make([]*workerConn, s.procs)
	}
	conns := make(chan net.Conn)
	go func() {
		for {
			conn, err := c.ln.Accept()
			if err != nil {
				return
			}
			conns <- conn
		}
	}()
	deadline := time.After(acceptTimeout)
	torch := ""
	for got := 0; got < want; {
		select {
		case conn := <-conns:
			w := &workerConn{c: conn, enc: json.NewEncoder(conn), rd: bufio.NewReader(conn)}
			hello, err := w.read(30 * time.Second)
			if err != nil {
				return "", fmt.Errorf("a worker connected without a greeting: %w", err)
			}
			s := c.side(hello.Side)
			if s == nil || hello.Rank < 0 || hello.Rank >= s.procs || s.conns[hello.Rank] != nil {
				return "", fmt.Errorf("unexpected worker %s rank %d of %d", hello.Side, hello.Rank, hello.World)
			}
			s.conns[hello.Rank] = w
			if hello.Torch != "" {
				torch = hello.Torch
			}
			got++
		case e := <-c.exited:
			return "", fmt.Errorf("%s's processes stopped before they were ready (%v); their output ends with:\n%s", e.name, e.err, c.side(e.name).log.String())
		case <-deadline:
			return "", fmt.Errorf("not every worker process connected within %s", acceptTimeout)
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	return torch, nil
}

func (c *coordinator) side(name string) *side {
	for _, s := range c.sides {
		if s.name == name {
			return s
		}
	}
	return nil
}

// read returns the worker's next answer.
func (w *workerConn) read(timeout time.Duration) (workerReply, error) {
	var r workerReply
	_ = w.c.SetReadDeadline(time.Now().Add(timeout))
	line, err := w.rd.ReadBytes('\n')
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("answer %q: %w", strings.TrimSpace(string(line)), err)
	}
	return r, nil
}

// callTimeout bounds one command: a setup with its warm-up steps, or a
// step (the workers' collectives time out sooner).
const callTimeout = 10 * time.Minute

// call sends m to every process of s at once (a data-parallel step needs
// all of them) and returns their answers by rank.
func (s *side) call(m workerMsg) ([]workerReply, error) {
	out := make([]workerReply, len(s.conns))
	errs := make([]error, len(s.conns))
	var wg sync.WaitGroup
	for i, w := range s.conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := w.enc.Encode(m); err != nil {
				errs[i] = err
				return
			}
			r, err := w.read(callTimeout)
			if err == nil && !r.OK {
				err = fmt.Errorf("%s", r.Error)
			}
			out[i], errs[i] = r, err
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%s rank %d, %s: %w%s; its processes' output ends with:\n%s", s.name, i, m.Cmd, err, s.exitStatus(), s.log.String())
		}
	}
	return out, nil
}

// stop asks every process to quit, waits a little, then stops the rest.
func (c *coordinator) stop() {
	for _, s := range c.sides {
		for _, w := range s.conns {
			if w != nil {
				_ = w.enc.Encode(workerMsg{Cmd: "quit"})
				_ = w.c.Close()
			}
		}
	}
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		c.cancel()
		<-done
	}
	c.cancel()
	_ = c.ln.Close()
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
}
