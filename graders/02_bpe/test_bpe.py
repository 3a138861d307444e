"""Graders for 02_bpe: `pretokenize` and `train_bpe`.

Evidence: golden data from reference/02_bpe (the merges learned on the shipped corpus), the
brute-force trainer of bpe_oracle.py (recounts every pair after every merge), a hand-written
special-token scanner, and properties (no dropped characters, special tokens atomic, merges
inside pre-tokens only, vocabulary layout, speed of the incremental update).
"""

from __future__ import annotations

import string
import time

import pytest
import regex
from hypothesis import given
from hypothesis import strategies as st

import bpe_oracle as O
from llmlab.testing import check, guard, reference
from llmlab.testing.strategies import examples

TOPIC = "02_bpe"
# Property tests run their hypothesis property inside the test, after one plain call: a TODO
# then fails at once instead of making hypothesis search and shrink. 25 examples
# (`examples(25)`, the course profile otherwise) keep the topic within its time budget.


def run_train(impl, corpus, vocab_size, *specials):
    """The student's train_bpe (tiktoken forbidden), with its result checked for the documented
    types. `specials` is the optional third argument: left out when not given."""
    result = guard.call_without("train_bpe", O.TIKTOKEN_BUILTINS, impl.train_bpe, corpus, vocab_size, *specials)
    case = check.describe(corpus=corpus, vocab_size=vocab_size, **{"special_tokens": s for s in specials})
    check.that(isinstance(result, tuple) and len(result) == 2, "train_bpe",
               f"should return a tuple (vocab, merges), got {type(result).__name__}", case=case)
    vocab, merges = result
    check.that(isinstance(vocab, dict), "train_bpe", f"vocab should be a dict, got {type(vocab).__name__}", case=case)
    check.that(all(isinstance(m, (tuple, list)) and len(m) == 2 and all(isinstance(t, bytes) for t in m)
                   for m in merges), "train_bpe",
               "merges should be a list of (bytes, bytes) tuples", f"first entries: {list(merges)[:3]!r}", case=case)
    return vocab, [tuple(m) for m in merges]


# ------------------------------------------------------------------ pretokenize

@pytest.mark.points(2)
def test_pretokenize_golden_cases(impl):
    for record in reference.load(TOPIC, "pretokenize_cases"):
        text, specials = record["text"], record["special_tokens"]
        check.equal(impl.pretokenize(text, specials), record["pieces"], unit="pretokenize",
                    case=check.describe(text=text, special_tokens=specials))


@pytest.mark.points(2)
def test_pretokenize_matches_gpt2_pattern_on_corpus(impl):
    text = O.course_training_text(20, 7, "<|endoftext|>") + "  I'm sure they'll go.\n\n\n  Yes! Café 東京 2024"
    got = impl.pretokenize(text, ["<|endoftext|>"])
    regex_mistakes = {name: (lambda pattern=pattern: O.pieces_with(pattern, text, ["<|endoftext|>"]))
                      for name, pattern in O.PATTERN_MISTAKES.items()}
    check.equal(got, O.pretokenize(text, ["<|endoftext|>"]), unit="pretokenize",
                case=check.describe(text=text, special_tokens=["<|endoftext|>"]),
                mistakes={"special tokens dropped from the output (keep them as pre-tokens)":
                          lambda: [p for p in O.pretokenize(text, ["<|endoftext|>"]) if p != "<|endoftext|>"],
                          "special tokens ignored (split by the GPT-2 pattern like text)":
                          lambda: O.pretokenize(text, []), **regex_mistakes})


@pytest.mark.points(3)
def test_pretokenize_special_tokens_atomic_longest_and_literal(impl):
    cases = [
        ("<|a|><|b|> then <|a|> and <|b|><|a|>", ["<|a|>", "<|a|><|b|>", "<|b|>"]),
        ("x|y<|endoftext|>end|of text", ["<|endoftext|>"]),
        ("1.5*2 a.b*c a+b*c", ["a.b*c"]),
        ("[[x]][[x]]]", ["[[x]]", "]"]),
    ]
    for text, specials in cases:
        case = check.describe(text=text, special_tokens=specials)

        def wrong_order(text=text, specials=specials):
            alternation = "|".join(regex.escape(s) for s in sorted(specials, key=len))
            parts = regex.split(f"({alternation})", text)
            return [q for i, p in enumerate(parts) for q in ([p] if i % 2 else O.pretokenize(p))]

        def unescaped(text=text, specials=specials):
            alternation = "|".join(sorted(specials, key=len, reverse=True))
            parts = regex.split(f"({alternation})", text)
            return [q for i, p in enumerate(parts) if p for q in ([p] if i % 2 else O.pretokenize(p))]

        check.equal(impl.pretokenize(text, specials), O.pretokenize(text, specials), unit="pretokenize",
                    case=case, mistakes={
                        "special tokens used as regex patterns without regex.escape (| means 'or')": unescaped,
                        "a shorter special token wins over a longer one starting at the same place "
                        "(try the longest first)": wrong_order,
                    })


_PIECES = st.sampled_from(["a", "b", "ab", " ", "  ", "\n", "\t", "'s", "'ll", "9", "42", "é", "東",
                           "🙂", ".", "!?", "<|", "|>", "<|s|>", "<|s|><|t|>", "<|t|>", "s|>"])


@pytest.mark.points(2)
def test_pretokenize_property_no_characters_lost(impl):
    impl.pretokenize("a <|s|>b", ["<|s|>"])  # a TODO fails here at once, not inside hypothesis

    @examples(25)
    @given(parts=st.lists(_PIECES, max_size=25),
           specials=st.sampled_from([[], ["<|s|>"], ["<|s|>", "<|s|><|t|>"], ["<|t|>", "<|s|>", "s|>"]]))
    def prop(parts, specials):
        text = "".join(parts)
        case = check.describe(text=text, special_tokens=specials)
        got = impl.pretokenize(text, specials)
        check.that(isinstance(got, list) and all(isinstance(p, str) for p in got), "pretokenize",
                   "should return a list of str", case=case)
        check.that("".join(got) == text, "pretokenize", "the pre-tokens do not join back to the text "
                   "(a character was dropped, doubled or moved)", f"pre-tokens: {got!r}", case=case)
        check.that(all(p for p in got), "pretokenize", "an empty string is not a pre-token", case=case)
        check.equal(got, O.pretokenize(text, specials), unit="pretokenize", case=case)

    prop()


@pytest.mark.points(1)
def test_pretokenize_rejects_empty_special_token(impl):
    specials = ["<|eot|>", ""]
    check.expect_raises(ValueError, impl.pretokenize, "some text", specials, unit="pretokenize",
                        case=check.describe(text="some text", special_tokens=specials),
                        why="the docstring: a special token may not be the empty string")


# ------------------------------------------------------------------ train_bpe

@pytest.mark.points(2)
def test_train_bpe_small_golden_cases(impl):
    for record in reference.load(TOPIC, "small_training"):
        corpus, size, specials = record["corpus"], record["vocab_size"], record["special_tokens"]
        case = check.describe(corpus=corpus, vocab_size=size, special_tokens=specials)
        _, merges = run_train(impl, corpus, size, specials)
        O.expect_merges(merges, O.unhex_merges(record["merges"]), corpus, specials, case)


_CORPUS_PIECES = st.sampled_from(["a", "b", "ab", "ba", "c", " ", " a", "\n", "aa", "bab", "é",
                                  "🙂", "'s", "1", "12", "<|s|>", "!"])


@pytest.mark.points(4)
def test_train_bpe_matches_brute_force_oracle(impl):
    run_train(impl, "ab ab", 257, [])  # a TODO fails here at once, not inside hypothesis

    # Small alphabets make many ties, so the tie rule is exercised on every example.
    @examples(25)
    @given(parts=st.lists(_CORPUS_PIECES, max_size=40), n_merges=st.integers(0, 14),
           specials=st.sampled_from([[], ["<|s|>"], ["<|s|>", "<|x|>"]]))
    def prop(parts, n_merges, specials):
        corpus = "".join(parts)
        size = 256 + len(specials) + n_merges
        case = check.describe(corpus=corpus, vocab_size=size, special_tokens=specials)
        exp_vocab, exp_merges = O.train_bpe(corpus, size, specials)
        vocab, merges = run_train(impl, corpus, size, specials)
        O.expect_merges(merges, exp_merges, corpus, specials, case)
        check.equal(vocab, exp_vocab, unit="train_bpe", case=case, what="vocab")

    prop()


@pytest.mark.points(2)
def test_train_bpe_tie_rule(impl):
    # All three pairs of "ab zy" occur once: the greatest pair (b"z", b"y") goes first,
    # although (b"a", b"b") is seen first and (b" ", b"z") is the smallest. The other corpora
    # tie pairs of multi-byte tokens, compared as tuples of bytes.
    cases = [("ab zy", 259), ("bc ab abc", 258), ("ab ab bc bc abc", 259)]
    for corpus, size in cases:
        case = check.describe(corpus=corpus, vocab_size=size)
        _, merges = run_train(impl, corpus, size, [])
        O.expect_merges(merges, O.train_bpe(corpus, size)[1], corpus, [], case)


@pytest.mark.points(4)
def test_train_bpe_matches_reference_on_shipped_corpus(impl):
    record = reference.load(TOPIC, "course_bpe")
    corpus = O.course_training_text(**record["corpus"])
    specials = record["special_tokens"]
    exp_vocab, exp_merges, _ = O.parse_saved(record["tokenizer"])
    case = f"the course corpus {record['corpus']}, vocab_size={record['vocab_size']}, special_tokens={specials}"
    vocab, merges = run_train(impl, corpus, record["vocab_size"], specials)
    O.expect_merges(merges, exp_merges, corpus, specials, case)
    check.equal(vocab, exp_vocab, unit="train_bpe", case=case, what="vocab")


@pytest.mark.points(2)
def test_train_bpe_merges_stay_inside_pretokens(impl):
    # Across pre-tokens, " x" + "." would be the most frequent pair; inside them it never occurs.
    corpus = "ax. bx. cx. dx. ex. fx. x.x. the the the"
    specials: list[str] = []
    _, merges = run_train(impl, corpus, 256 + 12, specials)
    pieces = [p.encode("utf-8") for p in O.pretokenize(corpus, specials)]
    for k, (a, b) in enumerate(merges):
        check.that(any(a + b in p for p in pieces), "train_bpe",
                   f"merge {k} makes {a + b!r}, which is not inside any pre-token",
                   "known mistake: merging across pre-tokens (count pairs inside each pre-token only)",
                   case=check.describe(corpus=corpus, vocab_size=268))
    O.expect_merges(merges, O.train_bpe(corpus, 256 + 12)[1], corpus, specials,
                    check.describe(corpus=corpus, vocab_size=268))


@pytest.mark.points(2)
def test_train_bpe_special_tokens_excluded_and_numbered_last(impl):
    specials = ["<|endoftext|>", "<|pad|>"]
    corpus = "<|endoftext|>" * 30 + "ab ab<|pad|>ab" + "<|endoftext|><|pad|>" * 10
    size = 256 + 2 + 3
    case = check.describe(corpus=corpus, vocab_size=size, special_tokens=specials)
    vocab, merges = run_train(impl, corpus, size, specials)
    O.expect_merges(merges, O.train_bpe(corpus, size, specials)[1], corpus, specials, case)
    check.equal({i: vocab.get(i) for i in range(256 + len(merges), 256 + len(merges) + 2)},
                {256 + len(merges): b"<|endoftext|>", 256 + len(merges) + 1: b"<|pad|>"},
                unit="train_bpe", case=case, what="the ids of the special tokens (right after the merges)")


@pytest.mark.points(2)
def test_train_bpe_vocab_layout_and_early_stop(impl):
    corpus = "hello hello world"
    size = 256 + 100 + 1  # far more than this corpus can fill
    case = check.describe(corpus=corpus, vocab_size=size, special_tokens=["<|eot|>"])
    vocab, merges = run_train(impl, corpus, size, ["<|eot|>"])
    expected_merges = O.train_bpe(corpus, size, ["<|eot|>"])[1]
    check.that(len(merges) == len(expected_merges), "train_bpe",
               f"learned {len(merges)} merges; this corpus allows exactly {len(expected_merges)} "
               "(stop when no pre-token has two tokens left; never merge a pair that does not occur)",
               case=case)
    check.equal(vocab, O.vocab_of(merges, ["<|eot|>"]), unit="train_bpe", case=case,
                what="vocab (ids 0-255 single bytes, then one id per merge, then the special tokens)",
                mistakes={"only the bytes seen in the corpus are in the vocabulary (all 256 belong there)":
                          lambda: {i: t for i, t in O.vocab_of(merges, ["<|eot|>"]).items()
                                   if i >= 256 or bytes([i]) in corpus.encode()}})


@pytest.mark.points(1)
def test_train_bpe_rejects_too_small_vocab(impl):
    for size, specials, why in [
        (256, ["<|endoftext|>"], "vocab_size < 256 + len(special_tokens): no room for the special token"),
        (300, ["<|a|>", "<|a|>"], "a special token is listed twice"),
    ]:
        check.expect_raises(ValueError, impl.train_bpe, "some text", size, specials, unit="train_bpe",
                            case=check.describe(corpus="some text", vocab_size=size, special_tokens=specials),
                            why=why)


@pytest.mark.points(1)
def test_train_bpe_rejects_empty_special_token(impl):
    specials = ["<|a|>", ""]
    check.expect_raises(ValueError, impl.train_bpe, "some text", 300, specials, unit="train_bpe",
                        case=check.describe(corpus="some text", vocab_size=300, special_tokens=specials),
                        why="the docstring: a special token may not be the empty string")


@pytest.mark.points(1)
def test_train_bpe_special_tokens_optional(impl):
    # special_tokens may be left out or None: plain training, the merges right after the bytes.
    corpus, size = "low lower lowest newer newest", 256 + 8
    exp_vocab, exp_merges = O.train_bpe(corpus, size)
    for specials in [(), (None,)]:  # train_bpe(corpus, size) and train_bpe(corpus, size, None)
        case = check.describe(corpus=corpus, vocab_size=size, **{"special_tokens": s for s in specials})
        vocab, merges = run_train(impl, corpus, size, *specials)
        O.expect_merges(merges, exp_merges, corpus, [], case)
        check.equal(vocab, exp_vocab, unit="train_bpe", case=case, what="vocab")


@pytest.mark.points(3)
def test_train_bpe_updates_pair_counts_incrementally(impl):
    # Timing, relative to this machine: T1 = the best of three full passes counting every
    # pair of the corpus (bpe_oracle.count_pairs). 100 merges with incremental updates take
    # about 10·T1 for the reference (pre-tokenizing and the first count included); a full
    # recount per merge takes 100 passes or more (measured 120–200·T1). The limit, 50·T1,
    # leaves a factor 5 for slower correct code and machine noise; a failure is re-measured
    # once before it counts.
    import random

    run_train(impl, "ab ab", 257, [])  # a TODO fails here at once, before the calibration
    rng = random.Random(1)
    corpus = " ".join("".join(rng.choice(string.ascii_lowercase) for _ in range(rng.randint(4, 10)))
                      for _ in range(4000))
    words = O.words_of(corpus, [], across_pretokens=False)
    limit = 50

    def ratio() -> tuple[float, float]:
        t1 = min(_timed(O.count_pairs, words) for _ in range(3))
        spent = _timed(lambda: run_train(impl, corpus, 256 + 100, []))
        return spent / t1, spent

    r, spent = ratio()
    if r > limit:  # re-measure once: a busy machine can slow one run down
        r, spent = min((r, spent), ratio())
    check.that(r <= limit, "train_bpe",
               f"too slow: 100 merges took {r:.0f} times one full count of all pairs ({spent:.2f} s); "
               f"the limit is {limit}",
               "known mistake: recounting all pairs after every merge — update only the counts of "
               "the pre-tokens that contain the merged pair",
               case="4000 random lowercase words, vocab_size=356")


def _timed(fn, *args) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start
