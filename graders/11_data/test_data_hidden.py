"""Instructor-only graders for 11_data (left out of student bundles).

  - near duplicates of course-corpus paragraphs: signatures against the integer oracle,
    LSH candidates against brute force, every planted near duplicate found;
  - the course corpus packed with the given character codec, against the loop oracle;
  - a small pipeline (HTML → text → filter → dedup) over pages built from known pieces;
  - the mixture sampler at three temperatures (chi-square, stated rate).
"""

from __future__ import annotations

import html as html_lib
import random

import pytest
import torch

import data_oracle as O
from llmlab.lib.corpus import course_corpus
from llmlab.lib.text import CharCodec
from llmlab.testing import check, stats


def _edit(text: str, rng: random.Random, n: int) -> str:
    words = text.split()
    for _ in range(n):
        words[rng.randrange(len(words))] = rng.choice(["zebra", "quartz", "violet", "ember"])
    return " ".join(words)


@pytest.mark.hidden
@pytest.mark.points(2)
def test_near_duplicates_in_course_corpus_hidden(impl):
    # 12 paragraphs and, for 6 of them, a copy with 2 words replaced. With 32 bands of 2 rows
    # a pair of Jaccard ≥ 0.7 is missed with probability ≤ (1 − 0.7²)^32 < 1e-9, so every
    # such planted pair must be a candidate (false-failure rate < 1e-8 for all six).
    rng = random.Random(3)
    paragraphs = course_corpus(n_paragraphs=12, seed=21).split("\n\n")
    docs = paragraphs + [_edit(paragraphs[i], rng, 2) for i in range(6)]
    sets = [impl.shingles(d, 3) for d in docs]
    sig = torch.stack([impl.minhash_signature(s, 64, 5) for s in sets])
    for i in (0, 7, 13):
        check.close(sig[i], torch.tensor(O.minhash(sets[i], 64, 5)), unit="minhash_signature", kind="exact",
                    what="signature of a corpus paragraph", case=f"paragraph {i}")
    pairs = impl.lsh_candidates(sig, 32, 2)
    check.equal(pairs, O.lsh_pairs(sig, 32, 2), unit="lsh_candidates", what="candidate pairs of corpus paragraphs",
                case="18 documents, bands=32, rows=2")
    planted = 0
    for i in range(6):
        a, b = O.word_shingles(docs[i], 3), O.word_shingles(docs[12 + i], 3)
        J = len(a & b) / len(a | b)
        check.that(abs(impl.jaccard(sets[i], sets[12 + i]) - J) < 1e-12, "jaccard",
                   f"Jaccard of paragraph {i} and its near copy should be {J:.4f}", case="course corpus")
        if J >= 0.7:
            planted += 1
            check.that((i, 12 + i) in pairs, "lsh_candidates",
                       f"paragraph {i} and its near copy (Jaccard {J:.2f}) must be a candidate pair",
                       case="bands=32, rows=2")
    check.that(planted >= 4, "lsh_candidates", f"the test needs at least 4 planted pairs, found {planted}")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_pack_course_corpus_hidden(impl):
    text = course_corpus(n_paragraphs=5, seed=4)
    codec = CharCodec.from_text(text)
    docs = [codec.encode(p) for p in text.split("\n\n")]
    eos = codec.vocab_size
    ids, seg, pos = impl.pack_sequences(docs, 64, eos)
    expected = O.pack([d.tolist() for d in docs], 64, eos)
    for name, got, want in zip(("input_ids", "segment_ids", "position_ids"), (ids, seg, pos), expected):
        check.close(got, want, unit="pack_sequences", kind="exact", what=f"{name} of the packed corpus",
                    case="5 paragraphs, block_size=64")
    kept = ids[(seg >= 0) & (ids != eos)]
    check.equal(codec.decode(kept.tolist()), text.replace("\n\n", ""), unit="pack_sequences",
                what="the text decoded from the packed rows without EOS and padding", case="course corpus")
    mask = impl.packed_attention_mask(seg)
    check.close(mask, O.mask_blocks(seg), unit="packed_attention_mask", kind="exact", what="mask of the packed corpus",
                case="5 paragraphs, block_size=64")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_small_pipeline_hidden(impl):
    paragraphs = course_corpus(n_paragraphs=6, seed=8).split("\n\n")
    pages, texts = [], []
    for i, p in enumerate(paragraphs + paragraphs[:2]):
        sentences = p.split(". ")
        pages.append("<html><head><style>p{}</style><script>x()</script></head><body>"
                     + "".join(f"<p>{html_lib.escape(s)}</p>" for s in sentences) + "</body></html>")
        texts.append("\n".join(" ".join(s.split()) for s in sentences if s.split()))
    pages += ["<ul><li>Home</li><li>Login</li></ul>", "<p>1 2 3 4 5 6</p>"]
    texts += ["Home\nLogin", "1 2 3 4 5 6"]
    out = [impl.html_to_text(p) for p in pages]
    check.equal(out, texts, unit="html_to_text", what="texts of the dump's pages", case="8 story pages and 2 junk pages")
    keep = [i for i, t in enumerate(out) if impl.quality_filter(t)[0]]
    check.equal(keep, [i for i, t in enumerate(texts) if O.quality(t)[0]], unit="quality_filter",
                what="pages kept by the filter", case="the dump")
    survivors = [out[i] for i in keep]
    check.equal(impl.exact_dedup(survivors), O.dedup(survivors), unit="exact_dedup", what="indices kept",
                case="the filtered dump")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_mixture_sampler_temperatures_hidden(impl):
    # Three chi-square tests at rate 1e-6 / 3 each: false-failure rate ≤ 1e-6 in all.
    weights = [50.0, 20.0, 5.0, 1.0]
    for i, T in enumerate((0.5, 1.0, 4.0)):
        draws = impl.mixture_sampler(weights, T, 10000, torch.Generator().manual_seed(40 + i))
        stats.chi_square(torch.bincount(draws, minlength=4).tolist(), O.mixture(weights, T), rate=1e-6 / 3,
                         unit="mixture_sampler", what="frequencies of the sources",
                         case=check.describe(weights=weights, temperature=T))
