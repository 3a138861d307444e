"""Instructor-only graders for topic 04: more randomised cases and edge cases."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llmlab.testing import check
from test_attention import (
    _ATTENTION_BUILTINS, _HC, _PHASES, _SOFTMAX_BUILTINS, _attention_mistakes, _rand_bool, _randn, _run,
    _softmax_defined, _softmax_tol, sdpa_oracle,
)
from test_attention_layers import (
    _BLOCK_BUILTINS, _MHA_BUILTINS, _block, _block_mistakes, _mha, block_oracle, call_with, mha_oracle, torch_mha,
)


@pytest.mark.hidden
@pytest.mark.points(2)
@settings(max_examples=12, suppress_health_check=_HC, phases=_PHASES)
@given(shape=st.lists(st.integers(1, 5), min_size=1, max_size=3), dim_pick=st.integers(0, 2),
       p_masked=st.sampled_from([0.0, 0.3, 0.8, 1.0]), dtype=st.sampled_from([torch.float32, torch.float64]),
       seed=st.integers(0, 10_000))
def test_hidden_softmax_random_masks(impl, shape, dim_pick, p_masked, dtype, seed):
    x = _randn(shape, seed, dtype) * 5
    gen = torch.Generator().manual_seed(seed)
    x = x.masked_fill(torch.rand(x.shape, generator=gen) < p_masked, float("-inf"))
    dim = dim_pick % x.dim()
    out = _run("softmax", _SOFTMAX_BUILTINS, impl.softmax, x, dim=dim)
    check.close(out, _softmax_defined(x, dim), unit="softmax", case=check.describe(x=x, dim=dim),
                tol=_softmax_tol(x),
                mistakes={"a fully masked row gives NaN; it must give zeros": torch.softmax(x, dim)})


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_attention_mask_and_causal(impl):
    cases = [((2, 3), 4, 6, (1, 3, 1, 6)), ((2,), 6, 4, (2, 6, 4)), ((), 5, 5, (5, 5))]
    for i, (batch, t_q, t_k, mask_shape) in enumerate(cases):
        q = _randn(batch + (t_q, 4), 300 + i) * 2
        k, v = _randn(batch + (t_k, 4), 310 + i), _randn(batch + (t_k, 2), 320 + i)
        for mask in (_rand_bool(mask_shape, 330 + i, p=0.7), _randn(mask_shape, 340 + i)):
            for dtype in (torch.float64, torch.float32):
                qd, kd, vd, md = (t.to(dtype) if t.is_floating_point() else t for t in (q, k, v, mask))
                out = _run("scaled_dot_product_attention", _ATTENTION_BUILTINS, impl.scaled_dot_product_attention,
                           qd, kd, vd, mask=md, causal=True)
                check.close(out, sdpa_oracle(qd, kd, vd, md, True), unit="scaled_dot_product_attention",
                            case=check.describe(q=qd, k=kd, v=vd, mask=md, causal=True), kind="matmul",
                            mistakes=_attention_mistakes(qd, kd, vd, md, True))


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_mha_configs_and_parameter_gradients(impl):
    for d_model, n_heads in ((4, 4), (9, 3)):
        module, p = _mha(impl, d_model, n_heads, seed=400 + d_model)
        names = list(p)
        x = _randn((2, 5, d_model), 410)
        pad = torch.tensor([[True] * 5, [False, True, True, True, False]])
        out = _run("MultiHeadAttention", _MHA_BUILTINS, module, x, mask=pad.view(2, 1, 1, 5), causal=True)
        expected = torch_mha(p, d_model, n_heads, True)(
            x, x, x, need_weights=False, attn_mask=~torch.ones(5, 5, dtype=torch.bool).tril(), key_padding_mask=~pad)[0]
        # Query 0 of batch 1 sees no key (its only past key is padding): the attention gives 0
        # there, so the output is out_proj's bias, as in torch.
        check.close(out, expected, unit="MultiHeadAttention", kind="model",
                    case=check.describe(x=x, mask=pad.view(2, 1, 1, 5), causal=True))
        check.grads(lambda x, *ps: call_with(module, dict(zip(names, ps)), "MultiHeadAttention", _MHA_BUILTINS, x,
                                             causal=True),
                    lambda x, *ps: mha_oracle(x, dict(zip(names, ps)), n_heads, None, True), [x, *p.values()],
                    unit="MultiHeadAttention", case=check.describe(x=x, causal=True), names=["x", *names])


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_block_float32_and_masks(impl):
    B, T, C, H, d_hidden = 3, 6, 12, 3, 20
    for pre_norm in (True, False):
        block, p = _block(impl, C, H, d_hidden, pre_norm, seed=500 + pre_norm)
        mask = _rand_bool((B, 1, T, T), 510)
        x = _randn((B, T, C), 511)
        for dtype in (torch.float64, torch.float32):
            xd, md = x.to(dtype), mask
            pd = {k: v.to(dtype) for k, v in p.items()}
            out = _run("TransformerBlock", _BLOCK_BUILTINS, block.to(dtype), xd, mask=md, causal=True)
            check.close(out, block_oracle(xd, pd, H, pre_norm, md, True), unit="TransformerBlock", kind="model",
                        case=check.describe(x=xd, mask=md, causal=True, pre_norm=pre_norm),
                        mistakes=_block_mistakes(xd, pd, H, pre_norm, md, True))
