"""Golden data for 11_data, generated from solutions/ by `llmlab fixtures 11_data`.

Records (all small, JSON unless stated):
  html      HTML pages (hand-written and generated from the course corpus) and their text;
  quality   a labelled set of documents (prose, menus, spam, teasers, number lists) with the
            filter's (keep, reasons);
  dedup     a list of documents with exact and normalised duplicates, and the indices kept;
  minhash   shingle sets, their (num_perm, seed) and signatures (as lists of ints);
  lsh       a signature matrix with planted near-duplicates, (bands, rows) and the buckets
            (each band as a list of [key, members] pairs);
  packing   (npz) documents of token ids (padded, with their lengths), block_size, eos_id and
            the three packed tensors;
  fim       documents, seeds, modes and the FIM strings;
  mixture   weights, temperatures and probabilities.
"""

from __future__ import annotations

import random

import torch

from llmlab.lib.corpus import course_corpus

SEED = 11


def _pages(paragraphs: list[str]) -> list[str]:
    pages = ["<html><head><title>Shop &amp; Café</title><style>body{}</style></head>"
             "<body><nav><ul><li>Home</li><li>About</li></ul></nav><p>Fresh bread&nbsp;daily.</p>"
             "<script>track('visit');</script><footer>© 2026</footer></body></html>",
             "<div><h1>News</h1><p>First <em>line</em>,\n second line.</p><!-- ad --><br/>end</div>",
             "plain text without tags", ""]
    for i, paragraph in enumerate(paragraphs):
        sentences = paragraph.split(". ")
        body = "".join(f"<p>{s.replace('&', '&amp;')}</p>" for s in sentences)
        pages.append(f"<html><body><h2>Story {i}</h2>{body}<script>var x = {i} < 3;</script></body></html>")
    return pages


def _quality_docs(paragraphs: list[str]) -> list[str]:
    return paragraphs[:4] + [
        "Home | About | Contact | Login",
        "Buy now!!! $$$ 100% free $$$ click click click",
        "1 2 3 4 5 6 7 8 9 10",
        "Read more...\nYou won't believe...\nTop ten tricks...\nThe rest of this story is here.",
        "Subscribe to our newsletter\nSubscribe to our newsletter\nSubscribe to our newsletter\nThanks",
        "Pneumonoultramicroscopicsilicovolcanoconiosis hippopotomonstrosesquippedaliophobia "
        "floccinaucinihilipilification antidisestablishmentarianism supercalifragilistic",
        "",
        "ok",
    ]


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)
    rng = random.Random(SEED)
    paragraphs = course_corpus(n_paragraphs=6, seed=SEED).split("\n\n")

    pages = _pages(paragraphs[:3])
    html = {"pages": pages, "texts": [impl.html_to_text(p) for p in pages]}

    quality = []
    for doc in _quality_docs(paragraphs):
        keep, reasons = impl.quality_filter(doc)
        quality.append({"doc": doc, "keep": keep, "reasons": reasons})

    base = paragraphs[:4]
    docs = [base[0], base[1], base[0].upper(), "  " + base[1].replace(" ", "\n"), base[2], base[0], base[3],
            base[2] + "!"]
    dedup = {"docs": docs, "kept": impl.exact_dedup(docs)}

    sets = [sorted(impl.shingles(p, 3)) for p in paragraphs[:3]] + [["only one"], ["a", "b", "c"]]
    specs = [(64, 0), (32, 7), (16, 2**16), (8, 1), (128, 99)]
    minhash = {"sets": sets, "num_perm": [k for k, _ in specs], "seed": [s for _, s in specs],
               "signatures": [impl.minhash_signature(s, k, seed).tolist() for s, (k, seed) in zip(sets, specs)]}

    signatures = torch.randint(0, 5, (10, 12), generator=g)
    signatures[7] = signatures[2]
    signatures[8, :6] = signatures[3, :6]
    buckets = impl.lsh_buckets(signatures, 4, 3)
    lsh = {"signatures": signatures.tolist(), "bands": 4, "rows": 3,
           "buckets": [[[list(k), v] for k, v in band.items()] for band in buckets]}

    lengths = [rng.randint(0, 9) for _ in range(7)]
    token_docs = [[rng.randint(1, 30) for _ in range(n)] for n in lengths]
    padded = torch.zeros(len(token_docs), max(lengths), dtype=torch.int64)
    for i, d in enumerate(token_docs):
        padded[i, :len(d)] = torch.tensor(d, dtype=torch.int64)
    ids, seg, pos = impl.pack_sequences(token_docs, 8, 0)
    packing = {"docs": padded, "lengths": torch.tensor(lengths), "block_size": torch.tensor(8),
               "eos_id": torch.tensor(0), "input_ids": ids, "segment_ids": seg, "position_ids": pos}

    fim = []
    for i, doc in enumerate(["def add(a, b):\n    return a + b\n", paragraphs[0][:80], "", "x"]):
        for mode in ("psm", "spm"):
            seed = 100 + i
            fim.append({"doc": doc, "seed": seed, "mode": mode, "out": impl.fim_transform(doc, random.Random(seed), mode)})

    mixture = [{"weights": w, "temperature": t, "probs": impl.mixture_probs(w, t).tolist()}
               for w, t in (([100.0, 10.0, 1.0], 1.0), ([100.0, 10.0, 1.0], 3.0), ([5.0, 0.0, 2.0, 2.0], 0.5))]

    return {"html": html, "quality": quality, "dedup": dedup, "minhash": minhash, "lsh": lsh,
            "packing": packing, "fim": fim, "mixture": mixture}
