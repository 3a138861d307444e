"""Helpers shared by the 23_policy_distillation graders (instructor code, not a test).

Models a test can reason about exactly:
  - `TableLM`: logits from a learnable table: a (V,) table is a context-free (unigram)
    categorical policy, a (V, V) table a bigram model (logits at position i = table[ids[i]]).
    It records every call's input and whether autograd was on;
  - `tiny_llama(seed)`: a small given TinyLlama with every parameter drawn fresh;
  - `RecordingOptimizer`: the optimizer interface the steps document (zero_grad, step); it
    records the order of the calls and a copy of every gradient at `step`, and applies
    p ← p − lr·grad.
Independent oracles, written differently from the reference:
  - `kl_divergence`, `reverse_kl`, `forward_kl`: torch.nn.functional.kl_div on log-softmax;
  - `jsd`: the mixture formed from probabilities (not log-sum-exp), KL terms by kl_div;
  - `estimates_loop`: k1, k2, k3 per element with Python's math module;
  - `prefix_logprobs`: each response token scored by a model call on its own prefix;
  - `sample_like_the_step`: the documented sampling draws, written as a loop over rows;
  - `categorical_kl_grad`: ∇θ KL(softmax θ ‖ τ) = π ⊙ (log π − log τ − KL), the analytic
    gradient of the reverse KL for a categorical policy;
  - `on_policy_grad_unigram`: the exact gradient of the on-policy loss for a unigram policy
    and given samples, (1/N) Σ_i d_i (onehot(x_i) − π).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.testing import tensors

TOPIC = "23_policy_distillation"
CONFIG = dict(vocab_size=7, block_size=12, n_layer=1, n_head=2, n_kv_head=1, d_model=16)
KL_BUILTINS = ["torch.nn.functional.kl_div", "torch.kl_div"]
KL_HINT = "Compute Σ p·(log p − log q) with log_softmax instead."


class TableLM(nn.Module):
    """logits[b, i] = table[ids[b, i]] for a (V, V) table, or table for a (V,) table.
    Records (ids, grad enabled) of every call in `calls`."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = nn.Parameter(table.detach().clone())
        self.calls: list[tuple[torch.Tensor, bool]] = []

    def forward(self, idx: torch.Tensor, targets=None):
        self.calls.append((idx.detach().clone(), torch.is_grad_enabled()))
        if self.table.dim() == 1:
            logits = self.table.expand(idx.shape[0], idx.shape[1], -1)     # (B, T, V)
        else:
            logits = self.table[idx]                                       # (B, T, V)
        return logits, None


def tiny_llama(seed: int, dtype: torch.dtype = torch.float64, scale: float = 0.5, **overrides) -> TinyLlama:
    """The given TinyLlama of CONFIG (changed by `overrides`), every parameter drawn fresh."""
    return tensors.random_model(TinyLlama(LlamaConfig(**{**CONFIG, **overrides})), seed, dtype, scale)


class RecordingOptimizer:
    """zero_grad / step over `params`; records the calls (with zero_grad's set_to_none) and the
    gradients seen at each step."""

    def __init__(self, params, lr: float = 0.0):
        self.params = list(params)
        self.lr = lr
        self.events: list[str] = []
        self.grads: list[list[torch.Tensor | None]] = []

    def zero_grad(self, set_to_none: bool = True):
        self.events.append(f"zero_grad(set_to_none={set_to_none})")
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self):
        self.events.append("step")
        self.grads.append([None if p.grad is None else p.grad.detach().clone() for p in self.params])
        for p in self.params:
            if p.grad is not None:
                p -= self.lr * p.grad


# ---------------------------------------------------------------- divergences

def kl_divergence(log_q: torch.Tensor, log_p: torch.Tensor) -> torch.Tensor:
    """KL(q ‖ p) over the last axis from normalised log-probabilities, by F.kl_div."""
    return F.kl_div(log_p, log_q, reduction="none", log_target=True).sum(dim=-1)


def reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    return kl_divergence(F.log_softmax(student_logits, -1), F.log_softmax(teacher_logits, -1))


def forward_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    return kl_divergence(F.log_softmax(teacher_logits, -1), F.log_softmax(student_logits, -1))


def jsd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, beta: float,
        mixture_weights_swapped: bool = False) -> torch.Tensor:
    """β KL(π_t ‖ m) + (1 − β) KL(π_s ‖ m), m = β π_t + (1 − β) π_s, from probabilities;
    the endpoints as the docstring defines them. `mixture_weights_swapped` builds the known
    mistake m = (1 − β) π_t + β π_s."""
    if beta == 0.0:
        return forward_kl(student_logits, teacher_logits)
    if beta == 1.0:
        return reverse_kl(student_logits, teacher_logits)
    ps, pt = F.softmax(student_logits, -1), F.softmax(teacher_logits, -1)
    w = 1.0 - beta if mixture_weights_swapped else beta
    m = w * pt + (1.0 - w) * ps
    kl_t = F.kl_div(m.log(), pt, reduction="none").sum(-1)
    kl_s = F.kl_div(m.log(), ps, reduction="none").sum(-1)
    return beta * kl_t + (1.0 - beta) * kl_s


def binary_entropy(beta: float) -> float:
    """−β log β − (1 − β) log(1 − β): the largest value JSD(β) can take (disjoint supports)."""
    return -sum(b * math.log(b) for b in (beta, 1.0 - beta) if b > 0)


def estimates_loop(logp_sample: torch.Tensor, logp_ref: torch.Tensor) -> dict[str, torch.Tensor]:
    """k1, k2, k3 element by element with Python floats (r = p / q)."""
    flat_s, flat_r = logp_sample.detach().double().flatten().tolist(), logp_ref.detach().double().flatten().tolist()
    out = {"k1": [], "k2": [], "k3": []}
    for s, ref in zip(flat_s, flat_r):
        log_r = ref - s
        out["k1"].append(-log_r)
        out["k2"].append(log_r * log_r / 2)
        out["k3"].append(math.expm1(log_r) - log_r)
    return {k: torch.tensor(v, dtype=torch.float64).reshape(logp_sample.shape) for k, v in out.items()}


# ---------------------------------------------------------------- models and steps

def prefix_logprobs(model: nn.Module, ids: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """(B, R): log π(ids[b, P + t] | ids[b, :P + t]), each from a call on the prefix alone."""
    rows = []
    for b in range(ids.shape[0]):
        row = []
        for pos in range(prompt_len, ids.shape[1]):
            logits = model(ids[b:b + 1, :pos])[0][0, -1]                   # (V,)
            row.append(logits - torch.logsumexp(logits, dim=-1))
            row[-1] = row[-1][ids[b, pos]]
        rows.append(torch.stack(row))
    return torch.stack(rows)


@torch.no_grad()
def sample_like_the_step(model: nn.Module, prompts: torch.Tensor, response_len: int,
                         generator: torch.Generator) -> torch.Tensor:
    """The documented draws: per step one multinomial over softmax(last logits, float64) for
    all rows at once."""
    ids = prompts.clone()
    for _ in range(response_len):
        probs = torch.softmax(model(ids)[0][:, -1].double(), dim=-1)       # (B, V)
        nxt = torch.multinomial(probs, 1, generator=generator)             # (B, 1)
        ids = torch.cat([ids, nxt], dim=1)
    return ids


def categorical_kl_grad(theta: torch.Tensor, log_tau: torch.Tensor) -> torch.Tensor:
    """∇θ KL(softmax θ ‖ τ) = π ⊙ (log π − log τ − KL), written out (no autograd)."""
    log_pi = theta - torch.logsumexp(theta, dim=-1)
    pi = log_pi.exp()
    kl = (pi * (log_pi - log_tau)).sum()
    return pi * (log_pi - log_tau - kl)


def on_policy_grad_unigram(theta: torch.Tensor, log_tau: torch.Tensor, tokens: torch.Tensor,
                           detached: bool = True, sign: float = 1.0) -> torch.Tensor:
    """The gradient of −mean_i A_i log π(x_i) with A_i = −(log π(x_i) − log τ(x_i)) for a
    unigram policy π = softmax θ and sampled tokens (any shape), written out:
        (1/N) Σ_i d_i (onehot(x_i) − π)                 (the advantage detached)
    and, for the known mistake of an advantage that is NOT detached, the gradient of
    mean_i d_i log π(x_i), which adds (1/N) Σ_i log π(x_i) (onehot(x_i) − π)."""
    log_pi = theta - torch.logsumexp(theta, dim=-1)
    pi = log_pi.exp()
    x = tokens.flatten()
    d = sign * (log_pi[x] - log_tau[x])                                      # (N,)
    score = F.one_hot(x, theta.shape[-1]).to(theta.dtype) - pi               # (N, V): ∇θ log π(x_i)
    grad = (d[:, None] * score).mean(dim=0)
    if not detached:
        grad = grad + (log_pi[x][:, None] * score).mean(dim=0)
    return grad
