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
# # 04 · Attention and the Transformer block
#
# A language model has to decide, for every position of a text, which earlier positions matter
# for predicting the next token. **Attention** is the mechanism that does this: each position
# computes a probability distribution over the positions it may look at and takes the
# corresponding weighted average of what is stored there. A **Transformer block** wraps
# attention together with a small per-position network, normalisation and residual
# connections; a GPT is little more than a stack of such blocks.
#
# In this chapter you write every piece from elementary tensor operations:
#
# | unit | what it does |
# |---|---|
# | `softmax(x, dim)` | a numerically stable softmax; a fully masked slice gives zeros |
# | `causal_mask(seq_len)` | the `(T, T)` bool mask "query `i` may see key `j` iff `j <= i`" |
# | `scaled_dot_product_attention(q, k, v, mask, causal)` | `softmax(q kᵀ / √d_k + mask) v` |
# | `MultiHeadAttention(d_model, n_heads, bias)` | projections, split into heads, attend, merge |
# | `LayerNorm(dim, eps)` | normalise each vector over its last axis, then scale and shift |
# | `gelu(x)` | the exact GELU activation `x · Φ(x)` |
# | `FeedForward(d_model, d_hidden)` | `down(gelu(up(x)))`, applied to every position |
# | `TransformerBlock(d_model, n_heads, d_hidden, pre_norm)` | attention + feed-forward, each with a residual |
#
# At the end we look inside: attention maps of a small attention layer (untrained and trained,
# causal and not), and how well a gradient travels from the last position back to the first
# through a stack of Transformer blocks, compared with a recurrent network.

# %% [markdown]
# ## 1. Intuition
#
# **Attention as a soft lookup.** Think of a dictionary lookup: a *query* is compared with
# every *key*, and the *value* stored under the matching key is returned. Attention makes this
# differentiable. Every position produces three vectors: a query $q$, a key $k$ and a value
# $v$. Query $i$ scores every key $j$ with a dot product $q_i \cdot k_j$ (large when they point the
# same way), a softmax turns the scores of row $i$ into weights $w_{ij} \ge 0$ that sum to 1, and
# the output of position $i$ is $\sum_j w_{ij} v_j$. If one score dominates, this is almost a hard
# lookup; if all scores are equal, it is a plain average.
#
# **Why divide by $\sqrt{d_k}$.** If the entries of $q$ and $k$ are independent with mean 0 and
# variance 1, the dot product of two $d_k$-dimensional vectors has variance $d_k$:
#
# $$
# \operatorname{Var}(q \cdot k) = \sum_{c=1}^{d_k} \operatorname{Var}(q_c k_c) = d_k .
# $$
#
# With $d_k = 64$ the scores would have a standard deviation of 8, the softmax would often be
# nearly one-hot and its gradient nearly zero. Dividing the scores by $\sqrt{d_k}$ brings their
# variance back to 1, whatever the head size.
#
# **Masks.** Some keys must not be seen. A language model predicting token `i + 1` may read
# tokens `0 … i` but not the future: that is the **causal mask**. Padding positions of a batch
# must not be seen either. A mask is applied by setting the forbidden scores to `-inf` before
# the softmax, because $e^{-\infty} = 0$: those keys get weight exactly 0 and the remaining
# weights still sum to 1. If *every* key of a row is forbidden the softmax is `0 / 0`; in this
# course such a row attends to nothing and its output is zero (PyTorch's softmax gives NaN).
#
# **Several heads.** One attention can only produce one weighted average per position. A
# `MultiHeadAttention` with `H` heads splits the `C` features into `H` groups of `D = C / H`,
# runs `H` independent attentions (one may look at the previous token, another at the start of
# the sentence, …) and concatenates the results, at the same cost as one attention of size `C`.
#
# **The block.** Attention only *mixes* positions; it computes nothing new per position. A
# block therefore follows attention with a **feed-forward** network (a two-layer MLP applied to
# each position separately). Each of the two sublayers is a **residual** update `x + f(x)`,
# so a block starts close to the identity and a gradient has a direct path through many
# blocks. **LayerNorm** keeps the vectors at a controlled scale. GPT-2 and most later models
# normalise the *input* of each sublayer (**pre-norm**): $x + f(\operatorname{LN}(x))$; the original
# 2017 Transformer normalised after the residual sum (**post-norm**): $\operatorname{LN}(x + f(x))$.

# %% [markdown]
# ## 2. Small calculations by hand
#
# **Softmax of a 3-vector.** For `x = (1, 2, 3)`: `e¹ = 2.718282`, `e² = 7.389056`,
# `e³ = 20.085537`, sum `30.192875`, so
#
# `softmax(x) = (0.090031, 0.244728, 0.665241)`.
#
# Subtracting the maximum first gives `(-2, -1, 0)`, with exponentials `0.135335, 0.367879, 1`
# and sum `1.503215` — the same three ratios, because in $e^{x_i - m} / \sum_j e^{x_j - m}$
# the common factor $e^{-m}$ cancels. This shift is what makes softmax **stable**: the logits
# `(1000, 1001, 1002)` have the same softmax as `(1, 2, 3)`, yet `e^1000` overflows to `inf`
# (the largest float32 is about `3.4·10³⁸ ≈ e^88.7`), and the naive formula returns
# `inf / inf = NaN`. After the shift the largest exponent is always `e⁰ = 1`.
#
# **A 2 × 2 attention.** Two positions, head size `d_k = 4`, so `√d_k = 2`:
#
# ```
# Q = [[1, 1, 0, 0],     K = [[1, 1, 0, 0],     V = [[1,  0],
#      [0, 0, 2, 2]]          [0, 0, 1, 1]]          [0, 10]]
# ```
#
# * Scores `Q Kᵀ = [[2, 0], [0, 4]]`; divided by `√4 = 2`: `[[1, 0], [0, 2]]`.
# * Row 0: `softmax(1, 0) = (e/(1+e), 1/(1+e)) = (0.731059, 0.268941)`.
#   Row 1: `softmax(0, 2) = (1/(1+e²), e²/(1+e²)) = (0.119203, 0.880797)`.
# * Output = weights · V: row 0 `0.731059·(1, 0) + 0.268941·(0, 10) = (0.731059, 2.689414)`,
#   row 1 `(0.119203, 8.807971)`.
# * **Without** the `1/√d_k` the rows would be `softmax(2, 0) = (0.880797, 0.119203)` and
#   `softmax(0, 4) = (0.017986, 0.982014)`: sharper, and sharper still for larger `d_k`.
# * **Causal**: the mask is `[[True, False], [True, True]]` — position 0 may not see key 1.
#   Row 0's scores become `(1, -inf)`, its weights `(1, 0)` and its output is exactly
#   `v_0 = (1, 0)`. Row 1 sees both keys and does not change.
#
# **A fully masked row.** Scores `(-inf, -inf)`: the convention gives weights `(0, 0)` and
# therefore an attention output of `(0, 0)`.
#
# **LayerNorm of `(1, 2, 3, 6)`.** Mean 3, deviations `(-2, -1, 0, 3)`, *biased* variance
# `(4 + 1 + 0 + 9) / 4 = 3.5` (divide by the count 4, not by 3), so with `eps = 1e-5`,
# `y = (-2, -1, 0, 3) / √3.50001 = (-1.069043, -0.534522, 0, 1.603565)` (weight 1, bias 0).
#
# **GELU.** `gelu(x) = x · Φ(x)` with `Φ` the standard normal CDF: `Φ(1) = 0.841345`, so
# `gelu(1) = 0.841345` and `gelu(-1) = -1 · Φ(-1) = -0.158655`.
#
# The cell below redoes these numbers with plain Python floats; the implementation confirms
# them in section 3.

# %%
import math

e = math.exp
softmax_by_hand = [e(v) / sum(e(u) for u in (1, 2, 3)) for v in (1, 2, 3)]
print("softmax(1, 2, 3) by hand:      ", [round(p, 6) for p in softmax_by_hand])
print("after subtracting the max 3:   ", [round(e(v - 3) / sum(e(u - 3) for u in (1, 2, 3)), 6) for v in (1, 2, 3)])
try:
    e(1000)
except OverflowError as err:
    print("math.exp(1000) ->", type(err).__name__, err)

Q_hand = [[1, 1, 0, 0], [0, 0, 2, 2]]
K_hand = [[1, 1, 0, 0], [0, 0, 1, 1]]
V_hand = [[1, 0], [0, 10]]


def attention_by_hand(Q, K, V, causal=False, scale=True):
    """Plain-Python attention, one query row at a time."""
    out, weights = [], []
    for i, q in enumerate(Q):
        s = [sum(a * b for a, b in zip(q, k)) / (math.sqrt(len(q)) if scale else 1) for k in K]
        s = [si if (not causal or j <= i) else -math.inf for j, si in enumerate(s)]
        m = max(s)
        w = [e(si - m) for si in s]                      # exp(-inf) = 0.0 in Python as well
        w = [wi / sum(w) for wi in w]
        weights.append(w)
        out.append([sum(wi * v[c] for wi, v in zip(w, V)) for c in range(len(V[0]))])
    return out, weights


for name, kwargs in (("scaled", {}), ("causal", {"causal": True}), ("no 1/sqrt(d_k)", {"scale": False})):
    o, w = attention_by_hand(Q_hand, K_hand, V_hand, **kwargs)
    print(f"{name:>15s}: weights {[[round(x, 6) for x in r] for r in w]}  output {[[round(x, 6) for x in r] for r in o]}")

ln_in = [1, 2, 3, 6]
mu = sum(ln_in) / 4
var = sum((v - mu) ** 2 for v in ln_in) / 4
layernorm_by_hand = [(v - mu) / math.sqrt(var + 1e-5) for v in ln_in]
print("LayerNorm(1, 2, 3, 6) by hand: ", [round(v, 6) for v in layernorm_by_hand], f"(mean {mu}, variance {var})")
gelu_by_hand = [x * 0.5 * (1 + math.erf(x / math.sqrt(2))) for x in (1.0, -1.0)]
print("gelu(1), gelu(-1) by hand:     ", [round(v, 6) for v in gelu_by_hand])

# %% [markdown]
# ## 3. Implementation
#
# Everything lives in one module, `attention.py`. Shapes follow one naming scheme: `B` batch,
# `T` sequence length, `C = d_model` features, `H` heads and `D = C // H` the head size.
#
# **Mask convention** (the one of `torch.nn.functional.scaled_dot_product_attention`):
#
# * a **bool** mask is `True` where attention is **allowed** and `False` where it is forbidden;
# * a **floating** mask is **added** to the scaled scores: `0` allows, `-inf` forbids, any other
#   value biases the score.
#
# A query row in which every key is forbidden has softmax weights of zero and an attention
# output of zero — never NaN.
#
# **From scratch.** While your units run, the graders forbid the PyTorch built-ins that
# compute the same thing (`torch.softmax`, `F.scaled_dot_product_attention`,
# `nn.MultiheadAttention`, `F.layer_norm`, `F.gelu`, …) and report a call as a failure. Build
# each unit on the ones before it: attention calls your `softmax` and `causal_mask`, the block
# calls your layers. (Outside your units — in the experiments below — anything is allowed.)
#
# The module needs only these imports:

# %%
#| include: attention.py::header

# %% [markdown]
# ### 3.1 `softmax`
#
# `softmax(x, dim=-1)` takes a float32 or float64 tensor of any shape and returns a tensor of
# the same shape and dtype: `exp(x) / sum(exp(x))` along `dim` (negative `dim` counts from the
# end), so every slice along `dim` is non-negative and sums to 1. For one slice
# $x = (x_1, \dots, x_n)$, computed stably,
#
# $$
# \operatorname{softmax}(x)_i = \frac{e^{x_i - m}}{\sum_{j=1}^{n} e^{x_j - m}}, \qquad m = \max_j x_j .
# $$
#
# Entries may be `-inf` (masked
# logits) but not NaN or `+inf`.
#
# * **Stable:** subtract each slice's own maximum (`amax(dim, keepdim=True)`) before
#   exponentiating. It must work for logits like `1e4` and `-1e4`.
# * An entry of `-inf` gets probability exactly 0.
# * A slice whose entries are **all** `-inf` has maximum `-inf`, and `x - max` would be
#   `-inf - (-inf) = NaN`. Shift such slices by 0 instead; their exponentials are then all 0,
#   their sum is 0, and you must return zeros for them (divide by 1 where the sum is 0).
#
# The gradient comes from autograd. Because softmax does not change when a slice is shifted by
# a constant, the maximum can be treated as a constant (`.detach()`) without changing the
# gradient.

# %%
#| include: attention.py::softmax

# %%
#| grade: test_softmax_matches_torch test_softmax_huge_logits test_softmax_masked_and_fully_masked_rows test_softmax_gradients test_softmax_properties test_softmax_any_shape test_softmax_reference_data test_hidden_softmax_random_masks

# %% [markdown]
# The hand results of section 2, and the two edge cases next to PyTorch's own softmax:

# %%
import torch

x3 = torch.tensor([1.0, 2.0, 3.0])
print("softmax(1, 2, 3):         ", softmax(x3), "  by hand:", [round(p, 6) for p in softmax_by_hand])
print("matches the hand values:  ", torch.allclose(softmax(x3), torch.tensor(softmax_by_hand)))
huge = x3 + 999
print("naive exp(x)/sum on 1000..1002:", torch.exp(huge) / torch.exp(huge).sum())
print("softmax(1000, 1001, 1002):     ", softmax(huge))
masked = torch.tensor([[0.5, float("-inf"), 1.5], [float("-inf"), float("-inf"), float("-inf")]])
print("torch.softmax on a partly and a fully masked row:\n", torch.softmax(masked, dim=-1))
print("our softmax on the same rows:\n", softmax(masked, dim=-1))

# %% [markdown]
# ### 3.2 `causal_mask`
#
# `causal_mask(seq_len, device=None)` returns a **bool** tensor of shape `(seq_len, seq_len)`
# whose entry `[i, j]` is `True` exactly when query `i` may attend to key `j`, i.e. when
# `j <= i`: `True` on and below the diagonal (a token sees itself and the past), `False` above
# it (the future). `seq_len < 1` raises `ValueError`.
#
# The two classic off-by-one mistakes are hiding the diagonal (a token cannot see itself) and
# showing one step of the future; the grader checks for both. Hint: compare
# `torch.arange(seq_len)` as a column with itself as a row.

# %%
#| include: attention.py::causal_mask

# %%
#| grade: test_causal_mask

# %%
print(causal_mask(4).int())

# %% [markdown]
# ### 3.3 `scaled_dot_product_attention`
#
# `scaled_dot_product_attention(q, k, v, mask=None, causal=False)` computes
# `softmax(q kᵀ / √d_k + mask) v` without dropout. With the queries, keys and values as the rows
# of $Q \in \mathbb{R}^{T_q \times d_k}$, $K \in \mathbb{R}^{T_k \times d_k}$ and
# $V \in \mathbb{R}^{T_k \times d_v}$, and the mask written additively as
# $M \in \mathbb{R}^{T_q \times T_k}$ (0 allowed, $-\infty$ forbidden),
#
# $$
# \operatorname{Attention}(Q, K, V) = \operatorname{softmax}\!\left(\frac{Q K^\top}{\sqrt{d_k}} + M\right) V ,
# $$
#
# the softmax taken along each row (over the keys $j$); `causal=True` adds $M_{ij} = -\infty$
# for $j > i$. In detail:
#
# * `q` is `(..., T_q, d_k)`, `k` is `(..., T_k, d_k)`, `v` is `(..., T_k, d_v)`; the leading
#   dimensions (batch, heads) are equal or broadcastable. The result is `(..., T_q, d_v)` in
#   `q`'s dtype. `d_k` is the size of `q`'s last axis.
# * The scores `q @ kᵀ` are divided by `√d_k` **first**; a floating mask is added to the
#   **scaled** scores (cast to their dtype).
# * The softmax runs over the **key** axis — the last one — so each query's weights sum to 1.
# * `mask` is broadcastable to `(..., T_q, T_k)`: bool (`True` = may attend) or floating
#   (added). `causal=True` lets query `i` attend only to keys `j <= i`, aligned at the top
#   left like PyTorch's `is_causal`, also when `T_q != T_k`. With a mask *and* `causal=True`,
#   both apply.
# * A query that may attend to no key gets an output of zeros (your softmax already gives
#   zero weights for it).
# * `ValueError` if `q` and `k` differ in the last axis, if `k` and `v` differ in the key axis,
#   or if the mask is neither bool nor floating (e.g. an integer 0/1 mask — ambiguous, so it is
#   rejected rather than guessed).
#
# Hint: for `causal=True` build `causal_mask(max(T_q, T_k))[:T_q, :T_k]` and fill the
# forbidden scores with `-inf` (`masked_fill`).

# %%
#| include: attention.py::scaled_dot_product_attention

# %%
#| grade: test_attention_matches_torch test_attention_bool_mask test_attention_additive_mask test_attention_broadcast_and_strided_inputs test_attention_causal test_attention_causality test_attention_fully_masked_rows_are_zero test_attention_gradients test_attention_permutation_equivariance test_attention_rejects_bad_input test_attention_reference_data test_hidden_attention_mask_and_causal

# %% [markdown]
# The 2 × 2 example of section 2, now through the implementation; a bool mask that hides every
# key from query 0; and the same thing written as an additive mask:

# %%
Q2, K2, V2 = (torch.tensor(m, dtype=torch.float64) for m in (Q_hand, K_hand, V_hand))
for name, kwargs in (("scaled", {}), ("causal", {"causal": True})):
    out = scaled_dot_product_attention(Q2, K2, V2, **kwargs)
    expected = torch.tensor(attention_by_hand(Q_hand, K_hand, V_hand, **kwargs)[0], dtype=torch.float64)
    print(f"{name}: {out.tolist()}  equal to the hand result: {torch.allclose(out, expected)}")
none_for_row0 = torch.tensor([[False, False], [True, True]])
print("query 0 sees no key (bool mask):   ", scaled_dot_product_attention(Q2, K2, V2, mask=none_for_row0).tolist())
additive = torch.zeros(2, 2, dtype=torch.float64).masked_fill(~none_for_row0, float("-inf"))
print("same as an additive 0/-inf mask:   ", scaled_dot_product_attention(Q2, K2, V2, mask=additive).tolist())

# %% [markdown]
# ### 3.4 `MultiHeadAttention`
#
# `MultiHeadAttention(d_model, n_heads, bias=True)` is multi-head **self**-attention (queries,
# keys and values all come from the same `x`), without dropout.
#
# * **Attributes** (the graders copy weights into them, so keep the names): `q_proj`, `k_proj`,
#   `v_proj`, `out_proj`, each `nn.Linear(d_model, d_model, bias=bias)`, and `n_heads`.
#   `d_model` not divisible by `n_heads` raises `ValueError`.
# * **Head layout:** head `h` uses features `[h·D, (h+1)·D)` of the projected `q`, `k`, `v`;
#   after attention, the heads' outputs are concatenated in head order, head `h` again at
#   features `[h·D, (h+1)·D)`, and passed through `out_proj`. This is the layout of
#   `torch.nn.MultiheadAttention`, so copied weights give the same result.
# * `forward(x, mask=None, causal=False)`: `(B, T, C) → (B, T, C)`. Split with
#   `(B, T, C) → (B, T, H, D) → (B, H, T, D)` (a `view` and a `transpose(1, 2)`), call your
#   `scaled_dot_product_attention` — each head is then scaled by `1/√D`, the **head** size —
#   and merge with the reverse. `mask` broadcasts to `(B, H, T, T)`, with the convention above:
#   a `(T, T)` mask applies to every batch element and head; `(B, 1, 1, T)` hides padded keys.
#
# A detail that follows from the conventions: a query that may see no key gets zero from the
# attention, so its output is `out_proj`'s bias (this is also what PyTorch returns).
# Merging the heads in the wrong order (`(B, H, T, D)` reshaped straight to `(B, T, C)`) is a
# classic mistake that the grader recognises.

# %%
#| include: attention.py::MultiHeadAttention

# %%
#| grade: test_mha_matches_torch test_mha_masks_match_torch test_mha_gradients test_mha_causality test_mha_structure test_mha_reference_data test_hidden_mha_configs_and_parameter_gradients

# %% [markdown]
# ### 3.5 `LayerNorm`
#
# `LayerNorm(dim, eps=1e-5)` normalises over the **last** axis, like `torch.nn.LayerNorm(dim)`:
# for a vector $x \in \mathbb{R}^d$ ($d$ = `dim`) with `weight` $\gamma$ and `bias` $\beta$,
#
# $$
# y = \frac{x - \mu}{\sqrt{\sigma^2 + \varepsilon}} \odot \gamma + \beta, \qquad
# \mu = \frac{1}{d} \sum_{i=1}^{d} x_i, \qquad
# \sigma^2 = \frac{1}{d} \sum_{i=1}^{d} (x_i - \mu)^2,
# $$
#
# that is `y = (x - mean) / sqrt(var + eps) * weight + bias`, with `mean` and `var` over the last
# axis, `var` the **biased** variance (divide by `dim`, not `dim - 1`;
# `x.var(..., correction=0)`), and `eps` ($\varepsilon$) **inside** the square root. Attributes:
# `weight` (`dim`,) initialised to ones, `bias` (`dim`,) initialised to zeros, both
# `nn.Parameter`, and `eps`. `forward` maps `(..., dim)` to `(..., dim)` in the same dtype.

# %%
#| include: attention.py::LayerNorm

# %%
#| grade: test_layernorm_matches_torch test_layernorm_defaults test_layernorm_gradients test_layernorm_reference_data

# %%
ln_out = LayerNorm(4)(torch.tensor([ln_in], dtype=torch.float64))
print("LayerNorm(1, 2, 3, 6):", ln_out.tolist()[0], "  by hand:", [round(v, 6) for v in layernorm_by_hand])
print("equal to the hand result:", torch.allclose(ln_out[0], torch.tensor(layernorm_by_hand, dtype=torch.float64)))

# %% [markdown]
# ### 3.6 `gelu`
#
# `gelu(x)` is the **exact** GELU, elementwise, same shape and dtype, with $\Phi$ the standard
# normal CDF:
#
# $$
# \operatorname{GELU}(x) = x \, \Phi(x) = \frac{x}{2} \left(1 + \operatorname{erf}\!\left(\frac{x}{\sqrt{2}}\right)\right).
# $$
#
# This is `F.gelu` with its default `approximate="none"`. GPT-2 used a tanh
# approximation, $\frac{x}{2} \bigl(1 + \tanh\bigl(\sqrt{2/\pi}\,(x + 0.044715\, x^3)\bigr)\bigr)$;
# it is a different function
# (the cell below prints their largest difference on `[-6, 6]`), and the grader counts it as
# wrong here.

# %%
#| include: attention.py::gelu

# %%
#| grade: test_gelu_matches_exact test_gelu_gradients test_gelu_reference_data

# %%
g_in = torch.tensor([1.0, -1.0], dtype=torch.float64)
print("gelu(1), gelu(-1):", gelu(g_in).tolist(), "  by hand:", [round(v, 6) for v in gelu_by_hand])
grid = torch.linspace(-6, 6, 2001, dtype=torch.float64)
tanh_gelu = 0.5 * grid * (1 + torch.tanh(math.sqrt(2 / math.pi) * (grid + 0.044715 * grid ** 3)))
print(f"largest |exact - tanh approximation| on [-6, 6]: {(gelu(grid) - tanh_gelu).abs().max().item():.2e}")

# %% [markdown]
# ### 3.7 `FeedForward`
#
# `FeedForward(d_model, d_hidden)` is the position-wise network `down(gelu(up(x)))` with
# attributes `up = nn.Linear(d_model, d_hidden)` and `down = nn.Linear(d_hidden, d_model)`,
# both with bias, and your exact `gelu` in between. `forward` maps `(..., d_model)` to
# `(..., d_model)`; since it acts on the last axis only, every position is transformed
# separately with the same weights. (GPT models use `d_hidden = 4 · d_model`.)

# %%
#| include: attention.py::FeedForward

# %%
#| grade: test_feedforward

# %% [markdown]
# ### 3.8 `TransformerBlock`
#
# `TransformerBlock(d_model, n_heads, d_hidden, pre_norm=True)` has the attributes
# `ln1, ln2 = LayerNorm(d_model)`, `attn = MultiHeadAttention(d_model, n_heads)` (with bias),
# `ffn = FeedForward(d_model, d_hidden)` and `pre_norm`. `forward(x, mask=None, causal=False)`
# maps `(B, T, C)` to `(B, T, C)` and passes `mask` and `causal` to the attention:
#
# ```
# pre_norm=True  (GPT-2 and later):  x = x + attn(ln1(x));   x = x + ffn(ln2(x))
# pre_norm=False (2017 post-norm):   x = ln1(x + attn(x));   x = ln2(x + ffn(x))
# ```
#
# A consequence the grader checks: with `attn.out_proj` and `ffn.down` zeroed (weights and
# biases), both sublayers output zero and a **pre-norm** block is exactly the identity.
# (A post-norm block is not: it still applies `ln1` and `ln2`.)

# %%
#| include: attention.py::TransformerBlock

# %%
#| grade: test_block_matches_oracle test_block_zeroed_sublayers test_block_gradients test_block_causality test_block_structure test_block_reference_data test_hidden_block_float32_and_masks

# %%
torch.manual_seed(0)
block = TransformerBlock(d_model=8, n_heads=2, d_hidden=32)
n_by_formula = 2 * (8 + 8) + 4 * (8 * 8 + 8) + (8 * 32 + 32) + (32 * 8 + 8)   # 2 LN, 4 projections, up, down
print("parameters:", sum(p.numel() for p in block.parameters()), "  by the formula:", n_by_formula)
with torch.no_grad():
    for layer in (block.attn.out_proj, block.ffn.down):
        layer.weight.zero_()
        layer.bias.zero_()
xb = torch.randn(2, 5, 8)
print("pre-norm block with zeroed sublayers is the identity:", torch.equal(block(xb, causal=True), xb))

# %% [markdown]
# ## 4. Experiments
#
# ### 4.1 Attention maps
#
# `MultiHeadAttention.forward` returns only the mixed values. To *see* the weights, the helper
# below recomputes them from the module's own `q_proj` and `k_proj` with the same head split
# and scaling, and then checks itself: weights times values, merged and passed through
# `out_proj`, must reproduce the module's output.
#
# The input is a 16-character window of the course corpus. The model is deliberately tiny:
# a character embedding plus a learned position embedding, **one** `MultiHeadAttention` with
# 2 heads, and a linear read-out — no residual, so whatever the read-out sees at position `i`
# has passed through the attention. We look at the maps twice:
#
# * **untrained** (random weights), and
# * **trained** for a few hundred Adam steps on a task that needs one specific position: at
#   each position `i ≥ 1`, output the character at position `i - 1` (copy the previous
#   character). Position 0 has no previous character and is left out of the loss.
#
# and each time **without a mask** and **with `causal=True`** (two separately trained models).
# Because the trained model must find the previous position, its maps should concentrate
# somewhere; the printed numbers say how much weight the heads put on position `i - 1`, and the
# causal maps must have exactly zero weight above the diagonal.

# %%
import time

import matplotlib.pyplot as plt
from torch import nn

from llmlab.lib.corpus import course_corpus
from llmlab.lib.text import CharCodec

started = time.perf_counter()


def attention_weights(mha: MultiHeadAttention, x: torch.Tensor, causal: bool = False) -> torch.Tensor:
    """The (B, H, T, T) softmax weights inside `mha` for input x (B, T, C)."""
    B, T, C = x.shape
    H = mha.n_heads
    q = mha.q_proj(x).view(B, T, H, C // H).transpose(1, 2)
    k = mha.k_proj(x).view(B, T, H, C // H).transpose(1, 2)
    scores = q @ k.transpose(-2, -1) / math.sqrt(C // H)
    if causal:
        scores = scores.masked_fill(~causal_mask(T), float("-inf"))
    return softmax(scores, dim=-1)


class TinyAttentionModel(nn.Module):
    """Character + position embeddings -> one MultiHeadAttention -> linear read-out."""

    def __init__(self, vocab: int, T: int, d: int = 32, n_heads: int = 2, causal: bool = False):
        super().__init__()
        self.tok, self.pos = nn.Embedding(vocab, d), nn.Embedding(T, d)
        self.attn = MultiHeadAttention(d, n_heads)
        self.head = nn.Linear(d, vocab)
        self.causal = causal

    def embed(self, idx):
        return self.tok(idx) + self.pos(torch.arange(idx.size(1)))

    def forward(self, idx):
        return self.head(self.attn(self.embed(idx), causal=self.causal))

    def weights(self, idx):
        return attention_weights(self.attn, self.embed(idx), causal=self.causal)


text = course_corpus(n_paragraphs=60)
codec = CharCodec.from_text(text)
data = codec.encode(text)
T_map = 16
sentence = text[:T_map]
idx0 = codec.encode(sentence)[None]                                  # (1, T)
print(f"corpus: {len(text)} characters, {codec.vocab_size} distinct; input window {sentence!r}")


def batch(gen, B=64):
    starts = torch.randint(0, len(data) - T_map, (B,), generator=gen)
    return torch.stack([data[s: s + T_map] for s in starts])


def copy_loss(model, idx):
    logits = model(idx)                                               # (B, T, vocab)
    pred, target = logits[:, 1:], idx[:, :-1]                         # position i predicts char i-1
    return nn.functional.cross_entropy(pred.reshape(-1, pred.size(-1)), target.reshape(-1)), \
        (pred.argmax(-1) == target).float().mean().item()


def describe(name, w):
    """Numbers read off the (1, H, T, T) weights of idx0."""
    w = w[0]
    T = w.size(-1)
    prev = torch.stack([w[:, i, i - 1] for i in range(1, T)], dim=1)  # (H, T-1): weight on i-1
    above = w.triu(diagonal=1)                                        # (H, T, T): the future keys
    print(f"  {name:<16s} mean weight on i-1 per head: {[round(v, 3) for v in prev.mean(1).tolist()]}; "
          f"largest weight above the diagonal: {above.max().item():.3g} (rows i >= 1: "
          f"{above[:, 1:].max().item():.3g}); row sums in [{w.sum(-1).min().item():.6f}, {w.sum(-1).max().item():.6f}]")


maps, gen = {}, torch.Generator().manual_seed(0)
for causal in (False, True):
    torch.manual_seed(1)
    model = TinyAttentionModel(codec.vocab_size, T_map, causal=causal)
    tag = "causal" if causal else "no mask"
    with torch.no_grad():
        e0 = model.embed(idx0)
        check_out = model.attn(e0, causal=causal)
        w0 = model.weights(idx0)
        v = model.attn.v_proj(e0).view(1, T_map, 2, -1).transpose(1, 2)
        rebuilt = model.attn.out_proj((w0 @ v).transpose(1, 2).reshape(1, T_map, -1))
        print(f"[{tag}] helper reproduces the module's output: max difference "
              f"{(rebuilt - check_out).abs().max().item():.2e}")
        maps[(tag, "untrained")] = w0
        loss0, acc0 = copy_loss(model, batch(gen, 512))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for step in range(300):
        loss, _ = copy_loss(model, batch(gen))
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        loss1, acc1 = copy_loss(model, batch(gen, 512))
        maps[(tag, "trained")] = model.weights(idx0)
    print(f"[{tag}] copy-previous-character task on 512 fresh windows: loss {loss0:.3f} -> {loss1:.3f}, "
          f"accuracy {acc0:.3f} -> {acc1:.3f} (ln vocab = {math.log(codec.vocab_size):.3f})")
    for stage in ("untrained", "trained"):
        describe(f"{stage} weights", maps[(tag, stage)])
print(f"({time.perf_counter() - started:.1f} s)")

# %%
fig, axes = plt.subplots(2, 4, figsize=(16, 8.8), layout="constrained")
labels = [c if c != " " else "␣" for c in sentence]
for r, tag in enumerate(("no mask", "causal")):
    for c, (stage, head) in enumerate((s, h) for s in ("untrained", "trained") for h in (0, 1)):
        ax = axes[r, c]
        ax.imshow(maps[(tag, stage)][0, head].numpy(), cmap="viridis", vmin=0, vmax=1)
        ax.set_title(f"{tag}, {stage}, head {head}")
        ax.set_xticks(range(T_map), labels)
        ax.set_yticks(range(T_map), labels)
        ax.set_xlabel("key position j")
        ax.set_ylabel("query position i")
fig.suptitle("attention weights w_ij on the window " + repr(sentence))
plt.show()

# %% [markdown]
# How to read the maps: row `i` is the distribution of query `i` over the keys, so every row
# sums to 1 (the printed row sums). In the causal maps everything above the diagonal is exactly
# 0 — the printed maximum above the diagonal — and the first row has all of its weight on key 0,
# the only key it may see. For the trained models, compare the printed mean weight on `i - 1`
# with the untrained one, and look for the diagonal just below the main diagonal in the maps;
# the two heads need not do the same thing. The printed accuracies say how well the task was
# learned in 300 steps.
#
# Query 0 has no previous character and is not part of the loss, so training never tells it
# where to look. Without a mask it may look anywhere, future included; that is why the largest
# weight above the diagonal is printed twice, once over all rows and once over rows `i ≥ 1`.
# The causal model has no choice: its row 0 is `(1, 0, …, 0)`.
#
# ### 4.2 Gradient flow: a stack of blocks vs a recurrent network
#
# How does a signal at position 0 influence the output at the last position `N - 1`? We feed
# the **same** random input `x` of shape `(1, N, 32)` to three models and measure the norm of
# the gradient `∂L/∂x_0`, where `L = y_{N-1} · w` is a fixed random projection of the last
# output (so only the last position carries a loss):
#
# * **pre-norm Transformer**: `N` `TransformerBlock`s (`d_model = 32`, 4 heads,
#   `d_hidden = 128`, `causal=True`) — depth grows together with the length;
# * **post-norm Transformer**: the same with `pre_norm=False`;
# * **2 pre-norm blocks**: depth fixed at 2, only the length `N` grows;
# * **tanh RNN**: `torch.nn.RNN(32, 32)` unrolled over the `N` steps; `y_{N-1}` is its last
#   hidden state. Position 0 reaches it only through `N - 1` applications of the recurrence
#   $h_t = \tanh(W_{ih} x_t + W_{hh} h_{t-1} + b)$.
#
# In a Transformer, position 0 reaches position `N - 1` in **one** attention step in every
# block, and in the pre-norm block the identity term of the residual,
# $\partial (x + f(x)) / \partial x = I + \partial f / \partial x$, passes the gradient on
# unchanged. In the RNN every step
# multiplies the gradient by the Jacobian of the recurrence. All models use PyTorch's default
# initialisation; each point is the geometric mean over 3 seeds. Everything runs in float64,
# so that very small gradients are not rounded to zero along the way (in float32 an RNN
# gradient this small can underflow to exactly 0 during the backward pass).

# %%
started = time.perf_counter()
d, Ns, seeds = 32, [1, 2, 4, 8, 16, 32, 64], [0, 1, 2]


def grad_at_position_0(forward, x, w) -> float:
    x = x.clone().requires_grad_(True)
    loss = forward(x)[0, -1] @ w
    (g,) = torch.autograd.grad(loss, x)
    return g[0, 0].norm().item()


def stack(n_blocks, pre_norm=True):
    blocks = nn.ModuleList(TransformerBlock(d, 4, 4 * d, pre_norm=pre_norm) for _ in range(n_blocks)).double()

    def forward(x):
        for b in blocks:
            x = b(x, causal=True)
        return x
    return forward


def rnn_model():
    rnn = nn.RNN(d, d, nonlinearity="tanh", batch_first=True).double()
    return lambda x: rnn(x)[0]


models = {"pre-norm, N blocks": lambda n: stack(n, True), "post-norm, N blocks": lambda n: stack(n, False),
          "pre-norm, 2 blocks": lambda n: stack(2, True), "tanh RNN, N steps": lambda n: rnn_model()}
grads = {name: [] for name in models}
for N in Ns:
    for name, make in models.items():
        values = []
        for seed in seeds:
            gen = torch.Generator().manual_seed(100 + seed)
            x = torch.randn(1, N, d, generator=gen, dtype=torch.float64)
            w = torch.randn(d, generator=gen, dtype=torch.float64) / math.sqrt(d)
            torch.manual_seed(seed)
            values.append(grad_at_position_0(make(N), x, w))
        grads[name].append(math.exp(sum(math.log(v) for v in values) / len(values)))

print(f"{'N':>4s} " + " ".join(f"{name:>20s}" for name in models) + f" {'N * (2 blocks)':>15s}")
for i, N in enumerate(Ns):
    print(f"{N:4d} " + " ".join(f"{grads[name][i]:20.3e}" for name in models)
          + f" {N * grads['pre-norm, 2 blocks'][i]:15.3f}")
for name in models:
    print(f"{name:>20s}: |dL/dx_0| at N = {Ns[-1]} divided by the value at N = 2: {grads[name][-1] / grads[name][1]:.3e}")
print(f"({time.perf_counter() - started:.1f} s)")

# %%
fig, ax = plt.subplots(figsize=(7.5, 4.5))
for (name, values), marker in zip(grads.items(), "osD^"):
    ax.plot(Ns, values, marker=marker, label=name)
ax.set_xscale("log", base=2)
ax.set_yscale("log")
ax.set_xlabel("sequence length N (= number of blocks where stated)")
ax.set_ylabel("|dL/dx_0|  (geometric mean of 3 seeds)")
ax.set_title("gradient reaching position 0 from a loss at position N-1")
ax.grid(alpha=0.3, which="both")
ax.legend()
plt.show()

# %% [markdown]
# Compare the curves using the table. On these log-log axes a power law such as `1/N` is a
# straight line, while an exponential decay `a^N` (with `a < 1`) falls faster and faster.
#
# * **RNN.** The gradient at position 0 is a product of `N - 1` step Jacobians
#   $\partial h_t / \partial h_{t-1} = \operatorname{diag}(1 - h_t^2)\, W_{hh}$. If these steps
#   shrink vectors on average — PyTorch initialises
#   `W_hh` uniformly in `±1/√32`, and `tanh'` is at most 1 — the gradient decays exponentially
#   with the distance. Check the printed ratio between `N = 64` and `N = 2`.
# * **Fixed depth, growing length.** In 2 blocks the only way from `x_0` to the last position
#   is through attention. At initialisation a query's weights are spread over its `N` visible
#   keys, so if they are spread roughly evenly, key 0 gets a weight of about `1/N`. The last
#   column of the table, `N · |dL/dx_0|`, stays roughly constant exactly when the decay is
#   like `1/N` — a polynomial, not an exponential, decay.
# * **Depth and length together.** With `N` blocks there are `N` attention steps that can each
#   carry position 0 to the last position, and the residual stream carries the result through
#   the remaining blocks. Look at whether these curves stay within a bounded range and how
#   pre-norm and post-norm differ.
#
# Keep in mind what this measures: sensitivity at *initialisation* of one input position, not
# what a trained model does — but it is the quantity that decides whether training can
# discover a long-range dependency in the first place.

# %% [markdown]
# ## 5. Summary
#
# * `softmax` subtracts each slice's maximum (shifted by 0 when the whole slice is `-inf`), so
#   huge logits are harmless, `-inf` gets probability 0 and a fully masked slice gives zeros.
# * `causal_mask(T)[i, j] = j <= i`: a token sees itself and the past, never the future.
# * `scaled_dot_product_attention` = `softmax(q kᵀ / √d_k + mask) v` over the key axis. A bool
#   mask is `True` where attention is allowed, a float mask is added after the scaling,
#   `causal=True` adds the causal rule, and a query with no visible key outputs zeros.
# * `MultiHeadAttention` projects, splits `C` into `H` heads of `D` features (head `h` at
#   features `[h·D, (h+1)·D)`), attends with scale `1/√D`, merges in head order and projects
#   out — the layout of `torch.nn.MultiheadAttention`.
# * `LayerNorm` uses the biased variance and `eps` inside the square root; `gelu` is the exact
#   erf version; `FeedForward` is `down(gelu(up(x)))` per position.
# * `TransformerBlock` is `x + attn(ln1(x))`, then `x + ffn(ln2(x))` (pre-norm), or the
#   post-norm `ln(x + f(x))`; with zeroed output projections a pre-norm block is the identity.
# * The experiments printed the attention weights of a tiny attention layer before and after
#   learning to copy the previous character, and the size of the gradient that reaches position
#   0 through `N` blocks and through an `N`-step RNN — see the tables above for the numbers.
#
# ## 6. Exercises
#
# 1. **By hand.** Compute `softmax(0, ln 2, ln 3)` exactly (hint: the exponentials are 1, 2, 3).
#    Then redo the 2 × 2 attention of section 2 with `V = [[2, 2], [4, 0]]`, with and without
#    the causal mask, and check with `scaled_dot_product_attention`.
# 2. **The scale.** Draw `q` and `k` with `N(0, 1)` entries for `d_k` in 4, 16, 64, 256.
#    Measure the standard deviation of `q · k` with and without the `1/√d_k`, and the average
#    largest softmax weight over 32 keys. What would happen to the gradient of a nearly one-hot
#    softmax?
# 3. **Permutations.** Show numerically that without a mask, permuting the input positions of
#    `MultiHeadAttention` permutes its output the same way. Which part of a GPT breaks this
#    symmetry, and why must something break it?
# 4. **Rectangular causal masks.** For `T_q = 2` and `T_k = 5`, print which keys each query may
#    see with `causal=True`. During generation with a key/value cache the new query is the
#    *last* position; would top-left alignment be right there? What would you pass instead?
# 5. **Gradient flow.** In 4.2, multiply the RNN's `weight_hh_l0` by 2, 4 and 8 (under
#    `torch.no_grad()`) and repeat the measurement. What changes? Then remove the residual
#    connections from the pre-norm block (use `attn(ln1(x))` instead of `x + attn(ln1(x))`)
#    and measure the stack again.
# 6. **Mask mistakes.** Copy `scaled_dot_product_attention` and introduce one of the known
#    mistakes — `tril(diagonal=-1)`, softmax over `dim=-2`, or no `1/√d_k` — then run the grade
#    cell of section 3.3 again. Read the message: does it name your mistake? (Re-run the
#    implementation cell afterwards to restore the correct version.)
