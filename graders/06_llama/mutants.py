"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 06_llama.

Each is one textual edit (or a few chained with `also`) of solutions/06_llama/llama.py.
`llmlab mutants 06_llama` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks. SYLLABUS.md's known mistakes for
06 are all here: interleaved vs half-split pairing, eps outside the sqrt, mean over the
wrong axis, kv head order h % n_kv, RoPE applied to values, RoPE positions that ignore an
offset, MLA caching the decompressed keys instead of the latent.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "llama.py"

MUTANTS = [
    # ---- RMSNorm
    Mutant("eps outside the sqrt", F,
           find="return x * torch.rsqrt(ms + self.eps) * self.weight",
           replace="return x / (ms.sqrt() + self.eps) * self.weight", message="eps outside the sqrt"),
    Mutant("mean over the wrong axis", F,
           find="ms = x.pow(2).mean(dim=-1, keepdim=True)", replace="ms = x.pow(2).mean(dim=0, keepdim=True)",
           message="mean over the wrong axis"),
    Mutant("mean subtracted first (LayerNorm without its bias)", F,
           find="return x * torch.rsqrt(ms + self.eps) * self.weight",
           replace="return (x - x.mean(-1, keepdim=True)) * torch.rsqrt(x.var(-1, keepdim=True, unbiased=False) "
                   "+ self.eps) * self.weight",
           message="mean subtracted first"),
    Mutant("weight starts at zeros", F,
           find="self.weight = nn.Parameter(torch.ones(dim))", replace="self.weight = nn.Parameter(torch.zeros(dim))"),

    # ---- swiglu_hidden_size, SwiGLU
    Mutant("hidden size rounded down", F,
           find="return multiple_of * ((h + multiple_of - 1) // multiple_of)", replace="return multiple_of * (h // multiple_of)",
           message="rounded down instead of up"),
    Mutant("gate and up swapped", F,
           find="return self.down(F.silu(self.gate(x)) * self.up(x))",
           replace="return self.down(F.silu(self.up(x)) * self.gate(x))", message="gate and up swapped"),
    Mutant("sigmoid instead of SiLU", F,
           find="return self.down(F.silu(self.gate(x)) * self.up(x))",
           replace="return self.down(torch.sigmoid(self.gate(x)) * self.up(x))", message="sigmoid instead of SiLU"),

    # ---- rope_cache, rotate_half, apply_rope
    Mutant("interleaved pairing in the tables", F,
           find="angle = torch.cat([angle, angle], dim=-1)                           # (L, D) half-split",
           replace="angle = angle.repeat_interleave(2, dim=-1)", message="interleaved RoPE pairing"),
    Mutant("interleaved quarter turn (pairs 2i, 2i + 1)", F,
           find="return torch.cat([-x2, x1], dim=-1)",
           replace="return torch.stack([-x[..., 1::2], x[..., 0::2]], dim=-1).flatten(-2)",
           message="interleaved RoPE pairing"),
    Mutant("rotation in the wrong direction", F,
           find="return torch.cat([-x2, x1], dim=-1)", replace="return torch.cat([x2, -x1], dim=-1)",
           message="cat([x2, -x1])"),
    Mutant("exponent -i/D instead of -2i/D", F,
           find="inv_freq = base ** (-2.0 * i / head_dim)", replace="inv_freq = base ** (-i / head_dim)",
           message="exponent -i/head_dim"),
    Mutant("angles in float32", F,
           find="p = torch.arange(max_len, dtype=torch.float64)", replace="p = torch.arange(max_len, dtype=torch.float32)",
           also=(Edit(F, "i = torch.arange(head_dim // 2, dtype=torch.float64)",
                      "i = torch.arange(head_dim // 2, dtype=torch.float32)"),),
           message="angles computed in float32"),
    Mutant("RoPE positions that ignore the offset", F,
           find="c, s = cos[positions:positions + T], sin[positions:positions + T]",
           replace="c, s = cos[:T], sin[:T]", message="ignore the offset"),
    Mutant("explicit positions ignored (always 0 … T − 1)", F,
           find="c, s = cos[positions], sin[positions]", replace="c, s = cos[:T], sin[:T]"),
    Mutant("tables not cast to x's dtype", F,
           find="    c, s = c.to(x.dtype), s.to(x.dtype)\n", replace=""),

    # ---- repeat_kv, GroupedQueryAttention
    Mutant("kv head order h % n_kv (tiled)", F,
           find="return x[:, :, None].expand(B, Hkv, n_rep, T, D).reshape(B, Hkv * n_rep, T, D)",
           replace="return x[:, None].expand(B, n_rep, Hkv, T, D).reshape(B, Hkv * n_rep, T, D)",
           message="kv head order h % n_kv_heads"),
    Mutant("RoPE applied to the values", F,
           find="q, k = apply_rope(q, cos, sin, 0), apply_rope(k, cos, sin, 0)",
           replace="q, k, v = apply_rope(q, cos, sin, 0), apply_rope(k, cos, sin, 0), apply_rope(v, cos, sin, 0)",
           message="RoPE applied to the values"),
    Mutant("RoPE on queries only", F,
           find="q, k = apply_rope(q, cos, sin, 0), apply_rope(k, cos, sin, 0)",
           replace="q = apply_rope(q, cos, sin, 0)"),
    Mutant("q_norm/k_norm after RoPE", F,
           find="""        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, cos, sin, 0), apply_rope(k, cos, sin, 0)
""",
           replace="""        q, k = apply_rope(q, cos, sin, 0), apply_rope(k, cos, sin, 0)
        if hasattr(self, "q_norm"):
            q, k = self.q_norm(q), self.k_norm(k)
""", message="after RoPE instead of before"),
    Mutant("attention not causal", F,
           find="y = F.scaled_dot_product_attention(q, k, v, is_causal=True)",
           replace="y = F.scaled_dot_product_attention(q, k, v)", message="not causal"),
    Mutant("qk norms ignore eps", F,
           find="            self.q_norm = RMSNorm(D, eps)", replace="            self.q_norm = RMSNorm(D)"),

    # ---- LlamaBlock, LlamaConfig, TinyLlama
    Mutant("post-norm block", F,
           find="x = x + self.attn(self.attn_norm(x), cos, sin)                    # (B, T, C)",
           replace="x = self.attn_norm(x + self.attn(x, cos, sin))",
           also=(Edit(F, "x = x + self.mlp(self.mlp_norm(x))                                 # (B, T, C)",
                      "x = self.mlp_norm(x + self.mlp(x))"),),
           message="post-norm"),
    Mutant("block norms ignore eps", F,
           find="self.attn_norm = RMSNorm(d_model, eps)", replace="self.attn_norm = RMSNorm(d_model)"),
    Mutant("n_head % n_kv_head not checked", F,
           find="if self.n_head % self.n_kv_head != 0:", replace="if False:"),
    Mutant("head tied to the embedding", F,
           find="        cos, sin = rope_cache(D, config.block_size, config.rope_base)\n",
           replace="        self.lm_head.weight = self.tok_emb.weight\n"
                   "        cos, sin = rope_cache(D, config.block_size, config.rope_base)\n"),
    Mutant("rope_base ignored", F,
           find="cos, sin = rope_cache(D, config.block_size, config.rope_base)", replace="cos, sin = rope_cache(D, config.block_size)"),
    Mutant("rope tables persistent (in the state dict)", F,
           find='self.register_buffer("rope_cos", cos, persistent=False)', replace='self.register_buffer("rope_cos", cos)'),
    Mutant("residual projections not scaled", F,
           find="residual_std = scaled_init_std(config.n_layer)", replace="residual_std = 0.02",
           message="residual projection not re-initialised"),
    Mutant("final norm not applied", F,
           find="logits = self.lm_head(self.norm(x))", replace="logits = self.lm_head(x)"),
    Mutant("loss averaged over ignored positions", F,
           find="loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T), ignore_index=-100)",
           replace="loss = F.cross_entropy(logits.reshape(B * T, -1), targets.reshape(B * T), ignore_index=-100, "
                   "reduction='none').mean()",
           message="loss averaged over ignored positions too"),

    # ---- MultiHeadLatentAttention
    Mutant("MLA caching the decompressed keys instead of the latent", F,
           find="return self.o_proj(y), (c_kv, k_r)", replace="return self.o_proj(y), (self.k_up(c_kv), k_r)",
           message="MLA caching the decompressed keys"),
    Mutant("MLA positions ignore the cached tokens", F,
           find="q = torch.cat([q_c, apply_rope(q_r, cos, sin, past)], dim=-1)",
           replace="q = torch.cat([q_c, apply_rope(q_r, cos, sin, 0)], dim=-1)",
           also=(Edit(F, "k_r = apply_rope(self.k_rope(x), cos, sin, past)", "k_r = apply_rope(self.k_rope(x), cos, sin, 0)"),),
           message="ignore the offset"),
    Mutant("MLA scores scaled by 1/sqrt(D)", F,
           find="y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)",
           replace="y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed, scale=D ** -0.5)",
           message="1/sqrt(D) instead of 1/sqrt(D + d_rope)"),
    Mutant("MLA new tokens do not see the cache", F,
           find="allowed = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(past)",
           replace="allowed = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(0)"),
    Mutant("MLA cache size counts decompressed keys and values", F,
           find="return self.d_latent + self.d_rope", replace="return 2 * self.n_heads * self.head_dim + self.d_rope",
           message="counts decompressed keys and values"),
]

VARIANTS = [
    Variant("RMSNorm as weight · x / sqrt(sum(x²)/n + eps)", F,
            find="return x * torch.rsqrt(ms + self.eps) * self.weight",
            replace="return self.weight * (x / torch.sqrt(x.pow(2).sum(-1, keepdim=True) / x.shape[-1] + self.eps))"),
    Variant("hidden size by ceil division with negative floor", F,
            find="return multiple_of * ((h + multiple_of - 1) // multiple_of)",
            replace="return -(-h // multiple_of) * multiple_of"),
    Variant("inv_freq as 1 / base^(2i/D) over arange(0, D, 2)", F,
            find="inv_freq = base ** (-2.0 * i / head_dim)",
            replace="inv_freq = 1.0 / (base ** (torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim))"),
    Variant("apply_rope with complex numbers", F,
            find="    c, s = c.to(x.dtype), s.to(x.dtype)\n    return x * c + rotate_half(x) * s\n",
            replace="    half = D // 2\n"
                    "    z = torch.complex(x[..., :half], x[..., half:]) * torch.complex(c[:, :half].to(x.dtype), "
                    "s[:, :half].to(x.dtype))\n"
                    "    return torch.cat([z.real, z.imag], dim=-1)\n"),
    Variant("repeat_kv by torch.repeat_interleave", F,
            find="return x[:, :, None].expand(B, Hkv, n_rep, T, D).reshape(B, Hkv * n_rep, T, D)",
            replace="return torch.repeat_interleave(x, n_rep, dim=1)"),
    Variant("GQA attention written out: scores, causal mask, softmax", F,
            find="y = F.scaled_dot_product_attention(q, k, v, is_causal=True)        # (B, H, T, D)",
            replace="scores = q @ k.transpose(-2, -1) / D ** 0.5\n"
                    "        future = torch.ones(T, T, dtype=torch.bool).triu(1)\n"
                    "        y = scores.masked_fill(future, float('-inf')).softmax(dim=-1) @ v"),
    Variant("MLA: rope scores added separately, one shared rope key broadcast over heads", F,
            find="""        k = torch.cat([k_c, k_r[:, None].expand(B, H, S, R)], dim=-1)      # (B, H, S, D + R)
        allowed = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(past)  # key s ≤ P + t
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed)     # (B, H, T, D)
""",
            replace="""        q_c, q_r = q.split([D, R], dim=-1)
        scores = (q_c @ k_c.transpose(-2, -1) + q_r @ k_r[:, None].transpose(-2, -1)) / (D + R) ** 0.5
        allowed = torch.ones(T, S, dtype=torch.bool, device=x.device).tril(past)
        y = scores.masked_fill(~allowed, float('-inf')).softmax(dim=-1) @ v
"""),
]

# Survivors of `llmlab mutate 06_llama` that compute what the solution computes for every
# input the docstrings allow (the key is the id the command prints).
EQUIVALENT = {
    "llama.py: `2` -> `1` in `if head_dim < 2 or head_dim % 2 != 0:`":
        "head_dim < 1 or odd rejects exactly the same integers as head_dim < 2 or odd (1 is odd)",
    "llama.py: `2` -> `1` in `if d_rope < 2 or d_rope % 2 != 0:`":
        "d_rope < 1 or odd rejects exactly the same integers as d_rope < 2 or odd (1 is odd)",
    "llama.py: `//` -> `/` in `i = torch.arange(head_dim // 2, dtype=torch.float64)`":
        "head_dim was just checked to be even, so head_dim / 2 is a whole float and arange gives the same "
        "float64 values",
    "llama.py: `-` -> `` in `angle = torch.cat([angle, angle], dim=-1)`":
        "angle is the 2-D (max_len, head_dim/2) outer product, so dim=1 is dim=-1",
    "llama.py: `-` -> `` in `if cos.shape[-1] != D:`":
        "the tables are 2-D (L, D) by the docstring, so shape[1] is shape[-1]",
    "llama.py: `//` -> `/` in `if (d_model // n_heads) % 2 != 0:`":
        "d_model was just checked to be divisible by n_heads, so d_model / n_heads is the same whole "
        "number as a float, with the same remainder mod 2",
    "llama.py: `//` -> `/` in `if (self.d_model // self.n_head) % 2 != 0:`":
        "d_model was just checked to be divisible by n_head, so d_model / n_head is the same whole number "
        "as a float, with the same remainder mod 2",
    "llama.py: `//` -> `/` in `C, D = config.d_model, config.d_model // config.n_head`":
        "the config guarantees divisibility, so D is the same whole number as a float; rope_cache computes "
        "the same float64 angles from it (arange(D // 2) and -2i / D do not depend on int vs float)",
    "llama.py: `0` -> `1` (#2) in `past = 0 if cache is None else cache[0].shape[1]`":
        "cache[1] (the rope keys, (B, P, d_rope)) has the same number of cached tokens P on axis 1 as "
        "cache[0] (the latents, (B, P, d_latent))",
}
