"""Topic 17: speculative decoding — a cheap draft model proposes, the target model verifies.

A large language model spends one forward pass per generated token, and on a modern machine
that pass is limited by reading the weights, not by arithmetic: scoring k + 1 positions costs
about as much as scoring one. Speculative decoding exploits this. A small *draft* model
proposes k tokens one by one; the *target* model scores all of them in ONE call; a rejection
rule keeps a prefix of the proposals and adds one token of its own, so every target call
emits between 1 and k + 1 tokens. The rule (Leviathan et al. 2023; Chen et al. 2023) makes
the emitted text distributed EXACTLY as if the target had sampled it alone:

    accept draft token x with probability min(1, p(x) / q(x));
    on the first rejection sample from the residual normalise(max(0, p − q)) and stop;
    when all k are accepted, sample a bonus token from the target's next distribution.

Here p is the target's (tempered) next-token distribution and q the draft's, at the same
position. With temperature 0 both models are greedy and the rule becomes "keep the drafts
that equal the target's argmax", which reproduces the target's greedy text token for token.

Shapes: k number of draft tokens in a round, V vocabulary size, T sequence length. A
"model" is any module called as `model(idx)` with idx (1, T) int64 that returns
`(logits (1, T, V), loss)`, as the given `llmlab.lib.llama.TinyLlama` does; draft and
target share the vocabulary. Probabilities are float32 or float64 tensors whose last axis
sums to 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _check_same_shape(unit: str, p: torch.Tensor, q: torch.Tensor) -> None:
    """Raise ValueError naming the unit when two distributions' shapes differ (given helper)."""
    if p.shape != q.shape or p.dim() == 0:
        raise ValueError(f"{unit}: target and draft distributions must have the same shape (..., V), "
                         f"got {tuple(p.shape)} and {tuple(q.shape)}")


# ---------------------------------------------------------------- the two distributions

def acceptance_rate(target_probs: torch.Tensor, draft_probs: torch.Tensor) -> torch.Tensor:
    """The probability that a token drawn from the draft is accepted: α = Σ_x min(p(x), q(x)).

    target_probs (p), draft_probs (q): (..., V) float32 or float64 of the same shape, each
        row a distribution over the last axis.
    Returns (...) of the inputs' dtype: for each row, Σ over the last axis of min(p, q)
    (equal to 1 − total-variation distance(p, q)). Differentiable in both inputs (at
    entries where p = q the split of the gradient is not specified).
    Raises ValueError when the shapes differ or the inputs are 0-d.
    """
    ### BEGIN SOLUTION
    _check_same_shape("acceptance_rate", target_probs, draft_probs)
    return torch.minimum(target_probs, draft_probs).sum(dim=-1)            # (...)
    ### END SOLUTION


def residual_distribution(target_probs: torch.Tensor, draft_probs: torch.Tensor) -> torch.Tensor:
    """The distribution a rejected position is resampled from: normalise(max(0, p − q)).

    target_probs (p), draft_probs (q): (..., V) float32 or float64 of the same shape.
    Returns (..., V) of the inputs' dtype: for each row, max(0, p − q) divided by its sum
    over the last axis. A row whose residual mass Σ max(0, p − q) is exactly 0 (p = q: a
    rejection cannot happen there) returns p unchanged. Differentiable in both inputs
    (entries where p < q have zero gradient).
    Raises ValueError when the shapes differ or the inputs are 0-d.
    """
    ### BEGIN SOLUTION
    _check_same_shape("residual_distribution", target_probs, draft_probs)
    residual = (target_probs - draft_probs).clamp(min=0)                    # (..., V)
    mass = residual.sum(dim=-1, keepdim=True)                               # (..., 1)
    empty = mass == 0
    return torch.where(empty, target_probs, residual / torch.where(empty, torch.ones_like(mass), mass))
    ### END SOLUTION


# ---------------------------------------------------------------- verification of one round

def speculative_accept(draft_probs: torch.Tensor, target_probs: torch.Tensor, draft_tokens: torch.Tensor,
                       generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """Verify k draft tokens against the target: the rejection rule of speculative sampling.

    draft_probs:  (k, V) float32 or float64, k ≥ 0: row i is the distribution q_i the draft
                  drew draft_tokens[i] from (so q_i[draft_tokens[i]] > 0).
    target_probs: (k + 1, V), the same dtype: row i is the target's distribution p_i at the
                  position of draft token i; row k is the target's distribution after all
                  k draft tokens (for the bonus token).
    draft_tokens: (k,) int64 in [0, V).
    generator:    the source of every random draw (None: the global generator).
    For i = 0, 1, …, k − 1 in order: draw u = torch.rand(1, generator=generator,
    dtype=torch.float64)[0] and accept x = draft_tokens[i] when u < p_i[x] / q_i[x]
    (probability min(1, p_i[x] / q_i[x])). At the first rejection draw one token from the
    residual of position i, residual_distribution(p_i, q_i), with
    torch.multinomial(·, 1, generator=generator), and stop (no more uniforms are drawn).
    When all k are accepted draw the bonus token from p_k the same way.
    Returns (tokens, n): tokens (n + 1,) int64, the n accepted draft tokens followed by the
    one drawn token; n a Python int in [0, k]. The inputs are not modified.
    Raises ValueError when the shapes disagree (draft_probs not (k, V), target_probs not
    (k + 1, V), draft_tokens not (k,)).
    """
    # Hint: draft_tokens[:n] is the accepted prefix; torch.cat joins it with the new token.
    ### BEGIN SOLUTION
    if (draft_probs.dim() != 2 or target_probs.dim() != 2 or draft_tokens.dim() != 1
            or target_probs.shape != (draft_probs.shape[0] + 1, draft_probs.shape[1])
            or draft_tokens.shape[0] != draft_probs.shape[0]):
        raise ValueError(f"speculative_accept: need draft_probs (k, V), target_probs (k + 1, V) and "
                         f"draft_tokens (k,), got {tuple(draft_probs.shape)}, {tuple(target_probs.shape)} "
                         f"and {tuple(draft_tokens.shape)}")
    k = draft_tokens.shape[0]
    for i in range(k):
        x = int(draft_tokens[i])
        u = torch.rand(1, generator=generator, dtype=torch.float64)[0]
        if not u < target_probs[i, x] / draft_probs[i, x]:                 # rejected
            residual = residual_distribution(target_probs[i], draft_probs[i])   # (V,)
            token = torch.multinomial(residual, 1, generator=generator)         # (1,)
            return torch.cat([draft_tokens[:i], token]), i
    bonus = torch.multinomial(target_probs[k], 1, generator=generator)          # (1,)
    return torch.cat([draft_tokens, bonus]), k
    ### END SOLUTION


def greedy_accept(draft_tokens: torch.Tensor, target_logits: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Verify k greedy draft tokens: keep those that equal the target's argmax.

    draft_tokens:  (k,) int64, k ≥ 0.
    target_logits: (k + 1, V) float32 or float64: row i scores the position of draft token
                   i; row k the position after all of them.
    The target's choice at row i is argmax(target_logits[i]) (ties go to the lowest id).
    n is the number of leading draft tokens equal to the target's choices; the emitted
    tokens are the target's choices at rows 0 … n: the n accepted drafts and then the
    target's own token (the correction at the first mismatch, or the bonus after k matches).
    Returns (tokens (n + 1,) int64, n a Python int in [0, k]).
    Raises ValueError when target_logits is not (k + 1, V) or draft_tokens not (k,).
    """
    ### BEGIN SOLUTION
    if draft_tokens.dim() != 1 or target_logits.dim() != 2 or target_logits.shape[0] != draft_tokens.shape[0] + 1:
        raise ValueError(f"greedy_accept: need draft_tokens (k,) and target_logits (k + 1, V), got "
                         f"{tuple(draft_tokens.shape)} and {tuple(target_logits.shape)}")
    choice = target_logits.argmax(dim=-1)                                  # (k + 1,)
    match = (choice[:-1] == draft_tokens).long()                           # (k,)
    n = int(match.cumprod(dim=0).sum())                                    # leading matches
    return choice[:n + 1].clone(), n
    ### END SOLUTION


# ---------------------------------------------------------------- the draft and the loop

def draft_propose(draft: nn.Module, context: torch.Tensor, k: int, temperature: float = 1.0,
                  generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Let the draft model propose k tokens after `context`, one call per token.

    draft:   a model (see the module docstring).
    context: (T,) int64, T ≥ 1, the text so far.
    k:       number of tokens to propose, k ≥ 1.
    Step i calls draft(sequence[None]) on the context plus the i tokens proposed so far (full
    recomputation, no cache), takes the logits of the LAST position and
        temperature > 0:  q_i = softmax(logits / temperature) (in the logits' dtype); the
                          token is torch.multinomial(q_i, 1, generator=generator);
        temperature == 0: the token is the argmax (ties go to the lowest id) and q_i is the
                          one-hot vector of that token (the limit of the tempered softmax).
    Returns (tokens (k,) int64, probs (k, V) in the logits' dtype: row i is q_i). The model
    runs as it is given (the caller sets eval mode and no_grad); context is not modified.
    """
    ### BEGIN SOLUTION
    seq = context
    tokens, probs = [], []
    for _ in range(k):
        logits = draft(seq[None])[0][0, -1]                                  # (V,)
        if temperature == 0:
            token = logits.argmax().reshape(1)                              # (1,)
            q = F.one_hot(token[0], logits.shape[-1]).to(logits.dtype)      # (V,)
        else:
            q = F.softmax(logits / temperature, dim=-1)                     # (V,)
            token = torch.multinomial(q, 1, generator=generator)             # (1,)
        tokens.append(token)
        probs.append(q)
        seq = torch.cat([seq, token])                                       # (T + i + 1,)
    return torch.cat(tokens), torch.stack(probs)
    ### END SOLUTION


def speculative_generate(target: nn.Module, draft: nn.Module, prompt: torch.Tensor, k: int, max_new: int,
                         temperature: float = 1.0,
                         generator: torch.Generator | None = None) -> tuple[torch.Tensor, int]:
    """Generate max_new tokens after `prompt` with speculative decoding.

    target, draft: models over the same vocabulary (see the module docstring); the caller
                   keeps T0 + max_new within both models' context length (no cropping).
    prompt:        (T0,) int64, T0 ≥ 1.
    k:             draft tokens per round, k ≥ 1.   max_new: tokens to generate, ≥ 0.
    temperature:   > 0 samples from softmax(logits / temperature) of the target; 0 is greedy.
    Each round, with r = max_new − (tokens generated so far):
      1. draft_propose(draft, text, min(k, r), temperature, generator) — min(k, r) draft calls;
      2. ONE target call on the text plus the drafts; its logits at the last
         min(k, r) + 1 positions score the drafts and the position after them;
      3. temperature > 0: speculative_accept(q, softmax(those logits / temperature), drafts,
         generator); temperature == 0: greedy_accept(drafts, those logits);
      4. append the emitted tokens, cut so that no more than max_new are generated.
    Rounds repeat until max_new tokens are generated. Randomness comes only from
    `generator`, in exactly this order of draws.
    Counting rule: target_calls is the number of times `target` was called — one per round,
    so between ceil(max_new / (k + 1)) and max_new; 0 when max_new = 0.
    With temperature 0 the output equals the target's own greedy continuation exactly.
    Runs under torch.no_grad with both models in eval mode; their previous train/eval modes
    are restored on return.
    Returns (tokens (T0 + max_new,) int64, starting with the prompt unchanged; target_calls
    a Python int).
    Raises ValueError when the prompt is not 1-D with T0 ≥ 1, k < 1, max_new < 0 or
    temperature < 0.
    """
    ### BEGIN SOLUTION
    if prompt.dim() != 1 or prompt.shape[0] < 1:
        raise ValueError(f"speculative_generate: prompt must be (T0,) with T0 ≥ 1, got shape {tuple(prompt.shape)}")
    if k < 1 or max_new < 0 or temperature < 0:
        raise ValueError(f"speculative_generate: need k ≥ 1, max_new ≥ 0 and temperature ≥ 0, "
                         f"got k={k}, max_new={max_new}, temperature={temperature}")
    modes = (target.training, draft.training)
    target.eval()
    draft.eval()
    out, calls = prompt.clone(), 0
    try:
        with torch.no_grad():
            while out.shape[0] - prompt.shape[0] < max_new:
                remaining = max_new - (out.shape[0] - prompt.shape[0])
                m = min(k, remaining)
                drafts, q = draft_propose(draft, out, m, temperature, generator)        # (m,), (m, V)
                logits = target(torch.cat([out, drafts])[None])[0][0, -(m + 1):]       # (m + 1, V)
                calls += 1
                if temperature == 0:
                    new, _ = greedy_accept(drafts, logits)
                else:
                    new, _ = speculative_accept(q, F.softmax(logits / temperature, dim=-1), drafts, generator)
                out = torch.cat([out, new[:remaining]])
    finally:
        target.train(modes[0])
        draft.train(modes[1])
    return out, calls
    ### END SOLUTION


# ---------------------------------------------------------------- how much it saves

def expected_tokens_per_call(alpha: float, k: int) -> float:
    """The expected number of tokens one target call emits when each draft token is accepted
    independently with probability alpha.

    alpha: float in [0, 1].   k: int ≥ 0, draft tokens per round.
    A round emits the accepted prefix plus one token, so the expectation is
        Σ_{i=0}^{k} alpha^i = (1 − alpha^(k+1)) / (1 − alpha),   and k + 1 at alpha = 1.
    Returns a Python float: exactly k + 1 at alpha = 1, and within a relative 1e-6 of the
    exact value for every other alpha in [0, 1 − 1e-9].
    Raises ValueError when alpha is outside [0, 1] or k < 0.
    """
    ### BEGIN SOLUTION
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"expected_tokens_per_call: alpha must be in [0, 1], got {alpha}")
    if k < 0:
        raise ValueError(f"expected_tokens_per_call: k must be ≥ 0, got {k}")
    if alpha == 1.0:
        return float(k + 1)
    return (1.0 - alpha ** (k + 1)) / (1.0 - alpha)
    ### END SOLUTION
