"""Graders for 16_inference (FlashAttention): flash_attention and FlashAttention.

Evidence per unit:
  - flash_attention: out and lse against naive attention with PyTorch built-ins
    (`inference_oracle.naive_attention`, float64) on random shapes, tile sizes that do and do
    not divide the lengths, causal and not, Tq != Tk; a calculation by hand; golden data;
    float32, views and the default tiles; every Raises clause; the peak extra memory measured
    with `llmlab.lib.memory.peak_memory` at doubling lengths (linear, not quadratic); run
    with the softmax / logsumexp / scaled_dot_product_attention built-ins forbidden; known
    mistakes (no rescaling, lse in base 2 or of unscaled scores, the diagonal tile skipped)
    named;
  - FlashAttention: gradients w.r.t. q, k, v from upstream gradients on both outputs against
    autograd through naive attention; float64 gradcheck; golden gradients; the saved tensors
    hold no (Tq, Tk) matrix.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import inference_oracle as O
from llmlab.lib.memory import peak_memory
from llmlab.testing import check, guard, reference, tensors
from llmlab.testing.strategies import examples, seeds

TOPIC = O.TOPIC
UNIT = "flash_attention"


def _flash(impl, q, k, v, causal, bq, bk):
    result = guard.call_without(UNIT, O.FLASH_BUILTINS, impl.flash_attention, q, k, v, causal, bq, bk,
                                hint=O.FLASH_HINT)
    check.that(isinstance(result, tuple) and len(result) == 2, UNIT,
               "return a pair (out, lse): the log-sum-exp is part of the result",
               f"got {type(result).__name__}" + (f" of length {len(result)}" if isinstance(result, tuple) else ""),
               "known mistake: lse not returned" if isinstance(result, torch.Tensor) else "",
               case=check.describe(q=q, k=k, causal=causal, block_q=bq, block_k=bk))
    return result


def _check_forward(impl, q, k, v, causal, bq, bk, case, kind_out="matmul"):
    out, lse = _flash(impl, q, k, v, causal, bq, bk)
    want_out, want_lse = O.naive_attention(q, k, v, causal)
    check.that(isinstance(out, torch.Tensor) and isinstance(lse, torch.Tensor), UNIT,
               "return (out, lse), two tensors", case=case)
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    if causal:
        T = q.shape[2]
        scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    check.close(out, want_out, unit=UNIT, kind=kind_out, case=case, what="out", mistakes={
        "the running sum not rescaled when the running maximum changes":
            lambda: O.tiled_mistake(q, k, v, causal, bq, bk, rescale_sum=False)[0],
        "the running output not rescaled when the running maximum changes":
            lambda: O.tiled_mistake(q, k, v, causal, bq, bk, rescale_acc=False)[0],
        "causal tile skipping off by one (the tile holding the diagonal skipped)":
            lambda: O.tiled_mistake(q, k, v, causal, bq, bk, skip_diagonal_tile=True)[0],
        "causal mask hides the diagonal (key == query)":
            lambda: O.naive_attention(q, k, v, causal, diagonal=0)[0]})
    check.close(lse, want_lse, unit=UNIT, kind="reduction", case=case, what="lse (natural log, shape (B, H, Tq))",
                mistakes={"lse in base 2 instead of the natural log": lambda: want_lse / math.log(2),
                          "lse of the scores without the 1/sqrt(D) scale": lambda: want_lse * math.sqrt(q.shape[-1]),
                          "lse is only the running maximum (log of the sum missing)": lambda: scores.amax(-1),
                          "the running sum not rescaled when the running maximum changes":
                              lambda: O.tiled_mistake(q, k, v, causal, bq, bk, rescale_sum=False)[1]})


# ================================================================= flash_attention

@pytest.mark.points(3)
@examples(14)
@given(seed=seeds(), B=st.integers(1, 2), H=st.integers(1, 2), Tq=st.integers(1, 13), Tk=st.integers(1, 13),
       D=st.sampled_from([1, 4, 8]), causal=st.booleans(), bq=st.integers(1, 8), bk=st.integers(1, 8))
def test_flash_matches_naive_attention(impl, seed, B, H, Tq, Tk, D, causal, bq, bk):
    Tk = Tq if causal else Tk
    q, k, v = O.attention_inputs(seed, B, H, Tq, Tk, D)
    case = check.describe(q=q, k=k, causal=causal, block_q=bq, block_k=bk)
    _check_forward(impl, q, k, v, causal, bq, bk, case)


@pytest.mark.points(1)
def test_flash_by_hand(impl):
    # D = 2, one query q = (1, 1), keys (1, 1) and (−1, −1), values (1, 0) and (0, 1):
    # scores q·k / sqrt(2) = ±sqrt(2); lse = ln(e^√2 + e^−√2) = ln(2·cosh √2) ≈ 1.47094;
    # weights e^±√2 / (2 cosh √2) = (0.94419, 0.05581) — the output.
    q = torch.tensor([[[[1.0, 1.0]]]], dtype=torch.float64)
    k = torch.tensor([[[[1.0, 1.0], [-1.0, -1.0]]]], dtype=torch.float64)
    v = torch.tensor([[[[1.0, 0.0], [0.0, 1.0]]]], dtype=torch.float64)
    r = math.sqrt(2)
    lse = math.log(2 * math.cosh(r))
    w = math.exp(r - lse)
    for bk in (1, 2):
        out, got_lse = _flash(impl, q, k, v, False, 1, bk)
        case = check.describe(q=q, k=k, v=v, block_k=bk)
        check.close(got_lse, torch.tensor([[[lse]]], dtype=torch.float64), unit=UNIT, kind="reduction", case=case,
                    what="lse", mistakes={"lse in base 2 instead of the natural log":
                                          torch.tensor([[[lse / math.log(2)]]], dtype=torch.float64),
                                          "lse of the scores without the 1/sqrt(D) scale":
                                          torch.tensor([[[math.log(2 * math.cosh(2.0))]]], dtype=torch.float64),
                                          "lse is only the running maximum (log of the sum missing)":
                                          torch.tensor([[[r]]], dtype=torch.float64)})
        check.close(out, torch.tensor([[[[w, 1 - w]]]], dtype=torch.float64), unit=UNIT, kind="matmul", case=case)


@pytest.mark.points(2)
def test_flash_causal_ragged_tiles(impl):
    cases = [(13, 4, 5), (13, 5, 4), (13, 13, 13), (13, 1, 1), (16, 3, 16), (16, 16, 3), (9, 8, 8),
             (1, 1, 1), (1, 64, 64), (5, 7, 2), (10, 3, 3)]
    for i, (T, bq, bk) in enumerate(cases):
        q, k, v = O.attention_inputs(200 + i, 1, 2, T, T, 4, spread=2.0)
        _check_forward(impl, q, k, v, True, bq, bk, check.describe(T=T, causal=True, block_q=bq, block_k=bk))
    q, k, v = O.attention_inputs(250, 2, 1, 6, 11, 3)
    _check_forward(impl, q, k, v, False, 4, 4, check.describe(Tq=6, Tk=11, causal=False, block_q=4, block_k=4))


@pytest.mark.points(1)
def test_flash_reference_data(impl):
    r = reference.load(TOPIC, "flash")
    out, lse = _flash(impl, r["q"], r["k"], r["v"], True, 4, 3)
    check.close(out, r["out_causal"], unit=UNIT, kind="matmul", what="out (golden, causal, tiles 4 × 3)")
    check.close(lse, r["lse_causal"], unit=UNIT, kind="reduction", what="lse (golden, causal, tiles 4 × 3)")
    out, lse = _flash(impl, r["q"], r["k2"], r["v2"], False, 3, 5)
    check.close(out, r["out_cross"], unit=UNIT, kind="matmul", what="out (golden, Tq = 11, Tk = 7)")
    check.close(lse, r["lse_cross"], unit=UNIT, kind="reduction", what="lse (golden, Tq = 11, Tk = 7)")


@pytest.mark.points(1)
def test_flash_float32_views_defaults_and_raises(impl):
    # float32, inputs that are transposed views of (B, T, H, D) tensors, the default 64 × 64
    # tiles on T = 70 (one full tile and a ragged one).
    base = [tensors.randn((2, 70, 3, 8), s, torch.float32) for s in (1, 2, 3)]
    q, k, v = (t.transpose(1, 2) for t in base)
    case = check.describe(q=q, note="non-contiguous views, default tiles")
    out, lse = guard.call_without(UNIT, O.FLASH_BUILTINS, impl.flash_attention, q, k, v, causal=True)
    want_out, want_lse = O.naive_attention(q.double(), k.double(), v.double(), True)
    check.close(out, want_out.float(), unit=UNIT, kind="matmul", case=case, what="out (float32)")
    check.close(lse, want_lse.float(), unit=UNIT, kind="reduction", case=case, what="lse (float32)")
    out, lse = impl.flash_attention(q, k, v)
    check.close(out, O.naive_attention(q.double(), k.double(), v.double(), False)[0].float(), unit=UNIT,
                kind="matmul", case=case + "; causal defaults to False", what="out")
    ok = tensors.randn((1, 2, 4, 3), 9, torch.float32)
    bad = [((ok[0], ok, ok), {}, "q must be 4-D"),
           ((ok, tensors.randn((1, 3, 4, 3), 10, torch.float32), ok), {}, "k has another number of heads"),
           ((ok, ok, tensors.randn((1, 2, 5, 3), 11, torch.float32)), {}, "k and v differ in length"),
           ((ok, tensors.randn((1, 2, 4, 2), 12, torch.float32), tensors.randn((1, 2, 4, 2), 12, torch.float32)),
            {}, "q and k differ in head size"),
           ((ok, ok.double(), ok.double()), {}, "the dtypes differ"),
           ((ok, ok, ok), dict(block_q=0), "block_q must be a positive integer"),
           ((ok, ok, ok), dict(block_k=-2), "block_k must be a positive integer"),
           ((ok, ok, ok), dict(block_k=2.0), "block_k must be an integer"),
           ((ok, ok, ok), dict(block_q=True), "booleans are not tile sizes"),
           ((ok, tensors.randn((1, 2, 6, 3), 13, torch.float32), tensors.randn((1, 2, 6, 3), 14, torch.float32)),
            dict(causal=True), "causal needs Tq == Tk")]
    for args, kwargs, why in bad:
        check.expect_raises(ValueError, impl.flash_attention, *args, unit=UNIT, why=why, **kwargs,
                            case=check.describe(q=args[0], k=args[1], v=args[2], **kwargs))


@pytest.mark.points(2)
def test_flash_memory_grows_linearly(impl):
    # Peak extra memory (llmlab.lib.memory.peak_memory, no autograd) at T = 256, 512, 1024
    # with 64 × 64 tiles: the output, lse and running statistics grow like T, the tiles stay
    # 64 × 64, so doubling T must at most about double the peak (the reference measures 1.2 and 1.3;
    # 2.5 leaves room for another layout of the same algorithm). A (T, T) score matrix makes
    # the peak grow about 4× per doubling.
    peaks = {}
    for T in (256, 512, 1024):
        q, k, v = O.attention_inputs(300 + T, 1, 1, T, T, 16, torch.float32)
        with torch.no_grad():
            _, peaks[T] = peak_memory(impl.flash_attention, q, k, v, True, 64, 64)
    text = ", ".join(f"T = {T}: {b / 1024:.1f} KiB" for T, b in peaks.items())
    for T in (256, 512):
        ratio = peaks[2 * T] / max(peaks[T], 1)
        check.that(ratio <= 2.5, UNIT, f"peak extra memory grew {ratio:.2f}× from T = {T} to {2 * T}: "
                   "it must grow linearly with T (≤ 2.5× per doubling)", f"measured peaks: {text}",
                   "known mistake: the full (Tq, Tk) score matrix is materialised" if ratio > 3 else "",
                   case=check.describe(B=1, H=1, D=16, block_q=64, block_k=64, causal=True))
    score_matrix = 1024 * 1024 * 4
    check.that(peaks[1024] < score_matrix / 4, UNIT, f"the peak extra memory at T = 1024 is {peaks[1024]:,} bytes; "
               f"a (T, T) float32 score matrix alone is {score_matrix:,}", f"measured peaks: {text}")


# ================================================================= FlashAttention (backward)

def _student_grads(impl, q, k, v, causal, bq, bk, dout, dlse):
    leaves = [t.detach().clone().requires_grad_(True) for t in (q, k, v)]
    with guard.forbid("FlashAttention.backward", O.FLASH_BUILTINS + ["torch.autograd.grad"], O.FLASH_HINT):
        out, lse = impl.FlashAttention.apply(*leaves, causal, bq, bk)
        check.that(out.grad_fn is not None and "FlashAttention" in type(out.grad_fn).__name__, "FlashAttention",
                   "the outputs of FlashAttention.apply must come from the custom Function's graph node",
                   f"grad_fn is {type(out.grad_fn).__name__}")
        ((out * dout).sum() + (lse * dlse).sum()).backward()
    return [t.grad for t in leaves], out, lse


def _oracle_grads(q, k, v, causal, dout, dlse):
    leaves = [t.detach().clone().requires_grad_(True) for t in (q, k, v)]
    out, lse = O.naive_attention(*leaves, causal)
    return torch.autograd.grad((out * dout).sum() + (lse * dlse).sum(), leaves)


def _check_backward(impl, q, k, v, causal, bq, bk, seed, case):
    dout = tensors.randn(q.shape, seed + 5, q.dtype)
    dlse = tensors.randn(q.shape[:3], seed + 6, q.dtype)
    got, out, lse = _student_grads(impl, q, k, v, causal, bq, bk, dout, dlse)
    want = _oracle_grads(q, k, v, causal, dout, dlse)
    no_lse = _oracle_grads(q, k, v, causal, dout, torch.zeros_like(dlse))
    only_lse = _oracle_grads(q, k, v, causal, torch.zeros_like(dout), dlse)
    for name, g, w, a, b in zip("qkv", got, want, no_lse, only_lse):
        check.that(g is not None, "FlashAttention.backward", f"no gradient reaches {name}", case=case)
        check.close(g, w, unit="FlashAttention.backward", kind="gradient", case=case, what=f"d{name}",
                    mistakes={"the gradient from lse (dlse) is ignored": a,
                              "the gradient from out (dout) is ignored": b})


@pytest.mark.points(3)
@examples(10)
@given(seed=seeds(), Tq=st.integers(1, 11), Tk=st.integers(1, 11), D=st.sampled_from([1, 3, 4]),
       causal=st.booleans(), bq=st.integers(1, 6), bk=st.integers(1, 6))
def test_flash_backward_matches_autograd_of_naive(impl, seed, Tq, Tk, D, causal, bq, bk):
    Tk = Tq if causal else Tk
    q, k, v = O.attention_inputs(seed, 2, 2, Tq, Tk, D)
    _check_backward(impl, q, k, v, causal, bq, bk, seed,
                    check.describe(q=q, k=k, causal=causal, block_q=bq, block_k=bk))


@pytest.mark.points(2)
def test_flash_backward_gradcheck_and_reference(impl):
    for causal, (Tq, Tk), (bq, bk) in ((True, (5, 5), (2, 3)), (False, (4, 6), (3, 2)), (True, (1, 1), (4, 4))):
        q, k, v = O.attention_inputs(400 + Tq, 1, 2, Tq, Tk, 3)
        case = check.describe(q=q, k=k, causal=causal, block_q=bq, block_k=bk)
        guard.gradcheck_without("FlashAttention.backward", O.FLASH_BUILTINS,
                                lambda a, b, c: torch.cat([t.flatten() for t in
                                                           impl.FlashAttention.apply(a, b, c, causal, bq, bk)]),
                                [q, k, v], case=case, hint=O.FLASH_HINT)
    r = reference.load(TOPIC, "flash")
    got, _, _ = _student_grads(impl, r["q"], r["k"], r["v"], True, 4, 3, r["dout"], r["dlse"])
    for name, g in zip("qkv", got):
        check.close(g, r[f"d{name}"], unit="FlashAttention.backward", kind="gradient", what=f"d{name} (golden data)")
    q32, k32, v32 = (t.float() for t in O.attention_inputs(450, 1, 2, 9, 9, 4))
    got, _, _ = _student_grads(impl, q32, k32, v32, True, 4, 4, torch.ones(1, 2, 9, 4), torch.zeros(1, 2, 9))
    check.that(all(g.dtype == torch.float32 and g.shape == t.shape for g, t in zip(got, (q32, k32, v32))),
               "FlashAttention.backward", "each gradient has the shape and dtype of its input (float32 here)")


@pytest.mark.points(1)
def test_flash_backward_saves_no_score_matrix(impl):
    T, D = 48, 2
    q, k, v = (t.requires_grad_(True) for t in O.attention_inputs(500, 1, 1, T, T, D))
    out, lse = impl.FlashAttention.apply(q, k, v, True, 8, 8)
    saved = out.grad_fn.saved_tensors
    sizes = [tuple(t.shape) for t in saved]
    check.that(len(saved) > 0 and all(t.numel() < T * T for t in saved), "FlashAttention.forward",
               "save q, k, v, out and lse only (nothing of size Tq·Tk: the backward recomputes it)",
               f"saved tensor shapes: {sizes}", case=check.describe(q=q, causal=True, block_q=8, block_k=8))
    check.that(sum(t.numel() for t in saved) <= 5 * T * D + T, "FlashAttention.forward",
               "saved tensors should be q, k, v, out (each Tq·D or Tk·D) and lse", f"saved tensor shapes: {sizes}")
