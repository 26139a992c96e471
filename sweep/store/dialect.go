package store

import (
	"strconv"
	"strings"
)

// dialect holds what differs between the backends; the queries are written
// once with '?' placeholders and {{type}} markers.
type dialect struct {
	name   string // "sqlite" | "postgres"
	driver string // database/sql driver name
	// nowMillis is the database clock in Unix milliseconds; leases use it so
	// that workers on machines with skewed clocks agree on expiry.
	nowMillis string
	// skipLocked ends the claim subquery: PostgreSQL locks the candidate row
	// and lets concurrent claimers skip it; SQLite serialises writers anyway.
	skipLocked string
	// migrateLock serialises concurrent Opens migrating the same database.
	migrateLock string
	numbered    bool // placeholders are $1, $2, ... instead of ?
	types       *strings.Replacer
}

var sqliteDialect = dialect{
	name:       "sqlite",
	driver:     "sqlite",
	nowMillis:  "CAST((julianday('now') - 2440587.5) * 86400000.0 AS INTEGER)",
	skipLocked: "",
	types: strings.NewReplacer(
		"{{id}}", "INTEGER PRIMARY KEY",
		"{{int}}", "INTEGER",
		"{{real}}", "REAL",
	),
}

var postgresDialect = dialect{
	name:        "postgres",
	driver:      "pgx",
	nowMillis:   "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)",
	skipLocked:  "FOR UPDATE SKIP LOCKED",
	migrateLock: "SELECT pg_advisory_xact_lock(7461626172)", // any fixed number unique to robarch
	numbered:    true,
	types: strings.NewReplacer(
		"{{id}}", "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY",
		"{{int}}", "BIGINT",
		"{{real}}", "DOUBLE PRECISION",
	),
}

// sql rewrites a query for the dialect: types, clock, and placeholders.
func (d dialect) sql(q string) string {
	q = d.types.Replace(q)
	q = strings.ReplaceAll(q, "{{now}}", d.nowMillis)
	q = strings.ReplaceAll(q, "{{skip_locked}}", d.skipLocked)
	if !d.numbered {
		return q
	}
	var b strings.Builder
	n, quoted := 0, false
	for _, r := range q {
		switch {
		case r == '\'':
			quoted = !quoted
		case r == '?' && !quoted:
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// migration is one step of the schema; versions are 1-based positions in
// migrations and must never be reordered or edited once released: add a new
// step instead.
type migration struct {
	name       string
	statements []string
}

// Columns worth knowing: lease_until is the lease's end on the database
// clock in Unix milliseconds; attempts counts claims; finishes counts
// accepted Finish calls (an audit of exactly-once: never above 1); metrics,
// spec, config and env are JSON text; timestamps are RFC 3339 UTC text.
var migrations = []migration{
	{
		name: "trials table with leases",
		statements: []string{
			`CREATE TABLE trials (
				id {{id}},
				trial_key TEXT NOT NULL UNIQUE,
				sweep TEXT NOT NULL,
				variant TEXT NOT NULL,
				factor TEXT NOT NULL DEFAULT '',
				level TEXT NOT NULL DEFAULT '',
				seed {{int}} NOT NULL,
				params {{int}} NOT NULL DEFAULT 0,
				macs {{int}} NOT NULL DEFAULT 0,
				width_depth_ratio {{real}} NOT NULL DEFAULT 0,
				status TEXT NOT NULL DEFAULT 'pending'
					CHECK (status IN ('pending', 'running', 'done', 'failed')),
				metrics TEXT NOT NULL DEFAULT '',
				error TEXT NOT NULL DEFAULT '',
				spec TEXT NOT NULL DEFAULT '',
				config TEXT NOT NULL DEFAULT '',
				env TEXT NOT NULL DEFAULT '',
				worker TEXT NOT NULL DEFAULT '',
				lease_until {{int}} NOT NULL DEFAULT 0,
				attempts {{int}} NOT NULL DEFAULT 0,
				finishes {{int}} NOT NULL DEFAULT 0,
				created_at TEXT NOT NULL DEFAULT '',
				started_at TEXT NOT NULL DEFAULT '',
				finished_at TEXT NOT NULL DEFAULT '',
				seconds {{real}} NOT NULL DEFAULT 0,
				UNIQUE (sweep, variant, seed)
			)`,
			`CREATE INDEX trials_claim ON trials (sweep, status, id)`,
		},
	},
}
