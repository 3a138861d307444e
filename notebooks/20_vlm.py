# ---
# jupyter:
#   jupytext:
#     text_representation:
#       extension: .py
#       format_name: percent
#   kernelspec:
#     display_name: Python 3
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 20 · Vision-language models
#
# A language model reads a sequence of vectors. To let it see, we turn an image into such a
# sequence too: cut it into small square patches, map every patch linearly to a vector, and
# run a Transformer over the patches — a **Vision Transformer** (ViT). Then we connect vision
# and language in the two ways modern systems do: **CLIP** trains an image encoder and a text
# encoder so that an image and its caption land close together; **LLaVA**-style models put
# projected image features directly *into* the language model's input sequence, and
# **Flamingo**-style models let the language model look at the image through gated
# cross-attention layers that start switched off.
#
# | unit | what it does |
# |---|---|
# | `patchify(images, patch)` | `(B, C, H, W)` → `(B, N, C·P·P)`: patches row-major over the grid, flattened (channel, row, column) |
# | `PatchEmbedding.forward` | a stride-`P` convolution = one linear map applied to every patch |
# | `ViTEncoder.forward` | `[CLS, patches] + positions` → Transformer blocks → norm |
# | `clip_loss(image_emb, text_emb, τ)` | symmetric InfoNCE over the cosine-similarity matrix divided by `τ` |
# | `retrieval_accuracy(image_emb, text_emb)` | top-1 image→text and text→image accuracy |
# | `MLPProjector.forward` | `fc2(GELU(fc1(x)))`: vision features into the LM's embedding space |
# | `splice_image_tokens(...)` | the image features replace a placeholder token; their labels are −100 |
# | `freeze_for_stage(model, stage)` | stage 1 trains the projector, stage 2 projector + LM |
# | `GatedCrossAttention` | `x + tanh(g)·attn(x, image)`, gates at 0: exactly the identity at first |
#
# The whole chapter executes in under 60 s on a laptop CPU (the experiment trains two tiny
# models on 16 × 16 images and prints the seconds it took).

# %% [markdown]
# ## 1. Intuition
#
# **Images as sequences.** An image of $H \times W$ pixels with $C$ channels, cut into
# $P \times P$ patches, gives $N = (H/P)(W/P)$ patches of $C P^2$ numbers each. A ViT
# numbers them **row-major over the grid** — left to right along the top row of patches, then
# the next row — and flattens each patch channel first, then row, then column:
#
# $$
# \text{patch}_{iW/P + j}[c P^2 + r P + s] = x[c,\; iP + r,\; jP + s].
# $$
#
# The order is a convention, but a binding one: it must match the position embeddings a model
# was trained with, and the flattened weight of the equivalent convolution.
#
# **The patch embedding is a convolution.** A linear map $z_n = W\, \text{patch}_n + b$ with
# $W \in \mathbb{R}^{d \times C P^2}$ applied to every patch is exactly a convolution with kernel
# size $P$ and stride $P$ (the kernel slides by a whole patch, so the windows never overlap),
# with `weight.reshape(d, C·P·P)` $= W$. Convolutions are simply the fast way to compute it.
#
# **CLS and positions.** Attention is permutation-equivariant: without position information
# the model could not tell the top-left patch from the bottom-right one. So a learned vector
# $p_t$ is added to token $t$. A learned **CLS** token is put first; after the blocks its output
# is the summary of the whole image. Unlike a language model there is **no causal mask**: every
# patch sees every patch.
#
# **CLIP.** Take a batch of $N$ (image, caption) pairs, encode them, and normalise:
# $u_i = f(\text{image}_i)/\lVert f(\text{image}_i) \rVert$ and $v_j = g(\text{text}_j)/\lVert g(\text{text}_j) \rVert$.
# The logits are the cosine similarities divided by a temperature $\tau$,
#
# $$
# \ell_{ij} = \frac{u_i^\top v_j}{\tau},
# $$
#
# and each image should pick its own caption among the $N$ (a softmax over row $i$), and each
# caption its own image (a softmax over column $j$):
#
# $$
# \mathcal{L} = \frac{1}{2}\left( -\frac{1}{N}\sum_{i} \log \frac{e^{\ell_{ii}}}{\sum_{j} e^{\ell_{ij}}}
#   \; - \; \frac{1}{N}\sum_{j} \log \frac{e^{\ell_{jj}}}{\sum_{i} e^{\ell_{ij}}} \right).
# $$
#
# Cosines lie in $[-1, 1]$, so dividing by a small $\tau$ (CLIP learns it, starting at 0.07)
# sharpens the softmax. Multiplying by $\tau$ instead flattens it: at $\tau = 0.07$ every logit
# would lie within $\pm 0.07$ and the loss would stay near $\log N$ — a classic mistake. Keeping only one of the two
# directions is the other: it still trains, but the loss is no longer symmetric in the two
# modalities.
#
# **LLaVA.** The ViT's patch features go through a small MLP, the **projector**, into the
# language model's embedding space. The text contains a placeholder token `<image>`; it is
# replaced by the $N$ projected patch features, and the language model simply reads the longer
# sequence. Those positions carry no next-token target: their labels are −100, the
# `ignore_index` of cross-entropy — the model is never asked to *predict* an image. Training
# runs in stages: stage 1 trains only the projector (the vision encoder and the LM stay frozen),
# aligning the two spaces cheaply; stage 2 trains the projector and the LM together.
#
# **Flamingo.** Instead of lengthening the input, insert cross-attention layers into a frozen LM:
#
# $$
# y = x + \tanh(\alpha)\, \mathrm{Attn}\bigl(\mathrm{LN}(x), \text{media}\bigr), \qquad
# \text{out} = y + \tanh(\beta)\, \mathrm{MLP}\bigl(\mathrm{LN}(y)\bigr),
# $$
#
# with the gates $\alpha = \beta = 0$ at initialisation. Then $\tanh(0) = 0$ and the block is
# exactly the identity: the pretrained LM is untouched at step 0. But the gates still learn:
# $\partial\, \text{out} / \partial \alpha = \tanh'(0) \cdot \mathrm{Attn}(\cdot) = \mathrm{Attn}(\cdot) \neq 0$.
# Initialising the gates open (at 1, say) would inject random attention outputs into the LM from
# the first step.

# %% [markdown]
# ## 2. A calculation by hand
#
# **Patch order.** One channel, a $4 \times 4$ image whose pixel at row $r$, column $s$ holds
# $10 r + s$, patch side 2. The grid is $2 \times 2$; row-major order visits top-left,
# top-right, bottom-left, bottom-right:
#
# * patch 0 (rows 0–1, columns 0–1): `[0, 1, 10, 11]`; patch 1 (rows 0–1, columns 2–3): `[2, 3, 12, 13]`;
# * patch 2 (rows 2–3, columns 0–1): `[20, 21, 30, 31]`; patch 3: `[22, 23, 32, 33]`.
#
# Column-major order would swap patches 1 and 2.
#
# **A CLIP loss.** Two pairs in two dimensions: image embeddings $(2, 0)$ and $(0, 3)$, text
# embeddings $(1, 0)$ and $(0.3, 0.4)$. Normalised: $u_1 = (1, 0)$, $u_2 = (0, 1)$, $v_1 = (1, 0)$,
# $v_2 = (0.6, 0.8)$. The cosines are $\begin{pmatrix} 1 & 0.6 \\ 0 & 0.8 \end{pmatrix}$ and with
# $\tau = 0.5$ the logits $\begin{pmatrix} 2 & 1.2 \\ 0 & 1.6 \end{pmatrix}$. For two candidates
# $-\log \frac{e^{a}}{e^{a} + e^{b}} = \log(1 + e^{b - a})$, so
#
# * image → text (rows): $\frac{1}{2}\left(\log(1 + e^{-0.8}) + \log(1 + e^{-1.6})\right) = \frac{1}{2}(0.3711 + 0.1839) = 0.2775$;
# * text → image (columns): $\frac{1}{2}\left(\log(1 + e^{-2}) + \log(1 + e^{-0.4})\right) = \frac{1}{2}(0.1269 + 0.5130) = 0.3200$;
# * the loss is their mean, $0.2987$. The two directions differ: the matrix is not symmetric.

# %%
import math

import torch

image_h = torch.tensor([[2.0, 0.0], [0.0, 3.0]])
text_h = torch.tensor([[1.0, 0.0], [0.3, 0.4]])
rows_h = (math.log1p(math.exp(-0.8)) + math.log1p(math.exp(-1.6))) / 2
cols_h = (math.log1p(math.exp(-2.0)) + math.log1p(math.exp(-0.4))) / 2
print(f"by hand: image→text {rows_h:.4f}, text→image {cols_h:.4f}, loss {(rows_h + cols_h) / 2:.4f}")
pixels_h = (10 * torch.arange(4)[:, None] + torch.arange(4)).float()[None, None]      # (1, 1, 4, 4)

# %% [markdown]
# ## 3. Implementation
#
# One module, `vlm.py`. It builds on the given library: `llmlab.lib.nn.MLP` (the exact-GELU
# feed-forward of chapter 04) and `llmlab.lib.llama.TinyLlama` (chapter 06's model).

# %%
#| include: vlm.py::header

# %% [markdown]
# ### 3.1 Patches and the patch embedding
#
# `patchify` is pure index bookkeeping: reshape `(B, C, H, W)` to `(B, C, H/P, P, W/P, P)`, move
# the two grid axes to the front, and flatten. `PatchEmbedding` owns a `Conv2d(C, d, P, stride=P)`;
# its forward turns the `(B, d, H/P, W/P)` output into `(B, N, d)` in the same row-major order.
# Note the trap: the convolution's output has the channel axis *before* the grid, so a plain
# `reshape(B, N, d)` mixes channels and positions; flatten the grid and then transpose.

# %%
#| include: vlm.py::patchify,PatchEmbedding

# %%
print(patchify(pixels_h, 2)[0].int().tolist(), "(by hand: [0, 1, 10, 11], [2, 3, 12, 13], [20, 21, 30, 31], ...)")
torch.manual_seed(0)
embed_demo = PatchEmbedding(1, 2, 3)
with torch.no_grad():
    as_linear = patchify(pixels_h, 2) @ embed_demo.proj.weight.reshape(3, -1).T + embed_demo.proj.bias
    print("convolution == linear on patches:", torch.allclose(embed_demo(pixels_h), as_linear, atol=1e-5))

# %%
#| grade: test_patchify_by_hand_and_reference test_patchify_matches_unfold_and_loop test_patchify_gradients_and_views test_patchify_raises test_patch_embedding_is_linear_on_patches test_patch_embedding_gradients_and_dtype test_patches_large_images_hidden

# %% [markdown]
# ### 3.2 A tiny ViT
#
# The given `EncoderBlock` is a pre-norm Transformer block *without* a causal mask. The encoder
# prepends the CLS token (one learned vector, the same for every image), adds the learned
# position embeddings, runs the blocks and a final LayerNorm. Row 0 of its output summarises the
# image; rows `1 … N` are the patch features.

# %%
#| include: vlm.py::EncoderBlock,ViTEncoder

# %%
torch.manual_seed(0)
vit_demo = ViTEncoder(image_size=16, patch=4, in_channels=3, d_model=32, n_layers=2, n_heads=2)
print("output shape:", tuple(vit_demo(torch.rand(2, 3, 16, 16)).shape), "= (batch, 1 + 16 patches, d_model)")

# %%
#| grade: test_vit_matches_oracle_and_reference test_vit_cls_first_positions_and_gradients test_vit_deeper_float32_hidden

# %% [markdown]
# ### 3.3 The CLIP loss and retrieval
#
# `clip_loss` normalises the rows, divides the similarity matrix by `τ` and averages the
# row-wise and column-wise cross-entropies with the diagonal as targets. `τ` may be a Python
# float or a 0-d tensor, so a learned log-temperature trains along. `retrieval_accuracy`
# measures what CLIP is for: for each image, is the most similar caption its own (and the other
# way round)?

# %%
#| include: vlm.py::clip_loss,retrieval_accuracy

# %%
print(f"clip_loss: {clip_loss(image_h, text_h, 0.5).item():.4f} (by hand {(rows_h + cols_h) / 2:.4f})")
print("retrieval (image→text, text→image):", retrieval_accuracy(image_h, text_h))

# %%
#| grade: test_clip_loss_by_hand_and_reference test_clip_loss_matches_oracle_and_properties test_clip_loss_limits test_clip_loss_gradients test_clip_loss_raises test_retrieval_by_hand_ties_and_reference test_retrieval_matches_loop_oracle_and_raises test_clip_large_batch_and_training_hidden

# %% [markdown]
# ### 3.4 Image tokens inside the language model
#
# The projector maps vision features to the LM's width. `splice_image_tokens` finds the
# placeholder in each row (its position may differ between rows), puts the row's `N` image
# features there and the label −100 at those `N` positions; the sequence grows by `N − 1`.
# The given `lm_logits_from_embeds` runs the given `TinyLlama` on embeddings instead of ids, and
# the given `VisionLanguageModel` chains ViT patch features → projector → splice → LM, with the
# next-token loss. `freeze_for_stage` sets `requires_grad` of every parameter for stage 1 or 2.

# %%
#| include: vlm.py::MLPProjector,splice_image_tokens,lm_logits_from_embeds,VisionLanguageModel,freeze_for_stage

# %%
ids_demo = torch.tensor([[5, 1, 6, 7]])                                # 1 is the placeholder
embeds_demo, labels_demo = splice_image_tokens(ids_demo, torch.zeros(1, 4, 2), torch.ones(1, 3, 2), 1, ids_demo)
print("spliced rows (1 = image feature):", embeds_demo[0, :, 0].tolist(), "labels:", labels_demo[0].tolist())

# %%
#| grade: test_projector_matches_oracle_and_gradients test_splice_by_hand_and_reference test_splice_matches_loop_oracle test_splice_gradients test_splice_raises test_splice_edges_hidden test_freeze_stages_set_every_parameter test_freeze_only_trainable_parameters_get_gradients test_freeze_raises_and_changes_nothing test_stage1_training_moves_only_projector_hidden

# %% [markdown]
# ### 3.5 Gated cross-attention
#
# Text states attend to the image tokens (queries from the normalised text, keys and values
# from the media), scaled by `tanh(attn_gate)`; then a gated MLP. Both gates are 0-d parameters
# created at 0.

# %%
#| include: vlm.py::GatedCrossAttention

# %%
torch.manual_seed(0)
gated_demo = GatedCrossAttention(d_model=16, d_media=8, n_heads=2)
text_demo, media_demo = torch.randn(2, 5, 16), torch.randn(2, 3, 8)
out_demo = gated_demo(text_demo, media_demo)
print("identity at initialisation:", torch.equal(out_demo, text_demo))
out_demo.pow(2).sum().backward()
print(f"gradient of the gates at 0: attn_gate {gated_demo.attn_gate.grad.item():.4f}, "
      f"ff_gate {gated_demo.ff_gate.grad.item():.4f}; of the attention output weights: "
      f"{gated_demo.attn.out_proj.weight.grad.abs().max().item():.1f} (behind a closed gate)")

# %%
#| grade: test_gated_identity_at_init test_gated_gates_receive_gradient test_gated_open_matches_oracle_and_reference

# %% [markdown]
# ## 4. Experiment: shapes and colours
#
# A procedural data set: $16 \times 16$ RGB images of one shape (circle, square, triangle, cross)
# in one colour (red, green, blue, yellow) — 16 classes — at a random size and position, on a
# noisy background of random tint, with the caption "a ⟨colour⟩ ⟨shape⟩". Everything is
# seeded. We
#
# 1. train a tiny **CLIP**: a ViT (patch 4, so 16 patches; 2 layers, width 32) with a linear head
#    on its CLS output, and a text encoder (mean of the word embeddings, then an MLP), with a
#    learned temperature; then measure top-1 **retrieval** on 25 held-out sets of 16 images (one
#    per class) against the 16 captions — chance is $1/16 = 0.0625$;
# 2. train a tiny **captioner** in the LLaVA recipe on top of that ViT, kept frozen: a one-layer
#    `TinyLlama` is first pretrained on text alone, then stage 1 trains the projector only, then
#    stage 2 the projector and the LM; after each step we measure **caption accuracy** (greedy
#    decoding of the colour and the shape words on the 400 held-out images).

# %%
import time

import matplotlib.pyplot as plt

from llmlab.lib.llama import LlamaConfig, TinyLlama

torch.set_num_threads(1)   # tiny models: one thread is faster than several waiting on each other
started = time.perf_counter()
COLOURS = {"red": (0.9, 0.15, 0.1), "green": (0.1, 0.8, 0.2), "blue": (0.15, 0.3, 0.95), "yellow": (0.95, 0.85, 0.1)}
SHAPES = ["circle", "square", "triangle", "cross"]
SIZE, N_CLASSES = 16, 16


def make_images(classes, gen):
    """classes (n,) int64 in [0, 16): colour classes // 4, shape classes % 4 -> (n, 3, 16, 16) in [0, 1]."""
    n = classes.shape[0]
    half = 4.0 + 2.0 * torch.rand(n, 1, 1, generator=gen)                 # half-size 4 … 6 pixels
    cy = half + 0.5 + (SIZE - 1 - 2 * half) * torch.rand(n, 1, 1, generator=gen)
    cx = half + 0.5 + (SIZE - 1 - 2 * half) * torch.rand(n, 1, 1, generator=gen)
    dy = torch.arange(SIZE, dtype=torch.float32).view(1, SIZE, 1) - cy      # (n, 16, 1)
    dx = torch.arange(SIZE, dtype=torch.float32).view(1, 1, SIZE) - cx      # (n, 1, 16)
    r2 = dy ** 2 + dx ** 2                                                 # (n, 16, 16)
    masks = torch.stack([(r2 <= half ** 2) & (r2 >= (half - 1.6) ** 2),                        # circle (a ring)
                         (dy.abs() <= 0.85 * half) & (dx.abs() <= 0.85 * half),                # square
                         (dy <= 0.85 * half) & (dy >= -half) & (dx.abs() <= (dy + half) / 2),  # triangle
                         ((dy.abs() <= half / 3) & (dx.abs() <= half))
                         | ((dx.abs() <= half / 3) & (dy.abs() <= half))])                     # cross
    shape = (classes % 4).view(1, n, 1, 1).expand(1, n, SIZE, SIZE)
    mask = masks.gather(0, shape)[0].float()[:, None]                      # (n, 1, 16, 16)
    rgb = (torch.tensor(list(COLOURS.values()))[classes // 4] + 0.1 * torch.randn(n, 3, generator=gen)).clamp(0, 1)
    background = 0.3 + 0.1 * torch.randn(n, 3, 1, 1, generator=gen)
    images = background * (1 - mask) + rgb[:, :, None, None] * mask
    return (images + 0.05 * torch.randn(images.shape, generator=gen)).clamp(0, 1)


VOCAB = ["<pad>", "<image>", "<bos>", "<eos>", "a", *COLOURS, *SHAPES]
WORD = {w: i for i, w in enumerate(VOCAB)}
IMAGE_ID, FIRST_WORD = WORD["<image>"], WORD["red"]


def caption_ids(classes):
    """(n,) classes -> (n, 3) ids of "a <colour> <shape>"."""
    colours, shapes = list(COLOURS), SHAPES
    return torch.tensor([[WORD["a"], WORD[colours[c // 4]], WORD[shapes[c % 4]]] for c in classes.tolist()])


gen = torch.Generator().manual_seed(2020)
train_classes = torch.arange(N_CLASSES).repeat(200)                         # 3200 training images
train_images = make_images(train_classes, gen)
test_classes = torch.arange(N_CLASSES).repeat(25)                           # 25 sets of the 16 classes
test_images = make_images(test_classes, gen)
print(f"{len(train_images)} training and {len(test_images)} held-out images of shape {tuple(train_images.shape[1:])}")

fig, axes = plt.subplots(2, 8, figsize=(12, 3.4))
for c, ax in enumerate(axes.flat):
    ax.imshow(test_images[c].permute(1, 2, 0))
    ax.set_title(" ".join(VOCAB[i] for i in caption_ids(torch.tensor([c]))[0, 1:]), fontsize=8)
    ax.axis("off")
fig.suptitle("one held-out image per class")
plt.show()

# %% [markdown]
# ### 4.1 A tiny CLIP

# %%
D = 32


class TextEncoder(torch.nn.Module):
    """Mean of the caption's word embeddings, then an MLP (captions here are bags of two content words)."""

    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(len(VOCAB), D)
        self.mlp = MLPProjector(D, D, 64)

    def forward(self, ids):                                                # (n, L) -> (n, D)
        return self.mlp(self.emb(ids).mean(dim=1))


torch.manual_seed(0)
vit = ViTEncoder(image_size=SIZE, patch=4, in_channels=3, d_model=D, n_layers=2, n_heads=2)
image_head, text_encoder = torch.nn.Linear(D, D), TextEncoder()
log_tau = torch.nn.Parameter(torch.tensor(math.log(0.07)))                 # CLIP's initial temperature


def embed_images(images):
    return image_head(vit(images)[:, 0])                                   # the CLS output


def retrieval_on_test():
    """Mean (image→text, text→image) top-1 accuracy over the 25 held-out sets of 16 images."""
    with torch.no_grad():
        images = embed_images(test_images).view(25, N_CLASSES, D)
        texts = text_encoder(caption_ids(torch.arange(N_CLASSES)))
        accuracy = torch.tensor([retrieval_accuracy(images[k], texts) for k in range(25)])
    return accuracy.mean(dim=0).tolist()


before = retrieval_on_test()
params = [*vit.parameters(), *image_head.parameters(), *text_encoder.parameters(), log_tau]
opt = torch.optim.AdamW(params, lr=3e-3, weight_decay=0.01)
clip_losses = []
CLIP_STEPS, BATCH = 400, 32
for step in range(CLIP_STEPS):
    idx = torch.randint(0, len(train_images), (BATCH,), generator=gen)
    loss = clip_loss(embed_images(train_images[idx]), text_encoder(caption_ids(train_classes[idx])), log_tau.exp())
    opt.zero_grad()
    loss.backward()
    opt.step()
    clip_losses.append(loss.item())
after = retrieval_on_test()
print(f"CLIP: {CLIP_STEPS} steps of {BATCH} pairs; loss {sum(clip_losses[:20]) / 20:.3f} (first 20 steps) -> "
      f"{sum(clip_losses[-20:]) / 20:.3f} (last 20); learned τ = {log_tau.exp().item():.4f}")
print(f"retrieval, image→text: {before[0]:.3f} before training -> {after[0]:.3f} after (chance {1 / N_CLASSES:.4f})")
print(f"retrieval, text→image: {before[1]:.3f} before training -> {after[1]:.3f} after")

# %% [markdown]
# A batch of 32 pairs drawn from 16 classes holds repeated captions: the loss treats a second
# image of the same class as a wrong match, so it cannot reach 0 here (with every caption
# appearing twice its floor would be about $\log 2$). Which part of the caption does the
# encoder get right? We split the image→text retrieval errors into colour and shape.

# %%
with torch.no_grad():
    sims = torch.nn.functional.normalize(embed_images(test_images), dim=-1) @ torch.nn.functional.normalize(
        text_encoder(caption_ids(torch.arange(N_CLASSES))), dim=-1).T          # (400, 16)
retrieved = sims.argmax(dim=1)
colour_ok = (retrieved // 4 == test_classes // 4).double().mean().item()
shape_ok = (retrieved % 4 == test_classes % 4).double().mean().item()
print(f"image→text against all 16 captions: colour right {colour_ok:.3f}, shape right {shape_ok:.3f} "
      f"(chance 0.25 each)")

fig, axes = plt.subplots(1, 2, figsize=(11, 4))
axes[0].plot(clip_losses, lw=0.7)
axes[0].set_xlabel("step")
axes[0].set_ylabel("CLIP loss")
axes[0].set_title("tiny CLIP training")
mean_sim = torch.stack([sims[test_classes == c].mean(dim=0) for c in range(N_CLASSES)])   # (16, 16)
axes[1].imshow(mean_sim, cmap="viridis")
names = [" ".join(VOCAB[i] for i in row[1:]) for row in caption_ids(torch.arange(N_CLASSES)).tolist()]
axes[1].set_xticks(range(N_CLASSES), names, rotation=90, fontsize=6)
axes[1].set_yticks(range(N_CLASSES), names, fontsize=6)
axes[1].set_title("mean cosine: held-out images (rows) × captions")
plt.tight_layout()
plt.show()

# %% [markdown]
# ### 4.2 A tiny captioner, in stages
#
# The sequence of an example is `<bos> <image> a <colour> <shape> <eos>`; the placeholder
# becomes the 16 projected patch features of the frozen CLIP ViT, and the loss falls on
# `a <colour> <shape> <eos>`. To caption an image we feed `<bos> <image> a` and decode two words
# greedily (only among the eight colour and shape words).
#
# LLaVA starts from a language model that already reads and writes. Ours stands in for that with a
# short text-only pretraining: in place of the 16 image positions the LM sees 16 `<pad>` tokens,
# two of which are the caption's colour and shape words, and must then write the caption — so it
# learns to *read* those positions. Stage 1 then asks the projector alone to turn image patches
# into inputs this frozen LM reads as words: the projector aligns the vision features with the
# LM's embedding space, which is what LLaVA's first stage is for.

# %%
torch.manual_seed(1)
lm = TinyLlama(LlamaConfig(vocab_size=len(VOCAB), block_size=32, n_layer=1, n_head=2, n_kv_head=1, d_model=D))
captioner = VisionLanguageModel(vit, MLPProjector(D, D, 64), lm, IMAGE_ID)


def caption_batch(idx):
    n = len(idx)
    ids = torch.cat([torch.full((n, 1), WORD["<bos>"]), torch.full((n, 1), IMAGE_ID),
                     caption_ids(train_classes[idx]), torch.full((n, 1), WORD["<eos>"])], dim=1)   # (n, 6)
    return train_images[idx], ids


def caption_accuracy():
    """(colour, shape, both) accuracy of greedy captions of the 400 held-out images."""
    n = len(test_images)
    ids = torch.cat([torch.full((n, 1), WORD["<bos>"]), torch.full((n, 1), IMAGE_ID), torch.full((n, 1), WORD["a"])], 1)
    with torch.no_grad():
        for _ in range(2):
            logits = captioner(test_images, ids, ids)[0][:, -1, FIRST_WORD:]            # the 8 content words
            ids = torch.cat([ids, logits.argmax(dim=-1, keepdim=True) + FIRST_WORD], dim=1)
    got, want = ids[:, 3:], caption_ids(test_classes)[:, 1:]
    return [(got[:, 0] == want[:, 0]).double().mean().item(), (got[:, 1] == want[:, 1]).double().mean().item(),
            (got == want).all(dim=1).double().mean().item()]


def train(parameters, steps, loss_of_batch, lr=3e-3):
    opt = torch.optim.AdamW(parameters, lr=lr, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        loss = loss_of_batch(torch.randint(0, len(train_images), (BATCH,), generator=gen))
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def text_only_loss(idx):
    """Language pretraining without images: the caption's two content words stand somewhere among
    16 <pad> tokens where the image will later go, and the LM must then write the caption — it
    learns to read those 16 positions. No loss on the 16 positions themselves."""
    _, ids = caption_batch(idx)
    prefix = torch.full((len(idx), 16), WORD["<pad>"])
    where = torch.rand(len(idx), 16, generator=gen).argsort(dim=1)[:, :2]  # two random slots per row
    prefix.scatter_(1, where, ids[:, 3:5])                                 # the colour and shape words
    text = torch.cat([ids[:, :1], prefix, ids[:, 2:]], dim=1)              # (n, 21): <bos> 16 slots a c s <eos>
    targets = text[:, 1:].clone()
    targets[:, :16] = -100
    return lm(text[:, :-1], targets)[1]


def captioner_loss(idx):
    images, ids = caption_batch(idx)
    return captioner(images, ids, ids)[1]                                   # labels = ids, −100 at the image


results, curves = {}, {}
captioner.requires_grad_(False)
lm.requires_grad_(True)
curves["text only"] = train(lm.parameters(), 200, text_only_loss)
results["text only"] = caption_accuracy()                                  # the projector is still random
for stage, steps in ((1, 200), (2, 250)):
    trainable = freeze_for_stage(captioner, stage)
    n_params = sum(p.numel() for n, p in captioner.named_parameters() if n in trainable)
    curves[f"stage {stage}"] = train([p for p in captioner.parameters() if p.requires_grad], steps, captioner_loss)
    results[f"stage {stage}"] = caption_accuracy()
    print(f"stage {stage}: {len(trainable)} tensors ({n_params} parameters) trained for {steps} steps")
print(f"text-only pretraining: loss {sum(curves['text only'][-20:]) / 20:.4f} (last 20 steps) on reading the "
      f"two words back from the 16 slots")
print(f"{'after':>10} | {'colour':>6} {'shape':>6} {'both':>6}   (chance 0.25, 0.25, 0.0625)")
for name, (colour, shape, both) in results.items():
    print(f"{name:>10} | {colour:6.3f} {shape:6.3f} {both:6.3f}")
elapsed = time.perf_counter() - started
print(f"experiment: {elapsed:.1f} s")

# %%
fig, ax = plt.subplots(figsize=(7, 3.6))
offset = 0
for name, losses in curves.items():
    ax.plot(range(offset, offset + len(losses)), losses, lw=0.7, label=name)
    offset += len(losses)
ax.set_xlabel("step")
ax.set_ylabel("next-token loss (caption words)")
ax.legend()
ax.set_title("captioner: text only, then stage 1 (projector), then stage 2 (projector + LM)")
plt.show()

# %% [markdown]
# Read the numbers above. Retrieval compares the learned encoders with chance ($1/16$) and with
# the untrained encoders; the colour/shape split shows which half of the caption the image
# encoder captured. For the captioner, the row "text only" is the pretrained LM with a random
# projector: whatever it reads at the image positions is noise. Stage 1 changes only the
# projector (the lines above print how few parameters that is) with the LM frozen; compare its row
# with "text only" to see how much aligning the two spaces alone bought, and with "stage 2" to see
# what adapting the LM added. No caption can be better than what the frozen vision encoder kept:
# compare the shape accuracy of the captions with the shape accuracy of the CLIP retrieval.
#
# ## 5. Summary
#
# * `patchify`: patches row-major over the grid, each flattened (channel, row, column) — the
#   order of `F.unfold` and of a flattened `Conv2d` weight; the patch embedding is that linear
#   map, computed as a stride-`P` convolution.
# * A ViT: `[CLS, patches] + learned positions` → blocks without a causal mask → norm; the CLS
#   output summarises the image.
# * CLIP: $\ell_{ij} = u_i^\top v_j / \tau$ on normalised embeddings; the loss averages the
#   cross-entropies of the rows (image → text) and of the columns (text → image).
# * LLaVA: projected patch features replace a placeholder token; their labels are −100; stage 1
#   trains the projector, stage 2 the projector and the LM, the vision encoder stays frozen.
# * Flamingo: $x + \tanh(\alpha)\,\mathrm{Attn}(x, \text{media})$ with $\alpha = 0$ at first — exactly
#   the identity, while the gate's gradient is the attention output itself.
#
# ## 6. Exercises
#
# 1. **By hand.** Write down the patches of section 2 for a two-channel image (channel 1 holds
#    $100 + 10 r + s$). Where does channel 1 start inside a patch vector? Check with `patchify`.
# 2. **Break it.** Use `u @ v.T * τ` in `clip_loss` and retrain section 4.1: what happens to the
#    loss curve and to retrieval? Explain with the range of the logits.
# 3. **No positions.** Set `vit.pos_embed` to zero and freeze it, and retrain CLIP. Which of colour
#    and shape suffers, and why would a shape be hard to recognise without positions?
# 4. **Labels.** Leave the labels of the image positions unmasked (copy the placeholder's label
#    there) and train stage 2. What does the model learn to predict at those positions?
# 5. **Flamingo instead of LLaVA.** Build a captioner that keeps the text sequence short and adds a
#    `GatedCrossAttention` before the LM block, with the projected patch features as media; train
#    only the new block and compare its caption accuracy with stage 1 above.
