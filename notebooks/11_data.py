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
# # 11 · Data engineering
#
# The models of the earlier chapters trained on a clean, procedural corpus. Real pretraining
# data starts as a crawl of the web: HTML full of menus and scripts, spam, teaser pages,
# the same article copied a thousand times, and near copies that differ in a date or a name.
# What a model learns depends at least as much on this pipeline as on the architecture. This
# chapter builds the classic stages, then the two transformations that happen at training
# time: packing documents into rows, and fill-in-the-middle.
#
# | unit | what it does |
# |---|---|
# | `html_to_text(html)` | the visible text of a page, one line per block (standard library only) |
# | `quality_filter(doc)` | keep or drop a document by five stated heuristics, with the reasons |
# | `normalize_text(text)`, `exact_dedup(docs)` | exact duplicates by SHA-256 of the normalised text; first occurrences kept |
# | `shingles(text, k)`, `jaccard(a, b)` | word k-grams and the similarity of two sets |
# | `minhash_signature(shingles, num_perm, seed)` | a short signature whose agreement estimates Jaccard |
# | `lsh_buckets`, `lsh_candidates` | banding the signatures so that similar documents collide |
# | `pack_sequences(docs, block_size, eos_id)` | documents end to end in rows, with segment ids and reset positions |
# | `packed_attention_mask(segment_ids)` | the block-diagonal causal mask of packed rows |
# | `fim_transform(doc, rng, mode)` | fill-in-the-middle rewriting, PSM and SPM |
# | `mixture_probs`, `mixture_sampler` | which source the next document comes from, with a temperature |
#
# At the end we run a small pipeline over a synthetic noisy web dump and measure what each
# stage removes.

# %% [markdown]
# ## 1. Intuition
#
# **Text from HTML.** A browser shows the text of a page and hides its scripts and styles;
# block elements (`<p>`, `<div>`, `<li>`, headings) start new lines, inline ones (`<b>`,
# `<a>`) do not. Our extractor follows exactly these rules, no more: real extractors
# (trafilatura, resiliparse) also guess which blocks are boilerplate.
#
# **Quality heuristics.** Gopher (Rae et al., 2021) filtered its crawl with simple rules that
# catch most non-prose: too few words, an odd mean word length (tables of numbers, URLs, long
# identifiers), too few words containing a letter (symbols, prices, code), many lines ending in
# an ellipsis (teasers of truncated articles), and many repeated lines (navigation, cookie
# banners). Each rule is cheap and explainable: the filter returns *why* it drops a document.
#
# **Exact duplicates.** Hash each document after normalising what should not matter (Unicode
# forms, case, whitespace) and keep the first document of each hash. SHA-256 keeps 32 bytes per
# document instead of the text, and collisions never happen in practice.
#
# **Near duplicates.** Two documents that share most of their word 5-grams ("shingles") are
# near copies: their Jaccard similarity
#
# $$
# J(A, B) = \frac{|A \cap B|}{|A \cup B|}
# $$
#
# is high. Comparing all pairs is quadratic. MinHash turns each set into $K$ numbers: apply a
# random hash function $h_k$ to every shingle and keep the minimum,
# $\operatorname{sig}_k(A) = \min_{x \in A} h_k(x)$. The minima of $A$ and $B$ agree exactly when
# the shingle with the smallest hash in $A \cup B$ lies in $A \cap B$, which has probability
# $J(A, B)$. So the fraction of agreeing positions estimates $J$,
#
# $$
# \hat J(A, B) = \frac{1}{K} \sum_{k=1}^{K} \mathbb{1}\bigl[ \operatorname{sig}_k(A) = \operatorname{sig}_k(B) \bigr],
# $$
#
# with a standard error $\sqrt{J (1 - J) / K}$.
#
# **LSH.** Cut each signature into $b$ bands of $r$ rows and put documents into a bucket per
# band value. Two documents with per-position agreement $s$ share a band with probability
# $s^r$, and at least one band with probability
#
# $$
# P_{\text{candidate}}(s) = 1 - \left( 1 - s^r \right)^b :
# $$
#
# an S-shaped curve that is near 0 below the threshold $(1/b)^{1/r}$ and near 1 above it. Only documents in a common
# bucket are compared.
#
# **Determinism.** Python's `hash("text")` changes from one process to the next (it is salted
# with `PYTHONHASHSEED` against hash-flooding attacks). Signatures built on it would differ
# between the workers of a distributed job, and near-duplicate detection across them would
# silently fail. Everything here hashes with `hashlib` and draws from explicit seeds.
#
# **Packing.** Padding every document to the block size wastes compute on pad tokens. Packing
# writes the documents end to end, each followed by EOS, and cuts the stream into rows. To keep
# a document from attending to its neighbour, the attention mask is block-diagonal and causal,
# and positions restart at every document, so each document is computed exactly as if it
# were alone.
#
# **Fill-in-the-middle.** Code models must complete a hole, not only continue a file. FIM
# (Bavarian et al., 2022) cuts a document into prefix, middle and suffix and moves the middle to
# the end behind sentinel tokens: the ordinary next-token objective then learns infilling.
#
# **Mixtures.** A corpus has sources of very different sizes. Sampling in proportion to size
# lets the largest dominate; a temperature $T > 1$ flattens the mixture toward the small
# sources: source $k$ of weight $w_k$ is drawn with probability
#
# $$
# p_k = \frac{w_k^{1/T}}{\sum_{j} w_j^{1/T}} .
# $$
#

# %% [markdown]
# ## 2. Small calculations by hand
#
# **Jaccard.** "the cat sat on the mat" and "the cat sat on a mat" with 3-word shingles:
# A = {the cat sat, cat sat on, sat on the, on the mat}, B = {the cat sat, cat sat on, sat on a,
# on a mat}; 2 shared of 6 distinct: J = 1/3.
#
# **LSH curve** with b = 20 bands of r = 5 rows: at s = 0.8, `s^5 = 0.328` and
# `1 − 0.672^20 = 0.9996`; at s = 0.5, `1 − (31/32)^20 = 0.470`; at s = 0.3,
# `1 − 0.99757^20 = 0.047`. The threshold `(1/20)^(1/5) = 0.549`.
#
# **Packing** documents of lengths 3, 1, 0 and 2 with block size 4: with their EOS they take
# 4 + 2 + 1 + 3 = 10 tokens, so 3 rows and 2 pad tokens. Padding each document to its own row
# would take 4 rows and 6 pad tokens.
#
# **Temperature.** Weights 1 and 4 at T = 2: `1^(1/2) = 1`, `4^(1/2) = 2`, probabilities 1/3 and
# 2/3 (instead of 1/5 and 4/5 at T = 1).

# %%
import math

A_h = {"the cat sat", "cat sat on", "sat on the", "on the mat"}
B_h = {"the cat sat", "cat sat on", "sat on a", "on a mat"}
print("Jaccard by hand:", len(A_h & B_h) / len(A_h | B_h))
for s_h in (0.8, 0.5, 0.3):
    print(f"s = {s_h}: candidate probability {1 - (1 - s_h ** 5) ** 20:.4f}")
print(f"threshold (1/20)^(1/5) = {(1 / 20) ** (1 / 5):.3f}")
print("rows when packing 10 tokens in blocks of 4:", math.ceil(10 / 4))

# %% [markdown]
# ## 3. Implementation
#
# Everything lives in `data.py`. First, the imports and the constants the units share: the
# tags of `html_to_text`, the thresholds of `quality_filter`, the prime of MinHash and the FIM
# sentinels.

# %%
#| include: data.py::header

# %% [markdown]
# ### 3.1 `html_to_text`
#
# A subclass of the standard library's `HTMLParser` receives start tags, end tags and text in
# document order. It keeps a counter of open `script`/`style` elements and collects text only
# when the counter is 0, and a line break for every block tag. Whitespace is cleaned at the
# end, line by line.

# %%
#| include: data.py::html_to_text

# %%
page = ("<html><head><title>Shop &amp; Café</title><style>p{color:red}</style></head><body>"
        "<nav><ul><li>Home</li><li>About</li></ul></nav><p>Fresh <b>bread</b>&nbsp;daily.</p>"
        "<script>track('visit');</script></body></html>")
print(html_to_text(page))

# %%
#| grade: test_html_to_text_by_hand test_html_to_text_generated_pages test_html_to_text_matches_reference

# %% [markdown]
# ### 3.2 `quality_filter`
#
# Five rules, each a ratio against a threshold, evaluated in a fixed order; the boundaries
# (exactly 5 words, exactly 0.3 of the lines) keep the document.

# %%
#| include: data.py::quality_filter

# %%
for doc in ["Ada walked to the market and bought a loaf of bread.", "Home | About | Contact | Login",
            "Read more...\nTop ten tricks...\nThe rest is here.", "1 2 3 4 5 6 7"]:
    print(quality_filter(doc), repr(doc[:40]))

# %%
#| grade: test_quality_filter_rules_and_boundaries test_quality_filter_against_integer_oracle test_quality_filter_labelled_reference

# %% [markdown]
# ### 3.3 Exact deduplication
#
# Normalise (NFKC, lower case, single spaces), hash with SHA-256, keep the first index of each
# digest.

# %%
#| include: data.py::normalize_text,exact_dedup

# %%
print(normalize_text("  The\tﬁrst  ＣＡＴ "), exact_dedup(["The cat", "dog", "the  cat", "THE CAT\n", "bird"]))

# %%
#| grade: test_normalize_text_cases test_exact_dedup_keeps_first_occurrences_in_order test_exact_dedup_against_pairwise_oracle

# %% [markdown]
# ### 3.4 Shingles, Jaccard and MinHash
#
# The hash functions are $h_k(x) = (a_k x + b_k) \bmod P$ with the Mersenne prime $P = 2^{31} - 1$,
# $1 \le a_k < P$ and $0 \le b_k < P$, so all $K \times S$ hashes of a document are one int64
# tensor expression; `a` and `b` come from a seeded
# `torch.Generator`, and the base hash `x` of a shingle from SHA-256.

# %%
#| include: data.py::shingles,jaccard,minhash_signature

# %%
import torch

a_sh, b_sh = shingles("the cat sat on the mat", 3), shingles("the cat sat on a mat", 3)
print("true Jaccard", jaccard(a_sh, b_sh))
for K in (16, 128, 1024):
    est = (minhash_signature(a_sh, K, 0) == minhash_signature(b_sh, K, 0)).double().mean().item()
    print(f"K = {K:4d}: estimate {est:.3f} (standard error {math.sqrt((1 / 3) * (2 / 3) / K):.3f})")

# %% [markdown]
# The graders compare your signatures with a second Python process started with another
# `PYTHONHASHSEED`, and forbid the built-in `hash` while your function runs.

# %%
#| grade: test_shingles_cases_and_raises test_shingles_against_oracle test_jaccard_cases test_minhash_matches_python_integer_oracle test_minhash_matches_reference test_minhash_input_forms_and_raises test_minhash_identical_across_processes test_minhash_estimates_jaccard

# %% [markdown]
# ### 3.5 LSH
#
# One dict per band from the band's values to the documents that have them; the candidate
# pairs are all pairs inside a bucket.

# %%
#| include: data.py::lsh_buckets,lsh_candidates

# %%
sig_demo = torch.tensor([[1, 2, 3, 4], [1, 2, 9, 9], [7, 7, 3, 4]])
print(lsh_buckets(sig_demo, 2, 2))
print(lsh_candidates(sig_demo, 2, 2))

# %%
#| grade: test_lsh_buckets_by_hand test_lsh_raises test_lsh_candidates_against_brute_force test_lsh_candidate_rate_matches_formula test_near_duplicates_in_course_corpus_hidden

# %% [markdown]
# ### 3.6 Packing and its mask
#
# The stream, its segment ids (−1 for padding), then positions that count up while the
# segment id stays the same and restart when it changes or a row begins. The mask is the
# equality of segment ids, restricted to the lower triangle: for the segment ids $g_1, \dots, g_T$
# of a row, query $i$ may attend to key $j$ exactly when $j \le i$ and $g_j = g_i$.

# %%
#| include: data.py::pack_sequences,packed_attention_mask

# %%
ids_d, seg_d, pos_d = pack_sequences([[1, 2, 3], [4], [], [5, 6]], 4, 0)
print(ids_d, seg_d, pos_d, sep="\n")
print(packed_attention_mask(seg_d)[1].int())

# %%
#| grade: test_pack_sequences_by_hand test_pack_sequences_against_loops_and_loses_no_token test_pack_sequences_raises_and_reference test_packed_attention_mask_against_loops test_packed_attention_equals_attention_per_document test_pack_course_corpus_hidden

# %% [markdown]
# ### 3.7 Fill-in-the-middle
#
# Two cut points from the given `random.Random`, sorted; PSM puts prefix, suffix, middle, SPM
# suffix, then prefix and middle together.

# %%
#| include: data.py::fim_transform

# %%
import random

code = "def add(a, b):\n    return a + b\n"
print(repr(fim_transform(code, random.Random(1), "psm")))
print(repr(fim_transform(code, random.Random(1), "spm")))

# %%
#| grade: test_fim_transform_by_hand test_fim_transform_reassembles_and_replays test_fim_transform_matches_reference

# %% [markdown]
# ### 3.8 Mixtures

# %%
#| include: data.py::mixture_probs,mixture_sampler

# %%
for T in (0.5, 1.0, 2.0, 10.0):
    print(f"T = {T:4}: {[round(p, 3) for p in mixture_probs([100.0, 10.0, 1.0], T).tolist()]}")

# %%
#| grade: test_mixture_probs_values_and_forms test_mixture_probs_gradients test_mixture_probs_raises test_mixture_sampler_draws test_mixture_sampler_temperatures_hidden test_small_pipeline_hidden

# %% [markdown]
# ## 4. Experiment: a pipeline over a noisy web dump
#
# ### 4.1 The dump
#
# We write a synthetic crawl from the course corpus: story pages (a paragraph in HTML with a
# navigation bar, a script and a cookie banner), exact copies of some of them (re-cased,
# re-spaced), near copies (a few words changed), and junk pages (link lists, spam, number
# tables, teaser lists). Each page carries a label of what it really is, so we can measure
# what each stage removes.

# %%
import time

import matplotlib.pyplot as plt

from llmlab.lib.corpus import course_corpus

started = time.perf_counter()
rng = random.Random(0)
stories = course_corpus(n_paragraphs=240, seed=5).split("\n\n")


def story_page(text):
    body = "".join(f"<p>{s}</p>" for s in text.replace("&", "&amp;").split(". "))
    return ("<html><head><title>Stories</title><style>.nav{}</style></head><body>"
            "<div class='nav'><a href='/'>Home</a> | <a href='/more'>More</a></div>"
            f"{body}<script>analytics({rng.randint(0, 99)});</script></body></html>")


def edit_words(text, n):
    words = text.split()
    for _ in range(n):
        words[rng.randrange(len(words))] = rng.choice(["zebra", "quartz", "violet", "ember", "maple"])
    return " ".join(words)


JUNK = [lambda: "<ul>" + "".join(f"<li><a>Link {i}</a></li>" for i in range(rng.randint(3, 8))) + "</ul>",
        lambda: "<p>" + " ".join(rng.choice(["$$$", "100%", "!!!", "FREE", "win"]) for _ in range(12)) + "</p>",
        lambda: "<table>" + "".join(f"<tr>{rng.randint(0, 999)} {rng.randint(0, 999)}</tr>" for _ in range(6)) + "</table>",
        lambda: "".join(f"<p>{rng.choice(['Read more', 'You will not believe', 'Top ten'])}...</p>" for _ in range(5))]

dump = [(story_page(s), "story", i) for i, s in enumerate(stories[:200])]
for i in rng.sample(range(200), 40):
    variant = stories[i].upper() if rng.random() < 0.5 else "  " + stories[i].replace(" ", "  ")
    dump.append((story_page(variant), "exact copy", i))
for i in rng.sample(range(200), 40):
    dump.append((story_page(edit_words(stories[i], 3)), "near copy", i))
for _ in range(60):
    dump.append((rng.choice(JUNK)(), "junk", -1))
rng.shuffle(dump)
labels = [kind for _, kind, _ in dump]
print(f"{len(dump)} pages: " + ", ".join(f"{labels.count(k)} {k}" for k in ("story", "exact copy", "near copy", "junk")))

# %% [markdown]
# ### 4.2 The stages
#
# Text extraction, the quality filter, exact dedup, then near-dedup: MinHash with 128
# permutations of 5-word shingles, LSH with 32 bands of 4 rows (threshold
# `(1/32)^(1/4) ≈ 0.42`), and every candidate pair verified by its true Jaccard ≥ 0.5; of a
# verified pair the later document is dropped.

# %%
texts = [html_to_text(page) for page, _, _ in dump]
stage = {"crawl": list(range(len(dump)))}
stage["quality filter"] = [i for i in stage["crawl"] if quality_filter(texts[i])[0]]
reasons = {}
for i in stage["crawl"]:
    for r in quality_filter(texts[i])[1]:
        reasons[r] = reasons.get(r, 0) + 1
after_filter = stage["quality filter"]
stage["exact dedup"] = [after_filter[j] for j in exact_dedup([texts[i] for i in after_filter])]

kept = stage["exact dedup"]
sets = [shingles(texts[i], 5) for i in kept]
sigs = torch.stack([minhash_signature(s, 128, 0) for s in sets])
candidates = lsh_candidates(sigs, 32, 4)
verified = [(p, q) for p, q in sorted(candidates) if jaccard(sets[p], sets[q]) >= 0.5]
dropped = {q for _, q in verified}
stage["near dedup"] = [kept[j] for j in range(len(kept)) if j not in dropped]
print(f"quality-filter reasons over the crawl: {reasons}")
print(f"LSH: {len(candidates)} candidate pairs among {len(kept)} documents "
      f"({len(kept) * (len(kept) - 1) // 2} pairs in all), {len(verified)} verified")
sources = [src for _, _, src in dump]
print(f"{'stage':15s} {'docs':>5s} {'chars':>7s} {'junk':>5s} {'distinct stories':>17s} {'redundant copies':>17s}")
for name, idx in stage.items():
    stories_kept = [i for i in idx if labels[i] != "junk"]
    distinct = len({sources[i] for i in stories_kept})
    print(f"{name:15s} {len(idx):5d} {sum(len(texts[i]) for i in idx):7d} {sum(labels[i] == 'junk' for i in idx):5d} "
          f"{distinct:17d} {len(stories_kept) - distinct:17d}")

# %%
fig, axes = plt.subplots(1, 2, figsize=(11, 4))
names = list(stage)
bottom = [0] * len(names)
for kind in ("story", "exact copy", "near copy", "junk"):
    counts = [[labels[i] for i in stage[n]].count(kind) for n in names]
    axes[0].bar(names, counts, bottom=bottom, label=kind)
    bottom = [b + c for b, c in zip(bottom, counts)]
axes[0].set(ylabel="documents", title="what each stage keeps")
axes[0].legend()
s_grid = [i / 100 for i in range(101)]
for b_, r_ in ((32, 4), (16, 8), (64, 2)):
    axes[1].plot(s_grid, [1 - (1 - s ** r_) ** b_ for s in s_grid], label=f"b={b_}, r={r_}")
pair_j = [jaccard(sets[p], sets[q]) for p, q in sorted(candidates)]
axes[1].scatter(pair_j, [1.0] * len(pair_j), marker="|", color="k", label="candidate pairs (their Jaccard)")
axes[1].set(xlabel="Jaccard similarity s", ylabel="P(candidate)", title="LSH: 1 − (1 − s^r)^b")
axes[1].legend()
plt.show()

# %% [markdown]
# Read the table row by row. "Distinct stories" counts the source paragraphs still represented
# by at least one page, "redundant copies" the pages beyond one per source: a perfect
# pipeline ends with 0 junk, 200 distinct stories and 0 redundant copies. Which page of a
# pair survives depends on the crawl order (the first one), so a copy may stand in for its
# original. Any redundant copy left in the last row was either not an LSH candidate or had a
# Jaccard below 0.5 with its original (three replaced words change up to 15 of the 5-word
# shingles of a paragraph); a drop in distinct stories would mean that two different
# stories were judged near duplicates.
#
# ### 4.3 The S-curve in simulation
#
# Pairs of signatures that agree at each position with probability s, for 32 bands of 4 rows:
# the measured candidate rate against `1 − (1 − s^r)^b`.

# %%
sim = []
g = torch.Generator().manual_seed(0)
for s in (0.2, 0.3, 0.4, 0.5, 0.6, 0.8):
    first = torch.randint(0, 1 << 40, (300, 128), generator=g)
    agree = torch.rand((300, 128), generator=g) < s
    second = torch.where(agree, first, torch.randint(0, 1 << 40, (300, 128), generator=g))
    pairs = lsh_candidates(torch.stack([first, second], 1).reshape(600, 128), 32, 4)
    rate = sum((2 * p, 2 * p + 1) in pairs for p in range(300)) / 300
    sim.append((s, rate, 1 - (1 - s ** 4) ** 32))
    print(f"s = {s}: measured {rate:.3f}, formula {sim[-1][2]:.3f}")
print(f"largest |measured − formula| = {max(abs(r - f) for _, r, f in sim):.3f} "
      f"(binomial standard error at 300 pairs ≤ {0.5 / math.sqrt(300):.3f})")

# %% [markdown]
# ### 4.4 Packing the survivors
#
# The surviving documents as character ids, packed into rows of 256 against one document per
# row padded to the longest: the fraction of pad tokens in each.

# %%
from llmlab.lib.text import CharCodec

survivors = [texts[i] for i in stage["near dedup"]]
codec = CharCodec.from_text("".join(survivors))
docs_ids = [codec.encode(t).tolist() for t in survivors]
ids_p, seg_p, pos_p = pack_sequences(docs_ids, 256, codec.vocab_size)
padded_len = max(len(d) + 1 for d in docs_ids)
pad_packed = (seg_p == -1).sum().item() / seg_p.numel()
pad_each = 1 - sum(len(d) + 1 for d in docs_ids) / (len(docs_ids) * padded_len)
print(f"{len(docs_ids)} documents, {sum(map(len, docs_ids)):,} characters")
print(f"packed: {ids_p.shape[0]} rows of 256, pad fraction {pad_packed:.4f}")
print(f"one document per row of {padded_len}: pad fraction {pad_each:.4f}")
print(f"rows holding more than one document: {(seg_p[:, 0] != seg_p[:, -1]).sum().item()} of {ids_p.shape[0]}")

# %% [markdown]
# ### 4.5 Temperature over sources
#
# Three sources with the stories, the junk and a small "code" source of 1,000,000, 100,000 and
# 10,000 tokens: the share of 20,000 draws each gets at three temperatures.

# %%
sizes = [1_000_000, 100_000, 10_000]
for T in (1.0, 2.0, 5.0):
    draws = mixture_sampler(sizes, T, 20000, torch.Generator().manual_seed(0))
    share = (torch.bincount(draws, minlength=3).double() / 20000).tolist()
    print(f"T = {T}: probabilities {[round(p, 3) for p in mixture_probs(sizes, T).tolist()]}, "
          f"drawn shares {[round(p, 3) for p in share]}")
print(f"experiment time: {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## 5. Summary
#
# * Text extraction keeps what a reader sees: no scripts or styles, one line per block.
# * Cheap, explainable heuristics remove most non-prose; each decision carries its reasons.
# * Exact dedup hashes normalised text with SHA-256 and keeps the first occurrence.
# * MinHash estimates Jaccard similarity from short signatures; LSH turns the estimate into a
#   sharp threshold `≈ (1/b)^(1/r)` without comparing all pairs. Hashes come from `hashlib`,
#   never from Python's salted `hash`, so every process agrees.
# * Packing wastes almost no tokens; the block-diagonal causal mask and reset positions make
#   each packed document compute exactly what it would alone.
# * FIM reorders prefix, middle and suffix so next-token training learns to fill a hole.
# * Temperature sampling `p ∝ w^(1/T)` moves probability from large sources to small ones.
#
# ## 6. Exercises
#
# 1. **By hand.** For b = 10, r = 10, compute the candidate probability at s = 0.7 and 0.9, and
#    the threshold. Check with the simulation of 4.3.
# 2. **Character shingles.** Replace the word shingles by character 9-grams. How do the Jaccard
#    values of the near copies in 4.2 change?
# 3. **Filter thresholds.** Lower `MIN_ALPHA_WORD_FRACTION` to 0.5 and rerun 4.2. Which junk
#    pages now pass?
# 4. **Salted hashes.** Write a MinHash with `hash(s)` and compute one signature in two
#    processes (`PYTHONHASHSEED=1` and `=2`). How many positions agree?
# 5. **Packing without a mask.** Run `F.scaled_dot_product_attention` over a packed row with
#    `is_causal=True` instead of the packed mask, and measure how much the outputs of the second
#    document change.
# 6. **FIM rate.** Real pipelines apply FIM to a fraction of documents (often 0.5) and choose
#    PSM or SPM at random. Write that wrapper and check that it still reassembles.
