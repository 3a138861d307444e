"""Instructor-only graders for 01_tokenizer: fresh randomized cases and edge cases that the
public tests do not show."""

from __future__ import annotations

import random

import pytest

import tokenizer_oracle as O  # graders/01_tokenizer/tokenizer_oracle.py (on sys.path via the harness)
from llmlab.lib.corpus import course_corpus
from llmlab.testing import check, tensors


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_decode_rejects_negative_and_large_ids(impl):
    toks = {"CharTokenizer": impl.CharTokenizer().train(["abc"]), "ByteTokenizer": impl.ByteTokenizer(),
            "WordTokenizer": impl.WordTokenizer().train(["a b c"])}
    for name, tok in toks.items():
        for bad in ([-1], [4, -2], [tok.vocab_size + 3]):
            check.expect_raises(ValueError, tok.decode, bad, unit=f"{name}.decode", case=check.describe(ids=bad),
                                why=f"ids must lie in [0, vocab_size) = [0, {tok.vocab_size}); "
                                    f"a negative id is not 'counting from the end'")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_word_vocabulary_random_corpora(impl):
    rng = random.Random(2024)
    for trial in range(3):
        corpus = course_corpus(n_paragraphs=8, seed=100 + trial).split("\n\n")
        min_freq, max_size = rng.randint(1, 4), rng.choice([None, 4, 17, 60])
        tok = impl.WordTokenizer(min_freq=min_freq, max_size=max_size).train(corpus)
        itos = O.word_itos(corpus, min_freq, max_size)
        case = check.describe(corpus=f"course_corpus(8, seed={100 + trial})", min_freq=min_freq, max_size=max_size)
        check.equal(list(tok.itos), itos, unit="WordTokenizer.train", what="vocabulary (itos)", case=case)
        held_out = course_corpus(n_paragraphs=1, seed=900 + trial)
        check.equal(tok.encode(held_out), O.word_ids(itos, held_out),
                    unit="WordTokenizer.encode", case=case + "; text: a held-out paragraph")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_pad_batch_random_configurations(impl):
    for trial in range(40):
        batch = int(tensors.randint((1,), 3 * trial, 7, low=1))
        lengths = tensors.randint((batch,), 3 * trial + 1, 10).tolist()
        rows = tensors.randint((batch, 9), 3 * trial + 2, 9).tolist()
        seqs = [row[:n] for row, n in zip(rows, lengths)]
        max_len = [None, 1, 4, 12][trial % 4]   # None with only empty sequences: L = 0
        side, truncate = ["right", "left"][trial % 2], ["right", "left"][(trial // 2) % 2]
        pad_id = trial % 3
        ids, mask = impl.pad_batch(seqs, pad_id=pad_id, max_len=max_len, side=side, truncate=truncate)
        exp_ids, exp_mask = O.pad(seqs, pad_id=pad_id, max_len=max_len, side=side, truncate=truncate)
        case = check.describe(seqs=seqs, pad_id=pad_id, max_len=max_len, side=side, truncate=truncate)
        check.close(ids, exp_ids, unit="pad_batch", what="ids", case=case, kind="exact")
        check.close(mask, exp_mask, unit="pad_batch", what="attention_mask", case=case, kind="exact")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_hidden_char_tokenizer_on_course_corpus(impl):
    text = course_corpus(n_paragraphs=20, seed=42)
    train, held_out = text[: len(text) // 2], text[len(text) // 2:]
    tok = impl.CharTokenizer().train([train])
    expected = O.char_ids(O.char_itos([train]), held_out)
    case = check.describe(train="first half of course_corpus(20, seed=42)", text="second half")
    check.equal(tok.encode(held_out), expected, unit="CharTokenizer.encode", case=case)
    check.equal(len(tok.encode(held_out)), len(held_out), unit="CharTokenizer.encode",
                what="number of ids (one per character, unknown ones included)", case=case)
