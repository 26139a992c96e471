package sweeprun

import (
	"context"
	"log/slog"

	"github.com/robarch/robarch/sweep"
	"github.com/robarch/robarch/sweep/store"
)

// PlanAndEnqueue plans f, checks the plan (Preflight with check) and adds
// its trials to s: nothing enters the store, and nothing trains, until
// every trial is known to be runnable. Variants that do not fit the budget
// are logged as left out; the log's last line counts the sweep's trials.
func PlanAndEnqueue(ctx context.Context, s store.Store, f *sweep.File, check PreflightOptions) (*sweep.Plan, error) {
	p, err := sweep.MakePlan(f)
	if err != nil {
		return nil, err
	}
	if err := Preflight(f, p, check); err != nil {
		return nil, err
	}
	for _, v := range p.Variants {
		if !v.Feasible {
			slog.Warn("variant left out: does not fit the budget", "variant", v.Name, "reason", v.Reason)
		}
	}
	n, err := Enqueue(ctx, s, p, f)
	if err != nil {
		return nil, err
	}
	c, err := s.Counts(ctx, f.Name)
	if err != nil {
		return nil, err
	}
	slog.Info("sweep enqueued", "sweep", f.Name, "new_trials", n, "pending", c.Pending, "done", c.Done, "failed", c.Failed)
	return p, nil
}
