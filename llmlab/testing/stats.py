"""Statistical checks with a stated false-failure rate.

A correct implementation fails a statistical check only by bad luck; each check takes the
probability of that (`rate`, at most 1e-6 per the syllabus) and derives its acceptance
region exactly from it. Graders also seed their generators, so a given implementation
gets the same verdict on every run: the rate bounds how likely a correct submission is to
be unlucky with the stated seed.
"""

from __future__ import annotations

import math
from typing import Mapping, Sequence

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


def plausible(counts: Sequence[int], probs: Sequence[float], p_value: float = 1e-3) -> bool:
    """Whether `counts` could well be draws from `probs`: no count in a category of
    probability 0, and a chi-square p-value of at least `p_value`. For naming the mistake
    behind a failed check (its distribution fits the counts), never as the check itself."""
    from scipy import stats as sps

    counts = np.asarray(counts, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    if counts.shape != probs.shape or np.any(counts[probs <= 0] > 0):
        return False
    keep = probs > 0
    expected = probs[keep] / probs[keep].sum() * counts.sum()
    stat = float(((counts[keep] - expected) ** 2 / expected).sum())
    dof = int(keep.sum()) - 1
    return dof == 0 or float(sps.chi2.sf(stat, dof)) >= p_value


def pooled(counts: Sequence[int], probs: Sequence[float],
           min_expected: float = 5.0) -> tuple[list[int], list[float]]:
    """Counts and probabilities with every category expected fewer than `min_expected` times
    merged into one (and that one merged with the smallest other while it is still below), so
    the chi-square approximation holds in the tail that the stated rate refers to. Categories
    of probability 0 stay as they are (any count there fails the test outright)."""
    counts = [int(c) for c in counts]
    probs = [float(p) for p in probs]
    n = sum(counts)
    keep = [i for i, p in enumerate(probs) if p <= 0 or p * n >= min_expected]
    small = [i for i, p in enumerate(probs) if 0 < p * n < min_expected]
    if small and sum(probs[i] for i in small) * n < min_expected:
        positive = [i for i in keep if probs[i] > 0]
        if positive:
            smallest = min(positive, key=lambda i: probs[i])
            keep.remove(smallest)
            small.append(smallest)
    merged = [sum(counts[i] for i in small)] if small else []
    return ([counts[i] for i in keep] + merged,
            [probs[i] for i in keep] + ([sum(probs[i] for i in small)] if small else []))


def _named_mistake(counts, mistakes: Mapping[str, Sequence[float]] | None) -> str | None:
    """The first of `mistakes` whose distribution the counts fit, or None."""
    return next((name for name, probs in (mistakes or {}).items()
                 if plausible(counts, np.asarray(probs, dtype=np.float64).ravel())), None)


def chi_square(counts: Sequence[int], probs: Sequence[float], *, unit: str, what: str,
               rate: float = MAX_RATE, case: str = "", pool: bool = False,
               mistakes: Mapping[str, Sequence[float]] | None = None) -> float:
    """Pearson chi-square goodness-of-fit: fail when the p-value is below `rate`.

    Categories with probability 0 must have count 0 (any count there fails outright).
    pool: first merge the categories expected fewer than 5 times (`pooled`).
    mistakes: {name: the distribution that mistake samples from}; a failure names the first
    one under which the (unpooled) counts are `plausible`.
    Returns the p-value.
    """
    __tracebackhide__ = True
    from scipy import stats as sps

    _check_rate(rate)
    raw_counts = counts
    if pool:
        counts, probs = pooled(counts, probs)
    counts = np.asarray(counts, dtype=np.float64)
    probs = np.asarray(probs, dtype=np.float64)
    n = counts.sum()
    zero = probs <= 0
    if np.any(counts[zero] > 0):
        i = int(np.nonzero(zero & (counts > 0))[0][0])
        fail(unit, f"{what}: category {i} has probability 0 but was drawn {int(counts[i])} times",
             case=case, mistake=_named_mistake(raw_counts, mistakes))
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
             case=case, mistake=_named_mistake(raw_counts, mistakes))
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


def bounded_mean(values, expected: float, low: float, high: float, *, unit: str, what: str,
                 rate: float = MAX_RATE, case: str = "", mistakes: Mapping[str, float] | None = None) -> float:
    """Check that the mean of i.i.d. `values`, each in [low, high], is consistent with
    `expected` (Hoeffding: P(|mean − E| ≥ t) ≤ 2·exp(−2 N t² / (high − low)²), t chosen so
    that this is `rate`). mistakes: {name: the mean that mistake has}; a failure names the
    first whose mean lies within t of the observed one. Returns t."""
    __tracebackhide__ = True
    import torch

    _check_rate(rate)
    flat = torch.as_tensor(values).detach().double().flatten()
    n = flat.numel()
    if n == 0 or not low <= expected <= high:
        raise ValueError(f"bounded_mean needs values and low ≤ expected ≤ high, got {n} values, "
                         f"expected {expected} in [{low}, {high}]")
    outside = (flat < low) | (flat > high)
    if bool(outside.any()):
        i = int(outside.nonzero()[0][0])
        fail(unit, f"{what}: value {float(flat[i]):.6g} at index {i} lies outside [{low:.6g}, {high:.6g}]", case=case)
    t = (high - low) * math.sqrt(math.log(2 / rate) / (2 * n))
    mean = float(flat.mean())
    if abs(mean - expected) > t:
        named = next((name for name, m in (mistakes or {}).items() if abs(mean - m) <= t), None)
        fail(unit, f"{what}: the mean of {n} values is {mean:.6g}, expected {expected:.6g}",
             f"a correct implementation lands within ±{t:.3g} of it with probability ≥ 1 − {rate:g} (Hoeffding)",
             case=case, mistake=named)
    return t
