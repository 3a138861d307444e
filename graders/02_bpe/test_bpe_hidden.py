"""Instructor-only graders for 02_bpe: fresh randomized cases the students never see."""

from __future__ import annotations

import random

import pytest

import bpe_oracle as O
from llmlab.testing import check, reference


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_train_bpe_on_unseen_corpus(impl):
    specials = ["<|doc|>", "<|doc|><|end|>"]
    corpus = O.course_training_text(30, 2024, "<|doc|>") + "<|doc|><|end|>naïve Zoë's 東京🙂 12.50"
    size = 256 + len(specials) + 150
    vocab, merges = impl.train_bpe(corpus, size, specials)
    exp_vocab, exp_merges = O.train_bpe(corpus, size, specials)
    case = f"course corpus (30 paragraphs, seed 2024, joined by <|doc|>), vocab_size={size}, special_tokens={specials}"
    O.expect_merges([tuple(m) for m in merges], exp_merges, corpus, specials, case)
    check.equal(vocab, exp_vocab, unit="train_bpe", case=case, what="vocab")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_encode_with_randomly_trained_merges(impl):
    rng = random.Random(7)
    for trial in range(6):
        alphabet = rng.choice(["ab ", "abc \n", "xyz'é ", "ab1 2."])
        corpus = "".join(rng.choice(alphabet) for _ in range(rng.randint(50, 200)))
        _, merges = O.train_bpe(corpus, 256 + rng.randint(5, 30))
        tok = impl.BPETokenizer(O.vocab_of(merges, ["<|s|>"]), merges, ["<|s|>"])
        text = "".join(rng.choice(alphabet + "<|s|>") for _ in range(120))
        expected = O.encode(text, merges, ["<|s|>"])
        check.equal(tok.encode(text), expected, unit="BPETokenizer.encode",
                    case=check.describe(corpus=corpus, text=text),
                    mistakes={"merges applied in the wrong order: the leftmost mergeable pair first":
                              lambda: O.encode(text, merges, ["<|s|>"], order="leftmost")})
        check.equal(tok.decode(expected), text, unit="BPETokenizer.decode", case=check.describe(text=text))


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_encode_iterable_one_character_chunks(impl):
    specials = ["<|endoftext|>", "<|endoftext|><|endoftext|>x"]
    merges = O.parse_saved(reference.load("02_bpe", "course_bpe")["tokenizer"])[1]
    tok = impl.BPETokenizer(O.vocab_of(merges, specials), merges, specials)
    text = ("She'll go.  \n\n  <|endoftext|><|endoftext|>x<|endoftext|><|endoftext|>y   \t \n"
            "Ada's 1999 café 東京 🙂 <|endoftext|")
    chunks = [c for ch in text for c in ("", ch)]  # one character at a time, with empty chunks between
    got = [int(i) for i in tok.encode_iterable(iter(chunks))]
    check.equal(got, O.encode(text, merges, specials), unit="BPETokenizer.encode_iterable",
                case="one character per chunk, empty chunks in between, overlapping special tokens")
