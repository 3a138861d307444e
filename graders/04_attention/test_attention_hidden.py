"""Instructor-only graders for topic 04: more randomised cases and edge cases."""

from __future__ import annotations

import attention_oracles as O
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from llmlab.testing import check, guard
from llmlab.testing.strategies import examples, float_dtypes, seeds, shapes
from llmlab.testing.tensors import bool_mask, rand, randn


@pytest.mark.hidden
@pytest.mark.points(2)
@examples(12)
@given(shape=shapes(max_side=5), dim_pick=st.integers(0, 2), p_masked=st.sampled_from([0.0, 0.3, 0.8, 1.0]),
       dtype=float_dtypes(), seed=seeds())
def test_hidden_softmax_random_masks(impl, shape, dim_pick, p_masked, dtype, seed):
    x = randn(shape, seed, dtype, scale=5.0)
    x = x.masked_fill(rand(x.shape, seed + 1) < p_masked, float("-inf"))
    dim = dim_pick % x.dim()
    out = guard.call_without("softmax", O.SOFTMAX_BUILTINS, impl.softmax, x, dim=dim)
    check.close(out, O.softmax_defined(x, dim), unit="softmax", case=check.describe(x=x, dim=dim),
                tol=O.softmax_tol(x),
                mistakes={"a fully masked row gives NaN; it must give zeros": torch.softmax(x, dim)})


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_attention_mask_and_causal(impl):
    cases = [((2, 3), 4, 6, (1, 3, 1, 6)), ((2,), 6, 4, (2, 6, 4)), ((), 5, 5, (5, 5))]
    for i, (batch, t_q, t_k, mask_shape) in enumerate(cases):
        q = randn(batch + (t_q, 4), 300 + i, scale=2.0)
        k, v = randn(batch + (t_k, 4), 310 + i), randn(batch + (t_k, 2), 320 + i)
        for mask in (bool_mask(mask_shape, 330 + i, p=0.7), randn(mask_shape, 340 + i)):
            for dtype in (torch.float64, torch.float32):
                qd, kd, vd, md = (t.to(dtype) if t.is_floating_point() else t for t in (q, k, v, mask))
                out = guard.call_without("scaled_dot_product_attention", O.ATTENTION_BUILTINS,
                                         impl.scaled_dot_product_attention, qd, kd, vd, mask=md, causal=True,
                                         hint=O.HINT_ATTENTION)
                check.close(out, O.sdpa_oracle(qd, kd, vd, md, True), unit="scaled_dot_product_attention",
                            case=check.describe(q=qd, k=kd, v=vd, mask=md, causal=True), kind="matmul",
                            mistakes=O.attention_mistakes(qd, kd, vd, md, True))


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_mha_configs_and_parameter_gradients(impl):
    for d_model, n_heads in ((4, 4), (9, 3)):
        module, p = O.make_mha(impl, d_model, n_heads, seed=400 + d_model)
        names = list(p)
        x = randn((2, 5, d_model), 410)
        pad = torch.tensor([[True] * 5, [False, True, True, True, False]])
        out = guard.call_without("MultiHeadAttention", O.MHA_BUILTINS, module, x, mask=pad.view(2, 1, 1, 5),
                                 causal=True, hint=O.HINT_ATTENTION)
        expected = O.torch_mha(p, d_model, n_heads, True)(
            x, x, x, need_weights=False, attn_mask=~torch.ones(5, 5, dtype=torch.bool).tril(), key_padding_mask=~pad)[0]
        # Query 0 of batch 1 sees no key (its only past key is padding): the attention gives 0
        # there, so the output is out_proj's bias, as in torch.
        check.close(out, expected, unit="MultiHeadAttention", kind="model",
                    case=check.describe(x=x, mask=pad.view(2, 1, 1, 5), causal=True))
        check.grads(lambda x, *ps: O.call_with(module, dict(zip(names, ps)), "MultiHeadAttention", O.MHA_BUILTINS, x,
                                               hint=O.HINT_ATTENTION, causal=True),
                    lambda x, *ps: O.mha_oracle(x, dict(zip(names, ps)), n_heads, None, True), [x, *p.values()],
                    unit="MultiHeadAttention", case=check.describe(x=x, causal=True), names=["x", *names])


@pytest.mark.hidden
@pytest.mark.points(2)
def test_hidden_block_float32_and_masks(impl):
    B, T, C, H, d_hidden = 3, 6, 12, 3, 20
    for pre_norm in (True, False):
        block, p = O.make_block(impl, C, H, d_hidden, pre_norm, seed=500 + pre_norm)
        mask = bool_mask((B, 1, T, T), 510)
        x = randn((B, T, C), 511)
        for dtype in (torch.float64, torch.float32):
            xd, md = x.to(dtype), mask
            pd = {k: v.to(dtype) for k, v in p.items()}
            out = guard.call_without("TransformerBlock", O.BLOCK_BUILTINS, block.to(dtype), xd, mask=md, causal=True)
            check.close(out, O.block_oracle(xd, pd, H, pre_norm, md, True), unit="TransformerBlock", kind="model",
                        case=check.describe(x=xd, mask=md, causal=True, pre_norm=pre_norm),
                        mistakes=O.block_mistakes(xd, pd, H, pre_norm, md, True))
