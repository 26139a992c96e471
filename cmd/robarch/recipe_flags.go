package main

import (
	"fmt"

	"github.com/spf13/pflag"

	"github.com/robarch/robarch/recipe"
)

// addRecipeFlags gives f one flag per recipe key, with the recipe's name,
// default and help (recipe.Keys): the CLI restates none of them.
func addRecipeFlags(f *pflag.FlagSet) {
	for _, k := range recipe.Keys() {
		switch k.Kind {
		case recipe.KindBool:
			def, _ := k.Default.(bool)
			f.Bool(k.Flag, def, k.Help)
		case recipe.KindInt:
			var def int64
			switch d := k.Default.(type) {
			case int:
				def = int64(d)
			case int64:
				def = d
			}
			f.Int64(k.Flag, def, k.Help)
		case recipe.KindFloat:
			def, _ := k.Default.(float64)
			f.Float64(k.Flag, def, k.Help)
		case recipe.KindRadius:
			def := ""
			if d, ok := k.Default.(float64); ok {
				def = recipe.FormatEps(d)
			}
			f.String(k.Flag, def, k.Help)
		default: // strings and lists, as written
			def, _ := k.Default.(string)
			f.String(k.Flag, def, k.Help)
		}
	}
}

// recipeFromFlags sets every recipe key whose flag was given (on the
// command line, in the environment or the config file: bindFlags marks
// those Changed); the others stay zero for the recipe's WithDefaults. A
// key the method or schedule would not read is refused (recipe.Unread).
func recipeFromFlags(f *pflag.FlagSet) (recipe.Recipe, error) {
	var r recipe.Recipe
	for _, k := range recipe.Keys() {
		fl := f.Lookup(k.Flag)
		if fl == nil || !fl.Changed {
			continue
		}
		if err := r.Set(k.Name, fl.Value.String()); err != nil {
			return r, fmt.Errorf("--%s: %w", k.Flag, err)
		}
	}
	if unread := r.Unread(); len(unread) > 0 {
		flags := map[string]string{}
		for _, k := range recipe.Keys() {
			flags[k.Name] = k.Flag
		}
		u := unread[0]
		return r, fmt.Errorf("--%s: %s (leave it out, or give the --method or --schedule that reads it)", flags[u.Key], u.Reason)
	}
	return r, nil
}
