"""Graders for 23_policy_distillation: the KL estimators and the full-vocabulary divergences.

kl_estimate: hand values (r = 2 and r = 1/2), golden data, a Python-float loop oracle on
hypothesis inputs, k3 ≥ 0 everywhere (tiny log-ratios in float32 included), the exact
expectations Σ q·k = KL(q ‖ p) against F.kl_div, Monte-Carlo means of k1 and k3 within a
Hoeffding bound (stated false-failure rate), gradients, every Raises clause.
token_reverse_kl: a hand value, golden data, F.kl_div as the oracle (kl_div forbidden in
the unit), gradients, zero on equal inputs, shift invariance, huge logits, Raises.
generalized_jsd: a hand value, golden data, a probability-space oracle and its gradients,
the endpoints (forward and reverse KL) and the limits that define them, the symmetry
JSD_β(s, t) = JSD_{1−β}(t, s), the bounds 0 ≤ JSD(β) ≤ H(β), Raises.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import policy_distillation_oracle as O
from llmlab.testing import check, guard, reference, stats, tensors
from llmlab.testing.strategies import examples, seeds
from llmlab.testing.tolerances import Tolerance

LOG2 = math.log(2.0)


def _log_dist(shape, seed, dtype=torch.float64, scale=1.5):
    """Rows of log-probabilities over the last axis."""
    return torch.log_softmax(tensors.randn(shape, seed, torch.float64, scale), dim=-1).to(dtype)


# ================================================================= kl_estimate

@pytest.mark.points(1)
def test_kl_estimate_by_hand_and_reference(impl):
    # token 0: q = 1/4, p = 1/2, so r = 2; token 1: q = 1/2, p = 1/4, so r = 1/2.
    logq = torch.tensor([math.log(0.25), math.log(0.5)], dtype=torch.float64)
    logp = torch.tensor([math.log(0.5), math.log(0.25)], dtype=torch.float64)
    case = check.describe(logp_sample=logq, logp_ref=logp)
    t = lambda *v: torch.tensor(v, dtype=torch.float64)
    check.close(impl.kl_estimate(logq, logp, "k1"), t(-LOG2, LOG2), unit="kl_estimate", case=case,
                what="k1 = −log r (by hand: −log 2 and log 2)",
                mistakes={"k1 = +log r: the ratio inverted (log q − log p has the other sign)": t(LOG2, -LOG2)})
    check.close(impl.kl_estimate(logq, logp, "k2"), t(LOG2 ** 2 / 2, LOG2 ** 2 / 2), unit="kl_estimate", case=case,
                what="k2 = (log r)² / 2 (by hand: 0.2402 for both)",
                mistakes={"k2 without the ½": t(LOG2 ** 2, LOG2 ** 2)})
    check.close(impl.kl_estimate(logq, logp, "k3"), t(1 - LOG2, -0.5 + LOG2), unit="kl_estimate", case=case,
                what="k3 = (r − 1) − log r (by hand: 1 − log 2 = 0.3069 and −1/2 + log 2 = 0.1931)",
                mistakes={"k3 with the ratio inverted in r − 1: (1/r − 1) − log r, which goes negative":
                          t(-0.5 - LOG2, 1 + LOG2),
                          "k3 of the inverted ratio q/p: (1/r − 1) + log r": t(-0.5 + LOG2, 1 - LOG2),
                          "k3 without the − log r term": t(1.0, -0.5)})
    check.close(impl.kl_estimate(logq, logp), t(1 - LOG2, -0.5 + LOG2), unit="kl_estimate", case=case,
                what="the default kind (k3)")
    # tiny log-ratios in float32 and float64, where exp(log r) − 1 − log r rounds below 0
    # (values found by search: the naive formula gives −3e-8 in float32 and −5e-17 in float64 here)
    for dtype, deltas in ((torch.float32, [2.9e-5, 5.82e-5, -2.98e-5, 1.63e-5]),
                          (torch.float64, [-8.12e-9, 4.75e-9, -3.7e-9, -6.73e-9, 6.71e-9])):
        small_q = torch.full((len(deltas),), -0.002, dtype=dtype)
        small_p = small_q + torch.tensor(deltas, dtype=torch.float64).to(dtype)
        k3 = impl.kl_estimate(small_q, small_p, "k3")
        check.that(bool((k3 >= 0).all()), "kl_estimate", "k3 must be ≥ 0 for every input, also for tiny log r",
                   f"got {k3.tolist()}", "exp(log r) − 1 − log r rounds to negative numbers: compute r − 1 with "
                   "torch.expm1(log r)", case=check.describe(logp_sample=small_q, logp_ref=small_p))
    ref = reference.load(O.TOPIC, "kl")
    case = check.describe(logp_sample=ref["logp_sample"], logp_ref=ref["logp_ref"])
    for kind in ("k1", "k2", "k3"):
        check.close(impl.kl_estimate(ref["logp_sample"], ref["logp_ref"], kind), ref[kind], unit="kl_estimate",
                    case=case + f"; kind={kind!r}", what=f"{kind} of the reference log-probabilities")


@pytest.mark.points(2)
@examples(10)
@given(seed=seeds(), shape=st.sampled_from([(7,), (1, 5), (3, 4), (2, 2, 3)]),
       scale=st.sampled_from([1e-7, 1e-4, 1e-2, 1.0, 4.0]), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_kl_estimate_k3_never_negative_and_matches_loop(impl, seed, shape, scale, dtype):
    # log r = logp_ref − logp_sample of every size, down to 1e-7 where exp(log r) − 1 − log r
    # rounds to negative numbers (k3 must be ≥ 0 for every input, in float32 too).
    logq = _log_dist(shape, seed, dtype)
    logp = (logq.double() + tensors.randn(shape, seed + 1, torch.float64, scale)).to(dtype)
    case = check.describe(logp_sample=logq, logp_ref=logp, scale_of_log_r=scale)
    oracle = O.estimates_loop(logq, logp)
    k3 = impl.kl_estimate(logq, logp, "k3")
    if isinstance(k3, torch.Tensor) and bool((k3 < 0).any()):
        log_r = logp - logq                                                # in the inputs' dtype, as the unit computes it
        named = None
        if torch.equal(k3, torch.exp(log_r) - 1 - log_r):
            named = "k3 as exp(log r) − 1 − log r, which rounds to negative values for small log r (use torch.expm1)"
        elif torch.allclose(k3, torch.expm1(-log_r) - log_r, rtol=1e-3, atol=0.0):
            named = "k3 with the ratio inverted in r − 1: (1/r − 1) − log r"
        i = tuple(int(j) for j in (k3 < 0).nonzero()[0])
        check.fail("kl_estimate", "k3 must be ≥ 0 for every input",
                   f"got {float(k3[i]):.3g} at index {i}, where log r = {float(log_r[i]):.3g}", case=case, mistake=named)
    for kind in ("k1", "k2", "k3"):
        out = impl.kl_estimate(logq, logp, kind)
        check.close(out, oracle[kind].to(dtype), unit="kl_estimate", case=case + f"; kind={kind!r}",
                    kind="elementwise", what=f"{kind} (against a Python-float loop)")
    check.that(bool((impl.kl_estimate(logq, logp, "k2") >= 0).all()), "kl_estimate", "k2 must be ≥ 0", case=case)
    if logq.dim() > 1:                                                   # a non-contiguous view of the same values
        qt = logq.transpose(0, -1).contiguous().transpose(0, -1)
        check.close(impl.kl_estimate(qt, logp, "k3"), oracle["k3"].to(dtype), unit="kl_estimate",
                    case=check.describe(logp_sample=qt, contiguous=qt.is_contiguous()), what="k3 of a non-contiguous input")


@pytest.mark.points(2)
@examples(8)
@given(seed=seeds(), V=st.integers(2, 9), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_kl_estimate_unbiased_exactly(impl, seed, V, dtype):
    # Enumerate every token x of the vocabulary: Σ_x q(x)·k(x) is the exact expectation of the
    # estimator under x ~ q; for k1 and k3 it must equal KL(q ‖ p) (F.kl_div as the oracle).
    logq, logp = _log_dist((V,), seed, dtype), _log_dist((V,), seed + 1, dtype)
    q = logq.exp()
    case = check.describe(logp_sample=logq, logp_ref=logp)
    kl = O.kl_divergence(logq, logp)
    log_r = logp - logq
    wrong = {"k1 = +log r (the ratio inverted): expectation −KL": -kl,
             "k3 with the ratio inverted in r − 1: (1/r − 1) − log r": (q * (torch.expm1(-log_r) - log_r)).sum(),
             "k3 of the inverted ratio q/p: (1/r − 1) + log r": (q * (torch.expm1(-log_r) + log_r)).sum(),
             "the reverse direction KL(p ‖ q)": O.kl_divergence(logp, logq)}
    for kind in ("k1", "k3"):
        mean = (q * impl.kl_estimate(logq, logp, kind)).sum()
        check.close(mean, kl, unit="kl_estimate", case=case + f"; kind={kind!r}", kind="reduction",
                    what=f"Σ_x q(x)·{kind}(x), the expectation under x ~ q (must equal KL(q ‖ p))", mistakes=wrong)
    mean2 = (q * impl.kl_estimate(logq, logp, "k2")).sum()
    check.close(mean2, (q * log_r ** 2).sum() / 2, unit="kl_estimate", case=case + "; kind='k2'", kind="reduction",
                what="Σ_x q(x)·k2(x) = ½ E[(log r)²]")


@pytest.mark.points(2)
def test_kl_estimate_monte_carlo_means(impl):
    # N = 20 000 tokens drawn from q: the means of k1 and k3 estimate KL(q ‖ p). Every value lies
    # in [lo, hi] (the per-token values, those of the catalogued mistakes included), so by
    # Hoeffding each mean is within (hi − lo)·sqrt(ln(2/5e-7) / 2N) of KL except with
    # probability ≤ 5e-7; two checks: a correct implementation fails with probability ≤ 1e-6.
    logq = torch.log(torch.tensor([0.35, 0.25, 0.2, 0.1, 0.06, 0.04], dtype=torch.float64))
    logp = torch.log(torch.tensor([0.1, 0.3, 0.1, 0.2, 0.15, 0.15], dtype=torch.float64))
    kl = float(O.kl_divergence(logq, logp))
    N = 20_000
    x = torch.multinomial(logq.exp(), N, replacement=True, generator=tensors.generator(2323))
    case = check.describe(q=logq.exp(), p=logp.exp(), samples=N)
    log_r = logp - logq
    q = logq.exp()
    per_token = {"k1": -log_r, "k3": torch.expm1(log_r) - log_r}
    wrong_values = {"k1 = +log r (the ratio inverted)": log_r,
                    "k3 with the ratio inverted in r − 1: (1/r − 1) − log r": torch.expm1(-log_r) - log_r,
                    "k3 of the inverted ratio q/p: (1/r − 1) + log r": torch.expm1(-log_r) + log_r}
    everything = torch.cat([*per_token.values(), *wrong_values.values()])
    lo, hi = float(everything.min()) - 1e-9, float(everything.max()) + 1e-9
    for kind in ("k1", "k3"):
        values = impl.kl_estimate(logq[x], logp[x], kind)
        stats.bounded_mean(values, kl, lo, hi, unit="kl_estimate", rate=5e-7, case=case + f"; kind={kind!r}",
                           what=f"Monte-Carlo mean of {kind} over tokens drawn from q (true KL(q ‖ p) = {kl:.4f})",
                           mistakes={name: float((q * v).sum()) for name, v in wrong_values.items()})


@pytest.mark.points(1)
def test_kl_estimate_gradients_and_raises(impl):
    logq, logp = _log_dist((3, 4), 5), _log_dist((3, 4), 6)
    case = check.describe(logp_sample=logq, logp_ref=logp)
    oracles = {"k1": lambda s, r: s - r, "k2": lambda s, r: 0.5 * (r - s) ** 2,
               "k3": lambda s, r: torch.exp(r - s) - 1 - (r - s)}
    for kind, oracle in oracles.items():
        fn = lambda s, r, kind=kind: impl.kl_estimate(s, r, kind)
        check.grads(fn, oracle, [logq, logp], names=["logp_sample", "logp_ref"], unit="kl_estimate",
                    case=case + f"; kind={kind!r}")
        check.gradcheck(fn, [logq, logp], unit="kl_estimate", case=case + f"; kind={kind!r}")
    for a, b, kind, why in ((logq, logp[:, :3], "k1", "shapes differ"), (logq[0], logp, "k3", "shapes differ"),
                            (torch.tensor(-1.0), torch.tensor(-2.0), "k3", "0-d inputs"),
                            (logq, logp, "k4", "kind is not k1, k2 or k3"), (logq, logp, "K1", "kind is case-sensitive")):
        check.expect_raises(ValueError, impl.kl_estimate, a, b, kind, unit="kl_estimate",
                            case=check.describe(logp_sample=a, logp_ref=b, kind=kind), why=why)


# ================================================================= token_reverse_kl

def _reverse_kl(impl, s, t):
    return guard.call_without("token_reverse_kl", O.KL_BUILTINS, impl.token_reverse_kl, s, t, hint=O.KL_HINT)


@pytest.mark.points(1)
def test_token_reverse_kl_by_hand_and_reference(impl):
    # student [0, 0] → π_s = (1/2, 1/2); teacher [log 3, 0] → π_t = (3/4, 1/4).
    s = torch.tensor([0.0, 0.0], dtype=torch.float64)
    t = torch.tensor([math.log(3.0), 0.0], dtype=torch.float64)
    reverse = 0.5 * math.log(0.5 / 0.75) + 0.5 * math.log(0.5 / 0.25)      # 0.143841
    forward = 0.75 * math.log(0.75 / 0.5) + 0.25 * math.log(0.25 / 0.5)    # 0.130812
    check.close(_reverse_kl(impl, s, t), torch.tensor(reverse, dtype=torch.float64), unit="token_reverse_kl",
                case=check.describe(student_logits=s, teacher_logits=t), kind="reduction",
                what="KL(π_s ‖ π_t) (by hand ½ log(2/3) + ½ log 2 = 0.1438)",
                mistakes={"forward KL(π_t ‖ π_s) where the reverse KL is stated": torch.tensor(forward,
                                                                                           dtype=torch.float64)})
    ref = reference.load(O.TOPIC, "reverse_kl")
    check.close(_reverse_kl(impl, ref["student"], ref["teacher"]), ref["out"], unit="token_reverse_kl",
                kind="reduction", case=check.describe(student_logits=ref["student"], teacher_logits=ref["teacher"]),
                what="reverse KL of the reference logits",
                mistakes={"forward KL(π_t ‖ π_s) where the reverse KL is stated": O.forward_kl(ref["student"],
                                                                                           ref["teacher"])})


@pytest.mark.points(2)
@examples(8)
@given(seed=seeds(), shape=st.sampled_from([(5,), (1, 3), (2, 4, 6), (3, 1, 2)]), scale=st.sampled_from([0.5, 3.0]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_token_reverse_kl_matches_kl_div_and_gradients(impl, seed, shape, scale, dtype):
    s, t = tensors.randn(shape, seed, dtype, scale), tensors.randn(shape, seed + 1, dtype, scale)
    case = check.describe(student_logits=s, teacher_logits=t)
    check.close(_reverse_kl(impl, s, t), O.reverse_kl(s, t), unit="token_reverse_kl", case=case, kind="reduction",
                what="reverse KL (against F.kl_div on log-softmax)",
                mistakes={"forward KL(π_t ‖ π_s) where the reverse KL is stated": O.forward_kl(s, t)})
    if s.dim() > 1:
        st_ = s.transpose(0, -1).contiguous().transpose(0, -1)
        check.close(_reverse_kl(impl, st_, t), O.reverse_kl(s, t), unit="token_reverse_kl", kind="reduction",
                    case=check.describe(student_logits=st_, contiguous=st_.is_contiguous()),
                    what="reverse KL of non-contiguous student logits")
    check.grads(impl.token_reverse_kl, O.reverse_kl, [s.double(), t.double()],
                names=["student_logits", "teacher_logits"], unit="token_reverse_kl", case=case,
                mistakes={"forward KL(π_t ‖ π_s) where the reverse KL is stated": O.forward_kl})


@pytest.mark.points(1)
def test_token_reverse_kl_properties_and_raises(impl):
    s, t = tensors.randn((4, 5), 30), tensors.randn((4, 5), 31)
    case = check.describe(student_logits=s, teacher_logits=t)
    check.close(_reverse_kl(impl, s, s), torch.zeros(4, dtype=torch.float64), unit="token_reverse_kl",
                case=check.describe(student_logits=s, teacher_logits=s), kind="reduction",
                what="KL of a distribution with itself (0)")
    shift = tensors.randn((4, 1), 32, scale=10.0)
    check.close(_reverse_kl(impl, s + shift, t - shift), O.reverse_kl(s, t), unit="token_reverse_kl",
                case=case + "; a constant added to each row of the logits", kind="reduction",
                what="reverse KL after shifting each row's logits (softmax ignores the shift)")
    big_s, big_t = s * 400, t * 400                                       # logits of size ~1000
    out = _reverse_kl(impl, big_s, big_t)
    check.that(isinstance(out, torch.Tensor) and bool(torch.isfinite(out).all()), "token_reverse_kl",
               "the output is not finite for logits of size ~1000", "use log_softmax, not log(softmax(...))",
               case=check.describe(student_logits=big_s, teacher_logits=big_t))
    # huge logits: both answers are sums of terms ~1e3, so compare at the loss tolerance scaled by 1e3
    check.close(out, O.reverse_kl(big_s, big_t), unit="token_reverse_kl", tol=Tolerance(1e-9, 1e-9),
                case=check.describe(student_logits=big_s, teacher_logits=big_t), what="reverse KL of huge logits")
    check.gradcheck(impl.token_reverse_kl, [s[:2], t[:2]], unit="token_reverse_kl", case=case)
    for a, b, why in ((s, t[:, :4], "shapes differ"), (s[0], t, "shapes differ"),
                      (torch.tensor(0.0), torch.tensor(1.0), "0-d inputs")):
        check.expect_raises(ValueError, impl.token_reverse_kl, a, b, unit="token_reverse_kl",
                            case=check.describe(student_logits=a, teacher_logits=b), why=why)


# ================================================================= generalized_jsd

def _jsd(impl, s, t, beta):
    return guard.call_without("generalized_jsd", O.KL_BUILTINS, impl.generalized_jsd, s, t, beta, hint=O.KL_HINT)


def _jsd_mistakes(s, t, beta):
    ps, pt = F.softmax(s, -1), F.softmax(t, -1)
    return {"mixture weights swapped: m = (1 − β)·π_t + β·π_s": lambda: O.jsd(s, t, beta, mixture_weights_swapped=True),
            "β and 1 − β swapped on the two KL terms": lambda: O.jsd(t, s, beta, mixture_weights_swapped=True),
            "the mixture of the logits, not of the probabilities": lambda: (
                beta * F.kl_div(F.log_softmax(beta * t + (1 - beta) * s, -1), pt, reduction="none").sum(-1)
                + (1 - beta) * F.kl_div(F.log_softmax(beta * t + (1 - beta) * s, -1), ps, reduction="none").sum(-1))}


@pytest.mark.points(1)
def test_jsd_by_hand_and_reference(impl):
    # π_s = (1/2, 1/2), π_t = (3/4, 1/4), β = ½: m = (5/8, 3/8).
    s = torch.tensor([0.0, 0.0], dtype=torch.float64)
    t = torch.tensor([math.log(3.0), 0.0], dtype=torch.float64)
    kl_t = 0.75 * math.log(0.75 / 0.625) + 0.25 * math.log(0.25 / 0.375)
    kl_s = 0.5 * math.log(0.5 / 0.625) + 0.5 * math.log(0.5 / 0.375)
    check.close(_jsd(impl, s, t, 0.5), torch.tensor(0.5 * kl_t + 0.5 * kl_s, dtype=torch.float64),
                unit="generalized_jsd", case=check.describe(student_logits=s, teacher_logits=t, beta=0.5),
                kind="reduction", what="JSD(½) (by hand ½·0.03537 + ½·0.03227 = 0.03382)",
                mistakes=_jsd_mistakes(s, t, 0.5))
    # β = 0.25: m = ¼·π_t + ¾·π_s = (9/16, 7/16)
    kl_t = 0.75 * math.log(0.75 / (9 / 16)) + 0.25 * math.log(0.25 / (7 / 16))
    kl_s = 0.5 * math.log(0.5 / (9 / 16)) + 0.5 * math.log(0.5 / (7 / 16))
    check.close(_jsd(impl, s, t, 0.25), torch.tensor(0.25 * kl_t + 0.75 * kl_s, dtype=torch.float64),
                unit="generalized_jsd", case=check.describe(student_logits=s, teacher_logits=t, beta=0.25),
                kind="reduction", what="JSD(¼) with m = (9/16, 7/16)", mistakes=_jsd_mistakes(s, t, 0.25))
    ref = reference.load(O.TOPIC, "jsd")
    for beta, expected in zip(ref["betas"].tolist(), ref["out"]):
        check.close(_jsd(impl, ref["student"], ref["teacher"], beta), expected, unit="generalized_jsd",
                    kind="reduction", what=f"JSD({beta}) of the reference logits",
                    case=check.describe(student_logits=ref["student"], teacher_logits=ref["teacher"], beta=beta))


@pytest.mark.points(2)
def test_jsd_endpoints_and_the_limits_that_define_them(impl):
    s, t = tensors.randn((3, 6), 40), tensors.randn((3, 6), 41)
    case = check.describe(student_logits=s, teacher_logits=t)
    fwd, rev = O.forward_kl(s, t), O.reverse_kl(s, t)
    endpoint_mistakes = {"the endpoints swapped (β = 0 gives the reverse KL)": rev,
                         "the unscaled JSD at the endpoints (0)": torch.zeros(3, dtype=torch.float64)}
    check.close(_jsd(impl, s, t, 0.0), fwd, unit="generalized_jsd", case=case + "; beta=0.0", kind="reduction",
                what="β = 0: the forward KL(π_t ‖ π_s)", mistakes=endpoint_mistakes)
    endpoint_mistakes["the endpoints swapped (β = 1 gives the forward KL)"] = fwd
    check.close(_jsd(impl, s, t, 1.0), rev, unit="generalized_jsd", case=case + "; beta=1.0", kind="reduction",
                what="β = 1: the reverse KL(π_s ‖ π_t)", mistakes=endpoint_mistakes)
    # the limits: JSD(β)/β → forward KL and JSD(β)/(1 − β) → reverse KL; the remainder is O(β),
    # so at β = 1e-7 a relative 1e-4 holds with a wide margin (and float64 keeps ~9 digits)
    eps = 1e-7
    limit_tol = Tolerance(1e-4, 1e-9)
    check.close(_jsd(impl, s, t, eps) / eps, fwd, unit="generalized_jsd", case=case + f"; beta={eps}",
                tol=limit_tol, what="JSD(β)/β near β = 0 (must approach the forward KL)",
                mistakes={"mixture weights swapped: m = (1 − β)·π_t + β·π_s": O.jsd(s, t, eps, True) / eps})
    check.close(_jsd(impl, s, t, 1 - eps) / eps, rev, unit="generalized_jsd", case=case + f"; beta={1 - eps}",
                tol=limit_tol, what="JSD(β)/(1 − β) near β = 1 (must approach the reverse KL)")
    check.that(isinstance(_jsd(impl, s.float(), t.float(), 0.0), torch.Tensor)
               and _jsd(impl, s.float(), t.float(), 1.0).dtype == torch.float32, "generalized_jsd",
               "the endpoints must keep the inputs' dtype (float32 in, float32 out)", case=case)


@pytest.mark.points(2)
@examples(8)
@given(seed=seeds(), shape=st.sampled_from([(4,), (2, 5), (2, 3, 4)]), beta=st.sampled_from([0.05, 0.3, 0.5, 0.8, 0.99]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_jsd_matches_probability_oracle_and_gradients(impl, seed, shape, beta, dtype):
    s, t = tensors.randn(shape, seed, dtype, 2.0), tensors.randn(shape, seed + 1, dtype, 2.0)
    case = check.describe(student_logits=s, teacher_logits=t, beta=beta)
    check.close(_jsd(impl, s, t, beta), O.jsd(s, t, beta), unit="generalized_jsd", case=case, kind="reduction",
                what="JSD(β) (against the mixture formed from probabilities)", mistakes=_jsd_mistakes(s, t, beta))
    check.grads(lambda a, b: impl.generalized_jsd(a, b, beta), lambda a, b: O.jsd(a, b, beta),
                [s.double(), t.double()], names=["student_logits", "teacher_logits"], unit="generalized_jsd", case=case)


@pytest.mark.points(1)
def test_jsd_symmetry_bounds_and_raises(impl):
    s, t = tensors.randn((5, 4), 50, scale=2.0), tensors.randn((5, 4), 51, scale=2.0)
    for beta in (0.0, 0.2, 0.5, 0.7, 1.0):
        case = check.describe(student_logits=s, teacher_logits=t, beta=beta)
        check.close(_jsd(impl, t, s, 1 - beta), _jsd(impl, s, t, beta), unit="generalized_jsd", kind="reduction",
                    case=case, what=f"JSD_{1 - beta:g}(π_t, π_s) must equal JSD_{beta:g}(π_s, π_t) (roles swapped)")
    for beta in (0.2, 0.5, 0.7):
        out = _jsd(impl, s, t, beta)
        h = O.binary_entropy(beta)
        check.that(bool((out >= -1e-12).all() and (out <= h + 1e-12).all()), "generalized_jsd",
                   f"JSD({beta}) must lie in [0, H(β) = {h:.4f}]", f"got {out.tolist()}",
                   case=check.describe(student_logits=s, teacher_logits=t, beta=beta))
        far = torch.tensor([[30.0, -30.0, -30.0], [-30.0, -30.0, 30.0]], dtype=torch.float64)
        near_disjoint = _jsd(impl, far, far.flip(-1), beta)
        check.close(near_disjoint, torch.full((2,), h, dtype=torch.float64), unit="generalized_jsd",
                    tol=Tolerance(1e-9, 1e-9), case=check.describe(student_logits=far, beta=beta),
                    what="JSD(β) of two distributions with (almost) disjoint supports (H(β))")
        check.close(_jsd(impl, s, s, beta), torch.zeros(5, dtype=torch.float64), unit="generalized_jsd",
                    kind="reduction", case=check.describe(student_logits=s, teacher_logits=s, beta=beta),
                    what="JSD(β) of a distribution with itself (0)")
    check.gradcheck(lambda a, b: impl.generalized_jsd(a, b, 0.3), [s[:2], t[:2]], unit="generalized_jsd",
                    case=check.describe(beta=0.3))
    for a, b, beta, why in ((s, t, -0.1, "beta < 0"), (s, t, 1.5, "beta > 1"), (s, t[:, :3], 0.5, "shapes differ"),
                            (torch.tensor(0.0), torch.tensor(0.0), 0.5, "0-d inputs")):
        check.expect_raises(ValueError, impl.generalized_jsd, a, b, beta, unit="generalized_jsd",
                            case=check.describe(student_logits=a, teacher_logits=b, beta=beta), why=why)
