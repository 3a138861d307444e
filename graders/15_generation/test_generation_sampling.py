"""Graders for 15_generation: choosing one token — greedy, the filters, the repetition
penalty, the sampling distribution and sampling itself.

Evidence per unit:
  greedy             a first-maximum loop (ties, −inf entries, float64, 1-D, non-contiguous);
  top_k_filter       a Python-sort oracle on random logits (hypothesis), ties at the k-th
                     value, k ≥ V, gradients against the masked identity, float64 gradcheck;
  top_p_filter       boundary cases from reference/ (mass exactly p, ties by id, p = 1,
                     zero-probability tokens), a slow running-sum oracle on random logits
                     (inputs where rounding could decide are skipped), gradients;
  min_p_filter       a slow oracle, min_p 0 and 1, gradients;
  repetition_penalty CTRL's rule by hand and by a per-id loop, the mask, T = 0, the
                     gradient on both sides of 0 and at 0;
  sampling_probs     reference data and the slow pipeline oracle (the order of the filters),
                     gradients;
  sample             a chi-square test of the draws against the filtered softmax (stated
                     rate), temperature 0 and top-k 1 equal greedy, the generator's role.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st

import generation_oracle as O
from llmlab.testing import check, reference, stats, tensors
from llmlab.testing.strategies import examples, float_dtypes, seeds

NEG_INF = float("-inf")


# ---------------------------------------------------------------- greedy

@pytest.mark.points(1)
@examples(15)
@given(seed=seeds(), shape=st.sampled_from([(7,), (3, 5), (2, 3, 4), (1, 1)]), dtype=float_dtypes())
def test_greedy_matches_first_maximum(impl, seed, shape, dtype):
    logits = tensors.randint(shape, seed, high=4).to(dtype)        # small integers: many ties
    if shape[-1] > 1:                                              # −inf entries, never a whole row
        logits[..., 0] = logits[..., 0].masked_fill(logits[..., 0] == 0, NEG_INF)
    flat = logits.reshape(-1, shape[-1]).tolist()
    expected = torch.tensor([row.index(max(row)) for row in flat]).reshape(shape[:-1])
    out = impl.greedy(logits)
    check.close(out, expected, unit="greedy", kind="exact", case=check.describe(logits=logits),
                mistakes={"ties go to the highest id": torch.tensor(
                    [len(row) - 1 - row[::-1].index(max(row)) for row in flat]).reshape(shape[:-1])})


@pytest.mark.points(1)
def test_greedy_input_forms(impl):
    row = torch.tensor([0.5, 2.0, NEG_INF, 2.0])
    out = impl.greedy(row)
    check.close(out, torch.tensor(1), unit="greedy", kind="exact", what="result for 1-D logits (a 0-d tensor)",
                case=check.describe(logits=row))
    wide = tensors.randn((5, 3), 4, torch.float64).t()                 # (3, 5) non-contiguous
    check.close(impl.greedy(wide), wide.argmax(-1), unit="greedy", kind="exact",
                case=check.describe(logits=wide, contiguous=False))


# ---------------------------------------------------------------- top-k

@pytest.mark.points(2)
@examples(12)
@given(seed=seeds(), shape=st.sampled_from([(6,), (3, 7), (2, 2, 5)]), k=st.integers(1, 8), dtype=float_dtypes(),
       integers=st.booleans())
def test_top_k_filter_matches_oracle(impl, seed, shape, k, dtype, integers):
    logits = (tensors.randint(shape, seed, high=3) if integers else tensors.randn(shape, seed)).to(dtype)
    before = logits.clone()
    out = impl.top_k_filter(logits, k)
    keep = O.top_k_keep(logits, k)
    case = check.describe(logits=logits, k=k)
    check.close(out, O.apply_keep(logits, keep), unit="top_k_filter", kind="exact", case=case,
                mistakes={"exactly k tokens kept (ties at the k-th value dropped)":
                          lambda: O.apply_keep(logits, torch.zeros_like(keep).scatter(
                              -1, logits.topk(min(k, shape[-1]), -1).indices, True))})
    check.that(torch.equal(logits, before), "top_k_filter", "the input logits were modified in place", case=case)


@pytest.mark.points(1)
def test_top_k_filter_gradients_edges_and_raises(impl):
    x = torch.tensor([[1.0, 3.0, 2.0, NEG_INF], [0.0, 0.0, -1.0, 5.0]], dtype=torch.float64)
    case = check.describe(logits=x, k=2)
    check.close(impl.top_k_filter(x, 2), torch.tensor([[NEG_INF, 3.0, 2.0, NEG_INF], [0.0, 0.0, NEG_INF, 5.0]],
                                                      dtype=torch.float64),
                unit="top_k_filter", kind="exact", case=case)
    check.close(impl.top_k_filter(x, 9), x, unit="top_k_filter", kind="exact", what="output for k ≥ V",
                case=check.describe(logits=x, k=9))
    finite = tensors.randn((3, 6), 8, torch.float64)
    keep = O.top_k_keep(finite, 3)
    check.grads(lambda z: impl.top_k_filter(z, 3).masked_fill(~keep, 0.0), lambda z: z * keep,
                [finite], unit="top_k_filter", case=check.describe(logits=finite, k=3), names=["logits"])
    check.gradcheck(lambda z: impl.top_k_filter(z, 3).masked_fill(~keep, 0.0), [finite], unit="top_k_filter",
                    case=check.describe(logits=finite, k=3))
    for bad in (0, -1, 2.0, True):
        check.expect_raises(ValueError, impl.top_k_filter, finite, bad, unit="top_k_filter",
                            case=check.describe(k=bad), why="k must be an int ≥ 1")


# ---------------------------------------------------------------- top-p

def _dropping_crossing(logits: torch.Tensor, p: float) -> torch.Tensor:
    """The known mistake: keep only the tokens whose running mass INCLUDING themselves is ≤ p
    (the token that crosses p is dropped), but at least one."""
    flat = logits.reshape(-1, logits.shape[-1])
    keep = torch.zeros(flat.shape, dtype=torch.bool)
    for i in range(flat.shape[0]):
        probs = torch.softmax(flat[i].double(), -1).tolist()
        total = 0.0
        for rank, j in enumerate(sorted(range(len(probs)), key=lambda j: (-probs[j], j))):
            total += probs[j]
            keep[i, j] = rank == 0 or total <= p
    return O.apply_keep(logits, keep.reshape(logits.shape))


@pytest.mark.points(3)
def test_top_p_boundary_cases_reference(impl):
    for item in reference.load(O.TOPIC, "top_p_cases"):
        for dtype in (torch.float64, torch.float32):
            logits, p = torch.tensor(item["logits"], dtype=dtype), item["p"]
            expected = O.apply_keep(logits, torch.tensor(item["keep"]))
            check.close(impl.top_p_filter(logits, p), expected, unit="top_p_filter", kind="exact",
                        case=check.describe(logits=logits, p=p, rule=item["note"]),
                        mistakes={"top-p drops the token that crosses p": lambda: _dropping_crossing(logits, p)})


@pytest.mark.points(2)
@examples(15)
@given(seed=seeds(), shape=st.sampled_from([(6,), (3, 9), (2, 2, 5)]), p=st.floats(0.02, 0.98),
       dtype=float_dtypes(), scale=st.sampled_from([0.5, 2.0, 5.0]))
def test_top_p_filter_matches_oracle(impl, seed, shape, p, dtype, scale):
    logits = tensors.randn(shape, seed, dtype, scale=scale)
    keep, closest = O.top_p_keep(logits, p)
    assume(closest > 1e-4)                       # rounding cannot decide: far from any running sum
    check.close(impl.top_p_filter(logits, p), O.apply_keep(logits, keep), unit="top_p_filter", kind="exact",
                case=check.describe(logits=logits, p=p),
                mistakes={"top-p drops the token that crosses p": lambda: _dropping_crossing(logits, p)})


@pytest.mark.points(1)
def test_top_p_filter_ties_in_a_wide_row(impl):
    # 40 tokens in three groups of equal logits, shuffled: the cut falls inside the top group,
    # so the tie rule (ascending id) decides which of its tokens are kept. Wide rows matter:
    # PyTorch's unstable sort keeps tied ids in order for short rows only.
    for seed, p in ((0, 0.3), (1, 0.5), (2, 0.75)):
        values = torch.tensor([2.0] * 10 + [1.0] * 15 + [0.0] * 15, dtype=torch.float64)
        logits = values[torch.randperm(40, generator=tensors.generator(seed))]
        keep, closest = O.top_p_keep(logits, p)
        check.that(closest > 1e-4, "the grader", "near-boundary input")
        check.close(impl.top_p_filter(logits, p), O.apply_keep(logits, keep), unit="top_p_filter", kind="exact",
                    case=check.describe(logits=logits, p=p, note="ties inside the top group; V = 40"),
                    what="output (tied tokens are ranked by ascending id)")


@pytest.mark.points(2)
def test_top_p_filter_edges_gradients_and_raises(impl):
    x = tensors.randn((2, 6), 31, torch.float64, scale=1.5)
    check.close(impl.top_p_filter(x, 1.0), x, unit="top_p_filter", kind="exact", what="output for p = 1",
                case=check.describe(logits=x, p=1.0))
    tiny = impl.top_p_filter(x, 1e-9)
    check.close(tiny, O.apply_keep(x, torch.nn.functional.one_hot(x.argmax(-1), 6).bool()), unit="top_p_filter",
                kind="exact", what="output for a tiny p (only the most likely token)", case=check.describe(logits=x))
    strided = tensors.randn((6, 3), 32, torch.float32, scale=2.0).t()          # (3, 6) non-contiguous
    keep, closest = O.top_p_keep(strided, 0.7)
    check.that(closest > 1e-4, "the grader", "near-boundary input; change the seed")
    check.close(impl.top_p_filter(strided, 0.7), O.apply_keep(strided, keep), unit="top_p_filter", kind="exact",
                case=check.describe(logits=strided, p=0.7, contiguous=False))
    keep, _ = O.top_p_keep(x, 0.6)
    check.grads(lambda z: impl.top_p_filter(z, 0.6).masked_fill(~keep, 0.0), lambda z: z * keep, [x],
                unit="top_p_filter", case=check.describe(logits=x, p=0.6), names=["logits"])
    for bad in (0.0, -0.1, 1.5):
        check.expect_raises(ValueError, impl.top_p_filter, x, bad, unit="top_p_filter", case=check.describe(p=bad),
                            why="p must be in (0, 1]")


# ---------------------------------------------------------------- min-p

@pytest.mark.points(2)
def test_min_p_filter_matches_oracle_edges_and_raises(impl):
    for seed, (shape, min_p) in enumerate((((4, 7), 0.1), ((9,), 0.3), ((2, 2, 5), 0.05))):
        for dtype in (torch.float64, torch.float32):
            x = tensors.randn(shape, 40 + seed, dtype, scale=2.0)
            probs = torch.softmax(x.double(), -1)
            ratio = probs / probs.max(-1, keepdim=True).values
            check.that(bool(((ratio - min_p).abs() > 1e-4).all()), "the grader", "near-boundary input")
            check.close(impl.min_p_filter(x, min_p), O.apply_keep(x, O.min_p_keep(x, min_p)), unit="min_p_filter",
                        kind="exact", case=check.describe(logits=x, min_p=min_p),
                        mistakes={"threshold min_p on the probability instead of min_p · max probability":
                                  lambda: O.apply_keep(x, probs >= min_p)})
    x = torch.tensor([[2.0, 0.5, 2.0, NEG_INF, -3.0]], dtype=torch.float64)
    check.close(impl.min_p_filter(x, 0.0), x, unit="min_p_filter", kind="exact", what="output for min_p = 0",
                case=check.describe(logits=x, min_p=0.0))
    check.close(impl.min_p_filter(x, 1.0), torch.tensor([[2.0, NEG_INF, 2.0, NEG_INF, NEG_INF]], dtype=torch.float64),
                unit="min_p_filter", kind="exact", what="output for min_p = 1 (the tokens tied with the top one)",
                case=check.describe(logits=x, min_p=1.0))
    g = tensors.randn((3, 6), 45, torch.float64, scale=2.0)
    keep = O.min_p_keep(g, 0.2)
    check.grads(lambda z: impl.min_p_filter(z, 0.2).masked_fill(~keep, 0.0), lambda z: z * keep, [g],
                unit="min_p_filter", case=check.describe(logits=g, min_p=0.2), names=["logits"])
    for bad in (-0.1, 1.5):
        check.expect_raises(ValueError, impl.min_p_filter, g, bad, unit="min_p_filter", case=check.describe(min_p=bad),
                            why="min_p must be in [0, 1]")


# ---------------------------------------------------------------- repetition penalty

@pytest.mark.points(3)
def test_repetition_penalty_ctrl_rule(impl):
    logits = torch.tensor([[2.0, -1.0, 0.5, -4.0, 0.0, 3.0]], dtype=torch.float64)
    context = torch.tensor([[1, 0, 1, 1, 3, 4]])
    out = impl.repetition_penalty(logits, context, 2.0)
    expected = torch.tensor([[1.0, -2.0, 0.5, -8.0, 0.0, 3.0]], dtype=torch.float64)
    case = check.describe(logits=logits, context=context, penalty=2.0)
    check.close(out, expected, unit="repetition_penalty", kind="elementwise", case=case,
                mistakes={"the repetition penalty divides negative logits":
                          torch.tensor([[1.0, -0.5, 0.5, -2.0, 0.0, 3.0]], dtype=torch.float64),
                          "the penalty is applied once per occurrence instead of once per id":
                          torch.tensor([[1.0, -8.0, 0.5, -8.0, 0.0, 3.0]], dtype=torch.float64)})
    for seed in range(3):
        B, V, T = 3, 8, 5 + seed
        x = tensors.randn((B, V), 60 + seed, torch.float32, scale=2.0)
        ctx = tensors.randint((B, T), 70 + seed, high=V)
        check.close(impl.repetition_penalty(x, ctx, 1.3), O.ctrl_penalty(x, ctx.tolist(), 1.3),
                    unit="repetition_penalty", kind="elementwise", case=check.describe(logits=x, context=ctx, penalty=1.3),
                    mistakes={"the repetition penalty divides negative logits": lambda: torch.where(
                        torch.zeros_like(x, dtype=torch.bool).scatter(-1, ctx, True), x / 1.3, x)})


@pytest.mark.points(2)
def test_repetition_penalty_mask_empty_context_gradients_and_raises(impl):
    logits = torch.tensor([[1.0, -1.0, 2.0], [-2.0, 4.0, 1.0]], dtype=torch.float64)
    context = torch.tensor([[2, 2, 0], [0, 1, 2]])
    mask = torch.tensor([[False, False, True], [True, False, False]])
    check.close(impl.repetition_penalty(logits, context, 2.0, context_mask=mask),
                torch.tensor([[0.5, -1.0, 2.0], [-4.0, 4.0, 1.0]], dtype=torch.float64), unit="repetition_penalty",
                kind="elementwise", what="output with a context mask (only True entries count)",
                case=check.describe(context=context, context_mask=mask),
                mistakes={"the context mask is ignored (padding counted as context)":
                          torch.tensor([[0.5, -1.0, 1.0], [-4.0, 2.0, 0.5]], dtype=torch.float64)})
    empty = torch.zeros(2, 0, dtype=torch.long)
    check.close(impl.repetition_penalty(logits, empty, 2.0), logits, unit="repetition_penalty", kind="exact",
                what="output for an empty context (T = 0)", case=check.describe(context=empty))
    x = torch.tensor([[1.5, -0.7, 0.0, 2.0]], dtype=torch.float64)
    ctx = torch.tensor([[0, 1, 2]])
    check.grads(lambda z: impl.repetition_penalty(z, ctx, 3.0),
                lambda z: torch.cat([z[:, :1] / 3.0, z[:, 1:2] * 3.0, z[:, 2:3] / 3.0, z[:, 3:]], 1), [x],
                unit="repetition_penalty", names=["logits"],
                case=check.describe(logits=x, context=ctx, penalty=3.0, note="a logit exactly 0 is divided"))
    check.gradcheck(lambda z: impl.repetition_penalty(z, ctx, 3.0), [x + 0.1], unit="repetition_penalty",
                    case=check.describe(logits=x + 0.1, context=ctx))
    for penalty in (0.5, 1.0):                       # 0 < penalty < 1 makes seen tokens MORE likely
        check.close(impl.repetition_penalty(logits, context, penalty), O.ctrl_penalty(logits, context.tolist(), penalty),
                    unit="repetition_penalty", kind="elementwise", case=check.describe(context=context, penalty=penalty))
    for args, why in (((logits, context, 0.0), "penalty ≤ 0"), ((logits, context, -1.0), "penalty ≤ 0"),
                      ((logits[0], context, 2.0), "logits not 2-D"), ((logits, context[:1], 2.0), "batch sizes differ"),
                      ((logits, context[0], 2.0), "context not 2-D"),
                      ((logits[:, 0], context[:2, :2], 2.0), "logits not 2-D (with as many entries as rows)"),
                      ((logits, context[:, 0], 2.0), "context not 2-D (with as many entries as rows)")):
        check.expect_raises(ValueError, impl.repetition_penalty, *args, unit="repetition_penalty", why=why,
                            case=check.describe(logits=args[0], context=args[1], penalty=args[2]))
    check.expect_raises(ValueError, impl.repetition_penalty, logits, context, 2.0, context_mask=mask[:, :2],
                        unit="repetition_penalty", why="context_mask's shape differs from context's",
                        case=check.describe(context=context, context_mask=mask[:, :2]))


# ---------------------------------------------------------------- sampling_probs

SETTINGS = [dict(temperature=1.0), dict(temperature=0.7, top_k=3), dict(temperature=1.3, top_p=0.8),
            dict(temperature=0.8, top_k=5, top_p=0.6), dict(temperature=1.0, min_p=0.15),
            dict(temperature=2.0, top_k=6, top_p=0.9, min_p=0.1)]


def _wrong_orders(x, temperature=1.0, top_k=None, top_p=None, min_p=None):
    """Known mistakes in the order of the steps, as distributions."""
    wrong = {}
    if top_p is not None and top_k is not None:
        z = O.apply_keep(x / temperature, O.top_p_keep(x / temperature, top_p)[0])
        wrong["filters in the wrong order (top-p before top-k)"] = torch.softmax(
            O.apply_keep(z, O.top_k_keep(z, top_k)), -1)
    if top_p is not None and temperature != 1.0:
        keep = O.top_p_keep(x, top_p)[0]
        z = O.apply_keep(x, keep) / temperature
        if top_k is not None:
            z = O.apply_keep(z, O.top_k_keep(z, top_k))
        wrong["temperature applied after the top-p filter"] = torch.softmax(z, -1)
    if temperature != 1.0:
        wrong["temperature ignored"] = O.pipeline_probs(x, 1.0, top_k, top_p, min_p)
    return wrong


@pytest.mark.points(3)
def test_sampling_probs_reference_and_pipeline_oracle(impl):
    record = reference.load(O.TOPIC, "sampling_probs")
    for i, setting in enumerate(SETTINGS):
        out = impl.sampling_probs(record["logits"], **setting)
        check.close(out, record[f"probs_{i}"], unit="sampling_probs", kind="reduction",
                    case=check.describe(logits=record["logits"], **setting),
                    mistakes=_wrong_orders(record["logits"], **setting))
    for seed, setting in enumerate(SETTINGS):
        for dtype in (torch.float64, torch.float32):
            x = tensors.randn((3, 10), 80 + seed, dtype, scale=1.5)
            z = x / setting["temperature"]
            if "top_p" in setting:
                if "top_k" in setting:
                    z = O.apply_keep(z, O.top_k_keep(z, setting["top_k"]))
                check.that(O.top_p_keep(z, setting["top_p"])[1] > 1e-4, "the grader", "near-boundary input")
            out = impl.sampling_probs(x, **setting)
            case = check.describe(logits=x, **setting)
            check.close(out, O.pipeline_probs(x, **setting), unit="sampling_probs", kind="reduction", case=case,
                        mistakes=_wrong_orders(x, **setting))


@pytest.mark.points(2)
def test_sampling_probs_gradients_and_raises(impl):
    x = tensors.randn((2, 7), 91, torch.float64, scale=1.5)
    setting = dict(temperature=0.8, top_k=4, top_p=0.9)
    check.grads(lambda z: impl.sampling_probs(z, **setting), lambda z: O.pipeline_probs(z, **setting), [x],
                unit="sampling_probs", case=check.describe(logits=x, **setting), names=["logits"])
    check.gradcheck(lambda z: impl.sampling_probs(z, **setting), [x], unit="sampling_probs",
                    case=check.describe(logits=x, **setting))
    for t in (0.0, -1.0):
        check.expect_raises(ValueError, impl.sampling_probs, x, t, unit="sampling_probs",
                            case=check.describe(temperature=t), why="temperature must be > 0")
    check.expect_raises(ValueError, impl.sampling_probs, x, 1.0, 0, unit="sampling_probs",
                        case=check.describe(top_k=0), why="top_k_filter's rule: k ≥ 1")


# ---------------------------------------------------------------- sample

@pytest.mark.points(3)
def test_sample_distribution_equals_filtered_softmax(impl):
    # 20 000 draws per setting, one chi-square test each at rate 1e-6 / 3 over the 3 settings:
    # a correct implementation fails this test with probability ≤ 1e-6.
    logits = torch.tensor([1.2, 0.9, 0.4, 0.0, -0.3, -0.8, -1.5, -2.0])
    for seed, setting in enumerate((dict(temperature=0.7, top_k=5, top_p=0.9), dict(temperature=1.5, top_p=0.7),
                                    dict(temperature=1.0, top_k=6, min_p=0.2))):
        draws = impl.sample(logits.expand(20000, -1), generator=tensors.generator(500 + seed), **setting)
        counts = torch.bincount(draws.reshape(-1), minlength=8).tolist()
        probs = O.pipeline_probs(logits.double(), **setting)
        case = check.describe(logits=logits, draws=20000, **setting)
        wrong = dict(_wrong_orders(logits.double(), **setting))
        wrong["temperature multiplied instead of divided"] = O.pipeline_probs(
            logits.double(), 1 / setting["temperature"], setting.get("top_k"), setting.get("top_p"),
            setting.get("min_p"))
        wrong["filters ignored"] = torch.softmax(logits.double() / setting["temperature"], -1)
        stats.chi_square(counts, probs.tolist(), unit="sample", what="sampled tokens", rate=1e-6 / 3, case=case,
                         mistakes=wrong)


@pytest.mark.points(2)
def test_sample_temperature_zero_and_top_k_one_equal_greedy(impl):
    x = tensors.randn((50, 9), 601, torch.float32, scale=2.0)
    expected = x.argmax(-1)
    g = tensors.generator(7)
    state = g.get_state()
    out = impl.sample(x, 0.0, top_k=3, top_p=0.5, generator=g)
    check.close(out, expected, unit="sample", kind="exact", what="draws at temperature 0 (greedy)",
                case=check.describe(logits=x, temperature=0.0))
    check.that(torch.equal(state, g.get_state()), "sample", "temperature 0 drew random numbers from the generator "
               "(it must be plain greedy)")
    check.close(impl.sample(x, 1.0, top_k=1, generator=tensors.generator(8)), expected, unit="sample", kind="exact",
                what="draws with top_k = 1 (greedy)", case=check.describe(logits=x, temperature=1.0, top_k=1))
    check.close(impl.sample(x, 1.0, top_p=1e-9, generator=tensors.generator(9)), expected, unit="sample",
                kind="exact", what="draws with a tiny top_p (greedy)", case=check.describe(logits=x, top_p=1e-9))
    top2 = x.topk(2, -1).values
    check.that(float((top2[:, 0] - top2[:, 1]).min()) > 0.02, "the grader", "near-tie input; change the seed")
    check.close(impl.sample(x.double(), 1e-3, generator=tensors.generator(10)), expected, unit="sample",
                kind="exact", what="draws at temperature 1e-3 (greedy: every margin is > 0.02)",
                case=check.describe(logits=x, temperature=1e-3))


@pytest.mark.points(1)
def test_sample_generator_shapes_and_raises(impl):
    x = tensors.randn((4, 3, 6), 700, torch.float64)
    a = impl.sample(x, 1.0, generator=tensors.generator(1))
    torch.manual_seed(123)
    b = impl.sample(x, 1.0, generator=tensors.generator(1))
    check.that(isinstance(a, torch.Tensor) and a.dtype == torch.long and tuple(a.shape) == (4, 3), "sample",
               "should return int64 of shape logits.shape[:-1] = (4, 3)",
               f"got {getattr(a, 'dtype', type(a))} {tuple(getattr(a, 'shape', ()))}")
    check.that(torch.equal(a, b), "sample", "identically seeded generators gave different draws")
    many = impl.sample(x.expand(200, 4, 3, 6), 1.0, generator=tensors.generator(2))
    check.that(not torch.equal(many[0], many[1]) or not torch.equal(many[2], many[3]), "sample",
               "the rows of a batch got the same draws: draw independently per row")
    one = impl.sample(x[0, 0], 1.0, generator=tensors.generator(3))
    check.that(isinstance(one, torch.Tensor) and one.dim() == 0 and one.dtype == torch.long, "sample",
               "1-D logits should give a 0-d int64 tensor", f"got {getattr(one, 'shape', type(one))}")
    torch.manual_seed(5)
    c = impl.sample(x, 1.0)
    torch.manual_seed(5)
    d = impl.sample(x, 1.0)
    check.that(torch.equal(c, d), "sample", "without a generator, the same global seed gave different draws "
               "(use the global RNG when generator is None)")
    check.expect_raises(ValueError, impl.sample, x, -0.5, unit="sample", case=check.describe(temperature=-0.5),
                        why="temperature < 0")
