"""Instructor-only graders for 20_vlm (left out of student bundles).

  - patchify and PatchEmbedding on larger, non-square images with many channels, float32;
  - a deeper, wider ViTEncoder (3 layers, 4 heads, 16 patches) against the oracle, in float32;
  - clip_loss on a large batch (N = 64) against the loop oracle, and gradient descent on the
    loss aligning random pairs (the loss falls, retrieval reaches 100 %);
  - splice_image_tokens with the placeholder first and last, B = 1, N = 1, and another id;
  - the captioner: stage-1 training moves only the projector's parameters.
"""

from __future__ import annotations

import pytest
import torch

import vlm_oracle as O
from llmlab.testing import check, tensors


@pytest.mark.hidden
@pytest.mark.points(1)
def test_patches_large_images_hidden(impl):
    images = tensors.randn((2, 5, 12, 20), 70, torch.float32)
    case = check.describe(images=images, patch=4)
    check.close(impl.patchify(images, 4), O.patchify_unfold(images, 4), unit="patchify", case=case, kind="exact",
                mistakes={"patches in column-major order": O.patchify_column_major(images, 4)})
    embed = impl.PatchEmbedding(5, 4, 8)
    with torch.no_grad():
        check.close(embed(images), O.patch_embed_linear(embed, images), unit="PatchEmbedding.forward", case=case,
                    kind="matmul")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_vit_deeper_float32_hidden(impl):
    model = O.vit(impl, 71, torch.float32, image_size=16, n_layers=3, n_heads=4, d_model=32)
    images = tensors.randn((2, 3, 16, 16), 72, torch.float32)
    with torch.no_grad():
        check.close(model(images), O.vit_forward(model, images), unit="ViTEncoder.forward", kind="model",
                    case=check.describe(images=images, n_layers=3, n_heads=4, d_model=32))


@pytest.mark.hidden
@pytest.mark.points(2)
def test_clip_large_batch_and_training_hidden(impl):
    a, b = tensors.randn((64, 8), 73), tensors.randn((64, 8), 74)
    check.close(impl.clip_loss(a, b, 0.07), O.clip_loss_loop(a, b, 0.07), unit="clip_loss", kind="loss",
                case=check.describe(image_emb=a, text_emb=b, temperature=0.07), mistakes=O.clip_mistakes(a, b, 0.07))
    # 200 steps of gradient descent on both embeddings of 16 random pairs in 16 dimensions
    x, y = tensors.randn((16, 16), 75).requires_grad_(), tensors.randn((16, 16), 76).requires_grad_()
    opt = torch.optim.SGD([x, y], lr=0.5)
    first = impl.clip_loss(x, y, 0.1).detach().item()
    for _ in range(200):
        opt.zero_grad()
        impl.clip_loss(x, y, 0.1).backward()
        opt.step()
    last = impl.clip_loss(x, y, 0.1).detach().item()
    case = check.describe(pairs=16, dims=16, temperature=0.1, steps=200)
    check.that(last < 0.1 * first, "clip_loss", f"gradient descent on the loss went from {first:.4f} to {last:.4f}; "
               "aligning random pairs must drive it far down", case=case)
    check.equal(impl.retrieval_accuracy(x.detach(), y.detach()), (1.0, 1.0), unit="retrieval_accuracy", case=case,
                what="retrieval accuracy after aligning the pairs")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_splice_edges_hidden(impl):
    ids = torch.tensor([[7, 3, 4], [3, 4, 7]])                             # placeholder 7: last, then first
    embeds = tensors.randn((2, 3, 2), 77)
    feats = tensors.randn((2, 1, 2), 78)
    labels = ids.clone()
    out, new_labels = impl.splice_image_tokens(ids, embeds, feats, 7, labels)
    want, want_labels = O.splice_loop(ids, embeds, feats, 7, labels)
    case = check.describe(input_ids=ids, image_token_id=7, N=1)
    check.close(out, want, unit="splice_image_tokens", case=case, kind="exact")
    check.close(new_labels, want_labels, unit="splice_image_tokens", case=case, what="new labels")
    one = torch.tensor([[7]])
    out, new_labels = impl.splice_image_tokens(one, embeds[:1, :1], tensors.randn((1, 4, 2), 79), 7, one)
    check.close(new_labels, torch.full((1, 4), -100), unit="splice_image_tokens", what="labels of an image-only row",
                case=check.describe(input_ids=one, N=4))


@pytest.mark.hidden
@pytest.mark.points(1)
def test_stage1_training_moves_only_projector_hidden(impl):
    model = O.vlm(impl, 80)
    names = impl.freeze_for_stage(model, 1)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    images = tensors.randn((2, 3, 8, 8), 81, torch.float32)
    ids = torch.tensor([[2, 1, 3, 4], [2, 1, 5, 6]])
    for _ in range(3):
        opt.zero_grad()
        model(images, ids, ids)[1].backward()
        opt.step()
    moved = sorted(n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n]))
    check.equal(moved, sorted(names), unit="freeze_for_stage", case=check.describe(stage=1, steps=3),
                what="the parameters that changed in stage-1 training")
