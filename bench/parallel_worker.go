package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"runtime"
	"time"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
)

// The environment of a data-parallel bench worker (RunParallel starts
// them): the coordinator's address and the configuration it belongs to.
const (
	WorkerEnv = "ROBARCH_BENCH_WORKER"
	sideEnv   = "ROBARCH_BENCH_SIDE"
)

// IsWorker says whether this process was started by RunParallel as one of
// its workers (ServeWorker is then what it must run).
func IsWorker() bool { return os.Getenv(WorkerEnv) != "" }

// workerMsg is a command of the coordinator; workerReply every field an
// answer of a worker (Go or Python) may carry.
type workerMsg struct {
	Cmd          string             `json:"cmd"`
	Spec         *arch.Spec         `json:"spec,omitempty"`
	Params       int64              `json:"params,omitempty"`
	MACs         int64              `json:"macs,omitempty"`
	Threads      int                `json:"threads,omitempty"`
	Batch        int                `json:"batch,omitempty"`
	Eps          float64            `json:"eps,omitempty"`
	LR           float64            `json:"lr,omitempty"`
	Seed         int64              `json:"seed"`
	MemoryFormat model.MemoryFormat `json:"memory_format,omitempty"`
	Precision    amp.Precision      `json:"precision,omitempty"`
	Device       string             `json:"device,omitempty"`
	Workload     Workload           `json:"workload,omitempty"`
	Warmup       int                `json:"warmup"`
	Floats       int64              `json:"floats,omitempty"`
	Tensors      int                `json:"tensors,omitempty"`
}

type workerReply struct {
	Hello bool   `json:"hello"`
	Side  string `json:"side"`
	Rank  int    `json:"rank"`
	World int    `json:"world"`
	Torch string `json:"torch"`
	OK    bool   `json:"ok"`
	Error string `json:"error"`
	// MemoryFormat is the layout robarch's worker resolved (auto).
	MemoryFormat model.MemoryFormat `json:"memory_format"`
	Threads      int                `json:"threads"`
	// A step: its wall seconds, the seconds inside the gradient allreduce
	// and inside the broadcast of the batch-norm statistics, the part of
	// the allreduce overlapped with the backward pass (PyTorch's DDP), and
	// the images this process trained on.
	Seconds          float64 `json:"seconds"`
	AllreduceSeconds float64 `json:"allreduce_seconds"`
	BroadcastSeconds float64 `json:"broadcast_seconds"`
	OverlapSeconds   float64 `json:"overlap_seconds"`
	Images           int     `json:"images"`
}

// workerStep is one workload's step in a worker process.
type workerStep interface {
	step() (workerReply, error)
	close()
}

// ServeWorker is a data-parallel bench worker: it joins the process group
// its launcher describes (none for the one-process configuration),
// connects to the coordinator and runs its commands until told to quit.
// Torch work runs on the calling goroutine, locked to its thread.
func ServeWorker(ctx context.Context) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	var g *dist.Group
	e, ok, err := dist.FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	if ok {
		if g, err = dist.Join(e, workerTimeout); err != nil {
			return err
		}
		defer g.Close()
	}
	conn, err := net.Dial("tcp", os.Getenv(WorkerEnv))
	if err != nil {
		return fmt.Errorf("bench worker: reach the coordinator: %w", err)
	}
	defer conn.Close()
	enc, rd := json.NewEncoder(conn), bufio.NewReader(conn)
	hello := workerReply{Hello: true, Side: os.Getenv(sideEnv), World: 1}
	if g != nil {
		hello.Rank, hello.World = g.Rank(), g.World()
	}
	if err := enc.Encode(hello); err != nil {
		return err
	}
	var w workerStep
	defer func() {
		if w != nil {
			w.close()
		}
	}()
	for ctx.Err() == nil {
		line, err := rd.ReadBytes('\n')
		if err != nil {
			return fmt.Errorf("bench worker: the coordinator went away: %w", err)
		}
		var m workerMsg
		if err := json.Unmarshal(line, &m); err != nil {
			return fmt.Errorf("bench worker: command %q: %w", line, err)
		}
		var r workerReply
		err = torchrt.Safely(func() (err error) {
			switch m.Cmd {
			case "quit":
				return errQuit
			case "setup":
				if w != nil {
					w.close()
					w = nil
				}
				w, r, err = setupWorker(m, g)
			case "step":
				if w == nil {
					return fmt.Errorf("step before setup")
				}
				r, err = w.step()
			default:
				err = fmt.Errorf("unknown command %q", m.Cmd)
			}
			return err
		})
		if errors.Is(err, errQuit) {
			return nil
		}
		r.OK = err == nil
		if err != nil {
			r.Error = err.Error()
		}
		if err := enc.Encode(r); err != nil {
			return err
		}
	}
	return ctx.Err()
}

var errQuit = errors.New("quit")

// workerTimeout bounds every collective of a bench worker: a step takes
// seconds, so a rank that waits this long waits for a dead peer.
const workerTimeout = 3 * time.Minute

func setupWorker(m workerMsg, g *dist.Group) (workerStep, workerReply, error) {
	torchrt.Init(m.Threads)
	r := workerReply{Threads: torchrt.Threads()}
	var w workerStep
	var err error
	switch m.Workload {
	case Train:
		var t *ddpTrainer
		t, err = newDDPTrainer(m, g)
		if t != nil {
			r.MemoryFormat, w = t.format, t
		}
	case Allreduce:
		w, err = newAllreduceStep(m, g)
	default:
		err = fmt.Errorf("workload %q: a data-parallel bench runs %s and %s", m.Workload, Train, Allreduce)
	}
	if err != nil {
		return nil, r, err
	}
	for i := range m.Warmup {
		if _, err := w.step(); err != nil {
			w.close()
			return nil, r, fmt.Errorf("warm-up step %d: %w", i+1, err)
		}
	}
	return w, r, nil
}

// ddpTrainer times train's own data-parallel step (a trainRunner on the
// group: the code Run executes per batch), fed this rank's batch; without
// a group it is the same step on one process. The allreduce and
// batch-norm broadcast times are the group's own accounts (dist.Spent).
type ddpTrainer struct {
	*trainRunner
	g      *dist.Group
	format model.MemoryFormat
}

func newDDPTrainer(m workerMsg, g *dist.Group) (*ddpTrainer, error) {
	if m.Spec == nil {
		return nil, fmt.Errorf("setup without a spec")
	}
	rc := runnerConfig{spec: *m.Spec, batch: m.Batch, eps: m.Eps, lr: m.LR, seed: m.Seed,
		format: m.MemoryFormat, resolved: new(model.MemoryFormat), precision: m.Precision, device: gotch.CPU}
	r, err := newTrainRunner(Train, rc, g)
	if err != nil {
		return nil, err
	}
	return &ddpTrainer{trainRunner: r, g: g, format: *rc.resolved}, nil
}

func (t *ddpTrainer) step() (workerReply, error) {
	var before dist.Spent
	if t.g != nil {
		before = t.g.Spent()
	}
	start := time.Now()
	n, err := t.trainRunner.step()
	if err != nil {
		return workerReply{}, err
	}
	r := workerReply{Images: n, Seconds: time.Since(start).Seconds()}
	if t.g != nil {
		after := t.g.Spent()
		r.AllreduceSeconds = (after.Gradients - before.Gradients).Seconds()
		r.BroadcastSeconds = (after.Buffers - before.Buffers).Seconds()
	}
	return r, nil
}

// allreduceStep is the gradient exchange alone: tensors of floats/tensors
// floats each, with gradients, summed over the ranks and averaged, as a
// training step's ReduceGradients does.
type allreduceStep struct {
	keep []*ts.Tensor
	ptrs []unsafe.Pointer
	g    *dist.Group
}

func newAllreduceStep(m workerMsg, g *dist.Group) (*allreduceStep, error) {
	if g == nil {
		return nil, fmt.Errorf("the allreduce workload needs a process group")
	}
	n := max(m.Tensors, 1)
	size := max(m.Floats/int64(n), 1)
	s := &allreduceStep{g: g}
	for range n {
		p := ts.MustOnes([]int64{size}, gotch.Float, gotch.CPU)
		p.MustRequiresGrad_(true)
		loss := p.MustSum(gotch.Float, false)
		if err := loss.Backward(); err != nil {
			s.close()
			return nil, err
		}
		dropAll(loss)
		s.keep, s.ptrs = append(s.keep, p), append(s.ptrs, p.Ctensor())
	}
	return s, nil
}

func (s *allreduceStep) step() (workerReply, error) {
	start := time.Now()
	if err := s.g.ReduceGradients(s.ptrs, 1/float64(s.g.World())); err != nil {
		return workerReply{}, err
	}
	took := time.Since(start).Seconds()
	return workerReply{Seconds: took, AllreduceSeconds: took}, nil
}

func (s *allreduceStep) close() { dropAll(s.keep...) }

func dropAll(ts ...*ts.Tensor) {
	for _, t := range ts {
		if t != nil {
			_ = t.Drop()
		}
	}
}
