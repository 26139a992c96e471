package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// SchemaVersion is the schema version this code writes.
func SchemaVersion() int { return len(migrations) }

// migrate brings the schema up to SchemaVersion in one transaction, so a
// crash mid-migration leaves the previous version intact.
func migrate(ctx context.Context, db *sql.DB, d dialect) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrate: begin: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // no-op after Commit

	if d.migrateLock != "" {
		if _, err := tx.ExecContext(ctx, d.migrateLock); err != nil {
			return fmt.Errorf("migrate: lock: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version INTEGER PRIMARY KEY,
		name TEXT NOT NULL,
		applied_at TEXT NOT NULL
	)`); err != nil {
		return fmt.Errorf("migrate: create schema_migrations: %w", err)
	}
	var current int
	if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
		return fmt.Errorf("migrate: read version: %w", err)
	}
	if current > len(migrations) {
		return fmt.Errorf("%w: store has schema version %d, this robarch knows up to %d; upgrade robarch", ErrSchemaTooNew, current, len(migrations))
	}
	for i := current; i < len(migrations); i++ {
		m := migrations[i]
		for _, stmt := range m.statements {
			if _, err := tx.ExecContext(ctx, d.sql(stmt)); err != nil {
				return fmt.Errorf("migrate to version %d (%s): %w", i+1, m.name, err)
			}
		}
		if _, err := tx.ExecContext(ctx, d.sql(`INSERT INTO schema_migrations (version, name, applied_at) VALUES (?, ?, ?)`),
			i+1, m.name, formatTime(time.Now())); err != nil {
			return fmt.Errorf("migrate: record version %d: %w", i+1, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrate: commit: %w", err)
	}
	return nil
}
