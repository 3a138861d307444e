"""Graders for 18_long_context: RoPE tables and the three scaling rules.

rope_tables: the given library's rope_cache as an oracle, golden tables, the attention scale,
float32 inputs, the relative-position property of the rotation, a TinyLlama rebuilt with the
tables (with_rope) equal to the original, Raises.
pi_inv_freq: hand values, the interpolation property (position s·p with PI = position p
without), gradients, dtypes, Raises.
ntk_inv_freq: hand values with the exponent's known mistakes named, a per-pair oracle on
hypothesis inputs, the fastest pair unchanged and the slowest divided by s exactly, Raises.
yarn_inv_freq: hand values on crafted wavelengths (inverted ramp named), a loop oracle on
hypothesis inputs, the three regimes (unchanged, ramp, interpolated), the paper's defaults on
golden data, gradients against a torch.where oracle and float64 gradcheck, Raises.
yarn_attention_scale: hand values (0.1 ln s + 1), logits scaled by its square, Raises.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import long_context_oracle as O
from llmlab.lib.llama import apply_rope, rope_cache
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds

F64 = torch.float64


def _t(values, dtype=F64):
    return torch.tensor(values, dtype=dtype)


# ---------------------------------------------------------------- rope_tables

@pytest.mark.points(2)
@examples(6)
@given(D=st.sampled_from([2, 4, 8, 16]), max_len=st.integers(1, 40), base=st.sampled_from([100.0, 10000.0, 5e5]))
def test_rope_tables_match_library_rope_cache(impl, D, max_len, base):
    theta = impl.rope_inv_freq(D, base)
    cos, sin = impl.rope_tables(theta, max_len)
    exp_cos, exp_sin = rope_cache(D, max_len, base)
    case = check.describe(head_dim=D, max_len=max_len, base=base)
    # interleaved layout (pairs 2i, 2i + 1) instead of the half-split one, as a named mistake
    angle = torch.arange(max_len, dtype=F64)[:, None] * theta
    interleaved = angle.repeat_interleave(2, dim=-1)
    check.close(cos, exp_cos, unit="rope_tables", case=case, kind="elementwise",
                what="cos table (compared with llmlab.lib.llama.rope_cache)",
                mistakes={"interleaved layout (pairs 2i, 2i + 1) instead of half-split": interleaved.cos().float()})
    check.close(sin, exp_sin, unit="rope_tables", case=case, kind="elementwise",
                what="sin table (compared with llmlab.lib.llama.rope_cache)",
                mistakes={"interleaved layout (pairs 2i, 2i + 1) instead of half-split": interleaved.sin().float(),
                          "cos and sin swapped": exp_cos})


@pytest.mark.points(2)
def test_rope_tables_reference_scale_and_dtypes(impl):
    ref = reference.load(O.TOPIC, "tables")
    scale = float(ref["attention_scale"][0])
    cos, sin = impl.rope_tables(ref["inv_freq"], 20, scale)
    case = check.describe(inv_freq=ref["inv_freq"], max_len=20, attention_scale=scale)
    plain_cos, plain_sin = impl.rope_tables(ref["inv_freq"], 20)
    check.close(cos, ref["cos"], unit="rope_tables", case=case, kind="elementwise",
                what="cos table with the attention scale (reference)",
                mistakes={"attention scale not applied to cos": plain_cos})
    check.close(sin, ref["sin"], unit="rope_tables", case=case, kind="elementwise",
                what="sin table with the attention scale (reference)",
                mistakes={"attention scale not applied to sin": plain_sin})
    # fresh inputs: the tables scale linearly with attention_scale, and float32 inv_freq gives
    # the angles of its (float32) values computed in float64
    theta32 = tensors.rand((5,), 3, torch.float32, 0.01, 1.0)
    c1, s1 = impl.rope_tables(theta32, 33, 1.0)
    c2, s2 = impl.rope_tables(theta32, 33, 0.5)
    angle = torch.arange(33, dtype=F64)[:, None] * theta32.double()
    angle = torch.cat([angle, angle], dim=-1)
    case = check.describe(inv_freq=theta32, max_len=33)
    check.close(c1, angle.cos().float(), unit="rope_tables", case=case, kind="elementwise",
                what="cos table of a float32 inv_freq (angles p·θ_i in float64, then float32)")
    check.close(s1, angle.sin().float(), unit="rope_tables", case=case, kind="elementwise",
                what="sin table of a float32 inv_freq")
    check.close(c2, (0.5 * angle.cos()).float(), unit="rope_tables", case=case, kind="elementwise",
                what="cos table with attention_scale 0.5")
    check.close(s2, (0.5 * angle.sin()).float(), unit="rope_tables", case=case, kind="elementwise",
                what="sin table with attention_scale 0.5")
    check.that(c1.dtype == torch.float32 and s1.dtype == torch.float32 and c1.shape == (33, 10), "rope_tables",
               f"tables should be float32 of shape (33, 10), got {c1.dtype} {tuple(c1.shape)}", case=case)
    one_cos, one_sin = impl.rope_tables(theta32, 1)
    check.close(one_cos, torch.ones(1, 10), unit="rope_tables", case="max_len=1", kind="exact",
                what="cos table of position 0 alone (angle 0)")
    check.close(one_sin, torch.zeros(1, 10), unit="rope_tables", case="max_len=1", kind="exact",
                what="sin table of position 0 alone (angle 0)")


@pytest.mark.points(2)
def test_rope_tables_in_attention_and_in_tinyllama(impl):
    # Rotating q and k with the tables makes q·k depend on the distance only, for any θ.
    theta = O.inv_freq_from_wavelengths([3.0, 7.0, 20.0, 90.0])
    cos, sin = impl.rope_tables(theta, 24)
    q = tensors.randn((1, 1, 1, 8), 5).float().expand(1, 1, 24, 8)
    k = tensors.randn((1, 1, 1, 8), 6).float().expand(1, 1, 24, 8)
    scores = (apply_rope(q, cos, sin) @ apply_rope(k, cos, sin).transpose(-1, -2))[0, 0]   # (24, 24)
    case = check.describe(inv_freq=theta, max_len=24)
    for d in (0, 3, 11):
        diag = torch.diagonal(scores, -d)
        check.close(diag, diag[:1].expand_as(diag), unit="rope_tables", case=case, kind="matmul",
                    what=f"q·k at distance {d} for every position (RoPE scores depend on the distance only)")
    # the given with_rope builds a TinyLlama from the tables: with the trained θ it is the same model
    model = O.tiny_llama(3)
    same = impl.with_rope(model, impl.rope_inv_freq(8), model.config.block_size)
    idx = tensors.randint((2, 30), 7, high=11)
    with torch.no_grad():
        check.close(same(idx)[0], model(idx)[0], unit="rope_tables", kind="model",
                    case=check.describe(idx=idx, model="tiny_llama(3), head_dim 8"),
                    what="logits of a TinyLlama whose RoPE tables were rebuilt by rope_tables from its own θ")


@pytest.mark.points(1)
def test_rope_tables_raises(impl):
    theta = impl.rope_inv_freq(8)
    for args, why in (((theta[None], 4), "inv_freq must be 1-D"), ((theta[:0], 4), "inv_freq is empty"),
                      ((theta, 0), "max_len < 1")):
        check.expect_raises(ValueError, impl.rope_tables, *args, unit="rope_tables",
                            case=check.describe(inv_freq=args[0], max_len=args[1]), why=why)


# ---------------------------------------------------------------- position interpolation

@pytest.mark.points(1)
def test_pi_by_hand_and_interpolation_property(impl):
    theta = _t([1.0, 0.1, 0.01])
    case = check.describe(inv_freq=theta, scale=4.0)
    check.close(impl.pi_inv_freq(theta, 4.0), _t([0.25, 0.025, 0.0025]), unit="pi_inv_freq", case=case,
                kind="elementwise", what="θ / s (by hand)",
                mistakes={"θ multiplied by s instead of divided": theta * 4.0, "θ divided by s²": theta / 16.0})
    check.close(impl.pi_inv_freq(theta, 1.0), theta, unit="pi_inv_freq", case=check.describe(scale=1.0),
                kind="elementwise", what="θ at scale 1 (unchanged)")
    # reading position s·p with PI is reading position p without it
    base = impl.rope_inv_freq(16)
    s = 4
    cos_pi, sin_pi = impl.rope_tables(impl.pi_inv_freq(base, float(s)), 64)
    cos, sin = impl.rope_tables(base, 16)
    check.close(cos_pi[::s], cos, unit="pi_inv_freq", case=check.describe(head_dim=16, scale=s), kind="elementwise",
                what="cos table of positions 0, s, 2s, … under PI (must equal positions 0, 1, 2, … unscaled)")
    check.close(sin_pi[::s], sin, unit="pi_inv_freq", case=check.describe(head_dim=16, scale=s), kind="elementwise",
                what="sin table of positions 0, s, 2s, … under PI")


@pytest.mark.points(1)
def test_pi_gradients_dtypes_and_raises(impl):
    for dtype in (torch.float32, F64):
        theta = tensors.rand((6,), 1, dtype, 0.001, 1.0)
        out = impl.pi_inv_freq(theta, 2.5)
        check.close(out, theta / 2.5, unit="pi_inv_freq", case=check.describe(inv_freq=theta, scale=2.5),
                    kind="elementwise", what=f"θ / s in {dtype}")
    theta = tensors.rand((6,), 2, F64, 0.001, 1.0)
    check.grads(lambda x: impl.pi_inv_freq(x, 3.0), lambda x: x * (1 / 3.0), [theta], names=["inv_freq"],
                unit="pi_inv_freq", case=check.describe(inv_freq=theta, scale=3.0))
    check.expect_raises(ValueError, impl.pi_inv_freq, theta, 0.5, unit="pi_inv_freq",
                        case=check.describe(scale=0.5), why="scale < 1")


# ---------------------------------------------------------------- NTK-aware scaling

@pytest.mark.points(2)
def test_ntk_by_hand_and_reference(impl):
    # D = 4, b = 10⁴, s = 4: b' = b·s^(4/2) = 160000, θ' = [1, 160000^(−1/2)] = [1, 1/400]
    got = impl.ntk_inv_freq(4, 4.0, 10000.0)
    case = check.describe(head_dim=4, scale=4.0, base=10000.0)
    check.close(got, _t([1.0, 0.0025]), unit="ntk_inv_freq", case=case, kind="elementwise",
                what="θ' = (b·s^(D/(D−2)))^(−2i/D) (by hand [1, 1/400])",
                mistakes={"NTK base scaled with the wrong exponent: b·s instead of b·s^(D/(D−2))": _t([1.0, 0.005]),
                          "NTK base scaled with the wrong exponent: b·s^((D−2)/D)": _t([1.0, 20000 ** -0.5]),
                          "NTK base scaled with the wrong exponent: b·s^(D/2)": _t([1.0, 160000 ** -0.5]),
                          "position interpolation (θ / s) instead of NTK": _t([0.25, 0.0025])})
    # D = 8, s = 16: the slowest pair must be θ_3 / s = 10⁴^(−3/4) / 16 = 6.25e-5
    got = impl.ntk_inv_freq(8, 16.0)
    wrong_one = (10000.0 * 16) ** (-torch.arange(0, 8, 2, dtype=F64) / 8)
    wrong_inv = (10000.0 * 16 ** (6 / 8)) ** (-torch.arange(0, 8, 2, dtype=F64) / 8)
    check.close(got[-1:], _t([6.25e-5]), unit="ntk_inv_freq", case=check.describe(head_dim=8, scale=16.0),
                kind="elementwise", what="the slowest pair θ'_3 (by hand θ_3 / s = 6.25e-5)",
                mistakes={"NTK base scaled with the wrong exponent: b·s instead of b·s^(D/(D−2))": wrong_one[-1:],
                          "NTK base scaled with the wrong exponent: b·s^((D−2)/D)": wrong_inv[-1:]})
    ref = reference.load(O.TOPIC, "scaling")
    check.close(impl.ntk_inv_freq(16, 4.0), ref["ntk"], unit="ntk_inv_freq", kind="elementwise",
                case=check.describe(head_dim=16, scale=4.0, base=10000.0), what="θ' of the reference case")


@pytest.mark.points(2)
@examples(12)
@given(D=st.sampled_from([4, 6, 8, 16, 32, 64]), scale=st.floats(1.0, 64.0), base=st.sampled_from([500.0, 1e4, 1e6]))
def test_ntk_matches_per_pair_oracle_and_ends(impl, D, scale, base):
    got = impl.ntk_inv_freq(D, scale, base)
    case = check.describe(head_dim=D, scale=scale, base=base)
    check.that(got.dtype == F64 and got.shape == (D // 2,), "ntk_inv_freq",
               f"should return (D/2,) float64, got {got.dtype} {tuple(got.shape)}", case=case)
    check.close(got, _t(O.ntk_loop(D, scale, base)), unit="ntk_inv_freq", case=case, kind="elementwise",
                what="θ'_i (compared with θ_i · s^(−2i/(D−2)))")
    theta = base ** (-torch.arange(0, D, 2, dtype=F64) / D)
    check.close(got[0], _t(1.0), unit="ntk_inv_freq", case=case, kind="elementwise",
                what="the fastest pair θ'_0 (unchanged: 1)")
    check.close(got[-1], theta[-1] / scale, unit="ntk_inv_freq", case=case, kind="elementwise",
                what="the slowest pair θ'_{D/2−1} (divided by exactly s, as PI would)")


@pytest.mark.points(1)
def test_ntk_raises(impl):
    for D, s, why in ((7, 2.0, "odd head_dim"), (2, 2.0, "head_dim < 4 (D − 2 = 0)"), (8, 0.9, "scale < 1")):
        check.expect_raises(ValueError, impl.ntk_inv_freq, D, s, unit="ntk_inv_freq",
                            case=check.describe(head_dim=D, scale=s), why=why)


# ---------------------------------------------------------------- YaRN

# wavelengths 2, 8, 16, 128 within L = 64: r = 32, 8, 4, 0.5; with α = 2, β = 10 the ramp is
# γ = 1, 0.75, 0.25, 0, and at s = 4 θ'/θ = (1 − γ)/4 + γ = 1, 0.8125, 0.4375, 0.25.
HAND_THETA = O.inv_freq_from_wavelengths([2.0, 8.0, 16.0, 128.0])


@pytest.mark.points(2)
def test_yarn_by_hand_and_reference(impl):
    got = impl.yarn_inv_freq(HAND_THETA, 4.0, 64, 2.0, 10.0)
    case = check.describe(wavelengths=[2, 8, 16, 128], scale=4.0, original_len=64, alpha=2.0, beta=10.0)
    check.close(got, HAND_THETA * _t([1.0, 0.8125, 0.4375, 0.25]), unit="yarn_inv_freq", case=case,
                kind="elementwise", what="θ' (by hand θ·[1, 0.8125, 0.4375, 0.25])",
                mistakes={"the YaRN ramp inverted (high frequencies interpolated)":
                          HAND_THETA * _t([0.25, 0.4375, 0.8125, 1.0]),
                          "ramp not clamped to [0, 1]": HAND_THETA * _t(
                              [(1 - g) / 4 + g for g in [3.75, 0.75, 0.25, -0.1875]]),
                          "position interpolation (θ / s) for every pair": HAND_THETA / 4})
    ref = reference.load(O.TOPIC, "scaling")
    for name, args in (("yarn_paper", (4.0, 64)), ("yarn_beta4", (4.0, 64, 1.0, 4.0))):
        check.close(impl.yarn_inv_freq(ref["inv_freq"], *args), ref[name], unit="yarn_inv_freq", kind="elementwise",
                    case=check.describe(head_dim=16, scale=4.0, original_len=64, ramp=args[2:] or "(1, 32)"),
                    what=f"θ' of the reference case {name}")


@pytest.mark.points(2)
@examples(12)
@given(seed=seeds(), n=st.integers(1, 12), scale=st.floats(1.0, 32.0), L=st.integers(1, 512),
       alpha=st.floats(0.0, 4.0), width=st.floats(0.5, 40.0), dtype=st.sampled_from([torch.float32, F64]))
def test_yarn_matches_loop_oracle_and_regimes(impl, seed, n, scale, L, alpha, width, dtype):
    theta = (10.0 ** tensors.rand((n,), seed, F64, -4.0, 0.5)).to(dtype)       # θ in [1e-4, 3.2]
    beta = alpha + width
    got = impl.yarn_inv_freq(theta, scale, L, alpha, beta)
    case = check.describe(inv_freq=theta, scale=scale, original_len=L, alpha=alpha, beta=beta)
    check.close(got, _t(O.yarn_loop(theta, scale, L, alpha, beta), dtype), unit="yarn_inv_freq", case=case,
                kind="elementwise", what="θ' (compared with a loop over the paper's piecewise ramp)")
    r = L * theta.double() / (2 * math.pi)
    high, low = r > beta, r < alpha
    check.close(got[high], theta[high], unit="yarn_inv_freq", case=case, kind="elementwise",
                what="pairs that turn more than β times within L (high frequencies: θ unchanged)")
    check.close(got[low], theta[low] / scale, unit="yarn_inv_freq", case=case, kind="elementwise",
                what="pairs that turn fewer than α times within L (interpolated: θ / s)")
    middle = ~(high | low)
    check.that(bool(((got[middle] >= theta[middle] / scale * (1 - 1e-6)) &
                     (got[middle] <= theta[middle] * (1 + 1e-6))).all()),
               "yarn_inv_freq", "pairs in the ramp must lie between θ / s and θ", case=case)


@pytest.mark.points(2)
def test_yarn_gradients_and_gradcheck(impl):
    # wavelengths on every side of the ramp (α = 1, β = 8 within L = 32: r = 16, 6.4, 3.2, 2, 0.5)
    theta = O.inv_freq_from_wavelengths([2.0, 5.0, 10.0, 16.0, 64.0])
    case = check.describe(inv_freq=theta, scale=3.0, original_len=32, alpha=1.0, beta=8.0)
    check.grads(lambda x: impl.yarn_inv_freq(x, 3.0, 32, 1.0, 8.0), lambda x: O.yarn_torch(x, 3.0, 32, 1.0, 8.0),
                [theta], names=["inv_freq"], unit="yarn_inv_freq", case=case,
                mistakes={"ramp γ detached (treated as a constant)":
                          lambda x: O.yarn_torch(x, 3.0, 32, 1.0, 8.0, detach_ramp=True)})
    check.gradcheck(lambda x: impl.yarn_inv_freq(x, 3.0, 32, 1.0, 8.0), [theta], unit="yarn_inv_freq", case=case)
    out = impl.yarn_inv_freq(theta.float(), 3.0, 32, 1.0, 8.0)
    check.that(out.dtype == torch.float32, "yarn_inv_freq", f"float32 inv_freq should give float32, got {out.dtype}",
               case=case)


@pytest.mark.points(1)
def test_yarn_raises(impl):
    theta = impl.rope_inv_freq(8)
    bad = (((theta, 0.5, 64), "scale < 1"), ((theta, 2.0, 0), "original_len < 1"),
           ((theta, 2.0, 64, 4.0, 4.0), "alpha = beta"), ((theta, 2.0, 64, 5.0, 4.0), "alpha > beta"),
           ((theta, 2.0, 64, -1.0, 4.0), "alpha < 0"))
    for args, why in bad:
        check.expect_raises(ValueError, impl.yarn_inv_freq, *args, unit="yarn_inv_freq",
                            case=check.describe(scale=args[1], original_len=args[2], ramp=args[3:]), why=why)


@pytest.mark.points(1)
def test_yarn_attention_scale_by_hand_and_logits(impl):
    cases = ((1.0, 1.0), (4.0, 0.1 * math.log(4.0) + 1), (math.e ** 5, 1.5), (16.0, 1.2772588722239781))
    for s, expected in cases:
        got = impl.yarn_attention_scale(s)
        case = check.describe(scale=s)
        check.that(type(got) is float, "yarn_attention_scale", f"should return a Python float, got {type(got).__name__}",
                   case=case)
        check.close(_t(got), _t(expected), unit="yarn_attention_scale", case=case, kind="elementwise",
                    what="0.1·ln s + 1",
                    mistakes={"log10 instead of the natural log": _t(0.1 * math.log10(s) + 1),
                              "log2 instead of the natural log": _t(0.1 * math.log2(s) + 1),
                              "the logit factor (0.1 ln s + 1)² returned instead of its square root":
                                  _t((0.1 * math.log(s) + 1) ** 2),
                              "+ 1 left out": _t(0.1 * math.log(s))})
    ref = reference.load(O.TOPIC, "scaling")
    check.close(_t([impl.yarn_attention_scale(4.0), impl.yarn_attention_scale(8.0)]), ref["attention_scale"],
                unit="yarn_attention_scale", kind="elementwise", case="scale 4 and 8 (reference)")
    # tables scaled by the factor multiply every logit q·k by its square, 1/t
    a = impl.yarn_attention_scale(8.0)
    theta = impl.rope_inv_freq(8)
    cos, sin = impl.rope_tables(theta, 6, a)
    cos1, sin1 = impl.rope_tables(theta, 6)
    q, k = tensors.randn((1, 1, 6, 8), 1, torch.float32), tensors.randn((1, 1, 6, 8), 2, torch.float32)
    scaled = apply_rope(q, cos, sin) @ apply_rope(k, cos, sin).transpose(-1, -2)
    plain = apply_rope(q, cos1, sin1) @ apply_rope(k, cos1, sin1).transpose(-1, -2)
    check.close(scaled, plain * a ** 2, unit="yarn_attention_scale", case=check.describe(scale=8.0), kind="matmul",
                what="logits with the scaled tables (must be the plain logits × (0.1 ln s + 1)²)")
    check.expect_raises(ValueError, impl.yarn_attention_scale, 0.5, unit="yarn_attention_scale",
                        case=check.describe(scale=0.5), why="scale < 1")
