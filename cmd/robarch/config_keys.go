package main

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"

	"github.com/robarch/robarch/internal/suggest"
)

// checkConfigFile refuses a --config file with keys no command has: viper
// would drop them silently and the command would run with its defaults.
// A sweep file (it has a baseline or factors) is told apart, since it
// belongs to --sweep. Keys are those of any command's flags, so one file
// can serve several commands.
func checkConfigFile(root *cobra.Command, path string) error {
	// A viper of its own reads any format the real one does (YAML, JSON,
	// TOML, ...) and flattens nested keys as it would ("train.eps").
	fv := viper.New()
	fv.SetConfigFile(path)
	if err := fv.ReadInConfig(); err != nil {
		return fmt.Errorf("read --config %s: %w", path, err)
	}
	keys := fv.AllKeys()
	if fv.IsSet("baseline") || slices.ContainsFunc(keys, func(k string) bool { return k == "factors" || strings.HasPrefix(k, "factors.") }) {
		return fmt.Errorf("--config %s is a sweep file (it has baseline/factors): pass it as --sweep %s; --config holds flag values such as threads: 2", path, path)
	}
	known := flagNames(root)
	var errs []error
	slices.Sort(keys)
	for _, k := range keys {
		if !slices.Contains(known, k) {
			errs = append(errs, fmt.Errorf("%s: not a flag of any command%s", k, suggest.DidYouMean(k, known)))
		}
	}
	if len(errs) > 0 {
		return fmt.Errorf("--config %s: unknown keys (keys are flag names, e.g. threads, log-level): %w", path, errors.Join(errs...))
	}
	return nil
}

// flagNames lists every flag of root and its subcommands, sorted.
func flagNames(root *cobra.Command) []string {
	seen := map[string]bool{}
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		add := func(f *pflag.Flag) { seen[f.Name] = true }
		c.Flags().VisitAll(add)
		c.PersistentFlags().VisitAll(add)
		for _, sub := range c.Commands() {
			walk(sub)
		}
	}
	walk(root)
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
