"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) of 03_embeddings.

`llmlab mutants 03_embeddings` proves every mutant fails a grader (naming the mistake where
`message` is set) and every variant gets full marks.
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "embeddings.py"

_OVERWRITE_BACKWARD = '''
        class _Lookup(torch.autograd.Function):
            @staticmethod
            def forward(ctx, weight, ids):
                ctx.save_for_backward(ids)
                ctx.shape = weight.shape
                return weight[ids]

            @staticmethod
            def backward(ctx, grad):
                (ids,) = ctx.saved_tensors
                grad_weight = grad.new_zeros(ctx.shape)
                grad_weight.index_put_((ids.reshape(-1),), grad.reshape(-1, ctx.shape[1]))
                return grad_weight, None

        return _Lookup.apply(self.weight, ids)                           # (*ids.shape, C)'''

MUTANTS = [
    # ------------------------------------------------------------------ Embedding
    Mutant("hand-written backward overwrites the gradient of repeated ids (index_put without accumulate)", F,
           find="        return self.weight[ids]                                          # (*ids.shape, C)",
           replace=_OVERWRITE_BACKWARD.lstrip("\n"),
           message="overwritten instead of summed"),
    Mutant("lookup detached from the table (no gradient reaches weight)", F,
           find="return self.weight[ids]", replace="return self.weight.detach()[ids]",
           message="not connected to the inputs"),
    Mutant("calls torch.nn.functional.embedding", F,
           find="return self.weight[ids]", replace="return torch.nn.functional.embedding(ids, self.weight)",
           message="must be written from scratch"),
    Mutant("table initialised with std 0.02 instead of N(0, 1)", F,
           find="self.weight = nn.Parameter(torch.randn(num_embeddings, dim))",
           replace="self.weight = nn.Parameter(0.02 * torch.randn(num_embeddings, dim))",
           message="does not follow the expected distribution"),
    Mutant("table initialised uniformly in [-1, 1)", F,
           find="self.weight = nn.Parameter(torch.randn(num_embeddings, dim))",
           replace="self.weight = nn.Parameter(2 * torch.rand(num_embeddings, dim) - 1)"),
    Mutant("no range check: negative ids wrap around", F,
           find="if ids.numel() > 0 and (int(ids.min()) < 0 or int(ids.max()) >= self.num_embeddings):",
           replace="if ids.numel() > 0 and int(ids.max()) >= self.num_embeddings:",
           message="should raise IndexError"),
    # ------------------------------------------------------------------ sinusoidal_positions
    Mutant("sin and cos swapped", F,
           find="pe[:, 0::2] = torch.sin(angle)\n    pe[:, 1::2] = torch.cos(angle)",
           replace="pe[:, 0::2] = torch.cos(angle)\n    pe[:, 1::2] = torch.sin(angle)",
           message="sin and cos swapped"),
    Mutant("frequency exponent i/dim instead of 2i/dim", F,
           find="two_i = torch.arange(0, dim, 2, dtype=torch.float64)",
           replace="two_i = torch.arange(0, dim // 2, dtype=torch.float64)",
           message="exponent i/dim instead of 2i/dim"),
    Mutant("sines and cosines in two halves instead of interleaved", F,
           find="pe[:, 0::2] = torch.sin(angle)\n    pe[:, 1::2] = torch.cos(angle)",
           replace="pe[:, : dim // 2] = torch.sin(angle)\n    pe[:, dim // 2:] = torch.cos(angle)",
           message="concatenated in two halves"),
    Mutant("positions counted from 1", F,
           find="position = torch.arange(seq_len, dtype=torch.float64)[:, None]",
           replace="position = torch.arange(1, seq_len + 1, dtype=torch.float64)[:, None]",
           message="counted from 1"),
    Mutant("angle multiplied by base^(2i/dim) instead of divided", F,
           find="omega = 1.0 / base ** (two_i / dim)", replace="omega = base ** (two_i / dim)",
           message="instead of divided"),
    Mutant("base ignored (always 10000)", F,
           find="omega = 1.0 / base ** (two_i / dim)", replace="omega = 1.0 / 10000.0 ** (two_i / dim)"),
    Mutant("odd dim not rejected (fails later with a shape error)", F,
           find="if dim < 2 or dim % 2 != 0:", replace="if dim < 2:",
           message="deep inside the computation"),
    Mutant("dim = 0 not rejected", F,
           find="if dim < 2 or dim % 2 != 0:", replace="if dim % 2 != 0:"),
    # ------------------------------------------------------------------ LearnedPositions
    Mutant("positions sliced weight[start:seq_len]", F,
           find="return self.weight[start:start + seq_len]", replace="return self.weight[start:seq_len]",
           message="instead of weight[start:start + seq_len]"),
    Mutant("no length check: too long a sequence gets fewer rows", F,
           find="if start < 0 or start + seq_len > self.max_len:", replace="if start < 0:",
           message="instead of returning fewer rows"),
    # ------------------------------------------------------------------ TokenAndPosition
    Mutant("token embeddings scaled by sqrt(dim)", F,
           find="return self.tok(ids) + self.pos(T, start)",
           replace="return self.tok(ids) * self.tok.weight.shape[1] ** 0.5 + self.pos(T, start)",
           message="scaled by sqrt(dim)"),
    Mutant("sequence length read from the first axis of ids", F,
           find="T = ids.shape[-1]", replace="T = ids.shape[0]"),
    Mutant("start ignored", F,
           find="return self.tok(ids) + self.pos(T, start)", replace="return self.tok(ids) + self.pos(T)",
           message="ignores start"),
    # ------------------------------------------------------------------ tie_weights
    Mutant("tying copies the values into a new Parameter", F,
           find="    lm_head.weight = embedding.weight\n",
           replace="    lm_head.weight = nn.Parameter(embedding.weight.detach().clone())\n",
           message="not copy its values"),
    Mutant("tying shares storage through .data but keeps two Parameters", F,
           find="    lm_head.weight = embedding.weight\n",
           replace="    lm_head.weight = nn.Parameter(embedding.weight.data)\n",
           message="not copy its values"),
    Mutant("tied in the wrong direction (the embedding takes the head's weight)", F,
           find="    lm_head.weight = embedding.weight\n", replace="    embedding.weight = lm_head.weight\n",
           message="tie in the other direction"),
    Mutant("no shape check before tying", F,
           find="if tuple(lm_head.weight.shape) != tuple(embedding.weight.shape):",
           replace="if lm_head.weight.numel() != embedding.weight.numel():"),
    # ------------------------------------------------------------------ param_groups
    Mutant("embeddings decayed (the ndim >= 2 rule alone)", F,
           find="if p.ndim >= 2 and id(p) not in embedding_ids:", replace="if p.ndim >= 2:",
           message="embeddings put in the decay group"),
    Mutant("only ndim > 2 decayed", F,
           find="if p.ndim >= 2 and id(p) not in embedding_ids:", replace="if p.ndim > 2 and id(p) not in embedding_ids:",
           message="only parameters with ndim > 2"),
    Mutant("the course's own Embedding / LearnedPositions not recognised as tables", F,
           find="tables = (nn.Embedding, Embedding, LearnedPositions)", replace="tables = (nn.Embedding,)",
           message="this topic's Embedding / LearnedPositions tables put in the decay group"),
    Mutant("no-decay group gets weight_decay too", F,
           find='{"params": no_decay, "weight_decay": 0.0}', replace='{"params": no_decay, "weight_decay": weight_decay}',
           message="the no-decay group was given weight_decay too"),
    Mutant("frozen parameters kept", F,
           find="        if not p.requires_grad:\n            continue\n", replace="",
           message="frozen parameters kept in the groups"),
    Mutant("tied parameter listed twice (per-module iteration without de-duplication)", F,
           find="for p in model.parameters():                                         # each shared Parameter once",
           replace="for p in [q for m in model.modules() for q in m.parameters(recurse=False)]:",
           message="listed more than once"),
    Mutant("a tied table classified by the first module that holds it", F,
           find="""    embedding_ids = {id(p) for m in model.modules() if isinstance(m, tables)
                     for p in m.parameters(recurse=False)}""",
           replace="""    embedding_ids, seen = set(), set()
    for m in model.modules():
        for p in m.parameters(recurse=False):
            if id(p) not in seen and isinstance(m, tables):
                embedding_ids.add(id(p))
            seen.add(id(p))""",
           message="classified by the first module that holds it"),
    Mutant("only nn.Linear weights decayed", F,
           find="""        if p.ndim >= 2 and id(p) not in embedding_ids:""",
           replace="""        linear_ids = {id(m.weight) for m in model.modules() if isinstance(m, nn.Linear)}
        if id(p) in linear_ids and id(p) not in embedding_ids:"""),
]


VARIANTS = [
    Variant("lookup as one_hot(ids) @ weight", F,
            find="return self.weight[ids]",
            replace="return torch.nn.functional.one_hot(ids, self.num_embeddings).to(self.weight.dtype) @ self.weight"),
    Variant("lookup as a float32 one-hot matrix times the table (the dtype the docstring promises)", F,
            find="return self.weight[ids]",
            replace="return torch.nn.functional.one_hot(ids, self.num_embeddings).float() @ self.weight"),
    Variant("lookup with index_select on flattened ids, range check via comparisons", F,
            find="""        if ids.numel() > 0 and (int(ids.min()) < 0 or int(ids.max()) >= self.num_embeddings):""",
            replace="""        if bool(((ids < 0) | (ids >= self.num_embeddings)).any()):""",
            also=(Edit(F, "return self.weight[ids]",
                       "return self.weight.index_select(0, ids.reshape(-1)).view(*ids.shape, self.dim)"),)),
    Variant("sinusoids in float32 throughout, exp/log frequencies, stack-and-flatten interleave", F,
            find="""    position = torch.arange(seq_len, dtype=torch.float64)[:, None]       # (T, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)                 # (C/2,) = 2i
    omega = 1.0 / base ** (two_i / dim)                                  # (C/2,) ω_i
    angle = position * omega                                             # (T, C/2)
    pe = torch.empty(seq_len, dim, dtype=torch.float64)                  # (T, C)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()""",
            replace="""    import math
    position = torch.arange(seq_len).float()[:, None]
    omega = torch.exp(torch.arange(0, dim, 2).float() * (-math.log(base) / dim))
    angle = position * omega
    return torch.stack([torch.sin(angle), torch.cos(angle)], dim=-1).reshape(seq_len, dim)"""),
    Variant("sinusoids with a Python loop over positions and pairs", F,
            find="""    position = torch.arange(seq_len, dtype=torch.float64)[:, None]       # (T, 1)
    two_i = torch.arange(0, dim, 2, dtype=torch.float64)                 # (C/2,) = 2i
    omega = 1.0 / base ** (two_i / dim)                                  # (C/2,) ω_i
    angle = position * omega                                             # (T, C/2)
    pe = torch.empty(seq_len, dim, dtype=torch.float64)                  # (T, C)
    pe[:, 0::2] = torch.sin(angle)
    pe[:, 1::2] = torch.cos(angle)
    return pe.float()""",
            replace="""    import math
    pe = torch.zeros(seq_len, dim)
    for p in range(seq_len):
        for i in range(dim // 2):
            angle = p / base ** (2 * i / dim)
            pe[p, 2 * i], pe[p, 2 * i + 1] = math.sin(angle), math.cos(angle)
    return pe"""),
    Variant("positions via narrow, token-plus-position with an explicit expand", F,
            find="return self.weight[start:start + seq_len]",
            replace="return self.weight.narrow(0, start, seq_len)",
            also=(Edit(F, "return self.tok(ids) + self.pos(T, start)",
                       "return self.tok(ids) + self.pos(T, start).expand(*ids.shape, -1)"),)),
    Variant("tying through register_parameter", F,
            find="    lm_head.weight = embedding.weight\n",
            replace="    lm_head.register_parameter(\"weight\", embedding.weight)\n"),
    Variant("param_groups from named_parameters with a set of table names", F,
            find="""    tables = (nn.Embedding, Embedding, LearnedPositions)
    embedding_ids = {id(p) for m in model.modules() if isinstance(m, tables)
                     for p in m.parameters(recurse=False)}
    decay, no_decay = [], []
    for p in model.parameters():                                         # each shared Parameter once
        if not p.requires_grad:
            continue
        if p.ndim >= 2 and id(p) not in embedding_ids:
            decay.append(p)
        else:
            no_decay.append(p)""",
            replace="""    tables = set()
    for module_name, m in model.named_modules(remove_duplicate=False):
        if isinstance(m, (nn.Embedding, Embedding, LearnedPositions)):
            tables.add(id(m.weight))
    named = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    decay = [p for n, p in named if p.dim() > 1 and id(p) not in tables]
    no_decay = [p for n, p in named if not (p.dim() > 1 and id(p) not in tables)]"""),
]


_RANGE_CHECK = "if ids.numel() > 0 and (int(ids.min()) < 0 or int(ids.max()) >= self.num_embeddings):"

# Generated mutants (`llmlab mutate 03_embeddings`) that compute the same thing for every input
# the docstrings allow, with the reason.
EQUIVALENT = {
    f"embeddings.py: `max` -> `min` in `{_RANGE_CHECK}`":
        "ids.min() >= V is weaker than ids.max() >= V, but an id >= V that slips past the check makes "
        "self.weight[ids] raise IndexError itself (advanced indexing is bounds-checked), so the same "
        "exception is raised; only the message differs, and the docstring does not fix the message. "
        "Negative ids are still caught by the ids.min() < 0 half.",
    f"embeddings.py: `>=` -> `>` in `{_RANGE_CHECK}`":
        "an id equal to V slips past the check, but self.weight[ids] then raises IndexError itself "
        "(row V does not exist), so the same exception is raised; only the message differs.",
    "embeddings.py: `2` -> `1` in `if dim < 2 or dim % 2 != 0:`":
        "dim < 1 or dim odd rejects exactly the same dims as dim < 2 or dim odd: the only dim they "
        "tell apart is 1, which is odd and so rejected by the second half.",
}
