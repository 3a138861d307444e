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
# # 08 · BERT: encoder-only pretraining
#
# A GPT reads left to right and learns by predicting the next token. BERT (Devlin et al.,
# 2018) makes the opposite choice: its encoder reads the **whole** sequence at once, every
# position looking at every other real position before and after it, and it learns by
# recovering tokens that were hidden from it — *masked language modelling* (MLM). The encoder
# itself is the Transformer of chapter 04 without the causal mask; what this chapter builds
# is everything around it that makes the training signal honest and the batches work.
#
# | unit | what it does |
# |---|---|
# | `mlm_mask(input_ids, mask_prob, special_ids, vocab_size, mask_id, generator)` | picks the positions to predict and corrupts them with the 80/10/10 rule |
# | `BertEmbeddings` | token + position + **segment** embeddings, then a LayerNorm |
# | `EncoderSelfAttention` | bidirectional multi-head attention with a **padding mask** |
# | `BertEncoder` | embeddings, a stack of encoder blocks, a final LayerNorm |
# | `MLMHead` | dense → GELU → LayerNorm → a decoder tied to the token embeddings |
# | `mlm_loss(logits, labels)` | cross-entropy over the chosen positions only |
# | `BertForMaskedLM` | the encoder and the tied MLM head: `(logits, loss)` |
# | `ClsClassifier` | a sequence classifier reading the `[CLS]` position |
#
# At the end we pretrain a small character-level BERT on the course corpus, measure how
# often it recovers masked characters of held-out text compared with a unigram baseline, and
# measure how much of that comes from the left context, the right context, and both.

# %% [markdown]
# ## 1. Intuition
#
# **Why mask?** A bidirectional encoder cannot be trained to predict "the next token": the
# output at position `t` already sees token `t + 1`, and would just copy it. BERT instead
# hides some tokens and asks for them back. A position chosen for prediction gets a *label*
# (its original id); every other position gets the label `-100`, which the loss ignores.
#
# **The 80/10/10 rule.** Each non-special position is chosen with probability
# `mask_prob` (BERT: 15%). A chosen position is then
# * replaced by `[MASK]` with probability 0.8,
# * replaced by a random token with probability 0.1,
# * left unchanged with probability 0.1.
#
# Why not always `[MASK]`? Because `[MASK]` never occurs when the encoder is later used on
# real text. If every prediction target were a `[MASK]`, the model could learn to produce good
# representations only at `[MASK]` positions. With 10% random and 10% unchanged targets, the
# model can never tell which real-looking tokens it will be asked about, so it must keep a
# good representation of every token.
#
# **Special tokens.** `[CLS]` starts every sequence (its output summarises the sequence for
# classification), `[SEP]` ends each sentence, `[PAD]` fills batches up to a common length,
# and `[MASK]` marks hidden tokens. Specials are never chosen for prediction.
#
# **Padding that changes nothing.** Sequences of different lengths share a batch by padding
# the short ones. An `attention_mask` of shape `(B, T)` says which positions are real; in this
# course **True = real token, False = padding** (Hugging Face's convention too). Inside
# attention a query never attends to a padding key: its weight is exactly 0. Every other
# operation of the encoder works position by position, so the hidden states of the real
# positions are then *exactly* those of the unpadded sequence, whatever the padding ids are.
#
# **Segments.** For sentence-pair tasks BERT adds a third embedding: segment 0 for `[CLS]`,
# sentence A and its `[SEP]`, segment 1 for sentence B. The input vector of a position is
# `tok_emb(id) + pos_emb(position) + seg_emb(segment)`, normalised by a LayerNorm: for the
# token $x_t$ at position $t$ in segment $s_t$,
#
# $$
# h^{(0)}_t = \operatorname{LN}\bigl( E_{\text{tok}}[x_t] + E_{\text{pos}}[t] + E_{\text{seg}}[s_t] \bigr) .
# $$
#
#
# **Bidirectional.** No causal mask: changing the token at position `t` changes the outputs at
# positions *before* `t` too. That is the point — the encoder fills in a gap using both sides.

# %% [markdown]
# ## 2. Small calculations by hand
#
# ### 2.1 How many positions does `mlm_mask` touch?
#
# Take a batch of `n = 2000` non-special positions and `mask_prob = 0.15`. The number of
# chosen positions is $\mathrm{Binomial}(n, 0.15)$: mean $0.15 \cdot 2000 = 300$, standard deviation
# $\sqrt{2000 \cdot 0.15 \cdot 0.85} \approx 15.97$. A random replacement is uniform over the whole
# vocabulary of size $V$, so it is `[MASK]` with probability $1/V$ and the original token with
# probability $1/V$. After corruption a chosen position therefore shows
#
# $$
# \begin{aligned}
# P(\texttt{[MASK]}) &= 0.8 + \frac{0.1}{V}, \\
# P(\text{its original token}) &= 0.1 + \frac{0.1}{V}, \\
# P(\text{another token}) &= 0.1 \cdot \frac{V - 2}{V}.
# \end{aligned}
# $$
#
# For `V = 20`: 0.805, 0.105 and 0.09; of 300 chosen positions about 241.5, 31.5 and 27.
#
# ### 2.2 A padding key gets weight 0
#
# With the key mask $m_j$ (1 for a real key, 0 for padding), the masked softmax of a query's
# scores $s_j$ is
#
# $$
# w_j = \frac{m_j \, e^{s_j}}{\sum_{l} m_l \, e^{s_l}},
# $$
#
# which is what setting the padding scores to $-\infty$ computes. One query, three keys, head
# size $D = 1$, scores $q \cdot k / \sqrt{D} = [1.0, 2.0, 0.5]$, and key 2 is padding. Without the
# mask the softmax is `[e¹, e², e⁰·⁵] / (e¹ + e² + e⁰·⁵)`
# `= [2.7183, 7.3891, 1.6487] / 11.7561 = [0.2312, 0.6285, 0.1402]`. With the mask the padding
# key's score becomes −∞, its weight exactly 0, and the two real keys share the whole mass:
# `[2.7183, 7.3891] / 10.1073 = [0.2689, 0.7311]` — exactly the softmax of the sequence without
# its padding.
#
# ### 2.3 The loss ignores −100
#
# Three positions with labels `[2, -100, 0]`. The model gives the right token of position 0
# probability 0.5 and that of position 2 probability 0.25. The MLM loss averages over the two
# labelled positions only: $(-\ln 0.5 - \ln 0.25) / 2 = (0.6931 + 1.3863) / 2 = 1.0397$. Dividing
# by all three positions instead would give `0.6931` — a loss that shrinks as fewer tokens are
# masked, which is wrong.

# %%
import math

n_h, p_h, V_h = 2000, 0.15, 20
print(f"chosen: mean {n_h * p_h:.1f}, standard deviation {math.sqrt(n_h * p_h * (1 - p_h)):.2f}")
split_h = [0.8 + 0.1 / V_h, 0.1 + 0.1 / V_h, 0.1 * (V_h - 2) / V_h]
print("[MASK] / original / other:", [round(s, 4) for s in split_h], "of 300:", [round(300 * s, 1) for s in split_h])
scores_h = [1.0, 2.0, 0.5]
exps_h = [math.exp(s) for s in scores_h]
print("softmax without mask:", [round(e / sum(exps_h), 4) for e in exps_h])
print("softmax with key 2 masked:", [round(e / sum(exps_h[:2]), 4) for e in exps_h[:2]] + [0.0])
print(f"MLM loss by hand: {(-math.log(0.5) - math.log(0.25)) / 2:.4f}   (wrong divisor 3: "
      f"{(-math.log(0.5) - math.log(0.25)) / 3:.4f})")

# %% [markdown]
# ## 3. Implementation
#
# Everything lives in `bert.py`. Shapes: `B` batch, `T` sequence length (`T ≤ max_len`),
# `C = d_model`, `V = vocab_size`, `H` heads of size `D = C / H`. The module imports the given
# `MLP` (Linear → exact GELU → Linear) and GPT-2's initialisation from `llmlab.lib.nn`.

# %%
#| include: bert.py::header

# %% [markdown]
# ### 3.1 The configuration (given)
#
# `BertConfig` holds the sizes; it is given and validates itself as `GPTConfig` did in
# chapter 05. `n_segments` is 2 for BERT's sentence pairs.

# %%
#| include: bert.py::BertConfig

# %% [markdown]
# ### 3.2 `mlm_mask`
#
# `mlm_mask(input_ids, mask_prob, special_ids, vocab_size, mask_id, generator=None)` returns
# `(corrupted, labels)`, two **new** int64 tensors of `input_ids`' shape (any shape):
#
# 1. raise `ValueError` unless `0 ≤ mask_prob ≤ 1`, `vocab_size ≥ 1` and `0 ≤ mask_id < vocab_size`;
# 2. find the special positions (`torch.isin`, or a loop over `special_ids`: a list, tuple or
#    set, possibly empty) — they are never chosen;
# 3. choose every other position independently with probability `mask_prob`
#    (`torch.rand(shape, generator=generator) < mask_prob`: one draw **per position**, not one
#    per column shared by the rows);
# 4. `labels` = the original id at the chosen positions, `-100` elsewhere;
# 5. for each chosen position one more uniform draw decides: `< 0.8` → `mask_id`, `< 0.9` → a
#    random id from `torch.randint(vocab_size, …)` (high is exclusive: ids 0 … V−1, specials
#    included), otherwise unchanged.
#
# Never edit `input_ids` in place (`input_ids[chosen] = mask_id` would corrupt the caller's
# data, and the labels with it); `torch.where` builds new tensors. All randomness comes from
# `generator` (the global RNG when it is `None`).

# %%
#| include: bert.py::mlm_mask

# %% [markdown]
# Section 2.1 again: 2000 positions with ids 4 … 19 (specials 0 … 3, `V = 20`, `[MASK] = 3`) in
# ten rows that start with `[CLS]` (1) and end with `[SEP]` (2).

# %%
g_demo = torch.Generator().manual_seed(0)
demo_ids = torch.randint(4, 20, (10, 202), generator=g_demo)
demo_ids[:, 0], demo_ids[:, -1] = 1, 2
demo_corrupted, demo_labels = mlm_mask(demo_ids, 0.15, [0, 1, 2, 3], 20, 3, generator=g_demo)
chosen_demo = demo_labels != -100
out_demo, orig_demo = demo_corrupted[chosen_demo], demo_ids[chosen_demo]
n_mask_demo = int((out_demo == 3).sum())
n_keep_demo = int((out_demo == orig_demo).sum())
print(f"chosen {int(chosen_demo.sum())} of 2000 (expected 300 ± 16)")
print(f"[MASK] {n_mask_demo}, unchanged {n_keep_demo}, other {int(chosen_demo.sum()) - n_mask_demo - n_keep_demo}"
      f"   (expected about 241.5, 31.5, 27)")
print("specials chosen:", int(chosen_demo[:, [0, -1]].sum()))
print("row 0 before:", demo_ids[0, :12].tolist())
print("row 0 after: ", demo_corrupted[0, :12].tolist())
print("row 0 labels:", demo_labels[0, :12].tolist())

# %% [markdown]
# The graders test the rule statistically, each test with its false-failure rate written in it
# (at most 1e-6): the fraction of chosen positions (binomial), the `[MASK]` / unchanged / other
# split and the uniformity of random replacements over the whole vocabulary (chi-square), and
# the independence of the rows; and deterministically: invariants that hold for every draw
# (only chosen positions change, labels are the originals, the input is untouched), specials,
# `mask_prob` 0 and 1, the errors, and the generator.

# %%
#| grade: test_mlm_mask_invariants_on_every_draw test_mlm_mask_specials_never_chosen test_mlm_mask_probability_zero_and_one test_mlm_mask_rejects_bad_arguments test_mlm_mask_randomness_comes_from_the_generator test_mlm_mask_reference_labels test_mlm_mask_chooses_each_position_with_mask_prob test_mlm_mask_80_10_10_split test_mlm_mask_random_ids_are_uniform_over_vocabulary test_mlm_mask_positions_are_chosen_independently test_mlm_mask_statistics_hidden

# %% [markdown]
# ### 3.3 `BertEmbeddings`
#
# `tok_emb (V, C)`, `pos_emb (max_len, C)`, `seg_emb (n_segments, C)`, `ln`, `drop`; the forward
# pass is `drop(ln(tok_emb(ids) + pos_emb(0 … T−1) + seg_emb(segments)))`, with segment 0
# everywhere when `segment_ids` is `None`. Raise `ValueError` when `T > max_len` or the segment
# ids do not have the shape of the token ids.

# %%
#| include: bert.py::BertEmbeddings

# %%
#| grade: test_embeddings_structure test_embeddings_match_oracle test_embeddings_gradients test_embeddings_reject_bad_inputs

# %% [markdown]
# ### 3.4 `EncoderSelfAttention`
#
# The multi-head attention of chapter 04 with two changes: **no causal mask**, and a **padding
# mask on the keys**. With `attention_mask` of shape `(B, T)` (True = real), the mask the scores
# need is `(B, 1, 1, T)`: the same for every head (axis 1) and every query (axis 2), one entry per
# key. `F.scaled_dot_product_attention` accepts it as `attn_mask`, where a boolean **True means
# "may attend"** — the same convention, so no inversion is needed. (Writing the scores out
# yourself works as well: `scores.masked_fill(~mask, -inf)` before the softmax.) Validate the
# mask first: bool, shape `(B, T)`, at least one real token per row — a row of only padding would
# put −∞ everywhere and give NaN.
#
# Padding *queries* are computed like any other position (they attend to the real keys); their
# outputs are garbage that nobody reads, because the loss gives them the label −100.

# %%
#| include: bert.py::EncoderSelfAttention

# %% [markdown]
# Section 2.2 again, with the built-in the unit uses: one query, keys with scores `[1, 2, 0.5]`
# (`D = 1`), and the identity as values, so the output *is* the attention weights.

# %%
q_h = torch.ones(1, 1, 1, 1)
k_h = torch.tensor([1.0, 2.0, 0.5]).view(1, 1, 3, 1)
v_h = torch.eye(3).view(1, 1, 3, 3)
print("weights without mask:", F.scaled_dot_product_attention(q_h, k_h, v_h).flatten().tolist())
key_mask_h = torch.tensor([True, True, False]).view(1, 1, 1, 3)
print("weights with key 2 padding:", F.scaled_dot_product_attention(q_h, k_h, v_h, attn_mask=key_mask_h).flatten().tolist())

# %% [markdown]
# And the two properties on the unit itself, with random weights: padding changes nothing at
# the real positions (the row is run with 3 padding positions holding arbitrary values, and
# without them), and a change at the last position moves the output at the first (no causal
# mask).

# %%
torch.manual_seed(0)
attn_demo = EncoderSelfAttention(8, 2)
x_demo = torch.randn(1, 5, 8)
padded_demo = torch.cat([x_demo, 10 * torch.randn(1, 3, 8)], dim=1)
mask_demo = torch.tensor([[True] * 5 + [False] * 3])
with torch.no_grad():
    diff_pad = (attn_demo(padded_demo, mask_demo)[:, :5] - attn_demo(x_demo)).abs().max().item()
    changed_demo = x_demo.clone()
    changed_demo[0, 4] += 1.0
    diff_first = (attn_demo(changed_demo)[0, 0] - attn_demo(x_demo)[0, 0]).abs().max().item()
print(f"max |difference| at the real positions, padded vs unpadded: {diff_pad:.2e}")
print(f"max |change| of the output at position 0 after changing position 4: {diff_first:.3f}")

# %%
#| grade: test_attention_matches_loop_oracle test_attention_is_bidirectional test_attention_padding_changes_nothing test_attention_gradients test_attention_contract

# %% [markdown]
# ### 3.5 The encoder block (given) and `BertEncoder`
#
# The block is the pre-norm block of `llmlab.lib.nn` with the bidirectional attention and the
# mask passed on. (The original BERT normalised *after* each residual addition, "post-norm";
# pre-norm trains more easily and is what later encoders use.)
#
# `BertEncoder(config)` holds `embeddings`, `blocks` (an `nn.ModuleList` of `n_layer`
# `EncoderBlock`s) and a final LayerNorm `ln_f`, and initialises every `Linear` and `Embedding`
# weight from N(0, 0.02²) with `self.apply(init_gpt_weights)` — BERT's initialisation too. Its
# forward pass is `ln_f(blocks(embeddings(ids, segments)))`, with the same mask for every block.

# %%
#| include: bert.py::EncoderBlock

# %%
#| include: bert.py::BertEncoder

# %%
#| grade: test_encoder_structure_and_initialisation test_encoder_matches_oracle test_encoder_padding_changes_nothing test_encoder_is_bidirectional test_encoder_batch_rows_are_independent test_encoder_rejects_bad_inputs

# %% [markdown]
# ### 3.6 `MLMHead` and `mlm_loss`
#
# BERT's prediction head transforms the hidden state once more — `dense` (C → C), the exact GELU,
# a LayerNorm — and then scores every vocabulary entry with a `decoder` (C → V) that has a bias.
# The decoder's weight will be tied to the token embeddings (3.7), as chapter 05 tied GPT's head.
#
# `mlm_loss(logits, labels)` is the mean cross-entropy over the positions whose label is not −100:
# with $z_t$ the logits and $\ell_t$ the label at position $t$, and
# $\mathcal{M} = \{ t : \ell_t \ne -100 \}$,
#
# $$
# \mathcal{L}_{\text{MLM}} = -\frac{1}{|\mathcal{M}|} \sum_{t \in \mathcal{M}} \ln \operatorname{softmax}(z_t)_{\ell_t},
# \qquad \mathcal{L}_{\text{MLM}} = 0 \ \text{if} \ \mathcal{M} = \varnothing .
# $$
#
# `F.cross_entropy(..., ignore_index=-100)` computes exactly that — except when *no* position is
# labelled (a short sequence at 15% often has none), where its mean over zero terms is NaN. The
# spec asks for 0 there, still connected to the logits so that `backward()` works (e.g.
# `logits.sum() * 0.0`). Check that `labels` has the shape of `logits` without the last axis.

# %%
#| include: bert.py::MLMHead

# %%
#| include: bert.py::mlm_loss

# %%
logits_h = torch.log(torch.tensor([[0.25, 0.25, 0.5], [0.9, 0.05, 0.05], [0.25, 0.5, 0.25]]))
labels_h = torch.tensor([2, -100, 0])
print(f"mlm_loss: {mlm_loss(logits_h, labels_h).item():.4f}   (by hand 1.0397)")
z_h = logits_h.clone().requires_grad_(True)
nothing_h = mlm_loss(z_h, torch.full((3,), -100))
nothing_h.backward()
print(f"nothing labelled: loss == 0: {nothing_h.item() == 0.0}, gradient all zero: {bool((z_h.grad == 0).all())}")

# %%
#| grade: test_mlm_head_matches_oracle test_mlm_head_structure_and_initialisation test_mlm_loss_matches_cross_entropy test_mlm_loss_gradients test_mlm_loss_when_nothing_is_labelled test_mlm_loss_rejects_mismatched_shapes

# %% [markdown]
# ### 3.7 `BertForMaskedLM`
#
# The pretraining model: `encoder` and `mlm_head`, with `mlm_head.decoder.weight` set to the very
# same `Parameter` as `encoder.embeddings.tok_emb.weight` (the decoder keeps its own bias). The
# forward pass returns `(logits, loss)`, the loss from `mlm_loss` when labels are given.

# %%
#| include: bert.py::BertForMaskedLM

# %%
#| grade: test_masked_lm_decoder_is_tied test_masked_lm_matches_reference test_masked_lm_matches_oracle test_masked_lm_forward_contract test_masked_lm_matches_oracle_hidden test_pretraining_learns_from_the_right_context_hidden

# %% [markdown]
# ### 3.8 `ClsClassifier`
#
# For classification BERT reads the output at position 0, the `[CLS]` token, through a "pooler"
# (`Linear(C, C)` then `tanh`), then dropout and a `Linear(C, n_classes)`:
# $\text{logits} = W_{\text{out}} \operatorname{dropout}\bigl(\tanh(W_p h_0 + b_p)\bigr) + b_{\text{out}}$. Because the encoder is
# bidirectional, the `[CLS]` output can depend on the whole sequence even though it sits first.

# %%
#| include: bert.py::ClsClassifier

# %%
#| grade: test_cls_classifier_matches_oracle test_cls_classifier_reads_only_position_zero test_cls_classifier_contract

# %% [markdown]
# ## 4. Experiment: a character-level BERT on the course corpus
#
# ### 4.1 Data, special ids and padded batches
#
# The course corpus, character by character with the given `CharCodec`; the four special ids
# come after the characters. Each example is `[CLS]`, a window of 12 to 22 characters of the
# text, `[SEP]`, and `[PAD]` up to `T = 24`, with the attention mask True on everything but the
# padding — so every batch really exercises the padding mask. Training windows come from the
# first 90% of the paragraphs, evaluation windows from the held-out last 10%.

# %%
import time

import matplotlib.pyplot as plt

from llmlab.lib.corpus import course_corpus, train_val_split
from llmlab.lib.text import CharCodec

corpus = course_corpus()
train_text, val_text = train_val_split(corpus)
codec = CharCodec.from_text(corpus)
V_chars = codec.vocab_size
PAD, MASK, CLS, SEP = V_chars, V_chars + 1, V_chars + 2, V_chars + 3
SPECIALS = [PAD, MASK, CLS, SEP]
V = V_chars + 4
T_MAX, MIN_CHARS = 24, 12
train_ids, val_ids = codec.encode(train_text), codec.encode(val_text)
print(f"{V_chars} characters + 4 special ids: V = {V}; train {len(train_ids):,}, held out {len(val_ids):,} characters")


def make_batch(data, n, g):
    """(ids, attention_mask), both (n, T_MAX): [CLS] chars [SEP] [PAD]..., a random length per row."""
    width = T_MAX - 2
    starts = torch.randint(len(data) - width, (n,), generator=g)
    chars = data[starts[:, None] + torch.arange(width)]                       # (n, width)
    lengths = torch.randint(MIN_CHARS, width + 1, (n,), generator=g)          # characters per row
    ids = torch.full((n, T_MAX), PAD)
    ids[:, 0] = CLS
    ids[:, 1:width + 1] = torch.where(torch.arange(width) < lengths[:, None], chars, PAD)
    ids[torch.arange(n), lengths + 1] = SEP
    return ids, ids != PAD


def show(row):
    names = {PAD: "·", MASK: "▯", CLS: "[CLS]", SEP: "[SEP]"}
    return "".join(names.get(int(i), codec.decode([int(i)]) if int(i) < V_chars else "?") for i in row)


ids_show, mask_show = make_batch(train_ids, 2, torch.Generator().manual_seed(0))
corr_show, lab_show = mlm_mask(ids_show, 0.15, SPECIALS, V, MASK, generator=torch.Generator().manual_seed(1))
for b in range(2):
    print("input:    ", show(ids_show[b]))
    print("corrupted:", show(corr_show[b]), f"  ({int((lab_show[b] != -100).sum())} chosen, ▯ = [MASK], · = [PAD])")

# %% [markdown]
# ### 4.2 The model and the unigram baseline
#
# One encoder block of width 64 with 4 heads: small enough for several hundred steps in a
# 16-second CPU run. The baseline ignores the context entirely: a **unigram** model predicts
# every masked character from the character frequencies of the training text. Its accuracy
# is that of always guessing the most frequent character; its loss is the cross-entropy of
# the held-out characters under the training frequencies.
#
# The evaluation set is fixed: 512 held-out examples masked once with `mask_prob = 0.15` and a
# seeded generator. Accuracy is measured at the chosen positions (all of them, and separately at
# those that show `[MASK]`).

# %%
torch.manual_seed(0)
config = BertConfig(vocab_size=V, max_len=T_MAX, n_layer=1, n_head=4, d_model=64)
model = BertForMaskedLM(config)
print(config)
print(f"parameters: {sum(p.numel() for p in model.parameters()):,}")

g_eval = torch.Generator().manual_seed(123)
val_batch, val_mask = make_batch(val_ids, 512, g_eval)
val_corrupted, val_labels = mlm_mask(val_batch, 0.15, SPECIALS, V, MASK, generator=g_eval)
val_chosen = val_labels != -100
val_shows_mask = val_chosen & (val_corrupted == MASK)

freq = torch.bincount(train_ids, minlength=V).double()
unigram_p = freq / freq.sum()
top_char = int(freq.argmax())
unigram_acc = float((val_labels[val_chosen] == top_char).double().mean())
unigram_loss = float(-unigram_p[val_labels[val_chosen]].clamp_min(1e-12).log().mean())
print(f"unigram baseline: always {codec.decode([top_char])!r}, accuracy {unigram_acc:.1%}; "
      f"cross-entropy {unigram_loss:.3f} nats (ln V = {math.log(V):.3f})")


@torch.no_grad()
def evaluate():
    """(loss, accuracy at all chosen positions, accuracy at the [MASK]ed ones) on the fixed set."""
    was_training = model.training
    model.eval()
    logits, loss = model(val_corrupted, attention_mask=val_mask, labels=val_labels)
    pred = logits.argmax(-1)
    model.train(was_training)
    return (loss.item(), float((pred[val_chosen] == val_labels[val_chosen]).double().mean()),
            float((pred[val_shows_mask] == val_batch[val_shows_mask]).double().mean()))


print("before training: loss {:.3f}, accuracy {:.1%} (chosen), {:.1%} ([MASK]ed)".format(*evaluate()))

# %% [markdown]
# ### 4.3 Pretraining for a fixed time
#
# Each step draws a fresh batch, masks it with `mlm_mask` and takes one AdamW step on
# `mlm_loss`. Two choices for a short run: `mask_prob = 0.2` (a little above BERT's 0.15, so
# each batch carries more targets) and a learning rate of 3e-3. The run stops after `MAX_STEPS`
# steps or `TIME_BUDGET_S` seconds, whichever comes first, and evaluates every 50 steps. It
# uses one CPU thread: chapter 05 measured that, for models this small, more threads mostly
# wait for each other when other programs share the CPU.

# %%
MAX_STEPS, TIME_BUDGET_S, BATCH, LR, TRAIN_MASK_PROB = 900, 16.0, 64, 3e-3, 0.2
torch.set_num_threads(1)       # a model this small: more threads mostly wait on each other (see chapter 05)
optimizer = torch.optim.AdamW(model.parameters(), lr=LR)
g_train = torch.Generator().manual_seed(1)
step_losses, evals = [], [(0, *evaluate())]
model.train()
started = time.perf_counter()
for step in range(1, MAX_STEPS + 1):
    ids, attention_mask = make_batch(train_ids, BATCH, g_train)
    corrupted, labels = mlm_mask(ids, TRAIN_MASK_PROB, SPECIALS, V, MASK, generator=g_train)
    _, loss = model(corrupted, attention_mask=attention_mask, labels=labels)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    step_losses.append(loss.item())
    if step % 50 == 0:
        evals.append((step, *evaluate()))
    if time.perf_counter() - started > TIME_BUDGET_S:
        break
elapsed = time.perf_counter() - started
steps_done = len(step_losses)
if evals[-1][0] != steps_done:
    evals.append((steps_done, *evaluate()))
print(f"{steps_done} steps in {elapsed:.1f} s, stopped by {'the step limit' if steps_done == MAX_STEPS else 'the clock'}")
for step, loss_v, acc_v, acc_m in evals:
    print(f"step {step:4d}   held-out loss {loss_v:.3f}   accuracy {acc_v:.1%} (chosen)   {acc_m:.1%} ([MASK]ed)")

# %%
fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
ax1.plot(range(1, steps_done + 1), step_losses, color="lightgrey", lw=1, label="training batch")
ax1.plot([e[0] for e in evals], [e[1] for e in evals], "o-", label="held-out (fixed set)")
ax1.axhline(unigram_loss, color="grey", ls="--", label=f"unigram baseline {unigram_loss:.2f}")
ax1.set_xlabel("step")
ax1.set_ylabel("MLM loss (nats per masked character)")
ax1.legend()
ax2.plot([e[0] for e in evals], [e[2] for e in evals], "o-", label="all chosen positions")
ax2.plot([e[0] for e in evals], [e[3] for e in evals], "s-", label="[MASK]ed positions")
ax2.axhline(unigram_acc, color="grey", ls="--", label=f"unigram baseline {unigram_acc:.1%}")
ax2.set_xlabel("step")
ax2.set_ylabel("held-out accuracy")
ax2.legend()
fig.suptitle("character-level BERT, masked-character prediction on held-out text")
plt.show()

final_loss, final_acc, final_acc_mask = evals[-1][1:]
print(f"final held-out accuracy at [MASK]ed positions {final_acc_mask:.1%} vs unigram {unigram_acc:.1%}: "
      f"{'above' if final_acc_mask > unigram_acc else 'not above'} the baseline by "
      f"{100 * (final_acc_mask - unigram_acc):+.1f} points; loss {final_loss:.3f} vs {unigram_loss:.3f}")

# %% [markdown]
# The accuracy at all chosen positions includes the 10% left unchanged, which the model can
# simply copy, so it is higher than the accuracy at the `[MASK]`ed positions whenever the model
# has learned to copy; the `[MASK]`ed accuracy is the honest measure of filling in gaps.
#
# ### 4.4 Left context, right context, both
#
# How much does the model use each side? We take 512 held-out examples, hide **one** character
# per row with `[MASK]` (a position with at least one character on each side), and let the model
# see (a) both sides, (b) only the left side, (c) only the right side — hiding a side by marking
# it as padding in the attention mask, which the graders proved the encoder ignores exactly.
# `[CLS]` stays visible in every case, so no row is left without a real key.

# %%
g_side = torch.Generator().manual_seed(7)
side_ids, side_mask = make_batch(val_ids, 512, g_side)
n_chars = side_mask.sum(1) - 2                                        # characters per row
target_pos = 2 + (torch.rand(512, generator=g_side) * (n_chars - 2)).long()   # 2 … n_chars − 1
rows = torch.arange(512)
targets = side_ids[rows, target_pos]
hidden_input = side_ids.clone()
hidden_input[rows, target_pos] = MASK
positions = torch.arange(T_MAX)[None, :]
visible = {
    "both sides": side_mask,
    "left only": side_mask & (positions <= target_pos[:, None]),
    "right only": side_mask & ((positions >= target_pos[:, None]) | (positions == 0)),
}
side_acc = {}
model.eval()
with torch.no_grad():
    for name, vis in visible.items():
        pred = model(hidden_input, attention_mask=vis)[0][rows, target_pos].argmax(-1)
        side_acc[name] = float((pred == targets).double().mean())
side_acc["unigram baseline"] = float((targets == top_char).double().mean())
for name, acc in side_acc.items():
    print(f"{name:17s} {acc:.1%}")

fig, ax = plt.subplots(figsize=(6, 3.5))
ax.bar(list(side_acc), list(side_acc.values()), color=["C0", "C1", "C2", "grey"])
ax.set_ylabel("accuracy on one masked character")
ax.set_title("what the encoder reads: 512 held-out examples")
plt.show()
best_side = max(["left only", "right only"], key=side_acc.get)
print(f"both sides {side_acc['both sides']:.1%} vs the better single side ({best_side}) {side_acc[best_side]:.1%}: "
      f"{'higher' if side_acc['both sides'] > side_acc[best_side] else 'not higher'}")

# %% [markdown]
# Read the printed numbers: whether both sides together beat either side alone (the reason
# for a bidirectional encoder), and which single side carries more information about a
# character in this corpus. A causal GPT of chapter 05 only ever has the "left only" view.
#
# ## 5. Summary
#
# * BERT's encoder is a Transformer **without a causal mask**; it is trained by masked language
#   modelling: choose ~15% of the non-special positions, corrupt them 80/10/10
#   (`[MASK]` / random / unchanged), and predict the originals. Labels are −100 everywhere else.
# * The 10% random and 10% unchanged targets keep the model from relying on `[MASK]`, which never
#   appears in real text.
# * Padding is handled by a **key mask** in attention (here True = real token): a padding key gets
#   weight exactly 0, so real positions compute exactly what they would without the padding.
# * The input is `LayerNorm(token + position + segment)`; segments separate the two sentences of
#   a pair. The `[CLS]` output, through a tanh pooler, feeds sequence classifiers.
# * The MLM head (dense → GELU → LayerNorm → decoder with bias) shares its decoder weight with the
#   token embeddings; the loss averages over the labelled positions only, and is 0, not NaN,
#   when there are none.
#
# ## 6. Exercises
#
# 1. **By hand.** For `mask_prob = 0.15` and a batch of 64 rows of 22 characters, compute the
#    mean and standard deviation of the number of `[MASK]` tokens the input shows, and check it
#    by running `mlm_mask` 1000 times.
# 2. **Only `[MASK]`.** Change the rule to 100% `[MASK]` (edit a copy of `mlm_mask`), retrain as in
#    4.3, and evaluate the accuracy at chosen positions that were left *unchanged* (use the 80/10/10
#    evaluation set). What happens to the model's predictions for real, unmasked characters?
# 3. **Masking rate.** Retrain with `TRAIN_MASK_PROB = 0.15` and `0.4`. Print the final held-out
#    `[MASK]`ed accuracy of each run (evaluated at 0.15 as in 4.2). Which learns faster in 16 s?
# 4. **Padding side.** Put the padding at the *start* of each row instead of the end (keep `[CLS]`
#    first among the real tokens). What has to change for the positions, and does the accuracy of
#    the trained model change? Why do the graders' padding tests still pass?
# 5. **Segments.** Build pairs of windows from two *different* paragraphs half of the time and
#    from consecutive text otherwise, with segment ids 0/1, and train a `ClsClassifier` on the
#    `[CLS]` output to tell them apart (BERT's next-sentence prediction). Report its held-out
#    accuracy against the 50% of guessing.
# 6. **Causal vs bidirectional.** Give the encoder a causal mask (`attention_mask` can't express
#    it; combine a `(T, T)` lower-triangular mask with the padding mask inside a copy of
#    `EncoderSelfAttention`), retrain, and compare with the "left only" number of 4.4.
