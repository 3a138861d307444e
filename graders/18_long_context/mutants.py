"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 18_long_context.

Each is one textual edit (or a few chained with `also`) of solutions/18_long_context/long_context.py.
`llmlab mutants 18_long_context` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks. SYLLABUS.md's known mistakes are all
here (marked "syllabus").
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "long_context.py"

MUTANTS = [
    # ---- the syllabus's four known mistakes
    Mutant("syllabus: NTK base scaled with the wrong exponent (b·s)", F,
           find="new_base = base * scale ** (head_dim / (head_dim - 2))", replace="new_base = base * scale",
           message="NTK base scaled with the wrong exponent"),
    Mutant("syllabus: NTK base scaled with the wrong exponent ((D−2)/D)", F,
           find="new_base = base * scale ** (head_dim / (head_dim - 2))",
           replace="new_base = base * scale ** ((head_dim - 2) / head_dim)",
           message="NTK base scaled with the wrong exponent"),
    Mutant("syllabus: the YaRN ramp inverted (high frequencies interpolated)", F,
           find="return (1 - gamma) * inv_freq / scale + gamma * inv_freq",
           replace="return gamma * inv_freq / scale + (1 - gamma) * inv_freq",
           message="the YaRN ramp inverted"),
    Mutant("syllabus: ALiBi slopes wrong for head counts that are not powers of two", F,
           find="""    if closest == n_heads:
        return power_of_two(n_heads)""",
           replace="""    if True:
        return power_of_two(n_heads)""",
           message="ALiBi slopes wrong for head counts that are not powers of two"),
    Mutant("syllabus: the sink tokens evicted with the window", F,
           find="keep = (positions < self.n_sink) | (positions >= self.seen - self.window)",
           replace="keep = positions >= self.seen - self.window - self.n_sink",
           message="the sink tokens evicted with the window"),

    # ---- rope_tables
    Mutant("rope tables: interleaved layout", F,
           find="angle = torch.cat([angle, angle], dim=-1)                               # (max_len, D)",
           replace="angle = angle.repeat_interleave(2, dim=-1)",
           message="interleaved layout"),
    Mutant("rope tables: attention scale on cos only", F,
           find="return (attention_scale * angle.cos()).float(), (attention_scale * angle.sin()).float()",
           replace="return (attention_scale * angle.cos()).float(), angle.sin().float()",
           message="attention scale not applied to sin"),
    Mutant("rope tables: positions start at 1", F,
           find="positions = torch.arange(max_len, dtype=torch.float64)",
           replace="positions = torch.arange(1, max_len + 1, dtype=torch.float64)"),

    # ---- PI
    Mutant("PI: θ multiplied by s", F, find="return inv_freq / scale", replace="return inv_freq * scale",
           message="θ multiplied by s instead of divided"),

    # ---- YaRN
    Mutant("YaRN: ramp over λ/L instead of L/λ", F,
           find="r = original_len / wavelength", replace="r = wavelength / original_len"),
    Mutant("YaRN: ramp not clamped", F,
           find="gamma = ((r - alpha) / (beta - alpha)).clamp(0.0, 1.0)", replace="gamma = (r - alpha) / (beta - alpha)",
           message="ramp not clamped"),
    Mutant("YaRN: ramp detached", F,
           find="gamma = ((r - alpha) / (beta - alpha)).clamp(0.0, 1.0)",
           replace="gamma = ((r - alpha) / (beta - alpha)).clamp(0.0, 1.0).detach()",
           message="ramp γ detached"),
    Mutant("YaRN: wavelength without 2π", F,
           find="wavelength = 2 * math.pi / inv_freq", replace="wavelength = 1 / inv_freq"),
    Mutant("YaRN temperature: log10", F,
           find="return 0.1 * math.log(scale) + 1.0", replace="return 0.1 * math.log10(scale) + 1.0",
           message="log10 instead of the natural log"),
    Mutant("YaRN temperature: the squared factor", F,
           find="return 0.1 * math.log(scale) + 1.0", replace="return (0.1 * math.log(scale) + 1.0) ** 2",
           message="the logit factor"),

    # ---- sliding_window_mask
    Mutant("window: off by one", F,
           find="return (j <= i) & ((i - j < window) | (j < sinks))",
           replace="return (j <= i) & ((i - j <= window) | (j < sinks))", message="window off by one"),
    Mutant("window: sinks ignored", F,
           find="return (j <= i) & ((i - j < window) | (j < sinks))", replace="return (j <= i) & (i - j < window)",
           message="sinks ignored"),
    Mutant("window: not causal", F,
           find="return (j <= i) & ((i - j < window) | (j < sinks))",
           replace="return ((i - j).abs() < window) | ((j < sinks) & (j <= i))",
           message="not causal"),

    # ---- ALiBi
    Mutant("ALiBi: extra slopes at odd indices", F,
           find="extra = power_of_two(2 * closest)[0::2][:n_heads - closest]",
           replace="extra = power_of_two(2 * closest)[1::2][:n_heads - closest]",
           message="taken at odd indices"),
    Mutant("ALiBi: slopes sorted", F,
           find="return torch.cat([power_of_two(closest), extra])",
           replace="return torch.cat([power_of_two(closest), extra]).sort(descending=True).values",
           message="the slopes sorted"),
    Mutant("ALiBi bias: sign flipped", F,
           find="return -slopes[:, None, None] * distance", replace="return slopes[:, None, None] * distance",
           message="sign flipped"),
    Mutant("ALiBi bias: |i − j|", F,
           find="return -slopes[:, None, None] * distance", replace="return -slopes[:, None, None] * distance.abs()",
           message="penalised on both sides"),

    # ---- StreamingCache
    Mutant("streaming: window + 1 recent tokens kept", F,
           find="keep = (positions < self.n_sink) | (positions >= self.seen - self.window)",
           replace="keep = (positions < self.n_sink) | (positions >= self.seen - self.window - 1)",
           message="window off by one"),
    Mutant("streaming: positions of a new chunk restart at 0", F,
           find="new_pos = torch.arange(self.seen, self.seen + n)", replace="new_pos = torch.arange(n)"),
    Mutant("streaming: seen not advanced", F, find="        self.seen += n\n", replace=""),

    # ---- needle
    Mutant("needle: cut rounded", F, find="cut = math.floor(depth * haystack.shape[0])",
           replace="cut = round(depth * haystack.shape[0])", message="rounded instead of floored"),
    Mutant("needle: generated tokens not fed back", F,
           find="seq = torch.cat([insert_needle(haystack, needle, depth), question])     # (T + n + m,)",
           replace="seq = prompt = torch.cat([insert_needle(haystack, needle, depth), question])",
           also=(Edit(F, "logits = model(seq[None])[0][0, -1]", "logits = model(prompt[None])[0][0, -1]"),),
           message="not fed back"),
    Mutant("needle: only the first answer token compared", F,
           find="passed.append(bool(torch.equal(seq[-answer.shape[0]:], answer)))",
           replace="passed.append(bool(seq[-answer.shape[0]] == answer[0]))",
           message="only the first answer token compared"),
    Mutant("needle: autograd left on", F, find="with torch.no_grad():\n        for depth in depths:",
           replace="with torch.enable_grad():\n        for depth in depths:"),
]

VARIANTS = [
    Variant("PI as multiplication by 1/s", F, find="return inv_freq / scale", replace="return inv_freq * (1.0 / scale)"),
    Variant("NTK per pair: θ_i · s^(−2i/(D−2))", F,
            find="""    new_base = base * scale ** (head_dim / (head_dim - 2))
    return rope_inv_freq(head_dim, new_base)""",
            replace="""    i = torch.arange(head_dim // 2, dtype=torch.float64)
    return rope_inv_freq(head_dim, base) * scale ** (-2 * i / (head_dim - 2))"""),
    Variant("YaRN ramp by torch.where, blended as θ/s + γ(θ − θ/s)", F,
            find="""    wavelength = 2 * math.pi / inv_freq                                     # (D/2,)
    r = original_len / wavelength                                           # turns within L
    gamma = ((r - alpha) / (beta - alpha)).clamp(0.0, 1.0)                  # 0: interpolate, 1: keep
    return (1 - gamma) * inv_freq / scale + gamma * inv_freq""",
            replace="""    r = inv_freq * original_len / (2 * math.pi)
    ramp = (r - alpha) / (beta - alpha)
    gamma = torch.where(r < alpha, torch.zeros_like(r), torch.where(r > beta, torch.ones_like(r), ramp))
    return inv_freq / scale + gamma * (inv_freq - inv_freq / scale)"""),
    Variant("ALiBi slopes by the closed form of both halves", F,
            find="""    extra = power_of_two(2 * closest)[0::2][:n_heads - closest]
    return torch.cat([power_of_two(closest), extra])""",
            replace="""    odd = torch.arange(n_heads - closest, dtype=torch.float64) * 2 + 1
    return torch.cat([power_of_two(closest), 2.0 ** (-4.0 * odd / closest)])"""),
    Variant("window mask from tril/triu", F,
            find="""    i = torch.arange(T)[:, None]                                            # (T, 1) queries
    j = torch.arange(T)[None, :]                                            # (1, T) keys
    return (j <= i) & ((i - j < window) | (j < sinks))                      # (T, T)""",
            replace="""    ones = torch.ones(T, T, dtype=torch.bool)
    band = ones.tril() & ones.triu(-(window - 1))
    sink = ones.tril().clone()
    sink[:, sinks:] = False
    return band | sink"""),
    Variant("streaming cache selects by index", F,
            find="""        keep = (positions < self.n_sink) | (positions >= self.seen - self.window)   # (n_kept + n,)
        self.keys, self.values, self.positions = keys[:, :, keep], values[:, :, keep], positions[keep]""",
            replace="""        idx = torch.nonzero((positions < self.n_sink) | (positions >= self.seen - self.window))[:, 0]
        self.keys = keys.index_select(2, idx)
        self.values = values.index_select(2, idx)
        self.positions = positions.index_select(0, idx)"""),
]

EQUIVALENT: dict[str, str] = {
    "long_context.py: `-` -> `` in `angle = torch.cat([angle, angle], dim=-1)`":
        "angle is 2-D (max_len, D/2) here, so concatenating along dim=1 is concatenating along dim=-1",
    "long_context.py: `4` -> `3` in `if head_dim < 4 or head_dim % 2:`":
        "the test runs on even head_dim only (odd ones are rejected by the same line), and for even D, "
        "D < 3 and D < 4 both mean D ≤ 2",
    "long_context.py: `2` -> `1` in `if head_dim < 4 or head_dim % 2:`":
        "an odd head_dim that slips through is rejected with ValueError by the given rope_inv_freq two lines "
        "later, so every odd head_dim still raises ValueError",
    "long_context.py: `1` -> `0` in `if n_heads < 1:`":
        "n_heads = 0 then reaches math.log2(0), which raises ValueError (math domain error), and negative "
        "n_heads still fail the edited test; so every n_heads < 1 still raises ValueError",
}
