// Package trainrun is one training run from references, as `robarch
// train` makes it: open the data and the network, train with package
// train (resumable, data-parallel when given a process group) and export
// the chosen checkpoint with what `robarch eval` reads back from it.
package trainrun

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strconv"

	"github.com/sugarme/gotch"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/internal/dist"
	"github.com/robarch/robarch/internal/torchrt"
	"github.com/robarch/robarch/recipe"
	"github.com/robarch/robarch/train"
)

// CheckpointFile is the chosen checkpoint in arch/model's format: weights
// plus spec, so eval and model.Open need nothing else.
const CheckpointFile = "model.safetensors"

// Job is one training run.
type Job struct {
	// Model is a preset name or spec file, fitted to the data.
	Model string
	// Dataset and Data say what to train and evaluate on (data.Open);
	// Data.Seed is the recipe's.
	Dataset string
	Data    data.Options
	// Recipe is checked, with its precision resolved for Device.
	Recipe recipe.Recipe
	Out    string
	Resume bool
	Device gotch.Device
	Format model.MemoryFormat
	// Workers, LogEvery and OnStep are train.Options'.
	Workers, LogEvery int
	OnStep            func(train.Progress)
	// Group makes the run one rank of a data-parallel job.
	Group *dist.Group
}

// Meta is stored with the run (state.json, metrics.json).
type Meta struct {
	Model     string    `json:"model"`
	Spec      arch.Spec `json:"spec"`
	Dataset   string    `json:"dataset"`
	TrainSize int       `json:"train_size"`
	TestSize  int       `json:"test_size"`
}

// Run opens the data, then the network on one locked torch thread, and
// trains it.
func Run(ctx context.Context, j Job) (*train.Result, error) {
	j.Data.Seed = j.Recipe.Seed
	splits, err := data.Open(j.Dataset, j.Data)
	if err != nil {
		return nil, err
	}
	slog.Info("data", "dataset", j.Dataset, "train", splits.Train.Len(), "test", splits.Test.Len(),
		"shape", fmt.Sprintf("%d×%d×%d", splits.C, splits.H, splits.W), "classes", splits.Classes)
	opts := train.Options{OutDir: j.Out, Resume: j.Resume, Workers: j.Workers, LogEvery: j.LogEvery, OnStep: j.OnStep, Group: j.Group}

	w := torchrt.NewWorker()
	defer w.Close()
	var res *train.Result
	err = w.Do(func() error {
		torchrt.Seed(j.Recipe.Seed) // initial weights follow the seed
		shape := splits.Shape()
		opened, err := model.Open(model.Ref{Model: j.Model}, model.OpenOptions{Device: j.Device, Format: j.Format, Data: &shape})
		if err != nil {
			return fmt.Errorf("--model: %w", err)
		}
		net := opened.Net
		meta := Meta{Model: j.Model, Spec: opened.Spec, Dataset: j.Dataset, TrainSize: splits.Train.Len(), TestSize: splits.Test.Len()}
		opts.Meta = meta
		opts.Export = func(dir string, s train.Summary) (string, error) {
			return CheckpointFile, model.SaveCheckpoint(filepath.Join(dir, CheckpointFile), net, CheckpointMeta(meta, s))
		}
		slog.Info("model", "model", j.Model, "params", net.NumParams(), "device", j.Device, "threads", torchrt.Threads(),
			"memory_format", net.MemoryFormat(), "precision", j.Recipe.Precision,
			"method", j.Recipe.Method, "eps", j.Recipe.Eps, "epochs", j.Recipe.Epochs, "out", j.Out)
		res, err = train.Run(ctx, train.Model{Net: net, Vars: opened.Vars}, train.Data{Train: splits.Train, Test: splits.Test}, j.Recipe, opts)
		return err
	})
	return res, err
}

// CheckpointMeta is the free-form metadata of the exported checkpoint:
// what the run reported, and what `robarch eval` reads back — the radius
// and norm the reported accuracy was measured at (training is L∞) and the
// whole recipe.
func CheckpointMeta(m Meta, s train.Summary) map[string]string {
	f := func(v float64) string { return strconv.FormatFloat(v, 'g', -1, 64) }
	r, _ := json.Marshal(s.Recipe) // a Recipe is plain data
	return map[string]string{
		"model": m.Model, "dataset": m.Dataset, "method": string(s.Method), "eps": f(s.Eps),
		"epoch": strconv.Itoa(s.Epoch), "clean_acc": f(s.CleanAcc), "pgd_acc": f(s.PGDAcc),
		"pgd_steps": strconv.Itoa(s.PGDSteps), "eval_examples": strconv.Itoa(s.EvalExamples),
		"seed":     strconv.FormatInt(s.Recipe.Seed, 10),
		"eval_eps": f(s.EvalEps), "norm": "Linf", "recipe": string(r),
	}
}
