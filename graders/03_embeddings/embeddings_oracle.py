"""Oracles and guards shared by the 03_embeddings graders (instructor code, not a test).

- `FORBIDDEN`, `HINT`: the PyTorch functions Embedding.forward re-implements (it may not call
  them) and what to use instead, for `llmlab.testing.guard`;
- `one_hot_lookup`: the lookup written as one_hot(ids) @ weight, an oracle independent of
  indexing whose gradient autograd derives on its own (a row receives the SUM of the upstream
  gradients at the positions of its id);
- `embedding_with`: the student's Embedding holding a given table, after checking that the
  table is an nn.Parameter `weight` of the right shape.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from llmlab.testing import check

FORBIDDEN = ["torch.nn.functional.embedding", "torch.embedding"]
HINT = "Index the table (weight[ids]) or multiply a one-hot matrix by it."


def one_hot_lookup(ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """weight[ids] as a matrix product: (*ids.shape, V) @ (V, C) -> (*ids.shape, C)."""
    return F.one_hot(ids, weight.shape[0]).to(weight.dtype) @ weight


def embedding_with(impl, weight: torch.Tensor) -> torch.nn.Module:
    """impl.Embedding(V, C) with its table set to `weight` (V, C), float32."""
    V, C = weight.shape
    case = check.describe(num_embeddings=V, dim=C)
    emb = impl.Embedding(V, C)
    own = getattr(emb, "weight", None)
    check.that(isinstance(own, torch.nn.Parameter), "Embedding.__init__",
               "the table must be an nn.Parameter stored as `self.weight`", f"found {type(own).__name__}", case=case)
    check.equal(tuple(own.shape), (V, C), unit="Embedding.__init__", what="shape of weight", case=case)
    with torch.no_grad():
        own.copy_(weight)
    return emb
