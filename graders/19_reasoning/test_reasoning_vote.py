"""Graders for 19_reasoning: self-consistency — majority_vote and majority_accuracy.

majority_vote: hand cases for the tie rule (known mistakes named), a count/index oracle on
hypothesis lists (tuples too, input not modified), golden data.
majority_accuracy: hand values, brute-force enumeration of all 2^n outcomes voted with the
tie rule, golden data, limits (n = 1 gives p; p = 1/2 gives 1/2), every Raises clause.
Self-consistency: the accuracy of majority_vote over simulated samples (per-sample accuracy
p, two answers, answers read from completions by extract_answer) against the binomial
formula of the grader, with a stated false-failure rate.
"""

from __future__ import annotations

import math
import random

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reasoning_oracle as O
from llmlab.testing import check, reference, stats
from llmlab.testing.strategies import examples
from llmlab.testing.tolerances import tolerance

VOTE_CASES = [
    (["7", "5", "5", "7"], "7", "a tie: 7 was seen first"),
    (["5", "7", "7", "5"], "5", "a tie: 5 was seen first"),
    (["b", "a", "a", "b", "c"], "b", "a tie between two of three answers"),
    (["3", "3", "4"], "3", "a plain majority"),
    (["4", "3", "3"], "3", "a majority that is not first"),
    ([None, None, "2"], "2", "None casts no vote"),
    ([None, "9", None, "8", "8"], "8", "None ignored"),
    ([None, None], None, "no answer at all"),
    ([], None, "an empty list"),
    (["x"], "x", "one vote"),
    (["2", "1", "1", "2", "3", "3"], "2", "a three-way tie"),
]


@pytest.mark.points(2)
def test_majority_vote_by_hand_and_tie_rule(impl):
    for answers, expected, why in VOTE_CASES:
        given_ = [a for a in answers if a is not None]
        counts = {a: given_.count(a) for a in given_}
        best = max(counts.values(), default=0)
        tied = [a for a in counts if counts[a] == best]
        check.equal(impl.majority_vote(list(answers)), expected, unit="majority_vote",
                    case=check.describe(answers=answers), what=f"the vote ({why})",
                    mistakes={"the tie rule of the vote ignored (the last of the tied answers)":
                              tied[-1] if len(tied) > 1 else "<none>",
                              "the tie rule of the vote ignored (the smallest of the tied answers)":
                              min(tied) if len(tied) > 1 and min(tied) != expected else "<none>",
                              "the tie rule of the vote ignored (the tied answer seen LAST)":
                              max(tied, key=lambda a: len(answers) - answers[::-1].index(a))
                              if len(tied) > 1 else "<none>",
                              "None counted as an answer": None if answers.count(None) > best else "<none>"})


@pytest.mark.points(2)
@examples(60)
@given(answers=st.lists(st.sampled_from(["1", "2", "3", "10", None]), max_size=9), as_tuple=st.booleans())
def test_majority_vote_matches_oracle(impl, answers, as_tuple):
    given_ = tuple(answers) if as_tuple else list(answers)
    saved = list(given_)
    got = impl.majority_vote(given_)
    check.equal(got, O.vote_oracle(answers), unit="majority_vote",
                case=check.describe(answers=given_), what="the vote (oracle: counts by list.count, ties by list.index)")
    check.that(list(given_) == saved, "majority_vote", "the input list was modified", case=check.describe(answers=saved))


@pytest.mark.points(1)
def test_majority_vote_reference(impl):
    ref = reference.load(O.TOPIC, "vote")
    check.equal([impl.majority_vote(a) for a in ref["answers"]], ref["winners"], unit="majority_vote",
                what="the winners of the reference lists", case=check.describe(lists=len(ref["answers"])))


def _binomial(p: float, n: int) -> float:
    """The grader's formula, written with the tail and the tie separately."""
    win = sum(math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n // 2 + 1, n + 1))
    tie = 0.5 * math.comb(n, n // 2) * (p * (1 - p)) ** (n // 2) if n % 2 == 0 else 0.0
    return win + tie


@pytest.mark.points(2)
def test_majority_accuracy_by_hand_and_enumeration(impl):
    tol = tolerance(torch.float64, "reduction")
    hand = [((0.6, 1), 0.6), ((0.6, 2), 0.6), ((0.6, 3), 0.648), ((0.6, 4), 0.648), ((0.5, 7), 0.5),
            ((1.0, 4), 1.0), ((0.0, 3), 0.0), ((0.8, 3), 0.896)]
    for (p, n), expected in hand:
        got = impl.majority_accuracy(p, n)
        check.that(isinstance(got, float), "majority_accuracy", f"should return a Python float, got {type(got).__name__}",
                   case=check.describe(p=p, n=n))
        check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64),
                    unit="majority_accuracy", case=check.describe(p=p, n=n), kind="reduction",
                    what="the majority accuracy (by hand: n = 3, p = 0.6 gives 3·0.36·0.4 + 0.216 = 0.648)",
                    mistakes={"the tie counted as a loss": torch.tensor(
                                  _binomial(p, n) - (0.5 * math.comb(n, n // 2) * (p * (1 - p)) ** (n // 2)
                                                     if n % 2 == 0 else 0.0), dtype=torch.float64),
                              "the tie counted as a win": torch.tensor(
                                  _binomial(p, n) + (0.5 * math.comb(n, n // 2) * (p * (1 - p)) ** (n // 2)
                                                     if n % 2 == 0 else 0.0), dtype=torch.float64)})
    for p in (0.3, 0.55, 0.9):
        for n in range(1, 9):
            check.close(torch.tensor(impl.majority_accuracy(p, n), dtype=torch.float64),
                        torch.tensor(O.accuracy_by_enumeration(p, n), dtype=torch.float64), unit="majority_accuracy",
                        case=check.describe(p=p, n=n), kind="reduction", tol=tol,
                        what="the majority accuracy (oracle: all 2^n outcomes voted with the tie rule)")


@pytest.mark.points(1)
def test_majority_accuracy_reference_and_raises(impl):
    ref = reference.load(O.TOPIC, "accuracy")
    grid = torch.tensor([[impl.majority_accuracy(float(p), int(n)) for n in ref["n"]] for p in ref["p"]],
                        dtype=torch.float64)
    check.close(grid, ref["accuracy"], unit="majority_accuracy", kind="reduction",
                case=check.describe(p=ref["p"], n=ref["n"]), what="the reference grid")
    check.close(grid, torch.tensor([[_binomial(float(p), int(n)) for n in ref["n"]] for p in ref["p"]],
                                   dtype=torch.float64),
                unit="majority_accuracy", kind="reduction", case=check.describe(p=ref["p"], n=ref["n"]),
                what="the grid against the binomial formula")
    for p, n, why in ((-0.1, 3, "p < 0"), (1.5, 3, "p > 1"), (0.5, 0, "n < 1"), (0.5, -2, "n < 1")):
        check.expect_raises(ValueError, impl.majority_accuracy, p, n, unit="majority_accuracy",
                            case=check.describe(p=p, n=n), why=why)


@pytest.mark.points(2)
def test_self_consistency_accuracy_matches_binomial(impl):
    # Each trial draws n completions, each correct with probability p (else the same wrong
    # answer, written in another form), reads their answers with extract_answer and votes. The
    # number of trials whose vote is correct is Binomial(trials, P) with P the grader's formula;
    # three checks at rate 1e-6 / 3 each: a correct implementation fails with probability ≤ 1e-6.
    rng = random.Random(1919)
    for p, n, trials in ((0.6, 5, 1500), (0.6, 4, 1500), (0.35, 3, 1500)):
        wins = 0
        for _ in range(trials):
            samples = [f"...so \\boxed{{1,000}}" if rng.random() < p else "Answer: 999.0" for _ in range(n)]
            wins += impl.majority_vote([impl.extract_answer(s) for s in samples]) == "1000"
        stats.proportion(wins, trials, _binomial(p, n), unit="majority_vote", rate=1e-6 / 3,
                         what=f"trials whose vote of {n} samples (each right with p = {p}) is right",
                         case=check.describe(p=p, n=n, trials=trials))
    check.close(torch.tensor(impl.majority_accuracy(0.6, 5), dtype=torch.float64),
                torch.tensor(_binomial(0.6, 5), dtype=torch.float64), unit="majority_accuracy", kind="reduction",
                case=check.describe(p=0.6, n=5), what="majority_accuracy, the formula the simulation follows")
