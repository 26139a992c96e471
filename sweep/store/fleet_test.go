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

func TestWarnCrowdedCountsLiveHoldersOnSQLite(t *testing.T) {
	for _, c := range []struct {
		name                   string
		live, expired, joining int
		wantN                  int
		wantWarn               bool
	}{
		{"alone", 0, 0, 1, 1, false},
		{"at the limit", SQLiteWorkerLimit - 1, 0, 1, SQLiteWorkerLimit, false},
		{"one past it", SQLiteWorkerLimit, 0, 1, SQLiteWorkerLimit + 1, true},
		{"expired leases are not workers", SQLiteWorkerLimit - 1, 3, 1, SQLiteWorkerLimit, false},
		{"--workers past the limit on an idle store", 0, 0, SQLiteWorkerLimit + 4, SQLiteWorkerLimit + 4, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t, filepath.Join(t.TempDir(), "results.db"))
			_, err := s.AddTrials(ctx, plan("s", c.live+c.expired+1))
			require.NoError(t, err)
			for i := range c.live {
				// Each live worker holds one trial; one of them two (counted once).
				mustClaim(t, s, "s", fmt.Sprintf("w%d", i), time.Hour)
			}
			if c.live > 0 {
				mustClaim(t, s, "s", "w0", time.Hour)
			}
			// Claimed last: a claim takes an expired lease before a pending trial.
			for i := range c.expired {
				mustClaim(t, s, "s", fmt.Sprintf("gone%d", i), time.Millisecond)
			}
			time.Sleep(5 * time.Millisecond)

			var buf bytes.Buffer
			n, warned, err := WarnCrowded(ctx, s, "s", c.joining, slog.New(slog.NewTextHandler(&buf, nil)))
			require.NoError(t, err)
			assert.Equal(t, c.wantN, n)
			assert.Equal(t, c.wantWarn, warned)
			if c.wantWarn {
				assert.Contains(t, buf.String(), "level=WARN")
				assert.Contains(t, buf.String(), "PostgreSQL")
				assert.Contains(t, buf.String(), fmt.Sprintf("sqlite_limit=%d", SQLiteWorkerLimit))
			} else {
				assert.Empty(t, buf.String())
			}
		})
	}
}
