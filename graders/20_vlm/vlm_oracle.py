"""Helpers shared by the 20_vlm graders (instructor code, not a test).

Independent oracles, written differently from the reference:
  - `patchify_loop`: patches by explicit loops over the grid and the index formula of the
    docstring; `patchify_unfold`: PyTorch's F.unfold; `patchify_column_major` and
    `patchify_channels_last`: the two classic wrong orders (for naming mistakes);
  - `patch_embed_linear`: the patch embedding as a matrix product on unfolded patches;
  - `vit_forward`: the ViT forward from a module's parameters, patch embedding by unfold;
  - `clip_loss_loop`: the symmetric InfoNCE loss by Python loops over rows and columns with
    logsumexp, and `clip_loss_variant` for the catalogued mistakes;
  - `splice_loop`: the spliced embeddings and labels by a loop over positions;
  - `gated_forward`: Flamingo's gated block from a module's submodules.
Builders: `vit(impl, seed, ...)`, `gated(impl, seed, ...)` and `vlm(impl, seed)` with every
parameter drawn fresh (norm gains around one).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.testing import tensors

TOPIC = "20_vlm"
VIT = dict(image_size=8, patch=4, in_channels=3, d_model=16, n_layers=2, n_heads=2)
GATED = dict(d_model=16, d_media=12, n_heads=2)
UNFOLD = ["torch.nn.functional.unfold"]


def is_norm_weight(name: str) -> bool:
    return name.endswith(("ln1.weight", "ln2.weight", "norm.weight"))


# ---------------------------------------------------------------- patches

def patchify_loop(images: torch.Tensor, P: int) -> torch.Tensor:
    B, C, H, W = images.shape
    gh, gw = H // P, W // P
    out = images.new_zeros(B, gh * gw, C * P * P)
    for i in range(gh):
        for j in range(gw):
            for c in range(C):
                for r in range(P):
                    for s in range(P):
                        out[:, i * gw + j, c * P * P + r * P + s] = images[:, c, i * P + r, j * P + s]
    return out


def patchify_unfold(images: torch.Tensor, P: int) -> torch.Tensor:
    return F.unfold(images, P, stride=P).transpose(1, 2)


def patchify_column_major(images: torch.Tensor, P: int) -> torch.Tensor:
    """Mistake: the grid walked top to bottom first (patch n = j·(H/P) + i)."""
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // P, P, W // P, P).permute(0, 4, 2, 1, 3, 5)
    return x.reshape(B, -1, C * P * P)


def patchify_channels_last(images: torch.Tensor, P: int) -> torch.Tensor:
    """Mistake: inside a patch, row, column, then channel (the HWC order of image files)."""
    B, C, H, W = images.shape
    x = images.reshape(B, C, H // P, P, W // P, P).permute(0, 2, 4, 3, 5, 1)
    return x.reshape(B, -1, C * P * P)


def patch_embed_linear(module, images: torch.Tensor) -> torch.Tensor:
    w = module.proj.weight                                            # (d, C, P, P)
    P = w.shape[-1]
    return patchify_unfold(images, P) @ w.reshape(w.shape[0], -1).T + module.proj.bias


def vit_forward(module, images: torch.Tensor, with_positions: bool = True, with_norm: bool = True) -> torch.Tensor:
    patches = patch_embed_linear(module.patch_embed, images)           # (B, N, d)
    x = torch.cat([module.cls_token.expand(images.shape[0], 1, -1), patches], dim=1)
    if with_positions:
        x = x + module.pos_embed
    for block in module.blocks:
        x = block(x)
    return module.norm(x) if with_norm else x


def vit(impl, seed: int, dtype: torch.dtype = torch.float64, **overrides):
    cfg = {**VIT, **overrides}
    model = impl.ViTEncoder(**cfg).to(dtype)
    return tensors.randomize_parameters(model, seed, 0.4, is_norm_weight).eval()


# ---------------------------------------------------------------- CLIP

def _unit(x: torch.Tensor) -> torch.Tensor:
    return x / torch.sqrt((x * x).sum(dim=-1, keepdim=True))


def clip_loss_loop(a: torch.Tensor, b: torch.Tensor, tau) -> torch.Tensor:
    """Symmetric InfoNCE by loops: each row (image) against all texts, each column against all images."""
    sim = _unit(a) @ _unit(b).T
    N = sim.shape[0]
    i2t = sum(torch.logsumexp(sim[i] / tau, 0) - sim[i, i] / tau for i in range(N)) / N
    t2i = sum(torch.logsumexp(sim[:, j] / tau, 0) - sim[j, j] / tau for j in range(N)) / N
    return (i2t + t2i) / 2


def clip_loss_variant(a: torch.Tensor, b: torch.Tensor, tau, mistake: str) -> torch.Tensor:
    """The catalogued wrong losses (for naming them in messages)."""
    u, v = (a, b) if mistake == "no normalisation" else (_unit(a), _unit(b))
    logits = u @ v.T * tau if mistake == "temperature multiplies" else u @ v.T / tau
    t = torch.arange(logits.shape[0])
    i2t, t2i = F.cross_entropy(logits, t), F.cross_entropy(logits.T, t)
    return {"image to text only": i2t, "text to image only": t2i, "sum of both": i2t + t2i}.get(
        mistake, (i2t + t2i) / 2)


CLIP_MISTAKES = {
    "a one-directional CLIP loss (image → text only)": "image to text only",
    "a one-directional CLIP loss (text → image only)": "text to image only",
    "the temperature used as a multiplier (logits · τ instead of logits / τ)": "temperature multiplies",
    "embeddings not normalised (raw dot products instead of cosines)": "no normalisation",
    "the two directions summed instead of averaged": "sum of both",
}


def clip_mistakes(a, b, tau) -> dict:
    return {name: (lambda m=m: clip_loss_variant(a, b, tau, m)) for name, m in CLIP_MISTAKES.items()}


def retrieval_loop(a: torch.Tensor, b: torch.Tensor) -> tuple[float, float]:
    sim = (_unit(a) @ _unit(b).T).tolist()
    N = len(sim)
    i2t = sum(max(range(N), key=lambda j: (sim[i][j], -j)) == i for i in range(N)) / N
    t2i = sum(max(range(N), key=lambda i: (sim[i][j], -i)) == j for j in range(N)) / N
    return i2t, t2i


# ---------------------------------------------------------------- splice

def splice_loop(ids, embeds, feats, image_id, labels):
    B, T = ids.shape
    N = feats.shape[1]
    rows_e, rows_l = [], []
    for b in range(B):
        e, lab = [], []
        for t in range(T):
            if int(ids[b, t]) == image_id:
                e.extend(feats[b, n] for n in range(N))
                lab.extend([-100] * N)
            else:
                e.append(embeds[b, t])
                lab.append(int(labels[b, t]))
        rows_e.append(torch.stack(e))
        rows_l.append(torch.tensor(lab, dtype=torch.long))
    return torch.stack(rows_e), torch.stack(rows_l)


def splice_inputs(seed: int, B: int, T: int, N: int, D: int, image_id: int = 1, vocab: int = 9,
                  dtype: torch.dtype = torch.float64):
    """Ids in [2, vocab) with the placeholder `image_id` once per row at seeded positions; labels
    are the ids with some −100 already."""
    ids = tensors.randint((B, T), seed, high=vocab, low=2)
    where = tensors.randint((B,), seed + 1, high=T)
    ids[torch.arange(B), where] = image_id
    labels = torch.where(tensors.rand((B, T), seed + 2) < 0.2, torch.full_like(ids, -100), ids)
    embeds = tensors.randn((B, T, D), seed + 3, dtype)
    feats = tensors.randn((B, N, D), seed + 4, dtype)
    return ids, embeds, feats, labels


# ---------------------------------------------------------------- gated cross-attention

def gated_forward(m, x, media, gate=torch.tanh):
    y = x + gate(m.attn_gate) * m.attn(m.norm(x), media, media, need_weights=False)[0]
    return y + gate(m.ff_gate) * m.ff(m.ff_norm(y))


def gated(impl, seed: int, dtype: torch.dtype = torch.float64, gates=(0.0, 0.0), **overrides):
    cfg = {**GATED, **overrides}
    module = impl.GatedCrossAttention(**cfg).to(dtype)
    tensors.randomize_parameters(module, seed, 0.4, is_norm_weight)
    with torch.no_grad():
        module.attn_gate.fill_(gates[0])
        module.ff_gate.fill_(gates[1])
    return module


# ---------------------------------------------------------------- the captioner

LM = dict(vocab_size=9, block_size=32, n_layer=1, n_head=2, n_kv_head=1, d_model=16)


def vlm(impl, seed: int, image_token_id: int = 1):
    torch.manual_seed(seed)
    vision = impl.ViTEncoder(**VIT)
    projector = impl.MLPProjector(VIT["d_model"], LM["d_model"], 24)
    lm = TinyLlama(LlamaConfig(**LM))
    return impl.VisionLanguageModel(vision, projector, lm, image_token_id)


def log1p_exp(x: float) -> float:
    return math.log1p(math.exp(x))
