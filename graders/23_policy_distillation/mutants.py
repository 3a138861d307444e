"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 23_policy_distillation.

Each is one textual edit (or a few chained with `also`) of
solutions/23_policy_distillation/policy_distillation.py. `llmlab mutants 23_policy_distillation`
proves every mutant fails a grader — naming the mistake where `message` is set — and every
variant gets full marks. SYLLABUS.md's known mistakes are all here (marked "syllabus").
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "policy_distillation.py"

MUTANTS = [
    # ---- the syllabus's four known mistakes
    Mutant("syllabus: k3 with the ratio inverted (negative values)", F,
           find="return torch.expm1(log_r) - log_r", replace="return torch.expm1(-log_r) - log_r",
           message="k3 with the ratio inverted"),
    Mutant("syllabus: sampling from the teacher (off-policy) where on-policy is asked", F,
           find="ids = sample_responses(student, prompts, response_len, generator)",
           replace="ids = sample_responses(teacher, prompts, response_len, generator)",
           message="sampled from the teacher"),
    Mutant("syllabus: the advantage not detached", F,
           find="advantage = -reverse_kl.detach()", replace="advantage = -reverse_kl",
           message="advantage not detached"),
    Mutant("syllabus: forward KL where reverse is stated", F,
           find="return (log_s.exp() * (log_s - log_t)).sum(dim=-1)",
           replace="return (log_t.exp() * (log_t - log_s)).sum(dim=-1)",
           message="forward KL"),

    # ---- kl_estimate
    Mutant("k3 as exp(log r) − 1 − log r (rounds below 0 for small log r)", F,
           find="return torch.expm1(log_r) - log_r", replace="return torch.exp(log_r) - 1 - log_r",
           message="expm1"),
    Mutant("k3 of the inverted ratio q/p", F,
           find="return torch.expm1(log_r) - log_r", replace="return torch.expm1(-log_r) + log_r",
           message="k3 of the inverted ratio"),
    Mutant("k3 without the − log r term", F,
           find="return torch.expm1(log_r) - log_r", replace="return torch.expm1(log_r)",
           message="without the − log r term"),
    Mutant("k1 = +log r", F, find="        return -log_r\n", replace="        return log_r\n",
           message="ratio inverted"),
    Mutant("k2 without the ½", F, find="return 0.5 * log_r ** 2", replace="return log_r ** 2",
           message="without the ½"),
    Mutant("log r = log q − log p (the ratio inverted everywhere)", F,
           find="log_r = logp_ref - logp_sample", replace="log_r = logp_sample - logp_ref"),
    Mutant("kind checked case-insensitively", F,
           find="if kind not in KL_KINDS:", replace="if kind.lower() not in KL_KINDS:"),

    # ---- token_reverse_kl
    Mutant("reverse KL from log(softmax(·)) (−inf for huge logits)", F,
           find="""    log_s = torch.log_softmax(student_logits, dim=-1)                      # (..., V)
    log_t = torch.log_softmax(teacher_logits, dim=-1)                      # (..., V)
    return""",
           replace="""    log_s = torch.log(torch.softmax(student_logits, dim=-1))
    log_t = torch.log(torch.softmax(teacher_logits, dim=-1))
    return"""),
    Mutant("reverse KL summed over the wrong axis", F,
           find="return (log_s.exp() * (log_s - log_t)).sum(dim=-1)",
           replace="return (log_s.exp() * (log_s - log_t)).sum(dim=0)"),

    # ---- generalized_jsd
    Mutant("JSD: mixture weights swapped", F,
           find="torch.stack([log_t + math.log(beta), log_s + math.log(1.0 - beta)])",
           replace="torch.stack([log_t + math.log(1.0 - beta), log_s + math.log(beta)])",
           message="mixture weights swapped"),
    Mutant("JSD: β and 1 − β swapped on the KL terms", F,
           find="return beta * kl_t + (1.0 - beta) * kl_s", replace="return (1.0 - beta) * kl_t + beta * kl_s",
           message="β and 1 − β swapped"),
    Mutant("JSD: β = 0 gives the reverse KL (endpoints swapped)", F,
           find="return token_reverse_kl(teacher_logits, student_logits)           # forward KL(π_t ‖ π_s)",
           replace="return token_reverse_kl(student_logits, teacher_logits)",
           message="endpoints swapped"),
    Mutant("JSD: β = 1 gives the forward KL", F,
           find="return token_reverse_kl(student_logits, teacher_logits)           # reverse KL(π_s ‖ π_t)",
           replace="return token_reverse_kl(teacher_logits, student_logits)",
           message="endpoints swapped"),
    Mutant("JSD: the unscaled divergence (0) at the endpoints", F,
           find="return token_reverse_kl(teacher_logits, student_logits)           # forward KL(π_t ‖ π_s)",
           replace="return torch.zeros(student_logits.shape[:-1], dtype=student_logits.dtype)",
           message="unscaled JSD"),
    Mutant("JSD: the mixture taken in log space (a normalised geometric mean)", F,
           find="log_m = torch.logsumexp(torch.stack([log_t + math.log(beta), log_s + math.log(1.0 - beta)]), dim=0)",
           replace="log_m = torch.log_softmax(beta * log_t + (1.0 - beta) * log_s, dim=-1)",
           message="the mixture of the logits"),

    # ---- response_logprobs
    Mutant("response log-probs: logits not shifted", F,
           find="logits = model(ids)[0][:, prompt_len - 1:-1]", replace="logits = model(ids)[0][:, prompt_len:]",
           message="logits not shifted"),
    Mutant("response log-probs: probabilities instead of log-probabilities", F,
           find="logp = torch.log_softmax(logits, dim=-1)", replace="logp = torch.softmax(logits, dim=-1)",
           message="probabilities instead of log-probabilities"),
    Mutant("response log-probs: prompt_len = T accepted", F,
           find="not 1 <= prompt_len < ids.shape[1]", replace="not 1 <= prompt_len <= ids.shape[1]"),

    # ---- on_policy_distill_step
    Mutant("on-policy: the advantage with the wrong sign", F,
           find="advantage = -reverse_kl.detach()", replace="advantage = reverse_kl.detach()",
           message="wrong sign"),
    Mutant("on-policy: the loss summed over tokens instead of averaged", F,
           find="loss = -(advantage * logp_student).mean()", replace="loss = -(advantage * logp_student).sum()",
           message="sum over tokens"),
    Mutant("on-policy: the mean advantage returned instead of the mean reverse KL", F,
           find="return ids, float(reverse_kl.detach().mean())", replace="return ids, float(advantage.mean())",
           message="mean advantage"),
    Mutant("on-policy: the teacher scored with autograd on", F,
           find="""    with torch.no_grad():
        logp_teacher = response_logprobs(teacher, ids, P)""",
           replace="""    with torch.enable_grad():
        logp_teacher = response_logprobs(teacher, ids, P)"""),
    Mutant("on-policy: zero_grad after backward (the gradient is erased)", F,
           find="""    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return ids, float(reverse_kl""",
           replace="""    loss.backward()
    optimizer.zero_grad(set_to_none=True)
    optimizer.step()
    return ids, float(reverse_kl"""),

    # ---- gkd_step
    Mutant("GKD: λ inverted (on-policy with probability 1 − λ)", F,
           find="on_policy = bool(u < lam)", replace="on_policy = bool(u >= lam)", message="λ inverted"),
    Mutant("GKD: on-policy data sampled from the teacher", F,
           find="ids = sample_responses(student, prompts, R, generator)             # (B, P + R)",
           replace="ids = sample_responses(teacher, prompts, R, generator)", message="sampled from the teacher"),
    Mutant("GKD: logits not shifted", F,
           find="teacher_logits = teacher(ids)[0][:, P - 1:-1]", replace="teacher_logits = teacher(ids)[0][:, P:]",
           also=(Edit(F, "student_logits = student(ids)[0][:, P - 1:-1]", "student_logits = student(ids)[0][:, P:]"),),
           message="logits not shifted"),
    Mutant("GKD: JSD(1 − β) (forward and reverse swapped)", F,
           find="loss = generalized_jsd(student_logits, teacher_logits, beta).mean()",
           replace="loss = generalized_jsd(student_logits, teacher_logits, 1.0 - beta).mean()",
           message="forward and reverse KL swapped"),
    Mutant("GKD: the teacher's logits with autograd on", F,
           find="""    with torch.no_grad():
        teacher_logits""", replace="""    with torch.enable_grad():
        teacher_logits"""),
    Mutant("GKD: the uniform drawn only when 0 < λ < 1", F,
           find="u = torch.rand(1, generator=generator, dtype=torch.float64)[0]\n    on_policy",
           replace="u = torch.rand(1, generator=generator, dtype=torch.float64)[0] if 0 < lam < 1 else "
                   "torch.tensor(1.0 - lam)\n    on_policy"),
]

VARIANTS = [
    Variant("k3 clamped at 0 instead of expm1", F,
            find="return torch.expm1(log_r) - log_r", replace="return (torch.exp(log_r) - 1 - log_r).clamp(min=0)"),
    Variant("reverse KL by einsum over softmax", F,
            find="return (log_s.exp() * (log_s - log_t)).sum(dim=-1)",
            replace="return torch.einsum('...v,...v->...', torch.softmax(student_logits, dim=-1), log_s - log_t)"),
    Variant("JSD mixture by logaddexp", F,
            find="log_m = torch.logsumexp(torch.stack([log_t + math.log(beta), log_s + math.log(1.0 - beta)]), dim=0)",
            replace="log_m = torch.logaddexp(log_t + math.log(beta), log_s + math.log1p(-beta))"),
    Variant("response log-probs by cross-entropy", F,
            find="""    logp = torch.log_softmax(logits, dim=-1)                               # (B, R, V)
    return logp.gather(-1, ids[:, prompt_len:, None])[..., 0]              # (B, R)""",
            replace="""    targets = ids[:, prompt_len:]
    return -torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")"""),
    Variant("on-policy loss as a sum divided by the token count", F,
            find="loss = -(advantage * logp_student).mean()",
            replace="loss = (reverse_kl.detach() * logp_student).sum() / logp_student.numel()"),
]

EQUIVALENT: dict[str, str] = {
    "policy_distillation.py: `1.0` -> `2.0` in `if not 0.0 <= beta <= 1.0:`":
        "a beta in (1, 2] then reaches math.log(1.0 - beta) of a negative number, which raises ValueError "
        "itself: every beta outside [0, 1] still raises the documented ValueError, and beta in [0, 1] is unchanged",
    "policy_distillation.py: `1` -> `0` (#3) in `if prompts.dim() != 2 or prompts.shape[1] < 1 or response_len < 1:`":
        "response_len ≤ 0 then samples no token (range of a non-positive number is empty), and "
        "response_logprobs(teacher, ids, P) with P = T raises the documented ValueError itself, before any "
        "optimizer call",
    "policy_distillation.py: `1.0` -> `2.0` (#2) in `if not (0.0 <= lam <= 1.0 and 0.0 <= beta <= 1.0):`":
        "a beta in (1, 2] then reaches generalized_jsd in step 4, which raises the documented ValueError for "
        "every beta outside [0, 1] itself, before any optimizer call",
    "policy_distillation.py: `<` -> `<=` in `on_policy = bool(u < lam)`":
        "u is a float64 uniform; it equals lam with probability about 2^-53 per step (u = 0 at lam = 0 "
        "included), so u ≤ lam and u < lam choose the same data in every step a test can see",
}
