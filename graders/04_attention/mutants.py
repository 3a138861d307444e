"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for topic 04.

Each is one textual edit of solutions/04_attention/attention.py (`llmlab mutants 04_attention`).
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "attention.py"

MUTANTS = [
    # --- softmax
    Mutant("softmax without subtracting the max", F,
           find="e = torch.exp(x - m)", replace="e = torch.exp(x)",
           message="without subtracting the max"),
    Mutant("softmax max taken over the whole tensor", F,
           find="m = x.amax(dim=dim, keepdim=True).detach()", replace="m = x.amax().detach()",
           message="over the whole tensor"),
    Mutant("fully masked row gives NaN (no guard for an all -inf slice)", F,
           find="m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))", replace="m = m",
           message="fully masked row gives NaN"),
    Mutant("softmax normalised by the sum over the whole tensor", F,
           find="s = e.sum(dim=dim, keepdim=True)", replace="s = e.sum()"),
    # --- causal mask
    Mutant("causal mask hides the diagonal", F,
           find="return i[:, None] >= i[None, :]", replace="return i[:, None] > i[None, :]",
           message="hides the diagonal"),
    Mutant("causal mask shows the future", F,
           find="return i[:, None] >= i[None, :]", replace="return i[:, None] >= i[None, :] - 1",
           message="shows the future"),
    Mutant("causal mask inverted (True above the diagonal)", F,
           find="return i[:, None] >= i[None, :]", replace="return i[:, None] < i[None, :]",
           message="causal mask inverted"),
    # --- attention
    Mutant("missing 1/sqrt(d_k)", F,
           find="scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))",
           replace="scores = q @ k.transpose(-2, -1)",
           message="missing 1/sqrt(d_k)"),
    Mutant("scores divided by d_k instead of sqrt(d_k)", F,
           find="/ math.sqrt(q.size(-1))", replace="/ q.size(-1)",
           message="divided by d_k instead of sqrt(d_k)"),
    Mutant("softmax over the wrong axis (queries)", F,
           find="weights = softmax(scores, dim=-1)", replace="weights = softmax(scores, dim=-2)",
           message="softmax over the wrong axis"),
    Mutant("bool mask inverted", F,
           find="scores = scores.masked_fill(~mask, float(\"-inf\"))",
           replace="scores = scores.masked_fill(mask, float(\"-inf\"))",
           message="bool mask inverted"),
    Mutant("additive mask added before the scaling", F,
           find="scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))",
           replace="scores = (q @ k.transpose(-2, -1) + (mask if mask is not None and mask.is_floating_point() "
                   "else 0)) / math.sqrt(q.size(-1))",
           also=(Edit(F, "scores = scores + mask.to(scores.dtype)", "pass"),),
           message="added before the 1/sqrt(d_k) scaling"),
    Mutant("additive (float) mask ignored", F,
           find="scores = scores + mask.to(scores.dtype)", replace="pass"),
    Mutant("causal mask ignored when an explicit mask is given", F,
           find="    if causal:\n", replace="    if causal and mask is None:\n"),
    # --- multi-head attention
    Mutant("heads merged in the wrong order (head axis last)", F,
           find="y = y.transpose(1, 2).reshape(B, T, C)", replace="y = y.permute(0, 2, 3, 1).reshape(B, T, C)",
           message="heads merged in the wrong order"),
    Mutant("heads merged without the transpose", F,
           find="y = y.transpose(1, 2).reshape(B, T, C)", replace="y = y.reshape(B, T, C)",
           message="heads merged without moving the head axis back"),
    Mutant("heads split without the transpose", F,
           find=".view(B, T, H, C // H).transpose(1, 2)", replace=".reshape(B, H, T, C // H)",
           message="heads split without a transpose"),
    Mutant("multi-head attention drops the mask", F,
           find="y = scaled_dot_product_attention(q, k, v, mask=mask, causal=causal)",
           replace="y = scaled_dot_product_attention(q, k, v, causal=causal)"),
    Mutant("values projected with k_proj (copy-paste)", F,
           find="for proj in (self.q_proj, self.k_proj, self.v_proj)",
           replace="for proj in (self.q_proj, self.k_proj, self.k_proj)"),
    Mutant("output projection forgotten", F,
           find="return self.out_proj(y)", replace="return y"),
    # --- LayerNorm, gelu, feed-forward
    Mutant("LayerNorm with unbiased variance", F,
           find="correction=0", replace="correction=1",
           message="Bessel's correction"),
    Mutant("LayerNorm without centring (mean not subtracted)", F,
           find="x_hat = (x - mean) / torch.sqrt(var + self.eps)", replace="x_hat = x / torch.sqrt(var + self.eps)"),
    Mutant("LayerNorm eps outside the sqrt", F,
           find="torch.sqrt(var + self.eps)", replace="(torch.sqrt(var) + self.eps)",
           message="eps outside the square root"),
    Mutant("gelu tanh approximation", F,
           find="return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))",
           replace="return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x ** 3)))",
           message="tanh approximation"),
    Mutant("feed-forward uses ReLU", F,
           find="return self.down(gelu(self.up(x)))", replace="return self.down(torch.relu(self.up(x)))",
           message="ReLU instead of GELU"),
    # --- Transformer block
    Mutant("post-norm where pre-norm was asked", F,
           find="if self.pre_norm:", replace="if not self.pre_norm:",
           message="post-norm where pre-norm was asked"),
    Mutant("feed-forward residual missing (pre-norm)", F,
           find="x = x + self.ffn(self.ln2(x))", replace="x = self.ffn(self.ln2(x))",
           message="residual connection is missing"),
    Mutant("parallel sublayers (ffn reads the block input)", F,
           find="x = x + self.attn(self.ln1(x), mask=mask, causal=causal)",
           replace="h = x + self.attn(self.ln1(x), mask=mask, causal=causal)",
           also=(Edit(F, "x = x + self.ffn(self.ln2(x))", "x = h + self.ffn(self.ln2(x))"),),
           message="both sublayers read the block input"),
    Mutant("ln1 reused for the feed-forward", F,
           find="x = x + self.ffn(self.ln2(x))", replace="x = x + self.ffn(self.ln1(x))",
           message="ln1 used for both sublayers"),
    Mutant("block ignores the causal flag", F,
           find="x = x + self.attn(self.ln1(x), mask=mask, causal=causal)",
           replace="x = x + self.attn(self.ln1(x), mask=mask)"),
]

VARIANTS = [
    Variant("softmax via logsumexp", F,
            find="""    m = x.amax(dim=dim, keepdim=True).detach()                       # max of each slice; a constant shift
    m = torch.where(torch.isfinite(m), m, torch.zeros_like(m))      # all -inf slice: shift by 0, not -inf
    e = torch.exp(x - m)                                             # in [0, 1]; exp(-inf) = 0
    s = e.sum(dim=dim, keepdim=True)                                 # >= 1, or 0 for an all -inf slice
    return e / torch.where(s > 0, s, torch.ones_like(s))             # 0 / 1 = 0 on fully masked slices
""",
            replace="""    lse = torch.logsumexp(x, dim=dim, keepdim=True)
    full = torch.isneginf(lse)
    out = torch.exp(x - torch.where(full, torch.zeros_like(lse), lse))
    return out.masked_fill(full, 0.0)
"""),
    Variant("causal mask with tril", F,
            find="""    i = torch.arange(seq_len, device=device)
    return i[:, None] >= i[None, :]""",
            replace="    return torch.ones(seq_len, seq_len, dtype=torch.bool, device=device).tril()"),
    Variant("attention: scale q first, einsum, additive -1e9-free float bias", F,
            find="""    scores = q @ k.transpose(-2, -1) / math.sqrt(q.size(-1))         # (..., T_q, T_k)
    if causal:
        allowed = causal_mask(max(T_q, T_k), device=q.device)[:T_q, :T_k]   # (T_q, T_k), j <= i
        scores = scores.masked_fill(~allowed, float("-inf"))
    if mask is not None:
        if mask.dtype == torch.bool:
            scores = scores.masked_fill(~mask, float("-inf"))
        else:
            scores = scores + mask.to(scores.dtype)
    weights = softmax(scores, dim=-1)                                 # (..., T_q, T_k), over the keys
    return weights @ v                                                # (..., T_q, d_v)
""",
            replace="""    scores = torch.einsum("...qd,...kd->...qk", q * q.size(-1) ** -0.5, k)
    bias = torch.zeros(T_q, T_k, dtype=q.dtype, device=q.device)
    if causal:
        bias = bias.masked_fill(~causal_mask(max(T_q, T_k), device=q.device)[:T_q, :T_k], float("-inf"))
    if mask is not None:
        if mask.dtype == torch.bool:
            bias = bias.masked_fill(~mask, float("-inf")) if mask.dim() <= 2 else \\
                torch.where(mask, bias, torch.tensor(float("-inf"), dtype=q.dtype))
        else:
            bias = bias + mask.to(q.dtype)
    weights = softmax(scores + bias, dim=-1)
    return torch.einsum("...qk,...kd->...qd", weights, v)
"""),
    Variant("multi-head attention: loop over heads, concatenate", F,
            find="""        q, k, v = (proj(x).view(B, T, H, C // H).transpose(1, 2)          # 3 x (B, H, T, D)
                   for proj in (self.q_proj, self.k_proj, self.v_proj))
        y = scaled_dot_product_attention(q, k, v, mask=mask, causal=causal)  # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)                            # (B, T, H, D) -> (B, T, C)
""",
            replace="""        D = C // H
        q, k, v = self.q_proj(x), self.k_proj(x), self.v_proj(x)
        if mask is not None and mask.dim() == 4:
            heads = [scaled_dot_product_attention(q[..., h * D:(h + 1) * D], k[..., h * D:(h + 1) * D],
                                                  v[..., h * D:(h + 1) * D],
                                                  mask=mask[:, h if mask.size(1) > 1 else 0], causal=causal)
                     for h in range(H)]
        else:
            heads = [scaled_dot_product_attention(q[..., h * D:(h + 1) * D], k[..., h * D:(h + 1) * D],
                                                  v[..., h * D:(h + 1) * D], mask=mask, causal=causal)
                     for h in range(H)]
        y = torch.cat(heads, dim=-1)
"""),
    Variant("LayerNorm via mean(x*x) - mean(x)**2 and rsqrt", F,
            find="""        var = x.var(dim=-1, keepdim=True, correction=0)                   # (..., 1), biased
        x_hat = (x - mean) / torch.sqrt(var + self.eps)                   # (..., dim)
""",
            replace="""        var = (x * x).mean(dim=-1, keepdim=True) - mean * mean
        x_hat = (x - mean) * torch.rsqrt(var + self.eps)
"""),
    Variant("gelu via the normal CDF (erfc form)", F,
            find="return 0.5 * x * (1.0 + torch.erf(x / math.sqrt(2.0)))",
            replace="return x * 0.5 * torch.erfc(-x * 0.7071067811865476)"),
    Variant("pre-norm block written with named intermediates", F,
            find="""            x = x + self.attn(self.ln1(x), mask=mask, causal=causal)      # (B, T, C)
            x = x + self.ffn(self.ln2(x))                                 # (B, T, C)
""",
            replace="""            a = self.attn(self.ln1(x), mask=mask, causal=causal)
            h = a + x
            return self.ffn(self.ln2(h)) + h
"""),
]
