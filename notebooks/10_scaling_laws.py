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
# # 10 · Scaling laws and compute
#
# How much does a training run cost, and what does a bigger one buy? This chapter counts the
# cost — parameters, floating-point operations (FLOPs), memory — and then measures what it
# buys: we train five tiny models on the same FLOP budget and fit a power law to the lowest
# losses they reach along the way.
#
# | unit | what it does |
# |---|---|
# | `non_embedding_params(config)` | the parameters of a `TinyLlama` outside its two vocabulary matrices |
# | `flops_per_token(config, seq_len, backward)` | matmul FLOPs per token: 6N plus the attention products |
# | `chinchilla_optimal(compute, tokens_per_param)` | the compute-optimal model size and token count for a budget |
# | `fit_power_law(x, y)` | least-squares fit of `y ≈ a·x^(−alpha) + c` |
# | `training_memory_bytes(params, optimizer, precision)` | bytes of weights, gradients and optimizer state |
# | `mfu(tokens_per_s, flops_per_token, peak_flops)` | the fraction of a chip's peak a run achieves |
#
# Everything is counted for the given `llmlab.lib.llama.TinyLlama` (chapter 06's model), and the
# experiment trains it with the given `llmlab.lib.train.train_lm`.

# %% [markdown]
# ## 1. Intuition
#
# **Where the FLOPs go.** A token passing through a weight matrix $W$ of shape $(m, n)$ costs
# $m n$ multiply–adds, 2 FLOPs each: the forward pass costs $2N$ FLOPs per token, where $N$
# counts the weights of every matrix the token meets. The backward pass computes two products
# for each matrix — the gradient with respect to the layer's input (to continue backwards) and
# with respect to the weights — each as costly as the forward one: $4N$. Training costs $6N$
# FLOPs per token; a training run of $D$ tokens costs $C \approx 6 N D$.
#
# Attention adds products that involve no weights: the scores `q·kᵀ` and the weighted sum of the
# values. For one token each costs $2 T d$ (it meets all $T$ keys of its context, $d = H D$
# the width of all heads together), so $4 T d$ per layer forward, $12 T d$ with the backward.
# With $N_{\text{mm}}$ the matmul weights (the head included) and $L$ layers, the FLOPs per token
# are
#
# $$
# F_{\text{forward}} = 2 N_{\text{mm}} + 4 L T d,
# \qquad
# F_{\text{train}} = 3 F_{\text{forward}} = 6 N_{\text{mm}} + 12 L T d .
# $$
#
# With causal masking half the scores are thrown away — but PyTorch's plain ("math") kernel
# computes the full `T×T` matrix and masks it afterwards, so those FLOPs are spent. We count
# the full matrix; a FlashAttention kernel that skips masked blocks spends about half.
#
# **Non-embedding parameters.** The embedding is a table lookup: no multiply–adds. The LM head
# is a real matmul (it costs `2·V·C` per token) but, like the embedding, its size is tied to the
# vocabulary, not to the model's capacity. Kaplan et al. (2020) found that losses line up best
# against `N` *without* these vocabulary matrices; we follow them for `non_embedding_params`,
# while `flops_per_token` counts the head's matmul, because it is work the chip does.
#
# **Compute-optimal models.** With a budget `C`, one can train a big model on few tokens or a
# small one on many. Hoffmann et al. (2022, "Chinchilla") trained hundreds of models and found
# that the best split grows both together, about 20 tokens per parameter. With $r$ tokens per
# parameter, $C = 6ND$ and $D = rN$ give
#
# $$
# N = \sqrt{\frac{C}{6r}}, \qquad D = r N,
# $$
#
# so with $r = 20$: $N = \sqrt{C/120}$.
#
# **Power laws.** Measured losses fall like $L(x) = a\, x^{-\alpha} + c$ in model size, data or
# compute: a straight line on log–log axes, bending towards a floor $c$ (the entropy of the text
# that no model removes). The fit has one nonlinear parameter: for a fixed $\alpha$ the law is a
# straight line in $x^{-\alpha}$, whose best $a$ and $c$ have a closed form. That leaves a
# one-dimensional search over $\alpha$:
#
# $$
# S(\alpha) = \min_{a,\, c} \sum_{i=1}^{n} \bigl( a\, x_i^{-\alpha} + c - y_i \bigr)^2,
# \qquad \hat\alpha = \mathop{\mathrm{arg\,min}}_{\alpha} S(\alpha) .
# $$
#
#
# **Memory.** Training holds, per parameter, the weight, its gradient and the optimizer's state
# (AdamW: two running moments). In mixed precision the weights and gradients are bf16 but a
# float32 master copy and float32 moments are kept: $2 + 2 + 4 + 4 + 4 = 16$ bytes per parameter
# (in general $2 + 2 + 4 + 4s$ for an optimizer with $s$ float32 states per parameter).
#
# **MFU.** Model FLOPs utilisation = achieved model FLOP/s ÷ the hardware's peak:
#
# $$
# \mathrm{MFU} = \frac{\text{tokens per second} \times \text{model FLOPs per token}}{\text{peak FLOP/s}} .
# $$
#
# Because it counts the model's FLOPs (not the work a recomputation adds), it compares runs
# fairly.

# %% [markdown]
# ## 2. Small calculations by hand
#
# **A tiny LLaMA.** `V = 11`, `C = 16`, `H = 4` query heads, `H_kv = 2` kv heads (`D = 4`),
# `L = 2`, context `T = 8`. SwiGLU's hidden size is `int(8·16/3) = 42`, rounded up to 48.
# Per block: q `16·16 = 256`, k and v `16·8 = 128` each, o `256`, gate, up and down `3·16·48 =
# 2304`: 3072 weights; two blocks 6144, plus the head `16·11 = 176`: `N_mm = 6320` matmul weights.
# Forward: `2·6320 + 4·2·8·16 = 12 640 + 1024 = 13 664` FLOPs per token; training: `3 × 13 664 =
# 40 992`. The non-embedding parameters add the norm gains (`2·16` per block and 16 at the end)
# and drop the head: `6144 + 64 + 16 = 6224`.
#
# **Chinchilla's own budget**, `C = 5.76e23`: `N = sqrt(5.76e23/120) = sqrt(4.8e21) ≈ 6.93e10`
# (the paper trained 70B), `D = 20N ≈ 1.39e12` tokens (the paper: 1.4T).
#
# **Memory.** ZeRO's example, 7.5e9 parameters with mixed-precision Adam: `16 × 7.5e9 = 1.2e11`
# bytes, 120 GB — before a single activation.
#
# **MFU.** 16 000 tokens/s of a 1.3e9-parameter model (`6N = 7.8e9` FLOPs per token) on a chip
# with a peak of 312 TFLOP/s: `16 000 · 7.8e9 / 3.12e14 = 0.4`.

# %%
import math

n_mm = 2 * (16 * 16 + 2 * 16 * 8 + 16 * 16 + 3 * 16 * 48) + 16 * 11
forward_h = 2 * n_mm + 4 * 2 * 8 * 16
print(f"N_mm = {n_mm}, forward {forward_h}, training {3 * forward_h} FLOPs per token")
print(f"Chinchilla: N = {math.sqrt(5.76e23 / 120):.3e}, D = {20 * math.sqrt(5.76e23 / 120):.3e}")
print(f"ZeRO: {16 * 7.5e9:.2e} bytes; MFU {16_000 * 7.8e9 / 312e12:.2f}")

# %% [markdown]
# ## 3. Implementation
#
# Everything lives in `scaling_laws.py`. First, the imports and the range of exponents the fit
# searches.

# %%
#| include: scaling_laws.py::header

# %% [markdown]
# ### 3.1 `non_embedding_params`
#
# Count without building the model: per block the four attention projections (k and v are
# narrower with grouped-query attention), SwiGLU's three matrices and two norm gains; then the
# final norm.

# %%
#| include: scaling_laws.py::non_embedding_params

# %%
from llmlab.lib.llama import TinyLlama

cfg_h = LlamaConfig(vocab_size=11, block_size=8, n_layer=2, n_head=4, n_kv_head=2, d_model=16)
real_h = sum(p.numel() for p in TinyLlama(cfg_h).parameters()) - 2 * 11 * 16
print(f"non_embedding_params = {non_embedding_params(cfg_h)}, by hand 6224, a real TinyLlama: {real_h}")

# %%
#| grade: test_non_embedding_params_by_hand test_non_embedding_params_match_real_model test_non_embedding_params_edge_configs

# %% [markdown]
# ### 3.2 `flops_per_token`
#
# The matmul weights `N_mm`, then the attention products over the full score matrix, then the
# factor 3 for a training step.

# %%
#| include: scaling_laws.py::flops_per_token

# %% [markdown]
# The oracle is PyTorch's own FLOP counter, `torch.utils.flop_counter.FlopCounterMode`, which
# intercepts every matrix product of a real forward and backward. One catch: on CPU,
# `F.scaled_dot_product_attention` runs a fused kernel that the counter has no formula for,
# so the attention products read as zero. Under the math kernel they are counted:

# %%
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

torch.manual_seed(0)
model_h = TinyLlama(cfg_h)
idx_h = torch.randint(0, 11, (3, 8))
for name, kernel in (("default (fused) kernel", None), ("math kernel", SDPBackend.MATH)):
    model_h.zero_grad()
    with FlopCounterMode(display=False) as counter:
        if kernel is None:
            model_h(idx_h, idx_h)[1].backward()
        else:
            with sdpa_kernel(kernel):
                model_h(idx_h, idx_h)[1].backward()
    counts = {str(k): v for k, v in counter.get_flop_counts()["Global"].items()}
    print(f"{name:24s} {counter.get_total_flops() / idx_h.numel():>8.0f} FLOPs per token   {counts}")
print(f"flops_per_token         {flops_per_token(cfg_h):>8d}   (without attention: {6 * n_mm})")

# %%
#| grade: test_flops_per_token_by_hand test_flops_per_token_matches_flop_counter test_flops_per_token_forward_only_matches_flop_counter test_flops_per_token_of_the_trained_checkpoint test_flops_per_token_grows_linearly_with_seq_len test_flops_per_token_matches_reference test_flops_per_token_raises test_flops_and_params_larger_configs_hidden

# %% [markdown]
# ### 3.3 `chinchilla_optimal`

# %%
#| include: scaling_laws.py::chinchilla_optimal

# %%
for budget in (5.76e23, 1e21, 1e13):
    n_opt, d_opt = chinchilla_optimal(budget)
    print(f"C = {budget:.2e}: N = {n_opt:.3e} parameters, D = {d_opt:.3e} tokens, 6ND/C = {6 * n_opt * d_opt / budget:.6f}")

# %%
#| grade: test_chinchilla_optimal_hand_values test_chinchilla_optimal_defining_equations test_chinchilla_optimal_raises test_chinchilla_optimal_brute_force_hidden

# %% [markdown]
# ### 3.4 `fit_power_law`
#
# Variable projection: for every `alpha` on a grid, the best `(a, c)` in closed form (a line fit
# of `y` against `exp(−alpha·u)` with `u` the centred `log x`, which keeps the basis near 1 even
# for `x ≈ 1e24`); then a golden-section search between the best grid point's neighbours.

# %%
#| include: scaling_laws.py::fit_power_law

# %% [markdown]
# A known law, sampled at eight sizes with 1 % noise, and the fit:

# %%
x_demo = torch.logspace(3, 8, 8, dtype=torch.float64)
y_demo = (20.0 * x_demo ** -0.3 + 1.2) * (1 + 0.01 * torch.randn(8, generator=torch.Generator().manual_seed(0),
                                                                   dtype=torch.float64))
print("true (a, alpha, c) = (20, 0.3, 1.2); fitted:", tuple(round(v, 4) for v in fit_power_law(x_demo, y_demo)))

# %%
#| grade: test_fit_power_law_recovers_exact_laws test_fit_power_law_recovers_parameters_from_noisy_data test_fit_power_law_is_the_least_squares_optimum test_fit_power_law_equivariances test_fit_power_law_at_the_edges_of_the_alpha_range test_fit_power_law_input_forms test_fit_power_law_matches_reference test_fit_power_law_raises test_fit_power_law_chinchilla_curve_hidden

# %% [markdown]
# ### 3.5 `training_memory_bytes`

# %%
#| include: scaling_laws.py::BYTES_PER_VALUE,OPTIMIZER_STATES,training_memory_bytes

# %%
for opt_name in ("sgd", "momentum", "adamw"):
    print(opt_name.ljust(9), {p: training_memory_bytes(1, opt_name, p) for p in ("fp32", "bf16", "mixed")},
          "bytes per parameter")
print(f"7.5e9 parameters, mixed-precision AdamW: {training_memory_bytes(7_500_000_000, 'adamw', 'mixed'):.3e} bytes")

# %%
#| grade: test_training_memory_worked_cases test_training_memory_matches_real_optimizer_state test_training_memory_raises test_training_memory_mixed_precision_real_hidden

# %% [markdown]
# ### 3.6 `mfu`

# %%
#| include: scaling_laws.py::mfu

# %%
print(f"MFU of the worked example: {mfu(16_000, 7.8e9, 312e12):.2f}")

# %%
#| grade: test_mfu_hand_values_and_ratio test_mfu_raises

# %% [markdown]
# ## 4. Experiment: five tiny models, one FLOP budget
#
# ### 4.1 Set-up
#
# Character-level text from the course corpus, context `T = 32`, batches of 16 windows. Five
# TinyLlamas from about 2K to 60K parameters. Each gets the same training budget `C_budget`
# FLOPs, counted with `flops_per_token`: a model that costs `f` FLOPs per token trains for
# `C_budget / (f · 16 · 32)` steps, so the small models see many more tokens than the large.

# %%
import time

import matplotlib.pyplot as plt

from llmlab.lib.corpus import course_corpus, train_val_split
from llmlab.lib.text import CharCodec
from llmlab.lib.train import evaluate_lm, train_lm

torch.set_num_threads(1)
corpus = course_corpus()
train_text, val_text = train_val_split(corpus)
codec = CharCodec.from_text(corpus)
train_ids, val_ids = codec.encode(train_text), codec.encode(val_text)
val_ids = val_ids[: 32 * 200 + 1]                     # 200 windows: enough for a stable mean
BLOCK, BATCH = 32, 16
SHAPES = [  # (n_layer, n_head, n_kv_head, d_model)
    (1, 2, 1, 8), (1, 2, 1, 16), (1, 4, 2, 24), (2, 4, 2, 32), (2, 4, 2, 48),
]
configs = [LlamaConfig(vocab_size=codec.vocab_size, block_size=BLOCK, n_layer=L, n_head=H, n_kv_head=K, d_model=C)
           for L, H, K, C in SHAPES]
fpt = [flops_per_token(c) for c in configs]
C_BUDGET = 30 * fpt[-1] * BATCH * BLOCK                 # the largest model gets 30 steps
steps = [max(1, round(C_BUDGET / (f * BATCH * BLOCK))) for f in fpt]
print(f"V = {codec.vocab_size}, {len(train_ids):,} training characters; budget {C_BUDGET:.3e} FLOPs per model")
print(f"{'layers':>6} {'d_model':>7} {'params':>8} {'non-emb':>8} {'FLOPs/token':>12} {'steps':>6} {'tokens':>9}")
for c, f, s in zip(configs, fpt, steps):
    total = sum(p.numel() for p in TinyLlama(c).parameters())
    print(f"{c.n_layer:>6} {c.d_model:>7} {total:>8,} {non_embedding_params(c):>8,} {f:>12,} {s:>6} {s * BATCH * BLOCK:>9,}")

# %% [markdown]
# ### 4.2 Training
#
# `train_lm` (AdamW, 10 % warmup, cosine to a tenth of the peak rate, clipping at 1) with a
# learning rate of 1e-2 for every model, and the same seeds; then the validation loss. The
# wall-clock time of each run gives its throughput and, against the measured speed of one large
# float32 matmul on this CPU (our stand-in for the peak), its MFU.

# %%
def matmul_flops_per_s(n=512, reps=5):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(reps):
        a @ b
    return 2 * n ** 3 * reps / (time.perf_counter() - t0)


peak = matmul_flops_per_s()
print(f"measured float32 matmul speed (1 thread): {peak / 1e9:.1f} GFLOP/s")

started = time.perf_counter()
runs = []
for c, f, s in zip(configs, fpt, steps):
    torch.manual_seed(0)
    model = TinyLlama(c)
    t0 = time.perf_counter()
    losses = train_lm(model, train_ids, s, batch_size=BATCH, block_size=BLOCK, lr=1e-2, warmup=max(1, s // 10),
                      generator=torch.Generator().manual_seed(1))
    seconds = time.perf_counter() - t0
    runs.append(dict(config=c, fpt=f, steps=s, losses=losses, seconds=seconds,
                     val=evaluate_lm(model, val_ids, BLOCK), params=non_embedding_params(c)))
print(f"5 runs in {time.perf_counter() - started:.1f} s")
print(f"{'non-emb':>8} {'steps':>6} {'val loss':>9} {'tokens/s':>9} {'MFU':>6}")
for r in runs:
    tps = r["steps"] * BATCH * BLOCK / r["seconds"]
    r["mfu"] = mfu(tps, r["fpt"], peak)
    print(f"{r['params']:>8,} {r['steps']:>6} {r['val']:>9.4f} {tps:>9.0f} {r['mfu']:>6.3f}")
best = min(runs, key=lambda r: r["val"])
print(f"lowest validation loss at this budget: {best['val']:.4f}, the model with {best['params']:,} "
      f"non-embedding parameters ({runs.index(best) + 1} of 5 by size)")

# %% [markdown]
# The MFU column compares each run's model FLOP/s with the matmul speed measured above. A run
# far below 1 spends its time outside large matmuls — Python, small kernels, the optimizer —
# which is the usual state of very small models; compare the column across the five sizes.
#
# ### 4.3 A law in compute
#
# Each run's training loss after `k` steps is a loss reached with `k · f · 16 · 32` FLOPs. On a
# log-spaced grid of compute values (the last 1.5 decades, after the first warmup steps) we take,
# for each value, the lowest smoothed training loss that any run had reached by then — the
# *compute frontier* — and fit $L(C) = a\, C^{-\alpha} + c$. The rms residual printed with the fit
# says how well one power law describes these frontier points.
# (Intermediate points of a cosine run are not what a run tuned to that smaller budget would
# reach, so this frontier is an upper bound of the one Kaplan et al. measure.)

# %%
def smoothed(losses, width=10):
    out, acc = [], 0.0
    for i, v in enumerate(losses):
        acc += v
        if i >= width:
            acc -= losses[i - width]
        out.append(acc / min(i + 1, width))
    return out


curves = []
for r in runs:
    spent = [(k + 1) * r["fpt"] * BATCH * BLOCK for k in range(r["steps"])]
    curves.append((spent, smoothed(r["losses"])))
grid = torch.logspace(math.log10(C_BUDGET) - 1.5, math.log10(C_BUDGET), 12, dtype=torch.float64).tolist()
frontier = []
for budget in grid:
    reached = [min(l for s, l in zip(spent, loss) if s <= budget) for spent, loss in curves if spent[0] <= budget]
    frontier.append(min(reached))
a_c, alpha_c, c_c = fit_power_law(grid, frontier)
pred = [a_c * g ** -alpha_c + c_c for g in grid]
rms = math.sqrt(sum((p - v) ** 2 for p, v in zip(pred, frontier)) / len(grid))
print(f"frontier fit: L(C) = {a_c:.4g} · C^(−{alpha_c:.4f}) + {c_c:.4f}; rms residual {rms:.4f} nats "
      f"over frontier losses from {max(frontier):.3f} to {min(frontier):.3f}")

# %% [markdown]
# ### 4.4 The fixed-budget curve
#
# At the fixed budget, the final validation losses against the non-embedding parameters: an
# *IsoFLOP* curve (Hoffmann et al.'s second method). Too small a model cannot fit the text;
# too large a one sees too few tokens for its budget. The cell prints whether the measured
# losses fall monotonically with `N` here, where the minimum lies, and what Chinchilla's rule
# of 20 tokens per parameter would pick for this budget.

# %%
xs = [r["params"] for r in runs]
vals = [r["val"] for r in runs]
decreasing = all(b < a for a, b in zip(vals, vals[1:]))
print(f"validation losses {[round(v, 4) for v in vals]}: "
      f"{'decreasing' if decreasing else 'not monotone'} in N at this budget")
n_chin, d_chin = chinchilla_optimal(C_BUDGET)
print(f"Chinchilla's rule for this budget: N = {n_chin:,.0f}, D = {d_chin:,.0f} tokens; the lowest measured "
      f"loss came from N = {best['params']:,} trained on {best['steps'] * BATCH * BLOCK:,} tokens "
      f"({best['steps'] * BATCH * BLOCK / best['params']:.0f} tokens per non-embedding parameter)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
for r, (spent, loss) in zip(runs, curves):
    axes[0].plot(spent, loss, label=f"N = {r['params']:,}", alpha=0.8)
axes[0].plot(grid, frontier, "ko", label="frontier")
axes[0].plot(grid, pred, "k--", label=f"fit: α = {alpha_c:.3f}, c = {c_c:.2f}")
axes[0].set(xscale="log", xlabel="training FLOPs", ylabel="training loss (smoothed)", title="loss against compute")
axes[0].legend(fontsize=8)
axes[1].plot(xs, vals, "o-", label="validation loss")
axes[1].axvline(n_chin, color="grey", ls="--", label="Chinchilla's rule")
axes[1].set(xscale="log", xlabel="non-embedding parameters", ylabel="validation loss",
            title=f"fixed budget {C_BUDGET:.2e} FLOPs")
axes[1].legend()
plt.tight_layout()
plt.show()

# %% [markdown]
# ### 4.5 Memory of these runs
#
# The bytes of model state for the largest model, from `training_memory_bytes` and from the
# tensors of a real AdamW after one step.

# %%
big = TinyLlama(configs[-1])
opt = torch.optim.AdamW(big.parameters(), lr=1e-3)
xb, yb = train_ids[:BLOCK].view(1, -1), train_ids[1:BLOCK + 1].view(1, -1)
big(xb, yb)[1].backward()
opt.step()
held = sum(p.numel() * p.element_size() * 2 for p in big.parameters())
held += sum(v.numel() * v.element_size() for p in big.parameters() for v in opt.state[p].values() if v.numel() == p.numel())
n_big = sum(p.numel() for p in big.parameters())
print(f"{n_big:,} parameters: formula {training_memory_bytes(n_big):,} bytes, measured {held:,} bytes")

# %% [markdown]
# ## 5. Summary
#
# * Training costs `6N` FLOPs per token for the `N` weights of the matrices a token meets, plus
#   `12·L·T·d` for the attention products (full score matrix); a forward alone costs a third.
#   PyTorch's flop counter agrees exactly — once attention runs on the math kernel.
# * Kaplan's `N` leaves out the vocabulary matrices; the LM head's matmul still costs FLOPs.
# * Chinchilla's rule: `N = sqrt(C/120)`, `D = 20N`.
# * A power law `a·x^(−alpha) + c` is fitted by projecting out the linear `(a, c)` and searching
#   one exponent; the fit is checked by recovering known laws from noisy data.
# * Mixed-precision AdamW holds 16 bytes per parameter before any activation.
# * The experiment's printed numbers give this chapter's measured frontier exponent and the
#   shape of one fixed-budget curve; at five tiny models and one budget they describe these
#   runs, not a general law.
#
# ## 6. Exercises
#
# 1. **By hand.** Count the training FLOPs per token of LLaMA-7B (`C = 4096`, `L = 32`, `F =
#    11008`, `V = 32000`) at `T = 2048`. What fraction is attention? Check with `flops_per_token`.
# 2. **IsoFLOP curves.** Repeat 4.2 at two more budgets (a third and three times `C_BUDGET`).
#    Does the size with the lowest loss grow with the budget? Fit `N_opt ∝ C^a` to the three
#    minima.
# 3. **Causal FLOPs.** Write `flops_per_token_causal` that counts only the unmasked scores.
#    How much does it change the total for the models of 4.1, and for LLaMA-7B at `T = 2048`?
# 4. **Fit stability.** Refit 4.3 leaving out one grid point at a time. How much does `alpha`
#    move? What does that say about exponents fitted to a handful of points?
# 5. **Memory.** Add activation memory for one layer of TinyLlama (the tensors saved for the
#    backward) to `training_memory_bytes` and measure it with `torch.cuda`-free tools
#    (`torch.autograd.graph.saved_tensors_hooks`).
