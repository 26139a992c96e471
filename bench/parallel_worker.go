package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"os"
	"runtime"
	"slices"
	"time"
	"unsafe"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/torchbatch"
	"github.com/robarch/robarch/internal/amp"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
	"github.com/robarch/robarch/train"
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

// ddpTrainer is robarch's data-parallel training step, what train's
// sharded step does for one shard per process: the batch to tensors,
// forward in training mode, cross-entropy, the loss and accuracy, backward
// of the loss over the world size, the loss sums added over the ranks,
// the gradients summed over the ranks (internal/dist's persistent 25 MiB
// buckets), the SGD update, and rank 0's batch-norm statistics broadcast.
// Without a group it is the same step on one process. It is written here
// because train.Stepper takes no process group; the collectives, the
// optimiser and the loss are train's and internal/dist's own.
type ddpTrainer struct {
	vs              *nn.VarStore
	net             ts.ModuleT
	opt             *train.SGD
	params, buffers []unsafe.Pointer
	g               *dist.Group
	batches         []*data.Batch
	lr              float64
	world           int
	i               int
	format          model.MemoryFormat
}

func newDDPTrainer(m workerMsg, g *dist.Group) (*ddpTrainer, error) {
	if m.Spec == nil {
		return nil, fmt.Errorf("setup without a spec")
	}
	rc := runnerConfig{spec: *m.Spec, batch: m.Batch, eps: m.Eps, lr: m.LR, seed: m.Seed,
		format: m.MemoryFormat, resolved: new(model.MemoryFormat), precision: m.Precision, device: gotch.CPU}
	bs, err := batches(rc)
	if err != nil {
		return nil, fmt.Errorf("train data: %w", err)
	}
	vs, net, err := netOf(rc)
	if err != nil {
		return nil, fmt.Errorf("train model: %w", err)
	}
	t := &ddpTrainer{vs: vs, g: g, batches: bs, lr: m.LR, world: 1, format: *rc.resolved}
	if g != nil {
		t.world = g.World()
	}
	if t.net, err = amp.Wrap(net, gotch.CPU, cmp.Or(m.Precision, amp.FP32)); err != nil {
		t.close()
		return nil, err
	}
	if t.opt, err = train.NewSGD(vs, train.SGDConfig{Momentum: recipe.DefaultMomentum, WeightDecay: recipe.DefaultWeightDecay}); err != nil {
		t.close()
		return nil, err
	}
	// Parameters and buffers by name, the order train and every rank use.
	vars := vs.Variables()
	names := make([]string, 0, len(vars))
	for name := range vars {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		v := vars[name]
		if v.MustRequiresGrad() {
			t.params = append(t.params, v.Ctensor())
		} else {
			t.buffers = append(t.buffers, v.Ctensor())
		}
	}
	if g != nil { // as DDP and train start: rank 0's weights everywhere
		if err := g.BroadcastWeights(append(slices.Clone(t.params), t.buffers...)); err != nil {
			t.close()
			return nil, err
		}
	}
	return t, nil
}

func (t *ddpTrainer) step() (workerReply, error) {
	b := t.batches[t.i%len(t.batches)]
	t.i++
	start := time.Now()
	x, y, err := torchbatch.Tensors(b, gotch.CPU)
	if err != nil {
		return workerReply{}, err
	}
	defer dropAll(x, y)
	logits := t.net.ForwardT(x, true)
	defer dropAll(logits)
	loss, err := logits.CrossEntropyLoss(y, ts.None, 1, -100, 0, false) // mean, no ignored class
	if err != nil {
		return workerReply{}, err
	}
	defer dropAll(loss)
	sums := []float64{0, 0, float64(b.N), 0} // loss×examples, correct, examples, non-finite
	v := loss.Float64Values()[0]
	sums[0] = v * float64(b.N)
	if math.IsNaN(v) || math.IsInf(v, 0) {
		sums[3] = 1
	}
	ts.NoGrad(func() {
		n := logits.MustArgmax([]int64{1}, false, false).MustEqTensor(y, true).MustSum(gotch.Int64, true)
		sums[1] = float64(n.Int64Values()[0])
		dropAll(n)
	})
	scaled, err := loss.MulScalar(ts.FloatScalar(1/float64(t.world)), false)
	if err != nil {
		return workerReply{}, err
	}
	defer dropAll(scaled)
	if err := scaled.Backward(); err != nil {
		return workerReply{}, fmt.Errorf("backward: %w", err)
	}
	r := workerReply{Images: b.N}
	if t.g != nil {
		if err := t.g.Sum(sums); err != nil {
			return r, err
		}
		at := time.Now()
		if err := t.g.ReduceGradients(t.params, 1); err != nil {
			return r, err
		}
		r.AllreduceSeconds = time.Since(at).Seconds()
	}
	if sums[3] > 0 {
		return r, fmt.Errorf("non-finite loss %v", sums[0]/sums[2])
	}
	if _, err := t.opt.Step(t.lr); err != nil {
		return r, err
	}
	if t.g != nil && len(t.buffers) > 0 {
		at := time.Now()
		if err := t.g.BroadcastBuffers(t.buffers); err != nil {
			return r, err
		}
		r.BroadcastSeconds = time.Since(at).Seconds()
	}
	r.Seconds = time.Since(start).Seconds()
	return r, nil
}

func (t *ddpTrainer) close() {
	if t.opt != nil {
		t.opt.Close()
	}
	t.vs.Destroy()
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
