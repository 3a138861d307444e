"""Graders for 16_inference (KV cache): KVCache, cached_forward and generate_cached.

Evidence per unit:
  - KVCache: shapes, dtype and zeros of the pre-allocated buffers; append/advance/positions
    on hand-made keys (the returned views equal everything written so far); every Raises
    clause;
  - cached_forward: the logits of every call equal the given `TinyLlama.forward` on the full
    sequence so far (the oracle), on the trained tiny LLaMA step by step and on random models
    with grouped-query attention, multi-head, one kv head and QK-norm, in float32 and
    float64, with prefill chunks of several sizes; the cache holds the keys after k_norm and
    RoPE and the values (against `inference_oracle.functional_forward`); known mistakes
    (positions restarting at 0, tiled GQA heads, keys cached before RoPE) named;
  - generate_cached: greedy tokens equal greedy decoding that recomputes the prefix
    (`inference_oracle.greedy_full`) and the golden continuation; each token is embedded
    exactly once and model.forward is never called; the tie rule; the Raises clauses.
"""

from __future__ import annotations

import pytest
import torch

import inference_oracle as O
from llmlab.testing import check, reference, tensors

TOPIC = O.TOPIC


def _cache_for(impl, model, B, max_len=None):
    c = model.config
    return impl.KVCache(c.n_layer, B, c.n_kv_head, max_len or c.block_size, c.d_model // c.n_head,
                        dtype=model.lm_head.weight.dtype)


def _run_chunks(impl, model, idx, chunks, cache=None):
    """Feed idx to cached_forward in chunks; return the list of (logits, start) per call."""
    cache = cache or _cache_for(impl, model, idx.shape[0])
    outs, start = [], 0
    with torch.no_grad():
        for n in chunks:
            outs.append((impl.cached_forward(model, idx[:, start:start + n], cache), start))
            start += n
            check.equal(cache.length, start, unit="cached_forward",
                        what="cache.length after the call (advance by the number of new tokens)",
                        case=check.describe(chunks=chunks))
    return outs, cache


def _check_chunks_against_full(impl, model, idx, chunks, case, name_mistakes=True):
    outs, cache = _run_chunks(impl, model, idx, chunks)
    with torch.no_grad():
        for logits, start in outs:
            n = logits.shape[1]
            end = start + n
            full = model(idx[:, :end])[0][:, start:end]
            mistakes = None
            if name_mistakes:
                mistakes = {
                    "RoPE positions restart at 0 in every call (use cache.positions(n), not 0 … n − 1)":
                        lambda end=end, start=start: O.functional_forward(
                            model, idx[:, :end], O.restart_positions(_chunks_upto(chunks, end)))[0][:, start:end],
                    "grouped-query heads tiled (repeat) instead of grouped (repeat_interleave)":
                        lambda end=end, start=start: O.functional_forward(
                            model, idx[:, :end], kv_head=O.tiled_map)[0][:, start:end],
                    "keys cached before RoPE":
                        lambda end=end, start=start: O.functional_forward(
                            model, idx[:, :end], rope_keys=False)[0][:, start:end],
                }
            check.close(logits, full, unit="cached_forward", kind="model",
                        case=case + f"; call for positions {start} … {end - 1}",
                        what="logits (vs TinyLlama.forward on the whole sequence so far)", mistakes=mistakes)
    return cache


def _chunks_upto(chunks, end):
    out, total = [], 0
    for n in chunks:
        if total >= end:
            break
        out.append(n)
        total += n
    return out


# ================================================================= KVCache

@pytest.mark.points(1)
def test_kv_cache_allocates_zeros(impl):
    for args, dtype in (((2, 3, 2, 7, 4), torch.float32), ((1, 1, 1, 1, 1), torch.float64)):
        cache = impl.KVCache(*args, dtype=dtype)
        case = check.describe(sizes=args, dtype=str(dtype))
        for name in ("k", "v"):
            t = getattr(cache, name, None)
            check.that(isinstance(t, torch.Tensor) and tuple(t.shape) == args and t.dtype == dtype, "KVCache.__init__",
                       f"`{name}` must be a {dtype} tensor of shape (n_layer, batch_size, n_kv_heads, max_len, head_dim)",
                       f"got {None if t is None else (tuple(t.shape), t.dtype)}", case=case)
            check.that(bool((t == 0).all()), "KVCache.__init__", f"`{name}` must start as zeros", case=case)
        check.that(cache.k.untyped_storage().data_ptr() != cache.v.untyped_storage().data_ptr(), "KVCache.__init__",
                   "k and v must be two separate buffers", case=case)
        check.equal((cache.length, cache.max_len), (0, args[3]), unit="KVCache.__init__",
                    what="(length, max_len) of a new cache", case=case)
    default = impl.KVCache(1, 1, 1, 2, 2)
    check.equal(default.k.dtype, torch.float32, unit="KVCache.__init__", what="default dtype")
    good = dict(n_layer=2, batch_size=1, n_kv_heads=1, max_len=4, head_dim=2)
    for field, value in (("n_layer", 0), ("batch_size", -1), ("n_kv_heads", 0), ("max_len", 0),
                         ("head_dim", 2.0), ("max_len", True)):
        case = check.describe(**{field: value})
        exc = check.expect_raises(ValueError, impl.KVCache, unit="KVCache.__init__", case=case,
                                  why="sizes must be positive integers", **{**good, field: value})
        check.that(field in str(exc), "KVCache.__init__", f"the ValueError should name `{field}`",
                   f"message was: {exc}", case=case)


@pytest.mark.points(2)
def test_kv_cache_append_advance_positions(impl):
    L, B, H_kv, max_len, D = 2, 2, 3, 6, 4
    cache = impl.KVCache(L, B, H_kv, max_len, D, dtype=torch.float64)
    unit = "KVCache"
    check.close(cache.positions(3), torch.arange(3), unit="KVCache.positions", what="positions(3) of an empty cache")
    check.close(cache.positions(0), torch.arange(0), unit="KVCache.positions", what="positions(0)")
    k1, v1 = tensors.randn((B, H_kv, 2, D), 1), tensors.randn((B, H_kv, 2, D), 2)
    keys, values = cache.append(0, k1, v1)
    check.close(keys, k1, unit="KVCache.append", what="keys returned after the first append")
    check.close(values, v1, unit="KVCache.append", what="values returned after the first append")
    check.that(keys.untyped_storage().data_ptr() == cache.k.untyped_storage().data_ptr(), "KVCache.append",
               "the returned keys must be a view of cache.k (no copy of the whole cache per step)")
    check.equal(cache.length, 0, unit="KVCache.append", what="length after append (only advance moves it)")
    check.close(cache.k[0, :, :, :2], k1, unit="KVCache.append", what="cache.k[0] at positions 0, 1")
    check.that(bool((cache.k[1] == 0).all()) and bool((cache.k[0, :, :, 2:] == 0).all()), "KVCache.append",
               "append must write only its layer and its positions")
    cache.append(1, k1 * 2, v1 * 2)
    cache.advance(2)
    check.equal(cache.length, 2, unit="KVCache.advance", what="length after advance(2)")
    check.close(cache.positions(3), torch.arange(2, 5), unit="KVCache.positions",
                what="positions(3) after two tokens (they continue from length)")
    k2, v2 = tensors.randn((B, H_kv, 1, D), 3), tensors.randn((B, H_kv, 1, D), 4)
    keys, values = cache.append(1, k2, v2)
    check.close(keys, torch.cat([k1 * 2, k2], dim=2), unit="KVCache.append",
                what="keys of layer 1 after a second append (everything so far)")
    check.close(values, torch.cat([v1 * 2, v2], dim=2), unit="KVCache.append",
                what="values of layer 1 after a second append")
    cache.advance(0)
    check.equal(cache.length, 2, unit="KVCache.advance", what="length after advance(0)")
    # filling exactly to max_len is allowed
    k4 = tensors.randn((B, H_kv, 4, D), 5, torch.float32)
    keys, _ = cache.append(0, k4, k4)
    check.close(keys[:, :, 2:], k4.double(), unit="KVCache.append",
                what="keys written up to max_len (float32 input stored in the cache's float64)")
    check.that(keys.dtype == torch.float64, unit, "append returns the cache's dtype")
    cache.advance(4)
    check.equal(cache.length, max_len, unit="KVCache.advance", what="length of a full cache")
    # Raises
    fresh = impl.KVCache(L, B, H_kv, max_len, D)
    ok = tensors.randn((B, H_kv, 1, D), 6, torch.float32)
    bad = [((2, ok, ok), "layer must be in 0 … L − 1"), ((-1, ok, ok), "layer must be in 0 … L − 1"),
           ((0, tensors.randn((B, H_kv + 1, 1, D), 7, torch.float32), ok), "k has the wrong number of kv heads"),
           ((0, ok, tensors.randn((B, H_kv, 1, D + 1), 8, torch.float32)), "v has the wrong head size"),
           ((0, tensors.randn((B + 1, H_kv, 1, D), 9, torch.float32), ok), "k has the wrong batch size"),
           ((0, tensors.randn((B, H_kv, 0, D), 10, torch.float32), tensors.randn((B, H_kv, 0, D), 10, torch.float32)),
            "n must be at least 1"),
           ((0, ok[0], ok[0]), "k and v must be 4-D"),
           ((0, ok, tensors.randn((B, H_kv, 2, D), 11, torch.float32)), "k and v must have the same shape"),
           ((0, tensors.randn((B, H_kv, 7, D), 12, torch.float32), tensors.randn((B, H_kv, 7, D), 12, torch.float32)),
            "length + n > max_len")]
    for args, why in bad:
        check.expect_raises(ValueError, fresh.append, *args, unit="KVCache.append", why=why,
                            case=check.describe(layer=args[0], k=args[1], v=args[2]))
    check.expect_raises(ValueError, fresh.advance, -1, unit="KVCache.advance", why="n < 0")
    check.expect_raises(ValueError, fresh.advance, max_len + 1, unit="KVCache.advance", why="length + n > max_len")
    fresh.advance(max_len)
    check.expect_raises(ValueError, fresh.advance, 1, unit="KVCache.advance", why="length + n > max_len",
                        case="a full cache")
    check.expect_raises(ValueError, fresh.append, 0, ok, ok, unit="KVCache.append", why="length + n > max_len",
                        case="a full cache")


# ================================================================= cached_forward

@pytest.mark.points(3)
def test_cached_forward_matches_full_recompute_trained(impl):
    model, codec = O.trained_model()
    idx = tensors.randint((2, 40), 21, high=model.config.vocab_size)
    chunks = [9] + [1] * 31                                    # a prefill, then one token per call
    _check_chunks_against_full(impl, model, idx, chunks, check.describe(idx=idx) + "; the trained tiny LLaMA")


@pytest.mark.points(3)
def test_cached_forward_gqa_qk_norm_random_models(impl):
    configs = [
        (31, torch.float64, dict(n_head=4, n_kv_head=2), [3, 1, 4, 1, 2]),
        (32, torch.float64, dict(n_head=6, n_kv_head=2, d_model=24, qk_norm=True), [1, 5, 1, 1, 8]),
        (33, torch.float64, dict(n_head=4, n_kv_head=1, n_layer=3, qk_norm=True), [6, 6, 1]),
        (34, torch.float64, dict(n_head=2, n_kv_head=2), [2, 2, 2, 2]),
        (35, torch.float32, dict(n_head=4, n_kv_head=2, qk_norm=True), [5, 1, 1, 9]),
    ]
    for seed, dtype, fields, chunks in configs:
        model = O.random_model(seed, dtype, **fields)
        idx = tensors.randint((3, sum(chunks)), seed + 100, high=model.config.vocab_size)
        case = check.describe(config=fields, dtype=str(dtype), chunks=chunks, idx=idx)
        _check_chunks_against_full(impl, model, idx, chunks, case)


@pytest.mark.points(2)
def test_cached_forward_stores_rotated_keys_and_values(impl):
    for seed, fields, chunks in ((41, dict(n_head=4, n_kv_head=2, qk_norm=True), [4, 1, 1]),
                                 (42, dict(n_head=6, n_kv_head=3, d_model=24), [2, 3])):
        model = O.random_model(seed, torch.float64, **fields)
        T = sum(chunks)
        idx = tensors.randint((2, T), seed + 7, high=model.config.vocab_size)
        _, cache = _run_chunks(impl, model, idx, chunks)
        _, keys, values = O.functional_forward(model, idx)
        _, raw_keys, _ = O.functional_forward(model, idx, rope_keys=False)
        _, unnormed, _ = O.functional_forward(model, idx, norm_keys=False)
        case = check.describe(config=fields, chunks=chunks)
        for layer in range(model.config.n_layer):
            check.close(cache.k[layer, :, :, :T], keys[layer], unit="cached_forward", kind="model", case=case,
                        what=f"cache.k[{layer}] (keys after k_norm and RoPE at their positions)",
                        mistakes={"keys cached before RoPE": raw_keys[layer],
                                  "keys cached without k_norm": unnormed[layer]})
            check.close(cache.v[layer, :, :, :T], values[layer], unit="cached_forward", kind="model", case=case,
                        what=f"cache.v[{layer}]")
        check.that(bool((cache.k[:, :, :, T:] == 0).all()), "cached_forward",
                   "positions after cache.length must stay untouched", case=case)


@pytest.mark.points(1)
def test_cached_forward_batch_one_to_block_size_and_raises(impl):
    model = O.random_model(51, torch.float32, block_size=8, n_head=2, n_kv_head=1)
    idx = tensors.randint((1, 8), 52, high=model.config.vocab_size)
    case = check.describe(idx=idx, block_size=8)
    cache = _check_chunks_against_full(impl, model, idx, [1] * 8, case + "; batch 1, one token per call",
                                       name_mistakes=False)
    check.equal(cache.length, 8, unit="cached_forward", what="length of a cache filled to block_size", case=case)
    with torch.no_grad():
        check.expect_raises(ValueError, impl.cached_forward, model, idx[:, :1], cache, unit="cached_forward",
                            why="cache.length + n exceeds block_size", case=case + "; a full cache")
        big = _cache_for(impl, model, 1, max_len=20)
        impl.cached_forward(model, idx[:, :6], big)
        check.expect_raises(ValueError, impl.cached_forward, model, idx[:, :3], big, unit="cached_forward",
                            why="cache.length + n exceeds block_size (the cache itself has room)",
                            case=case + "; 6 cached tokens, 3 more, block_size 8, max_len 20")
        small = _cache_for(impl, model, 1, max_len=3)
        impl.cached_forward(model, idx[:, :2], small)
        check.expect_raises(ValueError, impl.cached_forward, model, idx[:, :2], small, unit="cached_forward",
                            why="cache.length + n exceeds the cache's max_len", case=case + "; max_len 3")


# ================================================================= generate_cached

@pytest.mark.points(2)
def test_generate_cached_matches_recompute_greedy(impl):
    record = reference.load(TOPIC, "cache")
    model, codec = O.trained_model()
    out = impl.generate_cached(model, record["prompt"], 24)
    check.close(out, record["out"], unit="generate_cached", kind="exact", what="greedy continuation (golden data)",
                case=check.describe(prompt=record["prompt"], max_new_tokens=24))
    check.close(out, O.greedy_full(model, record["prompt"], 24), unit="generate_cached", kind="exact",
                what="greedy continuation vs recomputing the whole prefix every step")
    with torch.no_grad():
        cache = _cache_for(impl, model, 2)
        logits = [impl.cached_forward(model, record["prompt"], cache)[:, -1]]
        for t in range(8, 31):
            logits.append(impl.cached_forward(model, record["out"][:, t:t + 1], cache)[:, -1])
    check.close(torch.stack(logits, 1), record["logits"], unit="cached_forward", kind="model",
                what="logits of the prefill and of 23 decoding steps (golden data)")
    for seed, fields, T0, n in ((61, dict(n_head=4, n_kv_head=1, qk_norm=True), 3, 12),
                                (62, dict(n_head=2, n_kv_head=2), 1, 15)):
        rand = O.random_model(seed, torch.float64, **fields)
        prompt = tensors.randint((3, T0), seed, high=rand.config.vocab_size)
        check.close(impl.generate_cached(rand, prompt, n), O.greedy_full(rand, prompt, n), unit="generate_cached",
                    kind="exact", what="greedy continuation of a random model vs recomputation",
                    case=check.describe(config=fields, prompt=prompt, max_new_tokens=n))


@pytest.mark.points(2)
def test_generate_cached_feeds_each_token_once(impl):
    model = O.random_model(71, torch.float64, n_head=4, n_kv_head=2)
    seen, grad_modes = [], []

    def record(mod, args, out):
        seen.append(tuple(args[0].shape))
        grad_modes.append(torch.is_grad_enabled())

    handle = model.tok_emb.register_forward_hook(record)

    def no_forward(*args, **kwargs):
        raise AssertionError("model.forward was called")

    model.forward = no_forward
    try:
        prompt = tensors.randint((2, 5), 72, high=13)
        case = check.describe(prompt=prompt, max_new_tokens=6)
        try:
            out = impl.generate_cached(model, prompt, 6)
        except AssertionError:
            check.fail("generate_cached", "must not call model.forward: run cached_forward on the new tokens only",
                       case=case)
        check.equal(seen, [(2, 5)] + [(2, 1)] * 5, unit="generate_cached", case=case,
                    what="shapes embedded by tok_emb, call by call (the prompt once, then each new token except "
                         "the last)")
        check.that(not any(grad_modes), "generate_cached", "run the model under torch.no_grad() (no autograd "
                   "graph while decoding)", f"grad enabled in the calls: {grad_modes}", case=case)
        check.that(out.dtype == torch.int64 and tuple(out.shape) == (2, 11), "generate_cached",
                   "return (B, T0 + max_new_tokens) int64", f"got {out.dtype} {tuple(out.shape)}", case=case)
        check.close(out[:, :5], prompt, unit="generate_cached", kind="exact", what="the prompt at the start", case=case)
        seen.clear()
        zero = impl.generate_cached(model, prompt, 0)
        check.close(zero, prompt, unit="generate_cached", kind="exact", what="max_new_tokens = 0 returns the prompt")
        check.equal(seen, [], unit="generate_cached", what="tokens embedded when max_new_tokens = 0 (none)")
    finally:
        handle.remove()
        del model.forward
    tie = O.random_model(73, torch.float64)
    with torch.no_grad():
        tie.norm.weight.zero_()                              # every logit is 0: all ids tie
    check.close(impl.generate_cached(tie, prompt, 4)[:, 5:], torch.zeros(2, 4, dtype=torch.long),
                unit="generate_cached", kind="exact", what="tokens when every logit ties (the lowest id, 0)")


@pytest.mark.points(1)
def test_generate_cached_raises(impl):
    model = O.random_model(81, torch.float32, block_size=8, n_head=2, n_kv_head=1)
    prompt = tensors.randint((1, 5), 82, high=13)
    out = impl.generate_cached(model, prompt, 4)                # 5 + 4 − 1 = 8 = block_size: allowed
    check.close(out, O.greedy_full(model, prompt, 4), unit="generate_cached", kind="exact",
                what="greedy continuation that fills block_size exactly", case=check.describe(prompt=prompt, n=4))
    for p, n, why in ((prompt, 5, "T0 + max_new_tokens − 1 > block_size"), (prompt, -1, "max_new_tokens < 0"),
                      (prompt[:, :2], -1, "max_new_tokens < 0"), (prompt[:, :0], 2, "T0 < 1"),
                      (prompt[:, :0], 0, "T0 < 1 (even with max_new_tokens = 0)")):
        check.expect_raises(ValueError, impl.generate_cached, model, p, n, unit="generate_cached", why=why,
                            case=check.describe(prompt=p, max_new_tokens=n, block_size=8))
