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
# # 17 · Speculative decoding
#
# Generating text one token at a time costs one forward pass of the model per token. On the
# hardware large models run on, that pass is limited by reading the weights from memory, not
# by arithmetic, so scoring `k + 1` positions in one pass costs about as much as scoring one.
# Speculative decoding turns that spare arithmetic into speed: a small **draft** model guesses
# `k` tokens, the large **target** model checks all of them in ONE call, and a clever rejection
# rule keeps a prefix of the guesses and adds one token of its own. The text that comes out is
# distributed *exactly* as if the target had generated it alone — not approximately.
#
# | unit | what it does |
# |---|---|
# | `acceptance_rate(p, q)` | α = Σ min(p, q): how often a draft token survives |
# | `residual_distribution(p, q)` | normalise(max(0, p − q)): where a rejected position is resampled |
# | `speculative_accept(q, p, drafts, generator)` | one round of verification: accepted prefix + one token |
# | `greedy_accept(drafts, target_logits)` | the same at temperature 0: keep drafts equal to the argmax |
# | `draft_propose(draft, context, k, temperature, generator)` | the draft's k proposals and their distributions |
# | `speculative_generate(target, draft, prompt, k, max_new, temperature, generator)` | the whole loop, counting target calls |
# | `expected_tokens_per_call(alpha, k)` | (1 − α^(k+1)) / (1 − α): the tokens one target call buys |

# %% [markdown]
# ## 1. Intuition
#
# **Guess, then check in parallel.** Suppose the draft proposes $x_1, \dots, x_k$ after the text
# so far. One call of the target on the text plus the proposals returns its next-token
# distributions $p_1, \dots, p_{k+1}$ at every one of those positions — causal attention means the
# distribution at position $i$ only looks at the text before it, which is exactly the
# distribution the target would have used had it generated $x_1, \dots, x_{i-1}$ itself.
#
# **Accepting a guess without changing the distribution.** Say the draft drew $x$ from $q$ and the
# target wants $p$. Accept $x$ with probability
#
# $$
# \Pr[\text{accept } x] = \min\!\left(1, \frac{p(x)}{q(x)}\right).
# $$
#
# Tokens the draft proposes *too rarely* ($q(x) < p(x)$) are always accepted; tokens it proposes
# *too often* are accepted only part of the time. After acceptance the probability of emitting
# $x$ is $q(x) \min(1, p(x)/q(x)) = \min(p(x), q(x))$: short of $p(x)$ exactly by
# $\max(0, p(x) - q(x))$. So on a rejection we draw from the residual `normalise(max(0, p − q))`,
#
# $$
# p_{\text{res}}(x) = \frac{\max\bigl(0,\, p(x) - q(x)\bigr)}{\sum_{y} \max\bigl(0,\, p(y) - q(y)\bigr)},
# $$
#
# which puts back the missing mass and nothing else:
#
# $$
# \Pr[\text{emit } x] = \min\bigl(p(x), q(x)\bigr) + (1 - \alpha) \, \frac{\max\bigl(0,\, p(x) - q(x)\bigr)}{1 - \alpha} = p(x),
# $$
#
# because the residual's mass $\sum_y \max(0, p(y) - q(y))$ equals the rejection probability
# $1 - \alpha$, with
#
# $$
# \alpha = \sum_{x} \min\bigl(p(x), q(x)\bigr) = 1 - \tfrac{1}{2} \sum_{x} \bigl|p(x) - q(x)\bigr| = 1 - \mathrm{TV}(p, q) .
# $$
#
# (Since $\min(p, q) + \max(0, p - q) = p$, the two masses add up to $\sum_x p(x) = 1$.) Resampling from `p` itself instead of the residual would count the
# accepted mass twice — the classic mistake.
#
# **The bonus token.** If all `k` guesses are accepted, the target's call already holds the
# distribution `p_{k+1}` after them: sampling from it is free. So every target call emits
# between 1 and `k + 1` tokens, never zero.
#
# **Greedy.** At temperature 0 both distributions are one-hot; $\min(1, p/q)$ is 1 when the
# two argmaxes agree and 0 otherwise, and the residual is the target's argmax. The rule
# becomes "keep the leading drafts equal to the target's choice, then add the target's
# choice" — and the output is the target's greedy text, token for token.
#
# **How much it saves.** If each guess is accepted independently with probability $\alpha$, a
# round emits the accepted prefix plus one token:
#
# $$
# \mathbb{E}[\text{tokens per target call}] = 1 + \alpha + \alpha^2 + \dots + \alpha^k = \frac{1 - \alpha^{k+1}}{1 - \alpha}
# \qquad (\alpha < 1),
# $$
#
# and $k + 1$ at $\alpha = 1$. More guesses help less and less once $\alpha^k$ is small; and each
# guess costs one draft call.

# %% [markdown]
# ## 2. A calculation by hand
#
# Vocabulary of three tokens, target `p = [0.5, 0.3, 0.2]`, draft `q = [0.2, 0.6, 0.2]`.
#
# * `α = Σ min(p, q) = 0.2 + 0.3 + 0.2 = 0.7`.
# * Acceptance probabilities `min(1, p/q)`: token 0: `min(1, 2.5) = 1`; token 1: `0.5`; token 2: `1`.
# * Residual `max(0, p − q) = [0.3, 0, 0]`, normalised `[1, 0, 0]`; its mass 0.3 = 1 − α.
# * The emitted token: `P(0) = q(0)·1 + 0.3·1 = 0.5`, `P(1) = q(1)·0.5 = 0.3`, `P(2) = q(2)·1 = 0.2`
#   — exactly `p`. Resampling from `p` instead would give `P(0) = 0.2 + 0.3·0.5 = 0.35`.
# * With `k = 3` and `α = 0.7` at every position: `E = 1 + 0.7 + 0.49 + 0.343 = 2.533` tokens per
#   target call, against 1 without a draft.

# %%
p_h, q_h = [0.5, 0.3, 0.2], [0.2, 0.6, 0.2]
alpha_h = sum(min(a, b) for a, b in zip(p_h, q_h))
accept_h = [min(1.0, a / b) for a, b in zip(p_h, q_h)]
resid_h = [max(0.0, a - b) for a, b in zip(p_h, q_h)]
resid_h = [r / sum(resid_h) for r in resid_h]
emit_h = [q_h[x] * accept_h[x] + (1 - alpha_h) * resid_h[x] for x in range(3)]
wrong_h = [q_h[x] * accept_h[x] + (1 - alpha_h) * p_h[x] for x in range(3)]
print("alpha", round(alpha_h, 4), "acceptance", accept_h, "residual", resid_h)
print("P(emit) =", [round(e, 4) for e in emit_h], " (p =", p_h, ")")
print("resampling from p instead:", [round(e, 4) for e in wrong_h])
print("E[tokens per call], alpha 0.7, k 3:", round(sum(0.7 ** i for i in range(4)), 4))

# %% [markdown]
# ## 3. Implementation
#
# One module, `speculative.py`. A "model" is anything called as `model(idx)` with `idx` of shape
# `(1, T)` that returns `(logits (1, T, V), loss)` — the given `TinyLlama` of `llmlab.lib.llama`
# is one. `_check_same_shape` is a small given helper.

# %%
#| include: speculative.py::header,_check_same_shape

# %% [markdown]
# ### 3.1 The acceptance rate and the residual
#
# `acceptance_rate(p, q)` returns `Σ min(p, q)` over the last axis (the $\alpha$ of section 1),
# for any leading shape. `residual_distribution(p, q)` returns `max(0, p − q)` divided by its sum
# over the last axis (the $p_{\text{res}}$ of section 1);
# a row whose residual mass is exactly 0 (`p = q`, where no rejection can happen) returns `p`,
# so there is never a division by zero. Both keep the inputs' dtype and are differentiable
# (α is also a training objective for drafts: maximising it is minimising the total-variation
# distance to the target). Both raise `ValueError` for shapes that differ or 0-d inputs.

# %%
#| include: speculative.py::acceptance_rate,residual_distribution

# %%
p_t, q_t = torch.tensor(p_h, dtype=torch.float64), torch.tensor(q_h, dtype=torch.float64)
print("alpha:", acceptance_rate(p_t, q_t).item(), "(by hand 0.7)")
print("residual:", residual_distribution(p_t, q_t).tolist(), "(by hand [1, 0, 0])")
print("residual of p with itself:", residual_distribution(p_t, p_t).tolist(), "(p: no rejection possible)")

# %%
#| grade: test_acceptance_rate_by_hand_and_reference test_acceptance_rate_matches_tv_oracle_and_gradients test_acceptance_rate_gradcheck_and_raises test_residual_by_hand_and_reference test_residual_matches_oracle_and_gradients test_residual_equal_rows_gradcheck_and_raises

# %% [markdown]
# ### 3.2 One round of verification
#
# `speculative_accept(draft_probs, target_probs, draft_tokens, generator)` gets the `k`
# distributions the draft sampled from (`(k, V)`), the target's `k + 1` distributions (`(k + 1, V)`,
# the last one for the bonus token) and the `k` drafted tokens. For `i = 0, 1, …` it draws one
# uniform `u` (float64, from `generator`) and accepts `x_i` when `u < p_i[x_i] / q_i[x_i]`; at the
# first rejection it draws one token from `residual_distribution(p_i, q_i)` with
# `torch.multinomial(·, 1, generator=generator)` and stops; if all `k` are accepted it draws the
# bonus token from `p_k` the same way. It returns `(tokens, n)`: the `n` accepted drafts followed by
# the drawn token, `n + 1` tokens in all. The order of the draws is part of the contract, so a
# seeded generator reproduces the reference exactly.
#
# `greedy_accept(draft_tokens, target_logits)` is the temperature-0 rule: `n` is the number of
# *leading* drafts equal to `argmax(target_logits[i])` (ties to the lowest id), and the tokens are
# the target's choices at rows `0 … n`.

# %%
#| include: speculative.py::speculative_accept,greedy_accept

# %%
gen_demo = torch.Generator().manual_seed(0)
first = torch.zeros(3)
for _ in range(20000):
    x_demo = torch.multinomial(q_t, 1, generator=gen_demo)
    tokens_demo, _ = speculative_accept(q_t[None], torch.stack([p_t, p_t]), x_demo, gen_demo)
    first[tokens_demo[0]] += 1
print("first emitted token over 20000 rounds:", (first / first.sum()).tolist(), "(p = [0.5, 0.3, 0.2])")
print("greedy_accept:", greedy_accept(torch.tensor([1, 0]), torch.tensor([[0.0, 2.0, 1.0], [0.0, 0.0, 3.0],
                                                                          [1.0, 0.0, 0.0]])))

# %%
#| grade: test_accept_first_token_follows_target test_accept_number_accepted_follows_acceptance_rates test_accept_later_positions_bonus_and_pairs_follow_target test_accept_deterministic_cases test_accept_reference_draws_and_generator test_accept_input_forms_and_raises test_accept_fresh_rows_hidden test_greedy_accept_by_hand_and_ties test_greedy_accept_matches_loop_oracle test_greedy_accept_raises

# %% [markdown]
# ### 3.3 The draft's proposals and the loop
#
# `draft_propose(draft, context, k, temperature, generator)` calls the draft once per proposed
# token on the text so far (full recomputation, no KV cache), takes the last position's logits,
# and draws from `softmax(logits / temperature)` with `torch.multinomial` — or, at temperature 0,
# takes the argmax and returns its one-hot vector as the distribution.
#
# `speculative_generate(target, draft, prompt, k, max_new, temperature, generator)` repeats rounds
# until `max_new` tokens are generated: `m = min(k, remaining)` proposals, **one** target call on the
# text plus the proposals (its last `m + 1` positions score them), `speculative_accept` (or
# `greedy_accept` at temperature 0), and the emitted tokens appended, cut at `max_new`. It returns
# the tokens and the number of target calls — one per round. It runs under `torch.no_grad` with both
# models in eval mode, and restores their modes.

# %%
#| include: speculative.py::draft_propose,speculative_generate

# %%
from llmlab.lib.llama import LlamaConfig, TinyLlama

torch.manual_seed(0)
cfg_demo = LlamaConfig(vocab_size=8, block_size=32, n_layer=1, n_head=2, n_kv_head=1, d_model=16)
target_demo, draft_demo = TinyLlama(cfg_demo).eval(), TinyLlama(cfg_demo).eval()
prompt_demo = torch.tensor([1, 2, 3])
spec_demo, calls_demo = speculative_generate(target_demo, draft_demo, prompt_demo, 3, 12, temperature=0.0)
seq_demo = prompt_demo
with torch.no_grad():
    for _ in range(12):
        seq_demo = torch.cat([seq_demo, target_demo(seq_demo[None])[0][0, -1].argmax().reshape(1)])
print("speculative greedy:", spec_demo.tolist(), f"({calls_demo} target calls)")
print("target greedy:     ", seq_demo.tolist(), f"(12 target calls)")

# %%
#| grade: test_draft_propose_greedy_calls_and_context test_draft_propose_samples_with_documented_draws test_generate_greedy_equals_target_greedy test_generate_target_calls_counting_rule test_generate_joint_distribution_equals_target test_generate_reference_runs_and_generator test_generate_contract test_generate_raises test_generate_trained_pair_greedy_hidden test_generate_calls_distribution_hidden test_generate_joint_distribution_more_hidden test_generate_trained_pair_first_token_hidden

# %% [markdown]
# ### 3.4 The expected number of tokens per target call
#
# `expected_tokens_per_call(alpha, k)` returns `(1 − α^(k+1)) / (1 − α)`, and `k + 1` at `α = 1`,
# as a Python float; `ValueError` for `α` outside `[0, 1]` or `k < 0`.

# %%
#| include: speculative.py::expected_tokens_per_call

# %%
for a in (0.5, 0.7, 0.9):
    print(f"alpha {a}:", [round(expected_tokens_per_call(a, k), 3) for k in (1, 2, 4, 8, 16)], "for k = 1, 2, 4, 8, 16")

# %%
#| grade: test_expected_tokens_by_hand test_expected_tokens_matches_enumeration_and_simulation test_expected_tokens_matches_measured_rounds test_expected_tokens_raises

# %% [markdown]
# ## 4. Experiment: a trained draft for a trained target
#
# The given library ships two character-level LLaMAs trained the same way on the course corpus
# with the same codec: the target `tiny_llama` (2 layers, `d_model` 64) and the draft
# `draft_llama` (1 layer, `d_model` 32). We measure
#
# 1. the acceptance rate α on held-out text: the mean over positions of `Σ min(p, q)` of the two
#    models' next-character distributions at temperature 1 (and, for greedy decoding, how often
#    their argmaxes agree);
# 2. for `k = 1 … 8`, speculative sampling of 48 characters after 6 prompts from held-out text:
#    tokens per target call, target calls per generated token, and draft calls per token;
# 3. the same with greedy decoding;
# 4. the formula `(1 − α^(k+1)) / (1 − α)` with the measured α, next to the measurements.
#
# The formula assumes every position is accepted independently with the same α; real text has
# easy stretches and hard ones, and the last round of each generation is cut at `max_new`, so
# the two need not agree — the numbers show by how much.

# %%
import time

import matplotlib.pyplot as plt

from llmlab.lib.corpus import course_corpus, train_val_split
from llmlab.lib.llama import load_tiny_llama

torch.set_num_threads(1)   # tiny models: one thread is faster than several waiting on each other
target, codec, target_info = load_tiny_llama()
draft, _, draft_info = load_tiny_llama("draft_llama")
print(f"held-out loss: target {target_info['val_loss']}, draft {draft_info['val_loss']}")
_, val_text = train_val_split(course_corpus(), 0.1)
val_ids = codec.encode(val_text)
windows = val_ids[:64 * 64].view(64, 64)                           # 64 windows of 64 characters
with torch.no_grad():
    p_val = torch.softmax(target(windows)[0].double(), -1)
    q_val = torch.softmax(draft(windows)[0].double(), -1)
alpha_val = acceptance_rate(p_val, q_val).mean().item()
agree_val = (p_val.argmax(-1) == q_val.argmax(-1)).double().mean().item()
print(f"measured acceptance rate α = {alpha_val:.3f} (temperature 1); greedy agreement {agree_val:.3f}"
      f" over {windows.numel()} positions")

# %%
KS, PROMPTS, MAX_NEW = [1, 2, 3, 4, 6, 8], 6, 48
prompts = [val_ids[200 + 400 * i: 208 + 400 * i] for i in range(PROMPTS)]


class Counted(torch.nn.Module):
    """A model that counts its calls (to measure the draft's share of the work)."""

    def __init__(self, model):
        super().__init__()
        self.model, self.calls = model, 0

    def forward(self, idx, targets=None):
        self.calls += 1
        return self.model(idx, targets)


def measure(k, temperature, seed=0):
    counted_draft = Counted(draft)
    gen = torch.Generator().manual_seed(seed)
    calls = 0
    for prompt in prompts:
        _, c = speculative_generate(target, counted_draft, prompt, k, MAX_NEW, temperature, gen)
        calls += c
    tokens = PROMPTS * MAX_NEW
    return {"tokens_per_call": tokens / calls, "calls_per_token": calls / tokens,
            "draft_calls_per_token": counted_draft.calls / tokens}


started = time.perf_counter()
results = {"sampled": {k: measure(k, 1.0) for k in KS}, "greedy": {k: measure(k, 0.0) for k in KS}}
elapsed = time.perf_counter() - started
print(f"{len(KS) * 2 * PROMPTS} generations of {MAX_NEW} characters in {elapsed:.1f} s")
print(f"{'k':>3} | {'sampled: tokens/call':>21} {'formula(α)':>10} {'target calls/token':>18} "
      f"{'draft calls/token':>17} | {'greedy: tokens/call':>20} {'formula(agree)':>14}")
for k in KS:
    s, g = results["sampled"][k], results["greedy"][k]
    print(f"{k:>3} | {s['tokens_per_call']:>21.3f} {expected_tokens_per_call(alpha_val, k):>10.3f} "
          f"{s['calls_per_token']:>18.3f} {s['draft_calls_per_token']:>17.3f} | {g['tokens_per_call']:>20.3f} "
          f"{expected_tokens_per_call(agree_val, k):>14.3f}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for mode, rate, marker in (("sampled", alpha_val, "o"), ("greedy", agree_val, "s")):
    measured = [results[mode][k]["tokens_per_call"] for k in KS]
    axes[0].plot(KS, measured, marker=marker, label=f"{mode}: measured")
    axes[0].plot(KS, [expected_tokens_per_call(rate, k) for k in KS], ls="--",
                 label=f"{mode}: formula with α = {rate:.2f}")
    axes[1].plot(KS, [results[mode][k]["calls_per_token"] for k in KS], marker=marker, label=mode)
axes[0].set_xlabel("k (draft tokens per round)")
axes[0].set_ylabel("tokens per target call")
axes[0].legend()
axes[1].axhline(1.0, color="grey", ls=":", label="target alone (1 call per token)")
axes[1].set_xlabel("k (draft tokens per round)")
axes[1].set_ylabel("target calls per generated token")
axes[1].legend()
fig.suptitle("speculative decoding: tiny_llama (target) with draft_llama")
plt.show()

# %% [markdown]
# **What did it cost?** On a CPU with models this small, per-call overheads may make the draft
# little cheaper than the target, so wall-clock time is not the point here; the quantity that
# transfers to large models is the number of target calls. We time one call of each model on a 56-token
# context and compute the cost model
# $\text{time per token} \propto (k c + 1) / \mathbb{E}[\text{tokens per call}]$, with $c$ the measured
# draft/target cost ratio: relative to plain decoding (one target call per token), speculative
# decoding pays off when that is below 1.

# %%
ctx = val_ids[:56][None]
with torch.no_grad():
    for model in (target, draft):
        model(ctx)                                                   # warm-up
    timings = {}
    for name, model in (("target", target), ("draft", draft)):
        t0 = time.perf_counter()
        for _ in range(50):
            model(ctx)
        timings[name] = (time.perf_counter() - t0) / 50
ratio = timings["draft"] / timings["target"]
print(f"one call: target {timings['target'] * 1e3:.2f} ms, draft {timings['draft'] * 1e3:.2f} ms, ratio c = {ratio:.2f}")
for k in KS:
    cost = (k * ratio + 1) / results["sampled"][k]["tokens_per_call"]
    print(f"k = {k}: relative cost per token {cost:.2f} (measured here); with a draft 20× cheaper "
          f"(c = 0.05) it would be {(k * 0.05 + 1) / results['sampled'][k]['tokens_per_call']:.2f}")
best_k = min(KS, key=lambda k: (k * 0.05 + 1) / results["sampled"][k]["tokens_per_call"])
print(f"with c = 0.05 the cheapest k among {KS} is k = {best_k}")

# %% [markdown]
# Read the table: the measured tokens per target call against the formula with the measured α
# (for small `k` they should be close; a gap that grows with `k` says the acceptances are not
# independent — easy and hard stretches of text come in runs — and includes the cut of the last
# round at `max_new`); whether the greedy run, with the higher agreement rate, buys more tokens
# per call than sampling; and at which `k` the gain levels off. The cost lines show whether this
# pair would pay off on this CPU at all, and what a draft much cheaper than its target would buy.
#
# ## 5. Summary
#
# * Accept a draft token with `min(1, p/q)`; at the first rejection resample from
#   `normalise(max(0, p − q))`; after `k` acceptances add a bonus token from the target. The
#   output follows the target's distribution exactly (the chi-square tests of the graders check
#   the first token, later positions, the bonus and whole sequences).
# * At temperature 0 the rule keeps the leading drafts equal to the target's argmax, and the
#   output equals the target's greedy text.
# * One target call per round; each round emits 1 to `k + 1` tokens; with i.i.d. acceptance
#   $\mathbb{E} = (1 - \alpha^{k+1}) / (1 - \alpha)$, with $\alpha = \sum \min(p, q) = 1 - \mathrm{TV}(p, q)$.
#
# ## 6. Exercises
#
# 1. **By hand.** Repeat section 2 with `q = [0.6, 0.2, 0.2]`. Which token is now resampled on a
#    rejection? Check with `residual_distribution`.
# 2. **Break it.** Replace the residual with `p` in `speculative_accept` and rerun the 20000-round
#    demo of section 3.2: compare the frequencies with section 2's "resampling from p" line.
# 3. **Temperature.** Rerun the experiment at temperature 0.5 and 1.5. How do α and tokens per
#    call change?
# 4. **A KV cache.** `draft_propose` recomputes the whole context for every token. Count the
#    positions it processes for a generation of `n` tokens, and sketch how a cache (topic 16) changes it.
# 5. **Train a better draft.** Train the draft a few hundred steps longer (`llmlab.lib.train.train_lm`)
#    and measure α and tokens per call again.
