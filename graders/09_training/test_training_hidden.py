"""Instructor-only graders for 09_training (left out of student bundles).

  - AdamW over 12 steps of the given TinyLlama (float64), in nanoGPT's two groups (decay on
    matrices only), against torch.optim.AdamW and the decay-after ordering;
  - cross_entropy on TinyLlama's logits against the model's own loss, gradients w.r.t. every
    parameter included;
  - a whole training loop (train_step with 2 micro-batches and clipping, lr_schedule, the
    student's AdamW) against the same loop built from PyTorch's parts on one batch;
  - a checkpoint resume with the student's AdamW and the schedule driven by the returned step.
"""

from __future__ import annotations

import os
import tempfile

import pytest
import torch

import training_oracle as O
from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.testing import check, guard, tensors

CONFIG = dict(vocab_size=17, block_size=8, n_layer=1, n_head=2, n_kv_head=1, d_model=16)


def _tiny_llama(seed):
    torch.manual_seed(seed)
    model = TinyLlama(LlamaConfig(**CONFIG)).double()
    return tensors.randomize_parameters(model, seed, 0.3, around_one=lambda n: n.endswith("norm.weight"))


def _groups(model, lr=3e-2, wd=0.1):
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    return [dict(params=decay, weight_decay=wd, lr=lr), dict(params=rest, weight_decay=0.0, lr=lr)]


def _batch(step, n=4):
    x = tensors.randint((n, CONFIG["block_size"]), 300 + step, high=CONFIG["vocab_size"])
    return x, torch.roll(x, -1, dims=1)


def _flat(model):
    return torch.cat([p.detach().reshape(-1) for p in model.parameters()])


def _llama_trajectory(make_opt, steps, run=None):
    model = _tiny_llama(0)
    opt = make_opt(_groups(model))
    rows = []
    for step in range(steps):
        x, y = _batch(step)
        opt.zero_grad(set_to_none=True)
        model(x, y)[1].backward()
        (run or (lambda fn: fn()))(opt.step)
        rows.append(_flat(model))
    return torch.stack(rows)


@pytest.mark.hidden
@pytest.mark.points(3)
def test_adamw_on_tiny_llama_hidden(impl):
    steps = 12
    actual = _llama_trajectory(impl.AdamW, steps, run=lambda fn: guard.call_without("AdamW.step", O.ADAMW_BUILTINS, fn))
    torch_run = _llama_trajectory(torch.optim.AdamW, steps)
    after_run = _llama_trajectory(lambda g: O.SlowAdam(g, decay="after"), steps)
    mistakes = {"Adam + L2: weight decay added to the gradient instead of decoupled decay":
                lambda: _llama_trajectory(lambda g: O.SlowAdam(g, decay="l2"), steps)}
    O.check_against_orderings(actual, torch_run, after_run, case=f"TinyLlama {CONFIG} float64, {steps} steps",
                              mistakes=mistakes)


@pytest.mark.hidden
@pytest.mark.points(2)
def test_cross_entropy_on_tiny_llama_hidden(impl):
    model = _tiny_llama(1)
    x, y = _batch(0, 3)
    y[0, :3] = -100
    names = [n for n, _ in model.named_parameters()]
    logits, loss = model(x, y)
    mine = guard.call_without("cross_entropy", O.CE_BUILTINS, impl.cross_entropy, logits, y)
    check.close(mine, loss, unit="cross_entropy", kind="loss", case="TinyLlama logits (3, 8, 17), three ignored")
    check.grads(lambda *ps: impl.cross_entropy(torch.func.functional_call(model, dict(zip(names, ps)), (x,))[0], y),
                lambda *ps: torch.func.functional_call(model, dict(zip(names, ps)), (x, y))[1],
                [p.detach() for p in model.parameters()], names=names, unit="cross_entropy",
                case="gradients of every TinyLlama parameter through the loss")


def _loop(model, steps, step_fn):
    losses = []
    for step in range(steps):
        losses.append(step_fn(model, step))
    return torch.tensor(losses, dtype=torch.float64)


@pytest.mark.hidden
@pytest.mark.points(3)
def test_training_loop_end_to_end_hidden(impl):
    steps, sched = 10, (3e-2, 3e-3, 3, 10)

    def student(model, opt, step):
        opt.param_groups[0]["lr"] = opt.param_groups[1]["lr"] = impl.lr_schedule(step, *sched)
        x, y = _batch(step, 4)
        return impl.train_step(model, opt, lambda m, a, b: m(a, b)[1], [(x[:2], y[:2]), (x[2:], y[2:])], max_norm=0.5)

    def oracle(model, opt, step):
        for g in opt.param_groups:
            g["lr"] = O.cosine_lr(step, *sched)
        x, y = _batch(step, 4)
        opt.zero_grad(set_to_none=True)
        loss = model(x, y)[1]
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 0.5)
        opt.step()
        return loss.item()

    runs = {}
    for label, make, fn in (("student", impl.AdamW, student), ("torch", torch.optim.AdamW, oracle),
                            ("after", lambda g: O.SlowAdam(g, decay="after"), oracle)):
        model = _tiny_llama(2)
        opt = make(_groups(model))
        losses = _loop(model, steps, lambda m, s, fn=fn, opt=opt: fn(m, opt, s))
        runs[label] = (_flat(model), losses)
    case = f"TinyLlama float64, {steps} steps: 2 micro-batches of 2, clip 0.5, lr_schedule{sched}"
    O.check_against_orderings(runs["student"][0][None], runs["torch"][0][None], runs["after"][0][None], case=case,
                              what="parameters after the run")
    O.check_against_orderings(runs["student"][1], runs["torch"][1], runs["after"][1], case=case, unit="train_step",
                              what="returned loss of every step")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_checkpoint_resume_with_student_adamw_hidden(impl):
    sched = (0.05, 0.005, 2, 8)

    def step_fn(model, opt, step):
        for g in opt.param_groups:
            g["lr"] = impl.lr_schedule(step, *sched)
        return O.dropout_step(model, opt, step)

    torch.manual_seed(7)
    model = O.DropoutNet(8).train()
    opt = impl.AdamW(model.parameters(), weight_decay=0.1)
    for step in range(4):
        step_fn(model, opt, step)
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "c.pt")
        impl.save_checkpoint(path, model, opt, 4)
        for step in range(4, 7):
            step_fn(model, opt, step)
        expected = O.flat_params(model)
        torch.manual_seed(0)
        fresh = O.DropoutNet(9).train()
        fresh_opt = impl.AdamW(fresh.parameters())
        start = impl.load_checkpoint(path, fresh, fresh_opt)
        for step in range(start, 7):
            step_fn(fresh, fresh_opt, step)
    check.close(O.flat_params(fresh), expected, unit="save_checkpoint / load_checkpoint", kind="exact",
                case="DropoutNet + the student's AdamW + lr_schedule(step), saved after 4 steps, resumed to step 7",
                what="parameters after the resumed steps")
