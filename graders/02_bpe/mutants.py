"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 02_bpe.

Each is one textual edit of solutions/02_bpe/bpe.py. `llmlab mutants 02_bpe` proves that
every mutant fails a grader (naming the mistake where `message` is set) and every variant
gets full marks.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "bpe.py"

MUTANTS = [
    # ---------------------------------------------------------------- pretokenize
    Mutant("special tokens used as regex patterns (not escaped)", F,
           find='"|".join(regex.escape(s) for s in sorted(specials, key=len, reverse=True))',
           replace='"|".join(s for s in sorted(specials, key=len, reverse=True))',
           message="without regex.escape"),
    Mutant("shorter special token matched first", F,
           find="sorted(specials, key=len, reverse=True)",
           replace="sorted(specials, key=len)",
           message="a shorter special token wins"),
    Mutant("own regex without the whitespace look-ahead", F,
           find=r'|\s+(?!\S)|\s+"""', replace=r'|\s+"""',
           message="whitespace matched as \\s+ only"),
    Mutant("own regex with ASCII letters only", F,
           find=r"| ?\p{L}+|", replace=r"| ?[a-zA-Z]+|",
           also=(Edit(F, find=r"?[^\s\p{L}\p{N}]+", replace=r"?[^\sa-zA-Z\p{N}]+"),),
           message="letters matched as [a-zA-Z]"),
    Mutant("special tokens dropped from the pre-tokens", F,
           find="            pieces.append(part)\n",
           replace="            pass\n",
           message="special tokens dropped"),
    # ---------------------------------------------------------------- train_bpe
    Mutant("merging across pre-tokens", F,
           find="counts = Counter(p for p in pretokenize(corpus, specials) if p not in special_set)",
           # pairs counted over whole documents (the stretches between special tokens)
           replace=('counts = Counter(d for d in (regex.split("|".join(map(regex.escape, specials)), corpus) '
                    'if specials else [corpus]) if d)'),
           message="merging across pre-tokens"),
    Mutant("special tokens trained on as text", F,
           find="counts = Counter(p for p in pretokenize(corpus, specials) if p not in special_set)",
           replace="counts = Counter(p for p in pretokenize(corpus, specials))",
           message="special tokens were used as training text"),
    Mutant("ties broken by insertion order", F,
           find="best = max(pair_counts, key=lambda pair: (pair_counts[pair], pair))",
           replace="best = max(pair_counts, key=pair_counts.get)",
           message="ties broken by another rule"),
    Mutant("ties broken by comparing the merged bytes instead of the pair", F,
           find="best = max(pair_counts, key=lambda pair: (pair_counts[pair], pair))",
           replace="best = max(pair_counts, key=lambda pair: (pair_counts[pair], pair[0] + pair[1]))",
           message="ties broken by another rule"),
    Mutant("special token ids counted from the end of vocab_size (gap after an early stop)", F,
           find='        vocab[256 + len(merges) + j] = special.encode("utf-8")',
           replace='        vocab[vocab_size - len(specials) + j] = special.encode("utf-8")'),
    Mutant("ties broken by the smallest pair", F,
           find="best = max(pair_counts, key=lambda pair: (pair_counts[pair], pair))",
           replace="best = min(pair_counts, key=lambda pair: (-pair_counts[pair], pair))",
           message="ties broken by another rule"),
    Mutant("recounting all pairs after every merge (too slow)", F,
           find="        for w in where.pop(best):\n",
           replace=("        words = [merge(word, best, new) for word in words]\n"
                    "        pair_counts = Counter()\n"
                    "        for w, word in enumerate(words):\n"
                    "            for pair in zip(word, word[1:]):\n"
                    "                pair_counts[pair] += freqs[w]\n"
                    "        for w in []:\n"),
           message="recounting all pairs after every merge"),
    Mutant("incremental update forgets to index the new pairs", F,
           find="                pair_counts[pair] += f\n                where[pair].add(w)\n",
           replace="                pair_counts[pair] += f\n",
           also=(Edit(F, "for w in where.pop(best):", "for w in where.pop(best, set()):"),),
           message="pair counts are wrong after a merge"),
    Mutant("pairs whose count drops to zero are kept (merges of absent pairs)", F,
           find="                if pair_counts[pair] == 0:\n                    del pair_counts[pair]\n",
           replace=""),
    Mutant("overlapping occurrences merged (b'aaa' -> b'aa', b'aa')", F,
           find="                out.append(new)\n                i += 2\n",
           replace="                out.append(new)\n                i += 1\n"),
    Mutant("only the bytes seen in the corpus are in the vocabulary", F,
           find="    vocab = {i: bytes([i]) for i in range(256)}\n    for k, (left, right) in enumerate(merges):",
           replace=("    vocab = {i: bytes([i]) for i in range(256) if bytes([i]) in corpus.encode()}\n"
                    "    for k, (left, right) in enumerate(merges):"),
           message="only the bytes seen in the corpus"),
    # ---------------------------------------------------------------- encode / decode
    Mutant("encode: leftmost mergeable pair first instead of lowest rank", F,
           find='best = min(pairs, key=lambda pair: self.merge_ranks.get(pair, float("inf")))',
           replace="best = next((p for p in zip(tokens, tokens[1:]) if p in self.merge_ranks), None)",
           message="merges applied in the wrong order"),
    Mutant("encode: latest merge first", F,
           find='best = min(pairs, key=lambda pair: self.merge_ranks.get(pair, float("inf")))',
           replace="best = max(pairs, key=lambda pair: self.merge_ranks.get(pair, -1))",
           message="merges applied in the wrong order"),
    Mutant("encode: special tokens not passed to pretokenize (split into bytes)", F,
           find="for piece in pretokenize(text, self.special_tokens):",
           replace="for piece in pretokenize(text):",
           message="special tokens split into bytes"),
    Mutant("encode: the last unmerged token of a pre-token is dropped", F,
           find="                    while i < len(tokens):\n",
           replace="                    while i < len(tokens) - 1:\n",
           message="dropping bytes"),
    Mutant("decode: each token decoded on its own", F,
           find='        return b"".join(chunks).decode("utf-8", errors="replace")\n',
           replace='        return "".join(c.decode("utf-8", errors="replace") for c in chunks)\n',
           message="each token decoded on its own"),
    Mutant("decode: invalid bytes dropped (errors='ignore')", F,
           find='decode("utf-8", errors="replace")',
           replace='decode("utf-8", errors="ignore")',
           message="invalid bytes dropped"),
    Mutant("decode: strict UTF-8 (raises on invalid bytes)", F,
           find='decode("utf-8", errors="replace")',
           replace='decode("utf-8")',
           message="errors='replace'"),
    # ---------------------------------------------------------------- streaming, files
    Mutant("encode_iterable: each chunk encoded on its own", F,
           find="if end + margin > len(buffer):",
           replace="if end > len(buffer):",
           message="each chunk encoded on its own"),
    Mutant("encode_iterable: margin ignores the length of special tokens", F,
           find="margin = max((len(s) for s in self.special_tokens), default=0) + 2",
           replace="margin = 2"),
    Mutant("encode_iterable: reads the whole input first", F,
           find="        for chunk in iterable:\n            buffer += chunk\n",
           replace='        for chunk in ["".join(iterable)]:\n            buffer += chunk\n',
           message="before yielding the first 5 ids"),
    Mutant("load: special tokens not restored", F,
           find='return cls(vocab, merges, data["special_tokens"])',
           replace="return cls(vocab, merges)"),
]

VARIANTS = [
    Variant("tie rule via max over (count, pair) tuples", F,
            find="best = max(pair_counts, key=lambda pair: (pair_counts[pair], pair))",
            replace="best = max((count, pair) for pair, count in pair_counts.items())[1]"),
    Variant("train on every pre-token occurrence (no de-duplication)", F,
            find=("    counts = Counter(p for p in pretokenize(corpus, specials) if p not in special_set)\n"
                  "    words = [[bytes([b]) for b in piece.encode(\"utf-8\")] for piece in counts]\n"
                  "    freqs = list(counts.values())\n"),
            replace=("    occurrences = [p for p in pretokenize(corpus, specials) if p not in special_set]\n"
                     "    words = [[bytes([b]) for b in piece.encode(\"utf-8\")] for piece in occurrences]\n"
                     "    freqs = [1] * len(words)\n")),
    Variant("pretokenize with finditer over special-token matches", F,
            find=("    pieces = []\n"
                  "    # With one capturing group, split returns [text, special, text, special, ..., text].\n"
                  "    for i, part in enumerate(regex.split(f\"({alternation})\", text)):\n"
                  "        if i % 2 == 1:\n"
                  "            pieces.append(part)\n"
                  "        else:\n"
                  "            pieces.extend(GPT2_REGEX.findall(part))\n"
                  "    return pieces\n"),
            replace=("    pieces, start = [], 0\n"
                     "    for match in regex.finditer(alternation, text):\n"
                     "        pieces.extend(GPT2_REGEX.findall(text, start, match.start()))\n"
                     "        pieces.append(match.group())\n"
                     "        start = match.end()\n"
                     "    pieces.extend(GPT2_REGEX.findall(text, start))\n"
                     "    return pieces\n")),
    Variant("encode by replaying every merge in learned order", F,
            find=("                while len(tokens) > 1:\n"
                  "                    pairs = set(zip(tokens, tokens[1:]))\n"
                  "                    best = min(pairs, key=lambda pair: self.merge_ranks.get(pair, float(\"inf\")))\n"
                  "                    if best not in self.merge_ranks:\n"
                  "                        break\n"),
            replace=("                for best in self.merges:\n"
                     "                    if len(tokens) < 2:\n"
                     "                        break\n")),
    Variant("encode_iterable in batches of at least 4 KB", F,
            find="            buffer += chunk\n            cut = start = 0\n",
            replace=("            buffer += chunk\n"
                     "            if len(buffer) < 4096:\n"
                     "                continue\n"
                     "            cut = start = 0\n")),
    Variant("decode through a bytearray and str()", F,
            find='        return b"".join(chunks).decode("utf-8", errors="replace")\n',
            replace=('        data = bytearray()\n'
                     '        for chunk in chunks:\n'
                     '            data += chunk\n'
                     '        return str(bytes(data), "utf-8", "replace")\n')),
]

# Survivors of `llmlab mutate 02_bpe` that compute the same result for every input the
# docstrings allow.
_MARGIN = "margin = max((len(s) for s in self.special_tokens), default=0) + 2"
_MARGIN_LARGER = ("a larger streaming margin only holds back more of the buffer before its ids are "
                  "emitted (the final flush encodes the rest); every cut it makes is one the exact margin "
                  "also makes, so the ids are those of encode, which is all the docstring asks ('any rule "
                  "that gives the same ids is fine'), and memory stays bounded")
_SAVE = 'Path(path).write_text(json.dumps(data, indent=1, ensure_ascii=False), encoding="utf-8")'
EQUIVALENT = {
    f"bpe.py: `0` -> `1` in `{_MARGIN}`": "with no special tokens the margin becomes 3 instead of 2: " + _MARGIN_LARGER,
    f"bpe.py: `2` -> `3` in `{_MARGIN}`": "the margin grows by one character: " + _MARGIN_LARGER,
    "bpe.py: `>` -> `>=` in `if end + margin > len(buffer):`":
        "a pre-token is emitted only when one more character follows it, the same as a margin one larger: "
        + _MARGIN_LARGER,
    f"bpe.py: `1` -> `0` in `{_SAVE}`": "indent only changes the whitespace of the JSON file, which the "
                                      "format says does not matter (load reads the same data)",
    f"bpe.py: `1` -> `2` in `{_SAVE}`": "indent only changes the whitespace of the JSON file, which the "
                                      "format says does not matter (load reads the same data)",
    f"bpe.py: `False` -> `True` in `{_SAVE}`":
        "ensure_ascii=True writes non-ASCII characters of the special tokens as \\uXXXX escapes, which any "
        "JSON reader decodes to the same strings (a special token can hold no lone surrogate: the "
        "constructor encodes every special token to UTF-8)",
}
