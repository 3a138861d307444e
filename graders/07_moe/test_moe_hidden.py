"""Instructor-only graders for 07_moe (left out of student bundles).

  - MoELayer on larger configurations (8 experts, 48 tokens, capacity, a shared expert, raw
    probabilities as weights) against the per-token loop oracle: values, kept, gradients;
  - a training-style loop of forward + update_bias on a layer, against an oracle that
    routes token by token and updates its own copy of the bias: the whole bias trajectory
    and every load;
  - the auxiliary losses on a layer's own outputs, added to a task loss: the gradient that
    reaches the router, against the oracles.
"""

from __future__ import annotations

import pytest
import torch
from torch.func import functional_call

import moe_oracle as O
from llmlab.testing import check, tensors


def _layer(impl, seed, **kwargs):
    moe = impl.MoELayer(**kwargs)
    tensors.randomize_parameters(moe, seed, 0.5)
    return moe


@pytest.mark.hidden
@pytest.mark.points(3)
def test_moe_larger_configs_match_loop_oracle_hidden(impl):
    for seed, (E, k, cf, shared, normalize) in enumerate(((8, 2, 1.0, True, False), (6, 3, 0.75, False, True)),
                                                         start=200):
        moe = _layer(impl, seed, d_model=8, n_experts=E, k=k, d_hidden=12, capacity_factor=cf,
                     shared_expert=shared, normalize=normalize)
        with torch.no_grad():
            moe.router.expert_bias.copy_(tensors.randn((E,), seed + 1, torch.float32, 0.05))
        x = tensors.randn((4, 12, 8), seed + 2, torch.float32)
        cfg = dict(n_experts=E, k=k, capacity_factor=cf, normalize=normalize, shared=shared)
        case = check.describe(x=x, **cfg)
        bias = moe.router.expert_bias.clone()
        expected, _, indices, kept = O.moe_loop(O.moe_params(moe), x, bias=bias, **cfg)
        out = moe(x)
        check.close(out.expert_indices, indices, unit="MoELayer.forward", kind="exact", what="expert_indices",
                    case=case)
        check.close(out.kept, kept, unit="MoELayer.forward", kind="exact", what="kept", case=case,
                    mistakes=O.kept_mistakes(indices, cfg, 48, seq_len=12))
        check.close(out.output, expected, unit="MoELayer.forward", kind="model", case=case,
                    mistakes=O.output_mistakes(moe, cfg, x))
        names = sorted(n for n, _ in moe.named_parameters())
        params = dict(moe.named_parameters())
        check.grads(lambda xx, *ps: functional_call(moe, dict(zip(names, ps)), (xx,)).output,
                    lambda xx, *ps: O.moe_loop(dict(zip(names, ps)), xx, bias=bias, **cfg)[0],
                    [x] + [params[n].detach() for n in names], names=["x"] + names, unit="MoELayer.forward",
                    case=case)


@pytest.mark.hidden
@pytest.mark.points(2)
def test_bias_trajectory_in_a_layer_matches_oracle_hidden(impl):
    E, k, rate = 5, 2, 0.01
    moe = _layer(impl, 210, d_model=6, n_experts=E, k=k, d_hidden=8, capacity_factor=1.0)
    with torch.no_grad():
        moe.router.gate.weight[1] += 0.6                         # expert 1 is popular at first
    bias = torch.zeros(E)
    W = moe.router.gate.weight.detach().clone()
    for step in range(25):
        x = tensors.randn((3, 8, 6), 300 + step, torch.float32)
        out = moe(x)
        load = moe.router.update_bias(out.expert_indices, rate)
        _, indices = O.route_loop(x.reshape(-1, 6) @ W.T, bias, k, True)
        counts = torch.bincount(indices.reshape(-1), minlength=E)
        bias = bias + rate * torch.sign(indices.numel() / E - counts.float())
        case = check.describe(step=step, rate=rate, n_experts=E, k=k)
        check.close(out.expert_indices, indices, unit="MoELayer.forward", kind="exact",
                    what=f"expert_indices at step {step} of a biased routing loop", case=case)
        check.close(load, counts, unit="TopKRouter.update_bias", kind="exact", what=f"load at step {step}", case=case)
        check.close(moe.router.expert_bias, bias, unit="TopKRouter.update_bias", kind="reduction",
                    what=f"expert_bias after step {step}", case=case)


@pytest.mark.hidden
@pytest.mark.points(2)
def test_aux_losses_on_layer_outputs_hidden(impl):
    moe = _layer(impl, 220, d_model=6, n_experts=4, k=2, d_hidden=8, capacity_factor=1.25)
    x = tensors.randn((2, 6, 6), 221, torch.float32)
    target = tensors.randn((2, 6, 6), 222, torch.float32)
    out = moe(x)
    loss = ((out.output - target) ** 2).mean() + 0.01 * impl.load_balancing_loss(out.router_logits, out.expert_indices) \
        + 0.001 * impl.router_z_loss(out.router_logits)
    loss.backward()
    W = moe.router.gate.weight.detach().clone().requires_grad_(True)
    params = {n: p.detach() for n, p in moe.named_parameters()} | {"router.gate.weight": W}
    cfg = dict(n_experts=4, k=2, capacity_factor=1.25, normalize=True, shared=False)
    y, _, indices, _ = O.moe_loop(params, x, bias=torch.zeros(4), **cfg)
    logits = x.reshape(-1, 6) @ W.T
    oracle = ((y - target) ** 2).mean() + 0.01 * O.balance_loss_loop(logits, indices) + 0.001 * O.z_loss_loop(logits)
    oracle.backward()
    case = check.describe(x=x, **cfg)
    check.close(loss.detach(), oracle.detach(), unit="MoELayer.forward", kind="loss",
                what="task loss + 0.01 · balancing loss + 0.001 · z-loss", case=case)
    check.close(moe.router.gate.weight.grad, W.grad, unit="MoELayer.forward", kind="gradient",
                what="gradient of the total loss w.r.t. router.gate.weight", case=case)
