"""Given, tested LLaMA-style model: RMSNorm, SwiGLU, RoPE, grouped-query attention, TinyLlama.

Topics after 06_llama (generation, inference, speculative decoding, long context, ...) build
on this model, and on the tiny checkpoint trained from it, so a student can start there
without having solved 06. It uses PyTorch built-ins freely (`F.rms_norm`,
`F.scaled_dot_product_attention`); the from-scratch versions are what topic 06 asks the
student to write. Both use the same parameter names and compute the same function, so one
state dict loads into either (tests/test_library.py compares them in float64).

Conventions (the ones chapter 06 teaches):
- RMSNorm: y = x / sqrt(mean(x², last dim) + eps) · weight.
- SwiGLU: down(silu(gate(x)) · up(x)); hidden size int(8·C/3) rounded up to a multiple of 16.
- RoPE, half-split pairing: dimension i is rotated with dimension i + D/2 at angle
  p · base^(−2i/D), i < D/2 (the "rotate_half" layout of LLaMA's Hugging Face port).
- Grouped-query attention: query head h reads kv head h // (H / H_kv).

Shapes: B batch, T sequence length, C = d_model, H query heads, H_kv kv heads,
D = C // H head size, V vocabulary size.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from llmlab.course import paths
from llmlab.lib.corpus import course_corpus, train_val_split
from llmlab.lib.nn import init_gpt_weights, scaled_init_std
from llmlab.lib.text import CharCodec
from llmlab.lib.train import evaluate_lm, train_lm

def swiglu_hidden(d_model: int, multiple_of: int = 16) -> int:
    """LLaMA's hidden size rule: int(8·d_model/3), rounded up to a multiple of `multiple_of`."""
    h = int(8 * d_model / 3)
    return multiple_of * math.ceil(h / multiple_of)


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:             # (..., dim) -> (..., dim)
        return F.rms_norm(x, (x.shape[-1],), self.weight, self.eps)


class SwiGLU(nn.Module):
    def __init__(self, d_model: int, hidden: int | None = None, multiple_of: int = 16):
        super().__init__()
        hidden = hidden or swiglu_hidden(d_model, multiple_of)
        self.gate = nn.Linear(d_model, hidden, bias=False)
        self.up = nn.Linear(d_model, hidden, bias=False)
        self.down = nn.Linear(hidden, d_model, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:             # (..., C) -> (..., C)
        return self.down(F.silu(self.gate(x)) * self.up(x))


def rope_cache(head_dim: int, max_len: int, base: float = 10000.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(cos, sin), each (max_len, head_dim) float32, in the half-split layout."""
    if head_dim % 2:
        raise ValueError(f"RoPE needs an even head_dim, got {head_dim}")
    inv_freq = base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)   # (D/2,)
    angle = torch.arange(max_len, dtype=torch.float64)[:, None] * inv_freq              # (max_len, D/2)
    angle = torch.cat([angle, angle], dim=-1)                                           # (max_len, D)
    return angle.cos().float(), angle.sin().float()


def apply_rope(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """Rotate x (B, heads, T, D) by the angles of its positions: cos, sin are (T, D), shared by
    every row, or (B, 1, T, D), one set of positions per row."""
    x1, x2 = x.chunk(2, dim=-1)
    rotated = torch.cat([-x2, x1], dim=-1)                           # rotate_half(x)
    return x * cos.to(x.dtype) + rotated * sin.to(x.dtype)


class GroupedQueryAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, qk_norm: bool = False, eps: float = 1e-6):
        super().__init__()
        if d_model % n_heads or n_heads % n_kv_heads:
            raise ValueError(f"need d_model % n_heads == 0 and n_heads % n_kv_heads == 0, "
                             f"got {d_model}, {n_heads}, {n_kv_heads}")
        self.n_heads, self.n_kv_heads, self.head_dim = n_heads, n_kv_heads, d_model // n_heads
        D = self.head_dim
        self.q_proj = nn.Linear(d_model, n_heads * D, bias=False)
        self.k_proj = nn.Linear(d_model, n_kv_heads * D, bias=False)
        self.v_proj = nn.Linear(d_model, n_kv_heads * D, bias=False)
        self.o_proj = nn.Linear(n_heads * D, d_model, bias=False)
        self.q_norm = RMSNorm(D, eps) if qk_norm else None
        self.k_norm = RMSNorm(D, eps) if qk_norm else None

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        """x (B, T, C); cos, sin as apply_rope takes them; attn_mask None (causal) or a bool
        (B, 1, T, T) mask, True where a query may attend to a key -> (B, T, C)."""
        B, T, _ = x.shape
        D = self.head_dim
        q = self.q_proj(x).view(B, T, self.n_heads, D).transpose(1, 2)        # (B, H, T, D)
        k = self.k_proj(x).view(B, T, self.n_kv_heads, D).transpose(1, 2)     # (B, H_kv, T, D)
        v = self.v_proj(x).view(B, T, self.n_kv_heads, D).transpose(1, 2)     # (B, H_kv, T, D)
        if self.q_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if attn_mask is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=True, enable_gqa=True)  # (B, H, T, D)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, enable_gqa=True)
        return self.o_proj(y.transpose(1, 2).reshape(B, T, self.n_heads * D))  # (B, T, C)


class LlamaBlock(nn.Module):
    """Pre-norm block: x + attn(attn_norm(x)), then x + mlp(mlp_norm(x))."""

    def __init__(self, d_model: int, n_heads: int, n_kv_heads: int, hidden: int | None = None,
                 qk_norm: bool = False, eps: float = 1e-6):
        super().__init__()
        self.attn_norm = RMSNorm(d_model, eps)
        self.attn = GroupedQueryAttention(d_model, n_heads, n_kv_heads, qk_norm, eps)
        self.mlp_norm = RMSNorm(d_model, eps)
        self.mlp = SwiGLU(d_model, hidden)

    def forward(self, x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor,
                attn_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.attn(self.attn_norm(x), cos, sin, attn_mask)
        return x + self.mlp(self.mlp_norm(x))


@dataclass
class LlamaConfig:
    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    n_kv_head: int
    d_model: int
    hidden: int | None = None
    rope_base: float = 10000.0
    norm_eps: float = 1e-6
    qk_norm: bool = False


class TinyLlama(nn.Module):
    """Token embedding, LlamaBlocks with RoPE, a final RMSNorm, an untied head."""

    def __init__(self, config: LlamaConfig):
        super().__init__()
        self.config = c = config
        self.tok_emb = nn.Embedding(c.vocab_size, c.d_model)
        self.blocks = nn.ModuleList(LlamaBlock(c.d_model, c.n_head, c.n_kv_head, c.hidden, c.qk_norm, c.norm_eps)
                                    for _ in range(c.n_layer))
        self.norm = RMSNorm(c.d_model, c.norm_eps)
        self.lm_head = nn.Linear(c.d_model, c.vocab_size, bias=False)
        cos, sin = rope_cache(c.d_model // c.n_head, c.block_size, c.rope_base)
        self.register_buffer("rope_cos", cos, persistent=False)                # (block_size, D)
        self.register_buffer("rope_sin", sin, persistent=False)
        self.apply(init_gpt_weights)
        for block in self.blocks:
            nn.init.normal_(block.attn.o_proj.weight, std=scaled_init_std(c.n_layer))
            nn.init.normal_(block.mlp.down.weight, std=scaled_init_std(c.n_layer))

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None, *,
                positions: torch.Tensor | None = None, attention_mask: torch.Tensor | None = None):
        """idx (B, T) int64, T ≤ block_size -> (logits (B, T, V), mean cross-entropy or None).

        positions: None (0 .. T-1 in every row) or (B, T) int64 RoPE positions in [0, block_size),
        e.g. counting from 0 at each row's first real token under left padding.
        attention_mask: None or (B, T) bool, True for a real token, False for padding that no
        query attends to. Causal masking always applies; a padding query attends to itself only,
        so its output is finite but meaningless. Targets at padding should be -100 (ignored)."""
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}")
        x = self.tok_emb(idx)                                                  # (B, T, C)
        if positions is None:
            cos, sin = self.rope_cos[:T], self.rope_sin[:T]                    # (T, D)
        else:
            positions = self._check_positions(positions, B, T)
            cos, sin = self.rope_cos[positions][:, None], self.rope_sin[positions][:, None]  # (B, 1, T, D)
        attn_mask = None if attention_mask is None else self._attention_mask(attention_mask, B, T)
        for block in self.blocks:
            x = block(x, cos, sin, attn_mask)
        logits = self.lm_head(self.norm(x))                                    # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.flatten(0, 1), targets.flatten(), ignore_index=-100)
        return logits, loss

    def _check_positions(self, positions: torch.Tensor, B: int, T: int) -> torch.Tensor:
        if positions.shape != (B, T) or positions.dtype != torch.int64:
            raise ValueError(f"positions must be an int64 tensor of shape {(B, T)}, "
                             f"got {positions.dtype} {tuple(positions.shape)}")
        if positions.numel() and (positions.min() < 0 or positions.max() >= self.config.block_size):
            raise ValueError(f"positions must lie in [0, {self.config.block_size}), "
                             f"got [{int(positions.min())}, {int(positions.max())}]")
        return positions

    @staticmethod
    def _attention_mask(attention_mask: torch.Tensor, B: int, T: int) -> torch.Tensor:
        """(B, T) bool key mask -> (B, 1, T, T) bool: causal, real keys, and each query itself."""
        if attention_mask.shape != (B, T) or attention_mask.dtype != torch.bool:
            raise ValueError(f"attention_mask must be a bool tensor of shape {(B, T)}, "
                             f"got {attention_mask.dtype} {tuple(attention_mask.shape)}")
        causal = torch.ones(T, T, dtype=torch.bool, device=attention_mask.device).tril()   # (T, T)
        allowed = causal & attention_mask[:, None, :]                          # (B, T, T)
        allowed |= torch.eye(T, dtype=torch.bool, device=attention_mask.device)
        return allowed[:, None]                                                # (B, 1, T, T)


# ---- the tiny trained checkpoints ----------------------------------------------------------

# name -> (the topic whose reference/ folder holds <name>.npz and <name>_config.json, the model's
# shape). Both are trained on the course corpus with the same codec and the same settings, so the
# draft can propose tokens for the target in speculative decoding (topic 17).
CHECKPOINTS = {
    "tiny_llama": ("06_llama", dict(block_size=64, n_layer=2, n_head=4, n_kv_head=2, d_model=64)),
    "draft_llama": ("17_speculative", dict(block_size=64, n_layer=1, n_head=2, n_kv_head=1, d_model=32)),
}
CHECKPOINT_TRAINING = dict(seed=0, steps=400, batch_size=16, lr=3e-3, min_lr=3e-4, warmup=20,
                           weight_decay=0.1, val_fraction=0.1)


def _checkpoint(name: str) -> tuple[str, dict]:
    if name not in CHECKPOINTS:
        raise ValueError(f"unknown checkpoint {name!r}; the given ones are {sorted(CHECKPOINTS)}")
    return CHECKPOINTS[name]


def train_tiny_llama(name: str = "tiny_llama") -> tuple[dict[str, torch.Tensor], dict]:
    """Train one of the course's tiny character-level LLaMAs on the course corpus, reproducibly.

    Float64 throughout (stored as float32), seeded init and batches: the same weights on
    every machine up to rounding, far below float32's resolution. Returns (state dict, info)
    where info holds the config, the codec's characters, the training settings and the
    measured losses (rounded to 4 decimals, so the JSON regenerates exactly)."""
    _, shape = _checkpoint(name)
    text = course_corpus()
    codec = CharCodec.from_text(text)
    train_text, val_text = train_val_split(text, CHECKPOINT_TRAINING["val_fraction"])
    train, val = codec.encode(train_text), codec.encode(val_text)
    config = LlamaConfig(vocab_size=codec.vocab_size, **shape)
    t = CHECKPOINT_TRAINING
    with torch.random.fork_rng():
        torch.manual_seed(t["seed"])
        model = TinyLlama(config).double()
    losses = train_lm(model, train, t["steps"], batch_size=t["batch_size"], block_size=config.block_size,
                      lr=t["lr"], min_lr=t["min_lr"], warmup=t["warmup"], weight_decay=t["weight_decay"],
                      generator=torch.Generator().manual_seed(t["seed"]))
    state = {k: v.float() for k, v in model.state_dict().items()}
    model.float().load_state_dict(state)
    info = {"config": asdict(config), "chars": codec.chars, "training": dict(t),
            "first_loss": round(losses[0], 4), "final_train_loss": round(sum(losses[-20:]) / 20, 4),
            "val_loss": round(evaluate_lm(model, val, config.block_size), 4)}
    return state, info


def load_tiny_llama(name: str = "tiny_llama") -> tuple[TinyLlama, CharCodec, dict]:
    """A trained tiny LLaMA, in eval mode, its codec and its info: "tiny_llama" (2 layers,
    d_model 64, from reference/06_llama) or "draft_llama" (1 layer, d_model 32, from
    reference/17_speculative).

    Raises ValueError for another name, FileNotFoundError (saying how to regenerate) when the
    checkpoint is missing."""
    topic, _ = _checkpoint(name)
    folder = paths.reference_dir() / topic
    weights, config_file = folder / f"{name}.npz", folder / f"{name}_config.json"
    if not weights.exists() or not config_file.exists():
        raise FileNotFoundError(f"the {name} checkpoint is missing from {folder}; "
                                f"regenerate it with `llmlab fixtures {topic}`")
    info = json.loads(config_file.read_text())
    model = TinyLlama(LlamaConfig(**info["config"]))
    with np.load(weights, allow_pickle=False) as stored:
        model.load_state_dict({k: torch.from_numpy(stored[k]) for k in stored.files})
    model.eval()
    return model, CharCodec(info["chars"]), info
