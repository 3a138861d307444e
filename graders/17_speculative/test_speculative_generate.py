"""Graders for 17_speculative: the draft's proposals and the whole speculative loop.

draft_propose: greedy chains of a bigram model (last position, one call per token, context
untouched, ties), sampled tokens and distributions against a loop oracle with the same draws.
speculative_generate: greedy output equals the target's own greedy continuation exactly
(random TinyLlamas, golden data); the target-call counting rule on cases where it is exact
(draft = target, a draft that is always wrong or always rejected), with the lengths of every
call; the central property — the generated text follows the TARGET's joint distribution —
by chi-square on all V^n sequences of a bigram target; golden seeded runs; the contract
(no_grad, eval mode restored, prompt untouched, shapes, max_new = 0, T0 = 1); Raises.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import speculative_oracle as O
from llmlab.testing import check, reference, stats, tensors

BIGRAM = torch.tensor([[0.0, 2.0, 1.0, -1.0],
                       [1.5, -0.5, 0.0, 3.0],
                       [2.5, 2.5, 0.0, 1.0],          # a tie between ids 0 and 1
                       [-1.0, 0.0, 4.0, 0.5]], dtype=torch.float64)


def _chain(table, last, n):
    out = []
    for _ in range(n):
        row = table[last].tolist()
        last = row.index(max(row))                                       # lowest id on ties
        out.append(last)
    return out


# ---------------------------------------------------------------- draft_propose

@pytest.mark.points(2)
def test_draft_propose_greedy_calls_and_context(impl):
    for context, k in (([0, 3, 1], 4), ([2], 1), ([1, 1, 0, 2, 3], 3)):
        model = O.TableLM(BIGRAM)
        ctx = torch.tensor(context)
        tokens, probs = impl.draft_propose(model, ctx, k, temperature=0.0)
        case = check.describe(context=ctx, k=k, temperature=0.0)
        expected = _chain(BIGRAM, context[-1], k)
        check.equal(tokens.tolist() if isinstance(tokens, torch.Tensor) else tokens, expected, unit="draft_propose",
                    case=case, what="greedy proposals (argmax of the last position, ties to the lowest id)",
                    mistakes={"logits of the first position used instead of the last": _chain(BIGRAM, context[0], 1) * k})
        check.that(tokens.dtype == torch.int64 and tokens.shape == (k,), "draft_propose",
                   f"tokens should be int64 of shape (k,) = ({k},), got {tokens.dtype} {tuple(tokens.shape)}", case=case)
        check.close(probs, F.one_hot(torch.tensor(expected), 4).double(), unit="draft_propose", kind="exact",
                    case=case, what="probs at temperature 0 (one-hot rows of the proposed tokens)")
        check.equal([c[0] for c in model.calls], [len(context) + i for i in range(k)], unit="draft_propose",
                    case=case, what="lengths of the draft calls (one call per proposed token, each on the context "
                                    "plus the tokens proposed so far)")
        check.equal(ctx.tolist(), context, unit="draft_propose", case=case, what="the context after the call")


@pytest.mark.points(2)
def test_draft_propose_samples_with_documented_draws(impl):
    for seed, temperature, context, k, dtype in ((3, 1.0, [0, 2], 5, torch.float64), (4, 0.5, [3], 3, torch.float32),
                                                 (5, 2.0, [1, 0, 1], 1, torch.float64)):
        table = BIGRAM.to(dtype)
        tokens, probs = impl.draft_propose(O.TableLM(table), torch.tensor(context), k, temperature,
                                           tensors.generator(seed))
        gen, last, exp_tokens, exp_probs = tensors.generator(seed), context[-1], [], []
        for _ in range(k):
            q = torch.softmax(table[last] / temperature, dim=-1)
            last = int(torch.multinomial(q, 1, generator=gen))
            exp_tokens.append(last)
            exp_probs.append(q)
        case = check.describe(context=context, k=k, temperature=temperature, dtype=dtype, seed=seed)
        expected = torch.stack(exp_probs)
        prev = torch.tensor([context[-1]] + exp_tokens[:-1])
        check.close(probs, expected, unit="draft_propose", case=case, kind="reduction",
                    what="probs: row i is softmax(logits / temperature) at the last position of step i",
                    mistakes={"temperature ignored": torch.softmax(table[prev], -1),
                              "temperature multiplied instead of divided": torch.softmax(table[prev] * temperature, -1)})
        check.equal(tokens.tolist(), exp_tokens, unit="draft_propose", case=case,
                    what="tokens drawn with torch.multinomial(q_i, 1, generator=generator), one per step")


# ---------------------------------------------------------------- speculative_generate: greedy

@pytest.mark.points(3)
def test_generate_greedy_equals_target_greedy(impl):
    for t_seed, d_seed, prompt, k, max_new in ((1, 2, [1, 2, 3], 3, 12), (3, 4, [7], 1, 9), (5, 6, [0, 8, 2, 2], 4, 11),
                                               (7, 7, [4, 4], 2, 10)):
        target, draft = O.Counting(O.tiny_llama(t_seed)), O.tiny_llama(d_seed)
        p = torch.tensor(prompt)
        out, calls = impl.speculative_generate(target, draft, p, k, max_new, temperature=0.0)
        expected = O.greedy_continuation(target.model, p, max_new)
        case = check.describe(prompt=p, k=k, max_new=max_new, draft_equals_target=t_seed == d_seed)
        check.close(out, expected, unit="speculative_generate", kind="exact", case=case,
                    what="greedy speculative output (must equal the target's own greedy continuation)")
        check.equal(calls, len(target.lengths), unit="speculative_generate", case=case,
                    what="target_calls returned vs the calls the target actually received")
    ref = reference.load(O.TOPIC, "greedy_generate")
    out, calls = impl.speculative_generate(O.tiny_llama(171), O.tiny_llama(172), ref["prompt"], 3, 14, temperature=0.0)
    case = check.describe(prompt=ref["prompt"], k=3, max_new=14, target="tiny_llama(171)", draft="tiny_llama(172)")
    check.close(out, ref["tokens"], unit="speculative_generate", kind="exact", case=case,
                what="greedy output of the reference pair")
    check.equal(calls, int(ref["target_calls"][0]), unit="speculative_generate", case=case,
                what="target calls of the reference pair")


def _round_lengths(T0: int, k: int, max_new: int, emitted_per_round) -> list[int]:
    """The length of each target call when round r emits emitted_per_round(m, remaining) tokens."""
    lengths, L, done = [], T0, 0
    while done < max_new:
        m = min(k, max_new - done)
        lengths.append(L + m)
        e = emitted_per_round(m, max_new - done)
        L, done = L + e, done + e
    return lengths


@pytest.mark.points(2)
def test_generate_target_calls_counting_rule(impl):
    # draft = target: every draft is accepted (greedy: the same argmax; sampling: p/q = 1), so
    # each round emits min(k + 1, remaining) tokens and calls = ceil(max_new / (k + 1)).
    for k, max_new, temperature in ((1, 5, 0.0), (3, 8, 0.0), (4, 3, 1.0), (2, 9, 1.0), (3, 4, 0.7)):
        target, draft = O.Counting(O.TableLM(BIGRAM)), O.Counting(O.TableLM(BIGRAM))
        out, calls = impl.speculative_generate(target, draft, torch.tensor([0, 1]), k, max_new, temperature,
                                               tensors.generator(k))
        case = check.describe(k=k, max_new=max_new, temperature=temperature, draft="the target itself")
        check.that(type(calls) is int, "speculative_generate", f"target_calls should be a Python int, got "
                   f"{type(calls).__name__}", case=case)
        check.equal(calls, math.ceil(max_new / (k + 1)), unit="speculative_generate", case=case,
                    what="target calls when every draft is accepted: ceil(max_new / (k + 1))",
                    mistakes={"one target call per generated token": max_new,
                              "the bonus token not emitted (k tokens per round)": math.ceil(max_new / k),
                              "draft calls counted as target calls": len(draft.lengths)})
        check.equal(target.lengths, _round_lengths(2, k, max_new, lambda m, r: min(m + 1, r)),
                    unit="speculative_generate", case=case,
                    what="lengths of the target calls (text so far plus min(k, remaining) drafts)")
        check.equal(len(out), 2 + max_new, unit="speculative_generate", case=case, what="output length")
    # a draft that is always wrong: greedy with a different argmax everywhere, or sampling where the
    # target gives the drafted tokens probability 0. Every round emits exactly one token.
    wrong = torch.roll(BIGRAM, 1, dims=1)                                     # argmax never the target's
    never = torch.tensor([0.0, -1e9, 0.0, -1e9], dtype=torch.float64)          # the target never says 1 or 3
    only_bad = torch.tensor([-1e9, 0.0, -1e9, 0.0], dtype=torch.float64)       # the draft only says 1 or 3
    for t_table, d_table, temperature in ((BIGRAM, wrong, 0.0), (never, only_bad, 1.0)):
        target = O.Counting(O.TableLM(t_table))
        out, calls = impl.speculative_generate(target, O.TableLM(d_table), torch.tensor([2]), 3, 7, temperature,
                                               tensors.generator(9))
        case = check.describe(k=3, max_new=7, temperature=temperature, draft="always rejected")
        check.equal(calls, 7, unit="speculative_generate", case=case,
                    what="target calls when every first draft is rejected (one token per call)")
        check.equal(target.lengths, _round_lengths(1, 3, 7, lambda m, r: 1), unit="speculative_generate", case=case,
                    what="lengths of the target calls when every round emits one token")
        if temperature > 0:
            check.that(all(t in (0, 2) for t in out[1:].tolist()), "speculative_generate",
                       f"generated a token the target gives probability 0: {out.tolist()}", case=case)


# ---------------------------------------------------------------- speculative_generate: the distribution

@pytest.mark.points(4)
def test_generate_joint_distribution_equals_target(impl):
    # THE central check: 900 speculative generations of 3 tokens (k = 2, so rounds use the
    # residual and the bonus token) against the exact joint distribution of the bigram target
    # over all 27 sequences (rare ones pooled). Chi-square at rate 1e-6: a correct implementation fails with
    # probability ≤ 1e-6.
    counts = O.joint_counts(impl, 2, 3, 1.0, 900, 23)
    case = check.describe(target_logits=O.TARGET3, draft_logits=O.DRAFT3, prompt=[0], k=2, max_new=3, runs=900)
    # categories expected fewer than 5 times are pooled into one
    stats.chi_square(counts, O.chain_distribution(O.TARGET3, 0, 3).tolist(), pool=True,
                     unit="speculative_generate", rate=1e-6, case=case,
                     what="the joint distribution of the 3 generated tokens",
                     mistakes={"the text follows the draft's distribution, not the target's":
                               O.chain_distribution(O.DRAFT3, 0, 3)})


@pytest.mark.points(2)
def test_generate_reference_runs_and_generator(impl):
    ref = reference.load(O.TOPIC, "sampled_generate")
    temperature = float(ref["temperature"][0])
    for k in (1, 2, 4):
        torch.manual_seed(k)                                              # the global RNG must not matter
        out, calls = impl.speculative_generate(O.TableLM(ref["target_table"]), O.TableLM(ref["draft_table"]),
                                               ref["prompt"], k, 9, temperature, tensors.generator(100 + k))
        case = check.describe(prompt=ref["prompt"], k=k, max_new=9, temperature=temperature, seed=100 + k)
        check.close(out, ref[f"tokens_k{k}"], unit="speculative_generate", kind="exact", case=case,
                    what="tokens of a seeded run (draws in the documented order: the draft's proposals, then "
                         "speculative_accept's uniforms and its one final draw, round after round)")
        check.equal(calls, int(ref[f"calls_k{k}"][0]), unit="speculative_generate", case=case,
                    what="target calls of the seeded run")
    a = impl.speculative_generate(O.TableLM(O.TARGET3), O.TableLM(O.DRAFT3), torch.tensor([1]), 2, 30, 1.0,
                                  tensors.generator(8))[0]
    b = impl.speculative_generate(O.TableLM(O.TARGET3), O.TableLM(O.DRAFT3), torch.tensor([1]), 2, 30, 1.0,
                                  tensors.generator(9))[0]
    check.that(not torch.equal(a, b), "speculative_generate",
               "generators with different seeds gave the same 30 tokens: draw with `generator`")


@pytest.mark.points(2)
def test_generate_contract(impl):
    for training in (True, False):
        target, draft = O.TableLM(BIGRAM), O.TableLM(BIGRAM.flip(0))
        target.train(training)
        draft.train(not training)
        prompt = torch.arange(10)[::3] % 4                                  # non-contiguous (4,)
        saved = prompt.clone()
        out, calls = impl.speculative_generate(target, draft, prompt, 3, 6, 1.0, tensors.generator(1))
        case = check.describe(prompt=prompt, contiguous=prompt.is_contiguous(), target_training=training)
        check.equal(prompt.tolist(), saved.tolist(), unit="speculative_generate", case=case,
                    what="the prompt after the call (it must not be modified)")
        check.that(isinstance(out, torch.Tensor) and out.dtype == torch.int64 and tuple(out.shape) == (10,),
                   "speculative_generate", "tokens should be int64 of shape (T0 + max_new,) = (10,)",
                   f"got {getattr(out, 'dtype', type(out))} {tuple(getattr(out, 'shape', ()))}", case=case)
        check.equal(out[:4].tolist(), saved.tolist(), unit="speculative_generate", case=case,
                    what="the prompt part of the output")
        for name, model in (("target", target), ("draft", draft)):
            check.that(all(not grad for _, grad, _ in model.calls), "speculative_generate",
                       f"the {name} ran with autograd enabled; wrap the loop in torch.no_grad()", case=case)
            check.that(all(not tr for _, _, tr in model.calls), "speculative_generate",
                       f"the {name} ran in train mode; call .eval() on both models", case=case)
        check.that(target.training == training and draft.training == (not training), "speculative_generate",
                   "the models' train/eval modes were not restored on return", case=case)
    target = O.TableLM(BIGRAM)
    out, calls = impl.speculative_generate(target, O.TableLM(BIGRAM), torch.tensor([3, 2]), 2, 0)
    check.equal((out.tolist(), calls, len(target.calls)), ([3, 2], 0, 0), unit="speculative_generate",
                case=check.describe(prompt=[3, 2], max_new=0), what="(tokens, target_calls, model calls) for max_new = 0")
    out, calls = impl.speculative_generate(O.TableLM(BIGRAM), O.TableLM(BIGRAM), torch.tensor([1]), 5, 2, 0.0)
    check.equal((out.tolist(), calls), ([1] + _chain(BIGRAM, 1, 2), 1), unit="speculative_generate",
                case=check.describe(prompt=[1], k=5, max_new=2, temperature=0.0),
                what="T0 = 1 and k > max_new: one round, cut to max_new tokens")


@pytest.mark.points(1)
def test_generate_raises(impl):
    t, d = O.TableLM(BIGRAM), O.TableLM(BIGRAM)
    good = torch.tensor([0, 1])
    for prompt, k, max_new, temperature, why in ((torch.tensor([[0, 1]]), 2, 3, 1.0, "prompt must be 1-D"),
                                                 (torch.zeros(0, dtype=torch.long), 2, 3, 1.0, "T0 ≥ 1"),
                                                 (good, 0, 3, 1.0, "k < 1"), (good, 0, 0, 1.0, "k < 1 (max_new = 0)"),
                                                 (good, 2, -1, 1.0, "max_new < 0"),
                                                 (good, 2, 3, -0.5, "temperature < 0")):
        check.expect_raises(ValueError, impl.speculative_generate, t, d, prompt, k, max_new, temperature,
                            unit="speculative_generate",
                            case=check.describe(prompt=prompt, k=k, max_new=max_new, temperature=temperature), why=why)
