"""Instructor-only graders for 13_midtraining (left out of student bundles).

  - wsd_schedule and rewarm_schedule at the sizes of real runs (thousands of steps),
    against the closed formulas;
  - average_checkpoints of real models: the average of TinyLlama checkpoints loads into a
    model, and averaging one checkpoint with itself changes nothing;
  - continue_pretraining with replay fraction 0 and 1 (the stream that is never read is too
    short to be read) against the documented loop.
"""

from __future__ import annotations

import pytest
import torch

import midtraining_oracle as O
from llmlab.testing import check, tensors


@pytest.mark.hidden
@pytest.mark.points(1)
def test_wsd_at_real_sizes_hidden(impl):
    for shape in ("linear", "cosine", "sqrt"):
        args = (3e-3, 3e-5, 2000, 50_000, 10_000, shape)
        steps = [0, 999, 1999, 2000, 30_000, 51_999, 52_000, 52_001, 55_555, 61_999, 62_000, 10**7]
        got = [impl.wsd_schedule(s, *args) for s in steps]
        want = [O.wsd_lr(s, *args) for s in steps]
        check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(want, dtype=torch.float64),
                    unit="wsd_schedule", kind="elementwise", what="rates of a 62,000-step run",
                    case=check.describe(steps=steps, args=args))


@pytest.mark.hidden
@pytest.mark.points(1)
def test_rewarm_at_real_sizes_hidden(impl):
    args = (3e-5, 1e-3, 1e-5, 500, 8000)
    steps = [0, 1, 250, 499, 500, 501, 4250, 7999, 8000, 9000]
    got = [impl.rewarm_schedule(s, *args) for s in steps]
    want = [O.rewarm_lr(s, *args) for s in steps]
    check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(want, dtype=torch.float64),
                unit="rewarm_schedule", kind="elementwise", what="rates of an 8,000-step continued run",
                case=check.describe(steps=steps, args=args))


@pytest.mark.hidden
@pytest.mark.points(2)
def test_average_of_real_checkpoints_hidden(impl):
    models = [O.tiny_llama(seed, torch.float32) for seed in (1, 2, 3, 4)]
    sds = [m.state_dict() for m in models]
    weights = [1.0, 0.0, 2.0, 1.0]
    avg = impl.average_checkpoints(sds, weights)
    expected = O.weighted_mean(sds, weights)
    for k, v in expected.items():
        check.close(avg[k], v, unit="average_checkpoints", kind="reduction", what=f"entry {k!r}",
                    case=check.describe(checkpoints=4, weights=weights))
    target = O.tiny_llama(9, torch.float32)
    target.load_state_dict(avg)
    same = impl.average_checkpoints([sds[0], sds[0], sds[0]], [0.2, 0.3, 0.5])
    for k, v in sds[0].items():
        check.close(same[k], v, unit="average_checkpoints", kind="elementwise",
                    what=f"entry {k!r} of a checkpoint averaged with itself", case=check.describe(weights=[0.2, 0.3, 0.5]))


@pytest.mark.hidden
@pytest.mark.points(2)
def test_continue_pretraining_without_and_with_only_replay_hidden(impl):
    long_stream = tensors.randint((200,), 60, high=12)
    short = torch.tensor([1, 2, 3])
    settings = dict(batch_size=3, block_size=6, start_lr=0.0, max_lr=1e-2, min_lr=1e-3, rewarm=3)
    for fraction, new, old in ((0.0, long_stream, short), (1.0, short, long_stream)):
        student, oracle = O.tiny_llama(5), O.tiny_llama(5)
        case = check.describe(replay_fraction=fraction, steps=5, **settings)
        losses = impl.continue_pretraining(student, new, old, 5, replay_fraction=fraction,
                                           generator=tensors.generator(8), **settings)
        expected, _ = O.oracle_continue(oracle, new, old, 5, replay_fraction=fraction, generator=tensors.generator(8),
                                        **settings)
        check.close(torch.tensor(losses, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64),
                    unit="continue_pretraining", kind="loss", what="loss of every step", case=case)
        for (name, p), q in zip(student.named_parameters(), oracle.parameters()):
            check.close(p, q, unit="continue_pretraining", kind="model", what=f"parameter {name} after the run",
                        case=case)
