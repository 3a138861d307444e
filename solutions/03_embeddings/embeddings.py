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
        ### BEGIN SOLUTION
        super().__init__()
        self.num_embeddings = num_embeddings
        self.dim = dim
        self.weight = nn.Parameter(torch.randn(num_embeddings, dim))    # (V, C) ~ N(0, 1)
        ### END SOLUTION

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        # Hint: advanced indexing `weight[ids]` works for ids of any shape, and autograd
        # already sums the gradients of repeated rows.
        ### BEGIN SOLUTION
        if ids.numel() > 0 and (int(ids.min()) < 0 or int(ids.max()) >= self.num_embeddings):
            raise IndexError(
                f"Embedding: token ids must lie in [0, {self.num_embeddings}), got values from "
                f"{int(ids.min())} to {int(ids.max())}; check the tokenizer's vocabulary size")
        return self.weight[ids]                                          # (*ids.shape, C)
        ### END SOLUTION


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
    ### BEGIN SOLUTION
    if dim < 2 or dim % 2 != 0:
        raise ValueError(
            f"sinusoidal_positions: dim must be even and at least 2 (one sin and one cos column "
            f"per frequency), got dim={dim}; choose an even model width")
    if seq_len < 0:
        raise ValueError(f"sinusoidal_positions: seq_len must be >= 0, got {seq_len}")
    position = torch.arange(seq_len, dtype=torch.float64)[:, None]       # (T, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)                 # (C/2,) = 2i
    omega = 1.0 / base ** (two_i / dim)                                  # (C/2,) ω_i
    angle = position * omega                                             # (T, C/2)
    pe = torch.empty(seq_len, dim, dtype=torch.float64)                  # (T, C)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()
    ### END SOLUTION


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
        ### BEGIN SOLUTION
        super().__init__()
        self.max_len = max_len
        self.weight = nn.Parameter(torch.randn(max_len, dim))            # (L, C) ~ N(0, 1)
        ### END SOLUTION

    def forward(self, seq_len: int, start: int = 0) -> torch.Tensor:
        ### BEGIN SOLUTION
        if start < 0 or start + seq_len > self.max_len:
            raise ValueError(
                f"LearnedPositions: positions {start}..{start + seq_len - 1} requested, but the table "
                f"holds positions 0..{self.max_len - 1}; crop the input to at most {self.max_len} tokens")
        return self.weight[start:start + seq_len]                        # (T, C)
        ### END SOLUTION


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
        ### BEGIN SOLUTION
        super().__init__()
        self.tok = Embedding(vocab_size, dim)
        self.pos = LearnedPositions(max_len, dim)
        ### END SOLUTION

    def forward(self, ids: torch.Tensor, start: int = 0) -> torch.Tensor:
        ### BEGIN SOLUTION
        T = ids.shape[-1]
        return self.tok(ids) + self.pos(T, start)                        # (..., T, C) + (T, C)
        ### END SOLUTION


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
    ### BEGIN SOLUTION
    if tuple(lm_head.weight.shape) != tuple(embedding.weight.shape):
        raise ValueError(
            f"tie_weights: lm_head.weight has shape {tuple(lm_head.weight.shape)} but the embedding's "
            f"weight has shape {tuple(embedding.weight.shape)}; build the head as "
            f"nn.Linear(dim, vocab_size) so both are (vocab_size, dim)")
    lm_head.weight = embedding.weight
    ### END SOLUTION


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
    ### BEGIN SOLUTION
    tables = (nn.Embedding, Embedding, LearnedPositions)
    embedding_ids = {id(p) for m in model.modules() if isinstance(m, tables)
                     for p in m.parameters(recurse=False)}
    decay, no_decay = [], []
    for p in model.parameters():                                         # each shared Parameter once
        if not p.requires_grad:
            continue
        if p.ndim >= 2 and id(p) not in embedding_ids:
            decay.append(p)
        else:
            no_decay.append(p)
    return [{"params": decay, "weight_decay": weight_decay},
            {"params": no_decay, "weight_decay": 0.0}]
    ### END SOLUTION
