"""Instructor-only graders for 01_tokenizer: fresh randomized cases and edge cases that the
public tests do not show."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest
import torch

from llmlab.lib.corpus import course_corpus
from llmlab.testing import check

SPECIALS = ["<pad>", "<unk>", "<bos>", "<eos>"]
UNK_ID = 1
_PATTERN = re.compile(r" ?\w+| ?[^\w\s]|\s+(?!\S)|\s+")   # the documented WORD_PATTERN


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_decode_rejects_negative_and_large_ids(impl):
    toks = {"CharTokenizer": impl.CharTokenizer().train(["abc"]), "ByteTokenizer": impl.ByteTokenizer(),
            "WordTokenizer": impl.WordTokenizer().train(["a b c"])}
    for name, tok in toks.items():
        for bad in ([-1], [4, -2], [tok.vocab_size + 3]):
            try:
                out = tok.decode(bad)
            except ValueError:
                continue
            check.fail(f"{name}.decode", "must raise ValueError for an id outside [0, vocab_size)",
                       f"returned {out!r} (a negative id is not 'counting from the end')",
                       case=check.describe(ids=bad))


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_word_vocabulary_random_corpora(impl):
    rng = random.Random(2024)
    for trial in range(3):
        corpus = course_corpus(n_paragraphs=8, seed=100 + trial).split("\n\n")
        min_freq, max_size = rng.randint(1, 4), rng.choice([None, 4, 17, 60])
        tok = impl.WordTokenizer(min_freq=min_freq, max_size=max_size).train(corpus)
        counts = Counter(p for t in corpus for p in _PATTERN.findall(t))
        ranked = sorted((-c, w) for w, c in counts.items() if c >= min_freq)   # count desc, word asc
        words = [w for _, w in ranked][: None if max_size is None else max_size - 4]
        case = check.describe(corpus=f"course_corpus(8, seed={100 + trial})", min_freq=min_freq, max_size=max_size)
        check.equal(list(tok.itos), SPECIALS + words, unit="WordTokenizer.train", what="vocabulary (itos)", case=case)
        held_out = course_corpus(n_paragraphs=1, seed=900 + trial)
        index = {t: i for i, t in enumerate(SPECIALS + words)}
        check.equal(tok.encode(held_out), [index.get(p, UNK_ID) for p in _PATTERN.findall(held_out)],
                    unit="WordTokenizer.encode", case=case + "; text: a held-out paragraph")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_pad_batch_random_configurations(impl):
    gen = torch.Generator().manual_seed(77)
    for trial in range(40):
        batch = int(torch.randint(1, 7, (1,), generator=gen))
        seqs = [torch.randint(0, 9, (int(torch.randint(0, 10, (1,), generator=gen)),), generator=gen).tolist()
                for _ in range(batch)]
        longest = max(len(s) for s in seqs)
        max_len = [None, 1, 4, 12][trial % 4] if longest else 3
        side, truncate = ["right", "left"][trial % 2], ["right", "left"][(trial // 2) % 2]
        pad_id = trial % 3
        ids, mask = impl.pad_batch(seqs, pad_id=pad_id, max_len=max_len, side=side, truncate=truncate)
        L = max_len if max_len is not None else longest
        rows, masks = [], []
        for s in seqs:
            kept = s if len(s) <= L else (s[:L] if truncate == "right" else s[len(s) - L:])
            fill = L - len(kept)
            rows.append(kept + [pad_id] * fill if side == "right" else [pad_id] * fill + kept)
            masks.append([1] * len(kept) + [0] * fill if side == "right" else [0] * fill + [1] * len(kept))
        case = check.describe(seqs=seqs, pad_id=pad_id, max_len=max_len, side=side, truncate=truncate)
        check.close(ids, torch.tensor(rows, dtype=torch.long), unit="pad_batch", what="ids", case=case, kind="exact")
        check.close(mask, torch.tensor(masks, dtype=torch.long), unit="pad_batch", what="attention_mask",
                    case=case, kind="exact")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_hidden_char_tokenizer_on_course_corpus(impl):
    text = course_corpus(n_paragraphs=20, seed=42)
    train, held_out = text[: len(text) // 2], text[len(text) // 2:]
    tok = impl.CharTokenizer().train([train])
    itos = SPECIALS + sorted(set(train))
    index = {c: i for i, c in enumerate(itos)}
    expected = [index.get(c, UNK_ID) for c in held_out]
    case = check.describe(train="first half of course_corpus(20, seed=42)", text="second half")
    check.equal(tok.encode(held_out), expected, unit="CharTokenizer.encode", case=case)
    check.equal(len(tok.encode(held_out)), len(held_out), unit="CharTokenizer.encode",
                what="number of ids (one per character, unknown ones included)", case=case)
