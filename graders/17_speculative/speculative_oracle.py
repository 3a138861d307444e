"""Helpers shared by the 17_speculative graders (instructor code, not a test).

Fake models (cheap, exact, context rules a test can reason about):
  - `TableLM`: a bigram model, logits at position t = table[idx[t]] (V, V); with a (V,)
    table a unigram model whose logits never depend on the text. It records each call's
    length, whether autograd was on and its train/eval mode.
Independent oracles, written differently from the reference:
  - `greedy_continuation`: the target's own greedy text, one full call per token;
  - `chain_distribution`: the exact joint distribution of n tokens sampled from a bigram
    target, by enumerating all V^n sequences;
  - `accepted_count_probs`: the distribution of the number of accepted drafts of one round,
    from the per-position acceptance rates Σ min(p, q) written as a Python loop;
  - `target_calls_distribution`: the exact distribution of the number of target calls of a
    whole generation when every draft token is accepted independently with probability α
    (dynamic programming over the tokens still to generate);
  - `first_token_probs`: the distribution of the first emitted token of one round under the
    correct rule and under known mistakes, by summing over the drafted token;
Model builders: `tiny_llama(seed)` (a small given TinyLlama with every parameter drawn fresh).
"""

from __future__ import annotations

import itertools

import torch
from torch import nn

from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.testing import tensors

TOPIC = "17_speculative"
CONFIG = dict(vocab_size=9, block_size=32, n_layer=1, n_head=2, n_kv_head=1, d_model=16)


def tiny_llama(seed: int, dtype: torch.dtype = torch.float32, scale: float = 0.5, **overrides) -> TinyLlama:
    """The given TinyLlama of CONFIG (changed by `overrides`), every parameter drawn fresh."""
    return tensors.random_model(TinyLlama(LlamaConfig(**{**CONFIG, **overrides})), seed, dtype, scale)


class TableLM(nn.Module):
    """logits[0, t] = table[idx[0, t]] for a (V, V) table (bigram), or table for a (V,) table
    (unigram). Records (length, grad enabled, training) of every call in `calls`."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table
        self.anchor = nn.Parameter(torch.zeros((), dtype=table.dtype))   # outputs carry autograd history
        self.calls: list[tuple[int, bool, bool]] = []

    def forward(self, idx: torch.Tensor, targets=None):
        self.calls.append((idx.shape[1], torch.is_grad_enabled(), self.training))
        if self.table.dim() == 1:
            logits = self.table.expand(idx.shape[0], idx.shape[1], -1)
        else:
            logits = self.table[idx]                                       # (B, T, V)
        return logits + self.anchor, None


class Counting(nn.Module):
    """Wraps a model and counts its calls (and records the lengths)."""

    def __init__(self, model: nn.Module):
        super().__init__()
        self.model = model
        self.lengths: list[int] = []

    def forward(self, idx, targets=None):
        self.lengths.append(idx.shape[1])
        return self.model(idx, targets)


@torch.no_grad()
def greedy_continuation(model: nn.Module, prompt: torch.Tensor, n: int) -> torch.Tensor:
    """prompt (T0,) followed by n greedy tokens of `model`, one full call per token."""
    seq = prompt.tolist()
    for _ in range(n):
        logits = model(torch.tensor([seq]))[0][0, -1]
        best = max(range(logits.shape[0]), key=lambda v: (float(logits[v]), -v))   # lowest id on ties
        seq.append(best)
    return torch.tensor(seq)


def chain_distribution(table: torch.Tensor, last: int, n: int, temperature: float = 1.0) -> torch.Tensor:
    """(V^n,) float64: P(x_1 … x_n) for a bigram target (logits table[prev]) after token `last`,
    sampling at `temperature`; sequences in lexicographic order (index Σ x_i V^(n−i))."""
    probs = torch.softmax(table.double() / temperature, dim=-1)          # (V, V)
    V = probs.shape[0]
    out = []
    for seq in itertools.product(range(V), repeat=n):
        p, prev = 1.0, last
        for x in seq:
            p *= float(probs[prev, x])
            prev = x
        out.append(p)
    return torch.tensor(out, dtype=torch.float64)


def sequence_index(tokens: list[int], V: int) -> int:
    index = 0
    for x in tokens:
        index = index * V + x
    return index


def accepted_count_probs(p: torch.Tensor, q: torch.Tensor) -> list[float]:
    """P(n = j), j = 0 … k, for one round with context-free rows p (k + 1, V), q (k, V)."""
    k = q.shape[0]
    alphas = [sum(min(float(a), float(b)) for a, b in zip(p[i], q[i])) for i in range(k)]
    out, reach = [], 1.0
    for i in range(k):
        out.append(reach * (1.0 - alphas[i]))
        reach *= alphas[i]
    out.append(reach)
    return out


def target_calls_distribution(alpha: float, k: int, max_new: int) -> list[float]:
    """P(target calls = c), c = 0 … max_new, for i.i.d. acceptance with probability alpha and
    rounds of min(k, remaining) drafts whose output is cut at max_new."""
    dist = {0: [1.0] + [0.0] * max_new}                                  # remaining -> call-count distribution
    for r in range(1, max_new + 1):
        m = min(k, r)
        emitted = [(alpha ** j * (1 - alpha), min(j + 1, r)) for j in range(m)] + [(alpha ** m, min(m + 1, r))]
        acc = [0.0] * (max_new + 1)
        for prob, e in emitted:
            for c, pc in enumerate(dist[r - e]):
                if pc and c + 1 <= max_new:
                    acc[c + 1] += prob * pc
        dist[r] = acc
    return dist[max_new]


def first_token_probs(p: torch.Tensor, q: torch.Tensor, rule: str = "correct") -> torch.Tensor:
    """(V,) float64: the distribution of the first emitted token of a round whose position 0 has
    target p (V,) and draft q (V,), under the correct rule or a known mistake:
      "correct"      accept with min(1, p/q), resample from normalise(max(0, p − q));
      "from_p"       resample from p instead of the residual;
      "inverted"     accept with min(1, q/p);
      "scalar_q"     residual normalise(max(0, p − q(x))) with the drafted token's scalar q(x);
      "always"       every draft token accepted."""
    p, q = p.double(), q.double()
    V = p.shape[0]
    out = torch.zeros(V, dtype=torch.float64)
    for x in range(V):
        if q[x] == 0:
            continue
        if rule == "always":
            accept = 1.0
        elif rule == "inverted":
            accept = 1.0 if p[x] == 0 or q[x] >= p[x] else float(q[x] / p[x])
        else:
            accept = min(1.0, float(p[x] / q[x]))
        out[x] += q[x] * accept
        if rule == "from_p":
            resid = p
        elif rule == "scalar_q":
            resid = (p - q[x]).clamp(min=0)
            resid = resid / resid.sum() if resid.sum() > 0 else p
        else:
            resid = (p - q).clamp(min=0)
            resid = resid / resid.sum() if resid.sum() > 0 else p
        out += q[x] * (1.0 - accept) * resid
    return out


# bigram logits (V = 3) of the target and the draft of the joint-distribution tests
TARGET3 = torch.tensor([[1.0, 0.0, -0.5], [0.2, 0.8, -0.3], [-0.4, 0.3, 0.6]], dtype=torch.float64)
DRAFT3 = torch.tensor([[-0.5, 0.7, 0.4], [0.9, -0.2, 0.1], [0.3, 0.5, -0.6]], dtype=torch.float64)


def joint_counts(impl, k: int, max_new: int, temperature: float, runs: int, seed: int):
    """Histogram over the V^max_new generated sequences of `runs` seeded generations from [0]."""
    counts = [0] * 3 ** max_new
    gen = tensors.generator(seed)
    target, draft = TableLM(TARGET3), TableLM(DRAFT3)
    prompt = torch.tensor([0])
    for _ in range(runs):
        target.calls.clear()
        draft.calls.clear()
        out, _ = impl.speculative_generate(target, draft, prompt, k, max_new, temperature, gen)
        counts[sequence_index(out[1:].tolist(), 3)] += 1
    return counts
