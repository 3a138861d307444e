"""Graders for 09_training (part 3): train_step (gradient accumulation), sft_labels, and
save_checkpoint / load_checkpoint.

Evidence:
  - train_step: one batch of 16 as the oracle of 4 micro-batches of 4 (gradients and the
    parameters after an SGD step), clipping of the accumulated gradient against
    `torch.nn.utils.clip_grad_norm_`, old gradients cleared, one optimizer step, the mean loss;
  - sft_labels: a chat worked by hand, golden data, a token-by-token oracle on random chats;
  - checkpoints: the step after a resume equals the uninterrupted run bit for bit, for a
    model with dropout (so the RNG matters) and AdamW (so the optimizer state matters); the
    mistakes (no RNG, no optimizer state) are named from their own resumed runs; the file
    loads with `weights_only=True` and holds the documented keys.
"""

from __future__ import annotations

import copy
import os
import pathlib
import tempfile

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import training_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds

STEP = "train_step"


def _ce_loss(model, x, y):
    return F.cross_entropy(model(x), y)


def _linear(seed):
    return tensors.randomize_parameters(nn.Linear(5, 3).double(), seed, 0.7)


def _data(seed, n=16):
    return tensors.randn((n, 5), seed + 10, torch.float64), tensors.randint((n,), seed + 11, high=3)


def _grads(model):
    return torch.cat([p.grad.reshape(-1) for p in model.parameters()])


def _full_batch_grads(model, x, y):
    oracle = copy.deepcopy(model)
    oracle.zero_grad(set_to_none=True)
    _ce_loss(oracle, x, y).backward()
    return _grads(oracle)


class CountingSGD(torch.optim.SGD):
    """torch.optim.SGD that counts its step() calls."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.steps = 0

    def step(self, closure=None):
        self.steps += 1
        return super().step(closure)


# ================================================================= train_step

@pytest.mark.points(4)
def test_train_step_accumulation_equals_one_batch(impl):
    # 4 micro-batches of 4 must give the gradient (and SGD step) of one batch of 16.
    seed = 1
    model = _linear(seed)
    x, y = _data(seed)
    expected_grad = _full_batch_grads(model, x, y)
    last = _full_batch_grads(model, x[12:], y[12:])
    start = torch.cat([p.detach().reshape(-1) for p in model.parameters()])
    micro = [(x[i:i + 4], y[i:i + 4]) for i in range(0, 16, 4)]
    opt = CountingSGD(model.parameters(), lr=0.1)
    loss = impl.train_step(model, opt, _ce_loss, micro)
    case = "4 micro-batches of 4 rows vs one batch of 16; nn.Linear(5, 3) float64, SGD(lr=0.1)"
    check.equal(opt.steps, 1, unit=STEP, case=case, what="number of optimizer.step() calls",
                mistakes={"optimizer stepped after every micro-batch": 4,
                          "optimizer stepped after every micro-batch and once more at the end": 5})
    check.close(_grads(model), expected_grad, unit=STEP, case=case, kind="gradient",
                what="accumulated gradient (must equal the gradient of the whole batch)",
                mistakes={"accumulation without dividing by the number of micro-batches": expected_grad * 4,
                          "gradients cleared inside the loop: only the last micro-batch counts": last / 4,
                          "only the last micro-batch counts, not divided": last})
    check.close(torch.cat([p.detach().reshape(-1) for p in model.parameters()]), start - 0.1 * expected_grad, unit=STEP,
                case=case, kind="gradient", what="parameters after the step")
    with torch.no_grad():                                          # the losses at the parameters before the step
        micro_losses = [float(F.cross_entropy(F.linear(xb, start[:15].view(3, 5), start[15:]), yb)) for xb, yb in micro]
    check.that(isinstance(loss, float), STEP, "must return a Python float", f"got {type(loss).__name__}", case=case)
    check.close(torch.tensor(loss, dtype=torch.float64), torch.tensor(sum(micro_losses) / 4, dtype=torch.float64),
                unit=STEP, case=case, kind="loss", what="returned loss (the mean of the micro-batch losses)",
                mistakes={"returns the sum of the micro-batch losses": torch.tensor(sum(micro_losses), dtype=torch.float64),
                          "returns the last micro-batch's loss": torch.tensor(micro_losses[-1], dtype=torch.float64)})


@pytest.mark.points(2)
def test_train_step_clears_old_gradients(impl):
    seed = 2
    model = _linear(seed)
    x, y = _data(seed, 6)
    expected = _full_batch_grads(model, x, y)
    for p in model.parameters():
        p.grad = torch.full_like(p, 100.0)                          # stale gradients from an earlier step
    opt = CountingSGD(model.parameters(), lr=0.0)
    loss = impl.train_step(model, opt, _ce_loss, [(x, y)])          # k = 1: a plain step
    case = "one micro-batch of 6 rows; every .grad filled with 100 before the call"
    check.close(_grads(model), expected, unit=STEP, case=case, kind="gradient",
                what="gradient after the step (old gradients must be cleared first)",
                mistakes={"old gradients not cleared (zero_grad missing)": expected + 100.0})
    check.close(torch.tensor(loss, dtype=torch.float64), F.cross_entropy(model(x), y).detach(), unit=STEP, case=case,
                kind="loss", what="returned loss")


def _clip_per_micro_batch(model, micro, max_norm):
    """Grads when clipping after every micro-batch backward (the mistake)."""
    m = copy.deepcopy(model)
    m.zero_grad(set_to_none=True)
    for xb, yb in micro:
        (_ce_loss(m, xb, yb) / len(micro)).backward()
        torch.nn.utils.clip_grad_norm_(m.parameters(), max_norm)
    return _grads(m)


@pytest.mark.points(3)
@examples(6)
@given(max_norm=st.sampled_from([0.02, 0.1, 0.3, 100.0]), k=st.sampled_from([2, 3]), seed=seeds())
def test_train_step_clips_the_accumulated_gradient(impl, max_norm, k, seed):
    model = _linear(seed)
    x, y = _data(seed, 6 * k)
    oracle = copy.deepcopy(model)
    oracle.zero_grad(set_to_none=True)
    _ce_loss(oracle, x, y).backward()
    unclipped = _grads(oracle)
    torch.nn.utils.clip_grad_norm_(oracle.parameters(), max_norm)
    micro = [(x[i:i + 6], y[i:i + 6]) for i in range(0, 6 * k, 6)]
    mistake_per_micro = _clip_per_micro_batch(model, micro, max_norm)
    impl.train_step(model, torch.optim.SGD(model.parameters(), lr=0.0), _ce_loss, micro, max_norm=max_norm)
    case = check.describe(micro_batches=k, rows_each=6, max_norm=max_norm, grad_norm=float(unclipped.norm()))
    check.close(_grads(model), _grads(oracle), unit=STEP, case=case, kind="gradient",
                what="gradient after the step (the accumulated gradient clipped once to max_norm)",
                mistakes={"clipping each micro-batch instead of the accumulated gradient": mistake_per_micro,
                          "max_norm ignored (no clipping)": unclipped})


@pytest.mark.points(1)
def test_train_step_rejects_no_micro_batches(impl):
    model = _linear(0)
    for empty in ([], ()):
        check.expect_raises(ValueError, impl.train_step, model, torch.optim.SGD(model.parameters(), lr=0.1), _ce_loss,
                            empty, unit=STEP, case=check.describe(micro_batches=empty), why="micro_batches is empty")


# ================================================================= sft_labels

SFT = "sft_labels"
HEADERS = {"system": 0, "user": 1, "assistant": 2}


def _sft_mistakes(turns, headers, eot, ignore_index=-100):
    ids, labels = O.sft_oracle(turns, headers, eot, ignore_index)
    shifted = torch.cat([labels[1:], torch.tensor([ignore_index])])
    return {
        "the SFT mask drops the end-of-turn token": lambda: O.sft_oracle(turns, headers, eot, ignore_index, keep_eot=False)[1],
        "loss on the assistant header token too": lambda: O.sft_oracle(turns, headers, eot, ignore_index, train_header=True)[1],
        "loss on every token (no mask)": lambda: O.sft_oracle(turns, headers, eot, ignore_index, train_all=True)[1],
        "labels shifted by one (they must be aligned with ids)": lambda: shifted,
    }


def _check_sft(impl, turns, headers, eot, ignore_index=-100, case=""):
    ids, labels = impl.sft_labels(turns, headers, eot, ignore_index=ignore_index)
    want_ids, want_labels = O.sft_oracle(turns, headers, eot, ignore_index)
    for name, value in (("ids", ids), ("labels", labels)):
        check.that(isinstance(value, torch.Tensor) and value.dtype == torch.int64 and value.dim() == 1, SFT,
                   f"{name} must be a 1-D int64 tensor", f"got {value!r}", case=case)
    check.equal(ids, want_ids, unit=SFT, case=case, what="ids ([header] + content + [eot] per turn)")
    check.equal(labels, want_labels, unit=SFT, case=case, what="labels",
                mistakes=_sft_mistakes(turns, headers, eot, ignore_index))


@pytest.mark.points(3)
def test_sft_labels_by_hand(impl):
    turns = [("system", [5, 6]), ("user", [7, 8, 9]), ("assistant", [10, 11]), ("user", [12]), ("assistant", [13, 14, 15])]
    ids, labels = impl.sft_labels(turns, HEADERS, 3)
    X = -100
    case = check.describe(turns=turns, header_ids=HEADERS, eot_id=3)
    check.equal(ids.tolist(), [0, 5, 6, 3, 1, 7, 8, 9, 3, 2, 10, 11, 3, 1, 12, 3, 2, 13, 14, 15, 3], unit=SFT, case=case,
                what="ids")
    check.equal(labels, torch.tensor([X, X, X, X, X, X, X, X, X, X, 10, 11, 3, X, X, X, X, 13, 14, 15, 3]), unit=SFT,
                case=case, what="labels (assistant content and its eot only)", mistakes=_sft_mistakes(turns, HEADERS, 3))


@pytest.mark.points(1)
def test_sft_labels_match_reference(impl):
    rec = reference.load(O.TOPIC, "sft")
    turns = [(r, c) for r, c in rec["turns"]]
    ids, labels = impl.sft_labels(turns, rec["header_ids"], rec["eot_id"])
    case = f"reference/{O.TOPIC}/sft"
    check.equal(ids.tolist(), rec["ids"], unit=SFT, case=case, what="ids")
    check.equal(labels.tolist(), rec["labels"], unit=SFT, case=case, what="labels",
                mistakes={k: (lambda f=f: f().tolist()) for k, f in _sft_mistakes(turns, rec["header_ids"], rec["eot_id"]).items()})


@pytest.mark.points(2)
@examples(20)
@given(roles=st.lists(st.sampled_from(["system", "user", "assistant", "tool"]), min_size=1, max_size=6),
       lengths=st.lists(st.integers(0, 5), min_size=6, max_size=6), seed=seeds())
def test_sft_labels_random_chats(impl, roles, lengths, seed):
    headers = {"system": 50, "user": 51, "assistant": 52, "tool": 53}
    turns = [(role, tensors.randint((n,), seed + i, high=50).tolist()) for i, (role, n) in enumerate(zip(roles, lengths))]
    _check_sft(impl, turns, headers, 60, case=check.describe(turns=turns))


@pytest.mark.points(2)
def test_sft_labels_input_forms_and_raises(impl):
    # content as a tuple, a 1-D tensor, empty; a custom ignore_index; no turns at all.
    turns = (("user", (4, 5)), ("assistant", torch.tensor([6, 7])), ("assistant", []), ("user", torch.tensor([8])))
    _check_sft(impl, turns, HEADERS, 3, case="tuple, tensor and empty contents")
    _check_sft(impl, [("user", [4]), ("assistant", [5, 6])], HEADERS, 3, ignore_index=-1, case="ignore_index=-1")
    ids, labels = impl.sft_labels([], HEADERS, 3)
    check.that(ids.dtype == torch.int64 and ids.numel() == 0 and labels.numel() == 0, SFT,
               "no turns give empty int64 tensors", f"got {ids!r}, {labels!r}")
    check.expect_raises(ValueError, impl.sft_labels, [("user", [1]), ("robot", [2])], HEADERS, 3, unit=SFT,
                        case="role 'robot' with header_ids for system, user, assistant",
                        why="every role must be a key of header_ids")


# ================================================================= checkpoints

CKPT = "save_checkpoint / load_checkpoint"


def _dropout_run(seed=1, steps=3):
    torch.manual_seed(100)
    model = O.DropoutNet(seed).train()
    opt = torch.optim.AdamW(model.parameters(), lr=0.02, weight_decay=0.1)
    for step in range(steps):
        O.dropout_step(model, opt, step)
    return model, opt


def _resume_from(model_state, opt_state, rng, *, with_opt=True, with_rng=True, step=3):
    """The step after a resume that restores only some of the state (for naming mistakes)."""
    model = O.DropoutNet(2).train()
    model.load_state_dict(model_state)
    opt = torch.optim.AdamW(model.parameters(), lr=0.02, weight_decay=0.1)
    if with_opt:
        opt.load_state_dict(opt_state)
    torch.manual_seed(999)
    if with_rng:
        torch.set_rng_state(rng)
    O.dropout_step(model, opt, step)
    return O.flat_params(model)


@pytest.mark.points(4)
def test_checkpoint_resume_reproduces_next_step(impl):
    # 3 steps of a dropout model with torch.optim.AdamW, save; the uninterrupted run takes
    # steps 4 and 5. A fresh model, a fresh optimizer and a scrambled RNG, loaded from the
    # file, must take the very same steps (bit for bit).
    model, opt = _dropout_run()
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "ckpt.pt")
        snapshot = (copy.deepcopy(model.state_dict()), copy.deepcopy(opt.state_dict()), torch.get_rng_state())
        impl.save_checkpoint(path, model, opt, 3)
        expected = []
        for step in (3, 4):
            O.dropout_step(model, opt, step)
            expected.append(O.flat_params(model))
        torch.manual_seed(999)                                        # another run's RNG
        fresh = O.DropoutNet(2).train()
        fresh_opt = torch.optim.AdamW(fresh.parameters(), lr=0.02, weight_decay=0.1)   # no state yet
        step = impl.load_checkpoint(path, fresh, fresh_opt)
        check.equal(step, 3, unit="load_checkpoint", what="returned step")
        case = "DropoutNet (dropout 0.5) + torch.optim.AdamW, saved after 3 steps, resumed into fresh objects"
        mistakes = {"a checkpoint without the RNG state": lambda: _resume_from(*snapshot, with_rng=False),
                    "a checkpoint without the optimizer state": lambda: _resume_from(*snapshot, with_opt=False)}
        for i, step in enumerate((3, 4)):
            O.dropout_step(fresh, fresh_opt, step)
            check.close(O.flat_params(fresh), expected[i], unit=CKPT, case=case, kind="exact",
                        what=f"parameters after resumed step {step + 1} (must equal the uninterrupted run)",
                        mistakes=mistakes if i == 0 else None)


@pytest.mark.points(2)
def test_checkpoint_file_contents(impl):
    model, opt = _dropout_run(seed=3, steps=2)
    with tempfile.TemporaryDirectory() as folder:
        path = pathlib.Path(folder) / "run.pt"                       # a Path as well as a str
        rng = torch.get_rng_state()
        impl.save_checkpoint(path, model, opt, 2)
        try:
            data = torch.load(path, weights_only=True)
        except Exception as exc:
            check.fail("save_checkpoint", "the file must load with torch.load(path, weights_only=True)",
                       f"{type(exc).__name__}: {str(exc)[:300]}")
    check.that(isinstance(data, dict), "save_checkpoint", "the file must hold a dict", f"got {type(data).__name__}")
    missing = [k for k in ("model", "optimizer", "step", "rng") if k not in data]
    named = {"rng": "a checkpoint without the RNG state", "optimizer": "a checkpoint without the optimizer state"}
    check.that(not missing, "save_checkpoint", f"the checkpoint lacks the keys {missing}",
               *(f"known mistake: {named[k]}" for k in missing if k in named))
    check.that(data["step"] == 2 and isinstance(data["step"], int), "save_checkpoint", "'step' must be the int given",
               f"got {data['step']!r}")
    check.close(data["rng"], rng, unit="save_checkpoint", kind="exact", what="'rng' (torch.get_rng_state() at save time)")
    state = model.state_dict()
    check.equal(sorted(data["model"]), sorted(state), unit="save_checkpoint", what="keys of 'model' (model.state_dict())")
    for k, v in state.items():
        check.close(data["model"][k], v, unit="save_checkpoint", kind="exact", what=f"'model'[{k!r}]")
    saved = data["optimizer"]["state"]
    for i, s in opt.state_dict()["state"].items():
        check.close(saved[i]["exp_avg_sq"], s["exp_avg_sq"], unit="save_checkpoint", kind="exact",
                    what=f"'optimizer' state of parameter {i} (exp_avg_sq)")


def _draws_without_restore():
    torch.manual_seed(12345)
    O.DropoutNet(5)
    return torch.rand(6)


@pytest.mark.points(2)
def test_load_checkpoint_restores_rng_and_step(impl):
    model, opt = _dropout_run(seed=4, steps=1)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "ckpt.pt")
        impl.save_checkpoint(path, model, opt, 17)
        draws = torch.rand(6)                                        # what the run draws next
        torch.manual_seed(12345)
        other = O.DropoutNet(5)
        other_opt = torch.optim.AdamW(other.parameters())
        calls, original = [], torch.load

        def spy(*args, **kwargs):                                    # records how the file is read
            calls.append(kwargs.get("weights_only", "default"))
            return original(*args, **kwargs)

        torch.load = spy
        try:
            step = impl.load_checkpoint(path, other, other_opt)
        finally:
            torch.load = original
        check.that(all(w is True or w == "default" for w in calls), "load_checkpoint",
                   "must read the file with torch.load(path, weights_only=True) (no unpickling of arbitrary objects)",
                   f"torch.load was called with weights_only={calls}")
        check.that(isinstance(step, int) and step == 17, "load_checkpoint", "must return the saved step as an int",
                   f"got {step!r}")
        check.close(torch.rand(6), draws, unit="load_checkpoint", kind="exact",
                    what="random numbers drawn after loading (the global RNG must be restored)",
                    mistakes={"a checkpoint without the RNG state": _draws_without_restore})
        for (name, p), q in zip(other.named_parameters(), model.parameters()):
            check.close(p.detach(), q.detach(), unit="load_checkpoint", kind="exact", what=f"parameter {name} after loading")
        check.equal(other_opt.param_groups[0]["lr"], opt.param_groups[0]["lr"], unit="load_checkpoint",
                    what="optimizer lr after loading (the optimizer state dict must be restored)")
