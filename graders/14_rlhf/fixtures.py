"""Golden data for 14_rlhf, generated from solutions/ by `llmlab fixtures 14_rlhf`.

Records (all small, float64 unless said; scalars stored with shape (1,)):
  bradley_terry   six reward pairs (one margin of −50), the loss and both gradients;
  dpo             four (B = 5) log-prob vectors, beta, the loss and the policy gradients;
  gae             rewards (3, 7), values (3, 8), dones with episode ends inside, gamma, lam,
                  advantages and returns;
  ppo             (3, 5) log-probs old and new (ratios inside and outside the clip), the
                  advantages, a mask, clip_eps, the loss and its gradient w.r.t. logp_new;
  value_loss      the same layout for clipped_value_loss;
  kl              log-probs and reference log-probs (2, 6) and the three estimators;
  grpo            rewards of 3 groups of 4 (one group all equal) and the advantages;
  reward_model    right-padded ids (4, 7) and mask, the rewards of a TinyLlama of
                  rlhf_oracle.CONFIG randomised with seed 14 (float32) and a head set from
                  the seeded generator (head_weight, head_bias);
  logprobs        ids (3, 8), attention and response masks of a seeded randomised TinyLlama
                  (seed 15, float32), the per-token scores and their sums.
"""

from __future__ import annotations

import torch

import rlhf_oracle as O

SEED = 14


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)
    f64 = dict(generator=g, dtype=torch.float64)
    records = {}

    rc, rr = torch.randn(6, **f64) * 2, torch.randn(6, **f64) * 2
    rc[3], rr[3] = -25.0, 25.0
    a, b = rc.clone().requires_grad_(True), rr.clone().requires_grad_(True)
    loss = impl.bradley_terry_loss(a, b)
    loss.backward()
    records["bradley_terry"] = {"r_chosen": rc, "r_rejected": rr, "loss": loss.detach().reshape(1),
                                "grad_chosen": a.grad, "grad_rejected": b.grad}

    pc, pr, fc, fr = (torch.randn(5, **f64) * 3 - 10 for _ in range(4))
    beta = 0.3
    leaves = [x.clone().requires_grad_(True) for x in (pc, pr)]
    loss = impl.dpo_loss(leaves[0], leaves[1], fc, fr, beta)
    loss.backward()
    records["dpo"] = {"pi_chosen": pc, "pi_rejected": pr, "ref_chosen": fc, "ref_rejected": fr,
                      "beta": torch.tensor([beta], dtype=torch.float64), "loss": loss.detach().reshape(1),
                      "grad_chosen": leaves[0].grad, "grad_rejected": leaves[1].grad}

    rewards, values = torch.randn(3, 7, **f64), torch.randn(3, 8, **f64)
    dones = torch.zeros(3, 7, dtype=torch.bool)
    dones[0, 2] = dones[0, 6] = dones[1, 4] = dones[2, 0] = dones[2, 1] = True
    adv, ret = impl.gae(rewards, values, dones, 0.9, 0.8)
    records["gae"] = {"rewards": rewards, "values": values, "dones": dones, "gamma": torch.tensor([0.9], dtype=torch.float64),
                      "lam": torch.tensor([0.8], dtype=torch.float64), "advantages": adv, "returns": ret}

    old = torch.randn(3, 5, **f64) - 2
    new = old + torch.tensor([[0.5, -0.5, 0.05, -0.05, 0.3], [-0.4, 0.1, 0.0, 0.6, -0.7],
                              [0.25, -0.25, 0.15, -0.3, 0.02]], dtype=torch.float64)
    adv = torch.randn(3, 5, **f64)
    mask = torch.tensor([[1, 1, 1, 1, 0], [1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    leaf = new.clone().requires_grad_(True)
    loss = impl.ppo_policy_loss(leaf, old, adv, 0.2, mask)
    loss.backward()
    records["ppo"] = {"logp_new": new, "logp_old": old, "advantages": adv, "mask": mask,
                      "clip_eps": torch.tensor([0.2], dtype=torch.float64), "loss": loss.detach().reshape(1), "grad": leaf.grad}

    v_old = torch.randn(3, 5, **f64)
    v_new = v_old + torch.randn(3, 5, **f64) * 0.4
    ret = torch.randn(3, 5, **f64)
    leaf = v_new.clone().requires_grad_(True)
    loss = impl.clipped_value_loss(leaf, v_old, ret, 0.2, mask)
    loss.backward()
    records["value_loss"] = {"values": v_new, "old_values": v_old, "returns": ret, "mask": mask,
                             "clip_eps": torch.tensor([0.2], dtype=torch.float64), "loss": loss.detach().reshape(1), "grad": leaf.grad}

    logp, logp_ref = torch.randn(2, 6, **f64) - 1.5, torch.randn(2, 6, **f64) - 1.5
    records["kl"] = {"logp": logp, "logp_ref": logp_ref,
                     **{k: impl.kl_penalty(logp, logp_ref, k) for k in ("k1", "k2", "k3")}}

    rewards = torch.randn(12, **f64)
    rewards[4:8] = 0.5
    records["grpo"] = {"rewards": rewards, "advantages": impl.grpo_advantages(rewards, 4)}

    backbone = O.tiny_llama(14)
    rm = impl.RewardModel(backbone)
    with torch.no_grad():
        rm.head.weight.copy_(torch.randn(1, O.CONFIG["d_model"], generator=g))
        rm.head.bias.copy_(torch.randn(1, generator=g))
    ids, attn = O.right_padded([7, 3, 1, 5], 7, 140)
    with torch.no_grad():
        rewards = rm(ids, attn)
    records["reward_model"] = {"ids": ids, "attention_mask": attn, "head_weight": rm.head.weight.detach().clone(),
                               "head_bias": rm.head.bias.detach().clone(), "rewards": rewards}

    model = O.tiny_llama(15)
    ids, attn = O.right_padded([8, 6, 4], 8, 150)
    response = torch.arange(8)[None, :] >= torch.tensor([3, 2, 1])[:, None]
    with torch.no_grad():
        per_token = impl.sequence_logprobs(model, ids, attn, response, per_token=True)
        sums = impl.sequence_logprobs(model, ids, attn, response)
    records["logprobs"] = {"ids": ids, "attention_mask": attn, "response_mask": response,
                           "per_token": per_token, "sums": sums}
    return records
