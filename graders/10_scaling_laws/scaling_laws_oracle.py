"""Helpers shared by the 10_scaling_laws graders (instructor code, not a test).

- `config`: a small LlamaConfig for graders, with overrides;
- `measured_flops`: FLOPs per token of a real forward (and backward) of TinyLlama, counted
  by `torch.utils.flop_counter.FlopCounterMode` under PyTorch's math attention kernel (the
  fused CPU kernel is not counted by the flop counter: its attention would read as 0);
- `counted_params`: the parameters of a real TinyLlama outside the two vocabulary matrices;
- `rss`, `fit_oracle`: the sum of squared residuals of a power law, and SciPy's
  Levenberg–Marquardt fit (`scipy.optimize.curve_fit`) started from a given point;
- `measured_state_bytes`: bytes held by a real model's weights, gradients and a real
  torch.optim optimizer's per-element state after one step.
"""

from __future__ import annotations

import functools
import math
from dataclasses import asdict

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel
from torch.utils.flop_counter import FlopCounterMode

from llmlab.lib.llama import LlamaConfig, TinyLlama, swiglu_hidden

TOPIC = "10_scaling_laws"

BASE = dict(vocab_size=11, block_size=8, n_layer=2, n_head=4, n_kv_head=2, d_model=16)

# LLaMA-7B (Touvron et al. 2023): 6.74e9 parameters, of which 2·32000·4096 in the vocabulary.
LLAMA_7B = dict(vocab_size=32000, block_size=2048, n_layer=32, n_head=32, n_kv_head=32, d_model=4096,
                hidden=11008)
LLAMA_7B_NON_EMBEDDING = 6_476_271_616


def config(**overrides) -> LlamaConfig:
    fields = dict(BASE)
    fields.update(overrides)
    return LlamaConfig(**fields)


def key(cfg: LlamaConfig) -> tuple:
    return tuple(sorted(asdict(cfg).items()))


@functools.lru_cache(maxsize=None)
def _measured(cfg_key: tuple, batch: int, seq_len: int, backward: bool) -> int:
    cfg = LlamaConfig(**dict(cfg_key))
    torch.manual_seed(0)
    model = TinyLlama(cfg)
    idx = torch.randint(0, cfg.vocab_size, (batch, seq_len), generator=torch.Generator().manual_seed(1))
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        _, loss = model(idx, idx)
        if backward:
            loss.backward()
    total = counter.get_total_flops()
    if total % (batch * seq_len):
        raise AssertionError(f"{total} FLOPs do not split evenly over {batch * seq_len} tokens")
    return total // (batch * seq_len)


def measured_flops(cfg: LlamaConfig, seq_len: int | None = None, backward: bool = True, batch: int = 2) -> int:
    """FLOPs per token that FlopCounterMode counts on a real TinyLlama(cfg)."""
    return _measured(key(cfg), batch, cfg.block_size if seq_len is None else seq_len, backward)


def counted_params(cfg: LlamaConfig) -> int:
    model = TinyLlama(cfg)
    return sum(p.numel() for p in model.parameters()) - 2 * cfg.vocab_size * cfg.d_model


def parts(cfg: LlamaConfig) -> dict:
    """The pieces of the parameter and FLOP counts, for naming mistakes."""
    C, H, H_kv, L, V = cfg.d_model, cfg.n_head, cfg.n_kv_head, cfg.n_layer, cfg.vocab_size
    D = C // H
    F = cfg.hidden or swiglu_hidden(C)
    F_raw = cfg.hidden or int(8 * C / 3)
    return dict(C=C, H=H, H_kv=H_kv, L=L, V=V, D=D, F=F, F_raw=F_raw,
                gqa_extra=L * 2 * C * (H - H_kv) * D,          # k and v counted as C×C
                mlp_rounding=L * 3 * C * (F - F_raw),
                norms=L * (2 * C + (2 * D if cfg.qk_norm else 0)) + C,
                qk_norms=L * 2 * D if cfg.qk_norm else 0,
                head=V * C,
                attention_fwd=lambda T: 4 * L * T * H * D)


def param_mistakes(cfg: LlamaConfig, right: int) -> dict:
    p = parts(cfg)
    out = {"LM head counted (it is a vocabulary matrix, like the embedding)": right + p["head"],
           "embedding and LM head both counted": right + 2 * p["head"],
           "RMSNorm gains left out": right - p["norms"],
           "final RMSNorm left out": right - p["C"]}
    if p["gqa_extra"]:
        out["grouped-query attention ignored: k and v counted as C×C"] = right + p["gqa_extra"]
    if p["mlp_rounding"]:
        out["SwiGLU hidden size int(8C/3) not rounded up to a multiple of 16"] = right - p["mlp_rounding"]
    if p["qk_norms"]:
        out["QK-norm gains left out"] = right - p["qk_norms"]
    return out


def flops_mistakes(cfg: LlamaConfig, T: int, backward: bool, right: int) -> dict:
    p = parts(cfg)
    m = 3 if backward else 1
    att = p["attention_fwd"](T)
    out = {"attention products left out (only 6N)": right - m * att,
           "causal attention counted over half the score matrix": right - m * att // 2,
           "LM head left out of the matmul FLOPs": right - m * 2 * p["head"],
           "embedding lookup counted as a matmul": right + m * 2 * p["head"],
           "RMSNorm gains counted as matmul weights": right + m * 2 * p["norms"]}
    if backward:
        out["backward counted as one forward (4N instead of 6N)"] = right // 3 * 2
        out["forward FLOPs only (backward=True ignored)"] = right // 3
    else:
        out["backward counted although backward=False"] = right * 3
    if p["H"] != p["H_kv"]:
        kv = right - m * att + m * att * p["H_kv"] // p["H"]
        if 2 * p["H_kv"] == p["H"]:   # the same number as the half score matrix: name both
            del out["causal attention counted over half the score matrix"]
            out["causal attention counted over half the score matrix, or attention products counted with "
                "the kv heads (with H_kv = H/2 the two give the same count)"] = kv
        else:
            out["attention products counted with the kv heads"] = kv
        out["grouped-query attention ignored: k and v counted as C×C"] = right + m * 2 * p["gqa_extra"]
    if p["mlp_rounding"]:
        out["SwiGLU hidden size int(8C/3) not rounded up to a multiple of 16"] = right - m * 2 * p["mlp_rounding"]
    return out


def rss(x, y, a: float, alpha: float, c: float) -> float:
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    return float(((a * x ** (-alpha) + c - y) ** 2).sum())


def fit_oracle(x, y, p0) -> tuple[float, float, float]:
    """SciPy's least-squares fit of a·x^(−alpha) + c, with x scaled by its geometric mean
    (for conditioning) and started from p0 = (a, alpha, c)."""
    import numpy as np
    from scipy.optimize import curve_fit

    x = np.asarray(torch.as_tensor(x, dtype=torch.float64))
    y = np.asarray(torch.as_tensor(y, dtype=torch.float64))
    g = math.exp(float(np.log(x).mean()))
    a0, alpha0, c0 = p0

    def law(u, a, alpha, c):
        return a * u ** (-alpha) + c

    popt, _ = curve_fit(law, x / g, y, p0=[a0 * g ** (-alpha0), alpha0, c0], xtol=1e-15, ftol=1e-15,
                        gtol=1e-15, maxfev=20000)
    a_s, alpha, c = (float(v) for v in popt)
    return a_s * g ** alpha, alpha, c   # a·x^(−alpha) = (a·g^(−alpha))·(x/g)^(−alpha)


def linearised_sd(x, a: float, alpha: float, c: float, sigma: float) -> list[float]:
    """Standard deviations of the least-squares estimates of (a, alpha, c) for i.i.d.
    N(0, sigma²) noise on y, from the Jacobian at the true parameters: sigma²·(JᵀJ)⁻¹."""
    x = torch.as_tensor(x, dtype=torch.float64)
    J = torch.stack([x ** (-alpha), -a * x ** (-alpha) * x.log(), torch.ones_like(x)], dim=1)
    cov = sigma ** 2 * torch.linalg.inv(J.T @ J)
    return [math.sqrt(float(v)) for v in cov.diagonal()]


def measured_state_bytes(model: torch.nn.Module, make_optimizer) -> int:
    """Bytes of the weights, the gradients and every per-element optimizer state tensor (a
    state with as many elements as its parameter; scalar step counters are not counted)
    after one optimizer step on a real loss."""
    opt = make_optimizer(model.parameters())
    idx = torch.randint(0, model.config.vocab_size, (2, model.config.block_size),
                        generator=torch.Generator().manual_seed(0))
    model(idx, idx)[1].backward()
    opt.step()
    total = 0
    for p in model.parameters():
        total += p.numel() * p.element_size() + p.grad.numel() * p.grad.element_size()
        for value in opt.state[p].values():
            if isinstance(value, torch.Tensor) and value.numel() == p.numel():
                total += value.numel() * value.element_size()
    return total
