"""Writes the torch.save fixtures of arch/model's ReadPyTorch tests.

Run with Debian's PyTorch 1.13 (/usr/bin/python3 make_fixtures.py) from
this directory; the tests read the committed files and need no Python.

- dtypes.pt, dtypes-legacy.pt: one state dict in both torch.save formats,
  every dtype ReadPyTorch reads, a 0-dim tensor, a transposed view, a view
  at an offset into another tensor's storage, a Parameter and an empty
  tensor. Values are arange-based so the test can recompute them.
- os-system.pt: a state dict whose pickle also calls os.system("true");
  torch.load(weights_only=True) refuses it.
"""
import io
import zipfile
from collections import OrderedDict

import torch


def state():
    base = torch.arange(6, dtype=torch.float32).reshape(2, 3)
    sd = OrderedDict()
    sd["f32"] = base
    for name, dt in [("f64", torch.float64), ("f16", torch.float16), ("bf16", torch.bfloat16),
                     ("i64", torch.int64), ("i32", torch.int32), ("i16", torch.int16),
                     ("i8", torch.int8), ("u8", torch.uint8)]:
        sd[name] = (torch.arange(4) - (0 if name == "u8" else 1)).to(dt)
    sd["bool"] = torch.tensor([True, False, True])
    sd["scalar"] = torch.tensor(7.5)
    sd["transposed"] = base.t()                # stride (1, 3)
    sd["view"] = base.view(-1)[3:]             # offset 3 into f32's storage
    sd["param"] = torch.nn.Parameter(torch.full((2,), 0.25))
    sd["empty"] = torch.zeros(0, 4)
    sd["bn.num_batches_tracked"] = torch.tensor(3)
    return sd


class System:
    """Pickles as a call of os.system (posix.system on Linux, renamed below)."""

    def __reduce__(self):
        import os
        return (os.system, ("true",))


def main():
    sd = state()
    torch.save(sd, "dtypes.pt")
    torch.save(sd, "dtypes-legacy.pt", _use_new_zipfile_serialization=False)

    buf = io.BytesIO()
    torch.save({"w": torch.ones(2), "x": System()}, buf)
    src = zipfile.ZipFile(io.BytesIO(buf.getvalue()))
    with zipfile.ZipFile("os-system.pt", "w", zipfile.ZIP_STORED) as dst:
        for info in src.infolist():
            data = src.read(info.filename)
            if info.filename.endswith("/data.pkl"):
                assert b"cposix\nsystem\n" in data
                data = data.replace(b"cposix\nsystem\n", b"cos\nsystem\n")
            dst.writestr(info.filename, data)

    for f in ["dtypes.pt", "dtypes-legacy.pt"]:
        back = torch.load(f, weights_only=True)
        assert all(torch.equal(back[k], sd[k]) for k in sd), f
    try:
        torch.load("os-system.pt", weights_only=True)
        raise SystemExit("os-system.pt loaded with weights_only=True")
    except Exception as e:  # noqa: BLE001 - torch raises UnpicklingError
        print("weights_only refuses os-system.pt:", str(e).splitlines()[-1])


if __name__ == "__main__":
    main()
