"""Graders for topic 04 (part 2): MultiHeadAttention, LayerNorm, gelu, FeedForward,
TransformerBlock.

Oracles: torch.nn.MultiheadAttention with copied weights, F.layer_norm, F.gelu, and
functional versions of the block written with PyTorch built-ins (F.linear,
F.scaled_dot_product_attention, F.layer_norm, F.gelu). Properties: causality, identity of a
pre-norm block with zeroed sublayers. Gradients: against the oracles and float64 gradcheck.

The graders set every weight through the attribute names the docstrings fix (q_proj, ...,
ln1, attn, ffn, up, down), so the student's initialisation does not matter.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from llmlab.testing import check, reference
from test_attention import (
    _BLOCK_BUILTINS, _GELU_BUILTINS, _HC, _LAYERNORM_BUILTINS, _MHA_BUILTINS, _PHASES, TOPIC, _gradcheck, _rand_bool,
    _randn, _run, sdpa_oracle,
)

# ----------------------------------------------------------------- parameters

_PROJ = ("q_proj", "k_proj", "v_proj", "out_proj")


def mha_names(bias: bool = True, prefix: str = "") -> list[str]:
    return [f"{prefix}{p}.{w}" for p in _PROJ for w in (("weight", "bias") if bias else ("weight",))]


def ln_names(prefix: str = "") -> list[str]:
    return [f"{prefix}weight", f"{prefix}bias"]


def ffn_names(prefix: str = "") -> list[str]:
    return [f"{prefix}{p}.{w}" for p in ("up", "down") for w in ("weight", "bias")]


def block_names() -> list[str]:
    return ln_names("ln1.") + mha_names(True, "attn.") + ln_names("ln2.") + ffn_names("ffn.")


def random_params(module: nn.Module, names: list[str], seed: int, unit: str) -> dict[str, torch.Tensor]:
    """Fresh random values for the named parameters, shaped like the module's, in float64.

    Weights get std 1/sqrt(fan_in) (times 1.5, so attention is not uniform), biases std 0.3,
    LayerNorm weights 1 ± 0.3.
    """
    values = {}
    for i, name in enumerate(names):
        p = _param(module, name, unit)
        r = _randn(p.shape, seed * 1000 + i)
        if name.endswith("weight") and p.dim() == 2:
            values[name] = r * 1.5 / math.sqrt(p.shape[1])
        elif name.endswith("weight"):                       # a LayerNorm gain
            values[name] = 1 + 0.3 * r
        else:
            values[name] = 0.3 * r
    return values


def _param(module: nn.Module, name: str, unit: str) -> torch.Tensor:
    __tracebackhide__ = True
    try:
        return module.get_parameter(name)
    except AttributeError:
        check.fail(unit, f"has no parameter `{name}`",
                   "keep the attribute names of the docstring: the graders set the weights through them")


def load_params(module: nn.Module, values: dict[str, torch.Tensor], unit: str) -> nn.Module:
    with torch.no_grad():
        for name, value in values.items():
            p = _param(module, name, unit)
            check.that(tuple(p.shape) == tuple(value.shape), unit,
                       f"parameter `{name}` has shape {tuple(p.shape)}, expected {tuple(value.shape)}")
            p.copy_(value.to(p.dtype))
    return module


def call_with(module, values, unit, builtins, x, **kwargs):
    """module(x, **kwargs) with the given parameter tensors (so gradients reach them)."""
    return _run(unit, builtins, functional_call, module, values, (x,), kwargs)


# ----------------------------------------------------------------- oracles

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


def _mha_mistakes(x, p, H, mask=None, causal=False):
    def wrong(**kw):
        return lambda: mha_oracle(x, p, H, mask, causal, **kw)

    return {
        "heads merged in the wrong order: head h must occupy output features [h*D, (h+1)*D) "
        "(transpose (B, H, T, D) to (B, T, H, D), then reshape)": wrong(merge="head-last"),
        "heads merged without moving the head axis back: transpose (B, H, T, D) to (B, T, H, D) "
        "before reshaping to (B, T, C)": wrong(merge="reshape"),
        "heads split without a transpose: view as (B, T, H, D), then transpose to (B, H, T, D)": wrong(split="reshape"),
        "scores scaled by 1/sqrt(d_model); each head must use 1/sqrt(head size)": wrong(scale_dim=x.shape[-1]),
        "missing 1/sqrt(d_k) in the heads' attention": wrong(scale_dim=1),
    }


def ln_oracle(x, w, b, eps=1e-5):
    return F.layer_norm(x, (x.shape[-1],), w, b, eps)


def _ln_mistakes(x, w, b, eps):
    mean = x.mean(-1, keepdim=True)
    return {
        "variance with Bessel's correction (divide by dim - 1); LayerNorm uses the biased variance":
            lambda: (x - mean) / torch.sqrt(x.var(-1, keepdim=True, correction=1) + eps) * w + b,
        "eps outside the square root: divide by sqrt(var + eps), not sqrt(var) + eps":
            lambda: (x - mean) / (x.var(-1, keepdim=True, correction=0).sqrt() + eps) * w + b,
        "weight and bias not applied":
            lambda: F.layer_norm(x, (x.shape[-1],), None, None, eps),
    }


def ffn_oracle(x, p, prefix=""):
    h = F.gelu(F.linear(x, p[f"{prefix}up.weight"], p[f"{prefix}up.bias"]))
    return F.linear(h, p[f"{prefix}down.weight"], p[f"{prefix}down.bias"])


_GELU_MISTAKES = {
    "tanh approximation of GELU; this course grades the exact erf form 0.5*x*(1 + erf(x/sqrt(2)))":
        lambda x: F.gelu(x, approximate="tanh"),
    "sigmoid approximation x*sigmoid(1.702x); use the exact erf form": lambda x: x * torch.sigmoid(1.702 * x),
    "erf(x) instead of erf(x / sqrt(2))": lambda x: 0.5 * x * (1 + torch.erf(x)),
    "ReLU instead of GELU": torch.relu,
}


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


def _block_mistakes(x, p, H, pre_norm, mask=None, causal=False):
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


# ================================================================= MultiHeadAttention

_MHA = "MultiHeadAttention"


def _mha(impl, d_model, n_heads, bias=True, seed=0):
    module = impl.MultiHeadAttention(d_model, n_heads, bias=bias).double()
    values = random_params(module, mha_names(bias), seed, _MHA)
    return load_params(module, values, _MHA), values


@pytest.mark.points(5)
def test_mha_matches_torch(impl):
    for d_model, n_heads, bias, batch, seq in [(8, 2, True, 2, 5), (12, 3, False, 3, 4), (16, 4, True, 1, 6),
                                               (6, 1, True, 2, 3)]:
        module, p = _mha(impl, d_model, n_heads, bias, seed=d_model)
        x = _randn((batch, seq, d_model), d_model + 1)
        out = _run(_MHA, _MHA_BUILTINS, module, x)
        expected = torch_mha(p, d_model, n_heads, bias)(x, x, x, need_weights=False)[0]
        check.close(out, expected, unit=_MHA, case=check.describe(x=x, d_model=d_model, n_heads=n_heads, bias=bias),
                    kind="model", mistakes=_mha_mistakes(x, p, n_heads))


@pytest.mark.points(4)
def test_mha_masks_match_torch(impl):
    B, T, C, H = 2, 6, 8, 2
    module, p = _mha(impl, C, H, seed=1)
    ref = torch_mha(p, C, H, True)
    x = _randn((B, T, C), 2)
    future = ~torch.ones(T, T, dtype=torch.bool).tril()                   # torch: True = NOT allowed
    pad = torch.tensor([[True] * T, [True] * 4 + [False] * 2])           # (B, T) keys that may be seen
    bias = _randn((T, T), 3)
    cases = [
        ({"causal": True}, {"attn_mask": future}),
        ({"mask": pad.view(B, 1, 1, T)}, {"key_padding_mask": ~pad}),
        ({"mask": pad.view(B, 1, 1, T), "causal": True}, {"attn_mask": future, "key_padding_mask": ~pad}),
        ({"mask": bias}, {"attn_mask": bias}),
    ]
    for ours, theirs in cases:
        case = check.describe(x=x, **ours)
        out = _run(_MHA, _MHA_BUILTINS, module, x, **ours)
        expected = ref(x, x, x, need_weights=False, **theirs)[0]
        check.close(out, expected, unit=_MHA, case=case, kind="model",
                    mistakes=_mha_mistakes(x, p, H, ours.get("mask"), ours.get("causal", False)))


@pytest.mark.points(3)
def test_mha_gradients(impl):
    B, T, C, H = 2, 4, 8, 2
    module, p = _mha(impl, C, H, seed=4)
    names = list(p)
    x = _randn((B, T, C), 5)
    for kwargs in ({"causal": True}, {"mask": _rand_bool((B, 1, T, T), 6)}):
        def student(x, *ps):
            return call_with(module, dict(zip(names, ps)), _MHA, _MHA_BUILTINS, x, **kwargs)

        def oracle(x, *ps):
            return mha_oracle(x, dict(zip(names, ps)), H, kwargs.get("mask"), kwargs.get("causal", False))

        check.grads(student, oracle, [x, *p.values()], unit=_MHA, case=check.describe(x=x, **kwargs),
                    names=["x", *names])
    # float64 finite differences w.r.t. x and two parameters (the rest are checked above)
    small, q = _mha(impl, 4, 2, seed=7)
    some = {n: q[n] for n in ("q_proj.weight", "v_proj.bias")}
    xs = _randn((1, 3, 4), 8)
    _gradcheck(_MHA, _MHA_BUILTINS, lambda x, *ps: functional_call(small, dict(zip(some, ps)), (x,), {"causal": True}),
               [xs, *some.values()], case=check.describe(x=xs, causal=True))


@pytest.mark.points(2)
def test_mha_causality(impl):
    B, T, C, H = 2, 6, 8, 4
    module, _ = _mha(impl, C, H, seed=9)
    x = _randn((B, T, C), 10)
    base = _run(_MHA, _MHA_BUILTINS, module, x, causal=True)
    for t in range(T - 1):
        x2 = x.clone()
        x2[:, t + 1:] += 5 * _randn((B, T - t - 1, C), 11 + t)
        out = _run(_MHA, _MHA_BUILTINS, module, x2, causal=True)
        check.close(out[:, : t + 1], base[:, : t + 1], unit=_MHA, kind="model",
                    case=check.describe(x=x2, causal=True) + f"; tokens after position {t} changed",
                    what=f"outputs at positions 0..{t} (must not see the future)")


@pytest.mark.points(2)
def test_mha_structure(impl):
    for bias in (True, False):
        m = impl.MultiHeadAttention(12, 3, bias=bias)
        check.that(getattr(m, "n_heads", None) == 3, _MHA, "n_heads should be stored as an attribute (3)",
                   case=f"MultiHeadAttention(12, 3, bias={bias})")
        for name in _PROJ:
            layer = getattr(m, name, None)
            check.that(isinstance(layer, nn.Linear) and tuple(layer.weight.shape) == (12, 12), _MHA,
                       f"`{name}` should be nn.Linear(12, 12)", case=f"MultiHeadAttention(12, 3, bias={bias})")
            check.that((layer.bias is not None) == bias, _MHA, f"`{name}` should {'' if bias else 'not '}have a bias",
                       case=f"MultiHeadAttention(12, 3, bias={bias})")
        n = sum(p.numel() for p in m.parameters())
        check.equal(n, 4 * 144 + (48 if bias else 0), unit=_MHA, what="number of parameters",
                    case=f"MultiHeadAttention(12, 3, bias={bias})")
    with pytest.raises(ValueError):
        impl.MultiHeadAttention(10, 3)


@pytest.mark.points(1)
def test_mha_reference_data(impl):
    rec = reference.load(TOPIC, "mha")
    d_model, n_heads = rec["x"].shape[-1], int(rec["n_heads"])
    module = impl.MultiHeadAttention(d_model, n_heads).double()
    load_params(module, {k[2:]: v for k, v in rec.items() if k.startswith("p.")}, _MHA)
    out = _run(_MHA, _MHA_BUILTINS, module, rec["x"], causal=True)
    check.close(out, rec["out"], unit=_MHA, case=check.describe(x=rec["x"], causal=True), kind="model")


# ================================================================= LayerNorm

_LN = "LayerNorm"


@pytest.mark.points(3)
@settings(max_examples=15, suppress_health_check=_HC, phases=_PHASES)
@given(shape=st.lists(st.integers(1, 4), min_size=0, max_size=2), dim=st.integers(2, 16),
       eps=st.sampled_from([1e-5, 1e-3, 0.1]), scale=st.sampled_from([1e-3, 1.0, 50.0]),
       offset=st.sampled_from([0.0, 3.0]), dtype=st.sampled_from([torch.float32, torch.float64]),
       seed=st.integers(0, 10_000))
def test_layernorm_matches_torch(impl, shape, dim, eps, scale, offset, dtype, seed):
    x = ((_randn(shape + [dim], seed) + offset) * scale).to(dtype)
    ln = impl.LayerNorm(dim, eps=eps).to(dtype)
    p = random_params(ln, ln_names(), seed, _LN)
    load_params(ln, p, _LN)
    w, b = p["weight"].to(dtype), p["bias"].to(dtype)
    out = _run(_LN, _LAYERNORM_BUILTINS, ln, x)
    check.close(out, ln_oracle(x, w, b, eps), unit=_LN, case=check.describe(x=x, eps=eps), kind="reduction",
                mistakes=_ln_mistakes(x, w, b, eps))


@pytest.mark.points(2)
def test_layernorm_defaults(impl):
    ln = impl.LayerNorm(6)
    case = "LayerNorm(6)"
    for name, value in (("weight", 1.0), ("bias", 0.0)):
        p = _param(ln, name, _LN)
        check.close(p.detach(), torch.full((6,), value), unit=_LN, case=case, what=f"initial {name}")
    check.that(getattr(ln, "eps", None) == 1e-5, _LN, "eps should default to 1e-5 and be stored as `eps`", case=case)
    check.that(getattr(impl.LayerNorm(6, eps=0.25), "eps", None) == 0.25, _LN, "eps should be stored as `eps`",
               case="LayerNorm(6, eps=0.25)")
    x = _randn((3, 6), 20, torch.float32) * 1e-3      # variance ~1e-6: eps matters
    out = _run(_LN, _LAYERNORM_BUILTINS, ln, x)
    check.close(out, F.layer_norm(x, (6,)), unit=_LN, case=check.describe(x=x), kind="reduction",
                mistakes=_ln_mistakes(x, torch.ones(6), torch.zeros(6), 1e-5))
    const = torch.full((2, 6), 3.5)                   # zero variance: output is the bias, not NaN
    check.close(_run(_LN, _LAYERNORM_BUILTINS, ln, const), torch.zeros(2, 6), unit=_LN,
                case=check.describe(x=const), kind="reduction")


@pytest.mark.points(3)
def test_layernorm_gradients(impl):
    dim = 5
    ln = impl.LayerNorm(dim).double()
    p = random_params(ln, ln_names(), 30, _LN)
    x = _randn((2, 3, dim), 31) * 2 + 1

    def student(x, w, b):
        return call_with(ln, {"weight": w, "bias": b}, _LN, _LAYERNORM_BUILTINS, x)

    check.grads(student, lambda x, w, b: ln_oracle(x, w, b), [x, p["weight"], p["bias"]], unit=_LN,
                case=check.describe(x=x), names=["x", "weight", "bias"],
                mistakes={"variance with Bessel's correction (unbiased)":
                          lambda x, w, b: (x - x.mean(-1, keepdim=True))
                          / torch.sqrt(x.var(-1, keepdim=True, correction=1) + 1e-5) * w + b})
    _gradcheck(_LN, _LAYERNORM_BUILTINS, lambda x, w, b: functional_call(ln, {"weight": w, "bias": b}, (x,)),
               [x[0], p["weight"], p["bias"]], case=check.describe(x=x[0]))


@pytest.mark.points(1)
def test_layernorm_reference_data(impl):
    rec = reference.load(TOPIC, "layernorm")
    ln = impl.LayerNorm(rec["x"].shape[-1]).double()
    load_params(ln, {"weight": rec["weight"], "bias": rec["bias"]}, _LN)
    check.close(_run(_LN, _LAYERNORM_BUILTINS, ln, rec["x"]), rec["out"], unit=_LN,
                case=check.describe(x=rec["x"]), kind="reduction")


# ================================================================= gelu

@pytest.mark.points(3)
def test_gelu_matches_exact(impl):
    for dtype in (torch.float32, torch.float64):
        x = torch.cat([torch.linspace(-10, 10, 401, dtype=torch.float64), _randn((64,), 40) * 3]).to(dtype)
        out = _run("gelu", _GELU_BUILTINS, impl.gelu, x)
        check.close(out, F.gelu(x), unit="gelu", case=check.describe(x=x), kind="elementwise",
                    mistakes={k: (lambda f=f, x=x: f(x)) for k, f in _GELU_MISTAKES.items()})
        y = _randn((2, 3, 4), 41, dtype)
        check.close(_run("gelu", _GELU_BUILTINS, impl.gelu, y), F.gelu(y), unit="gelu", case=check.describe(x=y),
                    kind="elementwise")


@pytest.mark.points(2)
def test_gelu_gradients(impl):
    def student(t):
        return _run("gelu", _GELU_BUILTINS, impl.gelu, t)

    x = torch.cat([torch.linspace(-6, 6, 49, dtype=torch.float64), _randn((16,), 42)])
    check.grads(student, F.gelu, [x], unit="gelu", case=check.describe(x=x), names=["x"],
                mistakes={k: f for k, f in _GELU_MISTAKES.items() if k.startswith("tanh")})
    _gradcheck("gelu", _GELU_BUILTINS, impl.gelu, [_randn((10,), 43) * 2], case="x: float64 tensor of shape (10,)")


@pytest.mark.points(1)
def test_gelu_reference_data(impl):
    rec = reference.load(TOPIC, "gelu")
    check.close(_run("gelu", _GELU_BUILTINS, impl.gelu, rec["x"]), rec["out"], unit="gelu",
                case=check.describe(x=rec["x"]), kind="elementwise")


# ================================================================= FeedForward

_FF = "FeedForward"


@pytest.mark.points(3)
def test_feedforward(impl):
    d_model, d_hidden = 6, 10
    ff = impl.FeedForward(d_model, d_hidden).double()
    for name, shape in (("up", (d_hidden, d_model)), ("down", (d_model, d_hidden))):
        layer = getattr(ff, name, None)
        check.that(isinstance(layer, nn.Linear) and tuple(layer.weight.shape) == shape and layer.bias is not None,
                   _FF, f"`{name}` should be nn.Linear with weight shape {shape} and a bias",
                   case=f"FeedForward({d_model}, {d_hidden})")
    p = random_params(ff, ffn_names(), 50, _FF)
    load_params(ff, p, _FF)
    names = list(p)
    for x in (_randn((2, 3, d_model), 51) * 2, _randn((4, d_model), 52)):
        out = _run(_FF, _GELU_BUILTINS, ff, x)
        h = F.linear(x, p["up.weight"], p["up.bias"])
        check.close(out, ffn_oracle(x, p), unit=_FF, case=check.describe(x=x), kind="model", mistakes={
            "tanh GELU; use the exact gelu":
                lambda: F.linear(F.gelu(h, approximate="tanh"), p["down.weight"], p["down.bias"]),
            "ReLU instead of GELU": lambda: F.linear(torch.relu(h), p["down.weight"], p["down.bias"]),
            "no activation between the two projections": lambda: F.linear(h, p["down.weight"], p["down.bias"]),
        })
    x = _randn((2, 3, d_model), 53)
    check.grads(lambda x, *ps: call_with(ff, dict(zip(names, ps)), _FF, _GELU_BUILTINS, x),
                lambda x, *ps: ffn_oracle(x, dict(zip(names, ps))), [x, *p.values()], unit=_FF,
                case=check.describe(x=x), names=["x", *names])


# ================================================================= TransformerBlock

_BLOCK = "TransformerBlock"


def _block(impl, d_model, n_heads, d_hidden, pre_norm, seed):
    block = impl.TransformerBlock(d_model, n_heads, d_hidden, pre_norm=pre_norm).double()
    values = random_params(block, block_names(), seed, _BLOCK)
    return load_params(block, values, _BLOCK), values


@pytest.mark.points(4)
@pytest.mark.parametrize("pre_norm", [True, False])
def test_block_matches_oracle(impl, pre_norm):
    B, T, C, H, d_hidden = 2, 5, 8, 2, 16
    block, p = _block(impl, C, H, d_hidden, pre_norm, seed=60 + pre_norm)
    check.that(getattr(block, "pre_norm", None) == pre_norm, _BLOCK, f"should store pre_norm={pre_norm}",
               case=f"TransformerBlock({C}, {H}, {d_hidden}, pre_norm={pre_norm})")
    x = _randn((B, T, C), 62)
    pad = torch.tensor([[True] * T, [True] * 3 + [False] * 2]).view(B, 1, 1, T)
    for kwargs in ({"causal": True}, {"mask": pad}):
        out = _run(_BLOCK, _BLOCK_BUILTINS, block, x, **kwargs)
        check.close(out, block_oracle(x, p, H, pre_norm, kwargs.get("mask"), kwargs.get("causal", False)),
                    unit=_BLOCK, case=check.describe(x=x, pre_norm=pre_norm, **kwargs), kind="model",
                    mistakes=_block_mistakes(x, p, H, pre_norm, kwargs.get("mask"), kwargs.get("causal", False)))


@pytest.mark.points(4)
def test_block_zeroed_sublayers(impl):
    B, T, C, H, d_hidden = 2, 4, 8, 2, 12
    for dtype, pre_norm in ((torch.float64, True), (torch.float32, True), (torch.float64, False)):
        block, p = _block(impl, C, H, d_hidden, pre_norm, seed=70)
        zero = {n: torch.zeros_like(p[n]) for n in p if n.startswith(("attn.out_proj.", "ffn.down."))}
        load_params(block, zero, _BLOCK)
        p.update(zero)
        block = block.to(dtype)
        x = _randn((B, T, C), 71, dtype) * 2
        out = _run(_BLOCK, _BLOCK_BUILTINS, block, x, causal=True)
        p_d = {k: v.to(dtype) for k, v in p.items()}
        norms = ln_oracle(ln_oracle(x, p_d["ln1.weight"], p_d["ln1.bias"]), p_d["ln2.weight"], p_d["ln2.bias"])
        case = check.describe(x=x, pre_norm=pre_norm, causal=True) + "; attn.out_proj and ffn.down zeroed"
        if pre_norm:
            check.close(out, x, unit=_BLOCK, case=case, kind="model",
                        what="output (a pre-norm block whose sublayers output 0 is the identity)",
                        mistakes={"post-norm where pre-norm was asked": norms})
        else:
            check.close(out, norms, unit=_BLOCK, case=case, kind="model",
                        what="output (a post-norm block whose sublayers output 0 is ln2(ln1(x)))",
                        mistakes={"pre-norm where post-norm was asked": x})


@pytest.mark.points(3)
def test_block_gradients(impl):
    B, T, C, H, d_hidden = 2, 4, 8, 2, 12
    for pre_norm in (True, False):
        block, p = _block(impl, C, H, d_hidden, pre_norm, seed=80)
        names = list(p)
        x = _randn((B, T, C), 81)
        check.grads(lambda x, *ps: call_with(block, dict(zip(names, ps)), _BLOCK, _BLOCK_BUILTINS, x, causal=True),
                    lambda x, *ps: block_oracle(x, dict(zip(names, ps)), H, pre_norm, causal=True),
                    [x, *p.values()], unit=_BLOCK, case=check.describe(x=x, pre_norm=pre_norm, causal=True),
                    names=["x", *names])


@pytest.mark.points(2)
def test_block_causality(impl):
    B, T, C, H, d_hidden = 2, 6, 8, 2, 16
    for pre_norm in (True, False):
        block, _ = _block(impl, C, H, d_hidden, pre_norm, seed=90)
        x = _randn((B, T, C), 91)
        base = _run(_BLOCK, _BLOCK_BUILTINS, block, x, causal=True)
        for t in range(0, T - 1, 2):
            x2 = x.clone()
            x2[:, t + 1:] += 5 * _randn((B, T - t - 1, C), 92 + t)
            out = _run(_BLOCK, _BLOCK_BUILTINS, block, x2, causal=True)
            check.close(out[:, : t + 1], base[:, : t + 1], unit=_BLOCK, kind="model",
                        case=check.describe(x=x2, pre_norm=pre_norm, causal=True) + f"; tokens after {t} changed",
                        what=f"outputs at positions 0..{t} (must not see the future)")


@pytest.mark.points(1)
def test_block_structure(impl):
    C, H, d_hidden = 8, 2, 16
    block = impl.TransformerBlock(C, H, d_hidden)
    case = f"TransformerBlock({C}, {H}, {d_hidden})"
    for name, cls in (("ln1", impl.LayerNorm), ("ln2", impl.LayerNorm), ("attn", impl.MultiHeadAttention),
                      ("ffn", impl.FeedForward)):
        check.that(isinstance(getattr(block, name, None), cls), _BLOCK,
                   f"`{name}` should be your {cls.__name__}", case=case)
    check.that(getattr(block, "pre_norm", None) is True, _BLOCK, "pre_norm should default to True", case=case)
    n = sum(p.numel() for p in block.parameters())
    expected = 4 * (C * C + C) + 2 * (2 * C) + (C * d_hidden + d_hidden) + (d_hidden * C + C)
    check.equal(n, expected, unit=_BLOCK, case=case, what="number of parameters")


@pytest.mark.points(1)
def test_block_reference_data(impl):
    rec = reference.load(TOPIC, "block")
    C, H, d_hidden = rec["x"].shape[-1], int(rec["n_heads"]), int(rec["d_hidden"])
    values = {k[2:]: v for k, v in rec.items() if k.startswith("p.")}
    for pre_norm, key in ((True, "out_pre"), (False, "out_post")):
        block = load_params(impl.TransformerBlock(C, H, d_hidden, pre_norm=pre_norm).double(), values, _BLOCK)
        check.close(_run(_BLOCK, _BLOCK_BUILTINS, block, rec["x"], causal=True), rec[key], unit=_BLOCK,
                    case=check.describe(x=rec["x"], pre_norm=pre_norm, causal=True), kind="model")
