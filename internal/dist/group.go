package dist

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"runtime"
	"strconv"
	"time"
	"unsafe"

	"github.com/sugarme/gotch/libtch"
)

// Plan keys: each list of tensors a job exchanges every step keeps its
// own persistent buckets in the extension.
const (
	planGradients = iota
	planWeights
	planBuffers
)

// BucketBytes caps one gradient bucket (DDP's default is 25 MiB).
const BucketBytes = 25 << 20

// DefaultTimeout bounds every collective unless the caller sets one:
// long enough for an evaluation on another rank, short enough that a
// dead peer is noticed the same hour (c10d's own default is 30 minutes).
const DefaultTimeout = 10 * time.Minute

// Group is this process's membership of a data-parallel job.
type Group struct {
	h       unsafe.Pointer
	env     Env
	timeout time.Duration
	spent   Spent
}

// Spent is the time a group has spent in its per-step collectives since
// it was joined: what a benchmark reports as their share of a step.
type Spent struct {
	Gradients time.Duration // ReduceGradients
	Buffers   time.Duration // BroadcastBuffers
}

// Spent returns the time spent in the per-step collectives so far.
func (g *Group) Spent() Spent { return g.spent }

// Available reports whether this build has c10d's Gloo backend (it needs
// libgloo-dev when the torchbuild step prepared gotch).
func Available() bool { return libtch.RobarchDistAvailable() }

// JoinLaunched is Join for a process a launcher started, named in the
// log by what it is (data-parallel, sharded evaluation): threads, 0 for
// cores ÷ local processes, comes back resolved.
func JoinLaunched(what string, e Env, timeout time.Duration, threads int) (*Group, int, error) {
	if threads == 0 {
		threads = max(1, runtime.NumCPU()/e.LocalWorld)
	}
	slog.Info(what, "launcher", e.Launcher, "world", e.World, "rank", e.Rank,
		"store", fmt.Sprintf("%s:%d", e.Addr, e.Port), "threads_per_process", threads)
	g, err := Join(e, timeout)
	return g, threads, err
}

// Join rendezvous with the other ranks and returns the group. Rank 0
// serves the store unless torchrun's agent does; a port already taken
// on this machine is refused before anything waits on it.
func Join(e Env, timeout time.Duration) (*Group, error) {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	if !Available() {
		return nil, errors.New("data-parallel training needs c10d's Gloo backend, which this build lacks: install libgloo-dev (make setup) and rebuild (make build)")
	}
	if e.Rank == 0 && !e.AgentStore {
		l, err := net.Listen("tcp", net.JoinHostPort("", strconv.Itoa(e.Port)))
		if err != nil {
			return nil, fmt.Errorf("MASTER_PORT=%d is in use on this machine (another job?): choose another port: %w", e.Port, err)
		}
		_ = l.Close()
	}
	host := e.Addr
	if e.Interface == "" && e.IsLoopback() {
		host = "127.0.0.1"
	}
	h, err := libtch.RobarchDistInit(host, e.Port, e.Rank, e.World, e.AgentStore, e.Prefix, e.Interface, timeout.Milliseconds())
	if err != nil {
		return nil, fmt.Errorf("join data-parallel group at %s:%d as rank %d of %d (%s): %w", e.Addr, e.Port, e.Rank, e.World, e.Launcher, err)
	}
	return &Group{h: h, env: e, timeout: timeout}, nil
}

// Rank, World, LocalRank and LocalWorld place this process.
func (g *Group) Rank() int       { return g.env.Rank }
func (g *Group) World() int      { return g.env.World }
func (g *Group) LocalRank() int  { return g.env.LocalRank }
func (g *Group) LocalWorld() int { return g.env.LocalWorld }

// Env is the environment the group was joined with.
func (g *Group) Env() Env { return g.env }

// ReduceGradients replaces the gradient of every parameter (C tensor
// pointers, as ts.Tensor.Ctensor returns) with its sum over the ranks
// times scale (1/World averages). The list must be the same, in the same
// order, on every rank.
func (g *Group) ReduceGradients(params []unsafe.Pointer, scale float64) error {
	defer g.time(&g.spent.Gradients, time.Now())
	return libtch.RobarchDistAllreduceGrads(g.h, params, scale, BucketBytes, planGradients)
}

func (g *Group) time(total *time.Duration, start time.Time) { *total += time.Since(start) }

// BroadcastWeights overwrites tensors with rank 0's (the initial weights
// and momentum buffers of a run).
func (g *Group) BroadcastWeights(tensors []unsafe.Pointer) error {
	return libtch.RobarchDistBroadcast(g.h, tensors, 0, BucketBytes, planWeights)
}

// BroadcastBuffers overwrites tensors with rank 0's: batch norm's running
// statistics every step, as DDP does, so that every rank evaluates and
// checkpoints the same network.
func (g *Group) BroadcastBuffers(tensors []unsafe.Pointer) error {
	defer g.time(&g.spent.Buffers, time.Now())
	return libtch.RobarchDistBroadcast(g.h, tensors, 0, BucketBytes, planBuffers)
}

// Sum adds vals across the ranks, in place.
func (g *Group) Sum(vals []float64) error { return libtch.RobarchDistAllreduceF64(g.h, vals) }

// Barrier returns when every rank has reached it.
func (g *Group) Barrier() error { return libtch.RobarchDistBarrier(g.h) }

// Close leaves the group. Call it on every rank.
func (g *Group) Close() {
	if g.h != nil {
		libtch.RobarchDistDestroy(g.h)
		g.h = nil
	}
}
