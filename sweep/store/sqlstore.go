package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	"github.com/robarch/robarch/results"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// sqlStore implements Store on database/sql for both backends.
type sqlStore struct {
	db  *sql.DB
	d   dialect
	now func() time.Time // wall clock for record timestamps (leases use the database clock)
}

func openSQLite(ctx context.Context, path string) (Store, error) {
	if path == "" {
		return nil, errors.New("open store: empty SQLite path")
	}
	if strings.ContainsAny(path, "?#") {
		return nil, fmt.Errorf("open store %q: SQLite path must not contain '?' or '#'", path)
	}
	if dir := filepath.Dir(path); dir != "." {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("open store %s: %w", path, err)
		}
	}
	// WAL lets readers run beside the one writer and several processes share
	// the file; synchronous=FULL makes every committed result survive power
	// loss, not only a crash; busy_timeout makes writers queue instead of
	// failing; immediate transactions take the write lock up front so two
	// writers never deadlock upgrading read locks.
	dsn := path + "?_busy_timeout=15000&_journal_mode=WAL&_synchronous=FULL&_txlock=immediate"
	db, err := sql.Open(sqliteDialect.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	s, err := newSQLStore(ctx, db, sqliteDialect)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", path, err)
	}
	return s, nil
}

func openPostgres(ctx context.Context, dsn string) (Store, error) {
	db, err := sql.Open(postgresDialect.driver, dsn)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redact(dsn), err)
	}
	db.SetMaxOpenConns(16)
	db.SetMaxIdleConns(4)
	s, err := newSQLStore(ctx, db, postgresDialect)
	if err != nil {
		return nil, fmt.Errorf("open store %s: %w", redact(dsn), err)
	}
	return s, nil
}

func newSQLStore(ctx context.Context, db *sql.DB, d dialect) (*sqlStore, error) {
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect: %w", err)
	}
	if err := migrate(ctx, db, d); err != nil {
		db.Close()
		return nil, err
	}
	return &sqlStore{db: db, d: d, now: func() time.Time { return time.Now().UTC() }}, nil
}

func (s *sqlStore) Backend() string { return s.d.name }

func (s *sqlStore) Close() error { return s.db.Close() }

// trialColumns is what scanTrial reads, in order.
const trialColumns = `sweep, variant, factor, level, seed, params, macs, width_depth_ratio,
	status, metrics, error, spec, config, env, worker, attempts, started_at, finished_at, seconds`

type scanner interface{ Scan(dest ...any) error }

func scanTrial(row scanner) (results.Trial, error) {
	var (
		t                                         results.Trial
		status, metrics, spec, config, env, start string
		finish                                    string
	)
	if err := row.Scan(&t.Sweep, &t.Variant, &t.Factor, &t.Level, &t.Seed, &t.Params, &t.MACs, &t.WidthDepthRatio,
		&status, &metrics, &t.Error, &spec, &config, &env, &t.Worker, &t.Attempts, &start, &finish, &t.Seconds); err != nil {
		return t, err
	}
	t.Status = results.Status(status)
	t.Spec, t.Config = decodeRaw(spec), decodeRaw(config)
	var err error
	if t.Metrics, err = decodeMetrics(metrics); err != nil {
		return t, fmt.Errorf("trial %s: %w", t.Key(), err)
	}
	if t.Env, err = decodeEnv(env); err != nil {
		return t, fmt.Errorf("trial %s: %w", t.Key(), err)
	}
	if t.StartedAt, err = parseTime(start); err != nil {
		return t, fmt.Errorf("trial %s: started_at: %w", t.Key(), err)
	}
	if t.FinishedAt, err = parseTime(finish); err != nil {
		return t, fmt.Errorf("trial %s: finished_at: %w", t.Key(), err)
	}
	return t, nil
}

func (s *sqlStore) AddTrials(ctx context.Context, trials []results.Trial) (int, error) {
	type row struct {
		t                 results.Trial
		spec, config, env string
	}
	rows := make([]row, 0, len(trials))
	for _, t := range trials {
		if err := validateTrial(t); err != nil {
			return 0, fmt.Errorf("add trials: %w", err)
		}
		r := row{t: t}
		var err error
		if r.spec, err = encodeRaw("spec", t.Spec); err != nil {
			return 0, fmt.Errorf("add trial %s: %w", t.Key(), err)
		}
		if r.config, err = encodeRaw("config", t.Config); err != nil {
			return 0, fmt.Errorf("add trial %s: %w", t.Key(), err)
		}
		if r.env, err = encodeEnv(t.Env); err != nil {
			return 0, fmt.Errorf("add trial %s: %w", t.Key(), err)
		}
		rows = append(rows, r)
	}
	if len(rows) == 0 {
		return 0, nil
	}

	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, fmt.Errorf("add trials: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit
	// DO NOTHING on an existing key: whatever state a trial reached survives
	// re-planning.
	stmt, err := tx.PrepareContext(ctx, s.d.sql(`INSERT INTO trials
		(trial_key, sweep, variant, factor, level, seed, params, macs, width_depth_ratio, status, spec, config, env, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?)
		ON CONFLICT DO NOTHING`))
	if err != nil {
		return 0, fmt.Errorf("add trials: prepare: %w", err)
	}
	defer stmt.Close()
	created := formatTime(s.now())
	added := 0
	for _, r := range rows {
		t := r.t
		res, err := stmt.ExecContext(ctx, t.Key(), t.Sweep, t.Variant, t.Factor, t.Level, t.Seed,
			t.Params, t.MACs, t.WidthDepthRatio, r.spec, r.config, r.env, created)
		if err != nil {
			return 0, fmt.Errorf("add trial %s: %w", t.Key(), err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return 0, fmt.Errorf("add trial %s: %w", t.Key(), err)
		}
		added += int(n)
	}
	if err := tx.Commit(); err != nil {
		return 0, fmt.Errorf("add trials: commit: %w", err)
	}
	return added, nil
}

func (s *sqlStore) Claim(ctx context.Context, sweep, worker string, lease time.Duration) (*results.Trial, error) {
	if worker == "" {
		return nil, errors.New("claim: worker name is empty")
	}
	if err := validateLease(lease); err != nil {
		return nil, fmt.Errorf("claim: %w", err)
	}
	args := []any{worker, lease.Milliseconds(), formatTime(s.now())}
	bySweep := ""
	if sweep != "" {
		bySweep = "sweep = ? AND "
		args = append(args, sweep)
	}
	// One statement, so the pick and the take are atomic: PostgreSQL locks
	// the picked row and concurrent claimers skip it; SQLite runs one writer
	// at a time.
	q := s.d.sql(`UPDATE trials
		SET status = 'running', worker = ?, lease_until = {{now}} + ?, attempts = attempts + 1, started_at = ?
		WHERE id = (
			SELECT id FROM trials
			WHERE ` + bySweep + `(status = 'pending' OR (status = 'running' AND lease_until < {{now}}))
			ORDER BY id LIMIT 1 {{skip_locked}})
		RETURNING ` + trialColumns)
	t, err := scanTrial(s.db.QueryRowContext(ctx, q, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNoTrial
	}
	if err != nil {
		return nil, fmt.Errorf("claim from sweep %q: %w", sweep, err)
	}
	return &t, nil
}

func (s *sqlStore) Heartbeat(ctx context.Context, key, worker string, lease time.Duration) error {
	if err := validateLease(lease); err != nil {
		return fmt.Errorf("heartbeat %s: %w", key, err)
	}
	res, err := s.db.ExecContext(ctx, s.d.sql(`UPDATE trials SET lease_until = {{now}} + ?
		WHERE trial_key = ? AND worker = ? AND status = 'running'`), lease.Milliseconds(), key, worker)
	if err != nil {
		return fmt.Errorf("heartbeat %s: %w", key, err)
	}
	return s.checkHeld(ctx, res, "heartbeat", key, worker)
}

func (s *sqlStore) Release(ctx context.Context, key, worker string) error {
	res, err := s.db.ExecContext(ctx, s.d.sql(`UPDATE trials SET status = 'pending', lease_until = 0
		WHERE trial_key = ? AND worker = ? AND status = 'running'`), key, worker)
	if err != nil {
		return fmt.Errorf("release %s: %w", key, err)
	}
	return s.checkHeld(ctx, res, "release", key, worker)
}

func (s *sqlStore) Finish(ctx context.Context, t results.Trial) error {
	key := t.Key()
	if t.Worker == "" {
		return fmt.Errorf("finish %s: worker is empty; pass the trial returned by Claim", key)
	}
	metrics, err := encodeMetrics(t.Metrics)
	if err != nil {
		return fmt.Errorf("finish %s: %w", key, err)
	}
	finished := t.FinishedAt
	if finished.IsZero() {
		finished = s.now()
	}
	seconds := t.Seconds
	if seconds == 0 && !t.StartedAt.IsZero() {
		seconds = finished.Sub(t.StartedAt).Seconds()
	}
	set := []string{"status = 'done'", "metrics = ?", "error = ''", "lease_until = 0",
		"finished_at = ?", "seconds = ?", "finishes = finishes + 1"}
	args := []any{metrics, formatTime(finished), seconds}
	if len(t.Env) > 0 {
		env, err := encodeEnv(t.Env)
		if err != nil {
			return fmt.Errorf("finish %s: %w", key, err)
		}
		set, args = append(set, "env = ?"), append(args, env)
	}
	if len(t.Config) > 0 {
		config, err := encodeRaw("config", t.Config)
		if err != nil {
			return fmt.Errorf("finish %s: %w", key, err)
		}
		set, args = append(set, "config = ?"), append(args, config)
	}
	args = append(args, key, t.Worker)
	// The guard on worker and status makes the finish exactly-once: a second
	// call, or one from a worker whose lease was taken over, changes nothing.
	res, err := s.db.ExecContext(ctx, s.d.sql(`UPDATE trials SET `+strings.Join(set, ", ")+`
		WHERE trial_key = ? AND worker = ? AND status = 'running'`), args...)
	if err != nil {
		return fmt.Errorf("finish %s: %w", key, err)
	}
	return s.checkHeld(ctx, res, "finish", key, t.Worker)
}

func (s *sqlStore) Fail(ctx context.Context, key, worker string, cause error) error {
	text := "unknown error"
	if cause != nil {
		text = cause.Error()
	}
	res, err := s.db.ExecContext(ctx, s.d.sql(`UPDATE trials
		SET status = 'failed', error = ?, lease_until = 0, finished_at = ?
		WHERE trial_key = ? AND worker = ? AND status = 'running'`), text, formatTime(s.now()), key, worker)
	if err != nil {
		return fmt.Errorf("fail %s: %w", key, err)
	}
	return s.checkHeld(ctx, res, "fail", key, worker)
}

// checkHeld turns an update guarded by "worker holds the lease" that changed
// no row into the reason why.
func (s *sqlStore) checkHeld(ctx context.Context, res sql.Result, op, key, worker string) error {
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("%s %s: %w", op, key, err)
	}
	if n > 0 {
		return nil
	}
	var status, holder string
	err = s.db.QueryRowContext(ctx, s.d.sql(`SELECT status, worker FROM trials WHERE trial_key = ?`), key).Scan(&status, &holder)
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("%s %s: %w", op, key, ErrNotFound)
	case err != nil:
		return fmt.Errorf("%s %s: %w", op, key, err)
	case status == string(results.StatusDone):
		// Both: the caller's lease ended with the finish, and callers that
		// shrug off a lost lease (a late release, fail or heartbeat) must
		// not stop on a trial another worker completed.
		return fmt.Errorf("%s %s by %s: %w: %w by %s", op, key, worker, ErrLeaseLost, ErrFinished, holder)
	case status == string(results.StatusRunning):
		return fmt.Errorf("%s %s by %s: %w: now held by %s", op, key, worker, ErrLeaseLost, holder)
	default:
		return fmt.Errorf("%s %s by %s: %w: trial is %s", op, key, worker, ErrLeaseLost, status)
	}
}

func (s *sqlStore) Requeue(ctx context.Context, sweep string, from ...results.Status) (int, error) {
	if len(from) == 0 {
		return 0, errors.New("requeue: no status given; allowed: failed, running")
	}
	var marks []string
	var args []any
	for _, st := range from {
		if st != results.StatusFailed && st != results.StatusRunning {
			return 0, fmt.Errorf("requeue: status %q cannot be re-queued; allowed: failed, running (done results are never erased)", st)
		}
		marks, args = append(marks, "?"), append(args, string(st))
	}
	q := `UPDATE trials SET status = 'pending', worker = '', lease_until = 0 WHERE status IN (` + strings.Join(marks, ", ") + `)`
	if sweep != "" {
		q += ` AND sweep = ?`
		args = append(args, sweep)
	}
	res, err := s.db.ExecContext(ctx, s.d.sql(q), args...)
	if err != nil {
		return 0, fmt.Errorf("requeue sweep %q: %w", sweep, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("requeue sweep %q: %w", sweep, err)
	}
	return int(n), nil
}

func (s *sqlStore) Get(ctx context.Context, key string) (results.Trial, error) {
	t, err := scanTrial(s.db.QueryRowContext(ctx, s.d.sql(`SELECT `+trialColumns+` FROM trials WHERE trial_key = ?`), key))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("get %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return t, fmt.Errorf("get %s: %w", key, err)
	}
	return t, nil
}

func (s *sqlStore) Trials(ctx context.Context, sweep string) ([]results.Trial, error) {
	return s.List(ctx, Filter{Sweep: sweep})
}

func (s *sqlStore) List(ctx context.Context, f Filter) ([]results.Trial, error) {
	var where []string
	var args []any
	if f.Sweep != "" {
		where, args = append(where, "sweep = ?"), append(args, f.Sweep)
	}
	if f.Factor != "" {
		where, args = append(where, "factor = ?"), append(args, f.Factor)
	}
	if len(f.Status) > 0 {
		marks := make([]string, len(f.Status))
		for i, st := range f.Status {
			if !ValidStatus(st) {
				return nil, fmt.Errorf("list: status %q; allowed: pending, running, done, failed", st)
			}
			marks[i] = "?"
			args = append(args, string(st))
		}
		where = append(where, "status IN ("+strings.Join(marks, ", ")+")")
	}
	q := `SELECT ` + trialColumns + ` FROM trials`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	rows, err := s.db.QueryContext(ctx, s.d.sql(q+` ORDER BY id`), args...)
	if err != nil {
		return nil, fmt.Errorf("list trials: %w", err)
	}
	defer rows.Close()
	var out []results.Trial
	for rows.Next() {
		t, err := scanTrial(rows)
		if err != nil {
			return nil, fmt.Errorf("list trials: %w", err)
		}
		out = append(out, t)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list trials: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Sweeps(ctx context.Context) ([]string, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT sweep FROM trials ORDER BY sweep`)
	if err != nil {
		return nil, fmt.Errorf("list sweeps: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, fmt.Errorf("list sweeps: %w", err)
		}
		out = append(out, name)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list sweeps: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Leases(ctx context.Context, sweep string) ([]Lease, error) {
	q := `SELECT trial_key, worker, lease_until - {{now}} FROM trials WHERE status = 'running'`
	var args []any
	if sweep != "" {
		q += ` AND sweep = ?`
		args = append(args, sweep)
	}
	rows, err := s.db.QueryContext(ctx, s.d.sql(q+` ORDER BY id`), args...)
	if err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	defer rows.Close()
	var out []Lease
	for rows.Next() {
		var l Lease
		var ms int64
		if err := rows.Scan(&l.Key, &l.Worker, &ms); err != nil {
			return nil, fmt.Errorf("list leases: %w", err)
		}
		l.Left = time.Duration(ms) * time.Millisecond
		out = append(out, l)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list leases: %w", err)
	}
	return out, nil
}

func (s *sqlStore) Counts(ctx context.Context, sweep string) (Counts, error) {
	q := `SELECT status, COUNT(*) FROM trials`
	var args []any
	if sweep != "" {
		q += ` WHERE sweep = ?`
		args = append(args, sweep)
	}
	rows, err := s.db.QueryContext(ctx, s.d.sql(q+` GROUP BY status`), args...)
	if err != nil {
		return Counts{}, fmt.Errorf("count trials of %q: %w", sweep, err)
	}
	defer rows.Close()
	var c Counts
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			return Counts{}, fmt.Errorf("count trials of %q: %w", sweep, err)
		}
		switch results.Status(status) {
		case results.StatusPending:
			c.Pending = n
		case results.StatusRunning:
			c.Running = n
		case results.StatusDone:
			c.Done = n
		case results.StatusFailed:
			c.Failed = n
		}
	}
	if err := rows.Err(); err != nil {
		return Counts{}, fmt.Errorf("count trials of %q: %w", sweep, err)
	}
	return c, nil
}
