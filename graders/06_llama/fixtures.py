"""Golden data for 06_llama, generated from solutions/ by `llmlab fixtures 06_llama`.

Records (all small, float64 unless stated; 0-d values are stored with shape (1,)):
  rmsnorm            x, a weight away from ones, eps, the output, an upstream gradient and the
                     gradients w.r.t. x and weight;
  swiglu             the three weight matrices, x, the output;
  rope               float32 tables (head_dim 8, 12 positions, base 10000), x (2, 3, 5, 8),
                     explicit positions and their output, an offset and its output;
  gqa / gqa_config   a GQA (d_model 16, 4 heads, 2 kv heads, qk_norm) with random weights,
                     x, tables, the output and the gradient w.r.t. x for an upstream gradient;
  mla / mla_config   an MLA with random weights, x, tables, the output and latent cache, one
                     next token and its output with the cache;
  block / block_config  a LlamaBlock with random weights, x, tables, the output;
  model / model_config  a float32 TinyLlama (every parameter drawn away from its initial
                     value), ids, targets with ignored positions, logits, loss, gradients;
  tiny_llama / tiny_llama_config  the course's trained tiny LLaMA checkpoint, produced by the
                     given `llmlab.lib.llama.train_tiny_llama()` (state dict and info), read by
                     `llmlab.lib.llama.load_tiny_llama()` in later topics.
"""

from __future__ import annotations

import torch

SEED = 6


def _randomise(module: torch.nn.Module, g: torch.Generator, scale: float = 0.4) -> None:
    with torch.no_grad():
        for name, p in module.named_parameters():
            noise = scale * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype)
            p.copy_(1.0 + noise if name.endswith("norm.weight") else noise)


def _state(module) -> dict:
    return {f"param.{k}": v.detach().clone() for k, v in module.state_dict().items()}


def generate(impl) -> dict:
    from llmlab.lib.llama import train_tiny_llama

    g = torch.Generator().manual_seed(SEED)
    f64 = torch.float64

    def randn(*shape):
        return torch.randn(*shape, generator=g, dtype=f64)

    # RMSNorm
    norm = impl.RMSNorm(6, 1e-5).double()
    _randomise(norm, g)
    x = randn(3, 4, 6).requires_grad_(True)
    out = norm(x)
    upstream = randn(3, 4, 6)
    out.backward(upstream)
    rmsnorm = {"x": x.detach(), "weight": norm.weight.detach().clone(), "eps": torch.tensor([1e-5], dtype=f64),
               "out": out.detach(), "upstream": upstream, "grad_x": x.grad.clone(),
               "grad_weight": norm.weight.grad.clone()}

    # SwiGLU
    mlp = impl.SwiGLU(6, 10).double()
    _randomise(mlp, g)
    xs = randn(2, 5, 6)
    swiglu = {k: v.detach().clone() for k, v in mlp.state_dict().items()}
    swiglu.update({"x": xs, "out": mlp(xs).detach()})

    # RoPE
    cos, sin = impl.rope_cache(8, 12, 10000.0)
    xr = randn(2, 3, 5, 8)
    positions = torch.tensor([0, 11, 4, 4, 7])
    rope = {"cos": cos, "sin": sin, "base": torch.tensor([10000.0], dtype=f64), "x": xr, "positions": positions,
            "out": impl.apply_rope(xr, cos, sin, positions), "offset": torch.tensor([6]),
            "out_offset": impl.apply_rope(xr, cos, sin, 6)}

    # GQA
    gqa_config = dict(d_model=16, n_heads=4, n_kv_heads=2, qk_norm=True)
    attn = impl.GroupedQueryAttention(16, 4, 2, True).double()
    _randomise(attn, g)
    cos4, sin4 = impl.rope_cache(4, 7, dtype=f64)
    xg = randn(2, 7, 16).requires_grad_(True)
    og = attn(xg, cos4, sin4)
    up_g = randn(2, 7, 16)
    og.backward(up_g)
    gqa = _state(attn)
    gqa.update({"x": xg.detach(), "cos": cos4, "sin": sin4, "out": og.detach(), "upstream": up_g,
                "grad_x": xg.grad.clone()})

    # MLA
    mla_config = dict(d_model=16, n_heads=4, d_latent=6, d_rope=4)
    mla_mod = impl.MultiHeadLatentAttention(**mla_config).double()
    _randomise(mla_mod, g)
    cosm, sinm = impl.rope_cache(4, 8, dtype=f64)
    xm = randn(2, 6, 16)
    ym, cache = mla_mod(xm, cosm, sinm)
    xn = randn(2, 1, 16)
    yn, _ = mla_mod(xn, cosm, sinm, cache)
    mla = _state(mla_mod)
    mla.update({"x": xm, "cos": cosm, "sin": sinm, "out": ym.detach(), "c_kv": cache[0].detach(),
                "x_next": xn, "out_next": yn.detach()})

    # LlamaBlock
    block_config = dict(d_model=12, n_heads=2, n_kv_heads=1, hidden=20, qk_norm=False, eps=1e-5)
    blk = impl.LlamaBlock(12, 2, 1, 20, False, 1e-5).double()
    _randomise(blk, g)
    cosb, sinb = impl.rope_cache(6, 5, dtype=f64)
    xb = randn(2, 5, 12)
    block = _state(blk)
    block.update({"x": xb, "cos": cosb, "sin": sinb, "out": blk(xb, cosb, sinb).detach()})

    # TinyLlama (float32)
    model_config = dict(vocab_size=13, block_size=8, n_layer=2, n_head=4, n_kv_head=2, d_model=16, hidden=24,
                        rope_base=10000.0, norm_eps=1e-6, qk_norm=False)
    model = impl.TinyLlama(impl.LlamaConfig(**model_config))
    _randomise(model, g)
    model.eval()
    idx = torch.randint(0, 13, (3, 8), generator=g)
    targets = torch.randint(0, 13, (3, 8), generator=g)
    targets[0, 2] = -100
    targets[2, 7] = -100
    logits, loss = model(idx, targets)
    loss.backward()
    model_rec = _state(model)
    model_rec.update({"idx": idx, "targets": targets, "logits": logits.detach(), "loss": loss.detach().reshape(1)})
    model_rec.update({f"grad.{k}": p.grad.clone() for k, p in model.named_parameters()})

    state, info = train_tiny_llama()
    return {
        "rmsnorm": rmsnorm, "swiglu": swiglu, "rope": rope,
        "gqa": gqa, "gqa_config": gqa_config, "mla": mla, "mla_config": mla_config,
        "block": block, "block_config": block_config, "model": model_rec, "model_config": model_config,
        "tiny_llama": {k: v.detach().clone() for k, v in state.items()}, "tiny_llama_config": info,
    }
