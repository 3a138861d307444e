"""Graders for 07_moe (part 2): MoELayer — construction, capacity and dropping, dispatch.

Evidence:
  - golden data (reference/07_moe): a layer with capacity, a shared expert and a nonzero
    balancing bias, loaded by state dict: output, logits, indices, kept, every gradient;
  - the per-token loop oracle (moe_oracle.moe_loop): routing, the capacity rule served rank
    by rank, and the weighted sum, one token and one expert at a time, from the parameters
    alone — values and the gradients of x and every parameter;
  - properties: k = E with equal weights is the mean of the experts; dropped tokens get zero
    output and zero gradient; the bias never changes the output when every expert is chosen;
    each expert is called at most once per forward, on exactly its kept tokens (vectorised
    dispatch); batch rows are independent without a capacity; input forms (batch 1, T = 1,
    2-D, non-contiguous, float64) and a float64 gradcheck.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import assume, given
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

import moe_oracle as O
from llmlab.testing import check, properties, reference, tensors
from llmlab.testing.strategies import examples, float_dtypes, seeds

_F = "MoELayer.forward"
# ---------------------------------------------------------------- MoELayer.__init__

@pytest.mark.points(1)
def test_moe_structure_and_errors(impl):
    _I = "MoELayer.__init__"
    moe = impl.MoELayer(6, 4, 2, 10)
    case = check.describe(d_model=6, n_experts=4, k=2, d_hidden=10)
    router = getattr(moe, "router", None)
    check.that(isinstance(router, impl.TopKRouter) and router.k == 2 and router.n_experts == 4 and router.normalize,
               _I, "`router` must be TopKRouter(d_model, n_experts, k, normalize)", case=case)
    experts = getattr(moe, "experts", None)
    check.that(isinstance(experts, nn.ModuleList) and len(experts) == 4
               and all(isinstance(e, impl.SwiGLUExpert) and e.w1.out_features == 10 for e in experts),
               _I, "`experts` must be an nn.ModuleList of n_experts SwiGLUExpert(d_model, d_hidden)", case=case)
    check.that(getattr(moe, "shared", "missing") is None and moe.capacity_factor is None, _I,
               "without shared_expert, `shared` is None; capacity_factor defaults to None", case=case)
    other = impl.MoELayer(6, 3, 3, 5, capacity_factor=1.5, shared_expert=True, normalize=False)
    check.that(isinstance(other.shared, impl.SwiGLUExpert) and other.shared.w1.out_features == 5
               and other.capacity_factor == 1.5 and other.router.normalize is False, _I,
               "shared_expert=True makes `shared` a SwiGLUExpert(d_model, d_hidden); keep capacity_factor; "
               "pass normalize to the router", case=check.describe(capacity_factor=1.5, shared_expert=True,
                                                                    normalize=False))
    expected_keys = {"router.gate.weight", "router.expert_bias"} | {
        f"{p}.{w}.weight" for p in ("experts.0", "experts.1", "experts.2", "shared") for w in ("w1", "w2", "w3")}
    check.equal(set(other.state_dict()), expected_keys, unit=_I, what="state_dict keys",
                case=check.describe(n_experts=3, shared_expert=True))
    for kwargs, why in ((dict(capacity_factor=0.0), "capacity_factor must be > 0"),
                        (dict(capacity_factor=-1.0), "capacity_factor must be > 0"),
                        (dict(k=5), "k must be in 1 … n_experts (TopKRouter)")):
        args = dict(d_model=6, n_experts=4, k=2, d_hidden=8) | kwargs
        check.expect_raises(ValueError, impl.MoELayer, unit=_I, case=check.describe(**args), why=why, **args)


# ---------------------------------------------------------------- MoELayer.forward

@pytest.mark.points(4)
@examples(12)
@given(B=st.integers(1, 3), T=st.integers(1, 5), n_experts=st.integers(1, 5), k_pick=st.integers(0, 4),
       cf=st.sampled_from([None, 0.5, 1.0, 1.25, 2.0]), shared=st.booleans(), normalize=st.booleans(),
       dtype=float_dtypes(), seed=seeds())
def test_moe_matches_loop_oracle(impl, B, T, n_experts, k_pick, cf, shared, normalize, dtype, seed):
    k = k_pick % n_experts + 1
    moe, cfg = O.random_layer(impl, E=n_experts, k=k, cf=cf, shared=shared, normalize=normalize, seed=seed, dtype=dtype)
    x = tensors.randn((B, T, 6), seed + 2, dtype)
    assume(O.selection_margin(x.reshape(-1, 6) @ moe.router.gate.weight.detach().T, moe.router.expert_bias, k) > 1e-5)
    case = check.describe(x=x, **cfg)
    out = moe(x)
    check.that(isinstance(out, tuple) and len(out) == 4, _F,
               "should return MoEOutput(output, router_logits, expert_indices, kept)", case=case)
    expected, _, indices, kept = O.layer_oracle(moe, cfg, x)
    check.close(out.expert_indices, indices, unit=_F, kind="exact", what="expert_indices (N, k)", case=case)
    check.close(out.router_logits, x.reshape(-1, 6) @ moe.router.gate.weight.detach().T, unit=_F, kind="matmul",
                what="router_logits (N, E)", case=case)
    check.that(out.kept.dtype == torch.bool, _F, f"kept should be a bool tensor, got {out.kept.dtype}", case=case)
    if cf is not None:
        check.close(out.kept, kept, unit=_F, kind="exact", what="kept (N, k)", case=case,
                    mistakes=O.kept_mistakes(indices, cfg, B * T, T))
    else:
        check.close(out.kept, kept, unit=_F, kind="exact", what="kept (all True without a capacity)", case=case)
    check.close(out.output, expected, unit=_F, kind="model", case=case, mistakes=O.output_mistakes(moe, cfg, x))


@pytest.mark.points(3)
def test_moe_capacity_serves_ranks_in_order(impl):
    # gate = identity (d_model = E = 3), so each token's row of x is its logits:
    # choices t0 -> (0, 1), t1 -> (0, 2), t2 -> (1, 0), t3 -> (0, 1); capacity ceil(1·4·2/3) = 3.
    # Rank by rank: expert 0 takes t0, t1, t3 (first choices), so t2's second choice is dropped.
    # Token by token it would drop t3's first choice instead; rounding down would drop more.
    moe = impl.MoELayer(3, 3, 2, 4, capacity_factor=1.0)
    tensors.randomize_parameters(moe, 80, 0.5)
    with torch.no_grad():
        moe.router.gate.weight.copy_(torch.eye(3))
    x = torch.tensor([[2.0, 1.0, 0.0], [2.0, 0.0, 1.0], [1.0, 2.0, 0.0], [2.0, 1.0, 0.0]])
    cfg = dict(n_experts=3, k=2, capacity_factor=1.0, normalize=True, shared=False)
    case = check.describe(logits=x, k=2, capacity_factor=1.0, capacity=3)
    out = moe(x)
    check.close(out.expert_indices, torch.tensor([[0, 1], [0, 2], [1, 0], [0, 1]]), unit=_F, kind="exact",
                what="expert_indices", case=case)
    expected_kept = torch.tensor([[True, True], [True, True], [True, False], [True, True]])
    check.close(out.kept, expected_kept, unit=_F, kind="exact", what="kept", case=case,
                mistakes=O.kept_mistakes(out.expert_indices, cfg, 4))
    check.close(out.output, O.layer_oracle(moe, cfg, x)[0], unit=_F, kind="model", case=case,
                mistakes=O.output_mistakes(moe, cfg, x))
    # The same four tokens as a (2, 2, 3) batch: the capacity counts all N = B·T = 4 tokens.
    out = moe(x.view(2, 2, 3))
    check.close(out.kept, expected_kept, unit=_F, kind="exact", what="kept for the tokens as a (2, 2, 3) batch",
                case=check.describe(x=x.view(2, 2, 3), capacity_factor=1.0),
                mistakes=O.kept_mistakes(out.expert_indices, cfg, 4, seq_len=2))
    # capacity_factor 1.5: capacity ceil(4) = 4, nothing dropped; 0.5: ceil(4/3) = 2.
    for cf, kept in ((1.5, torch.ones(4, 2, dtype=torch.bool)),
                     (0.5, torch.tensor([[True, True], [True, True], [True, False], [False, False]]))):
        other = impl.MoELayer(3, 3, 2, 4, capacity_factor=cf)
        other.load_state_dict(moe.state_dict())
        out = other(x)
        check.close(out.kept, kept, unit=_F, kind="exact", what=f"kept with capacity_factor {cf}",
                    case=check.describe(logits=x, k=2, capacity_factor=cf),
                    mistakes=O.kept_mistakes(out.expert_indices, dict(cfg, capacity_factor=cf), 4))


@pytest.mark.points(2)
def test_moe_dropped_tokens_get_zero_output_and_gradient(impl):
    # Top-1, all four tokens to expert 0 (bias +5 on it), capacity ceil(0.5·4·1/2) = 1:
    # token 0 is served, tokens 1-3 are dropped entirely.
    for shared in (False, True):
        moe, cfg = O.random_layer(impl, C=5, E=2, k=1, cf=0.5, shared=shared, seed=90)
        with torch.no_grad():
            moe.router.expert_bias.copy_(torch.tensor([5.0, 0.0]))
        x = tensors.randn((4, 5), 91, torch.float32).requires_grad_(True)
        case = check.describe(x=x, n_experts=2, k=1, capacity_factor=0.5, shared_expert=shared)
        out = moe(x)
        check.close(out.kept, torch.tensor([[True], [False], [False], [False]]), unit=_F, kind="exact",
                    what="kept", case=case, mistakes=O.kept_mistakes(out.expert_indices, cfg, 4))
        base = moe.shared(x).detach() if shared else torch.zeros(4, 5)
        check.close(out.output[1:], base[1:], unit=_F, kind="exact" if not shared else "model", case=case,
                    what="output of the dropped tokens (0, or the shared expert's output alone)",
                    mistakes={O.NO_DROP: lambda: O.layer_oracle(moe, cfg, x.detach(), kept_rule="none")[0][1:]})
        check.close(out.output[0], O.layer_oracle(moe, cfg, x.detach())[0][0], unit=_F, kind="model",
                    what="output of the served token", case=case)
        if not shared:
            out.output.sum().backward()
            check.close(x.grad[1:], torch.zeros(3, 5), unit=_F, kind="exact", case=case,
                        what="gradient w.r.t. the dropped tokens (they take no part in the layer)")
            check.that(bool(x.grad[0].abs().sum() > 0), _F, "the served token gets no gradient", case=case)


@pytest.mark.points(2)
def test_moe_k_equals_E_with_equal_weights_is_mean_of_experts(impl):
    for normalize, dtype in ((True, torch.float32), (False, torch.float64)):
        moe, _ = O.random_layer(impl, E=4, k=4, normalize=normalize, seed=100, bias_scale=1.0, dtype=dtype)
        with torch.no_grad():
            moe.router.gate.weight.zero_()                   # every probability 1/E, so every weight 1/E
        x = tensors.randn((2, 3, 6), 101, dtype)
        case = check.describe(x=x, gate="all zeros", n_experts=4, k=4, normalize=normalize)
        mean = torch.stack([e(x) for e in moe.experts]).mean(0).detach()
        check.close(moe(x).output, mean, unit=_F, kind="model", case=case,
                    what="output with k = E and equal weights (the mean of the experts)",
                    mistakes={"expert outputs summed without their weights": lambda: mean * 4})


@pytest.mark.points(3)
def test_moe_gradients_match_loop_oracle(impl):
    # Gradients w.r.t. x and every parameter against the loop oracle, with dropping, a shared
    # expert and both normalisation rules; then that gradients do reach the router.
    for seed, (E, k, cf, shared, normalize) in enumerate(((4, 2, 1.0, True, True), (3, 1, 0.5, False, False),
                                                          (5, 3, None, False, True)), start=110):
        moe, cfg = O.random_layer(impl, E=E, k=k, cf=cf, shared=shared, normalize=normalize, seed=seed)
        x = tensors.randn((2, 4, 6), seed + 3, torch.float32)
        names = sorted(n for n, _ in moe.named_parameters())
        bias = moe.router.expert_bias.detach().clone()
        case = check.describe(x=x, **cfg)
        check.grads(lambda xx, *ps: functional_call(moe, dict(zip(names, ps)), (xx,)).output,
                    lambda xx, *ps: O.moe_loop(dict(zip(names, ps)), xx, bias=bias, **cfg)[0],
                    [x] + [dict(moe.named_parameters())[n].detach() for n in names], names=["x"] + names,
                    unit=_F, case=case)
    moe, _ = O.random_layer(impl, E=4, k=2, cf=1.0, seed=120)
    x = tensors.randn((3, 4, 6), 121, torch.float32)
    moe(x).output.pow(2).sum().backward()
    grad = moe.router.gate.weight.grad
    check.that(grad is not None and bool(grad.abs().sum() > 0), _F,
               "no gradient reaches router.gate.weight: the mixture weights must stay in the graph "
               "(do not detach them or rebuild them from Python numbers)", case=check.describe(x=x, k=2))


@pytest.mark.points(2)
def test_moe_dispatch_is_vectorised(impl):
    moe, cfg = O.random_layer(impl, E=4, k=2, cf=1.0, shared=True, seed=130)
    x = tensors.randn((3, 4, 6), 131, torch.float32)
    tokens = x.reshape(-1, 6)
    _, _, indices, kept = O.layer_oracle(moe, cfg, x)
    calls: list[tuple[int, torch.Tensor]] = []
    cls = type(moe.experts[0])
    original = cls.forward

    def counting(self, inp):
        calls.append((id(self), inp.detach().clone()))
        return original(self, inp)

    cls.forward = counting
    try:
        moe(x)
    finally:
        cls.forward = original
    case = check.describe(x=x, n_experts=4, k=2, capacity_factor=1.0, shared_expert=True)
    for e, expert in enumerate(moe.experts):
        mine = [inp for who, inp in calls if who == id(expert)]
        check.that(len(mine) <= 1, _F, f"expert {e} was called {len(mine)} times in one forward; call each expert "
                   "at most once, on all its tokens together (no Python loop over tokens or ranks)", case=case)
        received = []
        for inp in mine:
            for row in inp.reshape(-1, 6):
                hit = [t for t in range(tokens.shape[0]) if torch.equal(tokens[t], row)]
                received.append(hit[0] if hit else -1)
        expected = sorted(t for t in range(tokens.shape[0]) for j in range(2)
                          if int(indices[t, j]) == e and bool(kept[t, j]))
        check.equal(sorted(received), expected, unit=_F, case=case,
                    what=f"the tokens expert {e} received (-1: a row that is no token of x); it must get exactly "
                         f"the tokens whose kept assignments chose it")
    shared = [inp for who, inp in calls if who == id(moe.shared)]
    check.that(len(shared) == 1 and shared[0].reshape(-1, 6).shape[0] == 12, _F,
               "the shared expert should be called once, on all N tokens",
               f"it was called {len(shared)} times", case=case)


@pytest.mark.points(2)
def test_moe_matches_reference(impl):
    rec = reference.load(O.TOPIC, "moe")
    moe = impl.MoELayer(6, 4, 2, 8, capacity_factor=1.25, shared_expert=True)
    try:
        moe.load_state_dict({k[len("param."):]: v for k, v in rec.items() if k.startswith("param.")})
    except RuntimeError as exc:
        check.fail("MoELayer.__init__", "the reference state dict does not load into your layer",
                   str(exc).splitlines()[0][:300], "keep the names router (gate, expert_bias), experts, shared")
    x = rec["x"].clone().requires_grad_(True)
    case = check.describe(x=x, n_experts=4, k=2, capacity_factor=1.25, shared_expert=True)
    out = moe(x)
    check.close(out.router_logits, rec["logits"], unit=_F, kind="matmul", what="router_logits", case=case)
    check.close(out.expert_indices, rec["indices"], unit=_F, kind="exact", what="expert_indices", case=case)
    cfg = dict(n_experts=4, k=2, capacity_factor=1.25, normalize=True, shared=True)
    check.close(out.kept, rec["kept"], unit=_F, kind="exact", what="kept", case=case,
                mistakes=O.kept_mistakes(rec["indices"], cfg, 10, seq_len=5))
    check.close(out.output, rec["output"], unit=_F, kind="model", case=case)
    (out.output * rec["upstream"]).sum().backward()
    check.close(x.grad, rec["grad.x"], unit=_F, kind="gradient", what="gradient w.r.t. x", case=case)
    for name, p in moe.named_parameters():
        check.that(p.grad is not None, _F, f"no gradient reaches {name}", case=case)
        check.close(p.grad, rec[f"grad.{name}"], unit=_F, kind="gradient", what=f"gradient w.r.t. {name}", case=case)


@pytest.mark.points(2)
def test_moe_input_forms(impl):
    moe, cfg = O.random_layer(impl, E=4, k=2, cf=1.25, shared=True, seed=140)
    # batch 1 with T = 1 (most experts get no token), a 2-D (N, C) input, a non-contiguous view
    for x in (tensors.randn((1, 1, 6), 141, torch.float32), tensors.randn((7, 6), 142, torch.float32),
              tensors.randn((6, 3, 2), 143, torch.float32).transpose(0, 2)):
        case = check.describe(x=x, contiguous=x.is_contiguous(), **cfg)
        out = moe(x)
        check.that(out.output.shape == x.shape and out.output.dtype == x.dtype, _F,
                   f"output should have x's shape {tuple(x.shape)} and dtype, got {tuple(out.output.shape)}, "
                   f"{out.output.dtype}", case=case)
        check.close(out.output, O.layer_oracle(moe, cfg, x)[0], unit=_F, kind="model", case=case)
    moe64 = moe.double()
    x = tensors.randn((2, 5, 6), 144)
    out = moe64(x)
    check.close(out.output, O.layer_oracle(moe64, cfg, x)[0], unit=_F, kind="model", what="float64 output",
                case=check.describe(x=x, **cfg))
    # without a capacity the tokens do not interact: each batch row alone gives the same output
    free, _ = O.random_layer(impl, E=4, k=2, seed=145)
    x = tensors.randn((3, 4, 6), 146, torch.float32)
    properties.batch_independent(lambda t: free(t).output, x, unit=_F, kind="model", case=check.describe(x=x))


@pytest.mark.points(1)
def test_moe_bias_never_changes_output_when_every_expert_is_chosen(impl):
    moe, _ = O.random_layer(impl, E=3, k=3, seed=150, bias_scale=0.0)
    x = tensors.randn((2, 4, 6), 151, torch.float32)
    before = moe(x).output.detach()
    with torch.no_grad():
        moe.router.expert_bias.copy_(torch.tensor([3.0, 0.2, 0.5]))
    case = check.describe(x=x, n_experts=3, k=3, expert_bias=[3.0, 0.2, 0.5])
    probs = torch.softmax(x.reshape(-1, 6) @ moe.router.gate.weight.detach().T, -1)
    scores = probs + moe.router.expert_bias
    scored = scores / scores.sum(-1, keepdim=True)                              # (probs + b) renormalised
    outs = torch.stack([e(x.reshape(-1, 6)) for e in moe.experts], 1).detach()  # (N, E, C)
    check.close(moe(x).output, before, unit=_F, kind="model", case=case,
                what="output with k = E after changing expert_bias (the bias may only steer the selection)",
                mistakes={"expert_bias entered the mixture weights": (scored[..., None] * outs).sum(1).view(2, 4, 6)})


@pytest.mark.points(1)
def test_moe_gradcheck_float64(impl):
    moe, cfg = O.random_layer(impl, C=3, E=3, k=2, H=4, cf=1.0, shared=True, seed=160, dtype=torch.float64)
    x = tensors.randn((5, 3), 161)
    names = ["router.gate.weight", "experts.1.w1.weight", "shared.w2.weight"]
    params = dict(moe.named_parameters())
    assume_ok = O.selection_margin(x @ params["router.gate.weight"].detach().T, moe.router.expert_bias, 2) > 1e-3
    check.that(assume_ok, "grader", "the gradcheck case has a near-tie (grader bug)")

    def fn(xx, *ps):
        return functional_call(moe, dict(zip(names, ps)), (xx,)).output

    check.gradcheck(fn, [x] + [params[n].detach() for n in names], unit=_F, case=check.describe(x=x, **cfg))
