"""A given character-level codec, so topics after 01 need no tokenizer of their own."""

from __future__ import annotations

import torch


class CharCodec:
    """Maps each distinct character of a training text to an id (sorted by code point).

    Not 01's CharTokenizer: no special tokens, and an unknown character raises instead of
    becoming `<unk>`. Chapters build it from the very text they encode, where neither
    difference can arise."""

    def __init__(self, chars: list[str]):
        if len(set(chars)) != len(chars):
            raise ValueError("characters must be distinct")
        self.chars = list(chars)
        self.index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def from_text(cls, text: str) -> "CharCodec":
        return cls(sorted(set(text)))

    @property
    def vocab_size(self) -> int:
        return len(self.chars)

    def encode(self, text: str) -> torch.Tensor:
        """(len(text),) int64 ids. Raises ValueError naming the first unknown character."""
        try:
            return torch.tensor([self.index[c] for c in text], dtype=torch.long)
        except KeyError as exc:
            raise ValueError(f"character {exc.args[0]!r} is not in the codec's vocabulary") from None

    def decode(self, ids) -> str:
        return "".join(self.chars[int(i)] for i in ids)
