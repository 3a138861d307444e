"""Graders for 08_bert (part 2): BertEmbeddings, EncoderSelfAttention and BertEncoder.

Evidence per unit:
  - independent oracles (bert_oracle): the forward passes written from the parameter dict
    alone, with an attention that loops over rows and heads and handles padding by
    REMOVING the padding keys — values and gradients, float32 and float64;
  - properties on fresh random weights: bidirectionality (a change at position t changes
    the outputs at every earlier position), padding that changes nothing (outputs at real
    positions equal those of the unpadded sequence, whatever the padding ids, segments and
    values; the gradient reaching padding is exactly zero), batch-row independence,
    initialisation statistics (chi-square, stated rates);
  - float64 gradcheck of the attention; the golden model is graded in test_bert_heads.py.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torch import nn
from torch.func import functional_call

import bert_oracle as O
from llmlab.testing import check, properties, stats, tensors
from llmlab.testing.strategies import examples, float_dtypes, seeds

CFG = dict(vocab_size=17, max_len=10, n_layer=2, n_head=2, d_model=8)
E, A, ENC = "BertEmbeddings.forward", "EncoderSelfAttention.forward", "BertEncoder.forward"


def _config(impl, **overrides):
    return impl.BertConfig(**{**CFG, **overrides})


def _params(module):
    return {k: v.detach() for k, v in module.named_parameters()}


def _embeddings(impl, seed, dtype=torch.float32, **overrides):
    return O.randomised(impl.BertEmbeddings(_config(impl, **overrides)), seed).to(dtype).eval()


def _attention(impl, d_model, n_heads, seed, dtype=torch.float32):
    return O.randomised(impl.EncoderSelfAttention(d_model, n_heads), seed).to(dtype).eval()


def _encoder(impl, seed, dtype=torch.float32, **overrides):
    return O.randomised(impl.BertEncoder(_config(impl, **overrides)), seed).to(dtype).eval()


def _attention_mistakes(p, x, H, mask):
    def run(**flags):
        return lambda: O.attention_oracle(x, p["qkv.weight"], p["qkv.bias"], p["proj.weight"], p["proj.bias"], H,
                                          mask, **flags)

    wrong = {"causal mask: BERT's encoder attends to the keys after a position too": run(causal=True),
             "padding mask ignored: queries attend to padding keys": run(keys="all"),
             "missing 1/sqrt(D) in the attention scores": run(scale=False)}
    if mask is not None and bool((~mask).any(dim=-1).all()):
        wrong["padding mask read the wrong way round: True means a REAL token"] = run(keys="pad")
    return wrong


def _oracle_attention(p, x, H, mask):
    return O.attention_oracle(x, p["qkv.weight"], p["qkv.bias"], p["proj.weight"], p["proj.bias"], H, mask)


# ---------------------------------------------------------------- BertEmbeddings

@pytest.mark.points(1)
def test_embeddings_structure(impl):
    for over in (dict(), dict(n_segments=3, dropout=0.25, max_len=5)):
        cfg = _config(impl, **over)
        case = check.describe(**{**CFG, **over})
        emb = impl.BertEmbeddings(cfg)
        C = cfg.d_model
        shapes = {k: tuple(v.shape) for k, v in emb.state_dict().items()}
        check.equal(shapes, {"tok_emb.weight": (cfg.vocab_size, C), "pos_emb.weight": (cfg.max_len, C),
                             "seg_emb.weight": (cfg.n_segments, C), "ln.weight": (C,), "ln.bias": (C,)},
                    unit="BertEmbeddings.__init__", what="state_dict names and shapes", case=case)
        check.that(isinstance(emb.ln, nn.LayerNorm) and isinstance(emb.drop, nn.Dropout)
                   and emb.drop.p == cfg.dropout and emb.config is cfg, "BertEmbeddings.__init__",
                   "ln must be nn.LayerNorm(C), drop nn.Dropout(config.dropout), and config stored as self.config",
                   case=case)


@pytest.mark.points(2)
def test_embeddings_match_oracle(impl):
    cases = [((3, 6), True, torch.float32, True), ((1, 1), False, torch.float32, True),
             ((2, 10), False, torch.float64, True), ((4, 5), True, torch.float64, False)]
    for i, (shape, with_seg, dtype, contiguous) in enumerate(cases):
        emb = _embeddings(impl, 10 + i, dtype)
        p = _params(emb)
        ids = tensors.randint(shape, 20 + i, high=CFG["vocab_size"])
        seg = tensors.randint(shape, 30 + i, high=2) if with_seg else None
        if not contiguous:
            ids, seg = ids.t().contiguous().t(), seg.t().contiguous().t()
        case = check.describe(input_ids=ids, segment_ids=seg, dtype=dtype, contiguous=contiguous)
        out = emb(ids, seg)
        check.close(out, O.embeddings_oracle(p, "", ids, seg), unit=E, case=case, kind="matmul", mistakes={
            "segment embeddings not added": lambda: O.embeddings_oracle(p, "", ids, seg, segments=False),
            "position embeddings not added": lambda: O.embeddings_oracle(p, "", ids, seg, positions=False),
            "LayerNorm of the embedding sum missing": lambda: O.embeddings_oracle(p, "", ids, seg, norm=False)})
    emb = _embeddings(impl, 15)
    ids = tensors.randint((2, 4), 16, high=CFG["vocab_size"])
    check.close(emb(ids), emb(ids, torch.zeros_like(ids)), unit=E, kind="exact",
                case=check.describe(input_ids=ids), what="output with segment_ids=None (must equal all segment 0)")


@pytest.mark.points(1)
def test_embeddings_gradients(impl):
    emb = _embeddings(impl, 17, n_segments=3)
    ids = tensors.randint((2, 5), 18, high=CFG["vocab_size"])
    seg = tensors.randint((2, 5), 19, high=2)          # segment 2 is never used: its row gets no gradient
    names = sorted(_params(emb))
    p = _params(emb)
    check.grads(lambda *ps: functional_call(emb, dict(zip(names, ps)), (ids, seg)),
                lambda *ps: O.embeddings_oracle(dict(zip(names, ps)), "", ids, seg),
                [p[n] for n in names], names=names, unit=E, case=check.describe(input_ids=ids, segment_ids=seg))


@pytest.mark.points(1)
def test_embeddings_reject_bad_inputs(impl):
    emb = _embeddings(impl, 21)
    too_long = torch.zeros(1, 11, dtype=torch.long)
    check.expect_raises(ValueError, emb, too_long, unit=E, case=check.describe(input_ids=too_long, max_len=10),
                        why="T exceeds config.max_len")
    ids = torch.zeros(2, 4, dtype=torch.long)
    for seg in (torch.zeros(2, 3, dtype=torch.long), torch.zeros(4, dtype=torch.long)):
        check.expect_raises(ValueError, emb, ids, seg, unit=E, case=check.describe(input_ids=ids, segment_ids=seg),
                            why="segment_ids must have input_ids' shape")


# ---------------------------------------------------------------- EncoderSelfAttention

@pytest.mark.points(3)
@examples(12)
@given(B=st.integers(1, 3), T=st.integers(1, 6), H=st.sampled_from([1, 2, 4]), D=st.integers(1, 3),
       seed=seeds(), dtype=float_dtypes(), masked=st.booleans())
def test_attention_matches_loop_oracle(impl, B, T, H, D, seed, dtype, masked):
    C = H * D
    attn = _attention(impl, C, H, seed, dtype)
    p = _params(attn)
    x = tensors.randn((B, T, C), seed + 1, dtype)
    mask = tensors.bool_mask((B, T), seed + 2, p=0.6) if masked else None
    case = check.describe(x=x, attention_mask=mask, n_heads=H)
    out = attn(x, mask)
    check.close(out, _oracle_attention(p, x, H, mask), unit=A, case=case, kind="matmul",
                mistakes=_attention_mistakes(p, x, H, mask))


@pytest.mark.points(2)
def test_attention_is_bidirectional(impl):
    # Changing the input at position t must change the output at every position before t:
    # each query attends to the keys after it too (no causal mask).
    attn = _attention(impl, 8, 2, 31, torch.float64)
    x = tensors.randn((2, 6, 8), 32)
    base = attn(x)
    for t in range(1, 6):
        changed = x.clone()
        changed[:, t] = tensors.randn((2, 8), 40 + t)
        moved = (attn(changed) - base)[:, :t].abs().amax(dim=-1)        # (2, t)
        if not bool((moved > 1e-6).all()):
            check.fail(A, f"changing the input at position {t} left the outputs at earlier positions unchanged",
                       f"max |change| per earlier position: {moved.tolist()}", case=check.describe(x=x),
                       mistake="causal mask: BERT's encoder attends to the keys after a position too")


@pytest.mark.points(3)
def test_attention_padding_changes_nothing(impl):
    attn = _attention(impl, 8, 2, 33, torch.float64)
    x = tensors.randn((3, 7, 8), 34)
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 4:] = False                  # padding at the end
    mask[2, [1, 4]] = False              # and two padding keys inside a row (the rule is per key)
    case = check.describe(x=x, attention_mask=mask)
    out = attn(x, mask)
    p = _params(attn)
    check.close(out[mask], _oracle_attention(p, x, 2, mask)[mask], unit=A, case=case, kind="matmul",
                what="outputs at the real positions",
                mistakes={k: (lambda f=f: f()[mask]) for k, f in _attention_mistakes(p, x, 2, mask).items()})
    garbage = torch.where(mask[..., None], x, tensors.randn(x.shape, 35, scale=10.0))
    check.close(attn(garbage, mask)[mask], out[mask], unit=A, case=case, kind="matmul",
                what="outputs at the real positions after changing the inputs at the padding positions")
    alone = attn(x[1:2, :4])                               # row 1 without its padding, no mask
    check.close(out[1, :4], alone[0], unit=A, case=case, kind="matmul",
                what="outputs of row 1 (4 real tokens, 3 padding) vs the same 4 tokens alone with no padding")
    xg = x.clone().requires_grad_(True)
    (attn(xg, mask) * mask[..., None]).pow(2).sum().backward()
    check.close(xg.grad[~mask], torch.zeros_like(xg.grad[~mask]), unit=A, case=case, kind="gradient",
                what="gradient of the real positions' outputs w.r.t. the padding inputs (must be 0)")


@pytest.mark.points(2)
def test_attention_gradients(impl):
    attn = _attention(impl, 4, 2, 36, torch.float64)
    names = sorted(_params(attn))
    mask = torch.tensor([[True, True, False], [False, True, True]])
    x = tensors.randn((2, 3, 4), 37)
    check.gradcheck(lambda x, *ps: functional_call(attn, dict(zip(names, ps)), (x, mask)),
                    [x] + [_params(attn)[n] for n in names], unit=A, case=check.describe(x=x, attention_mask=mask))
    attn32 = _attention(impl, 6, 3, 38)
    p = _params(attn32)
    x32 = tensors.randn((2, 5, 6), 39, torch.float32)
    mask32 = torch.tensor([[True] * 5, [True, True, True, False, False]])
    check.grads(lambda x, *ps: functional_call(attn32, dict(zip(names, ps)), (x, mask32)),
                lambda x, *ps: O.attention_oracle(x, *[dict(zip(names, ps))[k] for k in
                                                       ("qkv.weight", "qkv.bias", "proj.weight", "proj.bias")],
                                                  3, mask32),
                [x32] + [p[n] for n in names], names=["x"] + names, unit=A,
                case=check.describe(x=x32, attention_mask=mask32))


@pytest.mark.points(1)
def test_attention_contract(impl):
    check.expect_raises(ValueError, impl.EncoderSelfAttention, 10, 4, unit="EncoderSelfAttention.__init__",
                        case="d_model=10, n_heads=4", why="n_heads must divide d_model")
    attn = impl.EncoderSelfAttention(12, 3)
    shapes = {k: tuple(v.shape) for k, v in attn.state_dict().items()}
    check.equal(shapes, {"qkv.weight": (36, 12), "qkv.bias": (36,), "proj.weight": (12, 12), "proj.bias": (12,)},
                unit="EncoderSelfAttention.__init__", what="state_dict names and shapes", case="d_model=12, n_heads=3")
    check.equal(getattr(attn, "n_heads", None), 3, unit="EncoderSelfAttention.__init__", what="self.n_heads")
    attn = _attention(impl, 8, 2, 41)
    x = tensors.randn((2, 4, 8), 42, torch.float32)
    check.close(attn(x), attn(x, torch.ones(2, 4, dtype=torch.bool)), unit=A, kind="matmul",
                case=check.describe(x=x), what="output with attention_mask=None (must equal an all-True mask)")
    view = torch.tensor([[True, True], [True, True], [False, True], [False, True]]).t()   # non-contiguous (2, 4)
    check.close(attn(x, view), attn(x, view.contiguous()), unit=A, kind="matmul", what="output",
                case=check.describe(attention_mask=view, contiguous=False))
    good = torch.tensor([[True, True, False, False], [True, True, True, True]])
    for bad, why in ((good.float(), "a float mask: the mask must be bool"),
                     (good.long(), "an integer 0/1 mask: the mask must be bool"),
                     (torch.ones(2, 5, dtype=torch.bool), "shape (B, T + 1)"),
                     (torch.ones(4, dtype=torch.bool), "shape (T,), not (B, T)"),
                     (torch.tensor([[True] * 4, [False] * 4]), "a row with no real token")):
        check.expect_raises(ValueError, attn, x, bad, unit=A, why=why, case=check.describe(attention_mask=bad))


# ---------------------------------------------------------------- BertEncoder

def _expected_encoder_shapes(vocab_size, max_len, n_layer, d_model, n_segments=2, **_):
    C = d_model
    shapes = {"embeddings.tok_emb.weight": (vocab_size, C), "embeddings.pos_emb.weight": (max_len, C),
              "embeddings.seg_emb.weight": (n_segments, C), "embeddings.ln.weight": (C,),
              "embeddings.ln.bias": (C,), "ln_f.weight": (C,), "ln_f.bias": (C,)}
    block = {"ln1.weight": (C,), "ln1.bias": (C,), "attn.qkv.weight": (3 * C, C), "attn.qkv.bias": (3 * C,),
             "attn.proj.weight": (C, C), "attn.proj.bias": (C,), "ln2.weight": (C,), "ln2.bias": (C,),
             "mlp.up.weight": (4 * C, C), "mlp.up.bias": (4 * C,), "mlp.down.weight": (C, 4 * C),
             "mlp.down.bias": (C,)}
    for i in range(n_layer):
        shapes.update({f"blocks.{i}.{k}": s for k, s in block.items()})
    return shapes


@pytest.mark.points(2)
def test_encoder_structure_and_initialisation(impl):
    fields = dict(vocab_size=64, max_len=32, n_layer=2, n_head=2, d_model=64, n_segments=2, dropout=0.1)
    case = check.describe(**fields)
    torch.manual_seed(0)
    enc = impl.BertEncoder(impl.BertConfig(**fields))
    check.that(isinstance(enc.blocks, nn.ModuleList) and len(enc.blocks) == 2
               and all(isinstance(b, impl.EncoderBlock) for b in enc.blocks), "BertEncoder.__init__",
               "blocks must be an nn.ModuleList of config.n_layer EncoderBlock", case=case)
    check.equal({k: tuple(v.shape) for k, v in enc.state_dict().items()}, _expected_encoder_shapes(**fields),
                unit="BertEncoder.__init__", what="state_dict names and shapes", case=case)
    rates = [enc.embeddings.drop.p] + [b.drop.p for b in enc.blocks]
    check.that(enc.config.dropout == 0.1 and all(r == 0.1 for r in rates), "BertEncoder.__init__",
               "store the config and pass config.dropout to the embeddings and every block",
               f"dropout rates found: {rates}", case=case)
    # Six normality tests at rate 1e-7 each: a correct initialisation fails with probability ≤ 6e-7.
    params = dict(enc.named_parameters())
    for name in ("embeddings.tok_emb.weight", "embeddings.pos_emb.weight", "blocks.0.attn.qkv.weight",
                 "blocks.1.attn.proj.weight", "blocks.0.mlp.up.weight", "blocks.1.mlp.down.weight"):
        w = params[name].detach()
        try:
            stats.normal(w, std=0.02, unit="BertEncoder.__init__", rate=1e-7, case=case,
                         what=f"{name} does not look like N(0, 0.02²)")
        except check.GradingFailure as failure:
            raise check.GradingFailure(f"{failure}\n  observed standard deviation {float(w.std()):.4g}\n"
                                       "  known mistake: weights not initialised with init_gpt_weights") from None
    for name, p in params.items():
        want = 1.0 if O.is_norm_weight(name) else 0.0 if name.endswith("bias") else None
        if want is not None:
            check.that(bool((p == want).all()), "BertEncoder.__init__", f"{name} should start at {want}", case=case)


@pytest.mark.points(2)
def test_encoder_matches_oracle(impl):
    for seed, dtype in ((50, torch.float32), (51, torch.float64)):
        enc = _encoder(impl, seed, dtype)
        p = _params(enc)
        ids = tensors.randint((3, 7), seed + 1, high=CFG["vocab_size"])
        seg = (torch.arange(7) >= 4).long().expand(3, 7)                 # a non-contiguous (expanded) view
        mask = torch.ones(3, 7, dtype=torch.bool)
        mask[1, 5:] = False
        mask[2, 2:] = False
        case = check.describe(input_ids=ids, segment_ids=seg, attention_mask=mask, dtype=dtype)
        out = enc(ids, seg, mask)
        check.close(out[mask], O.encoder_oracle(p, CFG, ids, seg, mask)[mask], unit=ENC, case=case, kind="model",
                    what="hidden states at the real positions",
                    mistakes={k: (lambda f=f: f()[mask])
                              for k, f in O.encoder_mistakes(p, CFG, ids, seg, mask).items()})
    enc = _encoder(impl, 52, max_len=4, n_layer=1)
    ids = tensors.randint((2, 4), 53, high=CFG["vocab_size"])
    names = sorted(_params(enc))
    cfg1 = {**CFG, "n_layer": 1}
    check.grads(lambda *ps: functional_call(enc, dict(zip(names, ps)), (ids,)),
                lambda *ps: O.encoder_oracle(dict(zip(names, ps)), cfg1, ids),
                [_params(enc)[n] for n in names], names=names, unit=ENC, case=check.describe(input_ids=ids))


@pytest.mark.points(3)
def test_encoder_padding_changes_nothing(impl):
    enc = _encoder(impl, 60, torch.float64)
    real = tensors.randint((2, 5), 61, high=10)            # real tokens use ids 0 … 9
    seg = tensors.randint((2, 5), 62, high=2)
    base = enc(real, seg)
    mask = torch.tensor([[True] * 5 + [False] * 3] * 2)
    for seed in (63, 64):                                  # padding ids 10 … 16, random segments
        ids = torch.cat([real, tensors.randint((2, 3), seed, high=17, low=10)], dim=1)
        segs = torch.cat([seg, tensors.randint((2, 3), seed + 10, high=2)], dim=1)
        case = check.describe(input_ids=ids, segment_ids=segs, attention_mask=mask)
        out = enc(ids, segs, mask)
        p = _params(enc)
        check.close(out[:, :5], base, unit=ENC, case=case, kind="model",
                    what="hidden states of 5 real tokens followed by 3 padding tokens vs the 5 tokens alone",
                    mistakes={k: (lambda f=f: f()[:, :5]) for k, f in
                              O.encoder_mistakes(p, CFG, ids, segs, mask).items()})
    # The gradient of the real positions' hidden states reaches no padding input: the token
    # rows 10 … 16 (used only by padding) and the position rows 5 … 7 get exactly nothing.
    enc.zero_grad()
    (enc(ids, segs, mask)[:, :5] * tensors.randn((2, 5, 8), 65)).sum().backward()
    emb = enc.embeddings
    check.close(emb.tok_emb.weight.grad[10:], torch.zeros(7, 8, dtype=torch.float64), unit=ENC, kind="gradient",
                case=case, what="gradient w.r.t. the token rows used only at padding positions (must be 0)")
    check.close(emb.pos_emb.weight.grad[5:8], torch.zeros(3, 8, dtype=torch.float64), unit=ENC, kind="gradient",
                case=case, what="gradient w.r.t. the position rows used only at padding positions (must be 0)")


@pytest.mark.points(2)
def test_encoder_is_bidirectional(impl):
    enc = _encoder(impl, 70, torch.float64)
    ids = tensors.randint((2, 6), 71, high=CFG["vocab_size"])
    base = enc(ids)
    for t in range(1, 6):
        changed = ids.clone()
        changed[:, t] = (changed[:, t] + 1 + t) % CFG["vocab_size"]
        moved = (enc(changed) - base)[:, :t].abs().amax(dim=-1)           # (2, t)
        if not bool((moved > 1e-6).all()):
            check.fail(ENC, f"changing the token at position {t} left the hidden states before it unchanged",
                       f"max |change| per earlier position: {moved.tolist()}", case=check.describe(input_ids=ids),
                       mistake="causal mask in the encoder: BERT attends to the keys after a position too")


@pytest.mark.points(1)
def test_encoder_batch_rows_are_independent(impl):
    enc = _encoder(impl, 72)
    ids = tensors.randint((3, 6), 73, high=CFG["vocab_size"])
    seg = tensors.randint((3, 6), 74, high=2)
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2, [True] + [False] * 5])
    packed = torch.stack([ids, seg, mask.long()], dim=1)                  # (B, 3, T)
    properties.batch_independent(lambda x: enc(x[:, 0], x[:, 1], x[:, 2].bool()), packed, unit=ENC, kind="model",
                                 case=check.describe(input_ids=ids, segment_ids=seg, attention_mask=mask))


@pytest.mark.points(1)
def test_encoder_rejects_bad_inputs(impl):
    enc = _encoder(impl, 75)
    too_long = torch.zeros(1, 11, dtype=torch.long)
    check.expect_raises(ValueError, enc, too_long, unit=ENC, case=check.describe(input_ids=too_long, max_len=10),
                        why="T exceeds config.max_len")
    ids = torch.zeros(2, 3, dtype=torch.long)
    empty = torch.tensor([[True, True, False], [False, False, False]])
    check.expect_raises(ValueError, enc, ids, None, empty, unit=ENC, why="a row with no real token",
                        case=check.describe(attention_mask=empty))
    check.expect_raises(ValueError, enc, ids, torch.zeros(2, 2, dtype=torch.long), unit=ENC,
                        why="segment_ids must have input_ids' shape", case="segment_ids of shape (2, 2)")
