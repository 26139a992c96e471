package suggest

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestNearest(t *testing.T) {
	names := []string{"attacks", "eps", "size", "check", "train_size", "test_size"}
	for _, tc := range []struct {
		word, want string
		ok         bool
	}{
		{"atacks", "attacks", true},
		{"attakcs", "attacks", true},
		{"train-size", "train_size", true},
		{"EPS", "eps", true},
		{"completely_different", "", false},
	} {
		got, ok := Nearest(tc.word, names)
		assert.Equal(t, tc.ok, ok, tc.word)
		if tc.ok {
			assert.Equal(t, tc.want, got, tc.word)
		}
	}
	assert.Equal(t, "; did you mean eps?", DidYouMean("epss", names))
	assert.Empty(t, DidYouMean("x", nil))
}

func TestDistance(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		d    int
	}{{"", "", 0}, {"a", "", 1}, {"kitten", "sitting", 3}, {"ab", "ba", 1}, {"autoatack", "autoattack", 1}} {
		assert.Equal(t, tc.d, distance(tc.a, tc.b), tc.a+"/"+tc.b)
	}
}
