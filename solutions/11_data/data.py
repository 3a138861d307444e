"""Topic 11: data engineering — from a noisy web dump to packed training rows.

A pretraining corpus is made, not found. Raw HTML becomes text (`html_to_text`); heuristics
drop pages that are not prose (`quality_filter`); exact duplicates go by a hash of the
normalised text (`normalize_text`, `exact_dedup`); near duplicates by MinHash signatures of
word shingles (`shingles`, `minhash_signature`, `jaccard`) and locality-sensitive hashing
(`lsh_buckets`, `lsh_candidates`). Training then sees documents packed end to end into rows
with a block-diagonal causal mask and positions that restart at every document
(`pack_sequences`, `packed_attention_mask`), some rewritten for fill-in-the-middle
(`fim_transform`), drawn from several sources by temperature-scaled weights
(`mixture_probs`, `mixture_sampler`).

Determinism is part of every contract here: the same input gives the same output in every
process, on every machine. Python's built-in `hash` of a str is salted per process
(PYTHONHASHSEED), so it is never used; hashes come from `hashlib`, random draws from an
explicit `torch.Generator` or `random.Random`.
"""

from __future__ import annotations

import hashlib
import math
import random
import unicodedata
from html.parser import HTMLParser
from typing import Iterable, Sequence

import torch

# html_to_text: elements whose text is dropped, and elements that break a line.
SKIP_TAGS = frozenset({"script", "style"})
BLOCK_TAGS = frozenset({"address", "article", "aside", "blockquote", "br", "div", "footer", "h1", "h2", "h3",
                        "h4", "h5", "h6", "header", "hr", "li", "main", "nav", "ol", "p", "pre", "section",
                        "table", "title", "tr", "ul"})

# quality_filter: the thresholds of its five rules (Gopher-style heuristics).
MIN_WORDS = 5
MEAN_WORD_LENGTH = (3.0, 10.0)
MIN_ALPHA_WORD_FRACTION = 0.8
MAX_ELLIPSIS_LINE_FRACTION = 0.3
MAX_DUPLICATE_LINE_FRACTION = 0.3

# minhash_signature: hash functions h(x) = (a·x + b) mod P with this Mersenne prime, so that
# a·x + b < 2^62 fits in int64.
MERSENNE_PRIME = (1 << 31) - 1

# fim_transform: the sentinel strings.
FIM_PREFIX = "<|fim_prefix|>"
FIM_MIDDLE = "<|fim_middle|>"
FIM_SUFFIX = "<|fim_suffix|>"


def html_to_text(html: str) -> str:
    """The visible text of an HTML document, one line per block.

    Rules, in order:
    1. Parse with the standard library's `html.parser.HTMLParser(convert_charrefs=True)`, so
       character references are decoded (`&amp;` → "&", `&nbsp;` → "\\xa0", `&#233;` → "é")
       and tag names arrive lower-cased. Comments, doctypes and processing instructions
       produce no text. Call `close()` at the end, so text after the last tag is kept.
    2. Text inside an element of SKIP_TAGS (`script`, `style`) is dropped. Keep a depth
       counter: +1 at each start tag of SKIP_TAGS, −1 at each end tag of SKIP_TAGS while the
       counter is positive (an end tag with no open element is ignored); text counts only at
       depth 0. An element that is never closed drops the rest of the document.
    3. Every start tag and every end tag of BLOCK_TAGS (`p`, `div`, `br`, `li`, `h1`…`h6`, …)
       is a line break; any other tag is nothing at all: "a<b>b</b>c" gives "abc".
    4. Split the result at the line breaks ("\\n", also those inside the text); in each line,
       replace every run of whitespace (as `str.split()` defines it, so "\\xa0" too) by one
       space and strip it; drop the lines that are then empty; join the rest with "\\n".
    Returns a str without leading or trailing newline ("" when nothing is left).
    """
    # Hint: subclass HTMLParser and override handle_starttag(tag, attrs), handle_endtag(tag)
    # and handle_data(data); collect pieces of text and "\n" for the block tags.
    ### BEGIN SOLUTION
    class TextExtractor(HTMLParser):
        def __init__(self) -> None:
            super().__init__(convert_charrefs=True)
            self.pieces: list[str] = []
            self.skip_depth = 0

        def handle_starttag(self, tag, attrs) -> None:
            if tag in SKIP_TAGS:
                self.skip_depth += 1
            if tag in BLOCK_TAGS:
                self.pieces.append("\n")

        def handle_endtag(self, tag) -> None:
            if tag in SKIP_TAGS and self.skip_depth > 0:
                self.skip_depth -= 1
            if tag in BLOCK_TAGS:
                self.pieces.append("\n")

        def handle_data(self, data) -> None:
            if self.skip_depth == 0:
                self.pieces.append(data)

    parser = TextExtractor()
    parser.feed(html)
    parser.close()
    lines = (" ".join(line.split()) for line in "".join(parser.pieces).split("\n"))
    return "\n".join(line for line in lines if line)
    ### END SOLUTION


def quality_filter(doc: str) -> tuple[bool, list[str]]:
    """Keep or drop a document by five stated heuristics; returns (keep, reasons).

    Words are `doc.split()`; lines are the non-empty results of `line.strip()` over
    `doc.splitlines()`. A rule that fires appends its name to `reasons`, in this order:
      "too_few_words"    fewer than MIN_WORDS (5) words;
      "mean_word_length" the mean word length in characters is < 3 or > 10;
      "alpha_words"      the fraction of words containing at least one alphabetic character
                         (`str.isalpha`) is < MIN_ALPHA_WORD_FRACTION (0.8);
      "ellipsis_lines"   the fraction of lines ending in "..." or "…" is
                         > MAX_ELLIPSIS_LINE_FRACTION (0.3);
      "duplicate_lines"  the fraction of lines equal to an earlier line is
                         > MAX_DUPLICATE_LINE_FRACTION (0.3) (three equal lines: 2/3).
    A document with no words at all gets exactly ["too_few_words"] (the other fractions are
    undefined). Boundaries: exactly 5 words, a mean of exactly 3 or 10, an alphabetic fraction
    of exactly 0.8 and line fractions of exactly 0.3 do not fire.
    Returns (keep, reasons) with keep = (reasons == []) and reasons a list of str.
    """
    ### BEGIN SOLUTION
    words = doc.split()
    if not words:
        return False, ["too_few_words"]
    reasons = []
    if len(words) < MIN_WORDS:
        reasons.append("too_few_words")
    mean_length = sum(len(w) for w in words) / len(words)
    if not MEAN_WORD_LENGTH[0] <= mean_length <= MEAN_WORD_LENGTH[1]:
        reasons.append("mean_word_length")
    alpha = sum(any(c.isalpha() for c in w) for w in words) / len(words)
    if alpha < MIN_ALPHA_WORD_FRACTION:
        reasons.append("alpha_words")
    lines = [line.strip() for line in doc.splitlines() if line.strip()]
    ellipsis = sum(line.endswith(("...", "…")) for line in lines) / len(lines)
    if ellipsis > MAX_ELLIPSIS_LINE_FRACTION:
        reasons.append("ellipsis_lines")
    seen: set[str] = set()
    repeated = 0
    for line in lines:
        repeated += line in seen
        seen.add(line)
    if repeated / len(lines) > MAX_DUPLICATE_LINE_FRACTION:
        reasons.append("duplicate_lines")
    return not reasons, reasons
    ### END SOLUTION


def normalize_text(text: str) -> str:
    """The form in which two documents count as the same text.

    Unicode NFKC (`unicodedata.normalize("NFKC", text)`: "ﬁ" → "fi", full-width "Ａ" → "A"),
    then `str.lower()`, then every run of whitespace (as `str.split()` defines it) replaced by
    one space, with none at either end. Punctuation is kept. Returns a str.
    """
    ### BEGIN SOLUTION
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())
    ### END SOLUTION


def exact_dedup(docs: Sequence[str]) -> list[int]:
    """Indices of the documents that survive exact deduplication, in increasing order.

    Two documents are duplicates when the SHA-256 digests of `normalize_text(doc)` encoded as
    UTF-8 are equal (keeping 32 bytes per document, not the text). The first document of each
    group of duplicates is kept, every later one dropped: the result lists, in order, the
    index of each document whose digest no earlier document had. `docs` is any sequence of
    str (a list or a tuple); an empty sequence gives [].
    """
    ### BEGIN SOLUTION
    seen: set[bytes] = set()
    kept = []
    for i, doc in enumerate(docs):
        digest = hashlib.sha256(normalize_text(doc).encode("utf-8")).digest()
        if digest not in seen:
            seen.add(digest)
            kept.append(i)
    return kept
    ### END SOLUTION


def shingles(text: str, k: int = 5) -> set[str]:
    """The set of word k-grams ("shingles") of `normalize_text(text)`.

    With words = normalize_text(text).split() and n = len(words):
      n ≥ k:      {" ".join(words[i:i + k]) for i in 0 … n − k};
      1 ≤ n < k:  one shingle, all the words: {" ".join(words)};
      n = 0:      the empty set.
    Raises ValueError when k < 1.
    """
    ### BEGIN SOLUTION
    if k < 1:
        raise ValueError(f"shingles: k must be at least 1, got {k}")
    words = normalize_text(text).split()
    if not words:
        return set()
    if len(words) < k:
        return {" ".join(words)}
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}
    ### END SOLUTION


def jaccard(a: Iterable, b: Iterable) -> float:
    """Jaccard similarity |A ∩ B| / |A ∪ B| of the sets of the items of `a` and `b`.

    `a` and `b` are any iterables of hashable items (sets, lists, tuples; repeats count
    once). Two empty inputs are identical: 1.0. Returns a Python float in [0, 1].
    """
    ### BEGIN SOLUTION
    A, B = set(a), set(b)
    if not A and not B:
        return 1.0
    return len(A & B) / len(A | B)
    ### END SOLUTION


def minhash_signature(shingles: Iterable[str], num_perm: int, seed: int = 0) -> torch.Tensor:
    """The MinHash signature of a set of strings: `num_perm` minima of seeded hash functions.

    1. Each distinct string s gets the base hash
           x(s) = int.from_bytes(hashlib.sha256(s.encode("utf-8")).digest()[:8], "big") % P
       with P = MERSENNE_PRIME = 2^31 − 1. Never Python's `hash(s)`: it is salted per process,
       so signatures would differ between runs and machines.
    2. The hash functions come from one generator, `g = torch.Generator().manual_seed(seed)`:
           a = torch.randint(1, P, (num_perm,), generator=g)     # drawn first
           b = torch.randint(0, P, (num_perm,), generator=g)     # then b
       (both int64), and h_i(x) = (a[i]·x + b[i]) mod P, exact in int64 (< 2^62).
    3. signature[i] = min over the distinct strings s of h_i(x(s)).
    For two sets A and B, P(signature_A[i] == signature_B[i]) ≈ jaccard(A, B), so the
    fraction of equal positions estimates the Jaccard similarity.
    `shingles` is any iterable of str (set, list, tuple; repeats and order do not matter).
    Returns an int64 tensor of shape (num_perm,) with values in [0, P).
    Raises ValueError when num_perm < 1 or when `shingles` is empty (a MinHash of the empty
    set is undefined).
    """
    ### BEGIN SOLUTION
    if num_perm < 1:
        raise ValueError(f"minhash_signature: num_perm must be at least 1, got {num_perm}")
    items = set(shingles)
    if not items:
        raise ValueError("minhash_signature: the set of shingles is empty; drop empty documents first")
    P = MERSENNE_PRIME
    x = torch.tensor([int.from_bytes(hashlib.sha256(s.encode("utf-8")).digest()[:8], "big") % P
                      for s in items], dtype=torch.int64)                       # (S,)
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(1, P, (num_perm,), generator=g)                            # (K,)
    b = torch.randint(0, P, (num_perm,), generator=g)                            # (K,)
    hashed = (a[:, None] * x[None, :] + b[:, None]) % P                          # (K, S)
    return hashed.min(dim=1).values
    ### END SOLUTION


def lsh_buckets(signatures: torch.Tensor, bands: int, rows: int) -> list[dict[tuple[int, ...], list[int]]]:
    """Locality-sensitive hashing of MinHash signatures: the buckets of each band.

    signatures: (N, K) int64, one signature per row (it need not be contiguous); K must
                equal bands · rows.
    Band b covers columns b·rows … (b + 1)·rows − 1. Returns a list of `bands` dicts; dict b
    maps each distinct band value, as a tuple of `rows` Python ints
    `tuple(signatures[i, b*rows:(b+1)*rows].tolist())`, to the list of the row indices i
    that have it, in increasing order. N = 0 gives `bands` empty dicts.
    Two documents with per-position agreement probability s share a bucket in one band with
    probability s^rows, and in at least one band with probability 1 − (1 − s^rows)^bands.
    Raises ValueError when bands < 1, rows < 1, or bands · rows != K.
    """
    ### BEGIN SOLUTION
    N, K = signatures.shape
    if bands < 1 or rows < 1 or bands * rows != K:
        raise ValueError(f"lsh_buckets: bands · rows must equal the signature length {K} "
                         f"(bands={bands}, rows={rows}), both at least 1")
    table = signatures.tolist()
    buckets = []
    for band in range(bands):
        found: dict[tuple[int, ...], list[int]] = {}
        for i in range(N):
            key = tuple(table[i][band * rows:(band + 1) * rows])
            found.setdefault(key, []).append(i)
        buckets.append(found)
    return buckets
    ### END SOLUTION


def lsh_candidates(signatures: torch.Tensor, bands: int, rows: int) -> set[tuple[int, int]]:
    """The candidate pairs of LSH: every pair (i, j), i < j, of row indices that share a
    bucket of `lsh_buckets(signatures, bands, rows)` in at least one band.

    Returns a set of tuples of two Python ints. Raises what `lsh_buckets` raises.
    """
    ### BEGIN SOLUTION
    pairs = set()
    for band in lsh_buckets(signatures, bands, rows):
        for members in band.values():
            for p in range(len(members)):
                for q in range(p + 1, len(members)):
                    pairs.add((members[p], members[q]))
    return pairs
    ### END SOLUTION


def pack_sequences(docs: Sequence, block_size: int, eos_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Pack documents end to end into rows of `block_size` tokens; no token is lost.

    docs: a non-empty sequence of documents, each a list or tuple of int token ids or a 1-D
          int64 tensor; a document may be empty.
    The stream is doc_0 + [eos_id] + doc_1 + [eos_id] + … (every document followed by its own
    EOS, which belongs to it). The stream is cut into R = ceil(len(stream) / block_size) rows;
    the last row is padded at its end with `eos_id` tokens up to block_size.
    Returns (input_ids, segment_ids, position_ids), each (R, block_size) int64:
      input_ids     the tokens;
      segment_ids   the index in `docs` of the document a token belongs to, −1 for padding;
      position_ids  positions that restart at every document: position_ids[r, t] = t − s,
                    where s is the first column of row r holding the same segment id as
                    column t (a document cut at a row boundary restarts at 0 in the next row;
                    padding, one segment of its own, counts 0, 1, 2, …).
    Raises ValueError when block_size < 1 or `docs` is empty.
    """
    ### BEGIN SOLUTION
    if block_size < 1:
        raise ValueError(f"pack_sequences: block_size must be at least 1, got {block_size}")
    if len(docs) == 0:
        raise ValueError("pack_sequences: no documents to pack")
    tokens, segments = [], []
    for k, doc in enumerate(docs):
        ids = [int(t) for t in doc] + [eos_id]
        tokens.extend(ids)
        segments.extend([k] * len(ids))
    pad = -len(tokens) % block_size
    tokens.extend([eos_id] * pad)
    segments.extend([-1] * pad)
    input_ids = torch.tensor(tokens, dtype=torch.int64).view(-1, block_size)      # (R, T)
    segment_ids = torch.tensor(segments, dtype=torch.int64).view(-1, block_size)  # (R, T)
    position_ids = torch.zeros_like(input_ids)                                     # (R, T)
    for t in range(1, block_size):
        same = segment_ids[:, t] == segment_ids[:, t - 1]
        position_ids[:, t] = torch.where(same, position_ids[:, t - 1] + 1, 0)
    return input_ids, segment_ids, position_ids
    ### END SOLUTION


def packed_attention_mask(segment_ids: torch.Tensor) -> torch.Tensor:
    """The block-diagonal causal attention mask of packed rows.

    segment_ids: (R, T) int64, as `pack_sequences` returns (it need not be contiguous).
    Returns a bool tensor (R, T, T): mask[r, i, j] is True — query i may attend to key j —
    exactly when j ≤ i and segment_ids[r, i] == segment_ids[r, j]. The diagonal is always
    True, so no query row is fully masked; pass it as `attn_mask` to
    `F.scaled_dot_product_attention` (True = attend).
    """
    ### BEGIN SOLUTION
    T = segment_ids.shape[-1]
    same = segment_ids[:, :, None] == segment_ids[:, None, :]                      # (R, T, T)
    causal = torch.ones(T, T, dtype=torch.bool, device=segment_ids.device).tril()  # (T, T)
    return same & causal
    ### END SOLUTION


def fim_transform(doc: str, rng: random.Random, mode: str = "psm") -> str:
    """Rewrite a document for fill-in-the-middle training (Bavarian et al., 2022).

    With n = len(doc), draw two cut points with exactly two calls, `i = rng.randint(0, n)`
    then `j = rng.randint(0, n)` (both ends included), and let lo, hi = min(i, j), max(i, j):
    prefix = doc[:lo], middle = doc[lo:hi], suffix = doc[hi:]. Then
      mode "psm":  FIM_PREFIX + prefix + FIM_SUFFIX + suffix + FIM_MIDDLE + middle
      mode "spm":  FIM_PREFIX + FIM_SUFFIX + suffix + FIM_MIDDLE + prefix + middle
    ("spm" is the paper's suffix-prefix-middle variant: the prefix follows the middle
    sentinel and the model continues it with the middle). Any of the three parts may be empty.
    Returns the str; removing the sentinels and reordering the parts gives back `doc`.
    Raises ValueError when mode is not "psm" or "spm", or when `doc` already contains one of
    the three sentinel strings (the output could not be split back unambiguously); both are
    checked before `rng` is used.
    """
    ### BEGIN SOLUTION
    if mode not in ("psm", "spm"):
        raise ValueError(f"fim_transform: mode must be 'psm' or 'spm', got {mode!r}")
    for sentinel in (FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX):
        if sentinel in doc:
            raise ValueError(f"fim_transform: the document already contains the sentinel {sentinel!r}")
    n = len(doc)
    i, j = rng.randint(0, n), rng.randint(0, n)
    lo, hi = min(i, j), max(i, j)
    prefix, middle, suffix = doc[:lo], doc[lo:hi], doc[hi:]
    if mode == "psm":
        return FIM_PREFIX + prefix + FIM_SUFFIX + suffix + FIM_MIDDLE + middle
    return FIM_PREFIX + FIM_SUFFIX + suffix + FIM_MIDDLE + prefix + middle
    ### END SOLUTION


def mixture_probs(weights, temperature: float) -> torch.Tensor:
    """Sampling probabilities of data sources from their weights, with a temperature.

    weights:     K ≥ 1 non-negative finite numbers, at least one positive (a list, a tuple
                 or a 1-D tensor; typically the sources' sizes in tokens).
    temperature: T > 0 (finite). p_k = w_k^(1/T) / Σ_j w_j^(1/T): T = 1 samples in proportion
                 to the weights, T > 1 flattens toward uniform over the positive weights,
                 T < 1 sharpens; a zero weight always gets probability 0.
    Returns a float64 tensor of shape (K,) summing to 1. Compute it as (w / max w)^(1/T),
    normalised, so no power overflows. When `weights` is a float64 tensor that requires grad,
    the result is differentiable with respect to it.
    Raises ValueError when the weights are empty or not 1-D, when one is negative or not
    finite, when all are zero, or when the temperature is not a finite positive number.
    """
    ### BEGIN SOLUTION
    w = torch.as_tensor(weights, dtype=torch.float64)                               # (K,)
    if w.dim() != 1 or w.numel() == 0:
        raise ValueError(f"mixture_probs: weights must be a non-empty 1-D sequence, got shape {tuple(w.shape)}")
    if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
        raise ValueError(f"mixture_probs: weights must be finite and non-negative, got {w.tolist()}")
    if not bool((w > 0).any()):
        raise ValueError("mixture_probs: at least one weight must be positive")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"mixture_probs: temperature must be a finite positive number, got {temperature}")
    q = (w / w.max()) ** (1.0 / temperature)                                        # (K,) in [0, 1]
    return q / q.sum()
    ### END SOLUTION


def mixture_sampler(weights, temperature: float, num_samples: int, generator: torch.Generator) -> torch.Tensor:
    """Draw `num_samples` source indices i.i.d. from `mixture_probs(weights, temperature)`.

    Exactly `torch.multinomial(probs, num_samples, replacement=True, generator=generator)`,
    so a seeded generator gives the same draws everywhere. Returns an int64 tensor of shape
    (num_samples,) with values in [0, K). Raises ValueError when num_samples < 1, and what
    `mixture_probs` raises.
    """
    ### BEGIN SOLUTION
    if num_samples < 1:
        raise ValueError(f"mixture_sampler: num_samples must be at least 1, got {num_samples}")
    probs = mixture_probs(weights, temperature)
    return torch.multinomial(probs, num_samples, replacement=True, generator=generator)
    ### END SOLUTION
