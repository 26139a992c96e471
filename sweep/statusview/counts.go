// Package statusview shows where sweeps stand, for people: a store's
// trials counted by status (robarch sweep status) and, while a worker
// runs, two lines at the bottom of a terminal with the sweep's and the
// current trial's progress.
package statusview

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/robarch/robarch/sweep/store"
)

// A Counter lists a store's sweeps and counts each one's trials by status
// (store.Store is one).
type Counter interface {
	Sweeps(ctx context.Context) ([]string, error)
	Counts(ctx context.Context, sweep string) (store.Counts, error)
}

// WriteCounts writes one row per sweep in s: its pending, running, done
// and failed trials.
func WriteCounts(ctx context.Context, w io.Writer, s Counter) error {
	names, err := s.Sweeps(ctx)
	if err != nil {
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SWEEP\tPENDING\tRUNNING\tDONE\tFAILED")
	for _, n := range names {
		c, err := s.Counts(ctx, n)
		if err != nil {
			return err
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\n", n, c.Pending, c.Running, c.Done, c.Failed)
	}
	return tw.Flush()
}
