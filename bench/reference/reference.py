#!/usr/bin/python3
"""PyTorch side of robarch's attack reference comparison (see
docs/attacks-reference.md; run.sh runs both sides).

Run with Debian's /usr/bin/python3 (torch 1.13 on the same libtorch as
robarch). The official AutoAttack code is not part of robarch: pass a
checkout of github.com/fra31/auto-attack as AUTOATTACK_DIR.

  reference.py attacks AUTOATTACK_DIR OUT   reference accuracies -> OUT/py_attacks.json
  reference.py speed OUT [TAG]              eager PGD-10 / APGD-CE images/s -> OUT/py_speed[_TAG].json
  reference.py table OUT                    the markdown tables of the doc from OUT/*.json

OUT holds what `go run ./bench/reference -mode prepare` wrote: points.safetensors
(x, y), weights.safetensors (the model's state dict) and spec.json. The
network is built from spec.json by bench/peer/specnet.py (robarch's layers
and state-dict names) and loads the weights with strict=True.
"""

import json
import os
import sys
import time

import torch

# robarch's Python builder of a spec and its safetensors reader, and the
# attacks (PGD op for op as robarch's attack.PGD, APGD-CE written from the
# paper), shared with robarch bench's PyTorch peer.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peer"))
from attacks import apgd_ce, pgd  # noqa: E402
from specnet import Net, load_safetensors  # noqa: E402

THREADS = int(os.environ.get("THREADS", "2"))
torch.set_num_threads(THREADS)


def load(out):
    with open(os.path.join(out, "spec.json")) as f:
        spec = json.load(f)
    model = Net(spec)
    model.load_state_dict(load_safetensors(os.path.join(out, "weights.safetensors")), strict=True)
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    pts = load_safetensors(os.path.join(out, "points.safetensors"))
    return model, pts["x"], pts["y"]


def correct(model, x, y, bs=500):
    with torch.no_grad():
        return torch.cat([model(x[i:i + bs]).argmax(1) == y[i:i + bs] for i in range(0, len(x), bs)])


# --- the reference --------------------------------------------------------

class Capture:
    """A logger for AutoAttack that keeps its lines."""

    def __init__(self):
        self.lines = []

    def log(self, s):
        print(s, flush=True)
        self.lines.append(s)


def attacks(autoattack_dir, out):
    sys.path.insert(0, autoattack_dir)
    from autoattack import AutoAttack

    with open(os.path.join(out, "go_attacks.json")) as f:
        go = json.load(f)
    model, x, y = load(out)
    eps, norm, seed, bs = go["eps"], go["norm"], go["seed"], go.get("bs", 250)
    clean = correct(model, x, y)
    res = {"n": len(x), "eps": eps, "norm": norm, "seed": seed, "clean_acc": clean.float().mean().item(),
           "pgd": {}, "pgd_vs_go": {}, "individual": {}, "aa_stages": [], "seconds": {}, "robust": {}, "threads": THREADS,
           "torch": torch.__version__}
    print("points %d, clean accuracy %.4f" % (len(x), res["clean_acc"]), flush=True)

    for name in go["pgd"]:
        steps = int(name[3:])
        t0 = time.time()
        adv = torch.cat([pgd(model, x[i:i + bs], y[i:i + bs], eps, steps, seed=seed) for i in range(0, len(x), bs)])
        res["seconds"][name] = time.time() - t0
        rob = correct(model, adv, y) & clean
        res["pgd"][name] = rob.float().mean().item()
        res["robust"][name] = rob.tolist()
        ours = load_safetensors(os.path.join(out, "go_%s.safetensors" % name))["adv"]
        diff = (ours - adv).abs()
        res["pgd_vs_go"][name] = {"max_abs_diff": diff.max().item(), "coords_differing": (diff > 1e-6).float().mean().item(),
                                  "points_differing": (diff.flatten(1).amax(1) > 1e-6).float().mean().item()}
        print(name, res["pgd"][name], res["pgd_vs_go"][name], flush=True)

    if os.environ.get("SKIP_AA"):
        with open(os.path.join(out, "py_attacks.json"), "w") as f:
            json.dump(res, f, indent=2)
        return
    aa = AutoAttack(model, norm=norm, eps=eps, version="standard", seed=seed, device="cpu")
    aa.logger = Capture()
    t0 = time.time()
    individual = aa.run_standard_evaluation_individual(x, y, bs=bs)
    res["seconds"]["individual"] = time.time() - t0
    for name, adv in individual.items():
        rob = correct(model, adv, y) & clean
        res["individual"][name] = rob.float().mean().item()
        res["robust"][name] = rob.tolist()
        print("%s alone: %.4f" % (name, res["individual"][name]), flush=True)

    aa = AutoAttack(model, norm=norm, eps=eps, version="standard", seed=seed, device="cpu")
    aa.logger = Capture()
    t0 = time.time()
    adv = aa.run_standard_evaluation(x, y, bs=bs)
    res["seconds"]["aa"] = time.time() - t0
    rob = correct(model, adv, y) & clean
    res["aa"] = rob.float().mean().item()
    res["robust"]["aa"] = rob.tolist()
    for line in aa.logger.lines:
        if line.startswith("robust accuracy after "):
            name, pct = line[len("robust accuracy after "):].split(":")[:2]
            res["aa_stages"].append({"attack": name.strip().lower(), "robust_acc": float(pct.split("%")[0]) / 100})
    with open(os.path.join(out, "py_attacks.json"), "w") as f:
        json.dump(res, f, indent=2)


def speed(out, tag=""):
    """Images per second of eager PGD-10 and APGD-CE on the first `batch`
    points, one value per repetition after a warm-up run."""
    with open(os.path.join(out, "go_attacks.json")) as f:
        go = json.load(f)
    model, x, y = load(out)
    batch, reps = int(os.environ.get("SPEED_BATCH", "128")), int(os.environ.get("SPEED_REPS", "3"))
    xb, yb = x[:batch], y[:batch]
    eps, seed = go["eps"], go["seed"]
    res = {"batch": batch, "threads": THREADS}
    runs = {"pgd10": lambda: pgd(model, xb, yb, eps, 10, seed=seed), "apgd-ce": lambda: apgd_ce(model, xb, yb, eps, 100, seed=seed)}
    aa_dir = os.environ.get("AUTOATTACK_DIR")
    if aa_dir:
        sys.path.insert(0, aa_dir)
        from autoattack.autopgd_base import APGDAttack
        ref = APGDAttack(model, n_iter=100, norm="Linf", n_restarts=1, eps=eps, seed=seed, loss="ce", device="cpu")
        runs["apgd-ce (autoattack's code)"] = lambda: ref.perturb(xb, yb)
    for name, run in runs.items():
        rates = []
        for rep in range(reps + 1):
            t0 = time.time()
            run()
            secs = time.time() - t0
            if rep > 0:
                rates.append(batch / secs)
        res[name] = rates
        print(name, ["%.1f" % r for r in rates], flush=True)
    suffix = "_" + tag if tag else ""
    with open(os.path.join(out, "py_speed%s.json" % suffix), "w") as f:
        json.dump(res, f, indent=2)


def table(out):
    def read(name):
        with open(os.path.join(out, name)) as f:
            return json.load(f)

    go, py = read("go_attacks.json"), read("py_attacks.json")
    n = go["n"]
    pct = lambda v: "%.1f" % (100 * v)

    def agree(name):
        ra, rb = go["robust"].get(name), py["robust"].get(name)
        if ra is None or rb is None:
            return ""
        return "%d" % sum(1 for u, v in zip(ra, rb) if u != v)

    rows = [("clean", go["clean_acc"], py["clean_acc"], "")]
    for name in go["pgd"]:
        rows.append((name.upper().replace("PGD", "PGD-"), go["pgd"][name], py["pgd"][name], agree(name)))
    for name in ["apgd-ce", "apgd-t", "fab-t", "square"]:
        if name in go["individual"] and name in py["individual"]:
            rows.append((name.upper() + " alone", go["individual"][name], py["individual"][name], agree(name)))
    go_st = {s["attack"]: s["robust_acc"] for s in go["aa_stages"]}
    for s in py["aa_stages"]:
        if s["attack"] in go_st:
            rows.append(("AutoAttack after " + s["attack"].upper(), go_st[s["attack"]], s["robust_acc"], ""))
    rows.append(("**AutoAttack (standard)**", go["aa"], py["aa"], agree("aa")))
    lines = ["| robust accuracy (%%), n = %d | robarch | AutoAttack / PyTorch | difference (pp) | points classified differently |" % n,
             "|---|---:|---:|---:|---:|"]
    for label, a, b, d in rows:
        lines.append("| %s | %s | %s | %+.1f | %s |" % (label, pct(a), pct(b), 100 * (a - b), d))
    ev = go.get("evaluate")
    if ev:
        lines.append("| AutoAttack via attack.Evaluate (batch by batch) | %s | | | |" % pct(ev["robust_acc"]))
    lines.append("")
    lines.append("| PGD adversarial examples, robarch vs PyTorch | max abs difference | coordinates differing (> 1e-6) | points differing |")
    lines.append("|---|---:|---:|---:|")
    for name, d in py["pgd_vs_go"].items():
        lines.append("| %s | %.3g | %.4f%% | %.2f%% |" % (name.upper().replace("PGD", "PGD-"), d["max_abs_diff"], 100 * d["coords_differing"], 100 * d["points_differing"]))
    lines.append("")
    lines.append("| attack time (s) | robarch | AutoAttack / PyTorch |")
    lines.append("|---|---:|---:|")
    for name in list(go["pgd"]) + ["aa"]:
        lines.append("| %s | %.0f | %.0f |" % (name, go["seconds"][name], py["seconds"][name]))
    ind = sum(go["seconds"].get(k, 0) for k in ["apgd-ce", "apgd-t", "fab-t", "square"])
    lines.append("| the four attacks alone | %.0f | %.0f |" % (ind, py["seconds"]["individual"]))

    speeds = sorted(f for f in os.listdir(out) if f.startswith(("go_speed", "py_speed")))
    if speeds:
        lines.append("")
        lines.append("| throughput (images/s, median of runs) | robarch (Go) | PyTorch eager | ratio |")
        lines.append("|---|---:|---:|---:|")
        gos = [read(f) for f in speeds if f.startswith("go_")]
        pys = [read(f) for f in speeds if f.startswith("py_")]
        med = lambda v: sorted(v)[len(v) // 2]
        tuned = " (GOGC=off, GOMEMLIMIT=1GiB)"
        for name, label in [("pgd10", "PGD-10"), ("apgd-ce", "APGD-CE (100 iterations)")]:
            p = med([r for s in pys for r in s[name]])
            for gc, gclabel in [("", "Go's default GC"), (tuned, "GOGC=off, GOMEMLIMIT=1GiB")]:
                rates = [r for s in gos for r in s.get(name + gc, [])]
                if rates:
                    g = med(rates)
                    lines.append("| %s, batch %d, %s | %.1f | %.1f | %.2f× |" % (label, gos[0]["batch"], gclabel, g, p, g / p))
        refs = [r for s in pys for r in s.get("apgd-ce (autoattack's code)", [])]
        if refs:
            for gc, gclabel in [("", "Go's default GC"), (tuned, "GOGC=off, GOMEMLIMIT=1GiB")]:
                rates = [r for s in gos for r in s.get("apgd-ce" + gc, [])]
                if rates:
                    g = med(rates)
                    lines.append("| APGD-CE vs AutoAttack's own APGDAttack, %s | %.1f | %.1f | %.2f× |" % (gclabel, g, med(refs), g / med(refs)))
    print("\n".join(lines))


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    cmd = sys.argv[1]
    if cmd == "attacks" and len(sys.argv) == 4:
        attacks(sys.argv[2], sys.argv[3])
    elif cmd == "speed":
        speed(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else "")
    elif cmd == "table":
        table(sys.argv[2])
    else:
        sys.exit(__doc__)
