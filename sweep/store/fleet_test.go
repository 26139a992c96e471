package store

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFleetSizeCountsLiveHolders(t *testing.T) {
	for _, c := range []struct {
		name          string
		live, expired int
		selfHolds     bool
		want          int
	}{
		{"alone", 0, 0, false, 1},
		{"three others", 3, 0, false, 4},
		{"self among the holders", 3, 0, true, 4},
		{"expired leases are not workers", 2, 3, false, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, filepath.Join(t.TempDir(), "results.db"))
			_, err := s.AddTrials(ctx, plan("s", c.live+c.expired+2))
			require.NoError(t, err)
			for i := range c.live {
				mustClaim(t, s, "s", fmt.Sprintf("w%d", i), time.Hour)
			}
			if c.live > 0 {
				mustClaim(t, s, "s", "w0", time.Hour) // two trials, one worker
			}
			if c.selfHolds {
				_, err := s.Claim(ctx, "s", "self", time.Hour)
				require.NoError(t, err)
			}
			// Claimed last: a claim takes an expired lease before a pending trial.
			for i := range c.expired {
				mustClaim(t, s, "s", fmt.Sprintf("gone%d", i), time.Millisecond)
			}
			time.Sleep(5 * time.Millisecond)
			leases, err := s.Leases(ctx, "s")
			require.NoError(t, err)
			assert.Equal(t, c.want, FleetSize(leases, "self"))
		})
	}
}

func TestWarnCrowdedPastTheSQLiteLimit(t *testing.T) {
	for _, c := range []struct {
		backend string
		workers int
		want    bool
	}{
		{"sqlite", 1, false},
		{"sqlite", SQLiteWorkerLimit, false},
		{"sqlite", SQLiteWorkerLimit + 1, true},
		{"postgres", 10 * SQLiteWorkerLimit, false},
	} {
		t.Run(fmt.Sprintf("%s/%d", c.backend, c.workers), func(t *testing.T) {
			var buf bytes.Buffer
			warned := WarnCrowded(slog.New(slog.NewTextHandler(&buf, nil)), c.backend, c.workers)
			assert.Equal(t, c.want, warned)
			if !c.want {
				assert.Empty(t, buf.String())
				return
			}
			assert.Contains(t, buf.String(), "level=WARN")
			assert.Contains(t, buf.String(), "PostgreSQL")
			assert.Contains(t, buf.String(), fmt.Sprintf("workers=%d sqlite_limit=%d", c.workers, SQLiteWorkerLimit))
		})
	}
}
