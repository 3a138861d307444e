"""Graders for 18_long_context: the needle-in-a-haystack harness.

insert_needle: by hand (the floor rule for the cut named against rounding), a list oracle on
hypothesis inputs, the empty haystack, inputs unchanged, Raises.
needle_in_haystack: a retrieval model with a known reach (passes exactly where the needle is
close enough; multi-token answers need the generated tokens fed back; the whole answer is
compared), the calls it makes (lengths, no autograd), a real TinyLlama against a greedy-loop
oracle and golden verdicts, input forms (tuple of depths, no depths), Raises.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import long_context_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds

KEY, QUERY = 8, 9


# ---------------------------------------------------------------- insert_needle

@pytest.mark.points(1)
def test_insert_needle_by_hand(impl):
    hay, needle = torch.tensor([10, 11, 12, 13]), torch.tensor([1, 2])
    saved = (hay.clone(), needle.clone())
    cases = ((0.0, [1, 2, 10, 11, 12, 13]), (1.0, [10, 11, 12, 13, 1, 2]), (0.5, [10, 11, 1, 2, 12, 13]),
             (0.3, [10, 1, 2, 11, 12, 13]), (0.74, [10, 11, 1, 2, 12, 13]))
    for depth, expected in cases:
        got = impl.insert_needle(hay, needle, depth)
        case = check.describe(haystack=hay, needle=needle, depth=depth)
        rounded = round(depth * 4)
        check.equal(got.tolist(), expected, unit="insert_needle", case=case,
                    what="haystack with the needle in front of haystack[floor(depth·T)]",
                    mistakes={"the cut rounded instead of floored": hay[:rounded].tolist() + [1, 2] +
                              hay[rounded:].tolist(),
                              "the needle replaces haystack tokens": (hay[:math.floor(depth * 4)].tolist() + [1, 2] +
                                                                      hay[math.floor(depth * 4) + 2:].tolist())})
        check.that(got.dtype == torch.int64, "insert_needle", f"should return int64, got {got.dtype}", case=case)
    check.that(torch.equal(hay, saved[0]) and torch.equal(needle, saved[1]), "insert_needle",
               "the inputs were modified in place", case=check.describe(haystack=hay, needle=needle))
    empty = impl.insert_needle(torch.zeros(0, dtype=torch.long), needle, 0.5)
    check.equal(empty.tolist(), [1, 2], unit="insert_needle", case="an empty haystack (T = 0)",
                what="the needle alone")


@pytest.mark.points(1)
@examples(15)
@given(seed=seeds(), T=st.integers(0, 40), n=st.integers(1, 4), depth=st.floats(0.0, 1.0))
def test_insert_needle_matches_list_oracle(impl, seed, T, n, depth):
    hay = tensors.randint((T,), seed, high=8)
    needle = tensors.randint((n,), seed + 1, high=8) + 20
    cut = math.floor(depth * T)
    got = impl.insert_needle(hay, needle, depth)
    check.equal(got.tolist(), hay.tolist()[:cut] + needle.tolist() + hay.tolist()[cut:], unit="insert_needle",
                case=check.describe(T=T, needle=needle, depth=depth), what="haystack with the needle")


@pytest.mark.points(1)
def test_insert_needle_raises(impl):
    hay, needle = torch.arange(5), torch.tensor([7])
    for args, why in (((hay, needle, -0.1), "depth < 0"), ((hay, needle, 1.5), "depth > 1"),
                      ((hay, needle[:0], 0.5), "empty needle")):
        check.expect_raises(ValueError, impl.insert_needle, *args, unit="insert_needle",
                            case=check.describe(haystack=args[0], needle=args[1], depth=args[2]), why=why)


# ---------------------------------------------------------------- needle_in_haystack

def _lookup_case():
    hay = tensors.randint((30,), 3, high=6)                           # filler 0 … 5
    needle = torch.tensor([KEY, 6, 7])
    return hay, needle, torch.tensor([QUERY])


DEPTHS = [0.0, 0.25, 0.5, 0.75, 1.0]


@pytest.mark.points(2)
def test_needle_retrieval_model_reach(impl):
    # cut = 0, 7, 15, 22, 30, so the key sits 33, 26, 18, 11, 3 tokens before the question;
    # a model that reaches 12 tokens back retrieves the needle at depths 0.75 and 1 only
    hay, needle, question = _lookup_case()
    model = O.LookupLM(11, KEY, QUERY, reach=12)
    got = impl.needle_in_haystack(model, hay, needle, question, torch.tensor([6, 7]), DEPTHS)
    case = check.describe(haystack=hay, needle=needle, question=question, answer=[6, 7], depths=DEPTHS,
                          model="retrieves the needle when the key is ≤ 12 tokens before the question")
    check.that(isinstance(got, torch.Tensor) and got.dtype == torch.bool and got.shape == (5,), "needle_in_haystack",
               f"should return a (5,) bool tensor, got {getattr(got, 'dtype', type(got))} "
               f"{tuple(getattr(got, 'shape', ()))}", case=case)
    check.equal(got.tolist(), [False, False, False, True, True], unit="needle_in_haystack", case=case,
                what="verdict per depth (two-token answer)",
                mistakes={"the generated tokens not fed back (the first answer token repeated)": [False] * 5})
    lengths = [n for n, _ in model.calls]
    check.equal(lengths, [34, 35] * 5, unit="needle_in_haystack", case=case,
                what="lengths of the model calls (prompt 34 tokens, then one more per generated token)",
                mistakes={"the generated tokens not fed back (the first answer token repeated)": [34, 34] * 5})
    check.that(not any(grad for _, grad in model.calls), "needle_in_haystack",
               "the model ran with autograd enabled (the harness must run under torch.no_grad())", case=case)
    # the whole answer must match: the right first token and a wrong second one fails everywhere
    got = impl.needle_in_haystack(O.LookupLM(11, KEY, QUERY, reach=12), hay, needle, question,
                                  torch.tensor([6, 5]), DEPTHS)
    check.equal(got.tolist(), [False] * 5, unit="needle_in_haystack",
                case=check.describe(answer=[6, 5], needle=needle), what="verdict when only the first answer token "
                "is right", mistakes={"only the first answer token compared": [False, False, False, True, True]})
    # a one-token answer, a longer reach, depths as a tuple, and no depths at all
    got = impl.needle_in_haystack(O.LookupLM(11, KEY, QUERY, reach=30), hay, needle, question, torch.tensor([6]),
                                  (1.0, 0.0, 0.5))
    check.equal(got.tolist(), [True, False, True], unit="needle_in_haystack",
                case=check.describe(answer=[6], reach=30, depths=(1.0, 0.0, 0.5)), what="verdict per depth")
    none = impl.needle_in_haystack(O.LookupLM(11, KEY, QUERY, reach=30), hay, needle, question, torch.tensor([6]), [])
    check.that(none.dtype == torch.bool and none.shape == (0,), "needle_in_haystack",
               f"no depths should give an empty bool tensor, got {none.dtype} {tuple(none.shape)}", case="depths=[]")


@pytest.mark.points(2)
def test_needle_real_model_matches_greedy_oracle(impl):
    model = O.tiny_llama(7)
    hay = tensors.randint((20,), 11, high=8)
    needle, question = torch.tensor([KEY, 2, 4]), torch.tensor([QUERY, 1])
    depths = [0.0, 0.2, 0.45, 0.8, 1.0]
    # answers: the model's own greedy continuation at two of the depths, so some tests pass
    for answer_depth, a in ((0.2, 3), (0.8, 1)):
        prompt = torch.cat([impl.insert_needle(hay, needle, answer_depth), question])
        answer = torch.tensor(O.greedy_tokens(model, prompt, a))
        expected = [O.greedy_tokens(model, torch.cat([impl.insert_needle(hay, needle, d), question]), a)
                    == answer.tolist() for d in depths]
        got = impl.needle_in_haystack(model, hay, needle, question, answer, depths)
        case = check.describe(model="tiny_llama(7)", haystack=hay, needle=needle, question=question, answer=answer,
                              depths=depths)
        check.equal(got.tolist(), expected, unit="needle_in_haystack", case=case,
                    what="verdict per depth (compared with a greedy loop over the same prompts)")
    ref = reference.load(O.TOPIC, "needle")
    model = O.tiny_llama(181)
    got = impl.needle_in_haystack(model, ref["haystack"], ref["needle"], ref["question"], ref["answer"],
                                  ref["depths"].tolist())
    check.equal(got.tolist(), ref["passed"].tolist(), unit="needle_in_haystack",
                case=check.describe(model="tiny_llama(181)", depths=ref["depths"].tolist()),
                what="verdict per depth (reference)")


@pytest.mark.points(1)
def test_needle_raises(impl):
    hay, needle, question = _lookup_case()
    model = O.LookupLM(11, KEY, QUERY, reach=12)
    bad = ((needle, torch.tensor([6])[:0], [0.5], "empty answer"), (needle, torch.tensor([6]), [0.5, 1.2], "depth > 1"),
           (needle[:0], torch.tensor([6]), [0.5], "empty needle"))
    for nd, answer, depths, why in bad:
        check.expect_raises(ValueError, impl.needle_in_haystack, model, hay, nd, question, answer, depths,
                            unit="needle_in_haystack", case=check.describe(needle=nd, answer=answer, depths=depths),
                            why=why)
