"""Mutant catalogue of 01_tokenizer: known student mistakes, and correct code written otherwise.

Each mutant is one mistake (a few coordinated edits where the mistake spans encode and
decode); `message` is the text the graders print when they recognise it.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "tokenizer.py"

_PAD_BODY = """    L = max_len if max_len is not None else max(len(s) for s in seqs)
    B = len(seqs)
    ids = torch.full((B, L), pad_id, dtype=torch.long)          # (B, L)
    mask = torch.zeros((B, L), dtype=torch.long)                # (B, L)
    for b, seq in enumerate(seqs):
        seq = list(seq)
        if len(seq) > L:
            seq = seq[:L] if truncate == "right" else seq[len(seq) - L:]
        n = len(seq)
        start = 0 if side == "right" else L - n
        ids[b, start:start + n] = torch.tensor(seq, dtype=torch.long)
        mask[b, start:start + n] = 1
    return ids, mask
"""

_PAD_VECTORISED = """    L = max_len if max_len is not None else max(len(s) for s in seqs)
    kept = [list(s)[:L] if truncate == "right" else list(s)[max(len(s) - L, 0):] for s in seqs]
    lengths = torch.tensor([len(s) for s in kept], dtype=torch.long)        # (B,)
    pos = torch.arange(L)                                                    # (L,)
    if side == "right":
        mask = (pos[None, :] < lengths[:, None]).long()                      # (B, L)
    else:
        mask = (pos[None, :] >= (L - lengths)[:, None]).long()               # (B, L)
    ids = torch.full((len(seqs), L), pad_id, dtype=torch.long)               # (B, L)
    ids[mask.bool()] = torch.tensor([t for s in kept for t in s], dtype=torch.long)  # row-major order
    return ids, mask
"""

_BYTE_DECODE = """        out: list[str] = []
        run = bytearray()                      # bytes since the last special token
        for i in ids:
            i = _check_id(i, self.vocab_size)
            if i >= N_SPECIAL:
                run.append(i - N_SPECIAL)
            elif not skip_special:
                out.append(run.decode("utf-8", errors="replace"))
                run = bytearray()
                out.append(SPECIAL_TOKENS[i])
        out.append(run.decode("utf-8", errors="replace"))
        return "".join(out)
"""

# Special tokens spliced in as their ASCII text and the whole byte string decoded once:
# ASCII bytes end any incomplete UTF-8 sequence, so this equals decoding each run alone.
_BYTE_DECODE_SPLICED = """        data = bytearray()
        for i in ids:
            i = _check_id(i, self.vocab_size)
            if i >= N_SPECIAL:
                data.append(i - N_SPECIAL)
            elif not skip_special:
                data += SPECIAL_TOKENS[i].encode("ascii")
        return bytes(data).decode("utf-8", errors="replace")
"""

MUTANTS = [
    # ---- CharTokenizer
    Mutant("dropping unknown characters", F,
           find="return [self.stoi.get(c, UNK_ID) for c in text]",
           replace="return [self.stoi[c] for c in text if c in self.stoi]",
           message="dropping unknown characters"),
    Mutant("off-by-one special ids: <pad> left out of the char vocabulary", F,
           find="self.itos = list(SPECIAL_TOKENS) + chars",
           replace="self.itos = list(SPECIAL_TOKENS[1:]) + chars",
           message="off by one"),
    Mutant("retraining extends the old vocabulary", F,
           find='chars = sorted(set("".join(texts)))',
           replace='chars = sorted(set("".join(texts)) | set(self.itos[N_SPECIAL:]))',
           message="extends the previous vocabulary"),
    Mutant("char decode without a range check (negative ids index from the end)", F,
           find="out = []\n        for i in ids:\n            i = _check_id(i, self.vocab_size)",
           replace="out = []\n        for i in ids:\n            i = int(i)"),
    # ---- ByteTokenizer
    Mutant("off-by-one special ids: byte b gets id 3 + b (consistently in encode and decode)", F,
           find='return [N_SPECIAL + b for b in text.encode("utf-8")]',
           replace='return [N_SPECIAL - 1 + b for b in text.encode("utf-8")]',
           also=(Edit(F, "run.append(i - N_SPECIAL)", "run.append(i - N_SPECIAL + 1)"),),
           message="off by one"),
    Mutant("code points instead of UTF-8 bytes", F,
           find='return [N_SPECIAL + b for b in text.encode("utf-8")]',
           replace="return [N_SPECIAL + ord(c) for c in text]",
           message="code points instead of UTF-8 bytes"),
    Mutant("strict UTF-8 decoding crashes on invalid bytes", F,
           find='        out.append(run.decode("utf-8", errors="replace"))\n        return',
           replace='        out.append(run.decode("utf-8"))\n        return',
           message="raised UnicodeDecodeError"),
    Mutant("each byte decoded on its own", F,
           find="run.append(i - N_SPECIAL)",
           replace='out.append(bytes([i - N_SPECIAL]).decode("utf-8", errors="replace"))',
           message="decoded each byte on its own"),
    Mutant("skip_special ignored by ByteTokenizer.decode", F,
           find="elif not skip_special:",
           replace="else:"),
    # ---- WordTokenizer
    Mutant("ties broken by first occurrence", F,
           find="kept.sort(key=lambda w: (-counts[w], w))",
           replace="kept.sort(key=lambda w: -counts[w])",
           message="ties broken by first occurrence"),
    Mutant("max_size does not count the special tokens", F,
           find="kept = kept[: self.max_size - N_SPECIAL]",
           replace="kept = kept[: self.max_size]",
           message="max_size must count the 4 special tokens"),
    Mutant("min_freq applied with >", F,
           find="if c >= self.min_freq]",
           replace="if c > self.min_freq]",
           message="min_freq applied with >"),
    Mutant("split on whitespace instead of the regex", F,
           find="counts.update(WORD_PATTERN.findall(text))",
           replace="counts.update(text.split())",
           also=(Edit(F, "for piece in WORD_PATTERN.findall(text)]", "for piece in text.split()]"),),
           message="split on whitespace"),
    Mutant("dropping unknown words", F,
           find="return [self.stoi.get(piece, UNK_ID) for piece in WORD_PATTERN.findall(text)]",
           replace="return [self.stoi[p] for p in WORD_PATTERN.findall(text) if p in self.stoi]",
           message="dropping unknown words"),
    Mutant("word pieces joined with spaces", F,
           find='return "".join(pieces)',
           replace='return " ".join(pieces)',
           message="joined with spaces"),
    # ---- add_special
    Mutant("add_special modifies the caller's list", F,
           find="return ([BOS_ID] if bos else []) + list(ids) + ([EOS_ID] if eos else [])",
           replace="if bos:\n        ids.insert(0, BOS_ID)\n    if eos:\n        ids.append(EOS_ID)\n    return ids",
           message="must be unchanged"),
    Mutant("<bos> and <eos> swapped", F,
           find="return ([BOS_ID] if bos else []) + list(ids) + ([EOS_ID] if eos else [])",
           replace="return ([EOS_ID] if bos else []) + list(ids) + ([BOS_ID] if eos else [])",
           message="<bos> and <eos> ids swapped"),
    # ---- pad_batch
    Mutant("attention mask inverted", F,
           find="    return ids, mask\n",
           replace="    return ids, 1 - mask\n",
           message="attention mask inverted"),
    Mutant("left padding that pads on the right", F,
           find='start = 0 if side == "right" else L - n',
           replace="start = 0",
           message="left padding that pads on the right"),
    Mutant("mask computed from ids != pad_id", F,
           find="    return ids, mask\n",
           replace="    return ids, (ids != pad_id).long()\n",
           message="mask computed from ids != pad_id"),
    Mutant("boolean attention mask", F,
           find="mask = torch.zeros((B, L), dtype=torch.long)",
           replace="mask = torch.zeros((B, L), dtype=torch.bool)",
           message="dtype torch.bool"),
    Mutant("truncation keeps the wrong end", F,
           find='seq = seq[:L] if truncate == "right" else seq[len(seq) - L:]',
           replace='seq = seq[len(seq) - L:] if truncate == "right" else seq[:L]',
           message="truncation keeps the wrong end"),
    Mutant("pad_batch uses torch's pad_sequence", F,
           find="ids[b, start:start + n] = torch.tensor(seq, dtype=torch.long)",
           replace="ids[b, start:start + n] = torch.nn.utils.rnn.pad_sequence("
                   "[torch.tensor(seq, dtype=torch.long)], batch_first=True)[0]",
           message="must be written from scratch"),
    # ---- compression_ratio
    Mutant("compression counts characters, not bytes", F,
           find='n_bytes = sum(len(t.encode("utf-8")) for t in texts)',
           replace="n_bytes = sum(len(t) for t in texts)",
           message="characters instead of UTF-8 bytes"),
    Mutant("compression as a mean of per-text ratios", F,
           find="    return n_bytes / n_tokens\n",
           replace='    return sum(len(t.encode("utf-8")) / len(tokenizer.encode(t)) for t in texts) / len(texts)\n',
           message="mean of per-text ratios"),
    Mutant("tokens per byte instead of bytes per token", F,
           find="    return n_bytes / n_tokens\n",
           replace="    return n_tokens / n_bytes\n",
           message="tokens per byte"),
]

VARIANTS = [
    Variant("pad_batch vectorised with arange comparisons and a boolean scatter", F,
            find=_PAD_BODY, replace=_PAD_VECTORISED),
    Variant("left truncation with a negative slice", F,
            find="seq[len(seq) - L:]", replace="seq[-L:]"),
    Variant("word ranking by two stable sorts", F,
            find="kept.sort(key=lambda w: (-counts[w], w))",
            replace="kept.sort()\n        kept.sort(key=counts.__getitem__, reverse=True)"),
    Variant("char vocabulary by set union, sorted by ord", F,
            find='chars = sorted(set("".join(texts)))',
            replace="chars = sorted(set().union(*texts), key=ord)"),
    Variant("byte decode: special tokens spliced in as text, one decode", F,
            find=_BYTE_DECODE, replace=_BYTE_DECODE_SPLICED),
    Variant("byte encode through bytearray and a loop", F,
            find='return [N_SPECIAL + b for b in text.encode("utf-8")]',
            replace='ids = []\n        for b in bytearray(text, "utf-8"):\n            ids.append(b + 4)\n        return ids'),
]

# Mutants of `llmlab mutate` that compute the same result for every input the docstrings allow.
EQUIVALENT = {
    "tokenizer.py: `>` -> `>=` in `if len(seq) > L:`":
        "when len(seq) == L, keeping the first L tokens or the last L tokens both keep the whole "
        "sequence, so truncating a sequence of exactly L tokens changes nothing",
}
