"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 20_vlm.

Each is one textual edit (or a few chained with `also`) of solutions/20_vlm/vlm.py.
`llmlab mutants 20_vlm` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks. SYLLABUS.md's known mistakes are all
here (marked "syllabus").
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "vlm.py"

MUTANTS = [
    # ---- the syllabus's five known mistakes
    Mutant("syllabus: patches in column-major order", F,
           find="x = x.permute(0, 2, 4, 1, 3, 5)", replace="x = x.permute(0, 4, 2, 1, 3, 5)",
           message="column-major"),
    Mutant("syllabus: a one-directional CLIP loss", F,
           find="return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2",
           replace="return F.cross_entropy(logits, targets)", message="one-directional"),
    Mutant("syllabus: temperature used as a multiplier", F,
           find="logits = u @ v.T / temperature", replace="logits = u @ v.T * temperature",
           message="temperature used as a multiplier"),
    Mutant("syllabus: labels not masked at the image positions", F,
           find="labels.new_full((N,), -100)", replace="labels[b, k].expand(N)",
           message="labels not masked at the image positions"),
    Mutant("syllabus: the gate initialised open", F,
           find="self.attn_gate = nn.Parameter(torch.zeros(()))", replace="self.attn_gate = nn.Parameter(torch.ones(()))",
           message="the gate initialised open"),

    # ---- patchify / PatchEmbedding / ViT
    Mutant("patch vectors flattened channels-last (row, column, channel)", F,
           find="x = x.permute(0, 2, 4, 1, 3, 5)", replace="x = x.permute(0, 2, 4, 3, 5, 1)", message="channels-last"),
    Mutant("patchify: only H checked for divisibility", F,
           find="if patch < 1 or H % patch or W % patch:", replace="if patch < 1 or H % patch:"),
    Mutant("patch embedding: conv output reshaped without moving the channel axis", F,
           find="return x.flatten(2).transpose(1, 2)", replace="return x.reshape(x.shape[0], -1, x.shape[1])",
           message="without moving the channel axis"),
    Mutant("ViT: position embeddings not added", F,
           find="x = torch.cat([cls, patches], dim=1) + self.pos_embed", replace="x = torch.cat([cls, patches], dim=1)",
           message="position embeddings not added"),
    Mutant("ViT: CLS token appended after the patches", F,
           find="x = torch.cat([cls, patches], dim=1) + self.pos_embed",
           replace="x = torch.cat([patches, cls], dim=1) + self.pos_embed"),
    Mutant("ViT: no final norm", F, find="        return self.norm(x)\n", replace="        return x\n",
           message="no final norm"),

    # ---- clip_loss / retrieval
    Mutant("CLIP: embeddings not normalised", F,
           find="    logits = u @ v.T / temperature", replace="    logits = image_emb @ text_emb.T / temperature",
           message="not normalised"),
    Mutant("CLIP: the two directions summed, not averaged", F,
           find="return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2",
           replace="return F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)",
           message="summed instead of averaged"),
    Mutant("CLIP: temperature 0 accepted", F, find="    if tau <= 0:", replace="    if tau < 0:"),
    Mutant("retrieval: raw dot products instead of cosines", F,
           find="    sim = u @ v.T                                                      # (N, N)",
           replace="    sim = image_emb @ text_emb.T", message="raw dot products"),
    Mutant("retrieval: text → image computed as image → text", F,
           find="t2i = (sim.argmax(dim=0) == truth).double().mean().item()",
           replace="t2i = (sim.argmax(dim=1) == truth).double().mean().item()",
           message="text → image computed as image → text"),

    # ---- projector / splice / freezing
    Mutant("projector: ReLU instead of GELU", F, find="return self.fc2(F.gelu(self.fc1(features)))",
           replace="return self.fc2(F.relu(self.fc1(features)))", message="ReLU instead of GELU"),
    Mutant("projector: the tanh approximation of GELU", F, find="return self.fc2(F.gelu(self.fc1(features)))",
           replace="return self.fc2(F.gelu(self.fc1(features), approximate='tanh'))", message="tanh approximation"),
    Mutant("splice: every row spliced at row 0's placeholder", F,
           find="for b, k in enumerate(is_image.int().argmax(dim=1).tolist()):",
           replace="for b, k in enumerate([int(is_image[0].int().argmax())] * input_ids.shape[0]):"),
    Mutant("splice: a missing placeholder not detected", F,
           find="    if bool((counts == 0).any()):", replace="    if False:"),
    Mutant("splice: one image per row not checked", F,
           find="if bool((counts > 1).any()) or image_features.shape[0] != input_ids.shape[0]:",
           replace="if bool((counts > 1).any()):"),
    Mutant("freeze: stage 2 also trains the vision encoder", F,
           find='trainable = ("projector.",) if stage == 1 else ("projector.", "lm.")',
           replace='trainable = ("projector.",) if stage == 1 else ("projector.", "lm.", "vision.")',
           message="stage 2 also trains the vision encoder"),
    Mutant("freeze: stage 1 also trains the LM", F,
           find='trainable = ("projector.",) if stage == 1 else ("projector.", "lm.")',
           replace='trainable = ("projector.", "lm.")', message="stage 1 also trains the LM"),
    Mutant("freeze: only parameters of the trainable parts set (the rest keep their old state)", F,
           find="        param.requires_grad_(name.startswith(trainable))\n",
           replace="        if name.startswith(trainable):\n            param.requires_grad_(True)\n"),

    # ---- gated cross-attention
    Mutant("gated: the gate used without tanh", F,
           find="y = x + torch.tanh(self.attn_gate) * self.attn(h, media, media, need_weights=False)[0]",
           replace="y = x + self.attn_gate * self.attn(h, media, media, need_weights=False)[0]",
           also=(Edit(F, "return y + torch.tanh(self.ff_gate) * self.ff(self.ff_norm(y))",
                      "return y + self.ff_gate * self.ff(self.ff_norm(y))"),),
           message="without tanh"),
    Mutant("gated: a sigmoid gate", F,
           find="return y + torch.tanh(self.ff_gate) * self.ff(self.ff_norm(y))",
           replace="return y + torch.sigmoid(self.ff_gate) * self.ff(self.ff_norm(y))"),
    Mutant("gated: the MLP branch not gated", F,
           find="return y + torch.tanh(self.ff_gate) * self.ff(self.ff_norm(y))",
           replace="return y + self.ff(self.ff_norm(y))"),
    Mutant("gated: the MLP reads x instead of y", F,
           find="return y + torch.tanh(self.ff_gate) * self.ff(self.ff_norm(y))",
           replace="return y + torch.tanh(self.ff_gate) * self.ff(self.ff_norm(x))"),
    Mutant("gated: the query not normalised", F,
           find="        h = self.norm(x)                                               # (B, T, d)",
           replace="        h = x"),
]

VARIANTS = [
    Variant("patchify with Tensor.unfold windows", F,
            find="""    x = images.reshape(B, C, gh, patch, gw, patch)                     # (B, C, gh, P, gw, P)
    x = x.permute(0, 2, 4, 1, 3, 5)                                    # (B, gh, gw, C, P, P)
    return x.reshape(B, gh * gw, C * patch * patch)                    # (B, N, C·P·P)""",
            replace="""    windows = images.unfold(2, patch, patch).unfold(3, patch, patch)   # (B, C, gh, gw, P, P)
    return windows.permute(0, 2, 3, 1, 4, 5).reshape(B, gh * gw, -1)"""),
    Variant("CLIP loss by log_softmax over both axes", F,
            find="    return (F.cross_entropy(logits, targets) + F.cross_entropy(logits.T, targets)) / 2",
            replace="""    diag = torch.arange(logits.shape[0])
    rows = -logits.log_softmax(dim=1)[diag, diag].mean()
    cols = -logits.log_softmax(dim=0)[diag, diag].mean()
    return 0.5 * rows + 0.5 * cols"""),
    Variant("CLIP normalisation with F.normalize and a multiplied inverse temperature", F,
            find="""    u = image_emb / image_emb.norm(dim=-1, keepdim=True)               # (N, D)
    v = text_emb / text_emb.norm(dim=-1, keepdim=True)                 # (N, D)
    logits = u @ v.T / temperature                                     # (N, N)""",
            replace="""    u, v = F.normalize(image_emb, dim=-1), F.normalize(text_emb, dim=-1)
    logits = (1.0 / temperature) * (u @ v.T)"""),
    Variant("splice by boolean masks instead of a loop", F,
            find="""    embeds, new_labels = [], []
    for b, k in enumerate(is_image.int().argmax(dim=1).tolist()):
        embeds.append(torch.cat([token_embeds[b, :k], image_features[b], token_embeds[b, k + 1:]]))   # (T−1+N, D)
        new_labels.append(torch.cat([labels[b, :k], labels.new_full((N,), -100), labels[b, k + 1:]]))
    return torch.stack(embeds), torch.stack(new_labels)""",
            replace="""    B, T = input_ids.shape
    k = is_image.int().argmax(dim=1, keepdim=True)                     # (B, 1)
    out_pos = torch.arange(T + N - 1)[None]                            # (1, L)
    in_image = (out_pos >= k) & (out_pos < k + N)                      # (B, L)
    src = torch.where(out_pos < k, out_pos, out_pos - N + 1).clamp(0, T - 1)
    text = token_embeds.gather(1, src[..., None].expand(-1, -1, token_embeds.shape[2]))
    img = image_features.gather(1, (out_pos - k).clamp(0, N - 1)[..., None].expand(-1, -1, token_embeds.shape[2]))
    embeds = torch.where(in_image[..., None], img, text)
    new_labels = torch.where(in_image, torch.full_like(src, -100), labels.gather(1, src))
    return embeds, new_labels"""),
    Variant("freezing by iterating over the children", F,
            find="""    trainable = ("projector.",) if stage == 1 else ("projector.", "lm.")
    names = []
    for name, param in model.named_parameters():
        param.requires_grad_(name.startswith(trainable))
        if param.requires_grad:
            names.append(name)
    return names""",
            replace="""    model.requires_grad_(False)
    model.projector.requires_grad_(True)
    if stage == 2:
        model.lm.requires_grad_(True)
    return [name for name, param in model.named_parameters() if param.requires_grad]"""),
]

_TWO_D = "the inputs are validated as 2-D (N, D) first, so dim=1 is dim=-1"
_SQUARE = "the similarity matrix is (N, N), so shape[1] is shape[0]"

EQUIVALENT: dict[str, str] = {
    "vlm.py: `-` -> `` in `cls = self.cls_token.expand(patches.shape[0], -1, -1)`":
        "cls_token is (1, 1, d): expanding its middle axis to 1 or keeping it (-1) is the same",
    "vlm.py: `-` -> `` in `u = image_emb / image_emb.norm(dim=-1, keepdim=True)`": _TWO_D,
    "vlm.py: `-` -> `` in `v = text_emb / text_emb.norm(dim=-1, keepdim=True)`": _TWO_D,
    "vlm.py: `-` -> `` (#2) in `u = image_emb / image_emb.norm(dim=-1, keepdim=True)`": _TWO_D,
    "vlm.py: `-` -> `` (#2) in `v = text_emb / text_emb.norm(dim=-1, keepdim=True)`": _TWO_D,
    "vlm.py: `0` -> `1` in `targets = torch.arange(logits.shape[0])`": _SQUARE,
    "vlm.py: `0` -> `1` in `truth = torch.arange(sim.shape[0])`": _SQUARE,
    "vlm.py: `False` -> `True` in `y = x + torch.tanh(self.attn_gate) * self.attn(h, media, media, need_weights=False)[0]`":
        "need_weights only decides whether the attention weights are returned as well; element [0], the "
        "attention output, is the same function (up to rounding far inside the model tolerance)",
}
