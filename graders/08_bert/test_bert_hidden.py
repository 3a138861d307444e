"""Instructor-only graders for 08_bert (left out of student bundles).

  - BertForMaskedLM against the functional oracle of `bert_oracle` on other configurations
    (three segments, one and four heads, float64), values and gradients;
  - mlm_mask's statistics on BERT's own setting (mask_prob 0.15, a larger vocabulary, five
    special ids), with stated rates;
  - a short pretraining run with the student's mlm_mask, model and loss on a task that only
    a bidirectional encoder solves: each token must be recovered from the token AFTER it.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch.func import functional_call

import bert_oracle as O
from llmlab.testing import check, stats, tensors


@pytest.mark.hidden
@pytest.mark.points(2)
def test_masked_lm_matches_oracle_hidden(impl):
    for seed, cfg, dtype in ((120, dict(vocab_size=11, max_len=7, n_layer=3, n_head=4, d_model=8, n_segments=3),
                              torch.float64),
                             (121, dict(vocab_size=6, max_len=5, n_layer=1, n_head=1, d_model=4), torch.float32)):
        model = O.randomised(impl.BertForMaskedLM(impl.BertConfig(**cfg)), seed, 0.4).to(dtype).eval()
        T = cfg["max_len"]
        ids = tensors.randint((3, T), seed + 1, high=cfg["vocab_size"])
        seg = tensors.randint((3, T), seed + 2, high=cfg.get("n_segments", 2))
        mask = torch.ones(3, T, dtype=torch.bool)
        mask[0, 1:] = False
        mask[2, -2:] = False
        labels = torch.where(tensors.bool_mask((3, T), seed + 3, p=0.4) & mask, ids, torch.full_like(ids, -100))
        case = check.describe(input_ids=ids, segment_ids=seg, attention_mask=mask, config=cfg, dtype=dtype)
        p = {k: v.detach() for k, v in model.named_parameters()}
        names = sorted(p)
        expected = O.masked_lm_oracle(p, cfg, ids, seg, mask)
        logits, loss = model(ids, seg, mask, labels)
        check.close(logits, expected, unit="BertForMaskedLM.forward", case=case, kind="model", what="logits",
                    mistakes={k: (lambda f=f: O.mlm_head_oracle(p, "mlm_head.", f(),
                                                                 p["encoder.embeddings.tok_emb.weight"]))
                              for k, f in O.encoder_mistakes(p, cfg, ids, seg, mask, prefix="encoder.").items()})
        check.close(loss.detach(), F.cross_entropy(expected.reshape(-1, cfg["vocab_size"]), labels.reshape(-1)),
                    unit="BertForMaskedLM.forward", case=case, kind="loss", what="loss")
        check.grads(lambda *ps: functional_call(model, dict(zip(names, ps)), (ids, seg, mask))[0],
                    lambda *ps: O.masked_lm_oracle(dict(zip(names, ps)), cfg, ids, seg, mask),
                    [p[n] for n in names], names=names, unit="BertForMaskedLM.forward", case=case)


@pytest.mark.hidden
@pytest.mark.points(2)
def test_mlm_mask_statistics_hidden(impl):
    # BERT's setting. A binomial test of the chosen fraction and a chi-square test of the
    # [MASK] / unchanged / other split, at rate 5e-7 each: false failure ≤ 1e-6.
    vocab, p, specials, mask_id = 30, 0.15, [0, 1, 2, 3, 29], 29
    ids = tensors.randint((400, 128), 130, high=29, low=4)
    ids[:, 0], ids[:, -1], ids[::3, 100:] = 1, 2, 0
    case = check.describe(input_ids=ids, mask_prob=p, special_ids=specials, vocab_size=vocab, mask_id=mask_id)
    corrupted, labels = impl.mlm_mask(ids, p, specials, vocab, mask_id, generator=tensors.generator(131))
    special = torch.isin(ids, torch.tensor(specials))
    chosen = labels != -100
    check.that(not bool((chosen & special).any()), "mlm_mask", "special positions were chosen", case=case)
    stats.proportion(int(chosen.sum()), int((~special).sum()), p, unit="mlm_mask", rate=5e-7, case=case,
                     what="fraction of the non-special positions chosen")
    out, orig = corrupted[chosen], ids[chosen]
    n_mask, n_keep = int((out == mask_id).sum()), int((out == orig).sum())
    stats.chi_square([n_mask, n_keep, int(chosen.sum()) - n_mask - n_keep],
                     [0.8 + 0.1 / vocab, 0.1 + 0.1 / vocab, 0.1 * (vocab - 2) / vocab], unit="mlm_mask", rate=5e-7,
                     case=case, what="what became of the chosen positions ([MASK], unchanged, another id)")


@pytest.mark.hidden
@pytest.mark.points(2)
def test_pretraining_learns_from_the_right_context_hidden(impl):
    # Rows that repeat one token (a, a, a, a, a, a); at test time position 0 is [MASK]ed, so
    # it can only be read off the tokens AFTER it. 60 steps of pretraining with the
    # student's mlm_mask, BertForMaskedLM and mlm_loss. Measured over eight seeds the
    # reference recovers 100% of those tokens; an encoder that does not look right sees only
    # [MASK] at position 0 and cannot beat chance (1/8), so the threshold 0.6 separates the two.
    torch.manual_seed(0)
    V, MASK = 10, 1                                                  # ids 2 … 9 are tokens, 0 pad, 1 mask
    model = impl.BertForMaskedLM(impl.BertConfig(vocab_size=V, max_len=8, n_layer=1, n_head=2, d_model=32))
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    g = tensors.generator(140)

    def batch(n):
        return torch.randint(2, V, (n, 1), generator=g).expand(n, 6).contiguous()   # (n, 6)

    model.train()
    for _ in range(60):
        ids = batch(64)
        corrupted, labels = impl.mlm_mask(ids, 0.25, [0, MASK], V, MASK, generator=g)
        _, loss = model(corrupted, labels=labels)
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    ids = batch(256)
    masked = ids.clone()
    masked[:, 0] = MASK
    with torch.no_grad():
        pred = model(masked)[0][:, 0].argmax(-1)
    acc = float((pred == ids[:, 0]).float().mean())
    check.that(acc > 0.6, "BertForMaskedLM.forward",
               f"after 60 steps the model recovers {acc:.1%} of the masked tokens at position 0 (expected > 60%)",
               "each row repeats one token, so position 0 is readable from the tokens after it; an "
               "encoder that does not look right cannot do better than chance (12.5%)",
               case="rows (a, a, a, a, a, a), mask_prob 0.25, 60 steps of AdamW at lr 1e-2")
