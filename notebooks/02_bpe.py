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
# # 02 · Byte-level BPE
#
# The previous chapter left us with a dilemma. Bytes cover every string but make long
# sequences; words make short sequences but leave many pieces unknown. **Byte-pair encoding**
# (BPE) gets the best of both: it starts from the 256 bytes, so nothing is ever unknown, and
# then *learns* longer tokens — frequent byte sequences such as `" the"` or `"ed"` — from a
# training text. It is the tokenizer of GPT-2 and, with small changes, of most LLMs since.
#
# In this chapter you write the whole pipeline:
#
# | unit | what it does |
# |---|---|
# | `pretokenize(text, special_tokens)` | cut text into pre-tokens (GPT-2 regular expression); special tokens stay whole |
# | `train_bpe(corpus, vocab_size, special_tokens)` | learn the merges and the vocabulary |
# | `BPETokenizer(vocab, merges, special_tokens)` | `encode`, `decode`, `encode_iterable` (streaming), `save` / `load` |
#
# At the end we train BPE on the course corpus with several vocabulary sizes and measure how
# many tokens per byte of held-out text it needs, next to the byte and character tokenizers.

# %% [markdown]
# ## 1. Intuition
#
# **Merging pairs.** Write a text as a sequence of bytes. Count every pair of neighbouring
# tokens; the most frequent pair, say `t` followed by `h`, becomes a new token `th`, and every
# occurrence of `t h` in the text is replaced by it. Repeat: now `th` + `e` may be the most
# frequent pair, giving `the`. Each repetition is one **merge**; the list of merges, in the
# order they were learned, *is* the trained tokenizer. After $k$ merges the vocabulary has
# $256 + k$ tokens, and the text is shorter by the number of pair occurrences each merge
# replaced.
#
# **Encoding new text** replays the merges: start from the bytes, and apply the learned merges
# in the order they were learned (earliest first). A string that never appeared in training
# still encodes — in the worst case as its raw bytes.
#
# **Pre-tokens.** Without care, BPE would happily learn tokens like `"e t"` or `"d. T"` that
# span word boundaries and punctuation — frequent, but useless as units. GPT-2 therefore first
# cuts the text with a regular expression into **pre-tokens** (roughly: words with their leading
# space, numbers, runs of punctuation, whitespace), and merges never cross a pre-token
# boundary. A pre-token can at best become one token, so the number of pre-tokens is a lower
# bound on the number of BPE tokens.
#
# **Special tokens** such as `<|endoftext|>` (which separates documents in GPT-2's training
# data) are not text: they are cut out before anything else, never split, never merged, and
# each gets one id of its own.
#
# **Ties.** Two pairs often have the same count. The result must not depend on the order in
# which a dictionary happens to list them, so there is a fixed rule: the **lexicographically
# greatest** pair wins, comparing pairs as tuples of `bytes`.

# %% [markdown]
# ## 2. Three merges by hand
#
# Train on the tiny corpus `"low lower lowest"` with no special tokens. The GPT-2 pattern cuts
# it into three pre-tokens, each occurring once: `"low"`, `" lower"`, `" lowest"` (a word keeps
# the space in front of it). As bytes:
#
# ```
# l o w          _ l o w e r          _ l o w e s t        (_ is the space byte b" ")
# ```
#
# **Merge 1.** Count the pairs inside each pre-token (never across two of them):
#
# | pair | (l, o) | (o, w) | (_, l) | (w, e) | (e, r) | (e, s) | (s, t) |
# |---|---|---|---|---|---|---|---|
# | count | 3 | 3 | 2 | 2 | 1 | 1 | 1 |
#
# `(l, o)` and `(o, w)` tie at 3. Comparing the tuples, `b"o" > b"l"`, so `(b"o", b"w")` is the
# greater pair and wins: the new token `ow` gets id 256. The pre-tokens become
# `l ow`, `_ l ow e r`, `_ l ow e s t`.
#
# **Merge 2.** Now `(l, ow)` occurs 3 times; `(_, l)` and `(ow, e)` twice, the rest once. No tie
# at the top: `(b"l", b"ow")` → `low`, id 257. The pre-tokens: `low`, `_ low e r`, `_ low e s t`.
#
# **Merge 3.** `(_, low)` and `(low, e)` both occur twice. The first elements decide:
# `b"low" > b" "` (the space, 0x20, is smaller than every letter), so `(b"low", b"e")` wins →
# `lowe`, id 258. Note that `" low"`, arguably the more useful token, loses the tie.
#
# With `vocab_size = 259` (256 bytes + 3 merges), training stops here. The merges are
# `[(b"o", b"w"), (b"l", b"ow"), (b"low", b"e")]`.
#
# **Encoding by hand.** Encode `"lowest low"`. The pre-tokens are `"lowest"` and `" low"`.
# In `l o w e s t`, the learned pair with the lowest rank is `(o, w)` (rank 0): `l ow e s t`;
# then `(l, ow)` (rank 1): `low e s t`; then `(low, e)` (rank 2): `lowe s t`. No learned pair
# is left. In `_ l o w` the same steps give `_ l ow`, then `_ low`; `(_, low)` was never learned.
# The ids: `lowe` = 258, `s` = 115, `t` = 116, the space = 32, `low` = 257.

# %%
corpus_by_hand = "low lower lowest"
merges_by_hand = [(b"o", b"w"), (b"l", b"ow"), (b"low", b"e")]
ids_by_hand = [258, ord("s"), ord("t"), ord(" "), 257]          # "lowest low"
print("merges by hand:", merges_by_hand)
print("ids of 'lowest low' by hand:", ids_by_hand)

# %% [markdown]
# ## 3. Implementation
#
# Everything lives in one module, `bpe.py`. Its conventions, which all tests rely on:
#
# * ids 0–255 are the single bytes, **id = byte value** (`b"A"` is 65);
# * id `256 + k` is the `k`-th merge learned: `merges[k] = (left, right)` and the token's bytes
#   are `left + right`;
# * special tokens get the ids right after the merges, in the order they are given;
# * text is first cut into pre-tokens (`pretokenize`); merges never cross a pre-token boundary,
#   and special tokens are never split or merged with anything.
#
# ### 3.1 Pre-tokenization
#
# The module's header imports what we need — the third-party `regex` package, not Python's
# `re`, because the pattern uses Unicode classes: `\p{L}` is any letter (of any script) and
# `\p{N}` any digit or number character — and compiles the GPT-2 pattern. Its alternatives,
# tried in this order at each position:
#
# 1. the contractions `'s 't 're 've 'm 'll 'd` (so `"they'll"` is `"they"`, `"'ll"`);
# 2. ` ?\p{L}+` — an optional space, then a run of letters: `" world"`, `" 東京"`;
# 3. ` ?\p{N}+` — an optional space, then a run of number characters: `" 12"`;
# 4. ` ?[^\s\p{L}\p{N}]+` — an optional space, then a run of other symbols: `"!!"`, `" 🙂"`;
# 5. `\s+(?!\S)` — whitespace, but not the last space before a non-space character: that one
#    is left to start the next word (`" world"`, not `"world"`);
# 6. `\s+` — any remaining whitespace.
#
# For example, `"They'll pay 12.50 euros!!  Ok"` becomes
# `"They", "'ll", " pay", " 12", ".", "50", " euros", "!!", " ", " Ok"`: the `.` has no space in
# front, so it is a pre-token of its own and `"50"` starts without a space; of the two spaces
# before `Ok`, the first is a pre-token and the second starts `" Ok"`.

# %%
#| include: bpe.py::header

# %% [markdown]
# Now write `pretokenize(text, special_tokens=None)`. It returns a **list of strings** whose
# concatenation is exactly `text`:
#
# * First cut out the special tokens. Every occurrence of a special token becomes one element
#   of its own, equal to the special token. They are matched as **literal strings** — `|` in
#   `<|endoftext|>` has no regex meaning (hint: `regex.escape`). Scanning left to right, the
#   leftmost occurrence wins, and when several special tokens start at that position the
#   **longest** wins: with `"<|a|>"` and `"<|a|><|b|>"`, the text `"<|a|><|b|>"` is one pre-token.
# * The stretches of text between special tokens are split with `GPT2_REGEX.findall`, each
#   stretch on its own (so no pre-token spans a special token).
# * `special_tokens` may be `None` or empty: then it is plain `GPT2_REGEX.findall(text)`.
#   An empty special token raises `ValueError`.
#
# Example: `pretokenize("Hi there!<|eot|>ok", ["<|eot|>"]) == ["Hi", " there", "!", "<|eot|>", "ok"]`.
#
# Hint: sorting the special tokens longest first and joining them with `|` gives a pattern whose
# leftmost match is the one described above; `regex.split` with a capturing group keeps the
# separators in its result.

# %%
#| include: bpe.py::pretokenize

# %%
#| grade: test_pretokenize_golden_cases test_pretokenize_matches_gpt2_pattern_on_corpus test_pretokenize_special_tokens_atomic_longest_and_literal test_pretokenize_property_no_characters_lost test_pretokenize_rejects_empty_special_token

# %% [markdown]
# The examples above, and what happens around special tokens: the space in front of a special
# token cannot attach to it, so it becomes a pre-token of its own.

# %%
for text, specials in [("They'll pay 12.50 euros!!  Ok", None),
                       ("Hi there!<|eot|>ok", ["<|eot|>"]),
                       ("<|a|><|b|> and <|a|>", ["<|a|>", "<|a|><|b|>"]),
                       ("a\n\n  b c  ", None),
                       ("low lower lowest", None)]:
    pieces = pretokenize(text, specials)
    print(f"{text!r:36} -> {pieces}   joins back: {''.join(pieces) == text}")

# %% [markdown]
# ### 3.2 Training
#
# `train_bpe(corpus, vocab_size, special_tokens=None)` returns `(vocab, merges)`:
#
# 1. Pre-tokenize the corpus with `pretokenize(corpus, special_tokens)`. Occurrences of special
#    tokens are **removed** from training — they are boundaries, never part of a merge. Every
#    other pre-token is a sequence of single-byte tokens, its UTF-8 bytes.
# 2. Repeat `vocab_size - 256 - len(special_tokens)` times: count every adjacent pair of tokens
#    inside the pre-tokens (never across two pre-tokens) and pick the pair with the highest
#    count; **ties go to the lexicographically greatest pair**, comparing the pair as a tuple of
#    `bytes` (so `(b"b", b"a")` beats `(b"a", b"z")`, and `(b"ab", b"c")` beats `(b"a", b"bc")`).
#    With $f(w)$ the number of times the distinct pre-token $w = (w_1, \dots, w_m)$ occurs in
#    the corpus, the count of a pair and the pair that is merged are
#
#    $$
#    n(a, b) = \sum_{w} f(w) \, \bigl|\{\, i : w_i = a,\ w_{i+1} = b \,\}\bigr|,
#    \qquad
#    (a^*, b^*) = \mathop{\mathrm{arg\,max}}_{(a, b)} \bigl(n(a, b),\ (a, b)\bigr),
#    $$
#
#    where the maximum compares the tuples lexicographically: the count first, then the pair.
#    Every adjacent position counts, so `a a a` contributes 2 to $n(a, a)$.
#    Replace every occurrence of the pair, left to right and without overlap (`a a a` with the
#    pair `(a, a)` becomes `aa a`), by the merged token. **Stop early** when no pre-token has two
#    tokens left.
# 3. Update the pair counts **incrementally**: after a merge, only the pre-tokens that contained
#    the pair change, so only their pairs are re-counted. A full recount after every merge is far
#    too slow, and a speed test rejects it.
#
# The result:
#
# * `merges`: a list of `(left, right)` pairs of `bytes`, in the order learned;
# * `vocab`: a dict id → token bytes with ids 0–255 the single bytes, `256 + k` →
#   `merges[k][0] + merges[k][1]`, then the special tokens (UTF-8 encoded) in the order given,
#   with ids `256 + len(merges) + j`. Its size is `vocab_size` unless training ran out of pairs.
#
# Raise `ValueError` if `vocab_size < 256 + len(special_tokens)`, if a special token is empty,
# or if a special token is listed twice.
#
# Hints. A text repeats the same pre-tokens over and over: count each **distinct** pre-token
# once (`collections.Counter`) and weight its pairs by its count. For the incremental update,
# keep besides the pair counts an index from each pair to the pre-tokens that contain it; after
# merging a pair, subtract the old pairs of each affected pre-token and add its new ones.
# A single `max` over the pairs with a key that is a tuple (count first, then the pair itself)
# implements the count-then-tie rule in one go.

# %%
#| include: bpe.py::train_bpe

# %%
#| grade: test_train_bpe_small_golden_cases test_train_bpe_matches_brute_force_oracle test_train_bpe_tie_rule test_train_bpe_matches_reference_on_shipped_corpus test_train_bpe_merges_stay_inside_pretokens test_train_bpe_special_tokens_excluded_and_numbered_last test_train_bpe_vocab_layout_and_early_stop test_train_bpe_rejects_too_small_vocab test_train_bpe_rejects_empty_special_token test_train_bpe_special_tokens_optional test_train_bpe_updates_pair_counts_incrementally test_hidden_train_bpe_on_unseen_corpus

# %% [markdown]
# The hand calculation of section 2, confirmed; and the same corpus with a much larger
# `vocab_size`, to see the early stop: how many merges fit before every pre-token is one token?

# %%
vocab_hand, merges_hand = train_bpe(corpus_by_hand, 259)
print("train_bpe merges:", merges_hand, "  equal to the hand result:", merges_hand == merges_by_hand)
print("new vocabulary entries:", {i: vocab_hand[i] for i in range(256, len(vocab_hand))})
vocab_big, merges_big = train_bpe(corpus_by_hand, 300, ["<|s|>"])
print(f"\nvocab_size=300 with one special token: {len(merges_big)} merges, {len(vocab_big)} entries")
print("merges:", merges_big)
print("special token id:", [i for i, t in vocab_big.items() if t == b"<|s|>"])

# %% [markdown]
# ### 3.3 The tokenizer
#
# `BPETokenizer(vocab, merges, special_tokens=None)` takes what `train_bpe` returns. Its
# constructor is given: it checks the conventions and builds three lookup tables,
#
# * `self.merge_ranks`: `(left, right)` → rank `k`, the position of the merge in `merges`;
# * `self.token_ids`: token bytes → id, for the 256 bytes and the merged tokens;
# * `self.special_ids`: special token (`str`) → id — the id whose vocab entry is its UTF-8 bytes
#   among the ids after the merges; a special token missing from `vocab` is added with the next
#   free id;
#
# and an empty cache `self._cache` (pre-token → ids) you may use in `encode`. You write:
#
# * **`encode(text)`** → list of `int`. Pre-tokenize with `pretokenize(text, self.special_tokens)`.
#   A special token becomes its id. Any other pre-token starts as its UTF-8 bytes (single-byte
#   tokens); then, while some adjacent pair of tokens is a learned merge, merge the pair with the
#   **lowest rank** (learned earliest) everywhere in the pre-token (left to right, no overlap),
#   and repeat. The final tokens map to ids through `self.token_ids`. Caching the ids of
#   pre-tokens already seen is allowed and makes a large difference, because text repeats its
#   words. The order matters: with merges `[(b, c), (a, b)]`, `"abc"` becomes `a|bc` (rank 0
#   first), not `ab|c` — applying the leftmost mergeable pair first is a classic mistake.
#   A string with a lone surrogate cannot be UTF-8 encoded and raises `UnicodeEncodeError`
#   (a `ValueError`).
# * **`decode(ids)`** → `str`: join the tokens' bytes and decode as UTF-8 with
#   `errors="replace"`, so each invalid byte sequence becomes U+FFFD (`"\ufffd"`, `�`) and
#   nothing raises for bytes. Join first, decode second: a character may span several tokens.
#   Accept any iterable of ints (a list, a 1-D tensor); an id outside the vocabulary raises
#   `ValueError` naming it.
# * **`encode_iterable(iterable)`** lazily yields the ids of `"".join(iterable)` exactly as
#   `encode` would, whatever the chunk boundaries (the lines of an open file, or pieces that end
#   inside a word or a special token). The rule used by the reference (any rule giving the same
#   ids is fine): keep a text buffer; after each chunk, pre-tokenize the buffer and emit the ids
#   of the leading pre-tokens that are each followed by at least
#   `max(len(s) for s in special_tokens) + 2` more characters of the buffer (2 without special
#   tokens) — the GPT-2 pattern looks at most 2 characters past a pre-token's start or 1 past
#   its end, and a special token cannot start that far back — and keep the rest. At the end,
#   encode what is left. Memory stays bounded by the longest pre-token plus one chunk; the input
#   is never read as a whole before the first id is yielded.
# * **`save(path)`** writes JSON (never pickle) in exactly this format, bytes as lowercase hex
#   (`b"he"` is `"6865"`); key order and whitespace do not matter:
#   ```
#   {"type": "llmlab-bpe", "version": 1,
#    "vocab": {"<id>": "<token bytes as hex>", ...},     (every id of self.vocab)
#    "merges": [["<left hex>", "<right hex>"], ...],     (in rank order)
#    "special_tokens": ["<|endoftext|>", ...]}
#   ```
# * **`load(path)`** (a classmethod) reads that file back and returns a `BPETokenizer`; a file
#   that is not of type `"llmlab-bpe"` version 1 raises `ValueError`.

# %%
#| include: bpe.py::BPETokenizer

# %%
#| grade: test_encode_matches_tiktoken_on_corpus_text test_encode_matches_tiktoken_on_arbitrary_text test_encode_golden_cases test_encode_applies_merges_by_rank test_special_tokens_never_split test_encode_rejects_lone_surrogate test_decode_replaces_invalid_utf8 test_decode_accepts_tensors_and_rejects_unknown_ids test_decode_accepts_any_iterable_of_ints test_round_trip_arbitrary_unicode test_encode_iterable_equals_encode_for_any_chunking test_encode_iterable_without_special_tokens test_encode_iterable_special_tokens_of_different_lengths test_encode_iterable_over_a_file test_encode_iterable_is_lazy test_save_load_round_trip test_load_reads_the_reference_file test_load_rejects_other_formats test_hidden_encode_with_randomly_trained_merges test_hidden_encode_iterable_one_character_chunks

# %% [markdown]
# The encoding by hand from section 2, confirmed, and the merge order at work:

# %%
tok_hand = BPETokenizer(vocab_hand, merges_hand)
print("encode('lowest low'):", tok_hand.encode("lowest low"), "  by hand:", ids_by_hand,
      "  equal:", tok_hand.encode("lowest low") == ids_by_hand)
print("as tokens:", [tok_hand.vocab[i] for i in tok_hand.encode("lowest low")])
rank_merges = [(b"b", b"c"), (b"a", b"b")]
rank_vocab = {**{i: bytes([i]) for i in range(256)}, 256: b"bc", 257: b"ab"}
rank_tok = BPETokenizer(rank_vocab, rank_merges)
print("with merges", rank_merges, "'abc' ->", [rank_tok.vocab[i] for i in rank_tok.encode("abc")])

# %% [markdown]
# **Unicode, special tokens, broken bytes.** We train a small tokenizer on the course corpus
# (documents joined by `<|endoftext|>`, as pre-training data usually is) and check three
# promises: any Unicode string comes back unchanged from `decode(encode(text))`; a special token
# in the text is exactly one id, while a *broken* special token (`<|endoftext` without `|>`) is
# ordinary text; and a cut through a multi-byte character decodes to `�` instead of raising.
# In the lists of tokens below, a token whose bytes are not valid UTF-8 on their own (a piece of
# a multi-byte character) is shown as its raw bytes.

# %%
from llmlab.lib.corpus import course_corpus, train_val_split

EOT = "<|endoftext|>"
demo_corpus = EOT.join(course_corpus(100, seed=1).split("\n\n"))
demo_vocab, demo_merges = train_bpe(demo_corpus, 500, [EOT])
demo_tok = BPETokenizer(demo_vocab, demo_merges, [EOT])
eot_id = demo_tok.special_ids[EOT]
print(f"{len(demo_merges)} merges; {EOT} has id {eot_id}")


def token_text(tok, i: int):
    """A token as text if its bytes are valid UTF-8 on their own, else as its raw bytes."""
    try:
        return tok.vocab[i].decode("utf-8")
    except UnicodeDecodeError:
        return tok.vocab[i]


for text in ["Zoë paid 3.50 € at the café in 東京 🙂🚲", "naïve Ελλάδα, हिन्दी 👩‍👧 \t\n x",
             f"Ada smiled.{EOT}Bruno ran.{EOT}{EOT}", "a broken <|endoftext marker"]:
    ids = demo_tok.encode(text)
    print(f"\n{text!r}\n  {len(text.encode('utf-8'))} bytes -> {len(ids)} ids, round trip: "
          f"{demo_tok.decode(ids) == text}, <|endoftext|> ids: {ids.count(eot_id)} "
          f"(occurrences in the text: {text.count(EOT)})")
    print("  tokens:", [token_text(demo_tok, i) for i in ids])

smile = demo_tok.encode("🙂")
print("\n'🙂' ->", smile, "bytes:", [demo_tok.vocab[i] for i in smile])
broken = demo_tok.encode(" the") + [0xF0, 0x9F] + demo_tok.encode(" end")
print("decode of ' the' + 2 of the 4 bytes of 🙂 + ' end':", repr(demo_tok.decode(broken)))

# %% [markdown]
# **Streaming and saving.** `encode_iterable` over the lines of a file must give the same ids as
# `encode` on the whole text; a saved and loaded tokenizer must encode identically.

# %%
import tempfile
from pathlib import Path

with tempfile.TemporaryDirectory() as tmp:
    path = Path(tmp) / "corpus.txt"
    path.write_text(demo_corpus[:20000], encoding="utf-8")
    with open(path, encoding="utf-8") as f:
        streamed = list(demo_tok.encode_iterable(f))
    whole = demo_tok.encode(demo_corpus[:20000])
    print(f"streamed {len(streamed)} ids, whole-text {len(whole)} ids, equal: {streamed == whole}")

    demo_tok.save(Path(tmp) / "tok.json")
    text_json = (Path(tmp) / "tok.json").read_text(encoding="utf-8")
    loaded = BPETokenizer.load(Path(tmp) / "tok.json")
    print(f"tok.json: {len(text_json)} characters; starts {text_json[:60]!r}")
    print("loaded tokenizer encodes identically:", loaded.encode(demo_corpus[:5000]) == demo_tok.encode(demo_corpus[:5000]))

# %% [markdown]
# ## 4. Experiment: vocabulary size against sequence length
#
# We train BPE on the training part of the course corpus (`train_val_split(course_corpus())`)
# with a growing `vocab_size`, reserving one special token, `<|endoftext|>`. For each vocabulary
# we encode the **held-out** text and measure **tokens per byte**
# ($n_{\text{ids}} / n_{\text{bytes}}$, ids ÷ UTF-8 bytes; lower means shorter sequences), and the same on the training text itself. Three reference lines:
#
# * **bytes**: one token per byte, exactly 1.0 — which is also BPE with `vocab_size = 257`
#   (no merges);
# * **characters**: a character tokenizer gives one token per character, so its tokens per
#   byte are characters ÷ bytes of the held-out text (below 1, because some characters take
#   several bytes);
# * **pre-tokens**: BPE never merges across pre-tokens, so it needs at least one token per
#   pre-token. Pre-tokens ÷ bytes is a floor no vocabulary can go below.
#
# Each training run is timed. The stop rule matters here: once every distinct pre-token of the
# training text is a single token, there is no pair left and training stops early — then a
# larger `vocab_size` changes nothing. The table prints how many merges each run actually made.

# %%
import time

import matplotlib.pyplot as plt

started = time.perf_counter()
train_text, val_text = train_val_split(course_corpus())
train_bytes, val_bytes = len(train_text.encode("utf-8")), len(val_text.encode("utf-8"))
print(f"train: {len(train_text)} characters, {train_bytes} bytes; "
      f"held out: {len(val_text)} characters, {val_bytes} bytes")

char_tpb = len(val_text) / val_bytes
floor_tpb = len(pretokenize(val_text)) / val_bytes
train_pieces = set(pretokenize(train_text))
print(f"held-out tokens per byte: bytes 1.000, characters {char_tpb:.3f}, pre-token floor {floor_tpb:.3f}")
print(f"distinct pre-tokens in the training text: {len(train_pieces)}")

sizes = [257, 300, 350, 400, 500, 600, 700, 800, 1000, 2000]
rows, tokenizers = [], {}
print(f"\n{'vocab_size':>10s} {'merges':>6s} {'vocab':>6s} {'train s':>7s} {'train tok/B':>11s} "
      f"{'held-out tok/B':>14s} {'held-out B/tok':>14s}")
for size in sizes:
    t0 = time.perf_counter()
    vocab, merges = train_bpe(train_text, size, [EOT])
    seconds = time.perf_counter() - t0
    tok = BPETokenizer(vocab, merges, [EOT])
    val_ids, train_ids = tok.encode(val_text), tok.encode(train_text)
    assert tok.decode(val_ids) == val_text and tok.decode(train_ids) == train_text  # lossless
    row = dict(size=size, merges=len(merges), vocab=len(vocab), seconds=seconds,
               train_tpb=len(train_ids) / train_bytes, val_tpb=len(val_ids) / val_bytes)
    rows.append(row)
    tokenizers[size] = tok
    print(f"{size:10d} {row['merges']:6d} {row['vocab']:6d} {seconds:7.2f} {row['train_tpb']:11.3f} "
          f"{row['val_tpb']:14.3f} {1 / row['val_tpb']:14.2f}")
print(f"total training time: {sum(r['seconds'] for r in rows):.2f} s")

# %%
largest = tokenizers[sizes[-1]]
lengths = [len(largest.vocab[i]) for i in range(256, 256 + len(largest.merges))]

fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
x = [r["vocab"] for r in rows]
axes[0].plot(x, [r["val_tpb"] for r in rows], "o-", label="BPE, held-out text")
axes[0].plot(x, [r["train_tpb"] for r in rows], "x--", label="BPE, training text")
axes[0].axhline(1.0, color="k", lw=1, label="bytes")
axes[0].axhline(char_tpb, color="tab:red", lw=1, ls="-.", label="characters")
axes[0].axhline(floor_tpb, color="tab:green", lw=1, ls=":", label="pre-token floor (held-out)")
axes[0].set_xscale("log")
axes[0].set_xlabel("vocabulary size actually reached (incl. <|endoftext|>)")
axes[0].set_ylabel("tokens per byte")
axes[0].set_ylim(0, 1.05)
axes[0].legend(loc="center right")
axes[1].plot(range(256, 256 + len(lengths)), lengths, ".", ms=3)
axes[1].set_xlabel("token id (= 256 + merge rank)")
axes[1].set_ylabel("token length (bytes)")
axes[1].set_title(f"tokens learned with vocab_size={sizes[-1]}")
for ax in axes:
    ax.grid(alpha=0.3)
fig.suptitle("byte-level BPE on the course corpus")
plt.show()

# %% [markdown]
# Read the left panel against the table: how fast do tokens per byte fall with the first few
# hundred merges, and how close does the held-out curve get to the pre-token floor? If several
# runs report the same number of merges, training ran out of pairs — the curve is flat there
# because those runs learned the very same merges. A difference between the training and the
# held-out curve comes from the held-out text being different text: pre-tokens that never occur
# in the training part, or the same pre-tokens in other proportions.
#
# The right panel shows, for each learned token in order, its length in bytes: compare the
# lengths of the early merges with the late ones.
#
# **What did BPE learn?** The first merges, the longest tokens, and — for the largest vocabulary
# — the held-out pre-tokens that still need more than one token. Every merge adds a token and
# keeps its two parts, so the intermediate steps of a long word (its fragments) stay in the
# vocabulary too and may show up among the longest tokens. Since a pre-token seen in
# training can only be split if training stopped before merging it completely, look at the
# printed count of such pieces that also occur in the training text.

# %%
for size in (500, sizes[-1]):
    tok = tokenizers[size]
    print(f"vocab_size={size}: first 12 merges: {[a + b for a, b in tok.merges[:12]]}")
    learned = sorted(range(256, 256 + len(tok.merges)), key=lambda i: (-len(tok.vocab[i]), i))
    print(f"  15 longest tokens: {[tok.vocab[i].decode('utf-8', errors='replace') for i in learned[:15]]}\n")

split_pieces = Counter(p for p in pretokenize(val_text) if len(largest.encode(p)) > 1)
print(f"vocab_size={sizes[-1]}: {sum(split_pieces.values())} held-out pre-tokens need more than one token "
      f"({len(split_pieces)} distinct, {sum(1 for p in split_pieces if p in train_pieces)} of them seen in training)")
print("most common:", [(p, [largest.decode([i]) for i in largest.encode(p)], n)
                       for p, n in split_pieces.most_common(10)])
print(f"experiment total: {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## 5. Summary
#
# * **Pre-tokenization** with the GPT-2 pattern cuts text into words-with-leading-space,
#   numbers, symbol runs and whitespace; special tokens are cut out first, matched literally,
#   longest first, and stay atomic. The pre-tokens join back to the text exactly.
# * **Training** starts from the 256 bytes and repeatedly merges the most frequent adjacent pair
#   inside pre-tokens; ties go to the greatest pair as a tuple of `bytes`. Counting each distinct
#   pre-token once and updating pair counts incrementally makes it fast. Ids: bytes 0–255, merge
#   `k` at `256 + k`, special tokens after the merges. Training stops early when every pre-token
#   is a single token.
# * **Encoding** replays the merges by rank (earliest learned first) inside each pre-token;
#   **decoding** joins bytes and decodes with `errors="replace"`. Because the base is bytes,
#   every string round-trips and nothing is unknown. `encode_iterable` streams with bounded
#   memory and gives the same ids as `encode`; `save`/`load` use plain JSON.
# * **Experiment.** The table in section 4 gives, for each vocabulary size, the held-out tokens
#   per byte next to bytes (1.0), characters and the pre-token floor, and how many merges the
#   course corpus allowed before training ran out of pairs.
#
# ## 6. Exercises
#
# 1. **By hand.** Train on `"aaaa aaa aa a"` with `vocab_size = 259`. Write down the pre-tokens,
#    the pair counts and the three merges (remember: `a a a` with the pair `(a, a)` becomes
#    `aa a`, no overlap). Check with `train_bpe`, then encode `"aaaaa"` by hand and with
#    `BPETokenizer`.
# 2. **Tie rule.** Change the tie rule to "the pair seen first in the corpus wins" in a copy of
#    `train_bpe` and train both versions on `"low lower lowest"` with `vocab_size=262`. Which
#    merges differ? Why does a tokenizer need a rule that does not depend on dictionary order
#    at all?
# 3. **No pre-tokenizer.** In a copy of `train_bpe`, treat each paragraph of the course
#    training text as one single pre-token instead of calling `pretokenize`. Print the 20
#    longest tokens.
#    Compare the held-out tokens per byte with the table above at the same vocabulary size, and
#    discuss what kinds of tokens appear.
# 4. **Numbers.** Collect the held-out pre-tokens that are numbers and measure how many tokens
#    each needs with the largest vocabulary. Many modern tokenizers split numbers into single
#    digits (or groups of at most three). Argue for and against that choice for a model that
#    must do arithmetic.
# 5. **Larger corpus.** Train on `course_corpus(2000, seed=3)` (without its validation part)
#    at `vocab_size = 2000` and time it. Does training still run out of pairs, and does the
#    held-out tokens per byte move closer to the pre-token floor? Relate the answer to the number
#    of distinct pre-tokens.
# 6. **Speed.** Write the naive trainer (recount all pairs after every merge) and time both
#    trainers for 100, 200 and 400 merges on the course training text. How does each scale?
