package train

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/internal/atomicfile"
	"github.com/robarch/robarch/recipe"
)

// Files of a run directory.
const (
	// ModelFile holds the chosen checkpoint's variables (best per-epoch
	// PGD accuracy), named as in the VarStore; VarStore.Load reads it.
	ModelFile = "model.ot"
	// StateFile is the resume state: recipe, epochs done, the file with
	// the last epoch's model and optimiser tensors, history, best epoch.
	StateFile = "state.json"
	// MetricsFile is the summary of the finished run (Summary).
	MetricsFile = "metrics.json"
	// MetricsLog holds one JSON object per finished epoch (EpochMetrics).
	MetricsLog = "metrics.jsonl"
)

// lastFile names the resume tensors after epoch e (model variables plus
// momentum buffers). A new name per epoch means the state file, which is
// replaced last, always points at a complete file.
func lastFile(e int) string { return fmt.Sprintf("last-%04d.ot", e) }

// bestFile names the model variables after epoch e when e was the best
// so far; at the end ModelFile becomes (a hard link to) the chosen one.
func bestFile(e int) string { return fmt.Sprintf("best-%04d.ot", e) }

const stateVersion = 1

// runState is what StateFile holds.
type runState struct {
	Version    int             `json:"version"`
	Recipe     recipe.Recipe   `json:"recipe"`
	Meta       json.RawMessage `json:"meta,omitempty"`
	EpochsDone int             `json:"epochs_done"`
	Last       string          `json:"last"`
	// TorchSeed and LoaderSeed of the next epoch: libtorch's generator is
	// re-seeded from (seed, epoch) at every epoch start and the loader's
	// order and augmentation derive from (seed, epoch), so these plus the
	// tensors are all a resume needs to replay the next epoch exactly.
	TorchSeed  int64          `json:"next_torch_seed"`
	LoaderSeed int64          `json:"loader_seed"`
	Best       *EpochMetrics  `json:"best,omitempty"`
	BestFile   string         `json:"best_file,omitempty"`
	History    []EpochMetrics `json:"history"`
	// OverfitEpoch is the first epoch flagged as catastrophic overfitting.
	OverfitEpoch int       `json:"overfit_epoch,omitempty"`
	Stopped      string    `json:"stopped,omitempty"`
	Params       int64     `json:"params"`
	UpdatedAt    time.Time `json:"updated_at"`
}

// readState returns the run state in dir, or nil if there is none.
func readState(dir string) (*runState, error) {
	raw, err := os.ReadFile(filepath.Join(dir, StateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read run state: %w", err)
	}
	var st runState
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, fmt.Errorf("read run state %s: %w", filepath.Join(dir, StateFile), err)
	}
	if st.Version != stateVersion {
		return nil, fmt.Errorf("run state %s: version %d, this build reads version %d", filepath.Join(dir, StateFile), st.Version, stateVersion)
	}
	return &st, nil
}

// writeJSON writes v as indented JSON to path atomically.
func writeJSON(path string, v any) error {
	raw, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", filepath.Base(path), err)
	}
	return atomicfile.WriteFile(path, append(raw, '\n'), 0o644)
}

// saveTensors writes named tensors to path atomically (libtorch's
// archive format, as VarStore.Save writes).
func saveTensors(path string, named []ts.NamedTensor) error {
	return atomicfile.WritePath(path, 0o644, func(tmp string) error { return ts.SaveMultiNew(named, tmp) })
}

// loadTensors reads a tensor archive onto device; the caller drops them.
func loadTensors(path string, device gotch.Device) (map[string]*ts.Tensor, error) {
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	named, err := ts.LoadMultiWithDevice(path, device)
	if err != nil {
		return nil, fmt.Errorf("load %s: %w", path, err)
	}
	out := make(map[string]*ts.Tensor, len(named))
	for _, nt := range named {
		out[nt.Name] = nt.Tensor
	}
	return out, nil
}

func dropAll(m map[string]*ts.Tensor) {
	for _, t := range m {
		drop(t)
	}
}

// varTensors names the model's variables for saving.
func varTensors(vars []namedVar) []ts.NamedTensor {
	out := make([]ts.NamedTensor, len(vars))
	for i, v := range vars {
		out[i] = ts.NamedTensor{Name: v.name, Tensor: v.t}
	}
	return out
}

// loadVars copies saved values into the model's variables, checking that
// every variable is present with its shape.
func loadVars(vars []namedVar, saved map[string]*ts.Tensor, from string) error {
	for _, v := range vars {
		src, ok := saved[v.name]
		if !ok {
			return fmt.Errorf("%s: variable %s missing (is it a checkpoint of this model?)", from, v.name)
		}
		shape, err := src.Size()
		if err != nil {
			return fmt.Errorf("%s: variable %s: %w", from, v.name, err)
		}
		if !slices.Equal(shape, v.shape) {
			return fmt.Errorf("%s: variable %s has shape %v, the model's has %v", from, v.name, shape, v.shape)
		}
	}
	var err error
	ts.NoGrad(func() {
		for _, v := range vars {
			if err = copyInto(v.t, saved[v.name]); err != nil {
				err = fmt.Errorf("%s: variable %s: %w", from, v.name, err)
				return
			}
		}
	})
	return err
}

// LoadWeights copies the variables saved in path (ModelFile or a
// last-*.ot file of a run) into the model whose VarStore is vs.
func LoadWeights(m Model, path string) error {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	vars, err := varsOf(m.Vars)
	if err != nil {
		return err
	}
	defer releaseVars(vars)
	saved, err := loadTensors(path, m.Vars.Device())
	if err != nil {
		return err
	}
	defer dropAll(saved)
	return loadVars(vars, saved, path)
}

// cleanStale removes temporary files a killed run left behind and the
// per-epoch tensor files (last-*, best-*) the state no longer names.
func cleanStale(dir string, keep ...string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		name := e.Name()
		epochFile := (strings.HasPrefix(name, "last-") || strings.HasPrefix(name, "best-")) && strings.HasSuffix(name, ".ot")
		if strings.Contains(name, ".tmp-") || (epochFile && !slices.Contains(keep, name)) {
			os.Remove(filepath.Join(dir, name))
		}
	}
}

// linkAtomic makes dst a hard link to src (a copy where links fail),
// replacing dst atomically.
func linkAtomic(src, dst string) error {
	return atomicfile.WritePath(dst, 0o644, func(tmp string) error {
		if err := os.Remove(tmp); err != nil {
			return err
		}
		if os.Link(src, tmp) == nil {
			return nil
		}
		raw, err := os.ReadFile(src)
		if err != nil {
			return fmt.Errorf("link %s: %w", dst, err)
		}
		return os.WriteFile(tmp, raw, 0o644)
	})
}

// resumeMayChange lists the recipe fields (JSON names) a resume may change
// because they do not change any number: the evaluation batch size only
// trades memory for speed.
var resumeMayChange = []string{"eval_batch_size"}

// recipeDiff lists the recipe fields that differ, by their JSON names,
// except those in resumeMayChange.
func recipeDiff(a, b recipe.Recipe) []string {
	var ma, mb map[string]any
	ra, _ := json.Marshal(a)
	rb, _ := json.Marshal(b)
	_ = json.Unmarshal(ra, &ma)
	_ = json.Unmarshal(rb, &mb)
	var diff []string
	for k := range ma {
		if slices.Contains(resumeMayChange, k) {
			continue
		}
		if fmt.Sprint(ma[k]) != fmt.Sprint(mb[k]) {
			diff = append(diff, fmt.Sprintf("%s: %v now, %v in the run", k, ma[k], mb[k]))
		}
	}
	for k := range mb {
		if _, ok := ma[k]; !ok {
			diff = append(diff, fmt.Sprintf("%s: unset now, %v in the run", k, mb[k]))
		}
	}
	sort.Strings(diff)
	return diff
}
