package sweep

import (
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/robarch/robarch/arch"
)

// Budget is a sweep's parameter budget: written in a file as 26M, 300K or
// 26143228, parsed once when the file is read and held as the count from
// then on (0: none given, the baseline's own count).
type Budget int64

// UnmarshalJSON reads the count, or the text a file writes (trial configs
// stored while the budget was kept as text).
func (b *Budget) UnmarshalJSON(data []byte) error {
	var n int64
	if err := json.Unmarshal(data, &n); err == nil {
		*b = Budget(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return fmt.Errorf("budget %s: want a count such as 26M or 26143228", data)
	}
	if s == "" {
		*b = 0
		return nil
	}
	n, err := arch.ParseBudget(s)
	if err != nil {
		return err
	}
	*b = Budget(n)
	return nil
}

// parseBudgetKey replaces the budget of a decoded file, text or a number,
// with its count, so that it is parsed here and nowhere else.
func parseBudgetKey(m map[string]any) error {
	var text string
	switch v := m["budget"].(type) {
	case nil:
		return nil
	case string:
		if v == "" {
			delete(m, "budget") // a flag given empty: the baseline's count
			return nil
		}
		text = v
	case float64:
		text = strconv.FormatFloat(v, 'f', -1, 64)
	default:
		text = fmt.Sprint(v)
	}
	n, err := arch.ParseBudget(text)
	if err != nil {
		return fmt.Errorf("budget: %w", err)
	}
	m["budget"] = n
	return nil
}
