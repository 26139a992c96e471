package store

import (
	"bytes"
	"strings"
	"testing"

	"github.com/robarch/robarch/results"
)

// FuzzDecode feeds results files (CSV and JSON, as `results export`
// writes and `results import` reads): what decodes must export again and
// decode to as many trials.
func FuzzDecode(f *testing.F) {
	trials := []results.Trial{
		{Sweep: "s", Variant: "baseline", Factor: "baseline", Level: "baseline", Seed: 1, Params: 10, MACs: 20,
			Status: results.StatusDone, Metrics: map[string]float64{results.CleanAcc: 0.9, results.PGDAcc: 0.4, "x_acc": 0.1}},
		{Sweep: "s", Variant: "kernel=5", Factor: "kernel", Level: "5", Seed: 2, Status: results.StatusFailed, Error: "boom"},
	}
	for _, format := range []string{FormatCSV, FormatJSON} {
		var b bytes.Buffer
		if err := Export(&b, format, trials); err != nil {
			f.Fatal(err)
		}
		f.Add(b.Bytes(), format == FormatJSON)
	}
	f.Add([]byte(`[{"metrics": {"a": "NaN", "b": "-Inf"}}]`), true)
	f.Add([]byte("sweep,variant\n\"unterminated"), false)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		format := FormatCSV
		if asJSON {
			format = FormatJSON
		}
		got, err := Decode(bytes.NewReader(data), format)
		if err != nil {
			return
		}
		var b bytes.Buffer
		if err := Export(&b, format, got); err != nil {
			t.Fatalf("decoded trials do not export: %v", err)
		}
		again, err := Decode(strings.NewReader(b.String()), format)
		if err != nil {
			t.Fatalf("exported trials do not decode: %v\n%s", err, b.String())
		}
		if len(again) != len(got) {
			t.Fatalf("round trip: %d trials, then %d", len(got), len(again))
		}
	})
}
