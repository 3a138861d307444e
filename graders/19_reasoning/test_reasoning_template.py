"""Graders for 19_reasoning: the thinking template, its masks and loss, the reward, rejection
sampling and the addition task.

format_thinking / think_masks: hand cases, masks against an oracle on hypothesis texts
(span boundaries, no overlap), every Raises clause.
thinking_loss: values against a log-softmax oracle and golden data for several thinking
weights, known mistakes named (prompt tokens counted, weights ignored, mean over the
positions), gradients against the oracle and float64 gradcheck, zero gradient on prompt
positions, 1-D and float32 inputs, every Raises clause.
verifiable_reward: edge cases by hand (the exact values 1.0 / 0.1 / 0.0; the known mistake
of rewarding a correct answer in the wrong format named), golden data, the Raises clause.
rejection_sample: scripted samplers (order, duplicates, the stop rule, the call count),
the Raises clause before any call.
addition_trace: hand cases, a divmod oracle and the sum read back from the trace on
hypothesis pairs, golden data, the Raises clause.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import reasoning_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples

# ---------------------------------------------------------------- the template and its masks


@pytest.mark.points(1)
def test_format_thinking_by_hand_and_raises(impl):
    cases = [(("2+2=", "", "4"), "2+2=<think></think>\\boxed{4}"),
             (("Q: 12+30? ", "2+0+0=2,1+3+0=4", "42"), "Q: 12+30? <think>2+0+0=2,1+3+0=4</think>\\boxed{42}"),
             (("", " a b ", " 7 "), "<think> a b </think>\\boxed{ 7 }")]
    for args, expected in cases:
        check.equal(impl.format_thinking(*args), expected, unit="format_thinking", case=check.describe(args=args),
                    mistakes={"answer not boxed": expected.replace("\\boxed{", "")[:-1]})
    for args, why in ((("a<think>", "", "1"), "prompt holds <think>"), (("a", "x</think>", "1"), "thinking holds </think>"),
                      (("a", "", "<think>1"), "answer holds <think>")):
        check.expect_raises(ValueError, impl.format_thinking, *args, unit="format_thinking",
                            case=check.describe(args=args), why=why)


def _mask_oracle(text):
    a = text.index("<think>") + len("<think>")
    b = text.index("</think>") + len("</think>")
    thinking = torch.tensor([a <= i < b for i in range(len(text))], dtype=torch.bool)
    answer = torch.tensor([i >= b for i in range(len(text))], dtype=torch.bool)
    return thinking, answer


@pytest.mark.points(2)
@examples(15)
@given(prompt=st.text("12+= ab", max_size=6), thinking=st.text("3+4=7, ", max_size=10),
       answer=st.text("0123 ", max_size=4))
def test_think_masks_match_oracle(impl, prompt, thinking, answer):
    text = prompt + "<think>" + thinking + "</think>" + "\\boxed{" + answer + "}"
    got = impl.think_masks(text)
    case = check.describe(text=text)
    check.that(isinstance(got, tuple) and len(got) == 2, "think_masks", "should return (thinking, answer)", case=case)
    want_t, want_a = _mask_oracle(text)
    p = len(prompt) + len("<think>")
    check.equal(got[0], want_t, unit="think_masks", case=case,
                what="the thinking mask (from after <think> through the end of </think>)",
                mistakes={"</think> left out of the thinking mask": want_t & (torch.arange(len(text)) < p + len(thinking)),
                          "<think> included in the thinking mask": want_t | ((torch.arange(len(text)) >= p - 7)
                                                                           & (torch.arange(len(text)) < p))})
    check.equal(got[1], want_a, unit="think_masks", case=case, what="the answer mask (every character after </think>)")
    check.that(not bool((got[0] & got[1]).any()), "think_masks", "the two masks overlap", case=case)


@pytest.mark.points(1)
def test_think_masks_raises(impl):
    for text, why in (("no tags", "no tags"), ("a<think>b", "no </think>"), ("a</think>b<think>c", "</think> before <think>"),
                      ("<think>a</think>b</think>", "two </think>"), ("<think><think>a</think>", "two <think>"),
                      ("x</think><think>y</think>", "a stray </think> first")):
        check.expect_raises(ValueError, impl.think_masks, text, unit="think_masks", case=check.describe(text=text),
                            why=why)


# ---------------------------------------------------------------- the loss


def _loss_inputs(shape, V, seed, dtype=torch.float64):
    logits = tensors.randn(shape + (V,), seed, dtype, scale=2.0)
    targets = tensors.randint(shape, seed + 1, V)
    kind = tensors.randint(shape, seed + 2, 3)                # 0 prompt, 1 thinking, 2 answer
    kind.view(-1)[-1] = 2                                     # at least one answer position
    return logits, targets, kind == 1, kind == 2


@pytest.mark.points(2)
def test_thinking_loss_values_and_reference(impl):
    ref = reference.load(O.TOPIC, "loss")
    logits, targets, thinking, answer = ref["logits"], ref["targets"], ref["thinking"], ref["answer"]
    case = check.describe(logits=logits, thinking=thinking, answer=answer)
    for i, w in enumerate(ref["weights"].tolist()):
        out = impl.thinking_loss(logits, targets, thinking, answer, w)
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 5), targets.reshape(-1), reduction="none")
        check.close(out, ref[f"loss_{i}"], unit="thinking_loss", case=case + f"; thinking_weight={w}", kind="loss",
                    what="the loss on the reference batch", mistakes={
                        "prompt tokens counted in the loss": O.plain_ce(logits, targets),
                        "weights ignored (every masked token counts 1)": ce[(thinking | answer).reshape(-1)].mean(),
                        "divided by the number of positions instead of Σ w": (
                            (thinking.double() * w + answer.double()).reshape(-1) * ce).mean(),
                        "thinking and answer weights swapped": O.weighted_ce(logits, targets, answer, thinking, w)
                        if w > 0 else torch.tensor(float("nan"))})
        check.close(out, O.weighted_ce(logits, targets, thinking, answer, w), unit="thinking_loss", kind="loss",
                    case=case + f"; thinking_weight={w}", what="the loss (oracle: log-softmax written out)")
        x = logits.clone().requires_grad_(True)
        impl.thinking_loss(x, targets, thinking, answer, w).backward()
        check.close(x.grad, ref[f"grad_{i}"], unit="thinking_loss", kind="gradient",
                    case=case + f"; thinking_weight={w}", what="the gradient w.r.t. the logits on the reference batch")
    # by hand: two positions, uniform logits over V = 4: CE = log 4 everywhere, so the loss is log 4
    flat = torch.zeros(2, 4, dtype=torch.float64)
    out = impl.thinking_loss(flat, torch.tensor([1, 3]), torch.tensor([True, False]), torch.tensor([False, True]), 0.3)
    check.close(out, torch.tensor(4.0, dtype=torch.float64).log(), unit="thinking_loss", kind="loss",
                case="logits all zero (V = 4), one thinking and one answer position", what="the loss (by hand: log 4)")
    # one thinking position of weight 0.3 and nothing else: Σ w = 0.3 is positive, the loss is log 4
    out = impl.thinking_loss(flat, torch.tensor([1, 3]), torch.tensor([True, False]), torch.tensor([False, False]), 0.3)
    check.close(out, torch.tensor(4.0, dtype=torch.float64).log(), unit="thinking_loss", kind="loss",
                case="logits all zero (V = 4), one thinking position, thinking_weight 0.3 (Σ w = 0.3 < 1)",
                what="the loss (by hand: log 4)")


@pytest.mark.points(2)
@examples(4)
@given(seed=st.integers(0, 2 ** 16), shape=st.sampled_from([(6,), (2, 5), (3, 2, 4)]),
       weight=st.sampled_from([0.0, 0.25, 1.0, 2.0]), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_thinking_loss_gradients_and_forms(impl, seed, shape, weight, dtype):
    logits, targets, thinking, answer = _loss_inputs(shape, 5, seed, dtype)
    case = check.describe(logits=logits, thinking_weight=weight)
    out = impl.thinking_loss(logits, targets, thinking, answer, weight)
    check.close(out, O.weighted_ce(logits, targets, thinking, answer, weight), unit="thinking_loss", kind="loss",
                case=case, what="the loss (in the logits' dtype)")
    f = lambda x: impl.thinking_loss(x, targets, thinking, answer, weight)
    check.grads(f, lambda x: O.weighted_ce(x, targets, thinking, answer, weight), [logits.double()],
                names=["logits"], unit="thinking_loss", case=case)
    x = logits.double().requires_grad_(True)
    f(x).backward()
    prompt = ~(thinking | answer) | ((weight == 0) & thinking)
    check.that(bool((x.grad[prompt] == 0).all()), "thinking_loss",
               "positions with weight 0 (the prompt, or thinking at thinking_weight 0) must get zero gradient", case=case)
    if shape == (2, 5):
        check.gradcheck(f, [logits.double()], unit="thinking_loss", case=case)


@pytest.mark.points(1)
def test_thinking_loss_raises(impl):
    logits, targets, thinking, answer = _loss_inputs((2, 4), 5, 7)
    none = torch.zeros_like(thinking)
    cases = [((logits, targets[:, :3], thinking, answer, 1.0), "targets of the wrong shape"),
             ((logits, targets, thinking[:1], answer, 1.0), "thinking_mask of the wrong shape"),
             ((logits, targets, torch.zeros(2, 3, dtype=torch.bool), answer, 1.0),
              "thinking_mask of the wrong shape (all False)"),
             ((logits, targets, thinking, answer[:, :2], 1.0), "answer_mask of the wrong shape"),
             ((logits, targets, thinking, thinking, 1.0), "the masks overlap"),
             ((logits, targets, thinking, answer, -0.5), "thinking_weight < 0"),
             ((logits, targets, none, none, 1.0), "no position has weight > 0"),
             ((logits, targets, thinking | ~answer, none, 0.0), "only thinking positions at thinking_weight 0")]
    for args, why in cases:
        check.expect_raises(ValueError, impl.thinking_loss, *args, unit="thinking_loss", why=why,
                            case=check.describe(logits=args[0], targets=args[1]))


# ---------------------------------------------------------------- the reward

REWARD_CASES = [
    ("<think>7+5+0=12</think>\\boxed{12}", 12, 1.0, "well formatted and correct"),
    ("  <think>x</think> so \\boxed{ 1,200 }", "1200", 1.0, "leading whitespace, a separator in the box"),
    ("<think>x</think>\\boxed{12.0}", "+12", 1.0, "the truth and the answer are compared as canonical numbers"),
    ("<think>7+5+0=12</think>\\boxed{13}", 12, 0.1, "well formatted, wrong answer"),
    ("<think>\\boxed{12}</think>\\boxed{13}", 12, 0.1, "the box inside the thinking does not count"),
    ("<think>12</think>\\boxed{1} \\boxed{12}", "12", 1.0, "the last box of the answer part"),
    ("<think>12</think>\\boxed{12} \\boxed{1}", "12", 0.1, "the last box decides, even when an earlier one is right"),
    ("<think>x</think>\\boxed{\\frac{1}{2}}", 12, 0.1, "a box that is not a number: well formatted, wrong"),
    ("7+5+0=12</think>\\boxed{12}", 12, 0.0, "no <think>: a correct answer in the wrong format"),
    ("<think>7+5+0=12\\boxed{12}", 12, 0.0, "no </think>"),
    ("<think>x</think>Answer: 12", 12, 0.0, "an Answer: line instead of a box"),
    ("<think>x</think>12", 12, 0.0, "a bare number"),
    ("<think>x</think>\\boxed{12", 12, 0.0, "an unclosed box"),
    ("<think>\\boxed{12}</think>12", 12, 0.0, "a box only inside the thinking"),
    ("<think>x</think>\\boxed{ }", 12, 0.0, "an empty box"),
    ("<think>a</think>b</think>\\boxed{12}", 12, 0.0, "two </think>"),
    ("<think>a<think>b</think>\\boxed{12}", 12, 0.0, "two <think>"),
    ("x<think>a</think>\\boxed{12}", 12, 0.0, "text before <think>"),
    ("\\boxed{12}<think>a</think>", 12, 0.0, "the box before the thinking"),
    ("", 0, 0.0, "an empty completion"),
]


@pytest.mark.points(3)
def test_verifiable_reward_edge_cases(impl):
    for completion, truth, expected, why in REWARD_CASES:
        got = impl.verifiable_reward(completion, truth)
        case = check.describe(completion=completion, truth=truth)
        check.that(isinstance(got, float), "verifiable_reward", f"should return a Python float, got {type(got).__name__}",
                   case=case)
        answer = O.extract_oracle(completion)
        check.equal(got, expected, unit="verifiable_reward", case=case, what=f"the reward ({why})",
                    mistakes={"a reward for correct answers in the wrong format":
                              1.0 if expected == 0.0 and answer == O.normalize_oracle(str(truth)) else "<none>",
                              "numbers inside the thinking counted": 1.0 if expected == 0.1 else "<none>",
                              "no format reward for a wrong answer": 0.0 if expected == 0.1 else "<none>"})


@pytest.mark.points(1)
def test_verifiable_reward_reference_and_raises(impl):
    ref = reference.load(O.TOPIC, "reward")
    got = [impl.verifiable_reward(c, t) for c, t in zip(ref["completions"], ref["truths"])]
    check.equal(got, ref["rewards"], unit="verifiable_reward", what="the rewards of the reference completions",
                case=check.describe(first=ref["completions"][0]))
    for truth, why in (("twelve", "truth is not a number"), ("1,2", "truth is not a number"), ("", "empty truth")):
        check.expect_raises(ValueError, impl.verifiable_reward, "<think>x</think>\\boxed{12}", truth,
                            unit="verifiable_reward", case=check.describe(truth=truth), why=why)


# ---------------------------------------------------------------- rejection sampling


class Scripted:
    """A sampler that returns the given completions in turn and records its calls."""

    def __init__(self, completions):
        self.completions, self.prompts = list(completions), []

    def __call__(self, prompt):
        self.prompts.append(prompt)
        return self.completions[(len(self.prompts) - 1) % len(self.completions)]


RIGHT, WRONG, BROKEN = "<think>a</think>\\boxed{5}", "<think>a</think>\\boxed{6}", "<think>a\\boxed{5}"


def _simulate(script, n_keep, max_tries, keep):
    """(kept, tries) of the loop when `keep` decides which completions are kept."""
    kept, tries = [], 0
    while tries < max_tries and len(kept) < n_keep:
        completion = script[tries % len(script)]
        tries += 1
        if keep(completion):
            kept.append(completion)
    return kept, tries


@pytest.mark.points(2)
def test_rejection_sample_scripted(impl):
    cases = [([WRONG, RIGHT, BROKEN, RIGHT, RIGHT], 2, 10, [RIGHT, RIGHT], 4, "stops once n_keep are kept"),
             ([WRONG, BROKEN], 3, 7, [], 7, "nothing correct: max_tries calls"),
             ([RIGHT], 3, 10, [RIGHT] * 3, 3, "duplicates are kept"),
             ([BROKEN, RIGHT, WRONG], 5, 4, [RIGHT], 4, "max_tries reached before n_keep"),
             ([RIGHT, "  <think>b</think>\\boxed{5.00}"], 2, 2, [RIGHT, "  <think>b</think>\\boxed{5.00}"], 2,
              "the order drawn"),
             ([WRONG, RIGHT], 1, 1, [], 1, "max_tries = 1: one call"),
             ([RIGHT, WRONG], 1, 1, [RIGHT], 1, "n_keep = max_tries = 1")]
    for script, n_keep, max_tries, kept, tries, why in cases:
        sampler = Scripted(script)
        case = check.describe(script=script, n_keep=n_keep, max_tries=max_tries)
        got = impl.rejection_sample(sampler, "2+3=", 5, n_keep, max_tries)
        check.equal(got, (kept, tries), unit="rejection_sample", case=case, what=f"(kept, tries) ({why})",
                    mistakes={"well-formatted wrong answers kept (reward > 0 instead of = 1.0)":
                              _simulate(script, n_keep, max_tries, lambda c: c != BROKEN),
                              "no stop once n_keep are kept":
                              _simulate(script, max_tries + 1, max_tries, lambda c: c not in (WRONG, BROKEN))})
        check.that(sampler.prompts == ["2+3="] * len(sampler.prompts), "rejection_sample",
                   "sample must be called with the prompt", case=case)
        check.equal(len(sampler.prompts), tries, unit="rejection_sample", case=case,
                    what="the number of calls of sample (tries counts them)")


@pytest.mark.points(1)
def test_rejection_sample_raises(impl):
    for n_keep, max_tries, why in ((0, 5, "n_keep < 1"), (2, 0, "max_tries < 1"), (-1, -1, "both < 1")):
        sampler = Scripted([RIGHT])
        check.expect_raises(ValueError, impl.rejection_sample, sampler, "p", 5, n_keep, max_tries,
                            unit="rejection_sample", case=check.describe(n_keep=n_keep, max_tries=max_tries), why=why)
        check.equal(len(sampler.prompts), 0, unit="rejection_sample", case=check.describe(n_keep=n_keep),
                    what="calls of sample before raising (the check comes before any call)")


# ---------------------------------------------------------------- the addition task


@pytest.mark.points(1)
def test_addition_trace_by_hand_and_raises(impl):
    cases = [((47, 85), "7+5+0=12,4+8+1=13"), ((5, 0), "5+0+0=5"), ((0, 0), "0+0+0=0"),
             ((999, 1), "9+1+0=10,9+0+1=10,9+0+1=10"), ((120, 7), "0+7+0=7,2+0+0=2,1+0+0=1"),
             ((3, 4567), "3+7+0=10,0+6+1=7,0+5+0=5,0+4+0=4")]
    for (a, b), expected in cases:
        check.equal(impl.addition_trace(a, b), expected, unit="addition_trace", case=check.describe(a=a, b=b),
                    mistakes={"the columns from the most significant digit": ",".join(expected.split(",")[::-1]),
                              "the carry left out of the steps": ",".join(
                                  s[:4] + s[6:] for s in expected.split(","))})
    for a, b, why in ((-1, 5, "a < 0"), (3, -20, "b < 0")):
        check.expect_raises(ValueError, impl.addition_trace, a, b, unit="addition_trace", case=check.describe(a=a, b=b),
                            why=why)


@pytest.mark.points(2)
@examples(40)
@given(a=st.integers(0, 10 ** 6), b=st.integers(0, 10 ** 6))
def test_addition_trace_matches_oracle_and_sum(impl, a, b):
    trace = impl.addition_trace(a, b)
    case = check.describe(a=a, b=b)
    check.equal(trace, O.trace_oracle(a, b), unit="addition_trace", case=case,
                what="the trace (oracle: digits by divmod)")
    steps = trace.split(",")
    digits = [s.split("=")[1] for s in steps]
    read_back = digits[-1] + "".join(d[-1] for d in digits[-2::-1])
    check.equal(int(read_back), a + b, unit="addition_trace", case=case,
                what="the sum read back from the trace (last step in full, then each earlier step's last digit)")


@pytest.mark.points(1)
def test_addition_trace_reference(impl):
    ref = reference.load(O.TOPIC, "traces")
    check.equal([impl.addition_trace(a, b) for a, b in ref["pairs"]], ref["traces"], unit="addition_trace",
                what="the traces of the reference pairs", case=check.describe(pairs=ref["pairs"][:4]))
