"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 07_moe.

Each is one textual edit (or a few chained with `also`) of solutions/07_moe/moe.py.
`llmlab mutants 07_moe` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "moe.py"

MUTANTS = [
    # ---- TopKRouter.__init__
    Mutant("k = n_experts rejected (off by one in the range check)", F,
           find="if not 1 <= k <= n_experts:", replace="if not 1 <= k < n_experts:"),
    Mutant("balancing bias as a Parameter (it would get gradients)", F,
           find='self.register_buffer("expert_bias", torch.zeros(n_experts))',
           replace="self.expert_bias = nn.Parameter(torch.zeros(n_experts))",
           message="must be a buffer"),
    Mutant("gate with a bias", F,
           find="self.gate = nn.Linear(d_model, n_experts, bias=False)",
           replace="self.gate = nn.Linear(d_model, n_experts)"),

    # ---- TopKRouter.forward
    Mutant("softmax over the token axis", F,
           find="probs = logits.softmax(dim=-1)", replace="probs = logits.softmax(dim=0)",
           message="softmax over the token axis"),
    Mutant("ties broken by torch.topk", F,
           find="order = torch.sort(scores, dim=-1, descending=True, stable=True).indices\n"
                "        indices = order[..., :self.k]",
           replace="indices = torch.topk(scores, self.k, dim=-1).indices",
           message="ties not broken towards the lower expert index"),
    Mutant("bias ignored in the selection", F,
           find="scores = (probs + self.expert_bias).detach()", replace="scores = probs.detach()",
           message="expert_bias ignored in the selection"),
    Mutant("bias added to the logits for the selection", F,
           find="scores = (probs + self.expert_bias).detach()", replace="scores = (logits + self.expert_bias).detach()",
           message="logits + expert_bias instead of probs + expert_bias"),
    Mutant("bias enters the mixture weights", F,
           find="chosen = probs.gather(-1, indices)", replace="chosen = (probs + self.expert_bias).gather(-1, indices)",
           message="expert_bias entered the mixture weights"),
    Mutant("weights not renormalised", F,
           find="weights = chosen / chosen.sum(dim=-1, keepdim=True)", replace="weights = chosen",
           message="weights not renormalised"),
    Mutant("weights always renormalised (normalize ignored)", F,
           find="        else:\n            weights = chosen\n",
           replace="        else:\n            weights = chosen / chosen.sum(dim=-1, keepdim=True)\n",
           message="weights renormalised although normalize=False"),
    Mutant("weights detached (no gradient reaches the router)", F,
           find="chosen = probs.gather(-1, indices)", replace="chosen = probs.detach().gather(-1, indices)"),
    Mutant("ascending order: the k weakest experts", F,
           find="torch.sort(scores, dim=-1, descending=True, stable=True)",
           replace="torch.sort(scores, dim=-1, descending=False, stable=True)"),

    # ---- TopKRouter.update_bias
    Mutant("bias update with the sign inverted", F,
           find="self.expert_bias += rate * torch.sign(mean - load.to(self.expert_bias.dtype))",
           replace="self.expert_bias -= rate * torch.sign(mean - load.to(self.expert_bias.dtype))",
           message="sign inverted"),
    Mutant("bias update proportional to the load difference", F,
           find="self.expert_bias += rate * torch.sign(mean - load.to(self.expert_bias.dtype))",
           replace="self.expert_bias += rate * (mean - load.to(self.expert_bias.dtype))",
           message="proportional to the load difference"),
    Mutant("load counted from the first choice only", F,
           find="load = torch.bincount(indices.reshape(-1), minlength=self.n_experts)",
           replace="load = torch.bincount(indices[..., 0].reshape(-1), minlength=self.n_experts)",
           message="first choice only"),
    Mutant("bias replaced instead of updated in place", F,
           find="self.expert_bias += rate * torch.sign(mean - load.to(self.expert_bias.dtype))",
           replace="self.expert_bias = self.expert_bias + rate * torch.sign(mean - load.to(self.expert_bias.dtype))",
           message="in place"),

    # ---- load_balancing_loss
    Mutant("balancing loss without the factor E", F,
           find="return E * (f * P).sum()", replace="return (f * P).sum()",
           message="the factor E (n_experts) missing"),
    Mutant("f_i as a share of tokens, not of assignments", F,
           find="f = counts.to(P.dtype) / expert_indices.numel()",
           replace="f = counts.to(P.dtype) / expert_indices.reshape(-1, expert_indices.shape[-1]).shape[0]",
           message="divided by N instead of N·k"),
    Mutant("balancing loss: softmax over the token axis", F,
           find="P = router_logits.softmax(dim=-1).reshape(-1, E).mean(dim=0)",
           replace="P = router_logits.reshape(-1, E).softmax(dim=0).mean(dim=0)",
           message="softmax over the token axis"),
    Mutant("balancing loss: leading shapes not checked", F,
           find="if router_logits.shape[:-1] != expert_indices.shape[:-1]:", replace="if False:"),

    # ---- router_z_loss
    Mutant("z-loss not squared", F, find="return (z ** 2).mean()", replace="return z.mean()",
           message="not squared"),
    Mutant("z-loss summed over tokens", F, find="return (z ** 2).mean()", replace="return (z ** 2).sum()",
           message="summed over tokens"),
    Mutant("z-loss by log(sum(exp)) (overflows)", F,
           find="z = torch.logsumexp(router_logits, dim=-1)",
           replace="z = torch.log(torch.exp(router_logits).sum(dim=-1))", message="exp(1000) overflows"),

    # ---- expert_capacity
    Mutant("capacity rounded down", F, find="return math.ceil(capacity_factor * n_tokens * k / n_experts)",
           replace="return math.floor(capacity_factor * n_tokens * k / n_experts)", message="rounded down"),
    Mutant("capacity without k", F, find="return math.ceil(capacity_factor * n_tokens * k / n_experts)",
           replace="return math.ceil(capacity_factor * n_tokens / n_experts)", message="k left out"),

    # ---- MoELayer.__init__
    Mutant("capacity_factor not validated", F,
           find="if capacity_factor is not None and capacity_factor <= 0:", replace="if False:"),

    # ---- MoELayer.forward
    Mutant("capacity served token by token", F,
           find="queue = F.one_hot(indices.t().reshape(-1), E)", replace="queue = F.one_hot(indices.reshape(-1), E)",
           also=(Edit(F, "kept = (slot < capacity).view(k, N).t()", "kept = (slot < capacity).view(N, k)"),),
           message="token by token"),
    Mutant("capacity ignored", F, find="kept = (slot < capacity).view(k, N).t()",
           replace="kept = (slot < capacity + N * k).view(k, N).t()", message="capacity ignored"),
    Mutant("an expert accepts capacity + 1 assignments", F, find="kept = (slot < capacity).view(k, N).t()",
           replace="kept = (slot <= capacity).view(k, N).t()", message="off by one"),
    Mutant("dropped assignments' weight given to the kept ones", F,
           find="            y = expert(tokens[token_ids])                                      # (n_e, C)\n",
           replace="            y = expert(tokens[token_ids])                                      # (n_e, C)\n"
                   "            kw = weights * kept\n"
                   "            kw = kw / kw.sum(-1, keepdim=True).clamp_min(1e-30)\n",
           also=(Edit(F, "y * weights[token_ids, rank, None]", "y * kw[token_ids, rank, None]"),),
           message="renormalised over the kept assignments"),
    Mutant("weights not applied", F, find="y * weights[token_ids, rank, None]", replace="y",
           message="summed without their weights"),
    Mutant("shared expert left out", F,
           find="            out = out + self.shared(tokens)                                    # (N, C)\n",
           replace="            pass\n", message="shared expert left out"),
    Mutant("a Python loop over tokens", F,
           find="""            y = expert(tokens[token_ids])                                      # (n_e, C)
            out = out.index_add(0, token_ids, y * weights[token_ids, rank, None])""",
           replace="""            for t, j in zip(token_ids.tolist(), rank.tolist()):
                out = out.index_add(0, torch.tensor([t]), expert(tokens[t:t + 1]) * weights[t, j])""",
           message="at most once"),
]

VARIANTS = [
    Variant("selection by argsort of the negated scores (stable), weights by a softmax of the chosen logits", F,
            find="order = torch.sort(scores, dim=-1, descending=True, stable=True).indices",
            replace="order = torch.argsort(-scores, dim=-1, stable=True)",
            also=(Edit(F, "weights = chosen / chosen.sum(dim=-1, keepdim=True)                # (..., k)",
                       "weights = logits.gather(-1, indices).softmax(dim=-1)               # (..., k)"),)),
    Variant("capacity slots by a loop over the k ranks with running counts", F,
            find="""            queue = F.one_hot(indices.t().reshape(-1), E)                      # (k·N, E) rank-major
            slot = (queue.cumsum(dim=0) * queue).sum(dim=-1) - 1               # (k·N,) place in its queue
            kept = (slot < capacity).view(k, N).t()                            # (N, k)""",
            replace="""            filled = torch.zeros(E, dtype=torch.long)
            columns = []
            for j in range(k):
                hot = F.one_hot(indices[:, j], E)                              # (N, E)
                slot = ((hot.cumsum(dim=0) - 1 + filled) * hot).sum(dim=-1)    # (N,)
                columns.append(slot < capacity)
                filled = filled + hot.sum(dim=0)
            kept = torch.stack(columns, dim=1)                                 # (N, k)"""),
    Variant("dispatch by sorting the kept assignments by expert and splitting", F,
            find="""        out = torch.zeros_like(tokens)                                         # (N, C)
        for e, expert in enumerate(self.experts):
            token_ids, rank = torch.where((indices == e) & kept)               # (n_e,), (n_e,)
            if token_ids.numel() == 0:
                continue
            y = expert(tokens[token_ids])                                      # (n_e, C)
            out = out.index_add(0, token_ids, y * weights[token_ids, rank, None])""",
            replace="""        flat_expert = torch.where(kept, indices, E).reshape(-1)               # (N·k,) E = dropped
        order = torch.argsort(flat_expert, stable=True)
        token_of = torch.arange(N).repeat_interleave(k)[order]
        gate_of = weights.reshape(-1)[order]
        counts = torch.bincount(flat_expert, minlength=E + 1).tolist()
        pieces = []
        start = 0
        for e, expert in enumerate(self.experts):
            ids = token_of[start:start + counts[e]]
            pieces.append(expert(tokens[ids]) * gate_of[start:start + counts[e], None])
            start += counts[e]
        contributions = torch.cat(pieces, dim=0)                               # (kept, C)
        out = torch.zeros_like(tokens).index_add(0, token_of[:start], contributions)"""),
    Variant("losses by one-hot means and an explicit max shift; bias step by torch.where", F,
            find="""    counts = torch.bincount(expert_indices.reshape(-1), minlength=E)          # (E,)
    f = counts.to(P.dtype) / expert_indices.numel()                           # (E,)""",
            replace="""    f = F.one_hot(expert_indices.reshape(-1), E).to(P.dtype).mean(dim=0)     # (E,)""",
            also=(Edit(F, "z = torch.logsumexp(router_logits, dim=-1)                                # (...)",
                       "m = router_logits.amax(dim=-1, keepdim=True).detach()\n"
                       "    z = (m + (router_logits - m).exp().sum(dim=-1, keepdim=True).log()).squeeze(-1)"),
                  Edit(F, "self.expert_bias += rate * torch.sign(mean - load.to(self.expert_bias.dtype))",
                       "diff = mean - load.to(self.expert_bias.dtype)\n"
                       "            step = torch.where(diff > 0, 1.0, torch.where(diff < 0, -1.0, 0.0)).to(diff.dtype)\n"
                       "            self.expert_bias.add_(rate * step)"))),
]

# Survivors of `llmlab mutate 07_moe` that compute what the solution computes for every
# input the docstrings allow (the key is the id the command prints).
EQUIVALENT = {
    "moe.py: `-` -> `` in `slot = (queue.cumsum(dim=0) * queue).sum(dim=-1) - 1`":
        "queue is the 2-D one-hot matrix (k·N, E), so .sum(dim=1) is .sum(dim=-1)",
}
