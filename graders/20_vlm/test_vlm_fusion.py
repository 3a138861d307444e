"""Graders for 20_vlm, feeding images to a language model: MLPProjector, splice_image_tokens,
freeze_for_stage (LLaVA) and GatedCrossAttention (Flamingo).

MLPProjector: an oracle with F.linear and the exact GELU, leading axes, gradients.
splice_image_tokens: a hand case, golden data, a loop oracle on hypothesis inputs (positions
per row, labels −100 at every image position), gradients w.r.t. both embeddings, every Raises
clause (missing placeholder, count mismatch, shapes).
freeze_for_stage: requires_grad of every parameter per stage, whatever it was before; the
returned names; only the trainable parameters receive gradients from the captioner's loss;
Raises, with nothing changed.
GatedCrossAttention: names, shapes and zero gates; exactly the identity at initialisation for
any other weights; the gates receive gradient (equal to the oracle's) while the gated branches'
weights get exactly 0; with open gates an oracle forward, golden data and gradients.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import vlm_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds


# ---------------------------------------------------------------- MLPProjector

def _exact_gelu(x):
    """x·Φ(x), by the error function."""
    return x * 0.5 * (1 + torch.erf(x / 2 ** 0.5))


@pytest.mark.points(1)
def test_projector_matches_oracle_and_gradients(impl):
    proj = tensors.randomize_parameters(impl.MLPProjector(6, 5, 7).double(), 41, scale=1.0)
    fc1 = lambda x: F.linear(x, proj.fc1.weight, proj.fc1.bias)
    fc2 = lambda h: F.linear(h, proj.fc2.weight, proj.fc2.bias)
    oracle = lambda x: fc2(_exact_gelu(fc1(x)))
    for shape in ((4, 6), (2, 3, 6), (6,)):
        x = tensors.randn(shape, 42)
        case = check.describe(features=x, d_vision=6, hidden=7, d_text=5)
        with torch.no_grad():
            check.close(proj(x), oracle(x), unit="MLPProjector.forward", case=case, kind="matmul",
                        mistakes={"ReLU instead of GELU": lambda: fc2(F.relu(fc1(x))),
                                  "the tanh approximation of GELU": lambda: fc2(F.gelu(fc1(x), approximate="tanh")),
                                  "no non-linearity (two linear maps are one)": lambda: fc2(fc1(x))})
    x = tensors.randn((3, 6), 43)
    check.grads(proj, oracle, [x], names=["features"], unit="MLPProjector.forward", case=check.describe(features=x))


# ---------------------------------------------------------------- splice_image_tokens

def _splice_mistakes(ids, embeds, feats, labels):
    def unmasked():
        _, lab = O.splice_loop(ids, embeds, feats, 1, labels)
        k = (ids == 1).int().argmax(dim=1)
        for b in range(ids.shape[0]):
            lab[b, k[b]:k[b] + feats.shape[1]] = labels[b, k[b]]
        return lab
    return {"labels not masked at the image positions (the placeholder's label copied there)": unmasked}


@pytest.mark.points(2)
def test_splice_by_hand_and_reference(impl):
    # row 0: [5, <img>, 6, 7] -> [5, f0, f1, 6, 7]; row 1: [<img>, 8, 9, 4] -> [f0, f1, 8, 9, 4]
    ids = torch.tensor([[5, 1, 6, 7], [1, 8, 9, 4]])
    embeds = ids[..., None].double() * torch.ones(1, 1, 2, dtype=torch.float64)    # token t embeds as [t, t]
    feats = -torch.arange(1, 9, dtype=torch.float64).reshape(2, 2, 2)              # negative: image values
    labels = torch.tensor([[5, 1, 6, -100], [1, 8, 9, 4]])
    case = check.describe(input_ids=ids, image_features="(2, 2, 2) of negative values", labels=labels)
    out, new_labels = impl.splice_image_tokens(ids, embeds, feats, 1, labels)
    want = torch.tensor([[[5, 5], [-1, -2], [-3, -4], [6, 6], [7, 7]],
                         [[-5, -6], [-7, -8], [8, 8], [9, 9], [4, 4]]], dtype=torch.float64)
    check.close(out, want, unit="splice_image_tokens", case=case, kind="exact",
                what="spliced embeddings (image rows at the placeholder of EACH row, the placeholder removed)")
    check.close(new_labels, torch.tensor([[5, -100, -100, 6, -100], [-100, -100, 8, 9, 4]]),
                unit="splice_image_tokens", case=case, what="new labels (−100 at the image positions)",
                mistakes=_splice_mistakes(ids, embeds, feats, labels))
    ref = reference.load(O.TOPIC, "splice")
    out, new_labels = impl.splice_image_tokens(ref["input_ids"], ref["token_embeds"], ref["image_features"], 1,
                                               ref["labels"])
    case = check.describe(input_ids=ref["input_ids"], image_features=ref["image_features"])
    check.close(out, ref["embeds"], unit="splice_image_tokens", case=case, kind="exact",
                what="spliced embeddings of the reference rows")
    check.close(new_labels, ref["new_labels"], unit="splice_image_tokens", case=case,
                what="new labels of the reference rows")


@pytest.mark.points(2)
@examples(10)
@given(seed=seeds(), B=st.integers(1, 3), T=st.integers(1, 6), N=st.integers(1, 4), D=st.integers(1, 3),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_splice_matches_loop_oracle(impl, seed, B, T, N, D, dtype):
    ids, embeds, feats, labels = O.splice_inputs(seed, B, T, N, D, dtype=dtype)
    case = check.describe(input_ids=ids, N=N, D=D, dtype=dtype)
    out, new_labels = impl.splice_image_tokens(ids, embeds, feats, 1, labels)
    want, want_labels = O.splice_loop(ids, embeds, feats, 1, labels)
    check.close(out, want, unit="splice_image_tokens", case=case, kind="exact", what="spliced embeddings")
    check.close(new_labels, want_labels, unit="splice_image_tokens", case=case, what="new labels",
                mistakes=_splice_mistakes(ids, embeds, feats, labels))
    check.that(new_labels.dtype == torch.int64, "splice_image_tokens", f"labels have dtype {new_labels.dtype}, "
               "expected torch.int64", case=case)


@pytest.mark.points(1)
def test_splice_gradients(impl):
    ids, embeds, feats, labels = O.splice_inputs(44, 2, 5, 3, 4)
    case = check.describe(input_ids=ids, N=3, D=4)
    check.grads(lambda e, f: impl.splice_image_tokens(ids, e, f, 1, labels)[0],
                lambda e, f: O.splice_loop(ids, e, f, 1, labels)[0], [embeds, feats],
                names=["token_embeds", "image_features"], unit="splice_image_tokens", case=case)


@pytest.mark.points(1)
def test_splice_raises(impl):
    ids, embeds, feats, labels = O.splice_inputs(45, 2, 5, 3, 4)
    none = ids.clone()
    none[1][none[1] == 1] = 3                                               # row 1 loses its placeholder
    two = ids.clone()
    two[0] = torch.tensor([3, 1, 4, 1, 5])                                  # row 0 gets exactly two
    cases = [(none, embeds, feats, labels, "missing placeholder in row 1"),
             (two, embeds, feats, labels, "count mismatch: two placeholders in row 0"),
             (ids, embeds, feats[:1], labels, "count mismatch: one image for two rows"),
             (ids, embeds, torch.cat([feats, feats]), labels, "count mismatch: four images for two rows"),
             (ids[0], embeds[0], feats, labels[0], "input_ids not 2-D"),
             (ids, embeds[:, :4], feats, labels, "token_embeds not (B, T, D)"),
             (ids, embeds, feats, labels[:, :4], "labels not (B, T)"),
             (ids, embeds, feats[..., :3], labels, "image_features of another width D"),
             (ids, embeds, feats[:, :0], labels, "image_features with N = 0")]
    for i, e, f, lab, why in cases:
        check.expect_raises(ValueError, impl.splice_image_tokens, i, e, f, 1, lab, unit="splice_image_tokens",
                            case=check.describe(input_ids=i, token_embeds=e, image_features=f, labels=lab), why=why)


# ---------------------------------------------------------------- freeze_for_stage

def _expected_trainable(model, prefixes):
    return [n for n, _ in model.named_parameters() if n.startswith(prefixes)]


@pytest.mark.points(2)
def test_freeze_stages_set_every_parameter(impl):
    model = O.vlm(impl, 46)
    model.register_parameter("extra_scale", torch.nn.Parameter(torch.ones(())))   # "anything else" is frozen
    for before in (True, False):
        for stage, prefixes in ((1, ("projector.",)), (2, ("projector.", "lm."))):
            for p in model.parameters():
                p.requires_grad_(before)
            names = impl.freeze_for_stage(model, stage)
            want = _expected_trainable(model, prefixes)
            case = check.describe(stage=stage, every_parameter_before=f"requires_grad={before}")
            got = [n for n, p in model.named_parameters() if p.requires_grad]
            check.equal(got, want, unit="freeze_for_stage", case=case,
                        what="the parameters with requires_grad=True",
                        mistakes={"stage 2 also trains the vision encoder":
                                  _expected_trainable(model, ("projector.", "lm.", "vision.")),
                                  "stage 1 also trains the LM": _expected_trainable(model, ("projector.", "lm.")),
                                  "stage 2 trains only the LM": _expected_trainable(model, ("lm.",))})
            check.equal(list(names) if isinstance(names, (list, tuple)) else names, want, unit="freeze_for_stage",
                        case=case, what="the returned names (named_parameters order)")


@pytest.mark.points(1)
def test_freeze_only_trainable_parameters_get_gradients(impl):
    model = O.vlm(impl, 47)
    images = tensors.randn((2, 3, 8, 8), 48, torch.float32)
    ids = torch.tensor([[2, 1, 3, 4, 5], [2, 1, 6, 7, 8]])
    for stage in (1, 2):
        model.zero_grad(set_to_none=True)
        trainable = set(impl.freeze_for_stage(model, stage))
        model(images, ids, ids)[1].backward()
        got = {n for n, p in model.named_parameters() if p.grad is not None}
        check.that(got == trainable, "freeze_for_stage",
                   f"after stage {stage} the captioner's loss must reach exactly the trainable parameters",
                   f"with gradients but frozen: {sorted(got - trainable)[:4]}",
                   f"trainable without gradients: {sorted(trainable - got)[:4]}", case=check.describe(stage=stage))


@pytest.mark.points(1)
def test_freeze_raises_and_changes_nothing(impl):
    model = O.vlm(impl, 49)
    before = [p.requires_grad for p in model.parameters()]
    for stage in (0, 3, -1):
        check.expect_raises(ValueError, impl.freeze_for_stage, model, stage, unit="freeze_for_stage",
                            case=check.describe(stage=stage), why="the stage is not 1 or 2")
        check.equal([p.requires_grad for p in model.parameters()], before, unit="freeze_for_stage",
                    case=check.describe(stage=stage), what="requires_grad after the rejected stage (must not change)")


# ---------------------------------------------------------------- GatedCrossAttention

@pytest.mark.points(2)
def test_gated_identity_at_init(impl):
    torch.manual_seed(50)
    block = impl.GatedCrossAttention(**O.GATED)
    case = check.describe(**O.GATED)
    for name in ("attn_gate", "ff_gate"):
        gate = getattr(block, name, None)
        check.that(isinstance(gate, torch.nn.Parameter) and gate.dim() == 0, "GatedCrossAttention.__init__",
                   f"{name} must be a 0-d nn.Parameter", f"got {type(gate).__name__}"
                   f"{'' if gate is None else ' of shape ' + str(tuple(gate.shape))}", case=case)
        check.close(gate.detach(), torch.tensor(0.0), unit="GatedCrossAttention.__init__", case=case, kind="exact",
                    what=f"{name} at initialisation (tanh(0) = 0: the block starts as the identity)",
                    mistakes={"the gate initialised open (1)": torch.tensor(1.0)})
    check.that(isinstance(block.attn, torch.nn.MultiheadAttention) and block.attn.kdim == O.GATED["d_media"]
               and block.attn.vdim == O.GATED["d_media"] and block.attn.batch_first, "GatedCrossAttention.__init__",
               "attn must be MultiheadAttention(d_model, n_heads, kdim=d_media, vdim=d_media, batch_first=True)",
               case=case)
    x, media = tensors.randn((2, 5, 16), 51, torch.float32), tensors.randn((2, 3, 12), 52, torch.float32)
    check.close(block(x, media), x, unit="GatedCrossAttention.forward", case=check.describe(x=x, media=media),
                kind="exact", what="output at initialisation (must equal x exactly)",
                mistakes={"the gate initialised open (1)": lambda: O.gated_forward(block, x, media,
                                                                                   gate=lambda g: torch.tanh(g + 1))})
    # still the identity with every other weight drawn fresh, in float64, for one text token
    fresh = O.gated(impl, 53)
    x1 = tensors.randn((3, 1, 16), 54)
    check.close(fresh(x1, tensors.randn((3, 4, 12), 55)), x1, unit="GatedCrossAttention.forward", kind="exact",
                case=check.describe(x=x1, gates=0), what="output with both gates at 0 (must equal x exactly)")


@pytest.mark.points(2)
def test_gated_gates_receive_gradient(impl):
    block = O.gated(impl, 56)
    x, media = tensors.randn((2, 4, 16), 57), tensors.randn((2, 3, 12), 58)
    upstream = tensors.randn((2, 4, 16), 59)
    case = check.describe(x=x, media=media, gates=0)
    (block(x, media) * upstream).sum().backward()
    with torch.no_grad():
        attn_out = block.attn(block.norm(x), media, media, need_weights=False)[0]
        ff_out = block.ff(block.ff_norm(x))                              # y = x while the attention gate is 0
    # d tanh(g)/dg = 1 at g = 0, so each gate's gradient is Σ upstream · (its branch's output)
    for name, branch in (("attn_gate", attn_out), ("ff_gate", ff_out)):
        grad = getattr(block, name).grad
        check.that(grad is not None, "GatedCrossAttention.forward", f"no gradient reaches {name}", case=case)
        check.close(grad, (upstream * branch).sum(), unit="GatedCrossAttention.forward", case=case, kind="gradient",
                    what=f"gradient w.r.t. {name} at 0 (Σ upstream · branch output, since tanh'(0) = 1)",
                    mistakes={"the gate passed through a sigmoid instead of tanh": 0.25 * (upstream * branch).sum()})
    w = block.attn.out_proj.weight.grad
    check.close(w if w is not None else torch.zeros_like(block.attn.out_proj.weight),
                torch.zeros_like(block.attn.out_proj.weight), unit="GatedCrossAttention.forward", case=case,
                kind="exact", what="gradient w.r.t. attn.out_proj.weight behind a closed gate (must be 0)")


@pytest.mark.points(2)
def test_gated_open_matches_oracle_and_reference(impl):
    block = O.gated(impl, 60, gates=(0.7, -1.3))
    x, media = tensors.randn((2, 5, 16), 61), tensors.randn((2, 3, 12), 62)
    case = check.describe(x=x, media=media, attn_gate=0.7, ff_gate=-1.3)
    with torch.no_grad():
        check.close(block(x, media), O.gated_forward(block, x, media), unit="GatedCrossAttention.forward",
                    case=case, kind="model",
                    mistakes={"the gate used without tanh": lambda: O.gated_forward(block, x, media, gate=lambda g: g),
                              "the gate passed through a sigmoid instead of tanh":
                                  lambda: O.gated_forward(block, x, media, gate=torch.sigmoid)})
    check.grads(lambda a, m: block(a, m), lambda a, m: O.gated_forward(block, a, m), [x, media],
                names=["x", "media"], unit="GatedCrossAttention.forward", case=case)
    only_attn = O.gated(impl, 63, gates=(0.5, 0.0))
    with torch.no_grad():
        check.close(only_attn(x, media), O.gated_forward(only_attn, x, media), unit="GatedCrossAttention.forward",
                    kind="model", case=check.describe(x=x, attn_gate=0.5, ff_gate=0.0),
                    what="output with only the attention gate open (the MLP branch is gated too)")
        ref = reference.load(O.TOPIC, "gated")
        check.close(O.gated(impl, 203, gates=(0.6, -0.9))(ref["x"], ref["media"]), ref["out"],
                    unit="GatedCrossAttention.forward", kind="model", what="output on the reference inputs",
                    case=check.describe(x=ref["x"], media=ref["media"], attn_gate=0.6, ff_gate=-0.9))
