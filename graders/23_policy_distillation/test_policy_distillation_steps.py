"""Graders for 23_policy_distillation: response log-probs, the on-policy step and the GKD step.

response_logprobs: hand values on a bigram table, one call, a prefix oracle on a random
TinyLlama with gradients into the parameters, Raises.
on_policy_distill_step: the responses are sampled from the STUDENT with the documented
draws (the teacher is only scored, under no_grad); the gradient equals the analytic
gradient (1/N) Σ d_i (onehot(x_i) − π) of a tiny categorical policy exactly, and an
autograd oracle on a bigram policy; its expectation is ∇ KL(π_student ‖ π_teacher)
(Hoeffding bound, stated false-failure rate); the return value; golden data; repeated
steps lower the reverse KL; the optimizer protocol; Raises.
gkd_step: the mixing rule (λ = 0, λ = 1, the documented uniform, the on-policy share by a
binomial test), the loss and gradients against a JSD oracle on shifted logits in both
branches and at β = 0, ½, 1; golden data; Raises.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
import torch.nn.functional as F

import policy_distillation_oracle as O
from llmlab.testing import check, reference, stats, tensors

# bigram logits (V = 4) of a student and a teacher
STUDENT4 = torch.tensor([[0.5, -0.2, 0.1, 0.0], [0.0, 0.3, -0.4, 0.2],
                         [-0.3, 0.2, 0.4, -0.1], [0.1, 0.0, -0.2, 0.6]], dtype=torch.float64)
TEACHER4 = torch.tensor([[-1.0, 2.0, 0.0, 0.5], [0.2, -0.5, 1.5, 0.0],
                         [0.0, 0.3, -1.0, 2.0], [1.8, 0.0, 0.2, -0.7]], dtype=torch.float64)


def _params_grads(model):
    return [p.grad for p in model.parameters()]


# ================================================================= response_logprobs

@pytest.mark.points(1)
def test_response_logprobs_by_hand(impl):
    # rows of the table (bigram logits) → probabilities: row 0 (1/4, 1/2, 1/4), row 1 (1/3, 1/3, 1/3),
    # row 2 (3/5, 1/5, 1/5)
    table = torch.tensor([[0.0, math.log(2.0), 0.0], [0.0, 0.0, 0.0], [math.log(3.0), 0.0, 0.0]],
                         dtype=torch.float64)
    ids = torch.tensor([[0, 1, 2], [2, 0, 0]])
    t = lambda *rows: torch.log(torch.tensor(rows, dtype=torch.float64))
    cases = ((1, t([1 / 2, 1 / 3], [3 / 5, 1 / 4]), t([1 / 3, 1 / 5], [1 / 4, 1 / 4])),
             (2, t([1 / 3], [1 / 4]), t([1 / 5], [1 / 4])))
    for P, expected, unshifted in cases:
        model = O.TableLM(table)
        out = impl.response_logprobs(model, ids, P)
        case = check.describe(ids=ids, prompt_len=P, table="rows (1/4, 1/2, 1/4), (1/3, 1/3, 1/3), (3/5, 1/5, 1/5)")
        check.close(out, expected, unit="response_logprobs", case=case, kind="reduction",
                    what="log-probabilities of the response tokens",
                    mistakes={"logits not shifted: position P + t used to score token P + t": unshifted,
                              "probabilities instead of log-probabilities": expected.exp()})
        check.equal(len(model.calls), 1, unit="response_logprobs", case=case, what="number of model calls")
        check.that(out.requires_grad, "response_logprobs", "the output must carry gradient to the model's "
                   "parameters (no torch.no_grad, no detach)", case=case)


@pytest.mark.points(2)
def test_response_logprobs_match_prefix_oracle_and_gradients(impl):
    for P, seed in ((1, 1), (3, 2), (7, 3)):
        model = O.tiny_llama(10 + seed)
        twin = copy.deepcopy(model)
        ids = tensors.randint((3, 8), seed, high=O.CONFIG["vocab_size"])
        ids_nc = ids.t().contiguous().t()                               # non-contiguous, same values
        case = check.describe(ids=ids_nc, contiguous=ids_nc.is_contiguous(), prompt_len=P, model="random TinyLlama")
        out = impl.response_logprobs(model, ids_nc, P)
        want = O.prefix_logprobs(twin, ids, P)
        check.close(out, want, unit="response_logprobs", case=case, kind="model",
                    what="log-probabilities (against one model call per prefix)")
        weights = tensors.randn(want.shape, seed + 100)
        (out * weights).sum().backward()
        (want * weights).sum().backward()
        for (name, p), q in zip(model.named_parameters(), twin.parameters()):
            if p.grad is None:
                check.fail("response_logprobs", f"no gradient reaches the parameter {name}", case=case)
            check.close(p.grad, q.grad, unit="response_logprobs", case=case, kind="gradient",
                        what=f"gradient w.r.t. the parameter {name}")
    out32 = impl.response_logprobs(O.tiny_llama(5, torch.float32), ids, 2)
    check.that(out32.dtype == torch.float32 and out32.shape == (3, 6), "response_logprobs",
               f"expected float32 (B, R) = (3, 6) for a float32 model, got {out32.dtype} {tuple(out32.shape)}")


@pytest.mark.points(1)
def test_response_logprobs_raises(impl):
    model = O.TableLM(STUDENT4)
    ids = torch.tensor([[0, 1, 2, 3], [3, 2, 1, 0]])
    for x, P, why in ((ids, 0, "prompt_len < 1"), (ids, 4, "prompt_len = T leaves no response"),
                      (ids, 6, "prompt_len > T"), (ids[0], 1, "ids must be 2-D"), (ids[None], 1, "ids must be 2-D")):
        check.expect_raises(ValueError, impl.response_logprobs, model, x, P, unit="response_logprobs",
                            case=check.describe(ids=x, prompt_len=P), why=why)


# ================================================================= on_policy_distill_step

def _step(impl, student, teacher, prompts, R, seed, lr=0.0):
    opt = O.RecordingOptimizer(student.parameters(), lr=lr)
    out = impl.on_policy_distill_step(student, teacher, prompts, opt, R, tensors.generator(seed))
    return out, opt


@pytest.mark.points(2)
def test_on_policy_step_samples_from_the_student(impl):
    prompts = torch.tensor([[0, 2], [1, 1], [3, 0]])
    saved = prompts.clone()
    student, teacher = O.TableLM(STUDENT4), O.TableLM(TEACHER4)
    (ids, kl), opt = _step(impl, student, teacher, prompts, 4, seed=7)
    case = check.describe(prompts=saved, response_len=4, seed=7, models="bigram tables")
    expected = O.sample_like_the_step(O.TableLM(STUDENT4), saved, 4, tensors.generator(7))
    off_policy = O.sample_like_the_step(O.TableLM(TEACHER4), saved, 4, tensors.generator(7))
    check.close(ids, expected, unit="on_policy_distill_step", case=case, kind="exact",
                what="the sampled ids (sample_responses of the STUDENT with the generator, before anything else)",
                mistakes={"sampled from the teacher (off-policy) where on-policy sampling is asked": off_policy})
    check.that(torch.equal(prompts, saved), "on_policy_distill_step", "prompts were modified in place", case=case)
    scored = [grad for x, grad in teacher.calls if x.shape == ids.shape and torch.equal(x, ids)]
    check.that(len(scored) >= 1, "on_policy_distill_step", "the teacher was never called on the sampled ids",
               "step 2 scores the student's responses with the teacher", case=case)
    check.that(not any(grad for _, grad in teacher.calls), "on_policy_distill_step",
               "the teacher was called with autograd on: score it under torch.no_grad", case=case)
    check.that(any(grad and torch.equal(x, ids) for x, grad in student.calls if x.shape == ids.shape),
               "on_policy_distill_step", "the student was never called WITH gradient on the sampled ids "
               "(step 3: logp_student needs the gradient)", case=case)
    check.that(isinstance(kl, float) and ids.dtype == torch.int64 and ids.shape == (3, 6), "on_policy_distill_step",
               f"should return (ids int64 (3, 6), a Python float), got {ids.dtype} {tuple(ids.shape)} and "
               f"{type(kl).__name__}", case=case)


@pytest.mark.points(3)
def test_on_policy_step_gradient_equals_the_analytic_gradient(impl):
    # A context-free (unigram) student π = softmax θ and teacher τ: for the sampled tokens x_i
    # (N = B·R of them) the loss −mean A_i log π(x_i) with A_i = −d_i detached has the gradient
    # (1/N) Σ_i d_i (onehot(x_i) − π), d_i = log π(x_i) − log τ(x_i).
    theta = torch.tensor([0.4, -0.3, 0.9, 0.0, -0.8], dtype=torch.float64)
    tau_logits = torch.tensor([1.2, 0.3, -0.5, 0.8, -1.0], dtype=torch.float64)
    log_tau = torch.log_softmax(tau_logits, -1)
    prompts = torch.zeros(6, 1, dtype=torch.long)
    for R, seed in ((1, 11), (3, 12)):
        (ids, kl), opt = _step(impl, O.TableLM(theta), O.TableLM(tau_logits), prompts, R, seed)
        case = check.describe(theta=theta, teacher_logits=tau_logits, B=6, response_len=R, seed=seed)
        tokens = ids[:, 1:]
        teacher_tokens = O.sample_like_the_step(O.TableLM(tau_logits), prompts, R, tensors.generator(seed))[:, 1:]
        check.that(len(opt.grads) == 1 and opt.grads[0][0] is not None, "on_policy_distill_step",
                   "optimizer.step() must be called once, after loss.backward() filled the student's gradients",
                   case=case)
        n = tokens.numel()
        check.close(opt.grads[0][0], O.on_policy_grad_unigram(theta, log_tau, tokens), unit="on_policy_distill_step",
                    case=case, kind="gradient", what="the gradient w.r.t. the student's logits θ at optimizer.step()",
                    mistakes={"the advantage not detached (gradient also flows through A = −d)":
                              O.on_policy_grad_unigram(theta, log_tau, tokens, detached=False),
                              "the advantage with the wrong sign (A = +d: the student moves AWAY from the teacher)":
                              O.on_policy_grad_unigram(theta, log_tau, tokens, sign=-1.0),
                              "sum over tokens instead of the mean": n * O.on_policy_grad_unigram(theta, log_tau, tokens),
                              "sampled from the teacher (off-policy) where on-policy sampling is asked":
                              O.on_policy_grad_unigram(theta, log_tau, teacher_tokens)})
        log_pi = torch.log_softmax(theta, -1)
        d = log_pi[tokens] - log_tau[tokens]
        check.close(torch.tensor(kl, dtype=torch.float64), d.mean(), unit="on_policy_distill_step", case=case,
                    kind="reduction", what="the returned mean of d = logp_student − logp_teacher",
                    mistakes={"the mean advantage −d returned instead of d": -d.mean()})


@pytest.mark.points(2)
def test_on_policy_step_gradient_matches_autograd_oracle_on_a_bigram(impl):
    # Contexts matter here: every token's log-prob comes from the row of the token before it.
    prompts = torch.tensor([[0], [3], [1]])
    for R, seed in ((2, 21), (4, 22)):
        student, teacher = O.TableLM(STUDENT4), O.TableLM(TEACHER4)
        (ids, _), opt = _step(impl, student, teacher, prompts, R, seed)
        case = check.describe(prompts=prompts, response_len=R, seed=seed, models="bigram tables")
        twin = O.TableLM(STUDENT4)
        logp_s = O.prefix_logprobs(twin, ids, 1)
        with torch.no_grad():
            logp_t = O.prefix_logprobs(O.TableLM(TEACHER4), ids, 1)
        adv = -(logp_s - logp_t).detach()
        (-(adv * logp_s).mean()).backward()
        check.close(opt.grads[0][0], twin.table.grad, unit="on_policy_distill_step", case=case, kind="gradient",
                    what="the gradient w.r.t. the student's bigram table (against an autograd oracle on prefixes)")


@pytest.mark.points(2)
def test_on_policy_step_expected_gradient_is_the_reverse_kl_gradient(impl):
    # One step on N = 20 000 · 2 i.i.d. tokens of a unigram student: its gradient (a mean of N
    # i.i.d. terms d_i (onehot(x_i) − π), each in [−D, D] with D = max |d|) estimates
    # ∇θ KL(π ‖ τ) (autograd of the exact reverse KL). Hoeffding per component at rate 1e-6/V
    # (union bound over the V components): false failure ≤ 1e-6 for the test.
    theta = torch.tensor([0.6, -0.2, 0.3, -0.7, 0.1], dtype=torch.float64)
    tau_logits = torch.tensor([-0.4, 0.8, 0.2, 0.5, -0.6], dtype=torch.float64)
    log_pi, log_tau = torch.log_softmax(theta, -1), torch.log_softmax(tau_logits, -1)
    B, R, V = 20_000, 2, 5
    (ids, _), opt = _step(impl, O.TableLM(theta), O.TableLM(tau_logits), torch.zeros(B, 1, dtype=torch.long), R, 31)
    leaf = theta.clone().requires_grad_(True)
    O.reverse_kl(leaf, tau_logits).backward()
    exact = leaf.grad
    check.close(exact, O.categorical_kl_grad(theta, log_tau), unit="oracle", kind="gradient",
                what="(self-check) autograd and the analytic ∇ KL agree")
    D = float((log_pi - log_tau).abs().max())
    bound = 2 * D * math.sqrt(math.log(2 * V / 1e-6) / (2 * B * R))
    got = opt.grads[0][0]
    case = check.describe(theta=theta, teacher_logits=tau_logits, B=B, response_len=R)
    if got is None or (got - exact).abs().max() > bound:
        wrong = {"the advantage not detached": O.categorical_kl_grad(theta, log_tau)
                 + log_pi.exp() * (log_pi + (-(log_pi.exp() * log_pi).sum())),
                 "sampled from the teacher (off-policy)": (log_tau.exp()[:, None] * (log_pi - log_tau)[:, None]
                                                           * (torch.eye(V) - log_pi.exp()[None, :])).sum(0)}
        named = next((k for k, w in wrong.items() if got is not None and (got - w).abs().max() <= bound), None)
        check.fail("on_policy_distill_step", "the gradient of one large step does not estimate ∇θ KL(π_student ‖ π_teacher)",
                   f"got {None if got is None else [round(v, 4) for v in got.tolist()]}, "
                   f"expected {[round(v, 4) for v in exact.tolist()]} ± {bound:.4f} (Hoeffding, rate 1e-6)",
                   case=case, mistake=named)


@pytest.mark.points(2)
def test_on_policy_step_reference_repeated_steps_and_protocol(impl):
    ref = reference.load(O.TOPIC, "on_policy_step")
    student = O.TableLM(ref["student_table"])
    lr = float(ref["lr"][0])
    (ids, kl), opt = _step(impl, student, O.TableLM(ref["teacher_table"]), ref["prompts"], 3, int(ref["seed"][0]), lr)
    case = check.describe(prompts=ref["prompts"], response_len=3, seed=int(ref["seed"][0]), lr=lr)
    check.close(ids, ref["ids"], unit="on_policy_distill_step", case=case, kind="exact",
                what="the sampled ids of the reference step")
    check.close(torch.tensor(kl, dtype=torch.float64), ref["kl"][0], unit="on_policy_distill_step", case=case,
                kind="reduction", what="the returned mean reverse-KL estimate of the reference step")
    check.close(student.table.detach(), ref["table_after"], unit="on_policy_distill_step", case=case,
                kind="gradient", what="the student's table after one plain-SGD step")
    check.equal(opt.events, ["zero_grad(set_to_none=True)", "step"], unit="on_policy_distill_step", case=case,
                what="the optimizer calls (zero_grad(set_to_none=True) once, then step once)")
    # repeated steps with plain SGD bring a unigram student towards the teacher
    theta = torch.zeros(5, dtype=torch.float64)
    tau_logits = torch.tensor([2.0, 0.5, -1.0, 0.0, -0.5], dtype=torch.float64)
    student = O.TableLM(theta)
    opt = O.RecordingOptimizer(student.parameters(), lr=2.0)
    gen = tensors.generator(41)
    before = float(O.reverse_kl(theta, tau_logits))
    for _ in range(25):
        impl.on_policy_distill_step(student, O.TableLM(tau_logits), torch.zeros(64, 1, dtype=torch.long), opt, 2, gen)
    after = float(O.reverse_kl(student.table.detach(), tau_logits))
    check.that(after < 0.2 * before, "on_policy_distill_step",
               f"25 steps (SGD, lr 2, 128 tokens each) should cut KL(π_student ‖ π_teacher) below a fifth: "
               f"{before:.4f} → {after:.4f}", case=check.describe(teacher_logits=tau_logits))


@pytest.mark.points(1)
def test_on_policy_step_raises(impl):
    student, teacher = O.TableLM(STUDENT4), O.TableLM(TEACHER4)
    opt = O.RecordingOptimizer(student.parameters())
    for prompts, R, why in ((torch.tensor([0, 1]), 2, "prompts must be 2-D (B, P)"),
                            (torch.zeros(2, 0, dtype=torch.long), 2, "P ≥ 1"),
                            (torch.zeros(2, 1, dtype=torch.long), 0, "response_len ≥ 1")):
        check.expect_raises(ValueError, impl.on_policy_distill_step, student, teacher, prompts, opt, R,
                            tensors.generator(0), unit="on_policy_distill_step",
                            case=check.describe(prompts=prompts, response_len=R), why=why)


# ================================================================= gkd_step

def _gkd(impl, student, teacher, prompts, responses, lam, beta, seed, lr=0.0):
    opt = O.RecordingOptimizer(student.parameters(), lr=lr)
    out = impl.gkd_step(student, teacher, prompts, responses, opt, lam, beta, tensors.generator(seed))
    return out, opt


def _gkd_oracle(ids, P, beta, shift=1):
    """(loss, gradient w.r.t. the student's table) of the JSD loss on `ids`, from an autograd
    copy of the bigram student; shift = 0 builds the known mistake of unshifted logits."""
    twin = O.TableLM(STUDENT4)
    R = ids.shape[1] - P
    lo = P - shift
    s = twin(ids)[0][:, lo:lo + R]
    t = O.TableLM(TEACHER4)(ids)[0][:, lo:lo + R].detach()
    loss = O.jsd(s, t, beta).mean()
    loss.backward()
    return loss.detach(), twin.table.grad


@pytest.mark.points(2)
def test_gkd_step_mixing_rule(impl):
    prompts = torch.tensor([[1], [2]])
    responses = torch.tensor([[3, 0, 1], [0, 0, 2]])
    for lam, seed in ((0.0, 3), (1.0, 4)):
        student, teacher = O.TableLM(STUDENT4), O.TableLM(TEACHER4)
        (ids, on_policy, _), _ = _gkd(impl, student, teacher, prompts, responses, lam, 0.5, seed)
        case = check.describe(prompts=prompts, responses=responses, lam=lam, seed=seed)
        gen = tensors.generator(seed)
        torch.rand(1, generator=gen, dtype=torch.float64)                    # the documented first draw
        sampled = O.sample_like_the_step(O.TableLM(STUDENT4), prompts, 3, gen)
        gen_t = tensors.generator(seed)
        torch.rand(1, generator=gen_t, dtype=torch.float64)
        teacher_sampled = O.sample_like_the_step(O.TableLM(TEACHER4), prompts, 3, gen_t)
        off = torch.cat([prompts, responses], dim=1)
        expected, wrong = (sampled, off) if lam == 1.0 else (off, sampled)
        check.close(ids, expected, unit="gkd_step", case=case, kind="exact",
                    what="ids (λ = 1: the student's samples after the first uniform; λ = 0: prompts + responses)",
                    mistakes={"λ inverted: on-policy data with probability 1 − λ": wrong,
                              "sampled from the teacher (off-policy) where on-policy sampling is asked":
                              teacher_sampled})
        check.that(type(on_policy) is bool and on_policy == (lam == 1.0), "gkd_step",
                   f"on_policy should be the Python bool {lam == 1.0} for lam = {lam}, got {on_policy!r}", case=case)
    # λ = 0.3 over 300 steps with one generator (lr 0, so the student is fixed): the flags equal
    # those of the documented draws, and the on-policy share passes a binomial test at rate 1e-6.
    student, teacher = O.TableLM(STUDENT4), O.TableLM(TEACHER4)
    opt = O.RecordingOptimizer(student.parameters())
    gen, replay = tensors.generator(5), tensors.generator(5)
    flags, expected, inverted = [], [], []
    for _ in range(300):
        flags.append(impl.gkd_step(student, teacher, prompts, responses, opt, 0.3, 0.5, gen)[1])
        u = float(torch.rand(1, generator=replay, dtype=torch.float64)[0])
        expected.append(u < 0.3)
        inverted.append(u >= 0.3)
        if u < 0.3:
            O.sample_like_the_step(O.TableLM(STUDENT4), prompts, 3, replay)
    case = check.describe(lam=0.3, steps=300, seed=5)
    stats.proportion(sum(flags), 300, 0.3, unit="gkd_step", what="the share of on-policy steps at λ = 0.3", case=case)
    check.equal(flags, expected, unit="gkd_step", case=case,
                what="the on_policy flags of 300 steps (u < λ with u the first draw of each step)",
                mistakes={"λ inverted: on-policy data with probability 1 − λ": inverted})


@pytest.mark.points(3)
def test_gkd_step_loss_and_gradient_match_oracle(impl):
    prompts = torch.tensor([[1, 0], [2, 3], [0, 0]])
    responses = torch.tensor([[3, 0], [0, 2], [1, 1]])
    for lam, beta, seed, R in ((0.0, 0.5, 1, 2), (1.0, 0.5, 2, 2), (0.0, 0.0, 3, 2), (1.0, 1.0, 4, 2), (0.0, 0.9, 5, 2),
                               (1.0, 0.3, 6, 1), (0.0, 0.3, 7, 1)):
        student, teacher = O.TableLM(STUDENT4), O.TableLM(TEACHER4)
        (ids, _, loss), opt = _gkd(impl, student, teacher, prompts, responses[:, :R], lam, beta, seed)
        case = check.describe(prompts=prompts, responses=responses[:, :R], lam=lam, beta=beta, seed=seed)
        want_loss, want_grad = _gkd_oracle(ids, 2, beta)
        unshifted_loss, unshifted_grad = _gkd_oracle(ids, 2, beta, shift=0)
        check.that(isinstance(loss, float), "gkd_step", f"the loss should be a Python float, got {type(loss).__name__}",
                   case=case)
        check.close(torch.tensor(loss, dtype=torch.float64), want_loss, unit="gkd_step", case=case, kind="loss",
                    what="the returned loss: the mean JSD(β) over the B·R response positions",
                    mistakes={"logits not shifted: positions P … P + R − 1 used to score the response": unshifted_loss,
                              "forward and reverse KL swapped (JSD(1 − β))": _gkd_oracle(ids, 2, 1 - beta)[0]})
        check.close(opt.grads[0][0], want_grad, unit="gkd_step", case=case, kind="gradient",
                    what="the gradient w.r.t. the student's table at optimizer.step()",
                    mistakes={"logits not shifted: positions P … P + R − 1 used to score the response": unshifted_grad})
        check.that(not any(grad for _, grad in teacher.calls), "gkd_step",
                   "the teacher was called with autograd on: compute its logits under torch.no_grad", case=case)
        check.equal(opt.events, ["zero_grad(set_to_none=True)", "step"], unit="gkd_step", case=case,
                    what="the optimizer calls (zero_grad(set_to_none=True) once, then step once)")
    ref = reference.load(O.TOPIC, "gkd_step")
    for lam in (0, 1):
        student = O.TableLM(ref["student_table"])
        (ids, on_policy, loss), _ = _gkd(impl, student, O.TableLM(ref["teacher_table"]), ref["prompts"],
                                         ref["responses"], float(lam), float(ref["beta"][0]),
                                         int(ref[f"seed_lam{lam}"][0]), float(ref["lr"][0]))
        case = check.describe(lam=lam, beta=float(ref["beta"][0]), reference="gkd_step")
        check.close(ids, ref[f"ids_lam{lam}"], unit="gkd_step", case=case, kind="exact", what="ids of the reference step")
        check.close(torch.tensor(loss, dtype=torch.float64), ref[f"loss_lam{lam}"][0], unit="gkd_step", case=case,
                    kind="loss", what="the loss of the reference step")
        check.close(student.table.detach(), ref[f"table_after_lam{lam}"], unit="gkd_step", case=case,
                    kind="gradient", what="the student's table after one plain-SGD step")


@pytest.mark.points(1)
def test_gkd_step_raises(impl):
    student, teacher = O.TableLM(STUDENT4), O.TableLM(TEACHER4)
    opt = O.RecordingOptimizer(student.parameters())
    p, r = torch.tensor([[1], [2]]), torch.tensor([[3, 0], [0, 1]])
    for prompts, responses, lam, beta, why in (
            (p[0], r, 0.5, 0.5, "prompts must be 2-D"), (p, r[0], 0.5, 0.5, "responses must be 2-D"),
            (torch.zeros(2, 0, dtype=torch.long), r, 0.5, 0.5, "P ≥ 1"),
            (p, torch.zeros(2, 0, dtype=torch.long), 0.5, 0.5, "R ≥ 1"),
            (p, r[:1], 0.5, 0.5, "batch sizes differ"), (p, r, -0.1, 0.5, "lam < 0"), (p, r, 1.2, 0.5, "lam > 1"),
            (p, r, 0.5, -0.5, "beta < 0"), (p, r, 0.5, 2.0, "beta > 1")):
        check.expect_raises(ValueError, impl.gkd_step, student, teacher, prompts, responses, opt, lam, beta,
                            tensors.generator(0), unit="gkd_step",
                            case=check.describe(prompts=prompts, responses=responses, lam=lam, beta=beta), why=why)
