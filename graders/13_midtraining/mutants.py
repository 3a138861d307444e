"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 13_midtraining.

Each is one textual edit (or a few chained with `also`) of solutions/13_midtraining/midtraining.py.
`llmlab mutants 13_midtraining` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "midtraining.py"

MUTANTS = [
    # ---- wsd_schedule
    Mutant("WSD warmup off by one (0 at step 0)", F,
           find="return max_lr * (step + 1) / warmup", replace="return max_lr * step / warmup",
           message="warmup off by one"),
    Mutant("WSD linear cool-down decays to 0 instead of min_lr", F,
           find="return max_lr - (max_lr - min_lr) * progress", replace="return max_lr - max_lr * progress",
           message="decays to 0 instead of min_lr"),
    Mutant("WSD without its plateau (cool-down right after warmup)", F,
           find="d = step - (warmup + stable)", replace="d = step - warmup",
           message="no plateau"),
    Mutant("WSD cool-down shape ignored (always linear)", F,
           find='if shape == "linear":', replace="if True:",
           message="cool-down shape ignored"),
    Mutant("WSD 1 − sqrt cool-down written with a square", F,
           find="math.sqrt(progress)", replace="progress ** 2"),
    Mutant("WSD plateau ends one step late", F,
           find="    if d < 0:\n        return float(max_lr)", replace="    if d <= 0:\n        return float(max_lr)"),

    # ---- rewarm_schedule
    Mutant("re-warm with the (step + 1) warmup convention", F,
           find="return start_lr + (max_lr - start_lr) * step / rewarm",
           replace="return start_lr + (max_lr - start_lr) * (step + 1) / rewarm",
           message="step 0 is not start_lr"),
    Mutant("re-warm climbs from 0 instead of start_lr", F,
           find="return start_lr + (max_lr - start_lr) * step / rewarm", replace="return max_lr * step / rewarm",
           message="climbs from 0"),
    Mutant("re-warm cosine decays over total steps", F,
           find="progress = (step - rewarm) / (total - rewarm)", replace="progress = (step - rewarm) / total",
           message="instead of total − rewarm"),
    Mutant("start_lr above max_lr accepted", F,
           find="if not 0 <= start_lr <= max_lr:", replace="if not 0 <= start_lr:"),

    # ---- mixture_schedule
    Mutant("mixture weights not normalised", F,
           find="p = [w / sum(start) for w in start]", replace="p = list(start)",
           also=(Edit(F, "q = [w / sum(end) for w in end]", "q = list(end)"),),
           message="not normalised"),
    Mutant("mixture annealed the wrong way", F,
           find="return [(1.0 - a) * pi + a * qi for pi, qi in zip(p, q)]",
           replace="return [a * pi + (1.0 - a) * qi for pi, qi in zip(p, q)]",
           message="wrong way"),
    Mutant("mixture interpolation not clamped after the anneal", F,
           find="elif step >= anneal_start + anneal_steps:", replace="elif anneal_steps == 0:",
           message="not clamped"),
    Mutant("negative mixture weights accepted", F,
           find="if any(not math.isfinite(w) or w < 0 for w in weights):",
           replace="if any(not math.isfinite(w) for w in weights):"),

    # ---- replay_batch
    Mutant("replay row count truncated with int()", F,
           find="n_old = round(replay_fraction * batch_size)", replace="n_old = int(replay_fraction * batch_size)",
           message="truncated with int()"),
    Mutant("replay row count rounded half up", F,
           find="n_old = round(replay_fraction * batch_size)",
           replace="n_old = math.floor(replay_fraction * batch_size + 0.5)",
           message="rounded half up"),
    Mutant("replay fraction used as the share of new rows", F,
           find="n_old = round(replay_fraction * batch_size)", replace="n_old = batch_size - round(replay_fraction * batch_size)",
           message="share of NEW rows"),
    Mutant("new rows placed before the old rows", F,
           find="return torch.cat(xs), torch.cat(ys)", replace="return torch.cat(xs[::-1]), torch.cat(ys[::-1])",
           message="new rows placed before the old rows"),
    Mutant("replay windows ignore the generator", F,
           find="x_old, y_old = random_windows(old_data, n_old, block_size, generator)",
           replace="x_old, y_old = random_windows(old_data, n_old, block_size)"),
    Mutant("replayed rows drawn from the new data", F,
           find="x_old, y_old = random_windows(old_data, n_old, block_size, generator)",
           replace="x_old, y_old = random_windows(new_data, n_old, block_size, generator)"),

    # ---- average_checkpoints
    Mutant("checkpoint weights not normalised", F,
           find="w = [float(x) / total for x in weights]", replace="w = [float(x) for x in weights]",
           message="weights not normalised"),
    Mutant("checkpoint weights ignored (a plain mean)", F,
           find="w = [float(x) / total for x in weights]", replace="w = [1.0 / len(weights) for x in weights]",
           message="weights ignored"),
    Mutant("non-floating entries averaged, never compared", F,
           find="        if v.is_floating_point():\n            acc", replace="        if True:\n            acc"),
    Mutant("non-floating entries returned without a copy", F,
           find="out[k] = v.clone()", replace="out[k] = v",
           message="shares memory with the input"),
    Mutant("checkpoints accumulated in their own dtype (float32)", F,
           find="acc = sum(wi * sd[k].to(torch.float64) for wi, sd in zip(w, state_dicts))",
           replace="acc = sum(wi * sd[k] for wi, sd in zip(w, state_dicts))",
           message="accumulated in float32"),
    Mutant("mismatched shapes not rejected", F,
           find="if sd[k].shape != v.shape or sd[k].dtype != v.dtype:", replace="if sd[k].dtype != v.dtype:"),

    # ---- EMA
    Mutant("EMA decay and 1 − decay swapped", F,
           find="self.shadow[k].mul_(self.decay).add_(v, alpha=1.0 - self.decay)",
           replace="self.shadow[k].mul_(1.0 - self.decay).add_(v, alpha=self.decay)",
           message="decay and 1 − decay swapped"),
    Mutant("EMA shadow shares memory with the model", F,
           find="self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}",
           replace="self.shadow = {k: v.detach() for k, v in model.state_dict().items()}"),
    Mutant("EMA averages the parameters only (buffers ignored)", F,
           find="            for k, v in model.state_dict().items():\n                if v.is_floating_point():",
           replace="            for k, v in model.named_parameters():\n                if v.is_floating_point():"),
    Mutant("EMA updates not counted", F,
           find="        self.num_updates += 1\n", replace=""),
    Mutant("EMA decay not validated", F,
           find="if not 0.0 <= decay <= 1.0:", replace="if False:"),

    # ---- continue_pretraining
    Mutant("learning rate never set from the schedule", F,
           find='            group["lr"] = lr\n', replace="            pass\n",
           message="learning rate never set"),
    Mutant("gradients not clipped", F,
           find="        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)\n", replace="",
           message="not clipped"),
    Mutant("gradients never cleared", F,
           find="        optimizer.zero_grad(set_to_none=True)\n", replace=""),
    Mutant("Adam's default betas instead of (0.9, 0.95)", F,
           find="optimizer = torch.optim.AdamW(model.parameters(), lr=max_lr, betas=(0.9, 0.95), weight_decay=0.1)",
           replace="optimizer = torch.optim.AdamW(model.parameters(), lr=max_lr, weight_decay=0.1)"),
    Mutant("EMA never updated during the run", F,
           find="        if ema is not None:\n            ema.update(model)\n", replace=""),
]

VARIANTS = [
    Variant("mixture weights through float64 tensors and torch.lerp", F,
            find="""    p = [w / sum(start) for w in start]
    q = [w / sum(end) for w in end]
""",
            replace="""    p_t = torch.tensor([float(w) for w in start], dtype=torch.float64)
    q_t = torch.tensor([float(w) for w in end], dtype=torch.float64)
    p, q = (p_t / p_t.sum()).tolist(), (q_t / q_t.sum()).tolist()
"""),
    Variant("replay rows gathered by a loop over (stream, count) pairs", F,
            find="""    xs, ys = [], []
    if n_old > 0:
        x_old, y_old = random_windows(old_data, n_old, block_size, generator)             # (n_old, T)
        xs.append(x_old)
        ys.append(y_old)
    if batch_size - n_old > 0:
        x_new, y_new = random_windows(new_data, batch_size - n_old, block_size, generator)  # (B − n_old, T)
        xs.append(x_new)
        ys.append(y_new)
""",
            replace="""    parts = [random_windows(data, n, block_size, generator)
             for data, n in ((old_data, n_old), (new_data, batch_size - n_old)) if n > 0]
    xs, ys = [p[0] for p in parts], [p[1] for p in parts]
"""),
    Variant("average by stacking and a weighted sum over the new axis", F,
            find="""            acc = sum(wi * sd[k].to(torch.float64) for wi, sd in zip(w, state_dicts))
""",
            replace="""            stacked = torch.stack([sd[k].to(torch.float64) for sd in state_dicts])        # (N, ...)
            coef = torch.tensor(w, dtype=torch.float64).view(-1, *([1] * v.dim()))
            acc = (coef * stacked).sum(dim=0)
"""),
    Variant("EMA update with lerp_", F,
            find="self.shadow[k].mul_(self.decay).add_(v, alpha=1.0 - self.decay)",
            replace="self.shadow[k].lerp_(v, 1.0 - self.decay)"),
]

# Survivors of `llmlab mutate 13_midtraining` that compute what the solution computes for
# every input the docstrings allow (the key is the id the command prints).
_LABEL_ONLY = ("only the index printed in the error message changes: every state dict after the first "
               "is still compared with the first (comparing the first with itself is a no-op), so the same "
               "inputs raise the same ValueError and the rest return the same average")
EQUIVALENT = {
    "midtraining.py: `1` -> `0` in `if batch_size < 1:`":
        "batch_size 0 (or negative) then draws no rows at all, and `torch.cat([])` raises ValueError "
        "itself: the same exception the docstring promises, for exactly the same inputs",
    "midtraining.py: `1` -> `0` in `for i, sd in enumerate(state_dicts[1:], start=1):`": _LABEL_ONLY,
    "midtraining.py: `1` -> `0` (#2) in `for i, sd in enumerate(state_dicts[1:], start=1):`": _LABEL_ONLY,
    "midtraining.py: `1` -> `2` (#2) in `for i, sd in enumerate(state_dicts[1:], start=1):`": _LABEL_ONLY,
    "midtraining.py: `1.0` -> `2.0` in `weights = [1.0] * len(state_dicts)`":
        "the default weights are normalised by their sum right after, so any equal positive constant "
        "gives w_i = 1/N",
    "midtraining.py: `1` -> `0` in `if any(not torch.equal(sd[k], v) for sd in state_dicts[1:]):`":
        "the extra comparison is of state_dicts[0] with itself, always equal: the same inputs raise",
    "midtraining.py: `True` -> `False` in `optimizer.zero_grad(set_to_none=True)`":
        "the docstring says only 'clear the old gradients': zeroing in place is the same clearing. "
        "Zeros and None differ only for a parameter that got a gradient on one step and none on a "
        "later one; the loss of a fixed model reaches the same parameters every step (a parameter "
        "the loss never reaches keeps grad None either way), so AdamW makes the same updates",
}
