"""specnet: robarch's arch.Spec built in PyTorch, and safetensors by hand.

The one Python builder of a spec, shared by robarch bench's PyTorch peer
(peer.py, which robarch embeds and writes next to this file), the attack
reference comparison (bench/reference/reference.py) and arch/model's
interop tests (which also take the safetensors functions and the
comparison from here). Run with Debian's /usr/bin/python3 (python3-torch,
the same libtorch as robarch); nothing beyond torch is needed.

Net(spec) takes an arch.Spec as JSON (robarch's field names) with its
defaults filled in (arch.Spec.WithDefaults, what robarch sends and writes)
and builds the network arch/model builds: the same layers, the same
forward pass, and state-dict names equal to robarch's own for the spec's
naming (arch/model/names.go), so that what model.ExportWeights writes loads
with load_state_dict(strict=True). The initial values are not robarch's
(torchvision's initialisation from torch's generator). A spec with a field
or a value this builder does not know is refused with a ValueError naming
it, rather than built into a different network.

Command (arch/model's TestSpecNetMatchesRobarch):

  specnet.py check SPEC.json WEIGHTS INPUT LOGITS
        build SPEC, load WEIGHTS (.safetensors) with strict=True, run INPUT's
        x in eval mode and print as JSON the max abs difference to LOGITS'
        logits; where LOGITS also holds grad_eval / grad_train (input
        gradients of a fixed weighting of the logits, eval / train mode),
        their differences too (see compare); then fold its batch norms
        (fold_batch_norms) and add how many it folded and the max abs
        difference of the folded net's logits
"""

import json
import math
import struct
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F


# --- safetensors, written and read by hand (the library is not in Debian) ---

_DTYPES = {torch.float32: "F32", torch.float64: "F64", torch.int64: "I64", torch.int32: "I32"}
_TORCH = {v: k for k, v in _DTYPES.items()}


def save_safetensors(path, tensors):
    """Writes the dict name -> tensor (float32/64, int64/32) to path."""
    header, blobs, offset = {}, [], 0
    for name, t in tensors.items():
        t = t.detach().contiguous().cpu()
        data = t.numpy().tobytes()
        header[name] = {"dtype": _DTYPES[t.dtype], "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(data)]}
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header).encode()
    h += b" " * (-len(h) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def load_safetensors(path):
    """Reads a safetensors file into a dict name -> tensor (metadata dropped)."""
    with open(path, "rb") as f:
        raw = f.read()
    (n,) = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    body = raw[8 + n:]
    out = {}
    for name, e in header.items():
        if name == "__metadata__":
            continue
        if e["dtype"] not in _TORCH:
            raise ValueError("%s: %s has dtype %s; specnet reads %s" % (path, name, e["dtype"], sorted(_TORCH)))
        begin, end = e["data_offsets"]
        t = torch.frombuffer(bytearray(body[begin:end]), dtype=_TORCH[e["dtype"]])
        out[name] = t.reshape(e["shape"]).clone()
    return out


# --- the spec: what this builder knows --------------------------------------

# Every field of arch.Spec by section (its JSON names), to refuse a spec
# that uses one this file has not learnt; arch/model's
# TestSpecNetKnowsEverySpecField keeps it equal to arch.Spec's fields.
FIELDS = {
    "spec": {"name", "description", "naming", "input", "classes", "stem", "stages", "block"},
    "input": {"channels", "height", "width", "mean", "std"},
    "stem": {"kind", "width", "kernel", "stride", "max_pool"},
    "stages[]": {"depth", "width", "stride", "block", "bottleneck_multiplier", "group_width", "groups",
                 "kernel", "dilation"},
    "block": {"order", "activations", "norms", "norm_groups", "shortcut_norm", "shortcut_kernel",
              "shortcut_input", "se_ratio", "se_activation", "se_width_from", "se_position", "padding",
              "dense_ratio"},
}

def in_fp32_if_bf16(f):
    """f computed on an fp32 copy, rounded back once, when its input is bf16
    (under autocast), as robarch does for SiLU (libtorch 1.13's bf16 kernel
    is slower than the casts) and Mish (no bf16 CPU kernel in 1.13)."""
    return lambda x: f(x.float()).to(torch.bfloat16) if x.dtype == torch.bfloat16 else f(x)


ACTIVATIONS = {
    "relu": lambda x: F.relu(x),
    "leaky_relu": lambda x: F.leaky_relu(x, 0.01),
    "elu": lambda x: F.elu(x),
    "gelu": lambda x: F.gelu(x),
    "silu": in_fp32_if_bf16(F.silu),
    "mish": in_fp32_if_bf16(F.mish),
    "softplus": lambda x: F.softplus(x),
    "hardswish": lambda x: F.hardswish(x),
    "sigmoid": lambda x: torch.sigmoid(x),
    "identity": lambda x: x,
}


class PSiLU(nn.Module):
    """RobArch's PSiLU (robustarch/utils.py): x * sigmoid(alpha * x)."""

    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1))

    def forward(self, x):
        return x * torch.sigmoid(self.alpha * x)


class PSSiLU(nn.Module):
    """RobArch's PSSiLU: x * (sigmoid(alpha * x) - beta) / (1 - beta + 1e-6),
    beta's value clamped to [0, 1] at every forward pass."""

    def __init__(self):
        super().__init__()
        self.alpha = nn.Parameter(torch.ones(1))
        self.beta = nn.Parameter(torch.full((1,), 1e-4))

    def forward(self, x):
        self.beta.data = torch.clamp(self.beta.data, 0., 1.)
        return x * (torch.sigmoid(self.alpha * x) - self.beta) / (1. - self.beta + 1e-6)


# The activations with parameters: a module per instance (arch/model's
# act), registered under the naming's activation names.
PARAMETRIC = {"prelu": lambda: nn.PReLU(), "psilu": PSiLU, "pssilu": PSSiLU}
ALL_ACTIVATIONS = tuple(ACTIVATIONS) + tuple(PARAMETRIC)
NORMS = ("batchnorm", "groupnorm", "instancenorm", "layernorm", "identity")

_CHOICES = {
    ("spec", "naming"): ("robarch", "torchvision", "robustbench-wrn", "robustbench-dm", "robustbench-dm-preact"),
    ("stem", "kind"): ("conv", "patchify"),
    ("stages[]", "block"): ("bottleneck", "basic"),
    ("block", "order"): ("post", "pre"),
    ("block", "shortcut_norm"): NORMS,
    ("block", "shortcut_kernel"): (1, 3),
    ("block", "shortcut_input"): ("preactivated", "raw"),
    ("block", "se_activation"): tuple(ACTIVATIONS),
    ("block", "se_width_from"): ("input", "output"),
    ("block", "se_position"): ("last", "first"),
    ("block", "padding"): ("symmetric", "asymmetric"),
}


def _field(section, key):
    """A field's path in messages: naming, block.padding, stages[].kernel."""
    return key if section == "spec" else section + "." + key


def _check(section, d):
    """Refuses unknown fields and values of one section of a spec."""
    where = "spec" if section == "spec" else "spec " + section
    if not isinstance(d, dict):
        raise ValueError("%s: want an object, got %r" % (where, d))
    unknown = sorted(set(d) - FIELDS[section])
    if unknown:
        raise ValueError("%s has %s, which bench/peer/specnet.py cannot build (it knows %s)"
                         % (where, ", ".join(unknown), ", ".join(sorted(FIELDS[section]))))
    for (sec, key), allowed in _CHOICES.items():
        if sec == section and key in d and d[key] not in allowed:
            raise ValueError("spec field %s = %r: bench/peer/specnet.py builds %s"
                             % (_field(section, key), d[key], list(allowed)))


def _need(section, d, key):
    if key not in d:
        raise ValueError("spec field %s is missing: specnet builds a spec with robarch's defaults filled in "
                         "(arch.Spec.WithDefaults)" % _field(section, key))
    return d[key]


def _need_list(section, d, key, allowed):
    v = _need(section, d, key)
    if len(v) != 3 or any(x not in allowed for x in v):
        raise ValueError("spec field %s = %r: want three of %s" % (_field(section, key), v, list(allowed)))
    return v


# --- state-dict names: arch/model/names.go ------------------------------------

class Names:
    """The state-dict names of one of robarch's namings. Block parts (conv,
    norm, se, proj_conv, proj_norm) are relative to the block's prefix;
    norm p and conv p are position p of a block (0, 1, 2)."""

    def __init__(self, stem_conv, stem_norm, block, conv, norm, se, proj_conv, proj_norm, final_norm, fc,
                 export_normalization, act, final_act):
        self.stem_conv, self.stem_norm, self.block, self.conv, self.norm = stem_conv, stem_norm, block, conv, norm
        self.se, self.proj_conv, self.proj_norm, self.final_norm, self.fc = se, proj_conv, proj_norm, final_norm, fc
        # act(p): a parametric activation of position p; final_act: the one
        # after final_norm.
        self.act, self.final_act = act, final_act
        # The input mean/std buffers: in the state dict for robarch's naming
        # only (RobArch's NormalizeByChannelMeanStd has them).
        self.normalization, self.export_normalization = "normalization", export_normalization


def names(naming, pre):
    """robarch's names for naming, in pre-activation order when pre."""
    if naming == "torchvision":  # torchvision.models.resnet
        return Names("conv1", "bn1", lambda s, b: "layer%d.%d" % (s + 1, b),
                     lambda p: "conv%d" % (p + 1), lambda p: "bn%d" % (p + 1), "se",
                     "downsample.0", "downsample.1", "bn_final", "fc", False, lambda p: "act%d" % (p + 1), "act_final")
    if naming == "robarch":  # robustarch/models/model.py's ConfigurableModel
        abc = "abc"
        return Names("stem.stem.stem.0", "stem.stem.stem.1",
                     lambda s, b: "stages.stage%d.stage%d-block%d" % (s + 1, s + 1, b),
                     lambda p: "F.%s.%d" % (abc[p], 2 if pre else 0), lambda p: "F.%s.%d" % (abc[p], 0 if pre else 1),
                     "F.se", "proj.0", "proj.1", "final_norm", "fc", True,
                     lambda p: "F.%s.1" % abc[p] if pre else ("last_activation" if p == 2 else "F.%s.2" % abc[p]),
                     "final_act")
    if naming == "robustbench-wrn":  # RobustBench's WideResNet
        return Names("conv1", "stem_bn", lambda s, b: "block%d.layer.%d" % (s + 1, b),
                     lambda p: "conv%d" % (p + 1), lambda p: "bn%d" % (p + 1), "se",
                     "convShortcut", "shortcut_norm", "bn1", "fc", False, lambda p: "relu%d" % (p + 1), "relu")
    if naming == "robustbench-dm":  # RobustBench's DMWideResNet, RaWRN
        return Names("init_conv", "init_bn", lambda s, b: "layer.%d.block.%d" % (s, b),
                     lambda p: "conv_%d" % p, lambda p: "batchnorm_%d" % p, "se",
                     "shortcut", "shortcut_norm", "batchnorm", "logits", False, lambda p: "relu_%d" % p, "relu")
    if naming == "robustbench-dm-preact":  # RobustBench's DMPreActResNet
        return Names("conv_2d", "init_bn", lambda s, b: "layer_%d.%d" % (s, b),
                     lambda p: "conv_2d_%d" % (p + 1), lambda p: "batchnorm_%d" % p, "se",
                     "shortcut", "shortcut_norm", "batchnorm", "logits", False, lambda p: "relu_%d" % p, "relu")
    raise ValueError("naming %r: bench/peer/specnet.py knows %s" % (naming, list(_CHOICES[("spec", "naming")])))


def _put(root, name, module):
    """Registers module under the dotted name below root, creating empty
    containers for the path, so that state-dict keys are exactly name.*."""
    *path, leaf = name.split(".")
    m = root
    for part in path:
        if part not in m._modules:
            m.add_module(part, nn.Module())
        m = m._modules[part]
    if leaf in m._modules:
        raise ValueError("two layers named %s" % name)
    m.add_module(leaf, module)
    return module


# --- layers ---------------------------------------------------------------

def act(name, x, fresh=False):
    """Applies activation name, a name of ACTIVATIONS or a parametric
    activation's module; ReLU runs in place on a fresh tensor (a norm's
    output or a sum), as torchvision's ResNets and robarch do."""
    if isinstance(name, nn.Module):  # in fp32 on a bf16 input, as robarch
        return in_fp32_if_bf16(name)(x)
    if name == "relu" and fresh:
        return F.relu(x, inplace=True)
    return ACTIVATIONS[name](x)


class LayerNorm2d(nn.LayerNorm):
    """Layer norm over the channels at each pixel (torchvision's LayerNorm2d);
    in fp32 on a bf16 input, as robarch (PyTorch 1.13's CPU layer norm
    refuses a bf16 input with fp32 weights, and autocast does not cast)."""

    def forward(self, x):
        if x.dtype == torch.bfloat16 and self.weight.dtype != x.dtype:
            return self.forward(x.float()).to(torch.bfloat16)
        x = F.layer_norm(x.permute(0, 2, 3, 1), self.normalized_shape, self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class GroupNorm(nn.GroupNorm):
    """nn.GroupNorm, in fp32 on a bf16 input as LayerNorm2d."""

    def forward(self, x):
        if x.dtype == torch.bfloat16 and self.weight.dtype != x.dtype:
            return super().forward(x.float()).to(torch.bfloat16)
        return super().forward(x)


class Conv2d(nn.Conv2d):
    """nn.Conv2d, optionally zero-padding its input by lo above and left and
    hi below and right first (arch's asymmetric padding; then padding 0)."""

    def __init__(self, cin, cout, k, stride=1, pad=0, dilation=1, groups=1, bias=False, pad_hi=None):
        asym = pad_hi is not None and pad_hi != pad
        super().__init__(cin, cout, k, stride=stride, padding=0 if asym else pad, dilation=dilation,
                         groups=groups, bias=bias)
        self.asym, self.lo, self.hi = asym, pad, pad_hi
        if not bias:  # torchvision's init; parameter counts are what matter here
            nn.init.kaiming_normal_(self.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x):
        if self.asym:
            x = F.pad(x, (self.lo, self.hi, self.lo, self.hi))
        return super().forward(x)


def norm(kind, channels, groups):
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    if kind == "groupnorm":
        return GroupNorm(math.gcd(groups, channels), channels)
    if kind == "instancenorm":
        return nn.InstanceNorm2d(channels, affine=True)
    if kind == "layernorm":
        return LayerNorm2d(channels)
    if kind == "identity":
        return nn.Identity()
    raise ValueError("norm %r: want one of %s" % (kind, list(NORMS)))


def activation(root, name, kind):
    """A parametric activation's module registered under name below root,
    or the name of a parameter-free one."""
    return _put(root, name, PARAMETRIC[kind]()) if kind in PARAMETRIC else kind


class SE(nn.Module):
    """Squeeze-and-excitation (torchvision's SqueezeExcitation): global
    average, 1x1 conv, activation, 1x1 conv, sigmoid, channel-wise scale."""

    def __init__(self, channels, squeeze, activation):
        super().__init__()
        self.fc1 = Conv2d(channels, squeeze, 1, bias=True)
        self.fc2 = Conv2d(squeeze, channels, 1, bias=True)
        self.activation = activation

    def forward(self, x):
        g = x.mean((2, 3), keepdim=True)
        g = torch.sigmoid(self.fc2(act(self.activation, self.fc1(g))))
        return x * g


class Block:
    """One residual block (arch/model's block): its layers live in the
    Net's module tree under robarch's names; this holds the forward pass."""

    def __init__(self, net, prefix, nm, b, blk):
        self.bottleneck, self.pre = b["kind"] == "bottleneck", blk["order"] == "pre"
        self.acts = list(blk["activations"])
        # The positions a block uses (arch.ActivationPositions), each its
        # own instance of a parametric activation, created after the norm
        # of its position (position 2 of a post-activation block last).
        used = (0, 1, 2) if self.bottleneck else ((0, 1) if self.pre else (0, 2))

        def new_act(p):
            if p in used:
                self.acts[p] = activation(net, prefix + "." + nm.act(p), self.acts[p])

        ngroups = blk["norm_groups"]
        cin, mid, cout, k, d = b["in"], b["mid"], b["out"], b["kernel"], b["dilation"]
        pad, stride, groups = b["pad"], b["stride"], b["groups"]
        if self.bottleneck:
            convs = [(cin, mid, 1, 1, 0, 1, 1, None), (mid, mid, k, stride, b["pad_lo"], d, groups, b["pad_hi"]),
                     (mid, cout, 1, 1, 0, 1, 1, None)]
            widths = [cin, mid, mid] if self.pre else [mid, mid, cout]
        else:
            convs = [(cin, mid, k, stride, b["pad_lo"], d, groups, b["pad_hi"]), (mid, cout, k, 1, pad, d, groups, None)]
            widths = [cin, mid] if self.pre else [mid, cout]

        def put(rel, m):
            return m if isinstance(m, nn.Identity) else _put(net, prefix + "." + rel, m)

        self.convs, self.norms = [], []
        for p, (i, o, kk, s, lo, dd, g, hi) in enumerate(convs):
            self.norms.append(put(nm.norm(p), norm(blk["norms"][p], widths[p], ngroups)))
            if self.pre or p < 2:
                new_act(p)
            self.convs.append(put(nm.conv(p), Conv2d(i, o, kk, s, lo, dd, g, pad_hi=hi)))
        self.se, self.se_first = None, False
        if b["se"] > 0:
            self.se_first = not self.bottleneck and blk["se_position"] == "first"
            self.se = put(nm.se, SE(mid if self.bottleneck else cout, b["se"], blk["se_activation"]))
        self.proj, self.raw = None, b["raw"]
        if b["proj"]:
            self.proj = put(nm.proj_conv, Conv2d(cin, cout, b["sk"], stride, b["sk_lo"], pad_hi=b["sk_hi"]))
            self.proj_norm = put(nm.proj_norm, norm(blk["shortcut_norm"], cout, ngroups))
        if not self.pre:
            new_act(2)

    def __call__(self, x):
        if self.pre:
            return self.forward_pre(x)
        h = x
        last = len(self.convs) - 1
        for p, (c, n) in enumerate(zip(self.convs, self.norms)):
            h = n(c(h))
            if p == 1 and self.bottleneck and self.se is not None:
                h = self.se(act(self.acts[p], h, fresh=True))
                continue
            if p < last:
                h = act(self.acts[p], h, fresh=True)
        if not self.bottleneck and self.se is not None:
            h = self.se(h)
        sc = self.proj_norm(self.proj(x)) if self.proj is not None else x
        return act(self.acts[2], h + sc, fresh=True)

    def forward_pre(self, x):
        a = act(self.acts[0], self.norms[0](x))
        sc = None
        if self.proj is not None:
            sc = self.proj_norm(self.proj(x if self.raw else a))
        h = self.convs[0](a)
        if self.se_first:
            h = self.se(h)
        for p in range(1, len(self.convs)):
            if p == 2 and self.se is not None:  # bottleneck: SE after the k x k conv
                h = self.se(h)
            h = self.convs[p](act(self.acts[p], self.norms[p](h)))
        if not self.bottleneck and self.se is not None and not self.se_first:
            h = self.se(h)
        return h + (x if sc is None else sc)


class Stage:
    def __init__(self, blocks, dense):
        self.blocks, self.dense = blocks, dense

    def __call__(self, x):
        if not self.dense:
            for b in self.blocks:
                x = b(x)
            return x
        # block i > 2 also receives up to `dense` earlier blocks' outputs
        # (features[-3-j]); so does the stage's output.
        features = [x]
        for i, b in enumerate(self.blocks):
            inp = features[-1]
            if i > 2:
                for j in range(self.dense):
                    if j + 4 > len(features):
                        break
                    inp = inp + features[-3 - j]
            features.append(b(inp))
        out = features[-1]
        for k in range(self.dense):
            if k + 4 > len(features):
                break
            out = out + features[-3 - k]
        return out


def blocks(spec):
    """The resolved blocks of each stage (arch.Resolve's BlockLayouts, the
    fields the builder needs), checking the spec's fields on the way."""
    blk, stem = spec["block"], spec["stem"]
    cin = _need("stem", stem, "width")
    se_ratio = blk.get("se_ratio", 0) or 0
    asym = _need("block", blk, "padding") == "asymmetric"
    sk = _need("block", blk, "shortcut_kernel")
    out = []
    for st in _need("spec", spec, "stages"):
        _check("stages[]", st)
        kind = _need("stages[]", st, "block")
        k, d = _need("stages[]", st, "kernel"), _need("stages[]", st, "dilation")
        stage = []
        for i in range(_need("stages[]", st, "depth")):
            cout = _need("stages[]", st, "width")
            stride = _need("stages[]", st, "stride") if i == 0 else 1
            pad = (k - 1) // 2 * d
            b = {"kind": kind, "in": cin, "out": cout, "kernel": k, "dilation": d, "stride": stride, "pad": pad,
                 "pad_lo": pad, "pad_hi": pad, "proj": cin != cout or stride != 1,
                 "raw": _need("block", blk, "shortcut_input") == "raw", "sk": sk, "sk_lo": 0, "sk_hi": 0}
            width_from = cout if _need("block", blk, "se_width_from") == "output" else cin
            b["se"] = round(se_ratio * width_from) if se_ratio > 0 else 0  # half to even, as Go's
            if asym and stride == 2:
                b["pad_lo"], b["pad_hi"] = 0, 1
            if sk == 3:
                b["sk_lo"], b["sk_hi"] = (0, 1) if asym and stride == 2 else (1, 1)
            if kind == "bottleneck":
                b["mid"] = round(cout * _need("stages[]", st, "bottleneck_multiplier"))
                gw = st.get("group_width", 0) or 0
                b["groups"] = b["mid"] // gw if gw else 1
            else:
                b["mid"], b["groups"] = cout, max(st.get("groups", 0) or 0, 1)
            stage.append(b)
            cin = cout
        out.append(stage)
    return out, cin


class Net(nn.Module):
    """The network of a robarch spec (see the module's doc)."""

    def __init__(self, spec):
        super().__init__()
        _check("spec", spec)
        inp, stem, blk = _need("spec", spec, "input"), _need("spec", spec, "stem"), _need("spec", spec, "block")
        for section, d in (("input", inp), ("stem", stem), ("block", blk)):
            _check(section, d)
        _need_list("block", blk, "activations", ALL_ACTIVATIONS)
        _need_list("block", blk, "norms", NORMS)
        for key in ("norm_groups", "shortcut_norm", "se_activation", "se_position"):
            _need("block", blk, key)
        self._pre = _need("block", blk, "order") == "pre"
        nm = names(_need("spec", spec, "naming"), self._pre)

        channels = _need("input", inp, "channels")

        # Layers by role, for the forward pass (a dict: nn.Module does not
        # register its values a second time); the module tree holds them
        # under robarch's names, which never begin with "_".
        self._parts = {}
        mean, std = inp.get("mean") or [], inp.get("std") or []
        self._normalize = bool(mean)
        if self._normalize:
            holder = _put(self, nm.normalization, nn.Module())
            holder.register_buffer("mean", torch.tensor(mean, dtype=torch.float32), persistent=nm.export_normalization)
            holder.register_buffer("std", torch.tensor(std, dtype=torch.float32), persistent=nm.export_normalization)
            self._parts["normalization"] = holder

        k = _need("stem", stem, "kernel")
        if _need("stem", stem, "kind") == "patchify":
            stride, pad, self._max_pool = k, 0, False
        else:
            stride, pad, self._max_pool = _need("stem", stem, "stride"), (k - 1) // 2, bool(stem.get("max_pool"))
        width = _need("stem", stem, "width")
        self._parts["stem"] = _put(self, nm.stem_conv, Conv2d(channels, width, k, stride, pad))
        if not self._pre:
            self._parts["stem_norm"] = _put(self, nm.stem_norm, nn.BatchNorm2d(width))
        layout, final_width = blocks(spec)
        dense = blk.get("dense_ratio", 0) or 0
        self._stages = [Stage([Block(self, nm.block(si, bi), nm, b, blk) for bi, b in enumerate(stage)], dense)
                        for si, stage in enumerate(layout)]
        if self._pre:
            n = norm(blk["norms"][0], final_width, blk["norm_groups"])
            self._parts["final_norm"] = n if isinstance(n, nn.Identity) else _put(self, nm.final_norm, n)
            self._parts["final_act"] = activation(self, nm.final_act, blk["activations"][0])
        self._parts["fc"] = _put(self, nm.fc, nn.Linear(final_width, _need("spec", spec, "classes")))

    def forward(self, x):
        p = self._parts
        if self._normalize:
            n = p["normalization"]
            x = (x - n.mean.view(1, -1, 1, 1)) / n.std.view(1, -1, 1, 1)
        x = p["stem"](x)
        if "stem_norm" in p:
            x = F.relu(p["stem_norm"](x), inplace=True)
        if self._max_pool:
            x = F.max_pool2d(x, 3, 2, 1)
        for s in self._stages:
            x = s(x)
        if "final_norm" in p:
            x = act(p["final_act"], p["final_norm"](x), fresh=True)
        return p["fc"](x.mean((2, 3)))


def fold_batch_norms(net):
    """Folds every batch norm that directly follows a convolution into that
    convolution, for evaluation only, as robarch's model.Net.Fold does (the
    same norms: after the stem, after each conv of a post-activation
    block, between two convs of a pre-activation block unless SE sits
    between them, after a projection), with PyTorch's own
    torch.nn.utils.fusion.fuse_conv_bn_weights, which a PyTorch user can
    call too; the norm becomes an identity. Returns how many it folded."""
    from torch.nn.utils.fusion import fuse_conv_bn_weights

    folded = 0

    def fold(conv, n):
        nonlocal folded
        if not isinstance(n, nn.BatchNorm2d):
            return n
        conv.weight, conv.bias = fuse_conv_bn_weights(conv.weight, conv.bias, n.running_mean, n.running_var,
                                                      n.eps, n.weight, n.bias)
        folded += 1
        return nn.Identity()

    p = net._parts
    if "stem_norm" in p:
        p["stem_norm"] = fold(p["stem"], p["stem_norm"])
    for stage in net._stages:
        for b in stage.blocks:
            if b.pre:
                for i in range(1, len(b.convs)):
                    if (i == 2 and b.se is not None) or (i == 1 and b.se_first):
                        continue
                    b.norms[i] = fold(b.convs[i - 1], b.norms[i])
            else:
                for i, c in enumerate(b.convs):
                    b.norms[i] = fold(c, b.norms[i])
            if b.proj is not None:
                b.proj_norm = fold(b.proj, b.proj_norm)
    return folded


def count_params(net):
    return sum(p.numel() for p in net.parameters())


def count_macs(net, shape):
    """Multiply-accumulates of the convolutions and linear layers for one
    image (robarch's convention), counted on a forward pass."""
    total = [0]

    def hook(m, inp, out):
        if isinstance(m, nn.Conv2d):
            total[0] += out[0].numel() * m.weight.shape[1] * m.weight.shape[2] * m.weight.shape[3]
        else:
            total[0] += m.in_features * m.out_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    net.eval()
    with torch.no_grad():
        net(torch.rand((1,) + tuple(shape)))
    for h in handles:
        h.remove()
    return total[0]


# --- comparing with robarch's outputs ---------------------------------------

def input_grad(model, x, train):
    """Gradient with respect to x of sum(logits * c), c[i, j] = ((7i + 3j) mod 5 - 2) / 2
    (arch/model's gradCoef), in training or evaluation mode; leaves the model
    in evaluation mode."""
    model.train(train)
    x = x.clone().requires_grad_(True)
    z = model(x)
    i = torch.arange(z.shape[0]).view(-1, 1)
    j = torch.arange(z.shape[1]).view(1, -1)
    c = ((7 * i + 3 * j) % 5 - 2).float() / 2
    (g,) = torch.autograd.grad((z * c).sum(), [x])
    model.eval()
    return g


def compare(model, input_path, logits_path):
    """Runs the model (weights loaded) on INPUT's x in eval mode against
    LOGITS' logits: {"max_abs_diff", "max_abs_logit"}, and where LOGITS holds
    grad_eval / grad_train, max_abs_{grad,train_grad}{,_diff} for the input
    gradients (input_grad) in eval and then training mode."""
    model.eval()
    x = load_safetensors(input_path)["x"]
    ref = load_safetensors(logits_path)
    with torch.no_grad():
        got = model(x)
    want = ref["logits"]
    if got.shape != want.shape:
        raise ValueError("logits of shape %s, %s holds %s" % (tuple(got.shape), logits_path, tuple(want.shape)))
    res = {"max_abs_diff": (got - want).abs().max().item(), "max_abs_logit": want.abs().max().item()}
    for mode, key, train in (("grad", "grad_eval", False), ("train_grad", "grad_train", True)):
        if key in ref:
            g = input_grad(model, x, train)
            res["max_abs_%s_diff" % mode] = (g - ref[key]).abs().max().item()
            res["max_abs_%s" % mode] = ref[key].abs().max().item()
    return res


def main(argv):
    if len(argv) == 6 and argv[1] == "check":
        with open(argv[2]) as f:
            spec = json.load(f)
        torch.manual_seed(0)
        model = Net(spec)
        weights = load_safetensors(argv[3])
        model.load_state_dict(weights, strict=True)
        res = compare(model, argv[4], argv[5])
        # Then folded (fold_batch_norms): the same eval-mode logits. The
        # weights again: compare's training-mode pass moved the running
        # statistics.
        model.load_state_dict(weights, strict=True)
        model.eval()
        with torch.no_grad():
            res["folded_norms"] = fold_batch_norms(model)
            got = model(load_safetensors(argv[4])["x"])
        res["max_abs_folded_diff"] = (got - load_safetensors(argv[5])["logits"]).abs().max().item()
        print(json.dumps(res))
        return 0
    sys.stderr.write(__doc__)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
