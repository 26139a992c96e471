package sweep

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/configs"
)

// FuzzLoadFile feeds sweep files: any input must load to a valid sweep or
// give an error. A sweep that loads must plan (or fail to) without a panic.
func FuzzLoadFile(f *testing.F) {
	for _, name := range ShippedSweeps() {
		b, err := configs.FS.ReadFile("sweeps/" + name + ".yaml")
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("name: x\nbaseline: micro\ndataset: {name: synthetic}\ntrain: {eps: 8/255}\nseeds: [0, 1]\n"))
	f.Add([]byte("name: x\nbaseline: micro\ndataset: {name: synthetic}\ntrain: {eps: 8px}\neval: {atacks: [pgd10]}\n"))
	f.Add([]byte("name: x\nbaseline: micro\ndataset: {name: synthetic}\nseeds: {start: 2, add: 1, max: 3}\nfactors: [{name: kernel, levels: [\"5\"]}]\n"))
	f.Add([]byte("- 1\n- 2\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "sweep.yaml")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		sf, err := LoadFile(path)
		if err != nil {
			return
		}
		if err := sf.Validate(); err != nil {
			t.Fatalf("LoadFile returned a sweep that does not validate: %v", err)
		}
		if sf.Samples > 64 || len(sf.Factors) > 8 || !slices.Contains(arch.List(), sf.Baseline) {
			// Planning a huge random design is slow, not wrong; a baseline
			// path could name any file on this machine.
			return
		}
		if base, err := arch.Get(sf.Baseline); err != nil || base.Input.Height > 64 {
			// Refitting ImageNet-sized nets to a budget takes seconds per
			// input, which would leave the fuzzer a few dozen executions a
			// minute; the planner's code paths are the same at 28×28.
			return
		}
		_, _ = MakePlan(sf)
	})
}
