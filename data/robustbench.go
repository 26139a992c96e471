package data

import (
	_ "embed" // the RobustBench ImageNet list
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// robustBenchImageNetIDs is RobustBench's fixed list of 5,000 ImageNet
// validation images ("wnid/ILSVRC2012_val_NNNNNNNN.JPEG", one a line, in
// evaluation order), robustbench/helper_files/imagenet_test_image_ids.txt
// of github.com/RobustBench/robustbench (MIT licence) at commit 78fcc9e.
//
//go:embed robustbench/imagenet_test_image_ids.txt
var robustBenchImageNetIDs string

// RobustBenchImageNetIDs returns RobustBench's 5,000 ImageNet validation
// images in its evaluation order.
func RobustBenchImageNetIDs() []string {
	var out []string
	for _, line := range strings.Split(robustBenchImageNetIDs, "\n") {
		if line = strings.TrimSpace(line); line != "" {
			out = append(out, line)
		}
	}
	return out
}

// FirstN keeps the first n examples of src in its own order (RobustBench's
// protocol: the first n test points as the file stores them, no shuffling,
// no stratification). n == 0 keeps everything; n above src.Len() is an
// error rather than a silent shortfall.
func FirstN(src Source, n int) (Source, error) {
	switch {
	case n < 0:
		return nil, fmt.Errorf("first %d examples: want 0 (all) or a positive count", n)
	case n == 0 || n == src.Len():
		return src, nil
	case n > src.Len():
		return nil, fmt.Errorf("first %d examples: the split has only %d", n, src.Len())
	}
	idx := make([]int, n)
	for i := range idx {
		idx[i] = i
	}
	return &Subset{Src: src, Indices: idx}, nil
}

// NewRobustBenchImageNet is RobustBench's ImageNet evaluation set: the first
// n (at most 5,000) images of its fixed list, read from valDir/<wnid>/<file>
// in the list's order, labelled by the position of <wnid> among valDir's
// sorted class folders (as RobustBench's CustomImageFolder does, so valDir
// should hold all 1,000 class folders), preprocessed like its
// Res256Crop224 (shorter side to 256, central 224×224; robarch resamples
// with its own bilinear kernel, so pixels may differ from PIL's by
// rounding). Every listed file must exist.
func NewRobustBenchImageNet(valDir string, n int) (*ImageFolder, error) {
	ids := RobustBenchImageNetIDs()
	if n < 0 || n > len(ids) {
		return nil, fmt.Errorf("robustbench imagenet: %d images: want 0 (all %d) up to %d", n, len(ids), len(ids))
	}
	if n > 0 {
		ids = ids[:n]
	}
	entries, err := os.ReadDir(valDir)
	if err != nil {
		return nil, fmt.Errorf("robustbench imagenet: %w", err)
	}
	f := &ImageFolder{Root: valDir, Size: 224}
	for _, e := range entries {
		if e.IsDir() && !strings.HasPrefix(e.Name(), ".") {
			f.ClassNames = append(f.ClassNames, e.Name())
		}
	}
	slices.Sort(f.ClassNames)
	var missing []string
	for _, id := range ids {
		wnid, _, _ := strings.Cut(id, "/")
		label, found := slices.BinarySearch(f.ClassNames, wnid)
		path := filepath.Join(valDir, filepath.FromSlash(id))
		if _, err := os.Stat(path); !found || err != nil {
			missing = append(missing, id)
			continue
		}
		f.Files = append(f.Files, path)
		f.Labels = append(f.Labels, int64(label))
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("robustbench imagenet: %d of %d listed images are not under %s (first: %s); want the ImageNet validation set in wnid folders",
			len(missing), len(ids), valDir, missing[0])
	}
	return f, nil
}
