"""Graders for 12_lora: LoRALinear (construction, forward, delta_weight), merge_lora and
unmerge_lora, apply_lora, trainable_fraction, lora_state_dict and load_lora_state_dict.

Evidence per unit:
  - golden data (reference/12_lora): a LoRALinear with set weights, its output and the
    gradients of x, A and B;
  - independent oracles: the adapted layer written from its tensors (`lora_oracle.lora_forward`)
    for values and gradients, float64 finite differences, parameter counts from shapes;
  - properties: the output equals the base output at initialisation, grad(A) = 0 and
    grad(B) ≠ 0 there, merged equals unmerged, unmerge restores the weights, merging twice
    is merging once, only the adapters train, the adapter state dict round trip, the
    uniform law of A (chi-square, stated rate).
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.func import functional_call

import lora_oracle as O
from llmlab.testing import check, reference, stats, tensors

TOPIC = "12_lora"
SWAPPED = "B random and A zero (the initialisations of A and B swapped)"
SCALE_MISTAKES = "scale r/α instead of α/r"


def _layer(impl, in_f=5, out_f=4, r=2, alpha=4.0, seed=0, dtype=torch.float32, bias=True, dropout=0.0,
           random_adapter=True):
    base = O.linear(in_f, out_f, seed, dtype, bias)
    layer = impl.LoRALinear(base, r, alpha, dropout)
    if random_adapter:
        O.randomize_adapters(layer, seed + 100)
    return layer


def _forward_mistakes(x, layer):
    W, b, A, B = layer.base.weight, layer.base.bias, layer.lora_A, layer.lora_B
    r, alpha = layer.r, layer.alpha
    return {SCALE_MISTAKES: lambda: O.lora_forward(x, W, b, A, B, r / alpha),
            "update not scaled (scale 1 instead of α/r)": lambda: O.lora_forward(x, W, b, A, B, 1.0),
            "scale α instead of α/r": lambda: O.lora_forward(x, W, b, A, B, alpha),
            "base output left out": lambda: O.lora_forward(x, W * 0, None, A, B, alpha / r)}


# ---------------------------------------------------------------- LoRALinear.__init__

@pytest.mark.points(2)
def test_lora_linear_attributes(impl):
    for dtype, bias, (in_f, out_f, r, alpha) in ((torch.float32, True, (5, 4, 2, 4.0)),
                                                 (torch.float64, False, (3, 7, 1, 16)),
                                                 (torch.float32, True, (6, 6, 6, 2.5))):
        base = O.linear(in_f, out_f, 1, dtype, bias)
        weight_before = base.weight.detach().clone()
        case = check.describe(base=f"nn.Linear({in_f}, {out_f}, bias={bias}, dtype={dtype})", r=r, alpha=alpha)
        layer = impl.LoRALinear(base, r, alpha)
        check.that(getattr(layer, "base", None) is base, "LoRALinear.__init__",
                   "self.base must be the very nn.Linear passed in (not a copy)", case=case)
        check.close(base.weight, weight_before, unit="LoRALinear.__init__", kind="exact", case=case,
                    what="base.weight (wrapping must not change the pretrained weight)")
        frozen = [n for n, p in base.named_parameters() if p.requires_grad]
        check.that(not frozen, "LoRALinear.__init__", f"the base layer must be frozen; still trainable: {frozen}",
                   case=case)
        check.equal((layer.r, layer.alpha), (r, alpha), unit="LoRALinear.__init__", what="(r, alpha)", case=case)
        hint = "known mistake: " + SCALE_MISTAKES if layer.scaling == r / alpha != alpha / r else ""
        check.that(isinstance(layer.scaling, float) and layer.scaling == alpha / r, "LoRALinear.__init__",
                   f"scaling should be the float alpha / r = {alpha / r}, got {layer.scaling!r}", hint, case=case)
        for name, shape in (("lora_A", (r, in_f)), ("lora_B", (out_f, r))):
            p = getattr(layer, name, None)
            check.that(isinstance(p, nn.Parameter), "LoRALinear.__init__", f"{name} must be an nn.Parameter",
                       case=case)
            check.that(tuple(p.shape) == shape and p.dtype == dtype and p.requires_grad, "LoRALinear.__init__",
                       f"{name} should be a trainable {shape} parameter of dtype {dtype}",
                       f"got shape {tuple(p.shape)}, dtype {p.dtype}, requires_grad {p.requires_grad}", case=case)
        hint = "known mistake: " + SWAPPED if bool((layer.lora_A == 0).all()) else ""
        check.that(bool((layer.lora_B == 0).all()), "LoRALinear.__init__", "lora_B must start at zero", hint, case=case)
        check.that(isinstance(layer.dropout, nn.Dropout) and layer.dropout.p == 0.0 and layer.merged is False,
                   "LoRALinear.__init__", "dropout should be nn.Dropout(0.0) by default and merged False", case=case)
        trainable = sorted(n for n, p in layer.named_parameters() if p.requires_grad)
        check.equal(trainable, ["lora_A", "lora_B"], unit="LoRALinear.__init__",
                    what="the parameters that require grad", case=case)
    check.equal(impl.LoRALinear(nn.Linear(3, 2), 1, 1, dropout=0.25).dropout.p, 0.25, unit="LoRALinear.__init__",
                what="dropout probability", case=check.describe(dropout=0.25))


@pytest.mark.points(2)
def test_lora_a_is_uniform_and_b_zero(impl):
    # 4096 entries of A in 20 equal-width bins over ±1/sqrt(in) (equal probability under the
    # uniform law): chi-square at a false-failure rate of 1e-6.
    torch.manual_seed(0)
    in_f, r = 256, 16
    layer = impl.LoRALinear(nn.Linear(in_f, 8), r, 16)
    A = layer.lora_A.detach().double().flatten()
    bound = 1 / math.sqrt(in_f)
    case = check.describe(in_features=in_f, r=r)
    hint = "known mistake: " + SWAPPED if bool((A == 0).all()) else ""
    check.that(bool((layer.lora_B == 0).all()), "LoRALinear.__init__", "lora_B must start at zero", hint, case=case)
    check.that(bool((A.abs() <= bound).all()) and float(A.std()) > 0, "LoRALinear.__init__",
               f"lora_A must be drawn uniformly from [−1/sqrt(in), 1/sqrt(in)] = ±{bound:.4f}",
               f"its values lie in [{float(A.min()):.4f}, {float(A.max()):.4f}], standard deviation {float(A.std()):.4f}",
               hint, case=case)
    counts = torch.histc(A, bins=20, min=-bound, max=bound).long().tolist()
    stats.chi_square(counts, [1 / 20] * 20, unit="LoRALinear.__init__", rate=1e-6, case=case,
                     what="lora_A does not look uniform on ±1/sqrt(in)")
    torch.manual_seed(1)
    other = impl.LoRALinear(nn.Linear(in_f, 8), r, 16).lora_A.detach().double().flatten()
    check.that(not torch.equal(other, A), "LoRALinear.__init__", "lora_A must be drawn from the global RNG",
               "two layers made after different torch.manual_seed calls have the same A", case=case)


@pytest.mark.points(1)
def test_lora_linear_rejects_bad_arguments(impl):
    base = nn.Linear(4, 3)
    cases = [(TypeError, dict(base=nn.Conv1d(4, 3, 1)), "base must be an nn.Linear"),
             (TypeError, dict(base=nn.Sequential(nn.Linear(4, 3))), "base must be an nn.Linear"),
             (ValueError, dict(r=0), "r must be a positive int"), (ValueError, dict(r=-2), "r must be a positive int"),
             (ValueError, dict(r=2.0), "r must be an int"), (ValueError, dict(r=True), "a bool is not a rank"),
             (ValueError, dict(alpha=0), "alpha must be positive"), (ValueError, dict(alpha=-1.5), "alpha must be positive"),
             (ValueError, dict(alpha=True), "a bool is not an alpha"), (ValueError, dict(alpha="8"), "alpha is a number"),
             (ValueError, dict(dropout=1.0), "dropout in [0, 1)"), (ValueError, dict(dropout=-0.1), "dropout in [0, 1)")]
    for error, change, why in cases:
        args = {**dict(base=base, r=2, alpha=4.0), **change}
        check.expect_raises(error, impl.LoRALinear, unit="LoRALinear.__init__", why=why,
                            case=check.describe(**{k: (repr(v) if isinstance(v, nn.Module) else v) for k, v in change.items()}),
                            **args)
    for change in (dict(r=1, alpha=1), dict(alpha=0.5), dict(dropout=0.0), dict(dropout=0.999)):
        impl.LoRALinear(nn.Linear(4, 3), **{**dict(r=2, alpha=4.0), **change})   # allowed: must not raise


# ---------------------------------------------------------------- LoRALinear.forward

@pytest.mark.points(2)
def test_output_equals_base_at_init(impl):
    # B = 0: the adapted layer computes exactly what the pretrained one did, for every input form
    for seed, dtype, shape in ((0, torch.float32, (3, 4, 5)), (1, torch.float64, (1, 1, 5)), (2, torch.float32, (5,)),
                               (3, torch.float32, (2, 5))):
        layer = _layer(impl, seed=seed, dtype=dtype, random_adapter=False)
        x = tensors.randn(shape, seed + 10, dtype)
        case = check.describe(x=x, dtype=dtype)
        out = layer(x)
        # B = 0 makes the update exactly zero; "matmul" still accepts forming W + ΔW first
        check.close(out, layer.base(x), unit="LoRALinear.forward", kind="matmul", case=case,
                    what="output at initialisation (B = 0, so it must equal base(x))")
    x = tensors.randn((5, 3), 7).float().t()                        # non-contiguous (3, 5)
    layer = _layer(impl, seed=4, random_adapter=False)
    check.close(layer(x), layer.base(x), unit="LoRALinear.forward", kind="matmul",
                case=check.describe(x=x, contiguous=False), what="output at initialisation")


@pytest.mark.points(2)
def test_grad_a_zero_and_grad_b_nonzero_at_init(impl):
    layer = _layer(impl, in_f=6, out_f=5, r=3, alpha=6, seed=3, random_adapter=False)
    x = tensors.randn((4, 6), 31).float()
    upstream = tensors.randn((4, 5), 32).float()
    (layer(x) * upstream).sum().backward()
    case = check.describe(x=x, r=3, alpha=6)
    A, B = layer.lora_A, layer.lora_B
    check.that(A.grad is not None and B.grad is not None, "LoRALinear.forward", "no gradient reaches lora_A or lora_B",
               case=case)
    swapped = bool((A.detach() == 0).all())
    check.that(bool((A.grad == 0).all()), "LoRALinear.forward",
               "at initialisation grad(lora_A) must be exactly 0 (it is multiplied by B = 0)",
               f"max |grad A| = {float(A.grad.abs().max()):.3g}", "known mistake: " + SWAPPED if swapped else "", case=case)
    expected_b = layer.scaling * upstream.T @ (x @ A.detach().T)        # (out, r)
    check.that(bool((B.grad != 0).any()), "LoRALinear.forward",
               "at initialisation grad(lora_B) must be non-zero: B is what starts learning",
               "known mistake: " + SWAPPED if swapped else "", case=case)
    check.close(B.grad, expected_b, unit="LoRALinear.forward", kind="gradient", case=case,
                what="grad(lora_B) at initialisation = scaling · upstreamᵀ (x Aᵀ)")
    check.that(layer.base.weight.grad is None, "LoRALinear.forward", "the frozen base weight must get no gradient",
               case=case)


@pytest.mark.points(3)
def test_forward_matches_oracle(impl):
    # α ≠ r everywhere, so α/r, r/α, α and 1 all differ
    for seed, (in_f, out_f, r, alpha), dtype, shape, bias in (
            (0, (5, 4, 2, 8.0), torch.float32, (3, 5), True),
            (1, (7, 3, 4, 2), torch.float64, (2, 3, 7), False),
            (2, (4, 6, 1, 3.0), torch.float32, (4,), True),
            (3, (8, 8, 8, 32), torch.float64, (1, 1, 8), True)):
        layer = _layer(impl, in_f, out_f, r, alpha, seed, dtype, bias)
        x = tensors.randn(shape, seed + 20, dtype)
        case = check.describe(x=x, r=r, alpha=alpha, bias=bias)
        expected = O.lora_forward(x, layer.base.weight, layer.base.bias, layer.lora_A, layer.lora_B, alpha / r)
        check.close(layer(x), expected, unit="LoRALinear.forward", kind="matmul", case=case,
                    what="base(x) + (α/r) · x Aᵀ Bᵀ", mistakes=_forward_mistakes(x, layer))


@pytest.mark.points(2)
def test_gradients_match_oracle(impl):
    layer = _layer(impl, 6, 5, 3, 12.0, seed=5)
    x = tensors.randn((2, 4, 6), 51).float()
    W, b = layer.base.weight.detach(), layer.base.bias.detach()
    names = ["x", "lora_A", "lora_B"]
    check.grads(lambda x_, A, B: functional_call(layer, {"lora_A": A, "lora_B": B}, (x_,)),
                lambda x_, A, B: O.lora_forward(x_, W, b, A, B, 4.0),
                [x, layer.lora_A.detach(), layer.lora_B.detach()], names=names, unit="LoRALinear.forward",
                case=check.describe(x=x, r=3, alpha=12.0),
                mistakes={SCALE_MISTAKES: lambda x_, A, B: O.lora_forward(x_, W, b, A, B, 0.25)})
    # float64 finite differences through the student's layer
    layer64 = _layer(impl, 3, 2, 2, 3, seed=6, dtype=torch.float64)
    check.gradcheck(lambda x_, A, B: functional_call(layer64, {"lora_A": A, "lora_B": B}, (x_,)),
                    [tensors.randn((2, 3), 61), layer64.lora_A.detach(), layer64.lora_B.detach()],
                    unit="LoRALinear.forward", case=check.describe(r=2, alpha=3, dtype="float64"))


@pytest.mark.points(2)
def test_forward_matches_reference(impl):
    rec = reference.load(TOPIC, "lora_linear")
    out_f, in_f = rec["weight"].shape
    r = rec["lora_A"].shape[0]
    base = nn.Linear(in_f, out_f, dtype=torch.float64)
    with torch.no_grad():
        base.weight.copy_(rec["weight"])
        base.bias.copy_(rec["bias"])
    layer = impl.LoRALinear(base, r, float(rec["alpha"]))
    with torch.no_grad():
        layer.lora_A.copy_(rec["lora_A"])
        layer.lora_B.copy_(rec["lora_B"])
    x = rec["x"].clone().requires_grad_(True)
    case = check.describe(x=rec["x"], r=r, alpha=float(rec["alpha"]))
    out = layer(x)
    check.close(out, rec["out"], unit="LoRALinear.forward", kind="matmul", case=case, what="output",
                mistakes=_forward_mistakes(rec["x"], layer))
    out.backward(rec["upstream"])
    for name, grad in (("x", x.grad), ("lora_A", layer.lora_A.grad), ("lora_B", layer.lora_B.grad)):
        check.close(grad, rec[f"grad_{name}"], unit="LoRALinear.forward", kind="gradient", case=case,
                    what=f"gradient w.r.t. {name}")


@pytest.mark.points(1)
def test_dropout_only_on_adapter_input(impl):
    layer = _layer(impl, 6, 4, 2, 4.0, seed=7, dropout=0.5)
    x = tensors.randn((8, 6), 71).float()
    W, b, A, B = layer.base.weight, layer.base.bias, layer.lora_A.detach(), layer.lora_B.detach()
    case = check.describe(x=x, dropout=0.5)
    layer.train()
    torch.manual_seed(3)
    out = layer(x)
    torch.manual_seed(3)
    dropped = nn.functional.dropout(x, 0.5, training=True)
    expected = x @ W.T + b + 2.0 * (dropped @ A.T) @ B.T
    check.close(out, expected, unit="LoRALinear.forward", kind="matmul", case=case,
                what="train-mode output: base(x) + scaling · (dropout(x) Aᵀ) Bᵀ, one dropout call on x")
    layer.eval()
    check.close(layer(x), O.lora_forward(x, W, b, A, B, 2.0), unit="LoRALinear.forward", kind="matmul", case=case,
                what="eval-mode output (no dropout)")


@pytest.mark.points(1)
def test_delta_weight(impl):
    for seed, (in_f, out_f, r, alpha), dtype in ((8, (5, 4, 2, 6.0), torch.float32), (9, (3, 7, 3, 1), torch.float64)):
        layer = _layer(impl, in_f, out_f, r, alpha, seed, dtype)
        case = check.describe(r=r, alpha=alpha, dtype=dtype)
        A, B = layer.lora_A.detach(), layer.lora_B.detach()
        delta = layer.delta_weight()
        check.close(delta, (alpha / r) * B @ A, unit="LoRALinear.delta_weight", kind="matmul", case=case,
                    what="scaling · B @ A (out × in)",
                    mistakes={SCALE_MISTAKES: (r / alpha) * B @ A, "A @ B or its transpose": (alpha / r) * (B @ A).T})
        check.that(delta.requires_grad, "LoRALinear.delta_weight",
                   "delta_weight() must stay connected to lora_A and lora_B in the autograd graph", case=case)


# ---------------------------------------------------------------- merge_lora / unmerge_lora

@pytest.mark.points(3)
def test_merge_equals_unmerged(impl):
    layer = _layer(impl, 6, 5, 2, 8.0, seed=11)
    x = tensors.randn((3, 6), 111).float()
    before = layer(x).detach()
    w0 = layer.base.weight.detach().clone()
    delta = (4.0 * layer.lora_B @ layer.lora_A).detach()
    returned = impl.merge_lora(layer)
    case = check.describe(x=x, r=2, alpha=8.0)
    check.that(returned is layer and layer.merged is True, "merge_lora",
               "merge_lora should return the model and set merged = True on each layer", case=case)
    check.close(layer.base.weight, w0 + delta, unit="merge_lora", kind="matmul", case=case,
                what="base.weight after merging (W + scaling · B A)",
                mistakes={SCALE_MISTAKES: w0 + delta / 16, "update subtracted": w0 - delta})
    check.that(not layer.base.weight.requires_grad, "merge_lora", "the merged base weight must stay frozen", case=case)
    check.close(layer(x), before, unit="merge_lora", kind="matmul", case=case,
                what="output after merging (merged must equal unmerged)",
                mistakes={"update applied twice (merged weight and adapter path both used)": before + x @ delta.T})
    impl.merge_lora(layer)
    check.close(layer.base.weight, w0 + delta, unit="merge_lora", kind="matmul", case=case,
                what="base.weight after merging twice (an already merged layer is left unchanged)",
                mistakes={"merged twice": w0 + 2 * delta})
    # a whole model: every adapted layer is merged, outputs unchanged
    model = O.randomize_adapters(impl.apply_lora(O.tiny_llama(12), ("q_proj", "v_proj", "down"), 2, 4.0), 121)
    idx = tensors.randint((2, 8), 122, high=11)
    with torch.no_grad():
        expected = model(idx)[0]
        impl.merge_lora(model)
        got = model(idx)[0]
    flags = {n: m.merged for n, m in O.adapters(model).items()}
    check.that(all(flags.values()) and len(flags) == 6, "merge_lora", "every LoRALinear of the model should be merged",
               f"merged flags: {flags}", case=check.describe(model="TinyLlama", targets=("q_proj", "v_proj", "down")))
    check.close(got, expected, unit="merge_lora", kind="model", what="TinyLlama logits after merging",
                case=check.describe(idx=idx))


@pytest.mark.points(2)
def test_unmerge_restores(impl):
    layer = _layer(impl, 4, 6, 3, 6.0, seed=13, dtype=torch.float64)
    x = tensors.randn((5, 4), 131)
    w0 = layer.base.weight.detach().clone()
    before = layer(x).detach()
    check.that(impl.unmerge_lora(layer) is layer, "unmerge_lora", "unmerge_lora should return the model")
    check.close(layer.base.weight, w0, unit="unmerge_lora", kind="exact",
                what="base.weight after unmerging a layer that was never merged (must be unchanged)",
                case=check.describe(merged=False))
    impl.merge_lora(layer)
    impl.unmerge_lora(layer)
    case = check.describe(x=x, r=3, alpha=6.0, dtype="float64")
    check.that(layer.merged is False, "unmerge_lora", "merged must be False after unmerging", case=case)
    check.close(layer.base.weight, w0, unit="unmerge_lora", kind="matmul", case=case,
                what="base.weight after merge then unmerge (back to the pretrained weight)")
    check.close(layer(x), before, unit="unmerge_lora", kind="matmul", case=case,
                what="output after merge then unmerge")
    impl.unmerge_lora(layer)
    check.close(layer.base.weight, w0, unit="unmerge_lora", kind="matmul", case=case,
                what="base.weight after unmerging twice (an unmerged layer is left unchanged)")


# ---------------------------------------------------------------- apply_lora

@pytest.mark.points(2)
def test_apply_lora_wraps_targets(impl):
    for targets in (("q_proj", "v_proj"), ["q_proj", "v_proj"], {"v_proj", "q_proj"}):
        model = O.tiny_llama(14)
        originals = {f"blocks.{i}.attn.{n}": getattr(b.attn, n) for i, b in enumerate(model.blocks)
                     for n in ("q_proj", "k_proj", "v_proj", "o_proj")}
        case = check.describe(model="TinyLlama(2 layers)", targets=targets, r=4, alpha=8)
        returned = impl.apply_lora(model, targets, 4, 8)
        check.that(returned is model, "apply_lora", "apply_lora should return the model (changed in place)", case=case)
        modules = dict(model.named_modules())
        for name, original in originals.items():
            now = modules[name]
            if name.rsplit(".", 1)[1] in ("q_proj", "v_proj"):
                check.that(isinstance(now, impl.LoRALinear) and now.base is original, "apply_lora",
                           f"{name} should be a LoRALinear wrapping the original nn.Linear",
                           f"found {type(now).__name__}", case=case)
                check.that(now.r == 4 and now.scaling == 2.0, "apply_lora", f"{name}: r and alpha not passed on",
                           f"r={now.r}, scaling={now.scaling}", case=case)
            else:
                check.that(now is original, "apply_lora", f"{name} is not a target and must stay the same nn.Linear",
                           f"found {type(now).__name__}", case=case)
    model = impl.apply_lora(O.tiny_llama(15), ("up",), 2, 2, dropout=0.1)
    check.that(all(b.mlp.up.dropout.p == 0.1 for b in model.blocks), "apply_lora", "dropout not passed on",
               case=check.describe(targets=("up",), dropout=0.1))


@pytest.mark.points(2)
def test_apply_lora_freezes_everything_else(impl):
    model = impl.apply_lora(O.tiny_llama(16), ("q_proj", "v_proj"), 2, 4)
    trainable = sorted(n for n, p in model.named_parameters() if p.requires_grad)
    expected = sorted(f"blocks.{i}.attn.{m}.lora_{ab}" for i in range(2) for m in ("q_proj", "v_proj") for ab in "AB")
    extra = [n for n in trainable if n not in expected]
    check.equal(trainable, expected, unit="apply_lora", what="the parameters that require grad",
                case=check.describe(targets=("q_proj", "v_proj")),
                mistakes={"forgot to freeze the rest of the model": trainable if extra else None})
    idx = tensors.randint((2, 8), 161, high=11)
    model(idx, idx)[1].backward()
    got_grad = sorted(n for n, p in model.named_parameters() if p.grad is not None)
    check.equal(got_grad, expected, unit="apply_lora",
                what="the parameters that receive a gradient after backward", case=check.describe(idx=idx))


@pytest.mark.points(1)
def test_apply_lora_output_unchanged_at_init(impl):
    model = O.tiny_llama(17)
    idx = tensors.randint((3, 8), 171, high=11)
    with torch.no_grad():
        before = model(idx)[0]
        impl.apply_lora(model, ("q_proj", "k_proj", "v_proj", "o_proj", "gate", "up", "down", "lm_head"), 4, 8)
        after = model(idx)[0]
    check.close(after, before, unit="apply_lora", kind="model", case=check.describe(idx=idx),
                what="logits right after apply_lora (B = 0: the model must not change)")


@pytest.mark.points(1)
def test_apply_lora_errors(impl):
    check.expect_raises(TypeError, impl.apply_lora, O.tiny_llama(18), "q_proj", 2, 4, unit="apply_lora",
                        case=check.describe(targets="q_proj"), why="targets is a str, not a collection of names")
    for targets in (("qproj",), ("norm", "attn_norm"), ()):
        check.expect_raises(ValueError, impl.apply_lora, O.tiny_llama(18), targets, 2, 4, unit="apply_lora",
                            case=check.describe(targets=targets), why="no nn.Linear has one of these names")


# ---------------------------------------------------------------- trainable_fraction

@pytest.mark.points(2)
def test_trainable_fraction(impl):
    model = O.tiny_llama(19)
    total = sum(p.numel() for p in model.parameters())
    check.equal(impl.trainable_fraction(model), 1.0, unit="trainable_fraction", what="fraction of a fresh model",
                case=check.describe(model="TinyLlama, nothing frozen"))
    impl.apply_lora(model, ("q_proj", "v_proj"), 4, 8)
    # each adapter adds r·(in + out): q_proj 16 -> 16, v_proj 16 -> 8 (one kv head of size 8)
    adapter = 2 * (4 * (16 + 16) + 4 * (16 + 8))
    right = adapter / (total + adapter)
    got = impl.trainable_fraction(model)
    case = check.describe(model="TinyLlama", targets=("q_proj", "v_proj"), r=4)
    check.that(isinstance(got, float), "trainable_fraction", f"should return a Python float, got {type(got).__name__}",
               case=case)
    check.that(abs(got - right) < 1e-12, "trainable_fraction", f"got {got!r}, expected {right!r} = {adapter}/{total + adapter}",
               "known mistake: adapter parameters left out of the total" if abs(got - adapter / total) < 1e-12 else "",
               case=case)
    emb = nn.Embedding(5, 4)
    head = nn.Linear(4, 5)
    head.weight = emb.weight                                          # tied: one (5, 4) Parameter
    head.bias.requires_grad_(False)
    tied = nn.Sequential(emb, head)
    check.that(abs(impl.trainable_fraction(tied) - 20 / 25) < 1e-12, "trainable_fraction",
               f"a tied weight counts once: expected 20/25 = 0.8, got {impl.trainable_fraction(tied)!r}",
               case=check.describe(model="Embedding(5, 4) tied to Linear(4, 5), bias frozen"))
    for p in tied.parameters():
        p.requires_grad_(False)
    check.equal(impl.trainable_fraction(tied), 0.0, unit="trainable_fraction", what="fraction of a frozen model")
    check.expect_raises(ValueError, impl.trainable_fraction, nn.ReLU(), unit="trainable_fraction",
                        case=check.describe(model="nn.ReLU()"), why="the model has no parameters")


# ---------------------------------------------------------------- lora_state_dict / load_lora_state_dict

@pytest.mark.points(2)
def test_lora_state_dict_keys_and_copies(impl):
    model = O.randomize_adapters(impl.apply_lora(O.tiny_llama(20), ("q_proj", "up"), 2, 4), 201)
    state = impl.lora_state_dict(model)
    expected = [k for k in model.state_dict() if k.endswith((".lora_A", ".lora_B"))]
    case = check.describe(targets=("q_proj", "up"))
    check.equal(list(state), expected, unit="lora_state_dict", case=case,
                what="keys (the adapters' state_dict names, in state_dict order)",
                mistakes={"whole state dict saved, not the adapters alone": list(model.state_dict())})
    params = dict(model.named_parameters())
    for key, value in state.items():
        check.close(value, params[key], unit="lora_state_dict", kind="exact", case=case, what=key)
        check.that(not value.requires_grad and value.data_ptr() != params[key].data_ptr(), "lora_state_dict",
                   f"{key} must be a detached copy that shares no memory with the model", case=case)
    before = params["blocks.0.attn.q_proj.lora_B"].detach().clone()
    state["blocks.0.attn.q_proj.lora_B"].add_(1.0)
    check.close(params["blocks.0.attn.q_proj.lora_B"], before, unit="lora_state_dict", kind="exact", case=case,
                what="the model's lora_B after changing the saved copy (it must not change)")
    single = impl.LoRALinear(nn.Linear(3, 2), 1, 1)
    check.equal(list(impl.lora_state_dict(single)), ["lora_A", "lora_B"], unit="lora_state_dict",
                what="keys of a LoRALinear on its own", case=check.describe(model="LoRALinear(nn.Linear(3, 2), 1, 1)"))


@pytest.mark.points(2)
def test_lora_state_dict_round_trip(impl):
    targets = ("q_proj", "v_proj", "down")
    trained = O.randomize_adapters(impl.apply_lora(O.tiny_llama(21), targets, 3, 6), 211)
    state = impl.lora_state_dict(trained)
    fresh = impl.apply_lora(O.tiny_llama(21), targets, 3, 6)          # same base weights, new adapters
    params_before = dict(fresh.named_parameters())
    returned = impl.load_lora_state_dict(fresh, state)
    case = check.describe(targets=targets, r=3)
    check.that(returned is fresh, "load_lora_state_dict", "should return the model", case=case)
    idx = tensors.randint((2, 8), 212, high=11)
    with torch.no_grad():
        check.close(fresh(idx)[0], trained(idx)[0], unit="load_lora_state_dict", kind="model", case=case,
                    what="logits of a fresh model after loading the saved adapters")
    again = impl.lora_state_dict(fresh)
    check.equal(list(again), list(state), unit="lora_state_dict", what="keys after the round trip", case=case)
    for key in state:
        check.close(again[key], state[key], unit="load_lora_state_dict", kind="exact", case=case, what=key)
        p = dict(fresh.named_parameters())[key]
        check.that(p is params_before[key] and p.requires_grad, "load_lora_state_dict",
                   f"{key} must stay the same trainable Parameter (copy into it)", case=case)
    as64 = {k: v.double() for k, v in state.items()}
    impl.load_lora_state_dict(fresh, as64)
    check.that(all(p.dtype == torch.float32 for p in fresh.parameters()), "load_lora_state_dict",
               "values are converted to the parameter's dtype (float64 state into a float32 model)", case=case)


@pytest.mark.points(1)
def test_load_lora_state_dict_errors(impl):
    model = impl.apply_lora(O.tiny_llama(22), ("q_proj",), 2, 4)
    state = impl.lora_state_dict(O.randomize_adapters(impl.apply_lora(O.tiny_llama(22), ("q_proj",), 2, 4), 221))
    snapshot = {k: v.clone() for k, v in impl.lora_state_dict(model).items()}
    missing = {k: v for k, v in state.items() if k != "blocks.1.attn.q_proj.lora_B"}
    extra = {**state, "blocks.0.attn.k_proj.lora_A": torch.zeros(2, 16)}
    wrong = {**state, "blocks.1.attn.q_proj.lora_A": torch.zeros(3, 16)}
    for error, bad, why in ((KeyError, missing, "a key is missing"), (KeyError, extra, "an unexpected key"),
                            (ValueError, wrong, "a shape differs (r = 3 saved, r = 2 in the model)")):
        check.expect_raises(error, impl.load_lora_state_dict, model, bad, unit="load_lora_state_dict", why=why,
                            case=check.describe(keys=sorted(bad)))
        now = impl.lora_state_dict(model)
        for k, v in snapshot.items():
            check.close(now[k], v, unit="load_lora_state_dict", kind="exact", case=check.describe(why=why),
                        what=f"{k} after a rejected load (nothing may be copied on an error)")
