"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 08_bert.

Each is one textual edit (or a few chained with `also`) of solutions/08_bert/bert.py.
`llmlab mutants 08_bert` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "bert.py"

MUTANTS = [
    # ---- mlm_mask: which positions
    Mutant("special ids can be chosen (special_ids ignored)", F,
           find="< mask_prob) & ~special", replace="< mask_prob)",
           message="special ids chosen too"),
    Mutant("one random draw of shape (T,) shared by every row", F,
           find="chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob)",
           replace="chosen = (torch.rand(input_ids.shape[-1:], generator=generator) < mask_prob)",
           message="shared by every row of the batch"),
    Mutant("generator ignored (global RNG)", F,
           find="chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob)",
           replace="chosen = (torch.rand(input_ids.shape) < mask_prob)",
           message="generator ignored"),

    # ---- mlm_mask: the 80/10/10 split
    Mutant("every chosen position becomes [MASK]", F,
           find="corrupted = torch.where(chosen & (action < 0.8), torch.full_like(input_ids, mask_id), input_ids)\n"
                "    corrupted = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, corrupted)",
           replace="corrupted = torch.where(chosen, torch.full_like(input_ids, mask_id), input_ids)",
           message="every chosen position replaced by [MASK]"),
    Mutant("no random replacement (80% [MASK], 20% unchanged)", F,
           find="    corrupted = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, corrupted)\n",
           replace="", message="no random replacement"),
    Mutant("no chosen position left unchanged (80% [MASK], 20% random)", F,
           find="(action < 0.9)", replace="(action < 1.0)", message="no chosen position left unchanged"),
    Mutant("random for 10% of the remaining 20% only", F,
           find="(action < 0.9)", replace="(action < 0.82)",
           message="random replacement for only 10% of the remaining"),
    Mutant("80/10/10 swapped (10% [MASK], 80% unchanged)", F,
           find="chosen & (action < 0.8)", replace="chosen & (action < 0.1)", message="the probabilities swapped"),
    Mutant("random ids drawn from 0 … V−2", F,
           find="random_ids = torch.randint(vocab_size, ", replace="random_ids = torch.randint(vocab_size - 1, ",
           message="torch.randint's high is exclusive"),
    Mutant("random ids never special (drawn from the non-special range)", F,
           find="random_ids = torch.randint(vocab_size, ", replace="random_ids = torch.randint(4, vocab_size, ",
           message="never draw the special ids"),
    # ---- mlm_mask: outputs
    Mutant("labels hold the corrupted ids", F,
           find="    return corrupted, labels\n",
           replace="    return corrupted, torch.where(chosen, corrupted, labels)\n",
           message="labels hold the corrupted ids"),
    Mutant("labels without -100 (the whole input)", F,
           find="labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))",
           replace="labels = input_ids.clone()", message="labels = input_ids everywhere"),
    Mutant("input modified in place", F,
           find="corrupted = torch.where(chosen & (action < 0.8), torch.full_like(input_ids, mask_id), input_ids)",
           replace="input_ids[chosen & (action < 0.8)] = mask_id\n    corrupted = input_ids",
           message="modified in place"),

    # ---- BertEmbeddings
    Mutant("segment embeddings not added", F,
           find=" + self.seg_emb(segment_ids)", replace="", message="segment embeddings not added"),
    Mutant("position embeddings not added", F,
           find=" + self.pos_emb(pos)", replace="", message="position embeddings not added"),
    Mutant("LayerNorm of the embedding sum missing", F,
           find="return self.drop(self.ln(x))", replace="return self.drop(x)",
           message="LayerNorm of the embedding sum missing"),

    # ---- EncoderSelfAttention
    Mutant("causal mask in the encoder", F,
           find="y = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)",
           replace="causal = torch.ones(T, T, dtype=torch.bool).tril()\n"
                   "        y = F.scaled_dot_product_attention(q, k, v, attn_mask=causal if attention_mask is None "
                   "else attention_mask & causal)",
           message="causal mask"),
    Mutant("padding mask ignored", F,
           find="y = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)",
           replace="y = F.scaled_dot_product_attention(q, k, v)", message="padding mask ignored"),
    Mutant("padding mask read the wrong way round (True = pad)", F,
           find="attention_mask = attention_mask[:, None, None, :]",
           replace="attention_mask = ~attention_mask[:, None, None, :]"),
    Mutant("padding mask applied to the queries instead of the keys", F,
           find="attention_mask = attention_mask[:, None, None, :]",
           replace="attention_mask = attention_mask[:, None, :, None]"),
    Mutant("scores not scaled by 1/sqrt(D)", F,
           find="attn_mask=attention_mask)", replace="attn_mask=attention_mask, scale=1.0)",
           message="missing 1/sqrt(D)"),
    Mutant("heads merged without the transpose", F,
           find="y = y.transpose(1, 2).reshape(B, T, C)", replace="y = y.reshape(B, T, C)"),
    Mutant("rows without a real token accepted", F,
           find="if not bool(attention_mask.any(dim=-1).all()):", replace="if False:"),
    Mutant("float and integer masks accepted", F,
           find="if attention_mask.dtype != torch.bool or tuple(attention_mask.shape) != (B, T):",
           replace="if tuple(attention_mask.shape) != (B, T):"),

    # ---- BertEncoder
    Mutant("padding mask not passed to the blocks", F,
           find="x = block(x, attention_mask)", replace="x = block(x)", message="padding mask ignored"),
    Mutant("final LayerNorm not applied", F,
           find="        return self.ln_f(x)\n", replace="        return x\n"),
    Mutant("no BERT initialisation in the encoder", F,
           find="        self.ln_f = nn.LayerNorm(config.d_model)\n        self.apply(init_gpt_weights)\n",
           replace="        self.ln_f = nn.LayerNorm(config.d_model)\n",
           message="weights not initialised with init_gpt_weights"),
    Mutant("dropout not passed to the blocks", F,
           find="EncoderBlock(config.d_model, config.n_head, config.dropout)",
           replace="EncoderBlock(config.d_model, config.n_head)"),

    # ---- MLMHead
    Mutant("tanh approximation of GELU in the head", F,
           find="F.gelu(self.dense(hidden))", replace="F.gelu(self.dense(hidden), approximate=\"tanh\")",
           message="tanh approximation of GELU"),
    Mutant("head's LayerNorm missing", F,
           find="return self.decoder(self.ln(F.gelu(self.dense(hidden))))",
           replace="return self.decoder(F.gelu(self.dense(hidden)))"),
    Mutant("decoder without a bias", F,
           find="self.decoder = nn.Linear(C, config.vocab_size)",
           replace="self.decoder = nn.Linear(C, config.vocab_size, bias=False)"),

    # ---- mlm_loss
    Mutant("NaN when nothing is masked", F,
           find="    if not bool((flat_labels != -100).any()):\n        return logits.sum() * 0.0\n", replace="",
           message="NaN when nothing is masked"),
    Mutant("loss averaged over ignored positions too", F,
           find="return F.cross_entropy(flat_logits, flat_labels, ignore_index=-100)",
           replace="return (F.cross_entropy(flat_logits, flat_labels.clamp_min(0), reduction=\"none\")"
                   " * (flat_labels != -100)).mean()",
           message="loss averaged over ignored positions too"),
    Mutant("label shape not checked", F,
           find="if tuple(labels.shape) != tuple(logits.shape[:-1]):", replace="if False:"),

    # ---- BertForMaskedLM
    Mutant("untied MLM decoder", F,
           find="        self.mlm_head.decoder.weight = self.encoder.embeddings.tok_emb.weight   # one (V, C) matrix\n",
           replace="", message="untied MLM decoder"),
    Mutant("model loss by F.cross_entropy (NaN with no label)", F,
           find="loss = None if labels is None else mlm_loss(logits, labels)",
           replace="loss = None if labels is None else F.cross_entropy(logits.reshape(-1, logits.shape[-1]), "
                   "labels.reshape(-1))"),

    # ---- ClsClassifier
    Mutant("mean pooling instead of [CLS]", F,
           find="cls = hidden[:, 0]", replace="cls = hidden.mean(dim=1)", message="mean of all positions pooled"),
    Mutant("last position instead of [CLS]", F,
           find="cls = hidden[:, 0]", replace="cls = hidden[:, -1]", message="last position read"),
    Mutant("pooler without tanh", F,
           find="return self.out(self.drop(torch.tanh(self.pooler(cls))))",
           replace="return self.out(self.drop(self.pooler(cls)))", message="tanh of the pooler missing"),
    Mutant("dropout before the pooler", F,
           find="return self.out(self.drop(torch.tanh(self.pooler(cls))))",
           replace="return self.out(torch.tanh(self.pooler(self.drop(cls))))"),
]

VARIANTS = [
    Variant("Hugging Face's masking: Bernoulli draws, a loop over the specials, in-place edits of copies", F,
            find="""    special = torch.isin(input_ids, torch.tensor(sorted(special_ids), dtype=input_ids.dtype))
    chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & ~special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    action = torch.rand(input_ids.shape, generator=generator)                  # 80 / 10 / 10
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    corrupted = torch.where(chosen & (action < 0.8), torch.full_like(input_ids, mask_id), input_ids)
    corrupted = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, corrupted)
    return corrupted, labels
""",
            replace="""    special = torch.zeros(input_ids.shape, dtype=torch.bool)
    for s in special_ids:
        special |= input_ids == s
    probs = torch.full(input_ids.shape, float(mask_prob)).masked_fill(special, 0.0)
    chosen = torch.bernoulli(probs, generator=generator).bool()
    labels = input_ids.clone()
    labels[~chosen] = -100
    replaced = torch.bernoulli(torch.full(input_ids.shape, 0.8), generator=generator).bool() & chosen
    randomised = torch.bernoulli(torch.full(input_ids.shape, 0.5), generator=generator).bool() & chosen & ~replaced
    corrupted = input_ids.clone()
    corrupted[replaced] = mask_id
    corrupted[randomised] = torch.randint(vocab_size, input_ids.shape, generator=generator)[randomised]
    return corrupted, labels
"""),
    Variant("attention written out: scores, masked_fill(-inf), softmax; heads merged by permute", F,
            find="y = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)      # (B, H, T, D)",
            replace="scores = q @ k.transpose(-2, -1) / (C // self.n_heads) ** 0.5\n"
                    "        if attention_mask is not None:\n"
                    "            scores = scores.masked_fill(~attention_mask, float(\"-inf\"))\n"
                    "        y = scores.softmax(dim=-1) @ v",
            also=(Edit(F, "y = y.transpose(1, 2).reshape(B, T, C)",
                       "y = y.permute(0, 2, 1, 3).contiguous().view(B, T, C)"),)),
    Variant("mlm_loss by log_softmax, gather and a clamped count", F,
            find="""    if not bool((flat_labels != -100).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(flat_logits, flat_labels, ignore_index=-100)
""",
            replace="""    keep = (flat_labels != -100).to(logits.dtype)
    nll = -flat_logits.log_softmax(dim=-1).gather(1, flat_labels.clamp_min(0)[:, None])[:, 0]
    return (nll * keep).sum() / keep.sum().clamp_min(1.0)
"""),
    Variant("embeddings by indexing the tables; tie the other way round; [CLS] by select", F,
            find="x = self.tok_emb(input_ids) + self.pos_emb(pos) + self.seg_emb(segment_ids)",
            replace="x = self.tok_emb.weight[input_ids] + self.pos_emb.weight[:T] + self.seg_emb.weight[segment_ids]",
            also=(Edit(F, "self.mlm_head.decoder.weight = self.encoder.embeddings.tok_emb.weight",
                       "self.encoder.embeddings.tok_emb.weight = self.mlm_head.decoder.weight"),
                  Edit(F, "cls = hidden[:, 0]", "cls = hidden.select(1, 0)"))),
]

# Survivors of `llmlab mutate 08_bert` that compute what the solution computes for every
# input the docstrings allow (the key is the id the command prints).
_BOUNDARY = ("torch.rand draws float32 multiples of 2^-24, so a draw equals the threshold with probability "
             "at most 2^-24 per position; both comparisons give the same distribution of outputs, which no "
             "statistical test (and no seeded run of the graders) can tell apart")
EQUIVALENT = {
    "bert.py: `1` -> `0` in `if vocab_size < 1:`":
        "vocab_size 0 (or below) is still rejected by the next check: no mask_id lies in [0, vocab_size)",
    "bert.py: `<` -> `<=` in `chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & ~special`":
        _BOUNDARY,
    "bert.py: `<` -> `<=` in `corrupted = torch.where(chosen & (action < 0.8), torch.full_like(input_ids, mask_id), "
    "input_ids)`": _BOUNDARY,
    "bert.py: `>=` -> `>` in `corrupted = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, "
    "corrupted)`": _BOUNDARY,
    "bert.py: `<` -> `<=` in `corrupted = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, "
    "corrupted)`": _BOUNDARY,
    "bert.py: `-` -> `` in `if not bool(attention_mask.any(dim=-1).all()):`":
        "the line above has just checked that attention_mask is (B, T), so dim=1 is dim=-1",
}
