"""Given, tested building blocks: a working pre-norm Transformer block and its parts.

Topics that build on attention (05_mini_gpt and later) use these so a student can start
there without having solved 04_attention. They use PyTorch built-ins freely; the
from-scratch versions are what topic 04 asks the student to write, and they compute the
same function (tests/test_library.py compares `Block` with 04's pre-norm TransformerBlock).

Shapes: B batch, T sequence length, C = d_model, H heads, D = C // H head size.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CausalSelfAttention(nn.Module):
    """Multi-head causal self-attention with one fused QKV projection."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model, bias=bias)
        self.proj = nn.Linear(d_model, d_model, bias=bias)
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, T, C = x.shape
        q, k, v = self.qkv(x).split(C, dim=-1)                          # 3 × (B, T, C)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        y = F.scaled_dot_product_attention(q, k, v, is_causal=True,
                                           dropout_p=self.dropout if self.training else 0.0)  # (B, H, T, D)
        y = y.transpose(1, 2).contiguous().view(B, T, C)                 # (B, T, C)
        return self.proj(y)


class MLP(nn.Module):
    """Position-wise feed-forward: Linear(C, 4C) → exact GELU → Linear(4C, C).

    The exact GELU x·Φ(x), as chapter 04 teaches and grades (GPT-2 used a tanh
    approximation of it; chapter 04 shows the two differ by up to about 5e-4)."""

    def __init__(self, d_model: int, hidden: int | None = None, bias: bool = True):
        super().__init__()
        hidden = hidden or 4 * d_model
        self.up = nn.Linear(d_model, hidden, bias=bias)
        self.down = nn.Linear(hidden, d_model, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(F.gelu(self.up(x)))


class Block(nn.Module):
    """Pre-norm Transformer block: x + attn(ln1(x)), then x + mlp(ln2(x))."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model, bias=bias)
        self.attn = CausalSelfAttention(d_model, n_heads, dropout, bias)
        self.ln2 = nn.LayerNorm(d_model, bias=bias)
        self.mlp = MLP(d_model, bias=bias)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:            # (B, T, C) -> (B, T, C)
        x = x + self.drop(self.attn(self.ln1(x)))
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x


def block_parameter_count(d_model: int, bias: bool = True) -> int:
    """Parameters of one `Block`: 12·C² weights, plus 13·C biases and norm parameters
    (with bias: qkv 3C, proj C, up 4C, down C, two LayerNorms 2C each = 13C)."""
    return 12 * d_model * d_model + (13 * d_model if bias else 2 * d_model)


def init_gpt_weights(module: nn.Module, std: float = 0.02) -> None:
    """GPT-2 initialisation: normal(0, 0.02) weights, zero biases (apply with model.apply)."""
    if isinstance(module, (nn.Linear, nn.Embedding)):
        nn.init.normal_(module.weight, mean=0.0, std=std)
        if getattr(module, "bias", None) is not None:
            nn.init.zeros_(module.bias)


def scaled_init_std(n_layers: int, std: float = 0.02) -> float:
    """GPT-2's residual projection init: std / sqrt(2 · n_layers)."""
    return std / math.sqrt(2 * n_layers)
