"""Topic 09: the training loop and its loss — every part of `loss.backward(); optimizer.step()`.

A language model trains by repeating one step: cross-entropy of its next-token logits, the
gradient of that loss, a clipped gradient, and an AdamW update with a learning rate that
warms up and then decays on a cosine. Around the step sit gradient accumulation (a large
batch from several small ones), the labels of supervised fine-tuning (loss on the
assistant's tokens only) and checkpoints that resume a run exactly.

Shapes: N positions (any leading shape, flattened), V vocabulary size. `ignore_index`
(-100 by default, PyTorch's convention) marks a target that counts neither in the sum nor
in the divisor of a mean loss.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Sequence

import torch
from torch import nn


def cross_entropy(logits: torch.Tensor, targets: torch.Tensor, ignore_index: int = -100) -> torch.Tensor:
    """Mean cross-entropy of `logits` against integer `targets`, written with log-sum-exp.

    logits:  (..., V) float32 or float64 (any leading shape, e.g. (N, V) or (B, T, V); it
             need not be contiguous).
    targets: int64 of shape logits.shape[:-1]; each entry is a class id in [0, V) or
             `ignore_index`.
    Returns a 0-d tensor of the logits' dtype:
        mean over the kept positions i (targets[i] != ignore_index) of
        logsumexp(logits[i]) − logits[i, targets[i]],
    where logsumexp(z) = m + ln Σ_j exp(z_j − m) with m = max_j z_j, so that logits of any
    size (±1e4 in float32) give a finite loss. Ignored positions count neither in the sum
    nor in the divisor, and receive a zero gradient; the gradient w.r.t. a kept row is
    (softmax(logits[i]) − one_hot(targets[i])) / (number of kept positions).
    From scratch: no F.cross_entropy, F.nll_loss, log_softmax, softmax or logsumexp built-in.
    Raises ValueError when targets.shape != logits.shape[:-1], when a target that is not
    `ignore_index` lies outside [0, V), or when every target is `ignore_index` (a mean over
    no positions is undefined).
    """
    # Hint: gather the target logit with `z.gather(-1, safe_targets[:, None])`, where ignored
    # targets are first replaced by a valid id (0) and masked out afterwards.
    ### BEGIN SOLUTION
    if tuple(targets.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"targets have shape {tuple(targets.shape)}, but logits of shape "
                         f"{tuple(logits.shape)} need targets of shape {tuple(logits.shape[:-1])}")
    V = logits.shape[-1]
    z = logits.reshape(-1, V)                                           # (N, V)
    t = targets.reshape(-1)                                             # (N,)
    keep = t != ignore_index                                            # (N,)
    if not bool(keep.any()):
        raise ValueError(f"every target is ignore_index ({ignore_index}): the mean loss over no positions "
                         f"is undefined")
    bad = keep & ((t < 0) | (t >= V))                                   # (N,) kept but not a class id
    if bool(bad.any()):
        raise ValueError(f"target {t[bad][0].item()} is outside [0, {V}) and is not ignore_index ({ignore_index})")
    m = z.max(dim=-1, keepdim=True).values.detach()                     # (N, 1) the shift: no gradient needed
    lse = m.squeeze(-1) + torch.log(torch.exp(z - m).sum(dim=-1))       # (N,)
    safe = torch.where(keep, t, torch.zeros_like(t))                    # (N,) ignored -> any valid id
    picked = z.gather(-1, safe[:, None]).squeeze(-1)                    # (N,)
    losses = torch.where(keep, lse - picked, torch.zeros_like(lse))     # (N,)
    return losses.sum() / keep.sum()
    ### END SOLUTION


class AdamW(torch.optim.Optimizer):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as `torch.optim.AdamW` computes it.

    AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2)

    params: an iterable of tensors, or of dicts (parameter groups) holding "params" and any
    hyperparameter to override for that group — exactly what `torch.optim.Optimizer` accepts.
    The hyperparameters live in `self.param_groups` (keys "lr", "betas", "eps",
    "weight_decay"), and `step` reads them there every time, so a schedule may change
    `group["lr"]` between steps.

    Per parameter p with a gradient g, at its t-th update (t = 1, 2, …):
        p ← p − lr·wd·p                                   (decoupled decay, scaled by lr)
        m ← β1·m + (1 − β1)·g,      v ← β2·v + (1 − β2)·g²
        m̂ = m / (1 − β1^t),         v̂ = v / (1 − β2^t)      (bias corrections)
        p ← p − lr·m̂ / (sqrt(v̂) + eps)                    (eps outside the square root)
    The decay may also be applied after the Adam update, to the updated p (the other
    ordering PyTorch's and the paper's descriptions allow); both are accepted. The decay is
    NOT added to the gradient (that is Adam with an L2 penalty, a different optimizer).

    State: `self.state[p]` holds "step" (t, a Python int), "exp_avg" (m) and "exp_avg_sq"
    (v), created at p's first update (m = v = 0). A parameter whose `.grad` is None is
    skipped: no update, no decay, no state. `state_dict()` / `load_state_dict()` are the
    base class's, so a saved optimizer resumes exactly. Updates run without autograd.
    From scratch: no torch.optim.Adam/AdamW and no `torch.optim.adam(w)` functions.
    Raises ValueError (in __init__) when lr < 0, eps < 0, weight_decay < 0, or a beta is
    outside [0, 1).
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        """Validate the hyperparameters, then `super().__init__(params, defaults)` with the
        defaults dict {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay}."""
        ### BEGIN SOLUTION
        if lr < 0:
            raise ValueError(f"AdamW: lr must be ≥ 0, got {lr}")
        if eps < 0:
            raise ValueError(f"AdamW: eps must be ≥ 0, got {eps}")
        if weight_decay < 0:
            raise ValueError(f"AdamW: weight_decay must be ≥ 0, got {weight_decay}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"AdamW: betas must lie in [0, 1), got {betas}")
        defaults = dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay)
        super().__init__(params, defaults)
        ### END SOLUTION

    @torch.no_grad()
    def step(self, closure: Callable[[], torch.Tensor] | None = None):
        """One update of every parameter that has a gradient.

        closure: optional; called (with autograd enabled) before the update, and must
        re-evaluate the loss and its gradients. Returns its value, or None without closure.
        """
        ### BEGIN SOLUTION
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (beta1, beta2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                g = p.grad
                state = self.state[p]
                if len(state) == 0:
                    state["step"] = 0
                    state["exp_avg"] = torch.zeros_like(p)
                    state["exp_avg_sq"] = torch.zeros_like(p)
                state["step"] += 1
                t = state["step"]
                m, v = state["exp_avg"], state["exp_avg_sq"]
                p.mul_(1 - lr * wd)                                     # decoupled decay
                m.mul_(beta1).add_(g, alpha=1 - beta1)                  # first moment
                v.mul_(beta2).addcmul_(g, g, value=1 - beta2)           # second moment
                m_hat = m / (1 - beta1 ** t)
                v_hat = v / (1 - beta2 ** t)
                p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)
        return loss
        ### END SOLUTION


def lr_schedule(step: int, max_lr: float, min_lr: float, warmup: int, total: int) -> float:
    """The learning rate at `step` (counted from 0): linear warmup, then cosine decay.

        step < warmup:           max_lr · (step + 1) / warmup      (step warmup − 1 reaches max_lr)
        warmup ≤ step < total:   min_lr + ½(max_lr − min_lr)(1 + cos(π·(step − warmup)/(total − warmup)))
        step ≥ total:            min_lr
    So step `warmup` is max_lr, the cosine reaches min_lr at step `total`, and the rate stays
    there. warmup = 0 means no warmup; warmup = total means warmup then min_lr at once.
    Returns a Python float.
    Raises ValueError when step < 0, warmup < 0, total < warmup, or not 0 ≤ min_lr ≤ max_lr.
    """
    ### BEGIN SOLUTION
    if step < 0:
        raise ValueError(f"step must be ≥ 0, got {step}")
    if warmup < 0 or total < warmup:
        raise ValueError(f"need 0 ≤ warmup ≤ total, got warmup={warmup}, total={total}")
    if not 0 <= min_lr <= max_lr:
        raise ValueError(f"need 0 ≤ min_lr ≤ max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= total:
        return float(min_lr)
    progress = (step - warmup) / (total - warmup)                       # in [0, 1)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
    ### END SOLUTION


def clip_grad_norm(params: Iterable[torch.Tensor], max_norm: float) -> torch.Tensor:
    """Scale the gradients of `params` in place so that their GLOBAL L2 norm is at most max_norm.

    params:   an iterable of tensors (e.g. `model.parameters()`, a generator: read it once);
              tensors whose `.grad` is None are skipped. All gradients share one dtype.
    The global norm is sqrt(Σ over all gradients of Σ g²) — one norm for all parameters
    together, not one per parameter. Every gradient is multiplied by
        coef = min(1, max_norm / (total_norm + 1e-6))
    as `torch.nn.utils.clip_grad_norm_` does (so gradients whose norm is below max_norm are
    left as they are). The `.grad` tensors are modified in place (the same objects).
    Returns the total norm BEFORE clipping, a 0-d tensor of the gradients' dtype (0 when no
    tensor has a gradient).
    From scratch: no torch.nn.utils clipping or total-norm functions.
    Raises ValueError when max_norm is not a positive finite number.
    """
    ### BEGIN SOLUTION
    if not (max_norm > 0 and math.isfinite(max_norm)):
        raise ValueError(f"max_norm must be a positive finite number, got {max_norm}")
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return torch.tensor(0.0)
    total = torch.sqrt(sum((g.detach() ** 2).sum() for g in grads))   # 0-d, the global norm
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.detach().mul_(coef)
    return total
    ### END SOLUTION


def train_step(model: nn.Module, optimizer: torch.optim.Optimizer,
               loss_fn: Callable[[nn.Module, torch.Tensor, torch.Tensor], torch.Tensor],
               micro_batches: Sequence[tuple[torch.Tensor, torch.Tensor]], max_norm: float | None = None) -> float:
    """One optimizer step on the gradient of several micro-batches together (accumulation).

    loss_fn(model, x, y) returns a 0-d mean loss of one micro-batch.
    micro_batches: a non-empty sequence of k pairs (x, y).
    The step: clear the old gradients (`optimizer.zero_grad()`), then for each micro-batch
    backward loss_fn(model, x, y) / k, so the accumulated gradient is the MEAN of the k
    micro-batch gradients — for k equal-size micro-batches of a mean loss, exactly the
    gradient of one batch made of all of them. Then, when max_norm is not None, clip the
    accumulated gradient with `clip_grad_norm(model.parameters(), max_norm)` (once, after
    the last micro-batch), then `optimizer.step()` once. The gradients stay in `.grad`.
    Returns the mean of the k micro-batch losses, a Python float.
    Raises ValueError when micro_batches is empty.
    """
    ### BEGIN SOLUTION
    k = len(micro_batches)
    if k == 0:
        raise ValueError("micro_batches is empty: a step needs at least one micro-batch")
    optimizer.zero_grad()
    total = 0.0
    for x, y in micro_batches:
        loss = loss_fn(model, x, y)
        (loss / k).backward()
        total += loss.item()
    if max_norm is not None:
        clip_grad_norm(model.parameters(), max_norm)
    optimizer.step()
    return total / k
    ### END SOLUTION


def sft_labels(turns: Sequence[tuple[str, Sequence[int]]], header_ids: dict[str, int], eot_id: int,
               ignore_index: int = -100) -> tuple[torch.Tensor, torch.Tensor]:
    """Token ids of a chat and the labels of supervised fine-tuning: loss on the assistant only.

    turns:      a sequence of (role, content) pairs, where content is a sequence of int token
                ids (a list, a tuple or a 1-D int64 tensor; it may be empty) and role a key of
                `header_ids` (e.g. "system", "user", "assistant").
    header_ids: role -> the id of that role's header token.
    eot_id:     the end-of-turn token that closes every turn.
    The chat template: every turn is  [header_ids[role]] + content + [eot_id],  in order.
    Returns (ids, labels), both 1-D int64 of the same length L (the total of the turns):
        labels[i] = ids[i] where token i is the content OR the closing eot_id of a turn whose
                    role is "assistant" (the model must learn to end its turn);
        labels[i] = ignore_index everywhere else (every header, every system and user token
                    and their eot tokens).
    labels is aligned with ids (not shifted): a next-token loss uses x = ids[:-1] and
    y = labels[1:].
    Raises ValueError when a role is not a key of header_ids.
    """
    ### BEGIN SOLUTION
    ids, labels = [], []
    for role, content in turns:
        if role not in header_ids:
            raise ValueError(f"role {role!r} has no header id; known roles: {sorted(header_ids)}")
        tokens = [int(i) for i in content] + [eot_id]
        ids += [header_ids[role]] + tokens
        labels += [ignore_index] + (tokens if role == "assistant" else [ignore_index] * len(tokens))
    return torch.tensor(ids, dtype=torch.int64), torch.tensor(labels, dtype=torch.int64)
    ### END SOLUTION


def save_checkpoint(path, model: nn.Module, optimizer: torch.optim.Optimizer, step: int) -> None:
    """Write everything a run needs to resume exactly to the file `path` (str or Path).

    Saves, with `torch.save`, a dict with the keys
        "model"      model.state_dict()
        "optimizer"  optimizer.state_dict()       (moments and step counts of every parameter)
        "step"       step, an int (the number of steps done)
        "rng"        torch.get_rng_state()        (the global CPU RNG: dropout masks, sampling)
    The file must load with `torch.load(path, weights_only=True)` (no pickled objects).
    """
    ### BEGIN SOLUTION
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "step": int(step),
                "rng": torch.get_rng_state()}, path)
    ### END SOLUTION


def load_checkpoint(path, model: nn.Module, optimizer: torch.optim.Optimizer) -> int:
    """Restore a checkpoint written by `save_checkpoint` into `model` and `optimizer`.

    Loads with `torch.load(path, weights_only=True)`, then restores the model's state dict,
    the optimizer's state dict and the global torch RNG state (`torch.set_rng_state`), so
    the next step — its dropout masks included — is bit for bit the step the original run
    would have taken. Returns the saved step (an int).
    """
    ### BEGIN SOLUTION
    checkpoint = torch.load(path, weights_only=True)
    model.load_state_dict(checkpoint["model"])
    optimizer.load_state_dict(checkpoint["optimizer"])
    torch.set_rng_state(checkpoint["rng"])
    return int(checkpoint["step"])
    ### END SOLUTION
