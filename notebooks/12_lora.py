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
# # 12 · LoRA: low-rank adapters, NF4 and model merging
#
# Fine-tuning every weight of a large model needs the memory for every weight, its gradient and
# two optimizer moments, and a full copy of the model per task. LoRA (Hu et al. 2021) keeps the
# pretrained weights frozen and learns a small low-rank *update* for some of the linear layers.
# QLoRA (Dettmers et al. 2023) goes one step further and stores the frozen weights in 4 bits.
# This chapter builds both, and the two simplest ways of merging fine-tuned models.
#
# | unit | what it does |
# |---|---|
# | `LoRALinear(base, r, alpha, dropout)` | a frozen `nn.Linear` plus `(α/r) · B A x`, `A` random, `B` zero |
# | `LoRALinear.delta_weight()` | the update as one matrix, `(α/r) · B A` |
# | `apply_lora(model, targets, r, alpha)` | wrap the named linear layers, freeze everything else |
# | `trainable_fraction(model)` | the share of parameters that train |
# | `merge_lora` / `unmerge_lora` | fold the update into the base weight and back |
# | `lora_state_dict` / `load_lora_state_dict` | save and load the adapters alone |
# | `nf4_quantize` / `nf4_dequantize` | block-wise absmax quantisation to QLoRA's NF4 code book |
# | `task_vector_merge` / `slerp` | merge whole fine-tuned models |
#
# At the end we adapt the course's tiny pretrained LLaMA (chapter 06) to a new procedural task,
# compare ranks with full fine-tuning, and account for parameters and memory.

# %% [markdown]
# ## 1. Intuition
#
# **A low-rank update.** A linear layer computes $y = W x$ with $W$ of shape `(out, in)`.
# Fine-tuning changes $W$ to $W + \Delta W$. LoRA's bet is that the change a new task needs has
# low rank, so it writes $\Delta W = \frac{\alpha}{r} B A$ with $A$ of shape `(r, in)`, $B$ of
# shape `(out, r)` and a small rank $r$. The layer becomes
#
# $$
# y = W x + \frac{\alpha}{r} \, B (A x),
# \qquad A \in \mathbb{R}^{r \times d_{\text{in}}}, \quad B \in \mathbb{R}^{d_{\text{out}} \times r},
# $$
#
# with $W$ frozen and $A$ and $B$ trained, and trains $r (d_{\text{in}} + d_{\text{out}})$ numbers
# instead of $d_{\text{in}} d_{\text{out}}$.
#
# **Start exactly at the pretrained model.** $B$ starts at zero and $A$ random. Then $B A = 0$
# and the adapted model computes exactly what the pretrained one did. The gradients at that
# point (for one input $x$) are
#
# $$
# \frac{\partial L}{\partial A} = \frac{\alpha}{r} \, B^\top \frac{\partial L}{\partial y} \, x^\top = 0,
# \qquad
# \frac{\partial L}{\partial B} = \frac{\alpha}{r} \, \frac{\partial L}{\partial y} \, (A x)^\top \ne 0,
# $$
#
# the first because $B = 0$, the second because $A$ is random. So $B$ learns first, and $A$ follows
# once $B$ is no longer zero. Swap the two ($A$ zero, $B$ random) and the output still starts
# right, but the roles flip: $\partial L / \partial B$ contains $A x = 0$, and $\partial L / \partial A$
# contains $B^\top \ne 0$, so the
# random matrix is the one that does not move at first. That is not the scheme LoRA defines,
# and the graders name it as a mistake.
#
# **The $\alpha/r$ scale.** The update is multiplied by $\alpha/r$. The LoRA paper fixes $\alpha$ and
# varies $r$, and reports that this scale spares re-tuning the learning rate for every rank; the
# graders check the scale $\alpha/r$ exactly, because $r/\alpha$ is a common slip.
#
# **Merging.** After training, $W' = W + \frac{\alpha}{r} B A$ is one ordinary matrix: the merged layer
# costs nothing extra at inference. The update can be subtracted again to get the base back.
#
# **4-bit base weights (QLoRA).** The frozen `W` is only read. QLoRA stores it in blocks of 64
# numbers: one float `absmax` per block and, per number, the 4-bit index of the nearest of 16
# fixed values (NF4) to `w / absmax`. NF4's 16 values are quantiles of a normal distribution
# scaled to `[−1, 1]`, because pretrained weights look roughly normal. With the code values
# $q_0 < \dots < q_{15}$ and a block $w_1, \dots, w_{64}$:
#
# $$
# m = \max_i |w_i|, \qquad
# c_i = \mathop{\mathrm{arg\,min}}_{j \in \{0, \dots, 15\}} \left| \frac{w_i}{m} - q_j \right|, \qquad
# \hat w_i = m \, q_{c_i}
# $$
#
# (for $m > 0$; an all-zero block is stored as the value 0).
#
# **Merging models.** A fine-tuned model minus its base is a *task vector*
# $\tau = \theta - \theta_{\text{base}}$; adding weighted task vectors to the base combines tasks
# (task arithmetic, Ilharco et al. 2023). Spherical interpolation (`slerp`) between two weight tensors follows the arc
# between them instead of the straight chord.

# %% [markdown]
# ## 2. Small calculations by hand
#
# ### 2.1 A rank-1 update, merged and unmerged
#
# Take `W = [[1, 0], [0, 1]]` (no bias), `r = 1`, `α = 2` (scale `α/r = 2`), `A = [[1, 2]]`,
# `B = [[1], [0]]` and `x = [1, 1]`. Then `W x = [1, 1]`, `A x = 1 + 2 = 3`, `B (A x) = [3, 0]`,
# times 2 gives `[6, 0]`, so `y = [7, 1]`. Merged: `2 · B A = [[2, 4], [0, 0]]`, so
# `W' = [[3, 4], [0, 1]]` and `W' x = [7, 1]` — the same.
#
# ### 2.2 Counting parameters
#
# A `64 → 64` layer has 4096 weights. A rank-4 adapter on it has `4 · (64 + 64) = 512`, that is
# 12.5 %. The tiny LLaMA's key and value projections map 64 to 32 (two kv heads of 16): an
# adapter there has `4 · (64 + 32) = 384` for 2048 weights.
#
# ### 2.3 One NF4 block
#
# The block `[0.5, −2.0, 0.1, 1.2]` has `absmax = 2`, so the normalised values are
# `[0.25, −1, 0.05, 0.6]`. The nearest NF4 values: `0.25 → 0.2461` (index 10), `−1 → −1` (index 0),
# `0.05 → 0.0796` (index 8; distance 0.0296, against 0.05 to the value 0 at index 7),
# `0.6 → 0.5626` (index 13). Multiplying back by 2 gives `[0.4922, −2, 0.1592, 1.1252]`, with
# errors `0.0078, 0, 0.0592, 0.0748`. The largest gap between neighbouring NF4 values is
# between `−1` and `−0.6962`, `0.3038`, so no element can be off by more than half of it times
# the absmax: `0.1519 · 2 = 0.3038` here. The largest element of a block maps to ±1 and comes
# back exactly.
#
# Storage: 4 bits per number plus one float32 absmax per 64 numbers is `4 + 32/64 = 4.5` bits
# per weight, against 32 bits in float32: about 7.1 times less.
#
# ### 2.4 Slerp of two orthogonal unit vectors
#
# For `a = [1, 0]`, `b = [0, 1]` the angle is `θ = π/2`, `sin θ = 1`, and at `t = 0.5` slerp gives
# `sin(π/4) a + sin(π/4) b = [0.7071, 0.7071]`, of norm 1; the straight line gives `[0.5, 0.5]`,
# of norm 0.7071.

# %%
import math

W_h, A_h, B_h, x_h, s_h = [[1, 0], [0, 1]], [1, 2], [1, 0], [1, 1], 2 / 1
Ax_h = sum(a * x for a, x in zip(A_h, x_h))
y_h = [sum(w * x for w, x in zip(row, x_h)) + s_h * b * Ax_h for row, b in zip(W_h, B_h)]
W_merged_h = [[w + s_h * b * a for w, a in zip(row, A_h)] for row, b in zip(W_h, B_h)]
print("y =", y_h, " merged W' =", W_merged_h, " W' x =", [sum(w * x for w, x in zip(r, x_h)) for r in W_merged_h])
print("rank-4 adapter on 64→64:", 4 * (64 + 64), "of", 64 * 64, f"= {4 * 128 / 4096:.1%}")

NF4_BY_HAND = [-1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453, -0.28444138169288635,
               -0.18477343022823334, -0.09105003625154495, 0.0, 0.07958029955625534, 0.16093020141124725,
               0.24611230194568634, 0.33791524171829224, 0.44070982933044434, 0.5626170039176941,
               0.7229568362236023, 1.0]
block_h = [0.5, -2.0, 0.1, 1.2]
absmax_h = max(abs(v) for v in block_h)
codes_h = [min(range(16), key=lambda i: abs(v / absmax_h - NF4_BY_HAND[i])) for v in block_h]
back_h = [NF4_BY_HAND[c] * absmax_h for c in codes_h]
half_gap_h = max(b - a for a, b in zip(NF4_BY_HAND, NF4_BY_HAND[1:])) / 2
print("codes", codes_h, "back", [round(v, 4) for v in back_h], "errors", [round(abs(a - b), 4) for a, b in zip(block_h, back_h)])
print(f"half the largest gap {half_gap_h:.4f}, bound here {half_gap_h * absmax_h:.4f}; bits per weight {4 + 32 / 64}")
print("slerp([1,0],[0,1],0.5) =", [round(math.sin(math.pi / 4), 4)] * 2)

# %% [markdown]
# ## 3. Implementation
#
# Everything lives in `lora.py`. It starts with the NF4 code book, copied with its source from
# bitsandbytes (the library QLoRA's authors wrote): the one table in this chapter you do not
# derive.

# %%
#| include: lora.py::header

# %% [markdown]
# ### 3.1 `LoRALinear`
#
# `LoRALinear(base, r, alpha, dropout=0.0)` keeps `base` itself (not a copy) as `self.base` and
# freezes it (`requires_grad_(False)` on its weight and bias). It stores `r`, `alpha`,
# `scaling = alpha / r`, `merged = False`, `dropout = nn.Dropout(dropout)`, and two new
# parameters in `base.weight`'s dtype and device:
#
# * `lora_A` `(r, in)`, uniform on `[−1/√in, 1/√in]` from the global RNG (what `nn.Linear` itself
#   does, and PEFT's `kaiming_uniform_(a=√5)`);
# * `lora_B` `(out, r)`, zeros.
#
# Raise `TypeError` when `base` is not an `nn.Linear`, `ValueError` for a rank that is not a
# positive `int` (booleans are `int`s in Python: reject them), an `alpha` that is not a positive
# number, or a dropout outside `[0, 1)`.
#
# `forward(x)` for `x` of shape `(..., in)`: `base(x) + scaling · (dropout(x) @ Aᵀ) @ Bᵀ`, the
# dropout on the adapter's input only; when merged, just `base(x)`. `delta_weight()` returns
# `scaling · B @ A`, `(out, in)`.

# %%
#| include: lora.py::LoRALinear

# %% [markdown]
# Section 2.1 again, and the gradients at initialisation from section 1.

# %%
import torch
from torch import nn

hand = LoRALinear(nn.Linear(2, 2, bias=False), 1, 2.0)
with torch.no_grad():
    hand.base.weight.copy_(torch.tensor(W_h, dtype=torch.float32))
    hand.lora_A.copy_(torch.tensor([A_h], dtype=torch.float32))
    hand.lora_B.copy_(torch.tensor([B_h], dtype=torch.float32).T)
print("y =", hand(torch.tensor([1.0, 1.0])).tolist(), " delta_weight =", hand.delta_weight().tolist())

torch.manual_seed(0)
fresh = LoRALinear(nn.Linear(8, 6), 2, 4.0)
x0 = torch.randn(5, 8)
print("output equals base at init:", torch.equal(fresh(x0), fresh.base(x0)))
fresh(x0).pow(2).sum().backward()
print(f"|grad A| = {fresh.lora_A.grad.abs().max():.3g}, |grad B| = {fresh.lora_B.grad.abs().max():.3g}, "
      f"base weight grad: {fresh.base.weight.grad}")

# %%
#| grade: test_lora_linear_attributes test_lora_a_is_uniform_and_b_zero test_lora_linear_rejects_bad_arguments test_output_equals_base_at_init test_grad_a_zero_and_grad_b_nonzero_at_init test_forward_matches_oracle test_gradients_match_oracle test_forward_matches_reference test_dropout_only_on_adapter_input test_delta_weight

# %% [markdown]
# ### 3.2 `apply_lora` and `trainable_fraction`
#
# `apply_lora(model, targets, r, alpha, dropout=0.0)` replaces, in its parent module, every
# `nn.Linear` whose own name (the last part of its qualified name) is in `targets` by a
# `LoRALinear` around it, then freezes every parameter that is not an adapter's `lora_A` or
# `lora_B`. Forgetting that last step is the classic mistake: the embeddings, norms and head
# would silently train with the adapters. Collect the matches first and replace them after (do
# not change a module while iterating over it); raise `TypeError` for a plain string of
# targets and `ValueError` when nothing matches.
#
# `trainable_fraction(model)` is the number of elements of the trainable parameters over that of
# all parameters, with `model.parameters()` (which lists a tied weight once).

# %%
#| include: lora.py::apply_lora,trainable_fraction

# %%
from llmlab.lib.llama import LlamaConfig, TinyLlama

torch.manual_seed(0)
small = TinyLlama(LlamaConfig(vocab_size=11, block_size=8, n_layer=2, n_head=2, n_kv_head=1, d_model=16))
print("before:", trainable_fraction(small))
apply_lora(small, ("q_proj", "v_proj"), r=4, alpha=8)
print("after: ", f"{trainable_fraction(small):.4f}")
print([n for n, p in small.named_parameters() if p.requires_grad])

# %%
#| grade: test_apply_lora_wraps_targets test_apply_lora_freezes_everything_else test_apply_lora_output_unchanged_at_init test_apply_lora_errors test_trainable_fraction

# %% [markdown]
# ### 3.3 `merge_lora` and `unmerge_lora`
#
# Under `torch.no_grad()`, for every `LoRALinear` in `model.modules()`: merging adds
# `delta_weight()` to `base.weight` and sets `merged = True`, skipping layers already merged
# (merging twice would add the update twice); unmerging subtracts it from merged layers. The
# forward pass then uses `base` alone for merged layers.

# %%
#| include: lora.py::merge_lora,unmerge_lora

# %%
layer = LoRALinear(nn.Linear(6, 5), 2, 8.0)
with torch.no_grad():
    layer.lora_B.normal_()
x1 = torch.randn(3, 6)
y_unmerged = layer(x1)
merge_lora(layer)
print("max |merged − unmerged|:", (layer(x1) - y_unmerged).abs().max().item())
unmerge_lora(layer)
print("max |unmerged again − unmerged|:", (layer(x1) - y_unmerged).abs().max().item())

# %%
#| grade: test_merge_equals_unmerged test_unmerge_restores test_merge_unmerge_many_shapes_hidden test_adapters_learn_and_base_stays_hidden

# %% [markdown]
# ### 3.4 Saving adapters: `lora_state_dict`, `load_lora_state_dict`
#
# The adapters are all that a fine-tuning run changes, so they are all that needs saving:
# `lora_state_dict(model)` returns the `lora_A` / `lora_B` entries of `model.state_dict()`, under
# the same names and in the same order, as detached copies. `load_lora_state_dict(model, state)`
# checks that the keys are exactly the model's adapter names (`KeyError` otherwise) and the
# shapes match (`ValueError`), *before* copying anything, then copies in place.

# %%
#| include: lora.py::lora_state_dict,load_lora_state_dict

# %%
saved = lora_state_dict(small)
print({k: tuple(v.shape) for k, v in saved.items()})

# %%
#| grade: test_lora_state_dict_keys_and_copies test_lora_state_dict_round_trip test_load_lora_state_dict_errors

# %% [markdown]
# ### 3.5 NF4: `nf4_quantize`, `nf4_dequantize`
#
# `nf4_quantize(w, block_size=64)` cuts `w.flatten()` into blocks of `block_size` consecutive
# numbers, takes each block's `absmax`, and stores for each number the index (`uint8`, 0…15) of
# the NF4 value nearest to `w / absmax`; an exact tie goes to the lower index (what `argmin`
# returns) and an all-zero block gets index 7 (the value 0). `nf4_dequantize(codes, absmax,
# block_size)` looks the values up and multiplies by each block's absmax. (Real QLoRA packs
# two 4-bit codes per byte; here each code has its own byte to keep the code simple.)

# %%
#| include: lora.py::nf4_quantize,nf4_dequantize

# %%
codes_c, absmax_c = nf4_quantize(torch.tensor(block_h), 4)
print("codes", codes_c.tolist(), "absmax", absmax_c.tolist(), "back", nf4_dequantize(codes_c, absmax_c, 4).tolist())
wq = torch.randn(64, 64) * 0.02
err_q = (nf4_dequantize(*nf4_quantize(wq), 64) - wq).abs().reshape(-1, 64) / wq.reshape(-1, 64).abs().amax(1, keepdim=True)
print(f"N(0, 0.02²) matrix: max error / absmax {err_q.max():.4f} (bound {half_gap_h:.4f}), mean {err_q.mean():.4f}")

# %%
#| grade: test_nf4_code_book_is_qloras test_nf4_quantize_picks_nearest_code test_nf4_ties_and_zero_blocks test_nf4_error_bound_and_round_trip test_nf4_matches_reference test_nf4_errors test_nf4_weight_matrix_hidden

# %% [markdown]
# ### 3.6 Merging models: `task_vector_merge`, `slerp`
#
# `task_vector_merge(base, finetuned, weights)` returns `base[k] + Σᵢ wᵢ (θᵢ[k] − base[k])`,
#
# $$
# \theta_{\text{merged}} = \theta_{\text{base}} + \sum_{i} w_i \, (\theta_i - \theta_{\text{base}}),
# $$
#
# for every floating-point entry, copies integer entries from `base`, and raises `ValueError` for
# empty input, a wrong number of weights, or mismatched keys.
#
# `slerp(a, b, t)` computes the angle $\theta$ between the two tensors (flattened) and returns
#
# $$
# \operatorname{slerp}(a, b; t) = \frac{\sin\bigl((1 - t)\,\theta\bigr)}{\sin \theta} \, a + \frac{\sin(t\,\theta)}{\sin \theta} \, b,
# \qquad
# \cos \theta = \frac{\langle a, b \rangle}{\lVert a \rVert \, \lVert b \rVert}
# $$
#
# (the cosine clamped to $[-1, 1]$), falling back to $(1 - t)\, a + t\, b$ when
# $|\cos \theta| > 0.9995$, where $\sin \theta$ is too close to 0 to divide by.

# %%
#| include: lora.py::task_vector_merge,slerp

# %%
mid = slerp(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]), 0.5)
print("slerp:", mid.tolist(), "norm", mid.norm().item())

# %%
#| grade: test_task_vector_merge test_task_vector_merge_errors test_slerp_values_and_geometry test_slerp_parallel_falls_back_to_lerp test_slerp_gradcheck_and_errors test_slerp_matches_reference

# %% [markdown]
# ## 4. Experiment: teaching the tiny LLaMA a new task
#
# ### 4.1 The task and the pretrained model
#
# The tiny LLaMA of chapter 06 (`load_tiny_llama()`) has learned the course corpus: English
# stories. The new task is procedural: lines such as `A count from 7 is 7 8 9 0.` — a random
# start digit, then that digit and the next three, counting modulo 10. The first answer digit
# is a copy of the start (the model has to look back), the other three follow from the digit
# just before them. We measure the validation loss on task text and the *answer accuracy*: for
# each validation line, whether the model's argmax predicts each of the four answer digits
# correctly when it reads the true line up to it (guessing a digit at random is right 10 % of
# the time). We also keep an eye on the validation loss on the course corpus, to see how much
# of the old skill each method keeps.

# %%
import random
import time

import matplotlib.pyplot as plt

from llmlab.lib.corpus import course_corpus, train_val_split
from llmlab.lib.llama import load_tiny_llama
from llmlab.lib.train import evaluate_lm, train_lm

torch.set_num_threads(1)
pretrained, codec, info = load_tiny_llama()
print("tiny LLaMA:", info["config"], " its recorded validation loss:", info["val_loss"])


def task_lines(n: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    lines = []
    for _ in range(n):
        d = rng.randrange(10)
        lines.append(f"A count from {d} is " + " ".join(str((d + i) % 10) for i in range(4)) + ".\n")
    return lines


train_task = codec.encode("".join(task_lines(2000, seed=1)))
val_lines = task_lines(300, seed=2)
val_task = codec.encode("".join(val_lines))
val_rows = torch.stack([codec.encode(line) for line in val_lines])          # (300, 27), one line each
answer_pos = torch.tensor([18, 20, 22, 24])                                   # the four answer digits
assert all(line[18:25:2].isdigit() and line[17] == " " for line in val_lines)
_, corpus_val_text = train_val_split(course_corpus())
corpus_val = codec.encode(corpus_val_text)
print(val_lines[0], val_lines[1], sep="")


@torch.no_grad()
def answer_accuracy(model) -> list[float]:
    """Per answer digit, the share of validation lines where the argmax is right."""
    model.eval()
    logits = model(val_rows[:, :-1])[0]                                       # (N, 26, V)
    pred = logits[:, answer_pos - 1].argmax(-1)                               # (N, 4) predicted digits
    return (pred == val_rows[:, answer_pos]).float().mean(0).tolist()


def measure(model) -> dict:
    per_digit = answer_accuracy(model)
    return {"task_loss": evaluate_lm(model, val_task, 63), "accuracy": sum(per_digit) / 4, "per_digit": per_digit,
            "corpus_loss": evaluate_lm(model, corpus_val, 64)}


base_numbers = measure(pretrained)
print(f"pretrained: task loss {base_numbers['task_loss']:.3f}, answer accuracy {base_numbers['accuracy']:.1%}, "
      f"corpus loss {base_numbers['corpus_loss']:.4f}")

# %% [markdown]
# ### 4.2 A rank sweep against full fine-tuning
#
# Every run starts from a fresh copy of the pretrained model and trains for the same number of
# steps with the given `train_lm` (AdamW, warmup and cosine schedule, windows of 63 characters,
# batch 16). LoRA runs put adapters on all four attention projections and the three MLP
# layers, with `α = 16` for every rank and learning rate 1e-2; full fine-tuning trains every
# weight at 3e-3 (the learning rate the checkpoint was trained with). Neither was tuned beyond
# that; exercise 2 asks you to.

# %%
import copy

STEPS, TARGETS = 60, ("q_proj", "k_proj", "v_proj", "o_proj", "gate", "up", "down")
results, curves = {}, {}
for name, rank in (("LoRA r=1", 1), ("LoRA r=4", 4), ("LoRA r=16", 16), ("full fine-tuning", None)):
    model = copy.deepcopy(pretrained)
    torch.manual_seed(0)
    if rank is not None:
        apply_lora(model, TARGETS, r=rank, alpha=16)
    lr = 1e-2 if rank is not None else 3e-3
    started = time.perf_counter()
    curves[name] = train_lm(model, train_task, STEPS, batch_size=16, block_size=63, lr=lr, warmup=5,
                            weight_decay=0.0, generator=torch.Generator().manual_seed(0))
    seconds = time.perf_counter() - started
    results[name] = {**measure(model), "trainable": sum(p.numel() for p in model.parameters() if p.requires_grad),
                     "fraction": trainable_fraction(model), "seconds": seconds, "model": model}
    r = results[name]
    print(f"{name:17s} trainable {r['trainable']:6d} ({r['fraction']:6.2%})  task loss {r['task_loss']:.3f}  "
          f"answer accuracy {r['accuracy']:.1%} (per digit {[round(a, 2) for a in r['per_digit']]})  "
          f"corpus loss {r['corpus_loss']:.3f}  ({seconds:.1f} s)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name, losses in curves.items():
    axes[0].plot(losses, label=name)
axes[0].set_xlabel("step")
axes[0].set_ylabel("training loss on task windows")
axes[0].legend()
names = list(results)
axes[1].bar(names, [results[n]["accuracy"] for n in names])
axes[1].axhline(base_numbers["accuracy"], color="grey", ls="--", label="pretrained")
axes[1].axhline(0.1, color="black", ls=":", label="chance")
axes[1].set_ylabel("answer accuracy (teacher-forced)")
axes[1].legend()
plt.tight_layout()
plt.show()

best = max(results, key=lambda n: results[n]["accuracy"])
least_forgetting = min(results, key=lambda n: results[n]["corpus_loss"])
print(f"highest answer accuracy in this run: {best} ({results[best]['accuracy']:.1%}); "
      f"lowest corpus loss after training: {least_forgetting} ({results[least_forgetting]['corpus_loss']:.3f}, "
      f"pretrained {base_numbers['corpus_loss']:.3f})")

# %% [markdown]
# Read the table: how the answer accuracy changes with the rank, how it compares with full
# fine-tuning at a small fraction of the trainable parameters, and how far each method moved the
# corpus loss away from the pretrained value. These are single runs with one seed and
# untuned learning rates, so small differences between ranks may be noise (exercise 3).

# %% [markdown]
# ### 4.3 Merging, saving, and what the memory costs
#
# We merge the rank-4 adapters into a copy, compare logits, save the adapters alone, and
# count bytes: the float32 model, the adapters, and the base weights of every linear layer
# stored in NF4 (4 bits per code, as real QLoRA packs them, plus one float32 absmax per 64).
# We also measure what NF4 rounding of those base weights costs in validation loss.

# %%
lora4 = results["LoRA r=4"]["model"]
merged = merge_lora(copy.deepcopy(lora4))
with torch.no_grad():
    gap = (merged(val_rows[:, :-1])[0] - lora4(val_rows[:, :-1])[0]).abs().max().item()
adapters = lora_state_dict(lora4)
adapter_bytes = sum(v.numel() * v.element_size() for v in adapters.values())
model_bytes = sum(p.numel() * p.element_size() for p in pretrained.parameters())
print(f"max |merged − unmerged logits| = {gap:.2e}")
print(f"model {model_bytes / 1024:.1f} KiB in float32; rank-4 adapters {adapter_bytes / 1024:.1f} KiB "
      f"({adapter_bytes / model_bytes:.1%} of it, {len(adapters)} tensors)")

quantised = copy.deepcopy(pretrained)
linear_weights = fp32_bytes = nf4_bytes = 0
worst = 0.0
with torch.no_grad():
    for module in quantised.modules():
        if isinstance(module, nn.Linear):
            w = module.weight
            codes, absmax = nf4_quantize(w, 64)
            back = nf4_dequantize(codes, absmax, 64)
            worst = max(worst, ((back - w).abs().reshape(-1, 64) / absmax[:, None]).max().item())
            w.copy_(back)
            linear_weights += w.numel()
            fp32_bytes += 4 * w.numel()
            nf4_bytes += w.numel() // 2 + 4 * absmax.numel()
nf4_numbers = measure(quantised)
print(f"linear weights: {linear_weights} numbers, {fp32_bytes / 1024:.1f} KiB float32 -> {nf4_bytes / 1024:.1f} KiB NF4 "
      f"({fp32_bytes / nf4_bytes:.2f}× smaller); largest error / absmax {worst:.4f} (bound {half_gap_h:.4f})")
print(f"corpus validation loss: float32 {base_numbers['corpus_loss']:.4f}, NF4 base {nf4_numbers['corpus_loss']:.4f}")

# %% [markdown]
# ### 4.4 QLoRA in miniature
#
# The same rank-4 run, but on the NF4-rounded base: the adapters train in float32 on top of
# weights that went through 4 bits. (A real implementation keeps the codes and dequantises on
# the fly inside each layer; here the rounded weights are simply stored back as float32, which
# computes the same numbers.)

# %%
qlora = copy.deepcopy(quantised)
torch.manual_seed(0)
apply_lora(qlora, TARGETS, r=4, alpha=16)
train_lm(qlora, train_task, STEPS, batch_size=16, block_size=63, lr=1e-2, warmup=5, weight_decay=0.0,
         generator=torch.Generator().manual_seed(0))
q = measure(qlora)
r4 = results["LoRA r=4"]
print(f"LoRA r=4 on the float32 base: accuracy {r4['accuracy']:.1%}, task loss {r4['task_loss']:.3f}")
print(f"LoRA r=4 on the NF4 base:     accuracy {q['accuracy']:.1%}, task loss {q['task_loss']:.3f}")

# %% [markdown]
# ## 5. Summary
#
# * A LoRA layer is $W x + \frac{\alpha}{r} B A x$ with $W$ frozen, $A$ random and $B$ zero: it starts as
#   the pretrained layer, $B$ gets the first gradient, and only $r (d_{\text{in}} + d_{\text{out}})$
#   numbers train.
# * `apply_lora` wraps the named layers and must freeze everything else; `trainable_fraction`
#   shows the result.
# * Merging folds `(α/r) B A` into `W` (same outputs, no extra cost), and unmerging takes it out
#   again; an adapter saved alone is a small fraction of the model.
# * NF4 stores a block of 64 weights as 4-bit indices into 16 normal quantiles plus one absmax:
#   4.5 bits per weight, each weight within `0.1519 · absmax` of its true value.
# * Task vectors add fine-tuning deltas with weights; slerp interpolates along the arc.
#
# ## 6. Exercises
#
# 1. **By hand.** How many parameters does a rank-8 adapter on every attention projection of
#    the tiny LLaMA add? Check with `trainable_fraction`.
# 2. **Learning rates.** Rerun 4.2 with LoRA learning rates 3e-3 and 3e-2 and full fine-tuning
#    at 1e-3 and 1e-2. Which setting of each method reaches the highest accuracy in 60 steps?
# 3. **Seeds.** Repeat the rank sweep with three seeds and print the mean and spread of the
#    accuracy per rank. Which differences in 4.2 survive?
# 4. **Where to put adapters.** Compare adapters on `("q_proj", "v_proj")` only (the LoRA paper's
#    choice) with adapters on the MLP only, at the same rank.
# 5. **α.** Fix `r = 16` and try `α = 4, 16, 64`. Relate what you see to the scale `α/r`.
# 6. **NF4 against uniform 4 bits.** Replace the code book by 16 evenly spaced values in
#    `[−1, 1]` and compare the mean quantisation error on a normal weight matrix, and the corpus
#    loss of the quantised tiny LLaMA.
# 7. **Task arithmetic.** Fine-tune two copies of the tiny LLaMA on two different procedural
#    tasks, merge them with `task_vector_merge` at several weights, and measure both tasks.
