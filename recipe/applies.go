package recipe

import (
	"fmt"
	"slices"
)

// Unread is a key a recipe sets that its method or schedule never reads.
type Unread struct {
	Key    string // the recipe key (Key.Name): "steps"
	Reason string // what it applies to and what this recipe does instead
}

// Unread lists the keys r sets (non-zero) that training with r would
// silently ignore: inner steps under fgsm-rs, a TRADES β under pgd, a
// one-cycle peak under a cosine schedule, and so on. r is the recipe as
// written, before WithDefaults (which fills keys the method does read);
// the method and schedule are taken as WithDefaults resolves them. A
// sweep file or command line that sets such a key is refused rather than
// trained as if it had not (issue 37: every key honoured or refused).
func (r Recipe) Unread() []Unread {
	resolved := r.WithDefaults()
	method, schedule := resolved.Method, resolved.Schedule
	var out []Unread
	unread := func(set bool, key, format string, args ...any) {
		if set {
			out = append(out, Unread{Key: key, Reason: fmt.Sprintf(format, args...)})
		}
	}
	onlyMethods := func(key string, set bool, methods ...Method) {
		if !slices.Contains(methods, method) {
			unread(set, key, "read only by method %s; method %s does not read it", orList(methods), method)
		}
	}
	onlySchedule := func(key string, set bool, s ScheduleKind) {
		if schedule != s {
			unread(set, key, "read only by schedule %s; this recipe's schedule is %s", s, schedule)
		}
	}
	onlyMethods("steps", r.Steps != 0, PGD, TRADES)
	onlyMethods("beta", r.Beta != 0, TRADES)
	onlyMethods("step_size", r.StepSize != 0, FGSMRS, PGD, TRADES)
	onlySchedule("peak_at", r.PeakAt != 0, OneCycle)
	onlySchedule("warmup_epochs", r.WarmupEpochs != 0, Cosine)
	onlySchedule("milestones", len(r.Milestones) > 0, Step)
	onlySchedule("gamma", r.Gamma != 0, Step)
	return out
}

// orList is "a", "a or b", "a, b or c".
func orList[T ~string](xs []T) string {
	if len(xs) < 2 {
		return join(xs)
	}
	return join(xs[:len(xs)-1]) + " or " + string(xs[len(xs)-1])
}
