package arch

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// ParseBudget reads a parameter count such as "26M", "500K", "1.5M",
// "2G" or "26143228" (suffixes K, M, G, case-insensitive; "_" and ","
// may separate digits). The result must be a positive whole number.
func ParseBudget(text string) (int64, error) {
	s := strings.TrimSpace(text)
	s = strings.NewReplacer("_", "", ",", "").Replace(s)
	if s == "" {
		return 0, fmt.Errorf("budget %q: want a count like 26M, 500K, 1.5M or 26143228", text)
	}
	mult := 1.0
	switch s[len(s)-1] {
	case 'k', 'K':
		mult = 1e3
	case 'm', 'M':
		mult = 1e6
	case 'g', 'G', 'b', 'B':
		mult = 1e9
	}
	if mult != 1 {
		s = s[:len(s)-1]
	}
	if mult == 1 {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil || n <= 0 {
			return 0, fmt.Errorf("budget %q: want a positive count like 26M, 500K, 1.5M or 26143228", text)
		}
		return n, nil
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("budget %q: want a positive count like 26M, 500K, 1.5M or 26143228", text)
	}
	v := f * mult
	n := math.Round(v)
	if math.Abs(v-n) > max(1e-6, 1e-12*v) || n > math.MaxInt64/2 {
		return 0, fmt.Errorf("budget %q: not a whole number of parameters", text)
	}
	return int64(n), nil
}

// FormatBudget writes n compactly: exact multiples as "26M" or "500K",
// others with up to two decimals ("26.14M"), small counts as digits.
func FormatBudget(n int64) string {
	abs := n
	if abs < 0 {
		abs = -abs
	}
	units := []struct {
		div    int64
		suffix string
	}{{1_000_000_000, "G"}, {1_000_000, "M"}, {1_000, "K"}}
	for _, u := range units {
		if abs >= u.div {
			v := strconv.FormatFloat(float64(n)/float64(u.div), 'f', 2, 64)
			v = strings.TrimRight(strings.TrimRight(v, "0"), ".")
			return v + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
