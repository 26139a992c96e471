"""robarch bench --nproc's PyTorch side: data-parallel training with
PyTorch's DistributedDataParallel (Gloo) and, for scaling, the same job on
one process.

Started by robarch, not by hand: each process connects to the address in
ROBARCH_BENCH_WORKER (robarch's coordinator on 127.0.0.1) and is driven
over that socket, one JSON object per line each way, like peer.py over its
pipes. ROBARCH_BENCH_SIDE names the configuration: "pytorch-ddp" (under
Debian's torchrun, which sets RANK, WORLD_SIZE, MASTER_ADDR/PORT; the
process group is Gloo) or "pytorch-single" (one process, no group).

  (connect)                      -> {"hello": true, "side": S, "rank": R, "world": W, "torch": VERSION}
  {"cmd": "setup", ...peer.py's setup fields..., "workload": W, "warmup": K,
   "floats": N, "tensors": T}    -> {"ok": true, "params": N, "macs": M, "threads": T}
  {"cmd": "step"}                -> {"ok": true, "seconds": S, "allreduce_seconds": A,
                                     "overlap_seconds": O, "broadcast_seconds": 0, "images": B}
  {"cmd": "quit"}

Workloads:
  train      peer.py's training step on DDP(model) (on the bare model
             alone): DDP as a PyTorch user writes it, default buckets,
             buffers broadcast from rank 0 before each forward pass.
             allreduce_seconds is DDP's own measure of its gradient
             communication (backward_comm_time of _get_ddp_logging_data,
             sampled every step: from the first bucket's allreduce to the
             last one's end), overlap_seconds the part of it that ran
             during the backward pass. The logging data of a step is
             complete at the next forward pass, so each reply carries the
             previous step's figures (the first step's are 0).
  allreduce  T tensors of N/T floats with gradients, flattened into 25 MiB
             buckets, all-reduced asynchronously, averaged and copied back
             (robarch's internal/dist does the same in C++): seconds is
             the whole exchange.
Gloo's broadcast of the buffers is inside DDP's forward pass and is not
timed on its own here (broadcast_seconds 0).
"""

import json
import os
import socket
import sys
import time

import torch
import torch.distributed as dist
from torch.nn.parallel import DistributedDataParallel

from peer import Bench

BUCKET_BYTES = 25 << 20


class Allreduce:
    """The gradient exchange alone, bucketed as robarch's is."""

    def __init__(self, floats, tensors):
        size = max(floats // tensors, 1)
        self.params = [torch.ones(size, requires_grad=True) for _ in range(tensors)]
        for p in self.params:
            p.sum().backward()
        self.buckets, cur, used = [], [], 0
        for p in self.params:
            n = p.numel() * 4
            if cur and used + n > BUCKET_BYTES:
                self.buckets.append(cur)
                cur, used = [], 0
            cur.append(p)
            used += n
        self.buckets.append(cur)
        self.flats = [torch.empty(sum(p.numel() for p in b)) for b in self.buckets]
        self.world = dist.get_world_size()

    def step(self):
        works = []
        for b, flat in zip(self.buckets, self.flats):
            at = 0
            for p in b:
                flat[at:at + p.numel()].copy_(p.grad.view(-1))
                at += p.numel()
            works.append(dist.all_reduce(flat, async_op=True))
        for b, flat, w in zip(self.buckets, self.flats, works):
            w.wait()
            flat.mul_(1.0 / self.world)
            at = 0
            for p in b:
                p.grad.view(-1).copy_(flat[at:at + p.numel()])
                at += p.numel()


class Worker:
    def __init__(self, msg, distributed):
        self.workload = msg["workload"]
        self.distributed = distributed
        torch.set_num_threads(msg["threads"])
        self.bench, self.ar = None, None
        if self.workload == "allreduce":
            if not distributed:
                raise ValueError("the allreduce workload needs a process group")
            self.ar = Allreduce(msg["floats"], msg["tensors"])
            for _ in range(msg.get("warmup", 0)):
                self.ar.step()
            return
        if self.workload != "train":
            raise ValueError("workload %r: the data-parallel peer runs train and allreduce" % self.workload)
        self.bench = Bench(msg)
        self.bench.prepare("train", 0)
        if distributed:
            self.bench.model = DistributedDataParallel(self.bench.model)
            self.bench.model._set_ddp_runtime_logging_sample_rate(1)
        for _ in range(msg.get("warmup", 0)):
            self.bench.step()

    def step(self):
        if self.ar is not None:
            start = time.perf_counter()
            self.ar.step()
            took = time.perf_counter() - start
            return {"seconds": took, "allreduce_seconds": took, "images": 0}
        took, _ = self.bench.step()
        out = {"seconds": took, "images": self.bench.batch, "allreduce_seconds": 0.0, "overlap_seconds": 0.0}
        if self.distributed:
            log = self.bench.model._get_ddp_logging_data()
            out["allreduce_seconds"] = log.get("backward_comm_time", 0) / 1e9
            out["overlap_seconds"] = log.get("backward_compute_comm_overlap_time", 0) / 1e9
        return out

    def params(self):
        if self.bench is None:
            return {"params": 0, "macs": 0}
        return {"params": self.bench.params, "macs": self.bench.macs}


def main():
    side = os.environ.get("ROBARCH_BENCH_SIDE", "pytorch-single")
    host, port = os.environ["ROBARCH_BENCH_WORKER"].rsplit(":", 1)
    distributed = side == "pytorch-ddp"
    if distributed:
        dist.init_process_group("gloo")
    rank = dist.get_rank() if distributed else 0
    world = dist.get_world_size() if distributed else 1
    conn = socket.create_connection((host, int(port)))
    f = conn.makefile("rw")

    def reply(obj):
        f.write(json.dumps(obj) + "\n")
        f.flush()

    reply({"hello": True, "side": side, "rank": rank, "world": world, "torch": torch.__version__, "pid": os.getpid()})
    worker = None
    for line in f:
        line = line.strip()
        if not line:
            continue
        try:
            msg = json.loads(line)
            cmd = msg.get("cmd")
            if cmd == "quit":
                break
            if cmd == "setup":
                worker = None
                worker = Worker(msg, distributed)
                reply(dict(ok=True, threads=torch.get_num_threads(), **worker.params()))
            elif worker is None:
                raise ValueError("command %r before setup" % cmd)
            elif cmd == "step":
                reply(dict(ok=True, **worker.step()))
            else:
                raise ValueError("unknown command %r" % cmd)
        except Exception as e:  # report, keep serving: robarch decides
            reply({"ok": False, "error": "%s: %s" % (type(e).__name__, e)})
    if distributed:
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    sys.exit(main())
