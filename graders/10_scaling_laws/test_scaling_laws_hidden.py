"""Instructor-only graders for 10_scaling_laws (left out of student bundles).

  - flops_per_token and non_embedding_params on larger and odder configurations against
    FlopCounterMode and a real model (three layers, one head, H_kv = H, long T);
  - fit_power_law on a loss-versus-compute curve made with Chinchilla's fitted constants,
    against SciPy's least-squares fit;
  - training_memory_bytes for mixed precision against a real bf16 model with float32 master
    weights and a float32 AdamW on them;
  - chinchilla_optimal against a brute-force search over model sizes.
"""

from __future__ import annotations

import math

import pytest
import torch

import scaling_laws_oracle as O
from llmlab.lib.llama import LlamaConfig
from llmlab.testing import check, tensors
from llmlab.testing.tolerances import Tolerance


@pytest.mark.hidden
@pytest.mark.points(2)
def test_flops_and_params_larger_configs_hidden(impl):
    for fields, T in ((dict(vocab_size=40, block_size=24, n_layer=3, n_head=1, n_kv_head=1, d_model=24), 24),
                      (dict(vocab_size=13, block_size=16, n_layer=1, n_head=6, n_kv_head=3, d_model=36,
                            qk_norm=True), 11),
                      (dict(vocab_size=3, block_size=12, n_layer=2, n_head=8, n_kv_head=8, d_model=16, hidden=3), 12)):
        cfg = LlamaConfig(**fields)
        case = check.describe(seq_len=T, **fields)
        expected = O.measured_flops(cfg, T, batch=1)
        check.equal(impl.flops_per_token(cfg, T), expected, unit="flops_per_token", case=case,
                    mistakes=O.flops_mistakes(cfg, T, True, expected))
        params = O.counted_params(cfg)
        check.equal(impl.non_embedding_params(cfg), params, unit="non_embedding_params", case=case,
                    mistakes=O.param_mistakes(cfg, params))


@pytest.mark.hidden
@pytest.mark.points(2)
def test_fit_power_law_chinchilla_curve_hidden(impl):
    # L(C) for compute-optimal models under Chinchilla's fit (E = 1.69, A = 406.4, B = 410.7,
    # alpha = 0.34, beta = 0.28) is itself close to a power law in C plus E; fit it with noise.
    C = torch.logspace(18, 24, 10, dtype=torch.float64)
    N = (C / 120).sqrt()
    loss = 1.69 + 406.4 * N ** -0.34 + 410.7 * (20 * N) ** -0.28
    y = loss + 0.003 * tensors.randn(C.shape, 5)
    got = impl.fit_power_law(C, y)
    best = O.fit_oracle(C, y, (20.0, 0.15, 1.7))
    s_got, s_best = O.rss(C, y, *got), O.rss(C, y, *best)
    case = check.describe(compute=C, y=y)
    check.that(s_got <= s_best * (1 + 1e-6), "fit_power_law", "the fit is not the least-squares optimum",
               f"yours {s_got:.8g} at {got}; SciPy {s_best:.8g} at {best}", case=case)


@pytest.mark.hidden
@pytest.mark.points(2)
def test_training_memory_mixed_precision_real_hidden(impl):
    # bf16 weights and gradients, float32 master copies, float32 AdamW state on the masters.
    torch.manual_seed(0)
    model = O.TinyLlama(O.config()).to(torch.bfloat16)
    masters = [p.detach().float().requires_grad_(True) for p in model.parameters()]
    idx = tensors.randint((2, 8), 0, high=11)
    model(idx, idx)[1].backward()
    for m, p in zip(masters, model.parameters()):
        m.grad = p.grad.float()
    opt = torch.optim.AdamW(masters, lr=1e-3)
    opt.step()
    total = sum(p.numel() * p.element_size() + p.grad.numel() * p.grad.element_size() for p in model.parameters())
    total += sum(m.numel() * m.element_size() for m in masters)
    total += sum(v.numel() * v.element_size() for m in masters for v in opt.state[m].values() if v.numel() == m.numel())
    n = sum(p.numel() for p in model.parameters())
    check.equal(impl.training_memory_bytes(n, "adamw", "mixed"), total, unit="training_memory_bytes",
                case=check.describe(params=n, optimizer="adamw", precision="mixed"),
                what="bytes of a real mixed-precision AdamW run (the float32 master grads are transient)")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_chinchilla_optimal_brute_force_hidden(impl):
    # Among model sizes N on a fine grid, the one whose token count C / (6N) is closest to
    # r·N (in ratio) is within one grid step of the returned N.
    for C, r in ((1e21, 20.0), (3.3e17, 5.0)):
        grid = torch.logspace(0, 15, 30001, dtype=torch.float64)
        ratio = (C / (6 * grid)) / grid
        best = float(grid[(ratio.log() - math.log(r)).abs().argmin()])
        params, tokens = impl.chinchilla_optimal(C, r)
        step = 10 ** (15 / 30000)
        case = check.describe(compute=C, tokens_per_param=r)
        check.that(best / step <= params <= best * step, "chinchilla_optimal",
                   f"params {params:.6g}, but the brute-force search over model sizes finds {best:.6g}", case=case)
        check.close(torch.tensor(tokens, dtype=torch.float64), torch.tensor(C / (6 * params), dtype=torch.float64),
                    unit="chinchilla_optimal", case=case, kind="elementwise", what="tokens (must be C / (6·params))",
                    tol=Tolerance(rtol=1e-12, atol=0.0))  # pure float64 arithmetic: a few ulps
