package store

import (
	"log/slog"
)

// SQLiteWorkerLimit is how many worker processes one SQLite file serves
// before claims slow down. SQLite has one writer at a time, and waiting
// writers poll with growing sleeps, so past this many the claim rate stops
// rising and the slowest claims take seconds (BenchmarkStoreLoad,
// docs/reliability.md, "Store load"). PostgreSQL has no such limit in
// robarch: its row locks let claims run side by side.
const SQLiteWorkerLimit = 16

// FleetSize counts the workers seen in leases (a store's running trials):
// the distinct holders of unexpired leases, plus self when it holds none.
// Workers between two trials hold no lease and are not seen, so this is a
// lower bound.
func FleetSize(leases []Lease, self string) int {
	holders := map[string]bool{self: true}
	for _, l := range leases {
		if l.Left > 0 {
			holders[l.Worker] = true
		}
	}
	return len(holders)
}

// WarnCrowded logs a warning on log when workers is more than a store of
// backend serves without slowing claims (SQLiteWorkerLimit), naming the
// limit and PostgreSQL as the way out; it reports whether it warned.
func WarnCrowded(log *slog.Logger, backend string, workers int) bool {
	if backend != sqliteDialect.name || workers <= SQLiteWorkerLimit {
		return false
	}
	log.Warn("more workers on one SQLite store than it serves without slowing claims; use PostgreSQL (--store postgres://...) for this many (docs/distributed.md)",
		"workers", workers, "sqlite_limit", SQLiteWorkerLimit)
	return true
}
