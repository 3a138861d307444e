"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 05_mini_gpt.

Each is one textual edit (or a few chained with `also`) of solutions/05_mini_gpt/mini_gpt.py.
`llmlab mutants 05_mini_gpt` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "mini_gpt.py"

MUTANTS = [
    # ---- GPTConfig
    Mutant("d_model divisibility by n_head not checked", F,
           find="if self.d_model % self.n_head != 0:", replace="if False:"),

    # ---- MiniGPT.__init__
    Mutant("untied LM head", F,
           find="        self.lm_head.weight = self.tok_emb.weight  # weight tying: one (V, C) matrix, used twice\n",
           replace="", message="untied LM head"),
    Mutant("no GPT-2 initialisation (PyTorch's defaults)", F,
           find="        self.apply(init_gpt_weights)\n", replace="",
           message="weights not initialised with init_gpt_weights"),
    Mutant("residual projections not scaled by 1/sqrt(2·n_layer)", F,
           find="residual_std = scaled_init_std(config.n_layer)", replace="residual_std = 0.02",
           message="residual projection not re-initialised with scaled_init_std"),
    Mutant("dropout not passed to the blocks", F,
           find="Block(C, config.n_head, config.dropout, config.bias)", replace="Block(C, config.n_head, 0.0, config.bias)"),
    Mutant("final LayerNorm always has a bias (config.bias ignored)", F,
           find="self.ln_f = nn.LayerNorm(C, bias=config.bias)", replace="self.ln_f = nn.LayerNorm(C)"),

    # ---- MiniGPT.forward
    Mutant("missing position embeddings", F,
           find="x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))", replace="x = self.drop(self.tok_emb(idx))",
           message="missing position embeddings"),
    Mutant("positions counted from the end of the sequence", F,
           find="pos = torch.arange(T, device=idx.device)", replace="pos = torch.arange(T - 1, -1, -1, device=idx.device)"),
    Mutant("final LayerNorm not applied", F,
           find="        x = self.ln_f(x)                                        # (B, T, C)\n", replace=""),
    Mutant("loss averaged over ignored positions", F,
           find="loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T), ignore_index=-100)",
           replace="loss = (F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T), ignore_index=-100, "
                   "reduction='none')).mean()",
           message="loss averaged over ignored positions too"),

    # ---- count_parameters
    Mutant("tied head counted twice", F,
           find="embeddings = config.vocab_size * C + config.block_size * C",
           replace="embeddings = 2 * config.vocab_size * C + config.block_size * C",
           message="tied LM head counted a second time"),
    Mutant("position embeddings not counted", F,
           find="embeddings = config.vocab_size * C + config.block_size * C", replace="embeddings = config.vocab_size * C",
           message="position embeddings left out"),
    Mutant("final LayerNorm not counted", F,
           find="final_norm = 2 * C if config.bias else C", replace="final_norm = 0",
           message="final LayerNorm left out"),
    Mutant("blocks counted with biases whatever config.bias says", F,
           find="block_parameter_count(C, config.bias)", replace="block_parameter_count(C)"),

    # ---- get_batch
    Mutant("targets not shifted", F,
           find="y = data[starts[:, None] + offsets + 1]", replace="y = data[starts[:, None] + offsets]",
           message="targets not shifted"),
    Mutant("last start position never drawn (off by one)", F,
           find="torch.randint(data.numel() - block_size, (batch_size,)",
           replace="torch.randint(data.numel() - block_size - 1, (batch_size,)",
           message="off by one in the range of start positions"),
    Mutant("generator ignored (global RNG)", F,
           find="(batch_size,), generator=generator)", replace="(batch_size,))"),

    # ---- generate
    Mutant("context not cropped", F,
           find="context = idx[:, -model.config.block_size:]", replace="context = idx",
           message="context not cropped to block_size"),
    Mutant("context cropped to the first block_size tokens", F,
           find="context = idx[:, -model.config.block_size:]", replace="context = idx[:, :model.config.block_size]",
           message="context cropped to the first block_size tokens instead of the last"),
    Mutant("first position's logits", F,
           find="logits = logits[:, -1, :]", replace="logits = logits[:, 0, :]",
           message="uses the logits of the first position instead of the last"),
    Mutant("temperature multiplied", F,
           find="F.softmax(logits / temperature, dim=-1)", replace="F.softmax(logits * temperature, dim=-1)",
           message="temperature multiplied instead of divided"),
    Mutant("temperature applied after the softmax", F,
           find="F.softmax(logits / temperature, dim=-1)", replace="F.softmax(logits, dim=-1) / temperature",
           message="temperature ignored"),
    Mutant("model left in eval mode", F,
           find="        model.train(was_training)\n", replace="        pass\n"),
    Mutant("generation in train mode (dropout on)", F,
           find="    model.eval()\n    try:", replace="    try:"),
    Mutant("generation with autograd", F,
           find="with torch.no_grad():", replace="with torch.enable_grad():"),

    # ---- train
    Mutant("zero_grad missing", F,
           find="        optimizer.zero_grad(set_to_none=True)\n", replace="",
           message="gradients never cleared (zero_grad missing)"),
    Mutant("optimizer re-created every step", F,
           find="        x, y = get_batch(data, batch_size, block_size, generator)   # (B, T), (B, T)\n",
           replace="        optimizer = torch.optim.AdamW(model.parameters(), lr=lr)\n"
                   "        x, y = get_batch(data, batch_size, block_size, generator)   # (B, T), (B, T)\n",
           message="a new optimizer every step"),
    Mutant("nanoGPT's weight decay instead of the documented default", F,
           find="optimizer = torch.optim.AdamW(model.parameters(), lr=lr)",
           replace="optimizer = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=0.1)"),
    Mutant("model not put in train mode", F,
           find="    model.train()\n    optimizer", replace="    optimizer"),
    Mutant("loss tensors returned instead of floats", F,
           find="losses.append(loss.item())", replace="losses.append(loss.detach())"),
]

VARIANTS = [
    Variant("head tied the other way round (embedding takes the head's Parameter)", F,
            find="self.lm_head.weight = self.tok_emb.weight", replace="self.tok_emb.weight = self.lm_head.weight"),
    Variant("initialisation by an explicit loop over named parameters", F,
            find="""        self.apply(init_gpt_weights)
        residual_std = scaled_init_std(config.n_layer)
        for block in self.blocks:
            nn.init.normal_(block.attn.proj.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.mlp.down.weight, mean=0.0, std=residual_std)
""",
            replace="""        for name, p in self.named_parameters():
            if name.endswith(("attn.proj.weight", "mlp.down.weight")):
                nn.init.normal_(p, std=scaled_init_std(config.n_layer))
            elif name.endswith("bias"):
                nn.init.zeros_(p)
            elif not name.split(".")[-2].startswith("ln"):
                nn.init.normal_(p, std=0.02)
"""),
    Variant("positions by slicing the table; loss by log_softmax, gather and a mask", F,
            find="x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))",
            replace="x = self.drop(self.tok_emb.weight[idx] + self.pos_emb.weight[:T])",
            also=(Edit(F, "loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T), ignore_index=-100)",
                       "keep = targets != -100\n"
                       "            logp = logits.log_softmax(dim=-1)\n"
                       "            nll = -logp.gather(-1, targets.clamp_min(0).unsqueeze(-1)).squeeze(-1)\n"
                       "            loss = (nll * keep).sum() / keep.sum()"),)),
    Variant("parameter count written out term by term", F,
            find="    blocks = config.n_layer * block_parameter_count(C, config.bias)\n",
            replace="    per_block = 12 * C * C + (13 * C if config.bias else 2 * C)\n"
                    "    blocks = config.n_layer * per_block\n"),
    Variant("batch gathered with a Python loop over start positions", F,
            find="""    x = data[starts[:, None] + offsets]                                                    # (B, T)
    y = data[starts[:, None] + offsets + 1]                                                # (B, T)
""",
            replace="""    del offsets
    x = torch.stack([data[s:s + block_size] for s in starts.tolist()])
    y = torch.stack([data[s + 1:s + block_size + 1] for s in starts.tolist()])
"""),
    Variant("Gumbel-max sampling and an explicit crop", F,
            find="""                    probs = F.softmax(logits / temperature, dim=-1)       # (B, V)
                    next_id = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
""",
            replace="""                    u = torch.rand(logits.shape, generator=generator).clamp_min(1e-20)
                    gumbel = -torch.log(-torch.log(u))
                    next_id = (logits / temperature + gumbel).argmax(dim=-1, keepdim=True)
""",
            also=(Edit(F, "context = idx[:, -model.config.block_size:]",
                       "context = idx if idx.shape[1] <= model.config.block_size else "
                       "idx[:, idx.shape[1] - model.config.block_size:]"),)),
    Variant("gradients cleared at the top of each step, kept as zeros", F,
            find="""        x, y = get_batch(data, batch_size, block_size, generator)   # (B, T), (B, T)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
""",
            replace="""        optimizer.zero_grad(set_to_none=False)
        x, y = get_batch(data, batch_size, block_size, generator)   # (B, T), (B, T)
        _, loss = model(x, y)
"""),
]

# Survivors of `llmlab mutate 05_mini_gpt` that compute what the solution computes for every
# input the docstrings allow (the key is the id the command prints).
EQUIVALENT = {
    "mini_gpt.py: `-` -> `` in `next_id = logits.argmax(dim=-1, keepdim=True)`":
        "logits was just sliced to (B, V) by `logits[:, -1, :]`, so dim=1 is dim=-1",
    "mini_gpt.py: `-` -> `` in `probs = F.softmax(logits / temperature, dim=-1)`":
        "logits was just sliced to (B, V) by `logits[:, -1, :]`, so dim=1 is dim=-1",
    "mini_gpt.py: `True` -> `False` in `optimizer.zero_grad(set_to_none=True)`":
        "the docstring says only 'clear the old gradients': zeroing them in place is the same "
        "clearing (VARIANTS accepts it). Zeros and None differ only for a parameter that the "
        "loss does not reach (AdamW would decay it); every parameter of MiniGPT and of any model "
        "whose loss uses all its parameters gets a gradient each step, so the runs agree",
}
