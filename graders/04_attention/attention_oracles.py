"""Oracles and helpers shared by the 04_attention graders (instructor code, not a test).

- the PyTorch built-ins each unit re-implements (forbidden while it runs, see
  llmlab.testing.guard) and the hint a forbidden call prints;
- oracles written with PyTorch built-ins: `softmax_defined`, `sdpa_oracle`, `mha_oracle`,
  `torch_mha`, `ln_oracle`, `ffn_oracle`, `block_oracle`, each with the course's convention
  that a fully masked row gives zeros;
- readable versions of the catalogued mistakes (`attention_by_hand`, `attention_mistakes`,
  `block_mistakes`), so a failure can name the mistake the output matches;
- parameters: the names the docstrings fix, seeded values set through them
  (`randomize`, `load_params`), modules built that way (`make_mha`, `make_block`), and a
  call with given parameter tensors (`call_with`) so gradients reach them.

Test files import it by module name: `import attention_oracles as O`.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from llmlab.testing import check, guard, tensors
from llmlab.testing.tolerances import Tolerance, tolerance

TOPIC = "04_attention"

# ----------------------------------------------------------------- forbidden built-ins

SOFTMAX_BUILTINS = [
    "torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax", "torch.special.softmax",
    "torch.log_softmax", "torch.nn.functional.log_softmax", "torch.Tensor.log_softmax",
    "torch.special.log_softmax",
]
ATTENTION_BUILTINS = SOFTMAX_BUILTINS + [
    "torch.nn.functional.scaled_dot_product_attention",
    "torch.nn.functional.multi_head_attention_forward",
]
MHA_BUILTINS = ATTENTION_BUILTINS + ["torch.nn.MultiheadAttention.forward"]
LAYERNORM_BUILTINS = [
    "torch.nn.functional.layer_norm", "torch.layer_norm", "torch.native_layer_norm",
    "torch.nn.LayerNorm.forward",
]
GELU_BUILTINS = ["torch.nn.functional.gelu", "torch.nn.GELU.forward"]
BLOCK_BUILTINS = MHA_BUILTINS + LAYERNORM_BUILTINS + GELU_BUILTINS

# What a forbidden call inside an attention unit (scaled_dot_product_attention,
# MultiHeadAttention) should do instead.
HINT_ATTENTION = "Call your own `softmax` (and `causal_mask`) instead."

# ----------------------------------------------------------------- softmax and attention


def softmax_defined(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """torch.softmax with the course's convention: an all -inf slice gives zeros, not NaN."""
    full = torch.isneginf(x).all(dim=dim, keepdim=True)
    return torch.softmax(x, dim=dim).masked_fill(full, 0.0)


def softmax_tol(x: torch.Tensor) -> Tolerance:
    """The "reduction" tolerance, widened with the size of the logits.

    Why: a correct softmax may shift by a value that is not one of the slice's entries, e.g.
    exp(x - logsumexp(x)). The shifted exponent then carries an absolute rounding error of
    about ulp(|x|) = |x|·2^-24 in float32, which exp turns into a relative error of the same
    size (6e-5 at |x| = 1000). We allow 4 such ulps on top of the policy. Every catalogued
    softmax mistake is off by NaN, zeros or O(1), far beyond this.
    """
    base = tolerance(x.dtype, "reduction")
    finite = x[torch.isfinite(x)]
    size = float(finite.abs().max()) if finite.numel() else 0.0
    ulp = 2.0 ** -24 if x.dtype == torch.float32 else 2.0 ** -53
    return Tolerance(rtol=base.rtol + 4 * ulp * size, atol=base.atol)


def _combined_bias(mask, causal: bool, t_q: int, t_k: int, dtype) -> torch.Tensor | None:
    """The mask and the causal rule as one additive float mask (0 or -inf, or the float mask)."""
    bias = None
    if causal:
        allowed = torch.ones(t_q, t_k, dtype=torch.bool).tril()
        bias = torch.zeros(t_q, t_k, dtype=dtype).masked_fill(~allowed, float("-inf"))
    if mask is not None:
        m = mask if mask.is_floating_point() else torch.zeros(mask.shape, dtype=dtype).masked_fill(~mask, float("-inf"))
        m = m.to(dtype)
        bias = m if bias is None else bias + m
    return bias


def sdpa_oracle(q, k, v, mask=None, causal=False) -> torch.Tensor:
    """torch.nn.functional.scaled_dot_product_attention, with fully masked rows set to 0."""
    bias = _combined_bias(mask, causal, q.size(-2), k.size(-2), q.dtype)
    out = F.scaled_dot_product_attention(q, k, v, attn_mask=bias)
    if bias is None:
        return out
    full = torch.isneginf(bias).all(dim=-1, keepdim=True)                     # (..., T_q, 1)
    full = full.expand(*torch.broadcast_shapes(full.shape, out.shape[:-1] + (1,)))
    return out.masked_fill(full, 0.0)


def attention_by_hand(q, k, v, mask=None, causal=False, *, scale=None, axis=-1, diagonal=0,
                      invert=False, mask_before_scale=False) -> torch.Tensor:
    """A readable attention for the catalogue of mistakes: each keyword reproduces one."""
    d_k = q.size(-1)
    scale = 1 / math.sqrt(d_k) if scale is None else scale
    scores = q @ k.transpose(-2, -1)
    if mask is not None and mask.is_floating_point() and mask_before_scale:
        scores = scores + mask
    scores = scores * scale
    if causal:
        allowed = torch.ones(q.size(-2), k.size(-2), dtype=torch.bool).tril(diagonal=diagonal)
        scores = scores.masked_fill(~allowed, float("-inf"))
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(mask if invert else ~mask, float("-inf"))
        elif not mask_before_scale:
            scores = scores + mask
    return softmax_defined(scores, dim=axis) @ v


def attention_mistakes(q, k, v, mask=None, causal=False) -> dict:
    """The catalogued attention mistakes that apply to this input, as lazy oracles."""
    def wrong(**kw):
        return lambda: attention_by_hand(q, k, v, mask, causal, **kw)

    mistakes = {
        "missing 1/sqrt(d_k): the scores must be divided by the square root of the head size": wrong(scale=1.0),
        "scores divided by d_k instead of sqrt(d_k)": wrong(scale=1 / q.size(-1)),
        "softmax over the wrong axis: normalise over the keys (last axis), not the queries": wrong(axis=-2),
    }
    if causal:
        mistakes["causal mask hides the diagonal: a token must attend to itself"] = wrong(diagonal=-1)
        mistakes["causal mask shows the future: position i may see only keys j <= i"] = wrong(diagonal=1)
    if mask is not None and mask.dtype == torch.bool:
        mistakes["bool mask inverted: True means 'may attend', False means 'masked'"] = wrong(invert=True)
    if mask is not None and mask.is_floating_point():
        mistakes["additive mask added before the 1/sqrt(d_k) scaling: add it to the scaled scores"] = \
            wrong(mask_before_scale=True)
    return mistakes


# ----------------------------------------------------------------- parameters

PROJ = ("q_proj", "k_proj", "v_proj", "out_proj")


def mha_names(bias: bool = True, prefix: str = "") -> list[str]:
    return [f"{prefix}{p}.{w}" for p in PROJ for w in (("weight", "bias") if bias else ("weight",))]


def ln_names(prefix: str = "") -> list[str]:
    return [f"{prefix}weight", f"{prefix}bias"]


def ffn_names(prefix: str = "") -> list[str]:
    return [f"{prefix}{p}.{w}" for p in ("up", "down") for w in ("weight", "bias")]


def block_names() -> list[str]:
    return ln_names("ln1.") + mha_names(True, "attn.") + ln_names("ln2.") + ffn_names("ffn.")


def param(module: nn.Module, name: str, unit: str) -> torch.Tensor:
    """The parameter `name` of the student's module, or a failure naming the attribute."""
    __tracebackhide__ = True
    try:
        return module.get_parameter(name)
    except AttributeError:
        check.fail(unit, f"has no parameter `{name}`",
                   "keep the attribute names of the docstring: the graders set the weights through them")


def randomize(module: nn.Module, names: list[str], seed: int, unit: str, scale: float,
              gains: tuple[str, ...] = ()) -> dict[str, torch.Tensor]:
    """Draw every parameter of `module` fresh (tensors.randomize_parameters: N(0, scale²),
    the LayerNorm gains named in `gains` N(1, scale²)) and return copies of the parameters
    `names`, in the module's dtype, for the oracles."""
    tensors.randomize_parameters(module, seed, scale, around_one=lambda name: name in gains)
    return {name: param(module, name, unit).detach().clone() for name in names}


def load_params(module: nn.Module, values: dict[str, torch.Tensor], unit: str) -> nn.Module:
    """Copy `values` into the named parameters of `module` (cast to their dtype)."""
    with torch.no_grad():
        for name, value in values.items():
            p = param(module, name, unit)
            check.that(tuple(p.shape) == tuple(value.shape), unit,
                       f"parameter `{name}` has shape {tuple(p.shape)}, expected {tuple(value.shape)}")
            p.copy_(value.to(p.dtype))
    return module


def call_with(module, values, unit, builtins, x, hint: str = "", **kwargs):
    """module(x, **kwargs) with the given parameter tensors (so gradients reach them), with
    `builtins` forbidden while it runs."""
    __tracebackhide__ = True
    return guard.call_without(unit, builtins, functional_call, module, values, (x,), kwargs, hint=hint)


def make_mha(impl, d_model, n_heads, bias=True, seed=0):
    """A float64 MultiHeadAttention with seeded weights (std 1.5/sqrt(d_model), so attention
    is far from uniform) and the values of its parameters."""
    module = impl.MultiHeadAttention(d_model, n_heads, bias=bias).double()
    return module, randomize(module, mha_names(bias), seed, "MultiHeadAttention", 1.5 / math.sqrt(d_model))


def make_block(impl, d_model, n_heads, d_hidden, pre_norm, seed):
    """A float64 TransformerBlock with seeded parameters (LayerNorm gains around 1) and their values."""
    block = impl.TransformerBlock(d_model, n_heads, d_hidden, pre_norm=pre_norm).double()
    return block, randomize(block, block_names(), seed, "TransformerBlock", 1.5 / math.sqrt(d_model),
                            gains=("ln1.weight", "ln2.weight"))


# ----------------------------------------------------------------- layer oracles

def mha_oracle(x, p, n_heads, mask=None, causal=False, *, split="transpose", merge="transpose",
               scale_dim=None) -> torch.Tensor:
    """Multi-head attention from F.linear and F.scaled_dot_product_attention; the keywords
    reproduce catalogued mistakes."""
    B, T, C = x.shape
    H, D = n_heads, C // n_heads

    def heads(name):
        t = F.linear(x, p[f"{name}.weight"], p.get(f"{name}.bias"))                      # (B, T, C)
        return t.view(B, T, H, D).transpose(1, 2) if split == "transpose" else t.reshape(B, H, T, D)

    q, k, v = heads("q_proj"), heads("k_proj"), heads("v_proj")                         # (B, H, T, D)
    if scale_dim is not None:
        q = q * math.sqrt(D) / math.sqrt(scale_dim)
    y = sdpa_oracle(q, k, v, mask, causal)                                              # (B, H, T, D)
    if merge == "transpose":
        y = y.transpose(1, 2).reshape(B, T, C)
    elif merge == "head-last":
        y = y.permute(0, 2, 3, 1).reshape(B, T, C)
    else:
        y = y.reshape(B, T, C)
    return F.linear(y, p["out_proj.weight"], p.get("out_proj.bias"))


def torch_mha(p, d_model, n_heads, bias) -> nn.MultiheadAttention:
    """torch.nn.MultiheadAttention (batch_first) holding the given weights."""
    ref = nn.MultiheadAttention(d_model, n_heads, bias=bias, batch_first=True, dtype=torch.float64)
    with torch.no_grad():
        ref.in_proj_weight.copy_(torch.cat([p["q_proj.weight"], p["k_proj.weight"], p["v_proj.weight"]]))
        ref.out_proj.weight.copy_(p["out_proj.weight"])
        if bias:
            ref.in_proj_bias.copy_(torch.cat([p["q_proj.bias"], p["k_proj.bias"], p["v_proj.bias"]]))
            ref.out_proj.bias.copy_(p["out_proj.bias"])
    return ref.eval()


def ln_oracle(x, w, b, eps=1e-5):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def ffn_oracle(x, p, prefix=""):
    h = F.gelu(F.linear(x, p[f"{prefix}up.weight"], p[f"{prefix}up.bias"]))
    return F.linear(h, p[f"{prefix}down.weight"], p[f"{prefix}down.bias"])


def block_oracle(x, p, n_heads, pre_norm=True, mask=None, causal=False, variant=None):
    """The Transformer block from built-ins; `variant` reproduces a catalogued mistake."""
    def ln(name, t):
        return ln_oracle(t, p[f"{name}.weight"], p[f"{name}.bias"])

    def attn(t):
        return mha_oracle(t, {k[len("attn."):]: v for k, v in p.items() if k.startswith("attn.")},
                          n_heads, mask, causal)

    def ffn(t):
        return ffn_oracle(t, p, "ffn.")

    if not pre_norm:
        h = ln("ln1", x + attn(x))
        return ln("ln2", h + ffn(h))
    if variant == "parallel":
        return x + attn(ln("ln1", x)) + ffn(ln("ln2", x))
    h = attn(ln("ln1", x)) if variant == "no attention residual" else x + attn(ln("ln1", x))
    g = ffn(ln("ln1" if variant == "shared norm" else "ln2", h))
    return g if variant == "no ffn residual" else h + g


def block_mistakes(x, p, H, pre_norm, mask=None, causal=False):
    """The catalogued block mistakes for this input and norm placement, as lazy oracles."""
    def wrong(**kw):
        return lambda: block_oracle(x, p, H, mask=mask, causal=causal, **kw)

    if not pre_norm:
        return {"pre-norm where post-norm was asked (pre_norm=False: x = ln1(x + attn(x)); x = ln2(x + ffn(x)))":
                wrong(pre_norm=True)}
    return {
        "post-norm where pre-norm was asked (pre_norm=True: x = x + attn(ln1(x)); x = x + ffn(ln2(x)))":
            wrong(pre_norm=False),
        "the attention's residual connection is missing (x + attn(ln1(x)))": wrong(variant="no attention residual"),
        "the feed-forward's residual connection is missing (x + ffn(ln2(x)))": wrong(variant="no ffn residual"),
        "both sublayers read the block input: the feed-forward must read x after the attention's residual":
            wrong(variant="parallel"),
        "ln1 used for both sublayers; the feed-forward has its own LayerNorm ln2": wrong(variant="shared norm"),
    }
