"""Oracles for the 01_tokenizer graders (instructor code, not a test): the documented
rules of the topic written again here, so that the graders never trust the submission's
constants or its copy of the regular expression.

- `char_itos` / `char_ids`: the CharTokenizer vocabulary by brute force, and its ids;
- `word_itos` / `word_ids`: the WordTokenizer vocabulary rule (count descending, then the
  piece ascending; min_freq with >=; max_size counting the special tokens), with keyword
  switches that build the catalogued mistakes for failure messages;
- `pad`: pad_batch's contract, one row at a time with Python lists.
"""

from __future__ import annotations

import re
from collections import Counter

import torch

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
# The pre-tokenization rule stated in the docstring of WORD_PATTERN, typed again here.
PATTERN = re.compile(r" ?\w+| ?[^\w\s]|\s+(?!\S)|\s+")


def char_itos(texts) -> list[str]:
    """Every character seen, sorted by code point, after the four special tokens."""
    seen = set()
    for t in texts:
        for c in t:
            seen.add(c)
    return SPECIALS + sorted(seen, key=ord)


def char_ids(itos, text, unk=True) -> list[int]:
    """The ids of `text` under vocabulary `itos`; with unk=False unknown characters are
    dropped (the catalogued mistake)."""
    index = {tok: i for i, tok in enumerate(itos)}
    return [index.get(c, UNK_ID) for c in text if unk or c in index]


def word_itos(texts, min_freq=1, max_size=None, *, ties="word", space_split=False, cap_words=False,
              strict=False) -> list[str]:
    """The documented vocabulary rule. The keyword switches build catalogued mistakes:
    ties="first" (ties by first occurrence), space_split (str.split instead of the regex),
    cap_words (max_size not counting the specials), strict (min_freq with >)."""
    counts = Counter()
    for t in texts:
        counts.update(t.split() if space_split else PATTERN.findall(t))
    words = [w for w in counts if (counts[w] > min_freq if strict else counts[w] >= min_freq)]
    if ties == "word":
        words.sort(key=lambda w: (-counts[w], w))
    else:  # first occurrence: Counter keeps insertion order, sort is stable
        words.sort(key=lambda w: -counts[w])
    if max_size is not None:
        words = words[: max_size if cap_words else max_size - len(SPECIALS)]
    return SPECIALS + words


def word_ids(itos, text, drop_unk=False) -> list[int]:
    """The ids of the PATTERN pieces of `text` under `itos`; drop_unk drops unknown pieces
    (the catalogued mistake)."""
    index = {tok: i for i, tok in enumerate(itos)}
    pieces = PATTERN.findall(text)
    return [index.get(p, UNK_ID) for p in pieces if not (drop_unk and p not in index)]


def pad(seqs, pad_id=PAD_ID, max_len=None, side="right", truncate="right") -> tuple[torch.Tensor, torch.Tensor]:
    """pad_batch's contract, one row at a time: (ids, attention_mask), torch.long (B, L)."""
    L = max_len if max_len is not None else max(len(s) for s in seqs)
    rows, masks = [], []
    for s in seqs:
        s = list(s)
        if len(s) > L:
            s = s[:L] if truncate == "right" else s[len(s) - L:]
        fill = [pad_id] * (L - len(s))
        rows.append(s + fill if side == "right" else fill + s)
        masks.append([1] * len(s) + [0] * len(fill) if side == "right" else [0] * len(fill) + [1] * len(s))
    return torch.tensor(rows, dtype=torch.long).reshape(len(seqs), L), \
        torch.tensor(masks, dtype=torch.long).reshape(len(seqs), L)
