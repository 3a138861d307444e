"""Helpers shared by the 09_training graders (instructor code, not a test).

- the built-ins each from-scratch unit may not call while it runs;
- `SlowAdam`: Adam written as a plain loop over parameters, with switches for the decay
  ordering and for the catalogued mistakes (Adam + L2, bias correction missing or on the
  wrong moment, eps inside the square root, decay not scaled by lr): the oracle for the
  "decay after the update" ordering of AdamW and the source of the mistakes' trajectories;
- `Problem` / `trajectory`: a small seeded model (two Linear layers and a parameter that
  gets a gradient only on even steps, in two parameter groups) trained by any optimizer;
  the parameters after every step are the trajectory graders compare;
- `DropoutNet`: a small model with dropout, for checkpoints whose resume depends on the RNG;
- `sft_oracle`: the SFT labels of a chat, built token by token from the roles.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.testing import check, tensors

TOPIC = "09_training"

CE_BUILTINS = [
    "torch.nn.functional.cross_entropy", "torch.nn.functional.nll_loss", "torch.nn.functional.log_softmax",
    "torch.nn.functional.softmax", "torch.log_softmax", "torch.softmax", "torch.logsumexp",
    "torch.Tensor.log_softmax", "torch.Tensor.softmax", "torch.Tensor.logsumexp",
    "torch.special.logsumexp", "torch.special.log_softmax", "torch.special.softmax",
]
ADAMW_BUILTINS = [
    "torch.optim.AdamW.step", "torch.optim.Adam.step", "torch.optim.adamw.adamw", "torch.optim.adam.adam",
    "torch._fused_adamw_", "torch._fused_adam_",
]
CLIP_BUILTINS = [
    "torch.nn.utils.clip_grad_norm_", "torch.nn.utils.clip_grad_norm", "torch.nn.utils.get_total_norm",
    "torch.nn.utils.clip_grads_with_norm_", "torch.nn.utils.clip_grad.clip_grad_norm_",
    "torch.nn.utils.clip_grad.clip_grad_norm", "torch.nn.utils.clip_grad._get_total_norm",
    "torch.nn.utils.clip_grad._clip_grads_with_norm_",
]


# ---------------------------------------------------------------- Adam, written out

class SlowAdam(torch.optim.Optimizer):
    """Adam in a plain loop. decay: "before" (PyTorch's AdamW), "after" (decay of the updated
    parameter), "l2" (wd·p added to the gradient: Adam + L2), "unscaled" (p ← p − wd·p),
    "none". bias: "both", "none", "swapped" (each moment corrected with the other's beta).
    eps_inside: sqrt(v̂ + eps) instead of sqrt(v̂) + eps."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, *,
                 decay="before", bias="both", eps_inside=False):
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay))
        self.decay, self.bias, self.eps_inside = decay, bias, eps_inside

    @torch.no_grad()
    def step(self, closure=None):
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad.clone()
                if self.decay == "l2":
                    g = g + wd * p
                st = self.state[p]
                if not st:
                    st["t"], st["m"], st["v"] = 0, torch.zeros_like(p), torch.zeros_like(p)
                st["t"] += 1
                t = st["t"]
                st["m"] = b1 * st["m"] + (1 - b1) * g
                st["v"] = b2 * st["v"] + (1 - b2) * g * g
                c1, c2 = {"both": (1 - b1 ** t, 1 - b2 ** t), "none": (1.0, 1.0),
                          "swapped": (1 - b2 ** t, 1 - b1 ** t)}[self.bias]
                m_hat, v_hat = st["m"] / c1, st["v"] / c2
                denom = torch.sqrt(v_hat + eps) if self.eps_inside else torch.sqrt(v_hat) + eps
                update = m_hat / denom
                if self.decay == "before":
                    p.copy_(p - lr * wd * p)
                elif self.decay == "unscaled":
                    p.copy_(p - wd * p)
                p.copy_(p - lr * update)
                if self.decay == "after":
                    p.copy_(p - lr * wd * p)
        return None


def check_against_orderings(actual, torch_run, after_run, *, case, kind="model", tol=None, mistakes=None,
                            unit="AdamW.step", what="parameters after every step"):
    """Pass when `actual` matches either accepted ordering; otherwise fail against the
    closer one, naming a catalogued mistake when the trajectory matches it."""
    __tracebackhide__ = True
    t = tol or None
    if not isinstance(actual, torch.Tensor) or actual.shape != torch_run.shape:
        check.close(actual, torch_run, unit=unit, case=case, kind=kind, tol=t, what=what)
    for expected in (torch_run, after_run):
        try:
            check.close(actual, expected, unit=unit, case=case, kind=kind, tol=t, what=what)
            return
        except check.GradingFailure:
            pass
    closer = min((torch_run, after_run), key=lambda e: float((actual.double() - e.double()).abs().max()))
    label = "decay before the update (torch.optim.AdamW)" if closer is torch_run else "decay after the update"
    check.close(actual, closer, unit=unit, case=case + f"; compared with the closer accepted ordering: {label}",
                kind=kind, tol=t, what=what, mistakes=mistakes)


# ---------------------------------------------------------------- a training problem

class Problem:
    """A seeded classification problem: a 2-layer MLP (group 0) and a vector `extra`
    (group 1) whose loss term is added on even steps only, so on odd steps its .grad is None
    (after zero_grad(set_to_none=True)) and its own step count falls behind the others'."""

    def __init__(self, seed: int, dtype=torch.float64):
        self.model = nn.Sequential(nn.Linear(6, 8), nn.Tanh(), nn.Linear(8, 4)).to(dtype)
        tensors.randomize_parameters(self.model, seed, 0.6)
        self.extra = nn.Parameter(tensors.randn((5,), seed + 1, dtype))
        self.x = tensors.randn((24, 6), seed + 2, dtype)
        self.y = tensors.randint((24,), seed + 3, high=4)

    def groups(self, lr=0.05, betas=(0.9, 0.99), eps=1e-3, weight_decay=0.1):
        """Two groups: the MLP with the given hyperparameters, `extra` with its own."""
        return [dict(params=list(self.model.parameters()), lr=lr, betas=betas, eps=eps, weight_decay=weight_decay),
                dict(params=[self.extra], lr=0.02, betas=(0.8, 0.95), eps=1e-8, weight_decay=0.3)]

    def parameters(self):
        return list(self.model.parameters()) + [self.extra]

    def loss(self, step: int) -> torch.Tensor:
        loss = F.cross_entropy(self.model(self.x), self.y)
        if step % 2 == 0:
            loss = loss + 0.5 * ((self.extra - 1.0) ** 2).sum()
        return loss

    def flat(self) -> torch.Tensor:
        return torch.cat([p.detach().reshape(-1) for p in self.parameters()])


def trajectory(make_optimizer, seed: int, steps: int, dtype=torch.float64, lr_at=None, run=None) -> torch.Tensor:
    """(steps, P): the parameters after every step of `make_optimizer(problem.groups(...))`.
    `lr_at(step)` (optional) sets the MLP group's lr before each step; `run(fn)` wraps each
    optimizer.step call (for a guard)."""
    problem = Problem(seed, dtype)
    opt = make_optimizer(problem)
    rows = []
    for step in range(steps):
        if lr_at is not None:
            opt.param_groups[0]["lr"] = lr_at(step)
        opt.zero_grad(set_to_none=True)
        problem.loss(step).backward()
        (run or (lambda fn: fn()))(opt.step)
        rows.append(problem.flat())
    return torch.stack(rows)


# ---------------------------------------------------------------- checkpoints

class DropoutNet(nn.Module):
    """Linear -> ReLU -> Dropout(0.5) -> Linear: its forward in train mode uses the global RNG."""

    def __init__(self, seed: int):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(5, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 3))
        tensors.randomize_parameters(self, seed, 0.5)

    def forward(self, x):
        return self.net(x)


def dropout_batch(step: int, seed: int = 0):
    """The fixed (x, y) of training step `step` (seeded by the step: data does not use the
    global RNG, so only dropout does)."""
    return tensors.randn((8, 5), seed * 1000 + step, torch.float32), tensors.randint((8,), seed * 1000 + step + 500, high=3)


def dropout_step(model, optimizer, step: int) -> torch.Tensor:
    """One training step of the dropout model; returns the loss."""
    x, y = dropout_batch(step)
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    optimizer.step()
    return loss.detach()


def flat_params(model) -> torch.Tensor:
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


# ---------------------------------------------------------------- SFT labels

def sft_oracle(turns, header_ids, eot_id, ignore_index=-100, *, keep_eot=True, train_header=False,
               train_all=False):
    """(ids, labels) token by token; the switches give the catalogued mistakes."""
    ids, labels = [], []
    for role, content in turns:
        assistant = role == "assistant"
        pieces = [(header_ids[role], "header")] + [(int(c), "content") for c in content] + [(eot_id, "eot")]
        for token, kind in pieces:
            ids.append(token)
            trained = train_all or (assistant and (kind == "content" or (kind == "eot" and keep_eot)
                                                   or (kind == "header" and train_header)))
            labels.append(token if trained else ignore_index)
    return torch.tensor(ids, dtype=torch.int64), torch.tensor(labels, dtype=torch.int64)


def cosine_lr(step, max_lr, min_lr, warmup, total, *, warmup_shift=1, decay_over=None, floor=None):
    """The schedule of lr_schedule's docstring, written independently (math on floats);
    `warmup_shift=0` (warmup off by one), `decay_over` (cosine length) and `floor` (the
    decay's end value) give the catalogued mistakes."""
    floor = min_lr if floor is None else floor
    if step < warmup:
        return max_lr * (step + warmup_shift) / warmup
    length = (total - warmup) if decay_over is None else decay_over
    if step >= total or length <= 0:
        return floor if step >= total else max_lr
    frac = min(1.0, (step - warmup) / length)
    return floor + (max_lr - floor) * (math.cos(math.pi * frac) + 1) / 2
