"""Graders for 03_embeddings: Embedding, LearnedPositions and TokenAndPosition.

Evidence per unit: golden data (reference/03_embeddings), an independent oracle (the lookup
written as one_hot(ids) @ weight, whose gradient autograd derives on its own), properties on
fresh random inputs, and a chi-square test of the initialisation.
"""

from __future__ import annotations

import math

import embeddings_oracle as O  # graders/03_embeddings/embeddings_oracle.py (the harness puts this folder on sys.path)
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch.func import functional_call

from llmlab.testing import check, guard, reference, stats, tensors
from llmlab.testing.strategies import examples, seeds, shapes

TOPIC = "03_embeddings"


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
    torch.manual_seed(1234)                                                 # the unit draws from the global RNG
    emb = impl.Embedding(400, 50)
    # 20 equiprobable bins; a correct initialisation fails with probability ≤ 1e-6 (the default rate).
    stats.normal(emb.weight, mean=0.0, std=1.0, unit="Embedding.__init__",
                 what="weight should be drawn i.i.d. from N(0, 1) (like torch.nn.Embedding)",
                 case=check.describe(num_embeddings=400, dim=50))


@pytest.mark.points(2)
def test_embedding_matches_reference(impl):
    rec = reference.load(TOPIC, "embedding")
    emb = O.embedding_with(impl, rec["weight"])
    case = check.describe(weight=rec["weight"], ids=rec["ids"])
    out = guard.call_without("Embedding.forward", O.FORBIDDEN, emb, rec["ids"], hint=O.HINT)
    check.close(out, rec["out"], unit="Embedding.forward", case=case, kind="elementwise")
    out.backward(rec["upstream"])
    check.close(emb.weight.grad, rec["grad_weight"], unit="Embedding.forward", case=case, kind="gradient",
                what="gradient w.r.t. weight")


@pytest.mark.points(3)
@examples(25)
@given(V=st.integers(1, 20), C=st.integers(1, 8), shape=shapes(min_dims=0, max_dims=3, min_side=0, max_side=5),
       seed=seeds())
def test_embedding_lookup_equals_one_hot_matmul(impl, V, C, shape, seed):
    weight = tensors.randn((V, C), seed, torch.float32)
    ids = tensors.randint(shape, seed + 1, high=V)
    emb = O.embedding_with(impl, weight)
    case = check.describe(weight=weight, ids=ids)
    out = guard.call_without("Embedding.forward", O.FORBIDDEN, emb, ids, hint=O.HINT)
    check.close(out, O.one_hot_lookup(ids, weight), unit="Embedding.forward", case=case, kind="elementwise")


@pytest.mark.points(1)
def test_embedding_empty_and_scalar_ids(impl):
    weight = tensors.randn((6, 3), 12, torch.float32)
    emb = O.embedding_with(impl, weight)
    for ids in (torch.zeros(0, dtype=torch.long), torch.zeros(2, 0, dtype=torch.long), torch.tensor(4)):
        case = check.describe(weight=weight, ids=ids)
        out = guard.call_without("Embedding.forward", O.FORBIDDEN, emb, ids, hint=O.HINT)
        check.close(out, O.one_hot_lookup(ids, weight), unit="Embedding.forward", case=case, kind="exact",
                    what="output for ids of any shape (no ids at all, or a 0-d tensor of one id)")


@pytest.mark.points(3)
def test_embedding_gradient_accumulates_repeated_ids(impl):
    weight = tensors.randn((6, 4), 7, torch.float32)
    ids = torch.tensor([[2, 2, 2, 0], [2, 1, 1, 5], [5, 0, 2, 2]])       # 2 five times; 3 and 4 absent
    emb = O.embedding_with(impl, weight)

    def student(w):
        return functional_call(emb, {"weight": w}, (ids,))

    with guard.forbid("Embedding.forward", O.FORBIDDEN, hint=O.HINT):
        check.grads(student, lambda w: O.one_hot_lookup(ids, w), [weight], names=["weight"],
                    unit="Embedding.forward", case=check.describe(weight=weight, ids=ids), mistakes={
                        "gradient of a repeated id is overwritten instead of summed "
                        "(index_put without accumulate=True)": lambda w: _OverwriteLookup.apply(w, ids),
                        "gradient divided by how often each id occurs": lambda w: _FreqScaled.apply(w, ids),
                    })


@pytest.mark.points(1)
def test_embedding_gradcheck_float64(impl):
    # The docstring promises a float32 table only, so the unit runs in float32: gradcheck's
    # float64 copy of the table is cast to float32 on the way in and the output back to float64
    # on the way out. Entries |w| ≤ 1e-3 have a float32 spacing of at most 2^-33, so rounding
    # w ± eps (eps = 1e-6) moves a finite difference by at most 2^-33 / 2e-6 ≈ 6e-5, far inside
    # gradcheck's tolerance (atol 1e-5 + rtol 1e-3 of a derivative of 1).
    weight = tensors.rand((5, 3), 11, torch.float32, low=-1e-3, high=1e-3)
    ids = torch.tensor([[4, 4, 1], [0, 4, 1]])
    emb = O.embedding_with(impl, weight)
    guard.gradcheck_without("Embedding.forward", O.FORBIDDEN,
                            lambda w: functional_call(emb, {"weight": w.float()}, (ids,)).double(), [weight],
                            case=check.describe(weight=weight, ids=ids), hint=O.HINT)


@pytest.mark.points(1)
def test_embedding_rejects_out_of_range_ids(impl):
    emb = impl.Embedding(7, 3)
    for bad in ([0, 7], [[1, 2], [-1, 3]], [-7], [8]):
        ids = torch.tensor(bad)
        check.expect_raises(IndexError, emb, ids, unit="Embedding.forward",
                            case=check.describe(num_embeddings=7, ids=ids),
                            why="ids must lie in [0, num_embeddings); a negative id must not wrap around to the "
                                "end of the table")


# ----------------------------------------------------------------------------- LearnedPositions


@pytest.mark.points(1)
def test_learned_positions_parameter_and_init(impl):
    torch.manual_seed(4321)                                                 # the unit draws from the global RNG
    lp = impl.LearnedPositions(256, 64)
    case = check.describe(max_len=256, dim=64)
    names = sorted(name for name, _ in lp.named_parameters())
    check.equal(names, ["weight"], unit="LearnedPositions.__init__", case=case, what="parameter names")
    check.equal(tuple(lp.weight.shape), (256, 64), unit="LearnedPositions.__init__", case=case,
                what="shape of weight")
    check.equal(lp.weight.dtype, torch.float32, unit="LearnedPositions.__init__", case=case, what="dtype of weight")
    # 20 equiprobable bins; a correct initialisation fails with probability ≤ 1e-6 (the default rate).
    stats.normal(lp.weight, mean=0.0, std=1.0, unit="LearnedPositions.__init__",
                 what="weight should be drawn i.i.d. from N(0, 1)", case=case)


@pytest.mark.points(2)
def test_learned_positions_reads_rows_start_to_start_plus_len(impl):
    weight = tensors.randn((12, 5), 5, torch.float32)
    lp = impl.LearnedPositions(12, 5)
    with torch.no_grad():
        lp.weight.copy_(weight)
    for seq_len, start in [(12, 0), (5, 0), (4, 3), (1, 11), (0, 4), (3, 9), (0, 12)]:
        out = lp(seq_len, start=start) if start else lp(seq_len)
        check.close(out, weight[start:start + seq_len], unit="LearnedPositions.forward",
                    case=check.describe(max_len=12, seq_len=seq_len, start=start), kind="exact", mistakes={
                        "rows weight[start:seq_len] instead of weight[start:start + seq_len]": weight[start:seq_len],
                        "ignores start": weight[:seq_len],
                    })


@pytest.mark.points(1)
def test_learned_positions_rejects_positions_past_the_table(impl):
    lp = impl.LearnedPositions(8, 3)
    for seq_len, start in [(9, 0), (5, 4), (1, 8), (2, -1), (0, -1)]:
        check.expect_raises(ValueError, lp, seq_len, start=start, unit="LearnedPositions.forward",
                            case=check.describe(max_len=8, seq_len=seq_len, start=start),
                            why="positions outside [0, max_len): the table has no vector there, so raise "
                                "instead of returning fewer rows")


def _rows(weight: torch.Tensor, start: int, seq_len: int) -> torch.Tensor:
    """weight[start:start + seq_len] as a product with rows of the identity (an oracle whose
    gradient autograd derives without slicing)."""
    return torch.eye(weight.shape[0], dtype=weight.dtype)[start:start + seq_len] @ weight


@pytest.mark.points(1)
def test_learned_positions_gradient(impl):
    weight = tensors.randn((10, 3), 6, torch.float32)
    lp = impl.LearnedPositions(10, 3)
    check.grads(lambda w: functional_call(lp, {"weight": w}, (4,), {"start": 3}),
                lambda w: _rows(w, 3, 4), [weight], names=["weight"],
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
    out = guard.call_without("TokenAndPosition.forward", O.FORBIDDEN, model, rec["ids"], start=start, hint=O.HINT)
    check.close(out, rec["out"], unit="TokenAndPosition.forward", case=case, kind="elementwise")
    out.backward(rec["upstream"])
    check.close(model.tok.weight.grad, rec["grad_tok"], unit="TokenAndPosition.forward", case=case,
                kind="gradient", what="gradient w.r.t. tok.weight")
    check.close(model.pos.weight.grad, rec["grad_pos"], unit="TokenAndPosition.forward", case=case,
                kind="gradient", what="gradient w.r.t. pos.weight")


@pytest.mark.points(2)
def test_token_and_position_is_token_plus_position(impl):
    tok, pos = tensors.randn((11, 4), 8, torch.float32), tensors.randn((8, 4), 18, torch.float32)
    model = _token_and_position(impl, tok, pos)
    # leading axes: two, none, three; a start offset; batch 1 with T = max_len; T = 1 at the last position
    for k, (shape, start) in enumerate([((3, 5), 0), ((5,), 0), ((2, 2, 7), 0), ((3, 5), 2), ((1, 8), 0),
                                        ((4, 1), 7)]):
        ids = tensors.randint(shape, 28 + k, high=11)
        T = shape[-1]
        expected = O.one_hot_lookup(ids, tok) + pos[start:start + T]          # (..., T, C) + (T, C)
        if start:
            out = guard.call_without("TokenAndPosition.forward", O.FORBIDDEN, model, ids, start=start, hint=O.HINT)
        else:
            out = guard.call_without("TokenAndPosition.forward", O.FORBIDDEN, model, ids, hint=O.HINT)
        check.close(out, expected, unit="TokenAndPosition.forward", case=check.describe(ids=ids, start=start),
                    kind="elementwise", mistakes={
                        "token embeddings scaled by sqrt(dim)": tok[ids] * math.sqrt(4) + pos[start:start + T],
                        "position embeddings missing": tok[ids],
                        "ignores start": tok[ids] + pos[:T],
                    })


@pytest.mark.points(2)
def test_token_and_position_gradients(impl):
    tok, pos = tensors.randn((6, 3), 9, torch.float32), tensors.randn((7, 3), 19, torch.float32)
    model = _token_and_position(impl, tok, pos)
    ids = torch.tensor([[1, 1, 4, 0, 1], [4, 2, 1, 1, 5], [0, 0, 0, 3, 1]])   # repeats within and across rows

    def student(t, p):
        return functional_call(model, {"tok.weight": t, "pos.weight": p}, (ids,), {"start": 1})

    def oracle(t, p):
        return O.one_hot_lookup(ids, t) + _rows(p, 1, 5)

    with guard.forbid("TokenAndPosition.forward", O.FORBIDDEN, hint=O.HINT):
        check.grads(student, oracle, [tok, pos], names=["tok.weight", "pos.weight"],
                    unit="TokenAndPosition.forward", case=check.describe(ids=ids, start=1))


@pytest.mark.points(1)
def test_token_and_position_passes_errors_through(impl):
    tok, pos = tensors.randn((5, 3), 10, torch.float32), tensors.randn((4, 3), 20, torch.float32)
    model = _token_and_position(impl, tok, pos)
    for ids, start, error, why in [
        (torch.tensor([[0, 5, 1]]), 0, IndexError, "id 5 is outside [0, vocab_size = 5): the token table's IndexError"),
        (torch.tensor([[1, -1]]), 0, IndexError, "a negative id: the token table's IndexError, not a wrapped row"),
        (torch.tensor([[0, 1, 2, 3, 4]]), 0, ValueError, "T = 5 > max_len = 4: the position table's ValueError"),
        (torch.tensor([0, 1, 2]), 2, ValueError, "positions 2..4 with max_len = 4: the position table's ValueError"),
    ]:
        check.expect_raises(error, model, ids, start=start, unit="TokenAndPosition.forward",
                            case=check.describe(vocab_size=5, max_len=4, ids=ids, start=start), why=why)
