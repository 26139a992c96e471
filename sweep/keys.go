package sweep

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/robarch/robarch/internal/suggest"
	"github.com/robarch/robarch/recipe"
	"github.com/robarch/robarch/study"
)

// Key is one key a sweep file may write: a dotted path ("train.epochs")
// to a field of File. Keys lists them; docs/sweep-file.md is generated
// from that list, and the test that every key is honoured walks it.
type Key struct {
	Name string // dotted, as in a file and --set
	// Index is the field's path from File (reflect.Value.FieldByIndex).
	Index []int
	// Field is the struct field, and Owner the struct type that holds it
	// (their names find its doc comment: Owner.Name()+"."+Field.Name).
	Field reflect.StructField
	Owner reflect.Type
}

// Get returns the key's value in f.
func (k Key) Get(f *File) reflect.Value { return reflect.ValueOf(f).Elem().FieldByIndex(k.Index) }

// Keys lists every key of a sweep file in File's order: every field with
// a JSON name, nested mappings (dataset, train, eval, eval.check) by their
// fields, and seeds both as itself (a list or a policy) and by its
// fields.
func Keys() []Key {
	var out []Key
	var walk func(t reflect.Type, index []int, prefix string)
	walk = func(t reflect.Type, index []int, prefix string) {
		for i := range t.NumField() {
			f := t.Field(i)
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name == "" || name == "-" || !f.IsExported() {
				continue
			}
			k := Key{Name: prefix + name, Index: append(slices.Clone(index), i), Field: f, Owner: t}
			if f.Type.Kind() == reflect.Struct {
				if f.Type == reflect.TypeOf(study.Seeds{}) {
					out = append(out, k)
				}
				walk(f.Type, k.Index, k.Name+".")
				continue
			}
			out = append(out, k)
		}
	}
	walk(reflect.TypeOf(File{}), nil, "")
	return out
}

// checkKeys reports every key of a decoded sweep file that File does not
// have, naming its full path and the nearest valid key: a misspelt key
// would otherwise be dropped and its default used without a word.
func checkKeys(m map[string]any) error {
	return errors.Join(unknownKeys(m, reflect.TypeOf(File{}), "")...)
}

func unknownKeys(m map[string]any, t reflect.Type, prefix string) []error {
	fields := map[string]reflect.Type{}
	var names []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "" || name == "-" || !f.IsExported() {
			continue
		}
		fields[name] = f.Type
		names = append(names, name)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		ft, ok := fields[k]
		if !ok {
			errs = append(errs, fmt.Errorf("%s%s: unknown key%s (keys here: %s)", prefix, k,
				suggest.DidYouMean(k, names), strings.Join(names, ", ")))
			continue
		}
		switch v := m[k].(type) {
		case map[string]any:
			if ft.Kind() == reflect.Struct {
				errs = append(errs, unknownKeys(v, ft, prefix+k+".")...)
			}
		case []any:
			if ft.Kind() == reflect.Slice && ft.Elem().Kind() == reflect.Struct {
				for i, e := range v {
					if em, ok := e.(map[string]any); ok {
						errs = append(errs, unknownKeys(em, ft.Elem(), fmt.Sprintf("%s%s[%d].", prefix, k, i))...)
					}
				}
			}
		}
	}
	return errs
}

// checkMappingKeys refuses a mapping whose keys are not all names
// (`seeds: {0}` is a mapping with the key 0): the decoder would panic on
// one.
func checkMappingKeys(v any, path string) error {
	switch m := v.(type) {
	case map[string]any:
		for k, e := range m {
			if err := checkMappingKeys(e, path+k+"."); err != nil {
				return err
			}
		}
	case map[any]any:
		for k := range m {
			if _, ok := k.(string); !ok {
				return fmt.Errorf("%s: mapping key %v is not a name", strings.TrimSuffix(path, "."), k)
			}
		}
		for k, e := range m {
			if err := checkMappingKeys(e, path+k.(string)+"."); err != nil {
				return err
			}
		}
	case []any:
		for i, e := range m {
			if err := checkMappingKeys(e, fmt.Sprintf("%s[%d].", strings.TrimSuffix(path, "."), i)); err != nil {
				return err
			}
		}
	}
	return nil
}

// SetBySweep are the recipe keys a sweep sets for every trial from keys of
// its own: a sweep file that writes them is refused (they would be
// overwritten), naming the key to write instead.
var SetBySweep = map[string]string{
	"train.seed":        "seeds",
	"train.eval_eps":    "eval.eps",
	"train.final_size":  "eval.size",
	"train.final_steps": "eval.attacks (its strongest pgdK)",
}

// checkSetBySweep refuses the SetBySweep keys in a decoded file.
func checkSetBySweep(m map[string]any) error {
	keys := make([]string, 0, len(SetBySweep))
	for k := range SetBySweep {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	var errs []error
	for _, k := range keys {
		if getKey(m, k) != nil {
			errs = append(errs, fmt.Errorf("%s: a sweep sets it for every trial from %s; write that instead", k, SetBySweep[k]))
		}
	}
	return errors.Join(errs...)
}

// FlagKeys maps `robarch sweep`'s flags to the sweep-file keys they
// replace when given (on the command line, as ROBARCH_SWEEP_<FLAG> or in
// the --config file); docs/sweep-file.md shows each beside its key.
var FlagKeys = map[string]string{
	"budget": "budget", "tolerance": "tolerance", "design": "design", "samples": "samples",
	"seeds": "seeds", "dataset": "dataset.name", "data-dir": "dataset.dir",
	"train-size": "dataset.train_size", "test-size": "dataset.test_size",
	"method": "train.method", "epochs": "train.epochs", "eps": "train.eps", "precision": "train.precision",
	"eval-eps": "eval.eps", "final-size": "eval.size", "attacks": "eval.attacks", "device": "device",
}

// epsKeys are the sweep-file keys that take a radius, written as train,
// eval and bench take it: 8/255, 8px or 0.03. The train section's are the
// recipe's radius keys (recipe.KindRadius), so that the recipe alone says
// which of its keys are radii.
var epsKeys = func() []string {
	var keys []string
	for _, k := range recipe.Keys() {
		if k.Kind == recipe.KindRadius {
			keys = append(keys, "train."+k.Name)
		}
	}
	return append(keys, "eval.eps")
}()

// parseEpsKeys replaces a radius written as text with its exact value (8/255
// is stored as the float 8/255, not a rounded decimal).
func parseEpsKeys(m map[string]any) error {
	for _, key := range epsKeys {
		s, ok := getKey(m, key).(string)
		if !ok {
			continue
		}
		eps, err := recipe.ParseEps(s)
		if err != nil {
			return fmt.Errorf("%s: %w", key, err)
		}
		setKey(m, key, eps)
	}
	return nil
}
