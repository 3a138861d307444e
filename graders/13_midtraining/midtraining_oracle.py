"""Independent oracles for the 13_midtraining graders (written from the docstrings, not from
the reference): the schedules as closed formulas with switches that reproduce the catalogued
mistakes, the parameter-wise mean, the EMA recursion, a tiny TinyLlama, the new procedural
domain (arithmetic progressions) and the continued-pretraining loop built from the given
library's own pieces.
"""

from __future__ import annotations

import math
import random

import torch

from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.lib.train import random_windows
from llmlab.testing import tensors

TOPIC = "13_midtraining"


# ----------------------------------------------------------------- schedules

def wsd_lr(step, max_lr, min_lr, warmup, stable, decay, shape="linear", *, warmup_shift=1, floor=None,
           ignore_shape=False, no_plateau=False):
    """The WSD rate; the keyword switches give the catalogued mistakes."""
    floor = min_lr if floor is None else floor
    if step < warmup:
        return max_lr * (step + warmup_shift) / warmup
    start = warmup if no_plateau else warmup + stable
    d = step - start
    if d < 0:
        return max_lr
    if d >= decay:
        return floor
    p = d / decay
    shape = "linear" if ignore_shape else shape
    if shape == "linear":
        return max_lr - (max_lr - floor) * p
    if shape == "cosine":
        return floor + 0.5 * (max_lr - floor) * (1 + math.cos(math.pi * p))
    return max_lr - (max_lr - floor) * math.sqrt(p)


def rewarm_lr(step, start_lr, max_lr, min_lr, rewarm, total, *, shift=0, from_zero=False, decay_over=None):
    """The re-warm + cosine rate; the keyword switches give the catalogued mistakes."""
    base = 0.0 if from_zero else start_lr
    if step < rewarm:
        return base + (max_lr - base) * (step + shift) / rewarm
    if step >= total:
        return min_lr
    length = (total - rewarm) if decay_over is None else decay_over
    return min_lr + 0.5 * (max_lr - min_lr) * (1 + math.cos(math.pi * (step - rewarm) / length))


def mixture(step, start, end, anneal_start, anneal_steps, *, normalise=True, reverse=False, clamp=True):
    """The annealed mixture; the keyword switches give the catalogued mistakes."""
    p = [w / sum(start) for w in start] if normalise else list(start)
    q = [w / sum(end) for w in end] if normalise else list(end)
    if reverse:
        p, q = q, p
    if step < anneal_start:
        a = 0.0
    elif anneal_steps == 0 or (clamp and step >= anneal_start + anneal_steps):
        a = 1.0
    else:
        a = (step - anneal_start) / anneal_steps
    return [(1 - a) * x + a * y for x, y in zip(p, q)]


# ----------------------------------------------------------------- averaging and EMA

def weighted_mean(state_dicts, weights=None):
    """Parameter-wise weighted mean in float64 (floating entries only), cast back."""
    n = len(state_dicts)
    weights = [1.0] * n if weights is None else list(weights)
    total = sum(weights)
    out = {}
    for k, v in state_dicts[0].items():
        if v.is_floating_point():
            acc = torch.zeros(v.shape, dtype=torch.float64)
            for w, sd in zip(weights, state_dicts):
                acc = acc + (w / total) * sd[k].double()
            out[k] = acc.to(v.dtype)
        else:
            out[k] = v.clone()
    return out


def ema_states(states, decay):
    """The EMA recursion over a list of state dicts (the first one is the start)."""
    shadow = {k: v.clone() for k, v in states[0].items()}
    for sd in states[1:]:
        for k, v in sd.items():
            shadow[k] = decay * shadow[k] + (1 - decay) * v if v.is_floating_point() else v.clone()
    return shadow


# ----------------------------------------------------------------- models and data

TINY = dict(vocab_size=12, block_size=8, n_layer=1, n_head=2, n_kv_head=1, d_model=8)


def tiny_llama(seed: int, dtype=torch.float64, **overrides) -> TinyLlama:
    """A TinyLlama of the TINY config in `dtype`, every parameter drawn from N(0, 0.5²) (norm
    gains from N(1, 0.5²)) with `seed`: large enough gradients that clipping to norm 1 acts."""
    with torch.random.fork_rng():                      # leave the global RNG alone
        model = TinyLlama(LlamaConfig(**{**TINY, **overrides})).to(dtype)
    return tensors.randomize_parameters(model, seed, 0.5, around_one=lambda name: "norm" in name)


def progression_text(n_lines: int, seed: int) -> str:
    """The new domain: arithmetic progressions in a format the course corpus never uses,
    e.g. "count 7 by 5: 7, 12, 17, 22, 27." (only characters of the course's vocabulary)."""
    rng = random.Random(seed)
    lines = []
    for _ in range(n_lines):
        a, d = rng.randint(0, 60), rng.randint(1, 12)
        terms = ", ".join(str(a + i * d) for i in range(rng.randint(4, 7)))
        lines.append(f"count {a} by {d}, {terms}.")
    return "\n".join(lines) + "\n"


def oracle_continue(model, new_data, old_data, steps, *, batch_size, block_size, replay_fraction, start_lr, max_lr,
                    min_lr, rewarm, generator, ema_decay=None, schedule=True, clip=True):
    """The documented loop of continue_pretraining, from the given library's pieces
    (schedule=False keeps lr at max_lr, clip=False skips clipping: catalogued mistakes).
    Returns (losses, EMA shadow or None)."""
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=max_lr, betas=(0.9, 0.95), weight_decay=0.1)
    shadow = None if ema_decay is None else {k: v.detach().clone() for k, v in model.state_dict().items()}
    losses = []
    n_old = round(replay_fraction * batch_size)
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = rewarm_lr(step, start_lr, max_lr, min_lr, rewarm, steps) if schedule else max_lr
        parts = []
        if n_old:
            parts.append(random_windows(old_data, n_old, block_size, generator))
        if batch_size - n_old:
            parts.append(random_windows(new_data, batch_size - n_old, block_size, generator))
        x, y = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
        loss = model(x, y)[1]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip:
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if shadow is not None:
            with torch.no_grad():
                for k, v in model.state_dict().items():
                    shadow[k] = ema_decay * shadow[k] + (1 - ema_decay) * v if v.is_floating_point() else v.clone()
        losses.append(loss.item())
    return losses, shadow
