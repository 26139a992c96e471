package study

import (
	"encoding/json"
	"fmt"
	"math"
	"strings"

	"gonum.org/v1/gonum/stat/distuv"
)

// Seeds is a sweep's seed policy. Written as a list (`seeds: [0, 1, 2]`)
// every variant gets those seeds and the study is analysed once. Written
// as a mapping it runs in rounds:
//
//	seeds: {start: 4, add: 2, max: 8, max_trials: 40, offset: 0}
//
// every variant first gets seeds offset..offset+start−1; after each round
// the study is analysed, and only variants whose verdict is still open and
// could still become clear within max get the next add seeds (the baseline
// with them, so that every new seed stays paired). Seeds are always added
// in the same order, so the result depends on the finished trials alone,
// never on how many workers ran or how fast.
type Seeds struct {
	// List is the fixed seeds of a non-adaptive study.
	List []int64 `json:"list,omitempty"`
	// Start, Add and Max define the rounds of an adaptive study.
	Start int `json:"start,omitempty"`
	Add   int `json:"add,omitempty"`
	Max   int `json:"max,omitempty"`
	// MaxTrials caps the whole sweep's trials (0: no cap beyond Max).
	MaxTrials int `json:"max_trials,omitempty"`
	// Offset shifts every seed; a second run with a disjoint offset is an
	// independent replication of the study.
	Offset int64 `json:"offset,omitempty"`
}

// Adaptive reports whether the policy runs in rounds.
func (s Seeds) Adaptive() bool { return s.Start > 0 }

// Order is every seed the policy can use, in the order they are added.
func (s Seeds) Order() []int64 {
	if !s.Adaptive() {
		out := make([]int64, len(s.List))
		for i, v := range s.List {
			out[i] = v + s.Offset
		}
		return out
	}
	out := make([]int64, s.Max)
	for i := range out {
		out[i] = s.Offset + int64(i)
	}
	return out
}

// Looks are the number of seeds per open variant at each analysis.
func (s Seeds) Looks() []int {
	if !s.Adaptive() {
		return []int{len(s.List)}
	}
	var out []int
	for n := s.Start; ; n += s.Add {
		if n >= s.Max || s.Add <= 0 {
			return append(out, s.Max)
		}
		out = append(out, n)
	}
}

// Validate names the field at fault and the allowed values.
func (s Seeds) Validate() error {
	if !s.Adaptive() {
		switch {
		case s.Add != 0 || s.Max != 0 || s.MaxTrials != 0:
			return fmt.Errorf("seeds: add, max and max_trials need start (the seeds of the first round), e.g. {start: 4, add: 2, max: 8}")
		case len(s.List) == 0:
			return fmt.Errorf("seeds: empty; want a list such as [0, 1, 2] or a policy such as {start: 4, add: 2, max: 8}")
		}
		seen := map[int64]bool{}
		for _, v := range s.List {
			if seen[v] {
				return fmt.Errorf("seeds: %d appears twice", v)
			}
			seen[v] = true
		}
		return nil
	}
	var errs []string
	if len(s.List) > 0 {
		errs = append(errs, "a list and start cannot be combined")
	}
	if s.Start < 2 {
		errs = append(errs, fmt.Sprintf("start %d: want at least 2 (an interval needs two seeds)", s.Start))
	}
	if s.Max < s.Start {
		errs = append(errs, fmt.Sprintf("max %d: want at least start (%d)", s.Max, s.Start))
	}
	if s.Max > s.Start && s.Add < 1 {
		errs = append(errs, fmt.Sprintf("add %d: want at least 1 when max (%d) > start (%d)", s.Add, s.Max, s.Start))
	}
	if s.MaxTrials < 0 {
		errs = append(errs, fmt.Sprintf("max_trials %d: want 0 (no cap) or more", s.MaxTrials))
	}
	if s.Offset < 0 {
		errs = append(errs, fmt.Sprintf("offset %d: want 0 or more", s.Offset))
	}
	if len(errs) > 0 {
		return fmt.Errorf("seeds: %s", strings.Join(errs, "; "))
	}
	return nil
}

// String is the policy as a sweep file writes it.
func (s Seeds) String() string {
	if !s.Adaptive() {
		return fmt.Sprint(s.Order())
	}
	out := fmt.Sprintf("start %d, add %d, max %d", s.Start, s.Add, s.Max)
	if s.MaxTrials > 0 {
		out += fmt.Sprintf(", max_trials %d", s.MaxTrials)
	}
	if s.Offset > 0 {
		out += fmt.Sprintf(", offset %d", s.Offset)
	}
	return out
}

// MarshalJSON writes a fixed policy as a plain list, as it is written in
// sweep files.
func (s Seeds) MarshalJSON() ([]byte, error) {
	if !s.Adaptive() && s.Offset == 0 {
		if s.List == nil {
			return []byte("[]"), nil
		}
		return json.Marshal(s.List)
	}
	type plain Seeds
	return json.Marshal(plain(s))
}

// UnmarshalJSON reads a list or a policy object.
func (s *Seeds) UnmarshalJSON(b []byte) error {
	var list []int64
	if err := json.Unmarshal(b, &list); err == nil {
		*s = Seeds{List: list}
		return nil
	}
	type plain Seeds
	var p plain
	dec := json.NewDecoder(strings.NewReader(string(b)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("seeds: want a list of seeds or {start, add, max, max_trials, offset}: %w", err)
	}
	*s = Seeds(p)
	return nil
}

// SpendAlpha splits the family-wise error rate alpha over the looks:
// the cumulative alpha spent by information fraction t = n/max follows
// the O'Brien–Fleming-type function of Lan and DeMets,
// α(t) = 2 − 2Φ(z₁₋α/₂ / √t), and each look tests at its increment.
// Testing at the increments is a union (Bonferroni) bound over looks, so
// the overall rate is at most alpha whatever the correlation between
// looks and whichever variants a round drops; it spends little at the
// early, noisy looks and most at the last.
func SpendAlpha(looks []int, alpha float64) []float64 {
	if len(looks) == 1 {
		return []float64{alpha}
	}
	std := distuv.UnitNormal
	z := std.Quantile(1 - alpha/2)
	last := float64(looks[len(looks)-1])
	out := make([]float64, len(looks))
	spent := 0.0
	for i, n := range looks {
		cum := 2 - 2*std.CDF(z/math.Sqrt(float64(n)/last))
		if i == len(looks)-1 {
			cum = alpha
		}
		out[i] = cum - spent
		spent = cum
	}
	return out
}
