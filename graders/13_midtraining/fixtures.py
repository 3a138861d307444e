"""Golden data for 13_midtraining, generated from solutions/ by `llmlab fixtures 13_midtraining`.

Records (all small):
  schedules  wsd_schedule (all three shapes), rewarm_schedule and mixture_schedule on
             argument sets that cover every phase and its boundaries (JSON);
  replay     two token streams, the settings (batch_size, block_size, seed), the replay
             fraction and the batch (x, y) that replay_batch draws from them;
  average    three checkpoints (float32, float64 and integer entries), weights, their average;
  ema        a sequence of four states of a small module (a Linear, a float and an int
             buffer), the decay, and the EMA shadow after three updates;
  continue   a tiny float64 TinyLlama's initial state, two streams and the losses of a
             6-step continue_pretraining run (settings as in the graders' RUN).
"""

from __future__ import annotations

import torch

import midtraining_oracle as O
from llmlab.testing import tensors

SEED = 13
RUN = dict(batch_size=4, block_size=8, replay_fraction=0.5, start_lr=1e-3, max_lr=2e-2, min_lr=2e-3, rewarm=2)


def _schedules(impl) -> dict:
    wsd = []
    for args in [(s, 3e-3, 3e-4, 5, 10, 8, shape) for shape in ("linear", "cosine", "sqrt")
                 for s in (0, 2, 4, 5, 9, 14, 15, 17, 19, 22, 23, 40)]:
        wsd.append({"args": list(args), "lr": impl.wsd_schedule(*args)})
    rewarm = []
    for args in [(s, 2e-4, 2e-3, 1e-4, 6, 20) for s in (0, 1, 3, 5, 6, 7, 12, 19, 20, 25)]:
        rewarm.append({"args": list(args), "lr": impl.rewarm_schedule(*args)})
    mixture = []
    start, end = [6.0, 3.0, 1.0], [1.0, 1.0, 2.0]
    for step in (0, 7, 8, 9, 13, 19, 20, 30):
        mixture.append({"step": step, "start": start, "end": end, "anneal_start": 8, "anneal_steps": 12,
                        "weights": impl.mixture_schedule(step, start, end, 8, 12)})
    return {"wsd": wsd, "rewarm": rewarm, "mixture": mixture}


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)
    new = torch.randint(0, 30, (80,), generator=g)
    old = torch.randint(30, 60, (50,), generator=g)
    x, y = impl.replay_batch(new, old, 7, 5, 0.4, tensors.generator(SEED))
    replay = {"new": new, "old": old, "settings": torch.tensor([7, 5, SEED]), "fraction": torch.tensor(0.4, dtype=torch.float64),
              "x": x, "y": y}

    sds = []
    for i in range(3):
        sds.append({"a": torch.randn(3, 2, generator=g), "b": torch.randn(4, generator=g, dtype=torch.float64),
                    "count": torch.tensor([5, 1])})
    weights = [0.5, 2.0, 1.5]
    out = impl.average_checkpoints(sds, weights)
    average = {"n": torch.tensor(3), "weights": torch.tensor(weights, dtype=torch.float64)}
    for i, sd in enumerate(sds):
        average.update({f"in{i}.{k}": v for k, v in sd.items()})
    average.update({f"out.{k}": v for k, v in out.items()})

    net = torch.nn.Module()
    net.lin = torch.nn.Linear(3, 2)
    net.register_buffer("running", torch.zeros(2))
    net.register_buffer("seen", torch.zeros((), dtype=torch.long))
    states = []
    for i in range(4):
        states.append({"lin.weight": torch.randn(2, 3, generator=g), "lin.bias": torch.randn(2, generator=g),
                       "running": torch.randn(2, generator=g), "seen": torch.tensor(i)})
    net.load_state_dict(states[0])
    ema = impl.EMA(net, 0.75)
    for sd in states[1:]:
        net.load_state_dict(sd)
        ema.update(net)
    record_ema = {"n": torch.tensor(4), "decay": torch.tensor(0.75)}
    for i, sd in enumerate(states):
        record_ema.update({f"state{i}.{k}": v for k, v in sd.items()})
    record_ema.update({f"shadow.{k}": v.clone() for k, v in ema.shadow.items()})

    model = O.tiny_llama(SEED)
    init = {f"init.{k}": v.clone() for k, v in model.state_dict().items()}
    new_ids = torch.randint(6, 12, (300,), generator=g)
    old_ids = torch.randint(0, 6, (300,), generator=g)
    losses = impl.continue_pretraining(model, new_ids, old_ids, 6, generator=tensors.generator(SEED), **RUN)
    cont = {**init, "new": new_ids, "old": old_ids, "steps": torch.tensor(6), "seed": torch.tensor(SEED),
            "losses": torch.tensor(losses, dtype=torch.float64)}
    return {"schedules": _schedules(impl), "replay": replay, "average": average, "ema": record_ema,
            "continue": cont}
