"""The given LLaMA-style model (llmlab.lib.llama): later topics build on it, so it is tested
like a reference — against explicit formulas, against topic 06's from-scratch solution, and
its trained checkpoint against the losses recorded with it."""

import math
import os
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

from llmlab.lib import llama
from llmlab.lib.train import evaluate_lm

ROOT = Path(__file__).resolve().parent.parent


def _attention_by_hand(q, k, v):
    """Causal softmax attention, (B, H, T, D) each."""
    T = q.shape[2]
    scores = q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])
    scores = scores.masked_fill(torch.ones(T, T, dtype=torch.bool).triu(1), float("-inf"))
    return scores.softmax(-1) @ v


def test_rms_norm_and_swiglu_follow_their_formulas():
    torch.manual_seed(0)
    norm = llama.RMSNorm(8, eps=0.5)
    with torch.no_grad():
        norm.weight.normal_()
    x = torch.randn(3, 8, dtype=torch.float64)
    expected = x / torch.sqrt(x.pow(2).mean(-1, keepdim=True) + 0.5) * norm.weight.double()
    assert torch.allclose(norm.double()(x), expected, rtol=1e-12, atol=1e-12)

    assert [llama.swiglu_hidden(d) for d in (64, 48, 100)] == [176, 128, 272]
    mlp = llama.SwiGLU(12, hidden=20).double()
    x = torch.randn(4, 12, dtype=torch.float64)
    expected = mlp.down(F.silu(mlp.gate(x)) * mlp.up(x))
    assert torch.allclose(mlp(x), expected) and mlp.gate.bias is None


def test_rope_pairs_dimension_i_with_i_plus_half_and_keeps_norms():
    D, T = 8, 6
    cos, sin = llama.rope_cache(D, T, base=100.0)
    assert cos.shape == sin.shape == (T, D) and cos.dtype == torch.float32
    x = torch.randn(1, 2, T, D, dtype=torch.float64)
    y = llama.apply_rope(x, cos.double(), sin.double())
    # Dimension i and i + D/2 form the complex number x_i + i·x_{i+D/2}, turned by p·base^(-2i/D).
    pos = torch.arange(T, dtype=torch.float64)[:, None]
    angle = pos * 100.0 ** (-torch.arange(0, D, 2, dtype=torch.float64) / D)         # (T, D/2)
    z = torch.complex(x[..., :D // 2], x[..., D // 2:]) * torch.polar(torch.ones_like(angle), angle)
    assert torch.allclose(y, torch.cat([z.real, z.imag], -1), atol=1e-6)             # cache is float32
    assert torch.allclose(y.norm(dim=-1), x.norm(dim=-1), atol=1e-6)
    with pytest.raises(ValueError, match="even"):
        llama.rope_cache(7, 4)


def test_rope_scores_depend_only_on_the_distance():
    D = 16
    cos, sin = (c.double() for c in llama.rope_cache(D, 40))
    g = torch.Generator().manual_seed(2)
    q, k = torch.randn(D, dtype=torch.float64, generator=g), torch.randn(D, dtype=torch.float64, generator=g)

    def score(m, n):
        qm = llama.apply_rope(q.view(1, 1, 1, D), cos[m:m + 1], sin[m:m + 1])
        kn = llama.apply_rope(k.view(1, 1, 1, D), cos[n:n + 1], sin[n:n + 1])
        return float((qm * kn).sum())

    for m, n, shift in [(5, 2, 11), (0, 9, 30), (17, 17, 3)]:
        assert score(m, n) == pytest.approx(score(m + shift, n + shift), abs=1e-5)   # float32 cache


@pytest.mark.parametrize("n_kv", [1, 2, 4])
def test_grouped_query_attention_matches_an_explicit_computation(n_kv):
    """Query head h reads kv head h // (H / H_kv); n_kv = H is MHA, n_kv = 1 is MQA."""
    torch.manual_seed(3)
    H, D, T, C = 4, 6, 5, 24
    attn = llama.GroupedQueryAttention(C, H, n_kv, qk_norm=True).double()
    for p in attn.parameters():
        torch.nn.init.normal_(p, std=0.3)
    x = torch.randn(2, T, C, dtype=torch.float64)
    cos, sin = (c.double() for c in llama.rope_cache(D, T))
    q = attn.q_norm(attn.q_proj(x).view(2, T, H, D).transpose(1, 2))
    k = attn.k_norm(attn.k_proj(x).view(2, T, n_kv, D).transpose(1, 2))
    v = attn.v_proj(x).view(2, T, n_kv, D).transpose(1, 2)
    q, k = llama.apply_rope(q, cos, sin), llama.apply_rope(k, cos, sin)
    kv_of_head = [h // (H // n_kv) for h in range(H)]
    y = _attention_by_hand(q, k[:, kv_of_head], v[:, kv_of_head])
    expected = attn.o_proj(y.transpose(1, 2).reshape(2, T, H * D))
    assert torch.allclose(attn(x, cos, sin), expected, rtol=1e-10, atol=1e-10)
    with pytest.raises(ValueError, match="n_kv_heads"):
        llama.GroupedQueryAttention(C, H, 3)


def _tiny_config(**overrides):
    config = dict(vocab_size=11, block_size=8, n_layer=2, n_head=4, n_kv_head=2, d_model=16)
    config.update(overrides)
    return llama.LlamaConfig(**config)


def test_tiny_llama_is_causal_with_the_documented_loss_and_names():
    torch.manual_seed(4)
    model = llama.TinyLlama(_tiny_config()).eval()
    assert set(model.state_dict()) == {
        "tok_emb.weight", "norm.weight", "lm_head.weight",
        *(f"blocks.{i}.{n}" for i in range(2) for n in (
            "attn_norm.weight", "attn.q_proj.weight", "attn.k_proj.weight", "attn.v_proj.weight",
            "attn.o_proj.weight", "mlp_norm.weight", "mlp.gate.weight", "mlp.up.weight", "mlp.down.weight"))}
    assert model.blocks[0].attn.o_proj.weight.std() < 0.02, "residual projections use the scaled init"
    idx = torch.randint(0, 11, (2, 8))
    logits, loss = model(idx)
    assert logits.shape == (2, 8, 11) and loss is None
    changed = idx.clone()
    changed[:, 5:] = (changed[:, 5:] + 1) % 11
    assert torch.allclose(model(changed)[0][:, :5], logits[:, :5], atol=1e-6)
    assert not torch.allclose(model(changed)[0][:, 5:], logits[:, 5:])
    targets = torch.randint(0, 11, (2, 8))
    targets[0, :3] = -100
    keep = targets != -100
    expected = -logits.log_softmax(-1).gather(-1, targets.clamp(min=0)[..., None])[..., 0][keep].mean()
    assert torch.allclose(model(idx, targets)[1], expected, atol=1e-6)
    with pytest.raises(ValueError, match="block_size"):
        model(torch.zeros(1, 9, dtype=torch.long))


@pytest.fixture(scope="module")
def llama_solution():
    """Topic 06's reference, which the given model stands in for."""
    from llmlab.course import loader, topics
    os.environ.setdefault("LLMLAB_ROOT", str(ROOT))
    return loader.load(topics.resolve("06_llama"), "solutions")


@pytest.mark.parametrize("qk_norm", [False, True])
def test_given_model_computes_what_chapter_06_teaches(llama_solution, qk_norm):
    """One state dict loads into both models, and they compute the same logits and loss to
    float64 rounding: the given model is 06's TinyLlama."""
    torch.manual_seed(5)
    config = _tiny_config(qk_norm=qk_norm, hidden=24)
    given = llama.TinyLlama(config).double().eval()
    for name, p in given.named_parameters():
        torch.nn.init.normal_(p, mean=1.0 if name.endswith("norm.weight") else 0.0, std=0.3)
    student = llama_solution.TinyLlama(llama_solution.LlamaConfig(**vars(config))).double().eval()
    student.load_state_dict(given.state_dict())
    idx = torch.randint(0, 11, (3, 8))
    targets = torch.randint(0, 11, (3, 8))
    (a, loss_a), (b, loss_b) = given(idx, targets), student(idx, targets)
    assert torch.allclose(a, b, rtol=1e-10, atol=1e-10)
    assert torch.allclose(loss_a, loss_b, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("name, layers", [("tiny_llama", 2), ("draft_llama", 1)])
def test_checkpoint_loads_and_predicts_held_out_text_with_its_recorded_loss(name, layers):
    os.environ.setdefault("LLMLAB_ROOT", str(ROOT))
    model, codec, info = llama.load_tiny_llama(name)
    assert not model.training and model.config.n_layer == layers
    assert sum(p.numel() * 4 for p in model.parameters()) < 2_000_000, "checkpoint over the 2 MB budget"
    from llmlab.lib.corpus import course_corpus, train_val_split
    _, val = train_val_split(course_corpus(), info["training"]["val_fraction"])
    loss = evaluate_lm(model, codec.encode(val), model.config.block_size)
    assert loss == pytest.approx(info["val_loss"], abs=2e-4)
    assert loss < 0.5 * info["first_loss"], "the checkpoint is not trained"


def test_draft_and_target_share_the_codec_and_the_target_is_better():
    os.environ.setdefault("LLMLAB_ROOT", str(ROOT))
    _, target_codec, target = llama.load_tiny_llama("tiny_llama")
    _, draft_codec, draft = llama.load_tiny_llama("draft_llama")
    assert draft_codec.chars == target_codec.chars
    assert draft["val_loss"] > target["val_loss"]


def test_missing_checkpoint_says_how_to_regenerate(tmp_path, monkeypatch):
    monkeypatch.setenv("LLMLAB_ROOT", str(tmp_path))
    with pytest.raises(FileNotFoundError, match="llmlab fixtures 06_llama"):
        llama.load_tiny_llama()
    with pytest.raises(FileNotFoundError, match="llmlab fixtures 17_speculative"):
        llama.load_tiny_llama("draft_llama")
    with pytest.raises(ValueError, match="draft_llama"):
        llama.load_tiny_llama("tiny")


def _random_llama(**overrides):
    torch.manual_seed(0)
    model = llama.TinyLlama(_tiny_config(**overrides)).double().eval()
    for name, p in model.named_parameters():
        torch.nn.init.normal_(p, mean=1.0 if name.endswith("norm.weight") else 0.0, std=0.3)
    return model


def test_default_positions_and_a_full_mask_change_nothing():
    model = _random_llama()
    idx = torch.randint(0, 11, (2, 5))
    plain, _ = model(idx)
    positions = torch.arange(5).expand(2, 5).contiguous()
    same, _ = model(idx, positions=positions, attention_mask=torch.ones(2, 5, dtype=torch.bool))
    assert torch.allclose(plain, same, rtol=1e-12, atol=1e-12)
    # RoPE scores depend on distances only; the float32 tables round each angle differently
    shifted, _ = model(idx, positions=positions + 3)
    assert torch.allclose(plain, shifted, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("n_kv", [1, 2])
def test_left_padded_rows_equal_each_row_alone(n_kv):
    model = _random_llama(n_kv_head=n_kv)
    rows = [torch.randint(0, 11, (n,)) for n in (6, 3, 1)]
    T = 6
    idx = torch.zeros(3, T, dtype=torch.int64)
    mask = torch.zeros(3, T, dtype=torch.bool)
    for i, row in enumerate(rows):
        idx[i, T - len(row):], mask[i, T - len(row):] = row, True
    positions = (mask.cumsum(1) - 1).clamp(min=0)                # 0 at each row's first real token
    logits, _ = model(idx, positions=positions, attention_mask=mask)
    assert torch.isfinite(logits).all()
    for i, row in enumerate(rows):
        alone, _ = model(row[None])
        assert torch.allclose(logits[i, T - len(row):], alone[0], rtol=1e-10, atol=1e-10)


def test_positions_and_masks_of_the_wrong_form_are_refused():
    model = _random_llama()
    idx = torch.randint(0, 11, (2, 5))
    with pytest.raises(ValueError, match="int64"):
        model(idx, positions=torch.zeros(2, 5, dtype=torch.int32))
    with pytest.raises(ValueError, match="shape"):
        model(idx, positions=torch.zeros(5, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"\[0, 8\)"):
        model(idx, positions=torch.full((2, 5), 8))
    with pytest.raises(ValueError, match="bool"):
        model(idx, attention_mask=torch.ones(2, 5))
