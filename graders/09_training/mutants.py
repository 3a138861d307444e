"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 09_training.

Each is one textual edit (or a few chained with `also`) of solutions/09_training/training.py.
`llmlab mutants 09_training` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "training.py"

MUTANTS = [
    # ---- cross_entropy
    Mutant("log-sum-exp without subtracting the max", F,
           find="lse = m.squeeze(-1) + torch.log(torch.exp(z - m).sum(dim=-1))",
           replace="lse = torch.log(torch.exp(z).sum(dim=-1))",
           message="log-sum-exp without subtracting the max"),
    Mutant("mean over all positions, ignored ones in the divisor", F,
           find="return losses.sum() / keep.sum()", replace="return losses.sum() / keep.numel()",
           message="ignored ones included in the divisor"),
    Mutant("sum instead of mean", F,
           find="return losses.sum() / keep.sum()", replace="return losses.sum()",
           message="sum instead of mean"),
    Mutant("ignored positions not masked out of the loss", F,
           find="losses = torch.where(keep, lse - picked, torch.zeros_like(lse))", replace="losses = lse - picked"),
    Mutant("ignore_index argument ignored (always -100)", F,
           find="keep = t != ignore_index ", replace="keep = t != -100 ",
           message="ignore_index argument ignored"),
    Mutant("out-of-range targets not rejected", F,
           find="if bool(bad.any()):", replace="if False:"),

    # ---- AdamW
    Mutant("Adam + L2: weight decay added to the gradient", F,
           find="                g = p.grad\n", replace="                g = p.grad + wd * p\n",
           also=(Edit(F, "                p.mul_(1 - lr * wd)                                     # decoupled decay\n", ""),),
           message="Adam + L2"),
    Mutant("bias correction missing", F,
           find="m_hat = m / (1 - beta1 ** t)\n                v_hat = v / (1 - beta2 ** t)",
           replace="m_hat = m\n                v_hat = v", message="bias correction missing"),
    Mutant("bias correction applied to the wrong moment", F,
           find="m_hat = m / (1 - beta1 ** t)\n                v_hat = v / (1 - beta2 ** t)",
           replace="m_hat = m / (1 - beta2 ** t)\n                v_hat = v / (1 - beta1 ** t)",
           message="bias correction applied to the wrong moment"),
    Mutant("eps inside the square root", F,
           find="p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)",
           replace="p.addcdiv_(m_hat, v_hat.add(eps).sqrt(), value=-lr)", message="eps inside the square root"),
    Mutant("decay not scaled by the learning rate", F,
           find="p.mul_(1 - lr * wd)", replace="p.mul_(1 - wd)",
           message="weight decay not scaled by the learning rate"),
    Mutant("one step counter shared by all parameters", F,
           find="                t = state[\"step\"]\n", replace="                t = self.t\n",
           also=(Edit(F, "        for group in self.param_groups:\n",
                      "        self.t = getattr(self, \"t\", 0) + 1\n        for group in self.param_groups:\n"),)),
    Mutant("lr cached at construction", F,
           find='lr, (beta1, beta2), eps, wd = group["lr"],', replace='lr, (beta1, beta2), eps, wd = self.defaults["lr"],',
           message="lr read once at construction"),
    Mutant("parameters without a gradient decayed anyway", F,
           find="                if p.grad is None:\n                    continue\n",
           replace="                if p.grad is None:\n                    p.mul_(1 - lr * wd)\n                    continue\n",
           message="weight decay applied to parameters without a gradient"),
    Mutant("closure not called", F,
           find="                loss = closure()", replace="                loss = None"),
    Mutant("negative lr accepted", F, find="if lr < 0:", replace="if lr < -1:"),

    # ---- lr_schedule
    Mutant("warmup off by one", F,
           find="return max_lr * (step + 1) / warmup", replace="return max_lr * step / warmup",
           message="warmup off by one"),
    Mutant("cosine over total steps instead of total - warmup", F,
           find="progress = (step - warmup) / (total - warmup)", replace="progress = (step - warmup) / total",
           message="cosine decays over `total` steps"),
    Mutant("decay to zero instead of min_lr", F,
           find="return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))",
           replace="return 0.5 * max_lr * (1.0 + math.cos(math.pi * progress))",
           message="decays to 0 instead of min_lr"),
    Mutant("min_lr > max_lr accepted", F, find="if not 0 <= min_lr <= max_lr:", replace="if not 0 <= min_lr:"),

    # ---- clip_grad_norm
    Mutant("clipping each parameter separately", F,
           find="""    total = torch.sqrt(sum((g.detach() ** 2).sum() for g in grads))   # 0-d, the global norm
    coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)
    for g in grads:
        g.detach().mul_(coef)
""",
           replace="""    total = torch.sqrt(sum((g.detach() ** 2).sum() for g in grads))   # 0-d, the global norm
    for g in grads:
        g.detach().mul_(torch.clamp(max_norm / (g.norm() + 1e-6), max=1.0))
""", message="clipping each parameter separately"),
    Mutant("always rescales to max_norm", F,
           find="coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)", replace="coef = max_norm / (total + 1e-6)",
           message="always rescales to max_norm"),
    Mutant("returns the norm after clipping", F,
           find="        g.detach().mul_(coef)\n    return total", replace="        g.detach().mul_(coef)\n    return total * coef",
           message="returns the norm after clipping"),
    Mutant("clipped copies instead of the .grad tensors", F,
           find="    for g in grads:\n        g.detach().mul_(coef)",
           replace="    for p in [q for q in grads]:\n        p = p * coef"),

    # ---- train_step
    Mutant("accumulation without dividing by the number of micro-batches", F,
           find="(loss / k).backward()", replace="loss.backward()",
           message="accumulation without dividing by the number of micro-batches"),
    Mutant("gradients cleared inside the accumulation loop", F,
           find="    optimizer.zero_grad()\n    total = 0.0\n    for x, y in micro_batches:\n",
           replace="    total = 0.0\n    for x, y in micro_batches:\n        optimizer.zero_grad()\n",
           message="only the last micro-batch counts"),
    Mutant("old gradients never cleared", F,
           find="    optimizer.zero_grad()\n    total = 0.0", replace="    total = 0.0",
           message="old gradients not cleared"),
    Mutant("clipping each micro-batch", F,
           find="""        total += loss.item()
    if max_norm is not None:
        clip_grad_norm(model.parameters(), max_norm)
""", replace="""        total += loss.item()
        if max_norm is not None:
            clip_grad_norm(model.parameters(), max_norm)
""", message="clipping each micro-batch"),
    Mutant("optimizer stepped after every micro-batch", F,
           find="        total += loss.item()\n", replace="        total += loss.item()\n        optimizer.step()\n",
           message="optimizer stepped after every micro-batch"),
    Mutant("returns the summed loss", F, find="    return total / k\n", replace="    return total\n",
           message="returns the sum of the micro-batch losses"),

    # ---- sft_labels
    Mutant("the SFT mask drops the end-of-turn token", F,
           find="(tokens if role == \"assistant\" else", replace="(tokens[:-1] + [ignore_index] if role == \"assistant\" else",
           message="the SFT mask drops the end-of-turn token"),
    Mutant("loss on the assistant header", F,
           find="labels += [ignore_index] + (tokens",
           replace="labels += [header_ids[role] if role == \"assistant\" else ignore_index] + (tokens",
           message="loss on the assistant header token too"),
    Mutant("loss on every token", F,
           find="labels += [ignore_index] + (tokens if role == \"assistant\" else [ignore_index] * len(tokens))",
           replace="labels += [header_ids[role]] + tokens", message="loss on every token"),
    Mutant("unknown roles accepted", F,
           find="        if role not in header_ids:\n", replace="        if role not in header_ids and False:\n"),

    # ---- checkpoints
    Mutant("a checkpoint without the RNG state", F,
           find="    torch.set_rng_state(checkpoint[\"rng\"])\n", replace="",
           message="a checkpoint without the RNG state"),
    Mutant("a checkpoint without the optimizer state", F,
           find="    optimizer.load_state_dict(checkpoint[\"optimizer\"])\n", replace="",
           message="a checkpoint without the optimizer state"),
    Mutant("the step not restored", F,
           find="    return int(checkpoint[\"step\"])", replace="    return 0"),
    Mutant("the checkpoint pickles the optimizer object", F,
           find='torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),',
           replace='torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "opt": optimizer,'),
]

VARIANTS = [
    Variant("AdamW: decay applied after the Adam update (the other documented ordering)", F,
            find="                p.mul_(1 - lr * wd)                                     # decoupled decay\n",
            replace="",
            also=(Edit(F, "p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)",
                       "p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)\n                p.mul_(1 - lr * wd)"),)),
    Variant("AdamW: PyTorch's formulation (step size lr / bc1, denominator sqrt(v) / sqrt(bc2) + eps)", F,
            find="""                m_hat = m / (1 - beta1 ** t)
                v_hat = v / (1 - beta2 ** t)
                p.addcdiv_(m_hat, v_hat.sqrt().add_(eps), value=-lr)""",
            replace="""                step_size = lr / (1 - beta1 ** t)
                denom = (v.sqrt() / math.sqrt(1 - beta2 ** t)).add_(eps)
                p.addcdiv_(m, denom, value=-step_size)"""),
    Variant("cross_entropy: log-sum-exp by hand with the max kept in the graph, loss by a mask product", F,
            find="""    m = z.max(dim=-1, keepdim=True).values.detach()                     # (N, 1) the shift: no gradient needed
    lse = m.squeeze(-1) + torch.log(torch.exp(z - m).sum(dim=-1))       # (N,)
    safe = torch.where(keep, t, torch.zeros_like(t))                    # (N,) ignored -> any valid id
    picked = z.gather(-1, safe[:, None]).squeeze(-1)                    # (N,)
    losses = torch.where(keep, lse - picked, torch.zeros_like(lse))     # (N,)
    return losses.sum() / keep.sum()""",
            replace="""    m = z.amax(dim=-1, keepdim=True)
    lse = (z - m).exp().sum(-1).log() + m[:, 0]
    onehot = torch.zeros_like(z).scatter_(-1, (t * keep)[:, None], 1.0)
    picked = (z * onehot).sum(-1)
    return ((lse - picked) * keep.to(z.dtype)).sum() / keep.sum().to(z.dtype)"""),
    Variant("lr_schedule with the cosine written as a sine-squared, clip with torch.linalg norms", F,
            find="    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))",
            replace="    return max_lr - (max_lr - min_lr) * math.sin(math.pi * progress / 2) ** 2",
            also=(Edit(F, "    total = torch.sqrt(sum((g.detach() ** 2).sum() for g in grads))   # 0-d, the global norm",
                       "    total = torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))"),
                  Edit(F, "coef = torch.clamp(max_norm / (total + 1e-6), max=1.0)",
                       "coef = (max_norm / (total + 1e-6)).clamp(max=1.0)"))),
    Variant("train_step: loss scaled by 1/k through a weight, zero_grad(set_to_none=False); sft by slices", F,
            find="    optimizer.zero_grad()\n", replace="    optimizer.zero_grad(set_to_none=False)\n",
            also=(Edit(F, "(loss / k).backward()", "loss.backward(torch.tensor(1.0 / k, dtype=loss.dtype))"),
                  Edit(F, "        labels += [ignore_index] + (tokens if role == \"assistant\" else [ignore_index] * len(tokens))",
                       "        labels += [ignore_index] * (len(tokens) + 1)\n"
                       "        if role == \"assistant\":\n"
                       "            labels[len(labels) - len(tokens):] = tokens"))),
]

# Survivors of `llmlab mutate 09_training` that compute what the solution computes for every
# input the docstrings allow (the key is the id the command prints).
_TWO_D = ("z and t are reshaped to (N, V) and (N,) just above, so on these 2-D tensors dim=1 is dim=-1 "
           "(and squeeze(1) is squeeze(-1))")
EQUIVALENT = {
    "training.py: `-` -> `` in `m = z.max(dim=-1, keepdim=True).values.detach()`": _TWO_D,
    "training.py: `-` -> `` in `lse = m.squeeze(-1) + torch.log(torch.exp(z - m).sum(dim=-1))`": _TWO_D,
    "training.py: `-` -> `` (#2) in `lse = m.squeeze(-1) + torch.log(torch.exp(z - m).sum(dim=-1))`": _TWO_D,
    "training.py: `-` -> `` in `picked = z.gather(-1, safe[:, None]).squeeze(-1)`": _TWO_D,
    "training.py: `-` -> `` (#2) in `picked = z.gather(-1, safe[:, None]).squeeze(-1)`": _TWO_D,
}
