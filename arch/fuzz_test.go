package arch

import (
	"testing"
)

// FuzzParse feeds spec files, YAML and JSON: a spec that parses must be
// valid, count its parameters and survive an encode/parse round trip.
func FuzzParse(f *testing.F) {
	for _, name := range []string{"micro", "robarch-s", "resnet18-cifar"} {
		s, err := Get(name)
		if err != nil {
			f.Fatal(err)
		}
		y, err := EncodeYAML(s)
		if err != nil {
			f.Fatal(err)
		}
		j, err := EncodeJSON(s)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(y, false)
		f.Add(j, true)
	}
	f.Add([]byte("stages: [{depth: 1000000000, width: 1000000000}]"), false)
	f.Add([]byte(`{"stages": [{"depth": -1}]}`), true)
	f.Add([]byte("input: {channels: 0}"), false)
	f.Fuzz(func(t *testing.T, data []byte, asJSON bool) {
		format := "yaml"
		if asJSON {
			format = "json"
		}
		s, err := Parse(data, format)
		if err != nil {
			return
		}
		if _, err := Params(s); err != nil {
			t.Fatalf("a parsed spec cannot count its parameters: %v", err)
		}
		y, err := EncodeYAML(s)
		if err != nil {
			t.Fatalf("encode: %v", err)
		}
		if _, err := Parse(y, "yaml"); err != nil {
			t.Fatalf("a parsed spec does not parse again: %v\n%s", err, y)
		}
	})
}
