"""Topic 13: mid-training — the schedules and tools of continued pretraining.

A pretrained model is rarely trained once and left alone. Its learning rate is held at a
plateau and cooled down at the end (warmup–stable–decay, so a run can be extended and
annealed at any time); when it later continues on new data, the learning rate is re-warmed
from where the old run stopped; the data mixture is annealed toward the high-quality
sources; a fraction of every batch replays the old data so that the model does not forget
it; and the weights of several checkpoints (or an exponential moving average of the
weights) often beat the last checkpoint alone.

Conventions: steps are counted from 0, learning rates are Python floats, token streams are
1-D int64 tensors, and a model's `forward(idx, targets)` returns `(logits, mean loss)` as
the given `llmlab.lib.llama.TinyLlama` does. Shapes: B batch, T block_size.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import torch
from torch import nn

from llmlab.lib.train import random_windows

DECAY_SHAPES = ("linear", "cosine", "sqrt")


def wsd_schedule(step: int, max_lr: float, min_lr: float, warmup: int, stable: int, decay: int,
                 shape: str = "linear") -> float:
    """The warmup–stable–decay (WSD, "trapezoidal") learning rate at `step` (counted from 0).

        step < warmup:                     max_lr · (step + 1) / warmup    (step warmup − 1 is max_lr)
        warmup ≤ step < warmup + stable:   max_lr                          (the plateau)
        with d = step − (warmup + stable), for 0 ≤ d < decay (the cool-down):
            shape "linear":  max_lr − (max_lr − min_lr) · d / decay
            shape "cosine":  min_lr + ½ (max_lr − min_lr) (1 + cos(π · d / decay))
            shape "sqrt":    max_lr − (max_lr − min_lr) · sqrt(d / decay)   ("1 − sqrt" cool-down)
        step ≥ warmup + stable + decay:    min_lr
    So the cool-down starts at max_lr (d = 0), is continuous with the plateau, and reaches
    min_lr at step warmup + stable + decay. A phase of length 0 is skipped (warmup = 0: step
    0 is already on the plateau; decay = 0: min_lr right after the plateau).
    Returns a Python float.
    Raises ValueError when step < 0, when warmup, stable or decay is negative, when not
    0 ≤ min_lr ≤ max_lr, or when shape is not one of "linear", "cosine", "sqrt".
    """
    ### BEGIN SOLUTION
    if step < 0:
        raise ValueError(f"step must be ≥ 0, got {step}")
    if warmup < 0 or stable < 0 or decay < 0:
        raise ValueError(f"phase lengths must be ≥ 0, got warmup={warmup}, stable={stable}, decay={decay}")
    if not 0 <= min_lr <= max_lr:
        raise ValueError(f"need 0 ≤ min_lr ≤ max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if shape not in DECAY_SHAPES:
        raise ValueError(f"shape must be one of {DECAY_SHAPES}, got {shape!r}")
    if step < warmup:
        return max_lr * (step + 1) / warmup
    d = step - (warmup + stable)                                        # steps into the cool-down
    if d < 0:
        return float(max_lr)
    if d >= decay:
        return float(min_lr)
    progress = d / decay                                                # in [0, 1)
    if shape == "linear":
        return max_lr - (max_lr - min_lr) * progress
    if shape == "cosine":
        return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
    return max_lr - (max_lr - min_lr) * math.sqrt(progress)
    ### END SOLUTION


def rewarm_schedule(step: int, start_lr: float, max_lr: float, min_lr: float, rewarm: int, total: int) -> float:
    """The learning rate at `step` of a continued-pretraining run: re-warm, then cosine decay.

    The old run ended at a small rate `start_lr`; the new run climbs back to max_lr and
    decays again:
        step < rewarm:            start_lr + (max_lr − start_lr) · step / rewarm
                                  (step 0 is start_lr, where the old run stopped; the climb
                                  reaches max_lr at step rewarm)
        rewarm ≤ step < total:    min_lr + ½ (max_lr − min_lr) (1 + cos(π · (step − rewarm) / (total − rewarm)))
        step ≥ total:             min_lr
    rewarm = 0 means no re-warming (step 0 is max_lr); rewarm = total means the climb, then
    min_lr from step total on.
    Returns a Python float.
    Raises ValueError when step < 0, rewarm < 0, total < rewarm, not 0 ≤ min_lr ≤ max_lr, or
    not 0 ≤ start_lr ≤ max_lr.
    """
    ### BEGIN SOLUTION
    if step < 0:
        raise ValueError(f"step must be ≥ 0, got {step}")
    if rewarm < 0 or total < rewarm:
        raise ValueError(f"need 0 ≤ rewarm ≤ total, got rewarm={rewarm}, total={total}")
    if not 0 <= min_lr <= max_lr:
        raise ValueError(f"need 0 ≤ min_lr ≤ max_lr, got min_lr={min_lr}, max_lr={max_lr}")
    if not 0 <= start_lr <= max_lr:
        raise ValueError(f"need 0 ≤ start_lr ≤ max_lr, got start_lr={start_lr}, max_lr={max_lr}")
    if step < rewarm:
        return start_lr + (max_lr - start_lr) * step / rewarm
    if step >= total:
        return float(min_lr)
    progress = (step - rewarm) / (total - rewarm)                       # in [0, 1)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))
    ### END SOLUTION


def mixture_schedule(step: int, start: Sequence[float], end: Sequence[float], anneal_start: int,
                     anneal_steps: int) -> list[float]:
    """The sampling weights of K data sources at `step`, annealed from `start` to `end`.

    start, end: K ≥ 1 non-negative finite numbers each (lists or tuples), each with a
    positive sum; they need not sum to 1 — each is first normalised, p = start / Σ start and
    q = end / Σ end. The weights at `step` are (1 − a)·p + a·q with
        a = 0                                   for step < anneal_start,
        a = (step − anneal_start) / anneal_steps for anneal_start ≤ step < anneal_start + anneal_steps,
        a = 1                                   for step ≥ anneal_start + anneal_steps
    (anneal_steps = 0: the mixture switches from p to q at step anneal_start).
    Returns a list of K Python floats, each ≥ 0, summing to 1 (up to rounding).
    Raises ValueError when start and end differ in length or are empty, when a weight is
    negative or not finite, when a sum is 0, or when step, anneal_start or anneal_steps is
    negative.
    """
    ### BEGIN SOLUTION
    if len(start) != len(end) or len(start) == 0:
        raise ValueError(f"start and end need the same length ≥ 1, got {len(start)} and {len(end)}")
    for name, weights in (("start", start), ("end", end)):
        if any(not math.isfinite(w) or w < 0 for w in weights):
            raise ValueError(f"{name} weights must be finite and ≥ 0, got {list(weights)}")
        if sum(weights) == 0:
            raise ValueError(f"{name} weights sum to 0; at least one source needs a positive weight")
    if step < 0 or anneal_start < 0 or anneal_steps < 0:
        raise ValueError(f"step, anneal_start and anneal_steps must be ≥ 0, got {step}, {anneal_start}, "
                         f"{anneal_steps}")
    p = [w / sum(start) for w in start]
    q = [w / sum(end) for w in end]
    if step < anneal_start:
        a = 0.0
    elif step >= anneal_start + anneal_steps:
        a = 1.0
    else:
        a = (step - anneal_start) / anneal_steps
    return [(1.0 - a) * pi + a * qi for pi, qi in zip(p, q)]
    ### END SOLUTION


def replay_batch(new_data: torch.Tensor, old_data: torch.Tensor, batch_size: int, block_size: int,
                 replay_fraction: float, generator: torch.Generator | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """A training batch that mixes windows of the new domain with replayed old-domain windows.

    new_data, old_data: 1-D int64 token streams.
    n_old = round(replay_fraction · batch_size) rows replay the old data, with Python's
    `round` (halves go to the even integer: 0.5 · 3 → 2, 0.5 · 5 → 2); the other
    batch_size − n_old rows come from the new data. The rows are drawn with the given
    `llmlab.lib.train.random_windows`, the OLD rows first:
        old = random_windows(old_data, n_old, block_size, generator)              (only if n_old > 0)
        new = random_windows(new_data, batch_size − n_old, block_size, generator) (only if that is > 0)
    and stacked in that order: rows 0 … n_old − 1 are old, the rest new.
    Returns (x, y), both (batch_size, block_size) int64: y is x shifted by one token.
    Raises ValueError when batch_size < 1, when replay_fraction is outside [0, 1], or (from
    random_windows) when a stream that rows are drawn from is shorter than block_size + 1.
    """
    ### BEGIN SOLUTION
    if batch_size < 1:
        raise ValueError(f"batch_size must be ≥ 1, got {batch_size}")
    if not 0.0 <= replay_fraction <= 1.0:
        raise ValueError(f"replay_fraction must be in [0, 1], got {replay_fraction}")
    n_old = round(replay_fraction * batch_size)
    xs, ys = [], []
    if n_old > 0:
        x_old, y_old = random_windows(old_data, n_old, block_size, generator)             # (n_old, T)
        xs.append(x_old)
        ys.append(y_old)
    if batch_size - n_old > 0:
        x_new, y_new = random_windows(new_data, batch_size - n_old, block_size, generator)  # (B − n_old, T)
        xs.append(x_new)
        ys.append(y_new)
    return torch.cat(xs), torch.cat(ys)                                                 # (B, T), (B, T)
    ### END SOLUTION


def average_checkpoints(state_dicts: Sequence[Mapping[str, torch.Tensor]],
                        weights: Sequence[float] | None = None) -> dict[str, torch.Tensor]:
    """The parameter-wise weighted mean of N checkpoints (model soup, checkpoint averaging).

    state_dicts: N ≥ 1 mappings name -> tensor with the same names (in any order), and per
                 name the same shape and dtype.
    weights:     None (every checkpoint weighs 1/N) or N non-negative finite numbers with a
                 positive sum, normalised to w_i = weights[i] / Σ weights.
    For every floating entry: out[k] = Σ_i w_i · state_dicts[i][k], accumulated in float64
    and returned in the entry's dtype. The computation is made of differentiable tensor
    operations (the gradient of out[k] w.r.t. state_dicts[i][k] is w_i). Non-floating entries
    (integer counters, bool masks) are not averaged: they must be equal in every checkpoint
    and are copied.
    Returns a new dict with the names in the order of state_dicts[0], whose tensors are new
    (never views of an input); the inputs are not modified.
    Raises ValueError when state_dicts is empty, when the names, a shape or a dtype differ
    between checkpoints, when weights has the wrong length, a negative or non-finite weight,
    or a zero sum, or when a non-floating entry differs between checkpoints.
    """
    ### BEGIN SOLUTION
    if len(state_dicts) == 0:
        raise ValueError("average_checkpoints needs at least one state dict")
    first = state_dicts[0]
    for i, sd in enumerate(state_dicts[1:], start=1):
        if set(sd) != set(first):
            raise ValueError(f"state dict {i} has names {sorted(set(sd) ^ set(first))} that state dict 0 "
                             f"does not share")
        for k, v in first.items():
            if sd[k].shape != v.shape or sd[k].dtype != v.dtype:
                raise ValueError(f"entry {k!r}: state dict {i} has {sd[k].dtype} {tuple(sd[k].shape)}, "
                                 f"state dict 0 has {v.dtype} {tuple(v.shape)}")
    if weights is None:
        weights = [1.0] * len(state_dicts)
    if len(weights) != len(state_dicts):
        raise ValueError(f"got {len(weights)} weights for {len(state_dicts)} state dicts")
    if any(not math.isfinite(w) or w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"weights must be finite, ≥ 0 and have a positive sum, got {list(weights)}")
    total = sum(weights)
    w = [float(x) / total for x in weights]
    out = {}
    for k, v in first.items():
        if v.is_floating_point():
            acc = sum(wi * sd[k].to(torch.float64) for wi, sd in zip(w, state_dicts))
            out[k] = acc.to(v.dtype)
        else:
            if any(not torch.equal(sd[k], v) for sd in state_dicts[1:]):
                raise ValueError(f"non-floating entry {k!r} differs between state dicts; it cannot be averaged")
            out[k] = v.clone()
    return out
    ### END SOLUTION


class EMA:
    """An exponential moving average of a model's weights (Polyak averaging).

    `self.shadow` maps every name of `model.state_dict()` (parameters and buffers) to a
    tensor of its own (detached, not sharing memory with the model); `self.decay` is β and
    `self.num_updates` counts the calls of `update`.
    """

    def __init__(self, model: nn.Module, decay: float):
        """Start the average at the model's current weights: shadow[k] = a detached copy of
        model.state_dict()[k] for every k; num_updates = 0.
        Raises ValueError when decay is outside [0, 1].
        """
        ### BEGIN SOLUTION
        if not 0.0 <= decay <= 1.0:
            raise ValueError(f"decay must be in [0, 1], got {decay}")
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}
        self.num_updates = 0
        ### END SOLUTION

    def update(self, model: nn.Module) -> None:
        """Fold the model's current weights into the average, without autograd:
            floating entries:      shadow[k] ← β · shadow[k] + (1 − β) · model.state_dict()[k]
            non-floating entries:  shadow[k] ← a copy of model.state_dict()[k]
        and num_updates += 1. So after n updates with the model held at θ, starting from θ₀,
        shadow = βⁿ·θ₀ + (1 − βⁿ)·θ. The model is not modified.
        """
        ### BEGIN SOLUTION
        with torch.no_grad():
            for k, v in model.state_dict().items():
                if v.is_floating_point():
                    self.shadow[k].mul_(self.decay).add_(v, alpha=1.0 - self.decay)
                else:
                    self.shadow[k].copy_(v)
        self.num_updates += 1
        ### END SOLUTION

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into `model` (every entry of its state dict gets the
        shadow's values, copied: later updates of the EMA do not change the model)."""
        ### BEGIN SOLUTION
        model.load_state_dict(self.shadow)
        ### END SOLUTION


def continue_pretraining(model: nn.Module, new_data: torch.Tensor, old_data: torch.Tensor, steps: int, *,
                         batch_size: int, block_size: int, replay_fraction: float, start_lr: float,
                         max_lr: float, min_lr: float, rewarm: int, ema: EMA | None = None,
                         generator: torch.Generator | None = None) -> list[float]:
    """Continue training a pretrained `model` on `new_data`, replaying `old_data`.

    Puts the model in train mode and makes ONE optimizer for the run,
    `torch.optim.AdamW(model.parameters(), lr=max_lr, betas=(0.9, 0.95), weight_decay=0.1)`;
    then for each step s = 0 … steps − 1:
        lr = rewarm_schedule(s, start_lr, max_lr, min_lr, rewarm, steps), set in every param group
        x, y = replay_batch(new_data, old_data, batch_size, block_size, replay_fraction, generator)
        _, loss = model(x, y)
        clear the old gradients, loss.backward(),
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0), optimizer.step()
        ema.update(model) when an EMA is given
    Returns a list of `steps` Python floats: each step's loss, measured before its update.
    The model is left in train mode.
    """
    ### BEGIN SOLUTION
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=max_lr, betas=(0.9, 0.95), weight_decay=0.1)
    losses = []
    for step in range(steps):
        lr = rewarm_schedule(step, start_lr, max_lr, min_lr, rewarm, steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = replay_batch(new_data, old_data, batch_size, block_size, replay_fraction, generator)  # (B, T)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if ema is not None:
            ema.update(model)
        losses.append(loss.item())
    return losses
    ### END SOLUTION
