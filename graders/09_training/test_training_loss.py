"""Graders for 09_training (part 1): cross_entropy.

Evidence: `F.cross_entropy` as the oracle for values on fresh inputs (any leading shape,
float32 and float64, ignored targets, extreme logits); the gradient against the closed form
(softmax − one-hot) / kept and a float64 gradcheck; golden data (reference/09_training);
every Raises clause. The unit runs with the built-ins it re-implements forbidden.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import training_oracle as O
from llmlab.testing import check, guard, reference
from llmlab.testing.strategies import examples, float_dtypes, seeds
from llmlab.testing.tensors import randint, randn

UNIT = "cross_entropy"


def _ce(impl, logits, targets, **kwargs):
    return guard.call_without(UNIT, O.CE_BUILTINS, impl.cross_entropy, logits, targets, **kwargs)


def _ce_mistakes(logits, targets, ignore_index=-100):
    """What the catalogued mistakes return on this input (computed with the oracle)."""
    z, t = logits.reshape(-1, logits.shape[-1]).double(), targets.reshape(-1)
    keep = t != ignore_index
    per = F.cross_entropy(z, torch.where(keep, t, 0), reduction="none") * keep
    naive = -(torch.log(torch.exp(z).sum(-1)) - z.gather(-1, torch.where(keep, t, 0)[:, None]).squeeze(-1))
    return {
        "mean over all positions, ignored ones included in the divisor": lambda: (per.sum() / t.numel()).to(logits.dtype),
        "sum instead of mean": lambda: per.sum().to(logits.dtype),
        "log-sum-exp without subtracting the max (exp overflows)": lambda: ((-naive * keep).sum() / keep.sum()).to(logits.dtype),
    }


@pytest.mark.points(3)
def test_cross_entropy_extreme_logits(impl):
    # exp(1e4) overflows in both dtypes: only the max-subtracted log-sum-exp stays finite.
    for dtype in (torch.float32, torch.float64):
        logits = torch.tensor([[1e4, -1e4, 9999.0, 0.0], [-1e4, -1e4, -1e4, -1e4 + 1], [88.0, 89.0, -90.0, 0.0],
                               [-3e3, 2e3, 2e3, 1.0]], dtype=dtype)
        targets = torch.tensor([2, 0, 1, 3])
        case = check.describe(logits=logits, targets=targets)
        out = _ce(impl, logits, targets)
        check.close(out, F.cross_entropy(logits, targets), unit=UNIT, case=case, kind="loss",
                    mistakes=_ce_mistakes(logits, targets))
        z = logits.clone().requires_grad_(True)
        _ce(impl, z, targets).backward()
        expected = (torch.softmax(logits, -1) - F.one_hot(targets, 4).to(dtype)) / 4
        check.close(z.grad, expected, unit=UNIT, case=case, kind="gradient", what="gradient w.r.t. the logits")


@pytest.mark.points(2)
def test_cross_entropy_gradcheck(impl):
    logits = randn((3, 2, 4), 11, torch.float64, 1.5)
    targets = torch.tensor([[0, 3], [-100, 1], [2, 2]])
    guard.gradcheck_without(UNIT, O.CE_BUILTINS, lambda z: impl.cross_entropy(z, targets), [logits],
                            case=check.describe(logits=logits, targets=targets))


@pytest.mark.points(2)
def test_cross_entropy_matches_reference(impl):
    rec = reference.load(O.TOPIC, "cross_entropy")
    z = rec["logits"].clone().requires_grad_(True)
    case = check.describe(logits=rec["logits"], targets=rec["targets"])
    loss = _ce(impl, z, rec["targets"])
    check.close(loss.reshape(1), rec["loss"], unit=UNIT, case=case, kind="loss",
                mistakes={k: (lambda f=f: f().reshape(1)) for k, f in _ce_mistakes(rec["logits"], rec["targets"]).items()})
    loss.backward()
    check.close(z.grad, rec["grad"], unit=UNIT, case=case, kind="gradient", what="gradient w.r.t. the logits")


@pytest.mark.points(2)
def test_cross_entropy_input_forms(impl):
    # batch of one and V = 1 (the loss is 0), a non-contiguous (transposed) input, a custom
    # ignore_index (then -100 is no longer special and 0 is), float64 kept as float64.
    one = torch.tensor([[0.3, -1.2, 2.0]], dtype=torch.float64)
    check.close(_ce(impl, one, torch.tensor([1])), F.cross_entropy(one, torch.tensor([1])), unit=UNIT,
                case=check.describe(logits=one), kind="loss")
    single = torch.tensor([[4.0], [-2.0]])
    check.close(_ce(impl, single, torch.tensor([0, 0])), torch.tensor(0.0), unit=UNIT,
                case=check.describe(logits=single), kind="loss", what="loss with V = 1 (always certain)")
    base = randn((5, 3, 2), 4, torch.float32)
    logits = base.transpose(0, 2)                                   # (2, 3, 5), not contiguous
    targets = randint((2, 3), 5, high=5)
    check.close(_ce(impl, logits, targets), F.cross_entropy(logits.reshape(-1, 5), targets.reshape(-1)), unit=UNIT,
                case=check.describe(logits=logits, contiguous=False), kind="loss")
    z = randn((4, 3), 6, torch.float64)
    t = torch.tensor([0, 2, 0, 1])
    case = check.describe(logits=z, targets=t, ignore_index=0)
    check.close(_ce(impl, z, t, ignore_index=0), F.cross_entropy(z, t, ignore_index=0), unit=UNIT, case=case,
                kind="loss", what="loss with ignore_index=0",
                mistakes={"ignore_index argument ignored (always -100)": F.cross_entropy(z, t)})


@pytest.mark.points(2)
def test_cross_entropy_raises(impl):
    logits = randn((3, 4), 0, torch.float32)
    for targets, why in ((torch.tensor([0, 1]), "targets.shape must equal logits.shape[:-1]"),
                         (torch.tensor([[0, 1, 2]]), "targets.shape must equal logits.shape[:-1]"),
                         (torch.tensor([0, 4, 1]), "a target equal to V is out of range"),
                         (torch.tensor([0, -1, 1]), "-1 is out of range (only ignore_index may be negative)"),
                         (torch.tensor([-100, -100, -100]), "every target is ignored")):
        check.expect_raises(ValueError, impl.cross_entropy, logits, targets, unit=UNIT, why=why,
                            case=check.describe(logits=logits, targets=targets))
    check.expect_raises(ValueError, impl.cross_entropy, logits, torch.tensor([-100, 1, 2]), ignore_index=1,
                        unit=UNIT, why="with ignore_index=1, -100 is an ordinary target, and out of range",
                        case=check.describe(targets=[-100, 1, 2], ignore_index=1))
@pytest.mark.points(3)
@examples(15)
@given(lead=st.sampled_from([(1,), (6,), (2, 5), (3, 1, 4)]), V=st.integers(1, 9), dtype=float_dtypes(),
       scale=st.sampled_from([0.5, 3.0, 30.0]), ignored=st.integers(0, 3), seed=seeds())
def test_cross_entropy_matches_torch(impl, lead, V, dtype, scale, ignored, seed):
    logits = randn(lead + (V,), seed, dtype, scale)
    targets = randint(lead, seed + 1, high=V)
    flat = targets.view(-1)
    flat[randint((min(ignored, flat.numel() - 1),), seed + 2, high=flat.numel())] = -100   # keep ≥ 1
    case = check.describe(logits=logits, targets=targets)
    expected = F.cross_entropy(logits.reshape(-1, V), targets.reshape(-1), ignore_index=-100)
    out = _ce(impl, logits, targets)
    check.that(isinstance(out, torch.Tensor) and out.dim() == 0, UNIT, "must return a 0-d tensor",
               f"got {type(out).__name__} of shape {tuple(getattr(out, 'shape', ()))}", case=case)
    check.close(out, expected, unit=UNIT, case=case, kind="loss", mistakes=_ce_mistakes(logits, targets))


@pytest.mark.points(3)
@examples(10)
@given(N=st.integers(1, 7), V=st.integers(2, 6), dtype=float_dtypes(), seed=seeds())
def test_cross_entropy_gradient_is_softmax_minus_one_hot(impl, N, V, dtype, seed):
    logits = randn((N, V), seed, dtype, 2.0)
    targets = randint((N,), seed + 1, high=V)
    if N > 1:
        targets[0] = -100                                    # an ignored row gets a zero gradient
    keep = targets != -100
    z = logits.clone().requires_grad_(True)
    loss = _ce(impl, z, targets)
    check.that(loss.requires_grad, UNIT, "the loss is not connected to the logits in the autograd graph",
               case=check.describe(logits=logits))
    guard.call_without(UNIT, O.CE_BUILTINS, loss.backward)
    onehot = F.one_hot(torch.where(keep, targets, 0), V).to(dtype)
    expected = (torch.softmax(logits, -1) - onehot) * keep[:, None] / keep.sum()
    check.close(z.grad, expected, unit=UNIT, case=check.describe(logits=logits, targets=targets), kind="gradient",
                what="gradient w.r.t. the logits (softmax − one-hot, divided by the kept count; 0 on ignored rows)",
                mistakes={"gradient not divided by the number of kept positions": lambda: expected * keep.sum(),
                          "ignored rows get a gradient": lambda: (torch.softmax(logits, -1) - onehot) / keep.sum()})
