package model

import (
	"fmt"
	"strings"

	"github.com/robarch/robarch/arch"
)

// namer gives every layer its state-dict name, so that weights line up
// with torchvision's ResNets ("torchvision") or the official RobArch
// ConfigurableModel ("robarch").
type namer interface {
	stemConv() string
	stemNorm() string
	// block returns the prefix of stage si (0-based), block bi.
	block(si, bi int) string
	// conv and norm of position p (0, 1, 2) in a block.
	conv(prefix string, p int) string
	norm(prefix string, p int) string
	// act is the prefix of the parameters of the activation of
	// position p in a block (parametric activations only), finalAct of
	// the one after the final norm.
	act(prefix string, p int) string
	finalAct() string
	se(prefix string) string
	projConv(prefix string) string
	projNorm(prefix string) string
	finalNorm() string
	fc() string
	// normalization is where the input mean/std buffers live.
	normalization() string
	// exportsNormalization says whether the mean/std buffers belong in
	// exported state dicts (RobArch's NormalizeByChannelMeanStd has them;
	// torchvision models do not).
	exportsNormalization() bool
	// ignored reports state-dict entries that import skips because the
	// Python class holds modules its forward pass never uses.
	ignored(key string) bool
}

func (torchvisionNames) ignored(string) bool { return false }
func (robarchNames) ignored(string) bool     { return false }

func newNamer(naming, order string) (namer, error) {
	pre := order == arch.PreAct
	switch naming {
	case arch.NamingTorchvision:
		return torchvisionNames{}, nil
	case arch.NamingRobArch:
		return robarchNames{pre: pre}, nil
	case arch.NamingRBWRN:
		return rbWRNNames{}, nil
	case arch.NamingRBDM:
		return rbDMNames{}, nil
	case arch.NamingRBDMPreAct:
		return rbDMPreActNames{}, nil
	}
	return nil, fmt.Errorf("naming %q: want one of %v", naming, arch.Namings)
}

// torchvisionNames follow torchvision.models.resnet: conv1/bn1 stem,
// layerN.i.convK/bnK blocks, downsample.0/.1 shortcut, fc head. Norm K
// is the norm of position K-1 (in pre-activation order it precedes convK).
type torchvisionNames struct{}

func (torchvisionNames) stemConv() string        { return "conv1" }
func (torchvisionNames) stemNorm() string        { return "bn1" }
func (torchvisionNames) block(si, bi int) string { return fmt.Sprintf("layer%d.%d", si+1, bi) }
func (torchvisionNames) conv(prefix string, p int) string {
	return fmt.Sprintf("%s.conv%d", prefix, p+1)
}
func (torchvisionNames) norm(prefix string, p int) string {
	return fmt.Sprintf("%s.bn%d", prefix, p+1)
}

// act names a block's activation actK (position K-1) and the final one
// act_final, as bn_final: torchvision's ResNets share one parameter-free
// relu module per block.
func (torchvisionNames) act(prefix string, p int) string {
	return fmt.Sprintf("%s.act%d", prefix, p+1)
}
func (torchvisionNames) finalAct() string              { return "act_final" }
func (torchvisionNames) se(prefix string) string       { return prefix + ".se" }
func (torchvisionNames) projConv(prefix string) string { return prefix + ".downsample.0" }
func (torchvisionNames) projNorm(prefix string) string { return prefix + ".downsample.1" }
func (torchvisionNames) finalNorm() string             { return "bn_final" }
func (torchvisionNames) fc() string                    { return "fc" }
func (torchvisionNames) normalization() string         { return "normalization" }
func (torchvisionNames) exportsNormalization() bool    { return false }

// robarchNames follow robustarch/models/model.py: the stem is
// stem.stem.stem.{0 conv, 1 norm}; a block is
// stages.stageN.stageN-blockI with F.{a,b,c} (Conv2dNormActivation:
// 0 conv, 1 norm; in pre-activation NormActivationConv: 0 norm, 2 conv),
// F.se.{fc1,fc2} and proj.{0 conv, 1 norm}.
type robarchNames struct{ pre bool }

var robarchPositions = [3]string{"a", "b", "c"}

func (robarchNames) stemConv() string { return "stem.stem.stem.0" }
func (robarchNames) stemNorm() string { return "stem.stem.stem.1" }
func (robarchNames) block(si, bi int) string {
	return fmt.Sprintf("stages.stage%d.stage%d-block%d", si+1, si+1, bi)
}
func (n robarchNames) conv(prefix string, p int) string {
	if n.pre {
		return fmt.Sprintf("%s.F.%s.2", prefix, robarchPositions[p])
	}
	return fmt.Sprintf("%s.F.%s.0", prefix, robarchPositions[p])
}
func (n robarchNames) norm(prefix string, p int) string {
	if n.pre {
		return fmt.Sprintf("%s.F.%s.0", prefix, robarchPositions[p])
	}
	return fmt.Sprintf("%s.F.%s.1", prefix, robarchPositions[p])
}

// act follows Conv2dNormActivation (0 conv, 1 norm, 2 activation) and
// BottleneckBlock's last_activation after the residual add; in
// pre-activation order NormActivationConv (0 norm, 1 activation, 2 conv).
// The final activation after final_norm is final_act.
func (n robarchNames) act(prefix string, p int) string {
	switch {
	case n.pre:
		return fmt.Sprintf("%s.F.%s.1", prefix, robarchPositions[p])
	case p == 2:
		return prefix + ".last_activation"
	}
	return fmt.Sprintf("%s.F.%s.2", prefix, robarchPositions[p])
}
func (robarchNames) finalAct() string              { return "final_act" }
func (robarchNames) se(prefix string) string       { return prefix + ".F.se" }
func (robarchNames) projConv(prefix string) string { return prefix + ".proj.0" }
func (robarchNames) projNorm(prefix string) string { return prefix + ".proj.1" }
func (robarchNames) finalNorm() string             { return "final_norm" }
func (robarchNames) fc() string                    { return "fc" }
func (robarchNames) normalization() string         { return "normalization" }
func (robarchNames) exportsNormalization() bool    { return true }

// rbWRNNames follow RobustBench's classic WideResNet
// (model_zoo/architectures/wide_resnet.py, from TRADES): conv1 stem,
// blockN.layer.I.{bn1, conv1, bn2, conv2, convShortcut}, bn1 after the last
// stage, fc. Norm p precedes conv p+1. The input is not normalised inside
// the model.
type rbWRNNames struct{}

func (rbWRNNames) stemConv() string        { return "conv1" }
func (rbWRNNames) stemNorm() string        { return "stem_bn" } // pre-activation: never built
func (rbWRNNames) block(si, bi int) string { return fmt.Sprintf("block%d.layer.%d", si+1, bi) }
func (rbWRNNames) conv(prefix string, p int) string {
	return fmt.Sprintf("%s.conv%d", prefix, p+1)
}
func (rbWRNNames) norm(prefix string, p int) string {
	return fmt.Sprintf("%s.bn%d", prefix, p+1)
}

// act follows WideResNet's BasicBlock (relu1 before conv1, relu2 before
// conv2) and its final relu, which hold the parameters of a parametric
// activation_fn.
func (rbWRNNames) act(prefix string, p int) string {
	return fmt.Sprintf("%s.relu%d", prefix, p+1)
}
func (rbWRNNames) finalAct() string              { return "relu" }
func (rbWRNNames) se(prefix string) string       { return prefix + ".se" } // rejected by arch's validation
func (rbWRNNames) projConv(prefix string) string { return prefix + ".convShortcut" }
func (rbWRNNames) projNorm(prefix string) string { return prefix + ".shortcut_norm" } // identity, never built
func (rbWRNNames) finalNorm() string             { return "bn1" }
func (rbWRNNames) fc() string                    { return "fc" }
func (rbWRNNames) normalization() string         { return "normalization" }
func (rbWRNNames) exportsNormalization() bool    { return false }

// ignored skips sub_block1: WideResNet(sub_block1=True), as many
// RobustBench entries are built (Carmon2019Unlabeled, Zhang2019Theoretically),
// holds a copy of the first stage that forward never calls.
func (rbWRNNames) ignored(key string) bool { return strings.HasPrefix(key, "sub_block1.") }

// rbDMNames follow RobustBench's DMWideResNet (dm_wide_resnet.py, from
// DeepMind's code) and its RaWRN, NormalizedWideResNet
// (robustarch_wide_resnet.py), which share them: init_conv stem,
// layer.N.block.I.{batchnorm_0, conv_0, batchnorm_1, conv_1, shortcut,
// se.fc1, se.fc2}, batchnorm after the last stage, logits. Norm p precedes
// conv p. Their input mean and std are not in the state dict.
type rbDMNames struct{}

func (rbDMNames) stemConv() string        { return "init_conv" }
func (rbDMNames) stemNorm() string        { return "init_bn" } // pre-activation: never built
func (rbDMNames) block(si, bi int) string { return fmt.Sprintf("layer.%d.block.%d", si, bi) }
func (rbDMNames) conv(prefix string, p int) string {
	return fmt.Sprintf("%s.conv_%d", prefix, p)
}
func (rbDMNames) norm(prefix string, p int) string {
	return fmt.Sprintf("%s.batchnorm_%d", prefix, p)
}

// act follows the DM blocks' relu_0 and relu_1 (before conv_0 and
// conv_1) and the final relu.
func (rbDMNames) act(prefix string, p int) string {
	return fmt.Sprintf("%s.relu_%d", prefix, p)
}
func (rbDMNames) finalAct() string              { return "relu" }
func (rbDMNames) se(prefix string) string       { return prefix + ".se" }
func (rbDMNames) projConv(prefix string) string { return prefix + ".shortcut" }
func (rbDMNames) projNorm(prefix string) string { return prefix + ".shortcut_norm" } // identity, never built
func (rbDMNames) finalNorm() string             { return "batchnorm" }
func (rbDMNames) fc() string                    { return "logits" }
func (rbDMNames) normalization() string         { return "normalization" }
func (rbDMNames) exportsNormalization() bool    { return false }
func (rbDMNames) ignored(string) bool           { return false }

// rbDMPreActNames follow RobustBench's DMPreActResNet (dm_wide_resnet.py):
// conv_2d stem, layer_N.I.{batchnorm_0, conv_2d_1, batchnorm_1, conv_2d_2,
// shortcut} (an nn.Sequential per stage, so no ".block" level),
// batchnorm after the last stage, logits. Norm p precedes conv p+1. The
// input mean and std are not in the state dict.
type rbDMPreActNames struct{}

func (rbDMPreActNames) stemConv() string        { return "conv_2d" }
func (rbDMPreActNames) stemNorm() string        { return "init_bn" } // pre-activation: never built
func (rbDMPreActNames) block(si, bi int) string { return fmt.Sprintf("layer_%d.%d", si, bi) }
func (rbDMPreActNames) conv(prefix string, p int) string {
	return fmt.Sprintf("%s.conv_2d_%d", prefix, p+1)
}
func (rbDMPreActNames) norm(prefix string, p int) string {
	return fmt.Sprintf("%s.batchnorm_%d", prefix, p)
}

// act follows _PreActBlock's relu_0 and relu_1 and the final relu.
func (rbDMPreActNames) act(prefix string, p int) string {
	return fmt.Sprintf("%s.relu_%d", prefix, p)
}
func (rbDMPreActNames) finalAct() string              { return "relu" }
func (rbDMPreActNames) se(prefix string) string       { return prefix + ".se" } // rejected by arch's validation
func (rbDMPreActNames) projConv(prefix string) string { return prefix + ".shortcut" }
func (rbDMPreActNames) projNorm(prefix string) string { return prefix + ".shortcut_norm" } // identity, never built
func (rbDMPreActNames) finalNorm() string             { return "batchnorm" }
func (rbDMPreActNames) fc() string                    { return "logits" }
func (rbDMPreActNames) normalization() string         { return "normalization" }
func (rbDMPreActNames) exportsNormalization() bool    { return false }
func (rbDMPreActNames) ignored(string) bool           { return false }
