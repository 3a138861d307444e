"""Graders for topic 04 (part 1): softmax, causal_mask, scaled_dot_product_attention.

Evidence per unit: PyTorch built-ins as oracles (torch.softmax,
F.scaled_dot_product_attention), properties (causality, permutation equivariance, shift
invariance), float64 gradcheck, and the golden data in reference/04_attention.

Conventions under test (see the docstrings in attention.py): bool masks are True where
attention is allowed, floating masks are added to the scores; a fully masked row gives
softmax weights of zero and an attention output of zero.

The oracles and helpers shared with the other grader files live in attention_oracles.py.
"""

from __future__ import annotations

import attention_oracles as O
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmlab.testing import check, guard, properties, reference
from llmlab.testing.strategies import examples, float_dtypes, seeds, shapes
from llmlab.testing.tensors import bool_mask, generator, randn


# ================================================================= softmax

def _softmax(impl, x, dim):
    return guard.call_without("softmax", O.SOFTMAX_BUILTINS, impl.softmax, x, dim=dim)


@pytest.mark.points(3)
@examples(15)
@given(shape=shapes(), dim_pick=st.integers(0, 5), negative=st.booleans(),
       scale=st.sampled_from([0.1, 1.0, 10.0, 60.0]), dtype=float_dtypes(), seed=seeds())
def test_softmax_matches_torch(impl, shape, dim_pick, negative, scale, dtype, seed):
    x = randn(shape, seed, dtype, scale)
    dim = dim_pick % len(shape) - (len(shape) if negative else 0)
    x_before = x.clone()
    out = _softmax(impl, x, dim)
    check.that(torch.equal(x, x_before), "softmax", "must not modify its input (avoid in-place ops on x)",
               case=check.describe(x=x_before, dim=dim))
    mistakes = {"softmax over the whole tensor instead of along `dim`":
                lambda: torch.softmax(x.flatten(), 0).view_as(x)}
    if x.dim() > 1:
        mistakes["softmax over the wrong axis"] = lambda: torch.softmax(x, dim=(dim + 1) % x.dim())
    check.close(out, torch.softmax(x, dim=dim), unit="softmax", case=check.describe(x=x, dim=dim),
                tol=O.softmax_tol(x), mistakes=mistakes)


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
        out = _softmax(impl, x, -1)
        check.that(isinstance(out, torch.Tensor) and out.shape == x.shape, "softmax",
                   f"should return a tensor of shape {tuple(x.shape)}", case=case)
        if not bool(torch.isfinite(out[0]).all()):
            check.fail("softmax", "row 0 (logits near 1000) is not finite", f"got {out[0].tolist()}",
                       case=case, mistake="softmax without subtracting the max: exp() overflows on large logits")
        if not bool(torch.isfinite(out[1]).all()) or abs(float(out[1].sum()) - 1) > 1e-3:
            check.fail("softmax", "row 1 (logits near -1000) does not sum to 1", f"got {out[1].tolist()}",
                       case=case, mistake="max taken over the whole tensor instead of along `dim`: "
                                          "exp() underflows to 0 in rows far below it")
        check.close(out, torch.softmax(x, dim=-1), unit="softmax", case=case, tol=O.softmax_tol(x))
        # Along dim 0 as well, where the large values sit in columns.
        out_t = _softmax(impl, x.T.contiguous(), 0)
        check.close(out_t, torch.softmax(x.T, dim=0), unit="softmax", case=check.describe(x=x.T, dim=0),
                    tol=O.softmax_tol(x))


@pytest.mark.points(3)
def test_softmax_masked_and_fully_masked_rows(impl):
    inf = float("-inf")
    x = randn((5, 6), 1)
    x[0, [1, 4]] = inf                 # partly masked: those entries get probability 0
    x[2] = inf                         # fully masked: defined as all zeros
    x[4, :5] = inf                     # one entry left: probability 1
    expected = O.softmax_defined(x, -1)
    mistakes = {"a fully masked row gives NaN; it must give zeros": lambda: torch.softmax(x, -1),
                "a fully masked row gives a uniform distribution; it must give zeros":
                lambda: torch.where(torch.isneginf(x).all(-1, keepdim=True), torch.full_like(x, 1 / 6), expected)}
    for dtype in (torch.float64, torch.float32):
        xd = x.to(dtype)
        case = check.describe(x=xd, dim=-1)
        out = _softmax(impl, xd, -1)
        check.close(out, expected.to(dtype), unit="softmax", case=case,
                    kind="reduction", mistakes={k: (lambda f=f: f().to(dtype)) for k, f in mistakes.items()})
        # The docstring promises exactly 0 at -inf, not a small number (as a finite stand-in
        # for -inf such as -1e4 or -30 would give).
        at_inf = out[torch.isneginf(xd)]
        check.that(bool((at_inf == 0).all()), "softmax", "an entry of -inf must get probability exactly 0",
                   f"got {at_inf.tolist()} at the -inf entries", case=case)
    # A fully masked slice along dim 0 of a 3-d tensor.
    y = randn((3, 2, 4), 2)
    y[:, 1, 2] = inf
    out = _softmax(impl, y, 0)
    check.close(out, O.softmax_defined(y, 0), unit="softmax", case=check.describe(x=y, dim=0), kind="reduction",
                mistakes={"a fully masked row gives NaN; it must give zeros": torch.softmax(y, 0)})


@pytest.mark.points(1)
def test_softmax_any_shape(impl):
    """"Any shape": an empty batch of slices, slices of length 1, four axes, and a
    non-contiguous view (a transpose) as input."""
    for x, dim, note in [(randn((0, 5), 7), -1, "an empty batch"), (randn((2, 0, 3), 8), -1, "an empty batch"),
                         (randn((4, 1), 9), -1, "slices of length 1"), (randn((2, 3, 2, 4), 10, scale=3.0), 2, ""),
                         (randn((6, 4), 11, scale=3.0).T, -1, "x is a non-contiguous view (a transpose)")]:
        case = check.describe(x=x, dim=dim) + (f"; {note}" if note else "")
        check.close(_softmax(impl, x, dim), torch.softmax(x, dim=dim), unit="softmax", case=case, kind="reduction")


@pytest.mark.points(3)
def test_softmax_gradients(impl):
    def student(dim):
        return lambda t: _softmax(impl, t, dim)

    x = randn((4, 5), 3, scale=3.0)
    x[1, 2] = float("-inf")            # a masked entry: its gradient is 0
    for dim in (-1, 0):
        check.grads(student(dim), lambda t: torch.softmax(t, dim=dim), [x], unit="softmax",
                    case=check.describe(x=x, dim=dim), names=["x"],
                    mistakes={"softmax over the wrong axis": lambda t: torch.softmax(t, dim=1 - dim % 2)})
    for dim, shape in ((-1, (3, 4)), (1, (2, 3, 2))):
        z = randn(shape, 4 + dim)
        guard.gradcheck_without("softmax", O.SOFTMAX_BUILTINS, lambda t, dim=dim: impl.softmax(t, dim=dim), [z],
                                case=check.describe(x=z, dim=dim))
    # A fully masked row must not poison the backward pass with NaN.
    w = randn((3, 4), 5).requires_grad_(True)
    masked = w.masked_fill(torch.tensor([[False] * 4, [True] * 4, [False, True, False, False]]), float("-inf"))
    out = student(-1)(masked)
    out.backward(randn((3, 4), 6))
    check.that(w.grad is not None and bool(torch.isfinite(w.grad).all()), "softmax",
               "the gradient through a fully masked row must be finite (it is 0), got NaN or inf",
               case=check.describe(x=masked, dim=-1))


@pytest.mark.points(2)
@examples(10)
@given(rows=st.integers(1, 5), cols=st.integers(1, 7), seed=seeds(),
       shift=st.sampled_from([-500.0, -3.0, 7.5, 300.0]))
def test_softmax_properties(impl, rows, cols, seed, shift):
    x = randn((rows, cols), seed, scale=4.0)
    case = check.describe(x=x, dim=-1)
    p = _softmax(impl, x, -1)
    check.close(p.sum(-1), torch.ones(rows, dtype=x.dtype), unit="softmax", case=case, kind="reduction",
                what="sum over dim (must be 1)")
    check.that(bool((p >= 0).all()), "softmax", "probabilities must be non-negative", case=case)
    # Adding the same constant to a whole slice does not change its softmax.
    c = shift + randn((rows, 1), seed + 1)
    q = _softmax(impl, x + c, -1)
    check.close(q, p, unit="softmax", case=check.describe(x=x + c, dim=-1), kind="reduction",
                what="softmax of a shifted slice (must equal the unshifted softmax)")


@pytest.mark.points(1)
def test_softmax_reference_data(impl):
    rec = reference.load(O.TOPIC, "softmax")
    out = _softmax(impl, rec["x"], -1)
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
    # `device` accepts a string, a torch.device or None (the default device).
    expected = torch.ones(3, 3, dtype=torch.bool).tril()
    for device in ("cpu", torch.device("cpu"), None):
        out = impl.causal_mask(3, device=device)
        check.close(out, expected, unit="causal_mask", case=f"seq_len=3, device={device!r}", kind="exact")
    for bad in (0, -3):
        check.expect_raises(ValueError, impl.causal_mask, bad, unit="causal_mask", case=f"seq_len={bad}",
                            why="seq_len < 1: a mask needs at least one token")


# ================================================================= scaled_dot_product_attention

_SDPA = "scaled_dot_product_attention"


def _attn(impl, *args, **kwargs):
    return guard.call_without(_SDPA, O.ATTENTION_BUILTINS, impl.scaled_dot_product_attention, *args,
                              hint=O.HINT_ATTENTION, **kwargs)


def _check_attention(impl, q, k, v, mask=None, causal=False, kind="matmul"):
    __tracebackhide__ = True
    out = _attn(impl, q, k, v, mask=mask, causal=causal)
    check.close(out, O.sdpa_oracle(q, k, v, mask, causal), unit=_SDPA,
                case=check.describe(q=q, k=k, v=v, mask=mask, causal=causal), kind=kind,
                mistakes=O.attention_mistakes(q, k, v, mask, causal))


@pytest.mark.points(3)
@examples(15)
@given(batch=st.sampled_from([(), (2,), (2, 3)]), t_q=st.integers(1, 6), t_k=st.integers(1, 6),
       d_k=st.sampled_from([1, 2, 4, 8]), d_v=st.sampled_from([1, 3, 5]), dtype=float_dtypes(), seed=seeds())
def test_attention_matches_torch(impl, batch, t_q, t_k, d_k, d_v, dtype, seed):
    q = randn(batch + (t_q, d_k), seed, dtype, scale=2.0)
    k = randn(batch + (t_k, d_k), seed + 1, dtype, scale=2.0)
    v = randn(batch + (t_k, d_v), seed + 2, dtype)
    _check_attention(impl, q, k, v)


@pytest.mark.points(3)
def test_attention_bool_mask(impl):
    q, k, v = randn((2, 3, 5, 4), 10), randn((2, 3, 6, 4), 11), randn((2, 3, 6, 3), 12)
    for i, shape in enumerate([(5, 6), (2, 1, 1, 6), (2, 3, 5, 6), (1, 3, 5, 1)]):
        mask = bool_mask(shape, 20 + i) if shape[-1] > 1 else torch.ones(shape, dtype=torch.bool)
        _check_attention(impl, q * 2, k, v, mask=mask)
    # The inputs must come back untouched (no in-place ops on q, k, v or the mask).
    before = [t.clone() for t in (q, k, v, mask)]
    _attn(impl, q, k, v, mask=mask, causal=True)
    check.that(all(torch.equal(a, b) for a, b in zip((q, k, v, mask), before)), _SDPA,
               "must not modify its inputs (avoid in-place ops on q, k, v or mask)",
               case=check.describe(q=q, k=k, v=v, mask=mask, causal=True))
    # float32 too
    mask = bool_mask((5, 6), 30)
    _check_attention(impl, q.float(), k.float(), v.float(), mask=mask)


@pytest.mark.points(3)
def test_attention_additive_mask(impl):
    q, k, v = randn((2, 2, 4, 8), 40, scale=2.0), randn((2, 2, 5, 8), 41), randn((2, 2, 5, 3), 42)
    bias = randn((4, 5), 43, scale=2.0)                     # finite biases (like ALiBi) ...
    bias[0, 3] = bias[2, 0] = bias[3, 4] = float("-inf")    # ... and forbidden positions
    _check_attention(impl, q, k, v, mask=bias)
    _check_attention(impl, q, k, v, mask=randn((2, 1, 4, 5), 44))
    _check_attention(impl, q.float(), k.float(), v.float(), mask=bias.float())
    # A floating mask is cast to q's dtype: the output has q's dtype whatever the mask's.
    for qd, md in ((q.float(), bias), (q, bias.float())):
        kd, vd = k.to(qd.dtype), v.to(qd.dtype)
        try:
            _check_attention(impl, qd, kd, vd, mask=md)
        except NotImplementedError:
            raise
        except RuntimeError as exc:     # e.g. float64 weights @ float32 v: "expected scalar type ..."
            check.fail(_SDPA, f"raised {type(exc).__name__}: {exc}",
                       "a floating mask is cast to q's dtype before it is added to the scores",
                       case=check.describe(q=qd, k=kd, v=vd, mask=md))


@pytest.mark.points(2)
def test_attention_broadcast_and_strided_inputs(impl):
    """The leading axes of q, k and v may differ where they broadcast, and q, k, v may be
    non-contiguous views (a transpose, a slice with a step)."""
    for i, (bq, bk, bv, mask, causal) in enumerate([
        ((2, 3), (3,), (3,), None, False),                        # keys and values shared by the batch
        ((1, 3), (2, 1), (2, 3), bool_mask((5, 6), 60), False),   # every axis broadcast somewhere
        ((2, 1), (1,), (2, 4), None, True),
    ]):
        q, k, v = randn(bq + (5, 4), 61 + i, scale=2.0), randn(bk + (6, 4), 64 + i), randn(bv + (6, 3), 67 + i)
        lead = torch.broadcast_shapes(bq, bk, bv)
        full = [t.expand(*lead, *t.shape[-2:]) for t in (q, k, v)]
        out = _attn(impl, q, k, v, mask=mask, causal=causal)
        check.close(out, O.sdpa_oracle(*full, mask, causal), unit=_SDPA,
                    case=check.describe(q=q, k=k, v=v, mask=mask, causal=causal), kind="matmul",
                    mistakes=O.attention_mistakes(*full, mask, causal))
    q = randn((5, 2, 4), 70, scale=2.0).transpose(0, 1)        # (2, 5, 4), strides of a transpose
    k = randn((2, 4, 6), 71).transpose(-2, -1)                 # (2, 6, 4)
    v = randn((2, 6, 6), 72)[..., ::2]                         # (2, 6, 3), every other feature
    for mask, causal in ((None, True), (bool_mask((2, 5, 6), 73), False)):
        out = _attn(impl, q, k, v, mask=mask, causal=causal)
        check.close(out, O.sdpa_oracle(q.contiguous(), k.contiguous(), v.contiguous(), mask, causal), unit=_SDPA,
                    case=check.describe(q=q, k=k, v=v, mask=mask, causal=causal) + "; q, k, v are non-contiguous views",
                    kind="matmul")


@pytest.mark.points(4)
def test_attention_causal(impl):
    for batch, t_q, t_k in [((2, 3), 6, 6), ((), 1, 1), ((2,), 3, 5), ((2,), 5, 3)]:
        q = randn(batch + (t_q, 4), 50 + t_q, scale=2.0)
        k = randn(batch + (t_k, 4), 60 + t_k)
        v = randn(batch + (t_k, 3), 70 + t_k)
        _check_attention(impl, q, k, v, causal=True)
    # causal together with a padding-style mask: both rules apply
    q, v = randn((2, 5, 4), 80), randn((2, 5, 2), 81)
    pad = torch.tensor([[True] * 5, [True, True, True, False, False]]).view(2, 1, 5)
    _check_attention(impl, q, q, v, mask=pad, causal=True)


@pytest.mark.points(3)
def test_attention_causality(impl):
    """Changing queries, keys and values at later positions leaves every earlier output
    unchanged, with causal=True and with a causal bool mask."""
    T = 7
    x = randn((2, 2, T, 11), 90)                  # q, k, v = x[..., :4], x[..., 4:8], x[..., 8:]
    q, k, v = x[..., :4], x[..., 4:8], x[..., 8:]
    tril = torch.ones(T, T, dtype=torch.bool).tril()
    for kwargs in ({"causal": True}, {"mask": tril}):
        properties.causal(lambda x: _attn(impl, x[..., :4], x[..., 4:8], x[..., 8:], **kwargs), x, unit=_SDPA,
                          dim=-2, kind="matmul", seed=100,
                          case=check.describe(q=q, k=k, v=v, **kwargs) + "; q, k, v changed at later positions")


@pytest.mark.points(2)
def test_attention_fully_masked_rows_are_zero(impl):
    q, k, v = randn((2, 4, 3), 110), randn((2, 5, 3), 111), randn((2, 5, 2), 112)
    mask = bool_mask((2, 4, 5), 113)
    mask[0, 1] = False                                   # query 1 of batch 0 may attend to nothing
    bias = torch.zeros(4, 5, dtype=torch.float64)
    bias[2] = float("-inf")                              # query 2 sees nothing (additive form)
    for m in (mask, bias):
        out = _attn(impl, q, k, v, mask=m)
        case = check.describe(q=q, k=k, v=v, mask=m)
        check.that(isinstance(out, torch.Tensor) and not bool(torch.isnan(out).any()),
                   _SDPA, "output contains NaN: a fully masked row must give zeros", case=case)
        check.close(out, O.sdpa_oracle(q, k, v, m), unit=_SDPA, case=case, kind="matmul")


@pytest.mark.points(4)
def test_attention_gradients(impl):
    def student(mask=None, causal=False):
        return lambda q, k, v: _attn(impl, q, k, v, mask=mask, causal=causal)

    q, k, v = randn((2, 3, 4), 120), randn((2, 5, 4), 121), randn((2, 5, 3), 122)
    bias = randn((3, 5), 123)
    bias[1, 0] = float("-inf")
    for mask, causal in ((None, False), (bias, False), (bool_mask((3, 5), 124), True)):
        case = check.describe(q=q, k=k, v=v, mask=mask, causal=causal)
        check.grads(student(mask, causal), lambda a, b, c: O.sdpa_oracle(a, b, c, mask, causal), [q, k, v],
                    unit=_SDPA, case=case, names=["q", "k", "v"],
                    mistakes={"missing 1/sqrt(d_k)":
                              lambda a, b, c: O.attention_by_hand(a, b, c, mask, causal, scale=1.0)})
    # float64 finite differences (small shapes: 2 calls per input element), including a fully
    # masked row and the causal rule
    q, k, v, bias = q[:1, :, :2], k[:1, :4, :2], v[:1, :4, :2], bias[:, :4]
    mask = bool_mask((3, 4), 125)
    mask[2] = False
    for m, causal in ((mask, False), (None, True), (bias, True)):
        guard.gradcheck_without(_SDPA, O.ATTENTION_BUILTINS,
                                lambda a, b, c, m=m, causal=causal:
                                    impl.scaled_dot_product_attention(a, b, c, mask=m, causal=causal),
                                [q, k, v], case=check.describe(q=q, k=k, v=v, mask=m, causal=causal),
                                hint=O.HINT_ATTENTION)


@pytest.mark.points(2)
@examples(10)
@given(t_q=st.integers(2, 6), t_k=st.integers(2, 6), seed=seeds())
def test_attention_permutation_equivariance(impl, t_q, t_k, seed):
    """Without a mask, attention has no notion of order: permuting the queries permutes the
    outputs, and permuting keys and values together changes nothing."""
    q, k, v = randn((2, t_q, 4), seed), randn((2, t_k, 4), seed + 1), randn((2, t_k, 3), seed + 2)
    case = check.describe(q=q, k=k, v=v)
    properties.permutation_equivariant(lambda q: _attn(impl, q, k, v), q, unit=_SDPA, dim=1, kind="matmul",
                                       case=case + "; queries permuted", seed=seed)
    # Keys and values permuted together leave the output as it is: an invariance, which
    # properties.permutation_equivariant (it permutes the output too) does not express.
    pk = torch.randperm(t_k, generator=generator(seed + 3))
    check.close(_attn(impl, q, k[:, pk], v[:, pk]), _attn(impl, q, k, v), unit=_SDPA,
                case=case + f"; key order {pk.tolist()}", kind="matmul",
                what="output for permuted keys and values (must be unchanged)")


@pytest.mark.points(1)
def test_attention_rejects_bad_input(impl):
    q, k, v = randn((2, 3, 4), 130), randn((2, 5, 4), 131), randn((2, 5, 3), 132)
    for why, args, kwargs in [
        ("q has d_k=4 but k has d_k=3: q and k must agree in the last axis", (q, k[..., :3], v), {}),
        ("k has 5 keys but v has 4: k and v must agree in the key axis", (q, k, v[:, :4]), {}),
        ("an int64 mask is neither bool nor floating (ambiguous: use bool or float)", (q, k, v),
         {"mask": torch.ones(3, 5, dtype=torch.int64)}),
    ]:
        check.expect_raises(ValueError, impl.scaled_dot_product_attention, *args, unit=_SDPA,
                            case=check.describe(q=args[0], k=args[1], v=args[2], **kwargs), why=why, **kwargs)


@pytest.mark.points(1)
def test_attention_reference_data(impl):
    rec = reference.load(O.TOPIC, "attention")
    q, k, v, mask = rec["q"], rec["k"], rec["v"], rec["mask"]
    case = check.describe(q=q, k=k, v=v, mask=mask)
    check.close(_attn(impl, q, k, v, mask=mask), rec["out_mask"], unit=_SDPA, case=case, kind="matmul")
    check.close(_attn(impl, q, k, v, causal=True), rec["out_causal"], unit=_SDPA,
                case=check.describe(q=q, k=k, v=v, causal=True), kind="matmul")
