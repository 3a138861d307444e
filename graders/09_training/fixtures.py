"""Golden data for 09_training, generated from solutions/ by `llmlab fixtures 09_training`.

Records (all small):
  cross_entropy  float64 logits (7, 5) with a row of ±1e4 logits and two ignored (-100)
                 targets, the loss (shape (1,)) and its gradient w.r.t. the logits;
  adam           a (4, 3) float64 parameter, 8 given gradients, and the parameter after each
                 of 8 AdamW steps with weight_decay 0 (the two decay orderings then agree);
  adamw_decay    the same with weight_decay 0.1: the trajectory of the reference (decay
                 before the update, as torch.optim.AdamW) — graders also accept the other
                 ordering, which they compute themselves;
  lr_schedule    (step, max_lr, min_lr, warmup, total) -> lr at the boundary steps (JSON);
  clip           two gradients, max_norm, the clipped gradients and the norm before clipping;
  sft            a chat of four turns, the header ids, eot id, and the ids and labels (JSON).
"""

from __future__ import annotations

import torch

SEED = 9


def _adam_record(impl, g: torch.Generator, weight_decay: float) -> dict:
    p = torch.nn.Parameter(torch.randn(4, 3, generator=g, dtype=torch.float64))
    grads = torch.randn(8, 4, 3, generator=g, dtype=torch.float64)
    p0 = p.detach().clone()
    opt = impl.AdamW([p], lr=0.1, betas=(0.9, 0.99), eps=1e-8, weight_decay=weight_decay)
    rows = []
    for grad in grads:
        p.grad = grad.clone()
        opt.step()
        rows.append(p.detach().clone())
    return {"p0": p0, "grads": grads, "trajectory": torch.stack(rows)}


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)

    logits = torch.randn(7, 5, generator=g, dtype=torch.float64) * 3
    logits[2] = torch.tensor([1e4, -1e4, 9999.0, 0.0, -5.0], dtype=torch.float64)
    targets = torch.randint(0, 5, (7,), generator=g)
    targets[2], targets[1], targets[5] = 2, -100, -100
    z = logits.clone().requires_grad_(True)
    loss = impl.cross_entropy(z, targets)
    loss.backward()
    ce = {"logits": logits, "targets": targets, "loss": loss.detach().reshape(1), "grad": z.grad}

    schedule = []
    for max_lr, min_lr, warmup, total in ((6e-4, 6e-5, 10, 100), (1.0, 0.0, 0, 8), (3e-3, 3e-4, 5, 5),
                                          (2.0, 0.5, 4, 5)):
        for step in sorted({0, 1, max(warmup - 1, 0), warmup, (warmup + total) // 2, max(total - 1, 0), total,
                            total + 7}):
            schedule.append({"args": [step, max_lr, min_lr, warmup, total],
                             "lr": impl.lr_schedule(step, max_lr, min_lr, warmup, total)})

    a = torch.nn.Parameter(torch.zeros(3, 4, dtype=torch.float64))
    b = torch.nn.Parameter(torch.zeros(5, dtype=torch.float64))
    a.grad = torch.randn(3, 4, generator=g, dtype=torch.float64) * 2
    b.grad = torch.randn(5, generator=g, dtype=torch.float64)
    grad_a, grad_b = a.grad.clone(), b.grad.clone()
    norm = impl.clip_grad_norm([a, b], 1.5)
    clip = {"grad_a": grad_a, "grad_b": grad_b, "max_norm": torch.tensor([1.5], dtype=torch.float64),
            "clipped_a": a.grad.clone(), "clipped_b": b.grad.clone(), "norm": norm.reshape(1)}

    turns = [["system", [5, 6]], ["user", [7, 8, 9]], ["assistant", [10, 11]], ["user", [12]],
             ["assistant", [13, 14, 15]]]
    headers = {"system": 0, "user": 1, "assistant": 2}
    ids, labels = impl.sft_labels([(r, c) for r, c in turns], headers, 3)
    sft = {"turns": turns, "header_ids": headers, "eot_id": 3, "ids": ids.tolist(), "labels": labels.tolist()}

    return {
        "cross_entropy": ce,
        "adam": _adam_record(impl, g, 0.0),
        "adamw_decay": _adam_record(impl, g, 0.1),
        "lr_schedule": schedule,
        "clip": clip,
        "sft": sft,
    }
