"""robarch bench's image-folder loader peer: torchvision's ImageFolder
(PIL decode) and torch's DataLoader with the same workers, batch size and
transforms as robarch's loader. Run with Debian's /usr/bin/python3
(python3-torch, python3-torchvision). robarch drives it over stdin/stdout,
one JSON object per line each way:

  (start)                        -> {"ok": true, "torch": V, "torchvision": V}
  {"cmd": "setup", "dir": D, "transform": "train"|"eval", "size": S,
   "batch": B, "workers": W, "threads": T, "seed": N}
                                 -> {"ok": true, "images": COUNT}
  {"cmd": "epoch"}               -> {"ok": true, "seconds": S, "images": N,
                                     "rss_bytes": R, "workers_rss_bytes": WR}
  {"cmd": "quit"}

Transforms (torchvision's own, the ImageNet recipe):
  train  RandomResizedCrop(S) (bilinear, antialiased), RandomHorizontalFlip,
         ToTensor, Normalize(ImageNet mean, std)
  eval   Resize(round(S/0.875)), CenterCrop(S), ToTensor, Normalize
The DataLoader shuffles for train, keeps its workers between epochs
(persistent_workers) and drops no batch. An epoch's time runs from asking
for the first batch to receiving the last one, the batches' float tensors
touched on the main process as a training loop would receive them.
"""

import json
import os
import sys
import time


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


try:
    import torch
    import torchvision
    from torchvision import datasets, transforms
except Exception as e:  # noqa: BLE001 - report any import failure
    reply({"ok": False, "missing": "torchvision", "error": str(e)})
    sys.exit(0)

MEAN, STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def rss_of(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def children_rss():
    me, total = os.getpid(), 0
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        if ppid == me:
            total += rss_of(name)
    return total


def build(cmd):
    size = cmd["size"]
    norm = transforms.Normalize(MEAN, STD)
    if cmd["transform"] == "train":
        tf = transforms.Compose([transforms.RandomResizedCrop(size), transforms.RandomHorizontalFlip(),
                                 transforms.ToTensor(), norm])
    elif cmd["transform"] == "eval":
        tf = transforms.Compose([transforms.Resize(round(size / 0.875)), transforms.CenterCrop(size),
                                 transforms.ToTensor(), norm])
    else:
        raise ValueError(f"transform {cmd['transform']!r}: allowed values are train, eval")
    torch.set_num_threads(max(1, cmd["threads"]))
    torch.manual_seed(cmd["seed"])
    ds = datasets.ImageFolder(cmd["dir"], transform=tf)
    workers = cmd["workers"]
    loader = torch.utils.data.DataLoader(ds, batch_size=cmd["batch"], shuffle=cmd["transform"] == "train",
                                         num_workers=workers, persistent_workers=workers > 0)
    return ds, loader


def main():
    reply({"ok": True, "torch": torch.__version__, "torchvision": torchvision.__version__})
    loader = None
    for line in sys.stdin:
        cmd = json.loads(line)
        try:
            if cmd["cmd"] == "setup":
                ds, loader = build(cmd)
                reply({"ok": True, "images": len(ds)})
            elif cmd["cmd"] == "epoch":
                n, start = 0, time.perf_counter()
                for x, y in loader:
                    n += x.shape[0]
                    del x, y
                secs = time.perf_counter() - start
                reply({"ok": True, "seconds": secs, "images": n, "rss_bytes": rss_of(os.getpid()),
                       "workers_rss_bytes": children_rss()})
            elif cmd["cmd"] == "quit":
                break
            else:
                reply({"ok": False, "error": f"unknown command {cmd['cmd']!r}"})
        except Exception as e:  # noqa: BLE001 - every failure goes back to robarch
            reply({"ok": False, "error": f"{type(e).__name__}: {e}"})
    loader = None


if __name__ == "__main__":
    main()
