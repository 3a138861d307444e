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
# # 01 · Tokenizer basics
#
# A language model never sees letters. Before any network runs, a **tokenizer** cuts the text
# into pieces (tokens) and replaces every piece by an integer id; after the model has produced
# ids, the tokenizer turns them back into text. This chapter builds three simple tokenizers
# that share one interface, and the two helpers that turn their output into a batch a model
# can read:
#
# | unit | what it does |
# |---|---|
# | `CharTokenizer` | one token per Unicode character seen in training |
# | `ByteTokenizer` | one token per UTF-8 byte: 256 ids, nothing is ever unknown |
# | `WordTokenizer(min_freq, max_size)` | one token per word-like piece, vocabulary by frequency |
# | `add_special(ids, bos, eos)` | put `<bos>` in front and `<eos>` at the end |
# | `pad_batch(seqs, pad_id, max_len, side, truncate)` | a rectangular batch and its attention mask |
# | `compression_ratio(tokenizer, texts)` | UTF-8 bytes per token |
#
# At the end we measure, on the course corpus, how the three tokenizers trade vocabulary size
# against sequence length and against the share of text they cannot represent.

# %% [markdown]
# ## 1. Intuition
#
# **Three granularities.** Text can be cut at different sizes:
#
# * **bytes** — a computer stores text as UTF-8 bytes, so 256 ids cover *every* string. Nothing
#   is unknown, but sequences are long: a Chinese character costs 3 tokens, an emoji 4.
# * **characters** (Unicode code points) — one token per character. The vocabulary is every
#   character seen in the training text; a character that never appeared in training has no
#   id of its own.
# * **words** — one token per word. Sequences are short (a few bytes per token), but the
#   number of distinct words is large and keeps growing with more text (names, numbers, typos),
#   so the vocabulary must be cut somewhere, and whatever falls outside it is lost.
#
# Real LLM tokenizers (byte-pair encoding, the next chapter) sit between bytes and words: they
# start from bytes and merge frequent byte sequences into longer tokens. To appreciate what
# BPE buys, we first build the three pure versions and measure them.
#
# **Special tokens.** A model also needs a few ids that are not text: `<pad>` fills the empty
# places of a batch, `<unk>` stands for "something the vocabulary does not contain",
# `<bos>`/`<eos>` mark the beginning and the end of a document. In this course they always
# sit at the same ids, `<pad>=0, <unk>=1, <bos>=2, <eos>=3`, and ordinary tokens start at id 4.
# An unknown character or word becomes **one** `<unk>` — it is never silently dropped, because
# a dropped token shifts everything after it and hides the problem.
#
# **Batches.** Sequences have different lengths, but a tensor is rectangular. Padding fills
# the short rows with `<pad>`, and an **attention mask** (1 = real token, 0 = padding) tells
# the model which places to ignore. Padding goes on the right for training; for generation
# one pads on the *left*, so that the last position of every row is a real token from which
# the next token can be predicted.
#
# **Compression.** A simple, tokenizer-independent measure of how long sequences get is the
# number of UTF-8 bytes per token. Bytes give exactly 1.0; the higher, the shorter the
# sequences — and the more text fits into a model's fixed context window.

# %% [markdown]
# ## 2. Small calculations by hand
#
# **UTF-8 by hand.** UTF-8 writes a code point with 1 to 4 bytes depending on its size:
#
# | code points | bytes | bit pattern |
# |---|---|---|
# | U+0000 – U+007F | 1 | `0xxxxxxx` |
# | U+0080 – U+07FF | 2 | `110xxxxx 10xxxxxx` |
# | U+0800 – U+FFFF | 3 | `1110xxxx 10xxxxxx 10xxxxxx` |
# | U+10000 – U+10FFFF | 4 | `11110xxx 10xxxxxx 10xxxxxx 10xxxxxx` |
#
# The `x` places are filled with the bits of the code point, most significant first.
#
# * `é` is U+00E9 = `000 1110 1001` in 11 bits, which needs the 2-byte form. Split as
#   `00011 | 101001`: the bytes are `110 00011` = `0xC3` = 195 and `10 101001` = `0xA9` = 169.
# * `🙂` is U+1F642 = `0 0001 1111 0110 0100 0010` in 21 bits, the 4-byte form. Split as
#   `000 | 011111 | 011001 | 000010`: the bytes are `11110 000` = `0xF0` = 240,
#   `10 011111` = `0x9F` = 159, `10 011001` = `0x99` = 153, `10 000010` = `0x82` = 130.
#
# The byte tokenizer gives byte `b` the id `4 + b` (ids 0–3 are the special tokens), so
# `"é🙂"` should encode to `[199, 173, 244, 163, 157, 134]`: six tokens for two characters.
#
# **Characters by hand.** Train a `CharTokenizer` on `"hello world"`. Its distinct characters,
# sorted by code point (the space, U+0020, comes first), are `' ', d, e, h, l, o, r, w`; they get
# ids 4 to 11. So `"hold!"` encodes to `h=7, o=9, l=8, d=5` and `!`, never seen, to `<unk>=1`:
# `[7, 9, 8, 5, 1]`.
#
# **Words by hand.** The word tokenizer cuts `"the cat sat. the cat"` into the pieces
# `"the", " cat", " sat", ".", " the", " cat"` — a piece keeps the single space in front of it.
# `" cat"` occurs twice and comes first; the four pieces that occur once are tied, and ties are
# broken by the piece itself in code-point order: the space (U+0020) sorts before `.` (U+002E),
# which sorts before `t`. The vocabulary is therefore
# `<pad>, <unk>, <bos>, <eos>, " cat", " sat", " the", ".", "the"` (ids 0–8), and
# `"the cat sat on the mat."` encodes to `[8, 4, 5, 1, 6, 1, 7]`: `" on"` and `" mat"` are unknown.
#
# **Padding by hand.** Pad the three sequences `[5, 6, 7]`, `[8]`, `[0, 9]` with `pad_id = 0`.
# The longest has 3 tokens, so the batch is 3 × 3. Note that the third sequence *starts with a
# real token 0*, equal to `pad_id`: the mask must come from the lengths, not from the values.
#
# ```
# side="right"                    side="left"
# ids        mask                 ids        mask
# [5, 6, 7]  [1, 1, 1]            [5, 6, 7]  [1, 1, 1]
# [8, 0, 0]  [1, 0, 0]            [0, 0, 8]  [0, 0, 1]
# [0, 9, 0]  [1, 1, 0]            [0, 0, 9]  [0, 1, 1]
# ```
#
# With `max_len=2, truncate="left"` the first row keeps its *last* two tokens, `[6, 7]`.
#
# **Compression by hand.** `"café 東京 🙂!"` has 10 characters and
# 3 (`c a f`) + 2 (`é`) + 1 + 6 (`東京`) + 1 + 4 (`🙂`) + 1 (`!`) = 18 UTF-8 bytes. The byte
# tokenizer makes 18 tokens (ratio 18/18 = 1.0), a character tokenizer 10 (ratio 1.8), and the
# word tokenizer the 4 pieces `"café", " 東京", " 🙂", "!"` (ratio 18/4 = 4.5).
#
# The cell below does the UTF-8 part with nothing but bit operations on `ord(c)`, without
# Python's codec, and writes the other hand results down; the implementation confirms them
# later.

# %%
def utf8_by_hand(c: str) -> list[int]:
    """The UTF-8 bytes of one character, from the table above."""
    cp = ord(c)
    if cp < 0x80:
        return [cp]
    if cp < 0x800:
        return [0b11000000 | cp >> 6, 0b10000000 | cp & 0b111111]
    if cp < 0x10000:
        return [0b11100000 | cp >> 12, 0b10000000 | cp >> 6 & 0b111111, 0b10000000 | cp & 0b111111]
    return [0b11110000 | cp >> 18, 0b10000000 | cp >> 12 & 0b111111,
            0b10000000 | cp >> 6 & 0b111111, 0b10000000 | cp & 0b111111]


for c in "é🙂":
    print(f"{c!r} U+{ord(c):04X} = {ord(c):b} -> bytes {[hex(b) for b in utf8_by_hand(c)]}")
byte_ids_by_hand = [4 + b for c in "é🙂" for b in utf8_by_hand(c)]
print("byte ids of 'é🙂' by hand:", byte_ids_by_hand)

char_ids_by_hand = [7, 9, 8, 5, 1]                              # "hold!" after training on "hello world"
word_itos_by_hand = ["<pad>", "<unk>", "<bos>", "<eos>", " cat", " sat", " the", ".", "the"]
word_ids_by_hand = [8, 4, 5, 1, 6, 1, 7]                        # "the cat sat on the mat."
pad_right_by_hand = ([[5, 6, 7], [8, 0, 0], [0, 9, 0]], [[1, 1, 1], [1, 0, 0], [1, 1, 0]])
pad_left_by_hand = ([[5, 6, 7], [0, 0, 8], [0, 0, 9]], [[1, 1, 1], [0, 0, 1], [0, 1, 1]])
n_bytes_by_hand = 3 + 2 + 1 + 6 + 1 + 4 + 1
print("bytes of 'café 東京 🙂!' by hand:", n_bytes_by_hand,
      "-> ratios byte / char / word:", n_bytes_by_hand / 18, n_bytes_by_hand / 10, n_bytes_by_hand / 4)

# %% [markdown]
# ## 3. Implementation
#
# Everything lives in one module, `tokenizer.py`. Its first part fixes the conventions that all
# units share:
#
# * `SPECIAL_TOKENS = ["<pad>", "<unk>", "<bos>", "<eos>"]` with `PAD_ID, UNK_ID, BOS_ID, EOS_ID
#   = 0, 1, 2, 3`, and `N_SPECIAL = 4`, the first id of an ordinary token.
# * `encode` never produces `<pad>`, `<bos>` or `<eos>`: the text `"<bos>"` is ordinary text and
#   is tokenized like any other. Special tokens are added afterwards with `add_special` and
#   `pad_batch`.
# * `decode(ids)` writes a special token as its text (`"<unk>"`, `"<bos>"`, …);
#   `decode(ids, skip_special=True)` leaves the four special tokens out. An id outside
#   `[0, vocab_size)` raises `ValueError` — negative ids too: `-1` is not "the last token".
# * `WORD_PATTERN`, the regular expression of the word tokenizer, explained in 3.3.

# %%
#| include: tokenizer.py::header

# %% [markdown]
# ### 3.1 `CharTokenizer`
#
# Every tokenizer has `vocab_size`, `train(texts)`, `encode(text)` and `decode(ids,
# skip_special=False)`. The character tokenizer keeps its vocabulary in two attributes: `itos`
# ("id to string", a list: `itos[i]` is the text of token `i`) and `stoi` ("string to id", the
# inverse dictionary; it also contains the four special tokens' texts).
#
# The id check is given: `_check_id(i, vocab_size)` returns `i` as a Python `int` or raises a
# `ValueError` that tells the user which range is valid. All three `decode` methods use it.

# %%
#| include: tokenizer.py::_check_id

# %% [markdown]
# Now write the class:
#
# * `train(texts)` takes a **list of strings** and builds `itos = SPECIAL_TOKENS` followed by
#   the distinct characters of all texts **sorted by code point** (Python's `sorted` on
#   one-character strings does exactly that), so the first ordinary character gets id 4.
#   `stoi` is the inverse. Training again **replaces** the vocabulary; it does not extend it.
#   `train` returns `self`, so `CharTokenizer().train(texts)` is a trained tokenizer.
# * `encode(text)` gives one id per character; a character outside the vocabulary gives
#   `UNK_ID`. Hence always `len(encode(text)) == len(text)`.
# * `decode(ids, skip_special=False)` concatenates the texts of the ids, writing special tokens
#   as `"<pad>"`, `"<unk>"`, …, or leaving ids 0–3 out when `skip_special` is true. Every id goes
#   through `_check_id` first.

# %%
#| include: tokenizer.py::CharTokenizer

# %%
#| grade: test_char_golden_vocab_and_ids test_char_vocab_matches_brute_force test_char_round_trip_in_vocabulary test_char_unknown_characters_become_unk test_char_retrain_replaces_vocabulary test_char_empty_and_tuple_inputs test_char_decode_special_tokens test_hidden_char_tokenizer_on_course_corpus

# %% [markdown]
# The hand example: vocabulary of `"hello world"` and the ids of `"hold!"`. Decoding shows the
# unknown `!` as `<unk>` — a character tokenizer is lossless only on characters it has seen.

# %%
char_demo = CharTokenizer().train(["hello world"])
print("itos:", char_demo.itos)
print("encode('hold!'):", char_demo.encode("hold!"), "  by hand:", char_ids_by_hand,
      "  equal:", char_demo.encode("hold!") == char_ids_by_hand)
print("decode:", repr(char_demo.decode(char_demo.encode("hold!"))))
print("with <bos>/<eos> and skip_special:",
      repr(char_demo.decode([BOS_ID] + char_demo.encode("hello") + [EOS_ID], skip_special=True)))

# %% [markdown]
# ### 3.2 `ByteTokenizer`
#
# Byte value $b$ ($0 \le b \le 255$) has id `N_SPECIAL + b`, that is $4 + b$, so `vocab_size` is
# $4 + 256 = 260$. There
# is nothing to learn — `train` exists only so that all tokenizers have the same interface and
# returns `self` — and nothing is unknown: every string that UTF-8 can encode round-trips
# exactly. (A Python string holding a lone surrogate such as `"\ud800"` cannot be encoded and
# raises `UnicodeEncodeError`; that is fine.)
#
# * `encode(text)`: the UTF-8 bytes of `text`, each shifted by 4: `"é"` → `[4+0xC3, 4+0xA9]`.
# * `decode(ids, skip_special=False)`: the bytes back to text. A model can emit byte sequences
#   that are **not valid UTF-8** (half an emoji, say); they must not crash the decoder. Decode
#   with `errors="replace"`: each maximal invalid part becomes U+FFFD (`�`), exactly as
#   `bytes.decode("utf-8", errors="replace")` does. Special ids appear as their text unless
#   `skip_special`. Where a special token interrupts the bytes, the bytes on each side of it are
#   decoded separately; with `skip_special` the special ids are removed first and all bytes are
#   decoded together. An id outside `[0, 260)` raises `ValueError`.
#
# Hint: collect byte values in a `bytearray` and call `.decode("utf-8", errors="replace")` on it.

# %%
#| include: tokenizer.py::ByteTokenizer

# %%
#| grade: test_byte_golden_ids test_byte_emoji_and_cjk_byte_counts test_byte_matches_tiktoken test_byte_round_trip_any_unicode test_byte_decode_invalid_utf8_is_replaced test_byte_decode_special_tokens test_byte_empty_tuple_and_surrogate_inputs

# %% [markdown]
# The hand calculation of section 2, confirmed — and what happens when a model stops in the
# middle of a character: the first three bytes of `🙂` are not a complete character, so they
# decode to `�`.

# %%
byte_tok = ByteTokenizer()
print("encode('é🙂'):", byte_tok.encode("é🙂"), "  by hand:", byte_ids_by_hand,
      "  equal:", byte_tok.encode("é🙂") == byte_ids_by_hand)
print("Python's codec agrees:", [4 + b for b in "é🙂".encode("utf-8")] == byte_ids_by_hand)
print("round trip:", byte_tok.decode(byte_ids_by_hand))
cut = byte_tok.encode("🙂")[:3] + byte_tok.encode("!")
print(f"decode({cut}) = {byte_tok.decode(cut)!r}")

# %% [markdown]
# ### 3.3 `WordTokenizer`
#
# **Pre-tokenization.** The text is first cut into pieces with
# `WORD_PATTERN = re.compile(r" ?\w+| ?[^\w\s]|\s+(?!\S)|\s+")`, GPT-2 style but simpler. At each
# position the alternatives are tried in this order:
#
# 1. `" ?\w+"` — an optional single space, then a run of word characters (letters, digits and
#    underscore, in the Unicode sense of Python's `re`): `"hello"`, `" world"`, `" 東京"`;
# 2. `" ?[^\w\s]"` — an optional single space, then **one** other non-space character:
#    `","`, `' "'`, `" 🙂"`;
# 3. `"\s+(?!\S)"` — a run of whitespace that leaves its last space to the word after it;
# 4. `"\s+"` — any remaining whitespace (for example `"\n"` right before a word).
#
# Every character lands in exactly one piece, so `"".join(WORD_PATTERN.findall(text)) == text`.
# For example `"Hi  there!\n\nOk"` becomes `"Hi", " ", " there", "!", "\n", "\n", "Ok"`: of the
# two spaces, the second is kept for `" there"`.
#
# **Vocabulary.** `WordTokenizer(min_freq=1, max_size=None)`; the constructor (given) rejects
# `min_freq < 1` and a `max_size` below 4. `train(texts)` counts the pieces of all texts and
# builds `itos = SPECIAL_TOKENS` followed by the pieces that occur **at least** `min_freq`
# times, **most frequent first**, with ties (equal counts) broken by the piece itself in
# ascending code-point order (Python's `sorted` on `str`). If `max_size` is set, the **whole**
# vocabulary — the four special tokens included — has at most `max_size` entries: only the first
# `max_size - 4` pieces of that order are kept. Training again replaces the vocabulary;
# `train` returns `self`.
#
# * `encode(text)`: one id per piece; a piece outside the vocabulary gives one `UNK_ID`.
# * `decode(ids, skip_special=False)`: concatenate the pieces **with no separator** — the spaces
#   already live inside the pieces (`" world"` and `"world"` are different tokens), so the text
#   comes back exactly when every piece is in the vocabulary. Special tokens and invalid ids
#   are handled as in the other two tokenizers.
#
# Hint: `collections.Counter` counts; one sort key can encode both ordering rules at once.

# %%
#| include: tokenizer.py::WordTokenizer

# %% [markdown]
# The last grade cell of this group also checks that all three `decode` methods reject ids
# outside `[0, vocab_size)`, negative ones included.

# %%
#| grade: test_word_golden_vocabulary test_word_golden_ids test_word_vocabulary_matches_oracle test_word_tie_rule test_word_min_freq_and_max_size test_word_pre_tokenization_matches_regex test_word_round_trip_and_unknown_words test_word_retrain_replaces_vocabulary test_word_empty_and_tuple_inputs test_word_decode_special_tokens test_hidden_word_vocabulary_random_corpora test_hidden_decode_rejects_negative_and_large_ids

# %%
print("pieces:", WORD_PATTERN.findall("Hi  there!\n\nOk"))
word_demo = WordTokenizer().train(["the cat sat. the cat"])
print("itos:", word_demo.itos, "  by hand:", word_demo.itos == word_itos_by_hand)
ids = word_demo.encode("the cat sat on the mat.")
print("encode:", ids, "  by hand:", word_ids_by_hand, "  equal:", ids == word_ids_by_hand)
print("decode:", repr(word_demo.decode(ids)))
print("max_size=6 keeps 6 - 4 = 2 pieces:", WordTokenizer(max_size=6).train(["the cat sat. the cat"]).itos)

# %% [markdown]
# ### 3.4 `add_special`
#
# `add_special(ids, bos=True, eos=True)` returns a **new** list `[BOS_ID] + ids + [EOS_ID]`,
# each end only if asked for. The input (a list or a tuple) is left unchanged.

# %%
#| include: tokenizer.py::add_special

# %%
#| grade: test_add_special

# %% [markdown]
# ### 3.5 `pad_batch`
#
# `pad_batch(seqs, pad_id=PAD_ID, max_len=None, side="right", truncate="right")` stacks `B`
# sequences of ints (lists or tuples; empty ones are allowed) into one batch:
#
# * `L = max_len` if given, otherwise the length of the longest sequence.
# * A sequence longer than `L` loses tokens at the `truncate` end: `"right"` keeps its first `L`
#   tokens, `"left"` its last `L`.
# * `side` says where the padding goes: `"right"` puts the tokens first and `pad_id` after them,
#   `"left"` puts `pad_id` first and the tokens at the end of the row.
# * Returns `(ids, attention_mask)`, both `torch.long` of shape `(B, L)`: `ids` holds the tokens
#   and `pad_id` elsewhere; `attention_mask` is 1 at real tokens and 0 at padding. The mask is
#   built from the **lengths**, never by comparing ids with `pad_id` — a real token equal to
#   `pad_id` still has mask 1.
# * `ValueError` if `seqs` is empty, `max_len < 1`, or `side`/`truncate` is not `"right"` or
#   `"left"`.
#
# Write it from scratch (`torch.nn.utils.rnn.pad_sequence` is not allowed). Hint: start from
# `torch.full((B, L), pad_id)` and `torch.zeros((B, L))` and fill one row at a time.

# %%
#| include: tokenizer.py::pad_batch

# %%
#| grade: test_pad_batch_golden test_pad_batch_matches_pad_sequence test_pad_batch_mask_dtype_and_values test_pad_batch_real_token_equal_to_pad_id test_pad_batch_truncation test_pad_batch_max_len_longer_and_empty_rows test_pad_batch_tuples_batch_of_one_and_zero_length test_pad_batch_properties test_pad_batch_rejects_bad_arguments test_hidden_pad_batch_random_configurations

# %%
demo_seqs = [[5, 6, 7], [8], [0, 9]]
for side, (ids_hand, mask_hand) in (("right", pad_right_by_hand), ("left", pad_left_by_hand)):
    ids, mask = pad_batch(demo_seqs, pad_id=0, side=side)
    print(f"side={side!r}: ids {ids.tolist()}, mask {mask.tolist()}, dtypes {ids.dtype}/{mask.dtype}")
    print(f"   equal to the hand result: {ids.tolist() == ids_hand and mask.tolist() == mask_hand}")
ids, mask = pad_batch(demo_seqs, pad_id=0, max_len=2, truncate="left")
print("max_len=2, truncate='left':", ids.tolist(), mask.tolist())
print("mask from ids != pad_id would be wrong:", (ids != 0).long().tolist())

# A training batch: encode, add <bos>/<eos>, pad.
sentences = ["hello world", "hold", ""]
batch, batch_mask = pad_batch([add_special(char_demo.encode(s)) for s in sentences])
print(batch)
print(batch_mask)

# %% [markdown]
# ### 3.6 `compression_ratio`
#
# `compression_ratio(tokenizer, texts)` is the number of UTF-8 bytes per token over the whole
# list: `sum(len(t.encode("utf-8")))` divided by `sum(len(tokenizer.encode(t)))`, with no special
# tokens added. For the texts $t_1, \dots, t_n$,
#
# $$
# \text{compression ratio} = \frac{\sum_{i=1}^{n} \text{bytes}(t_i)}{\sum_{i=1}^{n} \text{tokens}(t_i)},
# $$
#
# where $\text{bytes}(t)$ is the length of the UTF-8 encoding of $t$ and $\text{tokens}(t)$ the
# length of `tokenizer.encode(t)`. It is a **ratio of totals**, not a mean of per-text ratios
# $\frac{1}{n} \sum_i \text{bytes}(t_i) / \text{tokens}(t_i)$ (a short text would otherwise
# count as much as a long one). It works with any object that has `encode`, returns a
# `float`, gives exactly 1.0 for `ByteTokenizer`, and raises `ValueError` when the texts give no
# tokens at all (the ratio is undefined).

# %%
#| include: tokenizer.py::compression_ratio

# %%
#| grade: test_compression_ratio_matches_definition test_compression_ratio_bytes_is_one test_compression_ratio_no_tokens_raises

# %%
sample = "café 東京 🙂!"
sample_char = CharTokenizer().train([sample])
sample_word = WordTokenizer().train([sample])
print("UTF-8 bytes:", len(sample.encode("utf-8")), "  by hand:", n_bytes_by_hand)
for name, tok in (("byte", ByteTokenizer()), ("char", sample_char), ("word", sample_word)):
    print(f"{name}: {len(tok.encode(sample)):2d} tokens, {compression_ratio(tok, [sample]):.2f} bytes/token")
print("word pieces:", [sample_word.itos[i] for i in sample_word.encode(sample)])

# %% [markdown]
# ## 4. Experiment: vocabulary size, compression and unknown tokens
#
# We train on the course corpus (`course_corpus()`, split with `train_val_split` so that the
# last 10 % of the paragraphs is held out) and measure on the held-out text:
#
# * **compression** — `compression_ratio` on the held-out text (bytes per token);
# * **OOV rate** — the share of held-out tokens that are `<unk>`,
#   $n_{\text{unk}} / n_{\text{tokens}}$;
# * **lost bytes** — the share of held-out bytes that sit under an `<unk>` and cannot be
#   decoded back: the UTF-8 bytes of the pieces (or characters) encoded as `<unk>`, divided by
#   all held-out bytes.
#
# We vary the vocabulary size in two ways: a `WordTokenizer` with a growing `max_size` (trained
# on the whole training text), and a `CharTokenizer` trained on a growing prefix of the training
# text (a small training text has seen fewer characters). For comparison we also train a
# `WordTokenizer` without a cap on growing prefixes, and add the `ByteTokenizer`, a single
# point at 260.
#
# One thing is certain before we run anything: `encode` produces one id per character (char) or
# per `WORD_PATTERN` piece (word) **whatever the vocabulary** — an unknown character or piece is
# still one `<unk>`. So within each tokenizer the compression cannot change with the vocabulary
# size; what the vocabulary decides is how many of those tokens are `<unk>`.

# %%
import time
from collections import Counter

import matplotlib.pyplot as plt

from llmlab.lib.corpus import course_corpus, train_val_split

started = time.perf_counter()
train_text, val_text = train_val_split(course_corpus())
print(f"train: {len(train_text)} characters, {len(train_text.encode('utf-8'))} bytes; "
      f"held out: {len(val_text)} characters, {len(val_text.encode('utf-8'))} bytes")


def measure(tok) -> dict:
    """Vocabulary size, bytes/token, <unk> share of tokens and of bytes on the held-out text."""
    ids = tok.encode(val_text)
    if isinstance(tok, WordTokenizer):
        units = WORD_PATTERN.findall(val_text)       # the piece behind each id
    elif isinstance(tok, CharTokenizer):
        units = list(val_text)                       # the character behind each id
    else:
        units = None                                 # bytes: never <unk>
    assert units is None or len(units) == len(ids)
    lost = 0 if units is None else sum(len(u.encode("utf-8")) for u, i in zip(units, ids) if i == UNK_ID)
    return {"vocab": tok.vocab_size, "ratio": compression_ratio(tok, [val_text]),
            "oov": ids.count(UNK_ID) / len(ids), "lost": lost / len(val_text.encode("utf-8"))}


def show(label: str, rows: list[dict], setting: str) -> None:
    print(f"{label}\n  {setting:>12s} {'vocab':>6s} {'bytes/tok':>9s} {'OOV %':>7s} {'lost bytes %':>12s}")
    for r in rows:
        print(f"  {str(r['setting']):>12s} {r['vocab']:6d} {r['ratio']:9.3f} {100 * r['oov']:7.3f} "
              f"{100 * r['lost']:12.3f}")


byte_row = dict(setting="-", **measure(ByteTokenizer()))
show("ByteTokenizer", [byte_row], "setting")

prefix_sizes = [25, 50, 100, 200, 400, 800, 1600, 3200, 6400, len(train_text)]
char_rows = [dict(setting=n, **measure(CharTokenizer().train([train_text[:n]]))) for n in prefix_sizes]
show("CharTokenizer trained on the first n characters", char_rows, "n")

max_sizes = [8, 16, 32, 64, 128, 256, 512, None]
word_rows = [dict(setting=m, **measure(WordTokenizer(max_size=m).train([train_text]))) for m in max_sizes]
show("WordTokenizer(max_size=m) trained on all training text", word_rows, "m")

word_prefix_rows = [dict(setting=n, **measure(WordTokenizer().train([train_text[:n]])))
                    for n in prefix_sizes[2:]]
show("WordTokenizer() (no cap) trained on the first n characters", word_prefix_rows, "n")
print(f"({time.perf_counter() - started:.1f} s)")

# %%
fig, axes = plt.subplots(1, 2, figsize=(12, 4.2))
series = [("byte", [byte_row], "k", "s"), ("char (training prefix)", char_rows, "tab:blue", "o"),
          ("word (max_size)", word_rows, "tab:orange", "^"),
          ("word (training prefix, no cap)", word_prefix_rows, "tab:green", "v")]
for label, rows, color, marker in series:
    x = [r["vocab"] for r in rows]
    axes[0].plot(x, [r["ratio"] for r in rows], marker=marker, color=color, label=label)
    axes[1].plot(x, [100 * r["oov"] for r in rows], marker=marker, color=color, label=label)
axes[0].set_ylabel("held-out bytes per token")
axes[1].set_ylabel("held-out tokens that are <unk> (%)")
for ax in axes:
    ax.set_xscale("log")
    ax.set_xlabel("vocabulary size (incl. 4 special tokens)")
    ax.grid(alpha=0.3)
axes[1].legend()
fig.suptitle("char, byte and word tokenizers on the course corpus")
plt.show()

# %% [markdown]
# Read the two panels together. On the left, each tokenizer is a horizontal line, as argued
# above; the vertical gaps between the lines are the differences in sequence length. On the
# right, compare how fast the `<unk>` share of each tokenizer falls as its vocabulary grows,
# and where it reaches zero (if it does) — the tables above give the exact values.
#
# **What stays unknown?** Below, the held-out pieces that the *uncapped* word tokenizer trained
# on all training text does not know, with their counts, and the characters that the character
# tokenizer trained on the first 400 characters does not know. Look at what kind of strings
# they are.

# %%
word_full = WordTokenizer().train([train_text])
unknown_pieces = Counter(p for p in WORD_PATTERN.findall(val_text) if p not in word_full.stoi)
print(f"word vocabulary {word_full.vocab_size}; {sum(unknown_pieces.values())} unknown held-out pieces, "
      f"{len(unknown_pieces)} distinct; most common:")
print(unknown_pieces.most_common(20))
char_small = CharTokenizer().train([train_text[:400]])
unknown_chars = Counter(c for c in val_text if c not in char_small.stoi)
print(f"\nchar vocabulary {char_small.vocab_size} (first 400 characters); unknown held-out characters:")
print(unknown_chars.most_common(20))

# %% [markdown]
# **Frequency and coverage.** How much of the text can a small word vocabulary cover? That
# depends on how unevenly the pieces are used. The plot shows the count of each training piece
# against its rank (log-log), and the share of held-out pieces that the `k` most frequent
# training pieces cover; the printed lines give that share for a few values of `k` (a word
# vocabulary with `max_size = k + 4` keeps exactly those `k` pieces).

# %%
counts = Counter(WORD_PATTERN.findall(train_text))
ranked = [c for _, c in counts.most_common()]
val_counts = Counter(WORD_PATTERN.findall(val_text))
n_val = sum(val_counts.values())
covered, coverage = 0, []
for piece, _ in counts.most_common():
    covered += val_counts.get(piece, 0)
    coverage.append(covered / n_val)
for k in (10, 50, 100, 200, len(coverage)):
    print(f"top {k:4d} training pieces cover {100 * coverage[k - 1]:6.2f} % of held-out pieces")
print("10 most frequent pieces:", counts.most_common(10))

fig, axes = plt.subplots(1, 2, figsize=(12, 3.8))
axes[0].loglog(range(1, len(ranked) + 1), ranked, ".")
axes[0].set_xlabel("rank of piece")
axes[0].set_ylabel("count in training text")
axes[1].semilogx(range(1, len(coverage) + 1), [100 * c for c in coverage])
axes[1].set_xlabel("k most frequent training pieces")
axes[1].set_ylabel("held-out pieces covered (%)")
for ax in axes:
    ax.grid(alpha=0.3)
plt.show()
print(f"experiment total: {time.perf_counter() - started:.1f} s")

# %% [markdown]
# ## 5. Summary
#
# * A tokenizer maps text to ids and back. All three tokenizers here reserve ids 0–3 for
#   `<pad>`, `<unk>`, `<bos>`, `<eos>`; ordinary tokens start at 4; `encode` never emits
#   `<pad>`/`<bos>`/`<eos>`, and `decode` rejects any id outside `[0, vocab_size)`.
# * `ByteTokenizer`: id `4 + b` for UTF-8 byte `b`, 260 ids, lossless for every string; invalid
#   byte sequences decode to U+FFFD instead of crashing. The price is length: one token per byte.
# * `CharTokenizer`: the training characters sorted by code point; an unseen character becomes
#   one `<unk>`, so `len(encode(text)) == len(text)`.
# * `WordTokenizer`: `WORD_PATTERN` pieces (each keeps its leading space, so decoding is plain
#   concatenation); vocabulary by count, ties by the piece in code-point order, `min_freq`
#   inclusive, `max_size` counting the special tokens.
# * `add_special` wraps a sequence in `<bos>`/`<eos>`; `pad_batch` makes a `(B, L)` batch with a
#   `torch.long` mask built from the lengths — left padding for generation, right for training.
# * `compression_ratio` is bytes per token as a ratio of totals. For a fixed pre-tokenization it
#   does not depend on the vocabulary; the vocabulary only decides how much is lost as `<unk>`.
#   The experiment measured both on held-out course text: the tables above hold the numbers
#   for bytes (no loss, 1 byte per token), characters and words.
#
# ## 6. Exercises
#
# 1. **By hand.** Write down the UTF-8 bytes and the `ByteTokenizer` ids of `"€"` (U+20AC) and
#    `"東"` (U+6771), then check with `ByteTokenizer().encode`. How many tokens does the flag
#    `"🇩🇪"` take, and why is it more than 4?
# 2. **Invalid bytes.** Predict `ByteTokenizer().decode(ids)` for the bytes `E6 9D 41` (the first
#    two bytes of `東` followed by `A`) and for `80 80`. Check your prediction; how many `�` did
#    you expect in each case?
# 3. **Combining characters.** `"é"` can be written as one code point (U+00E9) or as `"e"` plus a
#    combining accent (U+0301). Encode both with the byte and the character tokenizer. How many
#    tokens does each give? Look up `unicodedata.normalize("NFC", text)` and discuss whether a
#    tokenizer should normalise its input.
# 4. **`min_freq` instead of `max_size`.** Repeat the word experiment with `min_freq` in
#    1, 2, 3, 5, 10 and no `max_size`. Plot the OOV rate against the vocabulary size next to
#    the `max_size` curve. Do the two ways of shrinking the vocabulary give the same points?
#    Explain using the order in which `train` ranks the pieces.
# 5. **A fallback.** Build a tokenizer that uses the word vocabulary when a piece is known and
#    falls back to `ByteTokenizer` ids (shifted past the word ids) otherwise. It never needs
#    `<unk>`. Measure its compression on the held-out text against the word tokenizer's with
#    `max_size=64` and `256`. (The next chapter, BPE, is a principled version of this idea.)
# 6. **Context windows.** A model reads at most 256 tokens at a time. Using the measured
#    compression ratios, how many bytes of held-out text fit into one window for each
#    tokenizer? What does that mean for how far back a model can "remember"?
