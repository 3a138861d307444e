"""Instructor-only graders for 18_long_context (left out of student bundles).

  - the scaling rules at a real model's sizes (D = 128, L = 4096, s = 16, base 5e5): YaRN with
    the paper's ramp against the loop oracle, NTK against the per-pair oracle, each pair's regime;
  - ALiBi slopes for every head count up to 256 against the paper's rule, and bias in float32;
  - the streaming cache over long random streams, n_sink and window of every size up to 8;
  - the needle harness with the course's trained TinyLlama on course text against a greedy loop.
"""

from __future__ import annotations

import math

import pytest
import torch

import long_context_oracle as O
from llmlab.lib.corpus import course_corpus
from llmlab.lib.llama import load_tiny_llama
from llmlab.testing import check, tensors

F64 = torch.float64


@pytest.mark.hidden
@pytest.mark.points(2)
def test_scaling_rules_at_llama_sizes_hidden(impl):
    D, L, s, base = 128, 4096, 16.0, 5e5
    theta = impl.rope_inv_freq(D, base)
    case = check.describe(head_dim=D, original_len=L, scale=s, base=base)
    got = impl.yarn_inv_freq(theta, s, L)
    check.close(got, torch.tensor(O.yarn_loop(theta, s, L, 1.0, 32.0), dtype=F64), unit="yarn_inv_freq",
                case=case, kind="elementwise", what="θ' with the paper's ramp (α = 1, β = 32)")
    r = L * theta / (2 * math.pi)
    check.close(got[r > 32], theta[r > 32], unit="yarn_inv_freq", case=case, kind="elementwise",
                what="high-frequency pairs (r > 32) unchanged")
    check.close(got[r < 1], theta[r < 1] / s, unit="yarn_inv_freq", case=case, kind="elementwise",
                what="low-frequency pairs (r < 1) interpolated")
    check.close(impl.ntk_inv_freq(D, s, base), torch.tensor(O.ntk_loop(D, s, base), dtype=F64), unit="ntk_inv_freq",
                case=case, kind="elementwise", what="θ' (compared with θ_i · s^(−2i/(D−2)))")
    check.close(impl.pi_inv_freq(theta, s), theta / s, unit="pi_inv_freq", case=case, kind="elementwise")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_alibi_every_head_count_hidden(impl):
    for n in range(1, 257):
        check.close(impl.alibi_slopes(n), torch.tensor(O.alibi_slopes_paper(n), dtype=F64), unit="alibi_slopes",
                    case=check.describe(n_heads=n), kind="elementwise", what="slopes (the paper's rule)")
    s = impl.alibi_slopes(12).float()
    bias = impl.alibi_bias(s, 40)
    i = torch.arange(40, dtype=torch.float32)
    check.close(bias, -s[:, None, None] * (i[:, None] - i[None, :]), unit="alibi_bias", kind="elementwise",
                case=check.describe(slopes=s, T=40), what="bias in float32")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_streaming_long_streams_hidden(impl):
    gen = tensors.generator(99)
    for n_sink in range(0, 5):
        for window in range(1, 9):
            chunks = torch.randint(1, 12, (8,), generator=gen).tolist()
            k = tensors.randn((1, 1, sum(chunks), 2), n_sink * 10 + window)
            cache = impl.StreamingCache(n_sink, window)
            expected = O.streaming_kept(chunks, n_sink, window)
            start = 0
            for c, n in enumerate(chunks):
                keys, _ = cache.append(k[:, :, start:start + n], k[:, :, start:start + n] * 2)
                start += n
                case = check.describe(n_sink=n_sink, window=window, chunks=chunks[:c + 1])
                check.equal(cache.positions.tolist(), expected[c], unit="StreamingCache.append", case=case,
                            what="kept positions")
                check.close(keys, k[:, :, expected[c]], unit="StreamingCache.append", case=case, kind="exact",
                            what="kept keys")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_needle_trained_tiny_llama_hidden(impl):
    model, codec, _ = load_tiny_llama()
    text = course_corpus()
    hay = codec.encode(text[3000:3030])                       # 30 + 17 + 11 + 3 ≤ block_size 64
    needle, question = codec.encode(" the key is blue."), codec.encode(" the key is")
    depths = [0.0, 0.3, 0.6, 1.0]
    prompt = torch.cat([impl.insert_needle(hay, needle, 0.6), question])
    answer = torch.tensor(O.greedy_tokens(model, prompt, 3))
    expected = [O.greedy_tokens(model, torch.cat([impl.insert_needle(hay, needle, d), question]), 3)
                == answer.tolist() for d in depths]
    got = impl.needle_in_haystack(model, hay, needle, question, answer, depths)
    check.equal(got.tolist(), expected, unit="needle_in_haystack",
                case=check.describe(model="the trained tiny_llama", needle=repr(" the key is blue."), depths=depths),
                what="verdict per depth (compared with a greedy loop)")
