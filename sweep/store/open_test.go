package store

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOpenRoutesByDSN(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	tests := []struct {
		name    string
		dsn     string
		backend string // "" when Open must fail
		errHas  string
		file    string // SQLite file that must exist afterwards
	}{
		{name: "plain path", dsn: filepath.Join(dir, "a.db"), backend: "sqlite", file: filepath.Join(dir, "a.db")},
		{name: "sqlite scheme", dsn: "sqlite://" + filepath.Join(dir, "b.db"), backend: "sqlite", file: filepath.Join(dir, "b.db")},
		{name: "sqlite colon", dsn: "sqlite:" + filepath.Join(dir, "c.db"), backend: "sqlite", file: filepath.Join(dir, "c.db")},
		{name: "missing parent dirs are made", dsn: filepath.Join(dir, "x", "y", "d.db"), backend: "sqlite", file: filepath.Join(dir, "x", "y", "d.db")},
		{name: "empty", dsn: "", errHas: "empty --store"},
		{name: "unknown scheme", dsn: "mysql://u@h/db", errHas: `unknown scheme "mysql"`},
		{name: "query in sqlite path", dsn: filepath.Join(dir, "e.db?mode=ro"), errHas: "must not contain '?'"},
		{name: "unreachable postgres hides password", dsn: "postgres://u:s3cret@/db?host=" + filepath.Join(dir, "nosock") + "&connect_timeout=2", errHas: "connect"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(ctx, tc.dsn)
			if tc.backend == "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.errHas)
				assert.NotContains(t, err.Error(), "s3cret")
				return
			}
			require.NoError(t, err)
			defer s.Close()
			assert.Equal(t, tc.backend, s.Backend())
			_, err = os.Stat(tc.file)
			assert.NoError(t, err)
		})
	}
}

func TestSQLiteUsesWAL(t *testing.T) {
	s := openStore(t, filepath.Join(t.TempDir(), "r.db"))
	var mode string
	require.NoError(t, s.(*sqlStore).db.QueryRow("PRAGMA journal_mode").Scan(&mode))
	assert.Equal(t, "wal", strings.ToLower(mode))
	var timeout int
	require.NoError(t, s.(*sqlStore).db.QueryRow("PRAGMA busy_timeout").Scan(&timeout))
	assert.Greater(t, timeout, 0)
}

func TestDialectRewritesPlaceholders(t *testing.T) {
	q := "UPDATE t SET a = ?, b = '?' WHERE c = ? AND d < {{now}}"
	assert.Equal(t, "UPDATE t SET a = $1, b = '?' WHERE c = $2 AND d < "+postgresDialect.nowMillis, postgresDialect.sql(q))
	assert.Equal(t, "UPDATE t SET a = ?, b = '?' WHERE c = ? AND d < "+sqliteDialect.nowMillis, sqliteDialect.sql(q))
}

func TestNewWorkerIDsDiffer(t *testing.T) {
	a, b := NewWorkerID(), NewWorkerID()
	host, _ := os.Hostname()
	assert.True(t, strings.HasPrefix(a, host+"-"), a)
	assert.NotEqual(t, a, b)
}
