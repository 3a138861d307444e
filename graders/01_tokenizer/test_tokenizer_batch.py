"""Graders for 01_tokenizer: pad_batch, add_special, compression_ratio.

pad_batch is compared with torch.nn.utils.rnn.pad_sequence (right and left padding) and
with a slow loop (tokenizer_oracle.pad: truncation, every argument), and runs with
pad_sequence forbidden.
compression_ratio is compared with its definition computed here, on the course corpus.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import tokenizer_oracle as O  # graders/01_tokenizer/tokenizer_oracle.py (on sys.path via the harness)
from llmlab.lib.corpus import course_corpus
from llmlab.testing import check, guard, reference, strategies, tensors
from llmlab.testing.strategies import examples

TOPIC = "01_tokenizer"
PAD_ID, BOS_ID, EOS_ID = O.PAD_ID, O.BOS_ID, O.EOS_ID
_FORBIDDEN = ["torch.nn.utils.rnn.pad_sequence"]
_HINT = "Allocate the (B, L) tensors and copy each sequence into its row."


def _pad(impl, seqs, **kwargs):
    """Call the student's pad_batch with pad_sequence forbidden; check the result's form."""
    out = guard.call_without("pad_batch", _FORBIDDEN, impl.pad_batch, seqs, hint=_HINT, **kwargs)
    case = check.describe(seqs=seqs, **kwargs)
    check.that(isinstance(out, tuple) and len(out) == 2, "pad_batch",
               "must return a tuple (ids, attention_mask)", f"got {type(out).__name__}", case=case)
    return out


def _pad_mistakes(seqs, pad_id=PAD_ID, max_len=None, side="right", truncate="right"):
    """Wrong (ids, mask) pairs of the catalogue, for naming a mistake."""
    other_side = "left" if side == "right" else "right"
    other_end = "left" if truncate == "right" else "right"
    ids, mask = O.pad(seqs, pad_id, max_len, side, truncate)
    return {
        "ids": {
            "left padding that pads on the right": O.pad(seqs, pad_id, max_len, "right", truncate)[0],
            "padding on the wrong side": O.pad(seqs, pad_id, max_len, other_side, truncate)[0],
            "truncation keeps the wrong end of the sequence": O.pad(seqs, pad_id, max_len, side, other_end)[0],
        },
        "mask": {
            "attention mask inverted (1 must mark real tokens, 0 padding)": 1 - mask,
            "mask computed from ids != pad_id (a real token may equal pad_id)": (ids != pad_id).long(),
            "left padding that pads on the right": O.pad(seqs, pad_id, max_len, "right", truncate)[1],
        },
    }


def _check_pad(impl, seqs, **kwargs):
    ids, mask = _pad(impl, seqs, **kwargs)
    exp_ids, exp_mask = O.pad(seqs, **kwargs)
    wrong = _pad_mistakes(seqs, **kwargs)
    case = check.describe(seqs=seqs, **kwargs)
    check.close(ids, exp_ids, unit="pad_batch", what="ids", case=case, kind="exact", mistakes=wrong["ids"])
    check.close(mask, exp_mask, unit="pad_batch", what="attention_mask", case=case, kind="exact",
                mistakes=wrong["mask"])


def _random_seqs(seed, batch, max_len, vocab=50):
    """`batch` sequences of ids in [0, vocab) with random lengths in [0, max_len]; the first
    has length max_len (the longest sequence sets L when max_len is None)."""
    lengths = tensors.randint((batch,), seed, max_len + 1).tolist()
    lengths[0] = max_len
    rows = tensors.randint((batch, max_len), seed + 1, vocab).tolist()
    return [row[:n] for row, n in zip(rows, lengths)]


# ------------------------------------------------------------------ pad_batch

@pytest.mark.points(2)
def test_pad_batch_golden(impl):
    rec = reference.load(TOPIC, "pad")
    for case in rec["cases"]:
        kwargs = {k: case[k] for k in ("pad_id", "max_len", "side", "truncate")}
        ids, mask = _pad(impl, rec["seqs"], **kwargs)
        wrong = _pad_mistakes(rec["seqs"], **kwargs)
        desc = check.describe(seqs=rec["seqs"], **kwargs)
        check.close(ids, torch.tensor(case["ids"]), unit="pad_batch", what="ids", case=desc, kind="exact",
                    mistakes=wrong["ids"])
        check.close(mask, torch.tensor(case["mask"]), unit="pad_batch", what="attention_mask", case=desc,
                    kind="exact", mistakes=wrong["mask"])


@pytest.mark.points(2)
@pytest.mark.parametrize("side", ["right", "left"])
def test_pad_batch_matches_pad_sequence(impl, side):
    for trial in range(5):
        seqs = _random_seqs(100 * (1 if side == "right" else 2) + 2 * trial, batch=6, max_len=9)
        pad_id = trial + 7 if trial % 2 else PAD_ID
        ids, mask = _pad(impl, seqs, pad_id=pad_id, side=side)
        tensors = [torch.tensor(s, dtype=torch.long) for s in seqs]
        exp_ids = torch.nn.utils.rnn.pad_sequence(tensors, batch_first=True, padding_value=pad_id,
                                                  padding_side=side)
        exp_mask = torch.nn.utils.rnn.pad_sequence([torch.ones_like(t) for t in tensors], batch_first=True,
                                                   padding_value=0, padding_side=side)
        wrong = _pad_mistakes(seqs, pad_id=pad_id, side=side)
        case = check.describe(seqs=seqs, pad_id=pad_id, side=side)
        check.close(ids, exp_ids, unit="pad_batch", what="ids", case=case, kind="exact", mistakes=wrong["ids"])
        check.close(mask, exp_mask, unit="pad_batch", what="attention_mask", case=case, kind="exact",
                    mistakes=wrong["mask"])


@pytest.mark.points(1)
def test_pad_batch_mask_dtype_and_values(impl):
    ids, mask = _pad(impl, [[4, 5, 6], [7]])
    case = check.describe(seqs=[[4, 5, 6], [7]])
    check.that(ids.dtype == torch.long, "pad_batch", f"ids has dtype {ids.dtype}, expected torch.int64",
               case=case)
    check.that(mask.dtype == torch.long, "pad_batch",
               f"attention_mask has dtype {mask.dtype}, expected torch.int64 (1 = token, 0 = padding)",
               case=case)
    check.close(mask, torch.tensor([[1, 1, 1], [1, 0, 0]]), unit="pad_batch", what="attention_mask",
                case=case, kind="exact",
                mistakes={"attention mask inverted (1 must mark real tokens, 0 padding)":
                          torch.tensor([[0, 0, 0], [0, 1, 1]])})


@pytest.mark.points(1)
def test_pad_batch_real_token_equal_to_pad_id(impl):
    # Token 0 is a real token here; the mask must come from the lengths.
    for side in ("right", "left"):
        _check_pad(impl, [[0, 5, 0], [0], [6, 0]], pad_id=0, side=side)


@pytest.mark.points(2)
@pytest.mark.parametrize("truncate", ["right", "left"])
def test_pad_batch_truncation(impl, truncate):
    seqs = [[10, 11, 12, 13, 14, 15], [20, 21], [30, 31, 32, 33]]
    for side in ("right", "left"):
        _check_pad(impl, seqs, max_len=3, side=side, truncate=truncate, pad_id=PAD_ID)
    ids, _ = _pad(impl, seqs, max_len=3, truncate=truncate)
    first = [10, 11, 12] if truncate == "right" else [13, 14, 15]
    check.equal(ids[0].tolist(), first, unit="pad_batch", what="row 0 after truncation to max_len=3",
                case=check.describe(seq=seqs[0], truncate=truncate),
                mistakes={"truncation keeps the wrong end of the sequence": [13, 14, 15] if truncate == "right"
                          else [10, 11, 12]})


@pytest.mark.points(1)
def test_pad_batch_max_len_longer_and_empty_rows(impl):
    for side in ("right", "left"):
        _check_pad(impl, [[4, 5], [], [6]], max_len=5, side=side, pad_id=9)
        _check_pad(impl, [[], []], max_len=2, side=side, pad_id=0)


@pytest.mark.points(1)
def test_pad_batch_tuples_batch_of_one_and_zero_length(impl):
    for side in ("right", "left"):
        _check_pad(impl, [(4, 5, 6), (7,), ()], side=side)                   # tuples as well as lists
        _check_pad(impl, [[4, 5, 6]], side=side, max_len=2, truncate="left")  # B = 1, truncated
        _check_pad(impl, [[9]], side=side)                                   # B = 1, L = 1
        _check_pad(impl, [[], ()], side=side)                                # all empty: L = 0, shape (2, 0)


@pytest.mark.points(2)
@examples(25)
@given(seqs=st.lists(st.lists(st.integers(0, 20), max_size=8), min_size=1, max_size=5),
       max_len=st.one_of(st.none(), st.integers(1, 8)), side=st.sampled_from(["right", "left"]),
       truncate=st.sampled_from(["right", "left"]), pad_id=st.integers(0, 3))
def test_pad_batch_properties(impl, seqs, max_len, side, truncate, pad_id):
    # All sequences empty and max_len None gives L = 0: a (B, 0) batch, as the docstring says.
    ids, mask = _pad(impl, seqs, pad_id=pad_id, max_len=max_len, side=side, truncate=truncate)
    case = check.describe(seqs=seqs, pad_id=pad_id, max_len=max_len, side=side, truncate=truncate)
    L = max_len if max_len is not None else max(len(s) for s in seqs)
    check.that(tuple(ids.shape) == (len(seqs), L) and tuple(mask.shape) == (len(seqs), L), "pad_batch",
               f"ids and attention_mask must have shape (B, L) = {(len(seqs), L)}",
               f"got {tuple(ids.shape)} and {tuple(mask.shape)}", case=case)
    lengths = [min(len(s), L) for s in seqs]
    check.equal(mask.sum(dim=1).tolist(), lengths, unit="pad_batch",
                what="number of 1s per row of attention_mask (= kept tokens)", case=case)
    steps = mask[:, 1:] - mask[:, :-1]
    monotone = bool((steps <= 0).all()) if side == "right" else bool((steps >= 0).all())
    check.that(monotone, "pad_batch", f"with side={side!r} the padding must sit on the {side} of every row",
               f"attention_mask = {mask.tolist()}", case=case)
    check.that(bool((ids[mask == 0] == pad_id).all()), "pad_batch",
               "every padded position of ids must hold pad_id", f"ids = {ids.tolist()}", case=case)
    _check_pad(impl, seqs, pad_id=pad_id, max_len=max_len, side=side, truncate=truncate)


@pytest.mark.points(1)
def test_pad_batch_rejects_bad_arguments(impl):
    bad = [({"side": "middle"}, 'side must be "right" or "left"'),
           ({"truncate": "both"}, 'truncate must be "right" or "left"'),
           ({"max_len": 0}, "max_len must be at least 1"), ({"max_len": -2}, "max_len must be at least 1")]
    for kwargs, rule in bad:
        check.expect_raises(ValueError, impl.pad_batch, [[4, 5]], unit="pad_batch",
                            case=check.describe(seqs=[[4, 5]], **kwargs), why=rule, **kwargs)
    check.expect_raises(ValueError, impl.pad_batch, [], unit="pad_batch", case=check.describe(seqs=[]),
                        why="seqs must be a non-empty list")


# ------------------------------------------------------------------ add_special

@pytest.mark.points(2)
def test_add_special(impl):
    ids = [7, 8, 9]
    table = [((True, True), [BOS_ID, 7, 8, 9, EOS_ID]), ((True, False), [BOS_ID, 7, 8, 9]),
             ((False, True), [7, 8, 9, EOS_ID]), ((False, False), [7, 8, 9])]
    for (bos, eos), expected in table:
        original = list(ids)
        out = impl.add_special(original, bos=bos, eos=eos)
        case = check.describe(ids=ids, bos=bos, eos=eos)
        check.equal(out, expected, unit="add_special", case=case,
                    mistakes={"<bos> and <eos> ids swapped": [EOS_ID if i == BOS_ID else BOS_ID if i == EOS_ID
                                                              else i for i in expected]})
        check.equal(original, ids, unit="add_special", what="the input list after the call (must be unchanged)",
                    case=case)
        check.that(out is not original, "add_special", "must return a new list, not the input", case=case)
    check.equal(impl.add_special([]), [BOS_ID, EOS_ID], unit="add_special", case=check.describe(ids=[]))
    check.equal(impl.add_special((5,), eos=False), [BOS_ID, 5], unit="add_special",
                case=check.describe(ids=(5,), eos=False))


# ------------------------------------------------------------------ compression_ratio

def _ratio(tok, texts):
    return sum(len(t.encode("utf-8")) for t in texts) / sum(len(tok.encode(t)) for t in texts)


def _ratio_mistakes(tok, texts):
    return {
        "counted characters instead of UTF-8 bytes":
            lambda: sum(len(t) for t in texts) / sum(len(tok.encode(t)) for t in texts),
        "tokens per byte instead of bytes per token": lambda: 1 / _ratio(tok, texts),
        "mean of per-text ratios instead of the ratio of totals":
            lambda: sum(_ratio(tok, [t]) for t in texts) / len(texts),
    }


class _Fixed:
    """A stand-in tokenizer with a known token count: one token per 3 characters (rounded up).
    compression_ratio must work with any object that has encode()."""

    def encode(self, text):
        return list(range((len(text) + 2) // 3))


@pytest.mark.points(2)
def test_compression_ratio_matches_definition(impl):
    paragraphs = course_corpus(n_paragraphs=12, seed=5).split("\n\n")
    texts = paragraphs[:6] + ["東京 🙂", "ok"]
    toks = {"_Fixed": _Fixed(), "CharTokenizer": impl.CharTokenizer().train(paragraphs[6:]),
            "WordTokenizer": impl.WordTokenizer(min_freq=2).train(paragraphs[6:])}
    for name, tok in toks.items():
        got = impl.compression_ratio(tok, texts)
        case = check.describe(tokenizer=name, texts=texts)
        check.that(isinstance(got, float), "compression_ratio", f"must return a float, got {type(got).__name__}",
                   case=case)
        # float64 arithmetic on two integer totals: one division, so "elementwise" is generous.
        check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(_ratio(tok, texts), dtype=torch.float64),
                    unit="compression_ratio", case=case, kind="elementwise",
                    mistakes={k: (lambda f=f: torch.tensor(f(), dtype=torch.float64))
                              for k, f in _ratio_mistakes(tok, texts).items()})


@pytest.mark.points(1)
@examples(25)
@given(texts=st.lists(strategies.texts(max_size=20), min_size=1, max_size=4).filter(lambda ts: any(ts)))
def test_compression_ratio_bytes_is_one(impl, texts):
    got = impl.compression_ratio(impl.ByteTokenizer(), texts)
    check.equal(got, 1.0, unit="compression_ratio", what="ratio for ByteTokenizer (one token per byte)",
                case=check.describe(texts=texts),
                mistakes={"counted characters instead of UTF-8 bytes": sum(map(len, texts)) / sum(
                    len(t.encode()) for t in texts)})


@pytest.mark.points(1)
def test_compression_ratio_no_tokens_raises(impl):
    for texts in (["", ""], []):
        check.expect_raises(ValueError, impl.compression_ratio, impl.ByteTokenizer(), texts,
                            unit="compression_ratio", case=check.describe(tokenizer="ByteTokenizer", texts=texts),
                            why="texts that give no tokens at all: the ratio is undefined")
