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
# # 15 · Decoding
#
# A language model does not write text. It gives, for a context, one vector of logits over
# the vocabulary: a distribution for the next token. *Decoding* is everything between that
# distribution and a finished piece of text: which token to take, when to stop, whether to
# look further ahead than one token, and how to do it for many prompts at once. This
# chapter writes the decoding methods in use today and measures, on the course's tiny
# trained LLaMA, the trade-off they control: text that is *likely* against text that is
# *diverse*.
#
# | unit | what it does |
# |---|---|
# | `greedy(logits)` | the most likely token of every row (ties: lowest id) |
# | `top_k_filter(logits, k)` | keep the k largest logits (ties with the k-th kept), −inf elsewhere |
# | `top_p_filter(logits, p)` | keep the smallest most-likely set with mass ≥ p (nucleus) |
# | `min_p_filter(logits, min_p)` | keep tokens at least `min_p` times as likely as the best |
# | `repetition_penalty(logits, context, penalty)` | CTRL's rule for tokens already seen |
# | `sampling_probs(logits, temperature, top_k, top_p, min_p)` | the distribution sampling draws from |
# | `sample(logits, temperature, …, generator)` | one draw per row; temperature 0 is greedy |
# | `should_stop(generated, eos_id, stop_sequences)` | the stop conditions |
# | `generate(model, prompt, max_new, …)` | one prompt, one token at a time |
# | `beam_search(model, prompt, width, max_new, length_penalty, eos_id)` | keep `width` hypotheses |
# | `left_pad(prompts, pad_id)` | a batch of prompts: ids, attention mask, position ids |
# | `generate_batch(model, prompts, max_new, pad_id, …)` | many prompts at once, as if alone |
# | `apply_chat_template(messages)` | a conversation as the one string a chat model reads |

# %% [markdown]
# ## 1. Intuition
#
# **Greedy is not the most likely sequence.** Taking the best token at every step is
# short-sighted: a slightly worse first token can open a much more likely continuation.
# *Beam search* keeps the `width` best partial sequences at every step and so looks a little
# further. Longer sequences have more terms in their log-probability sum, each negative, so
# comparing finished sequences of different lengths by the raw sum favours short ones; a
# *length penalty* divides the sum by $n^\alpha$. A finished hypothesis $y_1, \dots, y_n$ (the
# generated tokens after the prompt $x$) is scored by
#
# $$
# \operatorname{score}(y) = \frac{1}{n^{\alpha}} \sum_{t=1}^{n} \log p(y_t \mid x, y_1, \dots, y_{t-1}) .
# $$
#
#
# **The most likely text is dull.** For open-ended text, the highest-probability
# continuation repeats itself and says little. *Sampling* draws the next token from the
# distribution instead. The *temperature* $T$ divides the logits $z$,
# $p_i = e^{z_i / T} / \sum_j e^{z_j / T}$: $T < 1$ sharpens the distribution towards greedy,
# $T > 1$ flattens it. The tail of the distribution — thousands
# of individually unlikely tokens in a real vocabulary — holds a lot of mass together, and one
# draw from it can derail a sentence; *filters* cut it off: top-k keeps the k best tokens,
# top-p (nucleus) keeps the smallest set of best tokens whose mass reaches p, min-p keeps the
# tokens at least `min_p` times as likely as the best one. A *repetition penalty* pushes down
# tokens already in the context.
#
# **Order matters.** The temperature first, then top-k, then top-p on the distribution
# *renormalised over the top-k tokens*, then min-p, then the softmax: each step sees the
# output of the one before. Other orders give other distributions.
#
# **A batch must not change the answer.** Prompts have different lengths; to run them as one
# tensor the short ones are padded. Padding on the *left* puts every prompt's last token in
# the last column, where the next token is read. The pad tokens must be invisible (an
# attention mask), and every real token must keep the *position* it has in its own sequence
# (position ids that start at 0 at the first real token, not at the first column).

# %% [markdown]
# ## 2. Small calculations by hand
#
# **Top-p.** Logits `log [0.5, 0.3, 0.15, 0.05]`, that is, probabilities `0.5, 0.3, 0.15, 0.05`.
# With `p = 0.6`: the mass before token 0 is 0 < 0.6 (kept), before token 1 it is 0.5 < 0.6
# (kept), before token 2 it is 0.8 ≥ 0.6 (removed). Token 1 is the one whose probability
# *crosses* p; it is kept — dropping it would leave a set of mass 0.5 < p. The renormalised
# distribution is `[0.5, 0.3] / 0.8 = [0.625, 0.375]`.
#
# **Temperature.** Logits `[2, 1, 0]` give `softmax = [0.665, 0.245, 0.090]`; at `T = 0.5`
# (logits `[4, 2, 0]`) `[0.867, 0.117, 0.016]`; at `T = 2` (`[1, 0.5, 0]`) `[0.506, 0.307, 0.186]`.
#
# **Repetition penalty (CTRL).** Penalty 2 on a seen token: a logit `1.0` becomes `0.5`, a
# logit `−1.0` becomes `−2.0`. Both become less likely. Dividing the negative one instead
# would give `−0.5`: *more* likely.
#
# **Greedy versus beam.** A two-step tree: first token `a` with probability 0.6, `b` with 0.4.
# After `a` the best second token has 0.4; after `b`, 0.9. Greedy takes `a` and ends with
# `0.6 · 0.4 = 0.24`; the sequence `b` then its best token has `0.4 · 0.9 = 0.36`. Beam search
# with width 2 keeps both first tokens and finds 0.36.

# %%
import math

import torch

probs = torch.tensor([0.5, 0.3, 0.15, 0.05])
before = torch.cat([torch.zeros(1), probs.cumsum(0)[:-1]])
print("mass before each token:", before.tolist(), "-> kept for p = 0.6:", (before < 0.6).tolist())
for t in (1.0, 0.5, 2.0):
    print(f"T = {t}: softmax([2, 1, 0] / T) =", [round(x, 3) for x in torch.softmax(torch.tensor([2.0, 1, 0]) / t, 0).tolist()])
print("greedy path 0.6·0.4 =", 0.6 * 0.4, "| beam finds 0.4·0.9 =", round(0.4 * 0.9, 2))

# %% [markdown]
# ## 3. Implementation
#
# One module, `generation.py`. Logits are `(..., V)` with the vocabulary on the last axis; a
# removed token gets the logit `−inf`, hence probability exactly 0. A *model* is any module
# called as `model(ids, positions=positions, attention_mask=attention_mask)` returning
# `(logits, loss)` — the given TinyLlama has that signature.

# %%
#| include: generation.py::header

# %% [markdown]
# ### 3.1 Greedy
#
# The index of the largest logit of every row; `argmax` returns the first maximum, so ties go
# to the lowest id.

# %%
#| include: generation.py::greedy

# %%
print(greedy(torch.tensor([[0.5, 2.0, 2.0], [NEG_INF, -1.0, -3.0]])))

# %%
#| grade: test_greedy_matches_first_maximum test_greedy_input_forms

# %% [markdown]
# ### 3.2 Top-k, top-p and min-p
#
# Each filter returns the logits with the removed entries set to −inf and the kept ones
# unchanged (so gradients reach the kept ones). Top-k keeps every logit ≥ the k-th largest
# (ties with it are all kept). Top-p sorts the probabilities in descending order — ties by
# ascending id, a *stable* sort — and keeps a token when the mass ranked before it is still
# below p. Min-p keeps the tokens with probability ≥ `min_p · max prob`. With the logits
# $z_1, \dots, z_V$, their softmax $p$, $z_{(k)}$ the $k$-th largest logit and
# $p_{(1)} \ge p_{(2)} \ge \dots \ge p_{(V)}$ the sorted probabilities, the kept tokens are
#
# $$
# \begin{aligned}
# \text{top-}k&: && z_i \ge z_{(k)}, \\
# \text{top-}p&: && \text{the token of rank } r \text{ with } \textstyle\sum_{j < r} p_{(j)} < p, \\
# \text{min-}p&: && p_i \ge p_{\min} \cdot \max_j p_j ,
# \end{aligned}
# $$
#
# with $p_{\min}$ = `min_p`.

# %%
#| include: generation.py::top_k_filter,top_p_filter,min_p_filter

# %%
by_hand = torch.log(torch.tensor([0.5, 0.3, 0.15, 0.05]))
print("top-p 0.6 :", top_p_filter(by_hand, 0.6).exp().tolist())
print("top-p 0.45:", top_p_filter(by_hand, 0.45).exp().tolist(), "(the first token's mass already reaches p)")
print("top-k 2   :", top_k_filter(by_hand, 2).exp().tolist())
print("min-p 0.3 :", min_p_filter(by_hand, 0.3).exp().tolist(), "(0.15 ≥ 0.3 · 0.5)")

# %%
#| grade: test_top_k_filter_matches_oracle test_top_k_filter_gradients_edges_and_raises test_top_p_boundary_cases_reference test_top_p_filter_matches_oracle test_top_p_filter_ties_in_a_wide_row test_top_p_filter_edges_gradients_and_raises test_top_p_near_boundary_float32_hidden test_min_p_filter_matches_oracle_edges_and_raises

# %% [markdown]
# ### 3.3 The repetition penalty
#
# For every id that occurs in a row's context (once is enough; the penalty is applied once
# per id): a negative logit is multiplied by the penalty, a non-negative one divided by it.
# With the penalty $\theta$ and a seen id $i$,
#
# $$
# z_i' =
# \begin{cases}
# \theta \, z_i, & z_i < 0, \\
# z_i / \theta, & z_i \ge 0,
# \end{cases}
# $$
#
# and unseen ids keep their logits.
# `context_mask` says which context entries are real tokens (padding is not context).

# %%
#| include: generation.py::repetition_penalty

# %%
print(repetition_penalty(torch.tensor([[1.0, -1.0, 0.5]]), torch.tensor([[0, 1, 1]]), 2.0))

# %%
#| grade: test_repetition_penalty_ctrl_rule test_repetition_penalty_mask_empty_context_gradients_and_raises

# %% [markdown]
# ### 3.4 The sampling distribution and sampling
#
# `sampling_probs` composes the steps in the documented order; `sample` draws one token per
# row from it with the given generator, or returns `greedy(logits)` at temperature 0. The
# grader draws 20 000 tokens and runs a chi-square test against the filtered softmax, with a
# stated false-failure rate of 1e-6 for the whole test (1e-6 / 3 per setting).

# %%
#| include: generation.py::sampling_probs,sample

# %%
logits_demo = torch.tensor([1.2, 0.9, 0.4, 0.0, -0.3, -0.8])
p_demo = sampling_probs(logits_demo, temperature=0.7, top_k=4, top_p=0.9)
draws = sample(logits_demo.expand(20000, -1), 0.7, top_k=4, top_p=0.9, generator=torch.Generator().manual_seed(0))
print("filtered softmax :", [round(x, 4) for x in p_demo.tolist()])
print("sample frequency :", [round(x, 4) for x in (torch.bincount(draws, minlength=6) / 20000).tolist()])

# %%
#| grade: test_sampling_probs_reference_and_pipeline_oracle test_sampling_probs_gradients_and_raises test_sample_distribution_equals_filtered_softmax test_sample_temperature_zero_and_top_k_one_equal_greedy test_sample_generator_shapes_and_raises

# %% [markdown]
# ### 3.5 Stop conditions and the generation loop
#
# `should_stop` looks at the generated tokens only: the last one is the end-of-sequence id, or
# they end with a stop sequence. `generate` runs the model on the whole sequence so far
# (positions 0 … T − 1, an all-True mask), applies the repetition penalty with the prompt as
# context, samples, appends, and checks the stop conditions.

# %%
#| include: generation.py::should_stop,generate

# %%
from llmlab.lib.llama import load_tiny_llama

torch.set_num_threads(1)          # a tiny model: one thread is faster than several that wait
llama, codec, info = load_tiny_llama()
print(f"tiny LLaMA: {info['config']['n_layer']} layers, d_model {info['config']['d_model']}, "
      f"V = {codec.vocab_size}, held-out loss {info['val_loss']}")
prompt_demo = codec.encode("Ada walked to ")
print(repr(codec.decode(generate(llama, prompt_demo, 40, temperature=0.0))))
print(repr(codec.decode(generate(llama, prompt_demo, 40, temperature=0.0, stop_sequences=[codec.encode(".").tolist()]))))

# %%
#| grade: test_should_stop_rules test_generate_greedy_matches_oracle_and_model_calls test_generate_penalty_filters_and_sampling test_generate_edges_and_raises

# %% [markdown]
# ### 3.6 Beam search
#
# Every live hypothesis is extended by every token; the `width` candidates with the largest
# summed log-probability survive, over all hypotheses together. A candidate ending in eos is
# finished and no longer extended. At the end the finished hypotheses are compared by
# `sum / n ** length_penalty`, $n$ the number of generated tokens: the score of section 1 with
# $\alpha$ = `length_penalty`. With `width ≥ V ** max_new`
# nothing is ever dropped, so the grader can check the result against brute-force
# enumeration of every continuation on a tiny model.

# %%
#| include: generation.py::beam_search

# %%
from llmlab.lib.llama import LlamaConfig, TinyLlama

torch.manual_seed(1)
toy = TinyLlama(LlamaConfig(vocab_size=4, block_size=8, n_layer=1, n_head=2, n_kv_head=1, d_model=16)).eval()
with torch.no_grad():
    for p in toy.parameters():
        p.normal_(0, 0.8)
toy_prompt = torch.tensor([1])
greedy_tokens, greedy_score = beam_search(toy, toy_prompt, 1, 3, length_penalty=0.0)
width2_tokens, width2_score = beam_search(toy, toy_prompt, 2, 3, length_penalty=0.0)
best_tokens, best_score = beam_search(toy, toy_prompt, 4 ** 3, 3, length_penalty=0.0)
print("greedy (width 1):   ", greedy_tokens.tolist(), f"log-prob {greedy_score:.4f}")
print("width 2:            ", width2_tokens.tolist(), f"log-prob {width2_score:.4f}")
print("unlimited width 64: ", best_tokens.tolist(), f"log-prob {best_score:.4f}")
print("greedy is", "the best sequence here" if greedy_tokens.tolist() == best_tokens.tolist()
      else f"worse by {best_score - greedy_score:.4f} nats here")

# %%
#| grade: test_beam_width_one_equals_greedy test_beam_unlimited_width_finds_brute_force_best test_beam_small_width_matches_slow_oracle test_beam_tie_rules test_beam_reference_and_raises test_beam_brute_force_more_models_hidden

# %% [markdown]
# ### 3.7 Left padding and batched generation
#
# `left_pad` returns the padded ids, the mask and the position ids. `generate_batch` runs the
# whole batch once per step; rows that have stopped are extended by padding with the mask
# False. Why the position ids matter less than one might think *for RoPE*: attention scores
# under RoPE depend only on the *difference* of two positions, so shifting every position of
# a row by the same amount changes the logits only by rounding — the cell below measures the
# change. A model with learned absolute positions (the grader uses one) is not so forgiving.

# %%
#| include: generation.py::left_pad,generate_batch

# %%
ids_demo, mask_demo, pos_demo = left_pad([codec.encode("Ada "), codec.encode("Bruno ")], pad_id=0)
print(mask_demo.int().tolist(), pos_demo.tolist())
with torch.no_grad():
    row = codec.encode("Chen found a map")[None]
    base = llama(row, positions=torch.arange(row.shape[1])[None])[0]
    shifted = llama(row, positions=torch.arange(row.shape[1])[None] + 7)[0]
print(f"RoPE: largest logit change when every position is shifted by 7: {(base - shifted).abs().max().item():.2e}")
prompts_text = ["Ada walked to ", "Chen found ", "On Monday, ", "Bruno said "]
batch_prompts = [codec.encode(t) for t in prompts_text]
batched = generate_batch(llama, batch_prompts, 30, pad_id=0, temperature=0.0)
alone = [generate(llama, p, 30, temperature=0.0) for p in batch_prompts]
print(f"batched greedy equals one-by-one greedy for {sum(torch.equal(a, b) for a, b in zip(batched, alone))} "
      f"of {len(alone)} prompts")
for row_out in batched:
    print("  ", repr(codec.decode(row_out)))

# %%
#| grade: test_left_pad_layout test_left_pad_by_hand_and_raises test_generate_batch_equals_one_by_one test_generate_batch_passes_mask_and_positions test_generate_batch_edges_sampling_and_raises test_generate_batch_tiny_llama_equals_one_by_one_hidden test_generate_batch_sampling_follows_each_rows_distribution_hidden

# %% [markdown]
# ### 3.8 The chat template
#
# A chat model is trained on conversations rendered in one fixed format; at inference the same
# format must be used, ending with the assistant's marker so that the model writes the reply.
# Here each message is `<|role|>\n content <|end|>\n`; content that contains a marker is
# rejected (it could forge a turn).

# %%
#| include: generation.py::CHAT_ROLES,apply_chat_template

# %%
print(apply_chat_template([{"role": "system", "content": "Answer briefly."},
                           {"role": "user", "content": "Where did Ada go?"}]))

# %%
#| grade: test_chat_template_by_hand_and_reference test_chat_template_round_trip test_chat_template_raises

# %% [markdown]
# ## 4. Experiment: diversity against likelihood
#
# On the tiny LLaMA, four prompts times four samples each get 40 new characters for every
# setting of a grid: temperature `T ∈ {0.5, 0.8, 1.2}` and top-p `p ∈ {1.0, 0.9, 0.6}`
# (`p = 1.0` is no filter), plus greedy. For each setting we measure
#
# * **likelihood**: the mean log-probability per generated character under the model itself
#   at temperature 1 with no filter (higher: text the model finds more typical);
# * **diversity**: distinct-2, the number of distinct word bigrams divided by the number of
#   word bigrams, over all 16 samples pooled (1: no bigram repeated),
#   $\text{distinct-2} = n_{\text{distinct bigrams}} / n_{\text{bigrams}}$.

# %%
import time

import matplotlib.pyplot as plt

NEW, PER_PROMPT = 40, 4
exp_prompts = batch_prompts * PER_PROMPT


def mean_logprob(outputs, prompts):
    """Mean log-probability per generated token under the model (T = 1, no filters)."""
    ids, mask, pos = left_pad(outputs, pad_id=0)
    with torch.no_grad():
        logp = torch.log_softmax(llama(ids, positions=pos, attention_mask=mask)[0].double(), -1)
    total, count = 0.0, 0
    for b, (out, p) in enumerate(zip(outputs, prompts)):
        start = ids.shape[1] - len(out)                          # first real column of row b
        for t in range(len(p), len(out)):
            total += float(logp[b, start + t - 1, out[t]])
            count += 1
    return total / count


def distinct_2(outputs, prompts):
    bigrams = []
    for out, p in zip(outputs, prompts):
        words = codec.decode(out[len(p):]).split()
        bigrams += list(zip(words, words[1:]))
    return len(set(bigrams)) / max(1, len(bigrams))


started = time.perf_counter()
results = {}
gen = torch.Generator().manual_seed(0)
greedy_out = generate_batch(llama, exp_prompts, NEW, pad_id=0, temperature=0.0)
results[("greedy", None)] = (mean_logprob(greedy_out, exp_prompts), distinct_2(greedy_out, exp_prompts))
for T in (0.5, 0.8, 1.2):
    for p in (1.0, 0.9, 0.6):
        outs = generate_batch(llama, exp_prompts, NEW, pad_id=0, temperature=T, top_p=p, generator=gen)
        results[(T, p)] = (mean_logprob(outs, exp_prompts), distinct_2(outs, exp_prompts))
print(f"{len(results)} settings × {len(exp_prompts)} samples × {NEW} characters in {time.perf_counter() - started:.1f} s")
print(f"{'setting':>16} {'mean log-prob':>14} {'distinct-2':>11}")
for (T, p), (lp, d2) in results.items():
    name = "greedy" if T == "greedy" else f"T={T}, p={p}"
    print(f"{name:>16} {lp:14.4f} {d2:11.3f}")

# %%
fig, ax = plt.subplots(figsize=(7, 4.5))
for p, marker in ((1.0, "o"), (0.9, "s"), (0.6, "^")):
    pts = [(results[(T, p)][1], results[(T, p)][0]) for T in (0.5, 0.8, 1.2)]
    ax.plot([x for x, _ in pts], [y for _, y in pts], marker=marker, label=f"top-p {p}")
    for T, (x, y) in zip((0.5, 0.8, 1.2), pts):
        ax.annotate(f"T={T}", (x, y), textcoords="offset points", xytext=(4, 4), fontsize=8)
g_lp, g_d2 = results[("greedy", None)]
ax.scatter([g_d2], [g_lp], color="black", marker="*", s=120, label="greedy")
ax.set_xlabel("distinct-2 (diversity)")
ax.set_ylabel("mean log-prob per character (likelihood)")
ax.set_title("tiny LLaMA: the decoding trade-off")
ax.legend()
plt.show()

# %%
lp_sorted = sorted(((lp, key) for key, (lp, _) in results.items()), reverse=True)
d2_sorted = sorted(((d2, key) for key, (_, d2) in results.items()), reverse=True)
print("most likely setting:", lp_sorted[0][1], f"({lp_sorted[0][0]:.4f});",
      "most diverse setting:", d2_sorted[0][1], f"({d2_sorted[0][0]:.3f})")
for p in (1.0, 0.9, 0.6):
    lps = [results[(T, p)][0] for T in (0.5, 0.8, 1.2)]
    d2s = [results[(T, p)][1] for T in (0.5, 0.8, 1.2)]
    falling = all(a >= b for a, b in zip(lps, lps[1:]))
    rising = all(a <= b for a, b in zip(d2s, d2s[1:]))
    print(f"top-p {p}: as T rises, likelihood {'falls monotonically' if falling else 'does not fall monotonically'}, "
          f"distinct-2 {'rises monotonically' if rising else 'does not rise monotonically'}")
beam_lp = []
for p_ in batch_prompts:
    tokens, score = beam_search(llama, p_, 4, NEW, length_penalty=1.0)
    beam_lp.append(score)
beam_mean = sum(beam_lp) / len(beam_lp)
print(f"beam search (width 4, length penalty 1): mean log-prob per character {beam_mean:.4f} "
      f"(greedy: {g_lp:.4f}; beam {'higher' if beam_mean > g_lp else 'not higher'})")
rank_lp = [key for _, key in lp_sorted].index(("greedy", None)) + 1
rank_d2 = [key for _, key in d2_sorted].index(("greedy", None)) + 1
print(f"greedy ranks {rank_lp} of {len(results)} by likelihood and {rank_d2} of {len(results)} by distinct-2")

# %% [markdown]
# Read the numbers above. The printed lines say, for each top-p, whether raising the
# temperature moved the likelihood down and the diversity up on this run, and where greedy
# ranks on both measures; the plot shows the same table as a curve per top-p. A low top-p
# removes the tail, which shows up as a higher likelihood at the same temperature when the
# table says so. The beam line compares the per-character log-probability beam search reaches
# with greedy's. Sixteen samples of 40 characters are a small sample: differences of a few
# hundredths between neighbouring settings can change with the seed.
#
# ## 5. Summary
#
# * Greedy takes the argmax; beam search keeps `width` hypotheses and compares finished ones
#   by $\sum_t \log p / n^{\alpha}$. With an unlimited width it is exhaustive.
# * Sampling: temperature, then top-k, then top-p on the renormalised top-k distribution, then
#   min-p, then softmax. Top-p keeps the token that crosses p.
# * CTRL's repetition penalty multiplies negative logits and divides positive ones.
# * Batched generation pads on the left, masks the padding and gives each real token its own
#   position; then every row decodes exactly as if alone.
# * A chat template is a fixed string format; the generation prompt tells the model whose turn
#   it is.
#
# ## 6. Exercises
#
# 1. **By hand.** With probabilities `[0.4, 0.4, 0.1, 0.1]` and `p = 0.4`, which tokens does
#    top-p keep? And with `p = 0.41`? Check with `top_p_filter`.
# 2. **Top-k and top-p together.** Find logits where top-k = 2 followed by top-p = 0.7 keeps a
#    different set from top-p = 0.7 followed by top-k = 2.
# 3. **Length penalty.** Add an end-of-sequence id (the id of `"."`) to the beam search of the
#    experiment and compare the finished sentences for `length_penalty` 0, 1 and 2.
# 4. **Repetition.** Repeat the experiment's greedy run with `rep_penalty` 1.2 and 1.5 and
#    measure distinct-2 and the mean log-prob.
# 5. **Min-p.** Replace top-p by min-p ∈ {0.05, 0.1, 0.2} in the grid. Does min-p keep
#    more diversity at high temperature?
# 6. **Absolute positions.** Build a batch with `positions = arange(L)` for every row (the
#    mistake) and compare the logits of the tiny LLaMA with those of the correct positions.
#    Explain the result with the RoPE measurement of section 3.7.
