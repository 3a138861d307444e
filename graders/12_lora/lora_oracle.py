"""Helpers shared by the 12_lora graders (instructor code, not a test).

- `NF4` is the grader's own copy of QLoRA's code book (Dettmers et al. 2023), taken from
  bitsandbytes' `get_4bit_type("nf4")` (bitsandbytes/functional.py,
  github.com/bitsandbytes-foundation/bitsandbytes, commit 01327aa0119fa503ea16322dd72f69f202e4502e),
  independent of the copy in the student's module;
- `lora_forward` is the adapted layer written from its tensors alone, the oracle for outputs
  and gradients;
- `nearest_ok` is the brute-force oracle of NF4 rounding (every code at the smallest
  distance, within a rounding margin), `NF4_HALF_GAP` the error bound it implies;
- `tiny_llama`, `adapters` and `randomize_adapters` build and reach into small models.
"""

from __future__ import annotations

import torch
from torch import nn

from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.testing import tensors

NF4 = torch.tensor([
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
], dtype=torch.float32)

NF4_HALF_GAP = float((NF4[1:] - NF4[:-1]).double().max()) / 2   # 0.1519, between −1 and −0.6962

LLAMA = dict(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_kv_head=1, d_model=16)


def lora_forward(x, weight, bias, A, B, scaling):
    """base(x) + scaling · x Aᵀ Bᵀ, from the tensors alone."""
    out = x @ weight.T + (bias if bias is not None else 0)
    return out + scaling * (x @ A.T) @ B.T


def nearest_ok(x: torch.Tensor, codes: torch.Tensor, margin: float) -> torch.Tensor:
    """Whether each code is a nearest NF4 value of the normalised x (up to `margin`, so a
    value that rounding puts on either side of a midpoint accepts both neighbours)."""
    table = NF4.to(torch.float64)
    dist = (x.double()[..., None] - table).abs()                     # (..., 16)
    chosen = dist.gather(-1, codes.long()[..., None])[..., 0]
    return chosen <= dist.min(dim=-1).values + margin


def tiny_llama(seed: int, **overrides) -> TinyLlama:
    """A small TinyLlama (two layers, d_model 16) with seeded weights."""
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        return TinyLlama(LlamaConfig(**{**LLAMA, **overrides}))


def adapters(model: nn.Module) -> dict[str, nn.Module]:
    """Qualified name -> module for every module that carries lora_A and lora_B."""
    return {name: m for name, m in model.named_modules()
            if isinstance(getattr(m, "lora_A", None), torch.Tensor) and isinstance(getattr(m, "lora_B", None), torch.Tensor)}


def randomize_adapters(model: nn.Module, seed: int, scale: float = 0.3) -> nn.Module:
    """Give every adapter random A and B (so the update is not zero), in name order."""
    with torch.no_grad():
        for i, (_, m) in enumerate(sorted(adapters(model).items())):
            m.lora_A.copy_(tensors.randn(m.lora_A.shape, seed + 2 * i, m.lora_A.dtype, scale))
            m.lora_B.copy_(tensors.randn(m.lora_B.shape, seed + 2 * i + 1, m.lora_B.dtype, scale))
    return model


def linear(in_features: int, out_features: int, seed: int, dtype=torch.float32, bias: bool = True) -> nn.Linear:
    """An nn.Linear with seeded weights (std 0.5)."""
    layer = nn.Linear(in_features, out_features, bias=bias, dtype=dtype)
    return tensors.randomize_parameters(layer, seed, 0.5)
