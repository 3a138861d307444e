"""Topic 23: on-policy distillation — the student learns from the teacher on its OWN samples.

Ordinary (off-policy) distillation trains the student on text the teacher wrote, or on a
fixed data set. At generation time the student conditions on text IT wrote, mistakes
included, which training never showed it: the train/test mismatch called exposure bias.
On-policy distillation removes it by sampling the training text from the student and
asking the teacher to grade every token of it:

    sample x_1 … x_R from the student after a prompt;
    per-token reverse KL estimate:   d_t = log π_student(x_t | x_<t) − log π_teacher(x_t | x_<t);
    policy gradient with the per-token advantage A_t = −d_t (a constant: detached).

The expected update is the gradient of the reverse KL(π_student ‖ π_teacher) on the
student's own distribution of contexts. GKD (Agarwal et al. 2024) mixes on-policy and
off-policy data and minimises a generalised Jensen–Shannon divergence JSD(β) over the full
vocabulary, which goes from forward KL (β = 0) to reverse KL (β = 1).

KL estimators (Schulman 2020, "Approximating KL divergence"): for x drawn from q and a
reference p, with r = p(x) / q(x),
    k1 = −log r,   k2 = (log r)² / 2,   k3 = (r − 1) − log r;
k1 and k3 are unbiased estimates of KL(q ‖ p); k3 is never negative.

Shapes: B batch, P prompt length, R response length, T = P + R, V vocabulary. A "model" is
any module called as `model(ids)` with ids (B, T) int64 that returns `(logits (B, T, V),
loss)`, as the given `llmlab.lib.llama.TinyLlama` does; student and teacher share the
vocabulary. The logits at position i score the token at position i + 1.
"""

from __future__ import annotations

import math

import torch
from torch import nn

KL_KINDS = ("k1", "k2", "k3")


def _check_same_shape(unit: str, a: torch.Tensor, b: torch.Tensor, names: str) -> None:
    """Raise ValueError naming the unit when two inputs' shapes differ or are 0-d (given helper)."""
    if a.shape != b.shape or a.dim() == 0:
        raise ValueError(f"{unit}: {names} must have the same shape with at least one axis, "
                         f"got {tuple(a.shape)} and {tuple(b.shape)}")


@torch.no_grad()
def sample_responses(model: nn.Module, prompts: torch.Tensor, response_len: int,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """Given: extend each prompt (B, P) by `response_len` tokens sampled from `model`.

    Step t calls model(ids) on everything so far (no cache), takes the last position's
    logits, and draws one token per row with torch.multinomial(softmax(logits in float64),
    1, generator=generator). Returns (B, P + response_len) int64; prompts is not modified."""
    ids = prompts
    for _ in range(response_len):
        logits = model(ids)[0][:, -1]                                       # (B, V)
        probs = torch.softmax(logits.double(), dim=-1)                      # (B, V)
        ids = torch.cat([ids, torch.multinomial(probs, 1, generator=generator)], dim=1)
    return ids


# ---------------------------------------------------------------- estimating KL from samples

def kl_estimate(logp_sample: torch.Tensor, logp_ref: torch.Tensor, kind: str = "k3") -> torch.Tensor:
    """Per-sample estimates of KL(q ‖ p) from the log-probabilities of tokens drawn from q.

    logp_sample: (...) float32 or float64, log q(x) of tokens x drawn from the sampling
                 distribution q (in this topic: the student).
    logp_ref:    the same shape and dtype, log p(x) of the same tokens under the reference
                 p (the teacher).
    With log r = logp_ref − logp_sample elementwise, i.e. r = p(x) / q(x) (reference over
    sampler):
        "k1":  −log r              unbiased, negative wherever p(x) > q(x)
        "k2":  (log r)² / 2        biased, ≥ 0
        "k3":  (r − 1) − log r     unbiased, ≥ 0
    Unbiased means Σ_x q(x)·k(x) = KL(q ‖ p) = Σ_x q(x) log(q(x) / p(x)) exactly (for k3, the
    extra r − 1 has expectation Σ_x p(x) − Σ_x q(x) = 0). k3 must be ≥ 0 for EVERY input,
    in float32 too: exp(log r) − 1 − log r can round to a tiny negative number when log r
    is small, so compute r − 1 as torch.expm1(log r) (or clamp the result at 0).
    Returns a tensor of the inputs' shape and dtype, differentiable in both inputs.
    Raises ValueError when the shapes differ or are 0-d, or when kind is not "k1", "k2" or "k3".
    """
    ### BEGIN SOLUTION
    _check_same_shape("kl_estimate", logp_sample, logp_ref, "logp_sample and logp_ref")
    if kind not in KL_KINDS:
        raise ValueError(f"kl_estimate: kind must be one of {KL_KINDS}, got {kind!r}")
    log_r = logp_ref - logp_sample                                          # (...)
    if kind == "k1":
        return -log_r
    if kind == "k2":
        return 0.5 * log_r ** 2
    return torch.expm1(log_r) - log_r
    ### END SOLUTION


# ---------------------------------------------------------------- full-vocabulary divergences

def token_reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> torch.Tensor:
    """The per-token reverse KL(π_student ‖ π_teacher), exactly, over the whole vocabulary.

    student_logits, teacher_logits: (..., V) float32 or float64 of the same shape; the
        distributions are π = softmax over the last axis.
    Returns (...) of the inputs' dtype:
        Σ_v π_s(v) · (log π_s(v) − log π_t(v))
    computed with log-softmax, so it is finite for logits of any size. "Reverse": the
    expectation is under the STUDENT (the distribution being trained), as in on-policy
    distillation; the forward KL(π_t ‖ π_s) of ordinary distillation swaps the roles.
    Differentiable in both inputs. Written from scratch: torch.nn.functional.kl_div is
    not allowed.
    Raises ValueError when the shapes differ or the inputs are 0-d.
    """
    ### BEGIN SOLUTION
    _check_same_shape("token_reverse_kl", student_logits, teacher_logits, "student_logits and teacher_logits")
    log_s = torch.log_softmax(student_logits, dim=-1)                      # (..., V)
    log_t = torch.log_softmax(teacher_logits, dim=-1)                      # (..., V)
    return (log_s.exp() * (log_s - log_t)).sum(dim=-1)                     # (...)
    ### END SOLUTION


def generalized_jsd(student_logits: torch.Tensor, teacher_logits: torch.Tensor, beta: float) -> torch.Tensor:
    """The generalised Jensen–Shannon divergence JSD(β) of GKD, per token, with its endpoints.

    student_logits (π_s), teacher_logits (π_t): (..., V) float32 or float64 of the same
        shape; distributions are softmax over the last axis.
    beta: float in [0, 1]. For 0 < β < 1, with the mixture m = β·π_t + (1 − β)·π_s,
        JSD(β) = β · KL(π_t ‖ m) + (1 − β) · KL(π_s ‖ m).
    β = 0.5 is the ordinary Jensen–Shannon divergence. The endpoints are the limits of the
    RESCALED divergence (the unscaled JSD(β) tends to 0 there):
        β = 0:  the forward KL(π_t ‖ π_s)   = lim JSD(β) / β        as β → 0;
        β = 1:  the reverse KL(π_s ‖ π_t)   = lim JSD(β) / (1 − β)  as β → 1.
    Compute log m with logsumexp of (log β + log π_t, log(1 − β) + log π_s), so it stays
    finite for logits of any size. Written from scratch: torch.nn.functional.kl_div is not
    allowed.
    Returns (...) of the inputs' dtype, differentiable in both inputs.
    Raises ValueError when the shapes differ or are 0-d, or when beta is outside [0, 1].
    """
    ### BEGIN SOLUTION
    _check_same_shape("generalized_jsd", student_logits, teacher_logits, "student_logits and teacher_logits")
    if not 0.0 <= beta <= 1.0:
        raise ValueError(f"generalized_jsd: beta must be in [0, 1], got {beta}")
    if beta == 0.0:
        return token_reverse_kl(teacher_logits, student_logits)           # forward KL(π_t ‖ π_s)
    if beta == 1.0:
        return token_reverse_kl(student_logits, teacher_logits)           # reverse KL(π_s ‖ π_t)
    log_s = torch.log_softmax(student_logits, dim=-1)                      # (..., V)
    log_t = torch.log_softmax(teacher_logits, dim=-1)                      # (..., V)
    log_m = torch.logsumexp(torch.stack([log_t + math.log(beta), log_s + math.log(1.0 - beta)]), dim=0)
    kl_t = (log_t.exp() * (log_t - log_m)).sum(dim=-1)                     # KL(π_t ‖ m), (...)
    kl_s = (log_s.exp() * (log_s - log_m)).sum(dim=-1)                     # KL(π_s ‖ m), (...)
    return beta * kl_t + (1.0 - beta) * kl_s
    ### END SOLUTION


# ---------------------------------------------------------------- log-probs of a response

def response_logprobs(model: nn.Module, ids: torch.Tensor, prompt_len: int) -> torch.Tensor:
    """The log-probabilities `model` gives to the response tokens of `ids`, from ONE call.

    ids:        (B, T) int64; the first prompt_len columns are the prompt, the rest
                ids[:, P:] (R = T − P tokens) the response.
    prompt_len: P with 1 ≤ P < T.
    Calls model(ids) once; the logits at position P − 1 + t score token P + t:
        out[b, t] = log_softmax(logits[b, P − 1 + t])[ids[b, P + t]],   t = 0 … R − 1.
    Returns (B, R) in the logits' dtype. Gradient flows into the model's parameters (no
    torch.no_grad, no detach): the caller decides.
    Raises ValueError unless ids is 2-D and 1 ≤ prompt_len < T.
    """
    ### BEGIN SOLUTION
    if ids.dim() != 2 or not 1 <= prompt_len < ids.shape[1]:
        raise ValueError(f"response_logprobs: need ids (B, T) and 1 ≤ prompt_len < T, "
                         f"got ids of shape {tuple(ids.shape)} and prompt_len={prompt_len}")
    logits = model(ids)[0][:, prompt_len - 1:-1]                           # (B, R, V)
    logp = torch.log_softmax(logits, dim=-1)                               # (B, R, V)
    return logp.gather(-1, ids[:, prompt_len:, None])[..., 0]              # (B, R)
    ### END SOLUTION


# ---------------------------------------------------------------- on-policy distillation

def on_policy_distill_step(student: nn.Module, teacher: nn.Module, prompts: torch.Tensor, optimizer,
                           response_len: int,
                           generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    """One on-policy distillation update of `student` towards `teacher`.

    prompts:      (B, P) int64, P ≥ 1.   response_len: R ≥ 1.
    optimizer:    a torch.optim.Optimizer over the student's parameters, or any object with
                  its `zero_grad(set_to_none=True)` and `step()` methods.
    In this order:
      1. ids = sample_responses(student, prompts, R, generator): (B, P + R), the responses
         sampled from the STUDENT (on-policy), the only random draws;
      2. logp_teacher = response_logprobs(teacher, ids, P) under torch.no_grad: (B, R);
      3. logp_student = response_logprobs(student, ids, P) with gradient: (B, R);
      4. the per-token reverse KL estimate d = logp_student − logp_teacher (the k1 estimate
         of KL(π_student ‖ π_teacher) at each sampled token) and the advantage A = −d,
         DETACHED (a constant weight: no gradient flows through it); each token's advantage
         is its own d_t only (no sum over later tokens: discount 0);
      5. loss = −mean over all B·R response tokens of A · logp_student;
         optimizer.zero_grad(set_to_none=True); loss.backward(); optimizer.step().
    The expected gradient of this loss is the gradient of the per-token KL(π_student ‖
    π_teacher) at the contexts the student visits, the contexts held fixed (for a context-free
    policy: the gradient of the reverse KL itself). The models run in the modes they are given.
    Returns (ids (B, P + R) int64, the mean of d over all response tokens as a Python float).
    Raises ValueError when prompts is not 2-D with P ≥ 1, or when response_len < 1.
    """
    ### BEGIN SOLUTION
    if prompts.dim() != 2 or prompts.shape[1] < 1 or response_len < 1:
        raise ValueError(f"on_policy_distill_step: need prompts (B, P) with P ≥ 1 and response_len ≥ 1, "
                         f"got prompts of shape {tuple(prompts.shape)} and response_len={response_len}")
    P = prompts.shape[1]
    ids = sample_responses(student, prompts, response_len, generator)     # (B, P + R)
    with torch.no_grad():
        logp_teacher = response_logprobs(teacher, ids, P)                  # (B, R)
    logp_student = response_logprobs(student, ids, P)                      # (B, R)
    reverse_kl = logp_student - logp_teacher                               # (B, R)
    advantage = -reverse_kl.detach()                                       # (B, R)
    loss = -(advantage * logp_student).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return ids, float(reverse_kl.detach().mean())
    ### END SOLUTION


def gkd_step(student: nn.Module, teacher: nn.Module, prompts: torch.Tensor, responses: torch.Tensor, optimizer,
             lam: float, beta: float,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, bool, float]:
    """One GKD update: on-policy data with probability lam, else the fixed off-policy data.

    prompts:   (B, P) int64, P ≥ 1.
    responses: (B, R) int64, R ≥ 1: off-policy responses to the same prompts (a data set,
               or text the teacher wrote).
    optimizer: as in on_policy_distill_step.
    lam:       the student data fraction λ in [0, 1].   beta: β of generalized_jsd, in [0, 1].
    In this order:
      1. u = torch.rand(1, generator=generator, dtype=torch.float64)[0], always drawn first;
         on_policy = u < lam (so λ = 0 never and λ = 1 always uses on-policy data);
      2. on_policy: ids = sample_responses(student, prompts, R, generator) (R = the length
         of `responses`); otherwise ids = torch.cat([prompts, responses], dim=1); (B, P + R);
      3. the teacher's logits (under torch.no_grad) and the student's logits (with gradient)
         of ONE call each on ids, at the positions that score the response tokens,
         P − 1 … P + R − 2: (B, R, V) each;
      4. loss = mean over the B·R positions of generalized_jsd(student, teacher, beta);
         optimizer.zero_grad(set_to_none=True); loss.backward(); optimizer.step().
    No gradient flows through the sampling (the sampled ids are data).
    Returns (ids (B, P + R) int64, on_policy a Python bool, the loss as a Python float).
    Raises ValueError when prompts or responses are not 2-D with at least one column, when
    their batch sizes differ, or when lam or beta is outside [0, 1].
    """
    ### BEGIN SOLUTION
    if (prompts.dim() != 2 or responses.dim() != 2 or prompts.shape[1] < 1 or responses.shape[1] < 1
            or prompts.shape[0] != responses.shape[0]):
        raise ValueError(f"gkd_step: need prompts (B, P) and responses (B, R) with P, R ≥ 1, got "
                         f"{tuple(prompts.shape)} and {tuple(responses.shape)}")
    if not (0.0 <= lam <= 1.0 and 0.0 <= beta <= 1.0):
        raise ValueError(f"gkd_step: lam and beta must be in [0, 1], got lam={lam}, beta={beta}")
    P, R = prompts.shape[1], responses.shape[1]
    u = torch.rand(1, generator=generator, dtype=torch.float64)[0]
    on_policy = bool(u < lam)
    if on_policy:
        ids = sample_responses(student, prompts, R, generator)             # (B, P + R)
    else:
        ids = torch.cat([prompts, responses], dim=1)                       # (B, P + R)
    with torch.no_grad():
        teacher_logits = teacher(ids)[0][:, P - 1:-1]                      # (B, R, V)
    student_logits = student(ids)[0][:, P - 1:-1]                          # (B, R, V)
    loss = generalized_jsd(student_logits, teacher_logits, beta).mean()
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return ids, on_policy, float(loss.detach())
    ### END SOLUTION
