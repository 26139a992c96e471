"""Reference wide ResNets with RobustBench's module names, for arch/model's
RobustBench interop tests (run with Debian's /usr/bin/python3).

Written for robarch from reading RobustBench's model_zoo/architectures files
(wide_resnet.py, dm_wide_resnet.py, robustarch_wide_resnet.py at commit
78fcc9e); robustbench itself is not installed here. What those classes do,
and what this file reproduces:

  classic  WideResNet (TRADES code): bare 3x3 stem "conv1"; stages
           "block{1,2,3}.layer.{i}" of pre-activation blocks bn1/conv1/bn2/conv2
           with a 1x1 "convShortcut" where the width changes, taken from the
           block's pre-activated input; final "bn1", ReLU, 8x8 average pool,
           "fc". No input normalisation. sub_block1=True adds a copy of the
           first stage that forward never calls.
  dm       DMWideResNet (DeepMind): the same block as batchnorm_0/conv_0/
           batchnorm_1/conv_1/shortcut under "layer.{s}.block.{i}", stem
           "init_conv", final "batchnorm", head "logits"; the first conv is
           unpadded and its input zero-padded by (1,1,1,1) for stride 1 and by
           (0,1,0,1) (nothing above/left, one below/right) for stride 2; the
           input is normalised by CIFAR-10's mean/std held outside the state
           dict.
  ra       NormalizedWideResNet (RaWRN): the dm block with both 3x3 convs
           grouped, and torchvision's SqueezeExcitation (fc1, fc2 with bias,
           squeeze width round(ratio * block output width)) after conv_0
           (se_order 1) or after conv_1 (se_order 2).
  dmpre    DMPreActResNet (dm_wide_resnet.py): stem "conv_2d"; stages
           "layer_{s}" (an nn.Sequential, so blocks are "layer_{s}.{i}") of
           pre-activation blocks batchnorm_0/conv_2d_1/batchnorm_1/conv_2d_2
           with a 3x3 "shortcut" where the stride or width changes, which
           convolves the block's RAW input (not its pre-activation), padded
           like conv_2d_1: (1,1,1,1) at stride 1, (0,1,0,1) at stride 2;
           final "batchnorm", activation, 4x4 average pool, "logits"; CIFAR-10
           mean/std outside the state dict. RobustBench fixes the widths
           (64, 128, 256, 512); the class here takes them as arguments.

Kinds (small instances, 32x32 inputs, 10 classes):
  rb-wrn-tiny     classic, depths [2,1,1], widths [32,64,128], ReLU;
                  "make" builds it with sub_block1=True
  rb-dm-tiny      dm, depths [2,1,1], widths [16,32,64], SiLU
  rb-ra-tiny      ra, stem 24, depths [2,2,1], widths [24,48,96],
                  groups [1,2,4], SiLU, SE 0.25 (ReLU) at se_order 2
  rb-ra-tiny-se1  the same with se_order 1
  rb-dmpre-tiny   dmpre, stem 16, depths [2,1,1,1], widths [16,32,64,128], SiLU

Commands (the protocol of interop.py):
  make KIND DIR    DIR/model.pt (torch.save({"state_dict": {"module."+k: v}})),
                   DIR/input.safetensors (x), DIR/logits.safetensors (eval logits)
  check KIND WEIGHTS INPUT LOGITS
                   load WEIGHTS with strict=True into the sub_block1=False model,
                   print {"max_abs_diff", "max_abs_logit"} as JSON, with the input
                   gradients' differences where LOGITS holds grad_eval / grad_train
                   (specnet.compare)
  names KIND       print {"params": N, "shapes": {name: shape}}
"""

import json
import os
import sys
from collections import OrderedDict

import torch
import torch.nn as nn
import torch.nn.functional as F
from torchvision.ops.misc import SqueezeExcitation

# robarch's shared safetensors reader/writer and check (bench/peer/specnet.py).
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "bench", "peer"))
from specnet import compare, load_safetensors, save_safetensors  # noqa: E402

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2471, 0.2435, 0.2616)


class PreActWideBlock(nn.Module):
    """One pre-activation basic block; `names` maps roles to the module names
    of the class being imitated."""

    def __init__(self, names, cin, cout, stride, act, tf_pad, groups=1, se_ratio=0.0, se_order=2):
        super().__init__()
        self.names, self.stride, self.tf_pad, self.se_order = names, stride, tf_pad, se_order
        self.project = cin != cout
        pad0 = 0 if tf_pad else 1
        setattr(self, names["bn0"], nn.BatchNorm2d(cin))
        setattr(self, names["conv0"], nn.Conv2d(cin, cout, 3, stride, pad0, groups=groups, bias=False))
        setattr(self, names["bn1"], nn.BatchNorm2d(cout))
        setattr(self, names["conv1"], nn.Conv2d(cout, cout, 3, 1, 1, groups=groups, bias=False))
        if self.project:
            setattr(self, names["short"], nn.Conv2d(cin, cout, 1, stride, 0, bias=False))
        self.se = SqueezeExcitation(cout, int(round(se_ratio * cout)), activation=nn.ReLU) if se_ratio else None
        self.act = act

    def part(self, role):
        return getattr(self, self.names[role])

    def forward(self, x):
        a = self.act(self.part("bn0")(x))
        # With a projection both branches see the pre-activated input; without,
        # the identity carries the raw input.
        skip = self.part("short")(a) if self.project else x
        if self.tf_pad:
            a = F.pad(a, (1, 1, 1, 1) if self.stride == 1 else (0, 1, 0, 1))
        h = self.part("conv0")(a)
        if self.se is not None and self.se_order == 1:
            h = self.se(h)
        h = self.part("conv1")(self.act(self.part("bn1")(h)))
        if self.se is not None and self.se_order == 2:
            h = self.se(h)
        return skip + h


CLASSIC = dict(bn0="bn1", conv0="conv1", bn1="bn2", conv1="conv2", short="convShortcut")
DM = dict(bn0="batchnorm_0", conv0="conv_0", bn1="batchnorm_1", conv1="conv_1", short="shortcut")


class Wrapper(nn.Module):
    """An nn.Sequential under a single attribute, for RobustBench's
    ".layer" (classic) and ".block" (dm) levels."""

    def __init__(self, attr, blocks):
        super().__init__()
        self.attr = attr
        setattr(self, attr, nn.Sequential(*blocks))

    def forward(self, x):
        return getattr(self, self.attr)(x)


def stage_blocks(names, cin, cout, depth, stride, act, tf_pad, groups=1, se_ratio=0.0, se_order=2):
    return [PreActWideBlock(names, cin if i == 0 else cout, cout, stride if i == 0 else 1, act, tf_pad,
                            groups, se_ratio, se_order) for i in range(depth)]


class ClassicWRN(nn.Module):
    def __init__(self, depths, widths, sub_block1=False, classes=10):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 16, 3, 1, 1, bias=False)
        cin = 16
        for s, (d, w) in enumerate(zip(depths, widths), start=1):
            stride = 1 if s == 1 else 2
            setattr(self, f"block{s}", Wrapper("layer", stage_blocks(CLASSIC, cin, w, d, stride, nn.ReLU(), False)))
            if s == 1 and sub_block1:
                self.sub_block1 = Wrapper("layer", stage_blocks(CLASSIC, cin, w, d, stride, nn.ReLU(), False))
            cin = w
        self.stages = len(depths)
        self.bn1 = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, classes)

    def forward(self, x):
        h = self.conv1(x)
        for s in range(1, self.stages + 1):
            h = getattr(self, f"block{s}")(h)
        h = F.avg_pool2d(torch.relu(self.bn1(h)), 8)
        return self.fc(h.flatten(1))


class DMStyleWRN(nn.Module):
    """DMWideResNet (se_ratio 0, groups 1) and NormalizedWideResNet."""

    def __init__(self, stem, depths, widths, act, groups=None, se_ratio=0.0, se_order=2, classes=10):
        super().__init__()
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CIFAR10_STD).view(3, 1, 1), persistent=False)
        groups = groups or [1] * len(depths)
        self.init_conv = nn.Conv2d(3, stem, 3, 1, 1, bias=False)
        stages, cin = [], stem
        for s, (d, w, g) in enumerate(zip(depths, widths, groups)):
            stages.append(Wrapper("block", stage_blocks(DM, cin, w, d, 1 if s == 0 else 2, act, True, g, se_ratio, se_order)))
            cin = w
        self.layer = nn.Sequential(*stages)
        self.batchnorm = nn.BatchNorm2d(cin)
        self.act = act
        self.logits = nn.Linear(cin, classes)

    def forward(self, x):
        h = self.layer(self.init_conv((x - self.mean) / self.std))
        h = F.avg_pool2d(self.act(self.batchnorm(h)), 8)
        return self.logits(h.flatten(1))


class DMPreActBlock(nn.Module):
    def __init__(self, cin, cout, stride, act):
        super().__init__()
        self.stride, self.act = stride, act
        self.batchnorm_0 = nn.BatchNorm2d(cin)
        self.conv_2d_1 = nn.Conv2d(cin, cout, 3, stride, 0, bias=False)
        self.batchnorm_1 = nn.BatchNorm2d(cout)
        self.conv_2d_2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.project = stride != 1 or cin != cout
        if self.project:
            self.shortcut = nn.Conv2d(cin, cout, 3, stride, 0, bias=False)

    def pad(self, x):
        return F.pad(x, (1, 1, 1, 1) if self.stride == 1 else (0, 1, 0, 1))

    def forward(self, x):
        a = self.act(self.batchnorm_0(x))
        skip = self.shortcut(self.pad(x)) if self.project else x
        h = self.conv_2d_1(self.pad(a))
        return skip + self.conv_2d_2(self.act(self.batchnorm_1(h)))


class DMPreActNet(nn.Module):
    def __init__(self, stem, depths, widths, act, classes=10):
        super().__init__()
        self.register_buffer("mean", torch.tensor(CIFAR10_MEAN).view(3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(CIFAR10_STD).view(3, 1, 1), persistent=False)
        self.conv_2d = nn.Conv2d(3, stem, 3, 1, 1, bias=False)
        cin = stem
        for s, (d, w) in enumerate(zip(depths, widths)):
            blocks = [DMPreActBlock(cin if i == 0 else w, w, (1 if s == 0 else 2) if i == 0 else 1, act) for i in range(d)]
            setattr(self, f"layer_{s}", nn.Sequential(*blocks))
            cin = w
        self.stages = len(depths)
        self.batchnorm = nn.BatchNorm2d(cin)
        self.act = act
        self.logits = nn.Linear(cin, classes)

    def forward(self, x):
        h = self.conv_2d((x - self.mean) / self.std)
        for s in range(self.stages):
            h = getattr(self, f"layer_{s}")(h)
        h = F.avg_pool2d(self.act(self.batchnorm(h)), 4)
        return self.logits(h.flatten(1))


def make_model(kind, for_make=False):
    if kind == "rb-wrn-tiny":
        return ClassicWRN([2, 1, 1], [32, 64, 128], sub_block1=for_make)
    if kind == "rb-dm-tiny":
        return DMStyleWRN(16, [2, 1, 1], [16, 32, 64], nn.SiLU())
    if kind in ("rb-ra-tiny", "rb-ra-tiny-se1"):
        return DMStyleWRN(24, [2, 2, 1], [24, 48, 96], nn.SiLU(), groups=[1, 2, 4], se_ratio=0.25,
                          se_order=1 if kind.endswith("se1") else 2)
    if kind == "rb-dmpre-tiny":
        return DMPreActNet(16, [2, 1, 1, 1], [16, 32, 64, 128], nn.SiLU())
    raise SystemExit(f"unknown kind {kind}")


def calibrate(model):
    """Random affine norm parameters, then running statistics from a few
    training-mode batches, so that eval mode is not the identity."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.momentum = None
        model.train()
        for _ in range(4):
            model(torch.rand(8, 3, 32, 32))
    model.eval()


def main():
    cmd, kind = sys.argv[1], sys.argv[2]
    torch.manual_seed(0)
    if cmd == "names":
        model = make_model(kind)
        params = sum(p.numel() for p in model.parameters())
        print(json.dumps({"params": params, "shapes": {k: list(v.shape) for k, v in model.state_dict().items()}}))
    elif cmd == "make":
        out = sys.argv[3]
        model = make_model(kind, for_make=True)
        calibrate(model)
        x = torch.rand(4, 3, 32, 32)
        with torch.no_grad():
            logits = model(x)
        sd = OrderedDict(("module." + k, v) for k, v in model.state_dict().items())
        torch.save({"epoch": 1, "state_dict": sd}, f"{out}/model.pt")
        save_safetensors(f"{out}/input.safetensors", {"x": x})
        save_safetensors(f"{out}/logits.safetensors", {"logits": logits})
    elif cmd == "check":
        weights, inp, logits = sys.argv[3:6]
        model = make_model(kind)
        model.load_state_dict(load_safetensors(weights), strict=True)
        print(json.dumps(compare(model, inp, logits)))
    else:
        raise SystemExit(f"unknown command {cmd}")


if __name__ == "__main__":
    main()
