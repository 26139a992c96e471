// Command robarch finds out where adversarial robustness comes from in a
// network's architecture: plan and run budget-matched sweeps, train and
// attack networks, and turn the results into design guidelines.
package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/viper"

	"github.com/robarch/robarch/arch/model"

	// At load, before the Go runtime starts its threads: one malloc arena.
	_ "github.com/robarch/robarch/internal/torchrt/onearena"
)

// version is set at link time (-ldflags "-X main.version=...").
var version = "dev"

// errSilent marks errors already reported to the user.
var errSilent = errors.New("")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	root := newRootCmd()
	if err := root.ExecuteContext(ctx); err != nil {
		if !errors.Is(err, errSilent) {
			fmt.Fprintln(os.Stderr, "robarch:", err)
		}
		os.Exit(1)
	}
}

// newRootCmd builds the command tree. Every flag of every command comes
// from the command line, then its ROBARCH_* environment variable, then an
// optional --config file (bindFlags).
func newRootCmd() *cobra.Command { return newRoot(viper.New()) }

// newRoot is newRootCmd with the viper its commands read.
func newRoot(v *viper.Viper) *cobra.Command {
	root := &cobra.Command{
		Use:           "robarch",
		Short:         "Where does adversarial robustness come from in a network's architecture?",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			return setup(cmd, v)
		},
	}
	pf := root.PersistentFlags()
	pf.String("config", "", "YAML config file whose keys fill flags not given")
	pf.String("log-level", "info", "log level: debug, info, warn, error")
	pf.Int("threads", 0, "libtorch intra-op threads (0 = one per CPU core)")
	pf.String("memory-format", string(model.AutoFormat),
		"layout of the networks' weights: auto (channels-last on the CPU for nets whose convolutions have channels in multiples of 8 and no group norms, else contiguous), contiguous or channels-last")
	root.AddCommand(commands(v)...)
	return root
}

func setup(cmd *cobra.Command, v *viper.Viper) error {
	if path := configPath(cmd); path != "" {
		if err := checkConfigFile(cmd.Root(), path); err != nil {
			return err
		}
		v.SetConfigFile(path)
		if err := v.ReadInConfig(); err != nil {
			return fmt.Errorf("read --config %s: %w", path, err)
		}
	}
	if err := bindFlags(cmd, v); err != nil {
		return err
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(v.GetString("log-level"))); err != nil {
		return fmt.Errorf("--log-level %q: want debug, info, warn or error", v.GetString("log-level"))
	}
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level})))
	return nil
}

// logLevel is the level setup chose (info if --log-level is unreadable,
// which setup has already refused).
func logLevel(v *viper.Viper) slog.Level {
	var level slog.Level
	_ = level.UnmarshalText([]byte(v.GetString("log-level")))
	return level
}

// memoryFormat reads the root's --memory-format ("" when a command tree
// has no such flag: auto).
func memoryFormat(v *viper.Viper) (model.MemoryFormat, error) {
	f, err := model.ParseMemoryFormat(v.GetString("memory-format"))
	if err != nil {
		return "", fmt.Errorf("--memory-format: %w", err)
	}
	return f, nil
}
