"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 14_rlhf.

Each is one textual edit (or a few chained with `also`) of solutions/14_rlhf/rlhf.py.
`llmlab mutants 14_rlhf` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks. SYLLABUS.md's known mistakes are all
here (marked "syllabus").
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "rlhf.py"

MUTANTS = [
    # ---- bradley_terry_loss
    Mutant("syllabus: chosen/rejected swapped (Bradley–Terry)", F,
           find="return -F.logsigmoid(r_chosen - r_rejected).mean()",
           replace="return -F.logsigmoid(r_rejected - r_chosen).mean()", message="chosen and rejected swapped"),
    Mutant("log(sigmoid) instead of logsigmoid (overflows)", F,
           find="return -F.logsigmoid(r_chosen - r_rejected).mean()",
           replace="return -torch.log(torch.sigmoid(r_chosen - r_rejected)).mean()",
           message="log(sigmoid(·)) underflows"),
    Mutant("sum over pairs instead of the mean", F,
           find="return -F.logsigmoid(r_chosen - r_rejected).mean()",
           replace="return -F.logsigmoid(r_chosen - r_rejected).sum()", message="sum over pairs"),

    # ---- RewardModel
    Mutant("reward read at the last position, padding included", F,
           find="last = x[torch.arange(B, device=ids.device), lengths - 1]", replace="last = x[:, -1]",
           message="reward read at the last position"),
    Mutant("reward read at the first token", F,
           find="last = x[torch.arange(B, device=ids.device), lengths - 1]", replace="last = x[:, 0]",
           message="reward read at the first token"),
    Mutant("reward read one past the last real token", F,
           find="lengths - 1]          # (B, C)", replace="lengths.clamp(max=T - 1)]          # (B, C)"),
    Mutant("final norm of the backbone skipped", F,
           find="        x = body.norm(x)                                                   # (B, T, C)\n",
           replace=""),
    Mutant("left padding accepted", F,
           find="        if not torch.equal(mask, prefix):", replace="        if False:"),

    # ---- sequence_logprobs
    Mutant("syllabus: log-probs read one position off (no shift)", F,
           find="logp = logits[:, :-1].log_softmax(dim=-1)", replace="logp = logits[:, 1:].log_softmax(dim=-1)",
           message="no shift"),
    Mutant("syllabus: padding counted in log-probs", F,
           find="scored = response_mask.bool() & attention_mask.bool()", replace="scored = response_mask.bool()",
           message="padding counted in log-probs"),
    Mutant("per-token scores shifted to the predicting position", F,
           find="token = torch.cat([token.new_zeros(ids.shape[0], 1), token], dim=1)",
           replace="token = torch.cat([token, token.new_zeros(ids.shape[0], 1)], dim=1)"),
    Mutant("mask read at the predicting position", F,
           find="token = torch.where(scored[:, 1:], token, torch.zeros_like(token))",
           replace="token = torch.where(scored[:, :-1], token, torch.zeros_like(token))"),

    # ---- gae
    Mutant("syllabus: GAE not reset at episode ends", F,
           find="notdone = 1.0 - dones.to(values.dtype)", replace="notdone = torch.ones_like(rewards)",
           message="GAE not reset at episode ends"),
    Mutant("accumulated advantage not reset at episode ends", F,
           find="next_adv = delta + gamma * lam * notdone[..., t] * next_adv",
           replace="next_adv = delta + gamma * lam * next_adv",
           message="the accumulated advantage is not reset"),
    Mutant("bootstrap value not cut at episode ends", F,
           find="delta = rewards[..., t] + gamma * notdone[..., t] * values[..., t + 1] - values[..., t]",
           replace="delta = rewards[..., t] + gamma * values[..., t + 1] - values[..., t]",
           message="the bootstrap value is not cut"),
    Mutant("λ ignored", F,
           find="next_adv = delta + gamma * lam * notdone[..., t] * next_adv",
           replace="next_adv = delta + gamma * notdone[..., t] * next_adv"),
    Mutant("returns from the next state's values", F,
           find="return advantages, advantages + values[..., :T]", replace="return advantages, advantages + values[..., 1:]",
           message="returns computed with the next state's values"),
    Mutant("syllabus: advantages not detached (GAE)", F,
           find="    values = values.detach()\n", replace="",
           message="advantages not detached"),

    # ---- ppo_policy_loss
    Mutant("syllabus: advantages not detached (PPO)", F,
           find="    adv = advantages.detach()\n", replace="    adv = advantages\n",
           message="advantages not detached"),
    Mutant("old log-probs not detached", F,
           find="ratio = torch.exp(logp_new - logp_old.detach())", replace="ratio = torch.exp(logp_new - logp_old)",
           message="old log-probs not detached"),
    Mutant("max instead of min in the clipped objective", F,
           find="per_token = -torch.min(ratio * adv, clipped * adv)",
           replace="per_token = -torch.max(ratio * adv, clipped * adv)", message="max instead of min"),
    Mutant("ratio not clipped", F,
           find="per_token = -torch.min(ratio * adv, clipped * adv)", replace="per_token = -(ratio * adv)",
           message="ratio not clipped"),
    Mutant("syllabus: a per-sequence mean where the per-token mean is stated (length bias)", F,
           find="    return _masked_mean(per_token, mask, \"ppo_policy_loss\")\n",
           replace="    m = mask.to(per_token.dtype)\n"
                   "    _masked_mean(per_token, mask, \"ppo_policy_loss\")\n"
                   "    keep = m.sum(-1) > 0\n"
                   "    return ((per_token * m).sum(-1)[keep] / m.sum(-1)[keep]).mean()\n",
           message="length bias"),
    Mutant("objective not negated", F,
           find="per_token = -torch.min(ratio * adv, clipped * adv)",
           replace="per_token = torch.min(ratio * adv, clipped * adv)", message="objective not negated"),

    # ---- clipped_value_loss
    Mutant("min instead of max in the value loss", F,
           find="per_token = 0.5 * torch.max((values - target) ** 2, (v_clip - target) ** 2)",
           replace="per_token = 0.5 * torch.min((values - target) ** 2, (v_clip - target) ** 2)",
           message="min instead of max"),
    Mutant("value clipped around the returns", F,
           find="v_clip = old + torch.clamp(values - old, -clip_eps, clip_eps)",
           replace="v_clip = target + torch.clamp(values - target, -clip_eps, clip_eps)"),

    # ---- kl_penalty
    Mutant("syllabus: the KL penalty with the wrong sign", F,
           find="log_r = logp_ref.detach() - logp", replace="log_r = logp - logp_ref.detach()",
           message="the KL penalty with the wrong sign"),
    Mutant("syllabus: reference log-probs not detached (KL)", F,
           find="log_r = logp_ref.detach() - logp", replace="log_r = logp_ref - logp",
           message="reference log-probs not detached"),
    Mutant("k2 without the ½", F, find="return 0.5 * log_r ** 2", replace="return log_r ** 2"),

    # ---- dpo_loss
    Mutant("syllabus: chosen/rejected swapped (DPO)", F,
           find="return -F.logsigmoid(beta * (chosen - rejected)).mean()",
           replace="return -F.logsigmoid(beta * (rejected - chosen)).mean()", message="chosen and rejected swapped"),
    Mutant("syllabus: β's meaning inverted", F,
           find="return -F.logsigmoid(beta * (chosen - rejected)).mean()",
           replace="return -F.logsigmoid((chosen - rejected) / beta).mean()", message="β's meaning inverted"),
    Mutant("syllabus: reference log-probs not detached (DPO)", F,
           find="chosen = pi_chosen - ref_chosen.detach()", replace="chosen = pi_chosen - ref_chosen",
           message="reference log-probs not detached"),
    Mutant("reference log-probs added", F,
           find="chosen = pi_chosen - ref_chosen.detach()", replace="chosen = pi_chosen + ref_chosen.detach()",
           also=(Edit(F, "rejected = pi_rejected - ref_rejected.detach()",
                      "rejected = pi_rejected + ref_rejected.detach()"),),
           message="reference log-probs added instead of subtracted"),

    # ---- grpo_advantages
    Mutant("syllabus: advantages not normalised within groups", F,
           find="groups = rewards.detach().view(-1, group_size)", replace="groups = rewards.detach().view(1, -1)",
           message="not normalised within groups"),
    Mutant("not divided by the group's standard deviation", F,
           find="return ((groups - mean) / (std + eps)).reshape(-1)", replace="return (groups - mean).reshape(-1)",
           message="not divided by the group's standard deviation"),
    Mutant("population standard deviation", F,
           find="std = groups.std(dim=1, keepdim=True)", replace="std = groups.std(dim=1, keepdim=True, unbiased=False)",
           message="population standard deviation"),
    Mutant("groups interleaved", F,
           find="groups = rewards.detach().view(-1, group_size)",
           replace="groups = rewards.detach().view(group_size, -1).T",
           also=(Edit(F, "return ((groups - mean) / (std + eps)).reshape(-1)",
                      "return ((groups - mean) / (std + eps)).T.reshape(-1)"),),
           message="interleaved"),
    Mutant("syllabus: advantages not detached (GRPO)", F,
           find="groups = rewards.detach().view(-1, group_size)", replace="groups = rewards.view(-1, group_size)",
           message="advantages not detached"),

    # ---- grpo_step
    Mutant("old log-probs recomputed with the updated policy every epoch", F,
           find="        loss = ppo_policy_loss(logp, logp_old, adv_tokens.to(logp.dtype), clip_eps, response)",
           replace="        loss = ppo_policy_loss(logp, logp.detach(), adv_tokens.to(logp.dtype), clip_eps, response)"),
    Mutant("prompt tokens trained on", F,
           find="loss = ppo_policy_loss(logp, logp_old, adv_tokens.to(logp.dtype), clip_eps, response)",
           replace="loss = ppo_policy_loss(logp, logp_old, adv_tokens.to(logp.dtype), clip_eps, attention)"),
    Mutant("responses of a prompt not consecutive (repeat instead of repeat_interleave)", F,
           find="prompts.repeat_interleave(group_size, dim=0), response_len, generator)",
           replace="prompts.repeat(group_size, 1), response_len, generator)"),
    Mutant("raw rewards as advantages", F,
           find="adv = grpo_advantages(rewards, group_size)                             # (B·G,)",
           replace="adv = rewards                             # (B·G,)"),
]

VARIANTS = [
    Variant("Bradley–Terry via softplus", F,
            find="return -F.logsigmoid(r_chosen - r_rejected).mean()",
            replace="return F.softplus(r_rejected - r_chosen).mean()"),
    Variant("reward pooled with gather", F,
            find="last = x[torch.arange(B, device=ids.device), lengths - 1]          # (B, C)",
            replace="last = x.gather(1, (lengths - 1).view(B, 1, 1).expand(B, 1, x.shape[-1])).squeeze(1)"),
    Variant("log-probs by cross_entropy with ignore_index", F,
            find="""    logp = logits[:, :-1].log_softmax(dim=-1)                              # (B, T-1, V)
    token = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)          # (B, T-1) score of token t+1
""",
            replace="""    V = logits.shape[-1]
    token = -F.cross_entropy(logits[:, :-1].reshape(-1, V), ids[:, 1:].reshape(-1),
                             reduction="none").view(ids.shape[0], -1)
"""),
    Variant("GAE with a Python list and stack", F,
            find="""    advantages = torch.zeros_like(rewards)                                 # (..., T)
    next_adv = torch.zeros_like(rewards[..., 0])                           # (...,)
    for t in reversed(range(T)):
        delta = rewards[..., t] + gamma * notdone[..., t] * values[..., t + 1] - values[..., t]
        next_adv = delta + gamma * lam * notdone[..., t] * next_adv
        advantages[..., t] = next_adv
""",
            replace="""    steps = []
    next_adv = torch.zeros_like(rewards[..., 0])
    for t in range(T - 1, -1, -1):
        next_value = values[..., t + 1] * notdone[..., t]
        next_adv = rewards[..., t] + gamma * next_value - values[..., t] + gamma * lam * notdone[..., t] * next_adv
        steps.append(next_adv)
    advantages = torch.stack(steps[::-1], dim=-1)
"""),
    Variant("PPO loss as max of the negated terms, mask by multiplication", F,
            find="""    per_token = -torch.min(ratio * adv, clipped * adv)                    # (B, T)
    return _masked_mean(per_token, mask, "ppo_policy_loss")
""",
            replace="""    per_token = torch.max(-ratio * adv, -clipped * adv)                   # (B, T)
    m = mask.to(per_token.dtype)
    if not bool(m.any()):
        raise ValueError("ppo_policy_loss: the mask has no True position")
    return (per_token * m).sum() / m.sum()
"""),
    Variant("GRPO advantages with unfold-free loops over groups", F,
            find="""    groups = rewards.detach().view(-1, group_size)                         # (N / G, G)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True)
    return ((groups - mean) / (std + eps)).reshape(-1)                     # (N,)
""",
            replace="""    out = []
    for group in rewards.detach().split(group_size):
        centred = group - group.sum() / group_size
        std = (centred.pow(2).sum() / (group_size - 1)).sqrt()
        out.append(centred / (std + eps))
    return torch.cat(out)
"""),
]

# Survivors of `llmlab mutate 14_rlhf` that compute what the solution computes for every
# input the docstrings allow (the key is the id the command prints).
EQUIVALENT: dict[str, str] = {
    "rlhf.py: `-` -> `` in `return self.head(last).squeeze(-1)`":
        "head(last) is (B, 1): a 2-D tensor, so squeeze(1) is squeeze(-1)",
    "rlhf.py: `True` -> `False` in `optimizer.zero_grad(set_to_none=True)`":
        "zeroing the gradients in place clears them as well as setting them to None (the docstring asks "
        "for zero_grad, either form). Zeros and None differ only for a parameter the loss does not reach "
        "(AdamW would still decay it); the policy-gradient loss reaches every parameter of a TinyLlama "
        "policy (embedding, blocks, norms, head) each step, so the updates agree",
}
