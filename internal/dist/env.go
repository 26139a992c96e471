// Package dist is robarch's data-parallel runtime: one door to libtorch's
// own c10d (a TCPStore rendezvous and a Gloo process group, reached
// through the torchbuild extension since gotch wraps none of it), the
// launchers' environment (torchrun, Slurm, a Kubernetes PyTorchJob), and
// a standalone launcher that starts N local processes the way torchrun's
// standalone mode does, without Python.
//
// Every collective runs on the caller's torch thread and is bounded by the
// group's timeout: a dead or stuck peer becomes an error naming this rank
// instead of a hang.
package dist

import (
	"fmt"
	"net"
	"strconv"
	"strings"
)

// Env is where a process sits in a data-parallel job, as its launcher
// described it.
type Env struct {
	Addr string // MASTER_ADDR: the store's host (default 127.0.0.1)
	Port int    // MASTER_PORT
	// Rank and World place the process among all; LocalRank and
	// LocalWorld among those on its machine (threads are shared by them).
	Rank, World           int
	LocalRank, LocalWorld int
	// AgentStore: torchrun's agent serves the store and keys live under
	// Prefix; otherwise rank 0 serves it.
	AgentStore bool
	Prefix     string
	// Interface is GLOO_SOCKET_IFNAME: the network interface Gloo binds.
	Interface string
	// Launcher names where the values came from (torchrun, slurm, env).
	Launcher string
}

// DefaultPort is torchrun's default MASTER_PORT.
const DefaultPort = 29500

// FromEnv reads the launcher's variables through getenv (os.Getenv).
// ok is false for a single process: no WORLD_SIZE (or Slurm task count)
// above 1. Inconsistent values are an error naming the variable.
func FromEnv(getenv func(string) string) (e Env, ok bool, err error) {
	atoi := func(name string) (int, bool, error) {
		v := strings.TrimSpace(getenv(name))
		if v == "" {
			return 0, false, nil
		}
		n, err := strconv.Atoi(v)
		if err != nil {
			return 0, true, fmt.Errorf("%s=%q: not an integer", name, v)
		}
		return n, true, nil
	}
	e.Launcher = "env"
	world, hasWorld, err := atoi("WORLD_SIZE")
	if err != nil {
		return e, false, err
	}
	rankVar, localVar, localWorldVar := "RANK", "LOCAL_RANK", "LOCAL_WORLD_SIZE"
	if !hasWorld && getenv("SLURM_NTASKS") != "" && getenv("MASTER_ADDR") != "" {
		// srun starts the tasks itself; the batch script names the store.
		e.Launcher = "slurm"
		rankVar, localVar, localWorldVar = "SLURM_PROCID", "SLURM_LOCALID", "SLURM_NTASKS_PER_NODE"
		if world, hasWorld, err = atoi("SLURM_NTASKS"); err != nil {
			return e, false, err
		}
	}
	if !hasWorld {
		if getenv("RANK") != "" {
			return e, false, fmt.Errorf("RANK=%s without WORLD_SIZE: a launcher sets both", getenv("RANK"))
		}
		return e, false, nil
	}
	if world < 1 {
		return e, false, fmt.Errorf("WORLD_SIZE=%d: must be at least 1", world)
	}
	if world == 1 {
		return e, false, nil
	}
	e.World = world
	rank, hasRank, err := atoi(rankVar)
	switch {
	case err != nil:
		return e, false, err
	case !hasRank:
		return e, false, fmt.Errorf("WORLD_SIZE=%d but %s is not set: every process needs its rank", world, rankVar)
	case rank < 0 || rank >= world:
		return e, false, fmt.Errorf("%s=%d: must be in [0, %d) for WORLD_SIZE=%d", rankVar, rank, world, world)
	}
	e.Rank = rank
	if e.LocalRank, _, err = atoi(localVar); err != nil {
		return e, false, err
	}
	lw := getenv(localWorldVar)
	if e.Launcher == "slurm" {
		lw, _, _ = strings.Cut(lw, "(") // "2(x3)": 2 tasks on each of 3 nodes
	}
	switch n, err := strconv.Atoi(strings.TrimSpace(lw)); {
	case lw == "":
		e.LocalWorld = 1
		if e.LocalRank > 0 {
			e.LocalWorld = e.LocalRank + 1
		}
	case err != nil:
		return e, false, fmt.Errorf("%s=%q: not an integer", localWorldVar, lw)
	default:
		e.LocalWorld = n
	}
	if e.LocalRank < 0 || e.LocalRank >= e.LocalWorld {
		return e, false, fmt.Errorf("%s=%d: must be in [0, %d) for %s=%d", localVar, e.LocalRank, e.LocalWorld, localWorldVar, e.LocalWorld)
	}
	if e.LocalWorld > world {
		return e, false, fmt.Errorf("%s=%d exceeds WORLD_SIZE=%d", localWorldVar, e.LocalWorld, world)
	}
	e.Addr = strings.TrimSpace(getenv("MASTER_ADDR"))
	if e.Addr == "" {
		e.Addr = "127.0.0.1"
	}
	e.Port = DefaultPort
	if p, has, err := atoi("MASTER_PORT"); err != nil {
		return e, false, err
	} else if has {
		if p < 1 || p > 65535 {
			return e, false, fmt.Errorf("MASTER_PORT=%d: must be in [1, 65535]", p)
		}
		e.Port = p
	}
	if getenv("TORCHELASTIC_USE_AGENT_STORE") == "True" {
		e.AgentStore = true
		e.Launcher = "torchrun"
		e.Prefix = "/worker/attempt_" + cmpOr(getenv("TORCHELASTIC_RESTART_COUNT"), "0")
	}
	e.Interface = getenv("GLOO_SOCKET_IFNAME")
	return e, true, nil
}

// Variables renders e as the environment a child process reads back with
// FromEnv (the standalone launcher's children).
func (e Env) Variables() []string {
	return []string{
		"MASTER_ADDR=" + e.Addr, "MASTER_PORT=" + strconv.Itoa(e.Port),
		"RANK=" + strconv.Itoa(e.Rank), "WORLD_SIZE=" + strconv.Itoa(e.World),
		"LOCAL_RANK=" + strconv.Itoa(e.LocalRank), "LOCAL_WORLD_SIZE=" + strconv.Itoa(e.LocalWorld),
	}
}

// IsLoopback reports whether the store's host is this machine's loopback.
func (e Env) IsLoopback() bool {
	if e.Addr == "localhost" {
		return true
	}
	ip := net.ParseIP(e.Addr)
	return ip != nil && ip.IsLoopback()
}

func cmpOr(v, def string) string {
	if v == "" {
		return def
	}
	return v
}
