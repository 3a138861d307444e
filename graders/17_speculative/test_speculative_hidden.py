"""Instructor-only graders for 17_speculative (left out of student bundles).

  - greedy speculative decoding with the course's trained target and draft (llmlab.lib.llama)
    equals the target's own greedy text;
  - the distribution of the number of target calls of whole generations with context-free
    models equals the exact distribution for i.i.d. acceptance (dynamic programming);
  - the joint distribution of generated text at another temperature and other k (slow);
  - speculative_accept on fresh random rows (k = 3, V = 6): first token and accepted count (slow);
  - sampled speculative decoding with the trained pair: the first generated character
    follows the target's softmax (slow).
"""

from __future__ import annotations

import pytest
import torch

import speculative_oracle as O
from llmlab.lib.corpus import course_corpus
from llmlab.lib.llama import load_tiny_llama
from llmlab.testing import check, stats, tensors


def _trained_pair():
    target, codec, _ = load_tiny_llama()
    draft, _, _ = load_tiny_llama("draft_llama")
    return target, draft, codec


@pytest.mark.hidden
@pytest.mark.points(2)
def test_generate_trained_pair_greedy_hidden(impl):
    target, draft, codec = _trained_pair()
    text = course_corpus()
    for start, k, max_new in ((100, 2, 30), (5000, 4, 40)):
        prompt = codec.encode(text[start:start + 16])
        out, calls = impl.speculative_generate(target, draft, prompt, k, max_new, temperature=0.0)
        case = check.describe(prompt=repr(text[start:start + 16]), k=k, max_new=max_new, models="trained pair")
        check.close(out, O.greedy_continuation(target, prompt, max_new), unit="speculative_generate", kind="exact",
                    case=case, what="greedy speculative text of the trained target and draft")
        check.that(1 <= calls <= max_new, "speculative_generate", f"target_calls {calls} outside [1, {max_new}]",
                   case=case)


@pytest.mark.hidden
@pytest.mark.slow
@pytest.mark.points(2)
def test_generate_calls_distribution_hidden(impl):
    # Unigram models: every draft token is accepted independently with probability α = Σ min(p, q)
    # = 0.62…; the number of target calls of a 6-token generation with k = 2 then has an exact
    # distribution. 600 runs, categories expected fewer than 5 times pooled, chi-square at rate 1e-6
    # (false failure ≤ 1e-6).
    t_logits = torch.tensor([0.5, 0.0, -0.5], dtype=torch.float64)
    d_logits = torch.tensor([-0.5, 0.3, 0.4], dtype=torch.float64)
    alpha = float(torch.minimum(torch.softmax(t_logits, 0), torch.softmax(d_logits, 0)).sum())
    gen = tensors.generator(60)
    calls = []
    for _ in range(600):
        calls.append(impl.speculative_generate(O.TableLM(t_logits), O.TableLM(d_logits), torch.tensor([0]), 2, 6,
                                               1.0, gen)[1])
    counts = torch.bincount(torch.tensor(calls), minlength=7).tolist()
    stats.chi_square(counts, O.target_calls_distribution(alpha, 2, 6), pool=True, unit="speculative_generate",
                     rate=1e-6,
                     what="the number of target calls of a 6-token generation (k = 2)",
                     case=check.describe(alpha=round(alpha, 4), k=2, max_new=6, runs=600))


@pytest.mark.hidden
@pytest.mark.slow
@pytest.mark.points(2)
def test_generate_joint_distribution_more_hidden(impl):
    # Two more chi-square tests at rate 5e-7 each (false failure ≤ 1e-6; rare sequences pooled):
    # temperature 0.6 with k = 1, and temperature 1.3 with k = 3 (rounds longer than the text:
    # the cut at max_new).
    for k, temperature, seed in ((1, 0.6, 61), (3, 1.3, 62)):
        counts = O.joint_counts(impl, k, 3, temperature, 1000, seed)
        stats.chi_square(counts, O.chain_distribution(O.TARGET3, 0, 3, temperature).tolist(), pool=True,
                         unit="speculative_generate", rate=5e-7,
                         case=check.describe(k=k, max_new=3, temperature=temperature, runs=1000),
                         what=f"the joint distribution of 3 generated tokens at temperature {temperature}")


@pytest.mark.hidden
@pytest.mark.slow
@pytest.mark.points(2)
def test_accept_fresh_rows_hidden(impl):
    # Random rows, k = 3, V = 6: the first token follows p_0 and n follows the acceptance rates.
    # Two chi-square tests at rate 5e-7 (false failure ≤ 1e-6).
    p = torch.softmax(tensors.randn((4, 6), 63, scale=1.2), -1)
    q = torch.softmax(tensors.randn((3, 6), 64, scale=1.2), -1)
    drafts = torch.multinomial(q, 3000, replacement=True, generator=tensors.generator(65)).t()
    gen = tensors.generator(66)
    rounds = [impl.speculative_accept(q, p, x.contiguous(), gen) for x in drafts]
    case = check.describe(draft_probs=q, target_probs=p, rounds=3000)
    first = torch.bincount(torch.stack([t[0] for t, _ in rounds]), minlength=6).tolist()
    stats.chi_square(first, p[0].tolist(), unit="speculative_accept", rate=5e-7, case=case,
                     what="the first emitted token (must follow p_0)")
    ns = torch.bincount(torch.tensor([n for _, n in rounds]), minlength=4).tolist()
    stats.chi_square(ns, O.accepted_count_probs(p, q), unit="speculative_accept", rate=5e-7, case=case,
                     what="the number of accepted drafts")


@pytest.mark.hidden
@pytest.mark.slow
@pytest.mark.points(2)
def test_generate_trained_pair_first_token_hidden(impl):
    # 500 one-token generations (k = 1) with the trained pair: the character follows the target's
    # softmax after the prompt. Characters expected fewer than 5 times are pooled into one
    # category; chi-square at rate 1e-6 (false failure ≤ 1e-6).
    target, draft, codec = _trained_pair()
    text = course_corpus()[300:310]
    prompt = codec.encode(text)
    with torch.no_grad():
        p = torch.softmax(target(prompt[None])[0][0, -1].double(), -1)
    gen = tensors.generator(67)
    firsts = [int(impl.speculative_generate(target, draft, prompt, 1, 1, 1.0, gen)[0][-1]) for _ in range(500)]
    counts = torch.bincount(torch.tensor(firsts), minlength=p.shape[0]).tolist()
    stats.chi_square(counts, p.tolist(), pool=True, unit="speculative_generate", rate=1e-6,
                     case=check.describe(prompt=repr(text), k=1, max_new=1, runs=500, models="trained pair"),
                     what="the first generated character (must follow the target's softmax)")
