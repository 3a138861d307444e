"""Topic 14: learning from preferences and rewards — reward models, PPO, DPO, GRPO.

A pretrained language model is turned towards what people (or a checker) prefer in three
ways, and this module holds the pieces of each:

- a **reward model** scores a sequence with one number, trained on pairs (chosen, rejected)
  with the Bradley–Terry loss; **PPO** then maximises that reward with a clipped surrogate
  objective, advantages from **GAE**, a clipped value loss and a KL penalty that keeps the
  policy near a reference model;
- **DPO** skips the reward model: its loss on the same pairs is written with the log-probs
  of the policy and of a frozen reference;
- **GRPO** skips the value model: it samples a group of responses per prompt, scores them
  with a verifiable reward, and normalises the rewards within each group.

Shapes: B batch (sequences or pairs), T sequence length, V vocabulary size, C = d_model,
G = group_size. Log-probabilities are natural logarithms. A "mask" is a bool tensor, True
where a position counts.

Given (not exercises): `sample_responses` (ancestral sampling of a policy) and
`count_up_reward` (the verifiable reward of the chapter's task).
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.lib.llama import TinyLlama


def _check_same_shape(unit: str, **tensors: torch.Tensor) -> None:
    """Raise ValueError naming the tensors when their shapes differ (given helper)."""
    shapes = {name: tuple(t.shape) for name, t in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise ValueError(f"{unit}: inputs must have the same shape, got {shapes}")


# ---------------------------------------------------------------- reward model

def bradley_terry_loss(r_chosen: torch.Tensor, r_rejected: torch.Tensor) -> torch.Tensor:
    """The Bradley–Terry loss of a reward model on preference pairs.

    r_chosen, r_rejected: (B,) float32 or float64, B ≥ 1: the rewards of the preferred and
        of the other response of each pair.
    Under Bradley–Terry, P(chosen ≻ rejected) = sigmoid(r_chosen − r_rejected); the loss is
    the mean negative log-likelihood of the observed preferences:
        mean over b of −log sigmoid(r_chosen[b] − r_rejected[b]).
    Returns a 0-d tensor of the inputs' dtype. It must stay finite and exact for margins of
    any size (a margin of −200 gives a loss of 200, not inf), and be differentiable in both
    inputs.
    Raises ValueError when the shapes differ or are not (B,) with B ≥ 1.
    """
    # Hint: −log sigmoid(z) = softplus(−z); F.logsigmoid is the stable form.
    ### BEGIN SOLUTION
    _check_same_shape("bradley_terry_loss", r_chosen=r_chosen, r_rejected=r_rejected)
    if r_chosen.dim() != 1 or r_chosen.shape[0] == 0:
        raise ValueError(f"bradley_terry_loss: rewards must be of shape (B,) with B ≥ 1, "
                         f"got {tuple(r_chosen.shape)}")
    return -F.logsigmoid(r_chosen - r_rejected).mean()
    ### END SOLUTION


class RewardModel(nn.Module):
    """A language model whose LM head is replaced by a scalar reward head.

    Attributes (their names are part of the contract):
        backbone  the given TinyLlama whose embedding, blocks and final norm are reused
                  (its lm_head is not used)
        head      nn.Linear(d_model, 1): hidden state -> reward
    """

    def __init__(self, backbone: TinyLlama):
        """Store `backbone` as `self.backbone` and make `self.head = nn.Linear(C, 1)` with
        C = backbone.config.d_model (PyTorch's default initialisation)."""
        super().__init__()
        ### BEGIN SOLUTION
        self.backbone = backbone
        self.head = nn.Linear(backbone.config.d_model, 1)
        ### END SOLUTION

    def forward(self, ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """The reward of each sequence, read at its last real (non-pad) token.

        ids:            (B, T) int64 token ids, 1 ≤ T ≤ block_size; padding on the RIGHT.
        attention_mask: (B, T) bool (or integer 0/1), True for real tokens: each row is a
                        prefix of Trues (at least one) followed by Falses (the padding).
        Hidden states: x = backbone.tok_emb(ids), then every block of backbone.blocks as
        `block(x, cos, sin)` with cos, sin = backbone.rope_cos[:T], backbone.rope_sin[:T],
        then backbone.norm: (B, T, C). The reward of row b is head(x[b, L_b − 1]), where
        L_b is the number of real tokens of row b. The backbone is causal, so the reward does
        not depend on the padding (neither its ids nor how much of it there is).
        Returns (B,) in the model's dtype.
        Raises ValueError when the shapes differ, when a row has no real token, or when a
        row's real tokens are not a prefix (left padding or holes).
        """
        ### BEGIN SOLUTION
        if tuple(ids.shape) != tuple(attention_mask.shape):
            raise ValueError(f"ids {tuple(ids.shape)} and attention_mask {tuple(attention_mask.shape)} "
                             f"must have the same shape")
        B, T = ids.shape
        mask = attention_mask.bool()
        lengths = mask.sum(dim=1)                                          # (B,)
        if bool((lengths == 0).any()):
            raise ValueError("every row of attention_mask needs at least one real token")
        prefix = torch.arange(T, device=ids.device)[None, :] < lengths[:, None]   # (B, T)
        if not torch.equal(mask, prefix):
            raise ValueError("attention_mask rows must be a prefix of real tokens followed by padding "
                             "(right padding)")
        body = self.backbone
        x = body.tok_emb(ids)                                              # (B, T, C)
        cos, sin = body.rope_cos[:T], body.rope_sin[:T]
        for block in body.blocks:
            x = block(x, cos, sin)                                         # (B, T, C)
        x = body.norm(x)                                                   # (B, T, C)
        last = x[torch.arange(B, device=ids.device), lengths - 1]          # (B, C)
        return self.head(last).squeeze(-1)                                 # (B,)
        ### END SOLUTION


# ---------------------------------------------------------------- log-probs of responses

def sequence_logprobs(model: nn.Module, ids: torch.Tensor, attention_mask: torch.Tensor,
                      response_mask: torch.Tensor, per_token: bool = False) -> torch.Tensor:
    """Log-probabilities the language model `model` gives the response tokens of `ids`.

    model:          called as `model(ids)`, returns (logits (B, T, V), loss); logits[:, t]
                    predict the token at position t + 1.
    ids:            (B, T) int64, prompt then response then right padding, T ≥ 1.
    attention_mask: (B, T) bool, True for real tokens (False for padding).
    response_mask:  (B, T) bool, True from the first response token on; it may extend into
                    the padding. Token t is *scored* iff response_mask[b, t] and
                    attention_mask[b, t] are both True: prompt and padding never count.
    The score of token t ≥ 1 is log softmax(logits[b, t − 1])[ids[b, t]] (the SHIFTED
    position: the logits before the token predict it).
    Returns, in the logits' dtype, with gradients flowing into the model:
        per_token=False: (B,) the sum of the scores of the scored tokens of each row
                         (0 for a row with none);
        per_token=True:  (B, T) the score of token t at [b, t] for scored tokens, 0 elsewhere
                         (position 0 is always 0).
    Raises ValueError when the shapes differ or when a scored token sits at position 0 (no
    logit predicts the first token).
    """
    ### BEGIN SOLUTION
    _check_same_shape("sequence_logprobs", ids=ids, attention_mask=attention_mask, response_mask=response_mask)
    scored = response_mask.bool() & attention_mask.bool()                 # (B, T)
    if bool(scored[:, 0].any()):
        raise ValueError("sequence_logprobs: a scored token at position 0 has no logit predicting it")
    logits, _ = model(ids)                                                 # (B, T, V)
    logp = logits[:, :-1].log_softmax(dim=-1)                              # (B, T-1, V)
    token = logp.gather(-1, ids[:, 1:].unsqueeze(-1)).squeeze(-1)          # (B, T-1) score of token t+1
    token = torch.where(scored[:, 1:], token, torch.zeros_like(token))     # (B, T-1)
    token = torch.cat([token.new_zeros(ids.shape[0], 1), token], dim=1)   # (B, T)
    if per_token:
        return token
    return token.sum(dim=1)                                                # (B,)
    ### END SOLUTION


# ---------------------------------------------------------------- PPO

def gae(rewards: torch.Tensor, values: torch.Tensor, dones: torch.Tensor, gamma: float,
        lam: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over trajectories of T steps.

    rewards: (..., T) float, the reward after step t.
    values:  (..., T + 1) float: values[..., t] is the value of the state at step t, and
             values[..., T] the bootstrap value of the state after the last step.
    dones:   (..., T) bool: dones[..., t] True when the episode ENDED at step t, so that the
             state after it is terminal (its value does not count) and step t + 1 starts a
             new episode.
    With notdone_t = 1 − dones_t:
        δ_t = rewards_t + γ · notdone_t · values_{t+1} − values_t
        A_t = δ_t + γ · λ · notdone_t · A_{t+1},   A_T = 0 (computed from t = T − 1 down)
    Returns (advantages, returns), both (..., T) in the dtype of `values`, with
    returns = advantages + values[..., :T]. Both are targets, not functions of the
    parameters: they carry no gradient even when `values` requires grad.
    Raises ValueError when the shapes do not fit or when gamma or lam lie outside [0, 1].
    """
    ### BEGIN SOLUTION
    if not (0.0 <= gamma <= 1.0 and 0.0 <= lam <= 1.0):
        raise ValueError(f"gae: gamma and lam must lie in [0, 1], got gamma={gamma}, lam={lam}")
    T = rewards.shape[-1]
    if tuple(dones.shape) != tuple(rewards.shape) or tuple(values.shape) != tuple(rewards.shape[:-1]) + (T + 1,):
        raise ValueError(f"gae: need rewards (..., T), values (..., T + 1), dones (..., T); got "
                         f"{tuple(rewards.shape)}, {tuple(values.shape)}, {tuple(dones.shape)}")
    values = values.detach()
    rewards = rewards.detach().to(values.dtype)
    notdone = 1.0 - dones.to(values.dtype)                                 # (..., T)
    advantages = torch.zeros_like(rewards)                                 # (..., T)
    next_adv = torch.zeros_like(rewards[..., 0])                           # (...,)
    for t in reversed(range(T)):
        delta = rewards[..., t] + gamma * notdone[..., t] * values[..., t + 1] - values[..., t]
        next_adv = delta + gamma * lam * notdone[..., t] * next_adv
        advantages[..., t] = next_adv
    return advantages, advantages + values[..., :T]
    ### END SOLUTION


def _masked_mean(x: torch.Tensor, mask: torch.Tensor, unit: str) -> torch.Tensor:
    """Mean of x over the True positions of mask (given helper)."""
    mask = mask.bool()
    if not bool(mask.any()):
        raise ValueError(f"{unit}: the mask has no True position")
    return torch.where(mask, x, torch.zeros_like(x)).sum() / mask.sum()


def ppo_policy_loss(logp_new: torch.Tensor, logp_old: torch.Tensor, advantages: torch.Tensor,
                    clip_eps: float, mask: torch.Tensor) -> torch.Tensor:
    """PPO's clipped surrogate objective, as a loss to minimise.

    logp_new:   (B, T) float, log-probs of the taken tokens under the current policy (the
                only input that receives a gradient);
    logp_old:   (B, T) float, the same under the policy that sampled them;
    advantages: (B, T) float;
    mask:       (B, T) bool, True for the tokens that count (any same-shape layout,
                non-contiguous tensors allowed).
    With ratio = exp(logp_new − logp_old), per token
        ℓ = −min(ratio · A, clip(ratio, 1 − clip_eps, 1 + clip_eps) · A),
    and the loss is the PER-TOKEN mean of ℓ over all True positions of the batch (the sum
    over them divided by their count — not a mean of per-sequence means). logp_old and the
    advantages are constants: no gradient reaches them even when they require grad. Where
    the clip is active (ratio > 1 + clip_eps with A > 0, or ratio < 1 − clip_eps with A < 0)
    a token contributes no gradient. At ratio exactly 1 ± clip_eps both terms are equal.
    Returns a 0-d tensor of logp_new's dtype.
    Raises ValueError when the shapes differ, when clip_eps ≤ 0, or when mask has no True.
    """
    ### BEGIN SOLUTION
    _check_same_shape("ppo_policy_loss", logp_new=logp_new, logp_old=logp_old, advantages=advantages, mask=mask)
    if clip_eps <= 0:
        raise ValueError(f"ppo_policy_loss: clip_eps must be > 0, got {clip_eps}")
    adv = advantages.detach()
    ratio = torch.exp(logp_new - logp_old.detach())                       # (B, T)
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + clip_eps)          # (B, T)
    per_token = -torch.min(ratio * adv, clipped * adv)                    # (B, T)
    return _masked_mean(per_token, mask, "ppo_policy_loss")
    ### END SOLUTION


def clipped_value_loss(values: torch.Tensor, old_values: torch.Tensor, returns: torch.Tensor,
                       clip_eps: float, mask: torch.Tensor) -> torch.Tensor:
    """PPO's clipped value loss.

    values:     (B, T) float, the value head's current predictions (receives the gradient);
    old_values: (B, T) float, its predictions when the data was collected (constant);
    returns:    (B, T) float, the targets (constant);
    mask:       (B, T) bool.
    The prediction may move at most clip_eps away from old_values before its error counts
    unclipped:
        v_clip = old_values + clip(values − old_values, −clip_eps, clip_eps)
        ℓ = ½ · max((values − returns)², (v_clip − returns)²)
    The loss is the per-token mean of ℓ over the True positions of mask.
    Returns a 0-d tensor of values' dtype.
    Raises ValueError when the shapes differ, when clip_eps ≤ 0, or when mask has no True.
    """
    ### BEGIN SOLUTION
    _check_same_shape("clipped_value_loss", values=values, old_values=old_values, returns=returns, mask=mask)
    if clip_eps <= 0:
        raise ValueError(f"clipped_value_loss: clip_eps must be > 0, got {clip_eps}")
    old, target = old_values.detach(), returns.detach()
    v_clip = old + torch.clamp(values - old, -clip_eps, clip_eps)          # (B, T)
    per_token = 0.5 * torch.max((values - target) ** 2, (v_clip - target) ** 2)
    return _masked_mean(per_token, mask, "clipped_value_loss")
    ### END SOLUTION


def kl_penalty(logp: torch.Tensor, logp_ref: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-token estimates of KL(π ‖ π_ref) from tokens sampled from π.

    logp, logp_ref: same shape, float: log π(token) and log π_ref(token) of sampled tokens.
    With log_r = logp_ref − logp (elementwise):
        "k1": −log_r                 unbiased, can be negative
        "k2": ½ · log_r²             biased, ≥ 0
        "k3": exp(log_r) − 1 − log_r  unbiased, ≥ 0 (the GRPO paper's estimator)
    "Unbiased": averaged over tokens drawn from π, k1 and k3 have expectation KL(π ‖ π_ref)
    (exactly, for Σ_x π(x)·k(x)). logp_ref is a constant (no gradient reaches it); the
    gradient flows into logp. Returns a tensor of logp's shape and dtype.
    Raises ValueError when the shapes differ or `kind` is not one of "k1", "k2", "k3".
    """
    ### BEGIN SOLUTION
    _check_same_shape("kl_penalty", logp=logp, logp_ref=logp_ref)
    log_r = logp_ref.detach() - logp
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return 0.5 * log_r ** 2
    if kind == "k3":
        return torch.exp(log_r) - 1.0 - log_r
    raise ValueError(f"kl_penalty: kind must be 'k1', 'k2' or 'k3', got {kind!r}")
    ### END SOLUTION


# ---------------------------------------------------------------- DPO

def dpo_loss(pi_chosen: torch.Tensor, pi_rejected: torch.Tensor, ref_chosen: torch.Tensor,
             ref_rejected: torch.Tensor, beta: float) -> torch.Tensor:
    """The DPO loss on preference pairs.

    pi_chosen, pi_rejected:   (B,) float, sequence log-probs of the chosen and rejected
                              responses under the policy (these receive the gradient);
    ref_chosen, ref_rejected: (B,) float, the same under the frozen reference (constants:
                              no gradient reaches them even when they require grad).
    beta > 0 is the strength of the implicit KL constraint: the implicit reward of a
    response is β · (log π − log π_ref), so a LARGER β means a policy that stays CLOSER to
    the reference. The loss is
        mean over b of −log sigmoid(β · ((pi_chosen − ref_chosen) − (pi_rejected − ref_rejected)))
    It is finite for margins of any size. Its gradient pushes pi_chosen up (negative
    derivative) and pi_rejected down (positive derivative).
    Returns a 0-d tensor of pi_chosen's dtype.
    Raises ValueError when the shapes differ or are not (B,) with B ≥ 1, or when beta ≤ 0.
    """
    ### BEGIN SOLUTION
    _check_same_shape("dpo_loss", pi_chosen=pi_chosen, pi_rejected=pi_rejected, ref_chosen=ref_chosen,
                      ref_rejected=ref_rejected)
    if pi_chosen.dim() != 1 or pi_chosen.shape[0] == 0:
        raise ValueError(f"dpo_loss: inputs must be of shape (B,) with B ≥ 1, got {tuple(pi_chosen.shape)}")
    if beta <= 0:
        raise ValueError(f"dpo_loss: beta must be > 0, got {beta}")
    chosen = pi_chosen - ref_chosen.detach()                               # (B,) log-ratio of chosen
    rejected = pi_rejected - ref_rejected.detach()                         # (B,)
    return -F.logsigmoid(beta * (chosen - rejected)).mean()
    ### END SOLUTION


# ---------------------------------------------------------------- GRPO

def grpo_advantages(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """Group-normalised advantages of GRPO.

    rewards: (N,) float, N = number of groups × group_size; the responses of one prompt are
             consecutive: group g is rewards[g·group_size : (g + 1)·group_size].
    Each reward is normalised within its own group:
        A_i = (r_i − mean_g) / (std_g + eps)
    where std_g is the sample standard deviation with Bessel's correction (torch.std's
    default, divisor group_size − 1). A group whose rewards are all equal gets advantages 0.
    Returns (N,) in the rewards' dtype, without gradient (advantages are targets).
    Raises ValueError when rewards is not 1-D, when group_size < 2, or when N is not a
    multiple of group_size.
    """
    ### BEGIN SOLUTION
    if rewards.dim() != 1:
        raise ValueError(f"grpo_advantages: rewards must be 1-D, got shape {tuple(rewards.shape)}")
    if group_size < 2 or rewards.shape[0] % group_size != 0:
        raise ValueError(f"grpo_advantages: need group_size ≥ 2 dividing N = {rewards.shape[0]}, "
                         f"got {group_size}")
    groups = rewards.detach().view(-1, group_size)                         # (N / G, G)
    mean = groups.mean(dim=1, keepdim=True)
    std = groups.std(dim=1, keepdim=True)
    return ((groups - mean) / (std + eps)).reshape(-1)                     # (N,)
    ### END SOLUTION


# ---------------------------------------------------------------- the verifiable task (given)

@torch.no_grad()
def sample_responses(policy: nn.Module, prompts: torch.Tensor, response_len: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Given: extend each prompt (B, P) by `response_len` tokens sampled from the policy
    (`policy(ids)` returns (logits, loss); one torch.multinomial draw per step with
    `generator`). Returns (B, P + response_len) int64."""
    ids = prompts
    for _ in range(response_len):
        logits, _ = policy(ids)                                            # (B, t, V)
        probs = torch.softmax(logits[:, -1].double(), dim=-1)              # (B, V)
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return ids


def count_up_reward(ids: torch.Tensor, prompt_len: int = 1) -> torch.Tensor:
    """Given: the verifiable reward of the chapter's task. Tokens are the digits 0–9; the
    response (after `prompt_len` prompt tokens) should count up by one, modulo 10, from the
    last prompt digit: after 7 comes 8 9 0 1 … . The reward of a row is the fraction of its
    response tokens that are one more (mod 10) than the token before them. (B,) float32."""
    prev, cur = ids[:, prompt_len - 1:-1], ids[:, prompt_len:]
    return ((cur - prev) % 10 == 1).float().mean(dim=1)


def grpo_step(policy: nn.Module, optimizer, prompts: torch.Tensor,
              reward_fn: Callable[[torch.Tensor], torch.Tensor], group_size: int, response_len: int,
              clip_eps: float = 0.2, epochs: int = 2, generator: torch.Generator | None = None) -> float:
    """One GRPO update of `policy` (a language model: `policy(ids)` -> (logits, loss)).

    optimizer: a torch.optim.Optimizer over the policy's parameters, or any object with
               its `zero_grad(set_to_none=True)` and `step()` methods.
    prompts: (B, P) int64. In this order:
      1. ids = sample_responses(policy, prompts.repeat_interleave(group_size, dim=0),
         response_len, generator): (B·G, P + L), the G responses of a prompt consecutive;
      2. rewards = reward_fn(ids), (B·G,) float; advantages = grpo_advantages(rewards,
         group_size), broadcast to every response token;
      3. attention_mask all True; response_mask True at positions ≥ P;
         logp_old = sequence_logprobs(policy, ids, attention_mask, response_mask,
         per_token=True) computed without gradient (the sampling policy, frozen);
      4. `epochs` times: logp = the same with gradient;
         loss = ppo_policy_loss(logp, logp_old, advantages (B·G, P + L), clip_eps,
         response_mask); optimizer.zero_grad(); loss.backward(); optimizer.step().
    Returns the mean of `rewards` (of the responses sampled in step 1) as a Python float.
    """
    ### BEGIN SOLUTION
    P = prompts.shape[1]
    ids = sample_responses(policy, prompts.repeat_interleave(group_size, dim=0), response_len, generator)
    rewards = reward_fn(ids)                                               # (B·G,)
    adv = grpo_advantages(rewards, group_size)                             # (B·G,)
    attention = torch.ones_like(ids, dtype=torch.bool)                     # (B·G, P + L)
    response = torch.arange(ids.shape[1])[None, :].expand_as(ids) >= P     # (B·G, P + L)
    adv_tokens = adv[:, None].expand(ids.shape)                            # (B·G, P + L)
    with torch.no_grad():
        logp_old = sequence_logprobs(policy, ids, attention, response, per_token=True)
    for _ in range(epochs):
        logp = sequence_logprobs(policy, ids, attention, response, per_token=True)
        loss = ppo_policy_loss(logp, logp_old, adv_tokens.to(logp.dtype), clip_eps, response)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return float(rewards.float().mean())
    ### END SOLUTION
