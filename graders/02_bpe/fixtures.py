"""Golden data for 02_bpe, generated from the reference solution.

Records (all JSON; bytes as lowercase hex):
- course_bpe: the tokenizer trained on the shipped corpus (the course corpus, documents
  joined by <|endoftext|>), with the parameters to rebuild that corpus, in the save format.
- encode_cases: texts and their ids under the course tokenizer.
- pretokenize_cases: texts, special tokens and their pre-tokens.
- small_training: small corpora (many ties) with the merges learned.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import bpe_oracle  # graders/02_bpe/bpe_oracle.py (the harness puts this folder on sys.path)

SEED = 0

CORPUS = {"n_paragraphs": 400, "seed": 0, "separator": "<|endoftext|>"}
VOCAB_SIZE = 800
SPECIALS = ["<|endoftext|>"]

ENCODE_TEXTS = [
    "",
    "Ada walked to the harbour in the morning, and she found a red kite there.",
    '"Have you seen a map?" asked Zoë. "No," said René.<|endoftext|>Gus counted 42 coins.',
    "They'll say it's the café in Zürich 東京 🙂🚲 — naïve!",
    "  spaces\tand\ttabs\n\n\n   trailing   ",
    "<|endoftext|><|endoftext|>x<|endoftext",
    "On 12 March 1999, Ivo paid 31.50 euros.",
]

PRETOKENIZE_CASES = [
    ("Hi there!<|eot|>ok", ["<|eot|>"]),
    ("I'm here, you're not; they've 2 cats.  \n  Bye", None),
    ("<|a|><|b|> and <|a|> and <|b|>", ["<|a|>", "<|a|><|b|>"]),
    ("x|y<|endoftext|>end|of", ["<|endoftext|>"]),
    ("a.b*c a.b*c", ["a.b*c"]),
    ("東京 café  🙂  \t\n", []),
]

SMALL_TRAINING = [
    ("ab zy", 259, []),
    ("abc abc abcabc bca", 262, []),
    ("aaaa aaa aa a", 262, []),
    ("low lower lowest newer newest wider<|s|>low<|s|>", 266, ["<|s|>"]),
    ("héllo wörld 東京東京 🙂🙂🙂", 270, []),
]


def generate(impl) -> dict:
    vocab, merges = impl.train_bpe(bpe_oracle.course_training_text(**CORPUS), VOCAB_SIZE, SPECIALS)
    tok = impl.BPETokenizer(vocab, merges, SPECIALS)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "tokenizer.json"
        tok.save(path)
        saved = json.loads(path.read_text(encoding="utf-8"))
    return {
        "course_bpe": {"corpus": CORPUS, "vocab_size": VOCAB_SIZE, "special_tokens": SPECIALS,
                       "tokenizer": saved},
        "encode_cases": [{"text": t, "ids": tok.encode(t)} for t in ENCODE_TEXTS],
        "pretokenize_cases": [{"text": t, "special_tokens": s, "pieces": impl.pretokenize(t, s)}
                              for t, s in PRETOKENIZE_CASES],
        "small_training": [{"corpus": c, "vocab_size": v, "special_tokens": s,
                            "merges": bpe_oracle.hex_merges(impl.train_bpe(c, v, s)[1])}
                           for c, v, s in SMALL_TRAINING],
    }
