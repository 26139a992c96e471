package dist

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Launch describes a standalone single-machine job: N copies of one
// command as ranks 0..N-1 (torchrun's --standalone, without Python).
type Launch struct {
	N int
	// Exe and Args are the command each rank runs; an empty Exe is this
	// program with its own arguments (torchrun's standalone mode).
	Exe  string
	Args []string
	// Env is the children's base environment (os.Environ() by default);
	// the rendezvous variables are added to it.
	Env []string
	// Port is MASTER_PORT; 0 picks a free one on 127.0.0.1.
	Port int
	// Stdout and Stderr receive rank 0's output as is and the others'
	// with a "[rank k] " prefix on every line.
	Stdout, Stderr io.Writer
	// Grace is how long a rank gets to exit after SIGTERM when another
	// failed or the job was cancelled, before SIGKILL (default 10 s).
	Grace time.Duration
}

// RankError is a rank that failed.
type RankError struct {
	Rank int
	Err  error
}

func (e *RankError) Error() string { return fmt.Sprintf("rank %d: %v", e.Rank, e.Err) }
func (e *RankError) Unwrap() error { return e.Err }

// Run starts the ranks and waits for all of them. When one fails the
// others are stopped and the first failure is returned, naming its rank.
func (l Launch) Run(ctx context.Context) error {
	if l.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return fmt.Errorf("launch: find this program: %w", err)
		}
		l.Exe, l.Args = exe, os.Args[1:]
	}
	if l.N < 1 {
		return fmt.Errorf("processes per node %d: must be at least 1", l.N)
	}
	if l.Port == 0 {
		p, err := FreePort()
		if err != nil {
			return err
		}
		l.Port = p
	}
	if l.Env == nil {
		l.Env = os.Environ()
	}
	if l.Stdout == nil {
		l.Stdout = os.Stdout
	}
	if l.Stderr == nil {
		l.Stderr = os.Stderr
	}
	if l.Grace <= 0 {
		l.Grace = 10 * time.Second
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		wg    sync.WaitGroup
		mu    sync.Mutex
		first error
		outMu sync.Mutex // one line at a time from all ranks
	)
	var cancelled time.Time // when the first failure stopped the others
	fail := func(err error) {
		mu.Lock()
		if cancelled.IsZero() {
			cancelled = time.Now()
		}
		// A rank killed by a signal is the cause; the others then fail
		// because their peer died, and may be reaped first.
		if first == nil || (killed(err) && !killed(first)) {
			first = err
		}
		mu.Unlock()
		cancel()
	}
	for rank := range l.N {
		e := Env{Addr: "127.0.0.1", Port: l.Port, Rank: rank, World: l.N, LocalRank: rank, LocalWorld: l.N}
		cmd := exec.CommandContext(ctx, l.Exe, l.Args...)
		cmd.Env = append(append([]string{}, l.Env...), e.Variables()...)
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		cmd.WaitDelay = l.Grace
		var pipes []io.Closer
		if rank == 0 {
			cmd.Stdout, cmd.Stderr = lockedWriter{&outMu, l.Stdout}, lockedWriter{&outMu, l.Stderr}
		} else {
			prefix := fmt.Sprintf("[rank %d] ", rank)
			so, se := PrefixLines(&outMu, l.Stdout, prefix), PrefixLines(&outMu, l.Stderr, prefix)
			cmd.Stdout, cmd.Stderr = so, se
			pipes = append(pipes, so, se)
		}
		if err := cmd.Start(); err != nil {
			fail(&RankError{rank, fmt.Errorf("start %s: %w", l.Exe, err)})
			break
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := cmd.Wait()
			for _, p := range pipes {
				_ = p.Close()
			}
			// A rank killed before the launcher's own SIGKILL (after
			// Grace) was killed by someone else: it counts.
			mu.Lock()
			external := killed(err) && time.Since(cancelled) < l.Grace
			mu.Unlock()
			if err != nil && (ctx.Err() == nil || external) {
				fail(&RankError{rank, err})
			}
		}()
	}
	wg.Wait()
	if first != nil {
		return first
	}
	return context.Cause(ctx)
}

// killed reports a rank that a signal other than the launcher's SIGTERM
// ended (kill -9, the OOM killer, a crash).
func killed(err error) bool {
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		return false
	}
	ws, ok := ee.Sys().(syscall.WaitStatus)
	return ok && ws.Signaled() && ws.Signal() != syscall.SIGTERM
}

// FreePort asks the kernel for a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// PrefixLines returns a writer that copies whole lines to w, each preceded
// by prefix ("[rank k] " for a launched rank) and written under mu, so
// that several processes' lines never interleave; closing it flushes a
// last partial line.
func PrefixLines(mu *sync.Mutex, w io.Writer, prefix string) io.WriteCloser {
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		defer close(done)
		sc := bufio.NewScanner(pr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			mu.Lock()
			fmt.Fprintf(w, "%s%s\n", prefix, sc.Bytes())
			mu.Unlock()
		}
		_, _ = io.Copy(io.Discard, pr)
	}()
	return &pipeCloser{pw, done}
}

type pipeCloser struct {
	*io.PipeWriter
	done chan struct{}
}

func (p *pipeCloser) Close() error {
	err := p.PipeWriter.Close()
	<-p.done
	return errors.Join(err)
}
