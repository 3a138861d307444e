"""Graders for 08_bert (part 3): MLMHead, BertForMaskedLM and ClsClassifier.

Evidence per unit:
  - golden data (reference/08_bert): logits, loss and every parameter's gradient of a
    reference BertForMaskedLM (padding, two segments, labels with -100) whose state dict is
    loaded into the student's model; a reference ClsClassifier's logits;
  - independent oracles (bert_oracle): the heads and the whole model from the parameter
    dict alone — values and gradients; F.cross_entropy for the loss;
  - properties: weight tying by identity, the classifier reads position 0 only (outputs and
    gradients), initialisation of the head, dropout in train and eval mode.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

import bert_oracle as O
from llmlab.testing import check, reference, stats, tensors

CFG = dict(vocab_size=17, max_len=10, n_layer=2, n_head=2, d_model=8)
H, M, C_ = "MLMHead.forward", "BertForMaskedLM.forward", "ClsClassifier.forward"


def _params(module):
    return {k: v.detach() for k, v in module.named_parameters()}


# ---------------------------------------------------------------- MLMHead

@pytest.mark.points(2)
def test_mlm_head_matches_oracle(impl):
    cases = (((2, 4, 8), torch.float32), ((5, 8), torch.float64), ((1, 1, 8), torch.float32))
    for i, (shape, dtype) in enumerate(cases):
        head = O.randomised(impl.MLMHead(impl.BertConfig(**CFG)), 80 + i).to(dtype)
        p = _params(head)
        hidden = tensors.randn(shape, 90 + i, dtype)
        case = check.describe(hidden=hidden)
        check.close(head(hidden), O.mlm_head_oracle(p, "", hidden, p["decoder.weight"]), unit=H, case=case,
                    kind="matmul", mistakes={
                        "tanh approximation of GELU (use the exact F.gelu)":
                            lambda: O.mlm_head_oracle(p, "", hidden, p["decoder.weight"], gelu="tanh"),
                        "decoder bias left out": lambda: F.linear(
                            F.layer_norm(F.gelu(F.linear(hidden, p["dense.weight"], p["dense.bias"])), (8,),
                                         p["ln.weight"], p["ln.bias"], O.EPS), p["decoder.weight"])})
    names = sorted(p)
    hidden = tensors.randn((2, 3, 8), 95)
    head = O.randomised(impl.MLMHead(impl.BertConfig(**CFG)), 96).double()
    p = _params(head)
    check.grads(lambda h, *ps: functional_call(head, dict(zip(names, ps)), (h,)),
                lambda h, *ps: O.mlm_head_oracle(dict(zip(names, ps)), "", h, dict(zip(names, ps))["decoder.weight"]),
                [hidden] + [p[n] for n in names], names=["hidden"] + names, unit=H, case=check.describe(hidden=hidden))


@pytest.mark.points(1)
def test_mlm_head_structure_and_initialisation(impl):
    fields = dict(vocab_size=64, max_len=8, n_layer=1, n_head=2, d_model=64)
    case = check.describe(**fields)
    torch.manual_seed(1)
    head = impl.MLMHead(impl.BertConfig(**fields))
    shapes = {k: tuple(v.shape) for k, v in head.state_dict().items()}
    check.equal(shapes, {"dense.weight": (64, 64), "dense.bias": (64,), "ln.weight": (64,), "ln.bias": (64,),
                         "decoder.weight": (64, 64), "decoder.bias": (64,)}, unit="MLMHead.__init__",
                what="state_dict names and shapes (the decoder has a bias)", case=case)
    # Two normality tests at rate 1e-7 each: a correct head fails with probability ≤ 2e-7.
    for name in ("dense.weight", "decoder.weight"):
        stats.normal(getattr(head, name.split(".")[0]).weight.detach(), std=0.02, unit="MLMHead.__init__", rate=1e-7,
                     case=case, what=f"{name} does not look like N(0, 0.02²) (apply init_gpt_weights)")
    check.that(bool((head.decoder.bias == 0).all()) and bool((head.dense.bias == 0).all())
               and bool((head.ln.weight == 1).all()), "MLMHead.__init__",
               "biases should start at 0 and the LayerNorm weight at 1", case=case)


# ---------------------------------------------------------------- BertForMaskedLM

@pytest.mark.points(2)
def test_masked_lm_decoder_is_tied(impl):
    cfg = impl.BertConfig(**CFG)
    model = impl.BertForMaskedLM(cfg)
    emb = model.encoder.embeddings.tok_emb
    check.that(model.mlm_head.decoder.weight is emb.weight, "BertForMaskedLM.__init__",
               "mlm_head.decoder.weight must be the same Parameter object as encoder.embeddings.tok_emb.weight",
               "known mistake: untied MLM decoder (equal values are not enough)")
    check.that(isinstance(model.mlm_head.decoder.bias, nn.Parameter), "BertForMaskedLM.__init__",
               "the tied decoder keeps its own bias", case=check.describe(**CFG))
    V, C = CFG["vocab_size"], CFG["d_model"]
    # the encoder, dense (C·C + C), ln (2C) and the decoder's own bias (V); its weight is tok_emb's
    expected = sum(p.numel() for p in model.encoder.parameters()) + C * C + C + 2 * C + V
    got = sum(p.numel() for p in model.parameters())
    check.equal(got, expected, unit="BertForMaskedLM.__init__", what="number of parameters (the tied matrix once)",
                case=check.describe(**CFG), mistakes={"untied MLM decoder (a second V×C matrix)": expected + V * C})
    check.that(model.config is cfg, "BertForMaskedLM.__init__", "store the config as self.config")


@pytest.mark.points(3)
def test_masked_lm_matches_reference(impl):
    model, rec, cfg = O.load_reference_model(impl)
    logits, loss = model(rec["input_ids"], rec["segment_ids"], rec["attention_mask"], rec["labels"])
    case = check.describe(input_ids=rec["input_ids"], config=cfg)
    real = rec["attention_mask"]
    check.close(logits[real], rec["logits"][real], unit=M, case=case, kind="model", what="logits at the real positions")
    check.close(loss.detach().reshape(1), rec["loss"], unit=M, case=case, kind="loss", what="loss")
    loss.backward()
    params = dict(model.named_parameters())
    for key, expected in rec.items():
        if key.startswith("grad."):
            name = key[len("grad."):]
            p = params.get(name)
            check.that(p is not None and p.grad is not None, M, f"no gradient reaches {name}", case=case)
            check.close(p.grad, expected, unit=M, case=case, kind="gradient",
                        what=f"gradient of the loss w.r.t. {name}")


@pytest.mark.points(2)
def test_masked_lm_matches_oracle(impl):
    model = O.randomised(impl.BertForMaskedLM(impl.BertConfig(**CFG)), 100).eval()
    ids = tensors.randint((2, 6), 101, high=CFG["vocab_size"])
    seg = torch.tensor([[0, 0, 0, 1, 1, 1], [0, 0, 1, 1, 0, 0]])
    mask = torch.tensor([[True] * 6, [True] * 4 + [False] * 2])
    labels = torch.tensor([[-100, 3, -100, -100, 9, -100], [5, -100, -100, 2, -100, -100]])
    case = check.describe(input_ids=ids, segment_ids=seg, attention_mask=mask, labels=labels)
    p = _params(model)
    names = sorted(p)
    expected = O.masked_lm_oracle(p, CFG, ids, seg, mask)
    logits, loss = model(ids, seg, mask, labels)
    check.close(logits[mask], expected[mask], unit=M, case=case, kind="model", what="logits at the real positions")
    check.close(loss.detach(), F.cross_entropy(expected.reshape(-1, CFG["vocab_size"]), labels.reshape(-1)),
                unit=M, case=case, kind="loss", what="loss")
    check.grads(lambda *ps: functional_call(model, dict(zip(names, ps)), (ids, seg, mask, labels))[1],
                lambda *ps: F.cross_entropy(O.masked_lm_oracle(dict(zip(names, ps)), CFG, ids, seg, mask)
                                            .reshape(-1, CFG["vocab_size"]), labels.reshape(-1)),
                [p[n] for n in names], names=names, unit=M, case=case)


@pytest.mark.points(1)
def test_masked_lm_forward_contract(impl):
    model = O.randomised(impl.BertForMaskedLM(impl.BertConfig(**CFG)), 102).eval()
    for B, T in ((1, 1), (2, 10)):
        ids = tensors.randint((B, T), 103 + T, high=CFG["vocab_size"])
        case = check.describe(input_ids=ids)
        out = model(ids)
        check.that(isinstance(out, tuple) and len(out) == 2 and out[1] is None, M,
                   "should return (logits, None) without labels", case=case)
        check.equal(tuple(out[0].shape), (B, T, CFG["vocab_size"]), unit=M, what="logits shape (B, T, V)", case=case)
        defaults = model(ids, torch.zeros_like(ids), torch.ones(B, T, dtype=torch.bool))[0]
        check.close(out[0], defaults, unit=M, kind="model", case=case,
                    what="logits with segment_ids=None, attention_mask=None (segment 0, all real)")
        nothing = torch.full((B, T), -100)
        _, loss = model(ids, labels=nothing)
        check.that(isinstance(loss, torch.Tensor) and loss.dim() == 0 and float(loss.detach()) == 0.0, M,
                   "with every label -100 the loss must be 0 (use mlm_loss)", case=case)


# ---------------------------------------------------------------- ClsClassifier

def _classifier(impl, seed, n_classes=3, dropout=0.0):
    return O.randomised(impl.ClsClassifier(8, n_classes, dropout), seed).eval()


@pytest.mark.points(2)
def test_cls_classifier_matches_oracle(impl):
    for seed, (B, T, n) in ((110, (4, 6, 3)), (111, (1, 1, 1)), (112, (3, 2, 5))):
        clf = _classifier(impl, seed, n)
        p = _params(clf)
        hidden = tensors.randn((B, T, 8), seed + 10, torch.float32)
        case = check.describe(hidden=hidden, n_classes=n)
        check.close(clf(hidden), O.classifier_oracle(p, hidden), unit=C_, case=case, kind="matmul", mistakes={
            "mean of all positions pooled instead of the [CLS] position 0":
                lambda: O.classifier_oracle(p, hidden, "mean"),
            "last position read instead of the [CLS] position 0": lambda: O.classifier_oracle(p, hidden, "last"),
            "tanh of the pooler missing": lambda: F.linear(F.linear(hidden[:, 0], p["pooler.weight"], p["pooler.bias"]),
                                                           p["out.weight"], p["out.bias"])})
    rec = reference.load(O.TOPIC, "classifier")
    ref_clf = impl.ClsClassifier(8, 3)
    state = {k[len("param."):]: v for k, v in rec.items() if k.startswith("param.")}
    try:
        ref_clf.load_state_dict(state)
    except RuntimeError as exc:
        check.fail("ClsClassifier.__init__", "the reference state dict does not load", str(exc).splitlines()[0][:300],
                   "attributes: pooler, drop, out")
    ref_clf.eval()
    check.close(ref_clf(rec["hidden"]), rec["logits"], unit=C_, kind="matmul",
                case=check.describe(hidden=rec["hidden"]), what="logits of the reference classifier")
    names = sorted(p)
    check.grads(lambda h, *ps: functional_call(clf, dict(zip(names, ps)), (h,)),
                lambda h, *ps: O.classifier_oracle(dict(zip(names, ps)), h), [hidden] + [p[n] for n in names],
                names=["hidden"] + names, unit=C_, case=check.describe(hidden=hidden))


@pytest.mark.points(1)
def test_cls_classifier_reads_only_position_zero(impl):
    clf = _classifier(impl, 113)
    hidden = tensors.randn((3, 5, 8), 114, torch.float32)
    other = hidden.clone()
    other[:, 1:] = tensors.randn((3, 4, 8), 115, torch.float32)
    case = check.describe(hidden=hidden)
    check.close(clf(other), clf(hidden), unit=C_, kind="exact", case=case,
                what="logits after changing every position but 0 (only [CLS] is read)")
    h = hidden.clone().requires_grad_(True)
    clf(h).sum().backward()
    check.that(bool((h.grad[:, 1:] == 0).all()) and bool((h.grad[:, 0] != 0).any()), C_,
               "the gradient must reach position 0 only", case=case)


@pytest.mark.points(1)
def test_cls_classifier_contract(impl):
    clf = impl.ClsClassifier(8, 4, dropout=0.5)
    shapes = {k: tuple(v.shape) for k, v in clf.state_dict().items()}
    check.equal(shapes, {"pooler.weight": (8, 8), "pooler.bias": (8,), "out.weight": (4, 8), "out.bias": (4,)},
                unit="ClsClassifier.__init__", what="state_dict names and shapes", case="d_model=8, n_classes=4")
    check.that(isinstance(clf.drop, nn.Dropout) and clf.drop.p == 0.5, "ClsClassifier.__init__",
               "drop must be nn.Dropout(dropout)")
    for bad in (0, -2):
        check.expect_raises(ValueError, impl.ClsClassifier, 8, bad, unit="ClsClassifier.__init__",
                            case=f"n_classes={bad}", why="n_classes < 1")
    hidden = tensors.randn((64, 3, 8), 116, torch.float32)
    clf.eval()
    check.close(clf(hidden), clf(hidden), unit=C_, kind="exact", what="two eval-mode calls (dropout must be off)")
    clf.train()
    torch.manual_seed(0)
    check.that(not torch.equal(clf(hidden), clf(hidden)), C_,
               "two train-mode calls with dropout=0.5 are identical: apply drop after the tanh")
    # Dropout sits between the tanh and `out`: with the same seed, nn.Dropout there draws the
    # same mask as this oracle does.
    p = _params(clf)
    torch.manual_seed(7)
    out = clf(hidden)
    torch.manual_seed(7)
    pooled = torch.tanh(F.linear(hidden[:, 0], p["pooler.weight"], p["pooler.bias"]))
    expected = F.linear(F.dropout(pooled, 0.5, training=True), p["out.weight"], p["out.bias"])
    check.close(out, expected, unit=C_, kind="matmul", case=check.describe(hidden=hidden, dropout=0.5),
                what="train-mode logits (dropout applied to tanh(pooler(hidden[:, 0])), before `out`)")
