"""Helpers shared by the 18_long_context graders (instructor code, not a test).

Independent oracles, written differently from the reference (Python loops and floats):
  - `yarn_loop`: YaRN's θ'_i pair by pair with the paper's piecewise ramp;
  - `ntk_loop`: NTK-aware θ'_i = θ_i · s^(−2i/(D−2)) (the base rule rewritten per pair);
  - `alibi_slopes_paper`: the recursive slope rule of the ALiBi paper's code, in floats;
  - `window_mask_loop`: the sliding-window (+ sinks) mask by two loops;
  - `streaming_kept`: the kept stream positions after each append, by a list simulation;
  - `greedy_tokens`: a model's greedy continuation, one full call per token, ties to the lowest id.
Fake models for the needle harness:
  - `LookupLM`: reads the needle back exactly when the key is close enough to the question.
Model builder: `tiny_llama(seed)`, a small given TinyLlama with every parameter drawn fresh.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.testing import tensors

TOPIC = "18_long_context"
CONFIG = dict(vocab_size=11, block_size=48, n_layer=1, n_head=2, n_kv_head=1, d_model=16)


def tiny_llama(seed: int, dtype: torch.dtype = torch.float32, scale: float = 0.5, **overrides) -> TinyLlama:
    """The given TinyLlama of CONFIG (changed by `overrides`), every parameter drawn fresh."""
    return tensors.random_model(TinyLlama(LlamaConfig(**{**CONFIG, **overrides})), seed, dtype, scale)


def inv_freq_from_wavelengths(wavelengths, dtype=torch.float64) -> torch.Tensor:
    """θ_i = 2π / λ_i."""
    return torch.tensor([2 * math.pi / w for w in wavelengths], dtype=dtype)


def yarn_loop(inv_freq: torch.Tensor, scale: float, original_len: int, alpha: float, beta: float) -> list[float]:
    out = []
    for theta in inv_freq.tolist():
        r = original_len * theta / (2 * math.pi)
        if r < alpha:
            out.append(theta / scale)
        elif r > beta:
            out.append(theta)
        else:
            g = (r - alpha) / (beta - alpha)
            out.append(theta / scale + g * (theta - theta / scale))
    return out


def yarn_torch(inv_freq: torch.Tensor, scale: float, original_len: int, alpha: float, beta: float,
               detach_ramp: bool = False) -> torch.Tensor:
    """YaRN with torch.where (a differentiable oracle for gradients); `detach_ramp` is the
    mistake of treating the ramp as a constant."""
    r = (inv_freq.detach() if detach_ramp else inv_freq) * (original_len / (2 * math.pi))
    g = (r - alpha) / (beta - alpha)
    g = torch.where(r < alpha, torch.zeros_like(g), torch.where(r > beta, torch.ones_like(g), g))
    return inv_freq / scale + g * (inv_freq - inv_freq / scale)


def ntk_loop(head_dim: int, scale: float, base: float) -> list[float]:
    return [base ** (-2 * i / head_dim) * scale ** (-2 * i / (head_dim - 2)) for i in range(head_dim // 2)]


def alibi_slopes_paper(n: int) -> list[float]:
    def power_of_two(m: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(m) - 3)))
        return [start * start ** i for i in range(m)]

    if math.log2(n).is_integer():
        return power_of_two(n)
    closest = 2 ** math.floor(math.log2(n))
    return power_of_two(closest) + alibi_slopes_paper(2 * closest)[0::2][:n - closest]


def window_mask_loop(T: int, window: int, sinks: int) -> torch.Tensor:
    mask = torch.zeros(T, T, dtype=torch.bool)
    for i in range(T):
        for j in range(i + 1):
            if i - j < window or j < sinks:
                mask[i, j] = True
    return mask


def streaming_kept(chunks, n_sink: int, window: int) -> list[list[int]]:
    """The kept stream positions after each append of `chunks[c]` tokens."""
    kept, seen, out = [], 0, []
    for n in chunks:
        kept += list(range(seen, seen + n))
        seen += n
        kept = [p for p in kept if p < n_sink or p >= seen - window]
        out.append(list(kept))
    return out


@torch.no_grad()
def greedy_tokens(model: nn.Module, prompt: torch.Tensor, n: int) -> list[int]:
    seq = prompt.tolist()
    out = []
    for _ in range(n):
        logits = model(torch.tensor([seq]))[0][0, -1]
        best = max(range(logits.shape[0]), key=lambda v: (float(logits[v]), -v))
        seq.append(best)
        out.append(best)
    return out


class LookupLM(nn.Module):
    """A retrieval model with a known reach. At the last position t of a sequence, with q the
    index of the last `query` token and k the index of the first `key` token: when both exist,
    k < q and q − k ≤ reach, it predicts seq[k + 1 + (t − q)] (the needle read back one token
    per step after the question); otherwise it predicts `miss`. Logits are one-hot (10 vs 0).
    Records (length, grad enabled) of every call in `calls`."""

    def __init__(self, vocab_size: int, key: int, query: int, reach: int, miss: int = 0):
        super().__init__()
        self.V, self.key, self.query, self.reach, self.miss = vocab_size, key, query, reach, miss
        self.calls: list[tuple[int, bool]] = []

    def predict(self, seq: list[int]) -> int:
        t = len(seq) - 1
        if self.query not in seq or self.key not in seq:
            return self.miss
        q = len(seq) - 1 - seq[::-1].index(self.query)
        k = seq.index(self.key)
        if k < q and q - k <= self.reach and k + 1 + (t - q) < q:
            return seq[k + 1 + (t - q)]
        return self.miss

    def forward(self, idx: torch.Tensor, targets=None):
        self.calls.append((idx.shape[1], torch.is_grad_enabled()))
        logits = torch.zeros(idx.shape[0], idx.shape[1], self.V)
        for b in range(idx.shape[0]):
            logits[b, -1, self.predict(idx[b].tolist())] = 10.0
        return logits, None
