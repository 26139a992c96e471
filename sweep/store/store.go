// Package store keeps sweep trials durably and hands them out to workers.
//
// Two backends share one implementation and one test suite: an embedded
// SQLite file (the default, `--store results.db`) and PostgreSQL for teams
// (`--store postgres://...`). Workers claim trials with time-limited leases
// that they extend with heartbeats; a trial whose worker died is handed out
// again once its lease expires, and the store accepts exactly one Finish per
// trial, from the worker that holds the lease. Lease times come from the
// database's clock so that workers on different machines agree on them.
package store

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"github.com/robarch/robarch/results"
)

// Errors callers branch on; they are wrapped with the trial's key.
var (
	// ErrNoTrial: nothing is claimable right now (all trials are done, failed,
	// or running under a live lease).
	ErrNoTrial = errors.New("no claimable trial")
	// ErrNotFound: no trial has that key.
	ErrNotFound = errors.New("trial not found")
	// ErrLeaseLost: the worker no longer holds the trial's lease (another
	// worker claimed it after expiry, or it was re-queued, or it is done:
	// then the error is ErrFinished too).
	ErrLeaseLost = errors.New("lease lost")
	// ErrFinished: the trial is already done; its result is never replaced.
	ErrFinished = errors.New("trial already finished")
	// ErrSchemaTooNew: the store was written by a newer robarch.
	ErrSchemaTooNew = errors.New("store schema is newer than this robarch")
)

// Store is the durable table of trials shared by the sweep runner, the
// workers and the report.
type Store interface {
	// AddTrials inserts trials as pending and returns how many were new.
	// Trials whose key already exists are left untouched, so re-planning a
	// sweep never erases results.
	AddTrials(ctx context.Context, trials []results.Trial) (int, error)
	// Claim atomically takes the oldest pending trial of sweep (any sweep if
	// empty), or a running one whose lease expired, and leases it to worker.
	// It returns ErrNoTrial when there is none.
	Claim(ctx context.Context, sweep, worker string, lease time.Duration) (*results.Trial, error)
	// Heartbeat extends worker's lease on the trial by lease from now.
	Heartbeat(ctx context.Context, key, worker string, lease time.Duration) error
	// Finish records t's metrics (and Env/Config if set) and marks it done.
	// Only t.Worker, the lease holder, may finish, and only once.
	Finish(ctx context.Context, t results.Trial) error
	// Release hands a leased trial back as pending at once (a worker that
	// stops cleanly), so the next worker need not wait for the lease.
	Release(ctx context.Context, key, worker string) error
	// Fail marks the leased trial failed, keeping cause's text.
	Fail(ctx context.Context, key, worker string, cause error) error
	// Requeue moves trials of sweep (all sweeps if empty) in the given
	// statuses (failed and/or running) back to pending. Done trials cannot
	// be re-queued.
	Requeue(ctx context.Context, sweep string, from ...results.Status) (int, error)
	// Get returns one trial by key.
	Get(ctx context.Context, key string) (results.Trial, error)
	// Trials lists a sweep's trials in plan order.
	Trials(ctx context.Context, sweep string) ([]results.Trial, error)
	// List returns the trials matching f in plan order.
	List(ctx context.Context, f Filter) ([]results.Trial, error)
	// Sweeps lists the sweep names in the store, sorted.
	Sweeps(ctx context.Context) ([]string, error)
	// Leases lists the running trials of sweep (all sweeps if empty) with
	// their holders and how long their leases have left.
	Leases(ctx context.Context, sweep string) ([]Lease, error)
	// Counts tallies sweep's trials (all sweeps if empty) by status.
	Counts(ctx context.Context, sweep string) (Counts, error)
	// Backend names the database: "sqlite" or "postgres".
	Backend() string
	Close() error
}

// Filter selects trials; zero fields match everything.
type Filter struct {
	Sweep  string
	Factor string
	Status []results.Status
}

// Lease is a running trial's lease: who holds it and how long it has left
// (by the database clock; negative when it has expired).
type Lease struct {
	Key    string
	Worker string
	Left   time.Duration
}

// Counts of a sweep's trials by status.
type Counts struct {
	Pending int `json:"pending"`
	Running int `json:"running"`
	Done    int `json:"done"`
	Failed  int `json:"failed"`
}

// Total number of trials.
func (c Counts) Total() int { return c.Pending + c.Running + c.Done + c.Failed }

// Finished reports whether no trial is pending or running.
func (c Counts) Finished() bool { return c.Pending == 0 && c.Running == 0 }

// Open connects to the store named by dsn, creating or migrating its schema:
//
//	results.db, sqlite://results.db, sqlite:///abs/results.db  → SQLite file
//	postgres://user@host/db, postgresql://...                   → PostgreSQL
func Open(ctx context.Context, dsn string) (Store, error) {
	switch {
	case dsn == "":
		return nil, errors.New("open store: empty --store; use a file path, sqlite://path or postgres://...")
	case strings.HasPrefix(dsn, "postgres://"), strings.HasPrefix(dsn, "postgresql://"):
		return openPostgres(ctx, dsn)
	case strings.HasPrefix(dsn, "sqlite://"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite://"))
	case strings.HasPrefix(dsn, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(dsn, "sqlite:"))
	case strings.Contains(dsn, "://"):
		scheme, _, _ := strings.Cut(dsn, "://")
		return nil, fmt.Errorf("open store: unknown scheme %q in --store; allowed: a file path, sqlite://, postgres://, postgresql://", scheme)
	default:
		return openSQLite(ctx, dsn)
	}
}

// redact hides a password in a DSN for error messages.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "<unparsable dsn>"
	}
	return u.Redacted()
}

// ValidStatus reports whether s is one of the four statuses.
func ValidStatus(s results.Status) bool {
	switch s {
	case results.StatusPending, results.StatusRunning, results.StatusDone, results.StatusFailed:
		return true
	}
	return false
}

func validateTrial(t results.Trial) error {
	switch {
	case t.Sweep == "":
		return fmt.Errorf("trial %q: sweep is empty", t.Variant)
	case strings.Contains(t.Sweep, "/"):
		// Keys are sweep/variant/seed; a slash in the sweep would make two
		// trials share a key.
		return fmt.Errorf("trial %q: sweep %q must not contain '/'", t.Variant, t.Sweep)
	case t.Variant == "":
		return fmt.Errorf("trial in sweep %q: variant is empty", t.Sweep)
	}
	return nil
}

func validateLease(lease time.Duration) error {
	if lease < time.Millisecond {
		return fmt.Errorf("lease %v: must be at least 1ms", lease)
	}
	return nil
}
