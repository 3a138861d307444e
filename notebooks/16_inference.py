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
# # 16 · Inference: KV cache, FlashAttention, quantisation
#
# Training computes every position of a batch of sequences at once. Serving a language model
# is different: it produces one token at a time, for many users at once, from memory that is
# always too small. This chapter writes the pieces that make inference fast and cheap, on the
# given tiny LLaMA (`llmlab.lib.llama`):
#
# | unit | what it does |
# |---|---|
# | `KVCache` | pre-allocated keys and values of every layer; `append`, `advance`, `positions` |
# | `cached_forward(model, idx, cache)` | the logits of the new tokens only, reading and filling the cache |
# | `generate_cached(model, prompt, n)` | greedy decoding in which every token goes through the model once |
# | `flash_attention(q, k, v, causal, block_q, block_k)` | exact attention tile by tile with an online softmax: `(out, lse)` |
# | `FlashAttention` | its `torch.autograd.Function`: a backward that recomputes instead of storing |
# | `quantize_absmax`, `dequantize_absmax` | symmetric int8/int4, per tensor or per group |
# | `BlockAllocator` | the KV memory of many sequences as fixed-size blocks (paging) |
# | `simulate_continuous_batching` | a step-by-step simulation of a server that batches at every step |
#
# The experiment at the end measures what each idea buys: decoding time with and without the
# cache, peak memory of naive and tiled attention against the sequence length, the loss of the
# tiny LLaMA when its weights are stored in fewer bits, and a continuous against a static
# batching schedule.

# %% [markdown]
# ## 1. Intuition
#
# **Decoding repeats work.** To generate token `t + 1`, a causal model needs the attention of
# position `t` over positions `0 … t`. The keys and values of positions `0 … t − 1` are the
# same as in the previous step — causal attention never lets an old position see a new one.
# Recomputing them means a full forward pass over the whole prefix for every new token: the
# work per token grows with the prefix, and the total with its square. A **KV cache** keeps
# the keys and values of every layer; each step computes the new token's query, key and value
# only, appends the key and value, and attends over the cache. The one subtlety is position:
# RoPE rotates a key by the angle of *its* position, so the new token must be rotated at
# position `t`, not at 0.
#
# **Attention's memory is the (T, T) matrix.** Written naively, attention materialises the
# scores $S = q k^\top / \sqrt{D}$ of every query against every key: $T^2$ numbers per head.
# FlashAttention never stores them: it walks over tiles of keys and keeps, per query, only three
# running quantities — the largest score seen so far $m$, the sum $l = \sum_j e^{s_j - m}$ and the
# output $\mathrm{acc} = \sum_j e^{s_j - m} v_j$, both over the keys seen so far. When a new tile
# $\mathcal{J}$ raises the maximum from $m$ to $m'$, the old sums were computed relative to the
# wrong maximum; multiplying them by $e^{m - m'}$ puts them on the new one:
#
# $$
# m' = \max\bigl(m, \max_{j \in \mathcal{J}} s_j\bigr),
# \qquad
# l' = e^{m - m'}\, l + \sum_{j \in \mathcal{J}} e^{s_j - m'},
# \qquad
# \mathrm{acc}' = e^{m - m'}\, \mathrm{acc} + \sum_{j \in \mathcal{J}} e^{s_j - m'}\, v_j ,
# $$
#
# starting from $m = -\infty$, $l = 0$, $\mathrm{acc} = 0$. At the end
# $\mathrm{out} = \mathrm{acc} / l$ and $\mathrm{lse} = m + \log l$, the log-sum-exp of the row.
# The backward pass needs the softmax probabilities $P$; instead of saving the `(T, T)` matrix,
# it recomputes each tile of $P = \exp(S - \mathrm{lse})$ from $q$, $k$ and the saved lse.
#
# **Weights in fewer bits.** A weight matrix in float32 takes 4 bytes per number. Symmetric
# *absmax* quantisation maps a group of numbers to integers in $[-q_{\max}, q_{\max}]$ with one
# float scale $\mathrm{absmax} / q_{\max}$: 8 bits ($q_{\max} = 127$) or 4 bits ($q_{\max} = 7$).
# For a group $g$ and $b$ bits:
#
# $$
# q_{\max} = 2^{b-1} - 1, \qquad
# s = \frac{\max_{i \in g} |x_i|}{q_{\max}}, \qquad
# q_i = \operatorname{round}\!\left(\frac{x_i}{s}\right), \qquad
# \hat x_i = s\, q_i .
# $$
#
# The zero point is 0 (the scheme is symmetric: $x = 0$ is stored as $q = 0$), and $\hat x$ is
# what dequantisation returns. Rounding makes an error of at most half a step,
# $|x_i - \hat x_i| \le s / 2$; one outlier inflates the scale of its whole
# group, so smaller groups (more scales) give smaller errors.
#
# **Memory in pages.** A server holds the KV caches of many sequences whose final lengths it
# does not know. Reserving `max_len` positions for each wastes most of the memory; vLLM's
# *paged attention* cuts the memory into blocks of a few tokens and gives each sequence a
# *block table*, like the page table of an operating system. **Continuous batching** then
# schedules per step, not per batch: a finished sequence leaves at once and a waiting one
# takes its place, instead of everyone waiting for the longest sequence of a fixed batch.

# %% [markdown]
# ## 2. Small calculations by hand
#
# ### 2.1 The size of a KV cache
#
# Per token and layer the cache holds a key and a value for each kv head: $2 H_{kv} D$
# numbers, so $2 L H_{kv} D$ per token for $L$ layers. The given tiny LLaMA has `L = 2` layers, `H_kv = 2` kv heads of size `D = 16`:
# `2 · 2 · 2 · 16 = 128` float32 numbers, 512 bytes per token, 32,768 bytes for its 64
# positions. A 7-billion-parameter LLaMA-2 (`L = 32`, `H_kv = 32`, `D = 128`, 2-byte numbers)
# needs `2 · 32 · 32 · 128 · 2 = 524,288` bytes — half a megabyte — per token: 2 GiB for one
# sequence of 4096 tokens. Grouped-query attention with 8 kv heads divides that by four.
#
# ### 2.2 The online softmax
#
# One query's scores are `1, 2, 4, 0`, in two tiles of two. Tile 1: `m = 2`,
# `l = e^{1−2} + e^{2−2} = 0.36788 + 1 = 1.36788`. Tile 2 raises the maximum to `m' = 4`:
# rescale `l` by `e^{2−4} = 0.13534` to `0.18512`, then add `e^{4−4} + e^{0−4} = 1.01832`:
# `l' = 1.20344`. So `lse = 4 + ln 1.20344 = 4.18518`, which is `ln(e¹ + e² + e⁴ + e⁰) =
# ln 65.70549 = 4.18518`. Forgetting the rescaling would give `l = 1.36788 + 1.01832 = 2.38620`
# and `lse = 4.86971`: wrong by 0.68.
#
# ### 2.3 Quantising four numbers
#
# `x = (0.5, −1.27, 0, 1)`, absmax 1.27. int8: scale `1.27 / 127 = 0.01`, `q = (50, −127, 0, 100)`,
# exact here. int4: scale `1.27 / 7 = 0.18143`; `x / scale = (2.756, −7, 0, 5.512)` rounds to
# `q = (3, −7, 0, 6)`, which stands for `(0.544, −1.27, 0, 1.089)`: errors `0.044, 0, 0, 0.089`,
# each below `scale / 2 = 0.0907`. With the *maximum* (1.0) instead of the absmax, −1.27 would
# need `q = −8.89`, outside the range.
#
# ### 2.4 Pages
#
# With blocks of 4 tokens, a 5-token prompt takes `⌈5/4⌉ = 2` blocks and its next 3 tokens fit
# in the second one; the 9th token needs a third block. Reserving 64 positions for the same
# 9-token sequence would leave 55 of them unused; paging leaves at most 3.
#
# The cell below does these sums in plain Python.

# %%
import math

L_h, H_kv_h, D_h = 2, 2, 16
per_token = 2 * L_h * H_kv_h * D_h * 4
print(f"tiny LLaMA: {per_token} bytes per token, {per_token * 64:,} bytes for 64 positions")
llama7b = 2 * 32 * 32 * 128 * 2
print(f"LLaMA-2 7B: {llama7b:,} bytes per token, {llama7b * 4096 / 2**30:.1f} GiB for 4096 tokens")

scores_h = [1.0, 2.0, 4.0, 0.0]
m1 = max(scores_h[:2])
l1 = sum(math.exp(s - m1) for s in scores_h[:2])
m2 = max(m1, *scores_h[2:])
l2 = l1 * math.exp(m1 - m2) + sum(math.exp(s - m2) for s in scores_h[2:])
print(f"tile 1: m = {m1}, l = {l1:.5f}; tile 2: m = {m2}, l = {l2:.5f}; lse = {m2 + math.log(l2):.5f}; "
      f"direct: {math.log(sum(math.exp(s) for s in scores_h)):.5f}; "
      f"without rescaling: {m2 + math.log(l1 + sum(math.exp(s - m2) for s in scores_h[2:])):.5f}")

x_h = [0.5, -1.27, 0.0, 1.0]
for bits_h in (8, 4):
    q_max_h = 2 ** (bits_h - 1) - 1
    s_h = max(abs(v) for v in x_h) / q_max_h
    q_h = [round(v / s_h) for v in x_h]
    print(f"int{bits_h}: scale {s_h:.5f}, q = {q_h}, errors {[round(abs(v - q * s_h), 4) for v, q in zip(x_h, q_h)]}")
print("blocks for 5, 8, 9 tokens (block size 4):", [math.ceil(n / 4) for n in (5, 8, 9)])

# %% [markdown]
# ## 3. Implementation
#
# Everything lives in `inference.py`. Shapes: `B` batch, `H` query heads, `H_kv` kv heads,
# `T` length (`Tq` queries, `Tk` keys), `D` head size, `C = d_model`, `V` vocabulary, `L`
# layers. First the imports: the model's RoPE (`apply_rope`) comes from the given library.

# %%
#| include: inference.py::header

# %% [markdown]
# ### 3.1 `KVCache`
#
# Two tensors `k` and `v` of shape `(L, B, H_kv, max_len, D)`, allocated once as zeros, and
# `length`, the number of positions filled. A step of the model writes each layer's new keys
# and values with `append(layer, k, v)`, which returns that layer's keys and values of *all*
# positions so far as views (no copy); once every layer is written, `advance(n)` moves `length`
# on. `positions(n)` gives the positions of the next `n` tokens, `length … length + n − 1`.
# `for_model` (given) sizes a cache for a TinyLlama.

# %%
#| include: inference.py::KVCache

# %%
demo = KVCache(n_layer=1, batch_size=1, n_kv_heads=1, max_len=4, head_dim=2)
keys, values = demo.append(0, torch.ones(1, 1, 2, 2), torch.zeros(1, 1, 2, 2))
demo.advance(2)
print("after two tokens: length", demo.length, "| next positions", demo.positions(2).tolist(),
      "| keys so far", tuple(keys.shape))

# %%
#| grade: test_kv_cache_allocates_zeros test_kv_cache_append_advance_positions

# %% [markdown]
# ### 3.2 `cached_forward` and `generate_cached`
#
# `cached_forward(model, idx, cache)` runs the given model's own modules on the new tokens
# `idx` (B, n) only — `tok_emb`; per block `attn_norm`, the projections `q_proj`, `k_proj`,
# `v_proj`, `q_norm`/`k_norm` when the model has them, RoPE at the positions
# `cache.positions(n)`; the keys and values go into the cache, and the new queries attend to
# every cached key at a position no later than their own; then `o_proj`, `mlp_norm`, `mlp`,
# and finally `norm` and `lm_head`. Grouped-query attention: query head `h` reads kv head
# `h // (H / H_kv)` — `repeat_interleave` on the head axis lays the kv heads out in that order
# (`repeat` would tile them, a different model). The result must equal
# `model(whole sequence)[0][:, -n:]` — the graders check it at every step.
#
# `generate_cached` decodes greedily: one prefill call on the prompt, then one call per new
# token.

# %%
#| include: inference.py::cached_forward,generate_cached

# %%
from llmlab.lib.llama import load_tiny_llama

tiny, codec, tiny_info = load_tiny_llama()
prompt = codec.encode("Ada said ").view(1, -1)
with torch.no_grad():
    cache = KVCache.for_model(tiny, 1)
    step_logits = cached_forward(tiny, prompt, cache)
    full_logits = tiny(prompt)[0]
print("prefill logits vs TinyLlama.forward: max |difference|", f"{(step_logits - full_logits).abs().max():.2e}")
print(repr(codec.decode(generate_cached(tiny, prompt, 40)[0].tolist())))

# %%
#| grade: test_cached_forward_matches_full_recompute_trained test_cached_forward_gqa_qk_norm_random_models test_cached_forward_stores_rotated_keys_and_values test_cached_forward_batch_one_to_block_size_and_raises test_cached_forward_deep_random_model_hidden

# %%
#| grade: test_generate_cached_matches_recompute_greedy test_generate_cached_feeds_each_token_once test_generate_cached_raises

# %% [markdown]
# ### 3.3 `flash_attention`
#
# For each tile of `block_q` queries, loop over tiles of `block_k` keys, keep the running
# maximum `m`, sum `l` and output `acc` per query, and rescale `l` and `acc` by `exp(m − m')`
# whenever a tile raises the maximum. Under `causal`, a key tile that starts after the last
# query of the query tile can be skipped entirely (every score in it would be masked, so it
# adds nothing; the reference skips it and saves half the work); the tile that holds the
# diagonal is masked element by element, and must never be skipped. Tile sizes need not divide
# the lengths.
# Return `out` (B, H, Tq, D) and the natural-log `lse` (B, H, Tq). The graders forbid
# PyTorch's softmax, logsumexp and scaled_dot_product_attention while it runs.
# `_check_attention_inputs` (given) validates the inputs.

# %%
#| include: inference.py::flash_attention,_check_attention_inputs

# %%
q_demo = torch.tensor([[[[1.0, 1.0]]]])
k_demo = torch.tensor([[[[1.0, 1.0], [-1.0, -1.0]]]])
v_demo = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]])
out_demo, lse_demo = flash_attention(q_demo, k_demo, v_demo, block_q=1, block_k=1)
print("out", out_demo.flatten().tolist(), "lse", round(lse_demo.item(), 5), "= ln(2 cosh √2) =",
      round(math.log(2 * math.cosh(math.sqrt(2))), 5))

# %%
#| grade: test_flash_matches_naive_attention test_flash_by_hand test_flash_causal_ragged_tiles test_flash_reference_data test_flash_float32_views_defaults_and_raises test_flash_memory_grows_linearly

# %% [markdown]
# ### 3.4 `FlashAttention`: the backward by recomputation
#
# Autograd through `flash_attention` would store every tile's intermediate tensors — as much
# memory as the naive matrix. The `autograd.Function` saves only `q, k, v, out, lse` and, in
# `backward`, recomputes each tile of probabilities `P = exp(S − lse)`. With
# `δ_i = Σ_d dout_id · out_id` (the row sums of `dout ⊙ out`), written $\delta_i$, and the
# incoming gradients $dO$ of the output and $d\ell$ of the lse:
#
# $$
# \begin{aligned}
# P &= \exp\bigl(S - \mathrm{lse}\,\mathbf{1}^\top\bigr), &
# \delta_i &= \sum_{d} dO_{id}\, O_{id}, \\
# dV &= P^\top dO, &
# dP &= dO\, V^\top, \\
# dS_{ij} &= P_{ij} \bigl( dP_{ij} - \delta_i + d\ell_i \bigr), &
# dQ &= \frac{dS\, K}{\sqrt{D}}, \quad dK = \frac{dS^\top Q}{\sqrt{D}} .
# \end{aligned}
# $$
#
# The $d\ell$ term is there because `lse` is an output too:
# $\partial\, \mathrm{lse}_i / \partial s_{ij} = P_{ij}$.
# `flash_attention_with_grad` (given) calls `FlashAttention.apply` with the usual signature.

# %%
#| include: inference.py::FlashAttention,flash_attention_with_grad

# %%
#| grade: test_flash_backward_matches_autograd_of_naive test_flash_backward_gradcheck_and_reference test_flash_backward_saves_no_score_matrix test_flash_backward_memory_grows_linearly_hidden test_flash_float32_larger_shapes_hidden

# %% [markdown]
# ### 3.5 `quantize_absmax` and `dequantize_absmax`
#
# $q_{\max} = 2^{b-1} - 1$ for $b$ = `bits`; the scale of a group is its largest $|x|$ divided by
# $q_{\max}$ (a group of zeros gets scale 0); `q = round(x / scale)` with ties to even, stored as int8. Groups are
# contiguous runs of `group_size` elements along the last axis, each with its own scale.

# %%
#| include: inference.py::quantize_absmax,dequantize_absmax

# %%
x_demo = torch.tensor([0.5, -1.27, 0.0, 1.0])
for bits in (8, 4):
    q_demo, s_demo = quantize_absmax(x_demo, bits)
    print(f"int{bits}: q = {q_demo.tolist()}, scale = {s_demo.item():.5f}, "
          f"dequantised = {[round(v, 4) for v in dequantize_absmax(q_demo, s_demo).tolist()]}")

# %%
#| grade: test_quantize_by_hand test_quantize_properties_and_error_bound test_quantize_groups_along_last_axis test_quantize_reference_data test_quantize_zero_groups_dtypes_and_raises test_dequantize_round_trip_and_raises

# %% [markdown]
# ### 3.6 `BlockAllocator`
#
# A pool of `num_blocks` blocks of `block_size` tokens; each sequence owns
# `⌈length / block_size⌉` blocks, listed in its block table. New blocks are the lowest-numbered
# free ones; `free` returns a sequence's blocks; an operation that cannot be done raises and
# changes nothing. The graders run random operation sequences and check after each one that no
# block is lost or shared.

# %%
#| include: inference.py::BlockAllocator

# %%
pool = BlockAllocator(num_blocks=6, block_size=4)
print("a:", pool.allocate("a", 5), "b:", pool.allocate("b", 3), "b grows:", pool.append("b", 2),
      "free:", pool.num_free, "slot of b's token 4:", pool.slot("b", 4))
pool.free("a")
print("after freeing a, c takes", pool.allocate("c", 6))

# %%
#| grade: test_allocator_by_hand test_allocator_random_operations_never_leak test_allocator_errors_leave_state_unchanged

# %% [markdown]
# ### 3.7 `simulate_continuous_batching`
#
# Time advances in steps. At the start of a step, arrived requests are admitted first come
# first served while the batch has room and their KV reservation (`prompt_len + output_len`)
# fits in `kv_capacity`; the first that does not fit blocks the queue. Every running request then
# makes one token (a new one's prefill makes its first), and a request that made its last token
# leaves at the end of the step. `Request` (given) holds a request's id, arrival step, prompt and
# output lengths.

# %%
#| include: inference.py::Request,simulate_continuous_batching

# %%
print(simulate_continuous_batching([Request("A", 0, 3, 2), Request("B", 0, 2, 3), Request("C", 1, 3, 2)],
                                   max_batch=2, kv_capacity=10))

# %%
#| grade: test_batching_by_hand test_batching_matches_oracle_and_invariants test_batching_reference_raises_and_edges test_serving_long_runs_hidden

# %% [markdown]
# ## 4. Experiments
#
# ### 4.1 Decoding with and without the cache
#
# The given tiny LLaMA has a context of only 64 characters, too short to show the growth of
# the recomputation, so the timing uses an untrained TinyLlama with a context of 256, 4 layers
# and width 128 (random weights decode as well as trained ones, for timing). From an 8-token
# prompt, we generate 200 tokens greedily twice — recomputing the whole prefix with
# `model.forward` every step, and with `cached_forward` — time every step, and check that both
# produce the same tokens.

# %%
import random
import time

import matplotlib.pyplot as plt

from llmlab.lib.corpus import course_corpus, train_val_split
from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.lib.memory import peak_memory
from llmlab.lib.train import evaluate_lm

torch.set_num_threads(1)
torch.manual_seed(0)
timing_model = TinyLlama(LlamaConfig(vocab_size=71, block_size=256, n_layer=4, n_head=4, n_kv_head=2,
                                     d_model=128)).eval()
start_ids = torch.randint(0, 71, (1, 8), generator=torch.Generator().manual_seed(1))
N_NEW = 200


@torch.no_grad()
def decode_recompute(model, ids, n):
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        nxt = model(ids)[0][:, -1].argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
        times.append(time.perf_counter() - t0)
    return ids, times


@torch.no_grad()
def decode_cached(model, ids, n):
    times, cache = [], KVCache.for_model(model, ids.shape[0])
    t0 = time.perf_counter()
    logits = cached_forward(model, ids, cache)[:, -1]
    for _ in range(n):
        nxt = logits.argmax(-1, keepdim=True)
        ids = torch.cat([ids, nxt], dim=1)
        times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        logits = cached_forward(model, nxt, cache)[:, -1]
    return ids, times


decode_cached(timing_model, start_ids, 5)                     # warm-up
ids_full, t_full = decode_recompute(timing_model, start_ids, N_NEW)
ids_cached, t_cached = decode_cached(timing_model, start_ids, N_NEW)
same = torch.equal(ids_full, ids_cached)
print(f"same {N_NEW} tokens: {same}")
print(f"recompute: {sum(t_full):.3f} s in all, first 20 steps {1e3 * sum(t_full[:20]) / 20:.2f} ms/step, "
      f"last 20 {1e3 * sum(t_full[-20:]) / 20:.2f} ms/step")
print(f"cached:    {sum(t_cached):.3f} s in all, first 20 steps {1e3 * sum(t_cached[:20]) / 20:.2f} ms/step, "
      f"last 20 {1e3 * sum(t_cached[-20:]) / 20:.2f} ms/step")
speedup = sum(t_full) / sum(t_cached)
print(f"the cached decode took {1 / speedup:.2f}× the time of recomputation ({speedup:.1f}× faster)"
      if speedup > 1 else f"the cached decode was not faster here ({speedup:.2f}×)")

fig, ax = plt.subplots(figsize=(7, 3.5))
ax.plot(range(8, 8 + N_NEW), [1e3 * t for t in t_full], label="recompute the prefix")
ax.plot(range(8, 8 + N_NEW), [1e3 * t for t in t_cached], label="KV cache")
ax.set_xlabel("position of the token being predicted")
ax.set_ylabel("ms per step")
ax.set_title("greedy decoding, 4 layers, d_model 128, one CPU thread")
ax.legend()
plt.show()

# %% [markdown]
# Read the two curves: recomputation costs a forward pass over the whole prefix, so its time
# per step should rise with the position, while a cached step processes one token and should
# stay nearly flat (it still reads the growing cache). The printed per-step times of the first
# and last 20 steps say how much each grew in this run.
#
# ### 4.2 Peak memory of attention against the sequence length
#
# `llmlab.lib.memory.peak_memory` counts the bytes of tensors a function allocates and holds
# at once. We measure naive attention (scores, softmax, times `v`) and `flash_attention` with
# 64 × 64 tiles, causal, one head of size 32, at lengths 128 … 2048, and the time of each call.

# %%
def naive_causal(q, k, v):
    T = q.shape[2]
    s = (q @ k.transpose(-2, -1)) / math.sqrt(q.shape[-1])
    s = s.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return torch.softmax(s, dim=-1) @ v


lengths = [128, 256, 512, 1024, 2048]
mem_naive, mem_flash, time_naive, time_flash = [], [], [], []
with torch.no_grad():
    for T in lengths:
        q, k, v = (torch.randn(1, 1, T, 32, generator=torch.Generator().manual_seed(T + i)) for i in range(3))
        t0 = time.perf_counter()
        naive_out, peak = peak_memory(naive_causal, q, k, v)
        time_naive.append(time.perf_counter() - t0)
        mem_naive.append(peak)
        t0 = time.perf_counter()
        (flash_out, _), peak = peak_memory(flash_attention, q, k, v, True, 64, 64)
        time_flash.append(time.perf_counter() - t0)
        mem_flash.append(peak)
        assert torch.allclose(naive_out, flash_out, atol=1e-5)
print(f"{'T':>5} {'naive KiB':>10} {'flash KiB':>10} {'naive s':>8} {'flash s':>8}")
for T, a, b, ta, tb in zip(lengths, mem_naive, mem_flash, time_naive, time_flash):
    print(f"{T:>5} {a / 1024:>10.1f} {b / 1024:>10.1f} {ta:>8.4f} {tb:>8.4f}")
growth_naive = [b / a for a, b in zip(mem_naive, mem_naive[1:])]
growth_flash = [b / a for a, b in zip(mem_flash, mem_flash[1:])]
print("growth per doubling: naive", [round(g, 2) for g in growth_naive], "flash", [round(g, 2) for g in growth_flash])

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.loglog(lengths, [m / 1024 for m in mem_naive], "o-", label="naive (T × T scores)")
ax.loglog(lengths, [m / 1024 for m in mem_flash], "s-", label="flash, 64 × 64 tiles")
ax.set_xlabel("sequence length T")
ax.set_ylabel("peak extra memory (KiB)")
ax.legend()
plt.show()

# %% [markdown]
# A growth factor near 4 per doubling is quadratic, near 2 (or below, while the fixed-size
# tiles still dominate) is linear; the printed factors say which each implementation showed.
# The times are honest too: this `flash_attention` is a Python loop over tiles, so on a CPU it
# may well be slower than one big matrix product — the fused GPU kernel of FlashAttention wins
# because it never writes the scores to slow memory, which a PyTorch loop cannot imitate.
#
# ### 4.3 The tiny LLaMA in fewer bits
#
# We replace every `nn.Linear` weight of the trained tiny LLaMA (attention and MLP projections
# and the LM head; the embedding and norms stay float32) by its quantised-and-dequantised
# version and measure the validation loss of the course corpus with `evaluate_lm`. The cost in
# memory of a scheme is $b + 32 / G$ bits per weight for $b$ bits and groups of $G$ (a float32
# scale per group).

# %%
import copy

text = course_corpus()
_, val_text = train_val_split(text, tiny_info["training"]["val_fraction"])
val_ids = codec.encode(val_text)
base_loss = evaluate_lm(tiny, val_ids, 64)


def quantised_copy(model, bits, group_size):
    clone = copy.deepcopy(model)
    errors = []
    with torch.no_grad():
        for module in clone.modules():
            if isinstance(module, torch.nn.Linear):
                w = module.weight
                q, s = quantize_absmax(w, bits, group_size)
                w_hat = dequantize_absmax(q, s, group_size)
                errors.append(((w - w_hat).norm() / w.norm()).item())
                w.copy_(w_hat)
    return clone, sum(errors) / len(errors)


schemes = [(8, None), (8, 16), (4, None), (4, 16), (4, 8), (4, 4)]   # group sizes that divide 64 and 176
rows = []
for bits, group in schemes:
    model_q, rel_err = quantised_copy(tiny, bits, group)
    loss = evaluate_lm(model_q, val_ids, 64)
    storage = bits + (32 / group if group else 0)
    rows.append((bits, group, storage, rel_err, loss))
print(f"float32: validation loss {base_loss:.4f} (32 bits per weight)")
for bits, group, storage, rel_err, loss in rows:
    name = f"int{bits} " + (f"groups of {group}" if group else "per tensor")
    print(f"{name:<20} {storage:5.2f} bits/weight   mean relative weight error {rel_err:.4f}   "
          f"validation loss {loss:.4f} ({loss - base_loss:+.4f})")

fig, ax = plt.subplots(figsize=(6, 3.5))
for bits, marker in ((8, "o"), (4, "s")):
    pts = [(r[2], r[4]) for r in rows if r[0] == bits]
    ax.plot([p[0] for p in pts], [p[1] for p in pts], marker, label=f"int{bits}")
ax.axhline(base_loss, color="grey", ls="--", label="float32")
ax.set_xlabel("bits per weight (scales included)")
ax.set_ylabel("validation loss (nats per character)")
ax.legend()
plt.show()

# %% [markdown]
# The table shows, for this model, how much of the float32 loss each scheme keeps: compare the
# per-tensor int4 row with the grouped int4 rows to see what smaller groups bought here, and
# the int8 rows with float32.
#
# ### 4.4 Continuous against static batching
#
# Sixty requests arrive over the first 100 steps with prompts of 4–32 tokens and outputs of
# 4–64 tokens; the server runs up to 8 requests at once and has KV memory for 512 tokens. The
# static scheduler below waits until a whole batch has finished before admitting the next one
# (same queue order, same memory rule); `simulate_continuous_batching` refills at every step.

# %%
rng = random.Random(0)
workload = sorted(((rng.randrange(100), rng.randint(4, 32), rng.randint(4, 64)) for _ in range(60)))
requests = [Request(i, a, p, o) for i, (a, p, o) in enumerate(workload)]


def static_batching(requests, max_batch, kv_capacity):
    queue = sorted(requests, key=lambda r: r.arrival)
    schedule, sizes, t, head = {}, [], 0, 0
    while head < len(queue):
        batch, used = [], 0
        while (head < len(queue) and queue[head].arrival <= t and len(batch) < max_batch
               and used + queue[head].prompt_len + queue[head].output_len <= kv_capacity):
            batch.append(queue[head])
            used += queue[head].prompt_len + queue[head].output_len
            head += 1
        if not batch:
            sizes.append(0)
            t += 1
            continue
        steps = max(r.output_len for r in batch)
        for r in batch:
            schedule[r.id] = (t, t + r.output_len - 1)
        sizes += [sum(1 for r in batch if t + s < t + r.output_len) for s in range(steps)]
        t += steps
    return schedule, sizes


results = {"continuous": simulate_continuous_batching(requests, 8, 512), "static": static_batching(requests, 8, 512)}
tokens = sum(r.output_len for r in requests)
for name, (schedule, sizes) in results.items():
    latency = [schedule[r.id][1] - r.arrival + 1 for r in requests]
    busy = [s for s in sizes if s]
    print(f"{name:>10}: {len(sizes)} steps for {tokens} tokens, mean batch size while busy "
          f"{sum(busy) / len(busy):.2f}, mean latency {sum(latency) / len(latency):.1f} steps, "
          f"worst {max(latency)}")

fig, ax = plt.subplots(figsize=(7, 3))
for name, (_, sizes) in results.items():
    ax.plot(sizes, label=name, drawstyle="steps-post")
ax.set_xlabel("step")
ax.set_ylabel("requests in the batch")
ax.legend()
plt.show()

# %% [markdown]
# The printed step counts, batch sizes and latencies compare the two schedules on this
# workload; the plot shows where the static batch runs half-empty while its longest request
# finishes.
#
# ## 5. Summary
#
# * A KV cache turns every decoding step into the work of one token: keys and values of old
#   positions never change under causal attention. New keys must be rotated at their own
#   positions — a cache whose positions restart at 0 gives a different model.
# * Grouped-query attention shrinks the cache by `H / H_kv`; query head `h` reads kv head
#   `h // (H / H_kv)`.
# * FlashAttention computes exact attention tile by tile with the online softmax: a running
#   maximum, a running sum and output rescaled by `exp(m − m')`, and `lse = m + log l`. Its
#   memory grows linearly with `T`; its backward recomputes the probabilities from the saved
#   `lse`.
# * Absmax quantisation stores `round(x / scale)` with `scale = absmax / q_max`, an error of at
#   most `scale / 2`; groups along the last axis keep outliers from spoiling whole rows.
# * Paging gives the KV memory of many sequences out in blocks, and continuous batching refills
#   the batch at every step.
#
# ## 6. Exercises
#
# 1. **By hand.** For LLaMA-2 70B (`L = 80`, 8 kv heads of size 128, 2-byte numbers), compute the
#    KV cache per token and for a batch of 16 sequences of 4096 tokens. What would it be with 64
#    kv heads (no GQA)?
# 2. **Online softmax in one pass.** Show that the pair `(m, l)` of two tiles can be merged in
#    either order with the same result, and use it to split the key loop of `flash_attention`
#    across two "workers" whose results are merged at the end.
# 3. **Tile sizes.** Time `flash_attention` at `T = 1024` for tiles of 16, 64 and 256, and measure
#    the peak memory of each with `peak_memory`. Explain both trends.
# 4. **Quantised KV cache.** Store the cache of 4.1 in int8 with one scale per token and head
#    (`group_size = D`), dequantising in `cached_forward`. Measure how many greedy tokens of the
#    trained tiny LLaMA change, and the memory saved.
# 5. **Outliers.** Multiply one input channel of a weight matrix of the tiny LLaMA by 20 (and
#    divide the corresponding activations, so the model is unchanged) and repeat 4.3. Which
#    schemes suffer, and why do groups along the last axis help?
# 6. **A paged cache.** Use `BlockAllocator` to store the keys and values of several sequences of
#    different lengths in one `(num_blocks, block_size, H_kv, D)` pool, and gather them through
#    the block tables inside `cached_forward`.
# 7. **Preemption.** Change `simulate_continuous_batching` to reserve only the prompt at
#    admission and one token per step, evicting the newest request when memory runs out. Compare
#    the latency on the workload of 4.4.
