package train

import (
	"io"
	"log/slog"
	"math"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
	"github.com/sugarme/gotch"
	"github.com/sugarme/gotch/nn"
	"github.com/sugarme/gotch/ts"

	"github.com/robarch/robarch/data"
	"github.com/robarch/robarch/internal/torchrt"
)

func TestMain(m *testing.M) {
	// One libtorch thread: equal results in this process and in the child
	// processes of the kill test need equal thread counts, and the machine
	// is shared.
	torchrt.SetThreads(1)
	if dir := os.Getenv(childEnv); dir != "" {
		os.Exit(runChild(dir))
	}
	if dir := os.Getenv(resumeChildEnv); dir != "" {
		os.Exit(runResumeChild(dir))
	}
	if dir := os.Getenv(dpChildEnv); dir != "" {
		os.Exit(runDPChild(dir))
	}
	os.Exit(m.Run())
}

// tinyNet is conv(3×3, stride 2) → BN → ReLU → conv(3×3, stride 2) → ReLU
// → flatten → linear, for 16×16 inputs: small enough for seconds-long
// tests, with batch norm so buffers and 1-D parameters are exercised. (A
// global mean instead of the flatten cannot see where the synthetic
// classes' blocks are.)
type tinyNet struct {
	c1, c2 *nn.Conv2D
	bn     *nn.BatchNorm
	fc     *nn.Linear
}

func newTinyNet(vs *nn.VarStore, in, classes int64) *tinyNet {
	root := vs.Root()
	// PyTorch's default bound 1/√fan_in: gotch's "Kaiming uniform" default
	// draws N(0,1), which makes the first logits huge.
	conv := func(in int64) *nn.Conv2DConfig {
		b := 1 / math.Sqrt(float64(in*9))
		return nn.NewConv2DConfig(nn.WithStride2D(2), nn.WithPadding2D(1), nn.WithWsInit2D(nn.NewUniformInit(-b, b)), nn.WithBsInit2D(nn.NewUniformInit(-b, b)))
	}
	n := &tinyNet{c1: nn.NewConv2D(root.Sub("c1"), in, 8, 3, conv(in))}
	bnCfg := nn.DefaultBatchNormConfig()
	bnCfg.WsInit = nn.NewConstInit(1)
	n.bn = nn.BatchNorm2D(root.Sub("bn"), 8, bnCfg)
	n.c2 = nn.NewConv2D(root.Sub("c2"), 8, 16, 3, conv(8))
	b := 1 / math.Sqrt(16*4*4)
	n.fc = nn.NewLinear(root.Sub("fc"), 16*4*4, classes, &nn.LinearConfig{WsInit: nn.NewUniformInit(-b, b), BsInit: nn.NewUniformInit(-b, b), Bias: true})
	return n
}

func (n *tinyNet) ForwardT(x *ts.Tensor, train bool) *ts.Tensor {
	h := n.c1.Forward(x)
	h2 := n.bn.ForwardT(h, train)
	h.MustDrop()
	h = h2.MustRelu(true)
	h2 = n.c2.Forward(h)
	h.MustDrop()
	h = h2.MustRelu(true).MustFlatten(1, -1, true)
	out := n.fc.Forward(h)
	h.MustDrop()
	return out
}

// newModel builds a tinyNet on the CPU with libtorch seeded by seed.
func newModel(seed int64) Model {
	torchrt.Seed(seed)
	vs := nn.NewVarStore(gotch.CPU)
	return Model{Net: newTinyNet(vs, 1, 10), Vars: vs}
}

// synthetic returns the test data: 10 classes of 1×16×16 images.
func synthetic(t testing.TB, train, test int) Data {
	t.Helper()
	s, err := data.Open(data.NameSynthetic, data.Options{TrainSize: train, TestSize: test, ImageSize: 16, Seed: 3})
	require.NoError(t, err)
	return Data{Train: s.Train, Test: s.Test}
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// weights returns every variable's values by name.
func weights(t testing.TB, m Model) map[string][]float32 {
	t.Helper()
	out, err := weightsOf(m)
	require.NoError(t, err)
	return out
}

func weightsOf(m Model) (map[string][]float32, error) {
	vars, err := varsOf(m.Vars)
	if err != nil {
		return nil, err
	}
	defer releaseVars(vars)
	out := map[string][]float32{}
	for _, v := range vars {
		vals, err := float32s(v.t)
		if err != nil {
			return nil, err
		}
		out[v.name] = vals
	}
	return out, nil
}
