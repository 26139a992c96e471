package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
)

// Every command reads its configuration the same way, whether it then
// reads its flags through cmd.Flags() or through the root viper:
//
//	flag on the command line > environment variable > --config file > default
//
// The environment variable of a command's own flag is ROBARCH_ + the
// command path after robarch + the flag, upper-cased, spaces and dashes
// as underscores (robarch guidelines report --store: ROBARCH_GUIDELINES_REPORT_STORE;
// robarch train --batch-size: ROBARCH_TRAIN_BATCH_SIZE). The root's flags,
// which every command has, drop the command path: ROBARCH_THREADS,
// ROBARCH_LOG_LEVEL, ROBARCH_MEMORY_FORMAT, ROBARCH_CONFIG. A --config
// file's keys are flag names (threads: 2), shared by all commands.

// skipFlags are not configuration: --config names the file itself, help
// and version print and stop.
var skipFlags = map[string]bool{"config": true, "help": true, "version": true}

// envName is the environment variable that sets flag f of cmd.
func envName(cmd *cobra.Command, f *pflag.Flag) string {
	parts := []string{"ROBARCH"}
	if cmd.Root().PersistentFlags().Lookup(f.Name) != f {
		parts = append(parts, strings.Fields(cmd.CommandPath())[1:]...)
	}
	parts = append(parts, f.Name)
	return strings.ToUpper(strings.NewReplacer("-", "_", " ", "_").Replace(strings.Join(parts, "_")))
}

// configPath is --config, or else ROBARCH_CONFIG.
func configPath(cmd *cobra.Command) string {
	f := cmd.Flags().Lookup("config")
	if f == nil {
		return ""
	}
	if f.Changed {
		return f.Value.String()
	}
	return os.Getenv(envName(cmd, f))
}

// bindFlags gives every flag of cmd that the command line left unset its
// value from the environment or, failing that, from the config file read
// into v, and marks it set: code that asks cmd.Flags() and code that asks
// v then see the same value, and "was it given?" (Changed) means given by
// the user in any of the three places. It binds v to the flags last.
func bindFlags(cmd *cobra.Command, v *viper.Viper) error {
	var err error
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		if err != nil || f.Changed || skipFlags[f.Name] {
			return
		}
		env := envName(cmd, f)
		if val, ok := os.LookupEnv(env); ok {
			if e := cmd.Flags().Set(f.Name, val); e != nil {
				err = fmt.Errorf("%s=%q (--%s): %w", env, val, f.Name, e)
			}
			return
		}
		if v.InConfig(f.Name) {
			val := configValue(v.Get(f.Name))
			if e := cmd.Flags().Set(f.Name, val); e != nil {
				err = fmt.Errorf("--config key %s: %q: %w", f.Name, val, e)
			}
		}
	})
	if err != nil {
		return err
	}
	return v.BindPFlags(cmd.Flags())
}

// configValue writes a config file's value as a flag would take it: a
// YAML list as comma-separated items.
func configValue(x any) string {
	if list, ok := x.([]any); ok {
		items := make([]string, len(list))
		for i, e := range list {
			items[i] = fmt.Sprint(e)
		}
		return strings.Join(items, ",")
	}
	return fmt.Sprint(x)
}
