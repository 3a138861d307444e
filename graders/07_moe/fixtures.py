"""Golden data for 07_moe, generated from solutions/ by `llmlab fixtures 07_moe`.

Records (all small, float32 as the modules default to):
  router  a TopKRouter(6, 5, 2) with random gate weights and a nonzero balancing bias, a
          (2, 4, 6) input (two leading axes), its logits, indices and weights with
          normalize=True and the weights with normalize=False;
  losses  (3, 4, 5) router logits with top-2 indices, the load-balancing loss and the
          z-loss (shape (1,): the npz writer stores 0-d arrays as 1-d) and their gradients
          w.r.t. the logits;
  moe     a MoELayer(6, 4, 2, 8, capacity_factor=1.25, shared_expert=True) with every
          parameter random and a nonzero bias (`param.<name>`, the bias as
          `param.router.expert_bias`), a (2, 5, 6) input, output, logits, indices, kept, and
          the gradients (`grad.<name>`, `grad.x`) of (output · upstream).sum().
The generator checks that every selection is far from a tie, so rounding cannot flip an
expert.
"""

from __future__ import annotations

import torch

SEED = 7
MIN_MARGIN = 1e-3   # ≫ float32 rounding of the selection scores (~1e-7)


def _randomise(module: torch.nn.Module, g: torch.Generator, scale: float = 0.5) -> None:
    with torch.no_grad():
        for _, p in sorted(module.named_parameters()):
            p.copy_(scale * torch.randn(p.shape, generator=g))


def _margin(probs: torch.Tensor, bias: torch.Tensor, k: int) -> float:
    top = (probs.reshape(-1, probs.shape[-1]) + bias).sort(dim=-1, descending=True).values
    return float((top[:, k - 1] - top[:, k]).min())


def _check_margin(logits: torch.Tensor, bias: torch.Tensor, k: int, what: str) -> None:
    margin = _margin(logits.detach().softmax(-1), bias, k)
    if margin < MIN_MARGIN:
        raise RuntimeError(f"{what} fixture has a near-tie in the selection (margin {margin:.2e}); change SEED")


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)
    records = {}

    router = impl.TopKRouter(6, 5, 2)
    _randomise(router, g)
    router.expert_bias.copy_(0.1 * torch.randn(5, generator=g))
    x = torch.randn(2, 4, 6, generator=g)
    weights, indices, logits = router(x)
    _check_margin(logits, router.expert_bias, 2, "router")
    router.normalize = False
    raw, _, _ = router(x)
    records["router"] = {"gate.weight": router.gate.weight.detach().clone(), "expert_bias": router.expert_bias.clone(),
                         "x": x, "logits": logits.detach(), "indices": indices, "weights": weights.detach(),
                         "weights_unnormalized": raw.detach()}

    logits = (1.5 * torch.randn(3, 4, 5, generator=g)).requires_grad_(True)
    top2 = torch.sort(logits.detach(), dim=-1, descending=True, stable=True).indices[..., :2]
    balance = impl.load_balancing_loss(logits, top2)
    (g_balance,) = torch.autograd.grad(balance, logits)
    z = impl.router_z_loss(logits)
    (g_z,) = torch.autograd.grad(z, logits)
    records["losses"] = {"logits": logits.detach(), "indices": top2, "balance": balance.detach().reshape(1),
                         "grad_balance": g_balance, "z": z.detach().reshape(1), "grad_z": g_z}

    moe = impl.MoELayer(6, 4, 2, 8, capacity_factor=1.25, shared_expert=True)
    _randomise(moe, g)
    moe.router.expert_bias.copy_(0.1 * torch.randn(4, generator=g))
    x = torch.randn(2, 5, 6, generator=g).requires_grad_(True)
    out = moe(x)
    _check_margin(out.router_logits, moe.router.expert_bias, 2, "moe")
    if bool(out.kept.all()):
        raise RuntimeError("moe fixture drops nothing; change SEED")
    upstream = torch.randn(out.output.shape, generator=g)
    (out.output * upstream).sum().backward()
    record = {f"param.{k}": v.detach().clone() for k, v in moe.state_dict().items()}
    record.update({"x": x.detach(), "upstream": upstream, "output": out.output.detach(),
                   "logits": out.router_logits.detach(), "indices": out.expert_indices, "kept": out.kept,
                   "grad.x": x.grad.clone()})
    record.update({f"grad.{k}": p.grad.clone() for k, p in moe.named_parameters()})
    records["moe"] = record
    return records
