"""The L-inf attacks of robarch's Python side, in one place: PGD and
APGD-CE as robarch's package attack runs them, op for op.

Imported by bench/peer/peer.py (robarch bench's PyTorch peer, which robarch
writes next to this file) and by bench/reference/reference.py (the attack
reference comparison, which puts this folder on sys.path). reference.py
compares the PGD examples with robarch's coordinate by coordinate, so a
change of the order of operations here shows up there.

  pgd(model, x, y, eps, steps, alpha=None, seed=None)
      random start in the eps-ball, `steps` signed-gradient steps of size
      alpha (2.5 eps / steps unless given), projected; seed, when given,
      seeds torch's generator first.
  apgd_ce(model, x, y, eps, steps=100, rho=0.75, seed=None)
      Croce & Hein 2020's APGD with the cross-entropy, one restart, on the
      points the model classifies correctly; a point it misclassifies
      takes the first misclassified iterate found.
"""

import torch
import torch.nn.functional as F


def input_grad(model, x, y):
    """Logits, per-sample cross-entropy and its input gradient at x."""
    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        z = model(x)
        loss = F.cross_entropy(z, y, reduction="none")
        (g,) = torch.autograd.grad(loss.sum(), [x])
    return z.detach(), loss.detach(), g


def project(p, x, eps):
    """p clipped to the eps-ball around x and to [0, 1]."""
    return torch.min(torch.max(p, x - eps), x + eps).clamp(0, 1)


def pgd(model, x, y, eps, steps, alpha=None, seed=None):
    if alpha is None:
        alpha = 2.5 * eps / steps
    if seed is not None:
        torch.manual_seed(seed)
    delta = (torch.rand_like(x) * (2 * eps) - eps)
    delta = (x + delta).clamp(0, 1) - x
    for _ in range(steps):
        _, _, g = input_grad(model, x + delta, y)
        delta = (x + (delta + alpha * g.sign()).clamp(-eps, eps)).clamp(0, 1) - x
    return project(x + delta, x, eps)


def apgd_checkpoints(steps):
    """The iterations at which APGD may halve its step, each with the
    length of the window that ends there."""
    k = max(int(0.22 * steps), 1)
    k_min = max(int(0.06 * steps), 1)
    dec = max(int(0.03 * steps), 1)
    out, at = [], k
    while at <= steps:
        out.append((at, k))
        k = max(k - dec, k_min)
        at += k
    return out


def per_sample(v, like):
    return v.view(-1, *([1] * (like.dim() - 1)))


def apgd_run(model, x, y, eps, steps, rho):
    """APGD on points x that the model classifies correctly: the first
    misclassified iterate of each point (its last one otherwise) and
    which points were misclassified."""
    n = x.shape[0]
    t = torch.rand(x.shape) * 2 - 1
    d = eps * t / per_sample(t.flatten(1).abs().amax(1) + 1e-12, t)
    x_adv = (x + d).clamp(0, 1)
    z, l, g = input_grad(model, x_adv, y)
    robust = z.argmax(1) == y
    l_best = l
    x_found, x_best, x_old, g_best = x_adv.clone(), x_adv.clone(), x_adv.clone(), g.clone()
    l_best_last = l_best.clone()
    step = torch.full((n,) + (1,) * (x.dim() - 1), 2 * eps)
    rises = torch.zeros(n)
    l_prev = torch.zeros(n)
    reduced = torch.ones(n, dtype=torch.bool)
    checks, nxt = apgd_checkpoints(steps), 0
    for i in range(steps):
        alpha = 1.0 if i == 0 else 0.75
        zz = project(x_adv + g.sign() * step, x, eps)
        p = x_adv + alpha * (zz - x_adv) + (1 - alpha) * (x_adv - x_old)
        x_old = x_adv
        x_adv = project(p, x, eps)
        z, l, g = input_grad(model, x_adv, y)
        right = z.argmax(1) == y
        robust = robust & right
        x_found = torch.where(per_sample(right, x), x_found, x_adv)
        rises = rises + (l > l_prev)
        l_prev = l
        better = l > l_best
        x_best = torch.where(per_sample(better, x), x_adv, x_best)
        g_best = torch.where(per_sample(better, x), g, g_best)
        l_best = torch.where(better, l, l_best)
        if nxt < len(checks) and i + 1 == checks[nxt][0]:
            w = checks[nxt][1]
            nxt += 1
            oscillated = rises <= w * rho
            stalled = (~reduced) & (l_best_last >= l_best)
            halve = oscillated | stalled
            reduced = halve
            l_best_last = l_best.clone()
            step = torch.where(per_sample(halve, step), step * 0.5, step)
            x_adv = torch.where(per_sample(halve, x), x_best, x_adv)
            g = torch.where(per_sample(halve, x), g_best, g)
            rises = torch.zeros_like(rises)
    return x_found, ~robust


def apgd_ce(model, x, y, eps, steps=100, rho=0.75, seed=None):
    if seed is not None:
        torch.manual_seed(seed)
    with torch.no_grad():
        robust = model(x).argmax(1) == y
    idx = robust.nonzero().flatten()
    best = x.clone()
    if idx.numel() > 0:
        found, fooled = apgd_run(model, x[idx], y[idx], eps, steps, rho)
        at = idx[fooled]
        best[at] = found[fooled]
    return project(best, x, eps)
