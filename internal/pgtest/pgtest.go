// Package pgtest runs a throw-away PostgreSQL server for tests: a fresh
// cluster in a private temporary directory, reachable only through a unix
// socket inside that directory, with trust authentication. It never talks to
// any other server. It needs Debian's postgresql package (or initdb and
// postgres on PATH); Start skips the test when they are missing.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// ErrNotInstalled means no PostgreSQL server binaries were found.
var ErrNotInstalled = errors.New("PostgreSQL is not installed (apt-get install postgresql)")

const (
	superuser = "robarch"
	port      = 5432 // only names the socket file: the server listens on no TCP port
)

// Cluster is a running throw-away server. Stop removes it and its files.
type Cluster struct {
	dir      string // owns data/, the socket and the log
	cmd      *exec.Cmd
	exited   chan struct{} // closed when the server process is gone
	waitErr  error
	stopOnce sync.Once
	stopErr  error
	dbSeq    atomic.Int64
}

// BinDir finds the directory holding initdb and postgres: the newest
// /usr/lib/postgresql/<version>/bin, else PATH.
func BinDir() (string, error) {
	matches, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	slices.SortFunc(matches, func(a, b string) int { return versionOf(a) - versionOf(b) })
	if len(matches) > 0 {
		return filepath.Dir(matches[len(matches)-1]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", ErrNotInstalled
}

func versionOf(initdb string) int {
	v, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(initdb))))
	return v
}

// StartCluster initialises and starts a new cluster; it is ready when this
// returns. Call Stop when done.
func StartCluster(ctx context.Context) (*Cluster, error) {
	bin, err := BinDir()
	if err != nil {
		return nil, err
	}
	// PostgreSQL refuses to run as root: then run it as the postgres user in
	// a directory that user owns.
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		if cred, err = postgresUser(); err != nil {
			return nil, err
		}
	}
	dir, err := os.MkdirTemp(socketBase(), "robarch-pg-")
	if err != nil {
		return nil, fmt.Errorf("pgtest: %w", err)
	}
	c := &Cluster{dir: dir, exited: make(chan struct{})}
	fail := func(err error) (*Cluster, error) {
		c.Stop()
		return nil, err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return fail(fmt.Errorf("pgtest: %w", err))
	}
	if cred != nil {
		if err := os.Chown(dir, int(cred.Uid), int(cred.Gid)); err != nil {
			return fail(fmt.Errorf("pgtest: %w", err))
		}
	}

	data := filepath.Join(dir, "data")
	initdb := exec.CommandContext(ctx, filepath.Join(bin, "initdb"), "-D", data, "-A", "trust", "-U", superuser,
		"-E", "UTF8", "--locale=C", "--no-sync")
	initdb.Env = serverEnv()
	initdb.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	if out, err := initdb.CombinedOutput(); err != nil {
		return fail(fmt.Errorf("pgtest: initdb: %w\n%s", err, out))
	}

	logFile, err := os.Create(filepath.Join(dir, "postgres.log"))
	if err != nil {
		return fail(fmt.Errorf("pgtest: %w", err))
	}
	defer logFile.Close()
	// Durability is not under test here, so fsync is off; the server keeps
	// to its socket directory and listens on no TCP address.
	c.cmd = exec.Command(filepath.Join(bin, "postgres"), "-D", data, "-k", dir, "-p", strconv.Itoa(port),
		"-c", "listen_addresses=", "-c", "fsync=off", "-c", "synchronous_commit=off",
		"-c", "full_page_writes=off", "-c", "shared_buffers=32MB", "-c", "max_connections=100")
	c.cmd.Env = serverEnv()
	c.cmd.Stdout, c.cmd.Stderr = logFile, logFile
	c.cmd.SysProcAttr = serverProcAttr(cred)
	if err := c.startServer(); err != nil {
		return fail(fmt.Errorf("pgtest: start postgres: %w", err))
	}
	if err := c.waitReady(ctx, 30*time.Second); err != nil {
		return fail(err)
	}
	return c, nil
}

// startServer starts the server from a goroutine locked to its OS thread
// that lives as long as the server: the parent-death signal is tied to the
// forking thread, so the server dies with the test process but not earlier.
func (c *Cluster) startServer() error {
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := c.cmd.Start(); err != nil {
			started <- err
			close(c.exited)
			return
		}
		started <- nil
		c.waitErr = c.cmd.Wait()
		close(c.exited)
	}()
	return <-started
}

func (c *Cluster) waitReady(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		conn, err := pgx.Connect(ctx, c.DSN("postgres"))
		if err == nil {
			return conn.Close(ctx)
		}
		select {
		case <-c.exited:
			return fmt.Errorf("pgtest: postgres exited (%v) before accepting connections:\n%s", c.waitErr, c.Log())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("pgtest: postgres not ready after %v: %v\n%s", limit, err, c.Log())
		}
	}
}

// DSN connects to database on this cluster through its socket.
func (c *Cluster) DSN(database string) string {
	q := url.Values{}
	q.Set("host", c.dir)
	q.Set("port", strconv.Itoa(port))
	q.Set("sslmode", "disable")
	u := url.URL{Scheme: "postgres", User: url.User(superuser), Path: "/" + database, RawQuery: q.Encode()}
	return u.String()
}

// CreateDatabase makes an empty database and returns its DSN.
func (c *Cluster) CreateDatabase(ctx context.Context, name string) (string, error) {
	conn, err := pgx.Connect(ctx, c.DSN("postgres"))
	if err != nil {
		return "", fmt.Errorf("pgtest: connect: %w", err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		return "", fmt.Errorf("pgtest: create database %s: %w", name, err)
	}
	return c.DSN(name), nil
}

var nonWord = regexp.MustCompile(`[^a-z0-9]+`)

// NewDatabase makes a fresh database named after the test and returns its DSN.
func (c *Cluster) NewDatabase(t testing.TB) string {
	t.Helper()
	name := strings.Trim(nonWord.ReplaceAllString(strings.ToLower(t.Name()), "_"), "_")
	if len(name) > 40 {
		name = name[len(name)-40:]
	}
	name = fmt.Sprintf("t%d_%s", c.dbSeq.Add(1), name)
	dsn, err := c.CreateDatabase(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return dsn
}

// Dir is the cluster's directory (data, socket, log).
func (c *Cluster) Dir() string { return c.dir }

// Log returns the server log so far.
func (c *Cluster) Log() string {
	b, _ := os.ReadFile(filepath.Join(c.dir, "postgres.log"))
	return string(b)
}

// Stop shuts the server down (fast shutdown, then kill) and deletes its files.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		if c.cmd != nil && c.cmd.Process != nil {
			select {
			case <-c.exited:
			default:
				_ = c.cmd.Process.Signal(syscall.SIGINT)
				select {
				case <-c.exited:
				case <-time.After(10 * time.Second):
					_ = c.cmd.Process.Kill()
					<-c.exited
				}
			}
		}
		c.stopErr = os.RemoveAll(c.dir)
	})
	return c.stopErr
}

// Start starts a cluster for t, stopped when t ends. It skips t when
// PostgreSQL is not installed and fails it when the server will not start.
func Start(t testing.TB) *Cluster {
	t.Helper()
	c, err := StartCluster(context.Background())
	if errors.Is(err, ErrNotInstalled) {
		t.Skipf("skipping: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := c.Stop(); err != nil {
			t.Errorf("pgtest: stop: %v", err)
		}
	})
	return c
}

func postgresUser() (*syscall.Credential, error) {
	u, err := user.Lookup("postgres")
	if err != nil {
		return nil, fmt.Errorf("pgtest: running as root needs the postgres user (created by the postgresql package): %w", err)
	}
	uid, err1 := strconv.ParseUint(u.Uid, 10, 32)
	gid, err2 := strconv.ParseUint(u.Gid, 10, 32)
	if err := errors.Join(err1, err2); err != nil {
		return nil, fmt.Errorf("pgtest: postgres user ids: %w", err)
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: []uint32{}}, nil
}

// socketBase picks a short temp dir: unix socket paths are limited to
// about 100 bytes.
func socketBase() string {
	if d := os.TempDir(); len(d) < 60 {
		return d
	}
	return "/tmp"
}

// serverEnv is a minimal environment so that the caller's PG* variables or
// locale cannot change the throw-away server.
func serverEnv() []string {
	return []string{"PATH=/usr/bin:/bin", "LANG=C", "LC_ALL=C", "TZ=UTC"}
}
