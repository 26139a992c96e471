package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/robarch/robarch/attack"
	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/internal/atomicfile"
)

// Evaluation protocols of `robarch eval --protocol`.
const (
	protocolRobArch     = "robarch"
	protocolRobustBench = "robustbench"
)

var protocols = []string{protocolRobArch, protocolRobustBench}

// RobustBench's evaluation sizes: CIFAR's whole test split (its
// benchmark() default n_examples=10000), ImageNet's fixed 5,000 images.
const (
	rbCIFARExamples    = 10_000
	rbImageNetExamples = 5_000
)

// rbDataset is the RobustBench name of a dataset robarch can evaluate
// under RobustBench's protocol, or an error naming the allowed ones.
func rbDataset(name string) (string, error) {
	switch {
	case name == data.NameCIFAR10:
		return "cifar10", nil
	case name == data.NameCIFAR100:
		return "cifar100", nil
	case strings.HasPrefix(name, data.NameImageFolder+":"):
		return "imagenet", nil
	}
	return "", fmt.Errorf("--protocol robustbench: dataset %q: want cifar10, cifar100 or imagefolder:DIR (ImageNet's validation set)", name)
}

// rbDefaultEps is RobustBench's radius for the leaderboards robarch covers,
// written as RobustBench's model_info files write it.
func rbDefaultEps(dataset string, norm attack.Norm) (string, error) {
	switch {
	case norm == attack.Linf && dataset == "imagenet":
		return "4/255", nil
	case norm == attack.Linf:
		return "8/255", nil
	case norm == attack.L2 && dataset == "cifar10":
		return "0.5", nil
	}
	return "", fmt.Errorf("--protocol robustbench: RobustBench has no %s leaderboard for %s; give --eps", norm, dataset)
}

// openRobustBench opens the test points RobustBench evaluates: the first n
// test points of CIFAR-10/100 in file order, or the first n of its fixed
// ImageNet list (DIR/val/<wnid>/..., or DIR/<wnid>/...). n == 0 means
// RobustBench's default.
func openRobustBench(dataset, dir string, n int) (*data.Splits, error) {
	if imDir, ok := strings.CutPrefix(dataset, data.NameImageFolder+":"); ok {
		if n == 0 {
			n = rbImageNetExamples
		}
		val := filepath.Join(imDir, "val")
		if _, err := os.Stat(val); err != nil {
			val = imDir
		}
		f, err := data.NewRobustBenchImageNet(val, n)
		if err != nil {
			return nil, err
		}
		if len(f.ClassNames) != 1000 {
			return nil, fmt.Errorf("--protocol robustbench: %s has %d class folders; RobustBench labels images by their position among ImageNet's 1,000 sorted wnids, so all 1,000 must be there", val, len(f.ClassNames))
		}
		return &data.Splits{Name: "imagenet", Train: f, Test: f, Classes: f.NumClasses(), C: 3, H: f.Size, W: f.Size}, nil
	}
	splits, err := data.Open(dataset, data.Options{Dir: dir})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		n = min(rbCIFARExamples, splits.Test.Len())
	}
	if splits.Test, err = data.FirstN(splits.Test, n); err != nil {
		return nil, fmt.Errorf("--size: %w", err)
	}
	return splits, nil
}

// modelInfoKeys are the fields of RobustBench's ModelInfo
// (robustbench/utils.py), in its order.
var modelInfoKeys = []string{"link", "name", "authors", "additional_data", "number_forward_passes", "dataset", "venue",
	"architecture", "eps", "clean_acc", "reported", "corruptions_acc", "corruptions_acc_3d", "corruptions_mce",
	"corruptions_mce_3d", "autoattack_acc", "footnote"}

// percent writes a fraction as RobustBench's update_json does:
// str(round(acc * 100, 2)), so 0.9327 is "93.27" and 0.5 is "50.0".
func percent(frac float64) string {
	s := strconv.FormatFloat(math.Round(frac*100*100)/100, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// writeModelInfo writes RobustBench's model_info JSON for an evaluation:
// dataset, eps, clean_acc, autoattack_acc and number_forward_passes (1: a
// robarch network is one deterministic forward pass). As RobustBench's
// update_json, an existing file is updated in place: fields robarch does
// not know (name, authors, additional_data, footnote, ...) are kept, so a
// user can fill them in once; in a new file they are null.
func writeModelInfo(path, dataset, eps string, clean, robust float64) error {
	fields := map[string]json.RawMessage{}
	raw, err := os.ReadFile(path)
	switch {
	case err == nil:
		if err := json.Unmarshal(raw, &fields); err != nil {
			return fmt.Errorf("--model-info %s: existing file is not a JSON object: %w", path, err)
		}
	case errors.Is(err, fs.ErrNotExist):
	default:
		return fmt.Errorf("--model-info: %w", err)
	}
	set := func(k string, v any) {
		b, _ := json.Marshal(v) // strings and ints always marshal
		fields[k] = b
	}
	set("dataset", dataset)
	set("eps", eps)
	set("clean_acc", percent(clean))
	set("autoattack_acc", percent(robust))
	set("number_forward_passes", 1)
	keys := slices.Clone(modelInfoKeys)
	var extra []string
	for k := range fields {
		if !slices.Contains(keys, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	keys = append(keys, extra...)
	var b strings.Builder
	b.WriteString("{\n")
	for i, k := range keys {
		v, ok := fields[k]
		if !ok {
			v = json.RawMessage("null")
		}
		kb, _ := json.Marshal(k)
		fmt.Fprintf(&b, "  %s: %s", kb, v)
		if i < len(keys)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	if err := atomicfile.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("--model-info: %w", err)
	}
	return nil
}
