"""Golden data for 12_lora, generated from solutions/ by `llmlab fixtures 12_lora`.

Records (all small, float64 unless stated):
  lora_linear  a LoRALinear(nn.Linear(5, 4), r=3, alpha=6) with random weight, bias, A and B
               (A and B copied in, so the record does not depend on the RNG of the init), an
               input x (2, 3, 5), a random upstream gradient, the output and the gradients of
               x, A and B;
  nf4          a float32 (8, 32) tensor whose blocks of 32 differ in scale (0.01 to 10), its
               codes, absmax and dequantised values (the generator checks that no element
               lies within 1e-5 of a midpoint between two code values, so rounding cannot
               flip a code);
  slerp        two vectors of 7 and slerp at t = 0.1, 0.5, 0.8.
"""

from __future__ import annotations

import torch

SEED = 12
MIN_MIDPOINT_DISTANCE = 1e-5   # ≫ float32 rounding of w / absmax (~1e-7)


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)

    def randn(*shape, scale=1.0):
        return scale * torch.randn(*shape, generator=g, dtype=torch.float64)

    base = torch.nn.Linear(5, 4, dtype=torch.float64)
    layer = impl.LoRALinear(base, 3, 6.0)
    weight, bias, A, B = randn(4, 5, scale=0.5), randn(4, scale=0.3), randn(3, 5, scale=0.5), randn(4, 3, scale=0.5)
    with torch.no_grad():
        base.weight.copy_(weight)
        base.bias.copy_(bias)
        layer.lora_A.copy_(A)
        layer.lora_B.copy_(B)
    x = randn(2, 3, 5).requires_grad_(True)
    upstream = randn(2, 3, 4)
    out = layer(x)
    out.backward(upstream)
    lora_linear = {"weight": weight, "bias": bias, "lora_A": A, "lora_B": B, "alpha": torch.tensor(6.0),
                   "x": x.detach(), "upstream": upstream, "out": out.detach(), "grad_x": x.grad.clone(),
                   "grad_lora_A": layer.lora_A.grad.clone(), "grad_lora_B": layer.lora_B.grad.clone()}

    scales = 10.0 ** (3 * torch.rand(8, generator=g, dtype=torch.float64) - 2)
    w = (randn(8, 32) * scales[:, None]).float()
    codes, absmax = impl.nf4_quantize(w, 32)
    table = torch.tensor(impl.NF4_CODE, dtype=torch.float64)
    mids = (table[:-1] + table[1:]) / 2
    x_norm = (w.double().reshape(-1, 32) / absmax.double()[:, None]).flatten()
    gap = float((x_norm[:, None] - mids).abs().min())
    if gap < MIN_MIDPOINT_DISTANCE:
        raise RuntimeError(f"nf4 fixture has an element {gap:.1e} from a midpoint; change SEED")
    nf4 = {"w": w, "block_size": torch.tensor(32), "codes": codes, "absmax": absmax,
           "dequantized": impl.nf4_dequantize(codes, absmax, 32)}

    a, b = randn(7), randn(7)
    ts = [0.1, 0.5, 0.8]
    slerp = {"a": a, "b": b, "t": torch.tensor(ts, dtype=torch.float64),
             "out": torch.stack([impl.slerp(a, b, t) for t in ts])}
    return {"lora_linear": lora_linear, "nf4": nf4, "slerp": slerp}
