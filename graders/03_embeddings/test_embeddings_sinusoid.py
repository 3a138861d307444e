"""Graders for 03_embeddings: sinusoidal_positions.

Evidence: golden data, a float64 oracle written from the paper's formula on fresh
(seq_len, dim, base), the rotation property PE[p+k] = R(k·ω_i) · PE[p] of every frequency
pair, the relative-position property of dot products, and the odd-dim error.

Tolerance. The function returns float32, and a correct float32 computation of the angle
p·ω_i carries a rounding error of a few ulps of p·ω_i ≤ p, which sin and cos pass on
unchanged (their slope is at most 1). So the allowed absolute error grows with the largest
position: atol = 1e-6 + 4·eps32·(seq_len − 1). Measured: float32 formulations (exp/log,
pow, stack-and-flatten) differ from the float64 oracle by ≤ 1.2e-4 at seq_len 2048, where
this allows 9.8e-4; every catalogued mistake is off by more than 1e-2.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmlab.testing import check, reference
from llmlab.testing.strategies import examples
from llmlab.testing.tolerances import Tolerance

TOPIC = "03_embeddings"
UNIT = "sinusoidal_positions"
EPS32 = torch.finfo(torch.float32).eps

def _tol(seq_len: int, factor: float = 1.0) -> Tolerance:
    # float32 angle rounding grows with the position; see the module docstring.
    return Tolerance(rtol=0.0, atol=factor * (1e-6 + 4 * EPS32 * max(seq_len - 1, 0)))


def _angles(seq_len: int, dim: int, base: float, *, exponent_over_dim: float = 2.0, first: int = 0) -> torch.Tensor:
    """(T, dim/2) angles p·ω_i in float64; the keyword arguments build known mistakes."""
    p = torch.arange(first, first + seq_len, dtype=torch.float64)[:, None]
    i = torch.arange(dim // 2, dtype=torch.float64)
    return p / base ** (exponent_over_dim * i / dim)


def _interleave(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.stack([a, b], dim=-1).flatten(-2)                          # (T, C/2, 2) -> (T, C)


def _oracle(seq_len: int, dim: int, base: float) -> torch.Tensor:
    a = _angles(seq_len, dim, base)
    return _interleave(a.sin(), a.cos()).float()


def _mistakes(seq_len: int, dim: int, base: float) -> dict:
    a = _angles(seq_len, dim, base)
    return {
        "sin and cos swapped (cos must go to the odd columns)": lambda: _interleave(a.cos(), a.sin()).float(),
        "frequency exponent i/dim instead of 2i/dim": lambda: (
            lambda w: _interleave(w.sin(), w.cos()).float())(_angles(seq_len, dim, base, exponent_over_dim=1.0)),
        "sines and cosines concatenated in two halves instead of interleaved": lambda: torch.cat(
            [a.sin(), a.cos()], dim=-1).float(),
        "positions counted from 1 instead of 0": lambda: (
            lambda w: _interleave(w.sin(), w.cos()).float())(_angles(seq_len, dim, base, first=1)),
        "angle multiplied by base^(2i/dim) instead of divided": lambda: (
            lambda w: _interleave(w.sin(), w.cos()).float())(_angles(seq_len, dim, base, exponent_over_dim=-2.0)),
    }


def _positions(impl, seq_len: int, dim: int, base: float | None = None) -> torch.Tensor:
    out = impl.sinusoidal_positions(seq_len, dim) if base is None else impl.sinusoidal_positions(seq_len, dim, base)
    case = check.describe(seq_len=seq_len, dim=dim, base=10000.0 if base is None else base)
    check.that(isinstance(out, torch.Tensor), UNIT, f"should return a torch.Tensor, got {type(out).__name__}",
               case=case)
    check.equal(tuple(out.shape), (seq_len, dim), unit=UNIT, case=case, what="shape")
    check.equal(out.dtype, torch.float32, unit=UNIT, case=case, what="dtype")
    return out


@pytest.mark.points(2)
def test_sinusoid_matches_reference(impl):
    rec = reference.load(TOPIC, "sinusoid")
    for k, (T, C, base) in enumerate(rec["configs"].tolist()):
        T, C = int(T), int(C)
        out = _positions(impl, T, C, base)
        check.close(out, rec[f"pe_{k}"], unit=UNIT, case=check.describe(seq_len=T, dim=C, base=base),
                    tol=_tol(T), mistakes=_mistakes(T, C, base))


@pytest.mark.points(3)
@examples(25)
@given(seq_len=st.integers(0, 80), half=st.integers(1, 32),
       base=st.sampled_from([10000.0, 100.0, 2.0, 500000.0, 37.5]))
def test_sinusoid_formula_on_fresh_inputs(impl, seq_len, half, base):
    dim = 2 * half
    out = _positions(impl, seq_len, dim, base)
    check.close(out, _oracle(seq_len, dim, base), unit=UNIT, case=check.describe(seq_len=seq_len, dim=dim, base=base),
                tol=_tol(seq_len), mistakes=_mistakes(seq_len, dim, base))


@pytest.mark.points(1)
def test_sinusoid_default_base_and_edges(impl):
    out = _positions(impl, 7, 10)
    check.close(out, _oracle(7, 10, 10000.0), unit=UNIT, case=check.describe(seq_len=7, dim=10),
                tol=_tol(7), what="output with the default base (10000)")
    first = torch.tensor([0.0, 1.0] * 5)
    check.close(out[0], first, unit=UNIT, case=check.describe(seq_len=7, dim=10), tol=_tol(1),
                what="position 0 (sin 0 = 0 in even columns, cos 0 = 1 in odd columns)",
                mistakes={"sin and cos swapped (cos must go to the odd columns)": torch.tensor([1.0, 0.0] * 5)})
    _positions(impl, 0, 6)                                                  # no positions: shape (0, 6)
    pair = _positions(impl, 4, 2, 10000.0)                                  # one pair: ω_0 = 1
    p = torch.arange(4, dtype=torch.float64)
    check.close(pair, torch.stack([p.sin(), p.cos()], -1).float(), unit=UNIT,
                case=check.describe(seq_len=4, dim=2), tol=_tol(4), what="dim=2 (a single pair with ω_0 = 1)")


@pytest.mark.points(2)
def test_sinusoid_rotation_property(impl):
    T, C, base = 40, 16, 10000.0
    pe = _positions(impl, T, C, base).double()
    s, c = pe[:, 0::2], pe[:, 1::2]                                         # (T, C/2) each: one column per pair
    omega = 1.0 / base ** (torch.arange(C // 2, dtype=torch.float64) * 2 / C)
    for k in (1, 3, 17):
        ck, sk = torch.cos(k * omega), torch.sin(k * omega)                 # R(kω) = [[cos, sin], [-sin, cos]]
        rotated = torch.stack([s[:-k] * ck + c[:-k] * sk, -s[:-k] * sk + c[:-k] * ck], -1)  # R_k · PE[p]
        shifted = torch.stack([s[k:], c[k:]], -1)                           # PE[p + k]
        check.close(shifted, rotated, unit=UNIT, case=check.describe(seq_len=T, dim=C, base=base, k=k),
                    tol=_tol(T, factor=3.0),  # three rounded float32 values enter each element
                    what=f"PE[p + {k}] per (sin, cos) pair vs R({k}·ω_i) · PE[p] "
                         "(pairs are columns (2i, 2i+1) and must rotate rigidly with the position)")


@pytest.mark.points(1)
def test_sinusoid_dot_product_depends_only_on_distance(impl):
    T, C = 24, 12
    pe = _positions(impl, T, C, 10000.0).double()
    gram = pe @ pe.T                                                        # (T, T): PE[p] · PE[q]
    case = check.describe(seq_len=T, dim=C)
    # PE[p]·PE[q] = Σ_i cos((p − q)·ω_i): constant along diagonals, and C/2 on the main one.
    # Each float32 entry of PE is off by at most δ = _tol(T).atol, so a dot product of two rows
    # by at most 2·C·δ, a difference of two of them by 4·C·δ.
    check.close(gram[1:, 1:], gram[:-1, :-1], unit=UNIT, case=case, tol=_tol(T, factor=4 * C),
                what="PE[p+1]·PE[q+1] vs PE[p]·PE[q] (dot products must depend only on p − q)")
    check.close(gram.diagonal(), torch.full((T,), C / 2, dtype=torch.float64), unit=UNIT, case=case,
                tol=_tol(T, factor=2 * C), what="PE[p]·PE[p] (sin² + cos² = 1 per pair, so C/2)")


@pytest.mark.points(1)
def test_sinusoid_odd_dim_raises_value_error(impl):
    for dim in (1, 3, 7, 65):
        case = check.describe(seq_len=5, dim=dim)
        exc = check.expect_raises(ValueError, impl.sinusoidal_positions, 5, dim, unit=UNIT, case=case,
                                  why="dim is odd, and each frequency needs a sin and a cos column; check dim "
                                      "first instead of failing deep inside the computation")
        check.that(len(str(exc)) > 0, UNIT, "the ValueError for an odd dim should say what is wrong", case=case)


@pytest.mark.points(1)
def test_sinusoid_rejects_dim_below_two_and_negative_seq_len(impl):
    for seq_len, dim, why in [(5, 0, "dim must be at least 2: dim = 0 is even but has no (sin, cos) pair"),
                              (5, -2, "dim must be at least 2: a negative dim has no columns"),
                              (-1, 4, "seq_len must be >= 0"),
                              (-3, 2, "seq_len must be >= 0")]:
        check.expect_raises(ValueError, impl.sinusoidal_positions, seq_len, dim, unit=UNIT,
                            case=check.describe(seq_len=seq_len, dim=dim), why=why)
