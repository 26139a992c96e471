package workers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"runtime"

	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/sweep/sweeprun"
)

// Local works on a sweep from this machine: Runner, with this process's
// trials run by Trial (data-parallel ones as local processes,
// DataParallel), beside Workers-1 helper workers on the same store.
type Local struct {
	// Runner's Store, WorkDir, Lease, Wait, Env and OnProgress are the
	// caller's; Work sets its Run.
	Runner *sweeprun.Runner
	Trial  sweeprun.TrialFunc
	// Workers is how many trials run at once; Threads is each worker's
	// (Threads(total, Workers)).
	Workers, Threads int
	// Store is the store's DSN for the helpers; MemoryFormat and LogLevel
	// are passed on to helpers and ranks.
	Store                  string
	MemoryFormat, LogLevel string
	LogTo                  io.Writer // helpers' and ranks' output lines
	Exe                    string    // the program helpers and ranks run; "": this one
}

// Work runs sweepName's trials ("" any sweep's) until none is left, as
// sweeprun.Runner.Work, then waits for the helpers.
func (l Local) Work(ctx context.Context, sweepName string) (st sweeprun.Stats, err error) {
	l.Runner.Run = DataParallel{Run: l.Trial, Exe: l.Exe, Threads: l.Threads, MemoryFormat: l.MemoryFormat,
		LogLevel: l.LogLevel, LogTo: l.LogTo}.Trial
	if l.Workers > 1 {
		h := Helper{Store: l.Store, Work: l.Runner.WorkDir, Sweep: sweepName, MemoryFormat: l.MemoryFormat,
			LogLevel: l.LogLevel, Lease: l.Runner.Lease, Threads: l.Threads}
		hs, err := StartHelpers(ctx, l.Exe, l.Workers-1, h, l.LogTo)
		if err != nil {
			return st, err
		}
		slog.Info("helper workers started", "workers", l.Workers, "threads_each", l.Threads)
		defer func() { err = errors.Join(err, hs.Wait()) }()
	}
	return l.Runner.Work(ctx, sweepName)
}

// Env is what is recorded with every trial this process finishes: host,
// robarch version, Go, threads, the requested memory format (auto
// resolves per net) and the libtorch build.
func Env(version, memoryFormat string) map[string]string {
	host, _ := os.Hostname()
	env := map[string]string{"host": host, "robarch": version, "go": runtime.Version(),
		"threads": fmt.Sprint(torchrt.Threads()), "memory_format": memoryFormat}
	if b, err := torchrt.Build(); err == nil {
		env["libtorch"] = b.Libtorch.Version
		env["gotch"] = b.GotchVersion
		env["cuda"] = fmt.Sprint(b.Libtorch.CUDA)
	}
	return env
}
