"""Golden data for 16_inference, generated from solutions/ by `llmlab fixtures 16_inference`.

Records (all small):
  cache     the given trained tiny LLaMA decoding greedily with the reference KV cache: two
            prompts from the course corpus, the tokens generated, and the logits of every
            cached call (the prefill's last position, then each decoding step); the generator
            checks that every greedy step beats the runner-up by a clear margin, so rounding
            cannot flip a token;
  flash     float64 q, k, v; FlashAttention's (out, lse) for a causal case with ragged tiles
            and for a cross-attention case (Tq != Tk), and the causal case's gradients for a
            fixed upstream gradient on both outputs;
  quant     a float32 matrix with outliers and its (q, scale) for int8/int4, per tensor and
            group-wise;
  serving   a scripted run of the block allocator (every operation and its result, the final
            block tables) and a continuous-batching simulation (requests, schedule, batch sizes).
"""

from __future__ import annotations

import torch

from llmlab.lib.corpus import course_corpus
from llmlab.lib.llama import load_tiny_llama

SEED = 16
MIN_GREEDY_MARGIN = 1e-3   # ≫ float32 rounding of these logits (~1e-6)


def _cache(impl) -> dict:
    model, codec, _ = load_tiny_llama()
    text = course_corpus()
    prompt = torch.stack([codec.encode(text[100:108]), codec.encode(text[2000:2008])])   # (2, 8)
    out = impl.generate_cached(model, prompt, 24)
    steps = []
    with torch.no_grad():
        cache = impl.KVCache.for_model(model, 2)
        steps.append(impl.cached_forward(model, prompt, cache)[:, -1])
        for t in range(prompt.shape[1], out.shape[1] - 1):
            steps.append(impl.cached_forward(model, out[:, t:t + 1], cache)[:, -1])
    logits = torch.stack(steps, dim=1)                                  # (2, 24, V)
    top2 = logits.topk(2, dim=-1).values
    margin = float((top2[..., 0] - top2[..., 1]).min())
    if margin < MIN_GREEDY_MARGIN:
        raise RuntimeError(f"greedy fixture has a near-tie (margin {margin:.2e}); change the prompts")
    return {"prompt": prompt, "out": out, "logits": logits}


def _flash(impl, g: torch.Generator) -> dict:
    q = torch.randn(1, 2, 11, 4, generator=g, dtype=torch.float64) * 1.5
    k = torch.randn(1, 2, 11, 4, generator=g, dtype=torch.float64) * 1.5
    v = torch.randn(1, 2, 11, 4, generator=g, dtype=torch.float64)
    k2 = torch.randn(1, 2, 7, 4, generator=g, dtype=torch.float64) * 1.5
    v2 = torch.randn(1, 2, 7, 4, generator=g, dtype=torch.float64)
    dout = torch.randn(1, 2, 11, 4, generator=g, dtype=torch.float64)
    dlse = torch.randn(1, 2, 11, generator=g, dtype=torch.float64)
    leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
    out, lse = impl.flash_attention_with_grad(*leaves, True, 4, 3)
    dq, dk, dv = torch.autograd.grad((out * dout).sum() + (lse * dlse).sum(), leaves)
    out2, lse2 = impl.flash_attention(q, k2, v2, False, 3, 5)
    return {"q": q, "k": k, "v": v, "k2": k2, "v2": v2, "dout": dout, "dlse": dlse,
            "out_causal": out.detach(), "lse_causal": lse.detach(), "dq": dq, "dk": dk, "dv": dv,
            "out_cross": out2, "lse_cross": lse2}


def _quant(impl, g: torch.Generator) -> dict:
    x = torch.randn(3, 16, generator=g)
    x[0, 3], x[1, 9], x[2, 14] = 6.0, -7.5, 4.25                         # outliers, one negative
    record = {"x": x}
    for bits, group in ((8, None), (4, None), (8, 4), (4, 8)):
        q, scale = impl.quantize_absmax(x, bits, group)
        record[f"q{bits}_g{group or 0}"] = q
        record[f"scale{bits}_g{group or 0}"] = scale.reshape(-1)         # 0-d arrays are stored 1-d
    return record


def _serving(impl) -> dict:
    pool = impl.BlockAllocator(8, 4)
    ops = [["allocate", "a", 6], ["allocate", "b", 3], ["append", "a", 3], ["append", "b", 1],
           ["append", "b", 1], ["allocate", "c", 9], ["free", "a", 0], ["append", "c", 5],
           ["allocate", "d", 4], ["append", "b", 7]]
    results = []
    for op, seq, n in ops:
        if op == "free":
            pool.free(seq)
            results.append(None)
        else:
            results.append(getattr(pool, op)(seq, n))
    tables = {seq: pool.block_table(seq) for seq in ("b", "c", "d")}
    R = impl.Request
    requests = [R(0, 0, 3, 4), R(1, 0, 5, 2), R(2, 1, 2, 3), R(3, 1, 6, 5), R(4, 2, 1, 1),
                R(5, 9, 4, 2), R(6, 9, 2, 6), R(7, 10, 3, 1)]
    schedule, sizes = impl.simulate_continuous_batching(requests, 3, 16)
    return {"allocator": {"num_blocks": 8, "block_size": 4, "ops": ops, "results": results,
                          "tables": tables, "num_free": pool.num_free},
            "batching": {"requests": [[r.id, r.arrival, r.prompt_len, r.output_len] for r in requests],
                         "max_batch": 3, "kv_capacity": 16,
                         "schedule": [[rid, *schedule[rid]] for rid in sorted(schedule)], "batch_sizes": sizes}}


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)
    return {"cache": _cache(impl), "flash": _flash(impl, g), "quant": _quant(impl, g), "serving": _serving(impl)}
