"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 12_lora.

Each is one textual edit (or a few chained with `also`) of solutions/12_lora/lora.py.
`llmlab mutants 12_lora` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "lora.py"

MUTANTS = [
    # ---- the syllabus' known mistakes
    Mutant("forgetting to freeze the rest of the model", F,
           find="""    for p in model.parameters():
        p.requires_grad_(False)                                       # freeze the whole model first
""", replace="", message="forgot to freeze the rest of the model"),
    Mutant("scale r/α instead of α/r", F,
           find="self.scaling = alpha / r", replace="self.scaling = r / alpha", message="scale r/α instead of α/r"),
    Mutant("B random and A zero (initialisations swapped)", F,
           find="""        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype, device=w.device)
                                   .uniform_(-bound, bound))          # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=w.dtype, device=w.device))  # (out, r)""",
           replace="""        self.lora_A = nn.Parameter(torch.zeros(r, base.in_features, dtype=w.dtype, device=w.device))
        self.lora_B = nn.Parameter(torch.empty(base.out_features, r, dtype=w.dtype, device=w.device)
                                   .uniform_(-bound, bound))""",
           message="B random and A zero"),

    # ---- LoRALinear
    Mutant("base layer not frozen by LoRALinear", F,
           find="""        for p in base.parameters():
            p.requires_grad_(False)                                   # the pretrained layer stays frozen
""", replace=""),
    Mutant("A drawn from N(0, 1)", F, find=".uniform_(-bound, bound))          # (r, in)",
           replace=".normal_())          # (r, in)"),
    Mutant("update not scaled", F, find="return out + self.scaling * (low_rank @ self.lora_B.T)",
           replace="return out + (low_rank @ self.lora_B.T)", message="update not scaled"),
    Mutant("dropout on the base path too", F, find="out = self.base(x)                                            # (..., out)",
           replace="out = self.base(self.dropout(x))"),
    Mutant("merged layer still adds the adapter path", F,
           find="""        if self.merged:
            return out
""", replace="", message="update applied twice"),
    Mutant("delta_weight transposed", F, find="return self.scaling * (self.lora_B @ self.lora_A)",
           replace="return self.scaling * (self.lora_A.T @ self.lora_B.T)"),

    # ---- merge / unmerge
    Mutant("merging an already merged layer again", F,
           find="if isinstance(module, LoRALinear) and not module.merged:", replace="if isinstance(module, LoRALinear):",
           message="merged twice"),
    Mutant("unmerge adds the update again", F, find="module.base.weight -= module.delta_weight()",
           replace="module.base.weight += module.delta_weight()"),
    Mutant("merge subtracts the update", F, find="module.base.weight += module.delta_weight()",
           replace="module.base.weight -= module.delta_weight()", message="update subtracted"),

    # ---- apply_lora, trainable_fraction, state dicts
    Mutant("a str of targets not rejected", F,
           find="""    if isinstance(targets, str):
        raise TypeError""", replace="""    if False:
        raise TypeError"""),
    Mutant("tied parameters counted twice", F, find="for p in model.parameters():\n        total += p.numel()",
           replace="for p in model.parameters(remove_duplicate=False):\n        total += p.numel()"),
    Mutant("saved adapters share memory with the model", F,
           find='state[dot + "lora_B"] = module.lora_B.detach().clone()', replace='state[dot + "lora_B"] = module.lora_B.detach()'),
    Mutant("whole state dict saved", F,
           find="""    state = {}
    for prefix, module in model.named_modules():""",
           replace="""    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    for prefix, module in model.named_modules():""",
           message="whole state dict saved"),
    Mutant("shapes not checked before loading", F,
           find="""        if tuple(state[name].shape) != tuple(param.shape):
            raise ValueError""", replace="""        if False:
            raise ValueError"""),

    # ---- NF4
    Mutant("one absmax for the whole tensor", F, find="absmax = blocks.abs().amax(dim=1)",
           replace="absmax = blocks.abs().amax().expand(blocks.shape[0])", message="one absmax for the whole tensor"),
    Mutant("ties go to the higher index", F, find="codes = (x[..., None] - code).abs().argmin(dim=-1)",
           replace="codes = 15 - (x[..., None] - code.flip(0)).abs().argmin(dim=-1)", message="ties go to the higher index"),
    Mutant("zero block divides by zero", F, find="scale = torch.where(absmax > 0, absmax, torch.ones_like(absmax))",
           replace="scale = absmax"),
    Mutant("uniform 4-bit levels instead of NF4", F,
           find="code = torch.tensor(NF4_CODE, dtype=torch.float32).to(absmax.dtype)  # (16,)",
           replace="code = torch.linspace(-1, 1, 16, dtype=absmax.dtype)"),

    # ---- merging models
    Mutant("weighted average of fine-tuned weights instead of task vectors", F,
           find="merged[key] = theta + sum(w * (state[key] - theta) for w, state in zip(weights, finetuned))",
           replace="merged[key] = sum(w * state[key] for w, state in zip(weights, finetuned))",
           message="weighted average of the fine-tuned weights"),
    Mutant("slerp always interpolates linearly", F, find="if bool(cos.detach().abs() > 0.9995):", replace="if True:",
           message="linear interpolation"),
    Mutant("slerp with t and 1 − t swapped", F,
           find="return (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / torch.sin(theta)",
           replace="return (torch.sin(t * theta) * a + torch.sin((1 - t) * theta) * b) / torch.sin(theta)",
           message="t and 1 − t swapped"),
]

VARIANTS = [
    Variant("adapter path with F.linear and kaiming_uniform_(a=√5) for A", F,
            find="""        low_rank = self.dropout(x) @ self.lora_A.T                    # (..., r)
        return out + self.scaling * (low_rank @ self.lora_B.T)        # (..., out)""",
            replace="""        low_rank = torch.nn.functional.linear(self.dropout(x), self.lora_A)
        return out + torch.nn.functional.linear(low_rank, self.lora_B) * self.scaling""",
            also=(Edit(F, """        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype, device=w.device)
                                   .uniform_(-bound, bound))          # (r, in)""",
                       """        del bound
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype, device=w.device))
        nn.init.kaiming_uniform_(self.lora_A, a=math.sqrt(5))"""),)),
    Variant("NF4 rounding by bucketize on the midpoints", F,
            find="codes = (x[..., None] - code).abs().argmin(dim=-1)                # first minimum: the lower index wins",
            replace="codes = torch.bucketize(x, (code[:-1] + code[1:]) / 2)"),
    Variant("counts and the adapter state dict from comprehensions", F,
            find="""    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
""", replace="""    params = list(model.parameters())
    total = sum(p.numel() for p in params)
    trainable = sum(p.numel() for p in params if p.requires_grad)
""",
            also=(Edit(F, """    state = {}
    for prefix, module in model.named_modules():
        if isinstance(module, LoRALinear):
            dot = f"{prefix}." if prefix else ""
            state[dot + "lora_A"] = module.lora_A.detach().clone()   # (r, in)
            state[dot + "lora_B"] = module.lora_B.detach().clone()   # (out, r)
    return state""", """    return {k: v.detach().clone() for k, v in model.state_dict().items()
            if k.rsplit(".", 1)[-1] in ("lora_A", "lora_B")}"""),)),
    Variant("slerp from normalised directions with the angle from atan2", F,
            find="""    theta = torch.arccos(cos)
    return (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / torch.sin(theta)""",
            replace="""    sin = torch.sqrt(1 - cos * cos)
    theta = torch.atan2(sin, cos)
    return torch.sin((1 - t) * theta) / sin * a + torch.sin(t * theta) / sin * b"""),
]

# Survivors of `llmlab mutate 12_lora` that compute what the solution computes for every
# input the docstrings allow (the key is the id the command prints).
_CLAMP = ("cos θ leaves [−1, 1] only by rounding, and then |cos θ| > 0.9995, so the linear-interpolation "
          "branch runs, which does not use cos θ: a wider clamp changes nothing that is returned")
EQUIVALENT = {
    "lora.py: `1.0` -> `2.0` in `cos = ((a * b).sum() / (na * nb)).clamp(-1.0, 1.0)`": _CLAMP,
    "lora.py: `1.0` -> `2.0` (#2) in `cos = ((a * b).sum() / (na * nb)).clamp(-1.0, 1.0)`": _CLAMP,
    "lora.py: `>` -> `>=` in `if bool(cos.detach().abs() > 0.9995):`":
        "the two differ only when the computed |cos θ| is exactly 0.9995; there the docstring's rule depends on "
        "the last bit of how cos θ is rounded (dot / (‖a‖‖b‖), F.cosine_similarity and a float32 norm put "
        "the same vectors on either side), so a grader cannot test it without failing correct code, and the "
        "two branches differ there by about 1e-4 relative (slerp and lerp at θ = 0.032)",
}
