package recipe

import (
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
)

// KeyKind is how a recipe key's value is written.
type KeyKind string

// The kinds of recipe keys.
const (
	KindString KeyKind = "string"
	KindInt    KeyKind = "int"
	KindFloat  KeyKind = "float"
	KindBool   KeyKind = "bool"
	// KindRadius is a radius in pixel scale, written as a fraction (0.1),
	// a ratio (8/255) or pixel levels (8px): see ParseEps.
	KindRadius KeyKind = "radius"
	// KindFloats is a comma-separated list of numbers.
	KindFloats KeyKind = "floats"
)

// Key is one recipe field as a user sets it: in a sweep file (train.Name)
// and on robarch train's command line (--Flag). The recipe owns the name,
// the default and the help of each, so no command restates them.
type Key struct {
	Name string // the JSON and sweep-file key: "batch_size"
	Flag string // the command-line flag: "batch-size"
	Kind KeyKind
	// Default is the value a recipe that leaves the key unset gets,
	// whatever its other keys; nil where it depends on them (Help says
	// how) or where there is none.
	Default any
	Help    string
	field   int
}

// keyHelp is each key's help, its defaults written from the Default*
// constants. Precision is absent: a command resolves auto for its device
// before a recipe holds it (see Recipe.Precision), so it is the command's
// flag, not a recipe key.
func keyHelp() map[string]string {
	return map[string]string{
		"method":          "training method: " + join(Methods()),
		"eps":             "L∞ training radius: a fraction (0.1), a ratio (8/255) or pixel levels (8px)",
		"step_size":       "inner step size, same units as eps (0 = 1.25·eps for fgsm-rs, 2.5·eps/steps for pgd, eps/4 for trades)",
		"steps":           "inner maximisation steps for pgd and trades",
		"beta":            fmt.Sprintf("TRADES β (0 = %g)", DefaultBeta),
		"epochs":          "training epochs",
		"batch_size":      "training batch size (of the whole data-parallel job)",
		"batch_shards":    "split each batch into this many shards, each with its own batch-norm statistics, gradients averaged: one per process when data-parallel (0 = one per process), or several in turn in one process (gradient accumulation, the same numbers as that many processes)",
		"lr":              fmt.Sprintf("peak learning rate (0 = %g for onecycle, %g otherwise)", DefaultOneCycleLR, DefaultLR),
		"momentum":        "SGD momentum (0 = plain SGD)",
		"no_momentum":     "plain SGD, no momentum",
		"nesterov":        "Nesterov momentum",
		"weight_decay":    "weight decay on parameters with 2+ dimensions; biases and norm layers are not decayed (0 = none)",
		"no_decay":        "no weight decay",
		"schedule":        "LR schedule: " + join(Schedules()) + " (default onecycle for fgsm-rs, cosine otherwise)",
		"peak_at":         fmt.Sprintf("where onecycle peaks, as a fraction of the run (0 = %g)", DefaultPeakAt),
		"warmup_epochs":   "linear warm-up epochs before the cosine schedule",
		"milestones":      "step schedule: comma-separated epochs where the LR drops (default 50%,75% of the run)",
		"gamma":           fmt.Sprintf("step schedule: LR factor at each milestone (0 = %g)", DefaultGamma),
		"label_smoothing": "label smoothing of the training cross-entropy",
		"grad_clip":       "clip the gradient's global L2 norm to this (0 = off)",
		"crop_pad":        "augment: random crop from the image zero-padded by this many pixels (CIFAR: 4)",
		"hflip":           "augment: random horizontal flips",
		"seed":            "seed of weights, data order, augmentation and attacks",
		"eval_size":       "test examples (stratified, seeded subset) for the per-epoch clean and PGD evaluation that chooses the checkpoint (0 = all)",
		"eval_steps":      "PGD steps of the per-epoch evaluation",
		"final_size":      "test examples for the final evaluation of the chosen checkpoint (0 = all)",
		"final_steps":     "PGD steps of the final evaluation",
		"eval_eps":        "evaluation radius, same units as eps (0 = eps)",
		"eval_batch_size": "evaluation batch size (0 = the training batch size)",
		"overfit_drop":    "flag catastrophic overfitting when per-epoch PGD accuracy falls this far below its best",
		"stop_on_overfit": "stop training at the first catastrophic overfitting (the best checkpoint is kept)",
	}
}

// radiusKeys are written in ParseEps's units.
var radiusKeys = map[string]bool{"eps": true, "step_size": true, "eval_eps": true}

// Keys lists the recipe's keys in field order.
func Keys() []Key {
	help := keyHelp()
	t := reflect.TypeFor[Recipe]()
	defaults := reflect.ValueOf(Recipe{}.WithDefaults())
	var keys []Key
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		h, ok := help[name]
		if !ok {
			continue
		}
		k := Key{Name: name, Flag: strings.ReplaceAll(name, "_", "-"), Help: h, field: i}
		switch {
		case radiusKeys[name]:
			k.Kind = KindRadius
		case f.Type.Kind() == reflect.Slice:
			k.Kind = KindFloats
		case f.Type.Kind() == reflect.String:
			k.Kind = KindString
		case f.Type.Kind() == reflect.Bool:
			k.Kind = KindBool
		case f.Type.Kind() == reflect.Float64:
			k.Kind = KindFloat
		default:
			k.Kind = KindInt
		}
		k.Default = fixedDefault(name, defaults.Field(i))
		keys = append(keys, k)
	}
	return keys
}

// derivedKeys default to a value worked out from other keys (their help
// says how), so a command shows no fixed default for them.
var derivedKeys = map[string]bool{
	"step_size": true, "beta": true, "lr": true, "schedule": true, "peak_at": true,
	"milestones": true, "gamma": true, "eval_eps": true, "eval_batch_size": true,
}

// fixedDefault is a field's value v after WithDefaults, nil where it is
// derived from other keys or a zero that means "off", "none" or "all".
func fixedDefault(name string, v reflect.Value) any {
	if derivedKeys[name] || v.IsZero() {
		return nil
	}
	if v.Kind() == reflect.String {
		return v.String()
	}
	return v.Interface()
}

// Set sets key name of r from its text as a user writes it. Zero momentum
// or weight decay means off (no_momentum, no_decay), not "the default".
func (r *Recipe) Set(name, text string) error {
	var key *Key
	for _, k := range Keys() {
		if k.Name == name {
			key = &k
			break
		}
	}
	if key == nil {
		return fmt.Errorf("recipe key %q: unknown", name)
	}
	f := reflect.ValueOf(r).Elem().Field(key.field)
	text = strings.TrimSpace(text)
	var err error
	switch key.Kind {
	case KindRadius:
		var v float64
		if v, err = ParseEps(text); err == nil {
			f.SetFloat(v)
		}
	case KindFloats:
		var vs []float64
		for part := range strings.SplitSeq(text, ",") {
			var v float64
			if v, err = strconv.ParseFloat(strings.TrimSpace(part), 64); err != nil {
				err = fmt.Errorf("want comma-separated numbers like 50,75")
				break
			}
			vs = append(vs, v)
		}
		f.Set(reflect.ValueOf(vs))
	case KindString:
		f.SetString(text)
	case KindBool:
		var v bool
		if v, err = strconv.ParseBool(text); err == nil {
			f.SetBool(v)
		}
	case KindFloat:
		var v float64
		if v, err = strconv.ParseFloat(text, 64); err == nil {
			f.SetFloat(v)
		}
	case KindInt:
		var v int64
		if v, err = strconv.ParseInt(text, 10, 64); err == nil {
			f.SetInt(v)
		}
	}
	if err != nil {
		return fmt.Errorf("%s %q: %w", name, text, err)
	}
	r.NoMomentum = r.NoMomentum || (name == "momentum" && r.Momentum == 0)
	r.NoDecay = r.NoDecay || (name == "weight_decay" && r.WeightDecay == 0)
	return nil
}

// FormatEps writes a radius the way ParseEps reads it, as k/255 when it
// is a whole number of pixel levels.
func FormatEps(v float64) string {
	if k := v * 255; k == math.Round(k) && k != 0 {
		return strconv.FormatFloat(k, 'f', -1, 64) + "/255"
	}
	return strconv.FormatFloat(v, 'g', -1, 64)
}
