// Package robustbench is RobustBench's evaluation protocol as robarch runs
// it: the leaderboards' dataset names and radii, the test points each
// evaluates (the first n in file order; ImageNet's fixed 5,000-image
// list), and the model_info JSON a leaderboard entry is made of.
//
// Everything but Open and WriteModelInfo is pure.
package robustbench

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

// RobustBench's evaluation sizes: CIFAR's whole test split (its
// benchmark() default n_examples=10000), ImageNet's fixed 5,000 images.
const (
	CIFARExamples    = 10_000
	ImageNetExamples = 5_000
)

// Dataset is the RobustBench name of a robarch dataset it has a
// leaderboard for (cifar10, cifar100; imagefolder:DIR is ImageNet's
// validation set), or an error naming the allowed ones.
func Dataset(name string) (string, error) {
	switch {
	case name == data.NameCIFAR10:
		return "cifar10", nil
	case name == data.NameCIFAR100:
		return "cifar100", nil
	case strings.HasPrefix(name, data.NameImageFolder+":"):
		return "imagenet", nil
	}
	return "", fmt.Errorf("dataset %q: want cifar10, cifar100 or imagefolder:DIR (ImageNet's validation set)", name)
}

// DefaultEps is RobustBench's radius for the leaderboard of a RobustBench
// dataset and norm, written as its model_info files write it, or an error
// when it has no such leaderboard.
func DefaultEps(dataset string, norm attack.Norm) (string, error) {
	switch {
	case norm == attack.Linf && dataset == "imagenet":
		return "4/255", nil
	case norm == attack.Linf:
		return "8/255", nil
	case norm == attack.L2 && dataset == "cifar10":
		return "0.5", nil
	}
	return "", fmt.Errorf("RobustBench has no %s leaderboard for %s", norm, dataset)
}

// Open opens the test points RobustBench evaluates on a robarch dataset:
// the first n test points of CIFAR-10/100 in file order, or the first n of
// its fixed ImageNet list (DIR/val/<wnid>/..., or DIR/<wnid>/...). n == 0
// means RobustBench's default count; dir is CIFAR's data folder.
func Open(dataset, dir string, n int) (*data.Splits, error) {
	if imDir, ok := strings.CutPrefix(dataset, data.NameImageFolder+":"); ok {
		return openImageNet(imDir, n)
	}
	splits, err := data.Open(dataset, data.Options{Dir: dir})
	if err != nil {
		return nil, err
	}
	if n == 0 {
		n = min(CIFARExamples, splits.Test.Len())
	}
	if splits.Test, err = data.FirstN(splits.Test, n); err != nil {
		return nil, err
	}
	return splits, nil
}

func openImageNet(dir string, n int) (*data.Splits, error) {
	if n == 0 {
		n = ImageNetExamples
	}
	val := filepath.Join(dir, "val")
	if _, err := os.Stat(val); err != nil {
		val = dir
	}
	f, err := data.NewRobustBenchImageNet(val, n)
	if err != nil {
		return nil, err
	}
	if len(f.ClassNames) != 1000 {
		return nil, fmt.Errorf("%s has %d class folders; RobustBench labels images by their position among ImageNet's 1,000 sorted wnids, so all 1,000 must be there", val, len(f.ClassNames))
	}
	return &data.Splits{Name: "imagenet", Train: f, Test: f, Classes: f.NumClasses(), C: 3, H: f.Size, W: f.Size}, nil
}

// ModelInfoKeys are the fields of RobustBench's ModelInfo
// (robustbench/utils.py), in its order.
var ModelInfoKeys = []string{"link", "name", "authors", "additional_data", "number_forward_passes", "dataset", "venue",
	"architecture", "eps", "clean_acc", "reported", "corruptions_acc", "corruptions_acc_3d", "corruptions_mce",
	"corruptions_mce_3d", "autoattack_acc", "footnote"}

// Percent writes a fraction as RobustBench's update_json does:
// str(round(acc * 100, 2)), so 0.9327 is "93.27" and 0.5 is "50.0".
func Percent(frac float64) string {
	s := strconv.FormatFloat(math.Round(frac*100*100)/100, 'f', -1, 64)
	if !strings.Contains(s, ".") {
		s += ".0"
	}
	return s
}

// ModelInfo is what an evaluation contributes to a model_info file.
type ModelInfo struct {
	Dataset string // RobustBench's name (Dataset)
	Eps     string // the radius as written ("8/255")
	// Clean and Robust are fractions: clean accuracy and AutoAttack's
	// robust accuracy.
	Clean, Robust float64
}

// UpdateModelInfo is the model_info JSON object old (nil: none)
// with m's fields set: dataset, eps, clean_acc, autoattack_acc and
// number_forward_passes (1: a robarch network is one deterministic
// forward pass). As RobustBench's update_json, fields robarch does not
// know (name, authors, additional_data, footnote, ...) are kept, so a user
// fills them in once; a new object has them null. ModelInfoKeys come
// first, in their order, then any others sorted.
func UpdateModelInfo(old []byte, m ModelInfo) ([]byte, error) {
	fields := map[string]json.RawMessage{}
	if old != nil {
		if err := json.Unmarshal(old, &fields); err != nil {
			return nil, fmt.Errorf("existing file is not a JSON object: %w", err)
		}
	}
	set := func(k string, v any) {
		b, _ := json.Marshal(v) // strings and ints always marshal
		fields[k] = b
	}
	set("dataset", m.Dataset)
	set("eps", m.Eps)
	set("clean_acc", Percent(m.Clean))
	set("autoattack_acc", Percent(m.Robust))
	set("number_forward_passes", 1)
	var extra []string
	for k := range fields {
		if !slices.Contains(ModelInfoKeys, k) {
			extra = append(extra, k)
		}
	}
	slices.Sort(extra)
	keys := append(slices.Clone(ModelInfoKeys), extra...)
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
	return []byte(b.String()), nil
}

// WriteModelInfo writes (or updates in place, UpdateModelInfo) the
// model_info file at path, atomically.
func WriteModelInfo(path string, m ModelInfo) error {
	old, err := os.ReadFile(path)
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	out, err := UpdateModelInfo(old, m)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return atomicfile.WriteFile(path, out, 0o644)
}
