"""Graders for 03_embeddings: tie_weights and param_groups.

Evidence: object identity and parameter counts (tying shares one Parameter and removes V·C
parameters), gradients of a tied model against the same model written with one tensor used
twice, every parameter listed exactly once, and the decay rule computed by the grader on fixed
and on randomly assembled models. ("Exactly once" is what torch.optim.AdamW enforces; the
graders check it directly, because constructing any torch.optim optimizer imports
torch._dynamo, about 1.7 s of CPU.)
"""

from __future__ import annotations

import embeddings_oracle as O  # graders/03_embeddings/embeddings_oracle.py (the harness puts this folder on sys.path)
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

from llmlab.testing import check, tensors
from llmlab.testing.strategies import examples

COPIES = ("lm_head.weight is not the embedding's Parameter: tying must share the very same "
          "Parameter object (lm_head.weight = embedding.weight), not copy its values")


def _count(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _embedding(impl, kind: str, V: int, C: int) -> nn.Module:
    return nn.Embedding(V, C) if kind == "torch.nn.Embedding" else impl.Embedding(V, C)


# ----------------------------------------------------------------------------- tie_weights


@pytest.mark.points(2)
@pytest.mark.parametrize("kind", ["torch.nn.Embedding", "course Embedding"])
def test_tie_weights_shares_one_parameter(impl, kind):
    V, C = 10, 4
    torch.manual_seed(0)
    model = nn.ModuleDict({"emb": _embedding(impl, kind, V, C), "head": nn.Linear(C, V, bias=False)})
    table, values = model["emb"].weight, model["emb"].weight.detach().clone()
    before = _count(model)
    case = check.describe(embedding=kind, vocab_size=V, dim=C)
    result = impl.tie_weights(model["emb"], model["head"])
    check.that(result is None, "tie_weights", "should change the modules in place and return None", case=case)
    check.that(model["emb"].weight is table, "tie_weights",
               "embedding.weight was replaced: tie in the other direction, so the head takes the "
               "embedding's Parameter (lm_head.weight = embedding.weight) and the embedding keeps its own",
               case=case)
    check.that(model["head"].weight is table, "tie_weights", COPIES, case=case)
    check.close(table, values, unit="tie_weights", case=case, kind="exact", what="the embedding's values after tying")
    check.equal(before - _count(model), V * C, unit="tie_weights", case=case,
                what="number of parameters removed by tying (should be vocab_size · dim)")


@pytest.mark.points(2)
def test_tie_weights_both_uses_train_one_tensor(impl):
    V, C = 9, 5
    w0, b0 = tensors.randn((V, C), 2, torch.float32), tensors.randn((V,), 12, torch.float32)
    emb, head = nn.Embedding(V, C), nn.Linear(C, V, bias=True)
    with torch.no_grad():
        emb.weight.copy_(w0)
        head.bias.copy_(b0)
    bias = head.bias
    ids = torch.tensor([[1, 4, 4, 8], [0, 1, 7, 7]])
    upstream = tensors.randn((2, 4, V), 22, torch.float32)
    case = check.describe(ids=ids, vocab_size=V, dim=C)
    impl.tie_weights(emb, head)
    check.that(head.bias is bias, "tie_weights", "the head's bias must be kept as it was", case=case)
    logits = head(emb(ids))                                                 # (B, T, V)
    check.close(logits, emb.weight[ids] @ emb.weight.T + bias, unit="tie_weights", case=case, kind="matmul",
                what="logits of the tied head (h @ embedding.weight.T + bias)")
    logits.backward(upstream)

    w = w0.clone().requires_grad_(True)                                     # the oracle: one tensor, used twice
    (O.one_hot_lookup(ids, w) @ w.T + b0).backward(upstream)
    check.that(emb.weight.grad is not None, "tie_weights", "no gradient reached the embedding", case=case)
    check.close(emb.weight.grad, w.grad, unit="tie_weights", case=case, kind="gradient",
                what="gradient of the shared table (the sum of the embedding's and the head's contributions)",
                mistakes={COPIES: lambda: _grad_untied(w0, ids, upstream)})


def _grad_untied(w0: torch.Tensor, ids: torch.Tensor, upstream: torch.Tensor) -> torch.Tensor:
    w = w0.clone().requires_grad_(True)
    (O.one_hot_lookup(ids, w) @ w0.T).backward(upstream)
    return w.grad


@pytest.mark.points(1)
def test_tie_weights_rejects_mismatched_shapes(impl):
    for kind, head in [("torch.nn.Embedding", nn.Linear(4, 9, bias=False)),
                       ("torch.nn.Embedding", nn.Linear(10, 4, bias=False)),   # transposed: same numel
                       ("torch.nn.Embedding", nn.Linear(5, 10, bias=True)),
                       ("course Embedding", nn.Linear(4, 11, bias=False))]:
        emb = _embedding(impl, kind, 10, 4)
        case = check.describe(embedding=kind, embedding_weight=tuple(emb.weight.shape),
                              lm_head_weight=tuple(head.weight.shape))
        check.expect_raises(ValueError, impl.tie_weights, emb, head, unit="tie_weights", case=case,
                            why="the shapes differ: a head of the wrong size would otherwise be tied silently "
                                "and fail later, far from the cause")


# ----------------------------------------------------------------------------- param_groups


class _Gain(nn.Module):
    """An RMSNorm-like scale: a 1-D parameter that is not called bias or weight."""

    def __init__(self, dim: int):
        super().__init__()
        self.gain = nn.Parameter(torch.ones(dim))


class _Toy(nn.Module):
    """Every kind of parameter the rule distinguishes, with names that do not give them away."""

    def __init__(self, V: int = 13, C: int = 6):
        super().__init__()
        self.mix = nn.Parameter(torch.randn(C, C))           # a bare matrix: decay
        self.temperature = nn.Parameter(torch.tensor(1.0))   # a scalar: no decay
        self.wte = nn.Embedding(V, C)                         # embedding table: no decay
        self.conv = nn.Conv1d(C, C, 3)                        # 3-D kernel: decay; bias: no decay
        self.norm = nn.LayerNorm(C)                           # 1-D weight and bias: no decay
        self.scale = _Gain(C)                                 # 1-D: no decay
        self.proj = nn.Linear(C, C)                           # matrix: decay; bias: no decay
        self.head = nn.Linear(C, V, bias=False)
        self.head.weight = self.wte.weight                    # tied: an embedding table, no decay


TOY_DECAY = ["conv.weight", "mix", "proj.weight"]
TOY_NO_DECAY = ["conv.bias", "norm.bias", "norm.weight", "proj.bias", "scale.gain", "temperature", "wte.weight"]


def _names(model: nn.Module, params) -> list[str]:
    """Names of `params` (sorted; a parameter listed twice appears twice; a stranger as '?')."""
    by_id = {id(p): n for n, p in model.named_parameters()}
    return sorted(by_id.get(id(p), "?") for p in params)


def _groups(impl, model: nn.Module, weight_decay: float, case: str) -> list[dict]:
    groups = impl.param_groups(model, weight_decay)
    check.that(isinstance(groups, list) and len(groups) == 2 and all(isinstance(g, dict) for g in groups),
               "param_groups", "should return a list of two dicts [decay group, no-decay group]", case=case)
    for k, g in enumerate(groups):
        check.equal(sorted(g), ["params", "weight_decay"], unit="param_groups", case=case,
                    what=f"keys of group {k}")
        check.that(all(isinstance(p, nn.Parameter) for p in g["params"]), "param_groups",
                   f"group {k}['params'] must hold the model's Parameters themselves", case=case)
    return groups


def _naive_rules(model: nn.Module) -> dict[str, list[str]]:
    """Decay-group names produced by known wrong rules (for naming the mistake)."""
    named = list(model.named_parameters())
    return {
        "embeddings put in the decay group (the ndim ≥ 2 rule alone)":
            sorted(n for n, p in named if p.ndim >= 2),
        "only parameters with ndim > 2 decayed (matrices have ndim 2)":
            sorted(n for n, p in named if p.ndim > 2),
        "only nn.Linear weights decayed (any other matrix or kernel with ndim ≥ 2 decays too)":
            sorted(n for n, p in named if n in ("proj.weight",)),
    }


@pytest.mark.points(1)
def test_param_groups_structure_and_decay_values(impl):
    model = _Toy()
    case = "the toy model of this test file (embedding, conv, norm, linear, tied head)"
    groups = _groups(impl, model, 0.1, case)
    check.equal(groups[0]["weight_decay"], 0.1, unit="param_groups", case=case, what="weight_decay of group 0")
    check.equal(groups[1]["weight_decay"], 0.0, unit="param_groups", case=case, what="weight_decay of group 1",
                mistakes={"the no-decay group was given weight_decay too": 0.1})


@pytest.mark.points(1)
def test_param_groups_always_returns_both_groups(impl):
    frozen = nn.Linear(3, 2)
    frozen.requires_grad_(False)
    for model, case, decay, no_decay in [
        (nn.LayerNorm(4), "nn.LayerNorm(4): nothing to decay", [], ["bias", "weight"]),
        (nn.Linear(3, 2, bias=False), "nn.Linear(3, 2, bias=False): nothing to exempt", ["weight"], []),
        (frozen, "nn.Linear(3, 2) with every parameter frozen", [], []),
    ]:
        groups = _groups(impl, model, 0.1, case)
        check.equal(_names(model, groups[0]["params"]), decay, unit="param_groups", case=case,
                    what="parameters in the decay group (the list may be empty, the group is still there)")
        check.equal(_names(model, groups[1]["params"]), no_decay, unit="param_groups", case=case,
                    what="parameters in the no-decay group (the list may be empty, the group is still there)")
        check.equal([g["weight_decay"] for g in groups], [0.1, 0.0], unit="param_groups", case=case,
                    what="weight_decay of the two groups")


@pytest.mark.points(3)
def test_param_groups_rule(impl):
    model = _Toy()
    case = "toy model: mix (C,C), temperature (), wte Embedding, conv Conv1d, norm LayerNorm, scale (C,), " \
           "proj Linear, head Linear tied to wte"
    groups = _groups(impl, model, 0.05, case)
    check.equal(_names(model, groups[0]["params"]), TOY_DECAY, unit="param_groups", case=case,
                what="parameters in the decay group", mistakes=_naive_rules(model))
    check.equal(_names(model, groups[1]["params"]), TOY_NO_DECAY, unit="param_groups", case=case,
                what="parameters in the no-decay group")


@pytest.mark.points(2)
def test_param_groups_every_parameter_exactly_once(impl):
    model = _Toy()
    case = "toy model with a head tied to the embedding"
    groups = _groups(impl, model, 0.1, case)
    listed = [p for g in groups for p in g["params"]]
    names = _names(model, listed)
    check.that("?" not in names, "param_groups", "the groups hold tensors that are not parameters of the model "
               "(copies?)", case=case)
    twice = sorted({n for n in names if names.count(n) > 1})
    check.that(not twice, "param_groups", f"parameters listed more than once: {twice} (a tied Parameter "
               "belongs to two modules but must be listed once; iterate model.parameters(), which "
               "removes duplicates)", case=case)
    check.equal(names, sorted(n for n, _ in model.named_parameters()), unit="param_groups", case=case,
                what="all parameters over both groups")


@pytest.mark.points(1)
def test_param_groups_leaves_out_frozen_parameters(impl):
    model = _Toy()
    model.proj.weight.requires_grad_(False)
    model.norm.bias.requires_grad_(False)
    case = "toy model with proj.weight and norm.bias frozen (requires_grad=False)"
    groups = _groups(impl, model, 0.1, case)
    check.equal(_names(model, groups[0]["params"]), ["conv.weight", "mix"], unit="param_groups", case=case,
                what="parameters in the decay group", mistakes={
                    "frozen parameters kept in the groups": TOY_DECAY})
    check.equal(_names(model, groups[1]["params"]), [n for n in TOY_NO_DECAY if n != "norm.bias"],
                unit="param_groups", case=case, what="parameters in the no-decay group",
                mistakes={"frozen parameters kept in the groups": TOY_NO_DECAY})


@pytest.mark.points(1)
def test_param_groups_keep_model_order(impl):
    model = _Toy()
    case = "toy model"
    groups = _groups(impl, model, 0.1, case)
    order = {id(p): k for k, p in enumerate(model.parameters())}
    for k, g in enumerate(groups):
        got = [order.get(id(p), -1) for p in g["params"]]
        check.equal(got, sorted(got), unit="param_groups", case=case,
                    what=f"order of group {k} (positions in model.parameters())")


@pytest.mark.points(2)
def test_param_groups_course_embeddings_are_not_decayed(impl):
    torch.manual_seed(0)
    model = nn.Module()
    model.inp = impl.TokenAndPosition(17, 8, 6)
    model.extra_pos = impl.LearnedPositions(8, 6)
    model.table = impl.Embedding(5, 6)
    model.block = nn.Linear(6, 6)
    model.head = nn.Linear(6, 17, bias=False)
    impl.tie_weights(model.inp.tok, model.head)
    case = "inp TokenAndPosition(17, 8, 6), extra_pos LearnedPositions, table Embedding, block Linear, " \
           "head Linear tied to inp.tok"
    groups = _groups(impl, model, 0.1, case)
    check.equal(_names(model, groups[0]["params"]), ["block.weight"], unit="param_groups", case=case,
                what="parameters in the decay group", mistakes={
                    "this topic's Embedding / LearnedPositions tables put in the decay group":
                        ["block.weight", "extra_pos.weight", "inp.pos.weight", "inp.tok.weight", "table.weight"]})
    check.equal(_names(model, groups[1]["params"]),
                ["block.bias", "extra_pos.weight", "inp.pos.weight", "inp.tok.weight", "table.weight"],
                unit="param_groups", case=case, what="parameters in the no-decay group")


class _FactorizedEmbedding(nn.Embedding):
    """An ALBERT-style factorised embedding: a (V, E) table and an E -> C projection that the
    embedding module holds as a submodule. The projection is a weight matrix, not a table."""

    def __init__(self, V: int, E: int, C: int):
        super().__init__(V, E)
        self.proj = nn.Linear(E, C)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.proj(super().forward(ids))


@pytest.mark.points(1)
def test_param_groups_decays_a_matrix_inside_an_embedding_module(impl):
    model = nn.Module()
    model.inp = _FactorizedEmbedding(9, 3, 5)
    model.block = nn.Linear(5, 5)
    case = "inp: a torch.nn.Embedding(9, 3) subclass holding proj = Linear(3, 5); block Linear(5, 5)"
    groups = _groups(impl, model, 0.1, case)
    check.equal(_names(model, groups[0]["params"]), ["block.weight", "inp.proj.weight"], unit="param_groups",
                case=case, what="parameters in the decay group (only the embedding's own `weight` is a table)",
                mistakes={"every parameter below an embedding module treated as a table": ["block.weight"]})
    check.equal(_names(model, groups[1]["params"]), ["block.bias", "inp.proj.bias", "inp.weight"],
                unit="param_groups", case=case, what="parameters in the no-decay group")


_LAYERS = ["linear", "linear_nobias", "embedding", "layernorm", "conv", "matrix", "vector", "tied_head_first"]


def _build(spec: list[str]) -> tuple[nn.Module, set[str]]:
    """A model assembled from `spec`, and the names the rule decays (computed here, by type)."""
    model, decay = nn.Module(), set()
    for k, kind in enumerate(spec):
        name = f"m{k}"
        if kind in ("linear", "linear_nobias"):
            setattr(model, name, nn.Linear(3, 4, bias=kind == "linear"))
            decay.add(f"{name}.weight")
        elif kind == "embedding":
            setattr(model, name, nn.Embedding(5, 3))
        elif kind == "layernorm":
            setattr(model, name, nn.LayerNorm(3))
        elif kind == "conv":
            setattr(model, name, nn.Conv2d(2, 2, 2))
            decay.add(f"{name}.weight")
        elif kind == "matrix":
            model.register_parameter(name, nn.Parameter(torch.zeros(2, 3)))
            decay.add(name)
        elif kind == "vector":
            model.register_parameter(name, nn.Parameter(torch.zeros(3)))
        else:  # a head registered BEFORE its embedding, tied to it: the table stays undecayed
            head, emb = nn.Linear(3, 5, bias=False), nn.Embedding(5, 3)
            setattr(model, f"{name}_head", head)
            setattr(model, f"{name}_emb", emb)
            head.weight = emb.weight
    return model, decay


@pytest.mark.points(2)
@examples(20)
@given(spec=st.lists(st.sampled_from(_LAYERS), min_size=1, max_size=6))
def test_param_groups_on_assembled_models(impl, spec):
    model, decay = _build(spec)
    case = f"nn.Module with parameters/submodules in this order: {spec}"
    groups = _groups(impl, model, 0.3, case)
    every = sorted(n for n, _ in model.named_parameters())
    check.equal(_names(model, groups[0]["params"]), sorted(decay), unit="param_groups", case=case,
                what="parameters in the decay group")
    check.equal(_names(model, groups[1]["params"]), sorted(set(every) - decay), unit="param_groups", case=case,
                what="parameters in the no-decay group")
