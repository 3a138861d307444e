"""Helpers shared by the 16_inference graders (instructor code, not a test).

- models: the given trained tiny LLaMA (`trained_model`) and small random TinyLlamas with
  every parameter drawn fresh (`random_model`), norm gains around one;
- `functional_forward`: the whole TinyLlama recomputed on the full sequence from its own
  modules, with PyTorch's `scaled_dot_product_attention`, for any RoPE positions and any
  query-head -> kv-head map; it also returns every layer's keys and values as attention
  uses them. With the defaults it is `TinyLlama.forward`; with other arguments it computes
  what a known mistake of cached decoding computes;
- `greedy_full`: greedy decoding that recomputes the whole prefix at every step;
- `naive_attention`: softmax attention and its log-sum-exp with PyTorch built-ins;
  `tiled_mistake`: the online-softmax forward with one known mistake switched on;
- `AllocatorModel`: a paged block pool written as a plain simulation (a set of free blocks,
  tables, lengths), the oracle of BlockAllocator;
- `batching_oracle`: the continuous-batching rules written per step over the request list.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F

from llmlab.lib.llama import LlamaConfig, TinyLlama, apply_rope, load_tiny_llama
from llmlab.testing import check, tensors

TOPIC = "16_inference"

FLASH_BUILTINS = [
    "torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax", "torch.special.softmax",
    "torch.log_softmax", "torch.nn.functional.log_softmax", "torch.Tensor.log_softmax",
    "torch.special.log_softmax", "torch.logsumexp", "torch.Tensor.logsumexp", "torch.special.logsumexp",
    "torch.nn.functional.scaled_dot_product_attention",
]
FLASH_HINT = "Keep the running maximum and sum yourself (torch.exp, amax, sum)."


# ----------------------------------------------------------------- models

@functools.lru_cache(maxsize=1)
def _trained():
    model, codec, info = load_tiny_llama()
    return model, codec


def trained_model():
    """(the given trained tiny LLaMA in eval mode, its CharCodec); the same objects each call."""
    return _trained()


def is_norm_weight(name: str) -> bool:
    return name.endswith("norm.weight")


def random_model(seed: int, dtype=torch.float64, **overrides) -> TinyLlama:
    """A small TinyLlama (defaults changed by `overrides`) with every parameter drawn fresh."""
    fields = dict(vocab_size=13, block_size=16, n_layer=2, n_head=4, n_kv_head=2, d_model=16)
    fields.update(overrides)
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        model = TinyLlama(LlamaConfig(**fields))
    tensors.randomize_parameters(model, seed, 0.5, around_one=is_norm_weight)
    return model.to(dtype).eval()


def gqa_map(h: int, H: int, H_kv: int) -> int:
    """The convention: query head h reads kv head h // (H // H_kv)."""
    return h // (H // H_kv)


def tiled_map(h: int, H: int, H_kv: int) -> int:
    """The mistake: kv heads tiled (`repeat`), so query head h reads kv head h % H_kv."""
    return h % H_kv


@torch.no_grad()
def functional_forward(model: TinyLlama, idx: torch.Tensor, positions: torch.Tensor | None = None,
                       kv_head=gqa_map, rope_keys: bool = True, norm_keys: bool = True):
    """(logits (B, T, V), keys, values): the model on the whole of idx (causal), with RoPE at
    `positions` (T,) (default 0 … T − 1) and query head h reading kv head kv_head(h, H, H_kv).
    keys[l], values[l] are layer l's (B, H_kv, T, D) as attention used them. `rope_keys` or
    `norm_keys` False computes the mistake of caching the keys before RoPE / before k_norm
    (the queries are still rotated and normed)."""
    B, T = idx.shape
    pos = torch.arange(T) if positions is None else positions
    cos, sin = model.rope_cos[pos], model.rope_sin[pos]
    x = model.tok_emb(idx)
    keys, values = [], []
    for block in model.blocks:
        a = block.attn
        H, H_kv, D = a.n_heads, a.n_kv_heads, a.head_dim
        h = block.attn_norm(x)
        q = a.q_proj(h).view(B, T, H, D).transpose(1, 2)
        k = a.k_proj(h).view(B, T, H_kv, D).transpose(1, 2)
        v = a.v_proj(h).view(B, T, H_kv, D).transpose(1, 2)
        if a.q_norm is not None:
            q = a.q_norm(q)
            if norm_keys:
                k = a.k_norm(k)
        q = apply_rope(q, cos, sin)
        if rope_keys:
            k = apply_rope(k, cos, sin)
        keys.append(k)
        values.append(v)
        index = torch.tensor([kv_head(i, H, H_kv) for i in range(H)])
        y = F.scaled_dot_product_attention(q, k[:, index], v[:, index], is_causal=True)
        x = x + a.o_proj(y.transpose(1, 2).reshape(B, T, H * D))
        x = x + block.mlp(block.mlp_norm(x))
    return model.lm_head(model.norm(x)), keys, values


@torch.no_grad()
def greedy_full(model: TinyLlama, prompt: torch.Tensor, n: int) -> torch.Tensor:
    """Greedy decoding recomputing the whole prefix with model.forward at every step."""
    seq = prompt.clone()
    for _ in range(n):
        seq = torch.cat([seq, model(seq)[0][:, -1].argmax(-1, keepdim=True)], dim=1)
    return seq


def restart_positions(chunks: list[int]) -> torch.Tensor:
    """The RoPE positions a cache whose positions restart at 0 in every call uses."""
    return torch.cat([torch.arange(n) for n in chunks])


# ----------------------------------------------------------------- attention

def naive_attention(q, k, v, causal: bool, diagonal: int = 1):
    """(out, lse) of softmax(q·kᵀ / sqrt(D))·v with PyTorch built-ins (the full score matrix);
    `diagonal` 0 computes the mistake of a causal mask that hides the diagonal too."""
    s = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        T = q.shape[2]
        s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(diagonal), float("-inf"))
    return torch.softmax(s, dim=-1) @ v, torch.logsumexp(s, dim=-1)


def tiled_mistake(q, k, v, causal, block_q, block_k, *, rescale_sum=True, rescale_acc=True,
                  skip_diagonal_tile=False):
    """The online-softmax forward with one known mistake: the running sum or output not
    rescaled when the maximum changes, or (causal) the tile that holds the diagonal of the
    LAST query of a query tile skipped (`ks >= qe - 1` instead of `ks > qe - 1`)."""
    B, H, Tq, D = q.shape
    Tk = k.shape[2]
    scale = 1.0 / math.sqrt(D)
    out, lse = torch.empty_like(q), q.new_empty(B, H, Tq)
    for qs in range(0, Tq, block_q):
        qe = min(qs + block_q, Tq)
        m = q.new_full((B, H, qe - qs), float("-inf"))
        l = q.new_zeros(B, H, qe - qs)
        acc = q.new_zeros(B, H, qe - qs, D)
        for ks in range(0, Tk, block_k):
            if causal and (ks >= qe - 1 if skip_diagonal_tile else ks > qe - 1):
                break
            ke = min(ks + block_k, Tk)
            s = q[:, :, qs:qe] @ k[:, :, ks:ke].transpose(-2, -1) * scale
            if causal:
                s = s.masked_fill(torch.arange(ks, ke)[None, :] > torch.arange(qs, qe)[:, None], float("-inf"))
            m_new = torch.maximum(m, s.amax(-1))
            p = torch.exp(s - m_new[..., None])
            alpha = torch.exp(m - m_new)
            l = (alpha if rescale_sum else 1.0) * l + p.sum(-1)
            acc = (alpha[..., None] if rescale_acc else 1.0) * acc + p @ v[:, :, ks:ke]
            m = m_new
        out[:, :, qs:qe] = acc / l[..., None]
        lse[:, :, qs:qe] = m + torch.log(l)
    return out, lse


def attention_inputs(seed: int, B: int, H: int, Tq: int, Tk: int, D: int, dtype=torch.float64, spread=1.5):
    """q, k, v drawn from one seed; `spread` widens the scores so the running maximum moves."""
    q = tensors.randn((B, H, Tq, D), seed, dtype, scale=spread)
    k = tensors.randn((B, H, Tk, D), seed + 1, dtype, scale=spread)
    v = tensors.randn((B, H, Tk, D), seed + 2, dtype)
    return q, k, v


# ----------------------------------------------------------------- paged KV memory

class AllocatorModel:
    """The paged pool as a plain simulation: a set of free blocks, each sequence's table and
    length. Operations return what the docstring promises, or the name of the exception."""

    def __init__(self, num_blocks: int, block_size: int):
        self.num_blocks, self.block_size = num_blocks, block_size
        self.free = set(range(num_blocks))
        self.tables: dict = {}
        self.lengths: dict = {}

    def _grow(self, seq, n):
        target = math.ceil((self.lengths[seq] + n) / self.block_size)
        new = sorted(self.free)[:target - len(self.tables[seq])]
        if len(self.tables[seq]) + len(new) < target:
            return "MemoryError"
        self.free -= set(new)
        self.tables[seq] += new
        self.lengths[seq] += n
        return new

    def allocate(self, seq, n):
        if seq in self.tables or n < 0:
            return "ValueError"
        self.tables[seq], self.lengths[seq] = [], 0
        result = self._grow(seq, n)
        if result == "MemoryError":
            del self.tables[seq], self.lengths[seq]
            return result
        return list(self.tables[seq])

    def append(self, seq, n):
        if seq not in self.tables:
            return "KeyError"
        if n < 0:
            return "ValueError"
        return self._grow(seq, n)

    def free_seq(self, seq):
        if seq not in self.tables:
            return "KeyError"
        self.free |= set(self.tables.pop(seq))
        del self.lengths[seq]
        return None


# ----------------------------------------------------------------- continuous batching

def batching_oracle(requests, max_batch: int, kv_capacity: int):
    """(schedule, batch_sizes) by the docstring's rules, written per step over the whole list:
    each step scans the requests in queue order and keeps per-request state in dicts."""
    order = sorted(range(len(requests)), key=lambda i: (requests[i].arrival, i))
    started, left, done, schedule, sizes = {}, {}, set(), {}, []
    t = 0
    while len(done) < len(requests):
        running = [i for i in order if i in started and i not in done]
        used = sum(requests[i].prompt_len + requests[i].output_len for i in running)
        for i in order:
            if i in started:
                continue
            r = requests[i]
            if r.arrival > t or len(running) >= max_batch or used + r.prompt_len + r.output_len > kv_capacity:
                break
            started[i], left[i] = t, r.output_len
            running.append(i)
            used += r.prompt_len + r.output_len
        sizes.append(len(running))
        for i in running:
            left[i] -= 1
            if left[i] == 0:
                done.add(i)
                schedule[requests[i].id] = (started[i], t)
        t += 1
    return schedule, sizes
