package sweeprun

import (
	"context"
	"fmt"
	"log/slog"
	"slices"

	"github.com/robarch/robarch/results"
	"github.com/robarch/robarch/study"
	"github.com/robarch/robarch/sweep"
	"github.com/robarch/robarch/sweep/store"
)

// NextRound analyses an adaptive sweep once its current round has
// finished and enqueues the next round's trials: the next seeds for the
// baseline and for every level whose verdict is still open. It returns how
// many trials it added (0 when the sweep is not adaptive, complete, or
// still waiting for trials of the current round). Every worker may call
// it: the round follows from the finished trials alone and AddTrials
// ignores trials that are already there.
func NextRound(ctx context.Context, s store.Store, sweepName string, log *slog.Logger) (int, error) {
	trials, err := s.Trials(ctx, sweepName)
	if err != nil || len(trials) == 0 {
		return 0, err
	}
	cfg, err := sweep.DecodeTrialConfig(trials[0])
	if err != nil {
		return 0, err
	}
	f := cfg.Sweep
	if !f.Seeds.Adaptive() {
		return 0, nil
	}
	d, obs := study.StudyOf(trials, f.RobustMetric(), f.Protocol(), sweep.Alpha)
	seq, err := study.Decide(obs, d)
	if err != nil {
		return 0, fmt.Errorf("sweep %s: next round: %w", sweepName, err)
	}
	if seq.Complete {
		log.Info("adaptive sweep complete", "sweep", sweepName, "analyses", len(seq.Looks))
		return 0, nil
	}
	p, err := sweep.MakePlan(f)
	if err != nil {
		return 0, err
	}
	next, err := p.TrialsFor(f, seq.Pending.Variants, seq.Pending.Seeds)
	if err != nil {
		return 0, err
	}
	n, err := s.AddTrials(ctx, next)
	if err != nil {
		return 0, err
	}
	if n == 0 {
		var stuck []string
		for _, t := range trials {
			if t.Status == results.StatusFailed && slices.Contains(seq.Pending.Variants, t.Variant) && slices.Contains(seq.Pending.Seeds, t.Seed) {
				stuck = append(stuck, t.Key())
			}
		}
		if len(stuck) > 0 {
			log.Warn("round cannot finish: failed trials (robarch sweep retry re-queues them)", "round", seq.Pending.Look, "failed", stuck)
		}
		return 0, nil
	}
	log.Info("adaptive round enqueued", "sweep", sweepName, "round", seq.Pending.Look,
		"variants", seq.Pending.Variants, "seeds", seq.Pending.Seeds, "new_trials", n)
	return n, nil
}
