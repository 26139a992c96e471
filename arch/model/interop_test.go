package model_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/arch"
	"github.com/robarch/robarch/arch/archtest"
	"github.com/robarch/robarch/arch/model"
	"github.com/robarch/robarch/internal/torchrt"
)

// Debian's PyTorch; a pyenv python3 earlier on PATH would lack torch.
const systemPython = "/usr/bin/python3"

// requirePyTorch skips the test in -short mode or where systemPython
// cannot import torch and torchvision.
func requirePyTorch(t *testing.T) { requireImports(t, "torch", "torchvision") }

// requireImports skips the test in -short mode or where systemPython
// cannot import the modules (Debian packages python3-MODULE).
func requireImports(t *testing.T, modules ...string) {
	t.Helper()
	if testing.Short() {
		t.Skip("PyTorch interop skipped in -short mode")
	}
	list := strings.Join(modules, ", ")
	out, err := exec.Command(systemPython, "-c", "import "+list).CombinedOutput()
	if err != nil {
		t.Skipf("skipping PyTorch interop: %s cannot import %s (apt-get install python3-%s): %v\n%s",
			systemPython, list, strings.Join(modules, " python3-"), err, out)
	}
}

func runPython(t *testing.T, args ...string) []byte {
	t.Helper()
	return runScript(t, filepath.Join("testdata", "interop.py"), args...)
}

// runScript runs a Python script with systemPython and returns its
// standard output, failing the test with its standard error.
func runScript(t *testing.T, script string, args ...string) []byte {
	t.Helper()
	cmd := exec.Command(systemPython, append([]string{script}, args...)...)
	out, err := cmd.Output()
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		t.Fatalf("%s %v: %v\n%s", filepath.Base(script), args, err, ee.Stderr)
	}
	require.NoError(t, err)
	return out
}

var imagenetMean, imagenetStd = []float64{0.485, 0.456, 0.406}, []float64{0.229, 0.224, 0.225}

// interopSpecs are the Go specs of interop.py's reference models.
func interopSpec(t *testing.T, kind string) arch.Spec {
	t.Helper()
	in := arch.Input{Channels: 3, Height: 64, Width: 64, Mean: imagenetMean, Std: imagenetStd}
	switch kind {
	case "tv-resnet18":
		s, err := arch.Get("resnet18")
		require.NoError(t, err)
		s.Classes, s.Input = 10, in
		return s
	case "tv-resnext":
		s, err := arch.Get("resnet50")
		require.NoError(t, err)
		s.Classes, s.Input = 10, in
		for i := range s.Stages {
			s.Stages[i].Depth = 1
			s.Stages[i].GroupWidth = arch.BottleneckWidth(s.Stages[i].Width, 0.25) / 4
		}
		return s
	case "robarch-tiny":
		s, err := arch.Get("robarch-s")
		require.NoError(t, err)
		s.Classes, s.Input = 10, in
		s.Stem.Width = 16
		s.SetDepths(1, 2, 5, 1)
		for i, w := range []int{32, 64, 128, 256} {
			s.Stages[i].Width, s.Stages[i].GroupWidth = w, w/8
		}
		s.Block.DenseRatio = 1
		return s
	case "robarch-param":
		s := interopSpec(t, "robarch-tiny")
		s.Block.Activations = []string{arch.PReLU, arch.PSiLU, arch.PSSiLU}
		s.Block.Norms = []string{arch.InstanceNorm, arch.LayerNorm, arch.BatchNorm}
		s.Block.ShortcutNorm = arch.LayerNorm
		return s
	case "wrn-tiny":
		s, err := arch.Get("wrn-28-10")
		require.NoError(t, err)
		s.Classes, s.Input = 10, in
		s.Input.Height, s.Input.Width = 32, 32
		s.SetDepths(2, 1, 1)
		for i, w := range []int{32, 64, 128} {
			s.Stages[i].Width = w
		}
		return s
	case "wrn-param":
		s := interopSpec(t, "wrn-tiny")
		s.Block.Activations = []string{arch.PSSiLU, arch.PReLU, arch.PSiLU} // position 2 is unused
		s.Block.Norms = []string{arch.LayerNorm, arch.InstanceNorm, arch.BatchNorm}
		return s
	}
	t.Fatalf("no spec for %s", kind)
	return arch.Spec{}
}

func tensorValues(t *testing.T, x *ts.Tensor) []float32 {
	t.Helper()
	c, err := x.Contiguous(false)
	require.NoError(t, err)
	defer c.MustDrop()
	vals := make([]float32, c.Numel())
	require.NoError(t, c.CopyData(vals, c.Numel()))
	return vals
}

func maxAbsDiff(a, b []float32) float64 {
	m := 0.0
	for i := range a {
		d := float64(a[i] - b[i])
		if d < 0 {
			d = -d
		}
		m = max(m, d)
	}
	return m
}

// The built nets' state-dict names and shapes are exactly those of
// torchvision's models and of a model with RobArch's layout, and so is
// the parameter count (an independent count of the parametric
// activations' scalars and the norms' weights for the -param kinds).
func TestInteropNamesMatchPyTorch(t *testing.T) {
	requirePyTorch(t)
	cases := map[string]string{
		"torchvision:resnet18": "resnet18", "torchvision:resnet50": "resnet50",
		"torchvision:resnext50_32x4d": "resnext50_32x4d", "torchvision:wide_resnet50_2": "wide_resnet50_2",
		"robarch-s": "robarch-s", "robarch-param": "", "wrn-param": "",
	}
	for kind, preset := range cases {
		t.Run(kind, func(t *testing.T) {
			var ref struct {
				Params int64              `json:"params"`
				Shapes map[string][]int64 `json:"shapes"`
			}
			require.NoError(t, json.Unmarshal(runPython(t, "names", kind), &ref))
			var spec arch.Spec
			if preset == "" {
				spec = interopSpec(t, kind)
			} else {
				var err error
				spec, err = arch.Get(preset)
				require.NoError(t, err)
			}
			n, err := arch.Params(spec)
			require.NoError(t, err)
			assert.Equal(t, ref.Params, n, "parameter count")

			net, _ := build(t, spec, 1)
			assert.Equal(t, ref.Shapes, stateDictShapes(t, net))
		})
	}
}

// PyTorch writes a wrapped, module.-prefixed state dict with torch.save;
// Go loads it and gives the same eval-mode logits.
func TestInteropPyTorchToGo(t *testing.T) {
	requirePyTorch(t)
	for _, kind := range []string{"tv-resnet18", "tv-resnext", "robarch-tiny", "wrn-tiny", "robarch-param", "wrn-param"} {
		t.Run(kind, func(t *testing.T) {
			dir := t.TempDir()
			runPython(t, "make", kind, dir)
			net, _ := build(t, interopSpec(t, kind), 99)
			require.NoError(t, model.ImportWeights(net, filepath.Join(dir, "model.pt")))

			in, _, err := model.ReadSafetensors(filepath.Join(dir, "input.safetensors"))
			require.NoError(t, err)
			want, _, err := model.ReadSafetensors(filepath.Join(dir, "logits.safetensors"))
			require.NoError(t, err)
			out, err := net.Forward(in["x"], false)
			require.NoError(t, err)
			defer out.MustDrop()
			got, ref := tensorValues(t, out), tensorValues(t, want["logits"])
			require.Len(t, got, len(ref))
			diff := maxAbsDiff(got, ref)
			t.Logf("%s: max |Δlogit| = %.2g", kind, diff)
			assert.Less(t, diff, 1e-4)
		})
	}
}

// Go exports safetensors; PyTorch loads them with strict=True and gives
// the same eval-mode logits.
func TestInteropGoToPyTorch(t *testing.T) {
	requirePyTorch(t)
	for _, kind := range []string{"tv-resnet18", "tv-resnext", "robarch-tiny", "wrn-tiny", "robarch-param", "wrn-param"} {
		t.Run(kind, func(t *testing.T) {
			goToPyTorch(t, interopSpec(t, kind), 2, false, func(weights, input, logits string) []byte {
				return runPython(t, "check", kind, weights, input, logits)
			})
		})
	}
}

// specNet is bench/peer/specnet.py, the Python builder of a spec that
// robarch bench's PyTorch peer and bench/reference use.
var specNet = filepath.Join("..", "..", "bench", "peer", "specnet.py")

// TestSpecNetMatchesRobarch: specnet.py builds the same network as
// robarch from the spec alone. The weights robarch exports load into it
// with strict=True (so its state-dict names are robarch's) and give the
// same eval-mode logits and input gradients in evaluation and training
// mode (so it computes the same function, not only the same parameter
// count), for presets, small instances of the interop layouts (bottleneck
// SE and dense connections; RaWRN's grouped convolutions, SE after the
// first convolution and asymmetric padding; DMPreActResNet's 3×3 shortcut
// on the raw input) and random specs of every option
// (archtest.RandomSpec; ROBARCH_SPEC_SEED draws others); folded, it folds
// the same batch norms as robarch and keeps its eval-mode logits.
func TestSpecNetMatchesRobarch(t *testing.T) {
	requireImports(t, "torch")
	specs := map[string]arch.Spec{}
	for _, name := range []string{"micro", "resnet18-cifar"} {
		s, err := arch.Get(name)
		require.NoError(t, err)
		specs[name] = s
	}
	for _, kind := range []string{"robarch-tiny", "wrn-tiny"} {
		specs[kind] = interopSpec(t, kind)
	}
	for _, kind := range []string{"rb-ra-tiny-se1", "rb-dmpre-tiny"} {
		specs[kind] = rbSpec(t, kind)
	}
	r := archtest.Rand(17, 5)
	for i := range 6 {
		specs[fmt.Sprintf("random-%d", i)] = archtest.RandomSpec(r)
	}
	builds := specNetValues(t)
	for name, spec := range specs {
		t.Run(name, func(t *testing.T) {
			if missing := builds.missing(spec); len(missing) > 0 {
				t.Skipf("bench/peer/specnet.py does not build %s yet", strings.Join(missing, ", "))
			}
			dir := t.TempDir()
			js, err := json.Marshal(spec.WithDefaults())
			require.NoError(t, err)
			path := filepath.Join(dir, "spec.json")
			require.NoError(t, os.WriteFile(path, js, 0o644))
			// A random net may ignore its input (ROBARCH_SPEC_SEED=1
			// random-1: a final group norm of one channel per group, whose
			// average pool is its bias): zero gradients are no failure
			// there, different ones are.
			random := strings.HasPrefix(name, "random-")
			var out []byte
			goToPyTorch(t, spec, 3, random, func(weights, input, logits string) []byte {
				out = runScript(t, specNet, "check", path, weights, input, logits)
				return out
			})
			// specnet's fold_batch_norms (what bench --peer-fold runs)
			// folds the norms robarch's Fold folds and keeps the
			// eval-mode logits.
			var folded struct {
				Norms       int     `json:"folded_norms"`
				MaxAbsDiff  float64 `json:"max_abs_folded_diff"`
				MaxAbsLogit float64 `json:"max_abs_logit"`
			}
			require.NoError(t, json.Unmarshal(out, &folded))
			net, _ := build(t, spec, 5)
			f, err := net.Fold()
			require.NoError(t, err)
			defer f.Close()
			assert.Equal(t, f.Norms, folded.Norms, "batch norms folded by specnet and by robarch")
			assert.Less(t, folded.MaxAbsDiff, 1e-4*max(1, folded.MaxAbsLogit), "folded logits agree with robarch's")
		})
	}
}

// specNetBuilds is what specnet.py can build of the enumerations whose
// values arch adds to: its activations and norms.
type specNetBuilds struct {
	Activations []string `json:"activations"`
	Norms       []string `json:"norms"`
}

// specNetValues asks specnet.py which activations and norms it builds
// (ALL_ACTIVATIONS once it builds the parametric ones, ACTIVATIONS
// before).
func specNetValues(t *testing.T) specNetBuilds {
	t.Helper()
	var b specNetBuilds
	require.NoError(t, json.Unmarshal(runScript(t, "-c", "import json, sys; sys.path.insert(0, sys.argv[1]); import specnet; "+
		"print(json.dumps({'activations': list(getattr(specnet, 'ALL_ACTIVATIONS', specnet.ACTIVATIONS)), "+
		"'norms': list(specnet._CHOICES[('block', 'shortcut_norm')])}))", filepath.Dir(specNet)), &b))
	return b
}

// missing lists the values of spec's activations and norms that specnet.py
// does not build (values arch gained before specnet.py learnt them).
func (b specNetBuilds) missing(spec arch.Spec) []string {
	var out []string
	blk := spec.WithDefaults().Block
	for _, a := range blk.Activations {
		if !slices.Contains(b.Activations, a) && !slices.Contains(out, a) {
			out = append(out, a)
		}
	}
	for _, n := range append(slices.Clone(blk.Norms), blk.ShortcutNorm) {
		if !slices.Contains(b.Norms, n) && !slices.Contains(out, n) {
			out = append(out, n)
		}
	}
	return out
}

// specnet.py builds every activation and norm of arch's design space. A
// value arch gained before specnet.py learnt it is a skip naming it (and
// TestSpecNetMatchesRobarch skips the random specs that use it), so that
// the two files can change one after the other; make it a failure once
// they agree.
func TestSpecNetBuildsEveryValue(t *testing.T) {
	requireImports(t, "torch")
	spec := arch.Spec{Block: arch.Block{Activations: arch.Activations, Norms: arch.Norms}}
	assert.Empty(t, specNetValues(t).missing(spec), "bench/peer/specnet.py builds every activation and norm of the design space")
}

// specnet.py knows every field of arch.Spec (a field added there must be
// taught to it as well) and refuses a spec with a field it does not know,
// rather than building some other network.
func TestSpecNetKnowsEverySpecField(t *testing.T) {
	requireImports(t, "torch")
	want := map[string][]string{}
	for section, v := range map[string]any{"spec": arch.Spec{}, "input": arch.Input{}, "stem": arch.Stem{},
		"stages[]": arch.Stage{}, "block": arch.Block{}} {
		typ := reflect.TypeOf(v)
		for i := range typ.NumField() {
			want[section] = append(want[section], strings.Split(typ.Field(i).Tag.Get("json"), ",")[0])
		}
		slices.Sort(want[section])
	}
	var got map[string][]string
	require.NoError(t, json.Unmarshal(runScript(t, "-c", "import json, sys; sys.path.insert(0, sys.argv[1]); import specnet; "+
		"print(json.dumps({k: sorted(v) for k, v in specnet.FIELDS.items()}))", filepath.Dir(specNet)), &got))
	assert.Equal(t, want, got)

	spec, err := arch.Get("micro")
	require.NoError(t, err)
	js, err := json.Marshal(spec.WithDefaults())
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(js, &m))
	m["block"].(map[string]any)["new_option"] = 1
	js, err = json.Marshal(m)
	require.NoError(t, err)
	path := filepath.Join(t.TempDir(), "spec.json")
	require.NoError(t, os.WriteFile(path, js, 0o644))
	out, err := exec.Command(systemPython, specNet, "check", path, "weights", "input", "logits").CombinedOutput()
	require.Error(t, err)
	assert.Contains(t, string(out), "spec block has new_option, which bench/peer/specnet.py cannot build")
}

// goToPyTorch builds spec, moves its running statistics, exports its
// weights and writes an input batch of n images with robarch's eval-mode
// logits and input gradients; check runs the Python side on the three
// files (weights, input, logits) and returns its JSON, whose differences
// must be within 1e-4 of the largest value (or absolutely, below 1). The
// input gradients must not be trivially zero unless zeroGradsOK.
func goToPyTorch(t *testing.T, spec arch.Spec, n int64, zeroGradsOK bool, check func(weights, input, logits string) []byte) {
	t.Helper()
	dir := t.TempDir()
	net, _ := build(t, spec, 5)
	in := net.Spec().Input
	torchrt.Seed(6)
	x, err := ts.Rand([]int64{n, int64(in.Channels), int64(in.Height), int64(in.Width)}, gotch.Float, gotch.CPU)
	require.NoError(t, err)
	defer x.MustDrop()
	// Move the running statistics off their initial 0 and 1.
	ts.NoGrad(func() {
		for range 3 {
			net.ForwardT(x, true).MustDrop()
		}
	})
	out, err := net.Forward(x, false)
	require.NoError(t, err)
	defer out.MustDrop()

	// Input gradients of a fixed linear function of the logits, in
	// evaluation mode (what attacks use) and in training mode (batch
	// statistics, as in adversarial training), after the logits above
	// so that both sides see the same running statistics.
	// The weights are exported first: the training-mode pass updates
	// the running statistics (and PyTorch's pass does so after it has
	// compared the logits).
	weights := filepath.Join(dir, "weights.safetensors")
	require.NoError(t, model.ExportWeights(net, weights))
	gradEval := inputGrad(t, net, x, false)
	defer gradEval.MustDrop()
	gradTrain := inputGrad(t, net, x, true)
	defer gradTrain.MustDrop()

	input, logits := filepath.Join(dir, "input.safetensors"), filepath.Join(dir, "logits.safetensors")
	require.NoError(t, model.WriteSafetensors(input, []model.Named{{Name: "x", Tensor: x}}, nil))
	require.NoError(t, model.WriteSafetensors(logits, []model.Named{
		{Name: "logits", Tensor: out}, {Name: "grad_eval", Tensor: gradEval}, {Name: "grad_train", Tensor: gradTrain},
	}, nil))
	var res struct {
		MaxAbsDiff      float64 `json:"max_abs_diff"`
		MaxAbsLogit     float64 `json:"max_abs_logit"`
		MaxAbsGradDiff  float64 `json:"max_abs_grad_diff"`
		MaxAbsGrad      float64 `json:"max_abs_grad"`
		MaxAbsTrainDiff float64 `json:"max_abs_train_grad_diff"`
		MaxAbsTrainGrad float64 `json:"max_abs_train_grad"`
	}
	require.NoError(t, json.Unmarshal(check(weights, input, logits), &res))
	t.Logf("max |Δlogit| = %.2g (max |logit| %.2g); max |Δ input grad| eval %.2g (of %.2g), train %.2g (of %.2g)",
		res.MaxAbsDiff, res.MaxAbsLogit, res.MaxAbsGradDiff, res.MaxAbsGrad, res.MaxAbsTrainDiff, res.MaxAbsTrainGrad)
	assert.Greater(t, res.MaxAbsLogit, 1e-3, "logits are not trivially zero")
	for _, c := range []struct {
		what       string
		diff, size float64
	}{
		{"logits", res.MaxAbsDiff, res.MaxAbsLogit},
		{"eval-mode input gradients", res.MaxAbsGradDiff, res.MaxAbsGrad},
		{"train-mode input gradients", res.MaxAbsTrainDiff, res.MaxAbsTrainGrad},
	} {
		if c.what != "logits" && !zeroGradsOK {
			assert.Greater(t, c.size, 1e-6, "%s are not trivially zero", c.what)
		}
		assert.Less(t, c.diff, 1e-4*max(1, c.size), "%s agree with PyTorch's", c.what)
	}
}

// gradCoef is the fixed weighting of the logits whose sum inputGrad
// differentiates; specnet.py's input_grad (interop.py's too) builds the
// same: ((7i + 3j) mod 5 − 2) / 2.
func gradCoef(t *testing.T, n, classes int64) *ts.Tensor {
	t.Helper()
	vals := make([]float32, 0, n*classes)
	for i := range n {
		for j := range classes {
			vals = append(vals, float32((7*i+3*j)%5-2)/2)
		}
	}
	c, err := ts.NewTensorFromData(vals, []int64{n, classes})
	require.NoError(t, err)
	return c
}

// inputGrad is the gradient with respect to x of sum(logits ⊙ gradCoef),
// through the network in training or evaluation mode.
func inputGrad(t *testing.T, net *model.Net, x *ts.Tensor, train bool) *ts.Tensor {
	t.Helper()
	leaf, err := x.Detach(false)
	require.NoError(t, err)
	leaf, err = leaf.SetRequiresGrad(true, true)
	require.NoError(t, err)
	defer leaf.MustDrop()
	out, err := net.Forward(leaf, train)
	require.NoError(t, err)
	defer out.MustDrop()
	dims, err := out.Size()
	require.NoError(t, err)
	coef := gradCoef(t, dims[0], dims[1])
	defer coef.MustDrop()
	weighted, err := out.Mul(coef, false)
	require.NoError(t, err)
	defer weighted.MustDrop()
	total, err := weighted.Sum(gotch.Float, false)
	require.NoError(t, err)
	defer total.MustDrop()
	grads, err := ts.RunBackward([]*ts.Tensor{total}, []*ts.Tensor{leaf}, false, false)
	require.NoError(t, err)
	return grads[0]
}

// A state dict for another architecture is refused with the first
// differences named, and nothing is loaded.
func TestInteropMismatchIsAnError(t *testing.T) {
	requirePyTorch(t)
	dir := t.TempDir()
	runPython(t, "make", "tv-resnet18", dir)
	pt := filepath.Join(dir, "model.pt")

	spec := interopSpec(t, "tv-resnet18")
	spec.Classes = 11
	net, _ := build(t, spec, 1)
	before := tensorValues(t, net.Vars()[0].Tensor)
	err := model.ImportWeights(net, pt)
	var mm *model.MismatchError
	require.True(t, errors.As(err, &mm), "%v", err)
	assert.Empty(t, mm.Missing)
	assert.Empty(t, mm.Unexpected)
	assert.Equal(t, []string{"fc.weight: file [10 512] vs model [11 512]", "fc.bias: file [10] vs model [11]"}, mm.Shapes)
	assert.Equal(t, before, tensorValues(t, net.Vars()[0].Tensor), "nothing was loaded")

	other, _ := build(t, interopSpec(t, "robarch-tiny"), 1)
	err = model.ImportWeights(other, pt)
	require.True(t, errors.As(err, &mm), "%v", err)
	assert.Contains(t, mm.Missing, "stem.stem.stem.0.weight")
	assert.Contains(t, mm.Unexpected, "conv1.weight")
	assert.Contains(t, err.Error(), "more")
}

func TestReadPyTorchWithoutStateDict(t *testing.T) {
	requirePyTorch(t)
	path := filepath.Join(t.TempDir(), "other.pt")
	out, err := exec.Command(systemPython, "-c",
		"import torch,sys; torch.save({'epoch': 1, 'optimizer': {'lr': 0.1}}, sys.argv[1])", path).CombinedOutput()
	require.NoError(t, err, string(out))
	_, err = model.ReadPyTorch(path)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no state dict found")
}

func TestCheckpointRoundTrip(t *testing.T) {
	spec, err := arch.Get("micro")
	require.NoError(t, err)
	net, _ := build(t, spec, 3)
	x, err := ts.Rand([]int64{3, 1, 28, 28}, gotch.Float, gotch.CPU)
	require.NoError(t, err)
	defer x.MustDrop()
	ts.NoGrad(func() { net.ForwardT(x, true).MustDrop() })
	out, err := net.Forward(x, false)
	require.NoError(t, err)
	defer out.MustDrop()

	path := filepath.Join(t.TempDir(), "micro.safetensors")
	require.NoError(t, model.SaveCheckpoint(path, net, map[string]string{"epoch": "4"}))
	info, err := model.ReadCheckpointInfo(path)
	require.NoError(t, err)
	assert.Equal(t, spec, info.Spec)
	assert.Equal(t, map[string]string{"epoch": "4"}, info.Meta)

	torchrt.Seed(12345) // different initial weights: the file must overwrite them
	vs, back, c, err := model.LoadCheckpoint(path, gotch.CPU, model.Contiguous)
	require.NoError(t, err)
	defer vs.Destroy()
	assert.Equal(t, "4", c.Meta["epoch"])
	out2, err := back.Forward(x, false)
	require.NoError(t, err)
	defer out2.MustDrop()
	assert.Equal(t, tensorValues(t, out), tensorValues(t, out2), "same weights and running statistics give the same logits")

	entries, err := os.ReadDir(filepath.Dir(path))
	require.NoError(t, err)
	assert.Len(t, entries, 1, "no temporary files left behind")

	// A weights-only file is not a checkpoint.
	plain := filepath.Join(t.TempDir(), "w.safetensors")
	require.NoError(t, model.ExportWeights(net, plain))
	_, err = model.ReadCheckpointInfo(plain)
	assert.ErrorContains(t, err, "format")
	// but imports as weights.
	require.NoError(t, model.ImportWeights(back, plain))
}

func TestSafetensorsRejectsCorruptFiles(t *testing.T) {
	dir := t.TempDir()
	cases := map[string][]byte{
		"short":    {1, 2},
		"huge":     {0xff, 0xff, 0xff, 0xff, 0, 0, 0, 0},
		"badjson":  append([]byte{4, 0, 0, 0, 0, 0, 0, 0}, []byte("{x}}")...),
		"overflow": append([]byte{66, 0, 0, 0, 0, 0, 0, 0}, []byte(`{"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}        `)...),
	}
	for name, data := range cases {
		p := filepath.Join(dir, name+".safetensors")
		require.NoError(t, os.WriteFile(p, data, 0o644))
		_, _, err := model.ReadSafetensors(p)
		assert.Error(t, err, name)
	}
}

func TestForwardReportsBadInput(t *testing.T) {
	spec, err := arch.Get("micro")
	require.NoError(t, err)
	net, _ := build(t, spec, 1)
	x, err := ts.Rand([]int64{2, 3, 28, 28}, gotch.Float, gotch.CPU) // 3 channels, micro wants 1
	require.NoError(t, err)
	defer x.MustDrop()
	_, err = net.Forward(x, false)
	require.Error(t, err)
}

func TestBuildIsDeterministicUnderASeed(t *testing.T) {
	spec, err := arch.Get("micro")
	require.NoError(t, err)
	a, _ := build(t, spec, 7)
	b, _ := build(t, spec, 7)
	c, _ := build(t, spec, 8)
	va, vb, vc := a.Vars(), b.Vars(), c.Vars()
	require.Equal(t, len(va), len(vb))
	same, differ := true, false
	for i := range va {
		require.Equal(t, va[i].Name, vb[i].Name)
		x, y, z := tensorValues(t, va[i].Tensor), tensorValues(t, vb[i].Tensor), tensorValues(t, vc[i].Tensor)
		same = same && slices.Equal(x, y)
		differ = differ || !slices.Equal(x, z)
	}
	assert.True(t, same, "same seed, same weights")
	assert.True(t, differ, "another seed, other weights")
}

// stateDictShapes is every state-dict entry's shape by name, to compare
// with a Python definition's.
func stateDictShapes(t *testing.T, net *model.Net) map[string][]int64 {
	t.Helper()
	sd, err := net.StateDict()
	require.NoError(t, err)
	shapes := map[string][]int64{}
	for _, nt := range sd {
		shape, err := nt.Tensor.Size()
		require.NoError(t, err)
		shapes[nt.Name] = shape
	}
	return shapes
}
