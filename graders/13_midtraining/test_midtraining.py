"""Graders for 13_midtraining (part 1): wsd_schedule, rewarm_schedule and mixture_schedule.

Evidence per unit:
  - values worked by hand at the boundary steps of every phase, with the catalogued mistakes
    named from their own formulas (midtraining_oracle);
  - golden data (reference/13_midtraining/schedules.json);
  - an independent closed formula on random arguments (hypothesis), and properties: the rise,
    the plateau and the fall are monotone, the cool-down is continuous with the plateau (no
    step changes the rate by more than one step's worth of the formula's slope), mixture
    weights are non-negative, sum to 1 at every step, and lie between the two end mixtures;
  - every Raises clause and the edge cases the docstrings allow (phases of length 0,
    tuples, K = 1).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import midtraining_oracle as O
from llmlab.testing import check, reference
from llmlab.testing.strategies import examples


def _f64(values):
    return torch.tensor(values, dtype=torch.float64)


def _close_rate(got, want, unit, case, mistakes=None, what="learning rate"):
    check.that(isinstance(got, float), unit, "must return a Python float", f"got {type(got).__name__}", case=case)
    check.close(_f64(got), _f64(want), unit=unit, case=case, kind="elementwise", what=what,
                mistakes={k: _f64(v) for k, v in (mistakes or {}).items()})


# ================================================================= wsd_schedule

def _wsd_mistakes(*args):
    return {"warmup off by one: max_lr · step / warmup (0 at step 0)": O.wsd_lr(*args, warmup_shift=0),
            "cool-down decays to 0 instead of min_lr": O.wsd_lr(*args, floor=0.0),
            "cool-down shape ignored (always linear)": O.wsd_lr(*args, ignore_shape=True),
            "no plateau: the cool-down starts right after warmup": O.wsd_lr(*args, no_plateau=True)}


@pytest.mark.points(3)
def test_wsd_linear_by_hand(impl):
    # max 1.0, min 0.1, warmup 4, stable 6, decay 5: plateau on steps 4 … 9, cool-down 10 … 14.
    cases = [(0, 0.25), (1, 0.5), (3, 1.0), (4, 1.0), (9, 1.0), (10, 1.0), (11, 0.82), (12, 0.64), (14, 0.28),
             (15, 0.1), (16, 0.1), (10_000, 0.1)]
    for step, want in cases:
        args = (step, 1.0, 0.1, 4, 6, 5, "linear")
        _close_rate(impl.wsd_schedule(*args), want, "wsd_schedule",
                    check.describe(step=step, max_lr=1.0, min_lr=0.1, warmup=4, stable=6, decay=5, shape="linear"),
                    _wsd_mistakes(*args))


@pytest.mark.points(2)
def test_wsd_cosine_and_sqrt_by_hand(impl):
    # warmup 2, stable 3, decay 4: the cool-down runs over steps 5 … 8 (d = 0 … 3).
    cosine = [(5, 1.0), (6, 0.1 + 0.45 * (1 + math.cos(math.pi / 4))), (7, 0.55), (8, 0.1 + 0.45 * (1 - math.cos(math.pi / 4)))]
    sqrt = [(5, 1.0), (6, 1.0 - 0.9 * 0.5), (7, 1.0 - 0.9 * math.sqrt(0.5)), (8, 1.0 - 0.9 * math.sqrt(0.75)), (9, 0.1)]
    for shape, cases in (("cosine", cosine), ("sqrt", sqrt)):
        for step, want in cases:
            args = (step, 1.0, 0.1, 2, 3, 4, shape)
            _close_rate(impl.wsd_schedule(*args), want, "wsd_schedule",
                        check.describe(step=step, max_lr=1.0, min_lr=0.1, warmup=2, stable=3, decay=4, shape=shape),
                        _wsd_mistakes(*args))


@pytest.mark.points(2)
def test_wsd_matches_reference(impl):
    for item in reference.load(O.TOPIC, "schedules")["wsd"]:
        args = tuple(item["args"])
        _close_rate(impl.wsd_schedule(*args), item["lr"], "wsd_schedule", check.describe(args=args),
                    _wsd_mistakes(*args))


@pytest.mark.points(2)
@examples(20)
@given(max_lr=st.floats(1e-5, 3.0), frac=st.floats(0.0, 1.0), warmup=st.integers(0, 12), stable=st.integers(0, 12),
       decay=st.integers(0, 20), shape=st.sampled_from(["linear", "cosine", "sqrt"]))
def test_wsd_formula_monotone_and_continuous(impl, max_lr, frac, warmup, stable, decay, shape):
    min_lr, end = max_lr * frac, warmup + stable + decay
    case = check.describe(max_lr=max_lr, min_lr=min_lr, warmup=warmup, stable=stable, decay=decay, shape=shape)
    values = [impl.wsd_schedule(s, max_lr, min_lr, warmup, stable, decay, shape) for s in range(end + 3)]
    expected = [O.wsd_lr(s, max_lr, min_lr, warmup, stable, decay, shape) for s in range(end + 3)]
    check.close(_f64(values), _f64(expected), unit="wsd_schedule", case=case, kind="elementwise",
                what="learning rates of steps 0 … warmup + stable + decay + 2")
    rising, falling = values[:warmup], values[warmup:]
    check.that(all(a <= b for a, b in zip(rising, rising[1:])) and all(a >= b - 1e-15 for a, b in zip(falling, falling[1:])),
               "wsd_schedule", "the rate must rise during warmup and never rise afterwards", case=case)
    check.that(all(abs(v - max_lr) <= 1e-12 * max_lr for v in values[warmup:warmup + stable]), "wsd_schedule",
               "the plateau (steps warmup … warmup + stable − 1) must be max_lr", case=case)
    if decay:
        # continuity: the cool-down starts at max_lr and the first step down is at most the
        # steepest step of the shape (sqrt: (max − min)·sqrt(1/decay); the others less)
        first = warmup + stable
        jump = max_lr - values[first + 1] if decay > 1 else 0.0
        check.that(abs(values[first] - max_lr) <= 1e-12 * max_lr and jump <= (max_lr - min_lr) * math.sqrt(1 / decay) + 1e-12,
                   "wsd_schedule", "the cool-down must start at max_lr (continuous with the plateau)",
                   f"rate at the first cool-down step {values[first]!r}", case=case)


@pytest.mark.points(2)
def test_wsd_edge_cases_and_raises(impl):
    checks = [((0, 0.5, 0.1, 0, 3, 2), 0.5, "warmup = 0: step 0 is on the plateau"),
              ((3, 0.5, 0.1, 3, 0, 2), 0.5, "stable = 0: the cool-down starts at max_lr"),
              ((5, 0.5, 0.1, 3, 2, 0), 0.1, "decay = 0: min_lr right after the plateau"),
              ((4, 0.5, 0.1, 3, 2, 0), 0.5, "decay = 0: the plateau's last step is max_lr"),
              ((6, 0.2, 0.2, 2, 2, 4, "cosine"), 0.2, "min_lr = max_lr: constant after warmup"),
              ((0, 0.3, 0.0, 0, 0, 1, "sqrt"), 0.3, "only a cool-down: step 0 is max_lr")]
    for args, want, why in checks:
        got = impl.wsd_schedule(*args)
        check.that(isinstance(got, float) and abs(got - want) <= 1e-12, "wsd_schedule",
                   f"got {got!r}, expected {want} ({why})", case=check.describe(args=args))
    for args, why in (((-1, 1.0, 0.1, 2, 2, 2), "step < 0"), ((0, 1.0, 0.1, -1, 2, 2), "warmup < 0"),
                      ((0, 1.0, 0.1, 2, -1, 2), "stable < 0"), ((0, 1.0, 0.1, 2, 2, -1), "decay < 0"),
                      ((0, 1.0, 2.0, 2, 2, 2), "min_lr > max_lr"), ((0, 1.0, -0.1, 2, 2, 2), "min_lr < 0"),
                      ((0, 1.0, 0.1, 2, 2, 2, "exp"), "unknown shape")):
        check.expect_raises(ValueError, impl.wsd_schedule, *args, unit="wsd_schedule", why=why,
                            case=check.describe(args=args))


# ================================================================= rewarm_schedule

def _rewarm_mistakes(*args):
    return {"re-warm uses (step + 1) / rewarm: step 0 is not start_lr": O.rewarm_lr(*args, shift=1),
            "re-warm climbs from 0 instead of start_lr": O.rewarm_lr(*args, from_zero=True),
            "cosine decays over `total` steps instead of total − rewarm": O.rewarm_lr(*args, decay_over=args[5])}


@pytest.mark.points(3)
def test_rewarm_by_hand(impl):
    # start 0.1, max 1.0, min 0.0, rewarm 3, total 7: climb 0.1, 0.4, 0.7, then cosine over 4 steps.
    cases = [(0, 0.1), (1, 0.4), (2, 0.7), (3, 1.0), (4, 0.5 * (1 + math.cos(math.pi / 4))), (5, 0.5),
             (6, 0.5 * (1 - math.cos(math.pi / 4))), (7, 0.0), (50, 0.0)]
    for step, want in cases:
        args = (step, 0.1, 1.0, 0.0, 3, 7)
        _close_rate(impl.rewarm_schedule(*args), want, "rewarm_schedule",
                    check.describe(step=step, start_lr=0.1, max_lr=1.0, min_lr=0.0, rewarm=3, total=7),
                    _rewarm_mistakes(*args))


@pytest.mark.points(1)
def test_rewarm_matches_reference(impl):
    for item in reference.load(O.TOPIC, "schedules")["rewarm"]:
        args = tuple(item["args"])
        _close_rate(impl.rewarm_schedule(*args), item["lr"], "rewarm_schedule", check.describe(args=args),
                    _rewarm_mistakes(*args))


@pytest.mark.points(2)
@examples(20)
@given(max_lr=st.floats(1e-5, 3.0), start_frac=st.floats(0.0, 1.0), min_frac=st.floats(0.0, 1.0),
       rewarm=st.integers(0, 15), decay=st.integers(0, 30))
def test_rewarm_formula_and_shape(impl, max_lr, start_frac, min_frac, rewarm, decay):
    start_lr, min_lr, total = max_lr * start_frac, max_lr * min_frac, rewarm + decay
    case = check.describe(start_lr=start_lr, max_lr=max_lr, min_lr=min_lr, rewarm=rewarm, total=total)
    values = [impl.rewarm_schedule(s, start_lr, max_lr, min_lr, rewarm, total) for s in range(total + 3)]
    expected = [O.rewarm_lr(s, start_lr, max_lr, min_lr, rewarm, total) for s in range(total + 3)]
    check.close(_f64(values), _f64(expected), unit="rewarm_schedule", case=case, kind="elementwise",
                what="learning rates of steps 0 … total + 2")
    climb, fall = values[:rewarm + (1 if decay else 0)], values[rewarm:total + 1]   # step total is min_lr
    check.that(all(a <= b + 1e-15 for a, b in zip(climb, climb[1:])) and all(a >= b - 1e-15 for a, b in zip(fall, fall[1:])),
               "rewarm_schedule", "the rate must climb to step rewarm and never rise afterwards", case=case)


@pytest.mark.points(2)
def test_rewarm_edge_cases_and_raises(impl):
    checks = [((0, 0.1, 0.5, 0.05, 0, 10), 0.5, "rewarm = 0: step 0 is max_lr"),
              ((0, 0.5, 0.5, 0.05, 4, 10), 0.5, "start_lr = max_lr: no climb"),
              ((4, 0.1, 0.5, 0.05, 4, 4), 0.05, "rewarm = total: min_lr at step total"),
              ((3, 0.1, 0.5, 0.05, 4, 4), 0.1 + 0.4 * 3 / 4, "rewarm = total: still climbing at step total − 1"),
              ((0, 0.0, 0.4, 0.0, 2, 5), 0.0, "start_lr = 0: step 0 is 0"),
              ((5, 0.1, 0.5, 0.5, 2, 8), 0.5, "min_lr = max_lr: constant after the climb")]
    for args, want, why in checks:
        got = impl.rewarm_schedule(*args)
        check.that(isinstance(got, float) and abs(got - want) <= 1e-12, "rewarm_schedule",
                   f"got {got!r}, expected {want} ({why})", case=check.describe(args=args))
    for args, why in (((-1, 0.1, 1.0, 0.0, 2, 10), "step < 0"), ((0, 0.1, 1.0, 0.0, -1, 10), "rewarm < 0"),
                      ((0, 0.1, 1.0, 0.0, 11, 10), "total < rewarm"), ((0, 0.1, 1.0, 2.0, 2, 10), "min_lr > max_lr"),
                      ((0, 0.1, 1.0, -0.1, 2, 10), "min_lr < 0"), ((0, 1.5, 1.0, 0.0, 2, 10), "start_lr > max_lr"),
                      ((0, -0.1, 1.0, 0.0, 2, 10), "start_lr < 0")):
        check.expect_raises(ValueError, impl.rewarm_schedule, *args, unit="rewarm_schedule", why=why,
                            case=check.describe(args=args))


# ================================================================= mixture_schedule

def _mixture_mistakes(*args):
    return {"weights not normalised (start and end used as given)": O.mixture(*args, normalise=False),
            "annealed the wrong way (from end to start)": O.mixture(*args, reverse=True),
            "interpolation not clamped after the anneal (weights extrapolated)": O.mixture(*args, clamp=False)}


def _close_weights(got, want, case, mistakes):
    check.that(isinstance(got, list) and all(isinstance(w, float) for w in got), "mixture_schedule",
               "must return a list of Python floats", f"got {got!r}", case=case)
    check.close(_f64(got), _f64(want), unit="mixture_schedule", case=case, kind="elementwise", what="weights",
                mistakes={k: _f64(v) for k, v in mistakes.items()})


@pytest.mark.points(3)
def test_mixture_by_hand(impl):
    # start (3, 1) -> p = (0.75, 0.25); end (2, 2) -> q = (0.5, 0.5); a = (step − 10) / 5 on steps 10 … 14.
    start, end = [3.0, 1.0], [2.0, 2.0]
    cases = [(0, [0.75, 0.25]), (9, [0.75, 0.25]), (10, [0.75, 0.25]), (11, [0.7, 0.3]), (13, [0.6, 0.4]),
             (14, [0.55, 0.45]), (15, [0.5, 0.5]), (20, [0.5, 0.5])]
    for step, want in cases:
        args = (step, start, end, 10, 5)
        _close_weights(impl.mixture_schedule(*args), want,
                       check.describe(step=step, start=start, end=end, anneal_start=10, anneal_steps=5),
                       _mixture_mistakes(*args))


@pytest.mark.points(1)
def test_mixture_matches_reference(impl):
    for item in reference.load(O.TOPIC, "schedules")["mixture"]:
        args = (item["step"], item["start"], item["end"], item["anneal_start"], item["anneal_steps"])
        _close_weights(impl.mixture_schedule(*args), item["weights"], check.describe(**item), _mixture_mistakes(*args))


@pytest.mark.points(2)
@examples(20)
@given(start=st.lists(st.floats(0.0, 10.0), min_size=1, max_size=5), data=st.data(),
       anneal_start=st.integers(0, 10), anneal_steps=st.integers(0, 10))
def test_mixture_sums_to_one_and_lies_between(impl, start, data, anneal_start, anneal_steps):
    start = start if sum(start) > 0 else [1.0] + start[1:]
    end = data.draw(st.lists(st.floats(0.0, 10.0), min_size=len(start), max_size=len(start)), label="end")
    end = end if sum(end) > 0 else end[:-1] + [2.0]
    p, q = [w / sum(start) for w in start], [w / sum(end) for w in end]
    for step in range(anneal_start + anneal_steps + 2):
        case = check.describe(step=step, start=start, end=end, anneal_start=anneal_start, anneal_steps=anneal_steps)
        args = (step, start, end, anneal_start, anneal_steps)
        got = impl.mixture_schedule(*args)
        _close_weights(got, O.mixture(*args), case, _mixture_mistakes(*args))
        check.that(abs(sum(got) - 1.0) <= 1e-12 and all(w >= 0 for w in got), "mixture_schedule",
                   "the weights must be ≥ 0 and sum to 1 at every step", f"got {got}, sum {sum(got)!r}", case=case)
        check.that(all(min(a, b) - 1e-12 <= w <= max(a, b) + 1e-12 for w, a, b in zip(got, p, q)), "mixture_schedule",
                   "every weight must lie between its start and its end value", case=case)


@pytest.mark.points(2)
def test_mixture_edge_cases_and_raises(impl):
    got = impl.mixture_schedule(3, (1, 3), (0.0, 5.0), 3, 0)
    _close_weights(got, [0.0, 1.0], check.describe(step=3, start=(1, 3), end=(0.0, 5.0), anneal_start=3, anneal_steps=0,
                                                   note="tuples; anneal_steps = 0 switches at anneal_start"), {})
    got = impl.mixture_schedule(2, (1, 3), (0.0, 5.0), 3, 0)
    _close_weights(got, [0.25, 0.75], check.describe(step=2, start=(1, 3), end=(0.0, 5.0), anneal_start=3,
                                                     anneal_steps=0), {})
    got = impl.mixture_schedule(7, [4.0], [0.5], 2, 10)
    _close_weights(got, [1.0], check.describe(step=7, start=[4.0], end=[0.5], note="one source"), {})
    bad = [((0, [1.0, 1.0], [1.0], 0, 2), "start and end differ in length"),
           ((0, [], [], 0, 2), "no sources"),
           ((0, [1.0, -0.5], [1.0, 1.0], 0, 2), "a negative start weight"),
           ((0, [1.0, 1.0], [1.0, -1.0], 0, 2), "a negative end weight"),
           ((0, [1.0, float("nan")], [1.0, 1.0], 0, 2), "a weight that is not finite"),
           ((0, [1.0, float("inf")], [1.0, 1.0], 0, 2), "an infinite weight"),
           ((0, [0.0, 0.0], [1.0, 1.0], 0, 2), "start weights sum to 0"),
           ((0, [1.0, 1.0], [0.0, 0.0], 0, 2), "end weights sum to 0"),
           ((-1, [1.0, 1.0], [1.0, 2.0], 0, 2), "step < 0"),
           ((0, [1.0, 1.0], [1.0, 2.0], -1, 2), "anneal_start < 0"),
           ((0, [1.0, 1.0], [1.0, 2.0], 0, -1), "anneal_steps < 0")]
    for args, why in bad:
        check.expect_raises(ValueError, impl.mixture_schedule, *args, unit="mixture_schedule", why=why,
                            case=check.describe(args=args))
