package bench

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/robarch/robarch/internal/opprof"
)

// Profile is one workload's operator profile: libtorch's profiler over
// Steps steps on each side, every figure per step. Both sides are timed
// by the same profiler in the same libtorch, so an operator whose time
// differs is one the two frameworks call differently (more often, on
// other shapes or layouts) — or, in a step that allocates much, page
// faults the profiler's own allocations cause (see profile).
type Profile struct {
	Steps int `json:"steps"`
	// StepMS is the wall time of a profiled step (profiler overhead
	// included, the profiler's start and stop not); Ops the operators.
	StepMS     float64      `json:"step_ms"`
	Ops        opprof.Table `json:"ops"`
	PeerStepMS float64      `json:"peer_step_ms,omitempty"`
	PeerOps    opprof.Table `json:"peer_ops,omitempty"`
}

// profile runs steps steps of r under the profiler, then as many of the
// peer's (nil: none).
//
// Each step is its own record, after one record thrown away. The
// profiler's event lists are small blocks that live until it stops; kept
// over many steps, they land in the holes freed activations leave and
// split them, so every step's activations need fresh memory from the
// kernel: over 30 recorded micro training steps the heap grew to 6.7 GB,
// 57 thousand page faults a step, and a step took 5× its unprofiled time
// (PyTorch's 1.4×). Stopped after every step, the blocks are freed and
// the holes close again: 1.4× for both (2026-12-03). A two-pass step
// (fgsm-rs) still fragments within itself: 3× on robarch's side.
func profile(steps int, r runner, p *peer) (*Profile, error) {
	pr := &Profile{Steps: steps}
	var wall time.Duration
	for i := -1; i < steps; i++ {
		var took time.Duration
		ops, err := opprof.Record(func() error {
			start := time.Now()
			_, err := r.step()
			took = time.Since(start)
			switch {
			case err != nil && i < 0:
				return fmt.Errorf("profiled warm-up step: %w", err)
			case err != nil:
				return fmt.Errorf("profiled step %d: %w", i+1, err)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		if i >= 0 {
			wall += took
			pr.Ops = pr.Ops.Add(ops)
		}
	}
	pr.StepMS = wall.Seconds() * 1e3 / float64(steps)
	pr.Ops = pr.Ops.PerStep(steps)
	if p == nil {
		return pr, nil
	}
	reply, err := p.call(map[string]any{"cmd": "profile", "steps": steps})
	if err != nil {
		return nil, err
	}
	pr.PeerStepMS = reply.Seconds * 1e3 / float64(steps)
	pr.PeerOps = reply.Ops.PerStep(steps)
	return pr, nil
}

// profileRows is how many operators the table shows per workload.
const profileRows = 25

// writeProfile prints the operators whose self time differs most between
// robarch and the peer (or robarch's costliest, without a peer).
func writeProfile(w io.Writer, res Result) error {
	pr := res.Profile
	fmt.Fprintf(w, "\noperator profile, %s: %d steps under libtorch's profiler; per step: wall %.1f ms, in operators %.1f ms (robarch)",
		res.Workload, pr.Steps, pr.StepMS, pr.Ops.SelfUS()/1e3)
	if pr.PeerOps != nil {
		fmt.Fprintf(w, "; wall %.1f ms, in operators %.1f ms (PyTorch)", pr.PeerStepMS, pr.PeerOps.SelfUS()/1e3)
	}
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	peer := pr.PeerOps != nil
	if peer {
		fmt.Fprintln(tw, "operator\tcalls\tself ms\tPyTorch calls\tPyTorch self ms\tdifference ms\t")
	} else {
		fmt.Fprintln(tw, "operator\tcalls\tself ms\t")
	}
	pairs := opprof.Compare(pr.Ops, pr.PeerOps)
	for _, pair := range pairs[:min(len(pairs), profileRows)] {
		name := strings.TrimPrefix(pair.Name, "autograd::engine::evaluate_function: ")
		if !peer {
			fmt.Fprintf(tw, "%s\t%s\t%.2f\t\n", name, calls(pair.A.Calls), pair.A.SelfUS/1e3)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%.2f\t%s\t%.2f\t%+.2f\t\n", name, calls(pair.A.Calls), pair.A.SelfUS/1e3,
			calls(pair.B.Calls), pair.B.SelfUS/1e3, (pair.A.SelfUS-pair.B.SelfUS)/1e3)
	}
	return tw.Flush()
}

// calls writes a per-step call count: whole when it is one.
func calls(v float64) string {
	if v == float64(int64(v)) {
		return fmt.Sprint(int64(v))
	}
	return fmt.Sprintf("%.2f", v)
}
