"""PyTorch side of arch/model's interop tests (run with Debian's /usr/bin/python3).

Reference models:
  tv-resnet18    torchvision resnet18, 10 classes
  tv-resnext     torchvision ResNet(Bottleneck, [1,1,1,1], groups=4, width_per_group=16), 10 classes
  robarch-tiny   a small model with the module layout of RobArch's ConfigurableModel
                 (written here from its description: stem, stages of bottleneck blocks
                 with SE, norms [identity, bn, bn], SiLU, dense connections), 10 classes
  robarch-param  robarch-tiny with RobArch's parametric activations (PReLU, PSiLU, PSSiLU
                 at positions 0, 1, 2) and norms [instance, layer, batch], a layer norm
                 on the shortcut, 10 classes
  wrn-tiny       a pre-activation wide ResNet with torchvision-style names, 10 classes
  wrn-param      wrn-tiny with PSSiLU before conv1 (and after the last norm), PReLU
                 before conv2 and norms [layer, instance], 10 classes
  robarch-s      the RobArch-S configuration of the same layout (names/count only)
  torchvision:NAME  any torchvision.models constructor, defaults (names/count only)

Commands:
  make KIND DIR    write DIR/model.pt (torch.save({"state_dict": {"module."+k: v}})),
                   DIR/input.safetensors (x) and DIR/logits.safetensors (eval-mode logits)
  check KIND WEIGHTS INPUT LOGITS
                   load WEIGHTS (.safetensors) with strict=True, run INPUT, print the
                   max abs difference to LOGITS as JSON; where LOGITS also holds
                   grad_eval / grad_train (input gradients of a fixed weighting of the
                   logits, eval / train mode), their differences too
  names KIND       print {"params": N, "shapes": {name: shape}} of the state dict
"""

import functools
import json
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
import torchvision
from torchvision.ops.misc import Conv2dNormActivation, SqueezeExcitation

MEAN = [0.485, 0.456, 0.406]
STD = [0.229, 0.224, 0.225]


# The safetensors reader/writer, the input gradient and the comparison of a
# check are robarch's shared ones (bench/peer/specnet.py); the models here
# are not built from a spec but from torchvision's and RobArch's own layouts.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "bench", "peer"))
from specnet import compare, load_safetensors, save_safetensors  # noqa: E402


# --- RobArch's parametric activations (robustarch/utils.py) and the norms it compares ---

class PSiLU(nn.Module):
    def __init__(self, alpha=1.0):
        super().__init__()
        self.alpha = nn.Parameter(torch.empty(1).fill_(alpha))

    def forward(self, x):
        return x * torch.sigmoid(self.alpha * x)


class PSSiLU(nn.Module):
    def __init__(self, alpha=1.0, beta=1e-4):
        super().__init__()
        self.alpha = nn.Parameter(torch.empty(1).fill_(alpha))
        self.beta = nn.Parameter(torch.empty(1).fill_(beta))

    def forward(self, x):
        self.beta.data = torch.clamp(self.beta.data, 0., 1.)
        return x * (torch.sigmoid(self.alpha * x) - self.beta) / (1. - self.beta + 1e-6)


class LayerNorm2d(nn.LayerNorm):
    """torchvision's LayerNorm2d (ConvNeXt): layer norm over C at each pixel."""

    def forward(self, x):
        x = x.permute(0, 2, 3, 1)
        x = nn.functional.layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


InstanceNorm = functools.partial(nn.InstanceNorm2d, affine=True)


# --- a model with RobArch ConfigurableModel's module names ---

class ChannelNormalize(nn.Module):
    """Per-channel (x - mean) / std with mean and std as buffers."""

    def __init__(self, mean, std):
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean))
        self.register_buffer("std", torch.tensor(std))

    def forward(self, x):
        return (x - self.mean[None, :, None, None]) / self.std[None, :, None, None]


class Bottleneck(nn.Module):
    def __init__(self, cin, cout, stride, mult, group_width, se_ratio, norms, acts, proj_norm):
        super().__init__()
        mid = int(round(cout * mult))
        self.proj = None
        if cin != cout or stride != 1:
            self.proj = Conv2dNormActivation(cin, cout, 1, stride, norm_layer=proj_norm, activation_layer=None)
        # RobArch passes inplace only to ReLU (PReLU takes no such argument).
        inplace = [True if a is nn.ReLU else None for a in acts]
        layers = OrderedDict()
        layers["a"] = Conv2dNormActivation(cin, mid, 1, 1, norm_layer=norms[0], activation_layer=acts[0], inplace=inplace[0])
        layers["b"] = Conv2dNormActivation(mid, mid, 3, stride, groups=mid // group_width, norm_layer=norms[1],
                                           activation_layer=acts[1], inplace=inplace[1])
        if se_ratio:
            layers["se"] = SqueezeExcitation(mid, int(round(se_ratio * cin)), activation=nn.ReLU)
        layers["c"] = Conv2dNormActivation(mid, cout, 1, 1, norm_layer=norms[2], activation_layer=None)
        self.F = nn.Sequential(layers)
        self.last_activation = acts[2]()

    def forward(self, x):
        short = x if self.proj is None else self.proj(x)
        return self.last_activation(short + self.F(x))


class DenseStage(nn.Sequential):
    """Blocks in sequence; with dense > 0, block i > 2 and the stage output also
    receive the outputs of up to `dense` earlier blocks, skipping the one just before."""

    def __init__(self, blocks, dense):
        super().__init__(blocks)
        self.dense = dense

    def forward(self, x):
        if not self.dense:
            return super().forward(x)
        outs = [x]
        for i, block in enumerate(self):
            h = outs[-1]
            if i > 2:
                for j in range(self.dense):
                    if j + 4 > len(outs):
                        break
                    h = h + outs[-3 - j]
            outs.append(block(h))
        y = outs[-1]
        for k in range(self.dense):
            if k + 4 > len(outs):
                break
            y = y + outs[-3 - k]
        return y


class RobArchLayout(nn.Module):
    def __init__(self, stem_width, depths, widths, group_widths, classes, dense=0, se_ratio=0.25,
                 norms=(nn.Identity, nn.BatchNorm2d, nn.BatchNorm2d), acts=(nn.SiLU,) * 3, proj_norm=nn.BatchNorm2d):
        super().__init__()
        self.normalization = ChannelNormalize(MEAN, STD)
        self.stem = nn.Module()
        self.stem.stem = nn.Sequential(OrderedDict(
            stem=Conv2dNormActivation(3, stem_width, 7, 2, norm_layer=nn.BatchNorm2d, activation_layer=nn.ReLU)))
        stages, cin = OrderedDict(), stem_width
        for s, (d, w, g) in enumerate(zip(depths, widths, group_widths), start=1):
            blocks = OrderedDict()
            for b in range(d):
                blocks[f"stage{s}-block{b}"] = Bottleneck(cin if b == 0 else w, w, 2 if b == 0 else 1, 0.25, g, se_ratio, norms, acts,
                                                        proj_norm)
            stages[f"stage{s}"] = DenseStage(blocks, dense)
            cin = w
        self.stages = nn.Sequential(stages)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.stem.stem(self.normalization(x))
        x = self.stages(x)
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class PreActBasic(nn.Module):
    """Pre-activation basic block (He et al. 2016, wide ResNets): the projection
    shortcut takes the pre-activated input."""

    def __init__(self, cin, cout, stride, norms, acts):
        super().__init__()
        self.bn1 = norms[0](cin)
        self.act1 = acts[0]()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn2 = norms[1](cout)
        self.act2 = acts[1]()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.downsample = None
        if cin != cout or stride != 1:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False))

    def forward(self, x):
        a = self.act1(self.bn1(x))
        h = self.conv2(self.act2(self.bn2(self.conv1(a))))
        return h + (x if self.downsample is None else self.downsample(a))


class PreActResNet(nn.Module):
    """Activations with parameters are modules act1, act2 and act_final
    (robarch's torchvision naming); ReLU is a function, as in torchvision."""

    def __init__(self, depths, widths, classes, norms=(nn.BatchNorm2d,) * 2, acts=(nn.ReLU,) * 2):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        cin = 16
        for i, (d, w) in enumerate(zip(depths, widths), start=1):
            blocks = [PreActBasic(cin if b == 0 else w, w, (1 if i == 1 else 2) if b == 0 else 1, norms, acts)
                      for b in range(d)]
            setattr(self, f"layer{i}", nn.Sequential(*blocks))
            cin = w
        self.n = len(depths)
        self.bn_final = norms[0](cin)
        self.act_final = acts[0]()
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        x = self.conv1(x)
        for i in range(1, self.n + 1):
            x = getattr(self, f"layer{i}")(x)
        x = self.act_final(self.bn_final(x))
        return self.fc(torch.flatten(nn.functional.adaptive_avg_pool2d(x, 1), 1))


class Normalized(nn.Module):
    """A torchvision model behind input normalisation, keeping its own names."""

    def __init__(self, net):
        super().__init__()
        self.net = net
        self.register_buffer("mean", torch.tensor(MEAN)[None, :, None, None], persistent=False)
        self.register_buffer("std", torch.tensor(STD)[None, :, None, None], persistent=False)

    def forward(self, x):
        return self.net((x - self.mean) / self.std)


def make_model(kind):
    if kind.startswith("torchvision:"):
        return torchvision.models.__dict__[kind[len("torchvision:"):]](), None
    if kind == "tv-resnet18":
        return Normalized(torchvision.models.resnet18(num_classes=10)), (2, 3, 64, 64)
    if kind == "tv-resnext":
        net = torchvision.models.resnet.ResNet(torchvision.models.resnet.Bottleneck, [1, 1, 1, 1],
                                               groups=4, width_per_group=16, num_classes=10)
        return Normalized(net), (2, 3, 64, 64)
    if kind == "robarch-tiny":
        return RobArchLayout(16, [1, 2, 5, 1], [32, 64, 128, 256], [4, 8, 16, 32], 10, dense=1), (2, 3, 64, 64)
    if kind == "robarch-param":
        return RobArchLayout(16, [1, 2, 5, 1], [32, 64, 128, 256], [4, 8, 16, 32], 10, dense=1,
                             norms=(InstanceNorm, LayerNorm2d, nn.BatchNorm2d), acts=(nn.PReLU, PSiLU, PSSiLU),
                             proj_norm=LayerNorm2d), (2, 3, 64, 64)
    if kind == "wrn-tiny":
        return Normalized(PreActResNet([2, 1, 1], [32, 64, 128], 10)), (2, 3, 32, 32)
    if kind == "wrn-param":
        return Normalized(PreActResNet([2, 1, 1], [32, 64, 128], 10, norms=(LayerNorm2d, InstanceNorm),
                                       acts=(PSSiLU, nn.PReLU))), (2, 3, 32, 32)
    if kind == "robarch-s":
        return RobArchLayout(96, [5, 8, 13, 1], [288, 576, 1120, 2160], [36, 72, 140, 270], 1000), None
    raise SystemExit(f"unknown kind {kind}")


def state_dict(model):
    sd = model.state_dict()
    if isinstance(model, Normalized):
        sd = OrderedDict((k[len("net."):], v) for k, v in sd.items())
    return sd


def load(model, sd):
    if isinstance(model, Normalized):
        model.net.load_state_dict(sd, strict=True)
    else:
        model.load_state_dict(sd, strict=True)


def calibrate(model, shape):
    """Randomise affine norm parameters and the activations' parameters, then
    set running statistics from a few batches so eval-mode activations stay
    well scaled."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.BatchNorm2d, nn.InstanceNorm2d, nn.LayerNorm)):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
            if isinstance(m, nn.BatchNorm2d):
                m.momentum = None  # cumulative average
            if isinstance(m, nn.PReLU):
                m.weight.uniform_(0.05, 0.5)
            if isinstance(m, (PSiLU, PSSiLU)):
                m.alpha.uniform_(0.5, 2)
            if isinstance(m, PSSiLU):
                m.beta.uniform_(0, 0.3)
        model.train()
        for _ in range(4):
            model(torch.rand(shape))
    model.eval()


def main():
    cmd, kind = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    model, shape = make_model(kind)
    if cmd == "names":
        sd = state_dict(model)
        params = sum(p.numel() for p in model.parameters())
        print(json.dumps({"params": params, "shapes": {k: list(v.shape) for k, v in sd.items()}}))
    elif cmd == "make":
        out = sys.argv[3]
        calibrate(model, shape)
        x = torch.rand(shape)
        with torch.no_grad():
            logits = model(x)
        torch.save({"epoch": 3, "state_dict": OrderedDict(("module." + k, v) for k, v in state_dict(model).items())},
                   f"{out}/model.pt")
        save_safetensors(f"{out}/input.safetensors", {"x": x})
        save_safetensors(f"{out}/logits.safetensors", {"logits": logits})
    elif cmd == "check":
        weights, inp, logits = sys.argv[3:6]
        load(model, load_safetensors(weights))
        print(json.dumps(compare(model, inp, logits)))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
