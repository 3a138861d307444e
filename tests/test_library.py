"""The given course library: topics build on it, so it is tested like a reference."""

import hashlib
import math
from pathlib import Path

import pytest
import torch

from llmlab.lib import corpus, nn as given
from llmlab.lib.text import CharCodec


def test_corpus_is_deterministic_and_varied():
    a, b = corpus.course_corpus(50, seed=1), corpus.course_corpus(50, seed=1)
    assert a == b
    assert a != corpus.course_corpus(50, seed=2)
    text = corpus.course_corpus()
    assert 100_000 < len(text) < 200_000
    assert any(ord(c) > 127 for c in text), "the corpus must exercise non-ASCII text"
    words = text.split()
    assert len(set(words)) > 150


def test_default_corpus_is_stable_across_versions():
    """Reference data and experiments depend on this exact text."""
    digest = hashlib.sha256(corpus.course_corpus().encode()).hexdigest()
    assert digest == CORPUS_SHA256, f"course_corpus() changed (sha256 {digest}); regenerate reference data"


def test_train_val_split_cuts_at_a_paragraph():
    text = corpus.course_corpus(20)
    train, val = corpus.train_val_split(text, 0.25)
    assert train.rstrip("\n") + "\n\n" + val == text
    with pytest.raises(ValueError):
        corpus.train_val_split(text, 1.5)


def test_char_codec_round_trip_and_unknown_character():
    codec = CharCodec.from_text("hello world")
    ids = codec.encode("hello")
    assert ids.dtype == torch.long and codec.decode(ids) == "hello"
    assert codec.vocab_size == len(set("hello world"))
    with pytest.raises(ValueError, match="'z'"):
        codec.encode("z")


def test_block_is_causal_and_counts_its_parameters():
    torch.manual_seed(0)
    block = given.Block(32, 4).eval()
    x = torch.randn(2, 10, 32)
    y = block(x)
    x2 = x.clone()
    x2[:, 6:] = torch.randn(2, 4, 32)
    assert torch.allclose(block(x2)[:, :6], y[:, :6], atol=1e-6), "future tokens changed earlier outputs"
    assert not torch.allclose(block(x2)[:, 6:], y[:, 6:])
    assert sum(p.numel() for p in block.parameters()) == given.block_parameter_count(32)
    nobias = given.Block(32, 4, bias=False)
    assert sum(p.numel() for p in nobias.parameters()) == given.block_parameter_count(32, bias=False)


def test_attention_matches_an_explicit_computation():
    torch.manual_seed(1)
    attn = given.CausalSelfAttention(16, 2).eval()
    x = torch.randn(1, 5, 16)
    q, k, v = attn.qkv(x).split(16, -1)
    q, k, v = (t.view(1, 5, 2, 8).transpose(1, 2) for t in (q, k, v))
    scores = q @ k.transpose(-2, -1) / math.sqrt(8)
    scores = scores.masked_fill(torch.ones(5, 5).triu(1).bool(), float("-inf"))
    y = (scores.softmax(-1) @ v).transpose(1, 2).reshape(1, 5, 16)
    assert torch.allclose(attn(x), attn.proj(y), atol=1e-6)
    with pytest.raises(ValueError, match="divisible"):
        given.CausalSelfAttention(10, 3)


@pytest.fixture(scope="module")
def attention_solution():
    """Topic 04's reference, which the given blocks stand in for."""
    import os

    from llmlab.course import loader, topics
    os.environ.setdefault("LLMLAB_ROOT", str(Path(__file__).resolve().parent.parent))
    return loader.load(topics.resolve("04_attention"), "solutions")


def _copy_block_weights(given_block, block) -> None:
    """given Block (fused qkv, proj, up, down) -> 04's TransformerBlock (q/k/v/out_proj, ffn)."""
    with torch.no_grad():
        for name in ("weight", "bias"):
            q, k, v = getattr(given_block.attn.qkv, name).chunk(3, dim=0)
            for proj, part in zip(("q_proj", "k_proj", "v_proj"), (q, k, v)):
                getattr(getattr(block.attn, proj), name).copy_(part)
            getattr(block.attn.out_proj, name).copy_(getattr(given_block.attn.proj, name))
            getattr(block.ffn.up, name).copy_(getattr(given_block.mlp.up, name))
            getattr(block.ffn.down, name).copy_(getattr(given_block.mlp.down, name))
            getattr(block.ln1, name).copy_(getattr(given_block.ln1, name))
            getattr(block.ln2, name).copy_(getattr(given_block.ln2, name))


def test_given_block_computes_what_chapter_04_teaches(attention_solution):
    """The given Block is 04's pre-norm TransformerBlock with causal attention and the exact
    GELU (the tanh approximation is a catalogued mistake in 04), LayerNorm eps 1e-5 and a
    4·C hidden layer: the same function, to float64 rounding."""
    torch.manual_seed(3)
    given_block = given.Block(24, 3).double().eval()
    for p in given_block.parameters():
        torch.nn.init.normal_(p, std=0.3)
    block = attention_solution.TransformerBlock(24, 3, 96, pre_norm=True).double()
    _copy_block_weights(given_block, block)
    x = torch.randn(2, 7, 24, dtype=torch.float64)
    assert torch.allclose(given_block(x), block(x, causal=True), rtol=1e-10, atol=1e-10)
    mlp_in = torch.randn(5, 24, dtype=torch.float64)
    assert torch.allclose(given_block.mlp(mlp_in), block.ffn(mlp_in), rtol=1e-12, atol=1e-12)
    assert torch.allclose(torch.nn.functional.gelu(mlp_in), attention_solution.gelu(mlp_in), rtol=1e-12, atol=1e-12)


def test_gpt_init_and_scaled_std():
    layer = torch.nn.Linear(200, 300)
    given.init_gpt_weights(layer)
    assert abs(layer.weight.std().item() - 0.02) < 0.002 and layer.bias.abs().max() == 0
    assert given.scaled_init_std(12) == pytest.approx(0.02 / math.sqrt(24))


CORPUS_SHA256 = "af38cf05e8293c4e85e2997f53903aadd966c4eaaa373be0582ea0dcfd4ac38a"
