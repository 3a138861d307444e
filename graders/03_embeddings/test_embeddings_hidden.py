"""Instructor-only graders for 03_embeddings: longer sequences and rarer edge cases."""

from __future__ import annotations

import embeddings_oracle as O  # graders/03_embeddings/embeddings_oracle.py (the harness puts this folder on sys.path)
import pytest
import torch
from torch import nn
from torch.func import functional_call

from llmlab.testing import check, guard, tensors
from llmlab.testing.tolerances import Tolerance

EPS32 = torch.finfo(torch.float32).eps


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_sinusoid_long_sequence_and_bad_arguments(impl):
    T, C, base = 1024, 96, 10000.0
    p = torch.arange(T, dtype=torch.float64)[:, None]
    angle = p / base ** (torch.arange(0, C, 2, dtype=torch.float64) / C)
    expected = torch.stack([angle.sin(), angle.cos()], -1).flatten(-2).float()
    out = impl.sinusoidal_positions(T, C, base)
    # float32 angle rounding grows with the position (see test_embeddings_sinusoid.py).
    check.close(out, expected, unit="sinusoidal_positions", case=check.describe(seq_len=T, dim=C, base=base),
                tol=Tolerance(rtol=0.0, atol=1e-6 + 4 * EPS32 * (T - 1)))
    for seq_len, dim in [(5, 0), (5, -2), (-1, 4)]:
        check.expect_raises(ValueError, impl.sinusoidal_positions, seq_len, dim, unit="sinusoidal_positions",
                            case=check.describe(seq_len=seq_len, dim=dim),
                            why="dim < 2 or a negative seq_len breaks the docstring's rule")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_embedding_single_row_and_deep_ids(impl):
    for k, (V, C, shape) in enumerate([(1, 3, (2, 5)), (9, 2, (2, 3, 4, 2))]):
        weight = tensors.randn((V, C), 21 + k, torch.float32)
        ids = tensors.randint(shape, 31 + k, high=V)
        emb = O.embedding_with(impl, weight)
        case = check.describe(weight=weight, ids=ids)
        with guard.forbid("Embedding.forward", O.FORBIDDEN, hint=O.HINT):
            check.grads(lambda w: functional_call(emb, {"weight": w}, (ids,)),
                        lambda w: O.one_hot_lookup(ids, w), [weight], names=["weight"],
                        unit="Embedding.forward", case=case)


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_param_groups_tied_head_registered_first(impl):
    model = nn.Module()
    model.head = nn.Linear(4, 11, bias=True)      # the head comes first in module order
    model.body = nn.Linear(4, 4)
    model.tok = impl.Embedding(11, 4)
    impl.tie_weights(model.tok, model.head)
    case = "head Linear(4, 11) registered before tok Embedding(11, 4), tied to it; body Linear(4, 4)"
    groups = impl.param_groups(model, 0.2)
    by_id = {id(p): n for n, p in model.named_parameters()}
    decay = sorted(by_id.get(id(p), "?") for p in groups[0]["params"])
    no_decay = sorted(by_id.get(id(p), "?") for p in groups[1]["params"])
    check.equal(decay, ["body.weight"], unit="param_groups", case=case, what="parameters in the decay group",
                mistakes={"a tied table classified by the first module that holds it (the Linear head)":
                          ["body.weight", "head.weight"]})
    check.equal(no_decay, ["body.bias", "head.bias", "head.weight"], unit="param_groups", case=case,
                what="parameters in the no-decay group (the tied table is named head.weight here)")
