"""Topic 06: from GPT-2 to LLaMA — RMSNorm, SwiGLU, rotary positions, grouped-query and
multi-head latent attention, and a tiny LLaMA built from them.

LLaMA keeps GPT-2's decoder-only, pre-norm layout and changes four parts:
  - RMSNorm instead of LayerNorm (no mean subtraction, no bias);
  - a SwiGLU feed-forward instead of Linear → GELU → Linear;
  - rotary position embeddings (RoPE) on queries and keys instead of a position table;
  - grouped-query attention: fewer key/value heads than query heads, shared by groups.
Multi-head latent attention (DeepSeek-V2) goes further and caches one low-rank latent per
token instead of keys and values.

Shapes: B batch, T sequence length, C = d_model, H query heads, Hkv key/value heads,
D = C // H head size, V = vocab_size.

RoPE convention (the one of Meta's LLaMA code on Hugging Face, "rotate_half", half-split):
dimension i of a head is paired with dimension i + D/2 (NOT with its neighbour i + 1, the
interleaved pairing of the original RoFormer/Meta release). Pair i turns by the angle
p · base^(−2i/D) at position p.

Parameter names are part of the contract: `llmlab.lib.llama` (the given library that later
topics build on) computes the same TinyLlama with the same names, so one state dict loads
into both.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.lib.nn import init_gpt_weights, scaled_init_std


class RMSNorm(nn.Module):
    """Root-mean-square normalisation over the last axis, with a learned gain.

    y = x / sqrt(mean(x², over the last axis) + eps) · weight

    eps sits INSIDE the square root. There is no mean subtraction and no bias (that is what
    distinguishes it from LayerNorm). Written from elementary operations: F.rms_norm and
    nn.RMSNorm are forbidden while it runs.
    """

    def __init__(self, dim: int, eps: float = 1e-6):
        """One parameter, `weight` of shape (dim,), initialised to ones; store `eps` as `self.eps`."""
        super().__init__()
        ### BEGIN SOLUTION
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., dim) float32 or float64, the dtype of `weight` (use `.double()` on the
        module for float64). Any number of leading axes (none too), any strides.
        Returns the same shape and dtype: each vector along the last axis divided by its
        root mean square (eps inside the sqrt), times `weight`."""
        ### BEGIN SOLUTION
        ms = x.pow(2).mean(dim=-1, keepdim=True)        # (..., 1) mean square
        return x * torch.rsqrt(ms + self.eps) * self.weight
        ### END SOLUTION


def swiglu_hidden_size(d_model: int, multiple_of: int = 16) -> int:
    """LLaMA's hidden width for a SwiGLU feed-forward of width d_model.

    h = int(8 · d_model / 3) — two thirds of GPT's 4·d_model, because SwiGLU has three
    matrices instead of two, so the parameter count stays 8·d_model² — then rounded UP to
    the next multiple of `multiple_of` (a multiple itself stays). d_model = 64 gives
    int(170.67) = 170 → 176; d_model = 48 gives 128 exactly.
    Returns a Python int. Raises ValueError when d_model or multiple_of is < 1.
    """
    ### BEGIN SOLUTION
    if d_model < 1 or multiple_of < 1:
        raise ValueError(f"d_model and multiple_of must be positive, got d_model={d_model}, "
                         f"multiple_of={multiple_of}")
    h = int(8 * d_model / 3)
    return multiple_of * ((h + multiple_of - 1) // multiple_of)
    ### END SOLUTION


class SwiGLU(nn.Module):
    """The gated feed-forward of LLaMA: y = down(silu(gate(x)) · up(x)).

    silu(z) = z · sigmoid(z). Three bias-free Linears: `gate` (C → hidden), `up`
    (C → hidden), `down` (hidden → C).
    """

    def __init__(self, d_model: int, hidden: int | None = None, multiple_of: int = 16):
        """hidden=None means `swiglu_hidden_size(d_model, multiple_of)`; store the width
        used as `self.hidden`."""
        super().__init__()
        ### BEGIN SOLUTION
        self.hidden = swiglu_hidden_size(d_model, multiple_of) if hidden is None else hidden
        self.gate = nn.Linear(d_model, self.hidden, bias=False)
        self.up = nn.Linear(d_model, self.hidden, bias=False)
        self.down = nn.Linear(self.hidden, d_model, bias=False)
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., C) -> (..., C), position by position. F.silu is allowed."""
        ### BEGIN SOLUTION
        return self.down(F.silu(self.gate(x)) * self.up(x))
        ### END SOLUTION


def rope_cache(head_dim: int, max_len: int, base: float = 10000.0,
               dtype: torch.dtype = torch.float32) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and sin tables for rotary position embeddings, half-split layout.

    inv_freq[i] = base^(−2i / head_dim) for i = 0 … head_dim/2 − 1 (pair i turns fastest at i = 0),
    angle[p, i] = p · inv_freq[i] for positions p = 0 … max_len − 1,
    cos = cat([cos(angle), cos(angle)], dim=−1), sin likewise: column i and column
    i + head_dim/2 hold the same value, because dimensions i and i + head_dim/2 form a pair.
    Returns (cos, sin), each (max_len, head_dim) of `dtype` (float32 by default). The angles
    and their cos/sin are computed in float64 and then rounded to `dtype`, so the tables do
    not depend on the dtype asked for beyond that rounding.
    Raises ValueError when head_dim is odd or < 2, or max_len < 1.
    """
    ### BEGIN SOLUTION
    if head_dim < 2 or head_dim % 2 != 0:
        raise ValueError(f"head_dim must be even and at least 2 (dimensions come in pairs), got {head_dim}")
    if max_len < 1:
        raise ValueError(f"max_len must be at least 1, got {max_len}")
    i = torch.arange(head_dim // 2, dtype=torch.float64)                # (D/2,)
    inv_freq = base ** (-2.0 * i / head_dim)                            # (D/2,)
    p = torch.arange(max_len, dtype=torch.float64)                      # (L,)
    angle = torch.outer(p, inv_freq)                                    # (L, D/2)
    angle = torch.cat([angle, angle], dim=-1)                           # (L, D) half-split
    return angle.cos().to(dtype), angle.sin().to(dtype)
    ### END SOLUTION


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """cat([−x2, x1], dim=−1) where x1, x2 are the first and second halves of the last axis.

    x: (..., D) with D even. Returns the same shape and dtype. (Pair (x1[i], x2[i]) becomes
    (−x2[i], x1[i]): a quarter turn of every pair.)
    """
    ### BEGIN SOLUTION
    x1, x2 = x.chunk(2, dim=-1)                                         # (..., D/2) each
    return torch.cat([-x2, x1], dim=-1)
    ### END SOLUTION


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
               positions: int | torch.Tensor = 0) -> torch.Tensor:
    """Rotate the pairs (i, i + D/2) of every vector of x by its position's angles.

    x:         (..., T, D) queries or keys (for example (B, H, T, D)), float32 or float64;
               T may be 0 (nothing to rotate: the result is empty too).
    cos, sin:  (L, D) tables from one `rope_cache` call (any floating dtype; cast to x's dtype).
    positions: where the T vectors sit —
               an int `offset`: positions offset, offset + 1, …, offset + T − 1 (0 for a
               whole sequence; the number of cached tokens when decoding with a cache);
               or a (T,) int64 tensor of positions (any order, repeats allowed).
    Returns x · cos[positions] + rotate_half(x) · sin[positions], same shape and dtype as x.
    Rotations keep norms, and q(m)·k(n) depends only on m − n.
    Raises ValueError when D differs from the tables' width, when a position is negative,
    or when a position is ≥ L (the tables are too short).
    """
    ### BEGIN SOLUTION
    T, D = x.shape[-2], x.shape[-1]
    L = cos.shape[0]
    if cos.shape[-1] != D:
        raise ValueError(f"x has head size {D} but the rope tables have width {cos.shape[-1]}")
    if isinstance(positions, int):
        if positions < 0 or positions + T > L:
            raise ValueError(f"positions {positions} … {positions + T - 1} are outside the rope tables "
                             f"(0 … {L - 1}); build the tables with a larger max_len")
        c, s = cos[positions:positions + T], sin[positions:positions + T]   # (T, D)
    else:
        if T > 0 and (int(positions.min()) < 0 or int(positions.max()) >= L):
            raise ValueError(f"positions must lie in 0 … {L - 1}, got {positions.tolist()}")
        c, s = cos[positions], sin[positions]                               # (T, D)
    c, s = c.to(x.dtype), s.to(x.dtype)
    return x * c + rotate_half(x) * s
    ### END SOLUTION


def repeat_kv(x: torch.Tensor, n_rep: int) -> torch.Tensor:
    """Expand Hkv key/value heads to Hkv · n_rep heads for grouped-query attention.

    x: (B, Hkv, T, D). Returns (B, Hkv · n_rep, T, D) where output head h is input head
    h // n_rep: each kv head repeated n_rep times IN PLACE (heads 0,0,1,1,… for n_rep = 2),
    i.e. torch.repeat_interleave on dim 1 — not tiled (0,1,0,1,…). n_rep = 1 returns x's values.
    Raises ValueError when n_rep < 1.
    """
    ### BEGIN SOLUTION
    if n_rep < 1:
        raise ValueError(f"n_rep must be at least 1, got {n_rep}")
    B, Hkv, T, D = x.shape
    return x[:, :, None].expand(B, Hkv, n_rep, T, D).reshape(B, Hkv * n_rep, T, D)
    ### END SOLUTION


class GroupedQueryAttention(nn.Module):
    """Causal self-attention with H query heads sharing Hkv key/value heads (GQA).

    Hkv = H is ordinary multi-head attention; Hkv = 1 is multi-query attention (MQA). Query
    head h uses kv head h // (H // Hkv): consecutive query heads form a group.

    Bias-free Linears: `q_proj` (C → H·D), `k_proj` (C → Hkv·D), `v_proj` (C → Hkv·D),
    `o_proj` (H·D → C), with D = C // H. With qk_norm=True also `q_norm` and `k_norm`,
    each RMSNorm(D, eps), applied to every head of q and k BEFORE RoPE.
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, qk_norm: bool = False, eps: float = 1e-6):
        """Build the layers named above; store n_heads, n_kv_heads and head_dim (D) as
        attributes of those names. Without qk_norm, `q_norm` and `k_norm` do not exist.
        Raises ValueError when d_model is not divisible by n_heads, n_heads not by
        n_kv_heads, or the head size D is odd (RoPE needs pairs)."""
        super().__init__()
        ### BEGIN SOLUTION
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if n_heads % n_kv_heads != 0:
            raise ValueError(f"n_heads ({n_heads}) must be divisible by n_kv_heads ({n_kv_heads})")
        if (d_model // n_heads) % 2 != 0:
            raise ValueError(f"the head size d_model // n_heads = {d_model // n_heads} must be even for RoPE")
        self.n_heads, self.n_kv_heads = n_heads, n_kv_heads
        self.head_dim = D = d_model // n_heads
        self.q_proj = nn.Linear(d_model, n_heads * D, bias=False)
        self.k_proj = nn.Linear(d_model, n_kv_heads * D, bias=False)
        self.v_proj = nn.Linear(d_model, n_kv_heads * D, bias=False)
        self.o_proj = nn.Linear(n_heads * D, d_model, bias=False)
        if qk_norm:
            self.q_norm = RMSNorm(D, eps)
            self.k_norm = RMSNorm(D, eps)
        ### END SOLUTION

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C); cos, sin: (L, D) rope tables with L ≥ T (positions 0 … T − 1).
        q, k, v = projections split into heads: (B, H, T, D), (B, Hkv, T, D), (B, Hkv, T, D);
        q_norm/k_norm if present; RoPE on q and k (never on v); causal softmax attention
        with scale 1/sqrt(D), kv heads repeated by `repeat_kv`; heads merged (head h at
        columns h·D … h·D + D − 1) and `o_proj`. Returns (B, T, C).
        F.scaled_dot_product_attention is allowed (chapter 04 wrote it)."""
        ### BEGIN SOLUTION
        B, T, C = x.shape
        H, Hkv, D = self.n_heads, self.n_kv_heads, self.head_dim
        q = self.q_proj(x).view(B, T, H, D).transpose(1, 2)                # (B, H, T, D)
        k = self.k_proj(x).view(B, T, Hkv, D).transpose(1, 2)              # (B, Hkv, T, D)
        v = self.v_proj(x).view(B, T, Hkv, D).transpose(1, 2)              # (B, Hkv, T, D)
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, cos, sin, 0), apply_rope(k, cos, sin, 0)
        k, v = repeat_kv(k, H // Hkv), repeat_kv(v, H // Hkv)              # (B, H, T, D)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True)        # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, H * D)                         # (B, T, H·D)
        return self.o_proj(y)
        ### END SOLUTION


class LlamaBlock(nn.Module):
    """A pre-norm LLaMA block: x = x + attn(attn_norm(x)); x = x + mlp(mlp_norm(x)).

    Submodules: `attn_norm` RMSNorm(C, eps), `attn` GroupedQueryAttention(C, H, Hkv,
    qk_norm, eps), `mlp_norm` RMSNorm(C, eps), `mlp` SwiGLU(C, hidden).
    (The argument order is the one of `llmlab.lib.llama.LlamaBlock`.)
    """

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, hidden: int | None = None,
                 qk_norm: bool = False, eps: float = 1e-6):
        super().__init__()
        ### BEGIN SOLUTION
        self.attn_norm = RMSNorm(d_model, eps)
        self.attn = GroupedQueryAttention(d_model, n_heads, n_kv_heads, qk_norm, eps)
        self.mlp_norm = RMSNorm(d_model, eps)
        self.mlp = SwiGLU(d_model, hidden)
        ### END SOLUTION

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
        """x: (B, T, C), cos/sin: (L ≥ T, D) rope tables. Returns (B, T, C)."""
        ### BEGIN SOLUTION
        x = x + self.attn(self.attn_norm(x), cos, sin)                    # (B, T, C)
        x = x + self.mlp(self.mlp_norm(x))                                 # (B, T, C)
        return x
        ### END SOLUTION


@dataclass
class LlamaConfig:
    """The hyperparameters of a TinyLlama.

    vocab_size  V;  block_size  the longest sequence (rows of the rope tables);
    n_layer     L blocks;  n_head  H query heads;  n_kv_head  Hkv key/value heads;
    d_model     C;  hidden  SwiGLU width (None: swiglu_hidden_size(C));
    rope_base   RoPE's base;  norm_eps  eps of every RMSNorm;  qk_norm  RMSNorm on q and k.
    """

    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_kv_head: int
    d_model: int
    hidden: int | None = None
    rope_base: float = 10000.0
    norm_eps: float = 1e-6
    qk_norm: bool = False

    def __post_init__(self) -> None:
        """Raises ValueError, naming the field and its value, when vocab_size, block_size,
        n_layer, n_head, n_kv_head or d_model is not a positive int (booleans are not ints
        here), hidden is neither None nor a positive int, d_model is not divisible by n_head,
        n_head is not divisible by n_kv_head, the head size d_model // n_head is odd, or
        rope_base or norm_eps is not > 0."""
        ### BEGIN SOLUTION
        def positive_int(value) -> bool:
            return isinstance(value, int) and not isinstance(value, bool) and value >= 1

        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_kv_head", "d_model"):
            if not positive_int(getattr(self, name)):
                raise ValueError(f"LlamaConfig.{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.hidden is not None and not positive_int(self.hidden):
            raise ValueError(f"LlamaConfig.hidden must be None or a positive integer, got {self.hidden!r}")
        if self.d_model % self.n_head != 0:
            raise ValueError(f"LlamaConfig.d_model ({self.d_model}) must be divisible by n_head ({self.n_head})")
        if self.n_head % self.n_kv_head != 0:
            raise ValueError(f"LlamaConfig.n_head ({self.n_head}) must be divisible by n_kv_head "
                             f"({self.n_kv_head})")
        if (self.d_model // self.n_head) % 2 != 0:
            raise ValueError(f"LlamaConfig.d_model // n_head = {self.d_model // self.n_head} (the head size) "
                             f"must be even for RoPE")
        for name in ("rope_base", "norm_eps"):
            if not getattr(self, name) > 0:
                raise ValueError(f"LlamaConfig.{name} must be > 0, got {getattr(self, name)!r}")
        ### END SOLUTION


class TinyLlama(nn.Module):
    """A LLaMA-style decoder-only language model.

    tok_emb   nn.Embedding(V, C)
    blocks    nn.ModuleList of L LlamaBlock(C, H, Hkv, hidden, qk_norm, norm_eps)
    norm      RMSNorm(C, norm_eps), the final norm
    lm_head   nn.Linear(C, V, bias=False), NOT tied to tok_emb
    rope_cos, rope_sin  rope_cache(D, block_size, rope_base) as NON-persistent buffers
              (register_buffer(..., persistent=False)): they follow .to()/.double() but are
              not in the state dict.
    No position table: positions enter only through RoPE.
    """

    def __init__(self, config: LlamaConfig):
        """Build the layers above, store `config` as `self.config`, and initialise:
        `self.apply(init_gpt_weights)` (every Linear and Embedding weight ~ N(0, 0.02²)),
        then each block's `attn.o_proj.weight` and `mlp.down.weight` ~ N(0, s²) with
        s = scaled_init_std(n_layer) = 0.02 / sqrt(2·n_layer). RMSNorm weights stay 1."""
        super().__init__()
        ### BEGIN SOLUTION
        self.config = config
        C, D = config.d_model, config.d_model // config.n_head
        self.tok_emb = nn.Embedding(config.vocab_size, C)
        self.blocks = nn.ModuleList([
            LlamaBlock(C, config.n_head, config.n_kv_head, config.hidden, config.qk_norm, config.norm_eps)
            for _ in range(config.n_layer)])
        self.norm = RMSNorm(C, config.norm_eps)
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        cos, sin = rope_cache(D, config.block_size, config.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(init_gpt_weights)
        residual_std = scaled_init_std(config.n_layer)
        for block in self.blocks:
            nn.init.normal_(block.attn.o_proj.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.mlp.down.weight, mean=0.0, std=residual_std)
        ### END SOLUTION

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """idx: (B, T) int64, 1 ≤ T ≤ block_size; targets: optional (B, T) int64 with -100
        marking ignored positions.
        Returns (logits (B, T, V) in the parameters' dtype, loss): loss is the mean
        cross-entropy over the positions whose target is not -100, or None without targets.
        x = tok_emb(idx); every block with the rope tables; norm; lm_head.
        Raises ValueError when T > block_size."""
        ### BEGIN SOLUTION
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}; "
                             f"crop the input to the last block_size tokens")
        x = self.tok_emb(idx)                                              # (B, T, C)
        for block in self.blocks:
            x = block(x, self.rope_cos, self.rope_sin)                     # (B, T, C)
        logits = self.lm_head(self.norm(x))                                # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T), ignore_index=-100)
        return logits, loss
        ### END SOLUTION


class MultiHeadLatentAttention(nn.Module):
    """Multi-head latent attention (DeepSeek-V2 style), causal, with a latent KV cache.

    Keys and values are decompressed from one shared low-rank latent per token,
        c_kv = kv_down(x)                     (B, T, d_latent)
        k_c  = k_up(c_kv), v = v_up(c_kv)     (B, T, H·D) each, split into H heads of D,
    and positions enter through a separate "decoupled" RoPE key, one per token, SHARED by
    all heads:
        k_r  = rope(k_rope(x))                (B, T, d_rope).
    Queries have a content part and a rope part per head: q_proj(x) is (B, T, H·(D + d_rope)),
    head h holding columns h·(D + d_rope) …; its first D columns are q_c (content), the last
    d_rope are q_r (rotated by RoPE). Head h's score between query t and key s is
        (q_c[h, t] · k_c[h, s] + rope(q_r)[h, t] · k_r[s]) / sqrt(D + d_rope),
    causal softmax over s, weights times v[h], heads merged as in GQA, then o_proj.

    Layers (all bias-free nn.Linear), D = d_model // n_heads:
        q_proj  C → H·(D + d_rope);  kv_down  C → d_latent;  k_up  d_latent → H·D;
        v_up    d_latent → H·D;      k_rope   C → d_rope;    o_proj  H·D → C.

    The cache is a pair (c_kv, k_r) of shapes (B, S, d_latent) and (B, S, d_rope): the
    latent and the ROTATED rope key of the S tokens seen so far — d_latent + d_rope numbers
    per token and layer, whatever H and D are (GQA caches 2·Hkv·D). Keys and values are
    decompressed from the cached latent at every call; they are never cached.
    """

    def __init__(self, d_model: int, n_heads: int, d_latent: int, d_rope: int):
        """Build the layers above; store n_heads, head_dim (D), d_latent and d_rope.
        Raises ValueError when d_model is not divisible by n_heads, d_latent < 1, or
        d_rope is odd or < 2."""
        super().__init__()
        ### BEGIN SOLUTION
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        if d_latent < 1:
            raise ValueError(f"d_latent must be at least 1, got {d_latent}")
        if d_rope < 2 or d_rope % 2 != 0:
            raise ValueError(f"d_rope must be even and at least 2, got {d_rope}")
        self.n_heads, self.head_dim = n_heads, d_model // n_heads
        self.d_latent, self.d_rope = d_latent, d_rope
        H, D = n_heads, self.head_dim
        self.q_proj = nn.Linear(d_model, H * (D + d_rope), bias=False)
        self.kv_down = nn.Linear(d_model, d_latent, bias=False)
        self.k_up = nn.Linear(d_latent, H * D, bias=False)
        self.v_up = nn.Linear(d_latent, H * D, bias=False)
        self.k_rope = nn.Linear(d_model, d_rope, bias=False)
        self.o_proj = nn.Linear(H * D, d_model, bias=False)
        ### END SOLUTION

    def cache_size_per_token(self) -> int:
        """Numbers the cache holds per token (per layer): d_latent + d_rope."""
        ### BEGIN SOLUTION
        return self.d_latent + self.d_rope
        ### END SOLUTION

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                cache: tuple[torch.Tensor, torch.Tensor] | None = None):
        """x: (B, T, C), the T new tokens; cos, sin: (L, d_rope) rope tables;
        cache: None (nothing seen yet) or the (c_kv, k_r) pair a previous call returned for
        the same batch, holding P tokens. The new tokens sit at positions P … P + T − 1
        (P + T ≤ L) and each attends to all P cached tokens and, causally, to the new ones.
        Returns (y, cache): y (B, T, C), and the cache extended by the new tokens,
        (B, P + T, d_latent) and (B, P + T, d_rope). Running a sequence in pieces with the
        cache gives the same outputs as one call on the whole sequence.
        F.scaled_dot_product_attention is allowed."""
        ### BEGIN SOLUTION
        B, T, C = x.shape
        H, D, R = self.n_heads, self.head_dim, self.d_rope
        past = 0 if cache is None else cache[0].shape[1]
        q = self.q_proj(x).view(B, T, H, D + R).transpose(1, 2)           # (B, H, T, D + R)
        q_c, q_r = q.split([D, R], dim=-1)                                 # (B, H, T, D), (B, H, T, R)
        q = torch.cat([q_c, apply_rope(q_r, cos, sin, past)], dim=-1)      # (B, H, T, D + R)
        c_kv = self.kv_down(x)                                             # (B, T, d_latent)
        k_r = apply_rope(self.k_rope(x), cos, sin, past)                   # (B, T, R)
        if cache is not None:
            c_kv = torch.cat([cache[0], c_kv], dim=1)                      # (B, S, d_latent)
            k_r = torch.cat([cache[1], k_r], dim=1)                        # (B, S, R)
        S = c_kv.shape[1]
        k_c = self.k_up(c_kv).view(B, S, H, D).transpose(1, 2)            # (B, H, S, D)
        v = self.v_up(c_kv).view(B, S, H, D).transpose(1, 2)              # (B, H, S, D)
        k = torch.cat([k_c, k_r[:, None].expand(B, H, S, R)], dim=-1)      # (B, H, S, D + R)
        allowed = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(past)  # key s ≤ P + t
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)     # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, H * D)                         # (B, T, H·D)
        return self.o_proj(y), (c_kv, k_r)
        ### END SOLUTION
