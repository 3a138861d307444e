"""The grader toolkit (llmlab.testing): every helper fails when it should, with a message
that names the unit and the input, and passes correct code."""

import collections

import pytest
import torch
from hypothesis import given

from llmlab.testing import check, guard, properties, stats, strategies, tensors
from llmlab.testing.check import GradingFailure


def test_expect_raises_returns_the_exception():
    exc = check.expect_raises(ValueError, int, "x", unit="int")
    assert isinstance(exc, ValueError)


def test_expect_raises_names_the_unit_the_input_and_what_happened_instead():
    with pytest.raises(GradingFailure) as info:
        check.expect_raises(ValueError, lambda n: n * 2, 3, unit="double", case="n=3", why="n must be even")
    text = str(info.value)
    assert text.startswith("double: should raise ValueError (n must be even), but returned 6")
    assert "input: n=3" in text
    with pytest.raises(GradingFailure, match="should raise ValueError or TypeError, but raised KeyError"):
        check.expect_raises((ValueError, TypeError), lambda: {}["k"], unit="lookup")


def test_expect_raises_lets_a_todo_through_even_for_a_base_class():
    def todo():
        raise NotImplementedError("TODO 01_toy: double")
    with pytest.raises(NotImplementedError):
        check.expect_raises(RuntimeError, todo, unit="double")   # NotImplementedError is a RuntimeError


def test_examples_keeps_the_profile_and_sets_the_count():
    profile = strategies.examples(7)
    assert profile.max_examples == 7 and profile.derandomize and profile.deadline is None
    assert profile.database is None and not profile.report_multiple_bugs


@strategies.examples(5)
@given(shape=strategies.shapes(min_dims=2, max_dims=2, max_side=4), seed=strategies.seeds())
def test_seeded_tensors_repeat_and_masks_keep_a_true_per_row(shape, seed):
    assert torch.equal(tensors.randn(shape, seed), tensors.randn(shape, seed))
    assert torch.equal(tensors.randn(shape, seed, torch.float32), tensors.randn(shape, seed).float())
    assert bool(tensors.bool_mask(shape, seed, p=0.0).any(-1).all())
    ids = tensors.randint(shape, seed, high=5)
    assert ids.dtype == torch.int64 and 0 <= int(ids.min()) and int(ids.max()) < 5


def test_randomize_parameters_draws_every_parameter_from_the_seed():
    a, b = torch.nn.LayerNorm(4), torch.nn.LayerNorm(4)
    tensors.randomize_parameters(a, 3, around_one=lambda name: name == "weight")
    tensors.randomize_parameters(b, 3, around_one=lambda name: name == "weight")
    assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)
    assert abs(float(a.weight.detach().mean()) - 1) < 1 and not torch.equal(a.bias, torch.zeros(4))


def test_random_model_is_seeded_in_eval_mode_with_norm_gains_around_one():
    def model():
        return torch.nn.Sequential(collections.OrderedDict(norm=torch.nn.LayerNorm(8), head=torch.nn.Linear(8, 8)))

    a, b = tensors.random_model(model(), 5, torch.float64), tensors.random_model(model(), 5, torch.float64)
    assert not a.training and a.head.weight.dtype == torch.float64
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters()))
    assert tensors.is_norm_weight("norm.weight") and not tensors.is_norm_weight("head.weight")
    assert abs(float(a.norm.weight.detach().mean()) - 1) < 0.5 and abs(float(a.head.weight.detach().mean())) < 0.5
    assert not torch.equal(tensors.random_model(model(), 6).head.weight.double(), a.head.weight)


def test_causal_passes_a_causal_function_and_names_a_peek_at_the_future():
    x = tensors.randn((2, 5, 3), 0)
    properties.causal(lambda t: t.cumsum(dim=1), x, unit="cumsum")
    with pytest.raises(GradingFailure, match="it must not see the future"):
        properties.causal(lambda t: t.flip(1).cumsum(dim=1).flip(1), x, unit="reverse cumsum")
    ids = tensors.randint((2, 6), 1, high=9)
    properties.causal(lambda t: (t * 2).cumsum(dim=1), ids, unit="ids", vocab_size=9)


def test_permutation_equivariance_and_batch_independence():
    x = tensors.randn((6, 3), 2)
    properties.permutation_equivariant(lambda t: t * 3, x, unit="scale", dim=0)
    with pytest.raises(GradingFailure, match="permuted the same way"):
        properties.permutation_equivariant(lambda t: t.cumsum(0), x, unit="cumsum", dim=0)
    properties.batch_independent(lambda t: t.softmax(-1), x, unit="softmax")
    with pytest.raises(GradingFailure, match="rows of a batch must not affect each other"):
        properties.batch_independent(lambda t: t - t.mean(0), x, unit="centre")


def test_call_without_forbids_the_builtin():
    out = guard.call_without("double", ["torch.softmax"], lambda t: 2 * t, torch.ones(2))
    assert torch.equal(out, torch.full((2,), 2.0))
    with pytest.raises(guard.ForbiddenCall, match="must be written from scratch"):
        guard.call_without("softmax", ["torch.softmax"], lambda t: torch.softmax(t, 0), torch.ones(2))


def test_normal_accepts_normal_draws_and_rejects_uniform_ones():
    gen = torch.Generator().manual_seed(0)
    stats.normal(torch.randn(20_000, generator=gen) * 2 + 1, mean=1.0, std=2.0, unit="init", what="weights")
    with pytest.raises(GradingFailure, match="does not follow the expected distribution"):
        stats.normal(torch.rand(20_000, generator=gen), unit="init", what="weights")
