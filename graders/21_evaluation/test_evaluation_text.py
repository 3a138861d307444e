"""Graders for 21_evaluation, text units: normalize_answer, exact_match, token_f1, contamination.

normalize_answer: a fixture suite of hand-written cases (punctuation, articles inside and
outside words, digits, Unicode, whitespace), the normalisation that strips digits named,
golden data, and properties on hypothesis text (idempotent, no upper case, no ASCII
punctuation, no article words, digits kept).
exact_match / token_f1: hand values (multiset overlap, several references, empty answers),
golden data, a loop oracle for F1 on hypothesis inputs, Raises.
contamination: hand values (document boundaries, repeated n-grams, short examples, str and
list tokens), a brute-force oracle on hypothesis inputs, Raises.
"""

from __future__ import annotations

import re
import string

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import evaluation_oracle as O
from llmlab.testing import check, reference
from llmlab.testing.strategies import examples

# (input, expected) written by hand from the docstring's four steps
NORMALIZE_CASES = [
    ("The Cat", "cat"),
    ("  Hello,   World!  ", "hello world"),
    ("an apple a day", "apple day"),
    ("Theater and thermal", "theater and thermal"),             # articles only as whole words
    ("A.B.C.", "abc"),                                          # punctuation first, then articles
    ("in 1889", "in 1889"),                                     # digits stay
    ("3.14 meters", "314 meters"),
    ("$1,000,000", "1000000"),
    ("the the the", ""),
    ("Ünïcödé ÉCOLE", "ünïcödé école"),                         # non-ASCII letters lower-cased, kept
    ("l’Odéon", "l’odéon"),                                     # ’ is not ASCII punctuation
    ("tab\tand\nnewline", "tab and newline"),
    ("An-apple", "anapple"),                                    # the hyphen goes first: no article left
    ("", ""),
]


ARTICLES = re.compile(r"\b(a|an|the)\b")


def _strip_digits(text: str) -> str:
    """Known mistake: the normalisation also deletes digits."""
    text = "".join(ch for ch in text.lower() if ch not in set(string.punctuation) and not ch.isdigit())
    return " ".join(ARTICLES.sub(" ", text).split())


def _em_f1(normalise, pred: str, refs) -> tuple[float, float]:
    """Exact match and best F1 under another normalisation (to name the mistakes that use it)."""
    em = float(any(normalise(pred) == normalise(r) for r in refs))
    return em, max(O.f1_loop(normalise(pred).split(), normalise(r).split()) for r in refs)


def _f1_sets(pred: str, refs, normalise) -> float:
    """Known mistake: tokens compared as sets, so a repeated token counts once."""
    best = 0.0
    for r in refs:
        p, g = set(normalise(pred).split()), set(normalise(r).split())
        best = max(best, O.f1_loop(sorted(p), sorted(g)))
    return best


@pytest.mark.points(2)
def test_normalize_answer_fixture_suite(impl):
    for text, expected in NORMALIZE_CASES:
        check.equal(impl.normalize_answer(text), expected, unit="normalize_answer", case=check.describe(text=text),
                    mistakes={"normalisation that strips digits": _strip_digits(text),
                              "articles removed before the punctuation": " ".join(
                                  "".join(ch for ch in ARTICLES.sub(" ", text.lower())
                                          if ch not in set(string.punctuation)).split()),
                              "articles not removed": " ".join("".join(
                                  ch for ch in text.lower() if ch not in set(string.punctuation)).split())})
    for pred, refs, normalized, em, f1 in reference.load(O.TOPIC, "answers"):
        case = check.describe(prediction=pred, references=refs)
        check.equal(impl.normalize_answer(pred), normalized, unit="normalize_answer", case=case,
                    what="the reference normalisation")
        check.equal(impl.exact_match(pred, refs), em, unit="exact_match", case=case, what="the reference value")
        check.equal(impl.token_f1(pred, refs), f1, unit="token_f1", case=case, what="the reference value")


@pytest.mark.points(1)
@examples(25)
@given(text=st.text(st.sampled_from(list("aAnNtThHeE 19.,!-'xyzÉé\t")), max_size=30))
def test_normalize_answer_properties(impl, text):
    out = impl.normalize_answer(text)
    case = check.describe(text=text)
    check.that(isinstance(out, str), "normalize_answer", f"should return a str, got {type(out).__name__}", case=case)
    check.equal(impl.normalize_answer(out), out, unit="normalize_answer", case=case,
                what="normalising twice changes nothing (idempotence)")
    check.that(out == out.lower() and not any(ch in string.punctuation for ch in out), "normalize_answer",
               f"the output {out!r} still has upper case or ASCII punctuation", case=case)
    check.that(not set(out.split()) & {"a", "an", "the"} and out == " ".join(out.split()), "normalize_answer",
               f"the output {out!r} still has an article word or extra whitespace", case=case)
    check.equal(sorted(ch for ch in out if ch.isdigit()), sorted(ch for ch in text if ch.isdigit()),
                unit="normalize_answer", case=case, what="the digits of the output (every digit is kept)",
                mistakes={"normalisation that strips digits": []})


@pytest.mark.points(2)
def test_exact_match_and_f1_by_hand(impl):
    cases = [
        # prediction, references, exact match, F1 (by hand)
        ("The Cat!", ["cat"], 1.0, 1.0),
        ("a cat sat", ["the cat sat down"], 0.0, 2 * (2 / 2) * (2 / 3) / (2 / 2 + 2 / 3)),     # P 1, R 2/3: 0.8
        ("cat cat dog", ["cat dog dog"], 0.0, 2 / 3),                                         # common = 2 (multiset)
        ("cat cat", ["cat"], 0.0, 2 / 3),                                                     # P 1/2, R 1
        ("Paris", ["London", "paris, France", "PARIS"], 1.0, 1.0),                            # the best reference
        ("blue whale", ("whale shark", "blue"), 0.0, 2 / 3),                                  # a tuple of references
        ("the", ["a"], 1.0, 1.0),                                                             # both normalise to ""
        ("the", ["an answer"], 0.0, 0.0),                                                     # one side empty
        ("in 1889", ["1889"], 0.0, 2 / 3),
        ("1889", ["1890"], 0.0, 0.0),                                                         # digits must not vanish
    ]
    for pred, refs, em, f1 in cases:
        case = check.describe(prediction=pred, references=refs)
        got_em, got_f1 = impl.exact_match(pred, refs), impl.token_f1(pred, refs)
        check.that(type(got_em) is float and type(got_f1) is float, "exact_match/token_f1",
                   f"both should return Python floats, got {type(got_em).__name__} and {type(got_f1).__name__}",
                   case=case)
        stripped = _em_f1(_strip_digits, pred, refs)
        check.equal(got_em, em, unit="exact_match", case=case,
                    mistakes={"normalisation that strips digits": stripped[0]} if stripped[0] != em else None)
        wrong = {"tokens compared as sets (a repeated token counted once)": _f1_sets(pred, refs, impl.normalize_answer),
                 "normalisation that strips digits": stripped[1]}
        check.close(torch.tensor(got_f1, dtype=torch.float64), torch.tensor(f1, dtype=torch.float64), unit="token_f1",
                    case=case, kind="reduction", what="token F1",
                    mistakes={k: torch.tensor(v, dtype=torch.float64) for k, v in wrong.items() if abs(v - f1) > 1e-9})
    for fn, unit in ((impl.exact_match, "exact_match"), (impl.token_f1, "token_f1")):
        check.expect_raises(ValueError, fn, "x", [], unit=unit, case="references = []", why="no references")


@pytest.mark.points(1)
@examples(20)
@given(pred=st.lists(st.sampled_from(["a", "cat", "dog", "The", "7", "dog,"]), max_size=6),
       gold=st.lists(st.lists(st.sampled_from(["the", "cat", "Dog", "7", "bird"]), max_size=5), min_size=1, max_size=3))
def test_token_f1_matches_loop_oracle(impl, pred, gold):
    prediction, references = " ".join(pred), [" ".join(g) for g in gold]
    case = check.describe(prediction=prediction, references=references)
    tokens = lambda s: impl.normalize_answer(s).split()
    expected = max(O.f1_loop(tokens(prediction), tokens(r)) for r in references)
    got = impl.token_f1(prediction, references)
    check.that(abs(got - expected) <= 1e-12, "token_f1", f"got {got!r}, expected {expected!r} (a loop that removes "
               f"matched tokens one by one)", case=case)
    em = impl.exact_match(prediction, references)
    check.that(em <= got, "exact_match/token_f1", f"exact match {em} but F1 {got}: an exact match has F1 = 1",
               case=case)


# ---------------------------------------------------------------- contamination

@pytest.mark.points(2)
def test_contamination_by_hand(impl):
    train = ["the cat sat", "on the mat"]
    examples_ = ["cat sat", "sat on the", "xyz", "ca", "cat"]
    # "cat sat": its 5 character 3-grams are all in document 0 -> 1.0
    # "sat on the": of its 8 3-grams, "t o" and " on" would only exist across the two documents -> 6/8
    # "xyz" -> 0.0; "ca" is shorter than n -> 0.0; "cat" -> 1.0
    got = impl.contamination(examples_, train, 3)
    case = check.describe(examples=examples_, train_docs=train, n=3)
    check.equal(got, [1.0, 0.75, 0.0, 0.0, 1.0], unit="contamination", case=case,
                what="character 3-gram scores (by hand: 'sat on the' has 6 of its 8 3-grams in a document)",
                mistakes={"n-grams taken across document boundaries (documents joined)": [1.0, 1.0, 0.0, 0.0, 1.0],
                          "the last n-gram of each example left out (off by one)": [1.0, 5 / 7, 0.0, 0.0, 0.0]})
    words_train = [["the", "cat", "sat"], ("on", "the", "mat")]
    words_ex = [["cat", "sat", "on", "the"], ("the", "cat", "the", "cat"), ["mat"]]
    got = impl.contamination(words_ex, words_train, 2)
    # ["cat sat", "sat on", "on the"] -> 2/3; ["the cat", "cat the", "the cat"] -> 2/3 (repeats count); ["mat"] -> 0
    check.equal(got, [2 / 3, 2 / 3, 0.0], unit="contamination", case=check.describe(examples=words_ex, n=2),
                what="word 2-gram scores (lists and tuples of words; a repeated n-gram counts each time)",
                mistakes={"distinct n-grams counted once": [2 / 3, 1 / 2, 0.0]})
    got = impl.contamination([[1, 2, 3, 4], [9]], [[1, 2, 3], [3, 4]], 1)
    check.equal(got, [1.0, 0.0], unit="contamination", case="token ids, n = 1", what="unigram scores")
    check.equal(impl.contamination([], train, 2), [], unit="contamination", case="no examples",
                what="an empty list for no examples")
    for n in (0, -2):
        check.expect_raises(ValueError, impl.contamination, examples_, train, n, unit="contamination",
                            case=check.describe(n=n), why="n < 1")


@pytest.mark.points(1)
@examples(15)
@given(docs=st.lists(st.lists(st.integers(0, 3), max_size=12), max_size=4),
       exs=st.lists(st.lists(st.integers(0, 3), max_size=10), min_size=1, max_size=4), n=st.integers(1, 4))
def test_contamination_matches_brute_force(impl, docs, exs, n):
    def brute(example):
        positions = range(len(example) - n + 1)
        if not positions:
            return 0.0
        found = 0
        for i in positions:
            gram = example[i:i + n]
            found += any(doc[j:j + n] == gram for doc in docs for j in range(len(doc) - n + 1))
        return found / len(positions)

    got = impl.contamination(exs, docs, n)
    check.equal(got, [brute(e) for e in exs], unit="contamination", case=check.describe(examples=exs, train_docs=docs,
                                                                                       n=n),
                what="scores (compared with a search of every document position)")
