package sweeprun

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
	"github.com/robarch/robarch/sweep/store"
)

// A worker that finds more workers on its SQLite store than the measured
// limit says so once, naming the limit and PostgreSQL; at the limit it is
// silent.
func TestRunnerWarnsOnceWhenSQLiteIsCrowded(t *testing.T) {
	for _, c := range []struct {
		others int // live workers on other hosts, one trial each
		warn   bool
	}{
		{store.SQLiteWorkerLimit - 1, false},
		{store.SQLiteWorkerLimit, true},
	} {
		t.Run(fmt.Sprint(c.others), func(t *testing.T) {
			ctx := context.Background()
			f, err := sweep.LoadFile("fashion-mnist-micro")
			require.NoError(t, err)
			seeds := make([]int64, store.SQLiteWorkerLimit+2) // enough trials for every holder
			for i := range seeds {
				seeds[i] = int64(i)
			}
			f.Seeds = study.Seeds{List: seeds}
			p, err := sweep.MakePlan(f)
			require.NoError(t, err)
			s := openStore(t)
			n, err := Enqueue(ctx, s, p, f)
			require.NoError(t, err)
			require.Greater(t, n, c.others)
			for i := range c.others {
				_, err := s.Claim(ctx, f.Name, fmt.Sprintf("elsewhere-%d-2-abcd", i+1), time.Hour)
				require.NoError(t, err)
			}

			var logs bytes.Buffer
			r := &Runner{Store: s, Run: (&fakeTrial{epochs: 1}).run, WorkDir: t.TempDir(), Lease: time.Minute,
				Log: slog.New(slog.NewTextHandler(&logs, nil))}
			st, err := r.Work(ctx, f.Name)
			require.NoError(t, err)
			assert.Equal(t, n-c.others, st.Done, "the warning does not stop the worker")
			warnings := strings.Count(logs.String(), "more workers on one SQLite store")
			if !c.warn {
				assert.Zero(t, warnings, logs.String())
				return
			}
			assert.Equal(t, 1, warnings, "once per worker, not once per claim")
			assert.Contains(t, logs.String(), fmt.Sprintf("workers=%d sqlite_limit=%d", c.others+1, store.SQLiteWorkerLimit))
			assert.Contains(t, logs.String(), "PostgreSQL")
		})
	}
}
