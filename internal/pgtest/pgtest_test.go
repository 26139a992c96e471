package pgtest

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestClusterLifecycle(t *testing.T) {
	ctx := context.Background()
	c, err := StartCluster(ctx)
	if err == ErrNotInstalled {
		t.Skip(err)
	}
	require.NoError(t, err)
	t.Cleanup(func() { _ = c.Stop() })

	// The DSN points only at the socket in the cluster's own directory.
	dsn := c.DSN("postgres")
	assert.Contains(t, dsn, "host="+strings.ReplaceAll(c.Dir(), "/", "%2F"))
	_, err = os.Stat(c.Dir() + "/.s.PGSQL.5432")
	require.NoError(t, err, "socket inside the cluster dir")

	// Two fresh databases are separate and usable.
	dsnA := c.NewDatabase(t)
	dsnB := c.NewDatabase(t)
	require.NotEqual(t, dsnA, dsnB)
	a, err := pgx.Connect(ctx, dsnA)
	require.NoError(t, err)
	_, err = a.Exec(ctx, "CREATE TABLE only_in_a (x int)")
	require.NoError(t, err)
	require.NoError(t, a.Close(ctx))
	b, err := pgx.Connect(ctx, dsnB)
	require.NoError(t, err)
	var n int
	require.NoError(t, b.QueryRow(ctx, "SELECT count(*) FROM pg_tables WHERE tablename = 'only_in_a'").Scan(&n))
	assert.Equal(t, 0, n)
	var user string
	require.NoError(t, b.QueryRow(ctx, "SELECT current_user").Scan(&user))
	assert.Equal(t, superuser, user)
	require.NoError(t, b.Close(ctx))

	// Stop shuts the server down and removes every file.
	require.NoError(t, c.Stop())
	_, err = os.Stat(c.Dir())
	assert.True(t, os.IsNotExist(err), "cluster dir removed, got %v", err)
	_, err = pgx.Connect(ctx, dsn)
	assert.Error(t, err, "server is gone")
	require.NoError(t, c.Stop(), "Stop is idempotent")
}

func TestBinDirFindsInstalledServer(t *testing.T) {
	dir, err := BinDir()
	if err == ErrNotInstalled {
		t.Skip(err)
	}
	require.NoError(t, err)
	for _, bin := range []string{"initdb", "postgres"} {
		_, err := os.Stat(dir + "/" + bin)
		assert.NoError(t, err, bin)
	}
}
