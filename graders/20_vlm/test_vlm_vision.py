"""Graders for 20_vlm, the vision side: patchify, PatchEmbedding, ViTEncoder.

patchify: a hand case whose values are their own coordinates, golden data, F.unfold and an
explicit loop oracle on hypothesis shapes (F.unfold forbidden while the unit runs), both
classic wrong orders named, gradients, non-contiguous input, every Raises clause.
PatchEmbedding: equal to the linear map on unfolded patches and to F.conv2d, golden data,
gradients w.r.t. the images and the convolution's parameters.
ViTEncoder: an oracle forward built from the module's parameters, golden data, CLS first,
positions added, gradients w.r.t. the CLS token and the positions, a permutation property.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st

import vlm_oracle as O
from llmlab.testing import check, guard, reference, tensors
from llmlab.testing.strategies import examples, seeds


def _patchify(impl, images, patch):
    return guard.call_without("patchify", O.UNFOLD, impl.patchify, images, patch,
                              hint="Use reshape and permute.")


ORDER_MISTAKES = lambda images, P: {
    "patches in column-major order (down the grid first)": lambda: O.patchify_column_major(images, P),
    "inside a patch: row, column, then channel (channels-last) instead of channel, row, column":
        lambda: O.patchify_channels_last(images, P)}


# ---------------------------------------------------------------- patchify

@pytest.mark.points(2)
def test_patchify_by_hand_and_reference(impl):
    # pixel value = 100·c + 10·row + column: every output entry names where it came from
    c, r, s = torch.meshgrid(torch.arange(2), torch.arange(4), torch.arange(6), indexing="ij")
    images = (100 * c + 10 * r + s).double()[None]                     # (1, 2, 4, 6)
    out = _patchify(impl, images, 2)
    case = check.describe(images="pixel = 100·c + 10·row + col, (1, 2, 4, 6)", patch=2)
    # patch 1 is grid row 0, grid column 1: rows 0-1, columns 2-3; channel 0 first, then channel 1
    first = torch.tensor([2, 3, 12, 13, 102, 103, 112, 113], dtype=torch.float64)
    check.that(isinstance(out, torch.Tensor) and tuple(out.shape) == (1, 6, 8), "patchify",
               "the output must be a (B, N, C·P·P) = (1, 6, 8) tensor",
               f"got {tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}", case=case)
    check.close(out[0, 1], first,
                unit="patchify", case=case, kind="exact",
                what="patch 1 (grid row 0, column 1: image rows 0-1, columns 2-3), in (channel, row, column) order",
                mistakes={"patches in column-major order (down the grid first)":
                          torch.tensor([20, 21, 30, 31, 120, 121, 130, 131], dtype=torch.float64),
                          "inside a patch: row, column, then channel (channels-last)":
                          torch.tensor([2, 102, 3, 103, 12, 112, 13, 113], dtype=torch.float64)})
    check.close(out, O.patchify_loop(images, 2), unit="patchify", case=case, kind="exact",
                mistakes=ORDER_MISTAKES(images, 2))
    ref = reference.load(O.TOPIC, "patchify")
    check.close(_patchify(impl, ref["images"], 2), ref["out"], unit="patchify", kind="exact",
                case=check.describe(images=ref["images"], patch=2), what="patches of the reference images",
                mistakes=ORDER_MISTAKES(ref["images"], 2))


@pytest.mark.points(2)
@examples(10)
@given(seed=seeds(), B=st.integers(1, 2), C=st.integers(1, 3), gh=st.integers(1, 3), gw=st.integers(1, 4),
       P=st.integers(1, 3), dtype=st.sampled_from([torch.float32, torch.float64]))
def test_patchify_matches_unfold_and_loop(impl, seed, B, C, gh, gw, P, dtype):
    images = tensors.randn((B, C, gh * P, gw * P), seed, dtype)
    case = check.describe(images=images, patch=P)
    out = _patchify(impl, images, P)
    check.close(out, O.patchify_unfold(images, P), unit="patchify", case=case, kind="exact",
                what="patches (compared with F.unfold(images, P, stride=P).transpose(1, 2))",
                mistakes=ORDER_MISTAKES(images, P))
    check.close(out, O.patchify_loop(images, P), unit="patchify", case=case, kind="exact",
                what="patches (compared with the docstring's index formula, by loops)")


@pytest.mark.points(1)
def test_patchify_gradients_and_views(impl):
    images = tensors.randn((2, 3, 6, 9), 5)
    case = check.describe(images=images, patch=3)
    check.grads(lambda x: _patchify(impl, x, 3), lambda x: O.patchify_unfold(x, 3), [images], names=["images"],
                unit="patchify", case=case)
    view = tensors.randn((2, 9, 6, 3), 6).permute(0, 3, 2, 1)          # (2, 3, 6, 9), not contiguous
    check.close(_patchify(impl, view, 3), O.patchify_unfold(view, 3), unit="patchify", kind="exact",
                case=check.describe(images=view, contiguous=view.is_contiguous(), patch=3),
                what="patches of a non-contiguous image tensor")
    whole = tensors.randn((1, 1, 4, 4), 7)
    check.close(_patchify(impl, whole, 4), whole.reshape(1, 1, 16), unit="patchify", kind="exact",
                case=check.describe(images=whole, patch=4), what="one patch covering the whole image")


@pytest.mark.points(1)
def test_patchify_raises(impl):
    images = tensors.randn((1, 3, 4, 6), 8)
    for x, P, why in ((images[0], 2, "images not 4-D"), (images, 0, "patch < 1"), (images, 4, "W = 6 not divisible"),
                      (tensors.randn((1, 3, 6, 4), 9), 4, "H = 6 not divisible")):
        check.expect_raises(ValueError, impl.patchify, x, P, unit="patchify", case=check.describe(images=x, patch=P),
                            why=why)


# ---------------------------------------------------------------- PatchEmbedding

def _embedding(impl, seed, C=3, P=2, d=5):
    return tensors.randomize_parameters(impl.PatchEmbedding(C, P, d).double(), seed)


@pytest.mark.points(2)
def test_patch_embedding_is_linear_on_patches(impl):
    embed = _embedding(impl, 11)
    images = tensors.randn((2, 3, 4, 6), 12)
    case = check.describe(images=images, patch=2, d_model=5)
    out = embed(images)
    w = embed.proj.weight
    conv = F.conv2d(images, w, embed.proj.bias, stride=2)                # (2, 5, 2, 3)
    check.close(out, O.patch_embed_linear(embed, images), unit="PatchEmbedding.forward", case=case, kind="matmul",
                what="patch embeddings (compared with patchify(images) @ W.T + b, W = weight.reshape(d, −1))",
                mistakes={"conv output reshaped to (B, N, d) without moving the channel axis":
                          conv.reshape(2, 6, 5),
                          "tokens in column-major grid order": conv.transpose(2, 3).flatten(2).transpose(1, 2)})
    check.close(out, conv.flatten(2).transpose(1, 2), unit="PatchEmbedding.forward", case=case, kind="matmul",
                what="patch embeddings (compared with F.conv2d, flattened row-major)")
    ref = reference.load(O.TOPIC, "patch_embedding")
    embed = _embedding(impl, 201)
    with torch.no_grad():
        check.close(embed(ref["images"]), ref["out"], unit="PatchEmbedding.forward", kind="matmul",
                    case=check.describe(images=ref["images"], seed=201), what="embeddings of the reference images")


@pytest.mark.points(1)
def test_patch_embedding_gradients_and_dtype(impl):
    embed = _embedding(impl, 13, C=2, P=3, d=4)
    images = tensors.randn((2, 2, 6, 3), 14)
    case = check.describe(images=images, patch=3, d_model=4)
    check.grads(embed, lambda x: O.patch_embed_linear(embed, x), [images], names=["images"],
                unit="PatchEmbedding.forward", case=case)
    upstream = tensors.randn((2, 2, 4), 15)
    embed.zero_grad()
    (embed(images) * upstream).sum().backward()
    grads = [p.grad.clone() for p in (embed.proj.weight, embed.proj.bias)]
    embed.zero_grad()
    (O.patch_embed_linear(embed, images) * upstream).sum().backward()
    for name, got, p in zip(("proj.weight", "proj.bias"), grads, (embed.proj.weight, embed.proj.bias)):
        check.close(got, p.grad, unit="PatchEmbedding.forward", case=case, kind="gradient",
                    what=f"gradient w.r.t. {name}")
    small = impl.PatchEmbedding(3, 4, 6)
    x32 = tensors.randn((1, 3, 8, 8), 16, torch.float32)
    with torch.no_grad():
        check.close(small(x32), O.patch_embed_linear(small, x32), unit="PatchEmbedding.forward", kind="matmul",
                    case=check.describe(images=x32, patch=4), what="float32 patch embeddings (batch 1)")


# ---------------------------------------------------------------- ViTEncoder

@pytest.mark.points(2)
def test_vit_matches_oracle_and_reference(impl):
    model = O.vit(impl, 21)
    images = tensors.randn((3, 3, 8, 8), 22)
    case = check.describe(images=images, **O.VIT)
    with torch.no_grad():
        out = model(images)
        check.close(out, O.vit_forward(model, images), unit="ViTEncoder.forward", case=case, kind="model",
                    what="encoder output [CLS, patches]",
                    mistakes={"position embeddings not added": lambda: O.vit_forward(model, images, False),
                              "no final norm": lambda: O.vit_forward(model, images, with_norm=False)})
        ref = reference.load(O.TOPIC, "vit")
        check.close(O.vit(impl, 202)(ref["images"]), ref["out"], unit="ViTEncoder.forward", kind="model",
                    case=check.describe(images=ref["images"], seed=202), what="encoder output on the reference")
        one = model(images[:1])
        check.close(one[0], out[0], unit="ViTEncoder.forward", kind="model", case=case,
                    what="output of batch row 0 run alone (rows must not affect each other)")


@pytest.mark.points(2)
def test_vit_cls_first_positions_and_gradients(impl):
    model = O.vit(impl, 23, n_layers=1)
    images = tensors.randn((2, 3, 8, 8), 24)
    case = check.describe(images=images, **{**O.VIT, "n_layers": 1})
    check.grads(model, lambda x: O.vit_forward(model, x), [images], names=["images"], unit="ViTEncoder.forward",
                case=case)
    upstream = tensors.randn((2, 5, 16), 25)
    params = {"cls_token": model.cls_token, "pos_embed": model.pos_embed,
              "patch_embed.proj.weight": model.patch_embed.proj.weight}
    model.zero_grad()
    (model(images) * upstream).sum().backward()
    got = {k: p.grad.clone() for k, p in params.items()}
    model.zero_grad()
    (O.vit_forward(model, images) * upstream).sum().backward()
    for name, p in params.items():
        check.close(got[name], p.grad, unit="ViTEncoder.forward", case=case, kind="gradient",
                    what=f"gradient w.r.t. {name} (the CLS token and positions must be used, in place 0 and 0 … N)")
    # with zero positions and no blocks the output is norm([CLS, patches]): the CLS row comes first and
    # equals norm(cls_token) for every image; the patch rows follow the patches
    bare = O.vit(impl, 26, n_layers=0)
    with torch.no_grad():
        bare.pos_embed.zero_()
        out = bare(images)
        check.close(out[:, 0], bare.norm(bare.cls_token[0].expand(2, -1)), unit="ViTEncoder.forward", kind="model",
                    case=check.describe(images=images, n_layers=0, pos_embed="zeros"),
                    what="row 0 of the output (the CLS token must come FIRST)")
        flipped = images.flip(-1).flip(-2)                              # reverses the order of the 4 patches
        check.close(bare(flipped)[:, 1:], bare.norm(O.patch_embed_linear(bare.patch_embed, flipped)),
                    unit="ViTEncoder.forward", kind="model", what="patch rows 1 … N (patchify's order)",
                    case=check.describe(images=flipped, n_layers=0, pos_embed="zeros"))
