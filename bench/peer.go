package bench

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/opprof"
	"github.com/robarch/robarch/internal/torchrt"
)

// peerFiles are the PyTorch peers (peer.py for the workloads,
// loader_peer.py for the image-folder loader) and the modules peer.py
// imports: specnet.py, the builder of a spec (shared with bench/reference
// and arch/model's interop tests), and attacks.py, PGD and APGD-CE (shared
// with bench/reference); ddp_peer.py is the data-parallel peer
// (RunParallel). They are written to a temporary directory at run
// time so that the binary works from any folder.
//
//go:embed peer/peer.py peer/specnet.py peer/loader_peer.py peer/attacks.py peer/ddp_peer.py
var peerFiles embed.FS

// SystemPython is Debian's interpreter, which has python3-torch; a pyenv
// or virtualenv python3 earlier on PATH usually lacks it.
const SystemPython = "/usr/bin/python3"

// installHint is the advice when the peer cannot run.
const installHint = "apt-get install python3-torch (Debian's PyTorch on the same libtorch)"

// ErrNoTorch says the peer's interpreter cannot import torch.
var ErrNoTorch = errors.New("the PyTorch peer cannot import torch")

// peer is a running peer process, driven one JSON line at a time.
type peer struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	out    *bufio.Reader
	stderr *tailBuffer
	dir    string
	torch  string
}

// peerReply is every field any answer of the peer may carry.
type peerReply struct {
	OK      bool   `json:"ok"`
	Error   string `json:"error"`
	Missing string `json:"missing"`
	Torch   string `json:"torch"`
	// Torchvision, WorkersRSS: the loader peer's version and the summed
	// RSS of its DataLoader worker processes.
	Torchvision string  `json:"torchvision"`
	WorkersRSS  int64   `json:"workers_rss_bytes"`
	Params      int64   `json:"params"`
	MACs        int64   `json:"macs"`
	Threads     int     `json:"threads"`
	Seconds     float64 `json:"seconds"`
	// CPUSeconds is the peer process's CPU time during the step.
	CPUSeconds float64 `json:"cpu_seconds"`
	Images     int     `json:"images"`
	RSS        int64   `json:"rss_bytes"`
	PeakRSS    int64   `json:"peak_rss_bytes"`
	// Folded is the answer to "prepare": how many batch norms it folded.
	Folded int `json:"folded"`
	// Ops is the answer to "profile": the operators of the profiled steps.
	Ops opprof.Table `json:"ops"`
}

// startPeer writes the peer's files to a temporary directory and starts
// peer.py with python (SystemPython when empty), waiting for its greeting.
func startPeer(python string, m PeerMalloc) (*peer, error) {
	return startPeerScript(python, "peer.py", m)
}

// PeerMalloc is the allocator the PyTorch peer starts with.
type PeerMalloc string

const (
	// PeerMallocRobarch gives the peer robarch's malloc settings
	// (torchrt.AllocatorEnv): like with like.
	PeerMallocRobarch PeerMalloc = "robarch"
	// PeerMallocDefault starts the peer without any malloc variable, on
	// glibc's defaults, as a PyTorch script runs.
	PeerMallocDefault PeerMalloc = "default"
)

// validate refuses an unknown value, and default without a peer.
func (m PeerMalloc) validate(peer bool) error {
	switch m {
	case "", PeerMallocRobarch:
	case PeerMallocDefault:
		if !peer {
			return fmt.Errorf("peer malloc %s: sets the PyTorch peer's allocator, so it needs --peer", m)
		}
	default:
		return fmt.Errorf("peer malloc %q: want %s (robarch's settings) or %s (glibc's)", m, PeerMallocRobarch, PeerMallocDefault)
	}
	return nil
}

// peerEnv is the environment the peer starts with under m.
func peerEnv(m PeerMalloc) []string {
	if m != PeerMallocDefault {
		return append(os.Environ(), torchrt.AllocatorEnv()...)
	}
	return torchrt.WithoutAllocatorEnv(os.Environ())
}

// startPeerScript starts one of the embedded peer scripts (a file name of
// peerFiles), with every file of peerFiles beside it.
func startPeerScript(python, name string, m PeerMalloc) (*peer, error) {
	if python == "" {
		python = SystemPython
	}
	dir, err := os.MkdirTemp("", "robarch-peer-")
	if err != nil {
		return nil, fmt.Errorf("peer: %w", err)
	}
	if err := writePeerFiles(dir); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("peer: %w", err)
	}
	script := filepath.Join(dir, name)
	p := &peer{dir: dir, stderr: &tailBuffer{max: 8 << 10}}
	p.cmd = exec.Command(python, script)
	p.cmd.Env = peerEnv(m)
	p.cmd.Stderr = p.stderr
	if p.in, err = p.cmd.StdinPipe(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("peer: %w", err)
	}
	stdout, err := p.cmd.StdoutPipe()
	if err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("peer: %w", err)
	}
	p.out = bufio.NewReader(stdout)
	if err := p.cmd.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("start the PyTorch peer with %s: %w; install Python and PyTorch: apt-get install python3 python3-torch", python, err)
	}
	hello, err := p.read()
	if err != nil {
		p.close()
		return nil, err
	}
	if !hello.OK {
		p.close()
		switch hello.Missing {
		case "torch":
			return nil, fmt.Errorf("%w (%s): %s", ErrNoTorch, hello.Error, installHint)
		case "torchvision":
			return nil, fmt.Errorf("%w (%s): apt-get install python3-torchvision", ErrNoTorch, hello.Error)
		}
		return nil, fmt.Errorf("PyTorch peer: %s", hello.Error)
	}
	p.torch = hello.Torch
	return p, nil
}

// writePeerFiles writes every file of peerFiles into dir.
func writePeerFiles(dir string) error {
	entries, err := peerFiles.ReadDir("peer")
	if err != nil {
		return err
	}
	for _, e := range entries {
		b, err := peerFiles.ReadFile("peer/" + e.Name())
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(dir, e.Name()), b, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// read returns the next answer of the peer.
func (p *peer) read() (peerReply, error) {
	var r peerReply
	line, err := p.out.ReadBytes('\n')
	if err != nil {
		return r, fmt.Errorf("PyTorch peer stopped answering (%v); its stderr ends with:\n%s", err, p.stderr.String())
	}
	if err := json.Unmarshal(line, &r); err != nil {
		return r, fmt.Errorf("PyTorch peer answered %q: %w", strings.TrimSpace(string(line)), err)
	}
	return r, nil
}

// call sends one command and returns the answer, turning {"ok": false}
// into an error.
func (p *peer) call(cmd map[string]any) (peerReply, error) {
	line, err := json.Marshal(cmd)
	if err != nil {
		return peerReply{}, fmt.Errorf("PyTorch peer command: %w", err)
	}
	if _, err := p.in.Write(append(line, '\n')); err != nil {
		return peerReply{}, fmt.Errorf("PyTorch peer %s: %w; its stderr ends with:\n%s", cmd["cmd"], err, p.stderr.String())
	}
	r, err := p.read()
	if err != nil {
		return r, err
	}
	if !r.OK {
		return r, fmt.Errorf("PyTorch peer %s: %s", cmd["cmd"], r.Error)
	}
	return r, nil
}

// peerSetup is what the peer's "setup" command takes: the network
// (checked against robarch's parameter count and MACs per image) and how
// to run it; Fold folds batch norms into convolutions in evaluation
// workloads.
type peerSetup struct {
	Spec           arch.Spec
	Params, MACs   int64
	Threads, Batch int
	Eps, LR        float64
	Seed           int64
	MemoryFormat   model.MemoryFormat
	Precision      amp.Precision
	Device         string
	Fold           bool
}

// setup builds the peer's network from s.Spec and checks its parameter
// count and MACs per image against robarch's.
func (p *peer) setup(s peerSetup) (peerReply, error) {
	return p.call(map[string]any{
		"cmd": "setup", "spec": s.Spec, "params": s.Params, "macs": s.MACs, "threads": s.Threads,
		"batch": s.Batch, "eps": s.Eps, "lr": s.LR, "seed": s.Seed, "memory_format": string(s.MemoryFormat),
		"precision": string(s.Precision), "device": s.Device, "fold": s.Fold,
	})
}

// prepare builds a fresh network for w and runs warmup steps; folded is
// how many batch norms the peer folded (0 unless setup asked it to and w
// evaluates).
func (p *peer) prepare(w Workload, warmup int) (folded int, err error) {
	r, err := p.call(map[string]any{"cmd": "prepare", "workload": string(w), "warmup": warmup})
	return r.Folded, err
}

// step times one step in the peer: the answer holds the seconds and CPU
// seconds the peer measured around the step itself (not the pipe's round
// trip) and the images it processed.
func (p *peer) step() (peerReply, error) {
	return p.call(map[string]any{"cmd": "step"})
}

func (p *peer) memory() (rss, peak int64, err error) {
	r, err := p.call(map[string]any{"cmd": "memory"})
	return r.RSS, r.PeakRSS, err
}

// close asks the peer to quit, waits for it and removes its files.
func (p *peer) close() {
	if p.in != nil {
		_, _ = p.in.Write([]byte(`{"cmd": "quit"}` + "\n"))
		_ = p.in.Close()
	}
	if p.cmd != nil && p.cmd.Process != nil {
		_ = p.cmd.Wait()
	}
	os.RemoveAll(p.dir)
}

// tailBuffer keeps the last max bytes written to it (the peer's stderr,
// for error messages).
type tailBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
	max int
}

func (t *tailBuffer) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf.Write(b)
	if over := t.buf.Len() - t.max; over > 0 {
		t.buf.Next(over)
	}
	return len(b), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.buf.String()
}
