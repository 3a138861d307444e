"""Helpers shared by the 14_rlhf graders (instructor code, not a test).

Independent oracles, written differently from the reference:
  - `gae_loop`: GAE as a plain Python loop over floats, trajectory by trajectory;
  - `ppo_loss_loop`, `value_loss_loop`: the per-token formulas with `if` branches instead of
    min/max/clamp, then a sum over the kept tokens divided by their count;
  - `logprob_prefix_oracle`: each scored token scored by running the model on the prefix
    before it alone and taking the last logits (no shift arithmetic to get wrong);
  - `reward_crop_oracle`: each row cropped to its real tokens and run through the given
    TinyLlama's modules, the reward read at the last position of the crop;
  - `grpo_step_oracle`: one GRPO update written from these oracles and the formulas.
Model builders: `tiny_llama(seed, dtype)` (a small given TinyLlama with every parameter drawn
fresh) and `right_padded(...)` batches.
"""

from __future__ import annotations

import math

import torch

from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.testing import tensors

TOPIC = "14_rlhf"
CONFIG = dict(vocab_size=11, block_size=10, n_layer=1, n_head=2, n_kv_head=1, d_model=16)


def tiny_llama(seed: int, dtype: torch.dtype = torch.float32, **overrides) -> TinyLlama:
    """The given TinyLlama of CONFIG (changed by `overrides`), every parameter drawn fresh."""
    return tensors.random_model(TinyLlama(LlamaConfig(**{**CONFIG, **overrides})), seed, dtype)


def right_padded(lengths: list[int], T: int, seed: int, vocab: int = CONFIG["vocab_size"], pad: int = 0):
    """(ids (B, T) int64 with `pad` after each row's length, attention_mask (B, T) bool)."""
    ids = tensors.randint((len(lengths), T), seed, high=vocab)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    return torch.where(mask, ids, torch.full_like(ids, pad)), mask


# ---------------------------------------------------------------- GAE

def gae_loop(rewards, values, dones, gamma: float, lam: float):
    """Advantages and returns by a reverse loop over Python floats, per trajectory."""
    r = rewards.detach().to(torch.float64)
    v = values.detach().to(torch.float64)
    d = dones
    T = r.shape[-1]
    flat_r, flat_v, flat_d = r.reshape(-1, T), v.reshape(-1, T + 1), d.reshape(-1, T)
    adv = torch.zeros_like(flat_r)
    for i in range(flat_r.shape[0]):
        running = 0.0
        for t in range(T - 1, -1, -1):
            if bool(flat_d[i, t]):
                delta = float(flat_r[i, t]) - float(flat_v[i, t])
                running = delta
            else:
                delta = float(flat_r[i, t]) + gamma * float(flat_v[i, t + 1]) - float(flat_v[i, t])
                running = delta + gamma * lam * running
            adv[i, t] = running
    adv = adv.reshape(r.shape)
    return adv.to(values.dtype), (adv + v[..., :T]).to(values.dtype)


# ---------------------------------------------------------------- PPO

def ppo_loss_loop(logp_new, logp_old, adv, clip_eps: float, mask):
    """The clipped surrogate loss token by token, with branches instead of min/clamp."""
    total, count = 0.0, 0
    for ln, lo, a, m in zip(logp_new.flatten().tolist(), logp_old.flatten().tolist(), adv.flatten().tolist(),
                            mask.flatten().tolist()):
        if not m:
            continue
        ratio = math.exp(ln - lo)
        clipped = 1 + clip_eps if ratio > 1 + clip_eps else (1 - clip_eps if ratio < 1 - clip_eps else ratio)
        total += -(ratio * a if ratio * a < clipped * a else clipped * a)
        count += 1
    return torch.tensor(total / count, dtype=torch.float64)


def ppo_loss_torch(logp_new, logp_old, adv, clip_eps: float, mask):
    """The same loss with tensor operations (differentiable in logp_new), for gradients."""
    ratio = torch.exp(logp_new - logp_old.detach())
    unclipped, clipped = ratio * adv.detach(), ratio.clamp(1 - clip_eps, 1 + clip_eps) * adv.detach()
    per_token = -torch.where(unclipped < clipped, unclipped, clipped)
    return (per_token * mask).sum() / mask.sum()


def value_loss_loop(values, old_values, returns, clip_eps: float, mask):
    total, count = 0.0, 0
    for v, o, r, m in zip(values.flatten().tolist(), old_values.flatten().tolist(), returns.flatten().tolist(),
                          mask.flatten().tolist()):
        if not m:
            continue
        vc = o + clip_eps if v > o + clip_eps else (o - clip_eps if v < o - clip_eps else v)
        total += 0.5 * max((v - r) ** 2, (vc - r) ** 2)
        count += 1
    return torch.tensor(total / count, dtype=torch.float64)


# ---------------------------------------------------------------- log-probs and rewards

def logprob_prefix_oracle(model, ids, attention_mask, response_mask):
    """(B, T) float64 scores: token t scored by model(ids[b, :t]) at its last position."""
    scored = attention_mask.bool() & response_mask.bool()
    out = torch.zeros(ids.shape, dtype=torch.float64)
    with torch.no_grad():
        for b in range(ids.shape[0]):
            for t in range(1, ids.shape[1]):
                if bool(scored[b, t]):
                    logits = model(ids[b:b + 1, :t])[0][0, -1].double()
                    out[b, t] = logits.log_softmax(-1)[ids[b, t]]
    return out


def logprob_sum_torch(model, ids, scored):
    """Differentiable sum of the scores of the scored tokens of each row, via prefixes."""
    rows = []
    for b in range(ids.shape[0]):
        total = torch.zeros((), dtype=next(model.parameters()).dtype)
        for t in range(1, ids.shape[1]):
            if bool(scored[b, t]):
                total = total + model(ids[b:b + 1, :t])[0][0, -1].log_softmax(-1)[ids[b, t]]
        rows.append(total)
    return torch.stack(rows)


def reward_crop_oracle(reward_model, ids, attention_mask):
    """(B,) rewards: each row cropped to its real tokens, run through the backbone's modules."""
    body, head = reward_model.backbone, reward_model.head
    rows = []
    for b in range(ids.shape[0]):
        L = int(attention_mask[b].bool().sum())
        x = body.tok_emb(ids[b:b + 1, :L])
        for block in body.blocks:
            x = block(x, body.rope_cos[:L], body.rope_sin[:L])
        rows.append(head(body.norm(x)[0, -1])[0])
    return torch.stack(rows)


def param_grads(module, fn, seed: int = 0):
    """Gradients of (fn() · a seeded random upstream).sum() w.r.t. every parameter of module."""
    module.zero_grad(set_to_none=True)
    out = fn()
    upstream = tensors.randn(out.shape, seed, out.dtype)
    (out * upstream).sum().backward()
    grads = {n: (p.grad.clone() if p.grad is not None else torch.zeros_like(p)) for n, p in module.named_parameters()}
    module.zero_grad(set_to_none=True)
    return out.detach(), grads


# ---------------------------------------------------------------- GRPO

class PlainSGD:
    """p ← p − lr·grad: the optimizer interface grpo_step documents (zero_grad, step), without
    torch.optim (whose first construction imports torch._dynamo: seconds of start-up)."""

    def __init__(self, params, lr: float):
        self.params, self.lr = list(params), lr

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        for p in self.params:
            if p.grad is not None:
                p.add_(p.grad, alpha=-self.lr)


def grpo_advantages_oracle(rewards, group_size: int, eps: float = 1e-6):
    out = torch.zeros(rewards.shape, dtype=torch.float64)
    r = rewards.double().tolist()
    for start in range(0, len(r), group_size):
        group = r[start:start + group_size]
        mean = sum(group) / len(group)
        std = math.sqrt(sum((x - mean) ** 2 for x in group) / (len(group) - 1))
        for i, x in enumerate(group):
            out[start + i] = (x - mean) / (std + eps)
    return out.to(rewards.dtype)


def sample_oracle(policy, prompts, response_len, generator):
    ids = prompts
    with torch.no_grad():
        for _ in range(response_len):
            probs = torch.softmax(policy(ids)[0][:, -1].double(), dim=-1)
            ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return ids


def token_logprobs_oracle(policy, ids, P):
    """(B, T) per-token scores of the response (positions ≥ P) with the shift, 0 elsewhere."""
    logits = policy(ids)[0]
    logp = logits[:, :-1].log_softmax(-1).gather(-1, ids[:, 1:, None])[..., 0]
    keep = torch.arange(1, ids.shape[1])[None, :] >= P
    return torch.cat([torch.zeros_like(logp[:, :1]), logp * keep], dim=1)


def grpo_step_oracle(policy, optimizer, prompts, reward_fn, group_size, response_len, clip_eps, epochs, generator):
    P = prompts.shape[1]
    ids = sample_oracle(policy, prompts.repeat_interleave(group_size, 0), response_len, generator)
    rewards = reward_fn(ids)
    adv = grpo_advantages_oracle(rewards, group_size)
    mask = (torch.arange(ids.shape[1])[None, :] >= P).expand(ids.shape)
    with torch.no_grad():
        old = token_logprobs_oracle(policy, ids, P)
    for _ in range(epochs):
        logp = token_logprobs_oracle(policy, ids, P)
        loss = ppo_loss_torch(logp, old, adv[:, None].expand(ids.shape).to(logp.dtype), clip_eps, mask)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return float(rewards.float().mean()), ids
