"""Instructor-only graders for 15_generation (left out of student bundles).

  - beam search against brute force on more models, prompts and a vocabulary of 4 with
    max_new 4 (width 256: nothing dropped);
  - batched generation on a given TinyLlama (RoPE, GQA, float64, random weights) with left
    padding, equal to one-by-one generation;
  - batched SAMPLING: the first token of every row follows that prompt's own filtered
    distribution (chi-square, stated rate), whatever the padding of the row;
  - top-p on float32 rows whose running masses sit close to (but not at) p.
"""

from __future__ import annotations

import pytest
import torch

import generation_oracle as O
from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.testing import check, stats, tensors

_f64 = O.as_float64


@pytest.mark.hidden
@pytest.mark.points(2)
def test_beam_brute_force_more_models_hidden(impl):
    for seed, prompt, eos_id, alpha in ((30, [0], 3, 1.0), (31, [2, 1, 0], 0, 0.8), (32, [3, 3], None, 0.0)):
        model = O.PrefixLM(4, seed=seed, scale=0.8)
        best, best_score, runner_up = O.brute_force_best(model, prompt, 4, 4, eos_id, alpha)
        check.that(best_score - runner_up > 1e-6, "the grader", "near-tie; change the model")
        tokens, score = impl.beam_search(model, torch.tensor(prompt), 256, 4, length_penalty=alpha, eos_id=eos_id)
        case = check.describe(prompt=prompt, width=256, max_new=4, eos_id=eos_id, length_penalty=alpha)
        check.equal(tokens.tolist(), prompt + best, unit="beam_search", case=case,
                    what="the best sequence (brute force over every continuation)")
        check.close(_f64(score), _f64(best_score), unit="beam_search", kind="reduction",
                    what="its score", case=case)


def _tiny_llama(seed: int) -> TinyLlama:
    torch.manual_seed(seed)
    model = TinyLlama(LlamaConfig(vocab_size=7, block_size=24, n_layer=2, n_head=2, n_kv_head=1, d_model=16))
    return tensors.randomize_parameters(model.double().eval(), seed, 0.6,
                                        around_one=lambda name: name.endswith("norm.weight"))


@pytest.mark.hidden
@pytest.mark.points(2)
def test_generate_batch_tiny_llama_equals_one_by_one_hidden(impl):
    model = _tiny_llama(5)
    prompts = [torch.tensor(p) for p in ([1, 2, 3], [4], [5, 6, 0, 1, 2], [3, 3])]
    out = impl.generate_batch(model, prompts, 6, pad_id=0, temperature=0.0, eos_id=6, rep_penalty=1.2)
    for b, p in enumerate(prompts):
        alone = impl.generate(model, p, 6, temperature=0.0, eos_id=6, rep_penalty=1.2)
        check.equal(out[b].tolist(), alone.tolist(), unit="generate_batch",
                    what=f"row {b} on a TinyLlama (should equal generate on that prompt alone)",
                    case=check.describe(prompts=[q.tolist() for q in prompts], pad_id=0, eos_id=6))
        check.equal(alone.tolist(), O.greedy_oracle(model, p.tolist(), 6, 6, (), 1.2), unit="generate",
                    what=f"greedy sequence of prompt {b} on a TinyLlama", case=check.describe(prompt=p))


@pytest.mark.hidden
@pytest.mark.points(2)
def test_generate_batch_sampling_follows_each_rows_distribution_hidden(impl):
    # 800 rows per prompt in one batch; one chi-square test per prompt at rate 5e-7: a
    # correct implementation fails this test with probability ≤ 1e-6.
    model = O.PrefixLM(6, seed=40, scale=0.8)
    short, long = [2], [1, 3, 5, 0]
    prompts = [torch.tensor(short), torch.tensor(long)] * 800
    out = impl.generate_batch(model, prompts, 1, pad_id=5, temperature=0.9, top_k=5,
                              generator=tensors.generator(41))
    for which, p in ((0, short), (1, long)):
        firsts = [int(o[len(p)]) for o in out[which::2]]
        counts = torch.bincount(torch.tensor(firsts), minlength=6).tolist()
        probs = O.pipeline_probs(O.logits_of(model, p), 0.9, 5)
        stats.chi_square(counts, probs.tolist(), unit="generate_batch", rate=5e-7,
                         what=f"first sampled token after prompt {p} in a left-padded batch",
                         case=check.describe(prompt=p, rows=800, temperature=0.9, top_k=5))


@pytest.mark.hidden
@pytest.mark.points(1)
def test_top_p_near_boundary_float32_hidden(impl):
    for seed in range(6):
        x = tensors.randn((4, 12), 900 + seed, torch.float32, scale=2.0)
        probs = torch.softmax(x.double(), -1)
        mass = probs.sort(-1, descending=True).values.cumsum(-1)
        p = float(mass[seed % 4, 2]) + 1e-3               # just past the third token's running mass
        keep, closest = O.top_p_keep(x, p)
        if closest < 1e-5:
            continue
        check.close(impl.top_p_filter(x, p), O.apply_keep(x, keep), unit="top_p_filter", kind="exact",
                    case=check.describe(logits=x, p=p))
