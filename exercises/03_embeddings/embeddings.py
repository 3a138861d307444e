"""Embeddings and positions: how token ids and their places in a sequence become vectors.

A language model reads integers. Its first layer turns each token id into a learned vector,
a row of a table. Attention on its own does not see order (shuffle the tokens and every
token gets the same output, shuffled), so the model also adds a vector that says where each
token stands: a fixed pattern of sinusoids ("Attention Is All You Need", Vaswani et al.,
2017) or a second learned table (GPT-2). This file builds both tables, the sum that a GPT
feeds to its first block, weight tying between the input table and the output head (Press &
Wolf, 2017), and the optimizer parameter groups that keep weight decay off embeddings,
biases and norms.

Shapes: V vocabulary size, L the longest sequence a model accepts, C = dim (model width),
T sequence length, B batch.
"""

from __future__ import annotations

import torch
from torch import nn


class Embedding(nn.Module):
    """A lookup table: row `i` of `weight` is the vector of token id `i`.

    Args:
        num_embeddings: V, the number of rows (the vocabulary size).
        dim: C, the length of each vector.

    Attributes:
        weight: nn.Parameter of shape (V, C), float32, drawn i.i.d. from N(0, 1), the same
            initialisation as torch.nn.Embedding. (GPT-style models re-initialise it with a
            smaller standard deviation; the table itself does not.)

    forward(ids) -> out:
        ids: an integer tensor (torch.long) of any shape, every value in [0, V).
        out: float32 tensor of shape (*ids.shape, C) with out[..., :] = weight[ids[...], :].
        The lookup equals one_hot(ids, V) @ weight, so the gradient that reaches row i of
        `weight` is the SUM of the upstream gradients at every position where ids == i:
        a token that occurs several times accumulates one contribution per occurrence.
        Raises IndexError when an id is negative or ≥ V: Python indexing would silently wrap
        a negative id around to the end of the table, which hides bugs in the caller.

    From scratch: torch.nn.functional.embedding (and so torch.nn.Embedding) may not be used;
    indexing, index_select or a one-hot matrix product are all fine.
    """

    def __init__(self, num_embeddings: int, dim: int):
        # TODO(Embedding.__init__): your code here.
        raise NotImplementedError("TODO 03_embeddings: Embedding.__init__")

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # Hint: advanced indexing `weight[ids]` works for ids of any shape, and autograd
        # already sums the gradients of repeated rows.
        # TODO(Embedding.forward): your code here.
        raise NotImplementedError("TODO 03_embeddings: Embedding.forward")


def sinusoidal_positions(seq_len: int, dim: int, base: float = 10000.0) -> torch.Tensor:
    """The fixed sinusoidal position encodings of "Attention Is All You Need" (§3.5).

    For position p in [0, seq_len) and pair index i in [0, dim/2):

        ω_i         = 1 / base^(2i / dim)
        PE[p, 2i]   = sin(p · ω_i)
        PE[p, 2i+1] = cos(p · ω_i)

    Sine and cosine are interleaved: even columns hold sines, odd columns cosines, and
    columns 2i and 2i+1 share the frequency ω_i, which falls geometrically from ω_0 = 1
    (wavelength 2π) to ω_{dim/2-1} = base^(-(dim-2)/dim) (wavelength close to 2π·base).
    Because sin and cos of one frequency form a pair, moving k positions is a rotation
    of every pair by the angle k·ω_i: (PE[p+k, 2i], PE[p+k, 2i+1]) = R(k·ω_i) applied to
    (PE[p, 2i], PE[p, 2i+1]), whatever p is.

    Args:
        seq_len: T ≥ 0, the number of positions (rows); 0 gives an empty (0, dim) tensor.
        dim: C, the width; must be even and ≥ 2 (each frequency needs a sin and a cos column).
        base: the wavelength scale, 10000 in the paper.

    Returns:
        float32 tensor of shape (seq_len, dim). Computing the angles in float64 and casting
        at the end is allowed (and slightly more accurate); so is float32 throughout.

    Raises:
        ValueError: dim is odd or < 2, or seq_len is negative.
    """
    # TODO(sinusoidal_positions): your code here.
    raise NotImplementedError("TODO 03_embeddings: sinusoidal_positions")


class LearnedPositions(nn.Module):
    """One learned vector per position, as in GPT-2 (its `wpe` table).

    Args:
        max_len: L, the number of positions the table holds (the model's context length).
        dim: C, the length of each vector.

    Attributes:
        weight: nn.Parameter of shape (L, C), float32, drawn i.i.d. from N(0, 1) like Embedding.

    forward(seq_len, start=0) -> (seq_len, C):
        The vectors of positions start, start+1, …, start+seq_len-1, i.e.
        weight[start : start + seq_len]. `start` lets a caller continue a sequence (e.g.
        when generating with a cache); the rows are shared by every sequence of a batch.
        Raises ValueError when start < 0 or start + seq_len > L: the table has no vector
        for those positions, so crop the context to the last L tokens instead.
    """

    def __init__(self, max_len: int, dim: int):
        # TODO(LearnedPositions.__init__): your code here.
        raise NotImplementedError("TODO 03_embeddings: LearnedPositions.__init__")

    def forward(self, seq_len: int, start: int = 0) -> torch.Tensor:
        # TODO(LearnedPositions.forward): your code here.
        raise NotImplementedError("TODO 03_embeddings: LearnedPositions.forward")


class TokenAndPosition(nn.Module):
    """The input layer of a GPT: token embedding plus learned position embedding.

    Args:
        vocab_size: V.  max_len: L.  dim: C.

    Submodules (graders use these names):
        tok: Embedding(vocab_size, dim), the token table.
        pos: LearnedPositions(max_len, dim), the position table.

    forward(ids, start=0) -> out:
        ids: integer tensor of shape (..., T): the LAST axis is the sequence; any leading
            axes (usually a batch axis B) share the same positions.
        out: float32 tensor of shape (..., T, C),
            out[..., t, :] = tok.weight[ids[..., t]] + pos.weight[start + t].
        A plain sum: no scaling by sqrt(C) (that belongs to the original Transformer's
        sinusoidal setup, not to GPT), no dropout. Errors of tok and pos pass through
        (IndexError for a bad id, ValueError for a sequence longer than L).
    """

    def __init__(self, vocab_size: int, max_len: int, dim: int):
        # TODO(TokenAndPosition.__init__): your code here.
        raise NotImplementedError("TODO 03_embeddings: TokenAndPosition.__init__")

    def forward(self, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        # TODO(TokenAndPosition.forward): your code here.
        raise NotImplementedError("TODO 03_embeddings: TokenAndPosition.forward")


def tie_weights(embedding: nn.Module, lm_head: nn.Linear) -> None:
    """Make the output head use the input embedding's table (weight tying).

    The head computes logits = h @ lm_head.weight.T with lm_head.weight of shape (V, C):
    the same shape as embedding.weight, one row per token. Tying uses one table for both.

    Args:
        embedding: a module with a `weight` Parameter of shape (V, C) (this file's
            Embedding or torch.nn.Embedding).
        lm_head: a torch.nn.Linear(C, V), whose weight has shape (V, C).

    After the call, `lm_head.weight is embedding.weight`: the very same Parameter object,
    not a copy. Both uses train that one tensor (its gradient is the sum of both
    contributions), and model.parameters() lists it once, so the model has V·C fewer
    parameters. The embedding keeps its Parameter and its values; the head's old weight
    is dropped; a bias of the head, if it has one, stays as it is. Returns None.

    Raises:
        ValueError: lm_head.weight and embedding.weight have different shapes.
    """
    # TODO(tie_weights): your code here.
    raise NotImplementedError("TODO 03_embeddings: tie_weights")


def param_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Split a model's parameters into two optimizer groups: with and without weight decay.

    The rule. A parameter is decayed exactly when
      * it has ndim ≥ 2 (the matrices of Linear layers, convolution kernels, any other
        weight matrix), and
      * it is not an embedding table: not the weight of a torch.nn.Embedding, nor of this
        file's Embedding or LearnedPositions, wherever that module sits in the model.
    Everything else is not decayed: parameters with ndim < 2 (biases, the scales and
    shifts of LayerNorm/RMSNorm, scalars) and embedding tables. Decay pulls weights
    towards zero; for a bias or a norm's scale that is a constraint with no benefit, and
    an embedding row is updated only when its token occurs, so decay would shrink rare
    tokens for nothing. A tied LM head shares its Parameter with the embedding, so that
    Parameter is an embedding table and is not decayed.

    Every trainable parameter (requires_grad=True) appears in exactly one group, exactly
    once, even when several modules share it; frozen parameters (requires_grad=False)
    appear in neither. Within each group, parameters keep the order of model.parameters().

    Returns:
        [{"params": [decayed parameters], "weight_decay": weight_decay},
         {"params": [other parameters], "weight_decay": 0.0}]
        — always both groups (a list may be empty), ready for torch.optim.AdamW(groups, lr=…).
    """
    # TODO(param_groups): your code here.
    raise NotImplementedError("TODO 03_embeddings: param_groups")
