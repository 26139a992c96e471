package guidelines

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/robarch/robarch/results"
)

// Replication puts two analyses of the same levels side by side: two
// disjoint halves of one sweep's seeds (Options.SplitSeeds) or two stores
// (robarch guidelines compare).
type Replication struct {
	NameA  string            `json:"name_a"`
	NameB  string            `json:"name_b"`
	SeedsA []int64           `json:"seeds_a,omitempty"`
	SeedsB []int64           `json:"seeds_b,omitempty"`
	Levels []ReplicatedLevel `json:"levels"`
	// Tally of Levels by Agreement.
	Agree, Consistent, SignDiffers, Contradict int
	// Notes on what else differs between the two analyses (training
	// precision: a sweep file with train.precision auto trains in bf16 on
	// one machine and fp32 on another).
	Notes []string `json:"notes,omitempty"`
}

// ReplicatedLevel is one level in both analyses.
type ReplicatedLevel struct {
	Label string     `json:"label"`
	A     *HalfValue `json:"a,omitempty"` // nil: the level is not in that analysis
	B     *HalfValue `json:"b,omitempty"`
	// Agreement: "agree" (same verdict), "consistent" (clear in one,
	// not in the other, same sign), "sign differs" (clear in one, the
	// other's estimate of the opposite sign), "contradict" (helps in one,
	// hurts in the other), "missing".
	Agreement string `json:"agreement"`
}

// HalfValue is a level's robust effect in one analysis.
type HalfValue struct {
	Effect  float64   `json:"effect"`
	CI      *Interval `json:"ci,omitempty"`
	Verdict string    `json:"verdict"`
	N       int       `json:"n"`
}

// Agreements between two analyses of a level.
const (
	Agree       = "agree"
	Consistent  = "consistent"
	SignDiffers = "sign differs"
	Contradict  = "contradict"
	Missing     = "missing"
)

// Compare puts the robust effects of two analyses side by side, level by
// level (the union of their levels, in a's rank order then b's).
func Compare(a, b *Analysis, nameA, nameB string) *Replication {
	r := &Replication{NameA: nameA, NameB: nameB}
	// Maps, not searches of the effects: a study of many levels made
	// those O(levels²).
	var labels []string
	values := [2]map[string]*HalfValue{{}, {}}
	for k, an := range []*Analysis{a, b} {
		for _, e := range an.Effects {
			l := e.Label()
			if _, ok := values[0][l]; !ok {
				if _, ok := values[1][l]; !ok {
					labels = append(labels, l)
				}
			}
			if _, ok := values[k][l]; !ok {
				est, _ := e.Estimate(an.RobustMetric)
				values[k][l] = &HalfValue{Effect: est.Effect, CI: est.CI, Verdict: e.Verdict, N: est.N}
			}
		}
	}
	for _, l := range labels {
		lv := ReplicatedLevel{Label: l, A: values[0][l], B: values[1][l]}
		lv.Agreement = agreement(lv.A, lv.B)
		switch lv.Agreement {
		case Agree:
			r.Agree++
		case Consistent:
			r.Consistent++
		case SignDiffers:
			r.SignDiffers++
		case Contradict:
			r.Contradict++
		}
		r.Levels = append(r.Levels, lv)
	}
	if !slices.Equal(a.Precisions, b.Precisions) {
		r.Notes = append(r.Notes, fmt.Sprintf("trained at different precisions (%s: %s; %s: %s): a disagreement can come from precision as well as from seeds",
			nameA, strings.Join(a.Precisions, ", "), nameB, strings.Join(b.Precisions, ", ")))
	}
	return r
}

func agreement(a, b *HalfValue) string {
	if a == nil || b == nil {
		return Missing
	}
	clear := func(v string) bool { return v == Helps || v == Hurts }
	sameSign := (a.Effect >= 0) == (b.Effect >= 0)
	switch {
	case a.Verdict == b.Verdict:
		return Agree
	case clear(a.Verdict) && clear(b.Verdict):
		return Contradict
	case sameSign && (clear(a.Verdict) || clear(b.Verdict)):
		return Consistent
	}
	return SignDiffers
}

var errTooFewSeeds = errors.New("no split of the seeds")

// splitSeeds analyses two disjoint halves of the sweep's seeds: seeds in
// the policy's order alternate between half A (1st, 3rd, ...) and half B,
// so that each half has seeds of every round.
func splitSeeds(trials []results.Trial, opts Options, order []int64) (*Replication, error) {
	var seen []int64
	for _, s := range order {
		if slices.ContainsFunc(trials, func(t results.Trial) bool { return t.Seed == s && t.Status == results.StatusDone }) {
			seen = append(seen, s)
		}
	}
	if len(seen) < 4 {
		return nil, fmt.Errorf("%w: %d finished seeds; each half needs at least two", errTooFewSeeds, len(seen))
	}
	var halves [2][]int64
	for i, s := range seen {
		halves[i%2] = append(halves[i%2], s)
	}
	var out [2]*Analysis
	for h, seeds := range halves {
		var sub []results.Trial
		for _, t := range trials {
			if slices.Contains(seeds, t.Seed) {
				sub = append(sub, t)
			}
		}
		o := opts
		o.SplitSeeds = false
		o.half, o.halfSeeds = string(rune('A'+h)), seeds
		a, err := Analyze(sub, o)
		if err != nil {
			return nil, fmt.Errorf("--split-seeds: half %c: %w", 'A'+h, err)
		}
		out[h] = a
	}
	r := Compare(out[0], out[1], "half A", "half B")
	r.SeedsA, r.SeedsB = halves[0], halves[1]
	return r, nil
}
