# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 06 · From GPT-2 to LLaMA
#
# Chapter 05 built GPT-2 at toy size. Almost every open model since 2023 (LLaMA, Mistral,
# Qwen, Gemma, DeepSeek) keeps its overall shape — a stack of pre-norm decoder blocks — but
# swaps four of its parts. This chapter writes each replacement and then assembles them into a
# `TinyLlama`, the model that the later chapters (decoding, KV caches, speculative decoding,
# long context, ...) build on through the given library `llmlab.lib.llama`.
#
# | unit | replaces | what it does |
# |---|---|---|
# | `RMSNorm(dim, eps)` | LayerNorm | divide by the root mean square, times a gain; no mean, no bias |
# | `swiglu_hidden_size`, `SwiGLU` | Linear → GELU → Linear | `down(silu(gate(x)) · up(x))`, width `8C/3` rounded up |
# | `rope_cache`, `rotate_half`, `apply_rope` | the position table | rotate pairs of query/key dimensions by position-dependent angles |
# | `repeat_kv`, `GroupedQueryAttention` | multi-head attention | fewer key/value heads, each shared by a group of query heads |
# | `LlamaBlock`, `LlamaConfig`, `TinyLlama` | GPT's block and model | the pieces assembled, with an untied head |
# | `MultiHeadLatentAttention` | (DeepSeek-V2) | keys and values decompressed from one cached low-rank latent per token |
#
# At the end we measure three things: gradient norms by depth in pre-norm and post-norm
# stacks, how attention depends on distance in the course's trained tiny LLaMA, and how big
# the key-value cache is for MHA, GQA, MQA and MLA.

# %% [markdown]
# ## 1. Intuition
#
# **RMSNorm.** LayerNorm subtracts each vector's mean, divides by its standard deviation, then
# scales and shifts. RMSNorm (Zhang & Sennrich, 2019) keeps only the part that matters most for
# stable training — controlling the vector's *scale*. For $x \in \mathbb{R}^d$ with gain
# $g$ (`weight`),
#
# $$
# \operatorname{RMSNorm}(x) = \frac{x}{\sqrt{\frac{1}{d} \sum_{i=1}^{d} x_i^2 + \varepsilon}} \odot g .
# $$
#
# No mean subtraction, no bias: fewer operations, one parameter vector, and in practice the
# same quality. The small $\varepsilon$ (`eps`) sits *inside* the square root, so a zero vector
# gives $0 / \sqrt{\varepsilon} = 0$ and a finite gradient.
#
# **SwiGLU.** GPT's feed-forward is `down(gelu(up(x)))`. A *gated* linear unit multiplies two
# projections of `x`, one of them passed through a nonlinearity that acts as a soft switch:
# `down(silu(gate(x)) · up(x))`, that is
#
# $$
# \operatorname{SwiGLU}(x) = W_{\text{down}} \bigl( \operatorname{silu}(W_{\text{gate}}\, x) \odot W_{\text{up}}\, x \bigr),
# \qquad \operatorname{silu}(z) = z \, \sigma(z) = \frac{z}{1 + e^{-z}} .
# $$
#
# Three matrices instead of two, so LLaMA shrinks the hidden width from $4C$ to $8C/3$ (rounded
# up to a multiple of 16 or 256 for fast kernels) to keep the parameter count at about $8C^2$.
#
# **RoPE.** GPT-2 *adds* a learned vector for each position to the token embedding. Rotary
# position embeddings (Su et al., 2021) instead *rotate* the query and the key of each head
# before their dot product. Split a head's $D$ dimensions into $D/2$ pairs; pair $i$ is rotated
# by the angle $p\,\theta_i$ at position $p$, with frequencies $\theta_i = \mathrm{base}^{-2i/D}$ that
# range from one radian per position ($i = 0$) down to almost nothing. Write $R_p$ for the
# rotation of all pairs at position $p$; rotations compose by adding angles
# ($R_m^\top = R_{-m}$, $R_{-m} R_n = R_{n-m}$), so
#
# $$
# (R_m\, q)^\top (R_n\, k) = q^\top R_m^\top R_n\, k = q^\top R_{n-m}\, k :
# $$
#
# the score of a query at position $m$ and a key at position $n$ depends on the positions only
# through $m - n$. Attention sees *relative* positions, with no table and no maximum length
# baked into the weights.
#
# *Which dimensions form a pair* is a convention, and mixing conventions is the classic RoPE
# bug. The original paper pairs neighbours `(0, 1), (2, 3), …` (*interleaved*); LLaMA's
# Hugging Face port, and this course, pair dimension `i` with `i + D/2` (*half-split*): the
# first half of the head holds the "x" coordinates of the pairs, the second half the "y"
# coordinates. A quarter turn of every pair is then `rotate_half(x) = cat([−x2, x1])`, and the
# rotation is `x · cos + rotate_half(x) · sin` with `cos` and `sin` tables whose two halves
# repeat. Weights trained in one convention give garbage in the other.
#
# **Grouped-query attention.** When a model generates text it caches the keys and values of
# every past token (chapter 16). With $H$ heads that is $2 H D$ numbers per token per layer —
# for long contexts more memory than the weights. GQA (Ainslie et al., 2023) keeps $H$ query
# heads but only $H_{kv} < H$ key/value heads; each kv head serves a *group* of $H / H_{kv}$
# consecutive query heads, so query head $h$ reads kv head $\lfloor h / (H / H_{kv}) \rfloor$
# (`h // (H / Hkv)`). $H_{kv} = H$ is ordinary multi-head attention, $H_{kv} = 1$ is multi-query
# attention (MQA).
#
# **Multi-head latent attention.** DeepSeek-V2 compresses further: it caches one low-rank
# *latent* $c = W_{\text{down}}\, x$ of `d_latent` numbers per token and decompresses every head's key
# and value from it with up-projections. RoPE does not commute with such a decompression, so
# positions enter through a separate small *rope key* of `d_rope` numbers shared by all heads.
# The cache holds `d_latent + d_rope` numbers per token and layer.

# %% [markdown]
# ## 2. Small calculations by hand
#
# **RMSNorm of `[3, 4]`** (weight 1, eps ≈ 0): `mean(x²) = (9 + 16) / 2 = 12.5`, the RMS is
# `sqrt(12.5) ≈ 3.5355`, so `y ≈ [0.8485, 1.1314]`. LayerNorm would instead give `[−1, 1]`:
# it removes the mean 3.5 first.
#
# **SwiGLU width** for `C = 64`: `8 · 64 / 3 = 170.67`, `int` gives 170, rounded up to a multiple
# of 16: **176**. Parameters: `3 · 64 · 176 = 33,792` against GPT's `2 · 64 · 256 = 32,768`.
#
# **RoPE with `D = 4`, base 10000:** `θ_0 = 10000^0 = 1`, `θ_1 = 10000^(−2/4) = 0.01`. Pairs are
# `(x0, x2)` and `(x1, x3)`. At position `p = 1`, `x = [1, 0, 0, 0]` is the pair `(1, 0)` turned by
# 1 radian: `(cos 1, sin 1) = (0.5403, 0.8415)`, so `R(1)·x = [0.5403, 0, 0.8415, 0]`. With the
# interleaved pairing the pair would be `(x0, x1)` and the result `[0.5403, 0.8415, 0, 0]`.
# **Relative positions:** with `q = k = [1, 0, 0, 0]`, `q(m) · k(n) = cos((m − n) · 1)`: for
# `(m, n) = (5, 3)` and `(9, 7)` both give `cos 2 ≈ −0.4161`.
#
# **GQA head map**, `H = 8`, `Hkv = 2`: group size 4, query heads 0–3 read kv head 0 and 4–7 read
# kv head 1 (`h // 4`), not `0, 1, 0, 1, …` (`h % 2`).
#
# **Cache per token and layer** for `C = 4096`, `H = 32`, `D = 128`: MHA `2 · 32 · 128 = 8192`
# numbers, GQA with 8 kv heads `2048`, MQA `256`, MLA with `d_latent = 512`, `d_rope = 64`:
# `576`.

# %%
import math

x_h = [3.0, 4.0]
rms_h = math.sqrt(sum(v * v for v in x_h) / len(x_h))
print("RMSNorm([3, 4]) by hand:", [round(v / rms_h, 4) for v in x_h])
print("SwiGLU width for C = 64:", 16 * math.ceil(int(8 * 64 / 3) / 16))
print("R(1)·[1, 0, 0, 0] by hand, half-split:", [round(math.cos(1), 4), 0.0, round(math.sin(1), 4), 0.0])
print("q(5)·k(3) = q(9)·k(7) = cos 2 =", round(math.cos(2), 4))
print("GQA H=8, Hkv=2, kv head of each query head:", [h // 4 for h in range(8)])
print("cache numbers per token and layer: MHA", 2 * 32 * 128, " GQA-8", 2 * 8 * 128, " MQA", 2 * 128,
      " MLA", 512 + 64)

# %% [markdown]
# ## 3. Implementation
#
# Everything lives in `llama.py`. Shapes: `B` batch, `T` sequence length, `C = d_model`, `H`
# query heads, `Hkv` key/value heads, `D = C // H` head size, `V` vocabulary size. The module
# imports GPT-2's initialisation helpers from the given library.

# %%
#| include: llama.py::header

# %% [markdown]
# ### 3.1 `RMSNorm`
#
# One parameter `weight` of shape `(dim,)`, initialised to ones, and `self.eps` (default
# `1e-6`). `forward` normalises over the **last** axis: `x · rsqrt(mean(x², dim=−1) + eps) ·
# weight`. The graders compare with `F.rms_norm` — and forbid calling it (or `nn.RMSNorm`)
# inside your code — on random shapes, dtypes, tiny inputs where the place of `eps` matters,
# and the gradients.

# %%
#| include: llama.py::RMSNorm

# %%
norm_h = RMSNorm(2, eps=0.0)
print("RMSNorm([3, 4]):", norm_h(torch.tensor([3.0, 4.0])).tolist())

# %%
#| grade: test_rmsnorm_matches_torch test_rmsnorm_parameters_and_eps test_rmsnorm_gradients test_rmsnorm_reference_data

# %% [markdown]
# ### 3.2 `swiglu_hidden_size` and `SwiGLU`
#
# `swiglu_hidden_size(d_model, multiple_of=16)` is `int(8·d_model/3)` rounded **up** to the next
# multiple of `multiple_of`, with $m$ = `multiple_of`:
# $h = m \left\lceil \lfloor 8C/3 \rfloor / m \right\rceil$ (LLaMA-7B: `C = 4096`, `multiple_of = 256`
# gives 11008). `SwiGLU(d_model,
# hidden=None, multiple_of=16)` has three bias-free Linears `gate`, `up` (C → hidden) and `down`
# (hidden → C) and computes `down(silu(gate(x)) · up(x))`.

# %%
#| include: llama.py::swiglu_hidden_size,SwiGLU

# %%
mlp_h = SwiGLU(64)
print("SwiGLU(64).hidden =", mlp_h.hidden, "; parameters:", sum(p.numel() for p in mlp_h.parameters()),
      "; LLaMA-7B width:", swiglu_hidden_size(4096, 256))

# %%
#| grade: test_swiglu_hidden_size test_swiglu_structure_and_formula test_swiglu_gradients test_swiglu_reference_data

# %% [markdown]
# ### 3.3 RoPE: `rope_cache`, `rotate_half`, `apply_rope`
#
# `rope_cache(head_dim, max_len, base=10000.0, dtype=float32)` returns the `(max_len, head_dim)`
# tables `cos` and `sin` of the angles `p · base^(−2i/head_dim)`, each half repeated
# (`cat([angle, angle], −1)`: column `i` and column `i + D/2` belong to the same pair). Compute the
# angles in float64 and cast at the end: the cell below prints how far angles computed in
# float32 drift from the float64 ones at position 3000.
#
# `rotate_half(x)` is `cat([−x2, x1], −1)`. `apply_rope(x, cos, sin, positions=0)` rotates
# `x` of shape `(…, T, D)`: `x · cos[pos] + rotate_half(x) · sin[pos]`. Written out for the
# vector $x$ of one head at position $p$ and a pair index $0 \le i < D/2$, with
# $\theta_i = \mathrm{base}^{-2i/D}$:
#
# $$
# \begin{aligned}
# x'_i &= x_i \cos(p\,\theta_i) - x_{i + D/2} \sin(p\,\theta_i), \\
# x'_{i + D/2} &= x_{i + D/2} \cos(p\,\theta_i) + x_i \sin(p\,\theta_i),
# \end{aligned}
# $$
#
# a rotation of the plane $(x_i, x_{i+D/2})$ by the angle $p\,\theta_i$. Here `positions` is an
# int offset (positions `offset … offset + T − 1` — during cached decoding the new token sits
# after all cached ones) or an explicit `(T,)` tensor of positions.

# %%
#| include: llama.py::rope_cache,rotate_half,apply_rope

# %%
cos_h, sin_h = rope_cache(4, 10)
print("θ for D = 4:", (cos_h[1, :2].acos()).tolist(), "(angles at position 1)")
print("R(1)·[1, 0, 0, 0] =", apply_rope(torch.tensor([[1.0, 0, 0, 0]]), cos_h, sin_h, 1).tolist())
q_h = torch.tensor([[1.0, 0, 0, 0]])
for m, n in ((5, 3), (9, 7)):
    print(f"q({m})·k({n}) =", round(float((apply_rope(q_h, cos_h, sin_h, m) * apply_rope(q_h, cos_h, sin_h, n)).sum()), 4))
i64 = torch.arange(32, dtype=torch.float64)
angle64 = 3000 * 10000.0 ** (-2 * i64 / 64)
angle32 = 3000 * 10000.0 ** (-2 * i64.float() / 64)
print(f"head_dim 64, position 3000: max |float32 angle − float64 angle| = "
      f"{float((angle32.double() - angle64).abs().max()):.2e} radians")

# %%
#| grade: test_rope_cache_values test_rope_cache_reference_data test_rope_long_positions_hidden

# %%
#| grade: test_rotate_half test_apply_rope_matches_complex_oracle test_apply_rope_keeps_norms_and_depends_on_relative_position test_apply_rope_offsets_and_explicit_positions test_apply_rope_gradients test_apply_rope_reference_data

# %% [markdown]
# ### 3.4 `repeat_kv` and `GroupedQueryAttention`
#
# `repeat_kv(x, n_rep)` turns `(B, Hkv, T, D)` into `(B, Hkv·n_rep, T, D)` with output head `h`
# equal to input head `h // n_rep` — `repeat_interleave`, not `repeat` (which tiles).
#
# `GroupedQueryAttention(d_model, n_heads, n_kv_heads, qk_norm=False, eps=1e-6)` has bias-free
# `q_proj` (C → H·D), `k_proj`, `v_proj` (C → Hkv·D) and `o_proj` (H·D → C); with `qk_norm` also
# `q_norm`, `k_norm` = `RMSNorm(D, eps)`, applied per head **before** RoPE (Qwen3 and OLMo-2 use
# this to keep attention logits bounded). `forward(x, cos, sin)`: project and split into heads,
# norms, RoPE on `q` and `k` only (values carry content, not position), repeat the kv heads,
# causal attention with scale `1/sqrt(D)` (`F.scaled_dot_product_attention` is allowed: chapter
# 04 wrote it), merge the heads, `o_proj`.

# %%
#| include: llama.py::repeat_kv,GroupedQueryAttention

# %%
kv_h = torch.arange(2.0).view(1, 2, 1, 1)                     # kv heads 0 and 1
print("query head -> kv head:", repeat_kv(kv_h, 4).flatten().long().tolist())

# %%
#| grade: test_repeat_kv_head_order test_repeat_kv_edge_cases_and_gradient

# %%
#| grade: test_gqa_structure test_gqa_matches_head_loop_oracle test_gqa_is_mha_with_repeated_kv_weights test_gqa_causal_and_only_relative_positions_matter test_gqa_gradients test_gqa_reference_data test_gqa_more_configs_hidden

# %% [markdown]
# ### 3.5 `LlamaBlock`
#
# Pre-norm, as GPT-2: `x = x + attn(attn_norm(x), cos, sin)`, then `x = x + mlp(mlp_norm(x))`,
# with `attn_norm`, `mlp_norm` = `RMSNorm(C, eps)`, `attn` a `GroupedQueryAttention` and `mlp` a
# `SwiGLU`. The argument order `(d_model, n_heads, n_kv_heads, hidden, qk_norm, eps)` is that of
# `llmlab.lib.llama.LlamaBlock`.

# %%
#| include: llama.py::LlamaBlock

# %%
#| grade: test_block_structure_and_oracle test_block_zeroed_sublayers test_block_gradients_and_reference_data

# %% [markdown]
# ### 3.6 `LlamaConfig` and `TinyLlama`
#
# `LlamaConfig` validates its fields in `__post_init__` (positive integer sizes, divisibility of
# `d_model` by `n_head` and of `n_head` by `n_kv_head`, an even head size, positive `rope_base`
# and `norm_eps`). `TinyLlama(config)` has `tok_emb`, `blocks`, a final `norm`, an **untied**
# `lm_head`, and the rope tables as *non-persistent* buffers (`register_buffer(...,
# persistent=False)`): they move with `.to()` and `.double()` but stay out of the state dict,
# because they are a function of the config. There is no position table. The parameter names
# equal those of the given `llmlab.lib.llama.TinyLlama`: the graders load the same state dict
# into both and compare logits and gradients in float64, and load the course's trained
# checkpoint into yours.

# %%
#| include: llama.py::LlamaConfig

# %%
#| grade: test_config_defaults_and_validation

# %%
#| include: llama.py::TinyLlama

# %%
torch.manual_seed(0)
tiny_h = TinyLlama(LlamaConfig(vocab_size=64, block_size=16, n_layer=2, n_head=4, n_kv_head=2, d_model=32))
print("state dict:", len(tiny_h.state_dict()), "tensors;", sum(p.numel() for p in tiny_h.parameters()), "parameters;",
      "buffers:", [n for n, _ in tiny_h.named_buffers()])
ids_h = torch.randint(0, 64, (4, 16), generator=torch.Generator().manual_seed(1))
print(f"first loss {tiny_h(ids_h, ids_h)[1].item():.4f}  ln V = {math.log(64):.4f}")

# %%
#| grade: test_model_structure_state_dict_and_buffers test_model_matches_given_library_in_float64 test_model_reference_data test_model_forward_contract test_model_initialisation test_checkpoint_predicts_held_out_text_hidden

# %% [markdown]
# ### 3.7 `MultiHeadLatentAttention`
#
# The layers (all bias-free): `q_proj` (C → H·(D + d_rope); head `h`'s first `D` columns are its
# content query, the last `d_rope` its rope query), `kv_down` (C → d_latent), `k_up`, `v_up`
# (d_latent → H·D), `k_rope` (C → d_rope, **one** rope key shared by all heads), `o_proj`.
# `forward(x, cos, sin, cache=None)` returns `(y, (c_kv, k_r))`: the cache holds the latent and
# the *rotated* rope key of every token seen so far. The new tokens sit at positions
# `P … P + T − 1` after the `P` cached ones; keys and values are decompressed from the cached
# latent at every call (a real implementation folds `k_up` into the query instead — exercise 4).
# Head $h$'s score for a query at position $t$ and a key at position $s$ is
#
# $$
# \frac{q^{c}_{t} \cdot k^{c}_{s} + \operatorname{rope}(q^{r}_{t}) \cdot k^{r}_{s}}{\sqrt{D + d_{\text{rope}}}},
# \qquad k^{c}_{s} = W^{(h)}_{\text{uk}}\, c_s ,
# $$
#
# with $q^c_t$, $q^r_t$ the head's content and rope query, $c_s$ the cached latent and $k^r_s$ the
# cached (already rotated) rope key; the value is $W^{(h)}_{\text{uv}}\, c_s$ (the head's rows of
# `k_up` and `v_up`).

# %%
#| include: llama.py::MultiHeadLatentAttention

# %%
mla_h = MultiHeadLatentAttention(d_model=64, n_heads=4, d_latent=16, d_rope=8)
cos8, sin8 = rope_cache(8, 32)
x_mla = torch.randn(2, 10, 64, generator=torch.Generator().manual_seed(2))
with torch.no_grad():
    full_h, _ = mla_h(x_mla, cos8, sin8)
    y1, cache_h = mla_h(x_mla[:, :7], cos8, sin8)
    y2, cache_h = mla_h(x_mla[:, 7:], cos8, sin8, cache_h)
print("cache shapes:", [tuple(c.shape) for c in cache_h], "= d_latent + d_rope =", mla_h.cache_size_per_token(),
      "numbers per token")
print("max |pieces with cache − full forward|:", float((torch.cat([y1, y2], 1) - full_h).abs().max()))

# %%
#| grade: test_mla_structure_and_cache_size test_mla_matches_explicit_decompression test_mla_cache_holds_the_latent_and_rotated_rope_key test_mla_incremental_decoding_matches_full_forward test_mla_gradients test_mla_reference_data test_mla_token_by_token_hidden

# %% [markdown]
# ## 4. Experiments
#
# ### 4.1 Pre-norm vs post-norm: gradient norms by depth
#
# The original Transformer normalised *after* the residual add (`x = norm(x + f(x))`, post-norm);
# GPT-2 and LLaMA normalise the *input* of each sub-layer and leave the residual stream
# untouched (pre-norm). We build a 12-block `TinyLlama` at initialisation and a post-norm copy
# with the very same weights (a `LlamaBlock` whose `forward` puts the norms after the adds), run
# one batch of course text through each, and print the gradient norm of every block's
# parameters, averaged over two seeds. In a post-norm stack, the gradient reaching an early
# block has passed through every later norm; in a pre-norm stack the residual path carries it
# past them. Compare the printed first-to-last ratios.

# %%
import matplotlib.pyplot as plt

from llmlab.lib.corpus import course_corpus, train_val_split
from llmlab.lib.llama import load_tiny_llama
from llmlab.lib.text import CharCodec

corpus = course_corpus()
codec = CharCodec.from_text(corpus)
data = codec.encode(corpus)


class PostNormBlock(LlamaBlock):
    """The same sub-layers, with the norms after the residual adds (the 2017 Transformer)."""

    def forward(self, x, cos, sin):
        x = self.attn_norm(x + self.attn(x, cos, sin))
        return self.mlp_norm(x + self.mlp(x))


DEPTH, WIDTH, CTX = 12, 64, 64
g_batch = torch.Generator().manual_seed(3)
starts = torch.randint(0, len(data) - CTX - 1, (4,), generator=g_batch)
xb = torch.stack([data[s:s + CTX] for s in starts])
yb = torch.stack([data[s + 1:s + CTX + 1] for s in starts])


def block_grad_norms(model):
    model.zero_grad()
    model(xb, yb)[1].backward()
    return [math.sqrt(sum(float(p.grad.pow(2).sum()) for p in b.parameters())) for b in model.blocks]


norms = {"pre-norm": [], "post-norm": []}
for seed in range(2):
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=codec.vocab_size, block_size=CTX, n_layer=DEPTH, n_head=4, n_kv_head=2,
                      d_model=WIDTH)
    pre = TinyLlama(cfg)
    post = TinyLlama(cfg)
    post.load_state_dict(pre.state_dict())
    for i, b in enumerate(pre.blocks):
        post.blocks[i] = PostNormBlock(WIDTH, 4, 2)
        post.blocks[i].load_state_dict(b.state_dict())
    norms["pre-norm"].append(block_grad_norms(pre))
    norms["post-norm"].append(block_grad_norms(post))
mean_norms = {k: [sum(col) / len(col) for col in zip(*v)] for k, v in norms.items()}
print("block:     " + " ".join(f"{i:8d}" for i in range(DEPTH)))
for kind, values in mean_norms.items():
    print(f"{kind:10s}" + " ".join(f"{v:8.4f}" for v in values))
for kind, values in mean_norms.items():
    print(f"{kind}: block 0 / block {DEPTH - 1} = {values[0] / values[-1]:.2f}, "
          f"largest / smallest = {max(values) / min(values):.2f}, mean over blocks = {sum(values) / DEPTH:.4f}")

# %%
fig, ax = plt.subplots(figsize=(7, 3.5))
for kind, values in mean_norms.items():
    ax.plot(range(DEPTH), values, "o-", label=kind)
ax.set_yscale("log")
ax.set_xlabel("block (0 = next to the embedding)")
ax.set_ylabel("gradient norm of the block's parameters")
ax.set_title(f"{DEPTH}-block TinyLlama at initialisation, one batch of course text")
ax.legend()
plt.show()

# %% [markdown]
# Read the table. The two ratios say how evenly each stack spreads its gradient over depth
# (1 means every block gets the same), and the two means say how large the gradients are
# overall — which matters for the learning rate a stack tolerates. At initialisation every
# sub-layer's output is small next to the residual stream, so neither stack is yet far from
# an identity map; exercise 5 asks how the numbers move with depth and width, and they move
# further once training makes the sub-layers' outputs large.
#
# ### 4.2 Attention vs distance in the trained tiny LLaMA
#
# The given library ships the course's tiny LLaMA, trained on the course corpus
# (`reference/06_llama/tiny_llama.npz`, written by `llmlab fixtures 06_llama`). We load its
# weights into **our** `TinyLlama`, check that it reproduces the recorded held-out loss, and
# then measure how much attention each query pays, on average, to the key `d` positions back,
# per layer, over windows of held-out text. For comparison, the dashed line is what RoPE alone
# does to the score of a query with an identical key, averaged over random vectors:
# $\frac{2}{D} \sum_{i=0}^{D/2-1} \cos(d\,\theta_i)$.

# %%
lib_model, lib_codec, info = load_tiny_llama()
ours = TinyLlama(LlamaConfig(**info["config"]))
ours.load_state_dict(lib_model.state_dict())
ours.eval()
_, val_text = train_val_split(corpus, info["training"]["val_fraction"])
val = lib_codec.encode(val_text)
T_ck = info["config"]["block_size"]
n_win = (len(val) - 1) // T_ck
xv, yv = val[:n_win * T_ck].view(n_win, T_ck), val[1:n_win * T_ck + 1].view(n_win, T_ck)
with torch.no_grad():
    val_loss = ours(xv, yv)[1].item()
print(f"held-out loss with our TinyLlama: {val_loss:.4f} (recorded {info['val_loss']:.4f}); "
      f"first training loss {info['first_loss']:.4f}, ln V = {math.log(info['config']['vocab_size']):.4f}")

captured = []
hooks = [b.attn.register_forward_hook(lambda mod, inp, out: captured.append(inp[0])) for b in ours.blocks]
with torch.no_grad():
    ours(xv[:64])
for h in hooks:
    h.remove()

by_layer = []
D_ck = ours.blocks[0].attn.head_dim
for block, h_in in zip(ours.blocks, captured):
    a = block.attn
    B_, T_, _ = h_in.shape
    with torch.no_grad():
        q = a.q_proj(h_in).view(B_, T_, a.n_heads, D_ck).transpose(1, 2)
        k = a.k_proj(h_in).view(B_, T_, a.n_kv_heads, D_ck).transpose(1, 2)
        q, k = apply_rope(q, ours.rope_cos, ours.rope_sin), apply_rope(k, ours.rope_cos, ours.rope_sin)
        k = repeat_kv(k, a.n_heads // a.n_kv_heads)
        scores = (q @ k.transpose(-1, -2) / math.sqrt(D_ck)).masked_fill(
            torch.ones(T_, T_, dtype=torch.bool).triu(1), float("-inf"))
        probs = scores.softmax(-1)                                   # (B, H, T, T)
    dist = torch.arange(T_)[:, None] - torch.arange(T_)[None, :]     # query − key
    by_layer.append([float(probs[..., dist == d].mean()) for d in range(T_)])
for i, row in enumerate(by_layer):
    print(f"layer {i}: mean attention at distance 0, 1, 2, 4, 8, 16, 32:",
          [round(row[d], 4) for d in (0, 1, 2, 4, 8, 16, 32)])
theta = 10000.0 ** (-2 * torch.arange(D_ck // 2, dtype=torch.float64) / D_ck)
rope_alone = [float(torch.cos(d * theta).mean()) for d in range(T_ck)]

# %%
fig, ax1 = plt.subplots(figsize=(7, 3.5))
for i, row in enumerate(by_layer):
    ax1.plot(range(T_ck), row, label=f"layer {i} (mean attention weight)")
ax1.set_yscale("log")
ax1.set_xlabel("distance query − key (characters)")
ax1.set_ylabel("mean attention weight")
ax2 = ax1.twinx()
ax2.plot(range(T_ck), rope_alone, "k--", lw=1, label="RoPE alone: mean cos(d·θ_i)")
ax2.set_ylabel("RoPE-only score factor")
ax1.legend(loc="upper right", fontsize=8)
ax2.legend(loc="lower left", fontsize=8)
ax1.set_title("trained tiny LLaMA on held-out course text")
plt.show()

# %% [markdown]
# Compare the printed rows: how quickly each layer's weight falls with distance, and whether a
# layer keeps weight far back (for a name's pronoun, or the opening quote of a dialogue line)
# or concentrates on the last few characters. The RoPE-only curve says how much the rotation by
# itself damps the score of an identical key as it moves away.
#
# ### 4.3 The KV cache: MHA, GQA, MQA, MLA
#
# Numbers cached per token and layer, and the memory for a 4096-token context in a 32-layer
# model of width 4096 with 32 heads of 128 dimensions in bfloat16 (2 bytes a number). The
# GQA/MQA counts are measured by running our `GroupedQueryAttention`'s key and value projections
# on one token; MLA's by running our `MultiHeadLatentAttention` and counting its cache — on
# PyTorch's `meta` device, which computes shapes without allocating the 4096-wide weights.

# %%
C_big, H_big, L_big, T_big = 4096, 32, 32, 4096
rows = []
with torch.device("meta"):                      # shapes only: no memory, no arithmetic
    x_one = torch.zeros(1, 1, C_big)
    for name, n_kv in (("MHA", 32), ("GQA (8 kv heads)", 8), ("MQA", 1)):
        attn = GroupedQueryAttention(C_big, H_big, n_kv)
        rows.append((name, attn.k_proj(x_one).numel() + attn.v_proj(x_one).numel()))
    mla_big = MultiHeadLatentAttention(C_big, H_big, d_latent=512, d_rope=64)
    c_big, s_big = rope_cache(64, 4)
    _, cache_big = mla_big(x_one, c_big, s_big)
    rows.append(("MLA (d_latent 512, d_rope 64)", sum(t.numel() for t in cache_big)))
mha = rows[0][1]
print(f"{'attention':32s} {'numbers/token/layer':>20s} {'GiB at 4096 tokens × 32 layers':>32s} {'vs MHA':>8s}")
for name, n in rows:
    print(f"{name:32s} {n:20d} {n * T_big * L_big * 2 / 2 ** 30:32.3f} {n / mha:8.3f}")

# %% [markdown]
# ## 5. Summary
#
# * **RMSNorm** `x / sqrt(mean(x²) + eps) · weight`: LayerNorm without the mean and the bias,
#   eps inside the root.
# * **SwiGLU** `down(silu(gate(x)) · up(x))`, with hidden width `int(8C/3)` rounded up to a
#   multiple, to keep about `8C²` parameters.
# * **RoPE** rotates the pairs `(i, i + D/2)` of queries and keys by `p · base^(−2i/D)`:
#   `x · cos + rotate_half(x) · sin`. Scores depend only on relative positions; the pairing
#   convention must match the weights; positions must continue after an offset when decoding.
# * **GQA** shares each kv head among `H / Hkv` consecutive query heads (`h // group`), cutting
#   the cache by that factor; MQA is the extreme `Hkv = 1`.
# * **MLA** caches one latent and one shared rope key per token (`d_latent + d_rope` numbers),
#   and decompresses per-head keys and values from the latent.
# * **TinyLlama** assembles them with pre-norm blocks, an untied head and rope tables as
#   non-persistent buffers; its parameter names are those of `llmlab.lib.llama`, on which the
#   later chapters build.
#
# ## 6. Exercises
#
# 1. **By hand.** Compute `rope_cache(4, 3)` by hand and check it against the function. Then
#    rotate `[1, 2, 3, 4]` to position 2 in both pairings and compare.
# 2. **The wrong pairing.** Load the trained checkpoint into a `TinyLlama` whose `rotate_half`
#    uses the interleaved pairing, and measure the held-out loss as in 4.2. How far does it rise
#    above the recorded value?
# 3. **Extrapolation.** The checkpoint was trained on 64-character windows. Build a `TinyLlama`
#    with `block_size = 256` (same weights: the rope tables are not in the state dict) and
#    measure the loss per position on 256-character windows. Where does it degrade?
# 4. **Absorbing `k_up`.** Show that $q_c \cdot (W_{uk}\, c) = (W_{uk}^\top q_c) \cdot c$, and rewrite the MLA
#    forward so that it never decompresses the keys. Check it against the cache-based version.
# 5. **Depth.** Repeat 4.1 with 24 blocks and with `d_model = 128`. How do the two ratios change?
# 6. **Cache budget.** For the configuration of 4.3, which GQA kv-head count gives about the same
#    cache as MLA? Compare their parameter counts for the attention layer.
