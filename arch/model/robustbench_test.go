package model_test

import (
	"encoding/json"
	"errors"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/model"
)

// rbKinds are robustbench_ref.py's small instances of RobustBench's three
// wide-ResNet classes; rbSpec gives each one's Go spec, built from the
// presets so the test exercises what users get.
var rbKinds = []string{"rb-wrn-tiny", "rb-dm-tiny", "rb-ra-tiny", "rb-ra-tiny-se1", "rb-dmpre-tiny"}

func rbSpec(t *testing.T, kind string) arch.Spec {
	t.Helper()
	preset := map[string]string{"rb-wrn-tiny": "rb-wrn-28-10", "rb-dm-tiny": "rb-dm-wrn-28-10-silu",
		"rb-ra-tiny": "rb-rawrn-70-16", "rb-ra-tiny-se1": "rb-rawrn-70-16", "rb-dmpre-tiny": "rb-dm-preact-resnet-18-silu"}[kind]
	s, err := arch.Get(preset)
	require.NoError(t, err)
	set := func(stem int, depths, widths, groups []int) {
		s.Stem.Width = stem
		s.SetDepths(depths...)
		for i := range s.Stages {
			s.Stages[i].Width, s.Stages[i].Groups = widths[i], groups[i]
		}
	}
	switch kind {
	case "rb-wrn-tiny":
		set(16, []int{2, 1, 1}, []int{32, 64, 128}, []int{0, 0, 0})
	case "rb-dm-tiny":
		set(16, []int{2, 1, 1}, []int{16, 32, 64}, []int{0, 0, 0})
	case "rb-ra-tiny", "rb-ra-tiny-se1":
		set(24, []int{2, 2, 1}, []int{24, 48, 96}, []int{1, 2, 4})
		if kind == "rb-ra-tiny-se1" {
			s.Block.SEPosition = arch.SEFirst
		}
	case "rb-dmpre-tiny":
		set(16, []int{2, 1, 1, 1}, []int{16, 32, 64, 128}, []int{0, 0, 0, 0})
	default:
		t.Fatalf("no spec for %s", kind)
	}
	return s
}

func runRB(t *testing.T, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(systemPython, append([]string{filepath.Join("testdata", "robustbench_ref.py")}, args...)...).Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("robustbench_ref.py %v: %v\n%s", args, err, ee.Stderr)
	}
	require.NoError(t, err)
	return out
}

// Each small instance has exactly the names, shapes and parameter count of
// the Python class with RobustBench's module layout.
func TestRobustBenchNamesMatch(t *testing.T) {
	requirePyTorch(t)
	for _, kind := range rbKinds {
		t.Run(kind, func(t *testing.T) {
			var ref struct {
				Params int64              `json:"params"`
				Shapes map[string][]int64 `json:"shapes"`
			}
			require.NoError(t, json.Unmarshal(runRB(t, "names", kind), &ref))
			spec := rbSpec(t, kind)
			n, err := arch.Params(spec)
			require.NoError(t, err)
			assert.Equal(t, ref.Params, n, "arch.Params against PyTorch's count")
			net, _ := build(t, spec, 1)
			assert.Equal(t, ref.Params, net.NumParams(), "built parameters against PyTorch's count")
			assert.Equal(t, ref.Shapes, stateDictShapes(t, net))
		})
	}
}

// A RobustBench-layout checkpoint written by torch.save (module.-prefixed,
// nested under state_dict; the classic one with the unused sub_block1)
// loads strictly and gives PyTorch's eval-mode logits, unfolded and with
// the batch norms folded as robarch eval runs it.
func TestRobustBenchPyTorchToGo(t *testing.T) {
	requirePyTorch(t)
	for _, kind := range rbKinds {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			runRB(t, "make", kind, dir)
			net, _ := build(t, rbSpec(t, kind), 99)
			require.NoError(t, model.ImportWeights(net, filepath.Join(dir, "model.pt")))
			in, _, err := model.ReadSafetensors(filepath.Join(dir, "input.safetensors"))
			require.NoError(t, err)
			want, _, err := model.ReadSafetensors(filepath.Join(dir, "logits.safetensors"))
			require.NoError(t, err)
			ref := tensorValues(t, want["logits"])
			out, err := net.Forward(in["x"], false)
			require.NoError(t, err)
			defer out.MustDrop()
			got := tensorValues(t, out)
			require.Len(t, got, len(ref))
			diff := maxAbsDiff(got, ref)

			folded, err := net.Fold()
			require.NoError(t, err)
			defer folded.Close()
			fout, err := folded.Forward(in["x"])
			require.NoError(t, err)
			defer fout.MustDrop()
			fdiff := maxAbsDiff(tensorValues(t, fout), ref)
			t.Logf("%s: max |Δlogit| = %.2g, folded %.2g (max |logit| %.2g, %d norms folded)", kind, diff, fdiff, maxAbs(ref), folded.Norms)
			assert.Less(t, diff, 1e-4)
			assert.Less(t, fdiff, 1e-4)
			assert.Greater(t, maxAbs(ref), 1e-3, "logits are not trivially zero")
		})
	}
}

// robarch's export of a RobustBench-layout net loads into the Python class
// with load_state_dict(strict=True) and gives the same eval-mode logits and
// input gradients.
func TestRobustBenchGoToPyTorch(t *testing.T) {
	requirePyTorch(t)
	for _, kind := range rbKinds {
		t.Run(kind, func(t *testing.T) {
			goToPyTorch(t, rbSpec(t, kind), 3, false, func(weights, input, logits string) []byte {
				return runRB(t, "check", kind, weights, input, logits)
			})
		})
	}
}

// Symmetric and asymmetric padding are different functions of the same
// weights: a RobustBench DM checkpoint loaded into a symmetric-padding spec
// would load without complaint and compute something else, which is why
// the padding is part of the spec.
func TestAsymmetricPaddingChangesTheFunction(t *testing.T) {
	spec := rbSpec(t, "rb-dm-tiny")
	asym, _ := build(t, spec, 3)
	spec.Block.Padding = arch.PadSymmetric
	sym, _ := build(t, spec, 3)
	x, err := ts.Rand([]int64{2, 3, 32, 32}, gotch.Float, gotch.CPU)
	require.NoError(t, err)
	defer x.MustDrop()
	a, err := asym.Forward(x, false)
	require.NoError(t, err)
	defer a.MustDrop()
	b, err := sym.Forward(x, false)
	require.NoError(t, err)
	defer b.MustDrop()
	assert.Greater(t, maxAbsDiff(tensorValues(t, a), tensorValues(t, b)), 1e-4)
}

// DMPreActResNet's shortcut convolves the block's raw input; taking the
// pre-activated input instead (the wide ResNets' choice) is another
// function of the same weights, so the raw-input test above could catch a
// builder that mixed the two up.
func TestRawShortcutChangesTheFunction(t *testing.T) {
	spec := rbSpec(t, "rb-dmpre-tiny")
	raw, _ := build(t, spec, 3)
	spec.Naming, spec.Block.ShortcutInput = arch.NamingRobArch, arch.ShortcutPreAct
	pre, _ := build(t, spec, 3)
	x, err := ts.Rand([]int64{2, 3, 32, 32}, gotch.Float, gotch.CPU)
	require.NoError(t, err)
	defer x.MustDrop()
	a, err := raw.Forward(x, false)
	require.NoError(t, err)
	defer a.MustDrop()
	b, err := pre.Forward(x, false)
	require.NoError(t, err)
	defer b.MustDrop()
	assert.Greater(t, maxAbsDiff(tensorValues(t, a), tensorValues(t, b)), 1e-4)
}
