"""Oracles and stand-in models for the 15_generation graders (public names, no tests).

  PrefixLM          a small float64 language model with the course's model signature whose
                    next-token logits depend on the whole prefix, on the mask and on ABSOLUTE
                    positions (a position embedding indexed by `positions`), so a batch row
                    whose real tokens get the wrong positions computes different logits; it
                    records every call (ids, positions, mask, autograd on or off);
  filter oracles    slow per-row loops of the documented top-k / top-p / min-p rules;
  ctrl_penalty      the CTRL rule as a loop over ids;
  brute_force_best  every possible continuation of a prompt scored exactly (the truth that
                    beam search with an unlimited width must find);
  beam_oracle       the documented beam search written with Python lists and one model call
                    per hypothesis;
  greedy_oracle     the documented generation loop for greedy decoding;
  parse_chat        the chat format read back with a regular expression.
"""

from __future__ import annotations

import itertools
import math
import re

import torch
from torch import nn

from llmlab.testing import check, tensors

TOPIC = "15_generation"


class PrefixLM(nn.Module):
    """logits[b, t] = tanh(h_t W1) W2 + x_t W3 with x = emb[ids] + pos[positions] and h_t the
    mean of x over the real tokens s ≤ t (and t itself): causal, mask-aware, absolute
    positions. float64; `scale` sharpens the distributions (larger: clearer greedy margins)."""

    def __init__(self, vocab_size: int = 5, max_len: int = 24, d: int = 8, seed: int = 0, scale: float = 1.0):
        super().__init__()
        V = vocab_size
        self.vocab_size, self.max_len = V, max_len
        self.emb = nn.Parameter(tensors.randn((V, d), seed))
        self.pos = nn.Parameter(tensors.randn((max_len, d), seed + 1))
        self.w1 = nn.Parameter(tensors.randn((d, d), seed + 2))
        self.w2 = nn.Parameter(tensors.randn((d, V), seed + 3, scale=scale))
        self.w3 = nn.Parameter(tensors.randn((d, V), seed + 4, scale=scale))
        self.calls: list[dict] = []

    def forward(self, ids, targets=None, *, positions=None, attention_mask=None):
        self.calls.append(dict(ids=ids.clone(), positions=None if positions is None else positions.clone(),
                               mask=None if attention_mask is None else attention_mask.clone(),
                               grad=torch.is_grad_enabled()))
        if positions is None or attention_mask is None:
            check.fail("the model call", "the model was called without positions or attention_mask",
                       "call it as model(ids, positions=positions, attention_mask=attention_mask)")
        B, T = ids.shape
        if tuple(positions.shape) != (B, T) or tuple(attention_mask.shape) != (B, T) \
                or attention_mask.dtype != torch.bool or positions.dtype != torch.long:
            check.fail("the model call", "positions must be (B, T) int64 and attention_mask (B, T) bool",
                       f"got ids {tuple(ids.shape)}, positions {positions.dtype} {tuple(positions.shape)}, "
                       f"attention_mask {attention_mask.dtype} {tuple(attention_mask.shape)}")
        real_pos = positions[attention_mask]
        if real_pos.numel() and (int(real_pos.min()) < 0 or int(real_pos.max()) >= self.max_len):
            check.fail("the model call", f"positions of real tokens must lie in [0, {self.max_len})",
                       f"got {positions.tolist()}")
        pos = torch.where(attention_mask, positions, torch.zeros_like(positions))   # padding: any value
        x = self.emb[ids] + self.pos[pos]                                          # (B, T, d)
        causal = torch.ones(T, T, dtype=torch.bool).tril()
        allowed = (causal & attention_mask[:, None, :]) | torch.eye(T, dtype=torch.bool)   # (B, T, T)
        w = allowed.to(x.dtype)
        h = (w / w.sum(-1, keepdim=True)) @ x                                      # (B, T, d)
        return torch.tanh(h @ self.w1) @ self.w2 + x @ self.w3, None


def as_float64(value) -> torch.Tensor:
    """A Python score as a 0-d float64 tensor (torch.tensor(float) would make it float32 and
    compare it at float32's tolerance)."""
    return torch.tensor(float(value), dtype=torch.float64)


def logits_of(model: nn.Module, seq: list[int]) -> torch.Tensor:
    """The model's next-token logits (V,) after the 1-D sequence `seq` (one call, no padding)."""
    ids = torch.tensor([seq])
    with torch.no_grad():
        out = model(ids, positions=torch.arange(len(seq))[None],
                    attention_mask=torch.ones(1, len(seq), dtype=torch.bool))[0]
    return out[0, -1]


# ---------------------------------------------------------------- filters, slowly

def _rows(logits: torch.Tensor):
    flat = logits.reshape(-1, logits.shape[-1])
    return flat, [flat[i] for i in range(flat.shape[0])]


def top_k_keep(logits: torch.Tensor, k: int) -> torch.Tensor:
    """bool (..., V): kept when ≥ the k-th largest value of the row (a Python sort)."""
    flat, rows = _rows(logits)
    keep = torch.zeros(flat.shape, dtype=torch.bool)
    for i, row in enumerate(rows):
        values = sorted(row.tolist(), reverse=True)
        kth = values[min(k, len(values)) - 1]
        keep[i] = torch.tensor([v >= kth for v in row.tolist()])
    return keep.reshape(logits.shape)


def top_p_keep(logits: torch.Tensor, p: float) -> tuple[torch.Tensor, float]:
    """bool (..., V) by the documented rule, with probabilities in float64 and a running sum
    in rank order; also the smallest distance between p and any running sum (so a test can
    skip inputs where float rounding could decide)."""
    flat, rows = _rows(logits)
    keep = torch.zeros(flat.shape, dtype=torch.bool)
    closest = math.inf
    for i, row in enumerate(rows):
        probs = torch.softmax(row.double(), -1).tolist()
        order = sorted(range(len(probs)), key=lambda j: (-probs[j], j))
        before = 0.0
        for j in order:
            closest = min(closest, abs(before - p)) if before > 0 else closest
            if before < p:
                keep[i, j] = True
            before += probs[j]
    return keep.reshape(logits.shape), closest


def min_p_keep(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    flat, rows = _rows(logits)
    keep = torch.zeros(flat.shape, dtype=torch.bool)
    for i, row in enumerate(rows):
        probs = torch.softmax(row.double(), -1)
        keep[i] = probs >= min_p * probs.max()
    return keep.reshape(logits.shape)


def apply_keep(logits: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
    return torch.where(keep, logits, torch.full_like(logits, float("-inf")))


def ctrl_penalty(logits: torch.Tensor, context: list[list[int]], penalty: float) -> torch.Tensor:
    """CTRL's rule, row by row and id by id (each distinct id once)."""
    out = logits.clone()
    for b, row in enumerate(context):
        for v in set(row):
            x = out[b, v]
            out[b, v] = x * penalty if x < 0 else x / penalty
    return out


def pipeline_probs(logits, temperature, top_k=None, top_p=None, min_p=None) -> torch.Tensor:
    """The documented sampling distribution, from the slow filters."""
    x = logits / temperature
    if top_k is not None:
        x = apply_keep(x, top_k_keep(x, top_k))
    if top_p is not None:
        x = apply_keep(x, top_p_keep(x, top_p)[0])
    if min_p is not None:
        x = apply_keep(x, min_p_keep(x, min_p))
    return torch.softmax(x, -1)


# ---------------------------------------------------------------- decoding, slowly

def greedy_oracle(model, prompt: list[int], max_new: int, eos_id=None, stop_sequences=(), penalty: float = 1.0,
                  prompt_in_context: bool = True):
    """Greedy decoding by the documented loop (prompt_in_context=False: a known mistake)."""
    seq, new = list(prompt), []
    for _ in range(max_new):
        logits = logits_of(model, seq)
        if penalty != 1:
            logits = ctrl_penalty(logits[None], [seq if prompt_in_context else new], penalty)[0]
        values = logits.tolist()
        token = values.index(max(values))
        seq.append(token)
        new.append(token)
        if eos_id is not None and token == eos_id:
            break
        if any(len(new) >= len(s) and new[-len(s):] == list(s) for s in stop_sequences):
            break
    return seq


def seq_logprob(model, prompt: list[int], continuation: list[int]) -> float:
    """Σ log p(continuation | prompt), float64, one model call on the whole sequence."""
    seq = list(prompt) + list(continuation)
    ids = torch.tensor([seq])
    with torch.no_grad():
        logits = model(ids, positions=torch.arange(len(seq))[None],
                       attention_mask=torch.ones(1, len(seq), dtype=torch.bool))[0][0]
    logp = torch.log_softmax(logits.double(), -1)
    T0 = len(prompt)
    return float(sum(logp[T0 - 1 + i, tok] for i, tok in enumerate(continuation)))


def all_continuations(V: int, max_new: int, eos_id):
    """Every sequence beam search can finish with: length max_new without eos, or eos at the
    end of any shorter length (eos only as the last token)."""
    for n in range(1, max_new + 1):
        for body in itertools.product([v for v in range(V) if v != eos_id], repeat=n - 1):
            if eos_id is not None:
                yield list(body) + [eos_id]
            if n == max_new:
                for last in range(V):
                    if last != eos_id:
                        yield list(body) + [last]


def brute_force_best(model, prompt: list[int], V: int, max_new: int, eos_id=None, length_penalty: float = 1.0):
    """(best continuation, its score, the runner-up's score) over all continuations."""
    scored = sorted(((seq_logprob(model, prompt, c) / len(c) ** length_penalty, c)
                     for c in all_continuations(V, max_new, eos_id)), key=lambda item: -item[0])
    return scored[0][1], scored[0][0], scored[1][0]


def beam_oracle(model, prompt: list[int], width: int, max_new: int, eos_id=None, length_penalty: float = 1.0):
    """The documented beam search with lists: (tokens, score, smallest gap between kept and
    dropped candidate log-probs, which a test uses to avoid near-ties)."""
    live = [(list(prompt), 0.0)]
    finished = []
    gap = math.inf
    for step in range(1, max_new + 1):
        cands = []
        for rank, (seq, s) in enumerate(live):
            logp = torch.log_softmax(logits_of(model, seq).double(), -1).tolist()
            cands += [(s + lp, rank, v, seq + [v]) for v, lp in enumerate(logp)]
        cands.sort(key=lambda c: (-c[0], c[1], c[2]))
        if len(cands) > width:
            gap = min(gap, cands[width - 1][0] - cands[width][0])
        live = []
        for s, _, v, seq in cands[:width]:
            if eos_id is not None and v == eos_id:
                finished.append((seq, s, step))
            else:
                live.append((seq, s))
        if not live:
            break
    else:
        finished += [(seq, s, max_new) for seq, s in live]
    best = None
    for seq, s, n in finished:
        score = s / n ** length_penalty
        if best is None or score > best[1]:
            best = (seq, score)
    return best[0], best[1], gap


# ---------------------------------------------------------------- chat

CHAT_TURN = re.compile(r"<\|(system|user|assistant)\|>\n(.*?)<\|end\|>\n", re.DOTALL)


def parse_chat(text: str):
    """(messages, whether a generation prompt ends the text) read back from the chat format,
    or None when the text does not follow it."""
    messages, at = [], 0
    for m in CHAT_TURN.finditer(text):
        if m.start() != at:
            return None
        messages.append({"role": m.group(1), "content": m.group(2)})
        at = m.end()
    rest = text[at:]
    if rest not in ("", "<|assistant|>\n"):
        return None
    return messages, rest == "<|assistant|>\n"
