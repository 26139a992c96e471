package guidelines

import (
	"fmt"
	"slices"
)

// Past these sizes the page shows the two ends of a list and counts the
// rest: a study of hundreds of levels otherwise prints tables, lists and
// plots no one can read (every row stays in effects.csv and
// guidelines.json). Below them the page is as it always was.
const (
	// maxRows: the effects and variants tables and the effects plots
	// show the maxRows/2 best and worst beyond it.
	maxRows = 40
	// maxItems: inline lists (a factor's levels, a finding's evidence,
	// the variants in the ratio band) show the first and last clipEnds
	// beyond it.
	maxItems = 30
	clipEnds = 5
	// maxCurves: an EDF plot of more levels draws the best and worst
	// (maxCurves/2 each) in colour and the rest thin and grey.
	maxCurves = 8
)

// ends returns xs when it has at most limit elements, else its first
// and last limit/2, and where the gap between them is.
func ends[T any](xs []T, limit int) ([]T, int) {
	if len(xs) <= limit {
		return xs, len(xs)
	}
	k := limit / 2
	return append(slices.Clone(xs[:k]), xs[len(xs)-k:]...), k
}

// clip shortens a long inline list to its ends and a count of the rest.
func clip(xs []string) []string {
	if len(xs) <= maxItems {
		return xs
	}
	out := append(slices.Clone(xs[:clipEnds]), fmt.Sprintf("… %d more", len(xs)-2*clipEnds))
	return append(out, xs[len(xs)-clipEnds:]...)
}
