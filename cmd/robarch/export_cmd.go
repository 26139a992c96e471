package main

import (
	"fmt"
	"log/slog"

	"github.com/spf13/cobra"
	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/torchrt"
)

func newExportCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a robarch checkpoint's weights as a plain state dict in its naming (safetensors) for PyTorch's load_state_dict(strict=True)",
		Long: `Read a robarch checkpoint (model.safetensors from robarch train) and write
exactly the state dict of the Python class its spec's naming follows:
torchvision's ResNets, RobArch's ConfigurableModel, or RobustBench's
WideResNet (robustbench-wrn), DMWideResNet / RaWRN (robustbench-dm) and
DMPreActResNet (robustbench-dm-preact), including each batch norm's num_batches_tracked. In Python:
  from safetensors.torch import load_file
  model.load_state_dict(load_file("weights.safetensors"), strict=True)`,
		Example: `  robarch export --weights runs/wrn/model.safetensors --out wrn-robustbench.safetensors`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in, _ := cmd.Flags().GetString("weights")
			out, _ := cmd.Flags().GetString("out")
			if in == "" || out == "" {
				return fmt.Errorf("--weights (a robarch checkpoint) and --out (a .safetensors path) are required")
			}
			info, err := model.ReadCheckpointInfo(in)
			if err != nil {
				return fmt.Errorf("--weights: %w", err)
			}
			w := torchrt.NewWorker()
			defer w.Close()
			return w.Do(func() error {
				o, err := model.Open(model.Ref{Weights: in}, model.OpenOptions{Device: gotch.CPU, Format: model.Contiguous})
				if err != nil {
					return err
				}
				defer o.Vars.Destroy()
				net := o.Net
				if err := model.ExportWeights(net, out); err != nil {
					return err
				}
				slog.Info("exported", "model", info.Spec.Name, "naming", info.Spec.Naming, "params", net.NumParams(), "out", out)
				return nil
			})
		},
	}
	cmd.Flags().String("weights", "", "a robarch checkpoint (required)")
	cmd.Flags().String("out", "", "output state dict, .safetensors (required)")
	return cmd
}
