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
# # 07 · Mixture of experts
#
# A Transformer block spends most of its parameters, and most of its compute, in the
# feed-forward MLP that every token passes through. A *mixture-of-experts* (MoE) layer replaces
# that one MLP by `E` smaller MLPs — the *experts* — and a tiny *router* that sends each token
# to only `k` of them. The model then holds `E` experts' worth of parameters while each token
# pays for `k`. Switch Transformer, Mixtral, DeepSeek-V3 and many other large models are built
# this way.
#
# | unit | what it does |
# |---|---|
# | `TopKRouter(d_model, n_experts, k, normalize)` | router logits, top-k choice steered by a balancing bias, mixture weights |
# | `TopKRouter.update_bias(indices, rate)` | one step of auxiliary-loss-free load balancing |
# | `load_balancing_loss(router_logits, expert_indices)` | Switch Transformer's auxiliary loss `E·Σ f_i·P_i` |
# | `router_z_loss(router_logits)` | ST-MoE's z-loss, the mean of `logsumexp(logits)²` |
# | `expert_capacity(n_tokens, n_experts, k, capacity_factor)` | how many assignments one expert accepts |
# | `MoELayer(...)` | routing, capacity with token dropping, vectorised dispatch, optional shared expert |
#
# The experts themselves are given: LLaMA's SwiGLU feed-forward (chapter 06's topic), written
# with `nn.Linear`. At the end we time the vectorised dispatch against a per-token loop, and
# train a tiny MoE language model on the course corpus three ways — without balancing, with the
# auxiliary loss, and with the balancing bias — watching how the load spreads over the experts.

# %% [markdown]
# ## 1. Intuition
#
# **Routing.** For a token vector $x$ (width $C$), the router computes one logit per expert,
# $W_g x$ (a $C \to E$ linear map without bias), and turns them into probabilities
# $p = \operatorname{softmax}(W_g x)$. The token goes to the $k$ experts $i_1, \dots, i_k$ with the
# largest probabilities; its output is the weighted sum of their outputs,
#
# $$
# y = \sum_{j=1}^{k} w_j \, \mathrm{expert}_{i_j}(x),
# \qquad
# w_j = p_{i_j} \ \ (\texttt{normalize=False})
# \quad \text{or} \quad
# w_j = \frac{p_{i_j}}{\sum_{l=1}^{k} p_{i_l}} \ \ (\texttt{normalize=True}),
# $$
#
# with the weights $w$ taken from $p$: either the raw probabilities of the chosen experts
# (Switch Transformer, `normalize=False`) or those probabilities divided by their sum, so that
# they add up to one (Mixtral, `normalize=True`). The choice of experts is discrete and carries
# no gradient; the router learns through the weights, which multiply the experts' outputs.
#
# **Collapse, and the auxiliary loss.** Nothing in the language-modelling loss asks the router to
# use its experts evenly. An expert that is chosen a little more often gets more gradient, gets
# better, and is chosen even more often: a rich-get-richer loop that can leave most experts idle.
# Switch Transformer adds a small *auxiliary loss* over a batch of $N$ tokens,
#
# $$
# \mathcal{L}_{\text{balance}} = E \sum_{i=1}^{E} f_i \, P_i,
# \qquad
# f_i = \frac{1}{N k} \sum_{t=1}^{N} \sum_{j=1}^{k} \mathbb{1}[\, i_{t,j} = i \,],
# \qquad
# P_i = \frac{1}{N} \sum_{t=1}^{N} p_{t,i},
# $$
#
# where $f_i$ is the fraction of the token-to-expert assignments that went to expert $i$ (a
# count: no gradient) and $P_i$ is the router's average probability for expert $i$ (the gradient
# flows through it). $f$ and $P$ both sum to one. If either is uniform ($1/E$ everywhere) the
# loss is exactly $E \cdot \frac{1}{E} \sum_i P_i = 1$ (or $E \cdot \frac{1}{E} \sum_i f_i = 1$); if the
# router puts every token on one expert with probability one, it is $E$. Minimising it pushes probability away from the experts that are
# already overloaded.
#
# **The z-loss.** ST-MoE adds, for the router logits $z_{t,i}$ of the $N$ tokens,
#
# $$
# \mathcal{L}_z = \frac{1}{N} \sum_{t=1}^{N} \Bigl( \log \sum_{i=1}^{E} e^{z_{t,i}} \Bigr)^2 :
# $$
#
# it keeps the router's logits
# from drifting to large values, where the softmax becomes numerically touchy. It is tiny in
# value and is weighted by about `1e-3`.
#
# **Capacity and dropping.** On real hardware each expert processes a fixed-size buffer. With
# $N$ tokens, $k$ choices each and $E$ experts, the fair share is $N k / E$ assignments per
# expert; the *capacity* is $\lceil \text{capacity factor} \cdot N k / E \rceil$. Assignments beyond it are
# *dropped*: they contribute nothing, and a token that loses all its choices leaves the layer
# as zero — the residual connection of the block carries it on unchanged. Which assignments win
# when an expert is full is a rule: here, as in GShard, every token's *first* choice is served
# before any *second* choice, and within a rank the earlier token goes first.
#
# **Balancing without a loss.** DeepSeek-V3 balances differently: each expert $i$ has a bias
# $b_i$ that is added to its probability *for the selection only*, $\text{top-}k\,(p + b)$.
# After each batch, the bias of every expert that received more than the average load goes down
# by a small step $\gamma$ and every underloaded expert's bias goes up by $\gamma$: with $n_i$
# the number of assignments expert $i$ received and $\bar n = N k / E$ their mean,
#
# $$
# b_i \leftarrow b_i + \gamma \, \operatorname{sign}(\bar n - n_i)
# $$
#
# (an expert exactly at the mean keeps its bias). The mixture weights still come
# from `p` alone, so the bias changes *which* experts a token visits but never *how much* each
# contributes, and it adds no term to the loss — no gradient that competes with language
# modelling.
#
# **A shared expert** (DeepSeekMoE) is an ordinary MLP that every token also passes through, with
# weight one: common knowledge lives there, so the routed experts can specialise.
#
# **Vectorised dispatch.** The obvious implementation loops over tokens and calls each token's
# experts one by one: `N·k` tiny matrix products. The fast one loops over the `E` experts instead:
# gather all the rows that chose expert `e`, run the expert once on that `(n_e, C)` block, and
# scatter the weighted results back with `index_add`. Same arithmetic, `E` large calls instead of
# `N·k` small ones.

# %% [markdown]
# ## 2. A calculation by hand
#
# Three experts, `k = 2`, and four tokens whose router logits are (rows = tokens)
#
# ```
# t0: [2, 1, 0]   t1: [2, 0, 1]   t2: [1, 2, 0]   t3: [2, 1, 0]
# ```
#
# **Probabilities and weights.** `softmax([2, 1, 0]) = [e², e, 1] / (e² + e + 1) = [7.389, 2.718,
# 1] / 11.107 ≈ [0.665, 0.245, 0.090]`. The top two are experts 0 and 1; renormalised, their
# weights are `0.665 / 0.910 ≈ 0.731` and `0.245 / 0.910 ≈ 0.269`. The other rows are permutations
# of the same logits, so the choices are t0 → (0, 1), t1 → (0, 2), t2 → (1, 0), t3 → (0, 1).
#
# **With a bias** `b = [0, 0, 0.5]` token t0's selection scores are `[0.665, 0.245, 0.590]`: it
# now chooses experts 0 and 2, with weights from the probabilities alone,
# `0.665 / (0.665 + 0.090) ≈ 0.881` and `0.090 / 0.755 ≈ 0.119`.
#
# **Capacity.** `N = 4`, `k = 2`, `E = 3`, factor 1: capacity `ceil(8/3) = 3`. First choices in
# token order: expert 0 receives t0, t1, t3 (full), expert 1 receives t2. Second choices: t0 →
# expert 1 (its 2nd), t1 → expert 2 (its 1st), t2 → expert 0 — **full, dropped** — t3 → expert 1
# (its 3rd). So only t2's second assignment is dropped. Serving token by token instead would have
# dropped t3's *first* choice.
#
# **Balancing loss.** The 8 assignments go 4, 3, 1 times to experts 0, 1, 2: `f = [1/2, 3/8,
# 1/8]`. Averaging the four probability rows, `P_0 = (3·0.665 + 0.245)/4 = 0.560`, `P_1 =
# (2·0.245 + 0.090 + 0.665)/4 = 0.311`, `P_2 = (3·0.090 + 0.245)/4 = 0.129`, and
# `L = 3 · (0.5·0.560 + 0.375·0.311 + 0.125·0.129) ≈ 3 · 0.413 = 1.238` — above 1, because the
# experts the router likes are also the ones it uses.
#
# **z-loss.** Every row is a permutation of `[2, 1, 0]`: `logsumexp = 2 + ln(1 + e⁻¹ + e⁻²) =
# 2 + ln 1.503 ≈ 2.408`, squared `≈ 5.797`, and so is the mean.
#
# **Bias update.** Loads `[4, 3, 1]`, mean `8/3 ≈ 2.67`: experts 0 and 1 are above it, expert 2
# below. With `γ = 0.1` the bias moves from `[0, 0, 0]` to `[−0.1, −0.1, +0.1]`.
#
# The cell writes these numbers down with plain Python; the implementation confirms them below.

# %%
import math

rows_h = [[2.0, 1.0, 0.0], [2.0, 0.0, 1.0], [1.0, 2.0, 0.0], [2.0, 1.0, 0.0]]


def softmax_by_hand(row):
    exps = [math.exp(v) for v in row]
    return [e / sum(exps) for e in exps]


probs_h = [softmax_by_hand(r) for r in rows_h]
choices_h = [sorted(range(3), key=lambda i: (-p[i], i))[:2] for p in probs_h]
weights_h = [[p[i] / (p[c[0]] + p[c[1]]) for i in c] for p, c in zip(probs_h, choices_h)]
print("probabilities of t0:", [round(v, 3) for v in probs_h[0]])
print("choices:", choices_h, " weights of t0:", [round(v, 3) for v in weights_h[0]])

bias_h = [0.0, 0.0, 0.5]
scores_h = [p + b for p, b in zip(probs_h[0], bias_h)]
pick_h = sorted(range(3), key=lambda i: (-scores_h[i], i))[:2]
print("t0 with bias", bias_h, "-> scores", [round(v, 3) for v in scores_h], "chooses", pick_h,
      "weights", [round(probs_h[0][i] / sum(probs_h[0][j] for j in pick_h), 3) for i in pick_h])

capacity_h = math.ceil(1.0 * 4 * 2 / 3)
filled, kept_h = [0, 0, 0], [[None, None] for _ in rows_h]
for rank in range(2):                                   # rank by rank, then token by token
    for t, c in enumerate(choices_h):
        kept_h[t][rank] = filled[c[rank]] < capacity_h
        filled[c[rank]] += 1
print("capacity", capacity_h, "kept:", kept_h)

counts_h = [sum(c.count(i) for c in choices_h) for i in range(3)]
f_h = [n / 8 for n in counts_h]
P_h = [sum(p[i] for p in probs_h) / 4 for i in range(3)]
balance_h = 3 * sum(f * P for f, P in zip(f_h, P_h))
z_h = sum((max(r) + math.log(sum(math.exp(v - max(r)) for v in r))) ** 2 for r in rows_h) / 4
print("f =", f_h, " P =", [round(v, 3) for v in P_h], f" balancing loss {balance_h:.4f}  z-loss {z_h:.4f}")
mean_load = sum(counts_h) / 3
print("loads", counts_h, "-> bias step", [0.1 * ((mean_load > n) - (mean_load < n)) for n in counts_h])

# %% [markdown]
# ## 3. Implementation
#
# Everything lives in `moe.py`. Shapes: `N` tokens (all leading axes of an input flattened, so
# `N = B·T` for a `(B, T, C)` batch), `C = d_model`, `E = n_experts`, `k` experts per token,
# `H = d_hidden`. First the imports and the two given pieces: the expert, and the named tuple
# that `MoELayer.forward` returns.

# %%
#| include: moe.py::header

# %%
#| include: moe.py::SwiGLUExpert,MoEOutput

# %% [markdown]
# ### 3.1 `TopKRouter`
#
# **`__init__(d_model, n_experts, k, normalize=True)`** stores its arguments as `n_experts`,
# `k`, `normalize`, makes `gate = nn.Linear(d_model, n_experts, bias=False)`, and registers the
# balancing bias as a **buffer**: `self.register_buffer("expert_bias", torch.zeros(n_experts))`.
# A buffer is saved in the state dict and follows `.to()` and `.double()`, but it is not a
# parameter, so no optimizer touches it and it gets no gradient. Raise `ValueError` when
# `n_experts < 1` or `k` is not in `1 … n_experts`.
#
# **`forward(x)`** takes `(..., d_model)` and returns `(weights, indices, logits)`:
#
# 1. `logits = gate(x)`, `(..., E)`; `probs = softmax(logits, dim=-1)`;
# 2. the selection scores are `probs + expert_bias`; `indices` are the `k` experts with the largest
#    scores, in decreasing order, and **equal scores go to the lower expert index first**.
#    `torch.topk` makes no promise about ties (try it on a row of equal values); a stable sort,
#    `torch.sort(scores, dim=-1, descending=True, stable=True)`, keeps equal values in index
#    order. The selection needs no gradient (detach the scores);
# 3. the weights are gathered from `probs` — never from the scores — at `indices`, and divided by
#    their sum when `normalize` is true.
#
# **`update_bias(indices, rate)`** counts the load of each expert in a batch's `indices` (every
# rank counts: `torch.bincount(indices.reshape(-1), minlength=E)`), and adds
# `rate · sign(mean load − load_i)` to `expert_bias[i]` in place (the update above with
# $\gamma$ = `rate`), under `torch.no_grad()`. It
# returns the loads and raises `ValueError` for a negative rate.

# %%
#| include: moe.py::TopKRouter

# %% [markdown]
# Section 2 again, with the router's gate set to the identity so that each row of `x` is that
# token's logits. (Every model of this chapter is tiny: PyTorch runs on one thread from here on,
# which on a shared CPU is faster than several threads waiting for each other.)

# %%
torch.set_num_threads(1)
router_h = TopKRouter(3, 3, 2)
with torch.no_grad():
    router_h.gate.weight.copy_(torch.eye(3))
x_h = torch.tensor(rows_h)
w_check, i_check, _ = router_h(x_h)
print("indices:", i_check.tolist(), " by hand:", choices_h)
print("weights of t0:", [round(v, 3) for v in w_check[0].tolist()], " by hand:", [round(v, 3) for v in weights_h[0]])
with torch.no_grad():
    router_h.expert_bias.copy_(torch.tensor(bias_h))
w_check, i_check, _ = router_h(x_h[:1])
print("with bias", bias_h, "t0 chooses", i_check[0].tolist(), "with weights", [round(v, 3) for v in w_check[0].tolist()])
ties = torch.full((1, 8), 0.125)
print("torch.topk on 8 equal values:", torch.topk(ties, 3).indices.tolist(),
      " stable sort:", torch.sort(ties, descending=True, stable=True).indices[:, :3].tolist())

# %% [markdown]
# The graders compare the router with a token-by-token oracle on random shapes, dtypes, biases and
# both normalisation rules; check the tie rule on rows of equal scores; check that a bias steers
# the selection (adding it to the probabilities, not the logits) while the weights stay those of
# the probabilities — with `k = E` the weights must not move at all; load reference weights; and
# compare gradients with the oracle and with finite differences.

# %%
#| grade: test_router_structure_and_errors test_router_matches_loop_oracle test_router_ties_go_to_lower_index test_router_bias_steers_selection_but_never_weights test_router_matches_reference test_router_gradients

# %% [markdown]
# `update_bias` on the loads of section 2 (`[4, 3, 1]`), then a small simulation: a top-1 router
# whose gate prefers expert 0 routes 150 fresh batches, and updates its bias after each one. We
# print the largest load divided by the mean load (1 is perfectly even) along the way.

# %%
router_h.expert_bias.zero_()
print("loads", router_h.update_bias(i_check.new_tensor(choices_h), 0.1).tolist(),
      "-> expert_bias", [round(v, 3) for v in router_h.expert_bias.tolist()])

torch.manual_seed(0)
sim = TopKRouter(8, 4, 1)
with torch.no_grad():
    sim.gate.weight[0] += 0.8
sim_gen = torch.Generator().manual_seed(1)
for step in range(150):
    batch_x = torch.randn(256, 8, generator=sim_gen) + 0.5
    _, sim_idx, _ = sim(batch_x)
    sim_load = sim.update_bias(sim_idx, 0.005)
    if step % 30 == 0 or step == 149:
        print(f"batch {step:3d}: loads {sim_load.tolist()}, max/mean {sim_load.max().item() / 64:.2f}, "
              f"bias {[round(b, 3) for b in sim.expert_bias.tolist()]}")

# %%
#| grade: test_update_bias_rule test_update_bias_balances_loads_in_simulation

# %% [markdown]
# ### 3.2 The auxiliary losses
#
# **`load_balancing_loss(router_logits, expert_indices)`**: `(..., E)` logits and `(..., k)`
# indices with the same leading shape (raise `ValueError` otherwise). With `probs =
# softmax(router_logits, dim=-1)`, `P_i` is the mean of `probs[..., i]` over the `N` tokens and
# `f_i` is the number of entries of `expert_indices` equal to `i`, divided by `N·k` (the share of
# *assignments*, so that `f` sums to one for any `k`). Return `E · Σ f_i P_i` as a 0-d tensor.
#
# **`router_z_loss(router_logits)`**: the mean over the tokens of `logsumexp(logits, dim=-1)²`.
# `torch.logsumexp` subtracts the row's maximum before exponentiating; `log(sum(exp(·)))` written
# out overflows for logits near 1000.

# %%
#| include: moe.py::load_balancing_loss,router_z_loss

# %%
logits_h = torch.tensor(rows_h)
print(f"balancing loss {load_balancing_loss(logits_h, i_check.new_tensor(choices_h)).item():.4f}  by hand {balance_h:.4f}")
print(f"z-loss         {router_z_loss(logits_h).item():.4f}  by hand {z_h:.4f}")
print("uniform router:", load_balancing_loss(torch.zeros(4, 3), i_check.new_tensor(choices_h)).item(),
      "  collapsed top-1 router:", load_balancing_loss(torch.tensor([[50.0, 0.0, 0.0]] * 4),
                                                       torch.zeros(4, 1, dtype=torch.long)).item())

# %%
#| grade: test_load_balancing_loss_matches_oracle test_load_balancing_loss_uniform_is_one_and_collapse_is_E test_load_balancing_loss_gradient test_load_balancing_loss_rejects_mismatched_shapes test_load_balancing_loss_matches_reference test_router_z_loss_matches_oracle test_router_z_loss_huge_logits

# %% [markdown]
# ### 3.3 `expert_capacity`
#
# `expert_capacity(n_tokens, n_experts, k, capacity_factor)` returns
# `math.ceil(capacity_factor * n_tokens * k / n_experts)` as a Python `int`, and raises
# `ValueError` for a factor ≤ 0 or fewer than one token. (The graders use factors that are exact
# in binary, such as 1.25, so that every order of the arithmetic gives the same integer.)

# %%
#| include: moe.py::expert_capacity

# %%
print("section 2:", expert_capacity(4, 3, 2, 1.0), " 1.25 × (10·2/4) = 6.25 ->", expert_capacity(10, 4, 2, 1.25))

# %%
#| grade: test_expert_capacity

# %% [markdown]
# ### 3.4 `MoELayer`
#
# **`__init__(d_model, n_experts, k, d_hidden, capacity_factor=None, shared_expert=False,
# normalize=True)`** makes `router = TopKRouter(d_model, n_experts, k, normalize)`,
# `experts = nn.ModuleList` of `n_experts` × `SwiGLUExpert(d_model, d_hidden)`, `shared` (one more
# `SwiGLUExpert` when `shared_expert`, else `None`) and stores `capacity_factor` (`None`: no
# limit). A factor ≤ 0 raises `ValueError`.
#
# **`forward(x)`** for `x` of shape `(..., d_model)`:
#
# 1. flatten to `tokens` `(N, C)` and route: `weights, indices, logits = self.router(tokens)`;
# 2. `kept` `(N, k)` bool: all true without a capacity factor. Otherwise lay the assignments out
#    rank-major, `indices.t().reshape(-1)` — all first choices in token order, then all second
#    choices — one-hot them to `(k·N, E)`, and a cumulative sum down the rows counts, for every
#    assignment, how many assignments to the same expert came before it. Those with a slot
#    `< capacity` are kept;
# 3. dispatch: for each expert `e`, `torch.where((indices == e) & kept)` gives the token ids and
#    ranks of its kept assignments; run the expert **once** on `tokens[token_ids]`, multiply by
#    `weights[token_ids, rank]`, and add the rows back into a zero `(N, C)` tensor with `index_add`
#    (experts with no token can be skipped). No Python loop over tokens;
# 4. add `shared(tokens)` when there is a shared expert, reshape to `x`'s shape, and return
#    `MoEOutput(output, logits, indices, kept)`.
#
# Dropped assignments simply contribute nothing — the other weights of the token stay as they are.

# %%
#| include: moe.py::MoELayer

# %% [markdown]
# Section 2's capacity example: the same identity gate, capacity factor 1. Only token t2's second
# assignment should be dropped. Then the balancing loss and z-loss of the layer's own routing.

# %%
layer_h = MoELayer(3, 3, 2, 4, capacity_factor=1.0)
with torch.no_grad():
    layer_h.router.gate.weight.copy_(torch.eye(3))
out_h = layer_h(x_h)
print("kept:", out_h.kept.tolist(), "\nby hand:", kept_h)
print(f"balancing loss {load_balancing_loss(out_h.router_logits, out_h.expert_indices).item():.4f}, "
      f"z-loss {router_z_loss(out_h.router_logits).item():.4f}")
w_t2 = layer_h.router(x_h)[0][2, 0]
print("t2 (its second choice dropped) = its first weight × expert 1 alone:",
      torch.allclose(out_h.output[2], w_t2 * layer_h.experts[1](x_h[2]), atol=1e-6))

# %% [markdown]
# The graders compare the layer with the per-token loop oracle on random shapes, capacities,
# shared experts and both normalisation rules (values and the gradients of the input and every
# parameter); check the rank-major capacity rule on a crafted batch; check that dropped tokens
# get zero output and zero gradient, that `k = E` with equal weights gives the mean of the
# experts, that the bias never changes the output when every expert is chosen, and that each
# expert is called at most once per forward, on exactly its kept tokens.

# %%
#| grade: test_moe_structure_and_errors test_moe_matches_loop_oracle test_moe_capacity_serves_ranks_in_order test_moe_dropped_tokens_get_zero_output_and_gradient test_moe_k_equals_E_with_equal_weights_is_mean_of_experts test_moe_gradients_match_loop_oracle test_moe_dispatch_is_vectorised test_moe_matches_reference test_moe_input_forms test_moe_bias_never_changes_output_when_every_expert_is_chosen test_moe_gradcheck_float64 test_moe_larger_configs_match_loop_oracle_hidden test_bias_trajectory_in_a_layer_matches_oracle_hidden test_aux_losses_on_layer_outputs_hidden

# %% [markdown]
# ## 4. Experiments
#
# ### 4.1 Vectorised vs per-token dispatch
#
# The loop below is the obvious implementation: for each token, call each of its `k` experts on
# that one row. It computes the same output as `MoELayer` without a capacity (the cell checks
# that), so the only difference is how the work is cut up. We time both on the same layer (8
# experts, `k = 2`, `C = 64`, `H = 128`) for a few batch sizes, without autograd, and print the
# median of several runs and their ratio. Timings on a shared CPU vary from run to run; the
# ratio is what this run measured. Every operation here is small, and on a CPU shared with other
# programs several threads per operation mostly wait for each other, which is why the chapter
# has run PyTorch on one thread since section 3.1 (chapter 05 measures the difference).

# %%
import time

import matplotlib.pyplot as plt


def loop_dispatch(layer, x):
    """The same layer, one token and one expert call at a time (no capacity)."""
    weights, indices, _ = layer.router(x)
    out = torch.zeros_like(x)
    for t in range(x.shape[0]):
        for j in range(indices.shape[1]):
            out[t] += weights[t, j] * layer.experts[int(indices[t, j])](x[t:t + 1])[0]
    return out


def median_seconds(fn, repeats):
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]


torch.manual_seed(0)
timed = MoELayer(64, 8, 2, 128)
timing = []
with torch.no_grad():
    for n_tokens in (64, 256, 1024):
        xt = torch.randn(n_tokens, 64)
        diff = (timed(xt).output - loop_dispatch(timed, xt)).abs().max().item()
        fast = median_seconds(lambda: timed(xt), 15)
        slow = median_seconds(lambda: loop_dispatch(timed, xt), 3)
        timing.append((n_tokens, fast, slow))
        print(f"N = {n_tokens:4d}: vectorised {fast * 1e3:7.2f} ms, per-token loop {slow * 1e3:8.2f} ms, "
              f"ratio {slow / fast:5.1f}×   (max |difference| {diff:.1e})")

# %% [markdown]
# Read the ratio column: it is how many times longer the loop took than the vectorised layer
# here, and how it changes with `N`. The loop makes `N·k` expert calls, the vectorised layer at
# most `E = 8`, so a ratio that grows with `N` says the per-call overhead dominates the loop.

# %% [markdown]
# ### 4.2 Routing statistics while training a tiny MoE language model
#
# The model: token and position embeddings, one pre-norm block whose attention is the given
# `llmlab.lib.nn.CausalSelfAttention` and whose feed-forward is a `MoELayer` with 8 experts,
# `k = 2` and capacity factor 1.25, a final LayerNorm and a linear head. It reads the course corpus
# character by character (`llmlab.lib.text.CharCodec`). We train three copies from the same
# initialisation on the same batches:
#
# * **none**: the language-modelling loss alone;
# * **aux loss**: plus `0.01 · load_balancing_loss + 0.001 · router_z_loss`;
# * **bias**: the language-modelling loss alone, and `update_bias(indices, 1e-3)` after every step.
#
# For every step we record the share of the assignments each expert received, the largest load
# divided by the mean load, and the fraction of assignments dropped for lack of capacity; at the
# end, the loss on fixed validation batches.

# %%
from llmlab.lib.corpus import course_corpus, train_val_split
from llmlab.lib.nn import CausalSelfAttention
from llmlab.lib.text import CharCodec

corpus = course_corpus()
train_text, val_text = train_val_split(corpus)
codec = CharCodec.from_text(corpus)
train_ids, val_ids = codec.encode(train_text), codec.encode(val_text)
V = codec.vocab_size
BLOCK, BATCH, WIDTH, N_EXPERTS, TOP_K, HIDDEN, CAPACITY = 32, 16, 64, 8, 2, 64, 1.25
STEPS, LR = 200, 3e-3
print(f"{len(corpus):,} characters, V = {V}")


class TinyMoELM(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok_emb = nn.Embedding(V, WIDTH)
        self.pos_emb = nn.Embedding(BLOCK, WIDTH)
        self.ln1 = nn.LayerNorm(WIDTH)
        self.attn = CausalSelfAttention(WIDTH, 4)
        self.ln2 = nn.LayerNorm(WIDTH)
        self.moe = MoELayer(WIDTH, N_EXPERTS, TOP_K, HIDDEN, capacity_factor=CAPACITY)
        self.ln_f = nn.LayerNorm(WIDTH)
        self.head = nn.Linear(WIDTH, V, bias=False)

    def forward(self, idx):                                        # (B, T) -> (B, T, V), MoEOutput
        x = self.tok_emb(idx) + self.pos_emb(torch.arange(idx.shape[1]))
        x = x + self.attn(self.ln1(x))
        routed = self.moe(self.ln2(x))
        x = x + routed.output
        return self.head(self.ln_f(x)), routed


def windows(data, generator):
    starts = torch.randint(len(data) - BLOCK, (BATCH,), generator=generator)
    offsets = torch.arange(BLOCK)
    return data[starts[:, None] + offsets], data[starts[:, None] + offsets + 1]


val_gen = torch.Generator().manual_seed(123)
val_batches = [windows(val_ids, val_gen) for _ in range(4)]


def train_run(mode):
    torch.manual_seed(0)
    model = TinyMoELM()
    optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
    gen = torch.Generator().manual_seed(1)
    shares, ratios, dropped, losses = [], [], [], []
    for _ in range(STEPS):
        x, y = windows(train_ids, gen)
        logits, routed = model(x)
        loss = F.cross_entropy(logits.reshape(-1, V), y.reshape(-1))
        total = loss
        if mode == "aux loss":
            total = loss + 0.01 * load_balancing_loss(routed.router_logits, routed.expert_indices) \
                + 0.001 * router_z_loss(routed.router_logits)
        optimizer.zero_grad(set_to_none=True)
        total.backward()
        optimizer.step()
        load = torch.bincount(routed.expert_indices.reshape(-1), minlength=N_EXPERTS).double()
        if mode == "bias":
            model.moe.router.update_bias(routed.expert_indices, 1e-3)
        shares.append((load / load.sum()).tolist())
        ratios.append(float(load.max() / load.mean()))
        dropped.append(1 - routed.kept.double().mean().item())
        losses.append(loss.item())
    with torch.no_grad():
        val = sum(F.cross_entropy(model(x)[0].reshape(-1, V), y.reshape(-1)).item() for x, y in val_batches) / 4
    return dict(shares=shares, ratios=ratios, dropped=dropped, losses=losses, val=val, model=model)


runs = {}
for mode in ("none", "aux loss", "bias"):
    started = time.perf_counter()
    runs[mode] = train_run(mode)
    r = runs[mode]
    print(f"{mode:9s} {time.perf_counter() - started:5.1f} s | max/mean load: first step {r['ratios'][0]:.2f}, "
          f"mean of the last 50 steps {sum(r['ratios'][-50:]) / 50:.2f} | dropped: first {r['dropped'][0]:.3f}, "
          f"last 50 {sum(r['dropped'][-50:]) / 50:.4f} | train loss (last 20) {sum(r['losses'][-20:]) / 20:.3f}, "
          f"validation {r['val']:.3f}")

# %%
fig, axes = plt.subplots(1, 4, figsize=(16, 3.6))
for ax, mode in zip(axes[:3], runs):
    shares = torch.tensor(runs[mode]["shares"])                           # (STEPS, E)
    ax.stackplot(range(STEPS), shares.T.numpy(), labels=[f"expert {e}" for e in range(N_EXPERTS)])
    ax.set_title(f"{mode}: share of assignments")
    ax.set_xlabel("step")
    ax.set_ylim(0, 1)
axes[0].set_ylabel("share")
for mode in runs:
    axes[3].plot(runs[mode]["ratios"], label=mode, lw=1)
axes[3].axhline(1.0, color="grey", ls="--", lw=1)
axes[3].set_title("largest load / mean load")
axes[3].set_xlabel("step")
axes[3].legend()
plt.tight_layout()
plt.show()

# %%
best_balance = min(runs, key=lambda m: sum(runs[m]["ratios"][-50:]))
least_dropped = min(runs, key=lambda m: sum(runs[m]["dropped"][-50:]))
best_val = min(runs, key=lambda m: runs[m]["val"])
val_text_summary = ", ".join(f"{m} {runs[m]['val']:.3f}" for m in runs)
print(f"in this run: most even load over the last 50 steps: {best_balance}; fewest drops: {least_dropped}; "
      f"lowest validation loss: {best_val} (validation losses: {val_text_summary})")
final_bias = runs["bias"]["model"].moe.router.expert_bias
print("final expert_bias of the bias run:", [round(b, 4) for b in final_bias.tolist()])

# %% [markdown]
# The printed lines are the evidence: compare, for the three runs, the load ratio at the first
# step (the same for all: same initialisation, same first batch) with its mean over the last 50
# steps, and the drop rate. If the ratio of the unbalanced run grows while the other two stay
# near 1, the rich-get-richer loop of section 1 is at work; the dropped fraction follows the
# imbalance, because an expert above capacity drops everything past `1.25×` its fair share.
# Whether balancing helped or hurt the validation loss in 200 steps at this scale is what the last
# line measured, with differences you can compare against the run-to-run noise of exercise 4; it
# is not a general rule. The bias run's final biases show
# which experts the router had to be pushed towards (positive) or away from (negative).

# %% [markdown]
# ## 5. Summary
#
# * An MoE layer replaces one MLP by `E` experts and a router; each token visits `k` of them and
#   its output is the weighted sum of their outputs. Parameters scale with `E`, compute with `k`.
# * The router: `probs = softmax(W_g x)`; selection by `top-k(probs + bias)` with ties to the lower
#   index (a stable sort; `torch.topk` makes no promise); weights from `probs` alone, renormalised
#   over the chosen experts or not.
# * Load balancing by a loss: `E · Σ f_i P_i` (1 when uniform, `E` when collapsed), plus the
#   z-loss `mean(logsumexp²)` for small logits. Without a loss: a bias that only steers the
#   selection, stepped by `±γ` towards the mean load after each batch.
# * Capacity `ceil(factor · N·k/E)`; assignments are served rank by rank, the rest dropped; a
#   dropped token leaves the layer as zero and the residual carries it.
# * Vectorised dispatch loops over experts, not tokens: gather, one call per expert, `index_add`.
#
# ## 6. Exercises
#
# 1. **By hand.** For the four tokens of section 2 with a capacity factor of 0.75, compute the
#    capacity and the `kept` matrix, then check them with `MoELayer`.
# 2. **When is the balancing loss below 1?** Find three tokens and a top-1 routing of two experts
#    for which `load_balancing_loss` is below 1 (hint: a token that is routed to expert 0 by a
#    hair, and a confident one routed to expert 1). Why does training still push towards balance?
# 3. **Sigmoid router.** DeepSeek-V3 scores experts with `sigmoid(logits)` instead of a softmax,
#    and normalises the chosen scores. Write that variant of `TopKRouter.forward` and rerun 4.2.
# 4. **Capacity factor.** Rerun 4.2 with capacity factors 1.0 and 2.0: how do the drop rates and
#    validation losses printed for the three modes change?
# 5. **Bias step size.** Rerun the bias mode with rates `1e-4` and `1e-2`. Plot the load ratio:
#    which converges faster, and which oscillates?
# 6. **Shared expert.** Add `shared_expert=True` (and halve `HIDDEN` to keep the parameter count
#    comparable). Does the routed load become more or less even in the unbalanced run?
# 7. **Dispatch cost.** Extend 4.1 to `k = 1, 2, 4` and to `E = 4, 16`. Which of `N`, `k`, `E`
#    does the time of each implementation grow with, according to your measurements?
