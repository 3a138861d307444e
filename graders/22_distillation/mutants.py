"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 22_distillation.

Each is one textual edit (or a few chained with `also`) of solutions/22_distillation/distill.py.
`llmlab mutants 22_distillation` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks. SYLLABUS.md's known mistakes are all
here (marked "syllabus").
"""

from llmlab.authoring.mutants import Mutant, Variant

F = "distill.py"

# the body of forward_kl (unique: reverse_kl ends with the other product)
_FORWARD = """    log_p = F.log_softmax(teacher_logits / T, dim=-1)                       # (..., V) teacher
    log_q = F.log_softmax(student_logits / T, dim=-1)                       # (..., V) student
    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)                      # (...)"""


def _forward_with(log_p: str, log_q: str) -> str:
    return (f"    log_p = {log_p}\n    log_q = {log_q}\n"
            "    return (log_p.exp() * (log_p - log_q)).sum(dim=-1)")


MUTANTS = [
    # ---- the syllabus's known mistakes
    Mutant("syllabus: the KL direction swapped in kd_loss (reverse KL)", F,
           find="soft = forward_kl(student, teacher, T).mean()", replace="soft = reverse_kl(student, teacher, T).mean()",
           message="the KL direction swapped"),
    Mutant("syllabus: the T² factor missing in kd_loss", F,
           find="return (1.0 - alpha) * hard + alpha * T ** 2 * soft", replace="return (1.0 - alpha) * hard + alpha * soft",
           message="the T² factor missing"),
    Mutant("syllabus: the teacher softened but the student not", F,
           find=_FORWARD,
           replace=_forward_with("F.log_softmax(teacher_logits / T, dim=-1)", "F.log_softmax(student_logits, dim=-1)"),
           message="the teacher softened by T but the student not"),
    Mutant("syllabus: the student softened but the teacher not", F,
           find=_FORWARD,
           replace=_forward_with("F.log_softmax(teacher_logits, dim=-1)", "F.log_softmax(student_logits / T, dim=-1)"),
           message="the student softened by T but the teacher not"),
    Mutant("syllabus: top-k logits not renormalised (the full softmax at the kept classes)", F,
           find="return torch.softmax(values / T, dim=-1), indices",
           replace="return torch.softmax(teacher_logits / T, dim=-1).gather(-1, indices), indices",
           message="not renormalised"),

    # ---- forward_kl / reverse_kl / soft_targets
    Mutant("forward_kl computes KL(student ‖ teacher)", F,
           find="return (log_p.exp() * (log_p - log_q)).sum(dim=-1)",
           replace="return (log_q.exp() * (log_q - log_p)).sum(dim=-1)", message="the direction swapped"),
    Mutant("reverse_kl computes KL(teacher ‖ student)", F,
           find="return (log_q.exp() * (log_q - log_p)).sum(dim=-1)",
           replace="return (log_p.exp() * (log_p - log_q)).sum(dim=-1)", message="the direction swapped"),
    Mutant("forward_kl: log of softmax instead of log_softmax (underflow at large logits)", F,
           find=_FORWARD,
           replace=_forward_with("torch.softmax(teacher_logits / T, dim=-1).log()",
                                 "torch.softmax(student_logits / T, dim=-1).log()"),
           message="log_softmax"),
    Mutant("soft_targets: the logits multiplied by T", F,
           find="return torch.softmax(logits / T, dim=-1)", replace="return torch.softmax(logits * T, dim=-1)",
           message="multiplied by T instead of divided"),

    # ---- kd_loss
    Mutant("kd_loss: alpha and 1 − alpha exchanged", F,
           find="return (1.0 - alpha) * hard + alpha * T ** 2 * soft",
           replace="return alpha * hard + (1.0 - alpha) * T ** 2 * soft", message="alpha and 1 − alpha exchanged"),
    Mutant("kd_loss: the KL averaged over positions × classes (F.kl_div's reduction='mean')", F,
           find="soft = forward_kl(student, teacher, T).mean()",
           replace="soft = forward_kl(student, teacher, T).mean() / student.shape[-1]",
           message="reduction='mean'"),
    Mutant("kd_loss: CE on the softened logits", F,
           find="hard = F.cross_entropy(student, targets[keep])", replace="hard = F.cross_entropy(student / T, targets[keep])",
           message="computed on the softened logits"),
    Mutant("kd_loss: the teacher not detached", F,
           find="teacher = teacher_logits.detach()[keep]", replace="teacher = teacher_logits[keep]",
           message="detach it"),
    Mutant("kd_loss: ignored positions counted in the KL term", F,
           find="soft = forward_kl(student, teacher, T).mean()",
           replace="soft = forward_kl(student_logits, teacher_logits.detach(), T).mean()",
           message="counted in the KL term"),
    Mutant("kd_loss: alpha > 1 accepted", F,
           find="if not 0.0 <= alpha <= 1.0:", replace="if not 0.0 <= alpha:"),

    # ---- topk_teacher_probs / sparse_kd_loss
    Mutant("topk: the k smallest logits kept", F,
           find="values, indices = teacher_logits.topk(k, dim=-1)",
           replace="values, indices = teacher_logits.topk(k, dim=-1, largest=False)", message="the k smallest"),
    Mutant("topk: T ignored", F,
           find="return torch.softmax(values / T, dim=-1), indices", replace="return torch.softmax(values, dim=-1), indices",
           message="T ignored"),
    Mutant("sparse: the T² factor missing", F,
           find="return T ** 2 * kl.mean()", replace="return kl.mean()", message="the T² factor missing"),
    Mutant("sparse: the student renormalised over the kept k classes", F,
           find="log_q_kept = log_q.gather(-1, teacher_indices)",
           replace="log_q_kept = log_q.gather(-1, teacher_indices).log_softmax(dim=-1)",
           message="renormalised over the kept k"),
    Mutant("sparse: the student not softened", F,
           find="log_q = F.log_softmax(student_logits / T, dim=-1)                       # (..., V)\n    log_q_kept",
           replace="log_q = F.log_softmax(student_logits, dim=-1)\n    log_q_kept", message="not softened"),
    Mutant("sparse: the teacher not detached", F,
           find="p = teacher_probs.detach()", replace="p = teacher_probs", message="detach it"),
    Mutant("sparse: p · log p without 0 · log 0 = 0", F,
           find="kl = (torch.xlogy(p, p) - p * log_q_kept).sum(dim=-1)",
           replace="kl = (p * p.log() - p * log_q_kept).sum(dim=-1)", message="0 · log 0"),

    # ---- HiddenDistillLoss
    Mutant("hidden: the teacher not detached", F,
           find="return (lifted - teacher_hidden.detach()).pow(2).mean()",
           replace="return (lifted - teacher_hidden).pow(2).mean()", message="detach it"),
    Mutant("hidden: squared errors summed instead of averaged", F,
           find="return (lifted - teacher_hidden.detach()).pow(2).mean()",
           replace="return (lifted - teacher_hidden.detach()).pow(2).sum()", message="summed instead of averaged"),
    Mutant("hidden: summed over features, averaged over positions", F,
           find="return (lifted - teacher_hidden.detach()).pow(2).mean()",
           replace="return (lifted - teacher_hidden.detach()).pow(2).sum(-1).mean()", message="summed over features"),
    Mutant("hidden: the projection without a bias", F,
           find="self.proj = nn.Linear(d_student, d_teacher)\n        ### END SOLUTION",
           replace="self.proj = nn.Linear(d_student, d_teacher, bias=False)\n        ### END SOLUTION"),

    # ---- sequence_distill_batch
    Mutant("sequence: the prompt's predictions not masked", F,
           find="targets[:, :prompts.shape[1] - 1] = IGNORE_INDEX", replace="targets[:, :0] = IGNORE_INDEX",
           message="not masked"),
    Mutant("sequence: T0 columns masked (the first generated token lost)", F,
           find="targets[:, :prompts.shape[1] - 1] = IGNORE_INDEX", replace="targets[:, :prompts.shape[1]] = IGNORE_INDEX",
           message="T0 columns, not T0 − 1"),
    Mutant("sequence: the teacher left in train mode", F,
           find="    teacher.eval()\n", replace="", message="train mode"),
    Mutant("sequence: the teacher's mode not restored", F,
           find="teacher.train(was_training)", replace="teacher.eval()", message="not restored"),
    Mutant("sequence: generation with autograd on", F,
           find="with torch.no_grad():", replace="with torch.enable_grad():", message="autograd on"),
    Mutant("sequence: logits of the first position", F,
           find="logits = teacher(seq)[0][:, -1]", replace="logits = teacher(seq)[0][:, 0]"),
]

VARIANTS = [
    Variant("soft_targets by exp / sum after subtracting the row maximum", F,
            find="return torch.softmax(logits / T, dim=-1)                                # (..., V)",
            replace="z = logits / T\n    e = (z - z.amax(dim=-1, keepdim=True)).exp()\n"
                    "    return e / e.sum(dim=-1, keepdim=True)"),
    Variant("forward_kl through F.kl_div with log-probability targets", F,
            find="return (log_p.exp() * (log_p - log_q)).sum(dim=-1)                      # (...)",
            replace="return F.kl_div(log_q, log_p, reduction='none', log_target=True).sum(dim=-1)"),
    Variant("kd_loss's CE over all positions with cross_entropy's own ignore_index", F,
            find="hard = F.cross_entropy(student, targets[keep])",
            replace="hard = F.cross_entropy(student_logits.flatten(0, -2), targets.flatten(), ignore_index=IGNORE_INDEX)"),
    Variant("topk by a full descending sort", F,
            find="values, indices = teacher_logits.topk(k, dim=-1)                        # (..., k), descending",
            replace="values, indices = teacher_logits.sort(dim=-1, descending=True)\n"
                    "    values, indices = values[..., :k], indices[..., :k]"),
    Variant("sparse KD through a dense teacher scattered into all V classes", F,
            find="""    log_q_kept = log_q.gather(-1, teacher_indices)                          # (..., k)
    kl = (torch.xlogy(p, p) - p * log_q_kept).sum(dim=-1)                   # (...)""",
            replace="""    dense = torch.zeros_like(log_q).scatter(-1, teacher_indices, p)
    kl = (torch.xlogy(dense, dense) - dense * log_q).sum(dim=-1)"""),
    Variant("hidden loss through F.mse_loss", F,
            find="return (lifted - teacher_hidden.detach()).pow(2).mean()",
            replace="return F.mse_loss(lifted, teacher_hidden.detach())"),
    Variant("sequence generation into a pre-allocated tensor", F,
            find="""    seq = prompts.clone()                                                   # (B, T0)
    try:
        with torch.no_grad():
            for _ in range(max_new):
                logits = teacher(seq)[0][:, -1]                              # (B, V)
                seq = torch.cat([seq, logits.argmax(dim=-1, keepdim=True)], dim=1)   # (B, T0 + i + 1)""",
            replace="""    T0 = prompts.shape[1]
    seq = torch.cat([prompts, prompts.new_zeros(prompts.shape[0], max_new)], dim=1)
    try:
        with torch.no_grad():
            for i in range(max_new):
                seq[:, T0 + i] = teacher(seq[:, :T0 + i])[0][:, -1].argmax(dim=-1)"""),
]

EQUIVALENT: dict[str, str] = {
    "distill.py: `-` -> `` in `seq = torch.cat([seq, logits.argmax(dim=-1, keepdim=True)], dim=1)`":
        "logits is the 2-D (B, V) row of the last position of every sequence, so argmax over dim=1 is "
        "argmax over dim=-1",
}
