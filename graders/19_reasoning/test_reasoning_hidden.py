"""Instructor-only graders for 19_reasoning (left out of student bundles).

  - more tricky completions for extract_answer, with hand-written answers;
  - majority_accuracy for large n against the grader's binomial formula, and its growth in n;
  - verifiable_reward on templated addition completions (right, off by one, reformatted);
  - rejection_sample with a random sampler: the probability of keeping a trace within
    max_tries against 1 − (1 − q)^max_tries, with a stated false-failure rate.
"""

from __future__ import annotations

import math
import random

import pytest
import torch

import reasoning_oracle as O
from llmlab.testing import check, stats
from llmlab.testing.tolerances import Tolerance

HIDDEN_SUITE = [
    ("Let me verify: \\boxed{21}\nVerify: 3 * 7 = 21, and 20 + 1 = 21, also 22 - 1 = 21 so 0", "21",
     "a verification line after a box"),
    ("The answer: 8\nChecking: 4 + 4 = 8, 9 - 1 = 8 and 7", "8", "'answer:' inside a sentence"),
    ("Total: 1,000\nVerification 1,000 - 1 = 999", "1000", "fallback with a verification line"),
    ("\\boxed{-0.50}", "-0.5", "a negative decimal in a box"),
    ("\\boxed{+3}", "3", "a plus sign in a box"),
    ("\\boxed{x = 3}", "x = 3", "a box that is not a number is returned as it is"),
    ("answer: ", None, "an empty Answer: line and nothing else"),
    ("Answer:\n17", "17", "an Answer: line whose number is on the next line falls back"),
    ("We get 12,34 here", "34", "a malformed group: 12 and 34 are two numbers"),
    ("Answer: 1 234 567", "1234567", "an Answer: line with space separators"),
    ("Answer: 12 and 13.", "12", "the first number of the Answer: line"),
    ("\\boxed{\\boxed{1}2}", "1", "the inner box starts last even inside text"),
    ("\\boxed{{}}", "{}", "a box holding only braces"),
    ("check 5\ncheck 6", None, "only verification lines"),
]


@pytest.mark.hidden
@pytest.mark.points(2)
def test_extract_answer_hidden_suite(impl):
    for text, expected, why in HIDDEN_SUITE:
        check.equal(impl.extract_answer(text), expected, unit="extract_answer", case=check.describe(text=text),
                    what=f"the final answer ({why})",
                    mistakes={"taking the first number instead of the final answer": O.first_number(text)
                              if O.first_number(text) != expected else "<none>"})
        check.equal(O.extract_oracle(text), expected, unit="extract_answer (grader self-check)",
                    case=check.describe(text=text), what="the oracle agrees with the hand-written answer")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_majority_accuracy_large_n_hidden(impl):
    # For large n the sum has many terms; the formula below is summed in the other order.
    for p, n in ((0.55, 101), (0.55, 200), (0.45, 150), (0.7, 64)):
        win = sum(math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n, n // 2, -1))
        tie = 0.5 * math.comb(n, n // 2) * p ** (n // 2) * (1 - p) ** (n // 2) if n % 2 == 0 else 0.0
        # relative 1e-12, as the docstring promises for n ≤ 200
        check.close(torch.tensor(impl.majority_accuracy(p, n), dtype=torch.float64),
                    torch.tensor(win + tie, dtype=torch.float64), unit="majority_accuracy",
                    case=check.describe(p=p, n=n), kind="reduction",
                    tol=Tolerance(1e-12, 1e-15), what="the majority accuracy for large n")
    odd = [impl.majority_accuracy(0.6, n) for n in (1, 3, 5, 9, 17, 33)]
    check.that(all(a < b for a, b in zip(odd, odd[1:])), "majority_accuracy",
               "with p = 0.6 the accuracy must grow with every odd n", f"got {odd}", case="p=0.6")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_verifiable_reward_addition_completions_hidden(impl):
    rng = random.Random(77)
    for _ in range(40):
        a, b = rng.randint(0, 9999), rng.randint(0, 9999)
        prompt = f"{a}+{b}="
        text = impl.format_thinking(prompt, impl.addition_trace(a, b), str(a + b))
        completion = text[len(prompt):]
        case = check.describe(completion=completion, truth=a + b)
        check.equal(impl.verifiable_reward(completion, a + b), 1.0, unit="verifiable_reward", case=case,
                    what="the reward of the worked, correct completion")
        wrong = completion.replace("{" + str(a + b) + "}", "{" + str(a + b + 1) + "}")
        check.equal(impl.verifiable_reward(wrong, str(a + b)), 0.1, unit="verifiable_reward",
                    case=check.describe(completion=wrong, truth=a + b), what="the reward of an off-by-one answer")
        plain = completion.replace("\\boxed{", "The answer is ").rstrip("}")
        check.equal(impl.verifiable_reward(plain, a + b), 0.0, unit="verifiable_reward",
                    case=check.describe(completion=plain, truth=a + b),
                    what="the reward of a correct answer outside a box", mistakes={
                        "a reward for correct answers in the wrong format": 1.0})


@pytest.mark.hidden
@pytest.mark.points(1)
def test_rejection_sample_random_sampler_hidden(impl):
    # A sampler right with probability q = 0.3; with max_tries = 3 a trace is kept with
    # probability 1 − 0.7^3 = 0.657. 2000 runs, rate 1e-6 (false failure ≤ 1e-6).
    rng = random.Random(5)
    right, wrong = "<think>t</think>\\boxed{9}", "<think>t</think>\\boxed{8}"
    sampler = lambda prompt: right if rng.random() < 0.3 else wrong
    kept = 0
    for _ in range(2000):
        got, tries = impl.rejection_sample(sampler, "4+5=", 9, 1, 3)
        kept += len(got) == 1
        check.that(1 <= tries <= 3 and (tries == 3 or len(got) == 1), "rejection_sample",
                   f"tries = {tries} with {len(got)} kept: it must stop at the first kept trace or after 3 tries",
                   case="n_keep=1, max_tries=3")
    stats.proportion(kept, 2000, 1 - 0.7 ** 3, unit="rejection_sample", rate=1e-6,
                     what="runs that kept a trace within 3 tries", case="q=0.3, n_keep=1, max_tries=3")
