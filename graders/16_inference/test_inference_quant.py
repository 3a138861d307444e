"""Graders for 16_inference (quantisation): quantize_absmax and dequantize_absmax.

Evidence per unit:
  - quantize_absmax: calculations by hand (int8 and int4, the half-to-even tie rule);
    properties on random tensors of several shapes, magnitudes, dtypes and group sizes
    (hypothesis): q is int8 within ±q_max, the largest |x| of each group maps to ±q_max, the
    scale is the group's absmax / q_max (an independent oracle that cuts the groups with
    `unfold`), q = round(x / scale) away from ties, and the error bound |x − q·scale| ≤ scale/2;
    golden data; zero groups, float64, every Raises clause; known mistakes (scale from max
    instead of absmax, groups along the wrong axis, the unsigned range, truncation) named;
  - dequantize_absmax: q·scale per group against a broadcast oracle, the round trip, its
    dtype and its Raises clause.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import inference_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds

TOPIC = O.TOPIC
UNIT = "quantize_absmax"


def _groups(x, group_size):
    """x cut into its groups along the last axis, by unfold: (..., N / G, G) or (1, numel)."""
    if group_size is None:
        return x.reshape(1, -1)
    return x.unfold(-1, group_size, group_size)


def _oracle_scale(x, bits, group_size):
    scale = _groups(x, group_size).abs().amax(-1) / (2 ** (bits - 1) - 1)
    return scale.reshape(()) if group_size is None else scale


def _expand(scale, group_size, shape):
    return scale.expand(shape) if group_size is None else scale.repeat_interleave(group_size, dim=-1)


def _rounding_mistakes(ratio):
    """q for the rounding mistakes, from x / scale (floor and truncation agree on positive
    values; where they agree, one name says both)."""
    floor, trunc = ratio.floor().to(torch.int8), ratio.trunc().to(torch.int8)
    wrong = {"rounding half away from zero": (ratio.sign() * (ratio.abs() + 0.5).floor()).to(torch.int8)}
    if torch.equal(floor, trunc):
        wrong["floor instead of rounding / truncation instead of rounding"] = floor
    else:
        wrong.update({"floor instead of rounding": floor, "truncation instead of rounding": trunc})
    return wrong


def _scale_mistakes(x, bits, group_size):
    q_max = 2 ** (bits - 1) - 1
    wrong = {"scale from max instead of absmax (negative values ignored)":
             lambda: (_groups(x, group_size).amax(-1) / q_max).reshape(_oracle_scale(x, bits, group_size).shape),
             "q_max = 2^bits − 1 (the unsigned range) instead of 2^(bits−1) − 1":
             lambda: _oracle_scale(x, bits, group_size) * q_max / (2 ** bits - 1)}
    if group_size is not None and x.dim() >= 1:
        N = x.shape[-1]
        wrong["groups cut along the wrong axis (strided instead of contiguous along the last axis)"] = \
            lambda: x.reshape(*x.shape[:-1], group_size, N // group_size).abs().amax(-1) / q_max
    return wrong


# ================================================================= quantize_absmax

@pytest.mark.points(2)
def test_quantize_by_hand(impl):
    x = torch.tensor([0.5, -1.27, 0.0, 1.0])
    # int8: absmax 1.27, scale 0.01, q = (50, −127, 0, 100).
    q, scale = impl.quantize_absmax(x, 8)
    case = check.describe(x=x, bits=8)
    check.close(scale, torch.tensor(1.27 / 127), unit=UNIT, case=case, what="scale (absmax / 127)",
                mistakes={"scale from max instead of absmax (negative values ignored)": torch.tensor(1.0 / 127),
                          "q_max = 2^(bits−1) (128) instead of 127": torch.tensor(1.27 / 128)})
    check.close(q, torch.tensor([50, -127, 0, 100], dtype=torch.int8), unit=UNIT, case=case, what="q",
                mistakes=_rounding_mistakes(x / (1.27 / 127)))
    # int4: scale 1.27 / 7 ≈ 0.181429; x / scale = (2.756, −7, 0, 5.512) -> (3, −7, 0, 6).
    q, scale = impl.quantize_absmax(x, 4)
    case = check.describe(x=x, bits=4)
    check.close(scale, torch.tensor(1.27 / 7), unit=UNIT, case=case, what="scale (absmax / 7)",
                mistakes={"q_max = 2^bits − 1 (15, the unsigned range) instead of 7": torch.tensor(1.27 / 15),
                          "q_max = 2^(bits−1) (8) instead of 7": torch.tensor(1.27 / 8)})
    check.close(q, torch.tensor([3, -7, 0, 6], dtype=torch.int8), unit=UNIT, case=case, what="q",
                mistakes=_rounding_mistakes(x / (1.27 / 7)))
    # ties: absmax 127 gives scale exactly 1, so x / scale lands exactly on halves.
    x = torch.tensor([127.0, 2.5, -3.5, 0.5, 1.5, -0.5])
    q, _ = impl.quantize_absmax(x, 8)
    check.close(q, torch.tensor([127, 2, -4, 0, 2, 0], dtype=torch.int8), unit=UNIT, what="q at exact halves "
                "(round half to even, as torch.round)", case=check.describe(x=x, bits=8),
                mistakes={"rounding half away from zero": torch.tensor([127, 3, -4, 1, 2, -1], dtype=torch.int8),
                          "floor instead of rounding": torch.tensor([127, 2, -4, 0, 1, -1], dtype=torch.int8),
                          "truncation instead of rounding": torch.tensor([127, 2, -3, 0, 1, 0], dtype=torch.int8)})


@st.composite
def _quant_cases(draw):
    bits = draw(st.sampled_from([4, 8]))
    G = draw(st.sampled_from([None, 1, 2, 4, 8]))
    n_groups = draw(st.integers(1, 4))
    N = (G or draw(st.integers(1, 8))) * n_groups
    lead = draw(st.lists(st.integers(1, 3), max_size=2))
    return dict(bits=bits, group_size=G, shape=(*lead, N), seed=draw(seeds()),
                magnitude=draw(st.sampled_from([1e-3, 1.0, 50.0])), dtype=draw(st.sampled_from([torch.float32,
                                                                                              torch.float64])))


@pytest.mark.points(3)
@examples(30)
@given(c=_quant_cases())
def test_quantize_properties_and_error_bound(impl, c):
    bits, G, shape = c["bits"], c["group_size"], c["shape"]
    x = tensors.randn(shape, c["seed"], c["dtype"], scale=c["magnitude"])
    x = torch.where(tensors.rand(shape, c["seed"] + 1) < 0.1, -4 * x, x)        # some outliers
    case = check.describe(x=x, bits=bits, group_size=G)
    q, scale = impl.quantize_absmax(x, bits, G)
    q_max = 2 ** (bits - 1) - 1
    want_scale = _oracle_scale(x, bits, G)
    check.close(scale, want_scale, unit=UNIT, case=case, what="scale (each group's absmax / q_max)",
                mistakes=_scale_mistakes(x, bits, G))
    check.that(isinstance(q, torch.Tensor) and q.dtype == torch.int8 and q.shape == x.shape, UNIT,
               "q must be an int8 tensor of x's shape", f"got {getattr(q, 'dtype', None)} "
               f"{tuple(getattr(q, 'shape', ()))}", case=case)
    check.that(int(q.abs().max()) <= q_max, UNIT, f"|q| must not exceed q_max = {q_max}",
               f"max |q| = {int(q.abs().max())}", case=case)
    peak = _groups(q.abs(), G).amax(-1)
    check.close(peak, torch.full_like(peak, q_max), unit=UNIT, kind="exact", case=case,
                what="the largest |q| of each group (the element of largest |x| maps to ±q_max)")
    ratio = x / _expand(want_scale, G, x.shape)
    near_tie = ((ratio - ratio.floor()) - 0.5).abs() < 1e-4             # rounding may go either way there
    expected_q = torch.where(near_tie, q.to(ratio.dtype), torch.round(ratio)).to(torch.int8)
    check.close(q, expected_q, unit=UNIT, case=case, what="q = round(x / scale) (away from exact halves)",
                mistakes=_rounding_mistakes(ratio))
    # The error is measured in float64; the slack 1e-4·scale covers a float32 x / scale that
    # lands within a few ulps of a half and rounds to the farther integer.
    s64 = _expand(want_scale, G, x.shape).double()
    err = (x.double() - q.double() * s64).abs()
    bad = err > s64 / 2 + 1e-4 * s64
    check.that(not bool(bad.any()), UNIT, "the error |x − q·scale| must be at most scale / 2 per element",
               f"largest error / scale: {float((err / s64).max()):.4f}", case=case)


@pytest.mark.points(2)
def test_quantize_groups_along_last_axis(impl):
    # square case: N / G == G, so a strided cut gives scales of the right shape and wrong values
    x = tensors.randn((4, 16), 6) * torch.tensor([0.1, 1.0, 3.0, 10.0]).repeat_interleave(4)
    x[2, 13] = -30.0
    q, scale = impl.quantize_absmax(x, 8, 4)
    check.close(scale, _oracle_scale(x, 8, 4), unit=UNIT, case=check.describe(x=x, bits=8, group_size=4),
                what="scale of shape (4, 4)", mistakes=_scale_mistakes(x, 8, 4))
    # (3, 4, 8) with group_size 4: two contiguous groups per row of the last axis; the
    # magnitudes differ per group so that groups cut along any other axis give other scales.
    x = tensors.randn((3, 4, 8), 5)
    x = x * torch.tensor([1.0, 10.0]).repeat_interleave(4)                       # group 1 ten times larger
    x[1, 2, 5] = -40.0                                                           # a negative extreme
    for bits in (8, 4):
        q, scale = impl.quantize_absmax(x, bits, 4)
        case = check.describe(x=x, bits=bits, group_size=4)
        check.close(scale, _oracle_scale(x, bits, 4), unit=UNIT, case=case, what="scale of shape (3, 4, 2)",
                    mistakes=_scale_mistakes(x, bits, 4))
        check.close(q.double() * _expand(scale, 4, x.shape), impl.dequantize_absmax(q, scale, 4),
                    unit="dequantize_absmax", case=case, what="q·scale of each group")
    one = torch.tensor([-0.3])
    q, scale = impl.quantize_absmax(one, 4, 1)
    check.close(q, torch.tensor([-7], dtype=torch.int8), unit=UNIT, case=check.describe(x=one, bits=4, group_size=1),
                what="q of a one-element tensor")
    q, scale = impl.quantize_absmax(one, 8)
    check.close(q, torch.tensor([-127], dtype=torch.int8), unit=UNIT, case=check.describe(x=one, bits=8), what="q")
    x1 = tensors.randn((12,), 7, torch.float32)
    q, scale = impl.quantize_absmax(x1, 4, 3)
    check.close(scale, _oracle_scale(x1, 4, 3), unit=UNIT, case=check.describe(x=x1, bits=4, group_size=3),
                what="scale of a 1-D tensor in 4 groups")


@pytest.mark.points(1)
def test_quantize_reference_data(impl):
    r = reference.load(TOPIC, "quant")
    for bits, group in ((8, None), (4, None), (8, 4), (4, 8)):
        q, scale = impl.quantize_absmax(r["x"], bits, group)
        case = check.describe(x=r["x"], bits=bits, group_size=group)
        check.close(q, r[f"q{bits}_g{group or 0}"], unit=UNIT, case=case, what="q (golden data)")
        check.close(scale.reshape(-1), r[f"scale{bits}_g{group or 0}"], unit=UNIT, case=case,
                    what="scale (golden data)")


@pytest.mark.points(1)
def test_quantize_zero_groups_dtypes_and_raises(impl):
    zeros = torch.zeros(2, 4, dtype=torch.float64)
    q, scale = impl.quantize_absmax(zeros, 8)
    check.that(scale.dtype == torch.float64 and scale.dim() == 0 and float(scale) == 0.0, UNIT,
               "an all-zero tensor has scale 0 (a 0-d tensor of x's dtype)", f"got {scale!r}")
    check.close(q, torch.zeros(2, 4, dtype=torch.int8), unit=UNIT, what="q of an all-zero tensor (0, not NaN)")
    x = torch.tensor([[0.0, 0.0, 1.0, -3.0], [2.0, 0.0, 0.0, 0.0]], dtype=torch.float64)
    q, scale = impl.quantize_absmax(x, 4, 2)
    case = check.describe(x=x, bits=4, group_size=2)
    check.close(scale, torch.tensor([[0.0, 3.0 / 7], [2.0 / 7, 0.0]], dtype=torch.float64), unit=UNIT, case=case,
                what="scales, zero groups included")
    check.close(q, torch.tensor([[0, 0, 2, -7], [7, 0, 0, 0]], dtype=torch.int8), unit=UNIT, case=case, what="q")
    check.close(impl.dequantize_absmax(q, scale, 2), torch.tensor([[0.0, 0.0, 6 / 7, -3.0], [2.0, 0.0, 0.0, 0.0]],
                                                                  dtype=torch.float64),
                unit="dequantize_absmax", case=case, what="dequantised values")
    ok = torch.ones(2, 8)
    for args, why in (((ok, 3), "bits must be 4 or 8"), ((ok, 16), "bits must be 4 or 8"),
                      ((torch.tensor(1.0), 8), "x must be at least 1-D"), ((torch.ones(0), 8), "x must not be empty"),
                      ((ok, 8, 0), "group_size must be positive"), ((ok, 8, 3), "group_size must divide N"),
                      ((ok, 8, -4), "group_size must be positive"), ((ok, 4, 16), "group_size must divide N = 8"),
                      ((ok, 8, True), "a bool is not a group size")):
        check.expect_raises(ValueError, impl.quantize_absmax, *args, unit=UNIT, why=why,
                            case=check.describe(x=args[0], bits=args[1], group_size=args[2] if len(args) > 2 else None))


# ================================================================= dequantize_absmax

@pytest.mark.points(1)
def test_dequantize_round_trip_and_raises(impl):
    unit = "dequantize_absmax"
    q = tensors.randint((2, 3, 6), 8, high=8, low=-7).to(torch.int8)
    scale = tensors.rand((2, 3, 3), 9, low=0.1, high=2.0)
    out = impl.dequantize_absmax(q, scale, 2)
    case = check.describe(q=q, scale=scale, group_size=2)
    check.close(out, q.double() * scale.repeat_interleave(2, dim=-1), unit=unit, case=case,
                what="q[..., j] · scale[..., j // G]",
                mistakes={"scale j applied to every G-th element (strided groups)":
                          q.double() * scale.repeat(1, 1, 2)})
    s0 = torch.tensor(0.25, dtype=torch.float32)
    out = impl.dequantize_absmax(q, s0)
    check.close(out, q.float() * 0.25, unit=unit, case=check.describe(q=q, scale=s0), what="per-tensor q·scale")
    for bits, G, seed in ((8, None, 10), (4, 4, 11), (8, 2, 12)):
        x = tensors.randn((3, 8), seed, torch.float64)
        qq, ss = impl.quantize_absmax(x, bits, G)
        back = impl.dequantize_absmax(qq, ss, G)
        check.close(back, qq.double() * _expand(ss, G, x.shape), unit=unit, what="the round trip's values",
                    case=check.describe(x=x, bits=bits, group_size=G))
    for scale_bad, G, why in ((torch.ones(2, 3, 2), 2, "scale must be (..., N / G)"),
                              (torch.ones(2, 3), 2, "scale must keep q's leading axes"),
                              (torch.ones(2, 3, 3), None, "a per-tensor scale is 0-d"),
                              (torch.ones(2, 3, 3), 4, "group_size must divide N")):
        check.expect_raises(ValueError, impl.dequantize_absmax, q, scale_bad, G, unit=unit, why=why,
                            case=check.describe(q=q, scale=scale_bad, group_size=G))
