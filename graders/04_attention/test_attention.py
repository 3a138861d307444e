"""Graders for topic 04 (part 1): softmax, causal_mask, scaled_dot_product_attention.

Evidence per unit: PyTorch built-ins as oracles (torch.softmax,
F.scaled_dot_product_attention), properties (causality, permutation equivariance, shift
invariance), float64 gradcheck, and the golden data in reference/04_attention.

Conventions under test (see the docstrings in attention.py): bool masks are True where
attention is allowed, floating masks are added to the scores; a fully masked row gives
softmax weights of zero and an attention output of zero.

The helpers at the top are shared with test_attention_layers.py.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from llmlab.testing import check, reference
from llmlab.testing.guard import forbid
from llmlab.testing.tolerances import Tolerance, tolerance

TOPIC = "04_attention"
# `impl` is a function-scoped fixture; it is loaded once per session, so reusing it across
# hypothesis examples is safe.
_HC = [HealthCheck.function_scoped_fixture]
# No "explain" phase: it re-runs a failing test under a tracer, which costs seconds and adds
# nothing to a message that already names the failing input; shrinking stays on.
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]

# ----------------------------------------------------------------- forbidden built-ins

_SOFTMAX_BUILTINS = [
    "torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax", "torch.special.softmax",
    "torch.log_softmax", "torch.nn.functional.log_softmax", "torch.Tensor.log_softmax",
    "torch.special.log_softmax",
]
_ATTENTION_BUILTINS = _SOFTMAX_BUILTINS + [
    "torch.nn.functional.scaled_dot_product_attention",
    "torch.nn.functional.multi_head_attention_forward",
]
_MHA_BUILTINS = _ATTENTION_BUILTINS + ["torch.nn.MultiheadAttention.forward"]
_LAYERNORM_BUILTINS = [
    "torch.nn.functional.layer_norm", "torch.layer_norm", "torch.native_layer_norm",
    "torch.nn.LayerNorm.forward",
]
_GELU_BUILTINS = ["torch.nn.functional.gelu", "torch.nn.GELU.forward"]
_BLOCK_BUILTINS = _MHA_BUILTINS + _LAYERNORM_BUILTINS + _GELU_BUILTINS

_HINT_ATTENTION = "Call your own `softmax` (and `causal_mask`) instead."


def _run(unit: str, builtins: list[str], fn, *args, **kwargs):
    """Run student code with the built-ins it re-implements forbidden."""
    __tracebackhide__ = True
    with forbid(unit, builtins, _HINT_ATTENTION if "attention" in unit.lower() else ""):
        return fn(*args, **kwargs)


def _gradcheck(unit: str, builtins: list[str], fn, inputs, case: str = "") -> None:
    """float64 gradcheck of student code, with the built-ins forbidden for the whole check
    (one guard around the hundreds of calls finite differences make)."""
    __tracebackhide__ = True
    with forbid(unit, builtins, _HINT_ATTENTION if "attention" in unit.lower() else ""):
        check.gradcheck(fn, inputs, unit=unit, case=case)


def _randn(shape, seed: int, dtype=torch.float64) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(tuple(shape), generator=gen, dtype=torch.float64).to(dtype)


def _rand_bool(shape, seed: int, p: float = 0.6) -> torch.Tensor:
    """A random bool mask (True = may attend) with at least one True in every row."""
    gen = torch.Generator().manual_seed(seed)
    mask = torch.rand(tuple(shape), generator=gen) < p
    first = torch.zeros_like(mask)
    idx = torch.randint(0, shape[-1], tuple(shape[:-1]) + (1,), generator=gen)
    first.scatter_(-1, idx, True)
    return mask | first


# ----------------------------------------------------------------- oracles

def _softmax_defined(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """torch.softmax with the course's convention: an all -inf slice gives zeros, not NaN."""
    full = torch.isneginf(x).all(dim=dim, keepdim=True)
    return torch.softmax(x, dim=dim).masked_fill(full, 0.0)


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
    return _softmax_defined(scores, dim=axis) @ v


def _attention_mistakes(q, k, v, mask=None, causal=False) -> dict:
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


# ================================================================= softmax

def _softmax_tol(x: torch.Tensor) -> Tolerance:
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


@pytest.mark.points(3)
@settings(max_examples=15, suppress_health_check=_HC, phases=_PHASES)
@given(shape=st.lists(st.integers(1, 6), min_size=1, max_size=3), dim_pick=st.integers(0, 5),
       negative=st.booleans(), scale=st.sampled_from([0.1, 1.0, 10.0, 60.0]),
       dtype=st.sampled_from([torch.float32, torch.float64]), seed=st.integers(0, 10_000))
def test_softmax_matches_torch(impl, shape, dim_pick, negative, scale, dtype, seed):
    x = _randn(shape, seed, dtype) * scale
    dim = dim_pick % len(shape) - (len(shape) if negative else 0)
    x_before = x.clone()
    out = _run("softmax", _SOFTMAX_BUILTINS, impl.softmax, x, dim=dim)
    check.that(torch.equal(x, x_before), "softmax", "must not modify its input (avoid in-place ops on x)",
               case=check.describe(x=x_before, dim=dim))
    mistakes = {"softmax over the whole tensor instead of along `dim`":
                lambda: torch.softmax(x.flatten(), 0).view_as(x)}
    if x.dim() > 1:
        mistakes["softmax over the wrong axis"] = lambda: torch.softmax(x, dim=(dim + 1) % x.dim())
    check.close(out, torch.softmax(x, dim=dim), unit="softmax", case=check.describe(x=x, dim=dim),
                tol=_softmax_tol(x), mistakes=mistakes)


@pytest.mark.points(4)
def test_softmax_huge_logits(impl):
    for dtype in (torch.float32, torch.float64):
        # Row 0 overflows exp() without the max-subtraction (exp(1000) = inf in float32 and
        # float64); row 3 overflows in float32 only. Row 1 underflows to 0/0 if the max is taken
        # over the whole tensor instead of the row.
        x = torch.tensor([[1000.0, 999.0, 998.0, 990.0],
                          [-1000.0, -999.0, -1001.0, -1000.5],
                          [1e4, -1e4, 0.0, 5e3],
                          [88.0, 89.0, 90.0, 91.0]], dtype=dtype)
        case = check.describe(x=x, dim=-1)
        out = _run("softmax", _SOFTMAX_BUILTINS, impl.softmax, x, dim=-1)
        check.that(isinstance(out, torch.Tensor) and out.shape == x.shape, "softmax",
                   f"should return a tensor of shape {tuple(x.shape)}", case=case)
        if not bool(torch.isfinite(out[0]).all()):
            check.fail("softmax", "row 0 (logits near 1000) is not finite", f"got {out[0].tolist()}",
                       case=case, mistake="softmax without subtracting the max: exp() overflows on large logits")
        if not bool(torch.isfinite(out[1]).all()) or abs(float(out[1].sum()) - 1) > 1e-3:
            check.fail("softmax", "row 1 (logits near -1000) does not sum to 1", f"got {out[1].tolist()}",
                       case=case, mistake="max taken over the whole tensor instead of along `dim`: "
                                          "exp() underflows to 0 in rows far below it")
        check.close(out, torch.softmax(x, dim=-1), unit="softmax", case=case, tol=_softmax_tol(x))
        # Along dim 0 as well, where the large values sit in columns.
        out_t = _run("softmax", _SOFTMAX_BUILTINS, impl.softmax, x.T.contiguous(), dim=0)
        check.close(out_t, torch.softmax(x.T, dim=0), unit="softmax", case=check.describe(x=x.T, dim=0),
                    tol=_softmax_tol(x))


@pytest.mark.points(3)
def test_softmax_masked_and_fully_masked_rows(impl):
    inf = float("-inf")
    x = _randn((5, 6), 1)
    x[0, [1, 4]] = inf                 # partly masked: those entries get probability 0
    x[2] = inf                         # fully masked: defined as all zeros
    x[4, :5] = inf                     # one entry left: probability 1
    expected = _softmax_defined(x, -1)
    mistakes = {"a fully masked row gives NaN; it must give zeros": lambda: torch.softmax(x, -1),
                "a fully masked row gives a uniform distribution; it must give zeros":
                lambda: torch.where(torch.isneginf(x).all(-1, keepdim=True), torch.full_like(x, 1 / 6), expected)}
    for dtype in (torch.float64, torch.float32):
        xd = x.to(dtype)
        out = _run("softmax", _SOFTMAX_BUILTINS, impl.softmax, xd, dim=-1)
        check.close(out, expected.to(dtype), unit="softmax", case=check.describe(x=xd, dim=-1),
                    kind="reduction", mistakes={k: (lambda f=f: f().to(dtype)) for k, f in mistakes.items()})
    # A fully masked slice along dim 0 of a 3-d tensor.
    y = _randn((3, 2, 4), 2)
    y[:, 1, 2] = inf
    out = _run("softmax", _SOFTMAX_BUILTINS, impl.softmax, y, dim=0)
    check.close(out, _softmax_defined(y, 0), unit="softmax", case=check.describe(x=y, dim=0), kind="reduction",
                mistakes={"a fully masked row gives NaN; it must give zeros": torch.softmax(y, 0)})


@pytest.mark.points(3)
def test_softmax_gradients(impl):
    def student(dim):
        return lambda t: _run("softmax", _SOFTMAX_BUILTINS, impl.softmax, t, dim=dim)

    x = _randn((4, 5), 3) * 3
    x[1, 2] = float("-inf")            # a masked entry: its gradient is 0
    for dim in (-1, 0):
        check.grads(student(dim), lambda t: torch.softmax(t, dim=dim), [x], unit="softmax",
                    case=check.describe(x=x, dim=dim), names=["x"],
                    mistakes={"softmax over the wrong axis": lambda t: torch.softmax(t, dim=1 - dim % 2)})
    for dim, shape in ((-1, (3, 4)), (1, (2, 3, 2))):
        z = _randn(shape, 4 + dim)
        _gradcheck("softmax", _SOFTMAX_BUILTINS, lambda t, dim=dim: impl.softmax(t, dim=dim), [z],
                   case=check.describe(x=z, dim=dim))
    # A fully masked row must not poison the backward pass with NaN.
    w = _randn((3, 4), 5).requires_grad_(True)
    masked = w.masked_fill(torch.tensor([[False] * 4, [True] * 4, [False, True, False, False]]), float("-inf"))
    out = student(-1)(masked)
    out.backward(_randn((3, 4), 6))
    check.that(w.grad is not None and bool(torch.isfinite(w.grad).all()), "softmax",
               "the gradient through a fully masked row must be finite (it is 0), got NaN or inf",
               case=check.describe(x=masked, dim=-1))


@pytest.mark.points(2)
@settings(max_examples=10, suppress_health_check=_HC, phases=_PHASES)
@given(rows=st.integers(1, 5), cols=st.integers(1, 7), seed=st.integers(0, 10_000),
       shift=st.sampled_from([-500.0, -3.0, 7.5, 300.0]))
def test_softmax_properties(impl, rows, cols, seed, shift):
    x = _randn((rows, cols), seed) * 4
    case = check.describe(x=x, dim=-1)
    p = _run("softmax", _SOFTMAX_BUILTINS, impl.softmax, x, dim=-1)
    check.close(p.sum(-1), torch.ones(rows, dtype=x.dtype), unit="softmax", case=case, kind="reduction",
                what="sum over dim (must be 1)")
    check.that(bool((p >= 0).all()), "softmax", "probabilities must be non-negative", case=case)
    # Adding the same constant to a whole slice does not change its softmax.
    c = shift + _randn((rows, 1), seed + 1)
    q = _run("softmax", _SOFTMAX_BUILTINS, impl.softmax, x + c, dim=-1)
    check.close(q, p, unit="softmax", case=check.describe(x=x + c, dim=-1), kind="reduction",
                what="softmax of a shifted slice (must equal the unshifted softmax)")


@pytest.mark.points(1)
def test_softmax_reference_data(impl):
    rec = reference.load(TOPIC, "softmax")
    out = _run("softmax", _SOFTMAX_BUILTINS, impl.softmax, rec["x"], dim=-1)
    check.close(out, rec["out"], unit="softmax", case=check.describe(x=rec["x"], dim=-1), kind="reduction")


# ================================================================= causal_mask

@pytest.mark.points(2)
def test_causal_mask(impl):
    for t in (5, 1, 2, 3, 4, 6, 7):           # 5 first: there every catalogued mistake differs
        expected = torch.tensor([[j <= i for j in range(t)] for i in range(t)], dtype=torch.bool)
        out = impl.causal_mask(t)
        check.close(out, expected, unit="causal_mask", case=f"seq_len={t}", kind="exact", mistakes={
            "causal mask hides the diagonal: a token must attend to itself": expected.tril(-1),
            "causal mask shows the future: position i may see only keys j <= i":
                torch.ones(t, t, dtype=torch.bool).tril(1),
            "causal mask inverted: True means 'may attend'": ~expected,
            "causal mask transposed: row i is query i, column j is key j": expected.T,
        })
    for bad in (0, -3):
        with pytest.raises(ValueError):
            impl.causal_mask(bad)


# ================================================================= scaled_dot_product_attention

def _attn(impl, *args, **kwargs):
    return _run("scaled_dot_product_attention", _ATTENTION_BUILTINS, impl.scaled_dot_product_attention,
                *args, **kwargs)


def _check_attention(impl, q, k, v, mask=None, causal=False, kind="matmul"):
    __tracebackhide__ = True
    out = _attn(impl, q, k, v, mask=mask, causal=causal)
    check.close(out, sdpa_oracle(q, k, v, mask, causal), unit="scaled_dot_product_attention",
                case=check.describe(q=q, k=k, v=v, mask=mask, causal=causal), kind=kind,
                mistakes=_attention_mistakes(q, k, v, mask, causal))


@pytest.mark.points(3)
@settings(max_examples=15, suppress_health_check=_HC, phases=_PHASES)
@given(batch=st.sampled_from([(), (2,), (2, 3)]), t_q=st.integers(1, 6), t_k=st.integers(1, 6),
       d_k=st.sampled_from([1, 2, 4, 8]), d_v=st.sampled_from([1, 3, 5]),
       dtype=st.sampled_from([torch.float64, torch.float32]), seed=st.integers(0, 10_000))
def test_attention_matches_torch(impl, batch, t_q, t_k, d_k, d_v, dtype, seed):
    q = _randn(batch + (t_q, d_k), seed, dtype) * 2
    k = _randn(batch + (t_k, d_k), seed + 1, dtype) * 2
    v = _randn(batch + (t_k, d_v), seed + 2, dtype)
    _check_attention(impl, q, k, v)


@pytest.mark.points(3)
def test_attention_bool_mask(impl):
    q, k, v = _randn((2, 3, 5, 4), 10), _randn((2, 3, 6, 4), 11), _randn((2, 3, 6, 3), 12)
    for i, shape in enumerate([(5, 6), (2, 1, 1, 6), (2, 3, 5, 6), (1, 3, 5, 1)]):
        mask = _rand_bool(shape, 20 + i) if shape[-1] > 1 else torch.ones(shape, dtype=torch.bool)
        _check_attention(impl, q * 2, k, v, mask=mask)
    # The inputs must come back untouched (no in-place ops on q, k, v or the mask).
    before = [t.clone() for t in (q, k, v, mask)]
    _attn(impl, q, k, v, mask=mask, causal=True)
    check.that(all(torch.equal(a, b) for a, b in zip((q, k, v, mask), before)), "scaled_dot_product_attention",
               "must not modify its inputs (avoid in-place ops on q, k, v or mask)",
               case=check.describe(q=q, k=k, v=v, mask=mask, causal=True))
    # float32 too
    mask = _rand_bool((5, 6), 30)
    _check_attention(impl, q.float(), k.float(), v.float(), mask=mask)


@pytest.mark.points(3)
def test_attention_additive_mask(impl):
    q, k, v = _randn((2, 2, 4, 8), 40) * 2, _randn((2, 2, 5, 8), 41), _randn((2, 2, 5, 3), 42)
    bias = _randn((4, 5), 43) * 2                           # finite biases (like ALiBi) ...
    bias[0, 3] = bias[2, 0] = bias[3, 4] = float("-inf")    # ... and forbidden positions
    _check_attention(impl, q, k, v, mask=bias)
    _check_attention(impl, q, k, v, mask=_randn((2, 1, 4, 5), 44))
    _check_attention(impl, q.float(), k.float(), v.float(), mask=bias.float())


@pytest.mark.points(4)
def test_attention_causal(impl):
    for batch, t_q, t_k in [((2, 3), 6, 6), ((), 1, 1), ((2,), 3, 5), ((2,), 5, 3)]:
        q = _randn(batch + (t_q, 4), 50 + t_q) * 2
        k = _randn(batch + (t_k, 4), 60 + t_k)
        v = _randn(batch + (t_k, 3), 70 + t_k)
        _check_attention(impl, q, k, v, causal=True)
    # causal together with a padding-style mask: both rules apply
    q, v = _randn((2, 5, 4), 80), _randn((2, 5, 2), 81)
    pad = torch.tensor([[True] * 5, [True, True, True, False, False]]).view(2, 1, 5)
    _check_attention(impl, q, q, v, mask=pad, causal=True)


@pytest.mark.points(3)
def test_attention_causality(impl):
    """Changing keys/values at future positions leaves every earlier output unchanged."""
    T = 7
    q, k, v = _randn((2, 2, T, 4), 90), _randn((2, 2, T, 4), 91), _randn((2, 2, T, 3), 92)
    base = _attn(impl, q, k, v, causal=True)
    mask_base = _attn(impl, q, k, v, mask=torch.ones(T, T, dtype=torch.bool).tril())
    for t in range(T - 1):
        k2, v2 = k.clone(), v.clone()
        k2[..., t + 1:, :] += 10 * _randn((2, 2, T - t - 1, 4), 100 + t)
        v2[..., t + 1:, :] += 10 * _randn((2, 2, T - t - 1, 3), 200 + t)
        case = check.describe(q=q, k=k2, v=v2, causal=True) + f"; keys/values after position {t} changed"
        out = _attn(impl, q, k2, v2, causal=True)
        check.close(out[..., : t + 1, :], base[..., : t + 1, :], unit="scaled_dot_product_attention",
                    case=case, kind="matmul", what=f"outputs at positions 0..{t} (must not see the future)")
        out = _attn(impl, q, k2, v2, mask=torch.ones(T, T, dtype=torch.bool).tril())
        check.close(out[..., : t + 1, :], mask_base[..., : t + 1, :], unit="scaled_dot_product_attention",
                    case=case.replace("causal=True", "mask=causal bool mask"), kind="matmul",
                    what=f"outputs at positions 0..{t} (must not see the future)")


@pytest.mark.points(2)
def test_attention_fully_masked_rows_are_zero(impl):
    q, k, v = _randn((2, 4, 3), 110), _randn((2, 5, 3), 111), _randn((2, 5, 2), 112)
    mask = _rand_bool((2, 4, 5), 113)
    mask[0, 1] = False                                   # query 1 of batch 0 may attend to nothing
    bias = torch.zeros(4, 5, dtype=torch.float64)
    bias[2] = float("-inf")                              # query 2 sees nothing (additive form)
    for m in (mask, bias):
        out = _attn(impl, q, k, v, mask=m)
        case = check.describe(q=q, k=k, v=v, mask=m)
        check.that(isinstance(out, torch.Tensor) and not bool(torch.isnan(out).any()),
                   "scaled_dot_product_attention", "output contains NaN: a fully masked row must give zeros",
                   case=case)
        check.close(out, sdpa_oracle(q, k, v, m), unit="scaled_dot_product_attention", case=case, kind="matmul")


@pytest.mark.points(4)
def test_attention_gradients(impl):
    def student(mask=None, causal=False):
        return lambda q, k, v: _attn(impl, q, k, v, mask=mask, causal=causal)

    q, k, v = _randn((2, 3, 4), 120), _randn((2, 5, 4), 121), _randn((2, 5, 3), 122)
    bias = _randn((3, 5), 123)
    bias[1, 0] = float("-inf")
    for mask, causal in ((None, False), (bias, False), (_rand_bool((3, 5), 124), True)):
        case = check.describe(q=q, k=k, v=v, mask=mask, causal=causal)
        check.grads(student(mask, causal), lambda a, b, c: sdpa_oracle(a, b, c, mask, causal), [q, k, v],
                    unit="scaled_dot_product_attention", case=case, names=["q", "k", "v"],
                    mistakes={"missing 1/sqrt(d_k)":
                              lambda a, b, c: attention_by_hand(a, b, c, mask, causal, scale=1.0)})
    # float64 finite differences (small shapes: 2 calls per input element), including a fully
    # masked row and the causal rule
    q, k, v, bias = q[:1, :, :2], k[:1, :4, :2], v[:1, :4, :2], bias[:, :4]
    mask = _rand_bool((3, 4), 125)
    mask[2] = False
    for m, causal in ((mask, False), (None, True), (bias, True)):
        _gradcheck("scaled_dot_product_attention", _ATTENTION_BUILTINS,
                   lambda a, b, c, m=m, causal=causal:
                       impl.scaled_dot_product_attention(a, b, c, mask=m, causal=causal),
                   [q, k, v], case=check.describe(q=q, k=k, v=v, mask=m, causal=causal))


@pytest.mark.points(2)
@settings(max_examples=10, suppress_health_check=_HC, phases=_PHASES)
@given(t_q=st.integers(2, 6), t_k=st.integers(2, 6), seed=st.integers(0, 10_000))
def test_attention_permutation_equivariance(impl, t_q, t_k, seed):
    """Without a mask, attention has no notion of order: permuting the queries permutes the
    outputs, and permuting keys and values together changes nothing."""
    q, k, v = _randn((2, t_q, 4), seed), _randn((2, t_k, 4), seed + 1), _randn((2, t_k, 3), seed + 2)
    gen = torch.Generator().manual_seed(seed)
    pq, pk = torch.randperm(t_q, generator=gen), torch.randperm(t_k, generator=gen)
    out = _attn(impl, q, k, v)
    case = check.describe(q=q, k=k, v=v) + f"; query order {pq.tolist()}, key order {pk.tolist()}"
    check.close(_attn(impl, q[:, pq], k, v), out[:, pq], unit="scaled_dot_product_attention", case=case,
                kind="matmul", what="output for permuted queries (must be the permuted output)")
    check.close(_attn(impl, q, k[:, pk], v[:, pk]), out, unit="scaled_dot_product_attention", case=case,
                kind="matmul", what="output for permuted keys and values (must be unchanged)")


@pytest.mark.points(1)
def test_attention_rejects_bad_input(impl):
    q, k, v = _randn((2, 3, 4), 130), _randn((2, 5, 4), 131), _randn((2, 5, 3), 132)
    for case, args, kwargs in [
        ("q has d_k=4 but k has d_k=3", (q, k[..., :3], v), {}),
        ("k has 5 keys but v has 4", (q, k, v[:, :4]), {}),
        ("integer mask (ambiguous: use bool or float)", (q, k, v), {"mask": torch.ones(3, 5, dtype=torch.int64)}),
    ]:
        try:
            impl.scaled_dot_product_attention(*args, **kwargs)
        except ValueError:
            continue
        except NotImplementedError:
            raise
        except Exception as exc:  # noqa: BLE001 - a crash elsewhere is the wrong error
            check.fail("scaled_dot_product_attention", f"should raise ValueError, raised {type(exc).__name__}: {exc}",
                       case=case)
        check.fail("scaled_dot_product_attention", "should raise ValueError for this input", case=case)


@pytest.mark.points(1)
def test_attention_reference_data(impl):
    rec = reference.load(TOPIC, "attention")
    q, k, v, mask = rec["q"], rec["k"], rec["v"], rec["mask"]
    case = check.describe(q=q, k=k, v=v, mask=mask)
    check.close(_attn(impl, q, k, v, mask=mask), rec["out_mask"], unit="scaled_dot_product_attention",
                case=case, kind="matmul")
    check.close(_attn(impl, q, k, v, causal=True), rec["out_causal"], unit="scaled_dot_product_attention",
                case=check.describe(q=q, k=k, v=v, causal=True), kind="matmul")
