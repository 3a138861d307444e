"""Topic 07: a mixture-of-experts (MoE) feed-forward layer.

A dense Transformer block sends every token through one MLP. A mixture-of-experts layer
holds E MLPs (the experts) and a small router that sends each token to k of them; the
token's output is the weighted sum of those k experts' outputs. The parameters grow with E,
the compute per token only with k.

Shapes: N tokens (all leading axes of an input flattened: N = B·T for a (B, T, C) batch),
C = d_model, E = n_experts, k = experts per token, H = d_hidden.

    SwiGLUExpert          given: one expert, w2(silu(w1 x) * w3 x), no biases
    MoEOutput             given: the named tuple MoELayer.forward returns
    TopKRouter            logits, softmax probabilities, top-k selection (steered by the
                          auxiliary-loss-free balancing bias), mixture weights; update_bias
    load_balancing_loss   Switch Transformer's auxiliary loss E · Σ_i f_i · P_i
    router_z_loss         ST-MoE's z-loss, the mean of logsumexp(logits)²
    expert_capacity       slots per expert for a capacity factor
    MoELayer              routing, capacity with token dropping, vectorised dispatch,
                          optional shared expert

Attribute names are part of the contract (reference weights are loaded by name).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn


class SwiGLUExpert(nn.Module):
    """One expert (given): LLaMA's SwiGLU feed-forward without biases,
    w2(silu(w1(x)) * w3(x)), mapping (..., d_model) to (..., d_model)."""

    def __init__(self, d_model: int, d_hidden: int):
        super().__init__()
        self.w1 = nn.Linear(d_model, d_hidden, bias=False)   # gate projection
        self.w3 = nn.Linear(d_model, d_hidden, bias=False)   # up projection
        self.w2 = nn.Linear(d_hidden, d_model, bias=False)   # down projection

    def forward(self, x: torch.Tensor) -> torch.Tensor:       # (n, C) -> (n, C)
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class MoEOutput(NamedTuple):
    """What MoELayer.forward returns (given).

    output         (..., C) the layer's output, the shape and dtype of its input
    router_logits  (N, E)   the router's logits, for the auxiliary losses
    expert_indices (N, k)   int64: the experts each token chose, for the losses and update_bias
    kept           (N, k)   bool: False where an assignment was dropped for lack of capacity
    """

    output: torch.Tensor
    router_logits: torch.Tensor
    expert_indices: torch.Tensor
    kept: torch.Tensor


class TopKRouter(nn.Module):
    """Chooses k of E experts for every token, and the weights that mix their outputs."""

    def __init__(self, d_model: int, n_experts: int, k: int, normalize: bool = True):
        """Build the router.

        Attributes (names are part of the contract):
            gate         nn.Linear(d_model, n_experts, bias=False): logits = gate(x)
            expert_bias  a buffer (register_buffer) of shape (E,), float32 zeros: the
                         auxiliary-loss-free balancing bias. A buffer, not a Parameter: it is
                         saved in the state dict and follows .to() / .double(), but it gets no
                         gradient; only `update_bias` changes it.
            n_experts, k, normalize   the arguments, as given
        Raises ValueError when n_experts < 1, or when k is not in 1 … n_experts.
        """
        super().__init__()
        ### BEGIN SOLUTION
        if not 1 <= k <= n_experts:                     # also rejects every n_experts < 1
            raise ValueError(f"k must be in 1 … n_experts = {n_experts} (and n_experts ≥ 1), got k = {k}")
        self.n_experts, self.k, self.normalize = n_experts, k, normalize
        self.gate = nn.Linear(d_model, n_experts, bias=False)
        self.register_buffer("expert_bias", torch.zeros(n_experts))
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Route every token of `x`.

        x: (..., d_model) float (the module's dtype); any number of leading axes, each
           position of them one token.
        Returns (weights, indices, logits):
            logits   (..., E)  gate(x)
            indices  (..., k)  int64: the k experts with the largest selection scores
                     `probs + expert_bias`, where probs = softmax(logits, dim=-1), in
                     decreasing order of score; equal scores go to the LOWER expert index
                     first (so an all-equal row chooses 0, 1, …, k−1).
            weights  (..., k)  x's dtype: the mixture weights of the chosen experts, in the
                     order of `indices`, computed from probs alone (expert_bias steers the
                     selection but never enters the weights):
                       normalize=True:   probs[chosen] / sum(probs[chosen])  (sum to 1)
                       normalize=False:  probs[chosen]                       (raw probabilities)
        Gradients flow from the weights into logits, gate and x; the selection itself is
        discrete and carries none.
        """
        # Hint: torch.topk does not promise which of several equal values comes first;
        # torch.sort(..., descending=True, stable=True) keeps equal values in index order.
        ### BEGIN SOLUTION
        logits = self.gate(x)                                                  # (..., E)
        probs = logits.softmax(dim=-1)                                         # (..., E)
        scores = (probs + self.expert_bias).detach()                           # (..., E) selection only
        order = torch.sort(scores, dim=-1, descending=True, stable=True).indices
        indices = order[..., :self.k]                                          # (..., k)
        chosen = probs.gather(-1, indices)                                     # (..., k)
        if self.normalize:
            weights = chosen / chosen.sum(dim=-1, keepdim=True)                # (..., k)
        else:
            weights = chosen
        return weights, indices, logits
        ### END SOLUTION

    def update_bias(self, indices: torch.Tensor, rate: float) -> torch.Tensor:
        """One step of auxiliary-loss-free load balancing (DeepSeek-V3), after a batch.

        indices: (..., k) int64 expert ids in 0 … E−1, as returned by `forward` for a batch.
        rate:    the step size γ ≥ 0.
        load[i] = the number of entries of `indices` equal to i (every rank counts), and
            expert_bias[i] += rate · sign(mean(load) − load[i])
        in place and without autograd: the bias of an expert below the mean load rises by
        `rate`, above it falls by `rate`, exactly at the mean it stays.
        Returns load: (E,) int64.
        Raises ValueError when rate < 0.
        """
        ### BEGIN SOLUTION
        if rate < 0:
            raise ValueError(f"rate must be ≥ 0, got {rate}")
        load = torch.bincount(indices.reshape(-1), minlength=self.n_experts)   # (E,)
        mean = indices.numel() / self.n_experts
        with torch.no_grad():
            self.expert_bias += rate * torch.sign(mean - load.to(self.expert_bias.dtype))
        return load
        ### END SOLUTION


def load_balancing_loss(router_logits: torch.Tensor, expert_indices: torch.Tensor) -> torch.Tensor:
    """The Switch Transformer's auxiliary load-balancing loss, for top-k routing.

    router_logits:  (..., E) float, the router's logits.
    expert_indices: (..., k) int64 in 0 … E−1, the chosen experts; the same leading shape
                    as router_logits. The leading positions are the N tokens.
    With probs = softmax(router_logits, dim=-1):
        P_i = the mean of probs[..., i] over the N tokens    (the router's average belief)
        f_i = (number of entries of expert_indices equal to i) / (N · k)
                                                             (the share of the N·k assignments)
    returns E · Σ_i f_i · P_i, a 0-d tensor of router_logits' dtype. f is a count and
    carries no gradient; the gradient reaches router_logits through P.
    The loss is exactly 1 when the router is uniform (every P_i = 1/E) or the assignments are
    (every f_i = 1/E), and E when every token sends its one choice (k = 1) to the same expert
    with probability 1.
    Raises ValueError when the leading shapes of the two arguments differ.
    """
    ### BEGIN SOLUTION
    if router_logits.shape[:-1] != expert_indices.shape[:-1]:
        raise ValueError(f"router_logits {tuple(router_logits.shape)} and expert_indices "
                         f"{tuple(expert_indices.shape)} must have the same leading shape")
    E = router_logits.shape[-1]
    P = router_logits.softmax(dim=-1).reshape(-1, E).mean(dim=0)              # (E,)
    counts = torch.bincount(expert_indices.reshape(-1), minlength=E)          # (E,)
    f = counts.to(P.dtype) / expert_indices.numel()                           # (E,)
    return E * (f * P).sum()
    ### END SOLUTION


def router_z_loss(router_logits: torch.Tensor) -> torch.Tensor:
    """ST-MoE's router z-loss: keeps the router's logits small.

    router_logits: (..., E) float; the leading positions are the N tokens.
    Returns the mean over the N tokens of logsumexp(router_logits, dim=-1)², a 0-d tensor of
    router_logits' dtype. Finite and accurate for logits of any finite size (|logits| of 1e3
    included, where exp overflows), with its gradient.
    """
    ### BEGIN SOLUTION
    z = torch.logsumexp(router_logits, dim=-1)                                # (...)
    return (z ** 2).mean()
    ### END SOLUTION


def expert_capacity(n_tokens: int, n_experts: int, k: int, capacity_factor: float) -> int:
    """How many assignments one expert accepts in a batch of `n_tokens` tokens.

    Returns math.ceil(capacity_factor * n_tokens * k / n_experts), a Python int (at least 1
    for the allowed arguments): a factor of 1.0 gives every expert exactly its fair share of
    the N·k assignments, rounded up.
    Raises ValueError when capacity_factor ≤ 0 or n_tokens < 1.
    """
    ### BEGIN SOLUTION
    if capacity_factor <= 0:
        raise ValueError(f"capacity_factor must be > 0, got {capacity_factor}")
    if n_tokens < 1:
        raise ValueError(f"n_tokens must be at least 1, got {n_tokens}")
    return math.ceil(capacity_factor * n_tokens * k / n_experts)
    ### END SOLUTION


class MoELayer(nn.Module):
    """A mixture-of-experts feed-forward layer: a drop-in replacement for a block's MLP."""

    def __init__(self, d_model: int, n_experts: int, k: int, d_hidden: int,
                 capacity_factor: float | None = None, shared_expert: bool = False, normalize: bool = True):
        """Build the layer.

        Attributes (names are part of the contract):
            router           TopKRouter(d_model, n_experts, k, normalize)
            experts          nn.ModuleList of n_experts SwiGLUExpert(d_model, d_hidden)
            shared           SwiGLUExpert(d_model, d_hidden) when shared_expert, else None:
                             an expert every token uses, with weight 1 (DeepSeekMoE)
            capacity_factor  as given; None means no capacity limit (no token is dropped)
        Raises ValueError when capacity_factor is not None and ≤ 0, and TopKRouter's errors.
        """
        super().__init__()
        ### BEGIN SOLUTION
        if capacity_factor is not None and capacity_factor <= 0:
            raise ValueError(f"capacity_factor must be > 0 or None, got {capacity_factor}")
        self.capacity_factor = capacity_factor
        self.router = TopKRouter(d_model, n_experts, k, normalize)
        self.experts = nn.ModuleList([SwiGLUExpert(d_model, d_hidden) for _ in range(n_experts)])
        self.shared = SwiGLUExpert(d_model, d_hidden) if shared_expert else None
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> MoEOutput:
        """Route, drop what does not fit, dispatch, combine.

        x: (..., d_model) float in the module's dtype (float32, or float64 after .double());
           any leading shape with at least one token; need not be contiguous.
        tokens = x viewed as (N, d_model); weights, indices, logits = self.router(tokens).
        kept (N, k) bool: all True when capacity_factor is None. Otherwise every expert accepts
            at most capacity = expert_capacity(N, E, k, capacity_factor) assignments, served
            in this order: first every token's first choice (indices[:, 0], tokens in order
            0 … N−1), then every token's second choice, and so on. An assignment that finds
            its expert full is dropped (kept False).
        output (x's shape and dtype):
            output[t] = Σ_j kept[t, j] · weights[t, j] · experts[indices[t, j]](tokens[t])
                        (+ shared(tokens[t]) when there is a shared expert)
            A dropped assignment contributes nothing, and the token's other weights are NOT
            renormalised; a token whose assignments are all dropped gets 0 (the shared
            expert's output alone, when there is one): the block's residual connection carries
            it on unchanged.
        Returns MoEOutput(output, router_logits=logits, expert_indices=indices, kept=kept).
        Vectorised dispatch (no Python loop over tokens): each expert is called at most once
        per forward, on a (n_e, d_model) tensor of the rows of the tokens whose kept
        assignments chose it (in any order); an expert that receives no token may be
        skipped. The shared expert is called once, on all N tokens.
        """
        # Hint: a token's slot in its expert's queue is a running count: lay the assignments
        # out rank by rank, (k, N) -> (k·N,), one-hot them to (k·N, E), and take a cumsum.
        ### BEGIN SOLUTION
        shape = x.shape
        tokens = x.reshape(-1, shape[-1])                                      # (N, C)
        weights, indices, logits = self.router(tokens)                         # (N, k), (N, k), (N, E)
        N, k = indices.shape
        E = len(self.experts)
        kept = torch.ones_like(indices, dtype=torch.bool)                      # (N, k)
        if self.capacity_factor is not None:
            capacity = expert_capacity(N, E, k, self.capacity_factor)
            queue = F.one_hot(indices.t().reshape(-1), E)                      # (k·N, E) rank-major
            slot = (queue.cumsum(dim=0) * queue).sum(dim=-1) - 1               # (k·N,) place in its queue
            kept = (slot < capacity).view(k, N).t()                            # (N, k)
        out = torch.zeros_like(tokens)                                         # (N, C)
        for e, expert in enumerate(self.experts):
            token_ids, rank = torch.where((indices == e) & kept)               # (n_e,), (n_e,)
            if token_ids.numel() == 0:
                continue
            y = expert(tokens[token_ids])                                      # (n_e, C)
            out = out.index_add(0, token_ids, y * weights[token_ids, rank, None])
        if self.shared is not None:
            out = out + self.shared(tokens)                                    # (N, C)
        return MoEOutput(out.view(shape), logits, indices, kept)
        ### END SOLUTION
