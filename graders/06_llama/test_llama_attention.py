"""Graders for 06_llama (part 2): repeat_kv, GroupedQueryAttention, MultiHeadLatentAttention.

Evidence per unit:
  repeat_kv                 an explicit index oracle (output head h is input head h // n_rep);
  GroupedQueryAttention     an explicit loop over query heads (each reading kv head h // group)
                            with RoPE by complex numbers; properties: n_kv = n_heads is MHA
                            whose kv weights repeat, n_kv = 1 is MQA, causality, shift
                            invariance of the positions (only relative positions matter);
                            gradients of every parameter; golden data;
  MultiHeadLatentAttention  explicit decompression of keys and values from the latent, one
                            head at a time; the cache holds the latent and the rotated rope key
                            (its size per token against the formula d_latent + d_rope);
                            incremental decoding with the cache equals the full forward;
                            gradients; golden data.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import llama_oracle as O
from llmlab.testing import check, properties, reference, tensors
from llmlab.testing.strategies import examples, seeds


# ================================================================= repeat_kv

@pytest.mark.points(2)
@examples(20)
@given(B=st.integers(1, 2), n_kv=st.integers(1, 4), n_rep=st.integers(1, 4), T=st.integers(1, 3),
       D=st.integers(1, 3), seed=seeds())
def test_repeat_kv_head_order(impl, B, n_kv, n_rep, T, D, seed):
    x = tensors.randn((B, n_kv, T, D), seed)
    case = check.describe(x=x, n_rep=n_rep)
    expected = torch.stack([x[:, h // n_rep] for h in range(n_kv * n_rep)], dim=1)
    check.close(impl.repeat_kv(x, n_rep), expected, unit="repeat_kv", case=case, kind="exact",
                mistakes={O.KV_TILED: lambda: x.repeat(1, n_rep, 1, 1)})


@pytest.mark.points(1)
def test_repeat_kv_edge_cases_and_gradient(impl):
    x = tensors.randn((2, 3, 4, 2), 1).transpose(2, 3)                  # non-contiguous (B, Hkv, T, D)
    check.close(impl.repeat_kv(x, 2), x.repeat_interleave(2, dim=1), unit="repeat_kv", kind="exact",
                case=check.describe(x=x, n_rep=2, contiguous=False), mistakes={O.KV_TILED: x.repeat(1, 2, 1, 1)})
    check.close(impl.repeat_kv(x, 1), x, unit="repeat_kv", kind="exact", case=check.describe(x=x, n_rep=1))
    # Each kv head's gradient is the sum over the query heads of its group.
    check.grads(lambda t: impl.repeat_kv(t, 3), lambda t: t.repeat_interleave(3, dim=1), [x], names=["x"],
                unit="repeat_kv", case=check.describe(x=x, n_rep=3),
                mistakes={O.KV_TILED: lambda t: t.repeat(1, 3, 1, 1)})
    for bad in (0, -1):
        check.expect_raises(ValueError, impl.repeat_kv, x, bad, unit="repeat_kv", case=f"n_rep={bad}",
                            why="n_rep must be at least 1")


# ================================================================= GroupedQueryAttention

def _gqa(impl, d_model, H, Hkv, qk_norm=False, seed=0, eps=None, dtype=torch.float64):
    kw = {} if eps is None else dict(eps=eps)
    return O.randomized(impl.GroupedQueryAttention(d_model, H, Hkv, qk_norm, **kw), seed).to(dtype)


GQA_CONFIGS = [  # (d_model, H, Hkv, qk_norm): GQA, MHA, MQA, with qk_norm, and a head size of 2
    (16, 4, 2, False), (12, 3, 3, False), (16, 4, 1, False), (24, 4, 2, True), (8, 4, 2, False),
]


@pytest.mark.points(1)
def test_gqa_structure(impl):
    for d_model, H, Hkv, qk_norm in GQA_CONFIGS:
        case = check.describe(d_model=d_model, n_heads=H, n_kv_heads=Hkv, qk_norm=qk_norm)
        attn = impl.GroupedQueryAttention(d_model, H, Hkv, qk_norm)
        D = d_model // H
        names = {"q_proj.weight": (H * D, d_model), "k_proj.weight": (Hkv * D, d_model),
                 "v_proj.weight": (Hkv * D, d_model), "o_proj.weight": (d_model, H * D)}
        if qk_norm:
            names.update({"q_norm.weight": (D,), "k_norm.weight": (D,)})
        O.expect_names(attn, names, "GroupedQueryAttention.__init__", case)
        check.equal((attn.n_heads, attn.n_kv_heads, attn.head_dim), (H, Hkv, D),
                    unit="GroupedQueryAttention.__init__", what="(n_heads, n_kv_heads, head_dim)", case=case)
    for args, why in (((18, 4, 2), "d_model must be divisible by n_heads"),
                      ((16, 4, 3), "n_heads must be divisible by n_kv_heads"),
                      ((12, 4, 2), "the head size 3 is odd: RoPE needs pairs")):
        check.expect_raises(ValueError, impl.GroupedQueryAttention, *args, unit="GroupedQueryAttention.__init__",
                            case=check.describe(d_model=args[0], n_heads=args[1], n_kv_heads=args[2]), why=why)


@pytest.mark.points(3)
def test_gqa_matches_head_loop_oracle(impl):
    for seed, (d_model, H, Hkv, qk_norm) in enumerate(GQA_CONFIGS):
        eps = 0.05 if qk_norm else None          # a non-default eps reaches q_norm and k_norm
        attn = _gqa(impl, d_model, H, Hkv, qk_norm, seed, eps)
        D = d_model // H
        cos, sin = O.rope_tables(D, 9)
        B, T = (2, 6) if seed % 2 == 0 else (1, 9)                   # batch 1 with T = the tables' length
        x = tensors.randn((B, T, d_model), 100 + seed)
        p = O.params(attn)
        case = check.describe(x=x, n_heads=H, n_kv_heads=Hkv, qk_norm=qk_norm, eps=eps)
        kw = dict(qk_norm=qk_norm, eps=eps or 1e-6)
        check.close(attn(x, cos, sin), O.gqa(x, p, H, Hkv, **kw), unit="GroupedQueryAttention.forward",
                    kind="model", case=case, mistakes=O.gqa_mistakes(x, p, H, Hkv, **kw))
    # float32, T = 1, and tables longer than T (positions 0 … T − 1 are used).
    attn = _gqa(impl, 16, 4, 2, seed=9, dtype=torch.float32)
    cos, sin = O.rope_tables(4, 20, dtype=torch.float32)
    for T in (1, 5):
        x = tensors.randn((2, T, 16), 110 + T, torch.float32)
        p = O.params(attn)
        check.close(attn(x, cos, sin), O.gqa(x, p, 4, 2), unit="GroupedQueryAttention.forward", kind="model",
                    case=check.describe(x=x, n_heads=4, n_kv_heads=2, tables="(20, 4) float32"))


@pytest.mark.points(2)
def test_gqa_is_mha_with_repeated_kv_weights(impl):
    # Property: GQA with Hkv kv heads equals ordinary MHA (n_kv_heads = n_heads) whose k/v
    # projections repeat each kv head's rows for the query heads of its group — query head h
    # reads kv head h // group. With Hkv = 1 (MQA) every query head reads the single kv head.
    for seed, (H, Hkv) in enumerate(((4, 2), (4, 1), (6, 3))):
        d_model, D = 4 * H, 4
        gqa = _gqa(impl, d_model, H, Hkv, seed=20 + seed)
        mha = impl.GroupedQueryAttention(d_model, H, H).to(torch.float64)
        p = O.params(gqa)
        group = H // Hkv
        expand = lambda w: w.view(Hkv, D, d_model).repeat_interleave(group, dim=0).reshape(H * D, d_model)
        mha.load_state_dict({"q_proj.weight": p["q_proj.weight"], "o_proj.weight": p["o_proj.weight"],
                             "k_proj.weight": expand(p["k_proj.weight"]), "v_proj.weight": expand(p["v_proj.weight"])})
        cos, sin = O.rope_tables(D, 6)
        x = tensors.randn((2, 6, d_model), 130 + seed)
        tiled = lambda w: w.view(Hkv, D, d_model).repeat(group, 1, 1).reshape(H * D, d_model)
        mha_tiled = {**p, "k_proj.weight": tiled(p["k_proj.weight"]), "v_proj.weight": tiled(p["v_proj.weight"])}
        check.close(gqa(x, cos, sin), mha(x, cos, sin), unit="GroupedQueryAttention.forward", kind="model",
                    case=check.describe(x=x, n_heads=H, n_kv_heads=Hkv),
                    what="GQA output (must equal MHA whose kv weights are repeated per group)",
                    mistakes={O.KV_TILED: lambda: O.gqa(x, mha_tiled, H, H)} if Hkv > 1 else None)


@pytest.mark.points(2)
def test_gqa_causal_and_only_relative_positions_matter(impl):
    attn = _gqa(impl, 16, 4, 2, seed=31)
    cos, sin = O.rope_tables(4, 40)
    x = tensors.randn((2, 7, 16), 140)
    case = check.describe(x=x, n_heads=4, n_kv_heads=2)
    properties.causal(lambda t: attn(t, cos, sin), x, unit="GroupedQueryAttention.forward", dim=1, kind="model",
                      case=case)
    properties.batch_independent(lambda t: attn(t, cos, sin), x, unit="GroupedQueryAttention.forward",
                                 kind="model", case=case)
    # Tables that start at position s instead of 0 shift every query and key by s: attention
    # scores depend only on m − n, so the output must not change.
    base_out = attn(x, cos, sin)
    for s in (5, 33):
        check.close(attn(x, cos[s:], sin[s:]), base_out, unit="GroupedQueryAttention.forward", kind="model",
                    case=case + f"; tables shifted by {s} positions",
                    what="output with every position shifted (only relative positions may matter)",
                    mistakes={O.ROPE_ON_V: lambda: O.gqa(x, O.params(attn), 4, 2, rope_v=True, offset=s)})


@pytest.mark.points(2)
def test_gqa_gradients(impl):
    for seed, (d_model, H, Hkv, qk_norm) in enumerate(((8, 4, 2, True), (8, 2, 1, False))):
        attn = _gqa(impl, d_model, H, Hkv, qk_norm, seed=40 + seed)
        D = d_model // H
        cos, sin = O.rope_tables(D, 5)
        x = tensors.randn((2, 5, d_model), 150 + seed)
        p = O.params(attn)
        names = sorted(p)
        case = check.describe(x=x, n_heads=H, n_kv_heads=Hkv, qk_norm=qk_norm)
        fn = lambda xx, *ws: O.call_with(attn, dict(zip(names, ws)), xx, cos, sin)
        check.grads(fn, lambda xx, *ws: O.gqa(xx, dict(zip(names, ws)), H, Hkv, qk_norm=qk_norm),
                    [x] + [p[n] for n in names], names=["x"] + names, unit="GroupedQueryAttention.forward",
                    case=case)
    small = _gqa(impl, 4, 2, 1, seed=45)
    cos, sin = O.rope_tables(2, 3)
    check.gradcheck(lambda xx: small(xx, cos, sin), [tensors.randn((1, 3, 4), 155)],
                    unit="GroupedQueryAttention.forward", case="x (1, 3, 4), n_heads=2, n_kv_heads=1")


@pytest.mark.points(1)
def test_gqa_reference_data(impl):
    rec = reference.load(O.TOPIC, "gqa")
    cfg = reference.load(O.TOPIC, "gqa_config")
    attn = impl.GroupedQueryAttention(cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"], cfg["qk_norm"]).double()
    attn.load_state_dict({k[len("param."):]: v for k, v in rec.items() if k.startswith("param.")})
    x = rec["x"].clone().requires_grad_(True)
    out = attn(x, rec["cos"], rec["sin"])
    case = check.describe(x=rec["x"], config=cfg)
    check.close(out, rec["out"], unit="GroupedQueryAttention.forward", kind="model", case=case)
    out.backward(rec["upstream"])
    check.close(x.grad, rec["grad_x"], unit="GroupedQueryAttention.forward", kind="gradient", case=case,
                what="gradient w.r.t. x")


# ================================================================= MultiHeadLatentAttention

def _mla(impl, d_model, H, d_latent, d_rope, seed=0, dtype=torch.float64):
    return O.randomized(impl.MultiHeadLatentAttention(d_model, H, d_latent, d_rope), seed).to(dtype)


MLA_CONFIGS = [(16, 4, 6, 4), (12, 2, 3, 2), (8, 1, 5, 6)]     # (d_model, n_heads, d_latent, d_rope)


@pytest.mark.points(2)
def test_mla_structure_and_cache_size(impl):
    for d_model, H, L, R in MLA_CONFIGS:
        case = check.describe(d_model=d_model, n_heads=H, d_latent=L, d_rope=R)
        mla = impl.MultiHeadLatentAttention(d_model, H, L, R)
        D = d_model // H
        O.expect_names(mla, {"q_proj.weight": (H * (D + R), d_model), "kv_down.weight": (L, d_model),
                             "k_up.weight": (H * D, L), "v_up.weight": (H * D, L), "k_rope.weight": (R, d_model),
                             "o_proj.weight": (d_model, H * D)}, "MultiHeadLatentAttention.__init__", case)
        size = mla.cache_size_per_token()
        check.equal(size, L + R, unit="MultiHeadLatentAttention.cache_size_per_token", case=case,
                    mistakes={"counts decompressed keys and values (2·H·D + d_rope), not the latent":
                              2 * H * D + R, "rope key counted per head": L + H * R, "rope key left out": L})
        mla = O.randomized(mla, 3).double()
        cos, sin = O.rope_tables(R, 8)
        _, cache = mla(tensors.randn((2, 5, d_model), 4), cos, sin)
        per_token = sum(t.numel() for t in cache) // (2 * 5)
        check.equal(per_token, L + R, unit="MultiHeadLatentAttention.forward", case=case,
                    what="numbers the returned cache holds per token (must be d_latent + d_rope)",
                    mistakes={O.MLA_CACHES_KEYS: H * D + R})
    smallest = impl.MultiHeadLatentAttention(8, 2, 1, 2)              # d_latent = 1 and d_rope = 2 are allowed
    check.equal(smallest.cache_size_per_token(), 3, unit="MultiHeadLatentAttention.cache_size_per_token",
                case=check.describe(d_model=8, n_heads=2, d_latent=1, d_rope=2))
    for args, why in (((10, 4, 4, 2), "d_model must be divisible by n_heads"),
                      ((8, 2, 0, 2), "d_latent must be at least 1"), ((8, 2, 4, 3), "d_rope must be even"),
                      ((8, 2, 4, 0), "d_rope must be at least 2")):
        check.expect_raises(ValueError, impl.MultiHeadLatentAttention, *args,
                            unit="MultiHeadLatentAttention.__init__", why=why,
                            case=check.describe(d_model=args[0], n_heads=args[1], d_latent=args[2], d_rope=args[3]))


@pytest.mark.points(3)
def test_mla_matches_explicit_decompression(impl):
    for seed, (d_model, H, L, R) in enumerate(MLA_CONFIGS):
        mla = _mla(impl, d_model, H, L, R, seed=50 + seed)
        cos, sin = O.rope_tables(R, 10)
        B, T = (2, 7) if seed != 1 else (1, 1)
        x = tensors.randn((B, T, d_model), 160 + seed)
        p = O.params(mla)
        case = check.describe(x=x, n_heads=H, d_latent=L, d_rope=R)
        y, _ = mla(x, cos, sin)
        D = d_model // H
        wrong_scale = {"scores scaled by 1/sqrt(D) instead of 1/sqrt(D + d_rope)":
                       lambda: _mla_scaled(x, p, H, R, D)}
        check.close(y, O.mla(x, p, H, R), unit="MultiHeadLatentAttention.forward", kind="model", case=case,
                    mistakes=wrong_scale)
    mla = _mla(impl, 16, 4, 6, 4, seed=59, dtype=torch.float32)
    x = tensors.randn((2, 5, 16), 170, torch.float32)
    cos, sin = O.rope_tables(4, 5, dtype=torch.float32)
    check.close(mla(x, cos, sin)[0], O.mla(x, O.params(mla), 4, 4), unit="MultiHeadLatentAttention.forward",
                kind="model", case=check.describe(x=x) + "; float32")


def _mla_scaled(x, p, H, R, D):
    """MLA with scores scaled by 1/sqrt(D) (the mistake): scale q by sqrt((D + R) / D)."""
    return O.mla(x, {**p, "q_proj.weight": p["q_proj.weight"] * ((D + R) / D) ** 0.5}, H, R)


@pytest.mark.points(2)
def test_mla_cache_holds_the_latent_and_rotated_rope_key(impl):
    d_model, H, L, R = 16, 4, 6, 4
    mla = _mla(impl, d_model, H, L, R, seed=60)
    cos, sin = O.rope_tables(R, 12)
    x = tensors.randn((2, 5, d_model), 180)
    p = O.params(mla)
    case = check.describe(x=x, n_heads=H, d_latent=L, d_rope=R)
    out = mla(x, cos, sin)
    check.that(isinstance(out, tuple) and len(out) == 2 and isinstance(out[1], tuple) and len(out[1]) == 2,
               "MultiHeadLatentAttention.forward", "should return (y, (c_kv, k_r))", case=case)
    c_kv, k_r = out[1]
    latent = x @ p["kv_down.weight"].T
    check.close(c_kv, latent, unit="MultiHeadLatentAttention.forward", kind="matmul", case=case,
                what="cache[0] (the latent c_kv = kv_down(x), (B, S, d_latent))",
                mistakes={O.MLA_CACHES_KEYS: lambda: latent @ p["k_up.weight"].T})
    check.close(k_r, O.rope(x @ p["k_rope.weight"].T, torch.arange(5)), unit="MultiHeadLatentAttention.forward",
                kind="matmul", case=case, what="cache[1] (the rope key after RoPE, (B, S, d_rope))",
                mistakes={"rope key cached before RoPE": lambda: x @ p["k_rope.weight"].T})
    # A second call extends the cache: the old entries stay, the new token is appended.
    step = tensors.randn((2, 1, d_model), 181)
    _, (c2, r2) = mla(step, cos, sin, (c_kv, k_r))
    check.close(c2, torch.cat([latent, step @ p["kv_down.weight"].T], 1), unit="MultiHeadLatentAttention.forward",
                kind="matmul", case=case + "; then one token with the cache", what="extended cache[0]",
                mistakes={O.MLA_CACHES_KEYS: lambda: torch.cat([latent, step @ p["kv_down.weight"].T], 1)
                          @ p["k_up.weight"].T})
    check.close(r2[:, 5], O.rope(step @ p["k_rope.weight"].T, torch.tensor([5]))[:, 0],
                unit="MultiHeadLatentAttention.forward", kind="matmul", case=case + "; then one token at position 5",
                what="the new token's rope key (rotated at its position 5)",
                mistakes={O.NO_OFFSET: lambda: (step @ p["k_rope.weight"].T)[:, 0]})


@pytest.mark.points(3)
@examples(8)
@given(cuts=st.lists(st.integers(1, 4), min_size=1, max_size=4), seed=seeds())
def test_mla_incremental_decoding_matches_full_forward(impl, cuts, seed):
    d_model, H, L, R = 12, 3, 5, 4
    mla = _mla(impl, d_model, H, L, R, seed=seed % 7)
    S = sum(cuts)
    cos, sin = O.rope_tables(R, S)
    x = tensors.randn((2, S, d_model), seed)
    p = O.params(mla)
    full, _ = mla(x, cos, sin)
    cache, start = None, 0
    for n in cuts:
        y, cache = mla(x[:, start:start + n], cos, sin, cache)
        case = check.describe(x=x, pieces=cuts) + f"; piece at positions {start} … {start + n - 1}"
        past = x[:, :start] if start else None
        check.close(y, full[:, start:start + n], unit="MultiHeadLatentAttention.forward", kind="model", case=case,
                    what="output with the cache (must equal the full forward at these positions)",
                    mistakes={O.NO_OFFSET: lambda: O.mla(x[:, start:start + n], p, H, R, past_x=past,
                                                         ignore_offset=True)})
        start += n
    check.equal(tuple(cache[0].shape), (2, S, L), unit="MultiHeadLatentAttention.forward",
                what="final cache[0] shape (B, S, d_latent)", case=check.describe(pieces=cuts),
                mistakes={O.MLA_CACHES_KEYS: (2, S, H * (d_model // H))})


@pytest.mark.points(2)
def test_mla_gradients(impl):
    d_model, H, L, R = 8, 2, 3, 2
    mla = _mla(impl, d_model, H, L, R, seed=70)
    cos, sin = O.rope_tables(R, 6)
    past, x = tensors.randn((2, 2, d_model), 190), tensors.randn((2, 3, d_model), 191)
    p = O.params(mla)
    names = sorted(p)
    case = check.describe(x=x, n_heads=H, d_latent=L, d_rope=R)

    def student(xx, *ws):
        values = dict(zip(names, ws))
        _, cache = O.call_with(mla, values, past, cos, sin)
        return O.call_with(mla, values, xx, cos, sin, cache)[0]

    check.grads(student, lambda xx, *ws: O.mla(xx, dict(zip(names, ws)), H, R, past_x=past),
                [x] + [p[n] for n in names], names=["x"] + names, unit="MultiHeadLatentAttention.forward",
                case=case + "; after 2 cached tokens")
    check.gradcheck(lambda xx: mla(xx, cos, sin)[0], [tensors.randn((1, 3, d_model), 192)],
                    unit="MultiHeadLatentAttention.forward", case="x (1, 3, 8)")


@pytest.mark.points(1)
def test_mla_reference_data(impl):
    rec = reference.load(O.TOPIC, "mla")
    cfg = reference.load(O.TOPIC, "mla_config")
    mla = impl.MultiHeadLatentAttention(cfg["d_model"], cfg["n_heads"], cfg["d_latent"], cfg["d_rope"]).double()
    mla.load_state_dict({k[len("param."):]: v for k, v in rec.items() if k.startswith("param.")})
    case = check.describe(x=rec["x"], config=cfg)
    y, cache = mla(rec["x"], rec["cos"], rec["sin"])
    check.close(y, rec["out"], unit="MultiHeadLatentAttention.forward", kind="model", case=case)
    check.close(cache[0], rec["c_kv"], unit="MultiHeadLatentAttention.forward", kind="matmul", case=case,
                what="cache[0]")
    y2, _ = mla(rec["x_next"], rec["cos"], rec["sin"], cache)
    check.close(y2, rec["out_next"], unit="MultiHeadLatentAttention.forward", kind="model",
                case=case + "; the next token with the cache")
