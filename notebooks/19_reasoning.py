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
# # 19 · Chain of thought and thinking models
#
# Ask a model for `478+356=` and it must produce `834` in three characters, each decided in one
# forward pass. Ask it to *show its working* first — the ones column, the carry, the tens
# column, ... — and every character it writes becomes easy, because the hard part is spread over
# many positions that it can read back. That is chain of thought. "Thinking models" make it a
# format: the working goes between `<think>` and `</think>`, the final answer comes after it in a
# form a program can check, and the checker turns into a reward for training.
#
# | unit | what it does |
# |---|---|
# | `normalize_number(text)` | one canonical spelling per number: `" +1,000.50 "` → `"1000.5"` |
# | `last_box(text)` | the content of the last complete `\boxed{...}`, nested braces counted |
# | `extract_answer(text)` | the final answer: the last box, else the last "Answer:" line, else the last number outside verification lines |
# | `majority_vote(answers)` | self-consistency: the most frequent answer, ties to the earliest |
# | `majority_accuracy(p, n)` | the binomial formula for the accuracy of that vote |
# | `format_thinking(prompt, thinking, answer)` | the template `prompt<think>…</think>\boxed{answer}` |
# | `think_masks(text)` | which characters are thinking and which are the answer |
# | `thinking_loss(logits, targets, thinking, answer, w)` | cross-entropy with the thinking tokens weighted by `w` |
# | `verifiable_reward(completion, truth)` | 1.0 right and well formatted, 0.1 wrong but well formatted, 0.0 otherwise |
# | `rejection_sample(sample, prompt, truth, n_keep, max_tries)` | keep only the traces the verifier accepts |
# | `addition_trace(a, b)` | a worked trace: column addition with carries |
#
# Budget: the whole chapter executes in under 60 s on one core of a laptop CPU; the experiment,
# which trains two tiny models, prints the seconds it took.

# %% [markdown]
# ## 1. Intuition
#
# **Why writing the working helps.** A Transformer spends a fixed amount of computation per
# generated token. A three-digit sum written at once needs the carry chain resolved before the
# first digit: hard for two small layers. Written column by column, each step needs only two
# digits and one carry that the model itself wrote a few characters earlier:
#
# $$
# s_i = x_i + y_i + c_i, \qquad c_{i+1} = \lfloor s_i / 10 \rfloor, \qquad c_0 = 0 ,
# $$
#
# and the answer's digits are the last digits of the $s_i$, from the last column to the first
# (the last $s_i$ in full, so its carry becomes the leading digit).
#
# **A template and a verifier.** The model writes `<think>` working `</think>` and then the answer
# in a box. A program reads the answer back — the *last* box, because models revise themselves
# ("`\boxed{12}`, no wait, `\boxed{13}`"), and never a number from a check written after the
# answer ("Check: 42 − 2 = 40") — and compares it, as a canonical number, with the truth. Training
# with that verifier as the reward (GRPO in topic 14) or keeping only verified traces for
# fine-tuning (rejection sampling) needs no human labels, only problems with known answers.
#
# **Self-consistency.** Sample $n$ traces and vote on their final answers. In the simplest
# setting each sample is right with probability $p$ and otherwise gives the *same* wrong answer.
# With $K \sim \mathrm{Binomial}(n, p)$ right samples the vote is right when $K > n/2$; at a tie
# ($n$ even, $K = n/2$) our rule returns the answer seen first, which is the right one with
# probability exactly $\tfrac12$. So
#
# $$
# P_{\text{vote}}(p, n) = \sum_{k > n/2} \binom{n}{k} p^k (1 - p)^{n - k} \;+\; \tfrac12 \binom{n}{n/2} p^{n/2} (1 - p)^{n/2} \quad (\text{last term for even } n).
# $$
#
# For $p > \tfrac12$ it grows towards 1 with $n$ (the law of large numbers); for $p < \tfrac12$
# it falls towards 0: voting amplifies whatever the single sample does more often. An even $n$
# buys nothing over $n - 1$: the tie term exactly makes up for the lost majority.

# %% [markdown]
# ## 2. A calculation by hand
#
# * $p = 0.6$, $n = 3$: $P = 3 \cdot 0.6^2 \cdot 0.4 + 0.6^3 = 0.432 + 0.216 = 0.648$.
# * $n = 4$: $P = 4 \cdot 0.6^3 \cdot 0.4 + 0.6^4 + \tfrac12 \cdot 6 \cdot 0.6^2 \cdot 0.4^2 = 0.3456 + 0.1296 + 0.1728 = 0.648$ — the same as $n = 3$.
# * $47 + 85$: ones column $7 + 5 + 0 = 12$ (write 2, carry 1), tens column $4 + 8 + 1 = 13$: the
#   trace is `7+5+0=12,4+8+1=13` and the sum is `13` followed by `2`: 132.
# * The completion `"Answer: 42\nCheck: 42 - 2 = 40"` has no box, so its "Answer:" line decides: 42,
#   although the last number of the text is 40.

# %%
p_h = 0.6
by_hand_3 = 3 * p_h ** 2 * (1 - p_h) + p_h ** 3
by_hand_4 = 4 * p_h ** 3 * (1 - p_h) + p_h ** 4 + 0.5 * 6 * p_h ** 2 * (1 - p_h) ** 2
print("P_vote(0.6, 3) by hand:", round(by_hand_3, 4), "  P_vote(0.6, 4) by hand:", round(by_hand_4, 4))
carry, steps = 0, []
for x, y in ((7, 5), (4, 8)):
    s = x + y + carry
    steps.append(f"{x}+{y}+{carry}={s}")
    carry = s // 10
print("trace of 47 + 85 by hand:", ",".join(steps))

# %% [markdown]
# ## 3. Implementation
#
# One module, `reasoning.py`. The template's pieces and the two reward values are constants.

# %%
#| include: reasoning.py::header

# %% [markdown]
# ### 3.1 Reading the answer
#
# `normalize_number(text)` accepts an optional sign, ASCII digits — plain or in thousands groups
# separated by one kind of separator, `,` or a single space — and an optional fraction, and
# returns one canonical spelling (no separators, no leading zeros, no trailing zeros of the
# fraction, no `+`, no `-0`); anything else gives `None`. `last_box(text)` finds the content of
# the last complete `\boxed{...}` (a depth counter for nested braces; unclosed and empty boxes do
# not count). `extract_answer(text)` applies three rules in order: the last box; else the rest of
# the line after the last "answer:" (any letter case); else the last number of the text outside
# lines that begin with "check" or "verif". The docstring gives the regular expression of a
# "number in running text".

# %%
#| include: reasoning.py::normalize_number,last_box,extract_answer

# %%
for text in ["\\boxed{1,234}", "Answer: 42\nCheck: 42 - 2 = 40", "First \\boxed{12}, no: \\boxed{13}.",
             "The area is \\boxed{\\frac{1}{2}}.", "So 5 and 7 make 12.\nCheck: 7 + 5 = 12 and 12 - 5 = 7",
             "I give up."]:
    print(f"{text!r:58} -> {extract_answer(text)!r}")
print(normalize_number(" +1,000.50 "), normalize_number("-0.00"), normalize_number("12,34"))

# %%
#| grade: test_normalize_number_by_hand test_normalize_number_built_numbers_and_oracle test_normalize_number_reference_and_raises test_last_box_by_hand test_last_box_matches_stack_oracle test_extract_answer_fixture_suite test_extract_answer_constructed_and_oracle test_extract_answer_reference_and_raises test_extract_answer_hidden_suite

# %% [markdown]
# ### 3.2 Voting
#
# `majority_vote(answers)` counts the answers that are not `None` and returns the most frequent;
# among tied answers the one that occurred first (a dict keeps insertion order, which is the order
# of first occurrence). `majority_accuracy(p, n)` is the formula of section 1.

# %%
#| include: reasoning.py::majority_vote,majority_accuracy

# %%
print(majority_vote(["7", "5", "5", "7"]), majority_vote([None, "3", None]), majority_vote([]))
print("P_vote(0.6, n) for n = 1..8:", [round(majority_accuracy(0.6, n), 4) for n in range(1, 9)])

# %%
#| grade: test_majority_vote_by_hand_and_tie_rule test_majority_vote_matches_oracle test_majority_vote_reference test_majority_accuracy_by_hand_and_enumeration test_majority_accuracy_reference_and_raises test_self_consistency_accuracy_matches_binomial test_majority_accuracy_large_n_hidden

# %% [markdown]
# ### 3.3 The template, its masks and the loss
#
# `format_thinking` joins the parts with nothing added. `think_masks(text)` marks the thinking —
# from the character after `<think>` through the end of `</think>`, so the model learns to close
# its thinking — and the answer (everything after). The prompt, up to and including `<think>`, is
# in neither: the model is never trained to predict the question. `thinking_loss` is the
# cross-entropy of each target token with weight $w$ on thinking tokens, 1 on answer tokens and 0
# elsewhere,
#
# $$
# L = \frac{\sum_t w_t \, \mathrm{CE}_t}{\sum_t w_t}, \qquad \mathrm{CE}_t = -\log \mathrm{softmax}(z_t)_{y_t} ,
# $$
#
# so $w = 0$ trains on the final answer only and $w = 1$ on the whole completion.

# %%
#| include: reasoning.py::format_thinking,think_masks,thinking_loss

# %%
demo = format_thinking("47+85=", "7+5+0=12,4+8+1=13", "132")
thinking_demo, answer_demo = think_masks(demo)
print(demo)
print("".join("t" if t else ("a" if a else ".") for t, a in zip(thinking_demo, answer_demo)))

# %%
#| grade: test_format_thinking_by_hand_and_raises test_think_masks_match_oracle test_think_masks_raises test_thinking_loss_values_and_reference test_thinking_loss_gradients_and_forms test_thinking_loss_raises

# %% [markdown]
# ### 3.4 The task: addition with worked traces
#
# `addition_trace(a, b)` writes the columns from the ones up, each as `x+y+c=s`.

# %%
#| include: reasoning.py::addition_trace

# %%
print(addition_trace(47, 85), "|", addition_trace(999, 1), "|", addition_trace(5, 0))

# %%
#| grade: test_addition_trace_by_hand_and_raises test_addition_trace_matches_oracle_and_sum test_addition_trace_reference

# %% [markdown]
# ### 3.5 The verifier as a reward, and rejection sampling
#
# `verifiable_reward(completion, truth)` checks the format first (starts with `<think>`, one tag
# of each kind, a complete box after `</think>`) and only then the answer of that box: a right
# answer in the wrong format earns nothing, so a policy trained on it cannot learn to skip the
# format. `rejection_sample` keeps drawing until `n_keep` completions earn the full reward, or
# `max_tries` are spent.

# %%
#| include: reasoning.py::verifiable_reward,rejection_sample

# %%
for completion in ["<think>7+5+0=12,4+8+1=13</think>\\boxed{132}", "<think>7+5+0=12,4+8+1=13</think>\\boxed{131}",
                   "7+5+0=12,4+8+1=13 so the answer is 132", "<think>\\boxed{132}</think>132"]:
    print(f"{completion!r:52} reward {verifiable_reward(completion, 132)}")

# %%
#| grade: test_verifiable_reward_edge_cases test_verifiable_reward_reference_and_raises test_verifiable_reward_addition_completions_hidden test_rejection_sample_scripted test_rejection_sample_raises test_rejection_sample_random_sampler_hidden

# %% [markdown]
# ## 4. Experiment: does writing the working help a tiny model add?
#
# Two identical tiny LLaMAs (the given `llmlab.lib.llama.TinyLlama`: 2 layers, `d_model` 64,
# character level) learn three-digit addition ($a, b$ uniform in 100…999) from the same
# problems, for the same number of steps with the same seed:
#
# * **direct**: `478+356=<think></think>\boxed{834}` — nothing to think;
# * **worked**: `478+356=<think>8+6+0=14,7+5+1=13,4+3+1=8</think>\boxed{834}`.
#
# Both train with `thinking_loss` (thinking weight 1, prompt masked). Then both complete 200
# held-out problems greedily from `prompt<think>`, and we measure the exact-match accuracy —
# `verifiable_reward(...) == 1.0`: well formatted and the right number. The worked model sees
# longer sequences, so it spends more computation per problem; that is the point of thinking.

# %%
import random
import time

import matplotlib.pyplot as plt

from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.lib.text import CharCodec

torch.set_num_threads(1)            # tiny models: one thread is faster than several waiting on each other
started_all = time.perf_counter()
rng = random.Random(19)
pairs = set()
while len(pairs) < 6200:
    pairs.add((rng.randint(100, 999), rng.randint(100, 999)))
pairs = sorted(pairs)
rng.shuffle(pairs)
train_pairs, test_pairs = pairs[:6000], pairs[6000:]         # held out: never seen in training
codec = CharCodec(sorted(set("0123456789+=," + THINK_OPEN + THINK_CLOSE + BOXED + "}")))
STEPS, BATCH, LR = 350, 32, 3e-3
PROMPT = len(f"{100}+{100}={THINK_OPEN}")                        # every prompt has 15 characters


def encode(worked):
    """(ids, thinking mask, answer mask) of every training text, padded on the right: (N, L)."""
    texts = [format_thinking(f"{a}+{b}=", addition_trace(a, b) if worked else "", str(a + b))
             for a, b in train_pairs]
    L = max(len(t) for t in texts)
    ids = torch.zeros(len(texts), L, dtype=torch.long)
    thinking = torch.zeros(len(texts), L, dtype=torch.bool)
    answer = torch.zeros(len(texts), L, dtype=torch.bool)
    for i, text in enumerate(texts):
        ids[i, :len(text)] = codec.encode(text)
        thinking[i, :len(text)], answer[i, :len(text)] = think_masks(text)
    return ids, thinking, answer


def train(worked):
    ids, thinking, answer = encode(worked)
    torch.manual_seed(0)
    model = TinyLlama(LlamaConfig(vocab_size=codec.vocab_size, block_size=ids.shape[1] + 4, n_layer=2, n_head=4,
                                  n_kv_head=2, d_model=64))
    opt = torch.optim.AdamW(model.parameters(), lr=LR, weight_decay=0.0)
    gen = torch.Generator().manual_seed(0)
    losses = []
    for step in range(STEPS):
        for group in opt.param_groups:                          # warmup, then linear decay to LR / 10
            group["lr"] = LR * min(1.0, (step + 1) / 30) * (1 - 0.9 * step / STEPS)
        rows = torch.randint(0, len(ids), (BATCH,), generator=gen)
        x, y = ids[rows, :-1], ids[rows, 1:]                    # (B, L - 1): predict the next character
        loss = thinking_loss(model(x)[0], y, thinking[rows, 1:], answer[rows, 1:], thinking_weight=1.0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        losses.append(loss.item())
    return model.eval(), losses, ids.shape[1]


@torch.no_grad()
def complete(model, prompts, max_new, temperature=0.0, gen=None):
    """Complete equal-length prompts together; stop once every row has closed its box, and cut each
    completion after the "}" that closes its box (a stop sequence)."""
    idx = torch.stack([codec.encode(p) for p in prompts])      # (N, T0)
    T0 = idx.shape[1]
    for _ in range(max_new):
        logits = model(idx[:, -model.config.block_size:])[0][:, -1]        # (N, V)
        if temperature == 0:
            nxt = logits.argmax(-1, keepdim=True)
        else:
            nxt = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=gen)
        idx = torch.cat([idx, nxt], dim=1)
        texts = [codec.decode(row[T0:]) for row in idx]
        if all(THINK_CLOSE in t and "}" in t.split(THINK_CLOSE)[-1] for t in texts):
            break
    cut = [t[:t.index("}", t.index(THINK_CLOSE)) + 1] if THINK_CLOSE in t and "}" in t.split(THINK_CLOSE)[-1] else t
           for t in texts]
    return [THINK_OPEN + t for t in cut]                        # the completion starts with <think>


results = {}
for worked in (False, True):
    t0 = time.perf_counter()
    model, losses, length = train(worked)
    train_s = time.perf_counter() - t0
    completions = complete(model, [f"{a}+{b}={THINK_OPEN}" for a, b in test_pairs], length - PROMPT + 4)
    rewards = [verifiable_reward(c, a + b) for c, (a, b) in zip(completions, test_pairs)]
    name = "worked" if worked else "direct"
    results[name] = {"model": model, "losses": losses, "length": length, "completions": completions,
                     "accuracy": sum(r == CORRECT_REWARD for r in rewards) / len(rewards),
                     "formatted": sum(r > 0 for r in rewards) / len(rewards)}
    print(f"{name}: sequences of {length} characters, trained {STEPS} steps in {train_s:.1f} s, "
          f"final loss {sum(losses[-20:]) / 20:.3f}; held-out exact match "
          f"{results[name]['accuracy']:.3f}, well formatted {results[name]['formatted']:.3f}")
gap = results["worked"]["accuracy"] - results["direct"]["accuracy"]
print(f"worked minus direct exact match on the same {len(test_pairs)} held-out problems: {gap:+.3f}")
print("example (worked):", results["worked"]["completions"][0], " truth", sum(test_pairs[0]))
print("example (direct):", results["direct"]["completions"][0], " truth", sum(test_pairs[0]))

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
for name in ("direct", "worked"):
    losses = results[name]["losses"]
    smooth = [sum(losses[max(0, i - 19):i + 1]) / len(losses[max(0, i - 19):i + 1]) for i in range(len(losses))]
    axes[0].plot(smooth, label=name)
axes[0].set_xlabel("step")
axes[0].set_ylabel("training loss (mean of the last 20 steps)")
axes[0].set_yscale("log")
axes[0].legend()
axes[1].bar(["direct", "worked"], [results["direct"]["accuracy"], results["worked"]["accuracy"]],
            color=["tab:blue", "tab:orange"])
axes[1].set_ylabel(f"held-out exact match ({len(test_pairs)} problems)")
axes[1].set_ylim(0, 1)
fig.suptitle("three-digit addition: answer at once vs. worked column by column")
plt.show()

# %% [markdown]
# The two losses are not comparable as numbers — the worked model's loss averages over many
# easy trace characters as well as the answer — the held-out exact match is.
#
# **Self-consistency and rejection sampling with the worked model.** For 30 held-out problems we
# sample 5 completions each at temperature 0.7, measure the per-sample accuracy $\hat p$, and compare
# the accuracy of the majority vote with $P_{\text{vote}}(\hat p, 5)$. The formula assumes
# independent samples and a single wrong answer; real problems differ in difficulty (some are
# always right, some never) and wrong answers scatter, so the two need not agree — the numbers
# show how far apart they are. Rejection sampling then keeps, per problem, the first verified
# trace among the 5 draws: the kept set is the fine-tuning data a next round would train on.

# %%
N_PROBLEMS, N_SAMPLES, TEMPERATURE = 30, 5, 0.7
model = results["worked"]["model"]
gen = torch.Generator().manual_seed(1)
problems = test_pairs[:N_PROBLEMS]
prompts = [f"{a}+{b}={THINK_OPEN}" for a, b in problems for _ in range(N_SAMPLES)]
samples = complete(model, prompts, results["worked"]["length"] - PROMPT + 4, temperature=TEMPERATURE, gen=gen)
per_sample, vote_right, kept, distinct = [], [], 0, []
for i, (a, b) in enumerate(problems):
    mine = samples[i * N_SAMPLES:(i + 1) * N_SAMPLES]
    per_sample += [verifiable_reward(c, a + b) == CORRECT_REWARD for c in mine]
    answers = [extract_answer(c.split(THINK_CLOSE)[-1]) for c in mine]
    distinct.append(len(set(answers)))
    vote_right.append(majority_vote(answers) == str(a + b))
    pool = iter(mine)
    traces, tries = rejection_sample(lambda prompt: next(pool), f"{a}+{b}=", a + b, 1, N_SAMPLES)
    kept += len(traces)
p_hat = sum(per_sample) / len(per_sample)
vote_acc = sum(vote_right) / len(vote_right)
print(f"temperature {TEMPERATURE}, {N_PROBLEMS} problems × {N_SAMPLES} samples: per-sample accuracy p̂ = {p_hat:.3f}; "
      f"majority of 5 = {vote_acc:.3f}; formula P_vote(p̂, 5) = {majority_accuracy(p_hat, 5):.3f}")
print(f"distinct answers among the {N_SAMPLES} samples of a problem: {sum(distinct) / len(distinct):.2f} on average "
      f"(the formula's setting has at most 2)")
print(f"rejection sampling kept a verified trace for {kept} of {N_PROBLEMS} problems")
print(f"greedy accuracy of the same model on these {N_PROBLEMS} problems: "
      f"{sum(verifiable_reward(c, a + b) == 1.0 for c, (a, b) in zip(results['worked']['completions'], problems)) / N_PROBLEMS:.3f}")
print(f"experiment time: {time.perf_counter() - started_all:.1f} s")

# %% [markdown]
# Read the numbers: the exact match of the two models on the same 200 held-out problems (the
# printed lines above), how the sampled accuracy at temperature 0.7 compares with the greedy one,
# whether the vote of 5 samples lands above or below the single sample, and how close the
# binomial formula comes to the measured vote. One seeded run is one sample of each number:
# exercise 3 asks how much they move with the seed.
#
# ## 5. Summary
#
# * Chain of thought spreads a computation over many generated tokens that the model can read
#   back; a template `prompt<think>…</think>\boxed{answer}` separates working from answer.
# * A verifier reads the final answer (the last box; "Answer:" lines; the last number outside
#   verification lines) in one canonical number format, and turns format and correctness into a
#   reward: 1.0, 0.1, or 0.0 when the format is broken, whatever the answer.
# * Self-consistency votes over samples, ties to the earliest; in the two-answer model its accuracy
#   is the binomial tail plus half the tie,
#   $P_{\text{vote}} = \sum_{k > n/2} \binom{n}{k} p^k (1 - p)^{n - k} + \tfrac12 \binom{n}{n/2} p^{n/2}(1 - p)^{n/2}$.
# * Masks decide what the model learns from: never the prompt; thinking tokens with weight $w$.
#
# ## 6. Exercises
#
# 1. **By hand.** Compute $P_{\text{vote}}(0.4, 3)$ and $P_{\text{vote}}(0.4, 5)$. Does voting help a
#    model that is right less than half of the time? Check with `majority_accuracy`.
# 2. **Answer only.** Retrain the worked model with `thinking_weight=0`: it still reads traces in
#    its context during training but is never taught to write them. What happens at test time?
# 3. **Seeds.** Rerun the experiment with three seeds for `torch.manual_seed` and the batch
#    generator. How much do the two accuracies vary, and does their order change?
# 4. **Reverse the answer.** Write the answer's digits ones first (as the trace produces them) and
#    measure the direct model again: is the order of the digits, not the thinking, what helps?
# 5. **Break the verifier.** Give `verifiable_reward` the completion
#    `"<think>…</think>\boxed{834} \boxed{}"`. Why is the empty box ignored, and what would a policy
#    learn if the first box counted instead of the last?
