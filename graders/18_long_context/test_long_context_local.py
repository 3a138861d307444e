"""Graders for 18_long_context: sliding windows, ALiBi and the streaming cache.

sliding_window_mask: a by-hand case, brute force (two loops) on hypothesis inputs, golden
masks, window ≥ T is causal, attention under the mask against a loop, Raises.
alibi_slopes: the paper's values for powers of two and for other head counts (3, 5, 6, 12 by
hand; the paper's recursive rule written in floats for 1 … 64), the naive rule named, golden.
alibi_bias: by hand, golden, an oracle, gradients (float64 gradcheck), the softmax of biased
logits depends on distances only, Raises.
StreamingCache: kept positions and contents after every append against a list simulation
(hypothesis), by hand with sinks (the "sinks evicted with the window" mistake named), golden,
chunks longer than the window, Raises.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import long_context_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds

F64 = torch.float64


# ---------------------------------------------------------------- sliding_window_mask

@pytest.mark.points(1)
def test_window_mask_by_hand_and_reference(impl):
    expected = torch.tensor([[1, 0, 0, 0, 0],
                             [1, 1, 0, 0, 0],
                             [0, 1, 1, 0, 0],
                             [0, 0, 1, 1, 0],
                             [0, 0, 0, 1, 1]], dtype=torch.bool)
    got = impl.sliding_window_mask(5, 2)
    case = check.describe(T=5, window=2, sinks=0)
    check.equal(got, expected, unit="sliding_window_mask", case=case,
                what="mask (query i sees keys i − 1 and i)",
                mistakes={"window off by one (i − j ≤ window)": O.window_mask_loop(5, 3, 0),
                          "not causal (future keys inside the window visible)":
                              (torch.arange(5)[:, None] - torch.arange(5)[None, :]).abs() < 2})
    with_sinks = expected.clone()
    with_sinks[2:, 0] = True
    check.equal(impl.sliding_window_mask(5, 2, 1), with_sinks, unit="sliding_window_mask",
                case=check.describe(T=5, window=2, sinks=1), what="mask with one sink (key 0 visible to all)",
                mistakes={"sinks ignored": expected})
    ref = reference.load(O.TOPIC, "masks")
    for name, value in ref.items():
        T, w, s = (int(x) for x in name.split("_")[1:])
        check.equal(impl.sliding_window_mask(T, w, s), value, unit="sliding_window_mask",
                    case=check.describe(T=T, window=w, sinks=s), what="mask of the reference case")


@pytest.mark.points(2)
@examples(15)
@given(T=st.integers(1, 14), window=st.integers(1, 16), sinks=st.integers(0, 5))
def test_window_mask_matches_brute_force(impl, T, window, sinks):
    got = impl.sliding_window_mask(T, window, sinks)
    case = check.describe(T=T, window=window, sinks=sinks)
    check.that(isinstance(got, torch.Tensor) and got.dtype == torch.bool and got.shape == (T, T),
               "sliding_window_mask", f"should return a (T, T) bool tensor, got {getattr(got, 'dtype', type(got))} "
               f"{tuple(getattr(got, 'shape', ()))}", case=case)
    check.equal(got, O.window_mask_loop(T, window, sinks), unit="sliding_window_mask", case=case,
                what="mask (compared with two loops over i, j)")
    if window >= T:
        check.equal(got, torch.ones(T, T, dtype=torch.bool).tril(), unit="sliding_window_mask", case=case,
                    what="a window ≥ T is the plain causal mask")


@pytest.mark.points(1)
def test_window_mask_in_attention_and_raises(impl):
    # attention under the mask equals a loop that attends to the last `window` keys (and the sinks)
    T, D, window, sinks = 7, 4, 3, 1
    q, k, v = (tensors.randn((T, D), s) for s in (1, 2, 3))
    mask = impl.sliding_window_mask(T, window, sinks)
    scores = (q @ k.T).masked_fill(~mask, float("-inf"))
    out = scores.softmax(-1) @ v
    expected = []
    for i in range(T):
        keys = sorted(set(range(max(0, i - window + 1), i + 1)) | set(range(min(sinks, i + 1))))
        w = (q[i] @ k[keys].T).softmax(-1)
        expected.append(w @ v[keys])
    check.close(out, torch.stack(expected), unit="sliding_window_mask", kind="matmul",
                case=check.describe(T=T, window=window, sinks=sinks),
                what="attention output under the mask (compared with attending to the listed keys only)")
    for args, why in (((0, 2), "T < 1"), ((4, 0), "window < 1"), ((4, 2, -1), "sinks < 0")):
        check.expect_raises(ValueError, impl.sliding_window_mask, *args, unit="sliding_window_mask",
                            case=check.describe(args=args), why=why)


# ---------------------------------------------------------------- alibi_slopes

def _pow2(exponents):
    return torch.tensor([2.0 ** -e for e in exponents], dtype=F64)


@pytest.mark.points(2)
def test_alibi_slopes_by_hand(impl):
    naive = lambda n: 2.0 ** (-8.0 * torch.arange(1, n + 1, dtype=F64) / n)
    cases = ((1, [8]), (2, [4, 8]), (8, [1, 2, 3, 4, 5, 6, 7, 8]),
             (3, [4, 8, 2]), (5, [2, 4, 6, 8, 1]), (6, [2, 4, 6, 8, 1, 3]),
             (12, [1, 2, 3, 4, 5, 6, 7, 8, 0.5, 1.5, 2.5, 3.5]))
    for n, exponents in cases:
        case = check.describe(n_heads=n)
        got = impl.alibi_slopes(n)
        m = 2 ** (n.bit_length() - 1)
        mistakes = {"ALiBi slopes wrong for head counts that are not powers of two: 2^(−8(h+1)/H) with H not a "
                    "power of two": naive(n),
                    "the extra slopes of the 2M rule taken at odd indices":
                        torch.cat([naive(m), naive(2 * m)[1::2][:n - m]]) if n != m else None,
                    "the slopes sorted": torch.sort(_pow2(exponents), descending=True).values}
        check.close(got, _pow2(exponents), unit="alibi_slopes", case=case, kind="elementwise",
                    what=f"slopes (by hand 2^−{exponents})", mistakes={k: v for k, v in mistakes.items()
                                                                         if v is not None})


@pytest.mark.points(2)
@examples(12)
@given(n=st.integers(1, 64))
def test_alibi_slopes_match_paper_rule_and_reference(impl, n):
    got = impl.alibi_slopes(n)
    case = check.describe(n_heads=n)
    check.that(isinstance(got, torch.Tensor) and got.dtype == F64 and got.shape == (n,), "alibi_slopes",
               f"should return (H,) float64, got {getattr(got, 'dtype', type(got))} {tuple(getattr(got, 'shape', ()))}",
               case=case)
    check.close(got, torch.tensor(O.alibi_slopes_paper(n), dtype=F64), unit="alibi_slopes", case=case,
                kind="elementwise", what="slopes (compared with the ALiBi paper's recursive rule)")
    ref = reference.load(O.TOPIC, "alibi")
    if n <= 12:
        lo, hi = int(ref["offsets"][n - 1]), int(ref["offsets"][n])
        check.close(got, ref["slopes"][lo:hi], unit="alibi_slopes", case=case, kind="elementwise",
                    what="slopes of the reference")


@pytest.mark.points(1)
def test_alibi_slopes_raises(impl):
    for n in (0, -2):
        check.expect_raises(ValueError, impl.alibi_slopes, n, unit="alibi_slopes", case=check.describe(n_heads=n),
                            why="n_heads < 1")


# ---------------------------------------------------------------- alibi_bias

def _bias_oracle(slopes, T):
    out = torch.zeros(slopes.shape[0], T, T, dtype=slopes.dtype)
    for i in range(T):
        for j in range(T):
            out[:, i, j] = slopes * (j - i)
    return out


@pytest.mark.points(2)
def test_alibi_bias_by_hand_reference_and_oracle(impl):
    slopes = torch.tensor([0.5, 0.25], dtype=F64)
    expected = torch.tensor([[[0, 0.5, 1], [-0.5, 0, 0.5], [-1, -0.5, 0]],
                             [[0, 0.25, 0.5], [-0.25, 0, 0.25], [-0.5, -0.25, 0]]], dtype=F64)
    case = check.describe(slopes=slopes, T=3)
    check.close(impl.alibi_bias(slopes, 3), expected, unit="alibi_bias", case=case, kind="elementwise",
                what="bias[h, i, j] = −m_h·(i − j) (by hand)",
                mistakes={"sign flipped (distant keys favoured)": -expected,
                          "|i − j| penalised on both sides": -expected.abs(),
                          "query and key axes swapped": expected.transpose(1, 2)})
    ref = reference.load(O.TOPIC, "alibi")
    s6 = ref["slopes"][int(ref["offsets"][5]):int(ref["offsets"][6])]
    check.close(impl.alibi_bias(s6, 5), ref["bias6"], unit="alibi_bias", case=check.describe(slopes=s6, T=5),
                kind="elementwise", what="bias of the reference (6 heads, T = 5)")
    for dtype, T, seed in ((torch.float32, 9, 1), (F64, 1, 2), (F64, 17, 3)):
        s = tensors.rand((3,), seed, dtype, 0.01, 1.0)
        got = impl.alibi_bias(s, T)
        case = check.describe(slopes=s, T=T)
        check.close(got, _bias_oracle(s, T), unit="alibi_bias", case=case, kind="elementwise",
                    what="bias (compared with a loop)")


@pytest.mark.points(1)
def test_alibi_bias_gradients_softmax_and_raises(impl):
    slopes = tensors.rand((4,), 5, F64, 0.05, 1.0)
    case = check.describe(slopes=slopes, T=6)
    check.grads(lambda s: impl.alibi_bias(s, 6), lambda s: _bias_oracle(s, 6), [slopes], names=["slopes"],
                unit="alibi_bias", case=case)
    check.gradcheck(lambda s: impl.alibi_bias(s, 6), [slopes], unit="alibi_bias", case=case)
    # with equal logits, the causal softmax of the biased row i depends only on the distances i − j
    bias = impl.alibi_bias(slopes, 6)
    causal = torch.ones(6, 6, dtype=torch.bool).tril()
    weights = bias.masked_fill(~causal, float("-inf")).softmax(-1)                  # (H, 6, 6)
    last = torch.exp(-slopes[:, None] * torch.arange(5, -1, -1, dtype=F64))
    check.close(weights[:, -1], last / last.sum(-1, keepdim=True), unit="alibi_bias", case=case, kind="reduction",
                what="attention of the last query with equal logits (∝ exp(−m_h·distance))")
    for args, why in (((slopes[None], 3), "slopes must be 1-D"), ((slopes, 0), "T < 1")):
        check.expect_raises(ValueError, impl.alibi_bias, *args, unit="alibi_bias",
                            case=check.describe(slopes=args[0], T=args[1]), why=why)


# ---------------------------------------------------------------- StreamingCache

def _stream(n_tokens, seed, B=1, H=2, D=3, dtype=F64):
    """Keys and values of n_tokens tokens, token p's entries all distinct."""
    return tensors.randn((B, H, n_tokens, D), seed, dtype), tensors.randn((B, H, n_tokens, D), seed + 1, dtype)


@pytest.mark.points(2)
def test_streaming_kept_positions_by_hand(impl):
    # n_sink 2, window 3, one token at a time: after 7 tokens the cache holds 0, 1 | 4, 5, 6
    k, v = _stream(7, 1)
    cache = impl.StreamingCache(2, 3)
    check.that(cache.keys is None and cache.values is None and cache.seen == 0
               and cache.positions.dtype == torch.int64 and cache.positions.shape == (0,),
               "StreamingCache", "a new cache must be empty: keys = values = None, positions (0,) int64, seen 0",
               case=check.describe(n_sink=2, window=3))
    expected = [[0], [0, 1], [0, 1, 2], [0, 1, 2, 3], [0, 1, 2, 3, 4], [0, 1, 3, 4, 5], [0, 1, 4, 5, 6]]
    for p in range(7):
        keys, values = cache.append(k[:, :, p:p + 1], v[:, :, p:p + 1])
        case = check.describe(n_sink=2, window=3, appended=f"tokens 0 … {p}, one at a time")
        sinks_evicted = list(range(max(0, p + 1 - 5), p + 1))
        check.equal(cache.positions.tolist(), expected[p], unit="StreamingCache.append", case=case,
                    what="kept positions", mistakes={"the sink tokens evicted with the window": sinks_evicted,
                                                     "window off by one (window + 1 recent tokens kept)":
                                                         O.streaming_kept([1] * (p + 1), 2, 4)[-1]})
        check.that(cache.seen == p + 1, "StreamingCache.append", f"seen should be {p + 1}, got {cache.seen}", case=case)
        check.close(keys, k[:, :, expected[p]], unit="StreamingCache.append", case=case, kind="exact",
                    what="kept keys (the entries of the kept positions, in stream order)")
        check.close(values, v[:, :, expected[p]], unit="StreamingCache.append", case=case, kind="exact",
                    what="kept values")
        check.that(keys is cache.keys or torch.equal(keys, cache.keys), "StreamingCache.append",
                   "the returned keys must be the cache's keys", case=case)


@pytest.mark.points(2)
@examples(12)
@given(seed=seeds(), n_sink=st.integers(0, 4), window=st.integers(1, 6),
       chunks=st.lists(st.integers(1, 8), min_size=1, max_size=6), B=st.integers(1, 2))
def test_streaming_matches_list_simulation(impl, seed, n_sink, window, chunks, B):
    total = sum(chunks)
    k, v = _stream(total, seed, B=B, dtype=torch.float32)
    cache = impl.StreamingCache(n_sink, window)
    expected = O.streaming_kept(chunks, n_sink, window)
    start = 0
    for c, n in enumerate(chunks):
        keys, values = cache.append(k[:, :, start:start + n], v[:, :, start:start + n])
        start += n
        case = check.describe(n_sink=n_sink, window=window, chunks=chunks[:c + 1], B=B)
        check.equal(cache.positions.tolist(), expected[c], unit="StreamingCache.append", case=case,
                    what="kept positions after this append")
        check.that(cache.seen == start, "StreamingCache.append", f"seen should be {start}, got {cache.seen}", case=case)
        check.close(keys, k[:, :, expected[c]], unit="StreamingCache.append", case=case, kind="exact",
                    what="kept keys")
        check.close(values, v[:, :, expected[c]], unit="StreamingCache.append", case=case, kind="exact",
                    what="kept values")


@pytest.mark.points(1)
def test_streaming_reference_long_chunk_and_raises(impl):
    ref = reference.load(O.TOPIC, "streaming")
    cache = impl.StreamingCache(2, 4)
    start = 0
    for c, n in enumerate(ref["chunks"].tolist()):
        cache.append(ref["k"][:, :, start:start + n], ref["v"][:, :, start:start + n])
        start += n
        kept = ref["kept"][c]
        check.equal(cache.positions.tolist(), kept[kept >= 0].tolist(), unit="StreamingCache.append",
                    case=check.describe(n_sink=2, window=4, chunks=ref["chunks"][:c + 1].tolist()),
                    what="kept positions (reference)")
    check.close(cache.keys, ref["keys"], unit="StreamingCache.append", kind="exact", what="final keys (reference)")
    check.close(cache.values, ref["values"], unit="StreamingCache.append", kind="exact",
                what="final values (reference)")
    # a first chunk longer than sinks + window keeps the sinks and only the chunk's tail
    k, v = _stream(10, 9)
    cache = impl.StreamingCache(1, 3)
    keys, _ = cache.append(k, v)
    case = check.describe(n_sink=1, window=3, chunks=[10])
    check.equal(cache.positions.tolist(), [0, 7, 8, 9], unit="StreamingCache.append", case=case,
                what="kept positions after one chunk of 10", mistakes={"the sink tokens evicted with the window":
                                                                       [6, 7, 8, 9]})
    check.close(keys, k[:, :, [0, 7, 8, 9]], unit="StreamingCache.append", case=case, kind="exact", what="kept keys")
    cache = impl.StreamingCache(0, 2)
    cache.append(*_stream(3, 4))
    check.equal(cache.positions.tolist(), [1, 2], unit="StreamingCache.append",
                case=check.describe(n_sink=0, window=2, chunks=[3]), what="kept positions without sinks")
    for args, why in (((-1, 3), "n_sink < 0"), ((2, 0), "window < 1")):
        check.expect_raises(ValueError, impl.StreamingCache, *args, unit="StreamingCache",
                            case=check.describe(n_sink=args[0], window=args[1]), why=why)
    k, v = _stream(2, 5)
    bad = ((k, v[:, :, :1], "k and v differ in shape"), (k[0], v[0], "k and v must be 4-D"),
           (k[:, :, :0], v[:, :, :0], "n = 0 tokens"))
    for a, b, why in bad:
        check.expect_raises(ValueError, impl.StreamingCache(1, 2).append, a, b, unit="StreamingCache.append",
                            case=check.describe(k=a, v=b), why=why)
    cache = impl.StreamingCache(1, 2)
    cache.append(k, v)
    for other, why in ((_stream(1, 6, H=3)[0], "H differs from the cached entries"),
                       (_stream(1, 6, D=4)[0], "D differs from the cached entries"),
                       (_stream(1, 6, B=2)[0], "B differs from the cached entries")):
        check.expect_raises(ValueError, cache.append, other, other.clone(), unit="StreamingCache.append",
                            case=check.describe(cached=cache.keys, k=other), why=why)
