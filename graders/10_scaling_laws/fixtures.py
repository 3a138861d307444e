"""Golden data for 10_scaling_laws, generated from solutions/ by `llmlab fixtures 10_scaling_laws`.

Records (all small):
  counts  for a handful of TinyLlama configurations (GQA, multi-query, QK-norm, an explicit
          hidden size) and sequence lengths: non_embedding_params and flops_per_token, for
          training and for a forward only (JSON; exact integers);
  fit     noisy samples of 12·x^(−0.25) + 0.8 at 10 log-spaced x from 1e3 to 1e7 (relative
          noise 1 %) and the reference's fitted (a, alpha, c).
"""

from __future__ import annotations

import torch

from llmlab.lib.llama import LlamaConfig

SEED = 10

CONFIGS = [
    (dict(vocab_size=11, block_size=8, n_layer=2, n_head=4, n_kv_head=2, d_model=16), 8),
    (dict(vocab_size=65, block_size=64, n_layer=2, n_head=4, n_kv_head=2, d_model=64), 37),
    (dict(vocab_size=7, block_size=5, n_layer=3, n_head=4, n_kv_head=1, d_model=8, hidden=12, qk_norm=True), 1),
    (dict(vocab_size=32000, block_size=2048, n_layer=32, n_head=32, n_kv_head=32, d_model=4096, hidden=11008), 2048),
]


def generate(impl) -> dict:
    rows = []
    for fields, T in CONFIGS:
        cfg = LlamaConfig(**fields)
        rows.append({"config": fields, "seq_len": T, "non_embedding_params": impl.non_embedding_params(cfg),
                     "flops_train": impl.flops_per_token(cfg, T),
                     "flops_forward": impl.flops_per_token(cfg, T, backward=False)})
    g = torch.Generator().manual_seed(SEED)
    x = torch.logspace(3, 7, 10, dtype=torch.float64)
    y = (12.0 * x ** -0.25 + 0.8) * (1 + 0.01 * torch.randn(10, generator=g, dtype=torch.float64))
    params = torch.tensor(impl.fit_power_law(x, y), dtype=torch.float64)
    return {"counts": {"configs": rows}, "fit": {"x": x, "y": y, "params": params}}
