"""Graders for 03_embeddings: Embedding, LearnedPositions and TokenAndPosition.

Evidence per unit: golden data (reference/03_embeddings), an independent oracle (the lookup
written as one_hot(ids) @ weight, whose gradient autograd derives on its own), properties on
fresh random inputs, and a chi-square test of the initialisation.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from scipy import stats as sps
from torch.func import functional_call

from llmlab.testing import check, guard, reference, stats

TOPIC = "03_embeddings"
FORBIDDEN = ["torch.nn.functional.embedding", "torch.embedding"]
HINT = "Index the table (weight[ids]) or multiply a one-hot matrix by it."

_SETTINGS = settings(max_examples=25, suppress_health_check=[
    HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large])


def _from_scratch(unit: str):
    return guard.forbid(unit, FORBIDDEN, hint=HINT)


def _table(impl, weight: torch.Tensor):
    """The student's Embedding holding `weight` (checks the attribute first)."""
    emb = impl.Embedding(*weight.shape)
    own = getattr(emb, "weight", None)
    check.that(isinstance(own, torch.nn.Parameter), "Embedding.__init__",
               "the table must be an nn.Parameter stored as `self.weight`",
               f"found {type(own).__name__}", case=check.describe(num_embeddings=weight.shape[0], dim=weight.shape[1]))
    check.equal(tuple(own.shape), tuple(weight.shape), unit="Embedding.__init__", what="shape of weight",
                case=check.describe(num_embeddings=weight.shape[0], dim=weight.shape[1]))
    with torch.no_grad():
        own.copy_(weight)
    return emb


def _one_hot_lookup(ids: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    return F.one_hot(ids, weight.shape[0]).to(weight.dtype) @ weight        # (*ids, V) @ (V, C)


class _LookupWithOwnBackward(torch.autograd.Function):
    """A row lookup whose backward a subclass writes (the known gradient mistakes below)."""

    @staticmethod
    def forward(ctx, weight, ids):
        ctx.save_for_backward(ids)
        ctx.shape = weight.shape
        return weight[ids]


class _OverwriteLookup(_LookupWithOwnBackward):
    """A known mistake: a hand-written backward that writes each occurrence's gradient into
    its row instead of adding it (index_put without accumulate), so repeated ids keep one."""

    @staticmethod
    def backward(ctx, grad):
        (ids,) = ctx.saved_tensors
        out = grad.new_zeros(ctx.shape)
        out.index_put_((ids.reshape(-1),), grad.reshape(-1, ctx.shape[1]), accumulate=False)
        return out, None


class _FreqScaled(_LookupWithOwnBackward):
    """A known mistake: the gradient of each row averaged over its occurrences
    (nn.Embedding's scale_grad_by_freq=True) instead of summed."""

    @staticmethod
    def backward(ctx, grad):
        (ids,) = ctx.saved_tensors
        flat = ids.reshape(-1)
        out = grad.new_zeros(ctx.shape).index_add_(0, flat, grad.reshape(-1, ctx.shape[1]))
        counts = torch.bincount(flat, minlength=ctx.shape[0]).clamp_min(1).to(grad.dtype)
        return out / counts[:, None], None


def _expect_raises(error: type, fn, *, unit: str, what: str, case: str) -> None:
    """Fail unless fn() raises `error` (other exceptions, e.g. a TODO, propagate)."""
    __tracebackhide__ = True
    try:
        fn()
    except error:
        return
    check.fail(unit, what, case=case)


def _normal_chi_square(values: torch.Tensor, *, unit: str, what: str, case: str) -> None:
    """Chi-square test that `values` are i.i.d. N(0, 1): 20 bins of equal probability under
    N(0, 1). A correct initialisation fails with probability ≤ 1e-6 (the default rate)."""
    edges = sps.norm.ppf(np.linspace(0, 1, 21)[1:-1])                    # 19 inner edges
    counts = np.bincount(np.searchsorted(edges, values.detach().double().flatten().numpy()), minlength=20)
    stats.chi_square(counts, [1 / 20] * 20, unit=unit, what=what, case=case)


# ----------------------------------------------------------------------------- Embedding


@pytest.mark.points(1)
def test_embedding_stores_one_weight_parameter(impl):
    emb = impl.Embedding(13, 6)
    case = check.describe(num_embeddings=13, dim=6)
    names = sorted(name for name, _ in emb.named_parameters())
    check.equal(names, ["weight"], unit="Embedding.__init__", case=case, what="parameter names",
                mistakes={"wraps torch.nn.Embedding instead of owning the table": ["emb.weight"]})
    check.equal(tuple(emb.weight.shape), (13, 6), unit="Embedding.__init__", case=case, what="shape of weight",
                mistakes={"table stored transposed, (dim, num_embeddings)": (6, 13)})
    check.equal(emb.weight.dtype, torch.float32, unit="Embedding.__init__", case=case, what="dtype of weight")
    check.that(emb.weight.requires_grad, "Embedding.__init__", "weight must be trainable (requires_grad=True)",
               case=case)


@pytest.mark.points(2)
def test_embedding_init_is_standard_normal(impl):
    torch.manual_seed(1234)
    emb = impl.Embedding(400, 50)
    _normal_chi_square(emb.weight, unit="Embedding.__init__",
                       what="weight should be drawn i.i.d. from N(0, 1) (like torch.nn.Embedding)",
                       case=check.describe(num_embeddings=400, dim=50))


@pytest.mark.points(2)
def test_embedding_matches_reference(impl):
    rec = reference.load(TOPIC, "embedding")
    emb = _table(impl, rec["weight"])
    case = check.describe(weight=rec["weight"], ids=rec["ids"])
    with _from_scratch("Embedding.forward"):
        out = emb(rec["ids"])
    check.close(out, rec["out"], unit="Embedding.forward", case=case, kind="elementwise")
    out.backward(rec["upstream"])
    check.close(emb.weight.grad, rec["grad_weight"], unit="Embedding.forward", case=case, kind="gradient",
                what="gradient w.r.t. weight")


@st.composite
def _lookup_cases(draw):
    V = draw(st.integers(1, 20))
    C = draw(st.integers(1, 8))
    shape = draw(st.lists(st.integers(0, 5), min_size=0, max_size=3))
    seed = draw(st.integers(0, 2**16))
    return V, C, tuple(shape), seed


@pytest.mark.points(3)
@_SETTINGS
@given(_lookup_cases())
def test_embedding_lookup_equals_one_hot_matmul(impl, params):
    V, C, shape, seed = params
    g = torch.Generator().manual_seed(seed)
    weight = torch.randn(V, C, generator=g)
    ids = torch.randint(0, V, shape, generator=g)
    emb = _table(impl, weight)
    case = check.describe(weight=weight, ids=ids)
    with _from_scratch("Embedding.forward"):
        out = emb(ids)
    check.close(out, _one_hot_lookup(ids, weight), unit="Embedding.forward", case=case, kind="elementwise")


@pytest.mark.points(3)
def test_embedding_gradient_accumulates_repeated_ids(impl):
    g = torch.Generator().manual_seed(7)
    weight = torch.randn(6, 4, generator=g)
    ids = torch.tensor([[2, 2, 2, 0], [2, 1, 1, 5], [5, 0, 2, 2]])       # 2 five times; 3 and 4 absent
    emb = _table(impl, weight)

    def student(w):
        return functional_call(emb, {"weight": w}, (ids,))

    with _from_scratch("Embedding.forward"):
        check.grads(student, lambda w: _one_hot_lookup(ids, w), [weight], names=["weight"],
                    unit="Embedding.forward", case=check.describe(weight=weight, ids=ids), mistakes={
                        "gradient of a repeated id is overwritten instead of summed "
                        "(index_put without accumulate=True)": lambda w: _OverwriteLookup.apply(w, ids),
                        "gradient divided by how often each id occurs": lambda w: _FreqScaled.apply(w, ids),
                    })


@pytest.mark.points(1)
def test_embedding_gradcheck_float64(impl):
    g = torch.Generator().manual_seed(11)
    weight = torch.randn(5, 3, generator=g, dtype=torch.float64)
    ids = torch.tensor([[4, 4, 1], [0, 4, 1]])
    emb = _table(impl, weight.float())
    with _from_scratch("Embedding.forward"):
        check.gradcheck(lambda w: functional_call(emb, {"weight": w}, (ids,)), [weight],
                        unit="Embedding.forward", case=check.describe(ids=ids))


@pytest.mark.points(1)
def test_embedding_rejects_out_of_range_ids(impl):
    emb = impl.Embedding(7, 3)
    for bad in ([0, 7], [[1, 2], [-1, 3]], [-7]):
        ids = torch.tensor(bad)
        _expect_raises(IndexError, lambda: emb(ids), unit="Embedding.forward", case=check.describe(ids=ids),
                       what="ids outside [0, num_embeddings) must raise IndexError (a negative id must not "
                            "wrap around to the end of the table)")


# ----------------------------------------------------------------------------- LearnedPositions


@pytest.mark.points(1)
def test_learned_positions_parameter_and_init(impl):
    torch.manual_seed(4321)
    lp = impl.LearnedPositions(256, 64)
    case = check.describe(max_len=256, dim=64)
    names = sorted(name for name, _ in lp.named_parameters())
    check.equal(names, ["weight"], unit="LearnedPositions.__init__", case=case, what="parameter names")
    check.equal(tuple(lp.weight.shape), (256, 64), unit="LearnedPositions.__init__", case=case,
                what="shape of weight")
    _normal_chi_square(lp.weight, unit="LearnedPositions.__init__",
                       what="weight should be drawn i.i.d. from N(0, 1)", case=case)


@pytest.mark.points(2)
def test_learned_positions_reads_rows_start_to_start_plus_len(impl):
    g = torch.Generator().manual_seed(5)
    weight = torch.randn(12, 5, generator=g)
    lp = impl.LearnedPositions(12, 5)
    with torch.no_grad():
        lp.weight.copy_(weight)
    for seq_len, start in [(12, 0), (5, 0), (4, 3), (1, 11), (0, 4), (3, 9)]:
        out = lp(seq_len, start=start) if start else lp(seq_len)
        check.close(out, weight[start:start + seq_len], unit="LearnedPositions.forward",
                    case=check.describe(max_len=12, seq_len=seq_len, start=start), kind="exact", mistakes={
                        "rows weight[start:seq_len] instead of weight[start:start + seq_len]": weight[start:seq_len],
                        "ignores start": weight[:seq_len],
                    })


@pytest.mark.points(1)
def test_learned_positions_rejects_positions_past_the_table(impl):
    lp = impl.LearnedPositions(8, 3)
    for seq_len, start in [(9, 0), (5, 4), (1, 8), (2, -1)]:
        _expect_raises(ValueError, lambda: lp(seq_len, start=start), unit="LearnedPositions.forward",
                       case=check.describe(max_len=8, seq_len=seq_len, start=start),
                       what="positions outside [0, max_len) must raise ValueError, not return fewer rows")


@pytest.mark.points(1)
def test_learned_positions_gradient(impl):
    g = torch.Generator().manual_seed(6)
    weight = torch.randn(10, 3, generator=g)
    lp = impl.LearnedPositions(10, 3)
    check.grads(lambda w: functional_call(lp, {"weight": w}, (4,), {"start": 3}),
                lambda w: torch.eye(10, dtype=w.dtype)[3:7] @ w, [weight], names=["weight"],
                unit="LearnedPositions.forward", case=check.describe(max_len=10, seq_len=4, start=3))


# ----------------------------------------------------------------------------- TokenAndPosition


def _token_and_position(impl, tok: torch.Tensor, pos: torch.Tensor):
    model = impl.TokenAndPosition(tok.shape[0], pos.shape[0], tok.shape[1])
    case = check.describe(vocab_size=tok.shape[0], max_len=pos.shape[0], dim=tok.shape[1])
    check.that(isinstance(getattr(model, "tok", None), impl.Embedding), "TokenAndPosition.__init__",
               "`self.tok` must be an Embedding(vocab_size, dim) (this topic's class)", case=case)
    check.that(isinstance(getattr(model, "pos", None), impl.LearnedPositions), "TokenAndPosition.__init__",
               "`self.pos` must be a LearnedPositions(max_len, dim)", case=case)
    shapes = {name: tuple(p.shape) for name, p in model.named_parameters()}
    check.equal(shapes, {"tok.weight": tuple(tok.shape), "pos.weight": tuple(pos.shape)},
                unit="TokenAndPosition.__init__", case=case, what="parameters (name: shape)")
    with torch.no_grad():
        model.tok.weight.copy_(tok)
        model.pos.weight.copy_(pos)
    return model


@pytest.mark.points(1)
def test_token_and_position_matches_reference(impl):
    rec = reference.load(TOPIC, "token_and_position")
    model = _token_and_position(impl, rec["tok_weight"], rec["pos_weight"])
    start = int(rec["start"])
    case = check.describe(ids=rec["ids"], start=start)
    with _from_scratch("TokenAndPosition.forward"):
        out = model(rec["ids"], start=start)
    check.close(out, rec["out"], unit="TokenAndPosition.forward", case=case, kind="elementwise")
    out.backward(rec["upstream"])
    check.close(model.tok.weight.grad, rec["grad_tok"], unit="TokenAndPosition.forward", case=case,
                kind="gradient", what="gradient w.r.t. tok.weight")
    check.close(model.pos.weight.grad, rec["grad_pos"], unit="TokenAndPosition.forward", case=case,
                kind="gradient", what="gradient w.r.t. pos.weight")


@pytest.mark.points(2)
def test_token_and_position_is_token_plus_position(impl):
    g = torch.Generator().manual_seed(8)
    tok, pos = torch.randn(11, 4, generator=g), torch.randn(8, 4, generator=g)
    model = _token_and_position(impl, tok, pos)
    for shape, start in [((3, 5), 0), ((5,), 0), ((2, 2, 7), 0), ((3, 5), 2), ((1, 8), 0)]:
        ids = torch.randint(0, 11, shape, generator=g)
        T = shape[-1]
        expected = _one_hot_lookup(ids, tok) + pos[start:start + T]          # (..., T, C) + (T, C)
        with _from_scratch("TokenAndPosition.forward"):
            out = model(ids, start=start) if start else model(ids)
        check.close(out, expected, unit="TokenAndPosition.forward", case=check.describe(ids=ids, start=start),
                    kind="elementwise", mistakes={
                        "token embeddings scaled by sqrt(dim)": tok[ids] * math.sqrt(4) + pos[start:start + T],
                        "position embeddings missing": tok[ids],
                        "ignores start": tok[ids] + pos[:T],
                    })


@pytest.mark.points(2)
def test_token_and_position_gradients(impl):
    g = torch.Generator().manual_seed(9)
    tok, pos = torch.randn(6, 3, generator=g), torch.randn(7, 3, generator=g)
    model = _token_and_position(impl, tok, pos)
    ids = torch.tensor([[1, 1, 4, 0, 1], [4, 2, 1, 1, 5], [0, 0, 0, 3, 1]])   # repeats within and across rows

    def student(t, p):
        return functional_call(model, {"tok.weight": t, "pos.weight": p}, (ids,), {"start": 1})

    def oracle(t, p):
        return _one_hot_lookup(ids, t) + torch.eye(7, dtype=p.dtype)[1:6] @ p

    with _from_scratch("TokenAndPosition.forward"):
        check.grads(student, oracle, [tok, pos], names=["tok.weight", "pos.weight"],
                    unit="TokenAndPosition.forward", case=check.describe(ids=ids, start=1))
