"""Slow, obviously-correct byte-level BPE for the 02_bpe graders (instructor code, not a test).

Written for clarity, not speed, and independently of the reference solution:
- `pretokenize` scans for special tokens by hand instead of building a regex alternation;
- `train_bpe` recounts every pair of the whole corpus after every merge (the brute-force
  trainer; same signature as the unit, so benchmarks can time one against the other);
- `encode` replays the merges in the order they were learned, each over the whole pre-token
  (equivalent to "lowest rank first", by a different algorithm);
- `diagnose_merges` explains where a wrong list of merges departs from the right one.

Below those, the helpers the test files share: `expect_merges` (an exact comparison of merge
lists whose failure says where and why they part), `TIKTOKEN_BUILTINS` (what a unit written
from scratch may not call), the shipped training text, the save format and a tiktoken oracle.
"""

from __future__ import annotations

from collections import Counter

import regex

from llmlab.testing import check

GPT2_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
_GPT2 = regex.compile(GPT2_PATTERN)


# What a pre-tokenizer regex typically misses, each as the pattern that makes the mistake:
# the graders name the mistake when a student's pieces equal these patterns' pieces.
PATTERN_MISTAKES = {
    "the regex misses the contractions ('s 't 're 've 'm 'll 'd come first in the GPT-2 pattern)":
        GPT2_PATTERN.replace("'s|'t|'re|'ve|'m|'ll|'d|", ""),
    "letters matched as [a-zA-Z] instead of \\p{L}: non-ASCII letters (é, 東) split off":
        GPT2_PATTERN.replace(r" ?\p{L}+", " ?[a-zA-Z]+").replace(r"[^\s\p{L}\p{N}]", r"[^\sa-zA-Z\p{N}]"),
    "no optional leading space (` ?`) before words, numbers and punctuation: spaces become their own pieces":
        GPT2_PATTERN.replace(" ?", ""),
    "whitespace matched as \\s+ only: a run of spaces before a word must leave its last space to the word "
    "(the GPT-2 pattern has \\s+(?!\\S) before \\s+)": GPT2_PATTERN.replace(r"|\s+(?!\S)", ""),
}


def pieces_with(pattern: str, text: str, special_tokens=None) -> list[str]:
    """pretokenize() with another regex in place of the GPT-2 pattern (for mistakes)."""
    compiled = regex.compile(pattern)
    return [q for segment, special in split_specials(text, special_tokens)
            for q in ([segment] if special else compiled.findall(segment))]


def split_specials(text: str, special_tokens) -> list[tuple[str, bool]]:
    """[(segment, is_special)]: leftmost occurrence first, longest special at a position."""
    specials = sorted(set(special_tokens or []), key=len, reverse=True)
    out: list[tuple[str, bool]] = []
    plain_start = i = 0
    while i < len(text):
        hit = next((s for s in specials if text.startswith(s, i)), None)
        if hit is None:
            i += 1
            continue
        if plain_start < i:
            out.append((text[plain_start:i], False))
        out.append((hit, True))
        i += len(hit)
        plain_start = i
    if plain_start < len(text):
        out.append((text[plain_start:], False))
    return out


def pretokenize(text: str, special_tokens=None) -> list[str]:
    pieces: list[str] = []
    for segment, special in split_specials(text, special_tokens):
        pieces.extend([segment] if special else _GPT2.findall(segment))
    return pieces


def words_of(corpus: str, special_tokens, across_pretokens: bool) -> Counter:
    """The training sequences with their counts: each distinct pre-token (or, to reproduce
    the mistake, each stretch between special tokens) as a tuple of single-byte tokens."""
    words: Counter = Counter()
    for segment, special in split_specials(corpus, special_tokens):
        if special:
            continue
        for part in [segment] if across_pretokens else _GPT2.findall(segment):
            words[tuple(bytes([b]) for b in part.encode("utf-8"))] += 1
    return words


def count_pairs(words: Counter) -> Counter:
    """Every adjacent pair inside every word, weighted by the word's count (one full pass)."""
    counts: Counter = Counter()
    for word, n in words.items():
        for pair in zip(word, word[1:]):
            counts[pair] += n
    return counts


def apply_merge(words: Counter, pair) -> Counter:
    out: Counter = Counter()
    for word, n in words.items():
        out[merge_word(word, pair, pair[0] + pair[1])] += n
    return out


def merge_word(word, pair, new):
    out, i = [], 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == pair[0] and word[i + 1] == pair[1]:
            out.append(new)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return tuple(out)


def train_bpe(corpus: str, vocab_size: int, special_tokens=None, *, tie: str = "greatest",
              across_pretokens: bool = False):
    """Brute force: recount all pairs after every merge. `tie` ("greatest", "smallest" or
    "first-seen") and `across_pretokens` exist to reproduce known mistakes."""
    specials = list(special_tokens or [])
    words = words_of(corpus, specials, across_pretokens)
    merges: list[tuple[bytes, bytes]] = []
    while len(merges) < vocab_size - 256 - len(specials):
        counts = count_pairs(words)
        if not counts:
            break
        top = max(counts.values())
        tied = [p for p in counts if counts[p] == top]  # in first-seen order
        best = {"greatest": max(tied), "smallest": min(tied), "first-seen": tied[0]}[tie]
        merges.append(best)
        words = apply_merge(words, best)
    vocab = {i: bytes([i]) for i in range(256)}
    vocab.update({256 + k: a + b for k, (a, b) in enumerate(merges)})
    vocab.update({256 + len(merges) + j: s.encode("utf-8") for j, s in enumerate(specials)})
    return vocab, merges


def encode(text: str, merges, special_tokens=None, *, order: str = "learned") -> list[int]:
    """Ids by replaying the merges in learned order. `order` ("learned", "reversed",
    "leftmost") reproduces known mistakes; "leftmost" merges the leftmost mergeable pair."""
    specials = list(special_tokens or [])
    ids_of = {bytes([i]): i for i in range(256)}
    for k, (a, b) in enumerate(merges):
        ids_of.setdefault(a + b, 256 + k)
    ranks = {pair: k for k, pair in enumerate(merges)}
    special_ids = {s: 256 + len(merges) + j for j, s in enumerate(specials)}
    out: list[int] = []
    done: dict[str, list[int]] = {}
    for piece in pretokenize(text, specials):
        if piece in special_ids:
            out.append(special_ids[piece])
            continue
        if piece in done:
            out.extend(done[piece])
            continue
        word = tuple(bytes([b]) for b in piece.encode("utf-8"))
        if order == "leftmost":
            while True:
                i = next((i for i in range(len(word) - 1) if (word[i], word[i + 1]) in ranks), None)
                if i is None:
                    break
                word = word[:i] + (word[i] + word[i + 1],) + word[i + 2:]
        else:
            for pair in (merges if order == "learned" else merges[::-1]):
                if len(word) < 2:
                    break
                word = merge_word(word, pair, pair[0] + pair[1])
        done[piece] = [ids_of[t] for t in word]
        out.extend(done[piece])
    return out


def diagnose_merges(corpus: str, special_tokens, got, expected) -> tuple[str, str | None]:
    """(detail, mistake name or None) for the first merge where `got` departs from `expected`."""
    specials = list(special_tokens or [])
    k = next((i for i, (g, e) in enumerate(zip(got, expected)) if g != e), min(len(got), len(expected)))
    if k == len(got) or k == len(expected):
        return (f"the first {k} merges agree, then {len(got)} merges were learned instead of {len(expected)}",
                None if len(got) > len(expected) else "stopped learning merges too early")
    words = words_of(corpus, specials, across_pretokens=False)
    for pair in expected[:k]:
        words = apply_merge(words, pair)
    counts = count_pairs(words)
    g, e = tuple(got[k]), tuple(expected[k])
    head = f"merge {k} is {g!r}, expected {e!r}"
    if g not in counts:
        if any(g[0] + g[1] in s.encode("utf-8") for s in specials):
            return (f"{head}; {g!r} occurs only inside a special token", "special tokens were used as training text")
        if _spans_pretokens(corpus, specials, expected[:k], g):
            return (f"{head}; at that point {g!r} occurs only across two pre-tokens",
                    "merging across pre-tokens (pairs must be counted inside each pre-token only)")
        if g in got[:k]:
            return (f"{head}; that pair was merged already, at merge {got.index(g)}",
                    "pair counts are wrong after a merge (check the incremental update)")
        return (f"{head}; the pair {g!r} does not occur in the corpus at that point",
                "pair counts are wrong after a merge (check the incremental update)")
    if counts[g] == counts[e]:
        return (f"{head}; both pairs occur {counts[e]} times, and ties go to the lexicographically greatest pair",
                "ties broken by another rule than 'lexicographically greatest pair' (e.g. insertion order)")
    return (f"{head}; {g!r} occurs {counts[g]} times but {e!r} occurs {counts[e]} times",
            "pair counts are wrong after a merge (check the incremental update)" if counts[g] < counts[e] else None)


# ------------------------------------------------------------------ shared grader helpers

# tiktoken ships a BPE trainer and encoder; a unit that used them would not be "from scratch".
TIKTOKEN_BUILTINS = ["tiktoken.core.Encoding.__init__", "tiktoken._educational.bpe_train",
                     "tiktoken._educational.SimpleBytePairEncoding.__init__"]


def expect_merges(got, expected, corpus: str, special_tokens, case: str) -> None:
    """Fail (naming the unit train_bpe) unless the merge lists are equal; the message says at
    which merge they part, why (counts, tie rule, pre-token boundaries) and the known mistake."""
    __tracebackhide__ = True
    if got == expected:
        return
    detail, mistake = diagnose_merges(corpus, special_tokens, got, expected)
    check.fail("train_bpe", "the merges differ from the expected ones", detail,
               f"got {len(got)} merges, expected {len(expected)}", case=case, mistake=mistake)


def course_training_text(n_paragraphs: int, seed: int, separator: str) -> str:
    """The shipped training corpus: the course corpus with documents (paragraphs) joined by
    `separator` (a special token), as real pre-training data is."""
    from llmlab.lib.corpus import course_corpus

    return separator.join(course_corpus(n_paragraphs, seed).split("\n\n"))


def hex_merges(merges) -> list[list[str]]:
    return [[bytes(a).hex(), bytes(b).hex()] for a, b in merges]


def unhex_merges(rows) -> list[tuple[bytes, bytes]]:
    return [(bytes.fromhex(a), bytes.fromhex(b)) for a, b in rows]


def parse_saved(data: dict):
    """(vocab, merges, special_tokens) from the documented JSON save format."""
    vocab = {int(i): bytes.fromhex(h) for i, h in data["vocab"].items()}
    return vocab, unhex_merges(data["merges"]), list(data["special_tokens"])


def vocab_of(merges, special_tokens=()) -> dict[int, bytes]:
    vocab = {i: bytes([i]) for i in range(256)}
    vocab.update({256 + k: a + b for k, (a, b) in enumerate(merges)})
    vocab.update({256 + len(merges) + j: s.encode("utf-8") for j, s in enumerate(special_tokens)})
    return vocab


def tiktoken_encoding(merges, special_tokens=()):
    """An offline tiktoken.Encoding built from our ranks (token bytes -> id; no download)."""
    import tiktoken

    ranks = {bytes([i]): i for i in range(256)}
    for k, (a, b) in enumerate(merges):
        if a + b in ranks:
            raise ValueError("two merges make the same token; tiktoken cannot represent this vocabulary")
        ranks[a + b] = 256 + k
    specials = {s: 256 + len(merges) + j for j, s in enumerate(special_tokens)}
    return tiktoken.Encoding(name="llmlab-02-bpe-oracle", pat_str=GPT2_PATTERN,
                             mergeable_ranks=ranks, special_tokens=specials)


def _spans_pretokens(corpus: str, specials, merges, pair) -> bool:
    """Whether `pair` occurs where two neighbouring pre-tokens meet, after `merges`."""
    done: dict[str, tuple] = {}

    def tokens(piece: str) -> tuple:
        if piece not in done:
            word = tuple(bytes([b]) for b in piece.encode("utf-8"))
            for m in merges:
                word = merge_word(word, m, m[0] + m[1])
            done[piece] = word
        return done[piece]

    for segment, special in split_specials(corpus, specials):
        pieces = [] if special else _GPT2.findall(segment)
        for left, right in zip(pieces, pieces[1:]):
            if (tokens(left)[-1], tokens(right)[0]) == tuple(pair):
                return True
    return False
