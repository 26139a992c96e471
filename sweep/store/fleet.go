package store

import (
	"context"
	"fmt"
	"log/slog"
)

// SQLiteWorkerLimit is how many worker processes one SQLite file serves
// before claims slow down. SQLite has one writer at a time, and waiting
// writers poll with growing sleeps, so past this many the claim rate stops
// rising and slow claims become seconds (BenchmarkStoreLoad,
// docs/reliability.md, "Store load"). PostgreSQL has no such limit in
// robarch: its row locks let claims run side by side.
const SQLiteWorkerLimit = 16

// FleetSize counts the workers that will share s once joining more start:
// joining plus the distinct holders of the unexpired leases of sweep (all
// sweeps if empty). Workers between two trials hold no lease and are not
// seen, so this is a lower bound.
func FleetSize(ctx context.Context, s Store, sweep string, joining int) (int, error) {
	leases, err := s.Leases(ctx, sweep)
	if err != nil {
		return 0, fmt.Errorf("count workers: %w", err)
	}
	holders := map[string]bool{}
	for _, l := range leases {
		if l.Left > 0 {
			holders[l.Worker] = true
		}
	}
	return joining + len(holders), nil
}

// WarnCrowded logs a warning on log when more workers than SQLiteWorkerLimit
// will share a SQLite store (FleetSize), naming the limit and PostgreSQL as
// the way out. It returns the count it saw and whether it warned.
func WarnCrowded(ctx context.Context, s Store, sweep string, joining int, log *slog.Logger) (int, bool, error) {
	if s.Backend() != sqliteDialect.name {
		return 0, false, nil
	}
	n, err := FleetSize(ctx, s, sweep, joining)
	if err != nil || n <= SQLiteWorkerLimit {
		return n, false, err
	}
	log.Warn("more workers on one SQLite store than it serves without slowing claims; use PostgreSQL (--store postgres://...) for this many (docs/distributed.md)",
		"workers", n, "sqlite_limit", SQLiteWorkerLimit)
	return n, true, nil
}
