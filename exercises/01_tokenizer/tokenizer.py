"""Tokenizer basics: text -> integer ids -> text.

Three tokenizers that share one interface, and the helpers that turn their output into
model input:

    tok = CharTokenizer().train(["hello world"])     # or ByteTokenizer(), WordTokenizer(...)
    ids = tok.encode("hello")                         # list[int]
    tok.decode(ids) == "hello"                        # str
    batch, mask = pad_batch([add_special(ids), [BOS_ID]], pad_id=PAD_ID)

Conventions shared by every tokenizer of this topic:
- four special tokens sit at fixed ids: <pad>=0, <unk>=1, <bos>=2, <eos>=3 (PAD_ID,
  UNK_ID, BOS_ID, EOS_ID; SPECIAL_TOKENS lists their texts in id order). Ordinary tokens
  come after them, from id 4 = N_SPECIAL on.
- `encode` never produces <pad>, <bos> or <eos>: the text "<bos>" is ordinary text.
  Special tokens are added with `add_special` and `pad_batch`.
- `decode(ids)` writes a special token as its text ("<unk>", "<bos>", ...);
  `decode(ids, skip_special=True)` leaves the four special tokens out. An id outside
  [0, vocab_size) raises ValueError (negative ids too: -1 is not "the last token").
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Sequence

import torch

PAD, UNK, BOS, EOS = "<pad>", "<unk>", "<bos>", "<eos>"
SPECIAL_TOKENS = [PAD, UNK, BOS, EOS]            # text of special token i is SPECIAL_TOKENS[i]
PAD_ID, UNK_ID, BOS_ID, EOS_ID = 0, 1, 2, 3
N_SPECIAL = len(SPECIAL_TOKENS)                  # ordinary tokens start at this id

# Word-level pre-tokenization, GPT-2 style but simpler. Pieces, tried in this order:
#   " ?\w+"        an optional single space, then a run of word characters (letters, digits,
#                  underscore, in the Unicode sense of Python's `re`): "hello", " world", " 東京"
#   " ?[^\w\s]"    an optional single space, then ONE other non-space character: ",", " \"", " 🙂"
#   "\s+(?!\S)"    a run of whitespace that leaves its last space to the word after it
#   "\s+"          any remaining whitespace (e.g. "\n" right before a word)
# Every character of a text lands in exactly one piece, so "".join(pieces) == text.
WORD_PATTERN = re.compile(r" ?\w+| ?[^\w\s]|\s+(?!\S)|\s+")


def _check_id(i: int, vocab_size: int) -> int:
    """`i` as a Python int, or a ValueError if it is not a valid id."""
    i = int(i)
    if not 0 <= i < vocab_size:
        raise ValueError(f"id {i} is outside the vocabulary [0, {vocab_size}); "
                         f"decode only ids this tokenizer produced")
    return i


class CharTokenizer:
    """One token per Unicode character (code point) seen in training.

    Vocabulary: ids 0-3 are SPECIAL_TOKENS; then every distinct character of the training
    texts, sorted by code point, from id 4 on. `itos[i]` is the text of token i and
    `stoi[text]` its id (`stoi` also holds the four special tokens' texts).
    Characters not seen in training encode to UNK_ID (one <unk> per character — never
    dropped, so len(encode(text)) == len(text)).
    """

    def __init__(self):
        self.itos: list[str] = list(SPECIAL_TOKENS)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def train(self, texts: Sequence[str]) -> "CharTokenizer":
        """Build the vocabulary from `texts` (a list of strings), replacing any earlier one.

        Sets `itos` = SPECIAL_TOKENS + the distinct characters sorted by code point, and
        `stoi` its inverse ({token text: id}).
        Returns self, so `CharTokenizer().train(texts)` is a trained tokenizer.
        """
        # TODO(CharTokenizer.train): your code here.
        raise NotImplementedError("TODO 01_tokenizer: CharTokenizer.train")

    def encode(self, text: str) -> list[int]:
        """One id per character of `text`; characters outside the vocabulary give UNK_ID."""
        # TODO(CharTokenizer.encode): your code here.
        raise NotImplementedError("TODO 01_tokenizer: CharTokenizer.encode")

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str:
        """Concatenate the texts of `ids`. Special tokens appear as their text ("<unk>")
        unless `skip_special`, which leaves ids 0-3 out. ValueError for an id outside
        [0, vocab_size) (the helper `_check_id` does this check)."""
        # TODO(CharTokenizer.decode): your code here.
        raise NotImplementedError("TODO 01_tokenizer: CharTokenizer.decode")


class ByteTokenizer:
    """One token per UTF-8 byte: byte value b (0..255) has id N_SPECIAL + b = 4 + b.

    vocab_size is 4 + 256 = 260. Needs no training and has no unknown tokens: every
    Python string that UTF-8 can encode round-trips exactly. (A string holding a lone
    surrogate, which UTF-8 cannot encode, raises UnicodeEncodeError.)
    """

    vocab_size = N_SPECIAL + 256

    def train(self, texts: Sequence[str]) -> "ByteTokenizer":
        """Nothing to learn; present so every tokenizer has the same interface."""
        return self

    def encode(self, text: str) -> list[int]:
        """The UTF-8 bytes of `text`, each shifted by N_SPECIAL: "é" -> [4+0xC3, 4+0xA9]."""
        # TODO(ByteTokenizer.encode): your code here.
        raise NotImplementedError("TODO 01_tokenizer: ByteTokenizer.encode")

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str:
        """Bytes back to text. Byte sequences that are not valid UTF-8 (a model can emit
        them) decode with errors="replace": each maximal invalid part becomes U+FFFD, as in
        `bytes.decode("utf-8", errors="replace")`. Special ids appear as their text unless
        `skip_special`; the bytes on each side of a special token are decoded separately,
        and with `skip_special` the special ids are removed first and all bytes decoded
        together. ValueError for an id outside [0, 260)."""
        # Hint: collect byte values in a bytearray; bytearray.decode("utf-8", errors="replace").
        # TODO(ByteTokenizer.decode): your code here.
        raise NotImplementedError("TODO 01_tokenizer: ByteTokenizer.decode")


class WordTokenizer:
    """One token per WORD_PATTERN piece, with a vocabulary of the most frequent pieces.

    Vocabulary: ids 0-3 are SPECIAL_TOKENS; then the pieces of the training texts that occur
    at least `min_freq` times, most frequent first; ties (equal counts) are broken by the
    piece itself in ascending code-point order (Python's `sorted` on str). If `max_size`
    is set, the WHOLE vocabulary — the four special tokens included — has at most
    `max_size` entries: only the first max_size - 4 pieces of that order are kept.
    `itos[i]` is the text of token i and `stoi` its inverse, as in CharTokenizer.
    A piece outside the vocabulary encodes to one UNK_ID. Pieces keep their leading space
    (" world" and "world" are different tokens), so decode, which joins pieces with no
    separator, restores the text exactly when every piece is in the vocabulary.
    """

    def __init__(self, min_freq: int = 1, max_size: int | None = None):
        if min_freq < 1:
            raise ValueError(f"min_freq must be at least 1, got {min_freq}")
        if max_size is not None and max_size < N_SPECIAL:
            raise ValueError(f"max_size counts the {N_SPECIAL} special tokens, so it must be at least "
                             f"{N_SPECIAL}; got {max_size} (use None for no limit)")
        self.min_freq = min_freq
        self.max_size = max_size
        self.itos: list[str] = list(SPECIAL_TOKENS)
        self.stoi: dict[str, int] = {t: i for i, t in enumerate(self.itos)}

    @property
    def vocab_size(self) -> int:
        return len(self.itos)

    def train(self, texts: Sequence[str]) -> "WordTokenizer":
        """Count the WORD_PATTERN pieces of `texts` (a list of strings) and build
        `itos`/`stoi` by the rules above, replacing any earlier vocabulary. Returns self."""
        # Hint: collections.Counter counts; sort with a key that encodes both rules at once.
        # TODO(WordTokenizer.train): your code here.
        raise NotImplementedError("TODO 01_tokenizer: WordTokenizer.train")

    def encode(self, text: str) -> list[int]:
        """One id per WORD_PATTERN piece of `text`; UNK_ID for pieces outside the vocabulary."""
        # TODO(WordTokenizer.encode): your code here.
        raise NotImplementedError("TODO 01_tokenizer: WordTokenizer.encode")

    def decode(self, ids: Sequence[int], skip_special: bool = False) -> str:
        """Concatenate the pieces of `ids` (no separator: spaces live inside the pieces).
        Special tokens appear as their text unless `skip_special`. ValueError for an id
        outside [0, vocab_size)."""
        # TODO(WordTokenizer.decode): your code here.
        raise NotImplementedError("TODO 01_tokenizer: WordTokenizer.decode")


def add_special(ids: Sequence[int], bos: bool = True, eos: bool = True) -> list[int]:
    """A NEW list: [BOS_ID] (if bos) + ids + [EOS_ID] (if eos). `ids` is left unchanged."""
    # TODO(add_special): your code here.
    raise NotImplementedError("TODO 01_tokenizer: add_special")


def pad_batch(
    seqs: Sequence[Sequence[int]],
    pad_id: int = PAD_ID,
    max_len: int | None = None,
    side: str = "right",
    truncate: str = "right",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack sequences of different lengths into one rectangular batch.

    seqs: a non-empty list of B sequences of ints (lists or tuples; empty ones allowed).
    L = max_len if given, else the length of the longest sequence.
    truncate: a sequence longer than L loses tokens at this end: "right" keeps its first L
        tokens, "left" keeps its last L tokens.
    side: where the padding goes: "right" puts the tokens first and pad_id after them,
        "left" puts pad_id first and the tokens at the end of the row.
    Returns (ids, attention_mask), both torch.long of shape (B, L): ids holds the tokens and
    pad_id elsewhere; attention_mask is 1 at real tokens and 0 at padding. The mask comes
    from the lengths, not from comparing ids with pad_id: a real token equal to pad_id
    still has mask 1.
    Raises ValueError if seqs is empty, max_len < 1, or side/truncate is not "right"/"left".
    Written from scratch: torch.nn.utils.rnn.pad_sequence is not allowed here.
    """
    # Hint: start from torch.full((B, L), pad_id) and torch.zeros((B, L)); fill one row at a time.
    # TODO(pad_batch): your code here.
    raise NotImplementedError("TODO 01_tokenizer: pad_batch")


def compression_ratio(tokenizer, texts: Sequence[str]) -> float:
    """UTF-8 bytes per token over the whole list: sum of len(t.encode("utf-8")) divided by
    the sum of len(tokenizer.encode(t)) (no special tokens added). A ratio of totals, not a
    mean of per-text ratios. ByteTokenizer gives exactly 1.0; higher means more compression.
    Raises ValueError when the texts give no tokens at all."""
    # TODO(compression_ratio): your code here.
    raise NotImplementedError("TODO 01_tokenizer: compression_ratio")
