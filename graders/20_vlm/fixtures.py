"""Golden data for 20_vlm, generated from solutions/ by `llmlab fixtures 20_vlm`.

Records (float64 unless stated):
  patchify         images (2, 3, 4, 6) and patchify(images, 2) (2, 6, 12);
  patch_embedding  a PatchEmbedding(3, 2, 5) with parameters drawn by randomize_parameters(seed 201),
                   its input images (2, 3, 4, 6) and output (2, 6, 5);
  vit              a ViTEncoder of vlm_oracle.VIT with parameters drawn by vlm_oracle.vit(seed 202),
                   images (2, 3, 8, 8) and its output (2, 5, 16);
  clip             image_emb, text_emb (6, 4), temperature 0.07 and the loss (shape (1,));
  retrieval        image_emb, text_emb (7, 3) and the two accuracies (shape (2,));
  splice           input_ids (3, 6) int64 with the placeholder 1 once per row, token_embeds (3, 6, 4),
                   image_features (3, 3, 4), labels (3, 6) int64, and the spliced embeds (3, 8, 4)
                   and new_labels (3, 8) int64;
  gated            a GatedCrossAttention of vlm_oracle.GATED, parameters by vlm_oracle.gated(seed 203)
                   with the gates set to 0.6 and −0.9, x (2, 5, 16), media (2, 3, 12) and its output.
"""

from __future__ import annotations

import torch

import vlm_oracle as O
from llmlab.testing import tensors

SEED = 20


def generate(impl) -> dict:
    records = {}
    images = tensors.randn((2, 3, 4, 6), SEED)
    records["patchify"] = {"images": images, "out": impl.patchify(images, 2)}

    embed = tensors.randomize_parameters(impl.PatchEmbedding(3, 2, 5).double(), 201)
    images = tensors.randn((2, 3, 4, 6), SEED + 1)
    with torch.no_grad():
        records["patch_embedding"] = {"images": images, "out": embed(images)}

    model = O.vit(impl, 202)
    images = tensors.randn((2, 3, 8, 8), SEED + 2)
    with torch.no_grad():
        records["vit"] = {"images": images, "out": model(images)}

    a, b = tensors.randn((6, 4), SEED + 3), tensors.randn((6, 4), SEED + 4)
    records["clip"] = {"image_emb": a, "text_emb": b, "temperature": torch.tensor([0.07], dtype=torch.float64),
                       "loss": impl.clip_loss(a, b, 0.07).reshape(1)}

    a, b = tensors.randn((7, 3), SEED + 5), tensors.randn((7, 3), SEED + 6)
    records["retrieval"] = {"image_emb": a, "text_emb": b,
                            "accuracy": torch.tensor(impl.retrieval_accuracy(a, b), dtype=torch.float64)}

    ids, embeds, feats, labels = O.splice_inputs(SEED + 7, 3, 6, 3, 4)
    out, new_labels = impl.splice_image_tokens(ids, embeds, feats, 1, labels)
    records["splice"] = {"input_ids": ids, "token_embeds": embeds, "image_features": feats, "labels": labels,
                         "embeds": out, "new_labels": new_labels}

    block = O.gated(impl, 203, gates=(0.6, -0.9))
    x, media = tensors.randn((2, 5, 16), SEED + 8), tensors.randn((2, 3, 12), SEED + 9)
    with torch.no_grad():
        records["gated"] = {"x": x, "media": media, "out": block(x, media)}
    return records
