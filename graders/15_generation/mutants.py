"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 15_generation.

Each is one textual edit (or a few chained with `also`) of solutions/15_generation/generation.py.
`llmlab mutants 15_generation` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks. The syllabus' known mistakes are the
first five groups below: top-p dropping the crossing token, filters in the wrong order, the
repetition penalty dividing negative logits, beam scores compared without the length
penalty, left padding without the matching position ids.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "generation.py"

MUTANTS = [
    # ---- top-p (syllabus)
    Mutant("top-p drops the token that crosses p", F,
           find="remove_sorted = before >= p", replace="remove_sorted = (mass > p) & (before > 0)",
           message="top-p drops the token that crosses p"),
    Mutant("top-p keeps tokens while the running mass INCLUDING them is < p", F,
           find="remove_sorted = before >= p", replace="remove_sorted = (mass >= p) & (before > 0)"),
    Mutant("top-p ties broken by the sort's whim (descending, unstable, reversed ids)", F,
           find="probs.sort(dim=-1, descending=True, stable=True)",
           replace="probs.flip(-1).sort(dim=-1, descending=True, stable=True)",
           also=(Edit(F, "    remove = remove_sorted.scatter(-1, order, remove_sorted)",
                      "    order = probs.shape[-1] - 1 - order\n"
                      "    remove = remove_sorted.scatter(-1, order, remove_sorted)"),)),

    # ---- the order of the filters (syllabus)
    Mutant("filters in the wrong order (top-p before top-k)", F,
           find="""    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
""", replace="""    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
""", message="filters in the wrong order (top-p before top-k)"),
    Mutant("temperature applied after the filters", F,
           find="    scaled = logits / temperature                                   # (..., V)",
           replace="    scaled = logits",
           also=(Edit(F, "    return scaled.softmax(dim=-1)\n", "    return (scaled / temperature).softmax(dim=-1)\n"),),
           message="temperature applied after the top-p filter"),

    # ---- repetition penalty (syllabus)
    Mutant("the repetition penalty divides negative logits", F,
           find="penalised = torch.where(logits < 0, logits * penalty, logits / penalty)",
           replace="penalised = logits / penalty",
           message="the repetition penalty divides negative logits"),
    Mutant("the repetition penalty applied once per occurrence", F,
           find="penalised = torch.where(logits < 0, logits * penalty, logits / penalty)",
           replace="penalised = torch.where(logits < 0, logits * penalty ** counts, logits / penalty ** counts)",
           message="once per occurrence"),
    Mutant("the context mask ignored (padding is context)", F,
           find="scatter_add_(-1, context, context_mask.long())",
           replace="scatter_add_(-1, context, torch.ones_like(context))",
           message="the context mask is ignored"),
    Mutant("generate: the repetition penalty ignores the prompt", F,
           find="logits = repetition_penalty(logits[None], seq[None], rep_penalty)[0]",
           replace="logits = repetition_penalty(logits[None], seq[None, prompt.numel():], rep_penalty)[0]",
           message="ignores the prompt"),

    # ---- beam search (syllabus)
    Mutant("beam scores compared without the length penalty", F,
           find="scored = [(s / n ** length_penalty, seq) for seq, s, n in finished]",
           replace="scored = [(s, seq) for seq, s, n in finished]",
           message="beam scores compared without the length penalty"),
    Mutant("the length penalty counts the prompt tokens", F,
           find="scored = [(s / n ** length_penalty, seq) for seq, s, n in finished]",
           replace="scored = [(s / (n + prompt.numel()) ** length_penalty, seq) for seq, s, n in finished]",
           message="the length penalty counts the prompt tokens too"),
    Mutant("beam search extends hypotheses after eos", F,
           find="if eos_id is not None and v == eos_id:", replace="if False:"),
    Mutant("beam scores not accumulated (only the last token's log-probability)", F,
           find="candidates = (live_logp[:, None] + logp).flatten()", replace="candidates = logp.flatten()"),
    Mutant("beam search log-probabilities in float32", F,
           find="logp = F.log_softmax(logits.double(), dim=-1)", replace="logp = F.log_softmax(logits.float(), dim=-1).double()"),

    # ---- left padding and batches (syllabus)
    Mutant("left padding without the matching position ids (left_pad)", F,
           find="positions[b, L - n:] = torch.arange(n)", replace="positions[b, L - n:] = torch.arange(L - n, L)",
           message="left padding without the matching position ids"),
    Mutant("left padding without the matching position ids (generate_batch)", F,
           find="logits = model(ids, positions=positions, attention_mask=mask)[0][:, -1]   # (B, V)",
           replace="logits = model(ids, positions=torch.arange(ids.shape[1]).expand_as(ids), "
                   "attention_mask=mask)[0][:, -1]",
           message="left padding without the matching position ids"),
    Mutant("padded on the right", F,
           find="        ids[b, L - n:] = p\n        mask[b, L - n:] = True\n        positions[b, L - n:] = torch.arange(n)\n",
           replace="        ids[b, :n] = p\n        mask[b, :n] = True\n        positions[b, :n] = torch.arange(n)\n",
           message="padded on the right"),
    Mutant("generate_batch: no attention mask (padding attended to)", F,
           find="logits = model(ids, positions=positions, attention_mask=mask)[0][:, -1]   # (B, V)",
           replace="logits = model(ids, positions=positions, attention_mask=torch.ones_like(mask))[0][:, -1]"),
    Mutant("generate_batch: stopped rows keep growing as real tokens", F,
           find="mask = torch.cat([mask, ~done[:, None]], dim=1)",
           replace="mask = torch.cat([mask, torch.ones_like(done)[:, None]], dim=1)"),

    # ---- other units
    Mutant("greedy ties go to the highest id", F,
           find="    return logits.argmax(dim=-1)\n",
           replace="    return logits.shape[-1] - 1 - logits.flip(-1).argmax(dim=-1)\n",
           message="ties go to the highest id"),
    Mutant("top-k keeps exactly k tokens (ties at the k-th value dropped)", F,
           find="return logits.masked_fill(logits < kth, NEG_INF)",
           replace="return torch.full_like(logits, NEG_INF).scatter(-1, logits.topk(k, dim=-1).indices, "
                   "logits.topk(k, dim=-1).values)",
           message="exactly k tokens kept"),
    Mutant("min-p threshold on the probability itself", F,
           find="threshold = min_p * probs.max(dim=-1, keepdim=True).values", replace="threshold = min_p",
           message="instead of min_p · max probability"),
    Mutant("sample: temperature 0 not special-cased", F,
           find="    if temperature == 0:\n        return greedy(logits)\n", replace=""),
    Mutant("sample: the generator ignored", F,
           find="torch.multinomial(flat, 1, generator=generator)", replace="torch.multinomial(flat, 1)"),
    Mutant("generate: positions counted from 1", F,
           find="positions = torch.arange(T)[None]                                  # (1, T)",
           replace="positions = torch.arange(1, T + 1)[None]"),
    Mutant("should_stop: eos anywhere in the generated tokens", F,
           find="if eos_id is not None and generated[-1] == eos_id:", replace="if eos_id is not None and eos_id in generated:"),
    Mutant("chat template without the generation prompt", F,
           find="        parts.append(\"<|assistant|>\\n\")\n", replace="        pass\n",
           message="no generation prompt appended"),
    Mutant("chat template accepts forged markers", F,
           find='if "<|" in content or "|>" in content:', replace="if False:"),
]

VARIANTS = [
    Variant("greedy as the first index equal to the row maximum", F,
            find="    return logits.argmax(dim=-1)\n",
            replace="    top = logits.max(dim=-1, keepdim=True).values\n"
                    "    return (logits == top).to(torch.int32).argmax(dim=-1).long()\n"),
    Variant("top-k through a full sort; top-p's exclusive mass as cumsum minus own probability", F,
            find="kth = logits.topk(k, dim=-1).values[..., -1:]",
            replace="kth = logits.sort(dim=-1, descending=True).values[..., k - 1:k]",
            also=(Edit(F, "before = torch.cat([torch.zeros_like(mass[..., :1]), mass[..., :-1]], dim=-1)",
                       "before = mass - sorted_probs"),)),
    Variant("min-p in log space; repetition penalty row by row with torch.unique", F,
            find="""    probs = logits.softmax(dim=-1)                                      # (..., V)
    threshold = min_p * probs.max(dim=-1, keepdim=True).values          # (..., 1)
    return logits.masked_fill(probs < threshold, NEG_INF)""",
            replace="""    logp = logits.log_softmax(dim=-1)
    cut = logp.max(dim=-1, keepdim=True).values + torch.log(torch.tensor(min_p, dtype=logits.dtype))
    return logits.masked_fill(logp < cut, NEG_INF)""",
            also=(Edit(F, """    counts = torch.zeros(logits.shape, dtype=torch.long).scatter_add_(-1, context, context_mask.long())
    seen = counts > 0                                                                     # (B, V)
""", """    seen = torch.zeros(logits.shape, dtype=torch.bool)
    for b in range(logits.shape[0]):
        ids = torch.unique(context[b][context_mask[b]])
        seen[b, ids] = True
"""),)),
    Variant("sampling by the Gumbel-max trick", F,
            find="""    flat = probs.reshape(-1, probs.shape[-1])                             # (N, V)
    draws = torch.multinomial(flat, 1, generator=generator)               # (N, 1)
    return draws.reshape(probs.shape[:-1])""",
            replace="""    u = torch.rand(probs.shape, generator=generator, dtype=torch.float64).clamp_min(1e-300)
    return (probs.double().log() - torch.log(-torch.log(u))).argmax(dim=-1)"""),
    Variant("beam search with one model call per live hypothesis", F,
            find="""            positions = torch.arange(T).expand(A, T)
            mask = torch.ones(A, T, dtype=torch.bool)
            logits = model(live, positions=positions, attention_mask=mask)[0][:, -1]   # (A, V)""",
            replace="""            logits = torch.cat([model(live[a:a + 1], positions=torch.arange(T)[None],
                                      attention_mask=torch.ones(1, T, dtype=torch.bool))[0][:, -1]
                                for a in range(A)])"""),
    Variant("left padding with F.pad", F,
            find="""    ids = torch.full((B, L), pad_id, dtype=torch.long)
    mask = torch.zeros(B, L, dtype=torch.bool)
    positions = torch.zeros(B, L, dtype=torch.long)
    for b, p in enumerate(prompts):
        n = p.numel()
        ids[b, L - n:] = p
        mask[b, L - n:] = True
        positions[b, L - n:] = torch.arange(n)
    return ids, mask, positions""",
            replace="""    del B
    ids = torch.stack([F.pad(p, (L - p.numel(), 0), value=pad_id) for p in prompts])
    mask = torch.stack([F.pad(torch.ones(p.numel(), dtype=torch.bool), (L - p.numel(), 0)) for p in prompts])
    positions = torch.stack([F.pad(torch.arange(p.numel()), (L - p.numel(), 0)) for p in prompts])
    return ids, mask, positions"""),
]

EQUIVALENT = {
    "generation.py: `>=` -> `>` in `if k >= logits.shape[-1]:`":
        "k == V takes the other branch, which keeps every logit too (all are ≥ the V-th largest)",
    "generation.py: `-` -> `` in `counts = torch.zeros(logits.shape, dtype=torch.long).scatter_add_(-1, context, "
    "context_mask.long())`": "logits and context are 2-D (checked above), so dim 1 is dim -1",
    "generation.py: `1` -> `0` in `if rep_penalty != 1:`":
        "applying a penalty of 1 multiplies or divides by 1: the logits are unchanged, bit for bit",
    "generation.py: `1` -> `0` (#2) in `if rep_penalty != 1:`":
        "applying a penalty of 1 multiplies or divides by 1: the logits are unchanged, bit for bit",
    "generation.py: `1` -> `0` in `if width < 1 or max_new < 1:`":
        "width 0 still raises ValueError: no candidate is kept, nothing finishes, and max() of the empty list "
        "of finished hypotheses raises ValueError",
    "generation.py: `-` -> `` in `logp = F.log_softmax(logits.double(), dim=-1)`":
        "the logits of the last position are 2-D (A, V): dim 1 is dim -1",
    "generation.py: `-` -> `` in `V = logp.shape[-1]`": "logp is 2-D (A, V): shape[1] is shape[-1]",
}
