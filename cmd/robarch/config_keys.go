package main

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/robarch/robarch/internal/suggest"
)

// checkConfigFile refuses a --config file with keys no command has: viper
// would drop them silently and the command would run with its defaults.
// A sweep file (it has a baseline or factors) is told apart, since it
// belongs to --sweep. Keys are those of any command's flags, so one file
// can serve several commands.
func checkConfigFile(root *cobra.Command, path string) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read --config %s: %w", path, err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("read --config %s: %w", path, err)
	}
	_, baseline := raw["baseline"]
	_, factors := raw["factors"]
	if baseline || factors {
		return fmt.Errorf("--config %s is a sweep file (it has baseline/factors): pass it as --sweep %s; --config holds flag values such as threads: 2", path, path)
	}
	known := flagNames(root)
	var errs []error
	keys := make([]string, 0, len(raw))
	for k := range raw {
		keys = append(keys, k)
	}
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
		names = append(names, strings.TrimSpace(n))
	}
	slices.Sort(names)
	return names
}
