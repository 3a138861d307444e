"""Instructor-only graders for 16_inference (left out of student bundles).

  - cached decoding on a deeper random model (3 layers, 8 query heads on 2 kv heads,
    QK-norm, float64) filled chunk by chunk up to block_size, and its greedy generation;
  - FlashAttention's backward: peak memory (forward and backward, autograd on) linear in T;
  - FlashAttention in float32 on larger ragged shapes, forward and gradients;
  - the block allocator over 300 seeded random operations and the scheduler on 60 requests,
    against the oracles of `inference_oracle`.
"""

from __future__ import annotations

import random

import pytest
import torch

import inference_oracle as O
from llmlab.lib.memory import peak_memory
from llmlab.testing import check, tensors


@pytest.mark.hidden
@pytest.mark.points(2)
def test_cached_forward_deep_random_model_hidden(impl):
    model = O.random_model(91, torch.float64, n_layer=3, n_head=8, n_kv_head=2, d_model=32, qk_norm=True,
                           block_size=24, vocab_size=17)
    idx = tensors.randint((2, 24), 92, high=17)
    chunks = [7, 1, 1, 8, 1, 6]
    cache = impl.KVCache.for_model(model, 2)
    start = 0
    with torch.no_grad():
        for n in chunks:
            logits = impl.cached_forward(model, idx[:, start:start + n], cache)
            check.close(logits, model(idx[:, :start + n])[0][:, start:], unit="cached_forward", kind="model",
                        what="logits vs TinyLlama.forward", case=check.describe(chunks=chunks, start=start, n=n))
            start += n
    prompt = idx[:, :4]
    check.close(impl.generate_cached(model, prompt, 21), O.greedy_full(model, prompt, 21), unit="generate_cached",
                kind="exact", what="greedy continuation filling block_size", case=check.describe(prompt=prompt))


@pytest.mark.hidden
@pytest.mark.points(2)
def test_flash_backward_memory_grows_linearly_hidden(impl):
    # Forward and backward with autograd on: what the graph saves (q, k, v, out, lse) and the
    # gradients grow like T; recomputed 64 × 64 tiles stay constant. The reference measures
    # about 1.3–1.5× per doubling; saving the (T, T) probabilities makes it about 3–4×.
    peaks = {}
    for T in (128, 256, 512):
        q, k, v = (t.requires_grad_(True) for t in O.attention_inputs(600 + T, 1, 1, T, T, 16, torch.float32))
        g = tensors.randn((1, 1, T, 16), 700 + T, torch.float32)

        def run():
            out, lse = impl.FlashAttention.apply(q, k, v, True, 64, 64)
            return torch.autograd.grad((out * g).sum() + lse.sum(), [q, k, v])

        _, peaks[T] = peak_memory(run)
    text = ", ".join(f"T = {T}: {b / 1024:.1f} KiB" for T, b in peaks.items())
    for T in (128, 256):
        ratio = peaks[2 * T] / max(peaks[T], 1)
        check.that(ratio <= 2.5, "FlashAttention.backward",
                   f"peak memory of forward + backward grew {ratio:.2f}× from T = {T} to {2 * T}; it must grow "
                   "linearly (recompute the probabilities per tile, save no (T, T) tensor)", f"measured: {text}")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_flash_float32_larger_shapes_hidden(impl):
    for seed, (B, H, Tq, Tk, D, causal, bq, bk) in enumerate([(2, 3, 70, 70, 16, True, 64, 64),
                                                              (1, 4, 33, 97, 8, False, 16, 32),
                                                              (3, 1, 50, 50, 5, True, 7, 11)]):
        q, k, v = (t.float() for t in O.attention_inputs(800 + seed, B, H, Tq, Tk, D))
        case = check.describe(q=q, k=k, causal=causal, block_q=bq, block_k=bk)
        out, lse = impl.flash_attention(q, k, v, causal, bq, bk)
        want_out, want_lse = O.naive_attention(q.double(), k.double(), v.double(), causal)
        check.close(out, want_out.float(), unit="flash_attention", kind="matmul", case=case, what="out")
        check.close(lse, want_lse.float(), unit="flash_attention", kind="reduction", case=case, what="lse")
        leaves = [t.clone().requires_grad_(True) for t in (q, k, v)]
        o, l = impl.FlashAttention.apply(*leaves, causal, bq, bk)
        dout = tensors.randn(o.shape, 900 + seed, torch.float32)
        (o * dout).sum().add((l * 0.5).sum()).backward()
        ref = [t.double().requires_grad_(True) for t in (q, k, v)]
        ro, rl = O.naive_attention(*ref, causal)
        (ro * dout.double()).sum().add((rl * 0.5).sum()).backward()
        for name, a, b in zip("qkv", leaves, ref):
            check.close(a.grad, b.grad.float(), unit="FlashAttention.backward", kind="gradient", case=case,
                        what=f"d{name} (float32)")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_serving_long_runs_hidden(impl):
    rng = random.Random(16)
    pool, model = impl.BlockAllocator(12, 3), O.AllocatorModel(12, 3)
    for step in range(300):
        op = rng.choice(["allocate", "append", "append", "append", "free"])
        seq, n = rng.randrange(6), rng.randrange(0, 7)
        want = model.free_seq(seq) if op == "free" else getattr(model, op)(seq, n)
        try:
            got = pool.free(seq) if op == "free" else getattr(pool, op)(seq, n)
        except (ValueError, KeyError, MemoryError) as exc:
            got = type(exc).__name__
        case = check.describe(step=step, op=op, seq=seq, n=n)
        check.equal(got, want, unit=f"BlockAllocator.{op}", what="result (or exception)", case=case)
        check.equal({s: pool.block_table(s) for s in model.tables}, model.tables, unit="BlockAllocator",
                    what="block tables", case=case)
        check.equal(pool.num_free, len(model.free), unit="BlockAllocator.num_free", what="free blocks", case=case)
    rows = [(f"r{i}", rng.randrange(40), rng.randint(1, 20), rng.randint(1, 12)) for i in range(60)]
    requests = [impl.Request(*r) for r in rows]
    for max_batch, cap in ((4, 40), (8, 64), (1, 32)):
        got = impl.simulate_continuous_batching(requests, max_batch, cap)
        check.equal(got, O.batching_oracle(requests, max_batch, cap), unit="simulate_continuous_batching",
                    what="(schedule, batch_sizes) of 60 requests",
                    case=check.describe(max_batch=max_batch, kv_capacity=cap))
