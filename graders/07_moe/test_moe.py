"""Graders for 07_moe (part 1): TopKRouter, load_balancing_loss, router_z_loss, expert_capacity.

Evidence per unit:
  - golden data (reference/07_moe): a router's logits, indices and weights (state dict loaded
    into the student's router), both losses with their gradients;
  - independent oracles (moe_oracle): the router one token at a time with a Python sort (ties
    to the lower index), the losses as explicit sums, the capacity in exact fractions;
  - properties: the tie rule on all-equal and crafted rows, the bias steering selection but
    never the weights (k = E: the weights do not move at all), the normalisation rule, the
    balancing loss 1 for uniform routing and E for a collapsed router, the bias update rule
    on a hand-made batch and its effect in a seeded simulation (loads driven toward uniform),
    stability of the z-loss for huge logits, float64 gradcheck.
"""

from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

import moe_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, float_dtypes, seeds

_R = "TopKRouter.forward"
_TIE_MISTAKE = "ties not broken towards the lower expert index (torch.topk does not promise any order)"


def _router(impl, d_model, n_experts, k, *, seed=0, normalize=True, bias_scale=0.0, dtype=torch.float32):
    """A router with gate weights N(0, 0.5²) and a bias N(0, bias_scale²), in `dtype`."""
    router = impl.TopKRouter(d_model, n_experts, k, normalize).to(dtype)
    tensors.randomize_parameters(router, seed, 0.5)
    with torch.no_grad():
        router.expert_bias.copy_(tensors.randn((n_experts,), seed + 1, dtype, bias_scale))
    return router


def _dense(weights: torch.Tensor, indices: torch.Tensor, n_experts: int) -> torch.Tensor:
    """(..., k) weights at (..., k) indices scattered into (..., E) (zeros elsewhere)."""
    return torch.zeros(*indices.shape[:-1], n_experts, dtype=weights.dtype).scatter(-1, indices, weights.detach())


def _weight_mistakes(logits, bias, k, normalize):
    """Known mistakes of the weights, each as the (N, k) weights it gives (at its own selection)."""
    probs = torch.softmax(logits.detach().double(), dim=-1)
    scores = probs + bias.double()
    order = torch.sort(scores, dim=-1, descending=True, stable=True).indices[..., :k]

    def at(values, norm):
        chosen = values.gather(-1, order)
        return (chosen / chosen.sum(-1, keepdim=True) if norm else chosen).to(logits.dtype)

    mistakes = {"expert_bias entered the mixture weights (it may steer the selection only)": lambda: at(scores, normalize),
                "softmax over the token axis instead of the expert axis":
                    lambda: at(torch.softmax(logits.detach().double().reshape(-1, logits.shape[-1]), 0)
                               .view_as(logits), normalize)}
    if normalize:
        mistakes["weights not renormalised over the k chosen experts (normalize=True)"] = lambda: at(probs, False)
    else:
        mistakes["weights renormalised although normalize=False"] = lambda: at(probs, True)
    return mistakes


# ---------------------------------------------------------------- TopKRouter.__init__

@pytest.mark.points(2)
def test_router_structure_and_errors(impl):
    router = impl.TopKRouter(6, 4, 2)
    case = check.describe(d_model=6, n_experts=4, k=2)
    gate = getattr(router, "gate", None)
    check.that(isinstance(gate, nn.Linear) and gate.in_features == 6 and gate.out_features == 4 and gate.bias is None,
               "TopKRouter.__init__", "`gate` must be nn.Linear(d_model, n_experts, bias=False)",
               f"got {gate!r}", case=case)
    buffers = dict(router.named_buffers())
    check.that("expert_bias" in buffers and "expert_bias" not in dict(router.named_parameters()),
               "TopKRouter.__init__", "`expert_bias` must be a buffer (register_buffer), not a Parameter",
               f"buffers: {sorted(buffers)}, parameters: {sorted(dict(router.named_parameters()))}", case=case)
    check.close(buffers["expert_bias"], torch.zeros(4), unit="TopKRouter.__init__", kind="exact",
                what="expert_bias (float32 zeros of shape (E,))", case=case)
    check.equal(sorted(router.state_dict()), ["expert_bias", "gate.weight"], unit="TopKRouter.__init__",
                what="state_dict keys", case=case)
    check.equal((router.n_experts, router.k, router.normalize), (4, 2, True), unit="TopKRouter.__init__",
                what="(n_experts, k, normalize)", case=case)
    other = impl.TopKRouter(3, 5, 5, normalize=False).double()
    check.equal((other.k, other.normalize, other.expert_bias.dtype), (5, False, torch.float64),
                unit="TopKRouter.__init__", what="(k, normalize, expert_bias dtype after .double())",
                case=check.describe(d_model=3, n_experts=5, k=5, normalize=False))
    impl.TopKRouter(2, 1, 1)
    for n_experts, k in ((4, 0), (4, 5), (0, 1), (3, -1)):
        check.expect_raises(ValueError, impl.TopKRouter, 6, n_experts, k, unit="TopKRouter.__init__",
                            case=check.describe(n_experts=n_experts, k=k),
                            why="k must be in 1 … n_experts and n_experts ≥ 1")


# ---------------------------------------------------------------- TopKRouter.forward

@pytest.mark.points(3)
@examples(15)
@given(lead=st.lists(st.integers(1, 4), min_size=1, max_size=2).map(tuple), n_experts=st.integers(1, 6),
       k_pick=st.integers(0, 5), normalize=st.booleans(), bias_scale=st.sampled_from([0.0, 0.1, 1.0]),
       dtype=float_dtypes(), seed=seeds())
def test_router_matches_loop_oracle(impl, lead, n_experts, k_pick, normalize, bias_scale, dtype, seed):
    k = k_pick % n_experts + 1
    router = _router(impl, 5, n_experts, k, seed=seed, normalize=normalize, bias_scale=bias_scale, dtype=dtype)
    x = tensors.randn(lead + (5,), seed + 2, dtype)
    W, bias = router.gate.weight.detach(), router.expert_bias.clone()
    assume(O.selection_margin(x @ W.T, bias, k) > 1e-5)   # no near-tie that rounding could flip
    case = check.describe(x=x, n_experts=n_experts, k=k, normalize=normalize, expert_bias=bias)
    out = router(x)
    check.that(isinstance(out, tuple) and len(out) == 3, _R, "should return (weights, indices, logits)", case=case)
    weights, indices, logits = out
    check.close(logits, x @ W.T, unit=_R, kind="matmul", what="logits = gate(x)", case=case)
    expected_w, expected_i = O.route_loop((x @ W.T).reshape(-1, n_experts), bias, k, normalize)
    check.that(indices.dtype == torch.int64, _R, f"indices should be int64, got {indices.dtype}", case=case)
    check.close(indices, expected_i.view(lead + (k,)), unit=_R, kind="exact", what="indices", case=case,
                mistakes={"experts chosen by probability alone (expert_bias ignored in the selection)":
                          lambda: O.route_loop((x @ W.T).reshape(-1, n_experts), torch.zeros_like(bias), k,
                                               normalize)[1].view(lead + (k,)),
                          "experts chosen by logits + expert_bias instead of probs + expert_bias":
                          lambda: torch.sort((x @ W.T) + bias, dim=-1, descending=True, stable=True).indices[..., :k]})
    check.close(weights, expected_w.view(lead + (k,)), unit=_R, kind="reduction", what="weights", case=case,
                mistakes=_weight_mistakes(x @ W.T, bias, k, normalize))


@pytest.mark.points(2)
def test_router_ties_go_to_lower_index(impl):
    # An all-zero gate makes every probability 1/E: the selection is 0, 1, …, k−1.
    router = impl.TopKRouter(5, 8, 3)
    with torch.no_grad():
        router.gate.weight.zero_()
    x = tensors.randn((4, 5), 3, torch.float32)
    weights, indices, _ = router(x)
    case = check.describe(x=x, gate="all zeros", n_experts=8, k=3)
    check.close(indices, torch.tensor([[0, 1, 2]] * 4), unit=_R, kind="exact", case=case,
                what="indices when all 8 scores are equal",
                mistakes={_TIE_MISTAKE: lambda: torch.topk(torch.full((4, 8), 1 / 8), 3, dim=-1).indices})
    check.close(weights, torch.full((4, 3), 1 / 3), unit=_R, kind="reduction", case=case,
                what="weights of three equal probabilities (normalize=True)")
    # Many experts: sorting algorithms that are not stable reorder long runs of equal values.
    wide = impl.TopKRouter(5, 64, 4)
    with torch.no_grad():
        wide.gate.weight.zero_()
    _, indices, _ = wide(x)
    check.close(indices, torch.tensor([[0, 1, 2, 3]] * 4), unit=_R, kind="exact",
                case=check.describe(x=x, gate="all zeros", n_experts=64, k=4),
                what="indices when all 64 scores are equal (a sort that is not stable reorders them)",
                mistakes={_TIE_MISTAKE: lambda: torch.topk(torch.full((4, 64), 1 / 64), 4, dim=-1).indices})
    # Crafted rows (gate = identity, so logits = x): ties among some experts, and a bias that
    # lifts two tied experts above the rest (equal probabilities + equal bias stay tied).
    router = impl.TopKRouter(6, 6, 3)
    with torch.no_grad():
        router.gate.weight.copy_(torch.eye(6))
    rows = torch.tensor([[1.0, 2.0, 2.0, 0.0, 2.0, 1.0],
                         [0.0, 0.0, 0.0, 0.0, 0.0, 3.0],
                         [-1.0, 4.0, -1.0, 4.0, -1.0, -1.0],
                         [0.5, 0.5, 0.5, 0.5, 0.5, 0.5]])
    expected = torch.tensor([[1, 2, 4], [5, 0, 1], [1, 3, 0], [0, 1, 2]])
    _, indices, _ = router(rows)
    check.close(indices, expected, unit=_R, kind="exact", what="indices of rows with tied scores",
                case=check.describe(logits=rows, k=3),
                mistakes={_TIE_MISTAKE: lambda: torch.topk(rows.softmax(-1), 3, dim=-1).indices})
    with torch.no_grad():
        router.expert_bias.copy_(torch.tensor([0.0, 0.0, 0.25, 0.0, 0.25, 0.0]))
    _, indices, _ = router(torch.zeros(2, 6))
    check.close(indices, torch.tensor([[2, 4, 0]] * 2), unit=_R, kind="exact",
                what="indices of equal probabilities with expert_bias [0, 0, .25, 0, .25, 0]",
                case=check.describe(logits="all zeros", k=3))


@pytest.mark.points(3)
def test_router_bias_steers_selection_but_never_weights(impl):
    router = _router(impl, 6, 4, 2, seed=11)
    with torch.no_grad():
        router.expert_bias.copy_(torch.tensor([0.0, 0.0, 0.0, 10.0]))
    x = tensors.randn((7, 6), 12, torch.float32)
    case = check.describe(x=x, expert_bias=router.expert_bias, k=2)
    weights, indices, logits = router(x)
    check.that(bool((indices[:, 0] == 3).all()), _R, "a bias of +10 on expert 3 must put it first for every token",
               f"indices[:, 0] = {indices[:, 0].tolist()}", case=case)
    probs = torch.softmax(logits.detach(), -1)
    chosen = probs.gather(-1, indices)
    check.close(weights, chosen / chosen.sum(-1, keepdim=True), unit=_R, kind="reduction", case=case,
                what="weights (probs of the chosen experts, renormalised; the bias must not enter)",
                mistakes=_weight_mistakes(logits, router.expert_bias, 2, True))
    # The bias is added to the probabilities, not to the logits: a crafted top-1 row where
    # probs alone pick expert 0, probs + bias expert 2, and logits + bias expert 1.
    router = impl.TopKRouter(3, 3, 1)
    with torch.no_grad():
        router.gate.weight.copy_(torch.eye(3))
        router.expert_bias.copy_(torch.tensor([0.0, 0.6, 1.0]))
    row = torch.tensor([[0.0, -0.5, -3.0]])                     # probs ≈ [0.604, 0.366, 0.030]
    _, indices, _ = router(row)
    check.close(indices, torch.tensor([[2]]), unit=_R, kind="exact", what="the expert chosen (k = 1)",
                case=check.describe(logits=row, expert_bias=[0.0, 0.6, 1.0]),
                mistakes={"experts chosen by probability alone (expert_bias ignored in the selection)": torch.tensor([[0]]),
                          "experts chosen by logits + expert_bias instead of probs + expert_bias": torch.tensor([[1]])})
    # k = E: every expert is chosen whatever the bias, so each expert's weight must not move.
    for normalize in (True, False):
        router = _router(impl, 6, 5, 5, seed=13, normalize=normalize)
        x = tensors.randn((6, 6), 14, torch.float32)
        w0, i0, _ = router(x)
        with torch.no_grad():
            router.expert_bias.copy_(tensors.randn((5,), 15, scale=2.0))
        w1, i1, _ = router(x)
        check.close(_dense(w1, i1, 5), _dense(w0, i0, 5), unit=_R, kind="reduction",
                    what="each expert's weight with k = E after changing expert_bias (it must not change)",
                    case=check.describe(x=x, k=5, normalize=normalize, expert_bias=router.expert_bias))
    # The bias gets no gradient: it is a buffer outside autograd.
    w1.sum().backward()
    check.that(not router.expert_bias.requires_grad and router.expert_bias.grad is None, _R,
               "expert_bias must not take part in autograd (no requires_grad, no .grad)")


@pytest.mark.points(2)
def test_router_matches_reference(impl):
    rec = reference.load(O.TOPIC, "router")
    router = impl.TopKRouter(6, 5, 2)
    try:
        router.load_state_dict({"gate.weight": rec["gate.weight"], "expert_bias": rec["expert_bias"]})
    except RuntimeError as exc:
        check.fail("TopKRouter.__init__", "the reference state dict does not load into your router",
                   str(exc).splitlines()[0][:300], "keep the names `gate` (nn.Linear) and `expert_bias` (a buffer)")
    case = check.describe(x=rec["x"], n_experts=5, k=2, expert_bias=rec["expert_bias"])
    weights, indices, logits = router(rec["x"])
    check.close(logits, rec["logits"], unit=_R, kind="matmul", what="logits", case=case)
    check.close(indices, rec["indices"], unit=_R, kind="exact", what="indices", case=case)
    check.close(weights, rec["weights"], unit=_R, kind="reduction", what="weights (normalize=True)", case=case,
                mistakes=_weight_mistakes(rec["logits"], rec["expert_bias"], 2, True))
    raw = impl.TopKRouter(6, 5, 2, normalize=False)
    raw.load_state_dict(router.state_dict())
    weights, _, _ = raw(rec["x"])
    check.close(weights, rec["weights_unnormalized"], unit=_R, kind="reduction", what="weights (normalize=False)",
                case=case, mistakes=_weight_mistakes(rec["logits"], rec["expert_bias"], 2, False))


@pytest.mark.points(2)
def test_router_gradients(impl):
    # (k = 1 with normalize=True: the one weight is identically 1, so its gradient is exactly 0)
    for seed, (E, k, normalize) in enumerate(((5, 2, True), (4, 1, False), (4, 3, False), (3, 1, True)), start=20):
        router = _router(impl, 4, E, k, seed=seed, normalize=normalize, bias_scale=0.1)
        x = tensors.randn((3, 2, 4), seed + 5, torch.float32)
        bias = router.expert_bias.clone()
        case = check.describe(x=x, n_experts=E, k=k, normalize=normalize)
        check.grads(lambda xx, W: functional_call(router, {"gate.weight": W}, (xx,))[0],
                    lambda xx, W: O.route_loop((xx @ W.T).reshape(-1, E), bias, k, normalize)[0].view(3, 2, k),
                    [x, router.gate.weight.detach()], names=["x", "gate.weight"], unit=_R, case=case)
    # float64 finite differences through weights and logits together
    router = _router(impl, 3, 4, 2, seed=30, bias_scale=0.1, dtype=torch.float64)
    x = tensors.randn((5, 3), 31)

    def both(xx, W):
        w, _, lg = functional_call(router, {"gate.weight": W}, (xx,))
        return torch.cat([w.reshape(-1), lg.reshape(-1)])

    check.gradcheck(both, [x, router.gate.weight.detach()], unit=_R, case=check.describe(x=x, n_experts=4, k=2))


# ---------------------------------------------------------------- TopKRouter.update_bias

@pytest.mark.points(2)
def test_update_bias_rule(impl):
    _U = "TopKRouter.update_bias"
    router = impl.TopKRouter(3, 4, 2)
    bias_object = router.expert_bias
    indices = torch.tensor([[0, 1], [0, 2], [0, 1], [0, 3]])       # load [4, 2, 1, 1], mean 2
    case = check.describe(indices=indices, rate=0.5)
    load = router.update_bias(indices, 0.5)
    check.close(load, torch.tensor([4, 2, 1, 1]), unit=_U, kind="exact", what="returned load (int64 counts)",
                case=case, mistakes={"load counted from the first choice only": torch.tensor([4, 0, 0, 0])})
    check.close(router.expert_bias, torch.tensor([-0.5, 0.0, 0.5, 0.5]), unit=_U, kind="exact", case=case,
                what="expert_bias after one update from zero (rate · sign(mean load − load))",
                mistakes={"sign inverted (overloaded experts pushed up)": torch.tensor([0.5, 0.0, -0.5, -0.5]),
                          "step proportional to the load difference instead of its sign":
                              torch.tensor([-1.0, 0.0, 0.5, 0.5]),
                          "load counted from the first choice only": torch.tensor([-0.5, 0.5, 0.5, 0.5])})
    check.that(router.expert_bias is bias_object and dict(router.named_buffers())["expert_bias"] is bias_object,
               _U, "update the expert_bias buffer in place (do not replace it with a new tensor)", case=case)
    router.update_bias(indices.view(2, 2, 2), 0.5)                   # any leading shape
    check.close(router.expert_bias, torch.tensor([-1.0, 0.0, 1.0, 1.0]), unit=_U, kind="exact",
                what="expert_bias after a second update with (2, 2, 2) indices", case=case)
    check.that(not router.expert_bias.requires_grad, _U, "expert_bias must stay outside autograd", case=case)
    router.update_bias(torch.tensor([[3, 2]]), 0.0)
    check.close(router.expert_bias, torch.tensor([-1.0, 0.0, 1.0, 1.0]), unit=_U, kind="exact",
                what="expert_bias after an update with rate 0 (unchanged)", case=check.describe(rate=0.0))
    check.expect_raises(ValueError, router.update_bias, indices, -0.1, unit=_U, case=check.describe(rate=-0.1),
                        why="rate must be ≥ 0")
    wide = impl.TopKRouter(3, 6, 1).double()
    load = wide.update_bias(torch.tensor([[5], [5], [1]]), 0.25)    # mean 0.5: used experts fall, idle rise
    check.close(load, torch.tensor([0, 1, 0, 0, 0, 2]), unit=_U, kind="exact", what="load with idle experts",
                case=check.describe(indices=[[5], [5], [1]]))
    check.close(wide.expert_bias, torch.tensor([0.25, -0.25, 0.25, 0.25, 0.25, -0.25], dtype=torch.float64),
                unit=_U, kind="exact", what="float64 expert_bias after one update", case=check.describe(rate=0.25))


@pytest.mark.points(2)
def test_update_bias_balances_loads_in_simulation(impl):
    # A seeded, deterministic simulation: a top-1 router whose gate strongly prefers expert 0
    # sees 150 fresh batches of 256 tokens; after each one, update_bias(indices, 0.005).
    # Measured with the reference: on the first batch the largest load is 3.2 times the mean;
    # summed over the last 30 batches it is 1.02 times the mean (the sign-inverted mistake
    # ends at 4.0, every token on one expert). The threshold 1.15 sits well between.
    router = _router(impl, 8, 4, 1, seed=40)
    with torch.no_grad():
        router.gate.weight[0] += 0.8
    loads = []
    for step in range(150):
        x = tensors.randn((256, 8), 1000 + step, torch.float32) + 0.5
        _, indices, _ = router(x)
        loads.append(router.update_bias(indices, 0.005))
    first = float(loads[0].max()) / (256 / 4)
    late = torch.stack(loads[-30:]).sum(0).double()
    last = float(late.max() / late.mean())
    check.that(first > 2.0 and last < 1.15, "TopKRouter.update_bias",
               f"the bias updates should drive the loads toward uniform: largest load / mean load was "
               f"{first:.2f} on the first batch and {last:.2f} summed over the last 30 (expected > 2, then < 1.15)",
               f"expert_bias at the end: {[round(b, 3) for b in router.expert_bias.tolist()]}",
               case=check.describe(n_experts=4, k=1, batches=150, tokens=256, rate=0.005))


# ---------------------------------------------------------------- load_balancing_loss

def _balance_mistakes(logits, indices):
    E = logits.shape[-1]
    k = indices.shape[-1]
    right = lambda: O.balance_loss_loop(logits.detach(), indices)  # noqa: E731
    return {"the factor E (n_experts) missing": lambda: right() / E,
            "f_i divided by N instead of N·k (the share of tokens, not of assignments)": lambda: right() * k,
            "softmax over the token axis instead of the expert axis":
                lambda: E * (torch.bincount(indices.reshape(-1), minlength=E).to(logits.dtype) / indices.numel()
                             * torch.softmax(logits.detach().reshape(-1, E), 0).mean(0)).sum()}


def _distinct_indices(lead, E, k, seed):
    """(lead..., k) int64: k distinct experts per token, in random order."""
    return torch.argsort(tensors.rand(lead + (E,), seed), dim=-1)[..., :k]


@pytest.mark.points(3)
@examples(15)
@given(lead=st.lists(st.integers(1, 5), min_size=1, max_size=2).map(tuple), n_experts=st.integers(1, 6),
       k_pick=st.integers(0, 5), scale=st.sampled_from([0.5, 2.0, 8.0]), dtype=float_dtypes(), seed=seeds())
def test_load_balancing_loss_matches_oracle(impl, lead, n_experts, k_pick, scale, dtype, seed):
    k = k_pick % n_experts + 1
    logits = tensors.randn(lead + (n_experts,), seed, dtype, scale)
    indices = _distinct_indices(lead, n_experts, k, seed + 1)
    case = check.describe(router_logits=logits, expert_indices=indices)
    out = impl.load_balancing_loss(logits, indices)
    check.that(isinstance(out, torch.Tensor) and out.dim() == 0, "load_balancing_loss",
               "should return a 0-d tensor", case=case)
    check.close(out, O.balance_loss_loop(logits, indices), unit="load_balancing_loss", kind="loss", case=case,
                mistakes=_balance_mistakes(logits, indices))


@pytest.mark.points(2)
def test_load_balancing_loss_uniform_is_one_and_collapse_is_E(impl):
    _L = "load_balancing_loss"
    indices = torch.tensor([[0, 1], [0, 2], [0, 1], [3, 0], [0, 2]])       # skewed assignments
    uniform = torch.zeros(5, 4)
    check.close(impl.load_balancing_loss(uniform, indices), torch.tensor(1.0), unit=_L, kind="loss",
                what="loss of a uniform router (every P_i = 1/E)", case=check.describe(router_logits="zeros (5, 4)",
                                                                               expert_indices=indices),
                mistakes=_balance_mistakes(uniform, indices))
    logits = tensors.randn((4, 2, 4), 50, torch.float64, 2.0)
    balanced = torch.tensor([[0, 1], [2, 3]] * 4).view(4, 2, 2)             # every f_i = 1/E
    check.close(impl.load_balancing_loss(logits, balanced), torch.tensor(1.0, dtype=torch.float64), unit=_L,
                kind="loss", what="loss of perfectly balanced assignments (every f_i = 1/E)",
                case=check.describe(router_logits=logits, expert_indices=balanced),
                mistakes=_balance_mistakes(logits, balanced))
    collapsed = torch.tensor([[60.0, 0.0, 0.0, 0.0]] * 6)
    to_zero = torch.zeros(6, 1, dtype=torch.long)
    check.close(impl.load_balancing_loss(collapsed, to_zero), torch.tensor(4.0), unit=_L, kind="loss",
                what="loss when every token sends its one choice to expert 0 with probability 1 (= E)",
                case=check.describe(router_logits="rows [60, 0, 0, 0]", expert_indices=to_zero),
                mistakes=_balance_mistakes(collapsed, to_zero))
    # a router that prefers expert 0, routed top-1: more than 1, as the oracle computes
    leaning = torch.tensor([[2.0, 0.5, 0.0, 0.0], [1.5, 1.0, 0.0, 0.0], [0.0, 2.0, 0.0, 0.0]])
    top1 = leaning.argmax(-1, keepdim=True)
    value = impl.load_balancing_loss(leaning, top1)
    expected = O.balance_loss_loop(leaning, top1)
    check.that(float(expected) > 1, "grader", "the leaning case should exceed 1 (grader bug)")
    check.close(value, expected, unit=_L, kind="loss", what="loss of an unbalanced router (> 1)",
                case=check.describe(router_logits=leaning, expert_indices=top1),
                mistakes=_balance_mistakes(leaning, top1))


@pytest.mark.points(2)
def test_load_balancing_loss_gradient(impl):
    for seed, (lead, E, k) in enumerate((((6,), 4, 2), ((2, 3), 5, 1), ((1,), 3, 3)), start=60):
        logits = tensors.randn(lead + (E,), seed, torch.float32, 1.5)
        indices = _distinct_indices(lead, E, k, seed + 10)
        case = check.describe(router_logits=logits, expert_indices=indices)
        check.grads(lambda lg: impl.load_balancing_loss(lg, indices), lambda lg: O.balance_loss_loop(lg, indices),
                    [logits], names=["router_logits"], unit="load_balancing_loss", case=case)
    logits = tensors.randn((5, 4), 70)
    indices = _distinct_indices((5,), 4, 2, 71)
    check.gradcheck(lambda lg: impl.load_balancing_loss(lg, indices), [logits], unit="load_balancing_loss",
                    case=check.describe(router_logits=logits, expert_indices=indices))
    out = impl.load_balancing_loss(logits.float(), indices)
    check.that(out.dtype == torch.float32, "load_balancing_loss", f"float32 logits should give a float32 loss, "
               f"got {out.dtype}")


@pytest.mark.points(1)
def test_load_balancing_loss_rejects_mismatched_shapes(impl):
    logits = torch.zeros(4, 3)
    for indices in (torch.zeros(5, 1, dtype=torch.long), torch.zeros(2, 2, 1, dtype=torch.long)):
        check.expect_raises(ValueError, impl.load_balancing_loss, logits, indices, unit="load_balancing_loss",
                            case=check.describe(router_logits=logits, expert_indices=indices),
                            why="the leading shapes of router_logits and expert_indices differ")


# ---------------------------------------------------------------- router_z_loss

def _z_mistakes(logits):
    flat = logits.detach().reshape(-1, logits.shape[-1])
    z = torch.logsumexp(flat, -1)
    return {"not squared (the mean of logsumexp)": lambda: z.mean(),
            "summed over tokens instead of averaged": lambda: (z ** 2).sum(),
            "logsumexp over the token axis instead of the expert axis":
                lambda: (torch.logsumexp(flat, 0) ** 2).mean(),
            "the mean of squared logits instead of squared logsumexp": lambda: (flat ** 2).mean()}


@pytest.mark.points(2)
@examples(10)
@given(lead=st.lists(st.integers(1, 5), min_size=1, max_size=2).map(tuple), n_experts=st.integers(1, 6),
       scale=st.sampled_from([0.1, 1.0, 5.0]), dtype=float_dtypes(), seed=seeds())
def test_router_z_loss_matches_oracle(impl, lead, n_experts, scale, dtype, seed):
    logits = tensors.randn(lead + (n_experts,), seed, dtype, scale)
    case = check.describe(router_logits=logits)
    out = impl.router_z_loss(logits)
    check.that(isinstance(out, torch.Tensor) and out.dim() == 0, "router_z_loss", "should return a 0-d tensor",
               case=case)
    check.close(out, O.z_loss_loop(logits), unit="router_z_loss", kind="loss", case=case,
                mistakes=_z_mistakes(logits))
    check.grads(impl.router_z_loss, O.z_loss_loop, [logits], names=["router_logits"], unit="router_z_loss",
                case=case)


@pytest.mark.points(1)
def test_router_z_loss_huge_logits(impl):
    for dtype in (torch.float32, torch.float64):
        logits = torch.tensor([[1000.0, 999.0, 990.0], [-1000.0, -1002.0, -999.0], [0.0, 800.0, -800.0]], dtype=dtype)
        case = check.describe(router_logits=logits)
        out = impl.router_z_loss(logits)
        check.that(bool(torch.isfinite(out)), "router_z_loss", f"the loss of logits near ±1000 is {out.item()}",
                   "exp(1000) overflows: use torch.logsumexp, or subtract each row's max before exponentiating",
                   case=case)
        check.close(out, O.z_loss_loop(logits), unit="router_z_loss", kind="loss", case=case,
                    mistakes=_z_mistakes(logits))
        check.grads(impl.router_z_loss, O.z_loss_loop, [logits], names=["router_logits"], unit="router_z_loss",
                    case=case)
    rec = reference.load(O.TOPIC, "losses")
    case = check.describe(router_logits=rec["logits"])
    logits = rec["logits"].clone().requires_grad_(True)
    z = impl.router_z_loss(logits)
    check.close(z.detach().reshape(1), rec["z"], unit="router_z_loss", kind="loss", what="z-loss (reference)",
                case=case)
    z.backward()
    check.close(logits.grad, rec["grad_z"], unit="router_z_loss", kind="gradient", case=case,
                what="gradient of the z-loss (reference)")


@pytest.mark.points(1)
def test_load_balancing_loss_matches_reference(impl):
    rec = reference.load(O.TOPIC, "losses")
    case = check.describe(router_logits=rec["logits"], expert_indices=rec["indices"])
    logits = rec["logits"].clone().requires_grad_(True)
    loss = impl.load_balancing_loss(logits, rec["indices"])
    check.close(loss.detach().reshape(1), rec["balance"], unit="load_balancing_loss", kind="loss", case=case,
                what="loss (reference)")
    loss.backward()
    check.close(logits.grad, rec["grad_balance"], unit="load_balancing_loss", kind="gradient", case=case,
                what="gradient (reference)")


# ---------------------------------------------------------------- expert_capacity

# (n_tokens, n_experts, k, capacity_factor): factors exact in binary, so that every order of
# the arithmetic gives the same integer after the ceiling (the grader checks that below).
_CAPACITY_CASES = [(8, 4, 2, 1.0), (10, 4, 1, 1.0), (10, 4, 2, 1.25), (7, 3, 2, 1.5), (1, 8, 1, 1.0),
                   (5, 2, 2, 0.5), (6, 4, 2, 2.0), (12, 8, 2, 0.25), (100, 7, 3, 1.125), (9, 3, 3, 1.0)]


@pytest.mark.points(2)
def test_expert_capacity(impl):
    for n, E, k, cf in _CAPACITY_CASES:
        right = O.capacity_exact(n, E, k, cf)
        orders = {math.ceil(cf * n * k / E), math.ceil(n * k * cf / E), math.ceil(cf * (n * k / E)),
                  math.ceil(cf * n / E * k)}
        check.that(orders == {right}, "grader", f"capacity case {(n, E, k, cf)} is order-sensitive (grader bug)")
        case = check.describe(n_tokens=n, n_experts=E, k=k, capacity_factor=cf)
        got = impl.expert_capacity(n, E, k, cf)
        check.that(isinstance(got, int) and not isinstance(got, bool), "expert_capacity",
                   f"should return a Python int, got {type(got).__name__}", case=case)
        check.equal(got, right, unit="expert_capacity", case=case,
                    mistakes={"rounded down instead of up (math.floor)": math.floor(Fraction(cf) * n * k / E),
                              "k left out (capacity for N assignments, not N·k)": O.capacity_exact(n, E, 1, cf),
                              "rounded to nearest instead of up": round(cf * n * k / E)})
    for n, cf, why in ((4, 0.0, "capacity_factor must be > 0"), (4, -1.0, "capacity_factor must be > 0"),
                       (0, 1.0, "n_tokens must be at least 1")):
        check.expect_raises(ValueError, impl.expert_capacity, n, 4, 2, cf, unit="expert_capacity",
                            case=check.describe(n_tokens=n, n_experts=4, k=2, capacity_factor=cf), why=why)

