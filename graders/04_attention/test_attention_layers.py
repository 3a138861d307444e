"""Graders for topic 04 (part 2): MultiHeadAttention, LayerNorm, gelu, FeedForward,
TransformerBlock.

Oracles: torch.nn.MultiheadAttention with copied weights, F.layer_norm, F.gelu, and
functional versions of the block written with PyTorch built-ins (F.linear,
F.scaled_dot_product_attention, F.layer_norm, F.gelu), in attention_oracles.py. Properties:
causality, identity of a pre-norm block with zeroed sublayers. Gradients: against the
oracles and float64 gradcheck.

The graders set every weight through the attribute names the docstrings fix (q_proj, ...,
ln1, attn, ffn, up, down), so the student's initialisation does not matter.
"""

from __future__ import annotations

import math

import attention_oracles as O
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

from llmlab.testing import check, guard, properties, reference
from llmlab.testing.strategies import examples, float_dtypes, seeds, shapes
from llmlab.testing.tensors import bool_mask, randn

# ----------------------------------------------------------------- known mistakes


def _mha_mistakes(x, p, H, mask=None, causal=False):
    def wrong(**kw):
        return lambda: O.mha_oracle(x, p, H, mask, causal, **kw)

    return {
        "heads merged in the wrong order: head h must occupy output features [h*D, (h+1)*D) "
        "(transpose (B, H, T, D) to (B, T, H, D), then reshape)": wrong(merge="head-last"),
        "heads merged without moving the head axis back: transpose (B, H, T, D) to (B, T, H, D) "
        "before reshaping to (B, T, C)": wrong(merge="reshape"),
        "heads split without a transpose: view as (B, T, H, D), then transpose to (B, H, T, D)": wrong(split="reshape"),
        "scores scaled by 1/sqrt(d_model); each head must use 1/sqrt(head size)": wrong(scale_dim=x.shape[-1]),
        "missing 1/sqrt(d_k) in the heads' attention": wrong(scale_dim=1),
    }


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


_GELU_MISTAKES = {
    "tanh approximation of GELU; this course grades the exact erf form 0.5*x*(1 + erf(x/sqrt(2)))":
        lambda x: F.gelu(x, approximate="tanh"),
    "sigmoid approximation x*sigmoid(1.702x); use the exact erf form": lambda x: x * torch.sigmoid(1.702 * x),
    "erf(x) instead of erf(x / sqrt(2))": lambda x: 0.5 * x * (1 + torch.erf(x)),
    "ReLU instead of GELU": torch.relu,
}


# ================================================================= MultiHeadAttention

_MHA = "MultiHeadAttention"


def _mha_call(module, x, **kwargs):
    return guard.call_without(_MHA, O.MHA_BUILTINS, module, x, hint=O.HINT_ATTENTION, **kwargs)


@pytest.mark.points(5)
def test_mha_matches_torch(impl):
    for d_model, n_heads, bias, batch, seq in [(8, 2, True, 2, 5), (12, 3, False, 3, 4), (16, 4, True, 1, 6),
                                               (6, 1, True, 2, 3), (8, 4, True, 1, 1)]:
        module, p = O.make_mha(impl, d_model, n_heads, bias, seed=d_model)
        x = randn((batch, seq, d_model), d_model + 1)
        expected = O.torch_mha(p, d_model, n_heads, bias)(x, x, x, need_weights=False)[0]
        check.close(_mha_call(module, x), expected, unit=_MHA,
                    case=check.describe(x=x, d_model=d_model, n_heads=n_heads, bias=bias),
                    kind="model", mistakes=_mha_mistakes(x, p, n_heads))
    # x may be a non-contiguous view (here a transpose of a (T, B, C) tensor).
    x = randn((5, 2, 8), 30).transpose(0, 1)
    module, p = O.make_mha(impl, 8, 2, seed=31)
    expected = O.torch_mha(p, 8, 2, True)(x, x, x, need_weights=False)[0]
    check.close(_mha_call(module, x), expected, unit=_MHA, kind="model",
                case=check.describe(x=x) + "; x is a non-contiguous view (a transpose)")


@pytest.mark.points(4)
def test_mha_masks_match_torch(impl):
    B, T, C, H = 2, 6, 8, 2
    module, p = O.make_mha(impl, C, H, seed=1)
    ref = O.torch_mha(p, C, H, True)
    x = randn((B, T, C), 2)
    future = ~torch.ones(T, T, dtype=torch.bool).tril()                   # torch: True = NOT allowed
    pad = torch.tensor([[True] * T, [True] * 4 + [False] * 2])           # (B, T) keys that may be seen
    bias = randn((T, T), 3)
    allowed = bool_mask((T, T), 4)                                        # ours: True = allowed
    cases = [
        ({"causal": True}, {"attn_mask": future}),
        ({"mask": pad.view(B, 1, 1, T)}, {"key_padding_mask": ~pad}),
        ({"mask": pad.view(B, 1, 1, T), "causal": True}, {"attn_mask": future, "key_padding_mask": ~pad}),
        ({"mask": bias}, {"attn_mask": bias}),
        ({"mask": allowed}, {"attn_mask": ~allowed}),
    ]
    for ours, theirs in cases:
        out = _mha_call(module, x, **ours)
        expected = ref(x, x, x, need_weights=False, **theirs)[0]
        check.close(out, expected, unit=_MHA, case=check.describe(x=x, **ours), kind="model",
                    mistakes=_mha_mistakes(x, p, H, ours.get("mask"), ours.get("causal", False)))


@pytest.mark.points(3)
def test_mha_gradients(impl):
    B, T, C, H = 2, 4, 8, 2
    module, p = O.make_mha(impl, C, H, seed=4)
    names = list(p)
    x = randn((B, T, C), 5)
    for kwargs in ({"causal": True}, {"mask": bool_mask((B, 1, T, T), 6)}):
        def student(x, *ps):
            return O.call_with(module, dict(zip(names, ps)), _MHA, O.MHA_BUILTINS, x, hint=O.HINT_ATTENTION,
                               **kwargs)

        def oracle(x, *ps):
            return O.mha_oracle(x, dict(zip(names, ps)), H, kwargs.get("mask"), kwargs.get("causal", False))

        check.grads(student, oracle, [x, *p.values()], unit=_MHA, case=check.describe(x=x, **kwargs),
                    names=["x", *names])
    # float64 finite differences w.r.t. x and two parameters (the rest are checked above)
    small, q = O.make_mha(impl, 4, 2, seed=7)
    some = {n: q[n] for n in ("q_proj.weight", "v_proj.bias")}
    xs = randn((1, 3, 4), 8)
    guard.gradcheck_without(_MHA, O.MHA_BUILTINS,
                            lambda x, *ps: functional_call(small, dict(zip(some, ps)), (x,), {"causal": True}),
                            [xs, *some.values()], case=check.describe(x=xs, causal=True), hint=O.HINT_ATTENTION)


@pytest.mark.points(2)
def test_mha_causality(impl):
    B, T, C, H = 2, 6, 8, 4
    module, _ = O.make_mha(impl, C, H, seed=9)
    x = randn((B, T, C), 10)
    properties.causal(lambda x: _mha_call(module, x, causal=True), x, unit=_MHA, dim=1, kind="model", seed=11,
                      case=check.describe(x=x, causal=True) + "; tokens at later positions changed")


@pytest.mark.points(2)
def test_mha_structure(impl):
    for bias in (True, False):
        m = impl.MultiHeadAttention(12, 3, bias=bias)
        check.that(getattr(m, "n_heads", None) == 3, _MHA, "n_heads should be stored as an attribute (3)",
                   case=f"MultiHeadAttention(12, 3, bias={bias})")
        for name in O.PROJ:
            layer = getattr(m, name, None)
            check.that(isinstance(layer, nn.Linear) and tuple(layer.weight.shape) == (12, 12), _MHA,
                       f"`{name}` should be nn.Linear(12, 12)", case=f"MultiHeadAttention(12, 3, bias={bias})")
            check.that((layer.bias is not None) == bias, _MHA, f"`{name}` should {'' if bias else 'not '}have a bias",
                       case=f"MultiHeadAttention(12, 3, bias={bias})")
        n = sum(p.numel() for p in m.parameters())
        check.equal(n, 4 * 144 + (48 if bias else 0), unit=_MHA, what="number of parameters",
                    case=f"MultiHeadAttention(12, 3, bias={bias})")
    check.expect_raises(ValueError, impl.MultiHeadAttention, 10, 3, unit=f"{_MHA}.__init__",
                        case="MultiHeadAttention(10, 3)",
                        why="d_model=10 is not divisible by n_heads=3")


@pytest.mark.points(1)
def test_mha_reference_data(impl):
    rec = reference.load(O.TOPIC, "mha")
    d_model, n_heads = rec["x"].shape[-1], int(rec["n_heads"])
    module = impl.MultiHeadAttention(d_model, n_heads).double()
    O.load_params(module, {k[2:]: v for k, v in rec.items() if k.startswith("p.")}, _MHA)
    out = _mha_call(module, rec["x"], causal=True)
    check.close(out, rec["out"], unit=_MHA, case=check.describe(x=rec["x"], causal=True), kind="model")


# ================================================================= LayerNorm

_LN = "LayerNorm"


def _ln_params(ln, seed):
    """Seeded LayerNorm parameters: gain 1 ± 0.3, bias ± 0.3."""
    return O.randomize(ln, O.ln_names(), seed, _LN, 0.3, gains=("weight",))


@pytest.mark.points(3)
@examples(15)
@given(shape=shapes(min_dims=0, max_dims=2, max_side=4), dim=st.integers(2, 16),
       eps=st.sampled_from([1e-5, 1e-3, 0.1]), scale=st.sampled_from([1e-3, 1.0, 50.0]),
       offset=st.sampled_from([0.0, 3.0]), dtype=float_dtypes(), seed=seeds())
def test_layernorm_matches_torch(impl, shape, dim, eps, scale, offset, dtype, seed):
    x = ((randn(shape + (dim,), seed) + offset) * scale).to(dtype)
    ln = impl.LayerNorm(dim, eps=eps).to(dtype)
    p = _ln_params(ln, seed)
    w, b = p["weight"], p["bias"]
    out = guard.call_without(_LN, O.LAYERNORM_BUILTINS, ln, x)
    check.close(out, O.ln_oracle(x, w, b, eps), unit=_LN, case=check.describe(x=x, eps=eps), kind="reduction",
                mistakes=_ln_mistakes(x, w, b, eps))


@pytest.mark.points(2)
def test_layernorm_defaults(impl):
    ln = impl.LayerNorm(6)
    case = "LayerNorm(6)"
    for name, value in (("weight", 1.0), ("bias", 0.0)):
        p = O.param(ln, name, _LN)
        check.close(p.detach(), torch.full((6,), value), unit=_LN, case=case, what=f"initial {name}")
    check.that(getattr(ln, "eps", None) == 1e-5, _LN, "eps should default to 1e-5 and be stored as `eps`", case=case)
    check.that(getattr(impl.LayerNorm(6, eps=0.25), "eps", None) == 0.25, _LN, "eps should be stored as `eps`",
               case="LayerNorm(6, eps=0.25)")
    x = randn((3, 6), 20, torch.float32, scale=1e-3)  # variance ~1e-6: eps matters
    out = guard.call_without(_LN, O.LAYERNORM_BUILTINS, ln, x)
    check.close(out, F.layer_norm(x, (6,)), unit=_LN, case=check.describe(x=x), kind="reduction",
                mistakes=_ln_mistakes(x, torch.ones(6), torch.zeros(6), 1e-5))
    const = torch.full((2, 6), 3.5)                   # zero variance: output is the bias, not NaN
    check.close(guard.call_without(_LN, O.LAYERNORM_BUILTINS, ln, const), torch.zeros(2, 6), unit=_LN,
                case=check.describe(x=const), kind="reduction")


@pytest.mark.points(3)
def test_layernorm_gradients(impl):
    dim = 5
    ln = impl.LayerNorm(dim).double()
    p = _ln_params(ln, 30)
    x = randn((2, 3, dim), 31, scale=2.0) + 1

    def student(x, w, b):
        return O.call_with(ln, {"weight": w, "bias": b}, _LN, O.LAYERNORM_BUILTINS, x)

    check.grads(student, lambda x, w, b: O.ln_oracle(x, w, b), [x, p["weight"], p["bias"]], unit=_LN,
                case=check.describe(x=x), names=["x", "weight", "bias"],
                mistakes={"variance with Bessel's correction (unbiased)":
                          lambda x, w, b: (x - x.mean(-1, keepdim=True))
                          / torch.sqrt(x.var(-1, keepdim=True, correction=1) + 1e-5) * w + b})
    guard.gradcheck_without(_LN, O.LAYERNORM_BUILTINS,
                            lambda x, w, b: functional_call(ln, {"weight": w, "bias": b}, (x,)),
                            [x[0], p["weight"], p["bias"]], case=check.describe(x=x[0]))


@pytest.mark.points(1)
def test_layernorm_reference_data(impl):
    rec = reference.load(O.TOPIC, "layernorm")
    ln = impl.LayerNorm(rec["x"].shape[-1]).double()
    O.load_params(ln, {"weight": rec["weight"], "bias": rec["bias"]}, _LN)
    check.close(guard.call_without(_LN, O.LAYERNORM_BUILTINS, ln, rec["x"]), rec["out"], unit=_LN,
                case=check.describe(x=rec["x"]), kind="reduction")


# ================================================================= gelu

@pytest.mark.points(3)
def test_gelu_matches_exact(impl):
    for dtype in (torch.float32, torch.float64):
        x = torch.cat([torch.linspace(-10, 10, 401, dtype=torch.float64), randn((64,), 40, scale=3.0)]).to(dtype)
        out = guard.call_without("gelu", O.GELU_BUILTINS, impl.gelu, x)
        check.close(out, F.gelu(x), unit="gelu", case=check.describe(x=x), kind="elementwise",
                    mistakes={k: (lambda f=f, x=x: f(x)) for k, f in _GELU_MISTAKES.items()})
        y = randn((2, 3, 4), 41, dtype)
        check.close(guard.call_without("gelu", O.GELU_BUILTINS, impl.gelu, y), F.gelu(y), unit="gelu",
                    case=check.describe(x=y), kind="elementwise")


@pytest.mark.points(2)
def test_gelu_gradients(impl):
    def student(t):
        return guard.call_without("gelu", O.GELU_BUILTINS, impl.gelu, t)

    x = torch.cat([torch.linspace(-6, 6, 49, dtype=torch.float64), randn((16,), 42)])
    check.grads(student, F.gelu, [x], unit="gelu", case=check.describe(x=x), names=["x"],
                mistakes={k: f for k, f in _GELU_MISTAKES.items() if k.startswith("tanh")})
    guard.gradcheck_without("gelu", O.GELU_BUILTINS, impl.gelu, [randn((10,), 43, scale=2.0)],
                            case="x: float64 tensor of shape (10,)")


@pytest.mark.points(1)
def test_gelu_reference_data(impl):
    rec = reference.load(O.TOPIC, "gelu")
    check.close(guard.call_without("gelu", O.GELU_BUILTINS, impl.gelu, rec["x"]), rec["out"], unit="gelu",
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
    p = O.randomize(ff, O.ffn_names(), 50, _FF, 1.5 / math.sqrt(d_model))
    names = list(p)
    for x in (randn((2, 3, d_model), 51, scale=2.0), randn((4, d_model), 52)):
        out = guard.call_without(_FF, O.GELU_BUILTINS, ff, x)
        h = F.linear(x, p["up.weight"], p["up.bias"])
        check.close(out, O.ffn_oracle(x, p), unit=_FF, case=check.describe(x=x), kind="model", mistakes={
            "tanh GELU; use the exact gelu":
                lambda: F.linear(F.gelu(h, approximate="tanh"), p["down.weight"], p["down.bias"]),
            "ReLU instead of GELU": lambda: F.linear(torch.relu(h), p["down.weight"], p["down.bias"]),
            "no activation between the two projections": lambda: F.linear(h, p["down.weight"], p["down.bias"]),
        })
    x = randn((2, 3, d_model), 53)
    check.grads(lambda x, *ps: O.call_with(ff, dict(zip(names, ps)), _FF, O.GELU_BUILTINS, x),
                lambda x, *ps: O.ffn_oracle(x, dict(zip(names, ps))), [x, *p.values()], unit=_FF,
                case=check.describe(x=x), names=["x", *names])


# ================================================================= TransformerBlock

_BLOCK = "TransformerBlock"


def _block_call(block, x, **kwargs):
    return guard.call_without(_BLOCK, O.BLOCK_BUILTINS, block, x, **kwargs)


@pytest.mark.points(4)
@pytest.mark.parametrize("pre_norm", [True, False])
def test_block_matches_oracle(impl, pre_norm):
    B, T, C, H, d_hidden = 2, 5, 8, 2, 16
    block, p = O.make_block(impl, C, H, d_hidden, pre_norm, seed=60 + pre_norm)
    check.that(getattr(block, "pre_norm", None) == pre_norm, _BLOCK, f"should store pre_norm={pre_norm}",
               case=f"TransformerBlock({C}, {H}, {d_hidden}, pre_norm={pre_norm})")
    batch = randn((B, T, C), 62)
    pad = torch.tensor([[True] * T, [True] * 3 + [False] * 2]).view(B, 1, 1, T)
    one = randn((1, 1, C), 63)                                         # batch 1, T = 1
    for x, kwargs in ((batch, {"causal": True}), (batch, {"mask": pad}), (one, {"causal": True}), (one, {})):
        mask, causal = kwargs.get("mask"), kwargs.get("causal", False)
        check.close(_block_call(block, x, **kwargs), O.block_oracle(x, p, H, pre_norm, mask, causal),
                    unit=_BLOCK, case=check.describe(x=x, pre_norm=pre_norm, **kwargs), kind="model",
                    mistakes=O.block_mistakes(x, p, H, pre_norm, mask, causal))


@pytest.mark.points(4)
def test_block_zeroed_sublayers(impl):
    B, T, C, H, d_hidden = 2, 4, 8, 2, 12
    for dtype, pre_norm in ((torch.float64, True), (torch.float32, True), (torch.float64, False)):
        block, p = O.make_block(impl, C, H, d_hidden, pre_norm, seed=70)
        zero = {n: torch.zeros_like(p[n]) for n in p if n.startswith(("attn.out_proj.", "ffn.down."))}
        O.load_params(block, zero, _BLOCK)
        p.update(zero)
        block = block.to(dtype)
        x = randn((B, T, C), 71, dtype, scale=2.0)
        out = _block_call(block, x, causal=True)
        p_d = {k: v.to(dtype) for k, v in p.items()}
        norms = O.ln_oracle(O.ln_oracle(x, p_d["ln1.weight"], p_d["ln1.bias"]), p_d["ln2.weight"], p_d["ln2.bias"])
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
        block, p = O.make_block(impl, C, H, d_hidden, pre_norm, seed=80)
        names = list(p)
        x = randn((B, T, C), 81)
        check.grads(lambda x, *ps: O.call_with(block, dict(zip(names, ps)), _BLOCK, O.BLOCK_BUILTINS, x,
                                               causal=True),
                    lambda x, *ps: O.block_oracle(x, dict(zip(names, ps)), H, pre_norm, causal=True),
                    [x, *p.values()], unit=_BLOCK, case=check.describe(x=x, pre_norm=pre_norm, causal=True),
                    names=["x", *names])


@pytest.mark.points(2)
def test_block_causality(impl):
    B, T, C, H, d_hidden = 2, 6, 8, 2, 16
    for pre_norm in (True, False):
        block, _ = O.make_block(impl, C, H, d_hidden, pre_norm, seed=90)
        x = randn((B, T, C), 91)
        properties.causal(lambda x: _block_call(block, x, causal=True), x, unit=_BLOCK, dim=1, kind="model",
                          seed=92, case=check.describe(x=x, pre_norm=pre_norm, causal=True)
                          + "; tokens at later positions changed")


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
    rec = reference.load(O.TOPIC, "block")
    C, H, d_hidden = rec["x"].shape[-1], int(rec["n_heads"]), int(rec["d_hidden"])
    values = {k[2:]: v for k, v in rec.items() if k.startswith("p.")}
    for pre_norm, key in ((True, "out_pre"), (False, "out_post")):
        block = O.load_params(impl.TransformerBlock(C, H, d_hidden, pre_norm=pre_norm).double(), values, _BLOCK)
        check.close(_block_call(block, rec["x"], causal=True), rec[key], unit=_BLOCK,
                    case=check.describe(x=rec["x"], pre_norm=pre_norm, causal=True), kind="model")
