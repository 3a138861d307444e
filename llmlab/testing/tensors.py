"""Seeded inputs for graders: every tensor comes from an explicit seed, so a failure names
an input that can be reproduced, and a submission gets the same verdict on every run."""

from __future__ import annotations

import torch
from torch import nn


def generator(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(int(seed))


def randn(shape, seed: int, dtype: torch.dtype = torch.float64, scale: float = 1.0) -> torch.Tensor:
    """Standard normal values (times `scale`), drawn in float64 and cast: the same seed
    gives the same numbers in every dtype."""
    values = torch.randn(tuple(shape), generator=generator(seed), dtype=torch.float64) * scale
    return values.to(dtype)


def rand(shape, seed: int, dtype: torch.dtype = torch.float64, low: float = 0.0, high: float = 1.0) -> torch.Tensor:
    """Uniform values in [low, high)."""
    values = torch.rand(tuple(shape), generator=generator(seed), dtype=torch.float64)
    return (low + (high - low) * values).to(dtype)


def randint(shape, seed: int, high: int, low: int = 0) -> torch.Tensor:
    """int64 values in [low, high)."""
    return torch.randint(low, high, tuple(shape), generator=generator(seed))


def bool_mask(shape, seed: int, p: float = 0.6) -> torch.Tensor:
    """A random bool mask (True with probability about p) with at least one True in every
    row of the last axis (so no row is fully masked unless a test wants one)."""
    gen = generator(seed)
    mask = torch.rand(tuple(shape), generator=gen) < p
    keep = torch.randint(0, shape[-1], tuple(shape[:-1]) + (1,), generator=gen)
    return mask | torch.zeros_like(mask).scatter_(-1, keep, True)


def randomize_parameters(module: nn.Module, seed: int, scale: float = 0.5,
                         around_one=lambda name: False) -> nn.Module:
    """Draw every parameter of `module` fresh from N(0, scale²), or from N(1, scale²) for
    the parameters whose name `around_one(name)` accepts (norm gains), so that no part of a
    model hides behind its initial zeros or ones. Parameters are visited in name order, so
    the values depend only on the seed and the names. Returns the module."""
    gen = generator(seed)
    with torch.no_grad():
        for name, param in sorted(module.named_parameters(), key=lambda item: item[0]):
            noise = scale * torch.randn(param.shape, generator=gen, dtype=torch.float64).to(param.dtype)
            param.copy_(1.0 + noise if around_one(name) else noise)
    return module


def is_norm_weight(name: str) -> bool:
    """A norm's gain (a parameter named "...norm.weight"): drawn around one, not zero."""
    return name.endswith("norm.weight")


def random_model(model: nn.Module, seed: int, dtype: torch.dtype = torch.float32, scale: float = 0.5) -> nn.Module:
    """`model` (e.g. the given TinyLlama) with every parameter drawn fresh by
    `randomize_parameters` (norm gains around one), in `dtype`, in eval mode: a model whose
    every weight matters, for graders that need one. Returns the model."""
    randomize_parameters(model, seed, scale, around_one=is_norm_weight)
    return model.to(dtype).eval()
