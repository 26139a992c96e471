// Package opprof records which libtorch operators a piece of work calls
// and how long each one takes, with libtorch's own autograd profiler (the
// instrument behind torch.autograd.profiler.profile(use_kineto=False)),
// and lines two such records up operator by operator. robarch bench
// --profile uses it to show where robarch and the PyTorch peer spend a
// step differently, measured the same way on both sides.
package opprof

import (
	"cmp"
	"fmt"
	"runtime"
	"slices"
	"strconv"
	"strings"

	"github.com/sugarme/gotch/libtch"
)

// Op is one operator's calls and times over a record. Self time excludes
// the operators it called; total time includes them.
type Op struct {
	Name    string  `json:"name"`
	Calls   float64 `json:"calls"`
	SelfUS  float64 `json:"self_us"`
	TotalUS float64 `json:"total_us"`
}

// Table is a record, one Op per operator name.
type Table []Op

// Record runs fn with the profiler on and returns what it recorded. The
// profiler's state is a C++ thread-local, so the goroutine stays on one OS
// thread meanwhile. The profiler's own cost is in the times (a few µs per
// operator), on either side of a comparison alike.
func Record(fn func() error) (Table, error) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	if err := libtch.RobarchProfileStart(); err != nil {
		return nil, fmt.Errorf("operator profile: %w", err)
	}
	ferr := fn()
	text, err := libtch.RobarchProfileStop()
	if ferr != nil {
		return nil, ferr
	}
	if err != nil {
		return nil, fmt.Errorf("operator profile: %w", err)
	}
	return Parse(text)
}

// Parse reads the extension's table: name, calls, self µs, total µs per
// line, tab-separated.
func Parse(text string) (Table, error) {
	var t Table
	for i, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		if line == "" {
			continue
		}
		f := strings.Split(line, "\t")
		if len(f) != 4 {
			return nil, fmt.Errorf("operator profile line %d %q: want 4 tab-separated fields", i+1, line)
		}
		op := Op{Name: f[0]}
		for j, dst := range []*float64{&op.Calls, &op.SelfUS, &op.TotalUS} {
			v, err := strconv.ParseFloat(f[j+1], 64)
			if err != nil {
				return nil, fmt.Errorf("operator profile line %d field %d: %w", i+1, j+2, err)
			}
			*dst = v
		}
		t = append(t, op)
	}
	return t, nil
}

// PerStep divides every figure by steps.
func (t Table) PerStep(steps int) Table {
	out := slices.Clone(t)
	for i := range out {
		out[i].Calls /= float64(steps)
		out[i].SelfUS /= float64(steps)
		out[i].TotalUS /= float64(steps)
	}
	return out
}

// Add is t and u together: calls and times summed operator by operator,
// in t's order, then the operators only u has.
func (t Table) Add(u Table) Table {
	out := slices.Clone(t)
	at := make(map[string]int, len(out))
	for i, op := range out {
		at[op.Name] = i
	}
	for _, op := range u {
		i, ok := at[op.Name]
		if !ok {
			at[op.Name] = len(out)
			out = append(out, op)
			continue
		}
		out[i].Calls += op.Calls
		out[i].SelfUS += op.SelfUS
		out[i].TotalUS += op.TotalUS
	}
	return out
}

// Find is the operator called name, if the record has it.
func (t Table) Find(name string) (Op, bool) {
	for _, op := range t {
		if op.Name == name {
			return op, true
		}
	}
	return Op{}, false
}

// SelfUS is the sum of self times: the record's time inside operators.
func (t Table) SelfUS() float64 {
	var s float64
	for _, op := range t {
		s += op.SelfUS
	}
	return s
}

// Pair is one operator in two records (zero where a record lacks it).
type Pair struct {
	Name string
	A, B Op
}

// Compare lines a and b up by operator name, largest self-time
// difference first (then by name, so the order is stable).
func Compare(a, b Table) []Pair {
	byName := map[string]*Pair{}
	var pairs []*Pair
	get := func(name string) *Pair {
		if p, ok := byName[name]; ok {
			return p
		}
		p := &Pair{Name: name}
		byName[name] = p
		pairs = append(pairs, p)
		return p
	}
	for _, op := range a {
		get(op.Name).A = op
	}
	for _, op := range b {
		get(op.Name).B = op
	}
	out := make([]Pair, len(pairs))
	for i, p := range pairs {
		out[i] = *p
	}
	abs := func(v float64) float64 { return max(v, -v) }
	slices.SortFunc(out, func(x, y Pair) int {
		if c := cmp.Compare(abs(y.A.SelfUS-y.B.SelfUS), abs(x.A.SelfUS-x.B.SelfUS)); c != 0 {
			return c
		}
		return strings.Compare(x.Name, y.Name)
	})
	return out
}
