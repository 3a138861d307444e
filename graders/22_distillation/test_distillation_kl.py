"""Graders for 22_distillation: softened distributions and the two KL directions.

soft_targets: hand values at three temperatures (T used as a multiplier named), golden data,
an exp / sum oracle on hypothesis inputs, the limits T → 0 and T → ∞, shift invariance,
gradients against the oracle, input forms (float32, non-contiguous), every Raises clause.
forward_kl, reverse_kl: hand values (the swapped direction named), golden data, `F.kl_div`
as the oracle on hypothesis inputs (the syllabus's softening mistakes named), zero for equal
inputs and ≥ 0 always, large logits (log_softmax, not log of softmax), gradients against the
oracle and float64 gradcheck, every Raises clause.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import distill_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds
from llmlab.testing.tolerances import Tolerance


# ---------------------------------------------------------------- soft_targets

@pytest.mark.points(1)
def test_soft_targets_by_hand_and_reference(impl):
    logits = torch.tensor([0.0, math.log(2.0), math.log(4.0)], dtype=torch.float64)   # e^x = 1, 2, 4
    r2 = math.sqrt(2.0)
    cases = ((1.0, [1 / 7, 2 / 7, 4 / 7]), (2.0, [1 / (3 + r2), r2 / (3 + r2), 2 / (3 + r2)]),
             (0.5, [1 / 21, 4 / 21, 16 / 21]))
    for T, expected in cases:
        check.close(impl.soft_targets(logits, T), torch.tensor(expected, dtype=torch.float64), unit="soft_targets",
                    case=check.describe(logits=logits, T=T), kind="reduction",
                    what="softmax(logits / T) (by hand: e^(x/T) = 1, 2^(1/T), 4^(1/T), normalised)",
                    mistakes={"the logits multiplied by T instead of divided": torch.softmax(logits * T, -1),
                              "T ignored (the ordinary softmax)": torch.softmax(logits, -1),
                              "the probabilities raised to the power T and not renormalised":
                                  torch.softmax(logits, -1) ** (1 / T)})
    ref = reference.load(O.TOPIC, "soft")
    for name, T in (("t_half", 0.5), ("t_one", 1.0), ("t_four", 4.0)):
        check.close(impl.soft_targets(ref["logits"], T), ref[name], unit="soft_targets", kind="reduction",
                    case=check.describe(logits=ref["logits"], T=T), what="the reference rows")


@pytest.mark.points(2)
@examples(8)
@given(seed=seeds(), shape=st.sampled_from([(5,), (1, 1), (3, 4), (2, 3, 6)]),
       T=st.sampled_from([0.5, 1.0, 3.0, 10]), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_soft_targets_matches_oracle_and_gradients(impl, seed, shape, T, dtype):
    # logits / T stay below about 20, so float32 formulations that round differently agree to ~1e-6
    logits = tensors.randn(shape, seed, dtype, scale=2.0)
    case = check.describe(logits=logits, T=T)

    def oracle(x):
        e = torch.exp((x - x.max(-1, keepdim=True).values) / T)
        return e / e.sum(-1, keepdim=True)

    out = impl.soft_targets(logits, T)
    check.close(out, oracle(logits), unit="soft_targets", case=case, kind="reduction")
    check.close(impl.soft_targets(logits + 5.0, T), oracle(logits), unit="soft_targets", case=case,
                kind="reduction", what="output for the logits shifted by +5 (softmax ignores a shift)")
    if logits.dim() > 1:
        lt = logits.transpose(0, -1).contiguous().transpose(0, -1)
        check.close(impl.soft_targets(lt, T), oracle(logits), unit="soft_targets", kind="reduction",
                    case=check.describe(logits=lt, contiguous=lt.is_contiguous(), T=T),
                    what="output for non-contiguous logits")
    check.grads(lambda x: impl.soft_targets(x, T), oracle, [logits.double()], names=["logits"],
                unit="soft_targets", case=case)


@pytest.mark.points(1)
def test_soft_targets_temperature_limits_and_raises(impl):
    logits = torch.tensor([[1.0, 3.0, 2.0, -1.0]], dtype=torch.float64)
    case = check.describe(logits=logits)
    cold = impl.soft_targets(logits, 0.01)
    check.close(cold, torch.tensor([[0.0, 1.0, 0.0, 0.0]], dtype=torch.float64), unit="soft_targets",
                case=case + "; T=0.01", kind="reduction", what="T → 0 gives the one-hot argmax")
    hot = impl.soft_targets(logits, 1e6)
    check.close(hot, torch.full((1, 4), 0.25, dtype=torch.float64), unit="soft_targets",
                case=case + "; T=1e6", tol=Tolerance(0.0, 1e-5),     # exact limit only as T → ∞
                what="T → ∞ gives the uniform distribution (differences of order 1/T = 1e-6)")
    entropies = [float(-(p * p.log()).sum()) for p in (impl.soft_targets(logits, T) for T in (0.5, 1, 2, 4, 8))]
    check.that(all(a < b for a, b in zip(entropies, entropies[1:])), "soft_targets",
               "the entropy of softmax(logits / T) must grow with T (a higher temperature flattens)",
               f"entropies at T = 0.5, 1, 2, 4, 8: {[round(e, 4) for e in entropies]}", case=case)
    for T, x, why in ((0.0, logits, "T = 0"), (-1.0, logits, "T < 0"), (1.0, torch.tensor(2.0), "0-d logits")):
        check.expect_raises(ValueError, impl.soft_targets, x, T, unit="soft_targets",
                            case=check.describe(logits=x, T=T), why=why)


# ---------------------------------------------------------------- forward_kl, reverse_kl

# teacher p = [0.5, 0.5], student q = [0.25, 0.75] (as log-probabilities, so at T = 1 the
# softmax gives them back): KL(p ‖ q) = 0.5 ln 2 + 0.5 ln(2/3) = 0.5 ln(4/3) ≈ 0.143841,
# KL(q ‖ p) = 0.25 ln 0.5 + 0.75 ln 1.5 ≈ 0.130812.
_P = torch.tensor([math.log(0.5), math.log(0.5)], dtype=torch.float64)
_Q = torch.tensor([math.log(0.25), math.log(0.75)], dtype=torch.float64)
_FWD = 0.5 * math.log(4 / 3)
_REV = 0.25 * math.log(0.5) + 0.75 * math.log(1.5)


def _softening_mistakes(T, direction):
    """The syllabus's softening mistakes for one direction, as values of (student, teacher)."""
    kl = O.kl_div_forward if direction == "forward" else O.kl_div_reverse
    other = O.kl_div_reverse if direction == "forward" else O.kl_div_forward
    return lambda s, t: {
        f"the direction swapped ({'KL(student ‖ teacher)' if direction == 'forward' else 'KL(teacher ‖ student)'})":
            other(s, t, T),
        "the teacher softened by T but the student not": kl(s * T, t, T),
        "the student softened by T but the teacher not": kl(s, t * T, T),
    }


@pytest.mark.points(1)
def test_kl_by_hand_and_reference(impl):
    case = check.describe(student_probs=[0.25, 0.75], teacher_probs=[0.5, 0.5], T=1.0)
    check.close(impl.forward_kl(_Q, _P), torch.tensor(_FWD, dtype=torch.float64), unit="forward_kl", case=case,
                kind="reduction", what="KL(teacher ‖ student) (by hand 0.5 ln(4/3) = 0.143841)",
                mistakes={"the direction swapped (KL(student ‖ teacher))": torch.tensor(_REV, dtype=torch.float64)})
    check.close(impl.reverse_kl(_Q, _P), torch.tensor(_REV, dtype=torch.float64), unit="reverse_kl", case=case,
                kind="reduction", what="KL(student ‖ teacher) (by hand 0.25 ln 0.5 + 0.75 ln 1.5 = 0.130812)",
                mistakes={"the direction swapped (KL(teacher ‖ student))": torch.tensor(_FWD, dtype=torch.float64)})
    # at T = 2 the logits halve: p stays uniform, q ∝ [0.5, √0.75]
    q2 = torch.tensor([0.5, math.sqrt(0.75)], dtype=torch.float64)
    q2 = q2 / q2.sum()
    fwd2 = float((0.5 * (torch.log(torch.tensor(0.5, dtype=torch.float64)) - q2.log())).sum())
    check.close(impl.forward_kl(_Q, _P, 2.0), torch.tensor(fwd2, dtype=torch.float64), unit="forward_kl",
                case=check.describe(student_probs=[0.25, 0.75], teacher_probs=[0.5, 0.5], T=2.0), kind="reduction",
                what="KL(teacher ‖ student) at T = 2 (student softened to ∝ [√0.25, √0.75])",
                mistakes={"the student not softened": torch.tensor(_FWD, dtype=torch.float64)})
    ref = reference.load(O.TOPIC, "kl")
    rc = check.describe(student=ref["student"], teacher=ref["teacher"], T=2.0)
    check.close(impl.forward_kl(ref["student"], ref["teacher"], 2.0), ref["forward"], unit="forward_kl", case=rc,
                kind="reduction", what="the reference rows")
    check.close(impl.reverse_kl(ref["student"], ref["teacher"], 2.0), ref["reverse"], unit="reverse_kl", case=rc,
                kind="reduction", what="the reference rows")


@pytest.mark.points(2)
@examples(8)
@given(seed=seeds(), shape=st.sampled_from([(6,), (1, 3), (4, 5), (2, 3, 7)]),
       T=st.sampled_from([0.5, 1.0, 2.0, 4]), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_forward_kl_matches_kl_div_and_gradients(impl, seed, shape, T, dtype):
    s, t = tensors.randn(shape, seed, dtype, 2.0), tensors.randn(shape, seed + 1, dtype, 2.0)
    case = check.describe(student_logits=s, teacher_logits=t, T=T)
    out = impl.forward_kl(s, t, T)
    check.close(out, O.kl_div_forward(s, t, T), unit="forward_kl", case=case, kind="reduction",
                what="KL(teacher ‖ student) per position (compared with F.kl_div)",
                mistakes=_softening_mistakes(T, "forward")(s, t))
    check.that(bool((out >= -1e-6).all()), "forward_kl", "a KL divergence is never negative",
               f"got {out.min().item():.3g}", case=case)
    check.grads(lambda a, b: impl.forward_kl(a, b, T), lambda a, b: O.kl_div_forward(a, b, T),
                [s.double(), t.double()], names=["student_logits", "teacher_logits"], unit="forward_kl", case=case)


@pytest.mark.points(2)
@examples(8)
@given(seed=seeds(), shape=st.sampled_from([(6,), (1, 3), (4, 5), (2, 3, 7)]),
       T=st.sampled_from([0.5, 1.0, 2.0, 4]), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_reverse_kl_matches_kl_div_and_gradients(impl, seed, shape, T, dtype):
    s, t = tensors.randn(shape, seed, dtype, 2.0), tensors.randn(shape, seed + 1, dtype, 2.0)
    case = check.describe(student_logits=s, teacher_logits=t, T=T)
    out = impl.reverse_kl(s, t, T)
    check.close(out, O.kl_div_reverse(s, t, T), unit="reverse_kl", case=case, kind="reduction",
                what="KL(student ‖ teacher) per position (compared with F.kl_div)",
                mistakes=_softening_mistakes(T, "reverse")(s, t))
    check.that(bool((out >= -1e-6).all()), "reverse_kl", "a KL divergence is never negative",
               f"got {out.min().item():.3g}", case=case)
    check.grads(lambda a, b: impl.reverse_kl(a, b, T), lambda a, b: O.kl_div_reverse(a, b, T),
                [s.double(), t.double()], names=["student_logits", "teacher_logits"], unit="reverse_kl", case=case)


@pytest.mark.points(1)
def test_kl_zero_when_equal_and_large_logits(impl):
    x = tensors.randn((3, 8), 5, torch.float64, 2.0)
    for unit, fn in (("forward_kl", impl.forward_kl), ("reverse_kl", impl.reverse_kl)):
        for T in (0.5, 1.0, 3.0):
            check.close(fn(x, x, T), torch.zeros(3, dtype=torch.float64), unit=unit, kind="reduction",
                        case=check.describe(student_logits=x, teacher_logits=x, T=T),
                        what="KL of a distribution with itself (must be 0)")
        shifted = x + torch.tensor([[1.0], [-7.0], [30.0]], dtype=torch.float64)   # a different shift per row
        check.close(fn(shifted, x, 2.0), torch.zeros(3, dtype=torch.float64), unit=unit, kind="reduction",
                    case=check.describe(student_logits=shifted, teacher_logits=x, T=2.0),
                    what="KL when the student's logits are the teacher's plus a per-row constant (the same "
                         "distributions: must be 0)")
        big_s, big_t = x * 400.0, tensors.randn((3, 8), 6, torch.float64, 800.0)   # softmax underflows to 0
        oracle = O.kl_div_forward if unit == "forward_kl" else O.kl_div_reverse
        out = fn(big_s, big_t, 1.0)
        check.that(bool(torch.isfinite(out).all()), unit, "the KL of large logits is not finite",
                   "compute log-probabilities with log_softmax, not log(softmax(·)): softmax underflows to 0",
                   case=check.describe(student_logits=big_s, teacher_logits=big_t, T=1.0))
        check.close(out, oracle(big_s, big_t, 1.0), unit=unit, kind="reduction",
                    case=check.describe(student_logits=big_s, teacher_logits=big_t), what="KL of large logits")


@pytest.mark.points(1)
def test_kl_gradcheck_and_raises(impl):
    s, t = tensors.randn((2, 5), 8), tensors.randn((2, 5), 9)
    for unit, fn in (("forward_kl", impl.forward_kl), ("reverse_kl", impl.reverse_kl)):
        check.gradcheck(lambda a, b: fn(a, b, 1.5), [s, t], unit=unit, case=check.describe(student_logits=s,
                                                                                          teacher_logits=t, T=1.5))
        for a, b, T, why in ((s, t[:, :4], 1.0, "different shapes"), (s[0], t, 1.0, "different shapes"),
                             (torch.tensor(1.0), torch.tensor(1.0), 1.0, "0-d inputs"),
                             (s, t, 0.0, "T = 0"), (s, t, -2.0, "T < 0")):
            check.expect_raises(ValueError, fn, a, b, T, unit=unit,
                                case=check.describe(student_logits=a, teacher_logits=b, T=T), why=why)
