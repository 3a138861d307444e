"""Property checks that many topics share: a unit's output must not depend on what it
may not see (causality), must follow a permutation of its inputs (equivariance), and must
treat the rows of a batch independently. Each fails with the unit, the input and the
first position that broke the property."""

from __future__ import annotations

from typing import Callable

import torch

from llmlab.testing import check, tensors
from llmlab.testing.tolerances import Tolerance


def _perturb(x: torch.Tensor, where: torch.Tensor, seed: int, high: int | None) -> torch.Tensor:
    """x with the entries at `where` replaced: new ids in [0, high) for integer input, fresh
    normal values for floating input."""
    if x.is_floating_point():
        fresh = tensors.randn(x.shape, seed, x.dtype)
    else:
        top = high if high is not None else int(x.max()) + 2
        fresh = tensors.randint(x.shape, seed, top).to(x.dtype)
    return torch.where(where, fresh, x)


def _positions_after(x: torch.Tensor, dim: int, t: int) -> torch.Tensor:
    index = torch.arange(x.shape[dim]).view([-1 if d == dim % x.dim() else 1 for d in range(x.dim())])
    return (index > t).expand(x.shape)


def causal(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, unit: str, dim: int = 1,
           out_dim: int | None = None, case: str = "", kind: str = "matmul", tol: Tolerance | None = None,
           vocab_size: int | None = None, seed: int = 0) -> None:
    """Output positions ≤ t along `out_dim` must not change when inputs at positions > t
    along `dim` change. Checked for every cut t (a sequence of length T has T − 1 cuts).
    Integer inputs (token ids) are perturbed within [0, vocab_size)."""
    __tracebackhide__ = True
    out_dim = dim if out_dim is None else out_dim
    base = fn(x)
    length = x.shape[dim]
    for t in range(length - 1):
        changed = _perturb(x, _positions_after(x, dim, t), seed + t, vocab_size)
        out = fn(changed)
        keep = torch.arange(t + 1)
        check.close(out.index_select(out_dim, keep), base.index_select(out_dim, keep), unit=unit, kind=kind,
                    tol=tol, case=case, what=f"output at positions ≤ {t} after changing the input at "
                                               f"positions > {t} (it must not see the future)")


def permutation_equivariant(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, unit: str,
                            dim: int, out_dim: int | None = None, case: str = "", kind: str = "matmul",
                            tol: Tolerance | None = None, seed: int = 0) -> None:
    """fn(x permuted along `dim`) must equal fn(x) permuted the same way along `out_dim`."""
    __tracebackhide__ = True
    out_dim = dim if out_dim is None else out_dim
    perm = torch.randperm(x.shape[dim], generator=tensors.generator(seed))
    expected = fn(x).index_select(out_dim, perm)
    check.close(fn(x.index_select(dim, perm)), expected, unit=unit, kind=kind, tol=tol, case=case,
                what=f"output for inputs permuted along dim {dim} (it should be permuted the same way, "
                     f"permutation {perm.tolist()})")


def batch_independent(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, *, unit: str,
                      case: str = "", kind: str = "matmul", tol: Tolerance | None = None) -> None:
    """Each row of a batch (dim 0) must give the same output alone as in the batch."""
    __tracebackhide__ = True
    whole = fn(x)
    for i in range(x.shape[0]):
        check.close(fn(x[i:i + 1])[0], whole[i], unit=unit, kind=kind, tol=tol, case=case,
                    what=f"output for batch row {i} run alone (rows of a batch must not affect each other)")
