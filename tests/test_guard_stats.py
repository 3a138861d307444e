"""The from-scratch guard and the statistical checks."""

import math

import pytest
import torch
import torch.nn.functional as F

from llmlab.testing import stats
from llmlab.testing.check import GradingFailure
from llmlab.testing.guard import ForbiddenCall, forbid

SOFTMAX = ["torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax"]


@pytest.mark.parametrize("call", [
    lambda x: torch.softmax(x, -1),
    lambda x: F.softmax(x, -1),
    lambda x: x.softmax(-1),
])
def test_forbid_catches_every_spelling(call):
    x = torch.randn(3)
    with pytest.raises(ForbiddenCall, match="softmax"):
        with forbid("softmax", SOFTMAX):
            call(x)


def test_forbid_catches_a_swallowed_call_and_restores_originals():
    original = torch.softmax

    def sneaky(x):
        try:
            return torch.softmax(x, -1)
        except Exception:
            return x

    with pytest.raises(ForbiddenCall, match="called `torch.softmax`"):
        with forbid("softmax", SOFTMAX):
            sneaky(torch.randn(3))
    assert torch.softmax is original
    torch.randn(3).softmax(-1)  # the method works again


def test_forbid_allows_elementary_operations():
    x = torch.randn(2, 3)
    with forbid("softmax", SOFTMAX):
        e = (x - x.max(-1, keepdim=True).values).exp()
        out = e / e.sum(-1, keepdim=True)
    assert torch.allclose(out, torch.softmax(x, -1))


def test_binomial_interval_has_the_stated_coverage():
    lo, hi = stats.binomial_interval(10_000, 0.3, 1e-6)
    assert lo < 3000 < hi
    from scipy.stats import binom
    outside = binom.cdf(lo - 1, 10_000, 0.3) + binom.sf(hi, 10_000, 0.3)
    assert outside <= 1e-6, outside


def test_proportion_and_chi_square_accept_right_and_reject_wrong_samplers():
    gen = torch.Generator().manual_seed(0)
    probs = torch.tensor([0.5, 0.3, 0.2, 0.0])
    draws = torch.multinomial(probs, 20_000, replacement=True, generator=gen)
    counts = torch.bincount(draws, minlength=4).tolist()
    stats.chi_square(counts, probs.tolist(), unit="sample", what="draws")
    stats.proportion(counts[0], 20_000, 0.5, unit="sample", what="share of token 0")
    uniform = torch.bincount(torch.randint(0, 3, (20_000,), generator=gen), minlength=4).tolist()
    with pytest.raises(GradingFailure, match="does not follow"):
        stats.chi_square(uniform, probs.tolist(), unit="sample", what="draws")
    with pytest.raises(GradingFailure, match="probability 0"):
        stats.chi_square([1, 1, 1, 1], probs.tolist(), unit="sample", what="draws")
    with pytest.raises(GradingFailure, match="expected about 0.5000"):
        stats.proportion(uniform[0], 20_000, 0.5, unit="sample", what="share of token 0")


def test_a_failed_chi_square_names_the_mistake_whose_distribution_fits():
    gen = torch.Generator().manual_seed(1)
    probs, swapped = [0.6, 0.3, 0.1, 0.0], [0.1, 0.3, 0.6, 0.0]
    counts = torch.bincount(torch.multinomial(torch.tensor(swapped), 5000, replacement=True, generator=gen),
                            minlength=4).tolist()
    mistakes = {"uniform": [1 / 3, 1 / 3, 1 / 3, 0.0], "order reversed": swapped}
    assert stats.plausible(counts, swapped) and not stats.plausible(counts, probs)
    with pytest.raises(GradingFailure, match="known mistake: order reversed"):
        stats.chi_square(counts, probs, unit="sample", what="draws", mistakes=mistakes)
    with pytest.raises(GradingFailure) as failure:                 # no candidate fits: none is named
        stats.chi_square(counts, probs, unit="sample", what="draws", mistakes={"uniform": mistakes["uniform"]})
    assert "known mistake" not in str(failure.value)
    with pytest.raises(GradingFailure, match="probability 0.*\n.*known mistake: on the wrong row"):
        stats.chi_square([0, 0, 0, 9], probs, unit="sample", what="draws",
                         mistakes={"on the wrong row": [0.0, 0.0, 0.0, 1.0]})
    assert not stats.plausible([1, 2], probs), "counts of another length never fit"


def test_pooling_merges_rare_categories_until_each_is_expected_five_times():
    # n = 100: categories 2 and 3 are expected 3 and 1 times; together 4 < 5, so the smallest
    # other (expected 16) joins them; the zero-probability category stays on its own.
    counts, probs = stats.pooled([60, 20, 3, 1, 16, 0], [0.6, 0.2, 0.03, 0.01, 0.16, 0.0])
    assert counts == [60, 20, 0, 20] and probs == pytest.approx([0.6, 0.2, 0.0, 0.2])
    assert stats.pooled([50, 50], [0.5, 0.5]) == ([50, 50], [0.5, 0.5])
    gen = torch.Generator().manual_seed(2)
    p = torch.tensor([0.9] + [0.1 / 40] * 40)                      # 40 rare tokens
    counts = torch.bincount(torch.multinomial(p, 300, replacement=True, generator=gen), minlength=41).tolist()
    assert stats.chi_square(counts, p.tolist(), unit="sample", what="draws", pool=True) > 1e-6


def test_rates_above_one_in_a_million_are_refused():
    with pytest.raises(ValueError, match="false-failure rate"):
        stats.binomial_interval(100, 0.5, 0.01)


def test_bounded_mean_uses_hoeffding_and_names_a_mistake():
    gen = torch.Generator().manual_seed(3)
    draws = torch.rand(50_000, generator=gen, dtype=torch.float64)          # mean 0.5 on [0, 1]
    t = stats.bounded_mean(draws, 0.5, 0.0, 1.0, unit="sample", what="mean")
    assert abs(t - math.sqrt(math.log(2 / 1e-6) / 100_000)) < 1e-12
    with pytest.raises(GradingFailure, match="known mistake: squared"):
        stats.bounded_mean(draws ** 2, 0.5, 0.0, 1.0, unit="sample", what="mean", mistakes={"squared": 1 / 3})
    with pytest.raises(GradingFailure, match="outside"):
        stats.bounded_mean(draws + 1, 1.0, 0.0, 1.0, unit="sample", what="mean")
    with pytest.raises(ValueError):
        stats.bounded_mean(draws, 0.5, 0.0, 1.0, unit="sample", what="mean", rate=0.01)
