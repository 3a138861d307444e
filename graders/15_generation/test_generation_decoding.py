"""Graders for 15_generation: whole sequences — stop conditions, generate, beam search,
left padding, batched generation, the chat template.

Evidence per unit:
  should_stop     hand-made cases (eos, stop sequences, a match that would need the prompt);
  generate        `generation_oracle.PrefixLM`, which records its calls, against a slow
                  greedy loop (positions, mask, no autograd, eos, stop sequences, the
                  repetition penalty with the prompt as context), reproducible sampling;
  beam_search     width 1 against greedy decoding; an unlimited width against brute-force
                  enumeration of every possible continuation (the most likely sequence under
                  the length penalty); widths 2 and 3 against a slow list-based oracle of
                  the documented algorithm; reference data;
  left_pad        by hand and properties of random batches;
  generate_batch  equal to one-by-one generation on PrefixLM, whose ABSOLUTE position
                  embedding makes wrong position ids visible (RoPE would hide a constant
                  shift), with rows that stop at different steps and a repetition penalty;
                  the mask and positions it passes, read from the model's record;
  apply_chat_template  by hand, reference strings, a regular-expression parser (round
                  trip on random conversations), every ValueError.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import generation_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds, texts

_f64 = O.as_float64


# ---------------------------------------------------------------- should_stop

@pytest.mark.points(2)
def test_should_stop_rules(impl):
    cases = [
        (([3, 1, 0], 0, ()), True, "the last token is eos"),
        (([0, 1], 0, ()), False, "eos earlier, not last"),
        (([4, 2, 7], None, [[2, 7]]), True, "ends with a stop sequence"),
        (([4, 2, 7], None, ([9], (2, 7))), True, "ends with the second stop sequence (tuples)"),
        (([2, 7, 4], 5, [[2, 7]]), False, "the stop sequence is inside, not at the end"),
        (([7], None, [[2, 7]]), False, "a match would need a prompt token"),
        (([], 0, [[1]]), False, "nothing generated yet"),
        (([1, 2], None, ()), False, "no condition given"),
        (([5, 5, 5], 9, [[5, 5, 5, 5]]), False, "stop sequence longer than the generated tokens"),
        (([5, 5, 5], None, [[5, 5, 5]]), True, "the whole generation is the stop sequence"),
    ]
    for (generated, eos_id, stops), expected, why in cases:
        out = impl.should_stop(generated, eos_id, stops)
        check.equal(bool(out), expected, unit="should_stop", what=f"result ({why})",
                    case=check.describe(generated=generated, eos_id=eos_id, stop_sequences=stops))
    check.expect_raises(ValueError, impl.should_stop, [1, 2], None, [[1], []], unit="should_stop",
                        case=check.describe(stop_sequences=[[1], []]), why="an empty stop sequence")


# ---------------------------------------------------------------- generate

@pytest.mark.points(3)
def test_generate_greedy_matches_oracle_and_model_calls(impl):
    for seed, (prompt, max_new, eos_id, stops) in enumerate((([1, 2], 8, None, ()), ([3], 10, 0, ()),
                                                             ([4, 4, 1], 9, None, [[2, 2]]), ([2, 0], 0, None, ()))):
        model = O.PrefixLM(5, seed=seed + 3, scale=1.5)
        expected = O.greedy_oracle(model, prompt, max_new, eos_id, stops)
        model.calls.clear()                                   # record only generate's calls
        out = impl.generate(model, torch.tensor(prompt), max_new, temperature=0.0, eos_id=eos_id,
                            stop_sequences=stops)
        case = check.describe(prompt=prompt, max_new=max_new, eos_id=eos_id, stop_sequences=stops)
        check.that(isinstance(out, torch.Tensor) and out.dtype == torch.long and out.dim() == 1, "generate",
                   "should return a 1-D int64 tensor", f"got {getattr(out, 'dtype', type(out))}", case=case)
        check.equal(out.tolist(), expected, unit="generate", what="greedy sequence (prompt + generated)", case=case)
        check.equal(len(model.calls), len(expected) - len(prompt), unit="generate", case=case,
                    what="number of model calls (one per generated token)")
        for call in model.calls:
            T = call["ids"].shape[1]
            check.that(not call["grad"], "generate", "the model ran with autograd enabled; use torch.no_grad()",
                       case=case)
            check.equal(call["positions"].tolist(), [list(range(T))], unit="generate",
                        what="positions passed to the model", case=case)
            check.equal(call["mask"].tolist(), [[True] * T], unit="generate", what="attention_mask passed to the model",
                        case=case)


@pytest.mark.points(2)
def test_generate_penalty_filters_and_sampling(impl):
    model = O.PrefixLM(6, seed=11, scale=1.5)
    prompt = [2, 5, 2]
    for penalty in (1.8, 2.0):
        out = impl.generate(model, torch.tensor(prompt), 8, temperature=0.0, rep_penalty=penalty)
        expected = O.greedy_oracle(model, prompt, 8, penalty=penalty)
        case = check.describe(prompt=prompt, max_new=8, rep_penalty=penalty)
        check.equal(out.tolist(), expected, unit="generate", case=case,
                    what="greedy sequence with the repetition penalty",
                    mistakes={"the repetition penalty ignores the prompt (generated tokens only)":
                              O.greedy_oracle(model, prompt, 8, penalty=penalty, prompt_in_context=False)})
        check.that(expected != O.greedy_oracle(model, prompt, 8), "the grader", "the penalty changes nothing here")
    a = impl.generate(model, torch.tensor(prompt), 12, temperature=1.2, top_k=4, top_p=0.9,
                      generator=tensors.generator(3))
    b = impl.generate(model, torch.tensor(prompt), 12, temperature=1.2, top_k=4, top_p=0.9,
                      generator=tensors.generator(3))
    case = check.describe(prompt=prompt, temperature=1.2, top_k=4, top_p=0.9)
    check.that(torch.equal(a, b), "generate", "identically seeded generators gave different samples", case=case)
    check.equal(a[:3].tolist(), prompt, unit="generate", what="the prompt part of a sampled sequence", case=case)
    for t in range(3, 15):                    # every sampled token survives the filters of its step
        probs = O.pipeline_probs(O.logits_of(model, a[:t].tolist()), 1.2, 4, 0.9)
        check.that(float(probs[int(a[t])]) > 0, "generate", f"sampled token {int(a[t])} at position {t} was "
                   "removed by the filters of that step", case=case)
    many = {tuple(impl.generate(model, torch.tensor(prompt), 3, temperature=1.0, generator=tensors.generator(s))
                  .tolist()) for s in range(12)}
    check.that(len(many) > 1, "generate", "temperature 1 gave the same continuation for 12 different seeds", case=case)


@pytest.mark.points(1)
def test_generate_edges_and_raises(impl):
    model = O.PrefixLM(5, seed=2)
    out = impl.generate(model, torch.tensor([3]), 0, temperature=0.0)
    check.equal(out.tolist(), [3], unit="generate", what="output for max_new = 0 (the prompt)")
    strided = torch.tensor([[1, 9], [4, 9], [2, 9]]).t()[0]                 # (3,) non-contiguous: 1, 4, 2
    out = impl.generate(model, strided, 4, temperature=0.0)
    check.equal(out.tolist(), O.greedy_oracle(model, [1, 4, 2], 4), unit="generate",
                what="greedy sequence for a non-contiguous prompt", case=check.describe(prompt=strided))
    for bad, max_new, why in ((torch.tensor([[1, 2]]), 3, "prompt not 1-D"), (torch.tensor([], dtype=torch.long), 3,
                              "empty prompt"), (torch.tensor([1]), -1, "max_new < 0")):
        check.expect_raises(ValueError, impl.generate, model, bad, max_new, temperature=0.0, unit="generate",
                            case=check.describe(prompt=bad, max_new=max_new), why=why)


# ---------------------------------------------------------------- beam search

BEAM_MODELS = [(1, 0.7), (7, 0.7), (16, 1.0)]          # seeds where beam search beats greedy


@pytest.mark.points(2)
def test_beam_width_one_equals_greedy(impl):
    for seed, scale in BEAM_MODELS:
        for eos_id, alpha in ((0, 1.0), (None, 0.0)):
            model = O.PrefixLM(5, seed=seed, scale=scale)
            tokens, score = impl.beam_search(model, torch.tensor([1, 2]), 1, 5, length_penalty=alpha, eos_id=eos_id)
            expected = O.greedy_oracle(model, [1, 2], 5, eos_id)
            case = check.describe(prompt=[1, 2], width=1, max_new=5, eos_id=eos_id, length_penalty=alpha)
            check.equal(tokens.tolist(), expected, unit="beam_search", what="tokens with width 1 (greedy)", case=case)
            n = len(expected) - 2
            check.close(_f64(score), _f64(O.seq_logprob(model, [1, 2], expected[2:]) / n ** alpha),
                        unit="beam_search", kind="reduction", what="score with width 1", case=case)


@pytest.mark.points(3)
def test_beam_unlimited_width_finds_brute_force_best(impl):
    # V = 5, max_new = 3: at most 5³ = 125 candidates per step, so width 125 drops none and
    # the result must be the best of all continuations (enumerated by brute force).
    for seed, scale in BEAM_MODELS:
        model = O.PrefixLM(5, seed=seed, scale=scale)
        for eos_id, alpha in ((0, 1.0), (None, 0.0), (0, 2.0)):
            best, best_score, runner_up = O.brute_force_best(model, [1, 2], 5, 3, eos_id, alpha)
            check.that(best_score - runner_up > 1e-6, "the grader", "near-tie; change the model")
            tokens, score = impl.beam_search(model, torch.tensor([1, 2]), 125, 3, length_penalty=alpha, eos_id=eos_id)
            case = check.describe(prompt=[1, 2], width=125, max_new=3, eos_id=eos_id, length_penalty=alpha,
                                  model_seed=seed)
            wrong = {"the length penalty counts the prompt tokens too":
                     lambda: [1, 2] + max(O.all_continuations(5, 3, eos_id),
                                          key=lambda c: O.seq_logprob(model, [1, 2], c) / (len(c) + 2) ** alpha),
                     "beam scores compared without the length penalty":
                     lambda: [1, 2] + O.brute_force_best(model, [1, 2], 5, 3, eos_id, 0.0)[0]}
            named = None
            if alpha != 0.0 and tokens.tolist() != [1, 2] + best:    # name every mistake it reproduces
                names = [name for name, wrong_tokens in wrong.items() if wrong_tokens() == tokens.tolist()]
                named = {" or ".join(names): tokens.tolist()} if names else None
            check.equal(tokens.tolist(), [1, 2] + best, unit="beam_search", case=case,
                        what="the best sequence (brute force over every continuation)", mistakes=named)
            check.close(_f64(score), _f64(best_score), unit="beam_search", kind="reduction",
                        what="its score (sum of log-probs / n ** length_penalty)", case=case)


@pytest.mark.points(3)
def test_beam_small_width_matches_slow_oracle(impl):
    for seed, scale in BEAM_MODELS:
        model = O.PrefixLM(5, seed=seed, scale=scale)
        for prompt, width, max_new, eos_id, alpha in (([1, 2], 2, 3, 0, 1.0), ([3], 3, 4, 0, 0.7),
                                                      ([2, 2, 4], 2, 4, None, 1.0), ([1, 2], 4, 4, 1, 1.5)):
            tokens_o, score_o, gap = O.beam_oracle(model, prompt, width, max_new, eos_id, alpha)
            check.that(gap > 1e-6, "the grader", "near-tie between kept and dropped candidates")
            tokens, score = impl.beam_search(model, torch.tensor(prompt), width, max_new, length_penalty=alpha,
                                             eos_id=eos_id)
            case = check.describe(prompt=prompt, width=width, max_new=max_new, eos_id=eos_id, length_penalty=alpha,
                                  model_seed=seed)
            check.that(isinstance(tokens, torch.Tensor) and tokens.dtype == torch.long and tokens.dim() == 1,
                       "beam_search", "tokens should be a 1-D int64 tensor", case=case)
            check.that(isinstance(score, float), "beam_search", f"the score should be a Python float, got "
                       f"{type(score).__name__}", case=case)
            check.equal(tokens.tolist(), tokens_o, unit="beam_search", what="tokens", case=case)
            check.close(_f64(score), _f64(score_o), unit="beam_search", kind="reduction",
                        what="score", case=case)
            check.that(all(c["positions"] is not None and not c["grad"] for c in model.calls), "beam_search",
                       "the model ran with autograd enabled (use torch.no_grad())", case=case)


class _UniformLM(torch.nn.Module):
    """Every next token equally likely: every candidate of a step has the same log-probability,
    so only the documented tie rules decide."""

    def forward(self, ids, targets=None, *, positions=None, attention_mask=None):
        return torch.zeros(ids.shape[0], ids.shape[1], 8, dtype=torch.float64), None


@pytest.mark.points(1)
def test_beam_tie_rules(impl):
    # 4 live hypotheses × 8 tokens = 32 tied candidates per step: the earlier hypothesis, then
    # the lower id, wins each tie, and among equal scores the first finished one is returned.
    for width, max_new in ((4, 3), (3, 4)):
        tokens, score = impl.beam_search(_UniformLM(), torch.tensor([5]), width, max_new, length_penalty=1.0)
        check.equal(tokens.tolist(), [5] + [0] * max_new, unit="beam_search", case=check.describe(
            width=width, max_new=max_new, model="uniform over 8 tokens"),
            what="tokens when every candidate ties (earlier hypothesis, then lower id, then first finished)")


@pytest.mark.points(2)
def test_beam_reference_and_raises(impl):
    for item in reference.load(O.TOPIC, "beam"):
        model = O.PrefixLM(5, seed=item["model_seed"], scale=item["model_scale"])
        tokens, score = impl.beam_search(model, torch.tensor(item["prompt"]), item["width"], item["max_new"],
                                         length_penalty=item["length_penalty"], eos_id=item["eos_id"])
        case = check.describe(**{k: v for k, v in item.items() if k not in ("tokens", "score")})
        check.equal(tokens.tolist(), item["tokens"], unit="beam_search", what="tokens (reference data)", case=case)
        check.close(_f64(score), _f64(item["score"]), unit="beam_search", kind="reduction",
                    what="score (reference data)", case=case)
    model = O.PrefixLM(5, seed=7, scale=0.7)
    tokens, score = impl.beam_search(model, torch.tensor([1, 2]), 3, 1, length_penalty=1.0)
    logp = torch.log_softmax(O.logits_of(model, [1, 2]).double(), -1)
    check.equal(tokens.tolist(), [1, 2, int(logp.argmax())], unit="beam_search", what="tokens for max_new = 1",
                case=check.describe(prompt=[1, 2], width=3, max_new=1))
    check.close(_f64(score), logp.max(), unit="beam_search", kind="reduction", what="score for max_new = 1",
                case=check.describe(prompt=[1, 2], width=3, max_new=1))
    for prompt, width, max_new, why in ((torch.tensor([[1]]), 2, 2, "prompt not 1-D"),
                                        (torch.tensor([], dtype=torch.long), 2, 2, "empty prompt"),
                                        (torch.tensor([1]), 0, 2, "width < 1"), (torch.tensor([1]), 2, 0, "max_new < 1")):
        check.expect_raises(ValueError, impl.beam_search, model, prompt, width, max_new, unit="beam_search", why=why,
                            case=check.describe(prompt=prompt, width=width, max_new=max_new))


# ---------------------------------------------------------------- left padding and batches

@pytest.mark.points(2)
@examples(10)
@given(lengths=st.lists(st.integers(1, 6), min_size=1, max_size=5), seed=seeds(), pad_id=st.integers(0, 9))
def test_left_pad_layout(impl, lengths, seed, pad_id):
    prompts = [tensors.randint((n,), seed + i, high=10) for i, n in enumerate(lengths)]
    ids, mask, positions = impl.left_pad(prompts, pad_id)
    L = max(lengths)
    case = check.describe(lengths=lengths, pad_id=pad_id)
    exp_ids = torch.tensor([[pad_id] * (L - len(p)) + p.tolist() for p in prompts])
    exp_mask = torch.tensor([[False] * (L - len(p)) + [True] * len(p) for p in prompts])
    exp_pos = torch.tensor([[0] * (L - len(p)) + list(range(len(p))) for p in prompts])
    check.close(ids, exp_ids, unit="left_pad", kind="exact", what="ids", case=case,
                mistakes={"padded on the right": torch.tensor([p.tolist() + [pad_id] * (L - len(p)) for p in prompts])})
    check.close(mask, exp_mask, unit="left_pad", kind="exact", what="attention_mask", case=case)
    check.close(positions, exp_pos, unit="left_pad", kind="exact", what="positions", case=case,
                mistakes={"left padding without the matching position ids": torch.arange(L).expand(len(lengths), L)})


@pytest.mark.points(1)
def test_left_pad_by_hand_and_raises(impl):
    ids, mask, positions = impl.left_pad((torch.tensor([5, 6, 7]), torch.tensor([8])), 0)
    case = check.describe(prompts=([5, 6, 7], [8]), pad_id=0)
    check.equal(ids.tolist(), [[5, 6, 7], [0, 0, 8]], unit="left_pad", what="ids", case=case)
    check.equal(mask.tolist(), [[True] * 3, [False, False, True]], unit="left_pad", what="attention_mask", case=case)
    check.that(mask.dtype == torch.bool and ids.dtype == torch.long and positions.dtype == torch.long, "left_pad",
               "dtypes should be int64 ids, bool mask, int64 positions", case=case)
    check.equal(positions.tolist(), [[0, 1, 2], [0, 0, 0]], unit="left_pad", what="positions", case=case)
    for bad, why in (([], "no prompts"), ([torch.tensor([1]), torch.tensor([], dtype=torch.long)], "an empty prompt"),
                     ([torch.tensor([[1, 2]])], "a prompt not 1-D")):
        check.expect_raises(ValueError, impl.left_pad, bad, 0, unit="left_pad", why=why,
                            case=check.describe(prompts=bad))


BATCH_PROMPTS = [[1, 2], [3, 0, 4, 2, 2], [4], [2, 1, 3]]


@pytest.mark.points(3)
def test_generate_batch_equals_one_by_one(impl):
    for seed, (eos_id, stops, penalty, pad_id) in enumerate(((None, (), 1.0, 0), (0, (), 1.0, 2), (3, [[4, 4]], 1.5, 2),
                                                             (1, (), 1.7, 4), (None, (), 2.0, 1))):
        model = O.PrefixLM(5, seed=20 + seed, scale=1.5)
        prompts = [torch.tensor(p) for p in BATCH_PROMPTS]
        out = impl.generate_batch(model, prompts, 7, pad_id=pad_id, temperature=0.0, eos_id=eos_id,
                                  stop_sequences=stops, rep_penalty=penalty)
        case = check.describe(prompts=BATCH_PROMPTS, max_new=7, pad_id=pad_id, eos_id=eos_id, stop_sequences=stops,
                              rep_penalty=penalty)
        check.that(isinstance(out, list) and len(out) == len(prompts), "generate_batch",
                   f"should return a list of {len(prompts)} tensors", f"got {type(out).__name__}", case=case)
        for b, p in enumerate(BATCH_PROMPTS):
            expected = O.greedy_oracle(model, p, 7, eos_id, stops, penalty)
            check.that(isinstance(out[b], torch.Tensor) and out[b].dtype == torch.long, "generate_batch",
                       f"row {b} should be an int64 tensor", case=case)
            check.equal(out[b].tolist(), expected, unit="generate_batch", case=case,
                        what=f"row {b} (should equal greedy generation of that prompt alone)")


@pytest.mark.points(2)
def test_generate_batch_passes_mask_and_positions(impl):
    model = O.PrefixLM(5, seed=21, scale=1.5)
    prompts = [torch.tensor(p) for p in BATCH_PROMPTS]
    out = impl.generate_batch(model, prompts, 12, pad_id=2, temperature=0.0, eos_id=1)
    lengths = [len(p) for p in BATCH_PROMPTS]
    new = [len(o) - n for o, n in zip(out, lengths)]
    case = check.describe(prompts=BATCH_PROMPTS, max_new=12, pad_id=2, eos_id=1)
    check.that(len(set(new)) > 1 and max(new) < 12, "the grader", "rows should stop at different steps, all early")
    check.that(len(model.calls) == max(new), "generate_batch", f"expected one model call per step "
               f"({max(new)} steps until every row stopped), got {len(model.calls)} calls", case=case)
    L = max(lengths)
    for step, call in enumerate(model.calls):
        ids, mask, pos = call["ids"], call["mask"], call["positions"]
        check.that(not call["grad"], "generate_batch", "the model ran with autograd enabled", case=case)
        check.equal(tuple(ids.shape), (len(prompts), L + step), unit="generate_batch",
                    what=f"shape of the ids at step {step} (the whole batch, left-padded, once per step)", case=case)
        for b, n in enumerate(lengths):
            real = min(n + step, n + new[b])              # prompt + tokens generated before this step
            exp_mask = [False] * (L - n) + [True] * real + [False] * (L + step - (L - n) - real)
            check.equal(mask[b].tolist(), exp_mask, unit="generate_batch", case=case,
                        what=f"attention_mask of row {b} at step {step} (padding and stopped rows are False)")
            got = pos[b][mask[b]].tolist()
            check.equal(got, list(range(real)), unit="generate_batch", case=case,
                        what=f"positions of the real tokens of row {b} at step {step}",
                        mistakes={"left padding without the matching position ids":
                                  list(range(L - n, L - n + real))})


@pytest.mark.points(1)
def test_generate_batch_edges_sampling_and_raises(impl):
    model = O.PrefixLM(5, seed=22, scale=1.0)
    prompts = [torch.tensor(p) for p in BATCH_PROMPTS]
    out = impl.generate_batch(model, prompts, 0, pad_id=0, temperature=0.0)
    check.equal([o.tolist() for o in out], BATCH_PROMPTS, unit="generate_batch", what="output for max_new = 0")
    one = impl.generate_batch(model, [torch.tensor([3, 1])], 5, pad_id=0, temperature=0.0)
    check.equal(one[0].tolist(), O.greedy_oracle(model, [3, 1], 5), unit="generate_batch",
                what="a batch of one prompt (no padding)", case=check.describe(prompts=[[3, 1]]))
    runs = [impl.generate_batch(model, prompts, 5, pad_id=0, temperature=1.0, top_p=0.9,
                                generator=tensors.generator(s)) for s in (4, 4, 5)]
    case = check.describe(prompts=BATCH_PROMPTS, temperature=1.0, top_p=0.9)
    check.that([o.tolist() for o in runs[0]] == [o.tolist() for o in runs[1]], "generate_batch",
               "identically seeded generators gave different samples", case=case)
    check.that([o.tolist() for o in runs[0]] != [o.tolist() for o in runs[2]], "generate_batch",
               "different seeds gave the same samples for every row", case=case)
    check.that(all(o[:len(p)].tolist() == p and len(o) == len(p) + 5 for o, p in zip(runs[0], BATCH_PROMPTS)),
               "generate_batch", "every row should be its prompt followed by max_new sampled tokens", case=case)
    for bad, max_new, why in ((prompts, -1, "max_new < 0"), ([], 3, "no prompts"),
                              ([torch.tensor([1]), torch.tensor([], dtype=torch.long)], 3, "an empty prompt")):
        check.expect_raises(ValueError, impl.generate_batch, model, bad, max_new, pad_id=0, unit="generate_batch",
                            why=why, case=check.describe(prompts=bad, max_new=max_new))


# ---------------------------------------------------------------- chat template

def _msgs(*pairs):
    return [{"role": r, "content": c} for r, c in pairs]


@pytest.mark.points(2)
def test_chat_template_by_hand_and_reference(impl):
    out = impl.apply_chat_template(_msgs(("user", "Hi")))
    check.equal(out, "<|user|>\nHi<|end|>\n<|assistant|>\n", unit="apply_chat_template",
                case=check.describe(messages=_msgs(("user", "Hi"))),
                mistakes={"no generation prompt appended": "<|user|>\nHi<|end|>\n"})
    convo = _msgs(("system", "Be brief."), ("user", "2+2?"), ("assistant", "4"), ("user", "Zürich\n🙂"))
    check.equal(impl.apply_chat_template(convo),
                "<|system|>\nBe brief.<|end|>\n<|user|>\n2+2?<|end|>\n<|assistant|>\n4<|end|>\n"
                "<|user|>\nZürich\n🙂<|end|>\n<|assistant|>\n", unit="apply_chat_template",
                case=check.describe(messages=convo))
    done = _msgs(("user", ""), ("assistant", "ok"))
    check.equal(impl.apply_chat_template(tuple(done), add_generation_prompt=False),
                "<|user|>\n<|end|>\n<|assistant|>\nok<|end|>\n", unit="apply_chat_template",
                what="output for a tuple of messages, empty content, no generation prompt",
                case=check.describe(messages=done, add_generation_prompt=False))
    for item in reference.load(O.TOPIC, "chat"):
        check.equal(impl.apply_chat_template(item["messages"], add_generation_prompt=item["add_generation_prompt"]),
                    item["text"], unit="apply_chat_template", what="output (reference data)",
                    case=check.describe(messages=item["messages"]))


_content = texts(max_size=12).filter(lambda t: "<|" not in t and "|>" not in t)


@pytest.mark.points(1)
@examples(12)
@given(system=st.one_of(st.none(), _content), turns=st.lists(_content, min_size=1, max_size=5), gen=st.booleans())
def test_chat_template_round_trip(impl, system, turns, gen):
    messages = ([] if system is None else [{"role": "system", "content": system}]) + [
        {"role": "user" if i % 2 == 0 else "assistant", "content": c} for i, c in enumerate(turns)]
    gen = gen and messages[-1]["role"] != "assistant"
    text = impl.apply_chat_template(messages, add_generation_prompt=gen)
    check.that(isinstance(text, str), "apply_chat_template", "should return a str")
    check.equal(O.parse_chat(text), (messages, gen), unit="apply_chat_template", case=check.describe(messages=messages),
                what="the conversation read back from the output (role markers, content, end markers)")


@pytest.mark.points(2)
def test_chat_template_raises(impl):
    bad = [
        ([], True, "no messages"),
        (_msgs(("robot", "hi")), True, "unknown role"),
        (_msgs(("user", "a"), ("system", "b")), True, "system message not first"),
        (_msgs(("system", "a"), ("system", "b"), ("user", "c")), True, "a second system message"),
        (_msgs(("assistant", "a")), False, "must start with user"),
        (_msgs(("user", "a"), ("user", "b")), True, "user twice in a row"),
        (_msgs(("user", "a"), ("assistant", "b"), ("assistant", "c")), False, "assistant twice in a row"),
        (_msgs(("user", "hi <|assistant|> sure")), True, "content with a reserved marker"),
        (_msgs(("user", "x |> y")), True, "content with the closing marker"),
        (_msgs(("user", "a"), ("assistant", "b")), True, "a generation prompt after the assistant's reply"),
        ([{"role": "user"}], True, "a message without content"),
        ([{"role": "user", "content": "a", "name": "x"}], True, "an extra key"),
        ([{"role": "user", "content": 3}], True, "content not a str"),
        ([("user", "a")], True, "a message that is not a dict"),
    ]
    for messages, gen, why in bad:
        check.expect_raises(ValueError, impl.apply_chat_template, messages, add_generation_prompt=gen,
                            unit="apply_chat_template", why=why,
                            case=check.describe(messages=messages, add_generation_prompt=gen))
