"""Oracles and helpers shared by the 06_llama graders (instructor code, not a test).

- the PyTorch built-ins RMSNorm re-implements (forbidden while it runs);
- oracles written independently of the student's code: RMSNorm by `F.rms_norm`; SwiGLU by
  its formula; RoPE with complex numbers (pair (x[i], x[i + D/2]) is the complex number
  x[i] + j·x[i + D/2], turned by e^(j·p·θ_i)), never through a cos/sin table; grouped-query
  attention as an explicit loop over query heads, each reading the kv head h // group;
  multi-head latent attention by explicit decompression of keys and values; the whole
  TinyLlama through the given `llmlab.lib.llama.TinyLlama` (PyTorch built-ins);
- the catalogued mistakes as readable variants of those oracles (interleaved pairing,
  positions without the offset, kv head order h % Hkv, RoPE on values, ...), so a failure
  names the mistake its output matches;
- parameter helpers: seeded values for every parameter of a module (`randomized`), a call
  with given parameter tensors (`call_with`) so gradients reach them.

Test files import it by module name: `import llama_oracle as O`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from llmlab.testing import check, tensors

TOPIC = "06_llama"

RMSNORM_BUILTINS = ["torch.nn.functional.rms_norm", "torch.rms_norm", "torch.nn.RMSNorm.forward"]
RMSNORM_HINT = "Write it with x.pow(2).mean(...), torch.rsqrt (or 1 / sqrt) and the weight."

INTERLEAVED = "interleaved RoPE pairing (dimension i with i + 1) instead of the half-split one (i with i + D/2)"
NO_OFFSET = "RoPE positions that ignore the offset (every call starts again at position 0)"
KV_TILED = "kv head order h % n_kv_heads (tiled) instead of h // group (repeat_interleave)"
ROPE_ON_V = "RoPE applied to the values as well (it belongs on queries and keys only)"
MLA_CACHES_KEYS = "MLA caching the decompressed keys instead of the latent c_kv"


# ----------------------------------------------------------------- RMSNorm and SwiGLU

def rms_norm(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor:
    return F.rms_norm(x, (x.shape[-1],), weight, eps)


def rms_norm_mistakes(x: torch.Tensor, weight: torch.Tensor, eps: float) -> dict:
    ms = x.pow(2).mean(-1, keepdim=True)
    wrong = {
        "eps outside the sqrt: x / (sqrt(mean(x²)) + eps)": lambda: x / (ms.sqrt() + eps) * weight,
        "RMS without the mean: x / sqrt(sum(x²) + eps)": lambda: x / (x.pow(2).sum(-1, keepdim=True) + eps).sqrt() * weight,
        "mean subtracted first (that is LayerNorm, not RMSNorm)":
            lambda: F.layer_norm(x, (x.shape[-1],), None, None, eps) * weight,
        "weight not applied": lambda: x / (ms + eps).sqrt(),
    }
    if x.dim() > 1 and x.shape[0] > 1:
        wrong["mean over the wrong axis (axis 0 instead of the last)"] = \
            lambda: x / (x.pow(2).mean(0, keepdim=True) + eps).sqrt() * weight
    return wrong


def swiglu(x: torch.Tensor, gate: torch.Tensor, up: torch.Tensor, down: torch.Tensor) -> torch.Tensor:
    """down(silu(gate x) · up x) with weight matrices in nn.Linear's (out, in) layout."""
    g = x @ gate.T
    return (g * torch.sigmoid(g) * (x @ up.T)) @ down.T


def swiglu_mistakes(x, gate, up, down) -> dict:
    g, u = x @ gate.T, x @ up.T
    return {"gate and up swapped: silu(up(x)) · gate(x)": lambda: (u * torch.sigmoid(u) * g) @ down.T,
            "GELU instead of SiLU": lambda: (F.gelu(g) * u) @ down.T,
            "sigmoid instead of SiLU (that is GLU, not SwiGLU)": lambda: (torch.sigmoid(g) * u) @ down.T,
            "no gate: down(silu(up(x)))": lambda: (u * torch.sigmoid(u)) @ down.T}


def hidden_size(d_model: int, multiple_of: int = 16) -> int:
    """By brute force: the smallest multiple of `multiple_of` that is ≥ int(8·d_model/3)."""
    h = int(8 * d_model / 3)
    m = multiple_of
    while m < h:
        m += multiple_of
    return m


# ----------------------------------------------------------------- RoPE

def inv_freq(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    return torch.tensor([base ** (-2.0 * i / head_dim) for i in range(head_dim // 2)], dtype=torch.float64)


def rope_tables(head_dim: int, max_len: int, base: float = 10000.0, dtype=torch.float64):
    """cos and sin tables, written as one Python loop over (position, pair) in float64."""
    half = head_dim // 2
    cos_rows, sin_rows = [], []
    for p in range(max_len):
        angles = [p * base ** (-2.0 * i / head_dim) for i in range(half)]
        cos_rows.append([math.cos(a) for a in angles] * 2)       # column i and i + D/2 share a pair
        sin_rows.append([math.sin(a) for a in angles] * 2)
    cos = torch.tensor(cos_rows, dtype=torch.float64).reshape(max_len, head_dim)
    sin = torch.tensor(sin_rows, dtype=torch.float64).reshape(max_len, head_dim)
    return cos.to(dtype), sin.to(dtype)


def rope_table_mistakes(head_dim: int, max_len: int, base: float, dtype) -> dict:
    p = torch.arange(max_len, dtype=torch.float64)[:, None]
    i = torch.arange(head_dim // 2, dtype=torch.float64)
    good = p * base ** (-2.0 * i / head_dim)

    def tables(angle):
        return angle.cos().to(dtype)

    return {
        INTERLEAVED + " (table columns repeat_interleave'd)": lambda: tables(good.repeat_interleave(2, dim=-1)),
        "exponent -i/head_dim instead of -2i/head_dim":
            lambda: tables(torch.cat([p * base ** (-i / head_dim)] * 2, -1)),
        "angles computed in float32 (compute them in float64, then cast)":
            lambda: torch.cat([(p.float() * (base ** (-2.0 * i.float() / head_dim))).cos()] * 2, -1).to(dtype),
    }


def rope(x: torch.Tensor, positions: torch.Tensor, base: float = 10000.0, interleaved: bool = False) -> torch.Tensor:
    """RoPE by complex multiplication. x: (..., T, D); positions: (T,) int64.

    Half-split: the complex numbers x[i] + j·x[i + D/2]; interleaved (the mistake): x[2i] + j·x[2i+1]."""
    D = x.shape[-1]
    dtype = x.dtype
    angle = positions.to(torch.float64)[:, None] * inv_freq(D, base)             # (T, D/2)
    turn = torch.polar(torch.ones_like(angle), angle)                           # (T, D/2) complex
    xd = x.to(torch.float64)
    if interleaved:
        z = torch.complex(xd[..., 0::2], xd[..., 1::2]) * turn
        out = torch.stack([z.real, z.imag], dim=-1).flatten(-2)
    else:
        z = torch.complex(xd[..., : D // 2], xd[..., D // 2:]) * turn
        out = torch.cat([z.real, z.imag], dim=-1)
    return out.to(dtype)


def rope_mixed(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
    """The interleaved quarter turn (-x[2i+1], x[2i]) used with half-split tables (a mistake)."""
    rot = torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)
    c, s = cos[positions].to(x.dtype), sin[positions].to(x.dtype)
    return x * c + rot * s


def rope_mistakes(x, cos, sin, positions: torch.Tensor, base: float = 10000.0) -> dict:
    T = x.shape[-2]
    zero = torch.arange(T)
    return {
        INTERLEAVED: lambda: rope(x, positions, base, interleaved=True),
        INTERLEAVED + " (interleaved quarter turn with half-split tables)": lambda: rope_mixed(x, cos, sin, positions),
        NO_OFFSET: lambda: rope(x, zero, base),
        "rotation in the wrong direction (rotate_half as cat([x2, -x1]))": lambda: rope(x, -positions, base),
    }


# ----------------------------------------------------------------- attention

def causal_softmax_attention(q, k, v, past: int = 0) -> torch.Tensor:
    """softmax(q kᵀ / sqrt(d)) v for one head, q (B, T, d), k (B, S, d), v (B, S, dv):
    query t sits at position past + t and sees keys s ≤ past + t."""
    T, S = q.shape[-2], k.shape[-2]
    scores = q @ k.transpose(-1, -2) / math.sqrt(q.shape[-1])                    # (B, T, S)
    allowed = torch.arange(S)[None, :] <= (past + torch.arange(T))[:, None]
    scores = scores.masked_fill(~allowed, float("-inf"))
    return torch.softmax(scores, dim=-1) @ v


def gqa(x: torch.Tensor, p: dict, n_heads: int, n_kv: int, *, qk_norm: bool = False, eps: float = 1e-6,
        base: float = 10000.0, offset: int = 0, kv_of=None, rope_v: bool = False, interleaved: bool = False,
        norm_after_rope: bool = False, causal: bool = True) -> torch.Tensor:
    """Grouped-query attention, one query head at a time. p: the docstring's parameter names
    (q_proj.weight, ..., optional q_norm.weight, k_norm.weight). The keyword arguments other
    than qk_norm/eps/base/offset produce the catalogued mistakes."""
    B, T, C = x.shape
    D = C // n_heads
    group = n_heads // n_kv
    kv_of = kv_of or (lambda h: h // group)
    pos = torch.arange(offset, offset + T)

    def heads(name, n):
        return (x @ p[name].T).view(B, T, n, D)

    q, k, v = heads("q_proj.weight", n_heads), heads("k_proj.weight", n_kv), heads("v_proj.weight", n_kv)
    outs = []
    for h in range(n_heads):
        qh, kh, vh = q[:, :, h], k[:, :, kv_of(h)], v[:, :, kv_of(h)]         # (B, T, D)
        if qk_norm and not norm_after_rope:
            qh, kh = rms_norm(qh, p["q_norm.weight"], eps), rms_norm(kh, p["k_norm.weight"], eps)
        qh, kh = rope(qh, pos, base, interleaved), rope(kh, pos, base, interleaved)
        if qk_norm and norm_after_rope:
            qh, kh = rms_norm(qh, p["q_norm.weight"], eps), rms_norm(kh, p["k_norm.weight"], eps)
        if rope_v:
            vh = rope(vh, pos, base, interleaved)
        if causal:
            outs.append(causal_softmax_attention(qh, kh, vh))
        else:
            outs.append(torch.softmax(qh @ kh.transpose(-1, -2) / math.sqrt(D), -1) @ vh)
    return torch.cat(outs, dim=-1) @ p["o_proj.weight"].T                       # (B, T, C)


def gqa_mistakes(x, p, n_heads, n_kv, qk_norm=False, eps=1e-6) -> dict:
    kw = dict(qk_norm=qk_norm, eps=eps)
    wrong = {INTERLEAVED: lambda: gqa(x, p, n_heads, n_kv, interleaved=True, **kw),
             ROPE_ON_V: lambda: gqa(x, p, n_heads, n_kv, rope_v=True, **kw),
             "attention is not causal": lambda: gqa(x, p, n_heads, n_kv, causal=False, **kw)}
    if n_kv not in (1, n_heads):
        wrong[KV_TILED] = lambda: gqa(x, p, n_heads, n_kv, kv_of=lambda h: h % n_kv, **kw)
    if qk_norm:
        wrong["q_norm/k_norm applied after RoPE instead of before"] = \
            lambda: gqa(x, p, n_heads, n_kv, norm_after_rope=True, **kw)
    return wrong


def mla(x: torch.Tensor, p: dict, n_heads: int, d_rope: int, *, past_x: torch.Tensor | None = None,
        base: float = 10000.0, ignore_offset: bool = False) -> torch.Tensor:
    """Multi-head latent attention by explicit decompression, one head at a time.

    The outputs for the tokens of x, which follow the tokens of past_x (positions P …)."""
    full = x if past_x is None else torch.cat([past_x, x], dim=1)
    B, S, C = full.shape
    T = x.shape[1]
    P = S - T
    D = C // n_heads
    c_kv = full @ p["kv_down.weight"].T                                       # (B, S, d_latent)
    k_c = (c_kv @ p["k_up.weight"].T).view(B, S, n_heads, D)                   # explicit decompression
    v = (c_kv @ p["v_up.weight"].T).view(B, S, n_heads, D)
    k_pos = torch.arange(S) if not ignore_offset else torch.cat([torch.arange(P), torch.arange(T)])
    q_pos = torch.arange(P, S) if not ignore_offset else torch.arange(T)
    k_r = rope(full @ p["k_rope.weight"].T, k_pos, base)                       # (B, S, d_rope), shared
    q = (x @ p["q_proj.weight"].T).view(B, T, n_heads, D + d_rope)
    outs = []
    for h in range(n_heads):
        q_h = torch.cat([q[:, :, h, :D], rope(q[:, :, h, D:], q_pos, base)], dim=-1)   # (B, T, D + R)
        k_h = torch.cat([k_c[:, :, h], k_r], dim=-1)                            # (B, S, D + R)
        outs.append(causal_softmax_attention(q_h, k_h, v[:, :, h], past=P))
    return torch.cat(outs, dim=-1) @ p["o_proj.weight"].T


# ----------------------------------------------------------------- parameters

def randomized(module: nn.Module, seed: int, scale: float = 0.5) -> nn.Module:
    """Every parameter drawn fresh (norm gains around one), so nothing hides behind 0 or 1."""
    return tensors.randomize_parameters(module, seed, scale, around_one=lambda n: n.endswith("norm.weight"))


def params(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.named_parameters()}


def call_with(module: nn.Module, values: dict, *args, **kwargs):
    """module(*args) with its parameters replaced by `values` (gradients reach them)."""
    return functional_call(module, values, args, kwargs)


def expect_names(module: nn.Module, expected: dict, unit: str, case: str = "") -> None:
    """The module's parameters have exactly the names and shapes of `expected`."""
    got = {k: tuple(v.shape) for k, v in module.named_parameters()}
    check.equal(got, expected, unit=unit, what="parameter names and shapes (all Linears bias-free)", case=case)


def lib_model(config: dict, state: dict):
    """The given library's TinyLlama with `state` loaded, in float64 and eval mode."""
    from llmlab.lib import llama

    model = llama.TinyLlama(llama.LlamaConfig(**config))
    model.load_state_dict(state)
    return model.double().eval()
