"""Statistical checks with a stated false-failure rate.

A correct implementation fails a statistical check only by bad luck; each check takes the
probability of that (`rate`, at most 1e-6 per the syllabus) and derives its acceptance
region exactly from it. Graders also seed their generators, so a given implementation
gets the same verdict on every run: the rate bounds how likely a correct submission is to
be unlucky with the stated seed.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from llmlab.testing.check import fail

MAX_RATE = 1e-6


def _check_rate(rate: float) -> None:
    if not 0 < rate <= MAX_RATE:
        raise ValueError(f"false-failure rate must be in (0, {MAX_RATE}], got {rate}")


def binomial_interval(n: int, p: float, rate: float = MAX_RATE) -> tuple[int, int]:
    """Counts k with P(Binomial(n, p) outside [lo, hi]) ≤ rate (two-sided, rate/2 per tail)."""
    from scipy import stats as sps  # imported when needed: it costs a second of start-up

    _check_rate(rate)
    lo = int(sps.binom.ppf(rate / 2, n, p))
    hi = int(sps.binom.isf(rate / 2, n, p))
    return lo, hi


def proportion(k: int, n: int, p: float, *, unit: str, what: str, rate: float = MAX_RATE, case: str = "") -> None:
    """Check that k successes in n trials are consistent with success probability p."""
    __tracebackhide__ = True
    lo, hi = binomial_interval(n, p, rate)
    if not lo <= k <= hi:
        fail(unit, f"{what}: observed {k} of {n} ({k / n:.4f}), expected about {p:.4f}",
             f"a correct implementation lands in [{lo}, {hi}] with probability ≥ 1 − {rate:g}",
             case=case)


def chi_square(counts: Sequence[int], probs: Sequence[float], *, unit: str, what: str,
               rate: float = MAX_RATE, case: str = "") -> float:
    """Pearson chi-square goodness-of-fit: fail when the p-value is below `rate`.

    Categories with probability 0 must have count 0 (any count there fails outright).
    Returns the p-value.
    """
    __tracebackhide__ = True
    from scipy import stats as sps

    _check_rate(rate)
    counts = np.asarray(counts, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    n = counts.sum()
    zero = probs <= 0
    if np.any(counts[zero] > 0):
        i = int(np.nonzero(zero & (counts > 0))[0][0])
        fail(unit, f"{what}: category {i} has probability 0 but was drawn {int(counts[i])} times", case=case)
    expected = probs[~zero] / probs[~zero].sum() * n
    stat = float(((counts[~zero] - expected) ** 2 / expected).sum())
    dof = int((~zero).sum()) - 1
    p_value = float(sps.chi2.sf(stat, dof)) if dof > 0 else 1.0
    if p_value < rate:
        worst = int(np.argmax(np.abs(counts[~zero] - expected) / np.sqrt(expected)))
        idx = np.nonzero(~zero)[0][worst]
        fail(unit, f"{what}: the sample does not follow the expected distribution",
             f"chi-square {stat:.1f} on {dof} degrees of freedom, p-value {p_value:.2e} < {rate:g}",
             f"largest deviation at category {idx}: drawn {int(counts[idx])} times, expected {expected[worst]:.1f}",
             case=case)
    return p_value


def normal(values, *, unit: str, what: str, mean: float = 0.0, std: float = 1.0, bins: int = 20,
           rate: float = MAX_RATE, case: str = "") -> float:
    """Chi-square test that `values` are i.i.d. N(mean, std²): `bins` bins of equal
    probability under that normal. Returns the p-value; fails when it is below `rate`."""
    __tracebackhide__ = True
    from scipy import stats as sps

    import torch

    flat = torch.as_tensor(values).detach().double().flatten().numpy()
    edges = sps.norm.ppf(np.linspace(0, 1, bins + 1)[1:-1], loc=mean, scale=std)   # bins − 1 inner edges
    counts = np.bincount(np.searchsorted(edges, flat), minlength=bins)
    return chi_square(counts, [1 / bins] * bins, unit=unit, what=what, rate=rate, case=case)
