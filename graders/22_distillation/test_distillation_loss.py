"""Graders for 22_distillation: Hinton's loss and the sparse (top-k) teacher.

kd_loss: a hand value with every syllabus mistake named (KL direction, T², softening only one
side) and the other catalogued ones (alpha exchanged, F.kl_div's 'mean', CE on softened
logits, ignored positions counted); golden value and gradient; an oracle built from
`F.cross_entropy` and `F.kl_div(reduction='batchmean')` on hypothesis inputs, values and
gradients; alpha = 0 is CE, equal logits give 0; ignored positions; the teacher detached; the
T² factor keeps the gradient's scale across temperatures (and its limit as T → ∞); Raises.
topk_teacher_probs: hand values (not renormalised named), golden data, a full-sort oracle on
hypothesis inputs with gradients, k = V is soft_targets, Raises.
sparse_kd_loss: a hand value (T² missing, student renormalised over the kept k named), golden
value and gradient, a dense scattered oracle with gradients, k = V equals the soft term of
kd_loss, zero-probability entries, the teacher detached, Raises.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import distill_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds
from llmlab.testing.tolerances import Tolerance


def _named(mistakes, *args):
    """{name: a thunk giving the wrong value on args} for check.close's `mistakes`."""
    return {name: (lambda fn=fn: fn(*args)) for name, fn in mistakes.items()}


def _targets(shape, seed, V, p_ignore=0.3):
    """Random labels with about p_ignore of them −100 and the first position always kept."""
    y = tensors.randint(shape, seed, V)
    drop = tensors.rand(shape, seed + 1) < p_ignore
    drop.view(-1)[0] = False
    return torch.where(drop, torch.full_like(y, -100), y)


# ---------------------------------------------------------------- kd_loss

@pytest.mark.points(2)
def test_kd_loss_by_hand(impl):
    # position 0: student logits [2 ln 2, 0], teacher [2 ln 3, 0], label 1, T = 2, alpha = 0.25
    #   hard: softmax(student) = [4/5, 1/5], CE = ln 5
    #   soft: q_T = softmax([ln 2, 0]) = [2/3, 1/3], p_T = softmax([ln 3, 0]) = [3/4, 1/4],
    #         KL(p_T ‖ q_T) = 0.75 ln(9/8) + 0.25 ln(3/4)
    #   loss = 0.75 · ln 5 + 0.25 · 4 · KL
    # position 1 has label −100 and logits that would change the loss if it were counted.
    s = torch.tensor([[[2 * math.log(2), 0.0], [5.0, -3.0]]], dtype=torch.float64)
    t = torch.tensor([[[2 * math.log(3), 0.0], [-4.0, 6.0]]], dtype=torch.float64)
    y = torch.tensor([[1, -100]])
    kl = 0.75 * math.log(9 / 8) + 0.25 * math.log(3 / 4)
    expected = torch.tensor(0.75 * math.log(5) + 0.25 * 4 * kl, dtype=torch.float64)
    case = check.describe(student_logits=s, teacher_logits=t, targets=y, T=2.0, alpha=0.25)
    check.close(impl.kd_loss(s, t, y, 2.0, 0.25), expected, unit="kd_loss", case=case, kind="loss",
                what="(1 − α) CE + α T² KL(p_T ‖ q_T) (by hand 0.75 ln 5 + KL = 1.223495)",
                mistakes=_named(O.kd_mistakes(2.0, 0.25), s, t, y))


@pytest.mark.points(1)
def test_kd_loss_reference_value_and_gradient(impl):
    ref = reference.load(O.TOPIC, "kd")
    T, alpha = float(ref["T"][0]), float(ref["alpha"][0])
    leaf = ref["student"].clone().requires_grad_(True)
    case = check.describe(student_logits=ref["student"], teacher_logits=ref["teacher"], targets=ref["targets"],
                          T=T, alpha=alpha)
    loss = impl.kd_loss(leaf, ref["teacher"], ref["targets"], T, alpha)
    check.close(loss, ref["loss"][0], unit="kd_loss", case=case, kind="loss", what="the reference loss",
                mistakes=_named(O.kd_mistakes(T, alpha), ref["student"], ref["teacher"], ref["targets"]))
    loss.backward()
    check.close(leaf.grad, ref["grad"], unit="kd_loss", case=case, kind="gradient",
                what="the gradient w.r.t. student_logits")


@pytest.mark.points(3)
@examples(10)
@given(seed=seeds(), shape=st.sampled_from([(1, 4), (6, 5), (2, 4, 7), (3, 1, 3)]),
       T=st.sampled_from([0.5, 1.0, 2.0, 5]), alpha=st.sampled_from([0.0, 0.3, 0.9, 1]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_kd_loss_matches_oracle_and_gradients(impl, seed, shape, T, alpha, dtype):
    s, t = tensors.randn(shape, seed, dtype, 2.0), tensors.randn(shape, seed + 1, dtype, 2.0)
    y = _targets(shape[:-1], seed + 2, shape[-1])
    case = check.describe(student_logits=s, teacher_logits=t, targets=y, T=T, alpha=alpha)
    out = impl.kd_loss(s, t, y, T, alpha)
    check.close(out, O.kd_oracle(s, t, y, T, alpha), unit="kd_loss", case=case, kind="loss",
                what="the loss (compared with F.cross_entropy and F.kl_div(reduction='batchmean'))",
                mistakes=_named(O.kd_mistakes(T, alpha), s, t, y))
    check.grads(lambda a, b: impl.kd_loss(a, b, y, T, alpha), lambda a, b: O.kd_oracle(a, b, y, T, alpha),
                [s.double(), t.double()], names=["student_logits", "teacher_logits"], unit="kd_loss", case=case,
                mistakes={k: (lambda a, b, fn=fn: fn(a, b, y)) for k, fn in O.kd_mistakes(T, alpha).items()})


@pytest.mark.points(1)
def test_kd_loss_alpha_zero_is_ce_and_equal_logits_give_zero(impl):
    s, t = tensors.randn((2, 6, 5), 31, torch.float64, 2.0), tensors.randn((2, 6, 5), 32, torch.float64, 2.0)
    y = _targets((2, 6), 33, 5)
    for T in (0.5, 4.0):
        case = check.describe(student_logits=s, teacher_logits=t, targets=y, T=T, alpha=0.0)
        check.close(impl.kd_loss(s, t, y, T, 0.0), F.cross_entropy(s.reshape(-1, 5), y.reshape(-1)),
                    unit="kd_loss", case=case, kind="loss",
                    what="alpha = 0 gives the ordinary cross-entropy of the student at temperature 1",
                    mistakes={"the hard-label CE computed on the softened logits student_logits / T":
                              F.cross_entropy(s.reshape(-1, 5) / T, y.reshape(-1)),
                              "alpha and 1 − alpha exchanged": O.kd_oracle(s, t, y, T, 1.0)})
    leaf = t.clone().requires_grad_(True)
    loss = impl.kd_loss(leaf, t, y, 3.0, 1.0)
    case = check.describe(student_logits=t, teacher_logits=t, targets=y, T=3.0, alpha=1.0)
    check.close(loss, torch.tensor(0.0, dtype=torch.float64), unit="kd_loss", case=case, kind="loss",
                what="alpha = 1 with the student's logits equal to the teacher's (must be 0)")
    loss.backward()
    check.close(leaf.grad, torch.zeros_like(t), unit="kd_loss", case=case, kind="gradient",
                what="the gradient at student = teacher (a minimum: must be 0)")


@pytest.mark.points(1)
def test_kd_loss_ignored_positions_and_detached_teacher(impl):
    s, t = tensors.randn((3, 4, 6), 41, torch.float64, 2.0), tensors.randn((3, 4, 6), 42, torch.float64, 2.0)
    y = _targets((3, 4), 43, 6, p_ignore=0.5)
    keep = y != -100
    case = check.describe(student_logits=s, teacher_logits=t, targets=y, T=2.0, alpha=0.6)
    base = impl.kd_loss(s, t, y, 2.0, 0.6)
    compact = impl.kd_loss(s[keep], t[keep], y[keep], 2.0, 0.6)
    check.close(base, compact, unit="kd_loss", case=case, kind="loss",
                what="the loss of a batch equals the loss of its kept positions alone (targets −100 count in "
                     "neither term; the means are over the M kept positions)",
                mistakes={"positions with target −100 counted in the KL term":
                          O.kd_mistakes(2.0, 0.6)["positions with target −100 counted in the KL term"](s, t, y)})
    noise = tensors.randn(s.shape, 44, torch.float64, 5.0) * (~keep)[..., None]
    check.close(impl.kd_loss(s + noise, t - noise, y, 2.0, 0.6), base, unit="kd_loss", case=case, kind="loss",
                what="the loss after changing both logits at the ignored positions only (must not change)")
    s_leaf, t_leaf = s.clone().requires_grad_(True), t.clone().requires_grad_(True)
    impl.kd_loss(s_leaf, t_leaf, y, 2.0, 0.6).backward()
    check.that(s_leaf.grad is not None and bool((s_leaf.grad[~keep] == 0).all()), "kd_loss",
               "the gradient w.r.t. student_logits must be exactly 0 at positions whose target is −100", case=case)
    check.that(t_leaf.grad is None or bool((t_leaf.grad == 0).all()), "kd_loss",
               "a gradient reached teacher_logits: the teacher is a constant (detach it)",
               "otherwise a teacher that requires grad would be trained towards the student", case=case)


@pytest.mark.points(2)
def test_kd_loss_temperature_keeps_gradient_scale(impl):
    # Hinton et al.: the gradient of KL(p_T ‖ q_T) w.r.t. the student's logits is (q_T − p_T)/T,
    # which shrinks like 1/T² at large T; times T² it tends to (d − mean(d)) / V per position
    # (d = student − teacher logits), divided by the M positions of the mean. So with the T²
    # factor the gradient's size stays about constant across temperatures.
    M, V = 6, 10
    s, t = tensors.randn((M, V), 51, torch.float64), tensors.randn((M, V), 52, torch.float64)
    y = tensors.randint((M,), 53, V)
    case = check.describe(student_logits=s, teacher_logits=t, targets=y, alpha=1.0)

    def grad_at(T):
        leaf = s.clone().requires_grad_(True)
        impl.kd_loss(leaf, t, y, T, 1.0).backward()
        return leaf.grad

    d = s - t
    limit = (d - d.mean(-1, keepdim=True)) / (V * M)                            # (M, V)
    T_big = 200.0
    # the limit holds up to O(|d| / T): about 1 % at T = 200 for these logits of size ~1; 5 % allowed
    check.close(grad_at(T_big), limit, unit="kd_loss", case=case + f"; T={T_big}", tol=Tolerance(0.05, 1e-5),
                what="the gradient at a large T (T² · (q_T − p_T)/T / M tends to (d − mean d) / (V·M))",
                mistakes={"the T² factor missing": limit / T_big ** 2})
    temps = (1.0, 2.0, 4.0, 8.0, 16.0)
    norms = [float(grad_at(T).norm()) for T in temps]
    ratio = max(norms) / min(norms)
    # without T² the norms would fall by a factor of about T² = 256 between T = 1 and 16
    check.that(ratio < 3.0, "kd_loss",
               "the gradient's size should stay about constant across temperatures (the T² factor)",
               f"gradient norms at T = {temps}: {[f'{n:.3g}' for n in norms]} (largest / smallest = {ratio:.1f})",
               case=case)


@pytest.mark.points(1)
def test_kd_loss_raises(impl):
    s, t = tensors.randn((2, 3, 4), 61), tensors.randn((2, 3, 4), 62)
    y = tensors.randint((2, 3), 63, 4)
    bad = ((s, t[..., :3], y, 1.0, 0.5, "the logits' shapes differ"),
           (s[0, 0], t[0, 0], y[0, 0], 1.0, 0.5, "1-D logits: no position axis"),
           (s, t, y[:, :2], 1.0, 0.5, "targets not logits.shape[:-1]"),
           (s, t, y.reshape(-1), 1.0, 0.5, "targets not logits.shape[:-1]"),
           (s, t, y, 0.0, 0.5, "T = 0"), (s, t, y, -1.0, 0.5, "T < 0"),
           (s, t, y, 1.0, -0.1, "alpha < 0"), (s, t, y, 1.0, 1.5, "alpha > 1"),
           (s, t, torch.full_like(y, -100), 1.0, 0.5, "every target is −100"))
    for a, b, targets, T, alpha, why in bad:
        check.expect_raises(ValueError, impl.kd_loss, a, b, targets, T, alpha, unit="kd_loss",
                            case=check.describe(student_logits=a, teacher_logits=b, targets=targets, T=T,
                                                alpha=alpha), why=why)


# ---------------------------------------------------------------- topk_teacher_probs

@pytest.mark.points(1)
def test_topk_by_hand_and_reference(impl):
    logits = torch.tensor([1.0, 3.0, 2.0, 0.0], dtype=torch.float64)
    e = math.e
    for k, T, idx, probs in ((2, 1.0, [1, 2], [e / (1 + e), 1 / (1 + e)]),
                             (3, 2.0, [1, 2, 0], [e ** 1.5, e ** 1.0, e ** 0.5])):
        probs = torch.tensor(probs, dtype=torch.float64)
        probs = probs / probs.sum()
        case = check.describe(teacher_logits=logits, k=k, T=T)
        got_p, got_i = impl.topk_teacher_probs(logits, k, T)
        check.equal(got_i.tolist(), idx, unit="topk_teacher_probs", case=case,
                    what="indices of the k largest logits, in descending order",
                    mistakes={"the k smallest logits kept": torch.argsort(logits)[:k].tolist()})
        check.close(got_p, probs, unit="topk_teacher_probs", case=case, kind="reduction",
                    what="softmax of the kept logits / T over the k kept entries",
                    mistakes={"the top-k probabilities not renormalised (the full softmax at the kept classes)":
                              torch.softmax(logits / T, -1)[idx],
                              "T ignored": torch.softmax(logits[idx], -1)})
    ref = reference.load(O.TOPIC, "topk")
    got_p, got_i = impl.topk_teacher_probs(ref["teacher"], 3, 2.0)
    case = check.describe(teacher_logits=ref["teacher"], k=3, T=2.0)
    check.equal(got_i, ref["indices"], unit="topk_teacher_probs", case=case, what="the reference indices")
    check.close(got_p, ref["probs"], unit="topk_teacher_probs", case=case, kind="reduction",
                what="the reference probabilities")


@pytest.mark.points(2)
@examples(10)
@given(seed=seeds(), shape=st.sampled_from([(6,), (1, 2), (4, 7), (2, 3, 9)]), k_frac=st.floats(0.0, 1.0),
       T=st.sampled_from([0.5, 1.0, 3.0]), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_topk_matches_sort_oracle_and_gradients(impl, seed, shape, k_frac, T, dtype):
    V = shape[-1]
    k = 1 + min(V - 1, int(k_frac * V))
    logits = tensors.randn(shape, seed, dtype, 2.0)
    case = check.describe(teacher_logits=logits, k=k, T=T)
    probs, idx = impl.topk_teacher_probs(logits, k, T)
    want_p, want_i = O.topk_oracle(logits, k, T)
    check.equal(idx, want_i, unit="topk_teacher_probs", case=case, what="indices (compared with a full sort)")
    check.close(probs, want_p, unit="topk_teacher_probs", case=case, kind="reduction",
                what="probabilities (compared with exp / sum over the kept k)",
                mistakes={"the top-k probabilities not renormalised (the full softmax at the kept classes)":
                          torch.softmax(logits / T, -1).gather(-1, want_i)})
    full_p, _ = impl.topk_teacher_probs(logits, V, T)
    order = O.topk_oracle(logits, V, T)[1]
    check.close(full_p, torch.softmax(logits / T, -1).gather(-1, order),
                unit="topk_teacher_probs", case=check.describe(teacher_logits=logits, k=V, T=T), kind="reduction",
                what="with k = V: the whole softened distribution, sorted")
    check.grads(lambda x: impl.topk_teacher_probs(x, k, T)[0], lambda x: O.topk_oracle(x, k, T)[0],
                [logits.double()], names=["teacher_logits"], unit="topk_teacher_probs", case=case)


@pytest.mark.points(1)
def test_topk_raises(impl):
    logits = tensors.randn((2, 5), 71)
    for x, k, T, why in ((logits, 0, 1.0, "k = 0"), (logits, 6, 1.0, "k > V"), (logits, 2, 0.0, "T = 0"),
                         (logits, 2, -3.0, "T < 0"), (torch.tensor(1.0), 1, 1.0, "0-d logits")):
        check.expect_raises(ValueError, impl.topk_teacher_probs, x, k, T, unit="topk_teacher_probs",
                            case=check.describe(teacher_logits=x, k=k, T=T), why=why)


# ---------------------------------------------------------------- sparse_kd_loss

@pytest.mark.points(1)
def test_sparse_kd_by_hand_and_reference(impl):
    # student uniform over V = 3 (q_T = 1/3 at every T); teacher 0.75 on class 2, 0.25 on class 0; T = 2:
    # loss = 4 · (0.75 ln(0.75 · 3) + 0.25 ln(0.25 · 3))
    s = torch.zeros(1, 3, dtype=torch.float64)
    p, idx = torch.tensor([[0.75, 0.25]], dtype=torch.float64), torch.tensor([[2, 0]])
    kl = 0.75 * math.log(2.25) + 0.25 * math.log(0.75)
    renorm = 0.75 * math.log(1.5) + 0.25 * math.log(0.5)                  # student renormalised over the kept 2
    case = check.describe(student_logits=s, teacher_probs=p, teacher_indices=idx, T=2.0)
    check.close(impl.sparse_kd_loss(s, p, idx, 2.0), torch.tensor(4 * kl, dtype=torch.float64),
                unit="sparse_kd_loss", case=case, kind="loss", what="T² · Σ_j p_j log(p_j / q_T[idx_j]) (by hand)",
                mistakes={"the T² factor missing": torch.tensor(kl, dtype=torch.float64),
                          "the student's probabilities renormalised over the kept k classes (not over all V)":
                              torch.tensor(4 * renorm, dtype=torch.float64)})
    # a non-uniform student: the student must be softened by T
    s2 = torch.tensor([[1.0, -2.0, 3.0]], dtype=torch.float64)
    check.close(impl.sparse_kd_loss(s2, p, idx, 2.0), O.sparse_oracle(s2, p, idx, 2.0), unit="sparse_kd_loss",
                case=check.describe(student_logits=s2, teacher_probs=p, teacher_indices=idx, T=2.0), kind="loss",
                mistakes={"the student not softened by T": O.sparse_oracle(s2 * 2.0, p, idx, 2.0)})
    ref = reference.load(O.TOPIC, "sparse")
    leaf = ref["student"].clone().requires_grad_(True)
    loss = impl.sparse_kd_loss(leaf, ref["probs"], ref["indices"], 2.0)
    rc = check.describe(student_logits=ref["student"], teacher_probs=ref["probs"], T=2.0)
    check.close(loss, ref["loss"][0], unit="sparse_kd_loss", case=rc, kind="loss", what="the reference loss")
    loss.backward()
    check.close(leaf.grad, ref["grad"], unit="sparse_kd_loss", case=rc, kind="gradient",
                what="the reference gradient w.r.t. student_logits")


@pytest.mark.points(2)
@examples(10)
@given(seed=seeds(), shape=st.sampled_from([(5,), (1, 4), (4, 6), (2, 3, 8)]), k_frac=st.floats(0.0, 1.0),
       T=st.sampled_from([0.5, 1.0, 2.0, 4]), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_sparse_kd_matches_dense_oracle_and_gradients(impl, seed, shape, k_frac, T, dtype):
    V = shape[-1]
    k = 1 + min(V - 1, int(k_frac * V))
    s, t = tensors.randn(shape, seed, dtype, 2.0), tensors.randn(shape, seed + 1, dtype, 2.0)
    p, idx = O.topk_oracle(t, k, T)
    case = check.describe(student_logits=s, teacher_probs=p, teacher_indices=idx, T=T)
    check.close(impl.sparse_kd_loss(s, p, idx, T), O.sparse_oracle(s, p, idx, T), unit="sparse_kd_loss",
                case=case, kind="loss", what="the loss (compared with the teacher scattered into all V classes)")
    check.grads(lambda a, b: impl.sparse_kd_loss(a, b, idx, T), lambda a, b: O.sparse_oracle(a, b, idx, T),
                [s.double(), p.double()], names=["student_logits", "teacher_probs"], unit="sparse_kd_loss", case=case)
    p_full, idx_full = O.topk_oracle(t, V, T)
    check.close(impl.sparse_kd_loss(s, p_full, idx_full, T), T * T * O.kl_div_forward(s, t, T).mean(),
                unit="sparse_kd_loss", case=check.describe(student_logits=s, teacher_logits=t, k=V, T=T), kind="loss",
                what="with k = V: T² · mean KL(p_T ‖ q_T), the soft term of kd_loss")


@pytest.mark.points(1)
def test_sparse_kd_zero_probabilities_detached_and_raises(impl):
    s = tensors.randn((3, 5), 81, torch.float64, 2.0)
    p = torch.tensor([[1.0, 0.0], [0.5, 0.5], [0.0, 1.0]], dtype=torch.float64)
    idx = torch.tensor([[4, 0], [1, 3], [2, 0]])
    case = check.describe(student_logits=s, teacher_probs=p, teacher_indices=idx, T=1.5)
    p_leaf, s_leaf = p.clone().requires_grad_(True), s.clone().requires_grad_(True)
    out = impl.sparse_kd_loss(s_leaf, p_leaf, idx, 1.5)
    check.that(bool(torch.isfinite(out)), "sparse_kd_loss", "the loss is not finite when a kept probability is 0",
               "an entry with p_j = 0 contributes 0 (0 · log 0 = 0: use torch.xlogy)", case=case)
    check.close(out, O.sparse_oracle(s, p, idx, 1.5), unit="sparse_kd_loss", case=case, kind="loss",
                what="the loss with zero probabilities among the kept entries")
    out.backward()
    check.that(bool(torch.isfinite(s_leaf.grad).all()), "sparse_kd_loss", "the gradient is not finite", case=case)
    check.that(p_leaf.grad is None or bool((p_leaf.grad == 0).all()), "sparse_kd_loss",
               "a gradient reached teacher_probs: the teacher is a constant (detach it)", case=case)
    # more positions than classes (8 > V = 3) with k = 2 ≤ V: a valid call
    s_long = tensors.randn((8, 3), 82, torch.float64)
    p_long, idx_long = O.topk_oracle(tensors.randn((8, 3), 83, torch.float64), 2, 1.5)
    check.close(impl.sparse_kd_loss(s_long, p_long, idx_long, 1.5), O.sparse_oracle(s_long, p_long, idx_long, 1.5),
                unit="sparse_kd_loss", kind="loss", what="the loss for 8 positions over V = 3 classes with k = 2",
                case=check.describe(student_logits=s_long, teacher_probs=p_long, teacher_indices=idx_long, T=1.5))
    bad = ((s, p, idx[:, :1], 1.0, "teacher_probs and teacher_indices differ in shape"),
           (s, p[:2], idx[:2], 1.0, "the leading shape is not student_logits.shape[:-1]"),
           (s[:, :1], p, idx.clamp(max=0), 1.0, "k = 2 > V = 1"),
           (s[:1, :1], p[:1], idx[:1].clamp(max=0), 1.0, "k = 2 > V = 1 (one position)"),
           (s, p, idx, 0.0, "T = 0"), (s, p, idx, -1.0, "T < 0"))
    for a, b, c, T, why in bad:
        check.expect_raises(ValueError, impl.sparse_kd_loss, a, b, c, T, unit="sparse_kd_loss",
                            case=check.describe(student_logits=a, teacher_probs=b, teacher_indices=c, T=T), why=why)
