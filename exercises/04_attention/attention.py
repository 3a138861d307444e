"""Topic 04: attention and the Transformer block, written from elementary tensor operations.

Shapes: B batch, T sequence length, C = d_model, H heads, D = C // H head size.

Mask convention (the one of torch.nn.functional.scaled_dot_product_attention):
- a bool mask is True where attention is ALLOWED and False where it is forbidden;
- a floating mask is ADDED to the attention scores (0 = allowed, -inf = forbidden, other
  values bias the scores).
A query row in which every key is forbidden attends to nothing: its softmax weights are all
zero and its attention output is zero (never NaN).

Everything here must be written from scratch: the graders forbid the PyTorch built-ins that
compute what a unit computes (torch.softmax, F.scaled_dot_product_attention,
nn.MultiheadAttention, F.layer_norm, F.gelu ...) while the unit runs. Use your own units
instead (attention calls your `softmax`, the block calls your layers).
"""

from __future__ import annotations

import math

import torch
from torch import nn


def softmax(x: torch.Tensor, dim: int = -1) -> torch.Tensor:
    """Numerically stable softmax of `x` along `dim`.

    Args:
        x: floating tensor of any shape (float32 or float64) with at least one entry along
            `dim` (other axes may be empty). Entries may be -inf (a masked logit); they must
            not be NaN or +inf.
        dim: the axis to normalise over (negative values count from the end).

    Returns:
        A tensor of the same shape and dtype as `x`: exp(x) / sum(exp(x)) along `dim`, so every
        slice along `dim` is non-negative and sums to 1.

    Conventions:
        - Stable for any finite logits (1e4 or -1e4 included): subtract each slice's own
          maximum before exponentiating; softmax is unchanged by that shift.
        - An entry of -inf gets probability exactly 0.
        - A slice whose entries are ALL -inf (a fully masked row) has no distribution; this
          function returns all zeros for it, not NaN (torch.softmax returns NaN there).
    """
    # Hint: exp(x - m) / sum(exp(x - m)) with m the max of the slice (keepdim=True helps).
    # Where m is -inf (all entries -inf), x - m is NaN: shift such slices by 0 instead.
    # TODO(softmax): your code here.
    raise NotImplementedError("TODO 04_attention: softmax")


def causal_mask(seq_len: int, device: torch.device | str | None = None) -> torch.Tensor:
    """The causal attention mask for a sequence of `seq_len` tokens.

    Returns:
        A bool tensor of shape (seq_len, seq_len) whose entry [i, j] is True exactly when
        query position i may attend to key position j, i.e. when j <= i: True on and below
        the diagonal (a token sees itself and the past), False above it (the future).

    Raises:
        ValueError: if seq_len < 1.
    """
    # TODO(causal_mask): your code here.
    raise NotImplementedError("TODO 04_attention: causal_mask")


def scaled_dot_product_attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    mask: torch.Tensor | None = None,
    causal: bool = False,
) -> torch.Tensor:
    """softmax(q k^T / sqrt(d_k) + mask) v, without dropout.

    Args:
        q: queries, shape (..., T_q, d_k).
        k: keys, shape (..., T_k, d_k). The leading "..." (batch, heads) of q, k, v must be
            equal or broadcastable.
        v: values, shape (..., T_k, d_v).
        mask: optional, broadcastable to (..., T_q, T_k). bool: True = may attend, False =
            may not. Floating: added to the scaled scores (after the 1/sqrt(d_k) scaling),
            cast to q's dtype; -inf forbids.
        causal: if True, query i may attend only to keys j <= i (top-left aligned like
            PyTorch's `is_causal`, also when T_q != T_k). With a mask as well, both apply.

    Returns:
        (..., T_q, d_v), q's dtype. d_k is the size of q's last axis. Weights are the softmax
        over the KEY axis (the last one), so each query's weights sum to 1. A query that may
        attend to no key gets an output of zeros.

    Raises:
        ValueError: if q and k differ in the last axis, k and v differ in the key axis, or the
            mask is neither bool nor floating.
    """
    # Use your `softmax` (torch's softmax is forbidden here) and your `causal_mask`.
    # TODO(scaled_dot_product_attention): your code here.
    raise NotImplementedError("TODO 04_attention: scaled_dot_product_attention")


class MultiHeadAttention(nn.Module):
    """Multi-head self-attention (Vaswani et al. 2017, section 3.2.2), without dropout.

    Attributes (graders set their weights, so keep these names and shapes):
        q_proj, k_proj, v_proj, out_proj: nn.Linear(d_model, d_model, bias=bias).
        n_heads: int.

    Head layout: head h uses features [h*D, (h+1)*D) of the projected q, k, v (D = d_model //
    n_heads), and the heads' outputs are concatenated in head order, head h again at features
    [h*D, (h+1)*D), before out_proj. This is the layout of torch.nn.MultiheadAttention, so a
    module with weights copied from it (in_proj_weight split into q, k, v) computes the same.

    Dtype: computes in the dtype of x and of its parameters (float32, or float64 after
    `.double()`).

    Raises:
        ValueError: if d_model is not divisible by n_heads.
    """

    def __init__(self, d_model: int, n_heads: int, bias: bool = True):
        # Call super().__init__() first, then create the attributes named in the class docstring.
        # TODO(MultiHeadAttention.__init__): your code here.
        raise NotImplementedError("TODO 04_attention: MultiHeadAttention.__init__")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C).

        mask: optional, broadcastable to (B, H, T, T), same convention as
        `scaled_dot_product_attention` (e.g. (T, T), or (B, 1, 1, T) to hide padded keys).
        causal: if True, position i attends only to positions j <= i.
        Each head attends with scale 1/sqrt(D), D the head size.
        """
        # Split: (B, T, C) -> (B, T, H, D) -> (B, H, T, D). Merge: the reverse.
        # TODO(MultiHeadAttention.forward): your code here.
        raise NotImplementedError("TODO 04_attention: MultiHeadAttention.forward")


class LayerNorm(nn.Module):
    """Layer normalisation over the last axis (Ba et al. 2016), like torch.nn.LayerNorm(dim).

    y = (x - mean) / sqrt(var + eps) * weight + bias, with mean and var taken over the last
    axis and var the BIASED variance (divide by dim, not dim - 1); eps sits inside the sqrt.

    Attributes: weight (dim,) initialised to ones, bias (dim,) initialised to zeros (both
    nn.Parameter), eps (float).
    """

    def __init__(self, dim: int, eps: float = 1e-5):
        # Call super().__init__() first, then create the attributes named in the class docstring.
        # TODO(LayerNorm.__init__): your code here.
        raise NotImplementedError("TODO 04_attention: LayerNorm.__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., dim) -> (..., dim), same dtype."""
        # TODO(LayerNorm.forward): your code here.
        raise NotImplementedError("TODO 04_attention: LayerNorm.forward")


def gelu(x: torch.Tensor) -> torch.Tensor:
    """The exact GELU (Hendrycks & Gimpel 2016): x * Phi(x) = 0.5 * x * (1 + erf(x / sqrt(2))).

    Phi is the standard normal CDF. This is torch.nn.functional.gelu with its default
    approximate="none"; the tanh approximation (GPT-2's) is a different function and is
    graded as wrong here. Elementwise; same shape and dtype as x.
    """
    # TODO(gelu): your code here.
    raise NotImplementedError("TODO 04_attention: gelu")


class FeedForward(nn.Module):
    """Position-wise feed-forward network: down(gelu(up(x))).

    Attributes: up = nn.Linear(d_model, d_hidden), down = nn.Linear(d_hidden, d_model), both
    with bias; the activation is the exact `gelu` above. Computes in the dtype of x and of
    its parameters (float32, or float64 after `.double()`).
    """

    def __init__(self, d_model: int, d_hidden: int):
        # Call super().__init__() first, then create the attributes named in the class docstring.
        # TODO(FeedForward.__init__): your code here.
        raise NotImplementedError("TODO 04_attention: FeedForward.__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: (..., d_model) -> (..., d_model)."""
        # TODO(FeedForward.forward): your code here.
        raise NotImplementedError("TODO 04_attention: FeedForward.forward")


class TransformerBlock(nn.Module):
    """One Transformer block: attention and feed-forward sublayers, each with a residual.

    pre_norm=True (GPT-2 and later):  x = x + attn(ln1(x));  x = x + ffn(ln2(x))
    pre_norm=False (the original 2017 post-norm):  x = ln1(x + attn(x));  x = ln2(x + ffn(x))

    Attributes: ln1, ln2 = LayerNorm(d_model); attn = MultiHeadAttention(d_model, n_heads)
    (with bias); ffn = FeedForward(d_model, d_hidden); pre_norm (bool).
    With the attention's out_proj and the ffn's down projection zeroed, a pre-norm block is
    the identity. Computes in the dtype of x and of its parameters (float32, or float64 after
    `.double()`).
    """

    def __init__(self, d_model: int, n_heads: int, d_hidden: int, pre_norm: bool = True):
        # Call super().__init__() first, then create the attributes named in the class docstring.
        # TODO(TransformerBlock.__init__): your code here.
        raise NotImplementedError("TODO 04_attention: TransformerBlock.__init__")

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, causal: bool = False) -> torch.Tensor:
        """x: (B, T, C) -> (B, T, C); mask and causal are passed to the attention."""
        # TODO(TransformerBlock.forward): your code here.
        raise NotImplementedError("TODO 04_attention: TransformerBlock.forward")
