"""Graders for 08_bert (part 1): mlm_mask (the 80/10/10 rule) and mlm_loss.

Evidence per unit:
  mlm_mask  statistics on large seeded samples, each with its false-failure rate stated
            in the test (llmlab.testing.stats derives the acceptance region from it): the
            rate at which positions are chosen (binomial), the mask / random / keep split of
            the chosen positions and the distribution of the random ids (chi-square), the
            independence of the rows (binomial on agreements); deterministic properties on
            every input form the docstring allows (invariants that hold for every draw,
            specials, mask_prob 0 and 1, errors, the generator); golden labels;
  mlm_loss  F.cross_entropy as the oracle (values and gradients), float64 gradcheck, the
            all-ignored case, the shape rule.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import bert_oracle as O
from llmlab.testing import check, reference, stats, tensors
from llmlab.testing.strategies import examples, seeds

PAD, CLS, SEP, MASK = 0, 1, 2, 3
SPECIALS = [PAD, CLS, SEP, MASK]
U = "mlm_mask"


def _mask(impl, ids, p, specials=SPECIALS, vocab=12, mask_id=MASK, seed=0):
    return impl.mlm_mask(ids, p, specials, vocab, mask_id, generator=tensors.generator(seed))


def _ids(shape, seed, vocab=12, specials_at_ends=True):
    """Random non-special ids in [4, vocab), with [CLS] first and [SEP] last in each row."""
    ids = tensors.randint(shape, seed, high=vocab, low=4)
    if specials_at_ends and ids.dim() >= 1 and ids.shape[-1] >= 2:
        ids[..., 0], ids[..., -1] = CLS, SEP
    return ids


# (mask, random, keep) probabilities of what happens to a chosen position, for naming mistakes
_SPLITS = {
    "every chosen position replaced by [MASK] (the 10% random and the 10% unchanged are missing)": (1.0, 0.0, 0.0),
    "no chosen position left unchanged (80% [MASK], 20% random)": (0.8, 0.2, 0.0),
    "no random replacement (80% [MASK], 20% unchanged)": (0.8, 0.0, 0.2),
    "random replacement for only 10% of the remaining 20% (2% overall): after the 80% [MASK], "
    "half of the rest is random": (0.8, 0.02, 0.18),
    "the probabilities swapped: 80% must become [MASK], not stay unchanged": (0.1, 0.1, 0.8),
}


def _categories(split, vocab):
    """P(out == [MASK]), P(out == original), P(out is another id) for a (mask, random, keep) split."""
    m, r, k = split
    return (m + r / vocab, k + r / vocab, r * (vocab - 2) / vocab)


def _chi_square_named(counts, probs, *, unit, what, rate, case, named):
    """stats.chi_square, adding the known mistake (name -> category probabilities) closest to
    the observed frequencies (within 0.03 in total variation) to a failure."""
    try:
        stats.chi_square(counts, probs, unit=unit, what=what, rate=rate, case=case)
    except check.GradingFailure as failure:
        n = sum(counts)
        freq = [c / n for c in counts]
        best = min(named.items(), key=lambda kv: sum(abs(f - q) for f, q in zip(freq, kv[1])), default=None)
        lines = [str(failure), f"  observed frequencies {[round(f, 4) for f in freq]}, expected "
                               f"{[round(q, 4) for q in probs]}"]
        if best and sum(abs(f - q) for f, q in zip(freq, best[1])) < 0.03:
            lines.append(f"  known mistake: {best[0]}")
        raise check.GradingFailure("\n".join(lines)) from None


# ---------------------------------------------------------------- mlm_mask: deterministic rules

@pytest.mark.points(2)
def test_mlm_mask_specials_never_chosen(impl):
    # With mask_prob = 1 every non-special position is chosen and no special one: the labels
    # are then fully determined. special_ids may be a list, a tuple, a set or empty.
    ids = torch.tensor([[CLS, 5, 6, MASK, 7, SEP, PAD, PAD], [CLS, 9, 9, 9, SEP, 4, 11, SEP]])
    for specials in (SPECIALS, tuple(SPECIALS), set(SPECIALS), [SEP, PAD, CLS, MASK], [PAD], []):
        case = check.describe(input_ids=ids, mask_prob=1.0, special_ids=specials)
        corrupted, labels = _mask(impl, ids, 1.0, specials=specials, seed=3)
        is_special = torch.isin(ids, torch.tensor(sorted(specials), dtype=torch.long))
        expected = torch.where(is_special, torch.full_like(ids, -100), ids)
        check.close(labels, expected, unit=U, kind="exact", case=case, what="labels with mask_prob = 1",
                    mistakes={"special ids chosen too (special_ids ignored)": ids,
                              "labels without -100 at the special positions": ids})
        check.close(corrupted[is_special], ids[is_special], unit=U, kind="exact", case=case,
                    what="corrupted at the special positions (specials are never changed)")


@pytest.mark.points(1)
def test_mlm_mask_probability_zero_and_one(impl):
    ids = _ids((6, 20), 4)
    case = check.describe(input_ids=ids, mask_prob=0.0)
    corrupted, labels = _mask(impl, ids, 0.0, seed=5)
    check.close(corrupted, ids, unit=U, kind="exact", case=case, what="corrupted with mask_prob = 0 (nothing chosen)")
    check.close(labels, torch.full_like(ids, -100), unit=U, kind="exact", case=case,
                what="labels with mask_prob = 0 (all -100)", mistakes={"labels = input_ids everywhere": ids})
    corrupted, labels = _mask(impl, ids, 1.0, seed=6)
    special = torch.isin(ids, torch.tensor(SPECIALS))
    check.close(labels, torch.where(special, -100, ids), unit=U, kind="exact",
                case=check.describe(input_ids=ids, mask_prob=1.0), what="labels with mask_prob = 1")


@pytest.mark.points(1)
def test_mlm_mask_rejects_bad_arguments(impl):
    # The boundaries are allowed: a vocabulary of one id, which is [MASK] itself (mask_id 0).
    ones = torch.zeros(3, 5, dtype=torch.long)
    case = check.describe(input_ids=ones, mask_prob=0.5, special_ids=[], vocab_size=1, mask_id=0)
    corrupted, labels = impl.mlm_mask(ones, 0.5, [], 1, 0, generator=tensors.generator(9))
    check.close(corrupted, ones, unit=U, kind="exact", case=case, what="corrupted (every id is 0 when V = 1)")
    check.that(bool(((labels == 0) | (labels == -100)).all()), U, "labels must be 0 or -100 when V = 1", case=case)
    ids = _ids((2, 6), 7)
    for p, vocab, mask_id, why in ((-0.1, 12, MASK, "mask_prob < 0"), (1.5, 12, MASK, "mask_prob > 1"),
                                   (0.15, 0, 0, "vocab_size < 1"), (0.15, 12, -1, "mask_id < 0"),
                                   (0.15, 12, 12, "mask_id ≥ vocab_size")):
        check.expect_raises(ValueError, impl.mlm_mask, ids, p, SPECIALS, vocab, mask_id, unit=U, why=why,
                            case=check.describe(mask_prob=p, vocab_size=vocab, mask_id=mask_id))


@pytest.mark.points(1)
def test_mlm_mask_randomness_comes_from_the_generator(impl):
    ids = _ids((8, 32), 8)
    case = check.describe(input_ids=ids, mask_prob=0.5)
    a = _mask(impl, ids, 0.5, seed=11)
    state = torch.get_rng_state()
    b = _mask(impl, ids, 0.5, seed=11)
    check.that(torch.equal(torch.get_rng_state(), state), U,
               "with a generator, the global RNG must not be used", "known mistake: generator ignored", case=case)
    check.that(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]), U,
               "two calls with equally seeded generators gave different results", case=case)
    c = _mask(impl, ids, 0.5, seed=12)
    check.that(not torch.equal(a[1], c[1]), U, "two different generator seeds gave the same choice", case=case)
    # generator=None: the global RNG, so torch.manual_seed makes the result reproducible
    torch.manual_seed(3)
    d = impl.mlm_mask(ids, 0.5, SPECIALS, 12, MASK)
    moved = not torch.equal(torch.get_rng_state(), torch.manual_seed(3).get_state())
    torch.manual_seed(3)
    e = impl.mlm_mask(ids, 0.5, SPECIALS, 12, MASK)
    check.that(moved and torch.equal(d[0], e[0]) and torch.equal(d[1], e[1]), U,
               "without a generator, the draws must come from the global RNG (torch.manual_seed "
               "must make them reproducible)", case=case)


@pytest.mark.points(1)
def test_mlm_mask_reference_labels(impl):
    rec = reference.load(O.TOPIC, "mlm_mask")
    vocab, mask_id = rec["vocab_size_and_mask_id"].tolist()
    corrupted, labels = impl.mlm_mask(rec["input_ids"], 1.0, rec["special_ids"].tolist(), vocab, mask_id,
                                      generator=tensors.generator(0))
    case = check.describe(input_ids=rec["input_ids"], mask_prob=1.0, special_ids=rec["special_ids"].tolist())
    check.close(labels, rec["labels"], unit=U, kind="exact", case=case, what="labels (mask_prob = 1)")


@pytest.mark.points(2)
@examples(20)
@given(shape=st.sampled_from([(3, 10), (1, 1), (1, 7), (9,), (2, 3, 5), (4, 1), (0,), (2, 0)]),
       p=st.sampled_from([0.15, 0.5, 0.9]), seed=seeds(), transposed=st.booleans())
def test_mlm_mask_invariants_on_every_draw(impl, shape, p, seed, transposed):
    # Rules that hold for every random draw: only chosen positions change, labels are the
    # originals there and -100 elsewhere, specials are never chosen, the input is untouched.
    ids = _ids(shape, seed)
    if transposed and ids.dim() == 2:
        ids = ids.t().contiguous().t()                    # a non-contiguous view, same values
    before = ids.clone()
    case = check.describe(input_ids=ids, mask_prob=p, special_ids=SPECIALS, vocab_size=12, mask_id=MASK,
                          contiguous=ids.is_contiguous())
    out = _mask(impl, ids, p, seed=seed + 1)
    check.that(isinstance(out, tuple) and len(out) == 2, U, "should return (corrupted, labels)", case=case)
    corrupted, labels = out
    for name, t in (("corrupted", corrupted), ("labels", labels)):
        check.that(isinstance(t, torch.Tensor) and t.dtype == torch.int64 and t.shape == ids.shape, U,
                   f"{name} should be an int64 tensor of input_ids' shape {tuple(ids.shape)}",
                   f"got {getattr(t, 'dtype', type(t))} of shape {tuple(getattr(t, 'shape', ()))}", case=case)
    check.that(torch.equal(ids, before), U, "input_ids was modified; return new tensors instead",
               "known mistake: the input tensor was modified in place (input_ids[chosen] = mask_id)", case=case)
    chosen = labels != -100
    check.close(corrupted[~chosen], ids[~chosen], unit=U, kind="exact", case=case,
                what="corrupted at the positions that were not chosen (labels -100) must equal input_ids")
    check.close(labels[chosen], ids[chosen], unit=U, kind="exact", case=case,
                what="labels at the chosen positions (must be the ORIGINAL ids)",
                mistakes={"labels hold the corrupted ids instead of the original ones": corrupted[chosen]})
    special = torch.isin(ids, torch.tensor(SPECIALS))
    check.that(not bool((chosen & special).any()), U, "a special id was chosen for prediction",
               "known mistake: special ids chosen too (special_ids ignored)", case=case)
    check.that(bool(((corrupted >= 0) & (corrupted < 12)).all()), U, "corrupted holds ids outside [0, vocab_size)",
               case=case)


# ---------------------------------------------------------------- mlm_mask: statistics

@pytest.mark.points(2)
def test_mlm_mask_chooses_each_position_with_mask_prob(impl):
    # Two binomial tests of the number of chosen non-special positions, at rate 2.5e-7 each:
    # a correct mlm_mask fails this test with probability ≤ 5e-7. (Specials: never chosen.)
    for p, seed in ((0.15, 21), (0.6, 22)):
        ids = _ids((100, 64), seed)
        case = check.describe(input_ids=ids, mask_prob=p, special_ids=SPECIALS)
        _, labels = _mask(impl, ids, p, seed=seed + 100)
        special = torch.isin(ids, torch.tensor(SPECIALS))
        chosen = labels != -100
        n = int((~special).sum())
        stats.proportion(int(chosen[~special].sum()), n, p, unit=U, rate=2.5e-7, case=case,
                         what="fraction of the non-special positions chosen")
        check.that(not bool(chosen[special].any()), U, "special positions were chosen", case=case)


@pytest.mark.points(3)
def test_mlm_mask_80_10_10_split(impl):
    # Among the chosen positions: [MASK] with probability 0.8 + 0.1/V (a random id may be
    # [MASK] itself), the original with 0.1 + 0.1/V, another id with 0.1·(V − 2)/V. Two
    # chi-square tests at rate 5e-7 each: a correct mlm_mask fails with probability ≤ 1e-6.
    for vocab, p, seed in ((12, 0.5, 31), (40, 0.3, 32)):
        ids = _ids((200, 80), seed, vocab=vocab)
        case = check.describe(input_ids=ids, mask_prob=p, vocab_size=vocab, mask_id=MASK)
        corrupted, labels = _mask(impl, ids, p, vocab=vocab, seed=seed + 100)
        chosen = labels != -100
        out, orig = corrupted[chosen], ids[chosen]
        n_mask, n_keep = int((out == MASK).sum()), int((out == orig).sum())
        counts = [n_mask, n_keep, int(chosen.sum()) - n_mask - n_keep]
        _chi_square_named(counts, _categories((0.8, 0.1, 0.1), vocab), unit=U, rate=5e-7, case=case,
                          what="what became of the chosen positions ([MASK], unchanged, another id)",
                          named={k: _categories(v, vocab) for k, v in _SPLITS.items()})


@pytest.mark.points(2)
def test_mlm_mask_random_ids_are_uniform_over_vocabulary(impl):
    # A constant input (id 5) with mask_prob = 1: every position is chosen, and the output is
    # [MASK] with probability 0.8 + 0.1/V, 5 with 0.1 + 0.1/V, and each other id — special
    # ids included — with 0.1/V. One chi-square test over the V ids at rate 1e-6.
    vocab = 12
    ids = torch.full((400, 100), 5)
    case = check.describe(input_ids=ids, mask_prob=1.0, vocab_size=vocab, mask_id=MASK)
    corrupted, _ = _mask(impl, ids, 1.0, vocab=vocab, seed=41)
    counts = torch.bincount(corrupted.flatten(), minlength=vocab).tolist()
    probs = [0.1 / vocab] * vocab
    probs[MASK] += 0.8
    probs[5] += 0.1
    try:
        stats.chi_square(counts[:vocab], probs, unit=U, rate=1e-6, case=case,
                         what="distribution of the output ids (random replacements uniform on 0 … V−1)")
    except check.GradingFailure as failure:
        hint = ""
        if all(counts[s] == 0 for s in SPECIALS if s != MASK):
            hint = "\n  known mistake: random replacements never draw the special ids (draw from all of 0 … V−1)"
        elif counts[vocab - 1] == 0:
            hint = "\n  known mistake: random ids drawn from 0 … V−2 (torch.randint's high is exclusive)"
        raise check.GradingFailure(str(failure) + hint) from None


@pytest.mark.points(2)
def test_mlm_mask_positions_are_chosen_independently(impl):
    # Two identical rows: a position is chosen in both or in neither with probability
    # p² + (1 − p)² when rows are drawn independently. Binomial test at rate 1e-6. (The same
    # choice for every row — random numbers of shape (T,) broadcast over the batch — gives 1.)
    p, T = 0.3, 20_000
    row = _ids((T,), 51, specials_at_ends=False)
    ids = torch.stack([row, row])
    case = check.describe(input_ids=ids, mask_prob=p)
    _, labels = _mask(impl, ids, p, seed=52)
    chosen = labels != -100
    agree = int((chosen[0] == chosen[1]).sum())
    if agree == T:
        check.fail(U, "both rows of a batch got exactly the same choice of positions", case=case,
                   mistake="one random draw of shape (T,) shared by every row of the batch")
    stats.proportion(agree, T, p * p + (1 - p) ** 2, unit=U, rate=1e-6, case=case,
                     what="positions where two identical rows agree (chosen in both or neither)")


# ---------------------------------------------------------------- mlm_loss

L = "mlm_loss"


def _labels(shape, seed, vocab, ignored):
    labels = tensors.randint(shape, seed, high=vocab)
    flat = labels.view(-1)
    flat[torch.randperm(flat.numel(), generator=tensors.generator(seed + 1))[:ignored]] = -100
    return labels


def _ce(logits, labels):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100)


@pytest.mark.points(2)
def test_mlm_loss_matches_cross_entropy(impl):
    cases = [((3, 7, 11), torch.float32, 9, False), ((12, 5), torch.float64, 4, False),
             ((2, 3, 4, 6), torch.float64, 10, False), ((4, 6, 9), torch.float32, 20, True),
             ((1, 1, 5), torch.float32, 0, False)]
    for i, (shape, dtype, ignored, transposed) in enumerate(cases):
        logits = tensors.randn(shape, 60 + i, dtype, scale=3.0)
        labels = _labels(shape[:-1], 70 + i, shape[-1], ignored)
        if transposed:   # non-contiguous views of the same values
            logits = logits.transpose(0, 1).contiguous().transpose(0, 1)
            labels = labels.t().contiguous().t()
        case = check.describe(logits=logits, labels=labels, ignored=ignored, contiguous=logits.is_contiguous())
        out = impl.mlm_loss(logits, labels)
        check.that(isinstance(out, torch.Tensor) and out.dim() == 0 and out.dtype == dtype, L,
                   f"should return a 0-d {dtype} tensor", f"got {getattr(out, 'dtype', type(out))} "
                   f"of shape {tuple(getattr(out, 'shape', ()))}", case=case)
        flat = F.cross_entropy(logits.reshape(-1, shape[-1]), labels.reshape(-1).clamp_min(0), reduction="none")
        kept = (labels.reshape(-1) != -100).to(dtype)
        check.close(out, _ce(logits, labels), unit=L, case=case, kind="loss",
                    mistakes={"loss averaged over ignored positions too (divide by the number of labels "
                              "that are not -100)": (flat * kept).sum() / flat.numel(),
                              "loss summed instead of averaged": (flat * kept).sum()})


@pytest.mark.points(2)
def test_mlm_loss_gradients(impl):
    logits = tensors.randn((2, 5, 7), 80, scale=2.0)
    labels = _labels((2, 5), 81, 7, 4)
    case = check.describe(logits=logits, labels=labels)
    check.grads(lambda z: impl.mlm_loss(z, labels), lambda z: _ce(z, labels), [logits], names=["logits"],
                unit=L, case=case)
    short = torch.tensor([2, -100, 0])
    check.gradcheck(lambda z: impl.mlm_loss(z, short), [tensors.randn((3, 4), 82)], unit=L,
                    case=check.describe(labels=short))
    z = logits.clone().requires_grad_(True)
    impl.mlm_loss(z, labels).backward()
    ignored = labels == -100
    check.that(bool((z.grad[ignored] == 0).all()), L, "positions with label -100 must get zero gradient",
               case=case)


@pytest.mark.points(1)
def test_mlm_loss_when_nothing_is_labelled(impl):
    # A short sequence with mask_prob 0.15 often has no chosen position: the loss is 0, not NaN.
    for dtype in (torch.float32, torch.float64):
        z = tensors.randn((2, 3, 5), 90, dtype).requires_grad_(True)
        labels = torch.full((2, 3), -100)
        case = check.describe(logits=z, labels=labels)
        out = impl.mlm_loss(z, labels)
        check.that(isinstance(out, torch.Tensor) and out.dim() == 0 and out.dtype == dtype, L,
                   f"should return a 0-d {dtype} tensor", case=case)
        if bool(torch.isnan(out)):
            check.fail(L, "every label is -100 and the loss is NaN; it must be 0", case=case,
                       mistake="NaN when nothing is masked (F.cross_entropy's mean over zero terms)")
        check.close(out.detach(), torch.zeros((), dtype=dtype), unit=L, kind="exact", case=case,
                    what="loss when every label is -100")
        check.that(out.requires_grad, L, "the zero loss must still be connected to logits (backward() must work)",
                   case=case)
        out.backward()
        check.that(z.grad is not None and bool((z.grad == 0).all()), L,
                   "the gradient of the zero loss must be zero everywhere", case=case)
    # No position at all (an empty batch): nothing is labelled either, so the loss is 0.
    empty = torch.zeros(0, 5)
    out = impl.mlm_loss(empty, torch.zeros(0, dtype=torch.long))
    check.that(isinstance(out, torch.Tensor) and out.dim() == 0 and float(out) == 0.0, L,
               "with no position at all (logits of shape (0, V)) the loss must be 0, not NaN",
               f"got {out!r}", case=check.describe(logits=empty))


@pytest.mark.points(1)
def test_mlm_loss_rejects_mismatched_shapes(impl):
    logits = tensors.randn((2, 4, 6), 95)
    for labels, why in ((torch.zeros(2, 5, dtype=torch.long), "one label per position: (2, 4), not (2, 5)"),
                        (torch.zeros(8, dtype=torch.long), "labels flattened: shape (8,), not (2, 4)"),
                        (torch.zeros(2, 4, 6, dtype=torch.long), "labels with a vocabulary axis")):
        check.expect_raises(ValueError, impl.mlm_loss, logits, labels, unit=L, why=why,
                            case=check.describe(logits=logits, labels=labels))
