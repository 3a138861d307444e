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
# # 03 · Embeddings and positions
#
# A language model reads integers. The tokenizer of the previous chapters turns text into a
# sequence of ids such as `[17, 4, 4, 52]`, and the very first thing the network has to do is
# turn every id into a vector of numbers that later layers can add, multiply and normalise.
# This chapter builds that input layer and the pieces around it:
#
# | unit | what it does |
# |---|---|
# | `Embedding(num_embeddings, dim)` | a learned table, one row per token id |
# | `sinusoidal_positions(seq_len, dim, base)` | the fixed sine/cosine position code of the original Transformer |
# | `LearnedPositions(max_len, dim)` | a learned table, one row per position (GPT-2) |
# | `TokenAndPosition(vocab_size, max_len, dim)` | token vector + position vector, the input of a GPT |
# | `tie_weights(embedding, lm_head)` | let the output layer reuse the input table |
# | `param_groups(model, weight_decay)` | which parameters get weight decay and which do not |
#
# At the end we train a tiny word-level GPT on the course corpus with these parts and look at
# what its embedding table learned.

# %% [markdown]
# ## 1. Intuition
#
# **Ids are names, not quantities.** Token 52 is not "bigger" than token 4; feeding the raw
# integer to a network would invent an order that means nothing. The honest encoding of an
# id $i$ out of $V$ is a *one-hot* vector $e_i$: $V$ zeros with a single 1 at place $i$. Multiply a
# one-hot row vector by a matrix $W$ of shape `(V, C)` and you get exactly row $i$ of $W$,
# $e_i^\top W = W_{i,:}$.
# So "one-hot, then a linear layer without bias" is the same thing as "look up row `i`" —
# and the lookup is far cheaper, because it never builds the `V`-long vector. The table `W`
# is learned: each token gets `C` free numbers, and training moves tokens that are used in
# similar contexts to similar places.
#
# One consequence of the one-hot view is about gradients. If the same id appears at several
# positions of a batch, its row was used several times, so the gradient that reaches the row
# is the **sum** of the gradients from every occurrence (that is what the matrix product
# `one_hot(ids).T @ upstream` computes). For ids $x_1, \dots, x_T$ with outputs
# $h_t = W_{x_t,:}$ and a loss $L$,
#
# $$
# \frac{\partial L}{\partial W_{j,:}} = \sum_{t \,:\, x_t = j} \frac{\partial L}{\partial h_t},
# $$
#
# which is zero for a row whose id does not occur.
#
# **Order must be added by hand.** Attention, the layer of the next chapter, compares every
# token with every other token; if you shuffle the input tokens its outputs come out
# shuffled in the same way and are otherwise unchanged. "dog bites man" and "man bites dog"
# would look alike. So the model adds to each token vector a second vector that depends
# only on the *position* `t` of the token. There are two classic choices:
#
# * **fixed sinusoids** (Vaswani et al., 2017): position `p` gets a vector of sines and
#   cosines of `p` at geometrically spaced frequencies — like the hands of a clock that
#   turn at different speeds;
# * **a learned table** (GPT-2): one free vector per position, up to a maximum length `L`.
#
# **Weight tying.** The last layer of a language model maps a `C`-vector back to `V` scores,
# one per token, with a weight of shape `(V, C)` — the same shape as the embedding table.
# Press & Wolf (2017) observed that one table can serve both jobs; it saves `V·C` parameters.
#
# **Weight decay, selectively.** AdamW shrinks every parameter a little at each step. That is
# a useful pressure on big weight matrices, but not on biases and normalisation scales, and
# not on embedding rows (a rare token's row would shrink on every step and be corrected only
# on the few steps in which the token occurs). `param_groups` states the rule precisely.

# %% [markdown]
# ## 2. A small calculation by hand
#
# **Lookup.** Take a table with `V = 4` tokens and `C = 3`:
#
# ```
# W = [[ 1,  2,  3],     row 0
#      [ 4,  5,  6],     row 1
#      [ 7,  8,  9],     row 2
#      [10, 11, 12]]     row 3
# ```
#
# and the ids `[2, 0, 2]`. The lookup gives rows 2, 0, 2: `[[7, 8, 9], [1, 2, 3], [7, 8, 9]]`.
# If the loss is the plain sum of all nine outputs, every output element has upstream
# gradient 1. Row 2 was used twice, so its gradient is `[2, 2, 2]`; row 0 was used once,
# `[1, 1, 1]`; rows 1 and 3 were not used, `[0, 0, 0]`.
#
# **Sinusoids.** With `dim = 4` there are two frequency pairs, $i = 0, 1$, with
# $\omega_i = 1 / \mathrm{base}^{2i/\mathrm{dim}}$. For `base = 10000`: $\omega_0 = 1/10000^0 = 1$ and
# $\omega_1 = 1/10000^{2/4} = 1/100 = 0.01$. Position $p = 1$ therefore gets
#
# ```
# PE[1] = [sin(1·1), cos(1·1), sin(1·0.01), cos(1·0.01)]
#       ≈ [0.841471, 0.540302, 0.010000, 0.999950]
# ```
#
# (`sin 0.01 ≈ 0.01 − 0.01³/6 = 0.0099998`, `cos 0.01 ≈ 1 − 0.01²/2 = 0.99995`), and position 0 is
# always `[0, 1, 0, 1]` because `sin 0 = 0` and `cos 0 = 1`.
#
# Moving one position further turns each (sin, cos) pair by its own angle $\omega_i$: by the
# angle-addition formulas,
#
# $$
# \begin{aligned}
# \sin(a + \omega) &= \sin a \cos \omega + \cos a \sin \omega, \\
# \cos(a + \omega) &= -\sin a \sin \omega + \cos a \cos \omega.
# \end{aligned}
# $$
#
# So `PE[2]` can be computed from `PE[1]` alone.
# We write these numbers down now, with nothing but `math`, and let the implementation confirm
# them below.

# %%
import math

W_hand = [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]
ids_hand = [2, 0, 2]
lookup_by_hand = [W_hand[i] for i in ids_hand]
grad_by_hand = [[float(ids_hand.count(row))] * 3 for row in range(4)]   # occurrences of each row
print("lookup by hand:  ", lookup_by_hand)
print("gradient by hand:", grad_by_hand)

omega_hand = [1 / 10000 ** (2 * i / 4) for i in range(2)]               # [1, 0.01]
pe1_by_hand = [f(1 * w) for w in omega_hand for f in (math.sin, math.cos)]
print("omega by hand:   ", omega_hand)
print("PE[1] by hand:   ", [round(v, 6) for v in pe1_by_hand])

# PE[2] from PE[1] by rotating each (sin, cos) pair by its angle omega_i
pe2_by_rotation = []
for i, w in enumerate(omega_hand):
    s, c = pe1_by_hand[2 * i], pe1_by_hand[2 * i + 1]
    pe2_by_rotation += [s * math.cos(w) + c * math.sin(w), -s * math.sin(w) + c * math.cos(w)]
print("PE[2] by rotation:", [round(v, 6) for v in pe2_by_rotation])

# %% [markdown]
# ## 3. Implementation
#
# Everything lives in one module, `embeddings.py`. Shapes follow the course convention:
# `V` vocabulary size, `L` the longest sequence a model accepts, `C = dim` the model width,
# `T` sequence length, `B` batch. First, the imports the module needs.

# %%
#| include: embeddings.py::header

# %% [markdown]
# ### 3.1 `Embedding`
#
# Write a module that owns a table and looks rows up.
#
# * `__init__(num_embeddings, dim)` stores `self.weight`, an `nn.Parameter` of shape
#   `(V, C)`, float32, drawn i.i.d. from the standard normal N(0, 1) — the same initialisation
#   as `torch.nn.Embedding` (a GPT re-initialises it with a smaller standard deviation later;
#   the table itself does not). Keep `num_embeddings` and `dim` as attributes too.
# * `forward(ids)` accepts an integer (`torch.long`) tensor of **any** shape and returns a
#   float32 tensor of shape `(*ids.shape, C)` with `out[..., :] = weight[ids[...], :]`.
#   Advanced indexing `self.weight[ids]` does exactly this, for any shape of `ids`, and autograd
#   already sums the gradients of repeated rows.
# * An id that is negative or `≥ V` must raise `IndexError` with a helpful message. Plain
#   Python-style indexing would silently wrap `-1` around to the last row, hiding a bug in the
#   caller.
# * From scratch: `torch.nn.functional.embedding` (and hence `torch.nn.Embedding`) may not be
#   called. Indexing, `index_select` or a one-hot product are all fine.

# %%
#| include: embeddings.py::Embedding

# %% [markdown]
# The implementation should reproduce the calculation by hand — rows 2, 0, 2 and a gradient
# that counts how often each row was used:

# %%
import torch

table = Embedding(4, 3)
with torch.no_grad():
    table.weight.copy_(torch.tensor(W_hand, dtype=torch.float32))
out = table(torch.tensor(ids_hand))
out.sum().backward()
print("lookup:  ", out.tolist())
print("gradient:", table.weight.grad.tolist())
print("lookup matches hand:  ", out.tolist() == [[float(v) for v in row] for row in lookup_by_hand])
print("gradient matches hand:", table.weight.grad.tolist() == grad_by_hand)
try:
    table(torch.tensor([0, -1]))
except IndexError as exc:
    print("IndexError:", exc)

# %% [markdown]
# The checks below compare your lookup with a one-hot matrix product on random shapes
# (including empty and 0-dimensional `ids`), your gradient with the one autograd derives for
# the one-hot product (repeated ids must accumulate), the initialisation with a chi-square test
# against N(0, 1), and the error for out-of-range ids.

# %%
#| grade: test_embedding_stores_one_weight_parameter test_embedding_init_is_standard_normal test_embedding_matches_reference test_embedding_lookup_equals_one_hot_matmul test_embedding_empty_and_scalar_ids test_embedding_gradient_accumulates_repeated_ids test_embedding_gradcheck_float64 test_embedding_rejects_out_of_range_ids test_hidden_embedding_single_row_and_deep_ids

# %% [markdown]
# ### 3.2 `sinusoidal_positions`
#
# `sinusoidal_positions(seq_len, dim, base=10000.0)` returns the fixed code of
# "Attention Is All You Need" (§3.5) as a float32 tensor of shape `(seq_len, dim)`. For a
# position $p$ in `[0, seq_len)` and a pair index $i$ in `[0, dim/2)`:
#
# $$
# \omega_i = \frac{1}{\mathrm{base}^{2i/\mathrm{dim}}}, \qquad
# PE_{p,\,2i} = \sin(p\,\omega_i), \qquad
# PE_{p,\,2i+1} = \cos(p\,\omega_i).
# $$
#
# Conventions that the graders check:
#
# * **Interleaved**, not in two halves: even columns hold sines, odd columns cosines, and
#   columns $2i$ and $2i+1$ share the frequency $\omega_i$.
# * Positions count from **0**, so row 0 is `[0, 1, 0, 1, …]`.
# * The frequencies fall geometrically from $\omega_0 = 1$ (wavelength $2\pi$) to
#   $\omega_{\mathrm{dim}/2-1} = \mathrm{base}^{-(\mathrm{dim}-2)/\mathrm{dim}}$ (wavelength close to
#   $2\pi \cdot \mathrm{base}$).
# * `seq_len = 0` gives an empty `(0, dim)` tensor.
# * `dim` odd or `< 2` raises `ValueError` (every frequency needs a sine **and** a cosine
#   column), and so does a negative `seq_len`. Check the arguments first, so the error says what
#   is wrong instead of failing deep inside a tensor assignment.
# * Computing the angles in float64 and casting to float32 at the end is allowed and slightly
#   more accurate; float32 throughout is also accepted.
#
# Why sines *and* cosines? Because together they make a shift in position a rotation: for
# every `k`, the pair `(PE[p+k, 2i], PE[p+k, 2i+1])` is the pair `(PE[p, 2i], PE[p, 2i+1])`
# rotated by the angle $k\,\omega_i$, whatever $p$ is. Relative offsets are therefore a fixed linear
# map, the same at every place in the sequence.

# %%
#| include: embeddings.py::sinusoidal_positions

# %% [markdown]
# Compare with the hand calculation: row 1 of a `dim = 4` code, row 2 against the rotated
# row 1, and row 0.

# %%
pe = sinusoidal_positions(3, 4)
print("PE[0]            ", [round(v, 6) for v in pe[0].tolist()])
print("PE[1]            ", [round(v, 6) for v in pe[1].tolist()])
print("PE[1] by hand    ", [round(v, 6) for v in pe1_by_hand])
print("PE[2]            ", [round(v, 6) for v in pe[2].tolist()])
print("PE[2] by rotation", [round(v, 6) for v in pe2_by_rotation])
print("max |PE[1] - hand|     =", (pe[1] - torch.tensor(pe1_by_hand)).abs().max().item())
print("max |PE[2] - rotation| =", (pe[2] - torch.tensor(pe2_by_rotation)).abs().max().item())
try:
    sinusoidal_positions(5, 7)
except ValueError as exc:
    print("ValueError:", exc)

# %% [markdown]
# The graders compare against a float64 oracle on fresh `(seq_len, dim, base)`, check the
# rotation property for shifts `k = 1, 3, 17`, check that `PE[p]·PE[q]` depends only on
# `p − q` (and equals `dim/2` when `p = q`), and check the errors. The tolerance grows with
# the longest position, because a float32 angle `p·ω_i` carries a rounding error of a few ulps
# of `p`.

# %%
#| grade: test_sinusoid_matches_reference test_sinusoid_formula_on_fresh_inputs test_sinusoid_default_base_and_edges test_sinusoid_rotation_property test_sinusoid_dot_product_depends_only_on_distance test_sinusoid_odd_dim_raises_value_error test_sinusoid_rejects_dim_below_two_and_negative_seq_len test_hidden_sinusoid_long_sequence_and_bad_arguments

# %% [markdown]
# ### 3.3 `LearnedPositions`
#
# GPT-2 does not use sinusoids; it learns one vector per position (its `wpe` table).
#
# * `__init__(max_len, dim)` stores `self.weight`, an `nn.Parameter` of shape `(L, C)`,
#   float32, drawn i.i.d. from N(0, 1) like `Embedding`.
# * `forward(seq_len, start=0)` returns the vectors of positions `start, …, start+seq_len−1`,
#   i.e. `weight[start : start + seq_len]`, shape `(seq_len, C)`. It takes a length, not the
#   ids: every sequence of a batch shares the same rows. `start` lets a caller continue a
#   sequence, as a generator with a cache does.
# * If `start < 0` or `start + seq_len > L`, raise `ValueError`. Slicing would quietly return
#   fewer rows than asked for; the table simply has no vector for those positions, and the
#   caller should crop its input to the last `L` tokens instead.

# %%
#| include: embeddings.py::LearnedPositions

# %%
#| grade: test_learned_positions_parameter_and_init test_learned_positions_reads_rows_start_to_start_plus_len test_learned_positions_rejects_positions_past_the_table test_learned_positions_gradient

# %% [markdown]
# ### 3.4 `TokenAndPosition`
#
# The input layer of a GPT adds the two tables.
#
# * `__init__(vocab_size, max_len, dim)` creates two submodules with exactly these names
#   (the graders look for them): `self.tok = Embedding(vocab_size, dim)` and
#   `self.pos = LearnedPositions(max_len, dim)`.
# * `forward(ids, start=0)`: `ids` has shape `(..., T)` — the **last** axis is the sequence,
#   and any leading axes (usually the batch `B`) share the same positions. The result has shape
#   `(..., T, C)` with `out[..., t, :] = tok.weight[ids[..., t]] + pos.weight[start + t]`.
#   Broadcasting does the work: `(..., T, C) + (T, C)`.
# * A plain sum: no multiplication by `sqrt(C)` (that belongs to the original Transformer's
#   sinusoidal setup, not to GPT) and no dropout. Errors of the two tables pass through
#   unchanged (`IndexError` for a bad id, `ValueError` for a sequence longer than `L`).

# %%
#| include: embeddings.py::TokenAndPosition

# %%
#| grade: test_token_and_position_matches_reference test_token_and_position_is_token_plus_position test_token_and_position_gradients test_token_and_position_passes_errors_through

# %% [markdown]
# ### 3.5 `tie_weights`
#
# The output head of a language model is `lm_head = nn.Linear(C, V)`, which computes
# `logits = h @ lm_head.weight.T` with `lm_head.weight` of shape `(V, C)` — one row per token,
# just like the embedding table. `tie_weights(embedding, lm_head)` makes the head use the
# embedding's table:
#
# * afterwards `lm_head.weight is embedding.weight` — the very **same `Parameter` object**, not
#   a copy of its values. Both uses then train one tensor (its gradient is the sum of the two
#   contributions), and `model.parameters()` lists it once, so the model has `V·C` fewer
#   parameters;
# * the direction matters: the embedding keeps its own Parameter and values, the head's old
#   weight is dropped; a bias of the head, if any, is left as it is;
# * it works for this chapter's `Embedding` and for `torch.nn.Embedding` (anything with a
#   `weight` of shape `(V, C)`), returns `None`, and raises `ValueError` if the two shapes
#   differ (a head of the wrong size would otherwise be tied silently and fail far away).
#
# A single assignment `lm_head.weight = embedding.weight` does the tying: `nn.Module` registers
# an assigned `Parameter` under that name.

# %%
#| include: embeddings.py::tie_weights

# %%
#| grade: test_tie_weights_shares_one_parameter test_tie_weights_both_uses_train_one_tensor test_tie_weights_rejects_mismatched_shapes

# %% [markdown]
# ### 3.6 `param_groups`
#
# `param_groups(model, weight_decay)` splits the trainable parameters into the two groups an
# optimizer such as `torch.optim.AdamW(groups, lr=…)` accepts. **The rule:** a parameter is
# decayed exactly when
#
# 1. it has `ndim ≥ 2` (weight matrices of `Linear` layers, convolution kernels, any other
#    matrix), **and**
# 2. it is not an embedding table — not the weight of a `torch.nn.Embedding`, nor of this
#    chapter's `Embedding` or `LearnedPositions`, wherever that module sits in the model.
#
# Everything else — parameters with `ndim < 2` (biases, LayerNorm/RMSNorm scales and shifts,
# scalars) and all embedding tables — gets no decay. A tied head shares its Parameter with the
# embedding, so that Parameter *is* an embedding table and is not decayed, even when the head
# happens to be registered before the embedding.
#
# Bookkeeping that the graders check:
#
# * every trainable parameter (`requires_grad=True`) appears in exactly one group, exactly
#   once, even when several modules share it (iterate `model.parameters()`, which lists a
#   shared Parameter once); frozen parameters appear in neither group;
# * inside each group, parameters keep the order of `model.parameters()`;
# * the return value is always both groups, even if one is empty:
#   `[{"params": [decayed], "weight_decay": weight_decay}, {"params": [others], "weight_decay": 0.0}]`.
#
# Hint: first collect the `id`s of the parameters that belong to an embedding module (look at
# every module in `model.modules()`); then one pass over `model.parameters()` sorts them.

# %%
#| include: embeddings.py::param_groups

# %%
#| grade: test_param_groups_structure_and_decay_values test_param_groups_always_returns_both_groups test_param_groups_rule test_param_groups_every_parameter_exactly_once test_param_groups_leaves_out_frozen_parameters test_param_groups_keep_model_order test_param_groups_course_embeddings_are_not_decayed test_param_groups_decays_a_matrix_inside_an_embedding_module test_param_groups_on_assembled_models test_hidden_param_groups_tied_head_registered_first

# %% [markdown]
# ## 4. Experiments
#
# ### 4.1 What the sinusoids look like
#
# A heatmap of `sinusoidal_positions(128, 64)`: one row per position, one column per
# dimension. The first columns have high frequencies (wavelength `2π ≈ 6.3` positions) and
# flicker from row to row; the last columns turn so slowly that across 128 positions they
# barely move. Each position gets a distinct pattern, a bit like the digits of a number
# written in many bases at once, but smooth.

# %%
import matplotlib.pyplot as plt

T_heat, C_heat = 128, 64
pe_heat = sinusoidal_positions(T_heat, C_heat)
omega_heat = 1.0 / 10000.0 ** (torch.arange(0, C_heat, 2, dtype=torch.float64) / C_heat)
wavelength = 2 * math.pi / omega_heat
for i in (0, 1, 4, 8, 16, 31):
    print(f"pair i={i:2d} (columns {2 * i:2d},{2 * i + 1:2d}): wavelength {wavelength[i].item():10.1f} positions")

fig, ax = plt.subplots(figsize=(8, 4.5))
im = ax.imshow(pe_heat.numpy(), aspect="auto", cmap="RdBu", vmin=-1, vmax=1)
ax.set_xlabel("column (even: sin, odd: cos)")
ax.set_ylabel("position p")
ax.set_title(f"sinusoidal_positions({T_heat}, {C_heat})")
fig.colorbar(im, ax=ax)
plt.show()

# %% [markdown]
# ### 4.2 Dot-product similarity against distance
#
# Because every pair rotates rigidly, the dot product of two position vectors is a sum of
# cosines of the *difference* of positions:
#
# $$
# PE_p \cdot PE_q
# = \sum_{i=0}^{\mathrm{dim}/2-1} \bigl(\sin p\omega_i \,\sin q\omega_i + \cos p\omega_i \,\cos q\omega_i\bigr)
# = \sum_{i=0}^{\mathrm{dim}/2-1} \cos\bigl((p - q)\,\omega_i\bigr).
# $$
#
# It depends only on $p - q$, is symmetric in it, and equals $\mathrm{dim}/2$ at distance 0. Below we
# measure it: the whole Gram matrix `PE @ PE.T` should be constant along its diagonals
# (up to float32 rounding), and we plot the dot product divided by `dim/2` (which is the cosine
# similarity, since every row has squared norm `dim/2`) against the distance, for two widths
# and two bases.

# %%
T_sim = 256
distances = torch.arange(T_sim)
fig, ax = plt.subplots(figsize=(8, 4))
for dim, base in [(16, 10000.0), (64, 10000.0), (64, 100.0)]:
    pe_sim = sinusoidal_positions(T_sim, dim, base).double()
    gram = pe_sim @ pe_sim.T                                            # (T, T): PE[p]·PE[q]
    toeplitz_gap = (gram[1:, 1:] - gram[:-1, :-1]).abs().max().item()   # 0 if only p − q matters
    cosine = gram[0] / (dim / 2)                                       # similarity of position 0 with q
    print(f"dim={dim:3d} base={base:7.0f}: max |G[p+1,q+1] − G[p,q]| = {toeplitz_gap:.1e}; "
          "cos at distance " + ", ".join(f"{d}: {cosine[d].item():+.3f}" for d in (0, 1, 2, 4, 8, 16, 64, 255)))
    ax.plot(distances.numpy(), cosine.numpy(), label=f"dim={dim}, base={base:g}")
ax.set_xlabel("distance |p − q|")
ax.set_ylabel("PE[p]·PE[q] / (dim/2)")
ax.set_title("similarity of sinusoidal position vectors vs distance")
ax.axhline(0, color="grey", lw=0.5)
ax.legend()
plt.show()

# %% [markdown]
# Read the printed values: the similarity starts at exactly 1 at distance 0 (`sin² + cos² = 1`
# in every pair). How quickly it falls, and whether it stays positive, depends on `dim` and
# `base` — compare the curves and the printed values at distances 64 and 255. The slowest pair
# has a wavelength close to `2π·base` positions, so a smaller base has no slowly turning pairs:
# at long distances fewer terms of the sum `Σ_i cos((p − q)·ω_i)` are still near 1. The printed
# `max |G[p+1,q+1] − G[p,q]|` measures how far the Gram matrix is from depending on `p − q`
# alone: values at the level of float32 rounding (around 1e-6) mean the identity holds up to
# rounding, as the algebra says it must. Nothing here was learned: this is the structure the
# fixed code offers to the attention layer, which can then learn to use it.

# %% [markdown]
# ### 4.3 A tiny word-level GPT and what its embeddings learn
#
# Now a real training run. The course corpus (`llmlab.lib.corpus.course_corpus()`) is generated
# from a small grammar: names, places, things, feelings, months, numbers. We split it into
# *words*: runs of letters, single digits and single punctuation marks (including emoji). With
# fewer than two hundred distinct words, a tiny model can pick up much of the grammar in a
# short CPU run, and its embedding table becomes something we can inspect word by word.
#
# The model uses everything from this chapter: `TokenAndPosition` as input layer, the given
# `llmlab.lib.nn.Block` (a pre-norm Transformer block; chapter 04 builds one from scratch), a final
# LayerNorm, an output head tied to the token table with `tie_weights`, and AdamW with the groups
# from `param_groups`. As in GPT-2, the two tables are re-initialised with standard deviation
# 0.02 instead of N(0, 1): with a tied head, rows of N(0, 1) entries would make the first
# logits large (exercise 6 asks how large).

# %%
import re
import time

import torch.nn.functional as F
from torch import nn

from llmlab.lib.corpus import MONTHS, NAMES, FEELINGS, VERBS_PAST, course_corpus, train_val_split
from llmlab.lib.nn import Block, init_gpt_weights

# The tensors here are tiny: one thread avoids threading overhead (and competition on a busy machine).
torch.set_num_threads(1)

WORD = re.compile(r"[^\W\d_]+|\d|[^\w\s]")              # a word, one digit, or one other symbol
train_text, val_text = train_val_split(course_corpus())
vocab = sorted(set(WORD.findall(train_text + val_text)))
word_id = {w: i for i, w in enumerate(vocab)}
train_ids = torch.tensor([word_id[w] for w in WORD.findall(train_text)])
val_ids = torch.tensor([word_id[w] for w in WORD.findall(val_text)])
print(f"vocabulary: {len(vocab)} words; train {len(train_ids)} tokens, validation {len(val_ids)} tokens")
print("first words:", WORD.findall(train_text)[:16])


class TinyGPT(nn.Module):
    def __init__(self, vocab_size: int, max_len: int, dim: int, n_layers: int, n_heads: int):
        super().__init__()
        self.inp = TokenAndPosition(vocab_size, max_len, dim)
        self.blocks = nn.ModuleList([Block(dim, n_heads) for _ in range(n_layers)])
        self.ln_f = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab_size, bias=False)
        self.apply(init_gpt_weights)                       # Linear weights N(0, 0.02), biases 0
        with torch.no_grad():                              # GPT-2 scale for our own tables too
            self.inp.tok.weight.normal_(0.0, 0.02)
            self.inp.pos.weight.normal_(0.0, 0.02)
        tie_weights(self.inp.tok, self.head)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:  # (B, T) -> (B, T, V)
        x = self.inp(ids)
        for block in self.blocks:
            x = block(x)
        return self.head(self.ln_f(x))


V_w, L_w, C_w = len(vocab), 32, 48
torch.manual_seed(0)
model = TinyGPT(V_w, L_w, C_w, n_layers=1, n_heads=4)
untied = TinyGPT(V_w, L_w, C_w, n_layers=1, n_heads=4)
untied.head = nn.Linear(C_w, V_w, bias=False)              # the same model with a separate head
n_tied = sum(p.numel() for p in model.parameters())
n_untied = sum(p.numel() for p in untied.parameters())
print(f"parameters: tied {n_tied}, untied {n_untied}, difference {n_untied - n_tied} = V·C = {V_w * C_w}")
groups = param_groups(model, weight_decay=0.1)
for g, label in zip(groups, ("decay", "no decay")):
    print(f"{label:8s}: {len(g['params']):2d} tensors, {sum(p.numel() for p in g['params']):6d} numbers")

# %% [markdown]
# Training: 300 steps of AdamW on random windows of 32 words, batch 32, next-word
# cross-entropy. For reference, a model that knows nothing and spreads its probability
# uniformly over the vocabulary has loss $\ln V$. We keep a copy of the token table before
# training to compare with afterwards.

# %%
tok_before = model.inp.tok.weight.detach().clone()
pos_before = model.inp.pos.weight.detach().clone()
optimizer = torch.optim.AdamW(groups, lr=3e-3)
gen = torch.Generator().manual_seed(0)


def windows(data: torch.Tensor, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
    starts = torch.randint(0, len(data) - L_w - 1, (batch,), generator=gen)
    x = torch.stack([data[s:s + L_w] for s in starts])              # (B, T)
    y = torch.stack([data[s + 1:s + L_w + 1] for s in starts])      # (B, T): the next words
    return x, y


@torch.no_grad()
def val_loss(n_batches: int = 8) -> float:
    model.eval()
    losses = [F.cross_entropy(model(x).flatten(0, 1), y.flatten()).item()
              for x, y in (windows(val_ids, 64) for _ in range(n_batches))]
    model.train()
    return sum(losses) / len(losses)


steps, history = 300, []
print(f"uniform guess ln V = {math.log(V_w):.3f}; validation loss before training {val_loss():.3f}")
started = time.perf_counter()
for step in range(steps):
    x, y = windows(train_ids, 32)
    loss = F.cross_entropy(model(x).flatten(0, 1), y.flatten())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    history.append(loss.item())
    if step % 50 == 0 or step == steps - 1:
        print(f"step {step:3d}  train loss {loss.item():.3f}")
print(f"validation loss after training {val_loss():.3f}  ({time.perf_counter() - started:.1f} s)")

fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(history)
ax.axhline(math.log(V_w), color="grey", ls="--", label="ln V (uniform guess)")
ax.set_xlabel("step")
ax.set_ylabel("train loss")
ax.legend()
plt.show()

# %% [markdown]
# **Nearest neighbours.** For a word `w`, rank all other words by the cosine similarity of
# their rows in the token table, $\cos(a, b) = \dfrac{a \cdot b}{\lVert a \rVert \, \lVert b \rVert}$. Cosine rather than the raw dot
# product, because the raw dot product also grows with the length of a row, and row lengths
# mostly reflect how often a token occurs, not what it means. Compare the neighbours in the
# table before training (random vectors) with those after training.

# %%
def neighbours(table: torch.Tensor, word: str, k: int = 5) -> list[tuple[str, float]]:
    unit = F.normalize(table, dim=1)                    # rows of length 1
    sims = unit @ unit[word_id[word]]                   # (V,) cosine with every word
    sims[word_id[word]] = -float("inf")                 # leave the word itself out
    top = sims.topk(k)
    return [(vocab[i], round(s, 2)) for s, i in zip(top.values.tolist(), top.indices.tolist())]


tok_after = model.inp.tok.weight.detach()
for word in ["Ada", "she", "Monday", "harbour", "violin", "happy", "painted", "March", "7"]:
    print(f"{word:8s} before: {neighbours(tok_before, word)}")
    print(f"{'':8s} after:  {neighbours(tok_after, word)}")

# %% [markdown]
# **A number for "meaningful neighbours".** The grammar defines word classes that can stand in
# for one another: the 14 names, the 6 months, the 7 feelings, the 12 past-tense verbs, the 10
# digits. For every word of a class we take its 5 nearest neighbours and count the fraction that
# belong to the same class. With random vectors that fraction is small (roughly the class's
# share of the vocabulary); a table that has learned the grammar's classes would push it
# towards 1. The heatmap shows the cosine similarities among all these words, grouped by class,
# before and after training.

# %%
classes = {"names": [n for n, _ in NAMES], "months": MONTHS, "feelings": FEELINGS,
           "verbs": VERBS_PAST, "digits": [str(d) for d in range(10)]}


def class_purity(table: torch.Tensor, words: list[str], k: int = 5) -> float:
    unit = F.normalize(table, dim=1)
    rows = torch.tensor([word_id[w] for w in words])
    sims = unit[rows] @ unit.T                          # (n, V)
    sims[torch.arange(len(rows)), rows] = -float("inf")
    top = sims.topk(k, dim=1).indices                   # (n, k)
    return torch.isin(top, rows).float().mean().item()


print(f"{'class':9s} {'size':>4s} {'chance':>7s} {'before':>7s} {'after':>7s}")
for name, words in classes.items():
    chance = (len(words) - 1) / (V_w - 1)
    print(f"{name:9s} {len(words):4d} {chance:7.2f} {class_purity(tok_before, words):7.2f} "
          f"{class_purity(tok_after, words):7.2f}")

grouped = [w for words in classes.values() for w in words]
rows = torch.tensor([word_id[w] for w in grouped])
fig, axes = plt.subplots(1, 2, figsize=(11, 5))
for ax, table, title in zip(axes, (tok_before, tok_after), ("before training", "after training")):
    unit = F.normalize(table[rows], dim=1)
    im = ax.imshow((unit @ unit.T).numpy(), cmap="RdBu", vmin=-1, vmax=1)
    ax.set_title(title)
    ax.set_xticks(range(len(grouped)), grouped, rotation=90, fontsize=6)
    ax.set_yticks(range(len(grouped)), grouped, fontsize=6)
fig.suptitle("cosine similarity of token rows (names, months, feelings, verbs, digits)")
fig.colorbar(im, ax=axes, shrink=0.8)
plt.show()

# %% [markdown]
# **The learned position table.** Section 4.2 showed how similarity falls with distance for the
# fixed sinusoids. The trained model had to invent its own position vectors. Do neighbouring
# positions end up with similar vectors? Below, the average cosine similarity between
# `pos.weight[p]` and `pos.weight[p + d]` over all `p`, for each distance `d`, before and after
# training. 300 steps is a short run, so treat this as a measurement of this run only.

# %%
def similarity_by_distance(table: torch.Tensor) -> torch.Tensor:
    unit = F.normalize(table, dim=1)
    cos = unit @ unit.T                                 # (L, L)
    return torch.stack([cos.diagonal(d).mean() for d in range(1, len(table))])   # d = 1 .. L-1


pos_after = model.inp.pos.weight.detach()
before_d, after_d = similarity_by_distance(pos_before), similarity_by_distance(pos_after)
for d in (1, 2, 4, 8, 16, 31):
    print(f"distance {d:2d}: mean cosine before {before_d[d - 1].item():+.3f}, after {after_d[d - 1].item():+.3f}")

fig, ax = plt.subplots(figsize=(7, 3))
ax.plot(range(1, L_w), before_d.numpy(), label="before training")
ax.plot(range(1, L_w), after_d.numpy(), label="after training")
ax.axhline(0, color="grey", lw=0.5)
ax.set_xlabel("distance d")
ax.set_ylabel("mean cos(pos[p], pos[p+d])")
ax.legend()
plt.show()

# %% [markdown]
# ## 5. Summary
#
# * An embedding is a table lookup, `weight[ids]`, which equals `one_hot(ids) @ weight`. The
#   one-hot view explains the gradient: a row receives the **sum** of the gradients of all the
#   positions where its id occurs; rows of absent ids get zero.
# * Attention by itself ignores order, so a position vector is added to each token vector.
#   Sinusoidal codes interleave $\sin(p\,\omega_i)$ and $\cos(p\,\omega_i)$ with
#   $\omega_i = \mathrm{base}^{-2i/\mathrm{dim}}$; a shift by $k$ rotates every pair by $k\,\omega_i$, so
#   $PE_p \cdot PE_q$ depends only on $p - q$.
#   GPT-2 instead learns a table `LearnedPositions`, which has no vector beyond `max_len`.
# * `TokenAndPosition` is the plain sum `tok(ids) + pos(T, start)`, broadcast over the batch.
# * Tying makes the head's weight *the same Parameter* as the embedding table: `V·C` fewer
#   parameters, one tensor trained by both uses.
# * Weight decay goes only to parameters with `ndim ≥ 2` that are not embedding tables; every
#   trainable parameter sits in exactly one group, once.
# * Trained on the course corpus, the token table of a tiny GPT can be read: cosine nearest
#   neighbours and the class-purity table above measure how much of the grammar's word classes
#   it picked up in this run.
#
# ## 6. Exercises
#
# 1. **By hand.** Compute `PE[3]` for `dim = 4`, `base = 100` (so `ω_1 = 0.1`) with a pencil,
#    then obtain it a second way by rotating `PE[0] = [0, 1, 0, 1]` three times. Check both
#    with `sinusoidal_positions(4, 4, 100.0)`.
# 2. **Relative positions.** Find the 2×2 block-diagonal matrix `M_k` with
#    `PE[p + k] = M_k · PE[p]` for `dim = 8`, build it in code, and verify it for several `p`.
#    Why can no such matrix exist for a learned position table in general?
# 3. **Heatmap and base.** Redraw the heatmap of 4.1 and the curves of 4.2 with
#    `base = 10`, `100` and `10⁶`. For which base do two distant positions (say 0 and 200) get
#    the most similar vectors? Explain with the wavelengths.
# 4. **Tying, measured.** Train the `untied` model of 4.3 with the same steps and seed, and
#    compare its validation loss and its nearest neighbours with the tied model's. Which table
#    would you inspect in the untied model — the input or the output one — and do they agree?
# 5. **Why no decay on embeddings.** Put every parameter of `TinyGPT` into the decay group with
#    `weight_decay = 0.5`, train again, and print the norms of the rows of rare words (the
#    emoji, the least frequent digits) before and after, next to those of frequent words. Relate
#    what you see to the argument in 3.6.
# 6. **Initial scale.** Skip the re-initialisation of the two tables (keep N(0, 1)) and train
#    again. Compare the first printed losses and the final validation loss with the run above,
#    and explain the difference using the tied head: what is the size of `h · w` for a unit
#    vector `h` and a row `w` with N(0, 1) entries of length 48?
