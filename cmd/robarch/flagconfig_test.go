package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"github.com/spf13/viper"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// unset in captured's env removes the variable.
const unset = "\x00unset"

// errCaptured stops a command after setup, before it does any work.
var errCaptured = errors.New("captured")

// captured runs `robarch path... args...` with env set and a --config file
// holding file (when not empty) up to the end of setup, and returns what
// the command would see for flag name: through cmd.Flags() and through the
// root viper.
func captured(t *testing.T, path []string, name string, args []string, env map[string]string, file string) (flagValue, viperValue string) {
	t.Helper()
	v := viper.New()
	root := newRoot(v)
	root.PersistentPreRunE = func(cmd *cobra.Command, _ []string) error {
		if err := setup(cmd, v); err != nil {
			return err
		}
		flagValue = cmd.Flags().Lookup(name).Value.String()
		viperValue = fmt.Sprint(v.Get(name))
		return errCaptured
	}
	walk(root, func(c *cobra.Command) { c.Args = cobra.ArbitraryArgs })
	for k, val := range env {
		if val == unset {
			require.NoError(t, os.Unsetenv(k))
		} else {
			require.NoError(t, os.Setenv(k, val))
		}
	}
	all := append([]string{}, path...)
	if file != "" {
		p := filepath.Join(t.TempDir(), "config.yaml")
		require.NoError(t, os.WriteFile(p, []byte(file), 0o644))
		all = append(all, "--config", p)
	}
	root.SetArgs(append(all, args...))
	root.SetOut(new(strings.Builder))
	root.SetErr(new(strings.Builder))
	err := root.Execute()
	require.ErrorIs(t, err, errCaptured)
	return flagValue, viperValue
}

func walk(c *cobra.Command, fn func(*cobra.Command)) {
	fn(c)
	for _, sub := range c.Commands() {
		walk(sub, fn)
	}
}

// flagValues are three distinct values a flag of each type accepts, for
// the command line, the environment and the file (the file's in YAML).
func flagValues(f *pflag.Flag) (flag, env, file, fileYAML string) {
	switch f.Value.Type() {
	case "int", "int64", "int32", "uint", "uint64", "uint32":
		return "7", "8", "9", "9"
	case "float64":
		return "0.25", "0.5", "0.75", "0.75"
	case "duration":
		return "1s", "2s", "3s", "3s"
	case "stringSlice", "int64Slice":
		return "1", "2", "3", "[3]"
	case "stringArray":
		return "a=1", "b=2", "c=3", "[c=3]"
	}
	if f.Name == "log-level" { // setup checks it
		return "debug", "warn", "error", "error"
	}
	if f.Value.Type() != "string" {
		panic("flagValues: no test values for a flag of type " + f.Value.Type() + " (--" + f.Name + ")")
	}
	return "from-flag", "from-env", "from-file", "from-file"
}

// Every flag of every command honours flag > ROBARCH_<COMMAND>_<FLAG> (or
// ROBARCH_<FLAG> for the root's) > --config file, read alike by code that
// asks cmd.Flags() and code that asks viper.
func TestEveryFlagHonoursFlagThenEnvThenFile(t *testing.T) {
	root := newRootCmd()
	var runnable []*cobra.Command
	walk(root, func(c *cobra.Command) {
		if c.Runnable() && c != root {
			runnable = append(runnable, c)
		}
	})
	require.Greater(t, len(runnable), 10)
	tested := 0
	for _, c := range runnable {
		path := strings.Fields(c.CommandPath())[1:]
		c.InheritedFlags() // merges the root's persistent flags into c.Flags()
		c.Flags().VisitAll(func(f *pflag.Flag) {
			if skipFlags[f.Name] {
				return
			}
			env := envName(c, f)
			t.Run(strings.Join(path, "_")+"/"+f.Name, func(t *testing.T) {
				tested++
				t.Setenv(env, "") // restored when the test ends; captured sets or unsets it
				if f.Value.Type() == "bool" {
					// Two values only: each case is set up so that the
					// wrong order gives the other one.
					got, gotV := captured(t, path, f.Name, []string{"--" + f.Name + "=true"}, map[string]string{env: "false"}, "")
					assert.Equal(t, "true", got, "flag beats %s", env)
					assert.Equal(t, got, gotV, "viper agrees")
					got, gotV = captured(t, path, f.Name, nil, map[string]string{env: "true"}, f.Name+": false\n")
					assert.Equal(t, "true", got, "%s beats the file", env)
					assert.Equal(t, got, gotV, "viper agrees")
					got, gotV = captured(t, path, f.Name, nil, map[string]string{env: "false"}, "")
					assert.Equal(t, "false", got, "%s=false read", env)
					assert.Equal(t, got, gotV, "viper agrees")
					got, _ = captured(t, path, f.Name, nil, map[string]string{env: unset}, f.Name+": true\n")
					assert.Equal(t, "true", got, "the file is read")
					return
				}
				flagVal, envVal, fileVal, fileYAML := flagValues(f)
				want := func(raw string) string {
					fs := pflag.NewFlagSet("want", pflag.ContinueOnError)
					fs.AddFlag(&pflag.Flag{Name: f.Name, Value: freshValue(t, c, f.Name)})
					require.NoError(t, fs.Set(f.Name, raw))
					return fs.Lookup(f.Name).Value.String()
				}
				file := f.Name + ": " + fileYAML + "\n"
				got, gotV := captured(t, path, f.Name, []string{"--" + f.Name + "=" + flagVal}, map[string]string{env: envVal}, file)
				assert.Equal(t, want(flagVal), got, "flag beats %s and the file", env)
				assert.Equal(t, got, gotV, "viper agrees")
				got, gotV = captured(t, path, f.Name, nil, map[string]string{env: envVal}, file)
				assert.Equal(t, want(envVal), got, "%s beats the file", env)
				assert.Equal(t, got, gotV, "viper agrees")
				got, gotV = captured(t, path, f.Name, nil, map[string]string{env: unset}, file)
				assert.Equal(t, want(fileVal), got, "the file is read")
				assert.Equal(t, got, gotV, "viper agrees")
			})
		})
	}
	t.Logf("%d flags of %d commands", tested, len(runnable))
}

// freshValue is an unset value of the same flag, from a new command tree.
func freshValue(t *testing.T, c *cobra.Command, name string) pflag.Value {
	t.Helper()
	root := newRootCmd()
	sub, _, err := root.Find(strings.Fields(c.CommandPath())[1:])
	require.NoError(t, err)
	sub.InheritedFlags()
	f := sub.Flags().Lookup(name)
	require.NotNil(t, f)
	return f.Value
}

func TestEnvNames(t *testing.T) {
	root := newRootCmd()
	for _, tc := range []struct {
		path []string
		flag string
		want string
	}{
		{[]string{"train"}, "batch-size", "ROBARCH_TRAIN_BATCH_SIZE"},
		{[]string{"guidelines", "report"}, "store", "ROBARCH_GUIDELINES_REPORT_STORE"},
		{[]string{"sweep"}, "lease", "ROBARCH_SWEEP_LEASE"},
		{[]string{"train"}, "threads", "ROBARCH_THREADS"},
		{[]string{"eval"}, "log-level", "ROBARCH_LOG_LEVEL"},
	} {
		c, _, err := root.Find(tc.path)
		require.NoError(t, err)
		c.InheritedFlags()
		f := c.Flags().Lookup(tc.flag)
		require.NotNil(t, f, "%v --%s", tc.path, tc.flag)
		assert.Equal(t, tc.want, envName(c, f))
	}
}
