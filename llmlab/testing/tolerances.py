"""The one tolerance policy of the course.

A comparison names the dtype it runs in and the kind of computation that produced the
values; the pair decides (rtol, atol). Two values pass when |actual − expected| ≤ atol +
rtol·|expected| elementwise (the rule of `torch.allclose`).

Why these numbers. float32 has a unit roundoff of 6e-8. Correct implementations that order
operations differently (sum then divide vs. mean, `rsqrt` vs `1/sqrt`, fused vs. split
matmuls) disagree by a few ulps per operation, growing with the length of a reduction and
with the depth of a composed model. The tolerances are set one to two orders of magnitude
above what equivalent correct formulations were measured to differ by, and several orders
below what any catalogued mistake produces (a missing 1/sqrt(d) or an off-by-one mask
changes values at the 1e-2 level or more). float64 is used for gradient checks and for
anything where a tight comparison is the point.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tolerance:
    rtol: float
    atol: float

    def __str__(self) -> str:
        return f"atol {self.atol:.0e} + rtol {self.rtol:.0e}·|expected|"


# kind -> tolerance, per dtype.
#   exact:       integer-valued results (ids, counts, masks) — must match exactly.
#   elementwise: a few floating operations per element (gelu, sinusoids, scaling).
#   reduction:   sums/means/softmax/norms over one axis of moderate length (≤ 4096).
#   matmul:      a matrix product or attention (reductions inside, then composed).
#   model:       a whole module or model forward (several composed matmuls and norms).
#   gradient:    gradients from backward passes of the above (one more composition).
#   loss:        a scalar loss averaged over many terms.
_POLICY = {
    torch.float64: {
        "exact": Tolerance(0.0, 0.0),
        "elementwise": Tolerance(1e-10, 1e-12),
        "reduction": Tolerance(1e-9, 1e-11),
        "matmul": Tolerance(1e-9, 1e-10),
        "model": Tolerance(1e-8, 1e-9),
        "gradient": Tolerance(1e-8, 1e-9),
        "loss": Tolerance(1e-9, 1e-10),
    },
    torch.float32: {
        "exact": Tolerance(0.0, 0.0),
        "elementwise": Tolerance(1e-5, 1e-6),
        "reduction": Tolerance(1e-5, 1e-6),
        "matmul": Tolerance(1e-4, 1e-5),
        "model": Tolerance(1e-4, 1e-4),
        "gradient": Tolerance(1e-4, 1e-5),
        "loss": Tolerance(1e-5, 1e-5),
    },
}

KINDS = tuple(_POLICY[torch.float32])


def tolerance(dtype: torch.dtype, kind: str = "elementwise") -> Tolerance:
    """The tolerance for comparing values of `dtype` produced by a computation of `kind`.

    Integer and boolean dtypes compare exactly. Half precisions are not graded.
    """
    if kind not in KINDS:
        raise ValueError(f"unknown tolerance kind {kind!r}; use one of {KINDS}")
    if not dtype.is_floating_point:
        return Tolerance(0.0, 0.0)
    if dtype not in _POLICY:
        raise ValueError(f"no tolerance policy for {dtype}; grade in float32 or float64")
    return _POLICY[dtype][kind]
