"""robarch bench's PyTorch peer: the same workloads in PyTorch eager.

Run with Debian's /usr/bin/python3 (python3-torch, the same libtorch as
robarch). robarch writes this file from its binary and drives it over
stdin/stdout, one JSON object per line each way:

  (start)                       -> {"ok": true, "torch": VERSION}
  {"cmd": "setup", "spec": SPEC, "params": N, "macs": M, "threads": T,
   "batch": B, "eps": E, "lr": LR, "seed": S, "memory_format": F,
   "precision": P, "device": D, "fold": FOLD}
                                -> {"ok": true, "params": N, "macs": M, "threads": T}
  {"cmd": "prepare", "workload": W, "warmup": K}
                                -> {"ok": true, "folded": N}   (builds a fresh model, K warm-up steps)
  {"cmd": "step"}               -> {"ok": true, "seconds": S, "cpu_seconds": C, "images": B}
  {"cmd": "memory"}             -> {"ok": true, "rss_bytes": R, "peak_rss_bytes": P}
  {"cmd": "quit"}

Any failure answers {"ok": false, "error": MESSAGE}. SPEC is an arch.Spec
with defaults filled in (robarch's JSON field names); the network is built
from it by specnet.py (robarch writes it next to this file), independently
of robarch's Go code: the same layers and forward pass, under robarch's
state-dict names (arch/model's TestSpecNetMatchesRobarch checks its logits
against robarch's on the same weights). Setup fails unless its parameter
count equals N (arch.Params) and its multiply-accumulates per image equal M
(arch.MACs), so both sides do the same work; a spec specnet cannot build
fails setup with its reason.

Workloads (each step is one batch):
  train    forward (train mode), cross-entropy, backward, SGD step
  fgsm-rs  FGSM from a uniform random start (train mode, step 1.25 eps),
           then a training step on the perturbed batch (Wong et al. 2020)
  pgd10    10-step L-inf PGD, random start, step 2.5 eps/10, eval mode
  apgd-ce  APGD-CE, 100 iterations, eval mode, on the samples classified
           correctly (labels are the model's own predictions, so all)
  infer    eval-mode forward under torch.no_grad()
memory_format "channels-last" converts the network and the batches with
PyTorch's own .to/.contiguous(memory_format=torch.channels_last).
precision "bf16" runs every forward pass of the network under
torch.autocast(device, dtype=torch.bfloat16) and hands back fp32 logits, as
robarch does (losses, perturbations and backward passes outside autocast);
"fp16" (CUDA only) uses float16 and torch.cuda.amp.GradScaler for the
training steps. fold true folds, for pgd10, apgd-ce and infer, every batch
norm that directly follows a convolution into it (specnet.fold_batch_norms,
PyTorch's torch.nn.utils.fusion: what robarch's evaluations do) and prepare
answers how many. device "cuda:N" runs everything there and synchronises
before each step's time is taken.
SGD: momentum 0.9, weight decay 5e-4 on parameters of 2+ dimensions only,
as robarch's optimiser. Attack gradients come from torch.autograd.grad with
respect to the input only.
"""

import json
import resource
import sys
import time


def reply(obj):
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


try:
    import torch
    import torch.nn as nn
    import torch.nn.functional as F
except ImportError as e:  # robarch turns this into advice to install python3-torch
    reply({"ok": False, "missing": "torch", "error": "cannot import torch with %s: %s" % (sys.executable, e)})
    sys.exit(3)


# The network, built from robarch's spec by the shared builder that robarch
# writes next to this file.
from specnet import Net, count_macs, count_params, fold_batch_norms  # noqa: E402


# The attacks (PGD, APGD-CE), shared with bench/reference/reference.py;
# robarch writes attacks.py next to this file.
from attacks import apgd_ce, input_grad, pgd  # noqa: E402


# --- workloads -----------------------------------------------------------------

class Autocast(nn.Module):
    """The network's forward pass under autocast, logits in fp32."""

    def __init__(self, net, device_type, dtype):
        super().__init__()
        self.net, self.device_type, self.dtype = net, device_type, dtype

    def forward(self, x):
        with torch.autocast(self.device_type, dtype=self.dtype):
            z = self.net(x)
        return z.float()


# The workloads that run the network in evaluation mode (bench's
# Workload.evaluates): attacks and inference, foldable.
EVAL_WORKLOADS = ("pgd10", "apgd-ce", "infer")


class Bench:
    def __init__(self, msg):
        self.spec = msg["spec"]
        self.batch = msg["batch"]
        self.eps = msg["eps"]
        self.lr = msg["lr"]
        self.seed = msg["seed"]
        fmt = msg.get("memory_format") or "contiguous"
        if fmt not in ("contiguous", "channels-last"):
            raise ValueError("memory_format %r: the peer runs contiguous or channels-last" % fmt)
        self.channels_last = fmt == "channels-last"
        self.fold = bool(msg.get("fold"))
        self.precision = msg.get("precision") or "fp32"
        self.device = torch.device(msg.get("device") or "cpu")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError("precision %r: the peer runs fp32, bf16 or (CUDA) fp16" % self.precision)
        if self.precision == "fp16" and self.device.type != "cuda":
            raise ValueError("precision fp16 needs a CUDA device")
        torch.set_num_threads(msg["threads"])
        torch.manual_seed(self.seed)
        net = Net(self.spec)
        self.params = count_params(net)
        if self.params != msg["params"]:
            raise ValueError("the peer's network has %d parameters, arch.Params says %d: the builders disagree"
                             % (self.params, msg["params"]))
        inp = self.spec["input"]
        self.macs = count_macs(net, (inp["channels"], inp["height"], inp["width"]))
        if "macs" in msg and self.macs != msg["macs"]:
            raise ValueError("the peer's network does %d MACs per image, arch.MACs says %d: the builders disagree"
                             % (self.macs, msg["macs"]))
        self.shape = (self.batch, inp["channels"], inp["height"], inp["width"])
        self.classes = self.spec["classes"]
        self.step_fn = None

    def prepare(self, workload, warmup):
        torch.manual_seed(self.seed)
        self.model = Net(self.spec)
        self.batches = [(torch.rand(self.shape).to(self.device),
                         torch.randint(0, self.classes, (self.batch,)).to(self.device))
                        for _ in range(4)]
        self.model = self.model.to(self.device)
        self.folded = 0
        if self.fold and workload in EVAL_WORKLOADS:
            self.model.eval()
            with torch.no_grad():
                self.folded = fold_batch_norms(self.model)
        if self.channels_last:  # before the optimiser takes the parameters
            self.model = self.model.to(memory_format=torch.channels_last)
            self.batches = [(x.contiguous(memory_format=torch.channels_last), y) for x, y in self.batches]
        self.scaler = None
        if self.precision != "fp32":
            dtype = torch.bfloat16 if self.precision == "bf16" else torch.float16
            self.model = Autocast(self.model, self.device.type, dtype)
            if self.precision == "fp16":
                self.scaler = torch.cuda.amp.GradScaler()
        self.i = 0
        if workload in ("train", "fgsm-rs"):
            decay = [p for p in self.model.parameters() if p.dim() >= 2]
            rest = [p for p in self.model.parameters() if p.dim() < 2]
            self.opt = torch.optim.SGD([{"params": decay, "weight_decay": 5e-4},
                                        {"params": rest, "weight_decay": 0}], lr=self.lr, momentum=0.9)
            self.model.train()
            self.step_fn = self.train_step if workload == "train" else self.fgsm_rs_step
        elif workload in EVAL_WORKLOADS:
            self.model.eval()
            if workload == "apgd-ce":  # attack every sample: label by prediction
                with torch.no_grad():
                    self.batches = [(x, self.model(x).argmax(1)) for x, _ in self.batches]
            self.step_fn = {"pgd10": self.pgd10_step, "apgd-ce": self.apgd_step, "infer": self.infer_step}[workload]
        else:
            raise ValueError("workload %r: the peer runs train, fgsm-rs, pgd10, apgd-ce and infer" % workload)
        for _ in range(warmup):
            self.step()

    def next_batch(self):
        b = self.batches[self.i % len(self.batches)]
        self.i += 1
        return b

    def step(self):
        """Runs one step; returns its wall and CPU (all threads) seconds."""
        x, y = self.next_batch()
        cpu, start = time.process_time(), time.perf_counter()
        self.step_fn(x, y)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter() - start, time.process_time() - cpu

    def profile(self, steps):
        """Runs steps more steps under libtorch's (legacy) operator profiler,
        the one robarch bench --profile records its own steps with, in the
        same way: one record per step, after one thrown away (see
        bench/profile.go for why); returns every operator's calls and self
        and total microseconds, summed, and the steps' wall seconds."""
        totals, sec = {}, 0.0
        for i in range(-1, steps):
            with torch.autograd.profiler.profile(use_kineto=False) as prof:
                took, _ = self.step()
            if i < 0:
                continue
            sec += took
            for e in prof.key_averages():
                t = totals.setdefault(e.key, {"name": e.key, "calls": 0, "self_us": 0.0, "total_us": 0.0})
                t["calls"] += e.count
                t["self_us"] += e.self_cpu_time_total
                t["total_us"] += e.cpu_time_total
            del prof
        return list(totals.values()), sec

    def update(self, x, y):
        logits = self.model(x)
        loss = F.cross_entropy(logits, y)
        v = loss.item()
        with torch.no_grad():
            correct = (logits.argmax(1) == y).sum().item()
        self.opt.zero_grad(set_to_none=True)
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            return v, correct
        loss.backward()
        self.opt.step()
        return v, correct

    def train_step(self, x, y):
        self.update(x, y)

    def fgsm_rs_step(self, x, y):
        eps = self.eps
        delta = (torch.rand_like(x) * (2 * eps) - eps)
        delta = (x + delta).clamp(0, 1) - x
        _, _, g = input_grad(self.model, x + delta, y)  # train mode, as Fast-AT
        delta = (x + (delta + 1.25 * eps * g.sign()).clamp(-eps, eps)).clamp(0, 1) - x
        self.update((x + delta).clamp(0, 1), y)

    def pgd10_step(self, x, y):
        pgd(self.model, x, y, self.eps, 10)

    def apgd_step(self, x, y):
        apgd_ce(self.model, x, y, self.eps, seed=self.seed)  # robarch's attacks reseed per call

    def infer_step(self, x, y):
        with torch.no_grad():
            self.model(x)


def memory():
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB
    rss = 0
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) * 1024
    return {"rss_bytes": rss, "peak_rss_bytes": peak}


def main():
    reply({"ok": True, "torch": torch.__version__, "python": sys.executable})
    bench = None
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            cmd = msg.get("cmd")
            if cmd == "quit":
                return 0
            if cmd == "setup":
                bench = Bench(msg)
                reply({"ok": True, "params": bench.params, "macs": bench.macs, "threads": torch.get_num_threads()})
            elif bench is None:
                raise ValueError("command %r before setup" % cmd)
            elif cmd == "prepare":
                bench.prepare(msg["workload"], msg.get("warmup", 0))
                reply({"ok": True, "folded": bench.folded})
            elif cmd == "step":
                sec, cpu = bench.step()
                reply({"ok": True, "seconds": sec, "cpu_seconds": cpu, "images": bench.batch})
            elif cmd == "profile":
                ops, sec = bench.profile(msg["steps"])
                reply({"ok": True, "ops": ops, "seconds": sec})
            elif cmd == "memory":
                reply(dict(ok=True, **memory()))
            else:
                raise ValueError("unknown command %r" % cmd)
        except Exception as e:  # report, keep serving: robarch decides
            reply({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    return 0


if __name__ == "__main__":
    sys.exit(main())
