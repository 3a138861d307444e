"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 11_data.

Each is one textual edit (or a few chained with `also`) of solutions/11_data/data.py.
`llmlab mutants 11_data` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "data.py"

MUTANTS = [
    # ---- html_to_text
    Mutant("script and style content kept", F,
           find="            if self.skip_depth == 0:\n                self.pieces.append(data)",
           replace="            self.pieces.append(data)",
           message="script or style content kept"),
    Mutant("skip depth goes negative on a stray end tag", F,
           find="if tag in SKIP_TAGS and self.skip_depth > 0:", replace="if tag in SKIP_TAGS:",
           message="skip depth goes negative"),
    Mutant("whitespace only stripped, not collapsed", F,
           find='lines = (" ".join(line.split()) for line in', replace="lines = (line.strip() for line in",
           message="whitespace inside a line not collapsed"),
    Mutant("parser not closed (text after the last tag lost)", F,
           find="    parser.close()\n", replace=""),

    # ---- quality_filter
    Mutant("ellipsis rule fires at exactly 0.3", F,
           find="if ellipsis > MAX_ELLIPSIS_LINE_FRACTION:", replace="if ellipsis >= MAX_ELLIPSIS_LINE_FRACTION:"),
    Mutant("alphabetic words need only letters", F,
           find="alpha = sum(any(c.isalpha() for c in w)", replace="alpha = sum(all(c.isalpha() for c in w)"),
    Mutant("duplicate lines counted without stripping", F,
           find="lines = [line.strip() for line in doc.splitlines() if line.strip()]",
           replace="lines = [line for line in doc.splitlines() if line.strip()]"),

    # ---- normalize_text / exact_dedup
    Mutant("no NFKC normalisation", F,
           find='return " ".join(unicodedata.normalize("NFKC", text).lower().split())',
           replace='return " ".join(text.lower().split())',
           message="no NFKC normalisation"),
    Mutant("dedup hashes the raw text", F,
           find='hashlib.sha256(normalize_text(doc).encode("utf-8"))', replace='hashlib.sha256(doc.encode("utf-8"))',
           message="texts not normalised before hashing"),
    Mutant("dedup keeps the last occurrence", F,
           find="for i, doc in enumerate(docs):\n        digest", replace="for i, doc in reversed(list(enumerate(docs))):\n        digest",
           also=(Edit(F, "            kept.append(i)\n    return kept", "            kept.append(i)\n    return sorted(kept)"),),
           message="keeps the last occurrence"),

    # ---- shingles / jaccard
    Mutant("last shingle missing (range off by one)", F,
           find="for i in range(len(words) - k + 1)}", replace="for i in range(len(words) - k)}",
           message="the last shingle is missing"),
    Mutant("jaccard of two empty sets is 0", F,
           find="    if not A and not B:\n        return 1.0", replace="    if not A and not B:\n        return 0.0"),

    # ---- minhash_signature
    Mutant("Python's salted hash() instead of SHA-256", F,
           find='x = torch.tensor([int.from_bytes(hashlib.sha256(s.encode("utf-8")).digest()[:8], "big") % P',
           replace="x = torch.tensor([hash(s) % P", message="salted"),
    Mutant("b drawn before a", F,
           find="""    a = torch.randint(1, P, (num_perm,), generator=g)                            # (K,)
    b = torch.randint(0, P, (num_perm,), generator=g)                            # (K,)""",
           replace="""    b = torch.randint(0, P, (num_perm,), generator=g)                            # (K,)
    a = torch.randint(1, P, (num_perm,), generator=g)                            # (K,)""",
           message="b drawn before a"),
    Mutant("signature takes the maximum", F,
           find="return hashed.min(dim=1).values", replace="return hashed.max(dim=1).values"),
    Mutant("base hash read little-endian", F,
           find='"big") % P\n                      for s in items]',
           replace='"little") % P\n                      for s in items]'),

    # ---- LSH
    Mutant("bands and rows swapped", F,
           find="for band in lsh_buckets(signatures, bands, rows):", replace="for band in lsh_buckets(signatures, rows, bands):",
           message="bands and rows swapped"),
    Mutant("band columns overlap (stride 1 instead of rows)", F,
           find="key = tuple(table[i][band * rows:(band + 1) * rows])", replace="key = tuple(table[i][band:band + rows])"),

    # ---- pack_sequences / packed_attention_mask
    Mutant("last partial row dropped", F,
           find="    tokens.extend([eos_id] * pad)\n    segments.extend([-1] * pad)\n",
           replace="    full = len(tokens) - (block_size - pad) % block_size\n    del tokens[full:], segments[full:]\n",
           message="last partial row dropped"),
    Mutant("no EOS after each document", F,
           find="ids = [int(t) for t in doc] + [eos_id]", replace="ids = [int(t) for t in doc]",
           message="no EOS after each document"),
    Mutant("positions not reset at document starts", F,
           find="position_ids[:, t] = torch.where(same, position_ids[:, t - 1] + 1, 0)",
           replace="position_ids[:, t] = position_ids[:, t - 1] + 1",
           message="positions not reset at document starts"),
    Mutant("padding labelled as the last document", F,
           find="    segments.extend([-1] * pad)\n", replace="    segments.extend([segments[-1]] * pad)\n",
           message="padding labelled as the last document"),
    Mutant("mask not causal", F,
           find="    return same & causal\n", replace="    return same\n",
           message="not causal"),
    Mutant("mask causal only (documents see each other)", F,
           find="    return same & causal\n", replace="    return causal.expand_as(same)\n",
           message="causal only"),

    # ---- fim_transform
    Mutant("FIM cut points not sorted", F,
           find="    lo, hi = min(i, j), max(i, j)\n", replace="    lo, hi = i, j\n",
           message="cut points not sorted"),
    Mutant("SPM laid out like PSM", F,
           find="return FIM_PREFIX + FIM_SUFFIX + suffix + FIM_MIDDLE + prefix + middle",
           replace="return FIM_PREFIX + prefix + FIM_SUFFIX + suffix + FIM_MIDDLE + middle",
           message="SPM with the prefix before the suffix"),
    Mutant("FIM cut points never at the end", F,
           find="i, j = rng.randint(0, n), rng.randint(0, n)", replace="i, j = rng.randint(0, n - 1), rng.randint(0, n - 1)"),
    Mutant("PSM parts in document order", F,
           find="return FIM_PREFIX + prefix + FIM_SUFFIX + suffix + FIM_MIDDLE + middle",
           replace="return FIM_PREFIX + prefix + FIM_MIDDLE + middle + FIM_SUFFIX + suffix",
           message="PSM parts in document order"),

    # ---- mixture_probs / mixture_sampler
    Mutant("temperature exponent T instead of 1/T", F,
           find="q = (w / w.max()) ** (1.0 / temperature)", replace="q = (w / w.max()) ** temperature",
           message="exponent T instead of 1/T"),
    Mutant("powers without dividing by the largest weight (overflow)", F,
           find="q = (w / w.max()) ** (1.0 / temperature)", replace="q = w ** (1.0 / temperature)"),
    Mutant("temperature not validated", F,
           find="    if not (math.isfinite(temperature) and temperature > 0):", replace="    if temperature == 0:"),
    Mutant("sampler draws without replacement", F,
           find="return torch.multinomial(probs, num_samples, replacement=True, generator=generator)",
           replace="return torch.multinomial(probs, num_samples, replacement=False, generator=generator)"),
]

VARIANTS = [
    Variant("MinHash in Python integers, one hash function at a time", F,
            find="""    hashed = (a[:, None] * x[None, :] + b[:, None]) % P                          # (K, S)
    return hashed.min(dim=1).values""",
            replace="""    xs = x.tolist()
    return torch.tensor([min((ai * xi + bi) % P for xi in xs) for ai, bi in zip(a.tolist(), b.tolist())],
                        dtype=torch.int64)"""),
    Variant("positions token by token in Python, mask by tril of the equality", F,
            find="""    position_ids = torch.zeros_like(input_ids)                                     # (R, T)
    for t in range(1, block_size):
        same = segment_ids[:, t] == segment_ids[:, t - 1]
        position_ids[:, t] = torch.where(same, position_ids[:, t - 1] + 1, 0)
""",
            replace="""    positions, count = [], 0
    for n, s in enumerate(segments):
        count = count + 1 if n % block_size and s == segments[n - 1] else 0
        positions.append(count)
    position_ids = torch.tensor(positions, dtype=torch.int64).view(-1, block_size)
""",
            also=(Edit(F, """    T = segment_ids.shape[-1]
    same = segment_ids[:, :, None] == segment_ids[:, None, :]                      # (R, T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=segment_ids.device).tril()  # (T, T)
    return same & causal""", """    return (segment_ids.unsqueeze(-1) == segment_ids.unsqueeze(-2)).tril()"""),)),
    Variant("mixture probabilities by a softmax of log-weights", F,
            find="""    q = (w / w.max()) ** (1.0 / temperature)                                        # (K,) in [0, 1]
    return q / q.sum()""",
            replace="""    return torch.softmax(torch.log(w) / temperature, dim=0)"""),
    Variant("LSH candidates with itertools.combinations; dedup with a dict of first indices", F,
            find="""            for p in range(len(members)):
                for q in range(p + 1, len(members)):
                    pairs.add((members[p], members[q]))""",
            replace="""            import itertools
            pairs.update(itertools.combinations(members, 2))""",
            also=(Edit(F, """    seen: set[bytes] = set()
    kept = []
    for i, doc in enumerate(docs):
        digest = hashlib.sha256(normalize_text(doc).encode("utf-8")).digest()
        if digest not in seen:
            seen.add(digest)
            kept.append(i)
    return kept""", """    first: dict[str, int] = {}
    for i, doc in enumerate(docs):
        first.setdefault(hashlib.sha256(normalize_text(doc).encode("utf-8")).hexdigest(), i)
    return list(first.values())"""),)),
    Variant("FIM with random.Random.randint results unpacked through sorted()", F,
            find="""    i, j = rng.randint(0, n), rng.randint(0, n)
    lo, hi = min(i, j), max(i, j)""",
            replace="""    lo, hi = sorted([rng.randint(0, n) for _ in range(2)])"""),
]

# Survivors of `llmlab mutate 11_data` that compute what the solution computes for every
# input the docstrings allow (the key is the id the command prints).
EQUIVALENT = {
    "data.py: `<` -> `<=` in `if len(words) < k:`":
        "with exactly k words the one shingle of all the words is the one k-gram words[0:k], so both "
        "branches return the same set",
    "data.py: `-` -> `` in `T = segment_ids.shape[-1]`":
        "segment_ids is (R, T) by the docstring, so shape[1] is shape[-1]",
}
