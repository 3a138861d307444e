"""Helpers shared by the 21_evaluation graders (instructor code, not a test).

Models:
  - `tiny_llama(seed)`: a small given TinyLlama with every parameter drawn fresh (float64 by
    default), whose predictions depend on the context;
  - `TableLM`: a bigram model, logits at position t = table[idx[t]] — log-likelihoods a
    test can compute by hand;
  - `Recorder`: wraps a model and records the idx of every call.
Independent oracles, written differently from the reference:
  - `window_nll_oracle`: the sliding-window NLL one target at a time (the window that scores
    target t found by a formula, one model call per target);
  - `overlapping_nlls`: the known mistake that scores every row of every window;
  - `windows`: the (start, end) of each model call that the docstring's rule prescribes;
  - `quantile`: linear-interpolation quantile of sorted values, by hand;
  - `ece_loop`: the expected calibration error bin by bin in Python floats;
  - `f1_loop`: SQuAD token F1 by explicit counting, for one reference.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.testing import tensors

TOPIC = "21_evaluation"
CONFIG = dict(vocab_size=11, block_size=32, n_layer=1, n_head=2, n_kv_head=1, d_model=16)


def tiny_llama(seed: int, dtype: torch.dtype = torch.float64, scale: float = 0.5) -> TinyLlama:
    """The given TinyLlama of CONFIG, every parameter drawn fresh (norm gains around 1)."""
    return tensors.random_model(TinyLlama(LlamaConfig(**CONFIG)), seed, dtype, scale)


class TableLM(nn.Module):
    """logits[0, t] = table[idx[0, t]] for a (V, V) table: a bigram model."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = nn.Parameter(table.clone())

    def forward(self, idx: torch.Tensor, targets=None):
        return self.table[idx], None


class Recorder(nn.Module):
    """Calls `model` and keeps a copy of every idx it was called with."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.calls: list[torch.Tensor] = []

    def forward(self, idx: torch.Tensor, targets=None):
        self.calls.append(idx.detach().clone())
        return self.model(idx)


def windows(n_tokens: int, window: int, stride: int) -> list[tuple[int, int]]:
    """(start, end) of every model call: ends window, window + stride, … capped at N − 1."""
    last, out, end = n_tokens - 1, [], window
    while True:
        e = min(end, last)
        out.append((max(0, e - window), e))
        if e == last:
            return out
        end += stride


def window_nll_oracle(model: nn.Module, ids: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """−log p(ids[t] | the window that scores t) for t = 1 … N − 1, one model call per target."""
    last = ids.shape[0] - 1
    out = []
    for t in range(1, last + 1):
        j = max(0, math.ceil((t - window) / stride))         # the first window whose end reaches t
        end = min(window + j * stride, last)
        start = max(0, end - window)
        logits = model(ids[start:end][None])[0][0]
        out.append(-F.log_softmax(logits[t - 1 - start], dim=-1)[ids[t]])
    return torch.stack(out)


def overlapping_nlls(model: nn.Module, ids: torch.Tensor, window: int, stride: int) -> torch.Tensor:
    """Known mistake: every row of every window scored, so overlapping targets count twice."""
    out = []
    for start, end in windows(ids.shape[0], window, stride):
        logp = F.log_softmax(model(ids[start:end][None])[0][0], dim=-1)
        out.append(-logp.gather(1, ids[start + 1:end + 1, None])[:, 0])
    return torch.cat(out)


def quantile(values: list[float], q: float) -> float:
    """Linear interpolation between order statistics at position q·(n − 1)."""
    v = sorted(values)
    pos = q * (len(v) - 1)
    lo = math.floor(pos)
    hi = min(lo + 1, len(v) - 1)
    return v[lo] + (pos - lo) * (v[hi] - v[lo])


def ece_loop(confidences: list[float], correct: list[bool], n_bins: int) -> float:
    """Σ_b (n_b / N) |acc_b − conf_b| with bins [b/B, (b+1)/B), the last one closed."""
    total = 0.0
    for b in range(n_bins):
        members = [i for i, c in enumerate(confidences) if min(int(c * n_bins), n_bins - 1) == b]
        if members:
            acc = sum(float(correct[i]) for i in members) / len(members)
            conf = sum(confidences[i] for i in members) / len(members)
            total += len(members) / len(confidences) * abs(acc - conf)
    return total


def f1_loop(pred: list[str], gold: list[str]) -> float:
    """Token F1 of two token lists, the multiset overlap counted by removing matches one by one."""
    if not pred or not gold:
        return float(len(pred) == len(gold))
    remaining = list(gold)
    common = 0
    for token in pred:
        if token in remaining:
            remaining.remove(token)
            common += 1
    if common == 0:
        return 0.0
    return 2 * common / (len(pred) + len(gold))              # = 2PR / (P + R)
