"""Graders for 09_training (part 2): AdamW, lr_schedule and clip_grad_norm.

Evidence:
  - AdamW: trajectories over many steps against `torch.optim.AdamW` (decay before the
    update) and against a plain-loop Adam with the decay after the update (`SlowAdam`): a
    submission must match one of the two documented orderings. The problem has two parameter
    groups with their own hyperparameters and a parameter that gets a gradient only on
    even steps. Mistakes (Adam + L2, bias correction missing or swapped, eps inside the
    square root, decay not scaled by lr) are named from their own trajectories. A first step
    worked by hand, golden data, state_dict round trip, closure, per-step lr, float32.
  - lr_schedule: values at the boundary steps by hand and from golden data, an independent
    formula on random arguments, monotonicity, every Raises clause.
  - clip_grad_norm: `torch.nn.utils.clip_grad_norm_` as the oracle (clipping that triggers
    and the no-op case), golden data, in-place modification, None gradients, a generator.
"""

from __future__ import annotations

import copy
import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import training_oracle as O
from llmlab.testing import check, guard, reference, tensors
from llmlab.testing.strategies import examples, seeds
from llmlab.testing.tolerances import Tolerance

ADAMW = "AdamW.step"

# Trajectory mistakes: (name, SlowAdam switches).
ADAM_MISTAKES = [
    ("Adam + L2: weight decay added to the gradient instead of decoupled decay", dict(decay="l2")),
    ("bias correction missing", dict(bias="none")),
    ("bias correction applied to the wrong moment (β1 and β2 swapped)", dict(bias="swapped")),
    ("eps inside the square root", dict(eps_inside=True)),
    ("weight decay not scaled by the learning rate", dict(decay="unscaled")),
    ("no weight decay at all", dict(decay="none")),
]


def _guarded(fn):
    return guard.call_without(ADAMW, O.ADAMW_BUILTINS, fn)


def _oracles(seed, steps, dtype=torch.float64, lr_at=None, **hyper):
    """Trajectories of the two accepted orderings: torch.optim.AdamW and decay-after."""
    torch_run = O.trajectory(lambda pb: torch.optim.AdamW(pb.groups(**hyper)), seed, steps, dtype, lr_at)
    after_run = O.trajectory(lambda pb: O.SlowAdam(pb.groups(**hyper), decay="after"), seed, steps, dtype, lr_at)
    return torch_run, after_run


def _mistake_runs(seed, steps, dtype=torch.float64, lr_at=None, **hyper):
    return {name: (lambda kw=kw: O.trajectory(lambda pb: O.SlowAdam(pb.groups(**hyper), **kw), seed, steps, dtype,
                                               lr_at))
            for name, kw in ADAM_MISTAKES}


# ================================================================= AdamW

@pytest.mark.points(1)
def test_adamw_is_an_optimizer_with_groups_and_defaults(impl):
    w, b = nn.Parameter(torch.zeros(3)), nn.Parameter(torch.zeros(2))
    opt = impl.AdamW([w, b])
    check.that(isinstance(opt, torch.optim.Optimizer), "AdamW", "must subclass torch.optim.Optimizer",
               f"got {type(opt).__mro__}")
    group = {k: opt.param_groups[0].get(k) for k in ("lr", "betas", "eps", "weight_decay")}
    check.equal(group, dict(lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2), unit="AdamW",
                what="param_groups[0] hyperparameters (the defaults of torch.optim.AdamW)")
    opt = impl.AdamW([dict(params=[w], lr=0.5), dict(params=[b], weight_decay=0.0)], lr=0.1, betas=(0.8, 0.9), eps=1e-6,
                     weight_decay=0.2)
    got = [{k: g.get(k) for k in ("lr", "betas", "eps", "weight_decay")} for g in opt.param_groups]
    check.equal(got, [dict(lr=0.5, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.2),
                      dict(lr=0.1, betas=(0.8, 0.9), eps=1e-6, weight_decay=0.0)], unit="AdamW",
                what="hyperparameters of two parameter groups (a group's own value wins over the default)")


@pytest.mark.points(2)
def test_adamw_rejects_bad_hyperparameters(impl):
    p = [nn.Parameter(torch.zeros(2))]
    for kwargs, why in ((dict(lr=-1e-3), "lr < 0"), (dict(eps=-1e-8), "eps < 0"), (dict(weight_decay=-0.1), "weight_decay < 0"),
                        (dict(betas=(1.0, 0.999)), "beta1 = 1 is outside [0, 1)"),
                        (dict(betas=(0.9, -0.1)), "beta2 < 0"), (dict(betas=(0.9, 1.0)), "beta2 = 1 is outside [0, 1)"),
                        (dict(betas=(-0.5, 0.9)), "beta1 < 0")):
        check.expect_raises(ValueError, impl.AdamW, p, unit="AdamW", why=why, case=check.describe(**kwargs), **kwargs)
    impl.AdamW(p, lr=0.0, betas=(0.0, 0.0), eps=0.0, weight_decay=0.0)   # the boundaries themselves are allowed


@pytest.mark.points(2)
def test_adamw_first_step_by_hand(impl):
    # First step: m̂ = g and v̂ = g², so the Adam update is lr·g/(|g| + eps); the decay
    # multiplies by (1 − lr·wd) before or after it.
    lr, wd, eps = 0.1, 0.5, 1e-8
    p0 = torch.tensor([1.0, -2.0, 0.5, 3.0], dtype=torch.float64)
    g = torch.tensor([0.2, -0.1, 4.0, -3.0], dtype=torch.float64)
    p = nn.Parameter(p0.clone())
    p.grad = g.clone()
    opt = impl.AdamW([p], lr=lr, weight_decay=wd, eps=eps)
    _guarded(opt.step)
    adam = lr * g / (g.abs() + eps)
    before, after = p0 * (1 - lr * wd) - adam, (p0 - adam) * (1 - lr * wd)
    l2 = g + wd * p0
    mistakes = {"Adam + L2: weight decay added to the gradient instead of decoupled decay": p0 - lr * l2 / (l2.abs() + eps),
                "weight decay not scaled by the learning rate": p0 * (1 - wd) - adam,
                "bias correction missing": p0 * (1 - lr * wd) - lr * 0.1 * g / ((0.001 ** 0.5) * g.abs() + eps),
                "no weight decay at all": p0 - adam}
    case = check.describe(p=p0, grad=g, lr=lr, weight_decay=wd)
    O.check_against_orderings(p.detach().unsqueeze(0), before.unsqueeze(0), after.unsqueeze(0), case=case,
                            kind="elementwise", what="parameter after one step",
                            mistakes={k: v.unsqueeze(0) for k, v in mistakes.items()})


@pytest.mark.points(4)
def test_adamw_trajectory_matches_torch(impl):
    # 40 steps, two groups (lr 0.05 / wd 0.1 / eps 1e-3 and lr 0.02 / wd 0.3 / betas (0.8,
    # 0.95)); the second group's parameter gets a gradient on even steps only.
    steps, seed = 40, 3
    torch_run, after_run = _oracles(seed, steps)
    actual = O.trajectory(lambda pb: impl.AdamW(pb.groups()), seed, steps, run=_guarded)
    O.check_against_orderings(actual, torch_run, after_run, case=f"Problem(seed={seed}), {steps} steps, 2 groups",
                            mistakes=_mistake_runs(seed, steps))


@pytest.mark.points(2)
def test_adamw_matches_reference(impl):
    for name in ("adam", "adamw_decay"):
        rec = reference.load(O.TOPIC, name)
        wd = 0.0 if name == "adam" else 0.1
        rows = {}
        for label, make in (("student", lambda ps: impl.AdamW(ps, lr=0.1, betas=(0.9, 0.99), eps=1e-8, weight_decay=wd)),
                            ("after", lambda ps: O.SlowAdam(ps, lr=0.1, betas=(0.9, 0.99), eps=1e-8, weight_decay=wd,
                                                            decay="after"))):
            p = nn.Parameter(rec["p0"].clone())
            opt = make([p])
            out = []
            for grad in rec["grads"]:
                p.grad = grad.clone()
                _guarded(opt.step) if label == "student" else opt.step()
                out.append(p.detach().clone())
            rows[label] = torch.stack(out)
        O.check_against_orderings(rows["student"], rec["trajectory"], rows["after"],
                                case=f"reference/{O.TOPIC}/{name}: lr 0.1, betas (0.9, 0.99), weight_decay {wd}, 8 given gradients")


@pytest.mark.points(2)
def test_adamw_reads_lr_from_param_groups_every_step(impl):
    # A schedule writes group["lr"] before each step; a cached lr would ignore it.
    def lr_at(step):
        return 0.08 * (step + 1) / 4 if step < 4 else 0.01 + 0.07 * 0.5 * (1 + math.cos(math.pi * (step - 4) / 16))
    steps, seed = 20, 5
    torch_run, after_run = _oracles(seed, steps, lr_at=lr_at)
    actual = O.trajectory(lambda pb: impl.AdamW(pb.groups(), lr=lr_at(0)), seed, steps, lr_at=lr_at, run=_guarded)

    def constant_lr():
        def make(pb):
            groups = pb.groups()
            for g in groups:
                g["lr"] = lr_at(0)
            return torch.optim.AdamW(groups)
        return O.trajectory(make, seed, steps)

    O.check_against_orderings(actual, torch_run, after_run, case=f"Problem(seed={seed}), lr changed before every step",
                            mistakes={"lr read once at construction, not from param_groups at every step": constant_lr})


@pytest.mark.points(2)
def test_adamw_state_dict_round_trip(impl):
    # 6 steps, save, load into a fresh optimizer over a copy of the parameters: the next 6
    # steps agree exactly with the uninterrupted run. The state holds the documented keys.
    seed = 7
    run = O.Problem(seed)
    opt = impl.AdamW(run.groups())
    for step in range(6):
        opt.zero_grad(set_to_none=True)
        run.loss(step).backward()
        _guarded(opt.step)
    state = opt.state[run.model[0].weight]
    check.that(set(state) >= {"step", "exp_avg", "exp_avg_sq"}, "AdamW", "state[p] must hold 'step', 'exp_avg', 'exp_avg_sq'",
               f"got keys {sorted(state)}")
    check.that(isinstance(state["step"], int) and state["step"] == 6, "AdamW",
               "state[p]['step'] must be the number of updates of p, a Python int",
               f"got {state['step']!r} after 6 steps")
    extra_step = opt.state[run.extra].get("step")
    check.equal(extra_step, 3, unit="AdamW", what="step count of a parameter with a gradient on 3 of 6 steps",
                mistakes={"one step counter shared by all parameters": 6})
    saved = copy.deepcopy(opt.state_dict())              # as through a file: no tensor shared with `opt`
    twin = O.Problem(seed)
    with torch.no_grad():
        for dst, src in zip(twin.parameters(), run.parameters()):
            dst.copy_(src)
    resumed = impl.AdamW(twin.groups(lr=0.123))          # the loaded state dict overrides these
    resumed.load_state_dict(saved)
    for step in range(6, 12):
        for pb, o in ((run, opt), (twin, resumed)):
            o.zero_grad(set_to_none=True)
            pb.loss(step).backward()
            _guarded(o.step)
    check.close(twin.flat(), run.flat(), unit="AdamW", kind="exact",
                what="parameters 6 steps after load_state_dict (must equal the uninterrupted run)")


@pytest.mark.points(2)
def test_adamw_closure_and_parameters_without_grad(impl):
    used, unused = nn.Parameter(torch.tensor([1.0, 2.0])), nn.Parameter(torch.tensor([3.0, -4.0]))
    opt = impl.AdamW([used, unused], lr=0.1, weight_decay=0.5)
    calls = []

    def closure():
        calls.append(1)
        opt.zero_grad()
        loss = (used ** 2).sum()
        loss.backward()
        return loss

    out = _guarded(lambda: opt.step(closure))
    check.that(len(calls) == 1 and isinstance(out, torch.Tensor) and float(out.detach()) == 5.0, "AdamW.step",
               "step(closure) must call the closure once and return its loss",
               f"closure called {len(calls)} time(s), step returned {out!r}")
    check.close(unused.detach(), torch.tensor([3.0, -4.0]), unit="AdamW.step", kind="exact",
                what="a parameter whose .grad is None (it must be skipped: no update, no decay)",
                mistakes={"weight decay applied to parameters without a gradient": torch.tensor([3.0, -4.0]) * 0.95})
    check.that(len(opt.state[unused]) == 0, "AdamW.step", "a parameter without gradient must get no state")
    check.that(_guarded(opt.step) is None, "AdamW.step", "step() without a closure must return None")


@pytest.mark.points(2)
def test_adamw_float32_trajectory(impl):
    steps, seed = 15, 11
    torch_run, after_run = _oracles(seed, steps, dtype=torch.float32)
    actual = O.trajectory(lambda pb: impl.AdamW(pb.groups()), seed, steps, dtype=torch.float32, run=_guarded)
    check.that(actual.dtype == torch.float32, ADAMW, "float32 parameters must stay float32", f"got {actual.dtype}")
    O.check_against_orderings(actual, torch_run, after_run, case=f"Problem(seed={seed}, float32), {steps} steps",
                            mistakes=_mistake_runs(seed, steps, torch.float32))


# ================================================================= lr_schedule

def _lr(impl, *args):
    return impl.lr_schedule(*args)


def _schedule_mistakes(step, max_lr, min_lr, warmup, total):
    return {"warmup off by one: max_lr · step / warmup (0 at step 0)": O.cosine_lr(step, max_lr, min_lr, warmup, total,
                                                                                     warmup_shift=0),
            "cosine decays over `total` steps instead of total − warmup": O.cosine_lr(step, max_lr, min_lr, warmup,
                                                                                        total, decay_over=total),
            "decays to 0 instead of min_lr": O.cosine_lr(step, max_lr, min_lr, warmup, total, floor=0.0)}


@pytest.mark.points(3)
def test_lr_schedule_boundary_steps(impl):
    # By hand: max 1e-3, min 1e-4, warmup 4, total 12.
    cases = [(0, 2.5e-4), (1, 5e-4), (3, 1e-3), (4, 1e-3), (8, 5.5e-4), (12, 1e-4), (13, 1e-4), (1000, 1e-4),
             (6, 1e-4 + 0.5 * 9e-4 * (1 + math.cos(math.pi / 4)))]
    for step, want in cases:
        args = (step, 1e-3, 1e-4, 4, 12)
        got = _lr(impl, *args)
        check.that(isinstance(got, float), "lr_schedule", "must return a Python float", f"got {type(got).__name__}")
        check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(want, dtype=torch.float64), unit="lr_schedule",
                    case=check.describe(step=step, max_lr=1e-3, min_lr=1e-4, warmup=4, total=12), kind="elementwise",
                    what="learning rate",
                    mistakes={k: torch.tensor(v, dtype=torch.float64) for k, v in _schedule_mistakes(*args).items()})


@pytest.mark.points(2)
def test_lr_schedule_matches_reference(impl):
    for item in reference.load(O.TOPIC, "lr_schedule"):
        args = tuple(item["args"])
        check.close(torch.tensor(_lr(impl, *args), dtype=torch.float64), torch.tensor(item["lr"], dtype=torch.float64),
                    unit="lr_schedule", case=check.describe(args=args), kind="elementwise", what="learning rate",
                    mistakes={k: torch.tensor(v, dtype=torch.float64) for k, v in _schedule_mistakes(*args).items()})


@pytest.mark.points(2)
@examples(20)
@given(max_lr=st.floats(1e-5, 3.0), frac=st.floats(0.0, 1.0), warmup=st.integers(0, 30), decay=st.integers(0, 60))
def test_lr_schedule_formula_and_shape(impl, max_lr, frac, warmup, decay):
    min_lr, total = max_lr * frac, warmup + decay
    case = check.describe(max_lr=max_lr, min_lr=min_lr, warmup=warmup, total=total)
    values = [_lr(impl, s, max_lr, min_lr, warmup, total) for s in range(total + 3)]
    expected = [O.cosine_lr(s, max_lr, min_lr, warmup, total) for s in range(total + 3)]
    check.close(torch.tensor(values, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64),
                unit="lr_schedule", case=case, kind="elementwise", what="learning rates of steps 0 … total + 2")
    rising, falling = values[:warmup], values[warmup:]
    check.that(all(a <= b for a, b in zip(rising, rising[1:])) and all(a >= b - 1e-15 for a, b in zip(falling, falling[1:])),
               "lr_schedule", "the rate must rise during warmup and never rise afterwards", case=case)


@pytest.mark.points(2)
def test_lr_schedule_edge_cases_and_raises(impl):
    checks = [((0, 0.5, 0.1, 0, 10), 0.5, "warmup = 0: step 0 is max_lr"),
              ((4, 0.5, 0.1, 5, 5), 0.5, "warmup = total: the last warmup step is max_lr"),
              ((5, 0.5, 0.1, 5, 5), 0.1, "warmup = total: min_lr at step total"),
              ((3, 0.2, 0.2, 2, 9), 0.2, "min_lr = max_lr: constant after warmup"),
              ((2, 1.0, 0.0, 2, 3), 1.0, "one decay step: max_lr at step warmup")]
    for args, want, why in checks:
        got = _lr(impl, *args)
        check.that(isinstance(got, float) and abs(got - want) <= 1e-12, "lr_schedule", f"got {got!r}, expected {want} ({why})",
                   case=check.describe(args=args))
    for args, why in (((-1, 1.0, 0.1, 2, 10), "step < 0"), ((0, 1.0, 0.1, -1, 10), "warmup < 0"),
                      ((0, 1.0, 0.1, 11, 10), "total < warmup"), ((0, 1.0, 2.0, 2, 10), "min_lr > max_lr"),
                      ((0, 1.0, -0.1, 2, 10), "min_lr < 0")):
        check.expect_raises(ValueError, impl.lr_schedule, *args, unit="lr_schedule", why=why,
                            case=check.describe(step=args[0], max_lr=args[1], min_lr=args[2], warmup=args[3], total=args[4]))


# ================================================================= clip_grad_norm

CLIP = "clip_grad_norm"


def _params_with_grads(shapes, seed, dtype=torch.float64, scale=1.0):
    params = []
    for i, shape in enumerate(shapes):
        p = nn.Parameter(torch.zeros(shape, dtype=dtype))
        p.grad = tensors.randn(shape, seed + i, dtype, scale)
        params.append(p)
    return params


def _clip(impl, params, max_norm):
    return guard.call_without(CLIP, O.CLIP_BUILTINS, impl.clip_grad_norm, params, max_norm)


@pytest.mark.points(2)
def test_clip_no_op_when_below_max_norm(impl):
    params = _params_with_grads([(4, 3), (6,)], 21, torch.float32, 0.1)
    before = [p.grad.clone() for p in params]
    total = math.sqrt(sum(float((g.double() ** 2).sum()) for g in before))
    norm = _clip(impl, params, 10.0)
    case = check.describe(total_norm=total, max_norm=10.0)
    check.close(torch.as_tensor(norm).reshape(()).double(), torch.tensor(total, dtype=torch.float64), unit=CLIP,
                case=case, kind="reduction", tol=Tolerance(1e-5, 1e-6),   # a float32 norm, compared in float64
                what="returned total norm")
    for i, (p, b) in enumerate(zip(params, before)):
        check.close(p.grad, b, unit=CLIP, case=case, kind="exact", what=f"gradient {i} (norm below max_norm: unchanged)",
                    mistakes={"always rescales to max_norm, even when the norm is smaller": b * (10.0 / total)})


@pytest.mark.points(2)
def test_clip_reference_and_input_forms(impl):
    rec = reference.load(O.TOPIC, "clip")
    a, b = nn.Parameter(torch.zeros(3, 4, dtype=torch.float64)), nn.Parameter(torch.zeros(5, dtype=torch.float64))
    a.grad, b.grad = rec["grad_a"].clone(), rec["grad_b"].clone()
    frozen = nn.Parameter(torch.zeros(2, dtype=torch.float64))             # .grad is None: skipped
    norm = _clip(impl, (p for p in [a, frozen, b]), float(rec["max_norm"][0]))  # a generator, read once
    case = f"reference/{O.TOPIC}/clip, passed as a generator with a parameter whose .grad is None"
    check.close(torch.as_tensor(norm).reshape(1), rec["norm"], unit=CLIP, case=case, kind="reduction",
                what="returned total norm (a float64 gradient gives a float64 norm)")
    check.close(a.grad, rec["clipped_a"], unit=CLIP, case=case, kind="reduction", what="clipped gradient a")
    check.close(b.grad, rec["clipped_b"], unit=CLIP, case=case, kind="reduction", what="clipped gradient b")
    check.that(frozen.grad is None, CLIP, "a parameter whose .grad is None must be left alone", case=case)
    none = _clip(impl, [nn.Parameter(torch.zeros(3))], 1.0)
    check.that(float(none) == 0.0, CLIP, "with no gradients at all the total norm is 0", f"got {none!r}")
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        check.expect_raises(ValueError, impl.clip_grad_norm, [a], bad, unit=CLIP, case=check.describe(max_norm=bad),
                            why="max_norm must be a positive finite number")
@pytest.mark.points(3)
@examples(15)
@given(n=st.integers(1, 4), scale=st.sampled_from([0.01, 0.3, 1.0, 5.0]), max_norm=st.sampled_from([0.1, 1.0, 4.0]),
       dtype=st.sampled_from([torch.float32, torch.float64]), seed=seeds())
def test_clip_matches_torch(impl, n, scale, max_norm, dtype, seed):
    shapes = [(3, 4), (5,), (2, 2, 3), (1,)][:n]
    mine, ref = _params_with_grads(shapes, seed, dtype, scale), _params_with_grads(shapes, seed, dtype, scale)
    objects = [p.grad for p in mine]
    before = [p.grad.clone() for p in mine]
    norm = _clip(impl, mine, max_norm)
    expected_norm = torch.nn.utils.clip_grad_norm_(ref, max_norm)
    case = check.describe(grad_shapes=shapes, scale=scale, max_norm=max_norm, dtype=str(dtype))
    after_clip_norm = torch.sqrt(sum((p.grad.double() ** 2).sum() for p in ref)).to(dtype)
    check.close(torch.as_tensor(norm).reshape(()), expected_norm, unit=CLIP, case=case, kind="reduction",
                what="returned total norm (before clipping)",
                mistakes={"returns the norm after clipping": after_clip_norm})
    check.that(all(p.grad is o for p, o in zip(mine, objects)), CLIP, "must scale the existing .grad tensors in place",
               case=case)
    per_param = [g * min(1.0, max_norm / (float(g.norm()) + 1e-6)) for g in before]
    for i, (p, r) in enumerate(zip(mine, ref)):
        check.close(p.grad, r.grad, unit=CLIP, case=case, kind="reduction", what=f"clipped gradient of parameter {i}",
                    mistakes={"clipping each parameter separately instead of the global norm": per_param[i]})
