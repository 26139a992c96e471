package main

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/data/fixturegen"
	"github.com/robarch/robarch/data/prepare"
)

func newDataCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "data", Short: "Prepare datasets: resized image-folder copies, JPEG fixtures"}
	cmd.AddCommand(newDataPrepareCmd(), newDataFixturesCmd())
	return cmd
}

func newDataPrepareCmd() *cobra.Command {
	var (
		out                      string
		short, quality, workers  int
		decoder, progressSetting string
	)
	cmd := &cobra.Command{
		Use:   "prepare imagefolder:DIR --out DIR2",
		Short: "Write a copy of an image folder with every image's shorter side resized (default 256)",
		Long: `Write a copy of an image-folder tree (class folders, or train/ and val/ with
class folders) in which every image's shorter side is --short-side pixels;
smaller images are copied unchanged. JPEGs are decoded with libjpeg-turbo at
the DCT scale just above the target and re-encoded at --quality; PNGs stay
PNGs. imagefolder:DIR2 then reads the copy as it read the original, and
decodes far less per image.

The run is parallel (--workers) and resumable: every file is written under
a temporary name and renamed when complete, so rerunning the command after
an interruption skips what is done.`,
		Example: `  robarch data prepare imagefolder:/data/imagenet --short-side 256 --out /data/imagenet-256`,
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			dir, err := prepare.SourceDir(args[0])
			if err != nil {
				return err
			}
			dec, err := data.ParseDecoder(decoder)
			if err != nil {
				return fmt.Errorf("--decoder: %w", err)
			}
			if progressSetting != "auto" && progressSetting != "bar" && progressSetting != "log" {
				return fmt.Errorf("--progress %q: allowed values are auto, bar, log", progressSetting)
			}
			cfg := prepare.Config{Src: dir, Out: out, ShortSide: short, Quality: quality, Workers: workers, Decoder: dec}
			if err := cfg.Validate(); err != nil {
				return err
			}
			stderr := cmd.ErrOrStderr()
			useBar := progressSetting == "bar" || (progressSetting == "auto" && isTerminal(stderr))
			var finish func()
			cfg.Progress, finish = prepare.Reporter(stderr, useBar)
			start := time.Now()
			st, err := prepare.Run(cmd.Context(), cfg)
			finish()
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d images: %d resized, %d copied (already small), %d already done; %s in %s\n",
				st.Total, st.Resized, st.Copied, st.Skipped, out, time.Since(start).Round(time.Second))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "folder of the resized copy (required; outside the source)")
	f.IntVar(&short, "short-side", 256, "length of the shorter side of every output image")
	f.IntVar(&quality, "quality", 90, "JPEG quality of the resized images (1-100)")
	f.IntVar(&workers, "workers", 0, "parallel workers (0 = one per core)")
	f.StringVar(&decoder, "decoder", "auto", "JPEG decoder: auto, turbo or go")
	f.StringVar(&progressSetting, "progress", "auto", "auto (a bar on a terminal, log lines otherwise), bar or log")
	return cmd
}

func newDataFixturesCmd() *cobra.Command {
	var (
		out string
		cfg fixturegen.Config
		val int
	)
	cmd := &cobra.Command{
		Use:   "fixtures --out DIR",
		Short: "Write synthetic photograph-like JPEGs as DIR/train and DIR/val class folders",
		Long: `Write an ImageNet-style folder of synthetic JPEGs for benchmarks and tests:
lit backgrounds, soft-edged objects and multi-octave texture, so that a
500×375 image at quality 90 takes 60-70 KB like a photograph. The same seed
gives the same files.`,
		Example: `  robarch data fixtures --out fixtures --classes 4 --per-class 200 --val-per-class 50
  robarch bench --workload loader --dataset imagefolder:fixtures --peer`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out: required")
			}
			start := time.Now()
			n, err := fixturegen.WriteTrainVal(cmd.Context(), out, cfg, val)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d JPEGs, %.1f MB (%.0f KB each) in %s/{train,val}, %s\n",
				n.Images, float64(n.Bytes)/1e6, float64(n.Bytes)/1e3/float64(n.Images), out, time.Since(start).Round(time.Second))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&out, "out", "", "folder to write (required)")
	f.IntVar(&cfg.Classes, "classes", 4, "class folders")
	f.IntVar(&cfg.PerClass, "per-class", 200, "training images per class")
	f.IntVar(&val, "val-per-class", 50, "validation images per class (0 = no val/)")
	f.IntVar(&cfg.Width, "width", 500, "image width")
	f.IntVar(&cfg.Height, "height", 375, "image height")
	f.IntVar(&cfg.Quality, "quality", 90, "JPEG quality (1-100)")
	f.Uint64Var(&cfg.Seed, "seed", 1, "seed of the pictures")
	f.IntVar(&cfg.Workers, "workers", 0, "parallel workers (0 = one per core)")
	return cmd
}
