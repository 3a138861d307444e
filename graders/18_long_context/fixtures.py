"""Golden data for 18_long_context, generated from solutions/ by `llmlab fixtures 18_long_context`.

Records (float64 unless stated; scalars stored with shape (1,)):
  scaling    D = 16, base 10000, s = 4, L = 64: the trained θ, PI's, NTK's, YaRN's with the
             paper's (α, β) = (1, 32) and with (1, 4), and YaRN's attention scale at s = 4, 8;
  tables     rope_tables of YaRN's θ (D = 8, s = 3, L = 16, α = 1, β = 2) for 20 positions with
             attention scale yarn_attention_scale(3): cos, sin (float32);
  masks      sliding_window_mask for (T, window, sinks) = (9, 3, 0), (9, 3, 2), (6, 10, 1) (bool);
  alibi      alibi_slopes(n) for n = 1 … 12 concatenated (offsets recorded), and alibi_bias of
             the slopes of 6 heads at T = 5;
  streaming  a StreamingCache(n_sink=2, window=4) fed chunks of 3, 1, 4, 1, 5 tokens of the seeded
             keys and values k, v (1, 2, 14, 3): every kept positions list (padded with −1) and
             the final keys and values;
  needle     a seeded random TinyLlama (long_context_oracle.tiny_llama(181)), a haystack,
             needle, question, depths; the answer is the model's own greedy continuation at
             depth 0.5, and `passed` the harness's verdict at every depth.
"""

from __future__ import annotations

import torch

import long_context_oracle as O

SEED = 18


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)
    records = {}

    theta = impl.rope_inv_freq(16)
    records["scaling"] = {
        "inv_freq": theta, "pi": impl.pi_inv_freq(theta, 4.0), "ntk": impl.ntk_inv_freq(16, 4.0),
        "yarn_paper": impl.yarn_inv_freq(theta, 4.0, 64), "yarn_beta4": impl.yarn_inv_freq(theta, 4.0, 64, 1.0, 4.0),
        "attention_scale": torch.tensor([impl.yarn_attention_scale(4.0), impl.yarn_attention_scale(8.0)],
                                        dtype=torch.float64)}

    yarn8 = impl.yarn_inv_freq(impl.rope_inv_freq(8), 3.0, 16, 1.0, 2.0)
    cos, sin = impl.rope_tables(yarn8, 20, impl.yarn_attention_scale(3.0))
    records["tables"] = {"inv_freq": yarn8, "cos": cos, "sin": sin,
                         "attention_scale": torch.tensor([impl.yarn_attention_scale(3.0)], dtype=torch.float64)}

    records["masks"] = {f"mask_{T}_{w}_{s}": impl.sliding_window_mask(T, w, s) for T, w, s in
                        ((9, 3, 0), (9, 3, 2), (6, 10, 1))}

    slopes = [impl.alibi_slopes(n) for n in range(1, 13)]
    records["alibi"] = {"slopes": torch.cat(slopes), "offsets": torch.tensor([0] + [len(s) for s in slopes]).cumsum(0),
                        "bias6": impl.alibi_bias(impl.alibi_slopes(6), 5)}

    cache = impl.StreamingCache(2, 4)
    chunks = (3, 1, 4, 1, 5)
    kept = torch.full((len(chunks), 6), -1, dtype=torch.long)
    k_all = torch.randn(1, 2, sum(chunks), 3, generator=g, dtype=torch.float64)
    v_all = torch.randn(1, 2, sum(chunks), 3, generator=g, dtype=torch.float64)
    start = 0
    for c, n in enumerate(chunks):
        cache.append(k_all[:, :, start:start + n], v_all[:, :, start:start + n])
        start += n
        kept[c, :cache.positions.shape[0]] = cache.positions
    records["streaming"] = {"chunks": torch.tensor(chunks), "k": k_all, "v": v_all, "kept": kept,
                            "keys": cache.keys, "values": cache.values}

    model = O.tiny_llama(181)
    haystack = torch.randint(0, 8, (24,), generator=g)
    needle, question = torch.tensor([8, 3, 5]), torch.tensor([9])
    depths = [0.0, 0.25, 0.5, 0.75, 1.0]
    prompt = torch.cat([impl.insert_needle(haystack, needle, 0.5), question])
    answer = torch.tensor(O.greedy_tokens(model, prompt, 2))
    records["needle"] = {"haystack": haystack, "needle": needle, "question": question, "answer": answer,
                         "depths": torch.tensor(depths, dtype=torch.float64),
                         "passed": impl.needle_in_haystack(model, haystack, needle, question, answer, depths)}
    return records
