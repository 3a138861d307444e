"""Golden data for topic 04, generated from solutions/ (`llmlab fixtures 04_attention`).

Small float64 cases; the graders also check every unit on fresh inputs against PyTorch
built-ins, so these records are one line of evidence among several.
"""

from __future__ import annotations

import math

import torch

SEED = 4


def _randn(gen: torch.Generator, *shape: int) -> torch.Tensor:
    return torch.randn(*shape, generator=gen, dtype=torch.float64)


def _randomise(module: torch.nn.Module, gen: torch.Generator) -> dict[str, torch.Tensor]:
    """Random weights (std 1.5/sqrt(fan_in)), biases (std 0.3), norm gains (1 ± 0.3)."""
    values = {}
    with torch.no_grad():
        for name, p in sorted(module.named_parameters()):
            r = _randn(gen, *p.shape)
            if p.dim() == 2:
                r = r * 1.5 / math.sqrt(p.shape[1])
            elif name.endswith("weight"):
                r = 1 + 0.3 * r
            else:
                r = 0.3 * r
            p.copy_(r)
            values[f"p.{name}"] = r
    return values


def generate(impl) -> dict:
    gen = torch.Generator().manual_seed(SEED)
    records = {}

    x = _randn(gen, 4, 7) * 3
    x[0, [2, 5]] = float("-inf")
    x[3] = float("-inf")                                    # a fully masked row -> zeros
    records["softmax"] = {"x": x, "out": impl.softmax(x, dim=-1)}

    q, k, v = _randn(gen, 2, 2, 4, 3), _randn(gen, 2, 2, 5, 3), _randn(gen, 2, 2, 5, 2)
    mask = torch.rand(4, 5, generator=gen) < 0.6
    mask[:, 0] = True
    records["attention"] = {
        "q": q, "k": k, "v": v, "mask": mask,
        "out_mask": impl.scaled_dot_product_attention(q, k, v, mask=mask),
        "out_causal": impl.scaled_dot_product_attention(q, k, v, causal=True),
    }

    ln = impl.LayerNorm(6).double()
    params = _randomise(ln, gen)
    x = _randn(gen, 3, 6) * 2 + 1
    with torch.no_grad():
        records["layernorm"] = {"x": x, "weight": params["p.weight"], "bias": params["p.bias"], "out": ln(x)}

    x = torch.linspace(-5, 5, 21, dtype=torch.float64)
    records["gelu"] = {"x": x, "out": impl.gelu(x)}

    mha = impl.MultiHeadAttention(6, 2).double()
    params = _randomise(mha, gen)
    x = _randn(gen, 2, 4, 6)
    with torch.no_grad():
        records["mha"] = {"x": x, "n_heads": torch.tensor(2), "out": mha(x, causal=True), **params}

    block = impl.TransformerBlock(8, 2, 16).double()
    params = _randomise(block, gen)
    x = _randn(gen, 2, 4, 8)
    post = impl.TransformerBlock(8, 2, 16, pre_norm=False).double()
    post.load_state_dict(block.state_dict())
    with torch.no_grad():
        records["block"] = {"x": x, "n_heads": torch.tensor(2), "d_hidden": torch.tensor(16),
                            "out_pre": block(x, causal=True), "out_post": post(x, causal=True), **params}
    return records
