"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 21_evaluation.

Each is one textual edit (or a few chained with `also`) of solutions/21_evaluation/evaluation.py.
`llmlab mutants 21_evaluation` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks. SYLLABUS.md's known mistakes are all
here (marked "syllabus").
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "evaluation.py"

MUTANTS = [
    # ---- the syllabus's four known mistakes
    Mutant("syllabus: the biased pass@k 1 − (1 − c/n)^k", F,
           find="""    miss = 1.0                                                  # C(n − c, k) / C(n, k)
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss""",
           replace="    return 1.0 - (1.0 - c / n) ** k", message="the biased estimator"),
    Mutant("syllabus: overlapping windows counting tokens twice", F,
           find="logp = F.log_softmax(logits[done - start:], dim=-1)     # rows of targets done + 1 … end",
           replace="logp = F.log_softmax(logits, dim=-1)",
           also=(Edit(F, "targets = ids[done + 1:end + 1]                         # (end − done,)",
                      "targets = ids[start + 1:end + 1]"),),
           message="overlapping windows counting tokens twice"),
    Mutant("syllabus: a bootstrap that resamples without replacement", F,
           find="idx = torch.randint(0, n, (n_boot, n), generator=g)         # (n_boot, n)",
           replace="idx = torch.rand(n_boot, n, generator=g, dtype=torch.float64).argsort(dim=1)",
           message="resamples without replacement"),
    Mutant("syllabus: normalisation that strips digits", F,
           find='text = "".join(ch for ch in text if ch not in set(string.punctuation))',
           replace='text = "".join(ch for ch in text if ch not in set(string.punctuation) and not ch.isdigit())',
           message="strips digits"),

    # ---- token_nlls / perplexity / bits_per_byte / continuation_logprob
    Mutant("windows always start at 0 (context never truncated)", F,
           find="start = max(0, end - window)", replace="start = 0", message="windows that start at 0"),
    Mutant("the window's end moves by window, not stride", F,
           find="done, end = end, min(end + stride, last)", replace="done, end = end, min(end + window, last)"),
    Mutant("targets not shifted (each row scored against its own input token)", F,
           find="targets = ids[done + 1:end + 1]                         # (end − done,)",
           replace="targets = ids[done:end]"),
    Mutant("perplexity as the mean of exp(NLL)", F,
           find="return math.exp(nll.double().mean().item())", replace="return nll.double().exp().mean().item()"),
    Mutant("bits per byte: characters instead of UTF-8 bytes", F,
           find='n_bytes = len(text.encode("utf-8"))', replace="n_bytes = len(text)",
           message="characters counted instead of UTF-8 bytes"),
    Mutant("bits per byte: nats, not bits", F,
           find="return nlls.sum() / (math.log(2) * n_bytes)", replace="return nlls.sum() / n_bytes",
           message="nats, not bits"),
    Mutant("continuation scored one row late", F,
           find="rows = logp[C - 1:]                                         # (L, V): the rows of the continuation",
           replace="rows = torch.cat([logp[C:], logp[-1:]])"),

    # ---- multiple_choice_accuracy
    Mutant("multiple choice: length_normalize ignored", F,
           find="scores.append(score / choice.shape[0] if length_normalize else score)",
           replace="scores.append(score)", message="length_normalize ignored"),
    Mutant("multiple choice: ties go to the highest index", F,
           find="best = max(range(len(scores)), key=lambda i: (scores[i], -i))     # ties: lowest index",
           replace="best = max(range(len(scores)), key=lambda i: (scores[i], i))",
           message="ties go to the highest index"),

    # ---- bootstrap_ci
    Mutant("bootstrap: quantiles at alpha and 1 − alpha", F,
           find="q = torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.float64)",
           replace="q = torch.tensor([alpha, 1 - alpha], dtype=torch.float64)", message="alpha not halved"),
    Mutant("bootstrap: the global random generator", F,
           find="idx = torch.randint(0, n, (n_boot, n), generator=g)         # (n_boot, n)",
           replace="idx = torch.randint(0, n, (n_boot, n))"),

    # ---- expected_calibration_error
    Mutant("ECE: bins averaged without their weights", F,
           find="return (acc_sum - conf_sum).abs().sum() / c.shape[0]",
           replace="count = zeros.index_add(0, bins, torch.ones_like(c))\n"
                   "    full = count > 0\n"
                   "    return ((acc_sum - conf_sum)[full] / count[full]).abs().mean()",
           message="bins averaged without their weights"),
    Mutant("ECE: signed gaps", F,
           find="return (acc_sum - conf_sum).abs().sum() / c.shape[0]",
           replace="return (acc_sum - conf_sum).sum().abs() / c.shape[0]", message="signed gaps summed"),
    Mutant("ECE: confidence 1 in a bin of its own", F,
           find="bins = (c.detach() * n_bins).floor().long().clamp(max=n_bins - 1)",
           replace="bins = (c.detach() * (n_bins - 1)).round().long()"),

    # ---- answers
    Mutant("normalisation: articles not removed", F,
           find='text = ARTICLES.sub(" ", text)', replace="text = text", message="articles not removed"),
    Mutant("F1: tokens compared as sets", F,
           find="common = sum((Counter(pred) & Counter(gold)).values())",
           replace="common = len(set(pred) & set(gold))",
           also=(Edit(F, "precision, recall = common / len(pred), common / len(gold)",
                      "precision, recall = common / len(set(pred)), common / len(set(gold))"),),
           message="tokens compared as sets"),
    Mutant("F1: the first reference only", F,
           find="for ref in references:\n        gold", replace="for ref in references[:1]:\n        gold"),
    Mutant("exact match without normalisation", F,
           find="return float(any(pred == normalize_answer(ref) for ref in references))",
           replace="return float(any(prediction == ref for ref in references))"),

    # ---- ratings
    Mutant("Elo: the second player updated with the first player's new rating", F,
           find="""        delta = k * (s - expected)
        ratings[a] += delta
        ratings[b] -= delta""",
           replace="""        ratings[a] += k * (s - expected)
        ratings[b] += k * ((1 - s) - 1.0 / (1.0 + 10.0 ** ((ratings[a] - ratings[b]) / 400.0)))""",
           message="the second player updated with the first player's new rating"),
    Mutant("Elo: natural exponent instead of base 10", F,
           find="expected = 1.0 / (1.0 + 10.0 ** ((ratings[b] - ratings[a]) / 400.0))",
           replace="expected = 1.0 / (1.0 + math.exp((ratings[b] - ratings[a]) / 400.0))"),
    Mutant("Bradley–Terry: the penalty left out of the gradient", F,
           find="grad = diff.t() @ (s - p) - l2 * theta", replace="grad = diff.t() @ (s - p)"),
    Mutant("Bradley–Terry: one gradient step instead of the optimum", F,
           find="for _ in range(100):", replace="for _ in range(1):"),

    # ---- contamination
    Mutant("contamination: n-grams across document boundaries", F,
           find="seen = {tuple(doc[i:i + n]) for doc in train_docs for i in range(len(doc) - n + 1)}",
           replace="joined = [t for doc in train_docs for t in (list(doc) + [' '])]\n"
                   "    seen = {tuple(joined[i:i + n]) for i in range(len(joined) - n + 1)}",
           message="n-grams taken across document boundaries"),
    Mutant("contamination: one window short (off by one)", F,
           find="grams = [tuple(example[i:i + n]) for i in range(len(example) - n + 1)]",
           replace="grams = [tuple(example[i:i + n]) for i in range(len(example) - n)]", message="off by one"),
    Mutant("contamination: distinct n-grams only", F,
           find="grams = [tuple(example[i:i + n]) for i in range(len(example) - n + 1)]",
           replace="grams = list({tuple(example[i:i + n]) for i in range(len(example) - n + 1)})",
           message="distinct n-grams counted once"),
]

VARIANTS = [
    Variant("pass@k by exact binomial coefficients", F,
            find="""    miss = 1.0                                                  # C(n − c, k) / C(n, k)
    for i in range(n - c + 1, n + 1):
        miss *= 1.0 - k / i
    return 1.0 - miss""",
            replace="""    return 1.0 - math.comb(n - c, k) / math.comb(n, k)"""),
    Variant("sliding window by per-call target masks and F.cross_entropy", F,
            find="""        logp = F.log_softmax(logits[done - start:], dim=-1)     # rows of targets done + 1 … end
        targets = ids[done + 1:end + 1]                         # (end − done,)
        nlls.append(-logp.gather(1, targets[:, None])[:, 0])""",
            replace="""        labels = ids[start + 1:end + 1].clone()
        labels[:done - start] = -100
        nll = F.cross_entropy(logits, labels, reduction="none", ignore_index=-100)
        nlls.append(nll[done - start:])"""),
    Variant("bootstrap: resamples drawn one by one, sorted means interpolated by hand", F,
            find="""    idx = torch.randint(0, n, (n_boot, n), generator=g)         # (n_boot, n)
    means = x[idx].mean(dim=1)                                  # (n_boot,)
    q = torch.tensor([alpha / 2, 1 - alpha / 2], dtype=torch.float64)
    lo, hi = torch.quantile(means, q).tolist()
    return lo, hi""",
            replace="""    means = sorted(float(x[torch.randint(0, n, (n,), generator=g)].mean()) for _ in range(n_boot))

    def at(qq):
        pos = qq * (n_boot - 1)
        i = int(pos)
        j = min(i + 1, n_boot - 1)
        return means[i] + (pos - i) * (means[j] - means[i])

    return at(alpha / 2), at(1 - alpha / 2)"""),
    Variant("ECE by one-hot bin membership", F,
            find="""    zeros = torch.zeros(n_bins, dtype=torch.float64)
    conf_sum = zeros.index_add(0, bins, c)                                   # (n_bins,) n_b · conf_b
    acc_sum = zeros.index_add(0, bins, y)                                    # (n_bins,) n_b · acc_b
    return (acc_sum - conf_sum).abs().sum() / c.shape[0]""",
            replace="""    member = F.one_hot(bins, n_bins).to(torch.float64)
    return ((y - c) @ member).abs().sum() / c.shape[0]"""),
    Variant("F1 with an explicit multiset count", F,
            find="common = sum((Counter(pred) & Counter(gold)).values())",
            replace="common = sum(min(pred.count(t), gold.count(t)) for t in set(pred))"),
    Variant("Bradley–Terry Hessian assembled game by game", F,
            find="""        hess = diff.t() @ (diff * (p * (1 - p))[:, None]) + l2 * eye         # (P, P), minus the Hessian""",
            replace="""        hess = l2 * eye.clone()
        for (i, j), w in zip(games.tolist(), (p * (1 - p)).tolist()):
            hess[i, i] += w
            hess[j, j] += w
            hess[i, j] -= w
            hess[j, i] -= w"""),
]

EQUIVALENT: dict[str, str] = {
    "evaluation.py: `2` -> `1` in `if ids.dim() != 1 or ids.shape[0] < 2:`":
        "the only newly admitted input is N = 1: it has no target, the loop never runs and torch.cat([]) raises "
        "ValueError, the exception the docstring promises",
    "evaluation.py: `1` -> `0` in `if window < 1 or not 1 <= stride <= window:`":
        "window = 0 is still rejected by the second condition: no stride satisfies 1 ≤ stride ≤ 0",
    "evaluation.py: `-` -> `` in `logp = F.log_softmax(logits[done - start:], dim=-1)`":
        "the sliced logits are 2-D (rows, V), so log_softmax over dim=1 is over dim=-1",
    "evaluation.py: `-` -> `` (#2) in `logp = F.log_softmax(model(seq[:-1][None])[0][0], dim=-1)`":
        "the logits of the one row are 2-D (C + L − 1, V), so log_softmax over dim=1 is over dim=-1",
    "evaluation.py: `or` -> `and` in `if not pred or not gold:`":
        "when exactly one token list is empty the Counter intersection is empty, common = 0 and the F1 is 0.0, "
        "which is what the explicit branch returns",
    "evaluation.py: `100` -> `101` in `for _ in range(100):`":
        "Newton's method stops by its break in fewer than 30 steps on every input (the bound is a safety net)",
    "evaluation.py: `100` -> `99` in `for _ in range(100):`":
        "Newton's method stops by its break in fewer than 30 steps on every input (the bound is a safety net)",
    "evaluation.py: `<` -> `<=` in `if step.abs().max() < 1e-13:`":
        "a step of exactly 1e-13 does not occur; at that point the iterate is converged either way",
    "evaluation.py: `1e-13` -> `2e-13` in `if step.abs().max() < 1e-13:`":
        "Newton converges quadratically: after a step below 2e-13 the next one is at rounding level, so stopping one "
        "step earlier changes θ by less than 1e-12, far inside the 1e-8 gradient tolerance of the docstring",
    "evaluation.py: `break` -> `continue` in `break`":
        "after convergence the remaining Newton steps are at rounding level (below 1e-13), so running all 100 "
        "iterations returns the same θ within 1e-12; only slower",
    "evaluation.py: `-` -> `+` in `seen = {tuple(doc[i:i + n]) for doc in train_docs for i in range(len(doc) - n + 1)}`":
        "the extra windows past a document's end are tuples shorter than n, which never equal an example's "
        "n-gram (always exactly n long), so no score changes",
    "evaluation.py: `1` -> `2` in `seen = {tuple(doc[i:i + n]) for doc in train_docs for i in range(len(doc) - n + 1)}`":
        "the one extra window is a tuple of n − 1 tokens, which never equals an example's n-gram (exactly n long)",
}
