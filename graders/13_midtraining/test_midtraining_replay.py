"""Graders for 13_midtraining (part 2): replay_batch, average_checkpoints, EMA and
continue_pretraining.

Evidence per unit:
  - replay_batch: the documented draws replayed with the given `random_windows` on the same
    seed (old rows first), value-coded streams that tell old from new rows, Python's
    round-half-to-even row count, golden data, the generator, every Raises clause and the
    streams that are never read (replay fraction 0 or 1);
  - average_checkpoints: values by hand, a float64 oracle on random checkpoints (hypothesis),
    gradients against the oracle, golden data, fresh output tensors, untouched inputs, the
    copied non-floating entries and every Raises clause;
  - EMA: the recursion against a loop oracle over a sequence of states, the closed form
    βⁿ·θ₀ + (1 − βⁿ)·θ, buffers (floating and integer), golden data, copy_to;
  - continue_pretraining: a float64 trajectory (losses and final weights) against the
    documented loop written with the given library's pieces, golden losses, the EMA hook
    (the seeded replay experiment is in test_midtraining_slow.py; the schedules in
    test_midtraining.py).
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import midtraining_oracle as O
from llmlab.lib.train import random_windows
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds

OLD = torch.arange(0, 40)          # value-coded streams: an id below 100 is an old-domain token
NEW = torch.arange(100, 160)


# ================================================================= replay_batch

def _replay_oracle(new, old, batch_size, block_size, fraction, seed, *, new_first=False, count=None):
    n_old = round(fraction * batch_size) if count is None else count(fraction, batch_size)
    g = tensors.generator(seed)
    draws = [(old, n_old), (new, batch_size - n_old)]
    parts = {}
    for data, n in (reversed(draws) if new_first else draws):
        if n:
            parts[id(data)] = random_windows(data, n, block_size, g)
    ordered = [parts[id(d)] for d, n in draws if n]
    return torch.cat([p[0] for p in ordered]), torch.cat([p[1] for p in ordered])


_COUNT_MISTAKES = {"n_old truncated with int() instead of Python's round": lambda f, b: int(f * b),
                   "n_old rounded half up instead of half to even": lambda f, b: math.floor(f * b + 0.5),
                   "replay_fraction used as the share of NEW rows": lambda f, b: b - round(f * b)}


@pytest.mark.points(3)
def test_replay_batch_follows_documented_draws(impl):
    for seed, (B, T, fraction) in enumerate(((8, 4, 0.25), (5, 3, 0.5), (3, 5, 0.5), (4, 2, 1.0), (4, 6, 0.0),
                                             (1, 1, 0.6), (6, 8, 0.75))):
        case = check.describe(batch_size=B, block_size=T, replay_fraction=fraction, seed=seed)
        x, y = impl.replay_batch(NEW, OLD, B, T, fraction, tensors.generator(seed))
        ex, ey = _replay_oracle(NEW, OLD, B, T, fraction, seed)
        mistakes = {"new rows drawn before the old rows": _replay_oracle(NEW, OLD, B, T, fraction, seed,
                                                                         new_first=True)[0]}
        mistakes.update({name: _replay_oracle(NEW, OLD, B, T, fraction, seed, count=fn)[0]
                         for name, fn in _COUNT_MISTAKES.items()})
        check.close(x, ex, unit="replay_batch", kind="exact", what="x", case=case, mistakes=mistakes)
        check.close(y, ey, unit="replay_batch", kind="exact", what="y (x shifted by one token)", case=case)


@pytest.mark.points(2)
def test_replay_batch_row_counts_and_ties(impl):
    # (batch_size, fraction, old rows): halves go to the even integer (1.5 -> 2, 2.5 -> 2, 0.5 -> 0)
    for B, fraction, want in ((3, 0.5, 2), (5, 0.5, 2), (2, 0.25, 0), (2, 0.75, 2), (10, 0.3, 3), (7, 1.0, 7),
                              (7, 0.0, 0), (4, 0.6, 2)):
        case = check.describe(batch_size=B, replay_fraction=fraction)
        x, _ = impl.replay_batch(NEW, OLD, B, 3, fraction, tensors.generator(B))
        is_old = (x[:, 0] < 100).tolist()
        check.equal(sum(is_old), want, unit="replay_batch", what="number of old-domain (replayed) rows", case=case,
                    mistakes={name: fn(fraction, B) for name, fn in _COUNT_MISTAKES.items()})
        check.equal(is_old, [True] * want + [False] * (B - want), unit="replay_batch",
                    what="which rows are old (rows 0 … n_old − 1 old, the rest new)", case=case,
                    mistakes={"new rows placed before the old rows": [False] * (B - want) + [True] * want})


@pytest.mark.points(1)
def test_replay_batch_matches_reference(impl):
    record = reference.load(O.TOPIC, "replay")
    new, old = record["new"], record["old"]
    B, T, seed = (int(v) for v in record["settings"][:3])
    fraction = float(record["fraction"])
    x, y = impl.replay_batch(new, old, B, T, fraction, tensors.generator(seed))
    case = check.describe(batch_size=B, block_size=T, replay_fraction=fraction, seed=seed)
    check.close(x, record["x"], unit="replay_batch", kind="exact", what="x", case=case)
    check.close(y, record["y"], unit="replay_batch", kind="exact", what="y", case=case)


@pytest.mark.points(2)
def test_replay_batch_edges_generator_and_raises(impl):
    short = torch.arange(200, 202)                     # too short for any window of block_size 3
    x, _ = impl.replay_batch(NEW, short, 4, 3, 0.0, tensors.generator(0))
    check.that(bool((x >= 100).all()), "replay_batch", "replay_fraction 0 must draw only new rows "
               "(and never read old_data)", case=check.describe(replay_fraction=0.0, old_data=short))
    x, _ = impl.replay_batch(short, OLD, 4, 3, 1.0, tensors.generator(0))
    check.that(bool((x < 100).all()), "replay_batch", "replay_fraction 1 must draw only old rows "
               "(and never read new_data)", case=check.describe(replay_fraction=1.0, new_data=short))
    a = impl.replay_batch(NEW, OLD, 6, 4, 0.5, tensors.generator(9))
    b = impl.replay_batch(NEW, OLD, 6, 4, 0.5, tensors.generator(9))
    c = impl.replay_batch(NEW, OLD, 6, 4, 0.5, tensors.generator(10))
    check.that(torch.equal(a[0], b[0]) and not torch.equal(a[0], c[0]), "replay_batch",
               "all randomness must come from `generator`: the same seed gives the same batch, another seed another")
    torch.manual_seed(4)
    d = impl.replay_batch(NEW, OLD, 6, 4, 0.5)
    torch.manual_seed(4)
    e = impl.replay_batch(NEW, OLD, 6, 4, 0.5)
    check.that(torch.equal(d[0], e[0]), "replay_batch", "without a generator, the global RNG must be used "
               "(torch.manual_seed reproduces the batch)")
    for args, why in (((NEW, OLD, 0, 3, 0.5), "batch_size < 1"), ((NEW, OLD, 4, 3, -0.1), "replay_fraction < 0"),
                      ((NEW, OLD, 4, 3, 1.5), "replay_fraction > 1"),
                      ((NEW, short, 4, 3, 0.5), "old_data shorter than block_size + 1 while old rows are drawn"),
                      ((short, OLD, 4, 3, 0.5), "new_data shorter than block_size + 1 while new rows are drawn")):
        check.expect_raises(ValueError, impl.replay_batch, *args, tensors.generator(0), unit="replay_batch", why=why,
                            case=check.describe(batch_size=args[2], block_size=args[3], replay_fraction=args[4]))


@pytest.mark.points(2)
@examples(25)
@given(B=st.integers(1, 9), T=st.integers(1, 10), fraction=st.floats(0.0, 1.0), seed=seeds())
def test_replay_batch_windows_property(impl, B, T, fraction, seed):
    case = check.describe(batch_size=B, block_size=T, replay_fraction=fraction, seed=seed)
    x, y = impl.replay_batch(NEW, OLD, B, T, fraction, tensors.generator(seed))
    check.that(tuple(x.shape) == (B, T) and tuple(y.shape) == (B, T) and x.dtype == y.dtype == torch.int64,
               "replay_batch", f"x and y must be ({B}, {T}) int64", f"got {tuple(x.shape)} {x.dtype}, "
               f"{tuple(y.shape)} {y.dtype}", case=case)
    steps = torch.arange(T)
    for b in range(B):
        stream = OLD if int(x[b, 0]) < 100 else NEW
        start = int(x[b, 0] - stream[0])
        check.that(0 <= start <= len(stream) - T - 1, "replay_batch", f"row {b} starts outside its stream's windows",
                   case=case)
        check.close(x[b], stream[start + steps], unit="replay_batch", kind="exact",
                    what=f"row {b} (a contiguous window of one stream)", case=case)
        check.close(y[b], stream[start + steps + 1], unit="replay_batch", kind="exact",
                    what=f"targets of row {b}", case=case)


# ================================================================= average_checkpoints

def _checkpoints(n, seed, dtype=torch.float64):
    out = []
    for i in range(n):
        out.append({"layer.weight": tensors.randn((3, 4), seed + 10 * i, dtype),
                    "layer.bias": tensors.randn((4,), seed + 10 * i + 1, dtype),
                    "steps": torch.tensor([7, 3]),
                    "mask": torch.tensor([True, False, True])})
    return out


def _check_average(got, expected, case, mistakes=None):
    check.that(isinstance(got, dict) and list(got) == list(expected), "average_checkpoints",
               "must return a dict with the names of state_dicts[0], in its order",
               f"got {list(got) if isinstance(got, dict) else type(got).__name__}, expected {list(expected)}", case=case)
    for k, v in expected.items():
        check.close(got[k], v, unit="average_checkpoints", kind="reduction", what=f"entry {k!r}", case=case,
                    mistakes={m: w[k] for m, w in (mistakes or {}).items()})


@pytest.mark.points(2)
def test_average_by_hand(impl):
    a = {"w": torch.tensor([1.0, 2.0], dtype=torch.float64)}
    b = {"w": torch.tensor([5.0, 10.0], dtype=torch.float64)}
    wrong = {"weights not normalised (Σ weights[i]·state_dicts[i])": {"w": torch.tensor([16.0, 32.0], dtype=torch.float64)},
             "weights ignored (a plain mean)": {"w": torch.tensor([3.0, 6.0], dtype=torch.float64)},
             "weights applied in reverse order": {"w": torch.tensor([2.0, 4.0], dtype=torch.float64)}}
    _check_average(impl.average_checkpoints([a, b], [1.0, 3.0]), {"w": torch.tensor([4.0, 8.0], dtype=torch.float64)},
                   check.describe(state_dicts="[{w: [1, 2]}, {w: [5, 10]}]", weights=[1.0, 3.0]), wrong)
    _check_average(impl.average_checkpoints([a, b]), {"w": torch.tensor([3.0, 6.0], dtype=torch.float64)},
                   check.describe(state_dicts="[{w: [1, 2]}, {w: [5, 10]}]", weights=None))
    _check_average(impl.average_checkpoints([a, b], [0.25, 0.75]), {"w": torch.tensor([4.0, 8.0], dtype=torch.float64)},
                   check.describe(state_dicts="[{w: [1, 2]}, {w: [5, 10]}]", weights=[0.25, 0.75]), wrong)
    # float32 entries accumulated in float64: 1e8/3 + 1/3 − 1e8/3 keeps the 1/3 (a float32 sum loses it)
    big = [{"w": torch.tensor([v], dtype=torch.float32)} for v in (1e8, 1.0, -1e8)]
    got = impl.average_checkpoints(big)
    _check_average(got, {"w": torch.tensor([1 / 3], dtype=torch.float32)},
                   check.describe(state_dicts="w = 1e8, 1, -1e8 (float32)", weights=None),
                   {"accumulated in float32 instead of float64": {"w": torch.tensor([0.0])}})
    _check_average(impl.average_checkpoints((a, b), (0, 2)), {"w": torch.tensor([5.0, 10.0], dtype=torch.float64)},
                   check.describe(state_dicts="a tuple", weights=(0, 2), note="integer weights, one of them 0"))


@pytest.mark.points(2)
def test_average_gradients(impl):
    weights = [2.0, 1.0, 1.0]
    inputs = [tensors.randn((2, 3), 30 + i) for i in range(3)]
    check.grads(lambda *ts: impl.average_checkpoints([{"w": t} for t in ts], weights)["w"],
                lambda *ts: sum(w / 4.0 * t for w, t in zip(weights, ts)), inputs,
                names=["state_dicts[0]['w']", "state_dicts[1]['w']", "state_dicts[2]['w']"],
                unit="average_checkpoints", case=check.describe(weights=weights, shape=(2, 3)),
                mistakes={"weights not normalised": lambda *ts: sum(w * t for w, t in zip(weights, ts))})
    # float32 inputs: the result is float32 and still connected to the graph
    t32 = [tensors.randn((4,), 40 + i, torch.float32).requires_grad_(True) for i in range(2)]
    out = impl.average_checkpoints([{"w": t} for t in t32], [1.0, 1.0])["w"]
    check.that(out.dtype == torch.float32 and out.requires_grad, "average_checkpoints",
               "float32 inputs that require grad: the result must be float32 and connected to the graph",
               f"got dtype {out.dtype}, requires_grad {out.requires_grad}")
    out.sum().backward()
    check.close(t32[0].grad, torch.full((4,), 0.5), unit="average_checkpoints", kind="elementwise",
                what="gradient w.r.t. a float32 checkpoint (its weight, 0.5)")


@pytest.mark.points(2)
def test_average_fresh_tensors_and_copied_entries(impl):
    sds = _checkpoints(3, 5)
    reordered = {k: sds[1][k] for k in reversed(list(sds[1]))}      # the same names in another order
    before = [{k: v.clone() for k, v in sd.items()} for sd in sds]
    got = impl.average_checkpoints([sds[0], reordered, sds[2]], [1.0, 2.0, 3.0])
    _check_average(got, O.weighted_mean(sds, [1.0, 2.0, 3.0]), check.describe(note="state dict 1 lists its names "
                                                                                   "in reverse order"))
    for k in ("steps", "mask"):
        check.that(got[k].dtype == sds[0][k].dtype and torch.equal(got[k], sds[0][k]), "average_checkpoints",
                   f"the non-floating entry {k!r} must be copied unchanged (dtype {sds[0][k].dtype})",
                   f"got {got[k]!r}")
    for i, (sd, old) in enumerate(zip(sds, before)):
        check.that(all(torch.equal(sd[k], old[k]) for k in sd), "average_checkpoints",
                   f"state dict {i} was modified; the inputs must be left unchanged")
    single = impl.average_checkpoints([sds[0]])
    for k, v in single.items():
        check.close(v, sds[0][k], unit="average_checkpoints", kind="exact", what=f"entry {k!r} of a one-checkpoint "
                    "average (the checkpoint itself)")
        check.that(v.data_ptr() != sds[0][k].data_ptr(), "average_checkpoints",
                   f"entry {k!r} of the result shares memory with the input; return new tensors "
                   "(copy the non-floating entries with .clone())")


@pytest.mark.points(2)
def test_average_raises(impl):
    sds = _checkpoints(2, 1)
    missing = {k: v for k, v in sds[1].items() if k != "layer.bias"}
    reshaped = {**sds[1], "layer.bias": torch.zeros(5, dtype=torch.float64)}
    retyped = {**sds[1], "layer.bias": sds[1]["layer.bias"].float()}
    counted = {**sds[1], "steps": torch.tensor([7, 4])}
    for args, why in ((([],), "no state dicts"), (([sds[0], missing],), "the names differ"),
                      (([sds[0], reshaped],), "a shape differs"), (([sds[0], retyped],), "a dtype differs"),
                      (([sds[0], counted],), "a non-floating entry differs"),
                      ((sds, [1.0]), "weights of the wrong length"), ((sds, [1.0, -1.0]), "a negative weight"),
                      ((sds, [0.0, 0.0]), "the weights sum to 0"), ((sds, [1.0, float("nan")]), "a NaN weight"),
                      ((sds, [1.0, float("inf")]), "an infinite weight")):
        check.expect_raises(ValueError, impl.average_checkpoints, *args, unit="average_checkpoints", why=why,
                            case=why)


@pytest.mark.points(1)
def test_average_matches_reference(impl):
    record = reference.load(O.TOPIC, "average")
    n = int(record["n"])
    sds = [{k.split(".", 1)[1]: v for k, v in record.items() if k.startswith(f"in{i}.")} for i in range(n)]
    got = impl.average_checkpoints(sds, record["weights"].tolist())
    expected = {k.split(".", 1)[1]: v for k, v in record.items() if k.startswith("out.")}
    _check_average(got, {k: expected[k] for k in sds[0]}, check.describe(n=n, weights=record["weights"]))


@pytest.mark.points(2)
@examples(15)
@given(n=st.integers(1, 4), seed=seeds(), dtype=st.sampled_from([torch.float32, torch.float64]), data=st.data())
def test_average_matches_oracle(impl, n, seed, dtype, data):
    weights = data.draw(st.none() | st.lists(st.floats(0.0, 5.0), min_size=n, max_size=n).filter(lambda w: sum(w) > 0),
                        label="weights")
    sds = _checkpoints(n, seed, dtype)
    case = check.describe(n=n, seed=seed, dtype=dtype, weights=weights)
    got = impl.average_checkpoints(sds, weights)
    expected = O.weighted_mean(sds, weights)
    uniform = O.weighted_mean(sds)
    _check_average(got, expected, case, {"weights ignored (a plain mean)": uniform} if weights else None)
    for k in expected:
        check.that(got[k].dtype == sds[0][k].dtype, "average_checkpoints",
                   f"entry {k!r} must keep its dtype {sds[0][k].dtype}, got {got[k].dtype}", case=case)


# ================================================================= EMA

class _Net(nn.Module):
    """A Linear layer, a floating buffer and an integer buffer."""

    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.register_buffer("running", torch.zeros(2))
        self.register_buffer("seen", torch.zeros((), dtype=torch.long))


def _set_state(model, seed):
    with torch.no_grad():
        for i, (k, v) in enumerate(sorted(model.state_dict().items())):
            if v.is_floating_point():
                v.copy_(tensors.randn(v.shape, seed + i, v.dtype))
            else:
                v.fill_(seed)


def _states_of(seeds_):
    net = _Net()
    states = []
    for s in seeds_:
        _set_state(net, s)
        states.append({k: v.clone() for k, v in net.state_dict().items()})
    return net, states


@pytest.mark.points(1)
def test_ema_init(impl):
    net = _Net()
    _set_state(net, 3)
    ema = impl.EMA(net, 0.9)
    check.that(ema.decay == 0.9 and ema.num_updates == 0, "EMA.__init__", "store decay and start num_updates at 0",
               f"got decay {getattr(ema, 'decay', None)!r}, num_updates {getattr(ema, 'num_updates', None)!r}")
    check.equal(sorted(ema.shadow), sorted(net.state_dict()), unit="EMA.__init__",
                what="shadow names (every entry of model.state_dict(), buffers included)")
    for k, v in net.state_dict().items():
        check.close(ema.shadow[k], v, unit="EMA.__init__", kind="exact", what=f"shadow[{k!r}] at the start")
        check.that(not ema.shadow[k].requires_grad and ema.shadow[k].data_ptr() != v.data_ptr(), "EMA.__init__",
                   f"shadow[{k!r}] must be a detached copy that shares no memory with the model")
    for decay in (-0.1, 1.5):
        check.expect_raises(ValueError, impl.EMA, net, decay, unit="EMA.__init__", why="decay outside [0, 1]",
                            case=check.describe(decay=decay))
    for decay in (0.0, 1.0):
        impl.EMA(net, decay)


@pytest.mark.points(3)
def test_ema_update_recursion(impl):
    net, states = _states_of([11, 12, 13, 14, 15])
    net.load_state_dict(states[0])
    ema = impl.EMA(net, 0.8)
    for i, sd in enumerate(states[1:], start=1):
        net.load_state_dict(sd)
        ema.update(net)
        expected = O.ema_states(states[:i + 1], 0.8)
        swapped = O.ema_states(states[:i + 1], 0.2)
        case = check.describe(decay=0.8, updates=i)
        for k, v in expected.items():
            check.close(ema.shadow[k], v, unit="EMA.update", kind="reduction", what=f"shadow[{k!r}]", case=case,
                        mistakes={"decay and 1 − decay swapped": swapped[k],
                                  "shadow not updated (still the initial weights)": states[0][k]})
        check.that(all(torch.equal(net.state_dict()[k], sd[k]) for k in sd), "EMA.update", "the model was modified",
                   case=case)
        check.equal(ema.num_updates, i, unit="EMA.update", what="num_updates", case=case)
    # closed form: the model held at θ for n = 6 updates from θ₀ gives β⁶·θ₀ + (1 − β⁶)·θ
    net.load_state_dict(states[0])
    ema = impl.EMA(net, 0.5)
    net.load_state_dict(states[1])
    for _ in range(6):
        ema.update(net)
    w = net.lin.weight.detach()
    check.close(ema.shadow["lin.weight"], 0.5 ** 6 * states[0]["lin.weight"] + (1 - 0.5 ** 6) * w, unit="EMA.update",
                kind="reduction", what="shadow after 6 updates at a fixed θ (βⁿ·θ₀ + (1 − βⁿ)·θ)",
                case=check.describe(decay=0.5, updates=6))
    check.that(not any(v.requires_grad for v in ema.shadow.values()), "EMA.update",
               "the shadow must not require grad (update without autograd)")


@pytest.mark.points(1)
def test_ema_decay_edges_and_parameters_with_grad(impl):
    net, states = _states_of([21, 22])
    net.load_state_dict(states[0])
    keep, follow = impl.EMA(net, 1.0), impl.EMA(net, 0.0)
    net.load_state_dict(states[1])
    (net.lin.weight.sum() * 2).backward()          # gradients present: update still averages the values only
    keep.update(net)
    follow.update(net)
    for k in states[0]:
        if states[0][k].is_floating_point():
            check.close(keep.shadow[k], states[0][k], unit="EMA.update", kind="elementwise",
                        what=f"shadow[{k!r}] with decay 1 (frozen at the start)")
        check.close(follow.shadow[k], states[1][k], unit="EMA.update", kind="elementwise",
                    what=f"shadow[{k!r}] with decay 0 (the current weights)")
    check.close(keep.shadow["seen"], states[1]["seen"], unit="EMA.update", kind="exact",
                what="the integer buffer (copied, whatever the decay)")


@pytest.mark.points(1)
def test_ema_copy_to(impl):
    net, states = _states_of([31, 32, 33])
    net.load_state_dict(states[0])
    ema = impl.EMA(net, 0.6)
    net.load_state_dict(states[1])
    ema.update(net)
    target = _Net()
    ema.copy_to(target)
    for k, v in target.state_dict().items():
        check.close(v, ema.shadow[k], unit="EMA.copy_to", kind="exact", what=f"model entry {k!r} after copy_to")
    snapshot = {k: v.clone() for k, v in target.state_dict().items()}
    net.load_state_dict(states[2])
    ema.update(net)
    check.that(all(torch.equal(target.state_dict()[k], snapshot[k]) for k in snapshot), "EMA.copy_to",
               "a later EMA update changed the model: copy the values, do not share the shadow's tensors")


@pytest.mark.points(1)
def test_ema_matches_reference(impl):
    record = reference.load(O.TOPIC, "ema")
    net = _Net()
    n = int(record["n"])
    net.load_state_dict({k.split(".", 1)[1]: v for k, v in record.items() if k.startswith("state0.")})
    ema = impl.EMA(net, float(record["decay"]))
    for i in range(1, n):
        net.load_state_dict({k.split(".", 1)[1]: v for k, v in record.items() if k.startswith(f"state{i}.")})
        ema.update(net)
    for k, v in record.items():
        if k.startswith("shadow."):
            check.close(ema.shadow[k.split(".", 1)[1]], v, unit="EMA.update", kind="reduction",
                        what=f"shadow[{k.split('.', 1)[1]!r}]", case=check.describe(decay=float(record["decay"]), updates=n - 1))


# ================================================================= continue_pretraining

RUN = dict(batch_size=4, block_size=8, replay_fraction=0.5, start_lr=1e-3, max_lr=2e-2, min_lr=2e-3, rewarm=2)


def _streams():
    return tensors.randint((300,), 50, high=12, low=6), tensors.randint((300,), 51, high=6)   # new, old


@pytest.mark.points(3)
def test_continue_pretraining_matches_oracle_loop(impl):
    new, old = _streams()
    student, oracle = O.tiny_llama(0), O.tiny_llama(0)
    student.eval()
    losses = impl.continue_pretraining(student, new, old, 6, generator=tensors.generator(1), **RUN)
    expected, _ = O.oracle_continue(oracle, new, old, 6, generator=tensors.generator(1), **RUN)
    case = check.describe(steps=6, dtype=torch.float64, **RUN)
    check.that(isinstance(losses, list) and len(losses) == 6 and all(isinstance(v, float) for v in losses),
               "continue_pretraining", "must return a list of `steps` Python floats", f"got {losses!r}", case=case)
    wrong = {"learning rate never set from rewarm_schedule (stays at max_lr)":
             O.oracle_continue(O.tiny_llama(0), new, old, 6, generator=tensors.generator(1), schedule=False, **RUN)[0],
             "gradients not clipped to norm 1": O.oracle_continue(O.tiny_llama(0), new, old, 6,
                                                                  generator=tensors.generator(1), clip=False, **RUN)[0]}
    check.that(all(abs(v[-1] - expected[-1]) > 1e-3 for v in wrong.values()), "grader",
               "the setting must make clipping and the schedule matter (grader bug)")
    check.close(torch.tensor(losses, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64),
                unit="continue_pretraining", kind="loss", what="loss of every step", case=case,
                mistakes={k: torch.tensor(v, dtype=torch.float64) for k, v in wrong.items()})
    for (name, p), q in zip(student.named_parameters(), oracle.parameters()):
        check.close(p, q, unit="continue_pretraining", kind="model", what=f"parameter {name} after the run", case=case)
    check.that(student.training, "continue_pretraining", "the model must be left in train mode", case=case)


@pytest.mark.points(2)
def test_continue_pretraining_with_ema(impl):
    new, old = _streams()
    settings = {**RUN, "replay_fraction": 0.25, "rewarm": 0}
    student, oracle = O.tiny_llama(3), O.tiny_llama(3)
    ema = impl.EMA(student, 0.7)
    impl.continue_pretraining(student, new, old, 5, ema=ema, generator=tensors.generator(2), **settings)
    _, shadow = O.oracle_continue(oracle, new, old, 5, generator=tensors.generator(2), ema_decay=0.7, **settings)
    case = check.describe(steps=5, ema_decay=0.7, **settings)
    check.equal(ema.num_updates, 5, unit="continue_pretraining", what="EMA updates (one after every step)", case=case)
    for k, v in shadow.items():
        check.close(ema.shadow[k], v, unit="continue_pretraining", kind="model", what=f"EMA shadow[{k!r}]", case=case)
    check.equal(impl.continue_pretraining(O.tiny_llama(3), new, old, 0, generator=tensors.generator(2), **settings), [],
                unit="continue_pretraining", what="losses of a run of 0 steps")


@pytest.mark.points(2)
def test_continue_pretraining_matches_reference(impl):
    record = reference.load(O.TOPIC, "continue")
    model = O.tiny_llama(0)
    model.load_state_dict({k[len("init."):]: v for k, v in record.items() if k.startswith("init.")})
    losses = impl.continue_pretraining(model, record["new"], record["old"], int(record["steps"]),
                                       generator=tensors.generator(int(record["seed"])), **RUN)
    check.close(torch.tensor(losses, dtype=torch.float64), record["losses"], unit="continue_pretraining", kind="loss",
                what="loss of every step", case=check.describe(steps=int(record["steps"]), **RUN))
