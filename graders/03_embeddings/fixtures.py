"""Golden data for 03_embeddings, generated from solutions/ by `llmlab fixtures 03_embeddings`.

Records (all small):
  embedding           a seeded (7, 5) table, ids with repeated and absent tokens, an upstream
                      gradient, the lookup and the gradient of the table;
  sinusoid            position encodings for a few (seq_len, dim, base) configurations;
  token_and_position  seeded token and position tables, a (2, 6) batch read from start=2,
                      the output and the gradients of both tables.
"""

from __future__ import annotations

import torch

SEED = 3

SINUSOID_CONFIGS = [(16, 8, 10000.0), (9, 6, 100.0), (33, 16, 10000.0), (5, 2, 10000.0), (12, 4, 7.0)]


def _load(module: torch.nn.Module, **tables: torch.Tensor) -> None:
    with torch.no_grad():
        for name, value in tables.items():
            module.get_parameter(name).copy_(value)


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)
    records = {}

    weight = torch.randn(7, 5, generator=g)
    ids = torch.tensor([[0, 3, 3, 6], [1, 3, 0, 0], [5, 5, 5, 2]])      # 3 and 5 repeat; 4 never occurs
    upstream = torch.randn(3, 4, 5, generator=g)
    emb = impl.Embedding(7, 5)
    _load(emb, weight=weight)
    out = emb(ids)
    out.backward(upstream)
    records["embedding"] = {"weight": weight, "ids": ids, "upstream": upstream,
                            "out": out.detach(), "grad_weight": emb.weight.grad}

    sinusoid = {"configs": torch.tensor(SINUSOID_CONFIGS, dtype=torch.float64)}
    for k, (T, C, base) in enumerate(SINUSOID_CONFIGS):
        sinusoid[f"pe_{k}"] = impl.sinusoidal_positions(T, C, base)
    records["sinusoid"] = sinusoid

    tok = torch.randn(11, 4, generator=g)
    pos = torch.randn(9, 4, generator=g)
    ids = torch.randint(0, 11, (2, 6), generator=g)
    upstream = torch.randn(2, 6, 4, generator=g)
    model = impl.TokenAndPosition(11, 9, 4)
    _load(model, **{"tok.weight": tok, "pos.weight": pos})
    out = model(ids, start=2)
    out.backward(upstream)
    records["token_and_position"] = {
        "tok_weight": tok, "pos_weight": pos, "ids": ids, "start": torch.tensor(2), "upstream": upstream,
        "out": out.detach(), "grad_tok": model.tok.weight.grad, "grad_pos": model.pos.weight.grad}
    return records
