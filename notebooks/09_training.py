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
# # 09 · The training loop and its loss
#
# Chapter 05 trained a model with three lines: `loss.backward()`, `optimizer.step()`, repeat.
# This chapter opens each of them. We write the loss, the optimizer, the learning-rate
# schedule and gradient clipping ourselves, then the loop around them: several small batches
# that add up to one large one, the labels of supervised fine-tuning, and checkpoints from
# which a run resumes exactly.
#
# | unit | what it does |
# |---|---|
# | `cross_entropy(logits, targets, ignore_index=-100)` | mean next-token loss, written with log-sum-exp |
# | `AdamW(params, lr, betas, eps, weight_decay)` | Adam with decoupled weight decay, a real `torch.optim.Optimizer` |
# | `lr_schedule(step, max_lr, min_lr, warmup, total)` | linear warmup, then cosine decay |
# | `clip_grad_norm(params, max_norm)` | scale all gradients together so their global norm is at most `max_norm` |
# | `train_step(model, optimizer, loss_fn, micro_batches, max_norm)` | one step on accumulated gradients |
# | `sft_labels(turns, header_ids, eot_id)` | a chat's token ids and labels with loss on the assistant only |
# | `save_checkpoint` / `load_checkpoint` | model, optimizer, step and RNG, so a resume is bit for bit |
#
# At the end we train a small LLaMA-style model (the given `llmlab.lib.llama.TinyLlama`) on the
# course corpus with these parts: a learning-rate sweep, the effect of clipping at a high
# learning rate, and the loss curves.

# %% [markdown]
# ## 1. Intuition
#
# **The loss.** For one position with logits $z$ (a vector of $V$ scores) and target class $y$,
# the cross-entropy is
#
# $$
# \ell(z, y) = -\ln \operatorname{softmax}(z)_y = \operatorname{logsumexp}(z) - z_y,
# \qquad \operatorname{logsumexp}(z) = \ln \sum_{j=1}^{V} e^{z_j} .
# $$
#
# Computed literally, `exp(1000)` is infinite even in float64. Subtracting the maximum
# $m = \max_j z_j$ first changes nothing mathematically —
# $\operatorname{logsumexp}(z) = m + \ln \sum_j e^{z_j - m}$ — but every exponent is now $\le 0$, so
# nothing overflows and the largest term is exactly 1. Language models mark positions that must
# not count (padding, prompts) with the target `-100`; they are left out of the sum *and* of the
# count we divide by: over the set $\mathcal{K}$ of positions $n$ whose target is not `-100`,
#
# $$
# \mathcal{L} = \frac{1}{|\mathcal{K}|} \sum_{n \in \mathcal{K}} \ell(z_n, y_n) .
# $$
#
#
# **Its gradient** is the reason cross-entropy and softmax go together:
#
# $$
# \frac{\partial}{\partial z_j} \bigl( \operatorname{logsumexp}(z) - z_y \bigr) = \operatorname{softmax}(z)_j - \mathbb{1}[j = y] .
# $$
#
# The gradient pushes the target's logit up by $1 - p_y$ and every other logit down by its
# probability: softmax minus one-hot, divided by the number of positions in the mean.
#
# **AdamW.** Adam keeps two running averages per parameter: $m$ of the gradient and $v$ of
# its square. The update $\hat m / (\sqrt{\hat v} + \epsilon)$ is the gradient's direction with each
# coordinate's step normalised by its typical size, so every parameter moves by about `lr`
# per step, whatever the scale of its gradient. Both averages start at 0, so early on they are
# too small by the factors $1 - \beta_1^t$ and $1 - \beta_2^t$: the *bias corrections* divide them
# out. *Weight decay* shrinks every weight a little each step, $p \leftarrow p - \eta \lambda p$
# (learning rate $\eta$ = `lr`, decay $\lambda$ = `wd`). At step $t$ (counted from 1) with gradient
# $g_t$, the whole update of one parameter $p$, decay first, is
#
# $$
# \begin{aligned}
# m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t, &
# v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2, \\
# \hat m_t &= \frac{m_t}{1 - \beta_1^t}, &
# \hat v_t &= \frac{v_t}{1 - \beta_2^t}, \\
# p_t &= (1 - \eta \lambda)\, p_{t-1} - \eta \, \frac{\hat m_t}{\sqrt{\hat v_t} + \epsilon},
# \end{aligned}
# $$
#
# with $m_0 = v_0 = 0$, all operations elementwise, and $\epsilon$ *outside* the square root.
# Adam with an L2 penalty instead adds $\lambda p$ to the gradient — and then the normalisation
# divides it by $\sqrt{\hat v}$, so weights with large gradients are hardly decayed at all. Loshchilov
# and Hutter showed that keeping the decay out of the gradient ("decoupled") works better; that
# is AdamW.
#
# **The schedule.** At step 0 Adam's moment estimates rest on a single gradient, and a large
# step can throw the model somewhere it never recovers from. A short linear *warmup* raises
# the rate from `max_lr/warmup` to `max_lr`; then a cosine brings it down to `min_lr` at the
# last step, taking large steps while far from a minimum and small ones near it. With $W$ =
# `warmup` and $S$ = `total`, the rate at step $s$ (counted from 0) is
#
# $$
# \eta(s) =
# \begin{cases}
# \eta_{\max} \, \dfrac{s + 1}{W}, & s < W, \\[1ex]
# \eta_{\min} + \dfrac{1}{2} (\eta_{\max} - \eta_{\min}) \left( 1 + \cos\!\left( \pi \, \dfrac{s - W}{S - W} \right) \right), & W \le s < S, \\[1ex]
# \eta_{\min}, & s \ge S.
# \end{cases}
# $$
#
#
# **Clipping.** One unlucky batch can produce a gradient many times larger than usual. Clipping
# rescales the whole gradient — all parameters by the same factor — so that its global L2 norm
# is at most `max_norm`: the direction is kept, only the length is capped. With $c$ = `max_norm`,
#
# $$
# \lVert g \rVert = \sqrt{\sum_{\text{params } p} \ \sum_{i} g_{p,i}^2},
# \qquad
# g \leftarrow g \cdot \min\!\left( 1, \frac{c}{\lVert g \rVert + 10^{-6}} \right)
# $$
#
# (the $10^{-6}$ is PyTorch's guard against a zero norm). Clipping each
# parameter on its own would change the direction.
#
# **Accumulation.** A batch too large for memory can be split into $k$ micro-batches: backward
# each micro-batch's mean loss divided by $k$. Gradients add up in `.grad`, so after the $k$
# backward passes `.grad` holds $\sum_{i=1}^{k} \nabla (\mathcal{L}_i / k)$, the mean of the
# micro-batch gradients — for equal sizes, exactly
# the gradient of the large batch — and one optimizer step follows.
#
# **SFT labels.** Fine-tuning on chats trains the model to answer, not to imitate the user: the
# loss covers the assistant's tokens only. It must also cover the assistant's *end-of-turn*
# token, or the model never learns to stop talking.
#
# **Checkpoints.** A run that is interrupted and resumed should continue exactly as if nothing
# had happened. That needs the weights, the optimizer's moments and step counts (without them
# Adam restarts with its bias corrections at t = 1), the step number (for the schedule) and the
# random number generator's state (for dropout and data order).

# %% [markdown]
# ## 2. Small calculations by hand
#
# **Cross-entropy.** Logits `[2, 1, 0]`, target 0: `logsumexp = ln(e² + e + 1) = ln(7.389 +
# 2.718 + 1) = ln 11.107 = 2.4076`, so the loss is `2.4076 − 2 = 0.4076`. The softmax is
# `[0.665, 0.245, 0.090]`, so the gradient is `[0.665 − 1, 0.245, 0.090] = [−0.335, 0.245,
# 0.090]` (it sums to 0). With logits `[1002, 1001, 1000]` the loss is the same: shifting all
# logits by 1000 changes neither the softmax nor the loss.
#
# **One AdamW step.** `p = 1`, `g = 0.2`, `lr = 0.1`, `wd = 0.5`, default betas. On the first
# step `m = 0.1·0.2 = 0.02`, `v = 0.001·0.04 = 4e-5`; bias-corrected `m̂ = 0.02/0.1 = 0.2 = g` and
# `v̂ = 4e-5/0.001 = 0.04 = g²`, so the Adam update is `lr·g/|g| = 0.1`. Decay first:
# `1 − 0.1·0.5·1 = 0.95`, then `0.95 − 0.1 = 0.85`. (Decay after: `(1 − 0.1)·0.95 = 0.855`.)
# Adam + L2: the gradient becomes `0.2 + 0.5·1 = 0.7`, the update again `lr·0.7/0.7 = 0.1`, and
# `p = 0.9`: the decay was normalised away.
#
# **The schedule** with `max_lr = 1e-3`, `min_lr = 1e-4`, `warmup = 4`, `total = 12`: steps 0–3
# give `2.5e-4, 5e-4, 7.5e-4, 1e-3`; step 4 is `1e-3`; step 8 is halfway through the decay,
# $10^{-4} + 0.5 \cdot 9 \cdot 10^{-4} \cdot (1 + \cos(\pi/2)) = 5.5 \cdot 10^{-4}$; step 12 and later give `1e-4`.
#
# **Clipping.** Gradients `[3, 4]` and `[12]`: the global norm is `sqrt(9 + 16 + 144) = 13`. With
# `max_norm = 6.5` every gradient is multiplied by `6.5/13 = 0.5`: `[1.5, 2]` and `[6]`. Clipped
# separately, `[3, 4]` (norm 5) would stay and `[12]` would become `[6.5]`.

# %%
import math

z_h = [2.0, 1.0, 0.0]
lse_h = math.log(sum(math.exp(v) for v in z_h))
p_h = [math.exp(v - lse_h) for v in z_h]
print(f"logsumexp {lse_h:.4f}, loss {lse_h - z_h[0]:.4f}, gradient {[round(p - (j == 0), 3) for j, p in enumerate(p_h)]}")
m_h, v_h = 0.1 * 0.2, 0.001 * 0.2 ** 2
update_h = 0.1 * (m_h / 0.1) / (math.sqrt(v_h / 0.001) + 1e-8)
print(f"AdamW: decay before {1.0 * (1 - 0.1 * 0.5) - update_h:.4f}, decay after {(1.0 - update_h) * (1 - 0.1 * 0.5):.4f}, "
      f"Adam + L2 {1.0 - 0.1 * 0.7 / (0.7 + 1e-8):.4f}")
lr_h = [1e-3 * (s + 1) / 4 if s < 4 else 1e-4 + 0.5 * 9e-4 * (1 + math.cos(math.pi * (s - 4) / 8)) if s < 12 else 1e-4
        for s in range(14)]
print("schedule:", [f"{v:.3g}" for v in lr_h])
norm_h = math.sqrt(3 ** 2 + 4 ** 2 + 12 ** 2)
print(f"global norm {norm_h}, coefficient {6.5 / norm_h}")

# %% [markdown]
# ## 3. Implementation
#
# Everything lives in `training.py`. First, the imports.

# %%
#| include: training.py::header

# %% [markdown]
# ### 3.1 `cross_entropy`
#
# Flatten the logits to `(N, V)` and the targets to `(N,)`, compute the log-sum-exp of each row
# with its maximum subtracted, pick the target's logit with `gather`, and average over the
# positions whose target is not `ignore_index`. The maximum is a constant shift, so it may be
# detached: the gradient of `m + ln Σ exp(z − m)` w.r.t. `z` is the softmax whatever `m` is.
# This unit is "from scratch": the graders forbid `F.cross_entropy`, `log_softmax`, `softmax`
# and `logsumexp` while it runs.

# %%
#| include: training.py::cross_entropy

# %% [markdown]
# Section 2 by hand, then the gradient against softmax − one-hot on the same logits, and huge
# logits shifted by 1000:

# %%
import torch
import torch.nn.functional as F

z = torch.tensor([[2.0, 1.0, 0.0]], requires_grad=True)
loss = cross_entropy(z, torch.tensor([0]))
loss.backward()
print(f"loss {loss.item():.4f} (by hand 0.4076), gradient {z.grad[0].tolist()}")
print("shifted by 1000:", cross_entropy(torch.tensor([[1002.0, 1001.0, 1000.0]]), torch.tensor([0])).item())
print("-100 ignored:", cross_entropy(torch.tensor([[2.0, 1.0, 0.0], [9.0, 0.0, 0.0]]), torch.tensor([0, -100])).item())

# %%
#| grade: test_cross_entropy_matches_torch test_cross_entropy_extreme_logits test_cross_entropy_gradient_is_softmax_minus_one_hot test_cross_entropy_gradcheck test_cross_entropy_matches_reference test_cross_entropy_input_forms test_cross_entropy_raises test_cross_entropy_on_tiny_llama_hidden

# %% [markdown]
# ### 3.2 `AdamW`
#
# A subclass of `torch.optim.Optimizer`: `__init__` validates the hyperparameters and hands a
# dict of defaults to the base class, which builds `self.param_groups` (one dict per group,
# the group's own values overriding the defaults) and `self.state` (a dict per parameter);
# `state_dict()` and `load_state_dict()` come for free. `step` walks the groups, reads the
# hyperparameters *from the group* every time (a schedule writes `group["lr"]`), skips
# parameters without a gradient, creates `step`, `exp_avg`, `exp_avg_sq` on a parameter's first
# update and applies the update in place under `torch.no_grad()`.

# %%
#| include: training.py::AdamW

# %% [markdown]
# The step of section 2, and one against `torch.optim.AdamW` (they should agree to float
# rounding), and Adam + L2 (`torch.optim.Adam(weight_decay=…)`) for comparison:

# %%
results = {}
for name, make in (("ours", AdamW), ("torch.optim.AdamW", torch.optim.AdamW), ("Adam + L2", torch.optim.Adam)):
    p = torch.nn.Parameter(torch.tensor([1.0]))
    p.grad = torch.tensor([0.2])
    make([p], lr=0.1, weight_decay=0.5).step()
    results[name] = p.item()
print(results)

# %% [markdown]
# The graders run 40 steps on a small network with two parameter groups (one parameter gets a
# gradient only on every other step, so its own step count falls behind) and compare every
# step with `torch.optim.AdamW` — or with the decay-after ordering, both are accepted — and name
# Adam + L2, a missing or swapped bias correction, eps inside the square root and a decay not
# scaled by `lr` when your trajectory matches one of them.

# %%
#| grade: test_adamw_is_an_optimizer_with_groups_and_defaults test_adamw_rejects_bad_hyperparameters test_adamw_first_step_by_hand test_adamw_trajectory_matches_torch test_adamw_matches_reference test_adamw_reads_lr_from_param_groups_every_step test_adamw_state_dict_round_trip test_adamw_closure_and_parameters_without_grad test_adamw_float32_trajectory test_adamw_on_tiny_llama_hidden

# %% [markdown]
# ### 3.3 `lr_schedule`
#
# Three cases in order: warmup (`step < warmup`), the floor (`step ≥ total`), and the cosine in
# between. Testing `step ≥ total` before dividing by `total − warmup` also covers
# `warmup = total` without a division by zero.

# %%
#| include: training.py::lr_schedule

# %%
print("ours:   ", [f"{lr_schedule(s, 1e-3, 1e-4, 4, 12):.3g}" for s in range(14)])
print("by hand:", [f"{v:.3g}" for v in lr_h])

# %%
#| grade: test_lr_schedule_boundary_steps test_lr_schedule_matches_reference test_lr_schedule_formula_and_shape test_lr_schedule_edge_cases_and_raises

# %% [markdown]
# ### 3.4 `clip_grad_norm`
#
# One norm over all gradients together, one coefficient `min(1, max_norm / (norm + 1e-6))`
# (PyTorch's rule), every `.grad` multiplied in place. It returns the norm *before* clipping,
# which training logs watch: a norm that keeps hitting the cap means the learning rate or the
# data have a problem.

# %%
#| include: training.py::clip_grad_norm

# %%
a, b = torch.nn.Parameter(torch.zeros(2)), torch.nn.Parameter(torch.zeros(1))
a.grad, b.grad = torch.tensor([3.0, 4.0]), torch.tensor([12.0])
print("norm before:", clip_grad_norm([a, b], 6.5).item(), "clipped:", a.grad.tolist(), b.grad.tolist())

# %%
#| grade: test_clip_matches_torch test_clip_no_op_when_below_max_norm test_clip_reference_and_input_forms

# %% [markdown]
# ### 3.5 `train_step`: gradient accumulation
#
# Clear the gradients once, backward every micro-batch's loss divided by `k`, clip once (after
# the last micro-batch: the clipped quantity is the whole batch's gradient), step once.

# %%
#| include: training.py::train_step

# %% [markdown]
# The check the graders make, in small: 4 micro-batches of 4 rows against one batch of 16 rows,
# the largest difference between the two gradients.

# %%
torch.manual_seed(0)
lin = torch.nn.Linear(5, 3)
x16, y16 = torch.randn(16, 5), torch.randint(0, 3, (16,))
ce_loss = lambda m, x, y: F.cross_entropy(m(x), y)          # noqa: E731
ref = torch.nn.Linear(5, 3)
ref.load_state_dict(lin.state_dict())
ce_loss(ref, x16, y16).backward()
train_step(lin, torch.optim.SGD(lin.parameters(), lr=0.0), ce_loss, [(x16[i:i + 4], y16[i:i + 4]) for i in range(0, 16, 4)])
print("max |accumulated − one batch| =", (lin.weight.grad - ref.weight.grad).abs().max().item())

# %%
#| grade: test_train_step_accumulation_equals_one_batch test_train_step_clears_old_gradients test_train_step_clips_the_accumulated_gradient test_train_step_rejects_no_micro_batches test_training_loop_end_to_end_hidden

# %% [markdown]
# ### 3.6 `sft_labels`
#
# The chat template is `[header] + content + [eot]` per turn. Labels copy the ids of the
# assistant's content and its `eot`, and are `-100` everywhere else. They stay aligned with the
# ids; the model's next-token loss then uses `x = ids[:-1]`, `y = labels[1:]`.

# %%
#| include: training.py::sft_labels

# %%
chat = [("user", [7, 8, 9]), ("assistant", [10, 11]), ("user", [12]), ("assistant", [13])]
ids_demo, labels_demo = sft_labels(chat, {"system": 0, "user": 1, "assistant": 2}, eot_id=3)
print("ids:   ", ids_demo.tolist())
print("labels:", labels_demo.tolist())

# %%
#| grade: test_sft_labels_by_hand test_sft_labels_match_reference test_sft_labels_random_chats test_sft_labels_input_forms_and_raises

# %% [markdown]
# ### 3.7 Checkpoints
#
# `torch.save` of a dict of state dicts, the step and `torch.get_rng_state()`; loading restores
# all four. The file holds only tensors and plain Python values, so `torch.load(path,
# weights_only=True)` reads it without unpickling arbitrary objects.

# %%
#| include: training.py::save_checkpoint,load_checkpoint

# %%
#| grade: test_checkpoint_resume_reproduces_next_step test_checkpoint_file_contents test_load_checkpoint_restores_rng_and_step test_checkpoint_resume_with_student_adamw_hidden

# %% [markdown]
# ## 4. Experiment: training a tiny LLaMA on the course corpus
#
# ### 4.1 Data and model
#
# Characters of the course corpus, the given `CharCodec`, and a TinyLlama of one layer, width
# 48, context 32. Each run below starts from the same initial weights and sees the same
# batches, so runs differ only in the setting under study.

# %%
import copy
import os
import tempfile
import time

import matplotlib.pyplot as plt

from llmlab.lib.corpus import course_corpus, train_val_split
from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.lib.text import CharCodec

torch.set_num_threads(1)
corpus = course_corpus()
train_text, val_text = train_val_split(corpus)
codec = CharCodec.from_text(corpus)
train_ids, val_ids = codec.encode(train_text), codec.encode(val_text)
BLOCK, BATCH, STEPS, MICRO = 32, 16, 100, 2
config = LlamaConfig(vocab_size=codec.vocab_size, block_size=BLOCK, n_layer=1, n_head=4, n_kv_head=2, d_model=48)
torch.manual_seed(0)
init_state = copy.deepcopy(TinyLlama(config).state_dict())
print(f"V = {codec.vocab_size}, train {len(train_ids):,} characters, validation {len(val_ids):,}; "
      f"parameters {sum(v.numel() for v in init_state.values()):,}; ln V = {math.log(codec.vocab_size):.3f}")


def batches(data, n, seed):
    """n fixed (x, y) batches of BATCH windows, drawn with their own generator."""
    g = torch.Generator().manual_seed(seed)
    out = []
    for _ in range(n):
        s = torch.randint(0, len(data) - BLOCK - 1, (BATCH,), generator=g)
        rows = torch.stack([data[i:i + BLOCK + 1] for i in s.tolist()])
        out.append((rows[:, :-1], rows[:, 1:]))
    return out


train_batches = batches(train_ids, STEPS, seed=1)
val_batches = batches(val_ids, 4, seed=2)
llama_loss = lambda m, x, y: cross_entropy(m(x)[0], y)      # noqa: E731  our loss on the model's logits


@torch.no_grad()
def val_loss(model):
    return sum(cross_entropy(model(x)[0], y).item() for x, y in val_batches) / len(val_batches)


def run(max_lr, max_norm=None, steps=STEPS):
    """Train from init_state with AdamW (decay on matrices only), warmup + cosine, MICRO
    micro-batches per step: the steps of `train_step`, written out so that the loop can record
    the gradient norm before clipping (a max_norm of 1e9 never clips; it only measures).
    Returns the step losses, the gradient norms and the final validation loss."""
    model = TinyLlama(config)
    model.load_state_dict(init_state)
    decay = [p for p in model.parameters() if p.dim() >= 2]
    rest = [p for p in model.parameters() if p.dim() < 2]
    opt = AdamW([dict(params=decay, weight_decay=0.1), dict(params=rest, weight_decay=0.0)], lr=max_lr)
    losses, norms = [], []
    for step in range(steps):
        for group in opt.param_groups:
            group["lr"] = lr_schedule(step, max_lr, max_lr / 10, steps // 10, steps)
        x, y = train_batches[step]
        opt.zero_grad()
        total = 0.0
        for xb, yb in zip(x.chunk(MICRO), y.chunk(MICRO)):
            loss = llama_loss(model, xb, yb)
            (loss / MICRO).backward()
            total += loss.item()
        norms.append(clip_grad_norm(model.parameters(), 1e9 if max_norm is None else max_norm).item())
        opt.step()
        losses.append(total / MICRO)
    return losses, norms, val_loss(model)

# %% [markdown]
# ### 4.2 A learning-rate sweep
#
# Five peak learning rates from 3e-4 to 1e-1, each run `STEPS` steps with a 10 % warmup and a
# cosine to a tenth of the peak, without clipping. The table prints the mean loss of the last
# 20 steps and the validation loss after training.

# %%
started = time.perf_counter()
LRS = [3e-4, 1e-3, 3e-3, 1e-2, 1e-1]
sweep = {lr: run(lr) for lr in LRS}
print(f"sweep: {len(LRS)} runs of {STEPS} steps in {time.perf_counter() - started:.1f} s")
for lr, (losses, norms, val) in sweep.items():
    print(f"lr {lr:<7g} last-20 train loss {sum(losses[-20:]) / 20:.3f}   validation {val:.3f}   "
          f"largest gradient norm {max(norms):.2f}")
best_lr = min(sweep, key=lambda lr: sweep[lr][2])
print(f"lowest validation loss at lr = {best_lr:g} ({sweep[best_lr][2]:.3f})")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for lr, (losses, norms, _) in sweep.items():
    axes[0].plot(losses, label=f"lr {lr:g}")
    axes[1].plot(norms, label=f"lr {lr:g}")
axes[0].axhline(math.log(codec.vocab_size), color="grey", ls="--", label="ln V")
axes[0].set(xlabel="step", ylabel="training loss (nats per character)", title="learning-rate sweep")
axes[1].set(xlabel="step", ylabel="gradient norm before clipping", yscale="log", title="gradient norms")
axes[0].legend()
axes[1].legend()
plt.show()

# %% [markdown]
# Read the table: the printed validation losses say which peak rate trained best in this budget
# of steps, and whether the largest rate (1e-1) still improved on the smaller ones or not.
# Compare the gradient-norm curves with the losses: where a run's norm spikes while its loss
# rises, its updates were larger than the loss surface there allowed.
#
# ### 4.3 Clipping at a high learning rate
#
# The same run at the largest learning rate, clipped to a global norm of 1.0, against the
# unclipped run of the sweep.

# %%
clipped = run(LRS[-1], max_norm=1.0)
unclipped = sweep[LRS[-1]]
for name, (losses, norms, val) in (("no clipping", unclipped), ("clip at 1.0", clipped)):
    print(f"{name:12s} last-20 train loss {sum(losses[-20:]) / 20:.3f}   validation {val:.3f}   "
          f"steps with norm > 1: {sum(n > 1.0 for n in norms)} of {len(norms)}")
diff = unclipped[2] - clipped[2]
print(f"clipping changed the validation loss by {-diff:+.3f} "
      f"({'lower' if diff > 0 else 'not lower'} with clipping in this run)")

fig, ax = plt.subplots(figsize=(7, 4))
ax.plot(unclipped[0], label="lr 0.1, no clipping")
ax.plot(clipped[0], label="lr 0.1, clip at 1.0")
ax.set(xlabel="step", ylabel="training loss", title="clipping at a high learning rate")
ax.legend()
plt.show()

# %% [markdown]
# Note that with Adam, clipping does not cap the step size directly (the update is normalised
# by `sqrt(v̂)`); it changes how much one large gradient weighs in the moment estimates. The
# printed count of steps above the cap says how often it acted in this run.
#
# ### 4.4 A checkpoint in the middle of a run
#
# Train 10 steps, save, train 5 more; then load the checkpoint into a fresh model and
# optimizer and train the same 5 steps. The largest difference between the two final sets of
# weights is printed: a resume that restores everything gives exactly 0.

# %%
def steps_from(model, opt, first, last):
    for step in range(first, last):
        for group in opt.param_groups:
            group["lr"] = lr_schedule(step, 3e-3, 3e-4, 2, 15)
        train_step(model, opt, llama_loss, [train_batches[step]])


model_a = TinyLlama(config)
model_a.load_state_dict(init_state)
opt_a = AdamW(model_a.parameters(), weight_decay=0.1)
steps_from(model_a, opt_a, 0, 10)
with tempfile.TemporaryDirectory() as folder:
    path = os.path.join(folder, "ckpt.pt")
    save_checkpoint(path, model_a, opt_a, 10)
    steps_from(model_a, opt_a, 10, 15)
    model_b = TinyLlama(config)
    opt_b = AdamW(model_b.parameters())
    start = load_checkpoint(path, model_b, opt_b)
    steps_from(model_b, opt_b, start, 15)
    model_c = TinyLlama(config)
    model_c.load_state_dict(torch.load(path, weights_only=True)["model"])
    opt_c = AdamW(model_c.parameters(), weight_decay=0.1)        # the mistake: no optimizer state
    steps_from(model_c, opt_c, 10, 15)
gap = max((pa - pb).abs().max().item() for pa, pb in zip(model_a.parameters(), model_b.parameters()))
gap_c = max((pa - pc).abs().max().item() for pa, pc in zip(model_a.parameters(), model_c.parameters()))
print(f"resumed at step {start}; max |Δw| full checkpoint: {gap:.3g}; weights only, fresh optimizer: {gap_c:.3g}")

# %% [markdown]
# ## 5. Summary
#
# * Cross-entropy is `logsumexp(z) − z_y`; subtracting the row maximum makes it finite for any
#   logits, and its gradient is softmax − one-hot over the number of kept positions.
# * AdamW normalises each coordinate's step by its gradient's running RMS, corrects both
#   moments' start-up bias, and decays weights by `lr·wd·p` outside the gradient. Adam + L2 is a
#   different optimizer: its decay is normalised away where gradients are large.
# * Warmup raises the rate linearly to `max_lr` at step `warmup − 1`; a cosine brings it to
#   `min_lr` at `total`.
# * Clipping rescales all gradients by one factor, from their global norm.
# * Accumulating `loss / k` over `k` equal micro-batches gives the large batch's gradient.
# * SFT labels train the assistant's content and its end-of-turn token only.
# * A checkpoint holds model, optimizer, step and RNG; with all four a resume is bit for bit.
#
# ## 6. Exercises
#
# 1. **By hand.** Compute two AdamW steps for `p = 1` with gradients `0.2` then `−0.1` (`lr =
#    0.1`, `wd = 0`, default betas). Why is the second step smaller than `lr`? Check with `AdamW`.
# 2. **L2 versus decoupled.** Train the model of 4.1 at `lr = 3e-3` with `AdamW` and with
#    `torch.optim.Adam(weight_decay=0.1)`. Print the norm of the weight matrices after training.
#    Which optimizer shrinks them more, and why?
# 3. **Warmup.** Rerun the sweep with `warmup = 0`. Which learning rates are affected most?
# 4. **Accumulation with padding.** With `-100` targets, micro-batches can hold different numbers
#    of kept positions. Show that `train_step` then no longer equals one large batch, and write a
#    version that divides by the total number of kept positions instead.
# 5. **Clipping threshold.** Repeat 4.3 with `max_norm` in `{0.1, 0.3, 3}` and plot the final
#    validation loss against it.
# 6. **Forgetting the RNG.** Add dropout to a small model and show that a checkpoint without the
#    RNG state gives a different next step, while a model without dropout does not care.
