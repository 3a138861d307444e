"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 10_scaling_laws.

Each is one textual edit (or a few chained with `also`) of
solutions/10_scaling_laws/scaling_laws.py. `llmlab mutants 10_scaling_laws` proves every
mutant fails a grader — naming the mistake where `message` is set — and every variant gets
full marks.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "scaling_laws.py"

MUTANTS = [
    # ---- non_embedding_params
    Mutant("grouped-query attention ignored in the parameter count (k, v as C×C)", F,
           find="attention = C * H * D + 2 * C * H_kv * D + H * D * C", replace="attention = 4 * C * C",
           message="grouped-query attention ignored"),
    Mutant("SwiGLU hidden size not rounded up (int(8C/3))", F,
           find="    F = config.hidden or swiglu_hidden(C)\n    attention",
           replace="    F = config.hidden or int(8 * C / 3)\n    attention",
           message="not rounded up to a multiple of 16"),
    Mutant("LM head counted as a non-embedding parameter", F,
           find="return config.n_layer * (attention + mlp + norms) + C          # + the final norm",
           replace="return config.n_layer * (attention + mlp + norms) + C + C * config.vocab_size",
           message="LM head counted"),
    Mutant("RMSNorm gains left out of the count", F,
           find="norms = 2 * C + (2 * D if config.qk_norm else 0)", replace="norms = 0",
           also=(Edit(F, "return config.n_layer * (attention + mlp + norms) + C          # + the final norm",
                      "return config.n_layer * (attention + mlp + norms)"),),
           message="RMSNorm gains left out"),
    Mutant("QK-norm gains ignored", F,
           find="norms = 2 * C + (2 * D if config.qk_norm else 0)", replace="norms = 2 * C",
           message="QK-norm gains left out"),
    Mutant("final RMSNorm left out", F,
           find="return config.n_layer * (attention + mlp + norms) + C          # + the final norm",
           replace="return config.n_layer * (attention + mlp + norms)",
           message="final RMSNorm left out"),

    # ---- flops_per_token
    Mutant("attention products left out (6N only)", F,
           find="forward = 2 * n_matmul + 4 * config.n_layer * T * H * D", replace="forward = 2 * n_matmul",
           message="attention products left out"),
    Mutant("causal attention counted over half the score matrix", F,
           find="forward = 2 * n_matmul + 4 * config.n_layer * T * H * D",
           replace="forward = 2 * n_matmul + 2 * config.n_layer * T * H * D",
           message="half the score matrix"),
    Mutant("attention products counted with the kv heads", F,
           find="forward = 2 * n_matmul + 4 * config.n_layer * T * H * D",
           replace="forward = 2 * n_matmul + 4 * config.n_layer * T * H_kv * D",
           message="counted with the kv heads"),
    Mutant("backward counted as one forward (4N)", F,
           find="return 3 * forward if backward else forward", replace="return 2 * forward if backward else forward",
           message="backward counted as one forward"),
    Mutant("backward flag ignored", F,
           find="return 3 * forward if backward else forward", replace="return 3 * forward",
           message="backward counted although backward=False"),
    Mutant("LM head left out of the FLOPs", F,
           find="n_matmul = config.n_layer * per_block + C * config.vocab_size", replace="n_matmul = config.n_layer * per_block",
           message="LM head left out"),
    Mutant("embedding lookup counted as a matmul", F,
           find="n_matmul = config.n_layer * per_block + C * config.vocab_size",
           replace="n_matmul = config.n_layer * per_block + 2 * C * config.vocab_size",
           message="embedding lookup counted as a matmul"),
    Mutant("GQA ignored in the FLOPs (k, v as C×C)", F,
           find="per_block = C * H * D + 2 * C * H_kv * D + H * D * C + 3 * C * F",
           replace="per_block = 4 * C * C + 3 * C * F", message="grouped-query attention ignored"),
    Mutant("seq_len = block_size rejected (off by one)", F,
           find="if not 1 <= T <= config.block_size:", replace="if not 1 <= T < config.block_size:"),
    Mutant("seq_len never validated", F,
           find="if not 1 <= T <= config.block_size:", replace="if False:"),

    # ---- chinchilla_optimal
    Mutant("tokens_per_param ignored (N = D)", F,
           find="params = math.sqrt(compute / (6.0 * tokens_per_param))\n    return params, tokens_per_param * params",
           replace="params = math.sqrt(compute / 6.0)\n    return params, params",
           message="tokens_per_param ignored"),
    Mutant("compute taken as 2·N·D", F,
           find="params = math.sqrt(compute / (6.0 * tokens_per_param))",
           replace="params = math.sqrt(compute / (2.0 * tokens_per_param))", message="forward only"),
    Mutant("(tokens, params) returned in the wrong order", F,
           find="return params, tokens_per_param * params", replace="return tokens_per_param * params, params",
           message="wrong order"),
    Mutant("non-finite compute accepted", F,
           find='("tokens_per_param", tokens_per_param)):\n        if not (math.isfinite(value) and value > 0):',
           replace='("tokens_per_param", tokens_per_param)):\n        if not value > 0:'),

    # ---- fit_power_law
    Mutant("a returned for the centred x", F,
           find="return float(a_s[0] * torch.exp(alpha[0] * shift)), float(alpha[0]), float(c[0])",
           replace="return float(a_s[0]), float(alpha[0]), float(c[0])",
           message="a returned for the centred x"),
    Mutant("grid search only, no refinement", F,
           find="for _ in range(100):                                             # golden-section search",
           replace="for _ in range(0):"),
    Mutant("log-log line without the offset c", F,
           find="        c = ys.mean() - a_s * basis.mean(dim=1)                      # (k,)\n",
           replace="        a_s = (basis * ys).sum(dim=1) / (basis * basis).sum(dim=1)\n"
                   "        c = torch.zeros_like(a_s)\n"),
    Mutant("exponent sign flipped on return", F,
           find="return float(a_s[0] * torch.exp(alpha[0] * shift)), float(alpha[0]), float(c[0])",
           replace="return float(a_s[0] * torch.exp(alpha[0] * shift)), -float(alpha[0]), float(c[0])",
           message="wrong sign"),
    Mutant("distinct-x check missing", F,
           find="if torch.unique(xs).numel() < 3:", replace="if xs.numel() < 3:"),

    # ---- training_memory_bytes
    Mutant("mixed precision without the float32 master weights", F,
           find="per_param = 2 + 2 + 4 + 4 * states ", replace="per_param = 2 + 2 + 4 * states ",
           message="without the float32 master weights"),
    Mutant("gradients not counted", F,
           find="per_param = BYTES_PER_VALUE[precision] * (2 + states)",
           replace="per_param = BYTES_PER_VALUE[precision] * (1 + states)", message="gradients not counted"),
    Mutant("mixed-precision states in bf16", F,
           find="per_param = 2 + 2 + 4 + 4 * states ", replace="per_param = 2 + 2 + 4 + 2 * states ",
           message="states in bf16"),

    # ---- mfu
    Mutant("MFU ratio inverted", F,
           find="return float(tokens_per_s * flops_per_token / peak_flops)",
           replace="return float(peak_flops / (tokens_per_s * flops_per_token))", message="ratio inverted"),
    Mutant("negative throughput accepted", F,
           find="if not (math.isfinite(tokens_per_s) and tokens_per_s >= 0):",
           replace="if not math.isfinite(tokens_per_s):"),
]

VARIANTS = [
    Variant("parameters counted module by module, with the projection sizes written out", F,
            find="""    attention = C * H * D + 2 * C * H_kv * D + H * D * C          # q, k, v, o
    mlp = 3 * C * F                                                # gate, up, down
    norms = 2 * C + (2 * D if config.qk_norm else 0)               # attn_norm, mlp_norm (+ q_norm, k_norm)
    return config.n_layer * (attention + mlp + norms) + C          # + the final norm
""",
            replace="""    shapes = [(C, H * D), (C, H_kv * D), (C, H_kv * D), (H * D, C), (C, F), (C, F), (F, C)]
    per_block = sum(i * o for i, o in shapes) + C + C
    if config.qk_norm:
        per_block += D + D
    return sum(per_block for _ in range(config.n_layer)) + C
"""),
    Variant("FLOPs as 3 × (2·N_mm + attention) with N_mm from the parameter count minus the norms", F,
            find="""    per_block = C * H * D + 2 * C * H_kv * D + H * D * C + 3 * C * F
    n_matmul = config.n_layer * per_block + C * config.vocab_size     # + the LM head
    forward = 2 * n_matmul + 4 * config.n_layer * T * H * D          # weights, then q·kᵀ and p·v
    return 3 * forward if backward else forward
""",
            replace="""    del F
    norms = config.n_layer * (2 * C + (2 * D if config.qk_norm else 0)) + C
    n_matmul = non_embedding_params(config) - norms + config.vocab_size * C
    attention = 2 * (2 * T * C) * config.n_layer                      # H·D = C
    return (6 if backward else 2) * n_matmul + (3 if backward else 1) * attention
"""),
    Variant("Chinchilla by powers instead of sqrt", F,
            find="params = math.sqrt(compute / (6.0 * tokens_per_param))\n    return params, tokens_per_param * params",
            replace="tokens = (compute * tokens_per_param / 6) ** 0.5\n    return tokens / tokens_per_param, tokens"),
    Variant("power-law fit refined by Gauss–Newton steps on (a', alpha, c) after the grid", F,
            find="""    golden = (math.sqrt(5) - 1) / 2
    for _ in range(100):                                             # golden-section search
        m1, m2 = right - golden * (right - left), left + golden * (right - left)
        s = project(torch.tensor([m1, m2], dtype=torch.float64))[0]
        if s[0] <= s[1]:
            right = m2
        else:
            left = m1
    alpha = torch.tensor([(left + right) / 2], dtype=torch.float64)
    _, a_s, c = project(alpha)
""",
            replace="""    del left, right
    _, a0, c0 = project(grid[k:k + 1])
    p = torch.tensor([a0.item(), grid[k].item(), c0.item()], dtype=torch.float64)
    for _ in range(50):
        basis = torch.exp(-p[1] * u)
        r = p[0] * basis + p[2] - ys
        J = torch.stack([basis, -p[0] * u * basis, torch.ones_like(u)], dim=1)
        step = torch.linalg.lstsq(J, -r[:, None]).solution[:, 0]
        trial = p + step
        trial[1] = trial[1].clamp(lo, hi)
        rt = trial[0] * torch.exp(-trial[1] * u) + trial[2] - ys
        if (rt ** 2).sum() <= (r ** 2).sum():
            p = trial
        else:
            break
    alpha = p[1:2]
    _, a_s, c = project(alpha)
"""),
    Variant("memory from a table of bytes per value", F,
            find="""    if precision == "mixed":
        per_param = 2 + 2 + 4 + 4 * states                           # bf16 w, bf16 g, fp32 master, fp32 states
    else:
        per_param = BYTES_PER_VALUE[precision] * (2 + states)       # weights, gradients, states
""",
            replace="""    table = {"fp32": (4, 4, 0, 4), "bf16": (2, 2, 0, 2), "mixed": (2, 2, 4, 4)}
    weight, grad, master, state = table[precision]
    per_param = weight + grad + master + states * state
"""),
]

GS = ("for data whose profile S*(alpha) (the least squares for each alpha) is unimodal, as a power law's data "
      "give it, ")

EQUIVALENT = {
    "scaling_laws.py: `or` -> `and` in `if xs.dim() != 1 or ys.dim() != 1 or xs.shape != ys.shape:`":
        "(A and B) or C: when only one of x, y is not 1-D their shapes differ, so C raises; when both are "
        "not 1-D, A and B raises; every input the full test rejects is still rejected",
    "scaling_laws.py: `-` -> `+` in `a_s = (b * (ys - ys.mean())).sum(dim=1) / (b * b).sum(dim=1)`":
        "b is centred (its rows sum to 0), so adding any constant to ys leaves Σ b·(ys ± const) unchanged",
    "scaling_laws.py: `mean` -> `sum` in `a_s = (b * (ys - ys.mean())).sum(dim=1) / (b * b).sum(dim=1)`":
        "b is centred (its rows sum to 0), so subtracting ys.sum() instead of ys.mean() changes nothing",
    "scaling_laws.py: `sum` -> `mean` in `rss = ((a_s[:, None] * basis + c[:, None] - ys) ** 2).sum(dim=1)`":
        "the profile is only compared with itself (argmin and the golden-section comparisons): dividing it "
        "by the number of points moves no minimum",
    "scaling_laws.py: `400` -> `399` in `grid = torch.linspace(lo, hi, 400, dtype=torch.float64)`":
        GS + "a grid one point coarser or finer brackets the same minimum, and the search then converges to it",
    "scaling_laws.py: `400` -> `401` in `grid = torch.linspace(lo, hi, 400, dtype=torch.float64)`":
        GS + "a grid one point coarser or finer brackets the same minimum, and the search then converges to it",
    "scaling_laws.py: `1` -> `2` in `left, right = grid[max(k - 1, 0)].item(), grid[min(k + 1, len(grid) - 1)].item()`":
        GS + "a bracket from grid[k − 2] is wider and still holds the one minimum",
    "scaling_laws.py: `1` -> `2` (#2) in `left, right = grid[max(k - 1, 0)].item(), grid[min(k + 1, len(grid) - 1)].item()`":
        GS + "a bracket up to grid[k + 2] is wider and still holds the one minimum",
    "scaling_laws.py: `5` -> `6` in `golden = (math.sqrt(5) - 1) / 2`":
        "any ratio in (1/2, 1) keeps the minimum inside a shrinking bracket; (sqrt(6) − 1)/2 = 0.72 shrinks it "
        "to 0.72^100 ≈ 1e-14 of a grid step in 100 steps, far below the fit's stated precision",
    "scaling_laws.py: `100` -> `101` in `for _ in range(100):`":
        "the bracket is 1e-21 of a grid step wide after 100 steps: one step more or less moves alpha by less "
        "than float64 resolution",
    "scaling_laws.py: `100` -> `99` in `for _ in range(100):`":
        "the bracket is 1e-21 of a grid step wide after 100 steps: one step more or less moves alpha by less "
        "than float64 resolution",
    "scaling_laws.py: `<=` -> `<` in `if s[0] <= s[1]:`":
        "differs only when the two probes tie exactly; either half then still holds a minimiser",
}
