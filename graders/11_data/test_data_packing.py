"""Graders for 11_data, training-time data: pack_sequences, packed_attention_mask,
fim_transform, mixture_probs and mixture_sampler.

Evidence per unit:
  - golden data (reference/11_data): a packing, FIM rewrites of reference documents, mixture
    probabilities;
  - independent oracles: packing and masks by slow loops; attention over a packed row with
    the student's mask and positions against attention over each document alone (values and
    gradients: no gradient crosses a document boundary); FIM by replaying the stated draws;
    mixture probabilities in plain floats; `torch.multinomial` for the sampler;
  - properties: no token lost, block-diagonal causal masks, FIM output reassembles the
    document and consumes exactly two draws, float64 gradcheck of the mixture probabilities,
    a chi-square test of the sampler (stated false-failure rate).
"""

from __future__ import annotations

import math
import random

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import data_oracle as O
from llmlab.testing import check, reference, stats, tensors
from llmlab.testing.strategies import examples, seeds

TOPIC = "11_data"


# ---------------------------------------------------------------- pack_sequences

@pytest.mark.points(2)
def test_pack_sequences_by_hand(impl):
    docs = [[1, 2, 3], [4], [], [5, 6]]
    case = check.describe(docs=docs, block_size=4, eos_id=0)
    ids, seg, pos = impl.pack_sequences(docs, 4, 0)
    exp_ids = torch.tensor([[1, 2, 3, 0], [4, 0, 0, 5], [6, 0, 0, 0]])
    exp_seg = torch.tensor([[0, 0, 0, 0], [1, 1, 2, 3], [3, 3, -1, -1]])
    exp_pos = torch.tensor([[0, 1, 2, 3], [0, 1, 0, 0], [0, 1, 0, 1]])
    check.close(ids, exp_ids, unit="pack_sequences", kind="exact", what="input_ids", case=case,
                mistakes={"last partial row dropped": exp_ids[:2],
                          "no EOS after each document": torch.tensor([[1, 2, 3, 4], [5, 6, 0, 0]])})
    check.close(seg, exp_seg, unit="pack_sequences", kind="exact", what="segment_ids", case=case,
                mistakes={"padding labelled as the last document": torch.where(exp_seg < 0, 3, exp_seg)})
    check.close(pos, exp_pos, unit="pack_sequences", kind="exact", what="position_ids", case=case,
                mistakes={"positions not reset at document starts": torch.arange(4).expand(3, 4),
                          "positions continue across rows (not reset at a row start)":
                              torch.tensor([[0, 1, 2, 3], [0, 1, 0, 0], [1, 2, 0, 1]])})
    one_ids, one_seg, one_pos = impl.pack_sequences([torch.tensor([7, 8])], 1, 9)
    check.close(torch.stack([one_ids, one_seg, one_pos]), torch.tensor([[[7], [8], [9]], [[0], [0], [0]],
                                                                         [[0], [0], [0]]]),
                unit="pack_sequences", kind="exact", what="(input_ids, segment_ids, position_ids) with block_size 1",
                case=check.describe(docs=[[7, 8]], block_size=1, eos_id=9))


_DOC = st.lists(st.integers(1, 9), max_size=7)


@pytest.mark.points(3)
@examples(40)
@given(docs=st.lists(st.tuples(_DOC, st.sampled_from(["list", "tuple", "tensor"])), min_size=1, max_size=6),
       block_size=st.integers(1, 7), eos_id=st.sampled_from([0, 10]))
def test_pack_sequences_against_loops_and_loses_no_token(impl, docs, block_size, eos_id):
    forms = {"list": list, "tuple": tuple, "tensor": lambda d: torch.tensor(d, dtype=torch.int64)}
    given_docs = [forms[form](d) for d, form in docs]
    plain = [d for d, _ in docs]
    case = check.describe(docs=plain, block_size=block_size, eos_id=eos_id)
    out = impl.pack_sequences(given_docs, block_size, eos_id)
    check.that(isinstance(out, tuple) and len(out) == 3, "pack_sequences",
               "should return a tuple (input_ids, segment_ids, position_ids)", case=case)
    for name, got, want in zip(("input_ids", "segment_ids", "position_ids"), out, O.pack(plain, block_size, eos_id)):
        check.close(got, want, unit="pack_sequences", kind="exact", what=name, case=case)
    ids, seg, _ = out
    stream = [t for d in plain for t in d + [eos_id]]
    check.equal(ids[seg != -1].tolist(), stream, unit="pack_sequences",
                what="the non-padding tokens, read row by row (no token may be lost or reordered)", case=case)


@pytest.mark.points(1)
def test_pack_sequences_raises_and_reference(impl):
    for docs, block_size, why in (([[1]], 0, "block_size < 1"), ([[1]], -3, "block_size < 1"),
                                  ([], 4, "no documents"), ((), 4, "no documents")):
        check.expect_raises(ValueError, impl.pack_sequences, docs, block_size, 0, unit="pack_sequences",
                            case=check.describe(docs=docs, block_size=block_size), why=why)
    record = reference.load(TOPIC, "packing")
    docs = [d.tolist()[:int(n)] for d, n in zip(record["docs"], record["lengths"])]
    out = impl.pack_sequences(docs, int(record["block_size"]), int(record["eos_id"]))
    for name, got in zip(("input_ids", "segment_ids", "position_ids"), out):
        check.close(got, record[name], unit="pack_sequences", kind="exact", what=f"{name} of the reference packing",
                    case=check.describe(docs=docs, block_size=int(record["block_size"])))


# ---------------------------------------------------------------- packed_attention_mask

@pytest.mark.points(2)
@examples(25)
@given(lengths=st.lists(st.integers(0, 6), min_size=1, max_size=5), block_size=st.integers(1, 8))
def test_packed_attention_mask_against_loops(impl, lengths, block_size):
    _, seg, _ = O.pack([[1] * n for n in lengths], block_size, 0)
    case = check.describe(segment_ids=seg)
    expected = O.mask_loops(seg)
    out = impl.packed_attention_mask(seg)
    check.close(out, expected, unit="packed_attention_mask", kind="exact", what="mask", case=case,
                mistakes={"not causal (whole segments visible)": seg[:, :, None] == seg[:, None, :],
                          "causal only (documents see each other)": torch.ones_like(expected).tril().expand_as(expected),
                          "inverted (True = masked)": ~expected})
    odd = seg.T.contiguous().T                           # the same values, transposed strides
    check.close(impl.packed_attention_mask(odd), expected, unit="packed_attention_mask", kind="exact",
                what="mask of non-contiguous segment ids", case=case)


def _attention(x, table, positions, mask, w):
    """One attention head over (R, T, C) inputs plus learned absolute positions."""
    h = x + table[positions]                                               # (R, T, C)
    q, k, v = h @ w[0], h @ w[1], h @ w[2]
    return F.scaled_dot_product_attention(q, k, v, attn_mask=mask)


@pytest.mark.points(3)
def test_packed_attention_equals_attention_per_document(impl):
    # The point of the mask and the reset positions: attention over a packed row computes,
    # for every document, exactly what attention over that document alone computes, and no
    # gradient flows from one document's outputs into another document's inputs.
    docs = [[3, 1, 4, 1, 5], [9, 2], [6, 5, 3, 5, 8, 9, 7], [], [9, 3]]
    T, C = 6, 4
    ids, seg, pos = impl.pack_sequences(docs, T, 0)
    mask = impl.packed_attention_mask(seg)
    _, seg_o, _ = O.pack(docs, T, 0)
    case = check.describe(docs=docs, block_size=T)
    w = tensors.randn((3, C, C), 1)
    table = tensors.randn((T, C), 2)
    x = tensors.randn((seg_o.shape[0], T, C), 3)

    def packed(x, table):
        return _attention(x, table, pos, mask, w)

    def separate(x, table):
        pieces = []
        for r in range(seg_o.shape[0]):
            t = 0
            while t < T:
                end = t
                while end < T and seg_o[r, end] == seg_o[r, t]:
                    end += 1
                n = end - t
                h = x[r, t:end] + table[:n]
                q, k, v = h @ w[0], h @ w[1], h @ w[2]
                pieces.append((r, t, end, F.scaled_dot_product_attention(q, k, v, is_causal=True)))
                t = end
        rows = []
        for r in range(seg_o.shape[0]):
            rows.append(torch.cat([p for (rr, _, _, p) in pieces if rr == r], dim=0))
        return torch.stack(rows)

    check.close(packed(x, table), separate(x, table), unit="packed_attention_mask", kind="matmul",
                what="attention over packed rows vs. each document alone (with pack_sequences' positions)",
                case=case)
    check.grads(packed, separate, [x, table], names=["token inputs", "position table"],
                unit="packed_attention_mask", case=case)


# ---------------------------------------------------------------- fim_transform

class _Scripted(random.Random):
    """A random.Random whose randint returns scripted values and records its calls."""

    def __init__(self, values):
        super().__init__(0)
        self.values, self.calls = list(values), []

    def randint(self, a, b):
        self.calls.append((a, b))
        return self.values.pop(0)


PRE, MID, SUF = O.FIM_PREFIX, O.FIM_MIDDLE, O.FIM_SUFFIX


@pytest.mark.points(2)
def test_fim_transform_by_hand(impl):
    doc = "abcdefgh"
    cases = [((5, 2), "psm", PRE + "ab" + SUF + "fgh" + MID + "cde"),
             ((2, 5), "psm", PRE + "ab" + SUF + "fgh" + MID + "cde"),
             ((5, 2), "spm", PRE + SUF + "fgh" + MID + "ab" + "cde"),
             ((0, 8), "spm", PRE + SUF + MID + "abcdefgh"),
             ((8, 8), "psm", PRE + "abcdefgh" + SUF + MID)]
    for draws, mode, expected in cases:
        rng = _Scripted(draws)
        case = check.describe(doc=doc, mode=mode, draws=draws)
        out = impl.fim_transform(doc, rng, mode)
        lo, hi = sorted(draws)
        check.equal(out, expected, unit="fim_transform", what="FIM string", case=case,
                    mistakes={"cut points not sorted": PRE + doc[:draws[0]] + SUF + doc[draws[1]:] + MID
                              + doc[draws[0]:draws[1]] if mode == "psm" else None,
                              "SPM with the prefix before the suffix": PRE + doc[:lo] + SUF + doc[hi:] + MID
                              + doc[lo:hi] if mode == "spm" else None,
                              "PSM parts in document order (prefix, middle, suffix)":
                                  PRE + doc[:lo] + MID + doc[lo:hi] + SUF + doc[hi:] if mode == "psm" else None})
        check.equal(rng.calls, [(0, 8), (0, 8)], unit="fim_transform",
                    what="calls of rng.randint (exactly two, both randint(0, len(doc)))", case=case)
    check.equal(impl.fim_transform("", _Scripted([0, 0]), "psm"), PRE + SUF + MID, unit="fim_transform",
                what="FIM string of an empty document", case="doc=''")
    check.equal(impl.fim_transform("xy", _Scripted([1, 2])), PRE + "x" + SUF + MID + "y", unit="fim_transform",
                what="FIM string with the default mode (psm)", case="doc='xy'")
    for doc, mode, why in (("abc", "PSM", "mode is case-sensitive"), ("abc", "pms", "unknown mode"),
                           ("a" + MID + "b", "psm", "the document contains a sentinel"),
                           (PRE, "spm", "the document contains a sentinel"), ("x" + SUF, "psm", "contains a sentinel")):
        rng = _Scripted([0, 0])
        case = check.describe(doc=doc, mode=mode)
        check.expect_raises(ValueError, impl.fim_transform, doc, rng, mode, unit="fim_transform", case=case, why=why)
        check.equal(rng.calls, [], unit="fim_transform", what="calls of rng.randint before raising", case=case)


@pytest.mark.points(2)
@examples(40)
@given(doc=st.text(st.sampled_from("ab<|>\n é"), max_size=20), seed=seeds(), mode=st.sampled_from(["psm", "spm"]))
def test_fim_transform_reassembles_and_replays(impl, doc, seed, mode):
    case = check.describe(doc=doc, seed=seed, mode=mode)
    rng, oracle_rng = random.Random(seed), random.Random(seed)
    out = impl.fim_transform(doc, rng, mode)
    check.equal(O.fim_reassemble(out, mode), doc, unit="fim_transform",
                what="the document reassembled from the FIM string", case=case)
    check.equal(out, O.fim(doc, oracle_rng, mode), unit="fim_transform", what="FIM string", case=case)
    check.that(rng.getstate() == oracle_rng.getstate(), "fim_transform",
               "the generator must be advanced by exactly two randint calls", case=case)


@pytest.mark.points(1)
def test_fim_transform_matches_reference(impl):
    for item in reference.load(TOPIC, "fim"):
        check.equal(impl.fim_transform(item["doc"], random.Random(item["seed"]), item["mode"]), item["out"],
                    unit="fim_transform", what="FIM string of a reference document",
                    case=check.describe(doc=item["doc"], seed=item["seed"], mode=item["mode"]))


# ---------------------------------------------------------------- mixture_probs and mixture_sampler

@pytest.mark.points(2)
def test_mixture_probs_values_and_forms(impl):
    cases = [([1, 4, 0], 2.0, [1 / 3, 2 / 3, 0.0]), ((1.0, 3.0), 1.0, [0.25, 0.75]),
             (torch.tensor([2.0, 8.0]), 0.5, [4 / 68, 64 / 68]), ([5.0], 3.0, [1.0]),
             ([1e300, 1e299], 0.1, O.mixture([1.0, 0.1], 0.1)), ([1e-300, 4e-300], 1.0, [0.2, 0.8]),
             (torch.tensor([1.0, 2.0, 3.0, 0.0], dtype=torch.float32), 1e6, O.mixture([1.0, 2.0, 3.0, 0.0], 1e6))]
    for weights, T, expected in cases:
        case = check.describe(weights=weights, temperature=T)
        out = impl.mixture_probs(weights, T)
        exp = torch.tensor(expected, dtype=torch.float64)
        w64 = torch.as_tensor(weights, dtype=torch.float64)
        check.close(out, exp, unit="mixture_probs", kind="reduction", what="probabilities", case=case,
                    mistakes={"exponent T instead of 1/T": lambda: (w64 / w64.max()) ** T / ((w64 / w64.max()) ** T).sum(),
                              "temperature ignored": lambda: w64 / w64.sum()})


@pytest.mark.points(2)
def test_mixture_probs_gradients(impl):
    w = tensors.rand((5,), 7, low=0.5, high=3.0)
    for T in (0.5, 1.0, 2.5):
        case = check.describe(weights=w, temperature=T)
        check.gradcheck(lambda v: impl.mixture_probs(v, T), [w], unit="mixture_probs", case=case)
        check.grads(lambda v: impl.mixture_probs(v, T), lambda v: v ** (1 / T) / (v ** (1 / T)).sum(), [w],
                    names=["weights"], unit="mixture_probs", case=case)


@pytest.mark.points(1)
def test_mixture_probs_raises(impl):
    bad = [([], 1.0, "empty weights"), ([[1.0, 2.0]], 1.0, "weights not 1-D"), ([1.0, -0.5], 1.0, "negative weight"),
           ([0.0, 0.0], 1.0, "all weights zero"), ([1.0, math.inf], 1.0, "infinite weight"),
           ([1.0, math.nan], 1.0, "NaN weight"), ([1.0, 2.0], 0.0, "temperature 0"),
           ([1.0, 2.0], -1.0, "negative temperature"), ([1.0, 2.0], math.inf, "infinite temperature"),
           ([1.0, 2.0], math.nan, "NaN temperature")]
    for weights, T, why in bad:
        check.expect_raises(ValueError, impl.mixture_probs, weights, T, unit="mixture_probs",
                            case=check.describe(weights=weights, temperature=T), why=why)
    check.expect_raises(ValueError, impl.mixture_sampler, [1.0], 1.0, 0, torch.Generator().manual_seed(0),
                        unit="mixture_sampler", case="num_samples=0", why="num_samples < 1")
    check.expect_raises(ValueError, impl.mixture_sampler, [-1.0], 1.0, 5, torch.Generator().manual_seed(0),
                        unit="mixture_sampler", case="weights=[-1.0]", why="what mixture_probs raises")
    record = reference.load(TOPIC, "mixture")
    for item in record:
        check.close(impl.mixture_probs(item["weights"], item["temperature"]), torch.tensor(item["probs"],
                    dtype=torch.float64), unit="mixture_probs", kind="reduction", what="reference probabilities",
                    case=check.describe(weights=item["weights"], temperature=item["temperature"]))


@pytest.mark.points(2)
def test_mixture_sampler_draws(impl):
    weights, T = [1.0, 4.0, 0.0, 2.0], 2.0
    n = 20000
    out = impl.mixture_sampler(weights, T, n, torch.Generator().manual_seed(5))
    case = check.describe(weights=weights, temperature=T, num_samples=n)
    expected = torch.multinomial(impl.mixture_probs(weights, T), n, replacement=True,
                                 generator=torch.Generator().manual_seed(5))
    check.close(out, expected, unit="mixture_sampler", kind="exact", what="draws (torch.multinomial with the generator)",
                case=case)
    # Chi-square goodness of fit to p ∝ w^(1/T) at false-failure rate 1e-6 (the zero weight
    # must never be drawn).
    stats.chi_square(torch.bincount(out, minlength=4).tolist(), O.mixture(weights, T), unit="mixture_sampler",
                     what="frequencies of the sources", case=case)
    one = impl.mixture_sampler((3.0, 1.0), 1.0, 1, torch.Generator().manual_seed(0))
    check.that(one.dtype == torch.int64 and tuple(one.shape) == (1,), "mixture_sampler",
               "should return an int64 tensor of shape (num_samples,)", case="num_samples=1")
