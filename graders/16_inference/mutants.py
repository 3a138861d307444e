"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 16_inference.

Each is one textual edit (or a few chained with `also`) of solutions/16_inference/inference.py.
`llmlab mutants 16_inference` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks. The syllabus's known mistakes are all
here: the running sum not rescaled, lse in the wrong base or not returned, causal tile
skipping off by one, RoPE positions restarting at 0, the scale from max instead of absmax,
group scales along the wrong axis.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "inference.py"

MUTANTS = [
    # ---- KVCache
    Mutant("append moves length itself (and advance moves it again)", F,
           find="        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]\n",
           replace="        self.length = end\n        return self.k[layer, :, :, :end], self.v[layer, :, :, :end]\n"),
    Mutant("positions start at 0 instead of length", F,
           find="return torch.arange(self.length, self.length + n)", replace="return torch.arange(n)"),
    Mutant("append does not check max_len", F,
           find="        if end > self.max_len:\n", replace="        if False:\n"),

    # ---- cached_forward
    Mutant("RoPE positions restart at 0 in every call", F,
           find="cos, sin = model.rope_cos[pos], model.rope_sin[pos]",
           replace="cos, sin = model.rope_cos[:n], model.rope_sin[:n]",
           message="RoPE positions restart at 0"),
    Mutant("grouped-query heads tiled with repeat", F,
           find="keys = keys.repeat_interleave(H // H_kv, dim=1)", replace="keys = keys.repeat(1, H // H_kv, 1, 1)",
           also=(Edit(F, "values = values.repeat_interleave(H // H_kv, dim=1)",
                      "values = values.repeat(1, H // H_kv, 1, 1)"),),
           message="grouped-query heads tiled"),
    Mutant("keys cached (and used) without RoPE", F,
           find="q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)", replace="q = apply_rope(q, cos, sin)",
           message="keys cached before RoPE"),
    Mutant("QK-norm skipped", F,
           find="            q, k = attn.q_norm(q), attn.k_norm(k)\n", replace="            pass\n"),
    Mutant("no causal mask inside a prefill chunk", F,
           find="        scores = scores.masked_fill(~visible, float(\"-inf\"))\n", replace=""),
    Mutant("cache never advanced", F,
           find="    cache.advance(n)\n    return model.lm_head", replace="    return model.lm_head"),
    Mutant("block_size limit not checked", F,
           find="    if start + n > model.config.block_size:\n", replace="    if start + n > model.config.block_size + 1:\n"),

    # ---- generate_cached
    Mutant("the last generated token fed back to the model", F,
           find="            if step + 1 < max_new_tokens:\n", replace="            if True:\n"),
    Mutant("block_size check off by one (T0 + max_new_tokens must fit)", F,
           find="if T0 + max_new_tokens - 1 > model.config.block_size:",
           replace="if T0 + max_new_tokens > model.config.block_size:"),

    # ---- flash_attention
    Mutant("running sum not rescaled when the running max changes", F,
           find="l = alpha * l + p.sum(dim=-1)", replace="l = l + p.sum(dim=-1)",
           message="the running sum not rescaled"),
    Mutant("running output not rescaled when the running max changes", F,
           find="acc = alpha[..., None] * acc + p @ v[:, :, ks:ke]", replace="acc = acc + p @ v[:, :, ks:ke]",
           message="the running output not rescaled"),
    Mutant("lse in base 2", F,
           find="lse[:, :, qs:qe] = m + torch.log(l)", replace="lse[:, :, qs:qe] = m / math.log(2) + torch.log2(l)",
           message="lse in base 2"),
    Mutant("lse is the running maximum only", F,
           find="lse[:, :, qs:qe] = m + torch.log(l)", replace="lse[:, :, qs:qe] = m",
           message="lse is only the running maximum"),
    Mutant("lse not returned", F,
           find="    return out, lse\n    ### END SOLUTION\n\n\ndef _check_attention_inputs",
           replace="    return out\n    ### END SOLUTION\n\n\ndef _check_attention_inputs",
           message="lse not returned"),
    Mutant("causal tile skipping off by one (skips the tile holding the diagonal)", F,
           find="\n            if causal and ks > qe - 1:\n", replace="\n            if causal and ks >= qe - 1:\n",
           message="causal tile skipping off by one"),
    Mutant("causal mask hides the diagonal", F,
           find="\n                future = torch.arange(ks, ke)[None, :] > torch.arange(qs, qe)[:, None]\n",
           replace="\n                future = torch.arange(ks, ke)[None, :] >= torch.arange(qs, qe)[:, None]\n",
           message="causal mask hides the diagonal"),
    Mutant("scores not scaled by 1/sqrt(D)", F,
           find="s = qb @ k[:, :, ks:ke].transpose(-2, -1) * scale", replace="s = qb @ k[:, :, ks:ke].transpose(-2, -1)",
           message="lse of the scores without the 1/sqrt(D) scale"),

    # ---- FlashAttention (backward)
    Mutant("gradient from lse ignored", F,
           find="shift = (dlse[:, :, qs:qe] - delta[:, :, qs:qe])[..., None]",
           replace="shift = (-delta[:, :, qs:qe])[..., None]", message="the gradient from lse (dlse) is ignored"),
    Mutant("dk not scaled by 1/sqrt(D)", F,
           find="dk[:, :, ks:ke] += ds.transpose(-2, -1) @ qb * scale", replace="dk[:, :, ks:ke] += ds.transpose(-2, -1) @ qb"),
    Mutant("probabilities recomputed without the saved lse", F,
           find="p = torch.exp(s - lse[:, :, qs:qe, None])", replace="p = torch.exp(s)"),
    Mutant("no causal mask in the backward", F,
           find="\n                    s = s.masked_fill(future, float(\"-inf\"))\n", replace="\n"),
    Mutant("backward saves the probabilities (a (T, T) tensor) instead of recomputing", F,
           find="        ctx.save_for_backward(q, k, v, out, lse)\n",
           replace="        ctx.save_for_backward(q, k, v, out, lse, torch.ones(q.shape[2], k.shape[2], dtype=q.dtype))\n",
           also=(Edit(F, "        q, k, v, out, lse = ctx.saved_tensors\n",
                      "        q, k, v, out, lse, _ = ctx.saved_tensors\n"),)),

    # ---- quantize_absmax / dequantize_absmax
    Mutant("scale from max instead of absmax", F,
           find="scale = groups.abs().amax(dim=-1) / q_max", replace="scale = groups.amax(dim=-1) / q_max",
           message="scale from max instead of absmax"),
    Mutant("group scales along the wrong axis (strided groups)", F,
           find="groups = x.reshape(*x.shape[:-1], N // group_size, group_size)   # (..., N / G, G)",
           replace="groups = x.reshape(*x.shape[:-1], group_size, N // group_size)   # (..., N / G, G)",
           message="groups cut along the wrong axis"),
    Mutant("unsigned range for q_max", F,
           find="q_max = 2 ** (bits - 1) - 1", replace="q_max = 2 ** bits - 1", message="the unsigned range"),
    Mutant("q_max = 2^(bits-1)", F,
           find="q_max = 2 ** (bits - 1) - 1", replace="q_max = 2 ** (bits - 1)"),
    Mutant("floor instead of rounding", F,
           find="q = torch.round(groups / safe[..., None])", replace="q = torch.floor(groups / safe[..., None])",
           message="floor instead of rounding"),
    Mutant("truncation instead of rounding", F,
           find="q = torch.round(groups / safe[..., None])", replace="q = (groups / safe[..., None])",
           message="truncation instead of rounding"),
    Mutant("dequantise with strided groups", F,
           find="groups = values.reshape(*q.shape[:-1], N // group_size, group_size)  # (..., N / G, G)",
           replace="groups = values.reshape(*q.shape[:-1], group_size, N // group_size).transpose(-2, -1)"),

    # ---- BlockAllocator
    Mutant("highest free blocks first", F,
           find="new, self._free = self._free[:need], self._free[need:]",
           replace="new, self._free = self._free[len(self._free) - need:][::-1], self._free[:len(self._free) - need]"),
    Mutant("freed blocks leak (never returned to the pool)", F,
           find="self._free = sorted(self._free + self._tables.pop(seq_id))", replace="self._tables.pop(seq_id)"),
    Mutant("freed blocks appended unsorted (not lowest first)", F,
           find="self._free = sorted(self._free + self._tables.pop(seq_id))",
           replace="self._free = self._free + self._tables.pop(seq_id)"),
    Mutant("blocks needed rounded down", F,
           find="need = -(-length // self.block_size) - len(self._tables[seq_id])",
           replace="need = length // self.block_size - len(self._tables[seq_id])"),
    Mutant("a failed allocate leaves the sequence behind", F,
           find="            del self._tables[seq_id], self._lengths[seq_id]\n", replace=""),
    Mutant("block_table returns the internal list", F,
           find="        return list(self._tables[seq_id])\n        ### END SOLUTION\n\n    def slot",
           replace="        return self._tables[seq_id]\n        ### END SOLUTION\n\n    def slot"),

    # ---- simulate_continuous_batching
    Mutant("queue in list order, not by arrival", F,
           find="key=lambda i: (requests[i].arrival, i))", replace="key=lambda i: i)"),
    Mutant("reservation counts the prompt only", F,
           find="if reserved + r.prompt_len + r.output_len > kv_capacity:", replace="if reserved + r.prompt_len > kv_capacity:"),
    Mutant("batch limit off by one", F,
           find="queue[head].arrival <= step and len(running) < max_batch",
           replace="queue[head].arrival <= step and len(running) <= max_batch"),
    Mutant("the prefill step makes no token", F,
           find="running[r.id] = [r, r.output_len, step]", replace="running[r.id] = [r, r.output_len + 1, step]"),
]

VARIANTS = [
    Variant("cached attention with scaled_dot_product_attention (a bool mask, enable_gqa)", F,
            find="""        keys = keys.repeat_interleave(H // H_kv, dim=1)                  # (B, H, start + n, D)
        values = values.repeat_interleave(H // H_kv, dim=1)
        scores = q @ keys.transpose(-2, -1) / math.sqrt(D)               # (B, H, n, start + n)
        scores = scores.masked_fill(~visible, float("-inf"))
        y = scores.softmax(dim=-1) @ values                              # (B, H, n, D)
""",
            replace="""        y = torch.nn.functional.scaled_dot_product_attention(q, keys, values, attn_mask=visible,
                                                             enable_gqa=True)
"""),
    Variant("flash without tile skipping (future tiles fully masked instead)", F,
            find="\n            if causal and ks > qe - 1:\n                break",
            replace="\n            if False:\n                break",
            also=(Edit(F, "\n                if causal and ks > qe - 1:\n                    break",
                       "\n                if False:\n                    break"),)),
    Variant("online softmax in base 2 (exp2/log2, converted back to natural log)", F,
            find="""            m_new = torch.maximum(m, s.amax(dim=-1))                     # (B, H, bq)
            p = torch.exp(s - m_new[..., None])                          # (B, H, bq, bk)
            alpha = torch.exp(m - m_new)                                 # rescales the old sums
""",
            replace="""            m_new = torch.maximum(m, s.amax(dim=-1))                     # (B, H, bq)
            p = torch.exp2((s - m_new[..., None]) * (1 / math.log(2)))
            alpha = torch.exp2((m - m_new) * (1 / math.log(2)))
""",
            also=(Edit(F, "lse[:, :, qs:qe] = m + torch.log(l)", "lse[:, :, qs:qe] = m + torch.log2(l) * math.log(2)"),)),
    Variant("quantise by multiplying with the reciprocal scale; per-tensor as its own branch", F,
            find="q = torch.round(groups / safe[..., None]).to(torch.int8).reshape(x.shape)",
            replace="q = torch.round(groups * (1.0 / safe)[..., None]).to(torch.int8).reshape(x.shape)"),
    Variant("free list as a heap", F,
            find="        new, self._free = self._free[:need], self._free[need:]          # the lowest-numbered free blocks\n",
            replace="        import heapq\n"
                    "        heapq.heapify(self._free)\n"
                    "        new = [heapq.heappop(self._free) for _ in range(need)]\n"
                    "        self._free.sort()\n"),
    Variant("scheduler recomputes the reservation every step", F,
            find="            if reserved + r.prompt_len + r.output_len > kv_capacity:\n",
            replace="            reserved = sum(e[0].prompt_len + e[0].output_len for e in running.values())\n"
                    "            if reserved + r.prompt_len + r.output_len > kv_capacity:\n"),
]

_FOUR_D = ("every tensor transposed here is 4-D (B, H, T, D) by the docstring (and the given input check), so "
           "dim 2 is dim -2")
_FUTURE_TILE_FORWARD = ("a key tile with ks > qe − 1 lies entirely after the tile's last query, so every score in it is "
                        "masked to −inf: its amax is −inf, the running max is unchanged, alpha = 1 and p = 0, so "
                        "processing it (instead of breaking) or processing the next one too changes no value, only "
                        "the work; the docstring allows skipping it, not requires it (VARIANTS accepts no skipping)")
_FUTURE_TILE_BACKWARD = ("in the backward a key tile entirely after the tile's last query has every score masked to "
                         "−inf, so p = exp(−inf − lse) = 0 and its contributions to dq, dk, dv are exactly 0")
_GENERATE_LIMIT = ("the guard only moves where the ValueError comes from: with it weakened, the decoding reaches a "
                   "position ≥ block_size and cached_forward raises the same ValueError (its own block_size check), "
                   "and every input the docstring allows still decodes identically")
_CACHE_SIZE = ("the cache is internal to generate_cached: one position longer than needed is never written nor read "
               "(cached_forward bounds every position by block_size itself), so the tokens are the same")

EQUIVALENT = {
    "inference.py: `-` -> `` in `scores = q @ keys.transpose(-2, -1) / math.sqrt(D)`":
        "keys is (B, H, start + n, D), 4-D, so transpose(2, -1) is transpose(-2, -1)",
    "inference.py: `+` -> `-` in `if T0 + max_new_tokens - 1 > model.config.block_size:`": _GENERATE_LIMIT,
    "inference.py: `1` -> `2` in `if T0 + max_new_tokens - 1 > model.config.block_size:`": _GENERATE_LIMIT,
    "inference.py: `-` -> `+` in `cache = KVCache.for_model(model, B, T0 + max_new_tokens - 1)`": _CACHE_SIZE,
    "inference.py: `1` -> `0` in `cache = KVCache.for_model(model, B, T0 + max_new_tokens - 1)`": _CACHE_SIZE,
    "inference.py: `-` -> `` in `token = logits.argmax(dim=-1, keepdim=True)`":
        "logits was sliced to (B, V) by `[:, -1]`, so dim=1 is dim=-1",
    "inference.py: `1` -> `0` in `logits = cached_forward(model, token, cache)[:, -1]`":
        "the decoding call feeds one token, so its logits are (B, 1, V) and [:, 0] is [:, -1]",
    "inference.py: `-` -> `+` in `if causal and ks > qe - 1:`": _FUTURE_TILE_FORWARD,
    "inference.py: `1` -> `0` in `if causal and ks > qe - 1:`": _FUTURE_TILE_FORWARD,
    "inference.py: `break` -> `continue` in `break`": _FUTURE_TILE_FORWARD,
    "inference.py: `-` -> `+` (#2) in `if causal and ks > qe - 1:`": _FUTURE_TILE_BACKWARD,
    "inference.py: `1` -> `0` (#2) in `if causal and ks > qe - 1:`": _FUTURE_TILE_BACKWARD,
    "inference.py: `break` -> `continue` (#2) in `break`": _FUTURE_TILE_BACKWARD,
    "inference.py: `-` -> `` in `s = qb @ k[:, :, ks:ke].transpose(-2, -1) * scale`": _FOUR_D,
    "inference.py: `-` -> `` in `s = qb @ kb.transpose(-2, -1) * scale`": _FOUR_D,
    "inference.py: `-` -> `` in `dv[:, :, ks:ke] += p.transpose(-2, -1) @ dob`": _FOUR_D,
    "inference.py: `-` -> `` in `ds = p * (dob @ vb.transpose(-2, -1) + shift)`": _FOUR_D,
    "inference.py: `-` -> `` in `dk[:, :, ks:ke] += ds.transpose(-2, -1) @ qb * scale`": _FOUR_D,
    "inference.py: `>` -> `>=` in `safe = torch.where(scale > 0, scale, torch.ones_like(scale))`":
        "only a zero group has scale 0; with the mutant it is divided by 0, giving 0/0 = NaN, which torch.round "
        "keeps and the conversion to int8 turns into 0 on CPU — the same q = 0 (the safe scale exists because "
        "that conversion is not guaranteed by the C++ standard, not because the results differ here)",
    "inference.py: `//` -> `/` in `if N % group_size or tuple(scale.shape) != (*q.shape[:-1], N // group_size):`":
        "the comparison runs only when N % group_size == 0 (the `or` short-circuits), and then N / group_size "
        "is a float equal to the integer N // group_size, and tuples compare 3.0 == 3 as equal",
}
