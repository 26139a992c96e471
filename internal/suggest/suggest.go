// Package suggest finds the valid name nearest to a mistyped one, for
// errors that say "did you mean ...?".
package suggest

import "strings"

// Nearest returns the candidate closest to word by edit distance, if it is
// close enough to be a plausible typo (at most a third of the longer name,
// and at least 1 edit, is allowed).
func Nearest(word string, candidates []string) (string, bool) {
	best, bestD := "", -1
	w := strings.ToLower(word)
	for _, c := range candidates {
		d := distance(w, strings.ToLower(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	if bestD < 0 {
		return "", false
	}
	limit := max(1, max(len(word), len(best))/3)
	return best, bestD <= limit
}

// DidYouMean is "; did you mean X?" for the nearest candidate, or "".
func DidYouMean(word string, candidates []string) string {
	if s, ok := Nearest(word, candidates); ok {
		return "; did you mean " + s + "?"
	}
	return ""
}

// distance is the Levenshtein distance with adjacent transpositions
// counted as one edit (optimal string alignment).
func distance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}
