"""Topic 20: vision-language models — images cut into patches, aligned with text, fed to a language model.

A Vision Transformer (ViT; Dosovitskiy et al. 2021) reads an image the way a language model
reads text: it cuts the image into P × P patches, flattens each patch into a vector, maps it
linearly to d_model (the "patch embedding", which is a convolution with stride P), prepends a
learned CLS token, adds learned position embeddings and runs Transformer blocks without a
causal mask. Two ways connect it to language:

- CLIP (Radford et al. 2021) trains an image encoder and a text encoder so that matching
  (image, caption) pairs have a high cosine similarity and mismatched pairs a low one: a
  symmetric cross-entropy over the similarity matrix of a batch (InfoNCE in both directions).
- A captioning / chat model feeds image features to a language model. LLaVA (Liu et al. 2023)
  maps the patch features with a small MLP "projector" into the LM's embedding space and
  splices them into the token sequence at a placeholder token, with no loss on those
  positions; it trains in stages (first the projector alone, then projector and LM, the
  vision encoder frozen throughout). Flamingo (Alayrac et al. 2022) instead inserts gated
  cross-attention blocks into a frozen LM, with tanh gates initialised at 0 so that the
  model starts exactly as the pretrained LM.

Shapes: B batch, C image channels, H × W image size, P patch side, N = (H/P)·(W/P) patches,
d (d_model) width, T text length, M media (image) tokens, D embedding width.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.lib.llama import TinyLlama
from llmlab.lib.nn import MLP


# ---------------------------------------------------------------- images as sequences of patches

def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """Cut images into non-overlapping patch × patch squares and flatten each into a vector.

    images: (B, C, H, W) float32 or float64; patch: int P ≥ 1 that divides both H and W.
    Returns (B, N, C·P·P) of the images' dtype, N = (H/P)·(W/P), with this exact order:
      - patches are row-major over the (H/P) × (W/P) grid: patch n = i·(W/P) + j is the one in
        grid row i (image rows i·P … i·P + P − 1) and grid column j (image columns j·P …
        j·P + P − 1): left to right along the top row of patches, then the next row;
      - inside a patch the vector is flattened channel first, then row, then column:
        out[b, n, c·P·P + r·P + s] = images[b, c, i·P + r, j·P + s].
    This is the order of F.unfold(images, P, stride=P).transpose(1, 2) and of a
    Conv2d(C, d, P, stride=P) weight flattened as weight.reshape(d, C·P·P). The function is
    differentiable (it only moves values). Write it without F.unfold.
    Raises ValueError when images is not 4-D, patch < 1, or H or W is not divisible by patch.
    """
    # Hint: reshape to (B, C, H/P, P, W/P, P), then permute the axes into (B, H/P, W/P, C, P, P).
    ### BEGIN SOLUTION
    if images.dim() != 4:
        raise ValueError(f"patchify: images must be (B, C, H, W), got shape {tuple(images.shape)}")
    B, C, H, W = images.shape
    if patch < 1 or H % patch or W % patch:
        raise ValueError(f"patchify: patch must be ≥ 1 and divide H = {H} and W = {W}, got {patch}")
    gh, gw = H // patch, W // patch
    x = images.reshape(B, C, gh, patch, gw, patch)                     # (B, C, gh, P, gw, P)
    x = x.permute(0, 2, 4, 1, 3, 5)                                    # (B, gh, gw, C, P, P)
    return x.reshape(B, gh * gw, C * patch * patch)                    # (B, N, C·P·P)
    ### END SOLUTION


class PatchEmbedding(nn.Module):
    """The ViT's first layer: one linear map of every flattened patch, as a strided convolution.

    self.proj = Conv2d(in_channels, d_model, kernel_size=patch, stride=patch) (given). A
    convolution whose kernel and stride both equal the patch side applies the same linear map
    W · patch + b to each patch, with W = proj.weight.reshape(d_model, C·P·P) in patchify's
    flattening order.
    """

    def __init__(self, in_channels: int, patch: int, d_model: int):
        super().__init__()
        self.patch = patch
        self.proj = nn.Conv2d(in_channels, d_model, kernel_size=patch, stride=patch)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, H, W), H and W divisible by the patch side -> (B, N, d_model): token n is
        the embedding of patch n in patchify's row-major order, equal to
        patchify(images, P) @ W.T + proj.bias with W = proj.weight.reshape(d_model, −1).
        The images' dtype must be the parameters' dtype."""
        ### BEGIN SOLUTION
        x = self.proj(images)                                          # (B, d, H/P, W/P)
        return x.flatten(2).transpose(1, 2)                            # (B, N, d)
        ### END SOLUTION


class EncoderBlock(nn.Module):
    """Given: a pre-norm Transformer block WITHOUT a causal mask (every token sees every token):
    x + attn(ln1(x)), then x + mlp(ln2(x)), with the course's exact-GELU MLP."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, batch_first=True)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:               # (B, L, d) -> (B, L, d)
        h = self.ln1(x)
        x = x + self.attn(h, h, h, need_weights=False)[0]
        return x + self.mlp(self.ln2(x))


class ViTEncoder(nn.Module):
    """A tiny Vision Transformer: patch embedding, a learned CLS token, learned positions, blocks.

    Given __init__: patch_embed = PatchEmbedding(in_channels, patch, d_model);
    cls_token (1, 1, d_model) and pos_embed (1, 1 + N, d_model) learned Parameters
    (N = (image_size / patch)²; initialised from N(0, 0.02²)); blocks, a ModuleList of
    n_layers EncoderBlocks; norm, a final LayerNorm(d_model).
    """

    def __init__(self, image_size: int, patch: int, in_channels: int, d_model: int, n_layers: int, n_heads: int):
        super().__init__()
        if image_size % patch:
            raise ValueError(f"image_size {image_size} is not divisible by patch {patch}")
        n_patches = (image_size // patch) ** 2
        self.image_size = image_size
        self.patch_embed = PatchEmbedding(in_channels, patch, d_model)
        self.cls_token = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.pos_embed = nn.Parameter(torch.randn(1, 1 + n_patches, d_model) * 0.02)
        self.blocks = nn.ModuleList(EncoderBlock(d_model, n_heads) for _ in range(n_layers))
        self.norm = nn.LayerNorm(d_model)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """images (B, C, image_size, image_size) in the parameters' dtype -> (B, 1 + N, d_model).

        The sequence is [CLS, patch 0, …, patch N−1] (the CLS token FIRST, the patches in
        patchify's order, each row of the batch gets the same cls_token); pos_embed[0, t] is
        added to token t; then every block in order; then norm. Row 0 of the output is the
        image's summary (the CLS output); rows 1 … N are the patch features."""
        ### BEGIN SOLUTION
        patches = self.patch_embed(images)                             # (B, N, d)
        cls = self.cls_token.expand(patches.shape[0], -1, -1)          # (B, 1, d)
        x = torch.cat([cls, patches], dim=1) + self.pos_embed          # (B, 1 + N, d)
        for block in self.blocks:
            x = block(x)
        return self.norm(x)
        ### END SOLUTION


# ---------------------------------------------------------------- CLIP: aligning images and texts

def clip_loss(image_emb: torch.Tensor, text_emb: torch.Tensor, temperature: float | torch.Tensor) -> torch.Tensor:
    """CLIP's symmetric contrastive loss (InfoNCE in both directions) for N matching pairs.

    image_emb, text_emb: (N, D) float32 or float64 of the same shape and dtype, N ≥ 1; row i of
        each belongs to pair i; no row is all zeros.
    temperature: τ > 0, a Python float or a 0-d tensor (e.g. the exp of a learned log-temperature:
        the loss is then differentiable in it too).
    With u_i = image_emb[i] / ‖image_emb[i]‖₂ and v_j = text_emb[j] / ‖text_emb[j]‖₂,
        logits[i, j] = ⟨u_i, v_j⟩ / τ                       (N, N): DIVIDED by the temperature;
        loss_i2t = mean_i −log softmax_j(logits[i, :])[i]   (each image picks its text among N),
        loss_t2i = mean_j −log softmax_i(logits[:, j])[j]   (each text picks its image among N),
        loss = (loss_i2t + loss_t2i) / 2.
    Returns a 0-d tensor of the inputs' dtype, differentiable in both embeddings.
    Raises ValueError when the inputs are not 2-D, their shapes differ, N = 0, or τ ≤ 0.
    """
    ### BEGIN SOLUTION
    if image_emb.dim() != 2 or image_emb.shape != text_emb.shape or image_emb.shape[0] == 0:
        raise ValueError(f"clip_loss: need two (N, D) tensors of the same shape with N ≥ 1, "
                         f"got {tuple(image_emb.shape)} and {tuple(text_emb.shape)}")
    tau = float(temperature.detach()) if isinstance(temperature, torch.Tensor) else float(temperature)
    if tau <= 0:
        raise ValueError(f"clip_loss: temperature must be > 0, got {tau}")
    u = image_emb / image_emb.norm(dim=-1, keepdim=True)               # (N, D)
    v = text_emb / text_emb.norm(dim=-1, keepdim=True)                 # (N, D)
    logits = u @ v.T / temperature                                     # (N, N)
    targets = torch.arange(logits.shape[0])                            # (N,)
    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2
    ### END SOLUTION


def retrieval_accuracy(image_emb: torch.Tensor, text_emb: torch.Tensor) -> tuple[float, float]:
    """Top-1 retrieval accuracy in both directions for N matching pairs (row i with row i).

    image_emb, text_emb: (N, D) float of the same shape, N ≥ 1, no row all zeros.
    Similarity is the cosine ⟨u_i, v_j⟩ (rows normalised as in clip_loss). Image i retrieves
    the text j with the highest similarity (ties go to the lowest j); text j retrieves the
    image i with the highest similarity (ties go to the lowest i).
    Returns (image_to_text, text_to_image), Python floats in [0, 1]: the fraction of images
    whose retrieved text is their own, and the fraction of texts whose retrieved image is
    their own. Chance level is 1/N.
    Raises ValueError when the inputs are not 2-D, their shapes differ, or N = 0.
    """
    ### BEGIN SOLUTION
    if image_emb.dim() != 2 or image_emb.shape != text_emb.shape or image_emb.shape[0] == 0:
        raise ValueError(f"retrieval_accuracy: need two (N, D) tensors of the same shape with N ≥ 1, "
                         f"got {tuple(image_emb.shape)} and {tuple(text_emb.shape)}")
    u = image_emb / image_emb.norm(dim=-1, keepdim=True)
    v = text_emb / text_emb.norm(dim=-1, keepdim=True)
    sim = u @ v.T                                                      # (N, N)
    truth = torch.arange(sim.shape[0])
    i2t = (sim.argmax(dim=1) == truth).double().mean().item()
    t2i = (sim.argmax(dim=0) == truth).double().mean().item()
    return i2t, t2i
    ### END SOLUTION


# ---------------------------------------------------------------- LLaVA: image tokens inside the LM

class MLPProjector(nn.Module):
    """LLaVA-1.5's projector from vision features to the LM's embedding space.

    Given __init__: fc1 = Linear(d_vision, hidden), fc2 = Linear(hidden, d_text) (hidden
    defaults to d_text)."""

    def __init__(self, d_vision: int, d_text: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or d_text
        self.fc1 = nn.Linear(d_vision, hidden)
        self.fc2 = nn.Linear(hidden, d_text)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        """features (..., d_vision) -> (..., d_text): fc2(GELU(fc1(features))) with the exact
        GELU x·Φ(x) (F.gelu's default, not the tanh approximation)."""
        ### BEGIN SOLUTION
        return self.fc2(F.gelu(self.fc1(features)))
        ### END SOLUTION


def splice_image_tokens(input_ids: torch.Tensor, token_embeds: torch.Tensor, image_features: torch.Tensor,
                        image_token_id: int, labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Replace the image placeholder of every row by that row's image features; no loss there.

    input_ids:      (B, T) int64; every row holds the placeholder image_token_id exactly once,
                    at position k_b (which may differ between rows).
    token_embeds:   (B, T, D) float, the LM's embeddings of input_ids.
    image_features: (B, N, D) of token_embeds' dtype, N ≥ 1: row b's image, already projected.
    labels:         (B, T) int64, the targets aligned with input_ids (−100 = no loss).
    Returns (embeds (B, T − 1 + N, D), new_labels (B, T − 1 + N) int64), per row b:
        embeds[b]     = token_embeds[b, :k_b]  ++ image_features[b]  ++ token_embeds[b, k_b + 1:]
        new_labels[b] = labels[b, :k_b]        ++ [−100] × N         ++ labels[b, k_b + 1:]
    so the N image positions k_b … k_b + N − 1 carry the image and are never trained on, the
    placeholder itself disappears, text before it keeps its positions and text after it moves
    N − 1 places right. Differentiable in token_embeds and image_features.
    Raises ValueError when a row has no placeholder ("missing placeholder"), when a row has more
    than one or image_features does not hold exactly one image per row ("count mismatch"), or
    when the shapes disagree (input_ids not 2-D, token_embeds not (B, T, D), labels not (B, T),
    image_features not (·, N, D) with N ≥ 1).
    """
    ### BEGIN SOLUTION
    # token_embeds (B, T, D) with shape[:2] == input_ids.shape also proves that input_ids is 2-D
    if (token_embeds.dim() != 3 or token_embeds.shape[:2] != input_ids.shape or labels.shape != input_ids.shape or image_features.dim() != 3 or image_features.shape[1] == 0
            or image_features.shape[2] != token_embeds.shape[2]):
        raise ValueError(f"splice_image_tokens: need input_ids (B, T), token_embeds (B, T, D), labels (B, T) and "
                         f"image_features (B, N, D), got {tuple(input_ids.shape)}, {tuple(token_embeds.shape)}, "
                         f"{tuple(labels.shape)} and {tuple(image_features.shape)}")
    is_image = input_ids == image_token_id                             # (B, T)
    counts = is_image.sum(dim=1)                                       # (B,)
    if bool((counts == 0).any()):
        raise ValueError(f"splice_image_tokens: missing placeholder {image_token_id} in row(s) "
                         f"{(counts == 0).nonzero().flatten().tolist()}")
    if bool((counts > 1).any()) or image_features.shape[0] != input_ids.shape[0]:
        raise ValueError(f"splice_image_tokens: count mismatch: {counts.tolist()} placeholders per row "
                         f"for {image_features.shape[0]} images (need exactly one per row)")
    N = image_features.shape[1]
    embeds, new_labels = [], []
    for b, k in enumerate(is_image.int().argmax(dim=1).tolist()):
        embeds.append(torch.cat([token_embeds[b, :k], image_features[b], token_embeds[b, k + 1:]]))   # (T−1+N, D)
        new_labels.append(torch.cat([labels[b, :k], labels.new_full((N,), -100), labels[b, k + 1:]]))
    return torch.stack(embeds), torch.stack(new_labels)
    ### END SOLUTION


def lm_logits_from_embeds(lm: TinyLlama, embeds: torch.Tensor) -> torch.Tensor:
    """Given: run the given TinyLlama on input EMBEDDINGS (B, L, C), L ≤ block_size, instead of
    token ids: its causal blocks with RoPE positions 0 … L − 1, final norm and head -> (B, L, V)."""
    L = embeds.shape[1]
    cos, sin = lm.rope_cos[:L], lm.rope_sin[:L]
    x = embeds
    for block in lm.blocks:
        x = block(x, cos, sin)
    return lm.lm_head(lm.norm(x))


class VisionLanguageModel(nn.Module):
    """Given: a LLaVA-style captioner. vision (ViTEncoder) -> its patch features (rows 1 … N,
    without CLS) -> projector (MLPProjector) -> spliced at the placeholder into the LM's token
    embeddings -> lm (the given TinyLlama) on the embeddings."""

    def __init__(self, vision: ViTEncoder, projector: MLPProjector, lm: TinyLlama, image_token_id: int):
        super().__init__()
        self.vision, self.projector, self.lm = vision, projector, lm
        self.image_token_id = image_token_id

    def forward(self, images: torch.Tensor, input_ids: torch.Tensor,
                labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """images (B, C, S, S), input_ids and labels (B, T) -> (logits (B, L, V), loss, new_labels (B, L)),
        L = T − 1 + N; the loss is next-token cross-entropy: logits[:, t] predicts new_labels[:, t + 1]."""
        features = self.projector(self.vision(images)[:, 1:])          # (B, N, C_lm)
        embeds, new_labels = splice_image_tokens(input_ids, self.lm.tok_emb(input_ids), features,
                                                 self.image_token_id, labels)
        logits = lm_logits_from_embeds(self.lm, embeds)                # (B, L, V)
        loss = F.cross_entropy(logits[:, :-1].flatten(0, 1), new_labels[:, 1:].flatten(), ignore_index=-100)
        return logits, loss, new_labels


def freeze_for_stage(model: nn.Module, stage: int) -> list[str]:
    """Set requires_grad of every parameter of a VisionLanguageModel for a LLaVA training stage.

    model: a module with the children `vision`, `projector` and `lm` (it may have others).
    stage 1 (feature alignment): only the parameters of model.projector train;
    stage 2 (end-to-end fine-tuning): the parameters of model.projector and model.lm train.
    In both stages every other parameter (model.vision, anything else) is frozen:
    requires_grad False. Every parameter is set, whatever its previous state.
    Returns the names (as model.named_parameters() gives them, in that order) of the
    parameters that train.
    Raises ValueError for a stage other than 1 or 2 (nothing is changed then).
    """
    ### BEGIN SOLUTION
    if stage not in (1, 2):
        raise ValueError(f"freeze_for_stage: stage must be 1 (projector) or 2 (projector + LM), got {stage!r}")
    trainable = ("projector.",) if stage == 1 else ("projector.", "lm.")
    names = []
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(trainable))
        if param.requires_grad:
            names.append(name)
    return names
    ### END SOLUTION


# ---------------------------------------------------------------- Flamingo: gated cross-attention

class GatedCrossAttention(nn.Module):
    """Flamingo's gated cross-attention block, inserted before a (frozen) LM layer.

    __init__ creates, in this order and with these names:
        norm    = LayerNorm(d_model)
        attn    = MultiheadAttention(d_model, n_heads, kdim=d_media, vdim=d_media, batch_first=True)
        attn_gate = a 0-d Parameter, initialised to 0
        ff_norm = LayerNorm(d_model)
        ff      = llmlab.lib.nn.MLP(d_model)
        ff_gate = a 0-d Parameter, initialised to 0
    Because tanh(0) = 0 the block is exactly the identity at initialisation (the LM starts
    unchanged), yet the gates receive gradient from the first step.
    """

    def __init__(self, d_model: int, d_media: int, n_heads: int):
        ### BEGIN SOLUTION
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.attn = nn.MultiheadAttention(d_model, n_heads, kdim=d_media, vdim=d_media, batch_first=True)
        self.attn_gate = nn.Parameter(torch.zeros(()))
        self.ff_norm = nn.LayerNorm(d_model)
        self.ff = MLP(d_model)
        self.ff_gate = nn.Parameter(torch.zeros(()))
        ### END SOLUTION

    def forward(self, x: torch.Tensor, media: torch.Tensor) -> torch.Tensor:
        """x (B, T, d_model) text states, media (B, M, d_media) image tokens -> (B, T, d_model):
            y   = x + tanh(attn_gate) · attn(query = norm(x), key = value = media)
            out = y + tanh(ff_gate) · ff(ff_norm(y))
        Every text position attends to all M media tokens (no mask); media is not normalised."""
        ### BEGIN SOLUTION
        h = self.norm(x)                                               # (B, T, d)
        y = x + torch.tanh(self.attn_gate) * self.attn(h, media, media, need_weights=False)[0]
        return y + torch.tanh(self.ff_gate) * self.ff(self.ff_norm(y))
        ### END SOLUTION
