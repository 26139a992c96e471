package sweep

import (
	"fmt"
	"maps"
	"slices"
	"strings"
)

// A FlagValue is a given flag's value as a flag package holds it: its
// text and its type's name (pflag.Value satisfies it; list types, whose
// text is "[a,b]", end in "Slice").
type FlagValue interface {
	String() string
	Type() string
}

// Overrides are the command line's replacements of a sweep file's keys:
// --set assignments (ParseSet), the flags of FlagKeys that were given, and
// a seed offset added to the file's.
type Overrides struct {
	Set []string
	// Flags holds the flags that were given, by name; those not in
	// FlagKeys are ignored.
	Flags      map[string]FlagValue
	SeedOffset int64
}

// Load reads the sweep nameOrPath (Load) with o's replacements. A key
// replaced both by a flag and by --set is refused, as is a negative seed
// offset.
func (o Overrides) Load(nameOrPath string) (*File, error) {
	set, err := o.keys()
	if err != nil {
		return nil, err
	}
	f, err := Load(nameOrPath, set)
	if err != nil {
		return nil, err
	}
	if o.SeedOffset < 0 {
		return nil, fmt.Errorf("--seed-offset %d: want 0 or more", o.SeedOffset)
	}
	f.Seeds.Offset += o.SeedOffset
	return f, nil
}

// keys are the sweep keys o replaces, with their values as Load takes
// them: a list flag's value as its items.
func (o Overrides) keys() (map[string]any, error) {
	set, err := ParseSet(o.Set)
	if err != nil {
		return nil, err
	}
	for _, flag := range slices.Sorted(maps.Keys(o.Flags)) {
		key, ok := FlagKeys[flag]
		if !ok {
			continue
		}
		if _, both := set[key]; both {
			return nil, fmt.Errorf("--%s and --set %s both replace sweep key %s: give one", flag, key, key)
		}
		v := o.Flags[flag]
		if strings.HasSuffix(v.Type(), "Slice") {
			set[key] = strings.Split(strings.Trim(v.String(), "[]"), ",")
		} else {
			set[key] = v.String()
		}
	}
	return set, nil
}
