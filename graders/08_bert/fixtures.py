"""Golden data for 08_bert, generated from solutions/ by `llmlab fixtures 08_bert`.

Records (all small):
  model_config  the configuration of the reference BertForMaskedLM (JSON);
  model         its state dict (`param.<name>`, the tied decoder weight included) with every
                parameter drawn away from its initial value, a (3, 7) batch of ids with
                padding at the end of two rows (`attention_mask`, True = real token),
                segment ids (two segments in rows 0 and 1), labels with -100 at the
                unmasked and padding positions, the logits, the loss (shape (1,)) and the
                gradient of the loss w.r.t. every parameter (`grad.<name>`, tied matrix once);
  mlm_mask      a (4, 12) batch with special ids, masked with mask_prob = 1 — the labels are
                then fully determined (the original id at every non-special position);
  classifier    a ClsClassifier's parameters, a (2, 5, 8) batch of hidden states and the logits.
"""

from __future__ import annotations

import torch

SEED = 8

CONFIG = dict(vocab_size=13, max_len=9, n_layer=2, n_head=2, d_model=8, n_segments=2, dropout=0.0)
PAD, CLS, SEP, MASK = 0, 1, 2, 3


def _randomise(model: torch.nn.Module, g: torch.Generator) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            noise = 0.4 * torch.randn(p.shape, generator=g)
            is_gain = name.endswith(("ln.weight", "ln1.weight", "ln2.weight", "ln_f.weight"))
            p.copy_(1.0 + noise if is_gain else noise)


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)
    model = impl.BertForMaskedLM(impl.BertConfig(**CONFIG))
    _randomise(model, g)
    model.eval()
    ids = torch.randint(4, CONFIG["vocab_size"], (3, 7), generator=g)
    ids[:, 0] = CLS
    mask = torch.ones(3, 7, dtype=torch.bool)
    mask[1, 5:] = False
    mask[2, 3:] = False
    ids[~mask] = PAD
    seg = torch.zeros(3, 7, dtype=torch.long)
    seg[0, 4:] = 1
    seg[1, 3:5] = 1
    labels = torch.full((3, 7), -100)
    for b, t in ((0, 2), (0, 5), (1, 1), (1, 4), (2, 2)):
        labels[b, t] = ids[b, t]
    logits, loss = model(ids, seg, mask, labels)
    loss.backward()
    record = {f"param.{k}": v.detach().clone() for k, v in model.state_dict().items()}
    record.update({"input_ids": ids, "segment_ids": seg, "attention_mask": mask, "labels": labels,
                   "logits": logits.detach(), "loss": loss.detach().reshape(1)})
    record.update({f"grad.{k}": p.grad.clone() for k, p in model.named_parameters()})

    batch = torch.randint(4, 20, (4, 12), generator=g)
    batch[:, 0] = CLS
    batch[:, -1] = SEP
    batch[3, 8:] = PAD
    _, mask_labels = impl.mlm_mask(batch, 1.0, [PAD, CLS, SEP, MASK], 20, MASK, generator=g)

    clf = impl.ClsClassifier(8, 3)
    with torch.no_grad():
        for _, p in clf.named_parameters():
            p.copy_(0.5 * torch.randn(p.shape, generator=g))
    hidden = torch.randn(2, 5, 8, generator=g)
    return {
        "model_config": dict(CONFIG),
        "model": record,
        "mlm_mask": {"input_ids": batch, "labels": mask_labels, "special_ids": torch.tensor([PAD, CLS, SEP, MASK]),
                     "vocab_size_and_mask_id": torch.tensor([20, MASK])},
        "classifier": {**{f"param.{k}": v.detach().clone() for k, v in clf.state_dict().items()},
                       "hidden": hidden, "logits": clf(hidden).detach()},
    }
