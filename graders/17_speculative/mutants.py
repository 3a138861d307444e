"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 17_speculative.

Each is one textual edit (or a few chained with `also`) of solutions/17_speculative/speculative.py.
`llmlab mutants 17_speculative` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks. SYLLABUS.md's known mistakes are all
here (marked "syllabus").
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "speculative.py"

MUTANTS = [
    # ---- speculative_accept (the syllabus's three known mistakes first)
    Mutant("syllabus: resampling from p instead of the residual", F,
           find="residual = residual_distribution(target_probs[i], draft_probs[i])   # (V,)",
           replace="residual = target_probs[i]",
           message="resampled from p instead of the residual"),
    Mutant("syllabus: no bonus token when all drafts are accepted", F,
           find="return torch.cat([draft_tokens, bonus]), k", replace="return draft_tokens.clone(), k",
           message="no bonus token"),
    Mutant("syllabus: scalar probabilities instead of distributions (the drafted token's q(x) subtracted)", F,
           find="residual = residual_distribution(target_probs[i], draft_probs[i])   # (V,)",
           replace="residual = residual_distribution(target_probs[i], draft_probs[i, x].expand_as(target_probs[i]))",
           message="scalar probabilities instead of distributions"),
    Mutant("acceptance ratio inverted (q/p)", F,
           find="if not u < target_probs[i, x] / draft_probs[i, x]:",
           replace="if not u < draft_probs[i, x] / target_probs[i, x]:", message="acceptance ratio inverted"),
    Mutant("every draft token accepted", F,
           find="if not u < target_probs[i, x] / draft_probs[i, x]:", replace="if not u < float('inf'):",
           message="every draft token accepted"),
    Mutant("accepted only when p ≥ q (deterministic rule)", F,
           find="if not u < target_probs[i, x] / draft_probs[i, x]:",
           replace="if not 1.0 <= target_probs[i, x] / draft_probs[i, x]:"),
    Mutant("bonus token drawn from the last draft position's target row", F,
           find="bonus = torch.multinomial(target_probs[k], 1, generator=generator)",
           replace="bonus = torch.multinomial(target_probs[k - 1 if k else 0], 1, generator=generator)",
           message="bonus token drawn from target_probs[k − 1]"),
    Mutant("the rejected draft token kept", F,
           find="return torch.cat([draft_tokens[:i], token]), i", replace="return draft_tokens[:i + 1].clone(), i",
           message="the drafted token kept after its rejection"),
    Mutant("uniforms drawn in float32", F,
           find="u = torch.rand(1, generator=generator, dtype=torch.float64)[0]",
           replace="u = torch.rand(1, generator=generator)[0]"),

    # ---- residual_distribution / acceptance_rate
    Mutant("residual not clipped at 0", F,
           find="residual = (target_probs - draft_probs).clamp(min=0)", replace="residual = target_probs - draft_probs",
           message="p − q not clipped at 0"),
    Mutant("residual not normalised", F,
           find="return torch.where(empty, target_probs, residual / torch.where(empty, torch.ones_like(mass), mass))",
           replace="return torch.where(empty, target_probs, residual)", message="not normalised"),
    Mutant("residual of equal rows divided by 0", F,
           find="return torch.where(empty, target_probs, residual / torch.where(empty, torch.ones_like(mass), mass))",
           replace="return residual / mass"),
    Mutant("|p − q| instead of max(0, p − q)", F,
           find="residual = (target_probs - draft_probs).clamp(min=0)",
           replace="residual = (target_probs - draft_probs).abs()", message="|p − q| instead of max(0, p − q)"),
    Mutant("α = Σ max(p, q)", F,
           find="return torch.minimum(target_probs, draft_probs).sum(dim=-1)",
           replace="return torch.maximum(target_probs, draft_probs).sum(dim=-1)", message="Σ max(p, q)"),
    Mutant("α = Σ p·q", F,
           find="return torch.minimum(target_probs, draft_probs).sum(dim=-1)",
           replace="return (target_probs * draft_probs).sum(dim=-1)", message="Σ p·q"),

    # ---- greedy_accept
    Mutant("greedy: every match counted, not only the leading ones", F,
           find="n = int(match.cumprod(dim=0).sum())", replace="n = int(match.sum())",
           message="counts every match"),
    Mutant("greedy: no correction/bonus token", F,
           find="return choice[:n + 1].clone(), n", replace="return choice[:n].clone(), n",
           message="no bonus/correction token"),

    # ---- draft_propose
    Mutant("draft: temperature ignored", F,
           find="q = F.softmax(logits / temperature, dim=-1)                     # (V,)",
           replace="q = F.softmax(logits, dim=-1)                     # (V,)", message="temperature ignored"),
    Mutant("draft: logits of the first position", F,
           find="logits = draft(seq[None])[0][0, -1]", replace="logits = draft(seq[None])[0][0, 0]",
           message="logits of the first position"),
    Mutant("draft: context not extended with the proposals", F,
           find="seq = torch.cat([seq, token])                                       # (T + i + 1,)",
           replace="seq = seq"),

    # ---- speculative_generate
    Mutant("generate: target not tempered", F,
           find="new, _ = speculative_accept(q, F.softmax(logits / temperature, dim=-1), drafts, generator)",
           replace="new, _ = speculative_accept(q, F.softmax(logits, dim=-1), drafts, generator)"),
    Mutant("generate: target logits read one position early", F,
           find="logits = target(torch.cat([out, drafts])[None])[0][0, -(m + 1):]",
           replace="logits = target(torch.cat([out, drafts])[None])[0][0, -(m + 2):-1]"),
    Mutant("generate: one target call counted per generated token", F,
           find="                calls += 1\n", replace="",
           also=(Edit(F, "out = torch.cat([out, new[:remaining]])",
                      "out = torch.cat([out, new[:remaining]])\n                calls += new[:remaining].shape[0]"),),
           message="one target call per generated token"),
    Mutant("generate: k drafts even when fewer tokens remain", F,
           find="m = min(k, remaining)", replace="m = k"),
    Mutant("generate: output not cut at max_new", F,
           find="out = torch.cat([out, new[:remaining]])", replace="out = torch.cat([out, new])"),
    Mutant("generate: no torch.no_grad", F,
           find="with torch.no_grad():", replace="with torch.enable_grad():"),
    Mutant("generate: train/eval modes not restored", F,
           find="        target.train(modes[0])\n        draft.train(modes[1])\n", replace="        pass\n"),
    Mutant("generate: greedy decided by the draft alone", F,
           find="new, _ = greedy_accept(drafts, logits)", replace="new = drafts"),

    # ---- expected_tokens_per_call
    Mutant("formula: the bonus token left out", F,
           find="return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)", replace="return (1.0 - alpha ** k) / (1.0 - alpha)",
           message="the bonus token left out"),
    Mutant("formula: k at alpha = 1", F, find="return float(k + 1)", replace="return float(k)"),
    Mutant("formula: alpha > 1 accepted", F, find="if not 0.0 <= alpha <= 1.0:", replace="if not 0.0 <= alpha:"),
]

VARIANTS = [
    Variant("α as Σ ½(p + q − |p − q|)", F,
            find="return torch.minimum(target_probs, draft_probs).sum(dim=-1)            # (...)",
            replace="return (0.5 * (target_probs + draft_probs - (target_probs - draft_probs).abs())).sum(dim=-1)"),
    Variant("acceptance test without the division", F,
            find="if not u < target_probs[i, x] / draft_probs[i, x]:",
            replace="if u * draft_probs[i, x] >= target_probs[i, x]:"),
    Variant("greedy acceptance by a Python loop", F,
            find="""    match = (choice[:-1] == draft_tokens).long()                           # (k,)
    n = int(match.cumprod(dim=0).sum())                                    # leading matches""",
            replace="""    n = 0
    while n < draft_tokens.shape[0] and int(draft_tokens[n]) == int(choice[n]):
        n += 1"""),
    Variant("draft proposals written into a pre-allocated sequence", F,
            find="""    seq = context
    tokens, probs = [], []
    for _ in range(k):
        logits = draft(seq[None])[0][0, -1]                                  # (V,)
        if temperature == 0:
            token = logits.argmax().reshape(1)                              # (1,)
            q = F.one_hot(token[0], logits.shape[-1]).to(logits.dtype)      # (V,)
        else:
            q = F.softmax(logits / temperature, dim=-1)                     # (V,)
            token = torch.multinomial(q, 1, generator=generator)             # (1,)
        tokens.append(token)
        probs.append(q)
        seq = torch.cat([seq, token])                                       # (T + i + 1,)
    return torch.cat(tokens), torch.stack(probs)""",
            replace="""    T = context.shape[0]
    seq = torch.cat([context, context.new_zeros(k)])
    probs = []
    for i in range(k):
        logits = draft(seq[None, :T + i])[0][0, T + i - 1]
        if temperature == 0:
            q = torch.zeros_like(logits)
            q[logits.argmax()] = 1
            seq[T + i] = logits.argmax()
        else:
            q = torch.softmax(logits / temperature, dim=-1)
            seq[T + i] = torch.multinomial(q, 1, generator=generator)[0]
        probs.append(q)
    return seq[T:].clone(), torch.stack(probs)"""),
]

EQUIVALENT: dict[str, str] = {
    "speculative.py: `<` -> `<=` in `if not u < target_probs[i, x] / draft_probs[i, x]:`":
        "u is a float64 uniform; u equals the ratio p/q with probability about 2^-53 per draw (u = 0 for a "
        "token with p = 0 included), so accepting on u ≤ p/q instead of u < p/q changes no round a test can see",
    "speculative.py: `-` -> `` in `choice = target_logits.argmax(dim=-1)`":
        "target_logits is 2-D (k + 1, V) (anything else raises first), so dim=1 is dim=-1",
    "speculative.py: `1` -> `0` in `q = F.one_hot(token[0], logits.shape[-1]).to(logits.dtype)`":
        "logits is the 1-D (V,) row of the last position, so logits.shape[-0] = shape[0] = V = shape[-1]",
    "speculative.py: `1` -> `0` in `q = F.softmax(logits / temperature, dim=-1)`":
        "logits is the 1-D (V,) row of the last position, so dim=-0 (= 0) is its only axis, dim=-1",
    "speculative.py: `-` -> `` in `new, _ = speculative_accept(q, F.softmax(logits / temperature, dim=-1), drafts, generator)`":
        "logits is 2-D (m + 1, V) here, so softmax over dim=1 is softmax over dim=-1",
}
