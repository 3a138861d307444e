"""Topic 16: inference — the KV cache, FlashAttention, quantisation, paged memory, batching.

Training computes every position of a sequence at once; serving a language model produces
one token at a time, for many users at once, on memory that is always too small. This module
holds the pieces that make that fast:

- a **KV cache**: the keys and values of every token seen so far, pre-allocated, so that a
  decoding step computes the new token only (`KVCache`, `cached_forward`, `generate_cached`);
- **FlashAttention**: exact attention computed block by block with an online softmax, so that
  no (T, T) matrix is ever stored; forward (`flash_attention`) and backward with
  recomputation (`FlashAttention`, a `torch.autograd.Function`);
- **quantisation**: symmetric absmax int8/int4, per tensor or per group of the last axis
  (`quantize_absmax`, `dequantize_absmax`);
- a **paged KV allocator**: the cache memory of many sequences as fixed-size blocks
  (`BlockAllocator`), and a **continuous-batching** scheduler simulation
  (`simulate_continuous_batching`).

Shapes: B batch, H query heads, H_kv key/value heads, T sequence length (Tq queries, Tk
keys), D head size, C = d_model, V vocabulary size, L number of layers. Logarithms are
natural. The model is the given `llmlab.lib.llama.TinyLlama` (RoPE in the half-split layout,
grouped-query attention: query head h reads kv head h // (H // H_kv)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Hashable, Sequence

import torch
from torch import nn

from llmlab.lib.llama import TinyLlama, apply_rope


# ---------------------------------------------------------------- the KV cache

class KVCache:
    """The keys and values of every layer for a batch of sequences that advance together.

    Attributes (their names are part of the contract):
        k, v    (L, B, H_kv, max_len, D) tensors of `dtype`, allocated once, zeros at first;
                k[l, :, :, p] holds the key of the token at position p of layer l, as
                attention uses it (after k_norm, when the model has one, and after RoPE at
                position p); v likewise, without norm or rotation.
        length  the number of positions filled so far (the same for every row and layer);
                the next token goes to position `length`.
        max_len the number of positions allocated.
    A step writes every layer with `append` and then moves `length` on once with `advance`.
    """

    def __init__(self, n_layer: int, batch_size: int, n_kv_heads: int, max_len: int, head_dim: int,
                 dtype: torch.dtype = torch.float32):
        """Allocate `k` and `v` as zeros of shape (n_layer, batch_size, n_kv_heads, max_len,
        head_dim) and dtype `dtype`; set `length` to 0 and keep `max_len`.

        Raises ValueError, naming the argument, when any size is not a positive integer (a bool
        is not an integer here).
        """
        ### BEGIN SOLUTION
        sizes = dict(n_layer=n_layer, batch_size=batch_size, n_kv_heads=n_kv_heads, max_len=max_len,
                     head_dim=head_dim)
        for name, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"KVCache: {name} must be a positive integer, got {value!r}")
        shape = (n_layer, batch_size, n_kv_heads, max_len, head_dim)
        self.k = torch.zeros(shape, dtype=dtype)
        self.v = torch.zeros(shape, dtype=dtype)
        self.length = 0
        self.max_len = max_len
        ### END SOLUTION

    @classmethod
    def for_model(cls, model: TinyLlama, batch_size: int, max_len: int | None = None) -> "KVCache":
        """Given: an empty cache sized for `model` (max_len defaults to its block_size), in
        the dtype of its weights."""
        c = model.config
        return cls(c.n_layer, batch_size, c.n_kv_head, max_len or c.block_size, c.d_model // c.n_head,
                   dtype=model.lm_head.weight.dtype)

    def positions(self, n: int) -> torch.Tensor:
        """The positions of the next `n` tokens: (n,) int64, length, length + 1, …,
        length + n − 1 (empty for n = 0). Does not change the cache."""
        ### BEGIN SOLUTION
        return torch.arange(self.length, self.length + n)
        ### END SOLUTION

    def append(self, layer: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Write the keys and values of the next tokens of layer `layer`; return all of them.

        k, v: (B, H_kv, n, D), n ≥ 1, for the tokens at positions length … length + n − 1.
        They are copied into self.k[layer] and self.v[layer] at those positions; `length`
        does NOT change (call `advance` once the step has written every layer).
        Returns (keys, values) of that layer for positions 0 … length + n − 1, each
        (B, H_kv, length + n, D): views of self.k and self.v, in the cache's dtype.
        Raises ValueError when layer is not in 0 … L − 1, when k or v is not of shape
        (B, H_kv, n, D) with the cache's B, H_kv, D and n ≥ 1, or when length + n > max_len.
        """
        ### BEGIN SOLUTION
        n_layer, B, H_kv, _, D = self.k.shape
        if not 0 <= layer < n_layer:
            raise ValueError(f"KVCache.append: layer must be in 0 … {n_layer - 1}, got {layer}")
        for name, t in (("k", k), ("v", v)):
            if t.dim() != 4 or (t.shape[0], t.shape[1], t.shape[3]) != (B, H_kv, D) or t.shape[2] < 1:
                raise ValueError(f"KVCache.append: {name} must be (B={B}, H_kv={H_kv}, n ≥ 1, D={D}), "
                                 f"got {tuple(t.shape)}")
        if k.shape != v.shape:
            raise ValueError(f"KVCache.append: k {tuple(k.shape)} and v {tuple(v.shape)} differ in shape")
        end = self.length + k.shape[2]
        if end > self.max_len:
            raise ValueError(f"KVCache.append: {self.length} + {k.shape[2]} positions exceed max_len "
                             f"{self.max_len}")
        self.k[layer, :, :, self.length:end] = k
        self.v[layer, :, :, self.length:end] = v
        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]
        ### END SOLUTION

    def advance(self, n: int) -> None:
        """Move `length` on by n ≥ 0 positions (after a step wrote n tokens to every layer).

        Raises ValueError when n < 0 or length + n > max_len.
        """
        ### BEGIN SOLUTION
        if n < 0 or self.length + n > self.max_len:
            raise ValueError(f"KVCache.advance: cannot move length {self.length} by {n} "
                             f"(max_len {self.max_len})")
        self.length += n
        ### END SOLUTION


def cached_forward(model: TinyLlama, idx: torch.Tensor, cache: KVCache) -> torch.Tensor:
    """The logits of the next tokens of each row, computed with (and into) the cache.

    model: the given TinyLlama (eval mode, no dropout), in float32 or float64.
    idx:   (B, n) int64, n ≥ 1: the tokens at positions cache.length … cache.length + n − 1
           (n > 1 for the prompt, a "prefill"; n = 1 for a decoding step).
    cache: a KVCache with the model's L, H_kv, D and dtype and the batch size B; it already
           holds positions 0 … cache.length − 1 of these rows.
    Runs the model's own modules exactly as TinyLlama.forward does, but for the new tokens
    only: x = tok_emb(idx); per block, h = attn_norm(x), q, k, v = q_proj(h), k_proj(h),
    v_proj(h) split into heads (B, H or H_kv, n, D); q_norm/k_norm when the model has them;
    RoPE (`llmlab.lib.llama.apply_rope`) with model.rope_cos/rope_sin at the tokens'
    positions cache.positions(n) — not 0 … n − 1; the new k, v appended to the cache; each new
    query at position p attends to every cached key at a position ≤ p (causal), query head h
    reading kv head h // (H // H_kv), softmax(q·kᵀ / sqrt(D)); x += o_proj(heads joined);
    x += mlp(mlp_norm(x)); finally lm_head(norm(x)). Then cache.advance(n).
    Returns (B, n, V) in the model's dtype: equal (up to rounding) to
    model(full sequence so far)[0][:, -n:].
    Raises ValueError when cache.length + n exceeds model.config.block_size (RoPE has no
    angle for later positions) or the cache's max_len (`KVCache.append` raises).
    """
    # Hint: repeat_interleave along the head axis expands H_kv heads into H in GQA's order.
    ### BEGIN SOLUTION
    B, n = idx.shape
    start = cache.length
    if start + n > model.config.block_size:
        raise ValueError(f"cached_forward: positions up to {start + n - 1} exceed block_size "
                         f"{model.config.block_size}")
    pos = cache.positions(n)                                             # (n,)
    cos, sin = model.rope_cos[pos], model.rope_sin[pos]                  # (n, D)
    key_pos = torch.arange(start + n)                                    # (start + n,)
    visible = key_pos[None, :] <= pos[:, None]                           # (n, start + n)
    x = model.tok_emb(idx)                                               # (B, n, C)
    for layer, block in enumerate(model.blocks):
        attn = block.attn
        H, H_kv, D = attn.n_heads, attn.n_kv_heads, attn.head_dim
        h = block.attn_norm(x)                                           # (B, n, C)
        q = attn.q_proj(h).view(B, n, H, D).transpose(1, 2)              # (B, H, n, D)
        k = attn.k_proj(h).view(B, n, H_kv, D).transpose(1, 2)           # (B, H_kv, n, D)
        v = attn.v_proj(h).view(B, n, H_kv, D).transpose(1, 2)           # (B, H_kv, n, D)
        if attn.q_norm is not None:
            q, k = attn.q_norm(q), attn.k_norm(k)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        keys, values = cache.append(layer, k, v)                         # (B, H_kv, start + n, D)
        keys = keys.repeat_interleave(H // H_kv, dim=1)                  # (B, H, start + n, D)
        values = values.repeat_interleave(H // H_kv, dim=1)
        scores = q @ keys.transpose(-2, -1) / math.sqrt(D)               # (B, H, n, start + n)
        scores = scores.masked_fill(~visible, float("-inf"))
        y = scores.softmax(dim=-1) @ values                              # (B, H, n, D)
        x = x + attn.o_proj(y.transpose(1, 2).reshape(B, n, H * D))      # (B, n, C)
        x = x + block.mlp(block.mlp_norm(x))
    cache.advance(n)
    return model.lm_head(model.norm(x))                                  # (B, n, V)
    ### END SOLUTION


def generate_cached(model: TinyLlama, prompt: torch.Tensor, max_new_tokens: int) -> torch.Tensor:
    """Greedy decoding with a KV cache: each token goes through the model once.

    model:  the given TinyLlama (eval mode), float32 or float64.
    prompt: (B, T0) int64, T0 ≥ 1.
    Makes a cache (`KVCache.for_model`), runs `cached_forward` once on the whole prompt (the
    prefill), then once per generated token on that token alone; each new token is the
    argmax of the last logits (ties go to the lowest id). The last generated token is not fed
    back (nothing would use its logits), so the model sees T0 + max_new_tokens − 1 tokens in
    all, each exactly once; with max_new_tokens = 0 the model is not run. Never calls
    model.forward. Runs under torch.no_grad().
    Returns (B, T0 + max_new_tokens) int64: the prompt followed by the new tokens — the same
    tokens as greedy decoding that recomputes the whole prefix at every step.
    Raises ValueError when T0 < 1, max_new_tokens < 0, or T0 + max_new_tokens − 1 >
    model.config.block_size.
    """
    ### BEGIN SOLUTION
    B, T0 = prompt.shape
    if T0 < 1 or max_new_tokens < 0:
        raise ValueError(f"generate_cached: need T0 ≥ 1 and max_new_tokens ≥ 0, got {T0}, {max_new_tokens}")
    if T0 + max_new_tokens - 1 > model.config.block_size:
        raise ValueError(f"generate_cached: {T0} + {max_new_tokens} − 1 positions exceed block_size "
                         f"{model.config.block_size}")
    out = prompt.clone()
    if max_new_tokens == 0:
        return out
    with torch.no_grad():
        cache = KVCache.for_model(model, B, T0 + max_new_tokens - 1)
        logits = cached_forward(model, prompt, cache)[:, -1]             # (B, V)
        for step in range(max_new_tokens):
            token = logits.argmax(dim=-1, keepdim=True)                  # (B, 1)
            out = torch.cat([out, token], dim=1)
            if step + 1 < max_new_tokens:
                logits = cached_forward(model, token, cache)[:, -1]
    return out
    ### END SOLUTION


# ---------------------------------------------------------------- FlashAttention

def flash_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                    block_q: int = 64, block_k: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact attention, tiled: softmax(q·kᵀ / sqrt(D))·v without ever forming the (Tq, Tk)
    matrix, and the log-sum-exp of every row of scores.

    q: (B, H, Tq, D); k, v: (B, H, Tk, D); one floating dtype (float32 or float64), any
       strides (views are fine); Tq, Tk, D ≥ 1. No GQA: k and v have H heads too.
    causal: query i attends to keys j ≤ i only (requires Tq == Tk).
    block_q, block_k: the tile sizes, positive integers; they need not divide Tq or Tk (the
       last tile is shorter) and may exceed them.
    For each tile of block_q queries, loop over the tiles of block_k keys with the online
    softmax: keep per query the running maximum m of its scores, the running sum l of
    exp(score − m) and the running output acc = Σ exp(score − m)·v; when a tile raises the
    maximum to m', rescale l and acc by exp(m − m') first. Under `causal`, mask the scores of
    keys after their query (key > query); a key tile that lies entirely after the last query
    of the query tile contributes nothing, so it may be skipped (FlashAttention does: it
    halves the work) — but never the tile that holds a query's own key.
    Returns (out, lse):
        out (B, H, Tq, D): the attention output, acc / l;
        lse (B, H, Tq):    the NATURAL-log sum of exp of the scaled scores of each query row
                           over the keys it attends to, m + log(l);
    both in the inputs' dtype. No softmax, logsumexp or scaled_dot_product_attention
    built-in may be used. Raises ValueError when a tensor is not 4-D, the shapes do not match
    as above, the dtypes differ, block_q or block_k is not a positive integer (a bool is not
    one), or causal is set with Tq != Tk.
    """
    ### BEGIN SOLUTION
    _check_attention_inputs(q, k, v, causal, block_q, block_k)
    B, H, Tq, D = q.shape
    Tk = k.shape[2]
    scale = 1.0 / math.sqrt(D)
    out = q.new_empty(B, H, Tq, D)
    lse = q.new_empty(B, H, Tq)
    for qs in range(0, Tq, block_q):
        qe = min(qs + block_q, Tq)
        qb = q[:, :, qs:qe]                                              # (B, H, bq, D)
        m = q.new_full((B, H, qe - qs), float("-inf"))                   # running max
        l = q.new_zeros(B, H, qe - qs)                                   # running sum
        acc = q.new_zeros(B, H, qe - qs, D)                              # running output
        for ks in range(0, Tk, block_k):
            if causal and ks > qe - 1:
                break                                                    # keys all in the future
            ke = min(ks + block_k, Tk)
            s = qb @ k[:, :, ks:ke].transpose(-2, -1) * scale            # (B, H, bq, bk)
            if causal:
                future = torch.arange(ks, ke)[None, :] > torch.arange(qs, qe)[:, None]
                s = s.masked_fill(future, float("-inf"))
            m_new = torch.maximum(m, s.amax(dim=-1))                     # (B, H, bq)
            p = torch.exp(s - m_new[..., None])                          # (B, H, bq, bk)
            alpha = torch.exp(m - m_new)                                 # rescales the old sums
            l = alpha * l + p.sum(dim=-1)
            acc = alpha[..., None] * acc + p @ v[:, :, ks:ke]
            m = m_new
        out[:, :, qs:qe] = acc / l[..., None]
        lse[:, :, qs:qe] = m + torch.log(l)
    return out, lse
    ### END SOLUTION


def _check_attention_inputs(q, k, v, causal, block_q, block_k) -> None:
    """Given: raise ValueError unless the inputs follow flash_attention's docstring."""
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(f"flash_attention: q, k, v must be 4-D (B, H, T, D), got {q.dim()}, {k.dim()}, {v.dim()}")
    if k.shape != v.shape or k.shape[:2] != q.shape[:2] or k.shape[3] != q.shape[3]:
        raise ValueError(f"flash_attention: shapes q {tuple(q.shape)}, k {tuple(k.shape)}, v {tuple(v.shape)} "
                         f"do not match (B, H, Tq, D), (B, H, Tk, D), (B, H, Tk, D)")
    if min(q.shape) < 1 or k.shape[2] < 1:
        raise ValueError("flash_attention: every size must be at least 1")
    if not (q.dtype == k.dtype == v.dtype) or not q.is_floating_point():
        raise ValueError(f"flash_attention: q, k, v need one floating dtype, got {q.dtype}, {k.dtype}, {v.dtype}")
    for name, b in (("block_q", block_q), ("block_k", block_k)):
        if isinstance(b, bool) or not isinstance(b, int) or b < 1:
            raise ValueError(f"flash_attention: {name} must be a positive integer, got {b!r}")
    if causal and q.shape[2] != k.shape[2]:
        raise ValueError(f"flash_attention: causal attention needs Tq == Tk, got {q.shape[2]} and {k.shape[2]}")


class FlashAttention(torch.autograd.Function):
    """FlashAttention with its own backward: `FlashAttention.apply(q, k, v, causal, block_q,
    block_k)` returns (out, lse) as `flash_attention` does, and gradients flow to q, k, v
    from both outputs. The backward recomputes the attention probabilities tile by tile from
    q, k and the saved lse instead of storing them, so memory stays linear in T."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                block_q: int = 64, block_k: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
        """Compute (out, lse) with `flash_attention`; save q, k, v, out and lse (nothing of
        size Tq·Tk) with ctx.save_for_backward, and causal, block_q, block_k on ctx."""
        ### BEGIN SOLUTION
        out, lse = flash_attention(q, k, v, causal, block_q, block_k)
        ctx.save_for_backward(q, k, v, out, lse)
        ctx.causal, ctx.block_q, ctx.block_k = causal, block_q, block_k
        return out, lse
        ### END SOLUTION

    @staticmethod
    def backward(ctx, dout: torch.Tensor, dlse: torch.Tensor):
        """Gradients (dq, dk, dv, None, None, None) from dout (B, H, Tq, D) and dlse (B, H, Tq).

        With s = q·kᵀ / sqrt(D) (masked entries −inf under causal), P = exp(s − lse) (the
        softmax, recomputed per tile from the saved lse) and δ_i = Σ_d dout_id·out_id:
            dv = Pᵀ·dout,   dP = dout·vᵀ,   ds = P ⊙ (dP − δ + dlse),
            dq = ds·k / sqrt(D),   dk = dsᵀ·q / sqrt(D),
        accumulated over the tiles (future tiles contribute nothing and may be skipped). No
        autograd inside, no (Tq, Tk) tensor, no softmax built-in. Each gradient has the shape
        and dtype of its input.
        """
        ### BEGIN SOLUTION
        q, k, v, out, lse = ctx.saved_tensors
        causal, block_q, block_k = ctx.causal, ctx.block_q, ctx.block_k
        Tq, D = q.shape[2], q.shape[3]
        Tk = k.shape[2]
        scale = 1.0 / math.sqrt(D)
        dq, dk, dv = torch.zeros_like(q), torch.zeros_like(k), torch.zeros_like(v)
        delta = (dout * out).sum(dim=-1)                                 # (B, H, Tq)
        for qs in range(0, Tq, block_q):
            qe = min(qs + block_q, Tq)
            qb, dob = q[:, :, qs:qe], dout[:, :, qs:qe]                  # (B, H, bq, D)
            shift = (dlse[:, :, qs:qe] - delta[:, :, qs:qe])[..., None]  # (B, H, bq, 1)
            for ks in range(0, Tk, block_k):
                if causal and ks > qe - 1:
                    break
                ke = min(ks + block_k, Tk)
                kb, vb = k[:, :, ks:ke], v[:, :, ks:ke]                  # (B, H, bk, D)
                s = qb @ kb.transpose(-2, -1) * scale                    # (B, H, bq, bk)
                if causal:
                    future = torch.arange(ks, ke)[None, :] > torch.arange(qs, qe)[:, None]
                    s = s.masked_fill(future, float("-inf"))
                p = torch.exp(s - lse[:, :, qs:qe, None])                # (B, H, bq, bk)
                dv[:, :, ks:ke] += p.transpose(-2, -1) @ dob
                ds = p * (dob @ vb.transpose(-2, -1) + shift)            # (B, H, bq, bk)
                dq[:, :, qs:qe] += ds @ kb * scale
                dk[:, :, ks:ke] += ds.transpose(-2, -1) @ qb * scale
        return dq, dk, dv, None, None, None
        ### END SOLUTION


def flash_attention_with_grad(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, causal: bool = False,
                              block_q: int = 64, block_k: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Given: `FlashAttention.apply` with flash_attention's signature (autograd.Function
    takes its arguments by position)."""
    return FlashAttention.apply(q, k, v, causal, block_q, block_k)


# ---------------------------------------------------------------- quantisation

def quantize_absmax(x: torch.Tensor, bits: int = 8, group_size: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Symmetric absmax quantisation to signed `bits`-bit integers.

    x:    float32 or float64, at least 1-D: (..., N).
    bits: 8 (int8, q_max = 127) or 4 (int4, q_max = 7); q_max = 2^(bits−1) − 1, so the
          range is symmetric and −2^(bits−1) is never used.
    group_size: None for one scale for the whole tensor; otherwise a positive divisor G of
          N: the last axis is cut into N / G contiguous groups x[..., g·G:(g+1)·G], each with
          its own scale.
    scale = absmax / q_max, where absmax is the largest |x| of the tensor (or of the group):
          the largest magnitude, negative values included. A group of zeros gets scale 0.
    q = round(x / scale), rounding half to even (torch.round); q = 0 where scale is 0. Then
          |q| ≤ q_max, the element of largest |x| maps to ±q_max, and dequantising gives an
          error |x − q·scale| ≤ scale / 2 per element.
    Returns (q, scale): q of x's shape, dtype int8 (int4 values are stored in int8 too);
    scale of x's dtype, shape () for group_size None, else (..., N / G).
    Raises ValueError when bits is not 4 or 8, x is 0-d or empty, or group_size is not a
    positive integer (a bool is not one) dividing N.
    """
    ### BEGIN SOLUTION
    if bits not in (4, 8):
        raise ValueError(f"quantize_absmax: bits must be 4 or 8, got {bits!r}")
    if x.dim() == 0 or x.numel() == 0:
        raise ValueError(f"quantize_absmax: x must be at least 1-D and non-empty, got shape {tuple(x.shape)}")
    q_max = 2 ** (bits - 1) - 1
    N = x.shape[-1]
    if group_size is None:
        groups = x.reshape(1, -1)                                        # one group: the whole tensor
    elif isinstance(group_size, bool) or not isinstance(group_size, int) or group_size < 1 or N % group_size:
        raise ValueError(f"quantize_absmax: group_size must be a positive divisor of the last axis "
                         f"({N}), got {group_size!r}")
    else:
        groups = x.reshape(*x.shape[:-1], N // group_size, group_size)   # (..., N / G, G)
    scale = groups.abs().amax(dim=-1) / q_max                            # (..., N / G) or (1,)
    safe = torch.where(scale > 0, scale, torch.ones_like(scale))
    q = torch.round(groups / safe[..., None]).to(torch.int8).reshape(x.shape)
    if group_size is None:
        scale = scale.reshape(())
    return q, scale
    ### END SOLUTION


def dequantize_absmax(q: torch.Tensor, scale: torch.Tensor, group_size: int | None = None) -> torch.Tensor:
    """The values q·scale that `quantize_absmax(x, bits, group_size)` stands for.

    q:     integer tensor (..., N), as returned by quantize_absmax.
    scale: shape () for group_size None, else (..., N / G) with G = group_size: element
           q[..., j] is multiplied by scale[..., j // G].
    Returns a tensor of q's shape in scale's dtype.
    Raises ValueError when scale's shape does not fit q and group_size as above.
    """
    ### BEGIN SOLUTION
    values = q.to(scale.dtype)
    if group_size is None:
        if scale.dim() != 0:
            raise ValueError(f"dequantize_absmax: a per-tensor scale must be 0-d, got shape {tuple(scale.shape)}")
        return values * scale
    N = q.shape[-1]
    if N % group_size or tuple(scale.shape) != (*q.shape[:-1], N // group_size):
        raise ValueError(f"dequantize_absmax: scale of shape {tuple(scale.shape)} does not fit q "
                         f"{tuple(q.shape)} with group_size {group_size}")
    groups = values.reshape(*q.shape[:-1], N // group_size, group_size)  # (..., N / G, G)
    return (groups * scale[..., None]).reshape(q.shape)
    ### END SOLUTION


# ---------------------------------------------------------------- paged KV memory

class BlockAllocator:
    """The KV-cache memory of many sequences as a pool of fixed-size blocks (vLLM's paging).

    The pool has `num_blocks` physical blocks, numbered 0 … num_blocks − 1, each holding the
    keys and values of `block_size` tokens. A sequence of n tokens owns ceil(n / block_size)
    blocks, listed in its block table in logical order: token t lives in block
    table[t // block_size] at offset t % block_size. A block belongs to at most one sequence;
    a block no sequence owns is free. New blocks are always the lowest-numbered free ones,
    taken in increasing order. Sequence ids are any hashable values.
    """

    def __init__(self, num_blocks: int, block_size: int):
        """An empty pool: every block free, no sequence.

        Raises ValueError when num_blocks or block_size is not a positive integer (a bool is
        not one).
        """
        ### BEGIN SOLUTION
        for name, value in (("num_blocks", num_blocks), ("block_size", block_size)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"BlockAllocator: {name} must be a positive integer, got {value!r}")
        self.num_blocks, self.block_size = num_blocks, block_size
        self._free = list(range(num_blocks))                             # kept sorted
        self._tables: dict[Hashable, list[int]] = {}
        self._lengths: dict[Hashable, int] = {}
        ### END SOLUTION

    @property
    def num_free(self) -> int:
        """The number of free blocks."""
        ### BEGIN SOLUTION
        return len(self._free)
        ### END SOLUTION

    def allocate(self, seq_id: Hashable, n_tokens: int = 0) -> list[int]:
        """Start sequence `seq_id` with n_tokens ≥ 0 tokens (its prompt); return its block
        table (ceil(n_tokens / block_size) new blocks).

        Raises ValueError when seq_id already exists or n_tokens < 0, and MemoryError when
        there are not enough free blocks; after an error nothing has changed.
        """
        ### BEGIN SOLUTION
        if seq_id in self._tables:
            raise ValueError(f"BlockAllocator.allocate: sequence {seq_id!r} already exists")
        if n_tokens < 0:
            raise ValueError(f"BlockAllocator.allocate: n_tokens must be ≥ 0, got {n_tokens}")
        self._tables[seq_id], self._lengths[seq_id] = [], 0
        try:
            self.append(seq_id, n_tokens)
        except MemoryError:
            del self._tables[seq_id], self._lengths[seq_id]
            raise
        return list(self._tables[seq_id])
        ### END SOLUTION

    def append(self, seq_id: Hashable, n_tokens: int = 1) -> list[int]:
        """Add n_tokens ≥ 0 tokens to sequence `seq_id`; return the blocks newly added to its
        table (empty when its last block still has room).

        Raises KeyError for an unknown sequence, ValueError when n_tokens < 0, MemoryError
        when there are not enough free blocks; after an error nothing has changed.
        """
        ### BEGIN SOLUTION
        if seq_id not in self._tables:
            raise KeyError(f"BlockAllocator.append: unknown sequence {seq_id!r}")
        if n_tokens < 0:
            raise ValueError(f"BlockAllocator.append: n_tokens must be ≥ 0, got {n_tokens}")
        length = self._lengths[seq_id] + n_tokens
        need = -(-length // self.block_size) - len(self._tables[seq_id])     # ceil(length / block_size) − owned
        if need > len(self._free):
            raise MemoryError(f"BlockAllocator.append: {need} more blocks needed for {seq_id!r}, "
                              f"{len(self._free)} free")
        new, self._free = self._free[:need], self._free[need:]          # the lowest-numbered free blocks
        self._tables[seq_id].extend(new)
        self._lengths[seq_id] = length
        return new
        ### END SOLUTION

    def free(self, seq_id: Hashable) -> None:
        """Forget sequence `seq_id` and return all its blocks to the pool.

        Raises KeyError for an unknown sequence (freeing twice is an error).
        """
        ### BEGIN SOLUTION
        if seq_id not in self._tables:
            raise KeyError(f"BlockAllocator.free: unknown sequence {seq_id!r}")
        self._free = sorted(self._free + self._tables.pop(seq_id))
        del self._lengths[seq_id]
        ### END SOLUTION

    def block_table(self, seq_id: Hashable) -> list[int]:
        """A copy of the block table of `seq_id` (changing it changes nothing here).

        Raises KeyError for an unknown sequence."""
        ### BEGIN SOLUTION
        return list(self._tables[seq_id])
        ### END SOLUTION

    def slot(self, seq_id: Hashable, position: int) -> tuple[int, int]:
        """(physical block, offset in it) of token `position` of `seq_id`.

        Raises KeyError for an unknown sequence and IndexError unless 0 ≤ position < the
        sequence's length.
        """
        ### BEGIN SOLUTION
        table, length = self._tables[seq_id], self._lengths[seq_id]
        if not 0 <= position < length:
            raise IndexError(f"BlockAllocator.slot: position {position} outside 0 … {length - 1}")
        return table[position // self.block_size], position % self.block_size
        ### END SOLUTION


# ---------------------------------------------------------------- continuous batching

@dataclass(frozen=True)
class Request:
    """Given: a generation request of the scheduler simulation.

    id          any hashable, unique among the requests of one simulation
    arrival     the step at which it arrives (an int ≥ 0)
    prompt_len  tokens of its prompt (≥ 1)
    output_len  tokens it generates (≥ 1)
    """
    id: Hashable
    arrival: int
    prompt_len: int
    output_len: int


def simulate_continuous_batching(requests: Sequence[Request], max_batch: int,
                                 kv_capacity: int) -> tuple[dict, list[int]]:
    """Simulate a continuous-batching server step by step (iteration-level scheduling).

    Every step t = 0, 1, 2, … does, in this order:
    1. Admission. The requests that have arrived (arrival ≤ t) and not started wait in one
       queue, first come first served: by arrival, then by their order in `requests`. From
       the head of the queue, a request is admitted while the running batch has fewer than
       `max_batch` requests and its KV reservation fits: every running request reserves
       prompt_len + output_len tokens of the `kv_capacity` from its admission until it
       finishes. The first request that does not fit ends admission for this step (no
       request overtakes another).
    2. Decoding. Every running request, the ones just admitted included (their prefill makes
       their first token), produces one token.
    3. A request that produced its output_len-th token in step t finishes in step t: it
       leaves the batch and frees its reservation for step t + 1.
    The simulation stops after the step in which the last request finishes.
    Returns (schedule, batch_sizes):
        schedule    dict id -> (start, finish): the step of its admission and of its last
                    token, so finish − start + 1 = output_len;
        batch_sizes list of ints, one per step 0 … last finish: the number of requests that
                    produced a token in that step (0 in a step where nothing runs).
    No requests give ({}, []).
    Raises ValueError when max_batch or kv_capacity is below 1, two requests share an id, a
    request has arrival < 0, prompt_len < 1 or output_len < 1, or a request needs more than
    kv_capacity on its own (it could never run).
    """
    ### BEGIN SOLUTION
    if max_batch < 1 or kv_capacity < 1:
        raise ValueError(f"simulate_continuous_batching: max_batch and kv_capacity must be ≥ 1, "
                         f"got {max_batch}, {kv_capacity}")
    if len({r.id for r in requests}) != len(requests):
        raise ValueError("simulate_continuous_batching: request ids must be unique")
    for r in requests:
        if r.arrival < 0 or r.prompt_len < 1 or r.output_len < 1:
            raise ValueError(f"simulate_continuous_batching: invalid request {r}")
        if r.prompt_len + r.output_len > kv_capacity:
            raise ValueError(f"simulate_continuous_batching: request {r.id!r} needs "
                             f"{r.prompt_len + r.output_len} tokens, more than kv_capacity {kv_capacity}")
    queue = sorted(range(len(requests)), key=lambda i: (requests[i].arrival, i))   # FCFS order
    queue = [requests[i] for i in queue]
    running: dict[Hashable, list] = {}                                   # id -> [request, tokens left, start]
    reserved, step, head = 0, 0, 0
    schedule, batch_sizes = {}, []
    while head < len(queue) or running:
        while head < len(queue) and queue[head].arrival <= step and len(running) < max_batch:
            r = queue[head]
            if reserved + r.prompt_len + r.output_len > kv_capacity:
                break                                                    # the head waits; nobody overtakes
            running[r.id] = [r, r.output_len, step]
            reserved += r.prompt_len + r.output_len
            head += 1
        batch_sizes.append(len(running))
        for rid in list(running):
            running[rid][1] -= 1                                         # one token each
            if running[rid][1] == 0:
                r, _, begun = running.pop(rid)
                schedule[rid] = (begun, step)
                reserved -= r.prompt_len + r.output_len
        step += 1
    return schedule, batch_sizes
    ### END SOLUTION
