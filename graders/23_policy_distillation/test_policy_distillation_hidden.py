"""Instructor-only graders for 23_policy_distillation (left out of student bundles).

  - on_policy_distill_step and gkd_step with random TinyLlama students and teachers: the
    gradient of every parameter against an autograd oracle on prefixes;
  - kl_estimate on 200 000 random log-ratios of every size in float32 and float64: k3 ≥ 0
    everywhere, and large log-ratios (|log r| up to 20) against the loop oracle;
  - token_reverse_kl and generalized_jsd on float32 logits of size ~200: finite, and equal
    to the float64 oracle.
"""

from __future__ import annotations

import copy

import pytest
import torch

import policy_distillation_oracle as O
from llmlab.testing import check, tensors
from llmlab.testing.tolerances import Tolerance


def _compare_parameter_grads(unit, model, grads, twin, case):
    for (name, _), got, q in zip(model.named_parameters(), grads, twin.parameters()):
        if got is None:
            check.fail(unit, f"no gradient reached the student's parameter {name} at optimizer.step()", case=case)
        check.close(got, q.grad, unit=unit, case=case, kind="gradient", what=f"gradient w.r.t. the parameter {name}")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_on_policy_step_tiny_llama_hidden(impl):
    student, teacher = O.tiny_llama(71), O.tiny_llama(72, scale=0.8)
    twin = copy.deepcopy(student)
    prompts = tensors.randint((3, 2), 73, high=O.CONFIG["vocab_size"])
    opt = O.RecordingOptimizer(student.parameters())
    ids, kl = impl.on_policy_distill_step(student, teacher, prompts, opt, 4, tensors.generator(74))
    case = check.describe(prompts=prompts, response_len=4, models="random TinyLlamas (float64)")
    expected = O.sample_like_the_step(copy.deepcopy(twin), prompts, 4, tensors.generator(74))
    check.close(ids, expected, unit="on_policy_distill_step", case=case, kind="exact", what="the sampled ids")
    logp_s = O.prefix_logprobs(twin, ids, 2)
    with torch.no_grad():
        logp_t = O.prefix_logprobs(teacher, ids, 2)
    d = logp_s - logp_t
    (-((-d.detach()) * logp_s).mean()).backward()
    check.close(torch.tensor(kl, dtype=torch.float64), d.detach().mean(), unit="on_policy_distill_step", case=case,
                kind="model", what="the returned mean reverse-KL estimate")
    _compare_parameter_grads("on_policy_distill_step", student, opt.grads[0], twin, case)


@pytest.mark.hidden
@pytest.mark.points(2)
def test_gkd_step_tiny_llama_hidden(impl):
    for lam, beta, seed in ((1.0, 0.3, 81), (0.0, 0.7, 82)):
        student, teacher = O.tiny_llama(seed), O.tiny_llama(seed + 10, scale=0.8)
        twin = copy.deepcopy(student)
        prompts = tensors.randint((2, 3), seed + 20, high=O.CONFIG["vocab_size"])
        responses = tensors.randint((2, 4), seed + 30, high=O.CONFIG["vocab_size"])
        opt = O.RecordingOptimizer(student.parameters())
        ids, on_policy, loss = impl.gkd_step(student, teacher, prompts, responses, opt, lam, beta,
                                             tensors.generator(seed))
        case = check.describe(prompts=prompts, responses=responses, lam=lam, beta=beta, models="random TinyLlamas")
        check.that(on_policy == (lam == 1.0), "gkd_step", f"on_policy should be {lam == 1.0}", case=case)
        s = twin(ids)[0][:, 2:-1]
        with torch.no_grad():
            t = teacher(ids)[0][:, 2:-1]
        want = O.jsd(s, t, beta).mean()
        want.backward()
        check.close(torch.tensor(loss, dtype=torch.float64), want.detach(), unit="gkd_step", case=case, kind="model",
                    what="the returned loss")
        _compare_parameter_grads("gkd_step", student, opt.grads[0], twin, case)


@pytest.mark.hidden
@pytest.mark.points(1)
def test_kl_estimate_extreme_log_ratios_hidden(impl):
    for dtype in (torch.float32, torch.float64):
        base = tensors.rand((200_000,), 90, low=-3.0, high=0.0).to(dtype)
        scales = 10.0 ** tensors.rand((200_000,), 91, low=-9.0, high=0.5)
        signs = torch.where(tensors.rand((200_000,), 92) < 0.5, -1.0, 1.0).double()
        ref = (base.double() + signs * scales).to(dtype)
        k3 = impl.kl_estimate(base, ref, "k3")
        case = check.describe(logp_sample=base, logp_ref=ref, log_r="from 1e-9 to 3 in size, both signs")
        bad = k3 < 0
        if bool(bad.any()):
            i = int(bad.nonzero()[0][0])
            check.fail("kl_estimate", f"k3 = {float(k3[i]):.3g} < 0 at log r = {float(ref[i] - base[i]):.3g}",
                       f"{int(bad.sum())} of {bad.numel()} values are negative ({dtype})", case=case)
    logq = tensors.rand((40,), 93, low=-25.0, high=-0.5)
    logp = tensors.rand((40,), 94, low=-25.0, high=-0.5)
    oracle = O.estimates_loop(logq, logp)
    for kind in ("k1", "k2", "k3"):
        out = impl.kl_estimate(logq.float(), logp.float(), kind)
        # float32 inputs round log q and log p by ~1e-6 each; k3 ≈ e^{|log r|} amplifies that to a relative ~1e-5
        check.close(out, oracle[kind].float(), unit="kl_estimate", tol=Tolerance(1e-4, 1e-5),
                    case=check.describe(logp_sample=logq.float(), logp_ref=logp.float(), kind=kind),
                    what=f"{kind} for |log r| up to 20 in float32")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_divergences_large_float32_logits_hidden(impl):
    s, t = tensors.randn((4, 3, 9), 95, scale=60.0), tensors.randn((4, 3, 9), 96, scale=60.0)
    case = check.describe(student_logits=s.float(), teacher_logits=t.float(), scale=60)
    out = impl.token_reverse_kl(s.float(), t.float())
    # values of size ~100 from float32 logits of size ~200: a relative 1e-4 is float32's share
    check.close(out, O.reverse_kl(s, t).float(), unit="token_reverse_kl", tol=Tolerance(1e-4, 1e-3), case=case,
                what="reverse KL of large float32 logits")
    for beta in (0.0, 0.4, 1.0):
        check.close(impl.generalized_jsd(s.float(), t.float(), beta), O.jsd(s, t, beta).float(),
                    unit="generalized_jsd", tol=Tolerance(1e-4, 1e-3), case=case + f"; beta={beta}",
                    what="JSD(β) of large float32 logits")
