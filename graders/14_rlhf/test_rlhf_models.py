"""Graders for 14_rlhf (models): RewardModel, sequence_logprobs and grpo_step.

Evidence per unit:
  - RewardModel: the reward of each row against the row cropped to its real tokens and run
    through the given TinyLlama's modules (rlhf_oracle.reward_crop_oracle); the gradient of
    every parameter against that oracle; invariance to the padding ids and to extra padding;
    golden rewards; names and shapes;
  - sequence_logprobs: each scored token against the model run on the prefix before it
    (rlhf_oracle.logprob_prefix_oracle: no shift arithmetic), on a stand-in model whose
    logits are written out by hand, gradients of the sums against the prefix oracle,
    invariance to the padding and to the prompt mask's reach into the padding, golden data;
  - grpo_step: the parameters after one step against an update written from the oracles
    (same sampling draws, SGD, float64), the rewards passed to reward_fn and the returned
    mean reward.
"""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn

import rlhf_oracle as O
from llmlab.testing import check, reference, tensors

TOPIC = O.TOPIC


def _reward_model(impl, seed: int, dtype=torch.float32):
    rm = impl.RewardModel(O.tiny_llama(seed, dtype))
    tensors.randomize_parameters(rm.head, seed + 1000, 0.5)
    return rm.to(dtype)


# ================================================================= RewardModel

@pytest.mark.points(1)
def test_reward_model_structure(impl):
    backbone = O.tiny_llama(1)
    rm = impl.RewardModel(backbone)
    check.that(getattr(rm, "backbone", None) is backbone, "RewardModel.__init__",
               "store the given TinyLlama itself as `self.backbone`")
    head = getattr(rm, "head", None)
    check.that(isinstance(head, nn.Linear) and head.in_features == O.CONFIG["d_model"] and head.out_features == 1
               and head.bias is not None, "RewardModel.__init__", "`self.head` must be nn.Linear(d_model, 1)",
               f"got {head!r}")
    names = sorted(n for n, _ in rm.named_parameters())
    expected = sorted(["head.weight", "head.bias"] + [f"backbone.{n}" for n, _ in backbone.named_parameters()])
    check.equal(names, expected, unit="RewardModel.__init__", what="parameter names")


@pytest.mark.points(3)
def test_reward_model_matches_cropped_oracle(impl):
    for seed, dtype, lengths, T in ((2, torch.float32, [5, 2, 1, 5], 5), (3, torch.float64, [3, 7, 4], 7),
                                    (4, torch.float32, [1], 1), (5, torch.float64, [O.CONFIG["block_size"]] * 2, 10)):
        rm = _reward_model(impl, seed, dtype)
        ids, mask = O.right_padded(lengths, T, seed + 10)
        case = check.describe(ids=ids, lengths=lengths, dtype=str(dtype))
        with torch.no_grad():
            expected = O.reward_crop_oracle(rm, ids, mask)
            full = rm.head(rm.backbone.norm(_hidden(rm, ids)))[..., 0]             # (B, T)
            mean_pool = (full * mask).sum(1) / mask.sum(1)
        mistakes = {"reward read at the last position (padding included) instead of the last real token": full[:, -1],
                    "reward read at the first token": full[:, 0],
                    "mean pooling over the real tokens instead of the last one": mean_pool}
        out = rm(ids, mask)
        check.close(out, expected, unit="RewardModel.forward", case=case, kind="model", mistakes=mistakes)
        _, got = O.param_grads(rm, lambda: rm(ids, mask))
        _, want = O.param_grads(rm, lambda: O.reward_crop_oracle(rm, ids, mask))
        for name in want:
            check.close(got[name], want[name], unit="RewardModel.forward", case=case, kind="gradient",
                        what=f"gradient w.r.t. {name}")
    rm = _reward_model(impl, 6)
    ids, mask = O.right_padded([4, 2], 4, 16)
    out = rm(ids, mask.long())
    check.close(out, O.reward_crop_oracle(rm, ids, mask).detach(), unit="RewardModel.forward", kind="model",
                case=check.describe(ids=ids, attention_mask=mask.long()) + "; an int64 0/1 mask")


def _hidden(rm, ids):
    body = rm.backbone
    x = body.tok_emb(ids)
    T = ids.shape[1]
    for block in body.blocks:
        x = block(x, body.rope_cos[:T], body.rope_sin[:T])
    return x


@pytest.mark.points(2)
def test_reward_model_ignores_padding_and_reference(impl):
    rm = _reward_model(impl, 7)
    ids, mask = O.right_padded([6, 3, 1], 6, 17)
    base = rm(ids, mask).detach()
    other_pad = torch.where(mask, ids, tensors.randint(ids.shape, 18, high=O.CONFIG["vocab_size"]))
    case = check.describe(ids=ids, attention_mask=mask)
    check.close(rm(other_pad, mask), base, unit="RewardModel.forward", case=case, kind="model",
                what="rewards after changing the ids of the padding (they must not change)")
    longer = torch.cat([other_pad, torch.zeros(3, 3, dtype=torch.long)], 1)
    longer_mask = torch.cat([mask, torch.zeros(3, 3, dtype=torch.bool)], 1)
    check.close(rm(longer, longer_mask), base, unit="RewardModel.forward", case=case, kind="model",
                what="rewards after appending three more padding tokens (they must not change)")
    rec = reference.load(TOPIC, "reward_model")
    rm = impl.RewardModel(O.tiny_llama(14))
    with torch.no_grad():
        rm.head.weight.copy_(rec["head_weight"])
        rm.head.bias.copy_(rec["head_bias"])
    check.close(rm(rec["ids"], rec["attention_mask"]), rec["rewards"], unit="RewardModel.forward", kind="model",
                case=check.describe(ids=rec["ids"], attention_mask=rec["attention_mask"]), what="rewards (reference)")


@pytest.mark.points(1)
def test_reward_model_raises(impl):
    rm = _reward_model(impl, 8)
    ids = tensors.randint((2, 4), 19, high=O.CONFIG["vocab_size"])
    for mask, why in [(torch.tensor([[1, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool), "a row without real tokens"),
                      (torch.tensor([[1, 1, 1, 1], [0, 0, 1, 1]], dtype=torch.bool), "left padding"),
                      (torch.tensor([[1, 0, 1, 0], [1, 1, 1, 1]], dtype=torch.bool), "a hole in a row"),
                      (torch.ones(2, 3, dtype=torch.bool), "shapes differ")]:
        check.expect_raises(ValueError, rm, ids, mask, unit="RewardModel.forward", why=why,
                            case=check.describe(ids=ids, attention_mask=mask))


# ================================================================= sequence_logprobs

class FixedLogits(nn.Module):
    """A stand-in language model: the logits at position t are `table[ids[b, t]]`, so the
    distribution of the next token depends on the current token only."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = nn.Parameter(table)

    def forward(self, ids, targets=None):
        return self.table[ids], None


@pytest.mark.points(2)
def test_sequence_logprobs_by_hand(impl):
    # Three tokens; after token a the next-token log-probs are log_softmax(table[a]).
    # Row: prompt [0], response [1, 2], then padding [0]; the response mask reaches the padding.
    #   token 1 (position 1) is predicted by position 0 (token 0): log_softmax(table[0])[1]
    #   token 2 (position 2) is predicted by position 1 (token 1): log_softmax(table[1])[2]
    table = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, -1.0], [3.0, 0.0, 0.0]], dtype=torch.float64)
    model = FixedLogits(table.clone())
    ids = torch.tensor([[0, 1, 2, 0]])
    attn = torch.tensor([[True, True, True, False]])
    resp = torch.tensor([[False, True, True, True]])
    lsm = table.log_softmax(-1)
    expected = torch.tensor([[0.0, lsm[0, 1], lsm[1, 2], 0.0]], dtype=torch.float64)
    case = check.describe(ids=ids, attention_mask=attn, response_mask=resp)
    mistakes = {"log-probs read one position off (no shift: logits[t] scored against ids[t])":
                torch.tensor([[0.0, lsm[1, 1], lsm[2, 2], 0.0]], dtype=torch.float64),
                "padding counted in log-probs": torch.tensor([[0.0, lsm[0, 1], lsm[1, 2], lsm[2, 0]]],
                                                             dtype=torch.float64)}
    out = impl.sequence_logprobs(model, ids, attn, resp, per_token=True)
    check.close(out, expected, unit="sequence_logprobs", case=case + "; per_token=True", kind="reduction",
                mistakes=mistakes)
    check.close(impl.sequence_logprobs(model, ids, attn, resp), expected.sum(1), unit="sequence_logprobs",
                case=case, kind="reduction", mistakes={k: v.sum(1) for k, v in mistakes.items()})


@pytest.mark.points(3)
def test_sequence_logprobs_match_prefix_oracle(impl):
    for seed, dtype in ((20, torch.float32), (21, torch.float64)):
        model = O.tiny_llama(seed, dtype)
        lengths, prompts = [7, 5, 3, 7], [2, 1, 2, 6]
        ids, attn = O.right_padded(lengths, 7, seed + 30)
        resp = torch.arange(7)[None, :] >= torch.tensor(prompts)[:, None]
        expected = O.logprob_prefix_oracle(model, ids, attn, resp).to(dtype)
        case = check.describe(ids=ids, lengths=lengths, prompt_lengths=prompts, dtype=str(dtype))
        with torch.no_grad():
            logits = model(ids)[0].double().log_softmax(-1)
        no_shift = torch.where(resp & attn, logits.gather(-1, ids[..., None])[..., 0], 0.0).to(dtype)
        with_pad = O.logprob_prefix_oracle(model, ids, torch.ones_like(attn), resp).to(dtype)
        with_prompt = O.logprob_prefix_oracle(model, ids, attn, torch.arange(7)[None, :].expand(4, 7) >= 1).to(dtype)
        mistakes = {"log-probs read one position off (no shift: logits[t] scored against ids[t])": no_shift,
                    "padding counted in log-probs": with_pad, "prompt tokens counted": with_prompt}
        out = impl.sequence_logprobs(model, ids, attn, resp, per_token=True)
        check.close(out, expected, unit="sequence_logprobs", case=case + "; per_token=True", kind="model",
                    mistakes=mistakes)
        sums = impl.sequence_logprobs(model, ids, attn, resp)
        check.close(sums, expected.sum(1), unit="sequence_logprobs", case=case, kind="model",
                    mistakes={k: v.sum(1) for k, v in mistakes.items()})
        _, got = O.param_grads(model, lambda: impl.sequence_logprobs(model, ids, attn, resp))
        _, want = O.param_grads(model, lambda: O.logprob_sum_torch(model, ids, attn & resp))
        for name in want:
            check.close(got[name], want[name], unit="sequence_logprobs", case=case, kind="gradient",
                        what=f"gradient of the sums w.r.t. the model's {name}")


@pytest.mark.points(2)
def test_sequence_logprobs_ignore_padding_and_edge_cases(impl):
    model = O.tiny_llama(22)
    ids, attn = O.right_padded([6, 4, 2], 6, 40)
    resp = torch.arange(6)[None, :] >= torch.tensor([1, 2, 2])[:, None]    # row 2 has no scored token
    base = impl.sequence_logprobs(model, ids, attn, resp).detach()
    case = check.describe(ids=ids, attention_mask=attn, response_mask=resp)
    other = torch.where(attn, ids, tensors.randint(ids.shape, 41, high=O.CONFIG["vocab_size"]))
    check.close(impl.sequence_logprobs(model, other, attn, resp), base, unit="sequence_logprobs", case=case,
                kind="model", what="sums after changing the padding ids (they must not change)")
    check.close(impl.sequence_logprobs(model, ids, attn, resp & attn), base, unit="sequence_logprobs", case=case,
                kind="model", what="sums when response_mask stops at the padding (the same tokens are scored)")
    check.equal(float(base[2]), 0.0, unit="sequence_logprobs", case=case, what="sum of a row with no scored token")
    one = torch.tensor([[3]])
    out = impl.sequence_logprobs(model, one, torch.ones(1, 1, dtype=torch.bool), torch.zeros(1, 1, dtype=torch.bool),
                                 per_token=True)
    check.close(out, torch.zeros(1, 1), unit="sequence_logprobs", kind="exact", case="T = 1, nothing scored")
    check.that(out.dtype == torch.float32, "sequence_logprobs", "the output has the logits' dtype (float32 here)")
    rec = reference.load(TOPIC, "logprobs")
    model = O.tiny_llama(15)
    args = (rec["ids"], rec["attention_mask"], rec["response_mask"])
    case = check.describe(ids=rec["ids"], response_mask=rec["response_mask"])
    check.close(impl.sequence_logprobs(model, *args, per_token=True), rec["per_token"], unit="sequence_logprobs",
                case=case, kind="model", what="per-token scores (reference)")
    check.close(impl.sequence_logprobs(model, *args), rec["sums"], unit="sequence_logprobs", case=case, kind="model",
                what="sums (reference)")


@pytest.mark.points(1)
def test_sequence_logprobs_raises(impl):
    model = O.tiny_llama(23)
    ids, attn = O.right_padded([3, 2], 3, 42)
    one_row = torch.tensor([[False, True, True], [True, True, False]])
    for resp, a, why in [(torch.ones(2, 3, dtype=torch.bool), attn, "a scored token at position 0"),
                         (one_row, attn, "a scored token at position 0 (in one row of two)"),
                         (torch.ones(2, 2, dtype=torch.bool), attn, "shapes differ"),
                         (torch.ones(2, 3, dtype=torch.bool), attn[:, :2], "shapes differ")]:
        check.expect_raises(ValueError, impl.sequence_logprobs, model, ids, a, resp, unit="sequence_logprobs",
                            why=why, case=check.describe(ids=ids, attention_mask=a, response_mask=resp))


# ================================================================= grpo_step

def _reward_fn(ids):
    """A verifiable reward with many distinct values: the share of response digits above 4
    plus a bonus for ending on 7."""
    resp = ids[:, 1:]
    # float64, so that the float64 policy's update has no float32 step whose rounding the
    # oracle would have to reproduce (the advantages take the rewards' dtype).
    return (resp > 4).double().mean(1) + 0.5 * (resp[:, -1] == 7).double()


@pytest.mark.points(3)
def test_grpo_step_matches_oracle_update(impl):
    for epochs, clip in ((1, 0.2), (3, 0.1)):
        policy = O.tiny_llama(24, torch.float64, vocab_size=10)
        twin = copy.deepcopy(policy)
        prompts = torch.tensor([[3], [8], [0]])
        seen = []

        def recording(ids):
            seen.append(ids.clone())
            return _reward_fn(ids)

        got = impl.grpo_step(policy, O.PlainSGD(policy.parameters(), lr=0.5), prompts, recording, 4, 5,
                             clip_eps=clip, epochs=epochs, generator=tensors.generator(7))
        want, ids = O.grpo_step_oracle(twin, O.PlainSGD(twin.parameters(), lr=0.5), prompts, _reward_fn, 4, 5,
                                       clip, epochs, tensors.generator(7))
        case = check.describe(prompts=prompts, group_size=4, response_len=5, clip_eps=clip, epochs=epochs)
        check.that(len(seen) == 1, "grpo_step", f"reward_fn must be called once per step, it was called {len(seen)} "
                   "times", case=case)
        check.close(seen[0], ids, unit="grpo_step", case=case, kind="exact",
                    what="the ids passed to reward_fn (sample_responses on prompts.repeat_interleave(G))")
        check.that(isinstance(got, float), "grpo_step", f"should return a Python float, got {type(got).__name__}",
                   case=case)
        check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(want, dtype=torch.float64), unit="grpo_step",
                    case=case, kind="loss", what="the returned mean reward")
        for (name, p), q in zip(policy.named_parameters(), twin.parameters()):
            check.close(p.detach(), q.detach(), unit="grpo_step", case=case, kind="gradient",
                        what=f"parameter {name} after the step")
