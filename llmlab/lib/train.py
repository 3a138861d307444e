"""Given, tested training utilities for language models: batches, schedule, loop, evaluation.

Topics after 09_training (scaling laws, LoRA, mid-training, RLHF, distillation, ...) train
tiny models with these, so a student can start there without having solved 09. They use
PyTorch built-ins (`torch.optim.AdamW`, `clip_grad_norm_`); chapter 09 asks the student to
write the from-scratch versions, with the same schedule convention as `warmup_cosine_lr`.

A model here is any module whose `forward(idx, targets)` returns `(logits, mean loss)`, as the
given `llmlab.lib.llama.TinyLlama` does. Data is a 1-D int64 tensor of token ids.
"""

from __future__ import annotations

import math

import torch


def warmup_cosine_lr(step: int, max_lr: float, min_lr: float, warmup: int, total: int) -> float:
    """Linear warmup max_lr·(step+1)/warmup for step < warmup, then cosine from max_lr at step
    `warmup` down to min_lr at step `total`, and min_lr after it (chapter 09's schedule)."""
    if step < warmup:
        return max_lr * (step + 1) / warmup
    if step >= total:
        return float(min_lr)
    progress = (step - warmup) / (total - warmup)
    return min_lr + 0.5 * (max_lr - min_lr) * (1.0 + math.cos(math.pi * progress))


def random_windows(data: torch.Tensor, batch_size: int, block_size: int,
                   generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """`batch_size` windows of `data` starting at uniform random offsets: inputs (B, T) and
    targets (B, T), the same windows shifted left by one token."""
    if len(data) < block_size + 1:
        raise ValueError(f"data has {len(data)} tokens; a window needs block_size + 1 = {block_size + 1}")
    start = torch.randint(0, len(data) - block_size, (batch_size,), generator=generator)
    rows = torch.stack([data[s:s + block_size + 1] for s in start.tolist()])    # (B, T + 1)
    return rows[:, :-1], rows[:, 1:]


def train_lm(model: torch.nn.Module, data: torch.Tensor, steps: int, *, batch_size: int, block_size: int,
             lr: float, min_lr: float | None = None, warmup: int = 0, weight_decay: float = 0.1,
             betas: tuple[float, float] = (0.9, 0.95), clip: float | None = 1.0,
             generator: torch.Generator | None = None) -> list[float]:
    """Train with AdamW on random windows of `data` under the warmup + cosine schedule
    (min_lr defaults to lr / 10). Returns the training loss of every step. The model is left
    in train mode."""
    min_lr = lr / 10 if min_lr is None else min_lr
    opt = torch.optim.AdamW(model.parameters(), lr=lr, betas=betas, weight_decay=weight_decay)
    losses = []
    model.train()
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = warmup_cosine_lr(step, lr, min_lr, warmup, steps)
        x, y = random_windows(data, batch_size, block_size, generator)
        loss = model(x, y)[1]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        if clip is not None:
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
        opt.step()
        losses.append(loss.item())
    return losses


@torch.no_grad()
def evaluate_lm(model: torch.nn.Module, data: torch.Tensor, block_size: int) -> float:
    """Mean next-token cross-entropy over non-overlapping windows of `data` (the tail that does
    not fill a window is left out). Puts the model in eval mode."""
    n = (len(data) - 1) // block_size
    if n == 0:
        raise ValueError(f"data has {len(data)} tokens; evaluation needs block_size + 1 = {block_size + 1}")
    x = data[:n * block_size].view(n, block_size)
    y = data[1:n * block_size + 1].view(n, block_size)
    model.eval()
    return float(model(x, y)[1])
