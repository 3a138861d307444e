"""Helpers shared by the 08_bert graders (instructor code, not a test).

- `attention_oracle`: bidirectional multi-head attention written as a slow loop over rows
  and heads, where padding is handled by *removing* the padding keys of each row (so it
  shares no masking code with a submission); flags reproduce catalogued mistakes for the
  failure messages;
- `embeddings_oracle`, `encoder_oracle`, `mlm_head_oracle`, `masked_lm_oracle`,
  `classifier_oracle`: the forward passes written from a parameter dict alone, with
  `attention_oracle`, `F.linear`, `F.layer_norm` and `F.gelu`;
- `masked_lm_mistakes`: wrong versions of the encoder / MLM forward, for naming mistakes;
- `load_reference_model`: the student's BertForMaskedLM with the golden state dict;
- `is_norm_weight`, `randomised`: fresh parameters for property tests.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from llmlab.testing import check, reference, tensors

TOPIC = "08_bert"
EPS = 1e-5   # nn.LayerNorm's default


def is_norm_weight(name: str) -> bool:
    """Whether parameter `name` is a LayerNorm gain (ln, ln1, ln2, ln_f)."""
    parts = name.split(".")
    return len(parts) >= 2 and parts[-1] == "weight" and parts[-2] in ("ln", "ln1", "ln2", "ln_f")


def randomised(module, seed: int, scale: float = 0.5):
    """`module` with every parameter drawn fresh (norm gains around one)."""
    return tensors.randomize_parameters(module, seed, scale, around_one=is_norm_weight)


def attention_oracle(x, qkv_w, qkv_b, proj_w, proj_b, n_heads, mask=None, *, causal=False, scale=True,
                     keys="real"):
    """(B, T, C) -> (B, T, C). `keys` picks which keys each row attends to: "real" (the
    spec), "pad" (mask read the other way round), "all" (mask ignored); `causal` adds a
    causal restriction and `scale=False` drops 1/sqrt(D) — the last three are mistakes."""
    B, T, C = x.shape
    D = C // n_heads
    qkv = x @ qkv_w.T + qkv_b                                           # (B, T, 3C)
    q, k, v = qkv[..., :C], qkv[..., C:2 * C], qkv[..., 2 * C:]
    rows = []
    for b in range(B):
        if mask is None or keys == "all":
            allowed = torch.ones(T, dtype=torch.bool)
        else:
            allowed = mask[b] if keys == "real" else ~mask[b]
        outs = []
        for t in range(T):
            ok = allowed & (torch.arange(T) <= t) if causal else allowed
            idx = ok.nonzero().flatten()
            heads = []
            for h in range(n_heads):
                cols = slice(h * D, (h + 1) * D)
                s = k[b, idx, cols] @ q[b, t, cols]                           # (n_keys,)
                if scale:
                    s = s / math.sqrt(D)
                w = torch.exp(s - s.max())
                heads.append((w / w.sum()) @ v[b, idx, cols])                  # (D,)
            outs.append(torch.cat(heads))
        rows.append(torch.stack(outs))
    return torch.stack(rows) @ proj_w.T + proj_b


def _attn(p, prefix, x, n_heads, mask, **flags):
    return attention_oracle(x, p[prefix + "qkv.weight"], p[prefix + "qkv.bias"], p[prefix + "proj.weight"],
                            p[prefix + "proj.bias"], n_heads, mask, **flags)


def _ln(p, prefix, x):
    return F.layer_norm(x, (x.shape[-1],), p[prefix + "weight"], p[prefix + "bias"], EPS)


def embeddings_oracle(p, prefix, ids, seg=None, *, segments=True, positions=True, norm=True):
    """LayerNorm(tok[ids] + pos[:T] + seg[segments]); the flags drop a part (mistakes)."""
    T = ids.shape[1]
    x = p[prefix + "tok_emb.weight"][ids]
    if positions:
        x = x + p[prefix + "pos_emb.weight"][:T]
    if segments:
        x = x + p[prefix + "seg_emb.weight"][torch.zeros_like(ids) if seg is None else seg]
    return _ln(p, prefix + "ln.", x) if norm else x


def encoder_oracle(p, cfg, ids, seg=None, mask=None, prefix="", **flags):
    """BertEncoder's forward from the parameter dict (keys as in the docstrings)."""
    x = embeddings_oracle(p, prefix + "embeddings.", ids, seg)
    for i in range(cfg["n_layer"]):
        b = f"{prefix}blocks.{i}."
        x = x + _attn(p, b + "attn.", _ln(p, b + "ln1.", x), cfg["n_head"], mask, **flags)
        h = F.gelu(F.linear(_ln(p, b + "ln2.", x), p[b + "mlp.up.weight"], p[b + "mlp.up.bias"]))
        x = x + F.linear(h, p[b + "mlp.down.weight"], p[b + "mlp.down.bias"])
    return _ln(p, prefix + "ln_f.", x)


def mlm_head_oracle(p, prefix, hidden, decoder_weight, *, gelu="none"):
    """decoder(ln(gelu(dense(hidden)))) with the given decoder weight (gelu="tanh": mistake)."""
    h = F.gelu(F.linear(hidden, p[prefix + "dense.weight"], p[prefix + "dense.bias"]), approximate=gelu)
    return F.linear(_ln(p, prefix + "ln.", h), decoder_weight, p[prefix + "decoder.bias"])


def masked_lm_oracle(p, cfg, ids, seg=None, mask=None, **flags):
    hidden = encoder_oracle(p, cfg, ids, seg, mask, prefix="encoder.", **flags)
    return mlm_head_oracle(p, "mlm_head.", hidden, p["encoder.embeddings.tok_emb.weight"])


def classifier_oracle(p, hidden, pool="cls"):
    """out(tanh(pooler(hidden[:, 0]))); pool="mean"/"last" are mistakes."""
    cls = {"cls": lambda: hidden[:, 0], "mean": lambda: hidden.mean(1), "last": lambda: hidden[:, -1]}[pool]()
    return F.linear(torch.tanh(F.linear(cls, p["pooler.weight"], p["pooler.bias"])), p["out.weight"], p["out.bias"])


def encoder_mistakes(p, cfg, ids, seg=None, mask=None, prefix=""):
    """Known mistakes of the encoder, as lambdas for `mistakes=` (name -> wrong hidden states)."""
    run = lambda **f: (lambda: encoder_oracle(p, cfg, ids, seg, mask, prefix, **f))   # noqa: E731
    wrong = {"causal mask in the encoder: BERT attends to the keys after a position too": run(causal=True),
             "padding mask ignored: queries attend to padding keys": run(keys="all"),
             "missing 1/sqrt(D) in the attention scores": run(scale=False)}
    if mask is not None and bool((~mask).any(dim=-1).all()):
        wrong["padding mask read the wrong way round: True means a REAL token"] = run(keys="pad")
    return wrong


def load_reference_model(impl):
    """(model, record, cfg): the student's BertForMaskedLM with the golden state dict, in eval mode."""
    cfg = reference.load(TOPIC, "model_config")
    record = reference.load(TOPIC, "model")
    model = impl.BertForMaskedLM(impl.BertConfig(**cfg))
    state = {k[len("param."):]: v for k, v in record.items() if k.startswith("param.")}
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        check.fail("BertForMaskedLM.__init__", "the reference state dict does not load into your model",
                   str(exc).splitlines()[0][:300],
                   "keep the attribute names of the module docstring (encoder.embeddings.tok_emb, ..., "
                   "mlm_head.decoder)", case=check.describe(config=cfg))
    return model.eval(), record, cfg
