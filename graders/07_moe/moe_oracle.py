"""Helpers shared by the 07_moe graders (instructor code, not a test).

Independent oracles, written as plain per-token loops from the docstrings' rules:
- `expert_forward`: SwiGLU from the three weight matrices;
- `route_loop`: the router for one token at a time (softmax, selection by a Python sort
  of (−score, index) pairs, so ties go to the lower index, weights from the probabilities);
- `kept_loop`: the capacity rule by a loop over ranks, then tokens, counting each expert's
  accepted assignments;
- `capacity_exact`: the capacity in exact rational arithmetic;
- `moe_loop`: the whole layer as a loop over tokens and their chosen experts, from a
  parameter dict (differentiable, for gradients);
- `balance_loss_loop`, `z_loss_loop`: the two auxiliary losses by explicit sums;
- `random_layer`, `layer_oracle`, `output_mistakes`, `kept_mistakes`: a MoELayer with random
  parameters, the loop oracle on it, and the known mistakes of its output and `kept` mask;
- `selection_margin`: how far the k-th selection score is from the (k+1)-th, so that random
  cases avoid near-ties whose order rounding could flip.
"""

from __future__ import annotations

import math
from fractions import Fraction

import torch

from llmlab.testing import tensors

TOPIC = "07_moe"


def expert_forward(w1: torch.Tensor, w2: torch.Tensor, w3: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """SwiGLU without biases: w2 (silu(w1 x) * w3 x) for x (..., C), weights as nn.Linear stores them."""
    a = x @ w1.T
    return ((a * torch.sigmoid(a)) * (x @ w3.T)) @ w2.T


def route_token(logits: torch.Tensor, bias: torch.Tensor, k: int, normalize: bool):
    """One token: (E,) logits -> (indices list, (k,) weights) by the docstring's rule."""
    e = torch.exp(logits - logits.max())
    probs = e / e.sum()
    scores = (probs.detach() + bias).tolist()
    chosen = [i for _, i in sorted((-s, i) for i, s in enumerate(scores))[:k]]
    w = torch.stack([probs[i] for i in chosen])
    if normalize:
        w = w / w.sum()
    return chosen, w


def route_loop(logits: torch.Tensor, bias: torch.Tensor, k: int, normalize: bool):
    """(N, E) logits -> (weights (N, k), indices (N, k) int64), one token at a time."""
    rows = [route_token(logits[t], bias, k, normalize) for t in range(logits.shape[0])]
    indices = torch.tensor([r[0] for r in rows], dtype=torch.long).view(-1, k)
    weights = torch.stack([r[1] for r in rows]) if rows else logits.new_zeros(0, k)
    return weights, indices


def selection_margin(logits: torch.Tensor, bias: torch.Tensor, k: int) -> float:
    """The smallest gap, over tokens, between the k-th and (k+1)-th selection score (inf when k = E)."""
    scores = torch.softmax(logits.double().reshape(-1, logits.shape[-1]), dim=-1) + bias.double()
    if k >= scores.shape[-1]:
        return math.inf
    top = scores.sort(dim=-1, descending=True).values
    return float((top[:, k - 1] - top[:, k]).min())


def capacity_exact(n_tokens: int, n_experts: int, k: int, factor: float) -> int:
    return math.ceil(Fraction(factor) * n_tokens * k / n_experts)


def kept_loop(indices: torch.Tensor, n_experts: int, capacity: int | None) -> torch.Tensor:
    """(N, k) bool: rank by rank, token by token, each expert accepts `capacity` assignments."""
    N, k = indices.shape
    kept = torch.ones(N, k, dtype=torch.bool)
    if capacity is None:
        return kept
    filled = [0] * n_experts
    for j in range(k):
        for t in range(N):
            e = int(indices[t, j])
            kept[t, j] = filled[e] < capacity
            filled[e] += 1
    return kept


def kept_token_major(indices: torch.Tensor, n_experts: int, capacity: int) -> torch.Tensor:
    """The mistake: serving assignments token by token (all of token 0's choices first)."""
    N, k = indices.shape
    kept = torch.ones(N, k, dtype=torch.bool)
    filled = [0] * n_experts
    for t in range(N):
        for j in range(k):
            e = int(indices[t, j])
            kept[t, j] = filled[e] < capacity
            filled[e] += 1
    return kept


def moe_params(moe) -> dict:
    """The parameters of a MoELayer by the docstring's names (a detached copy)."""
    return {name: p.detach().clone() for name, p in moe.named_parameters()}


def moe_loop(params: dict, x: torch.Tensor, *, n_experts: int, k: int, bias: torch.Tensor,
             capacity_factor: float | None, normalize: bool = True, shared: bool = False,
             renormalise_after_drop: bool = False, kept_rule: str = "rank", capacity: int | None = None):
    """The layer as a loop over tokens: (output (x.shape), weights, indices, kept).

    `params` maps `router.gate.weight`, `experts.<e>.w1.weight` … (and `shared.*`) to
    tensors; gradients flow into them and into x. The keyword arguments after `shared`
    compute known mistakes: weights renormalised over the kept assignments, assignments
    served token by token (`kept_rule="token"`) or never dropped (`"none"`), another
    capacity."""
    C = x.shape[-1]
    tokens = x.reshape(-1, C)
    N = tokens.shape[0]
    logits = tokens @ params["router.gate.weight"].T
    weights, indices = route_loop(logits, bias, k, normalize)
    if capacity is None and capacity_factor is not None:
        capacity = capacity_exact(N, n_experts, k, capacity_factor)
    if kept_rule == "token" and capacity is not None:
        kept = kept_token_major(indices, n_experts, capacity)
    else:
        kept = kept_loop(indices, n_experts, None if kept_rule == "none" else capacity)
    rows = []
    for t in range(N):
        y = tokens.new_zeros(C)
        w = weights[t]
        if renormalise_after_drop and bool(kept[t].any()):
            w = torch.where(kept[t], w, torch.zeros_like(w))
            w = w / w.sum()
        for j in range(k):
            if kept[t, j]:
                e = int(indices[t, j])
                y = y + w[j] * expert_forward(params[f"experts.{e}.w1.weight"], params[f"experts.{e}.w2.weight"],
                                              params[f"experts.{e}.w3.weight"], tokens[t])
        if shared:
            y = y + expert_forward(params["shared.w1.weight"], params["shared.w2.weight"],
                                   params["shared.w3.weight"], tokens[t])
        rows.append(y)
    return torch.stack(rows).view(x.shape), weights, indices, kept


def balance_loss_loop(logits: torch.Tensor, indices: torch.Tensor) -> torch.Tensor:
    """E · Σ_i f_i P_i by explicit sums over tokens and assignments."""
    E = logits.shape[-1]
    flat = logits.reshape(-1, E)
    ids = indices.reshape(-1).tolist()
    N = flat.shape[0]
    probs = torch.softmax(flat, dim=-1)
    total = flat.new_zeros(())
    for i in range(E):
        f = ids.count(i) / len(ids)
        P = sum(probs[t, i] for t in range(N)) / N
        total = total + f * P
    return E * total


def z_loss_loop(logits: torch.Tensor) -> torch.Tensor:
    """mean_t (m_t + log Σ_i exp(l_ti − m_t))², m_t the row max."""
    flat = logits.reshape(-1, logits.shape[-1])
    terms = []
    for row in flat:
        m = row.max().detach()
        terms.append((m + torch.log(torch.exp(row - m).sum())) ** 2)
    return torch.stack(terms).mean()


TOKEN_MAJOR = "assignments served token by token (all of token 0's choices first) instead of rank by rank"
NO_DROP = "capacity ignored (no assignment dropped)"
RENORM = "weights renormalised over the kept assignments after dropping (they must stay as the router gave them)"


def random_layer(impl, *, C=6, E=4, k=2, H=8, cf=None, shared=False, normalize=True, seed=0, bias_scale=0.05,
                 dtype=torch.float32):
    """(layer, cfg): a MoELayer with every parameter drawn from N(0, 0.5²) and a random bias."""
    moe = impl.MoELayer(C, E, k, H, capacity_factor=cf, shared_expert=shared, normalize=normalize).to(dtype)
    tensors.randomize_parameters(moe, seed, 0.5)
    with torch.no_grad():
        moe.router.expert_bias.copy_(tensors.randn((E,), seed + 1, dtype, bias_scale))
    return moe, dict(n_experts=E, k=k, capacity_factor=cf, normalize=normalize, shared=shared)


def layer_oracle(moe, cfg, x, **mistake):
    """moe_loop on a MoELayer's own parameters and bias (`cfg` as random_layer returns it)."""
    return moe_loop(moe_params(moe), x, bias=moe.router.expert_bias.detach().clone(), **(cfg | mistake))


def output_mistakes(moe, cfg, x):
    """Known mistakes of the layer's output, each as a callable giving the output it computes."""
    wrong = {}
    if cfg["capacity_factor"] is not None:
        wrong[NO_DROP] = lambda: layer_oracle(moe, cfg, x, kept_rule="none")[0]
        wrong[TOKEN_MAJOR] = lambda: layer_oracle(moe, cfg, x, kept_rule="token")[0]
        wrong[RENORM] = lambda: layer_oracle(moe, cfg, x, renormalise_after_drop=True)[0]
    if cfg["shared"]:
        wrong["shared expert left out"] = lambda: layer_oracle(moe, cfg, x, shared=False)[0]
    return wrong


def kept_mistakes(indices, cfg, n_tokens, seq_len=None):
    """Known mistakes of the `kept` mask for `indices` (N, k) of n_tokens tokens."""
    E, k, cf = cfg["n_experts"], cfg["k"], cfg["capacity_factor"]
    cap = capacity_exact(n_tokens, E, k, cf)
    wrong = {TOKEN_MAJOR: lambda: kept_token_major(indices, E, cap),
             NO_DROP: lambda: kept_loop(indices, E, None),
             "capacity rounded down instead of up": lambda: kept_loop(indices, E, math.floor(cf * n_tokens * k / E)),
             "an expert accepts capacity + 1 assignments (off by one)": lambda: kept_loop(indices, E, cap + 1)}
    if seq_len is not None:
        wrong["capacity from the sequence length T instead of all N = B·T tokens"] = \
            lambda: kept_loop(indices, E, capacity_exact(seq_len, E, k, cf))
    return wrong
