"""Topic 05: a mini GPT — the whole decoder-only language model, end to end.

The model is GPT-2's architecture at toy size: token embeddings plus learned position
embeddings, a stack of pre-norm Transformer blocks (the given `llmlab.lib.nn.Block`), a final
LayerNorm, and a language-model head whose weight *is* the token-embedding matrix (weight
tying). Around it sit the three routines every language-model project needs: cut training
batches out of a token stream (`get_batch`), train (`train`), and sample text (`generate`).

Shapes: B batch, T sequence length (T ≤ block_size), C = d_model, V = vocab_size, L = n_layer.

Attribute names are part of the contract — reference weights are loaded with
`model.load_state_dict(...)`, which matches parameters by name:

    tok_emb   nn.Embedding(V, C)                   token embeddings
    pos_emb   nn.Embedding(block_size, C)          learned absolute position embeddings
    drop      nn.Dropout(dropout)                  on the embedding sum
    blocks    nn.ModuleList of L llmlab.lib.nn.Block(C, n_head, dropout, bias)
    ln_f      nn.LayerNorm(C, bias=bias)           final norm
    lm_head   nn.Linear(C, V, bias=False)          its weight is tok_emb.weight (tied)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.lib.nn import Block, block_parameter_count, init_gpt_weights, scaled_init_std


@dataclass
class GPTConfig:
    """The hyperparameters of a MiniGPT.

    vocab_size  V, number of token ids (ids are 0 … V−1)
    block_size  the longest sequence the model accepts (rows of the position table)
    n_layer     L, number of Transformer blocks
    n_head      attention heads per block; must divide d_model
    d_model     C, the width of the residual stream
    dropout     dropout probability in [0, 1), used on the embedding sum and inside blocks
    bias        whether Linear and LayerNorm layers have biases (the LM head never has one)

    GPT-2 small is GPTConfig(vocab_size=50257, block_size=1024, n_layer=12, n_head=12,
    d_model=768).
    """

    vocab_size: int
    block_size: int
    n_layer: int
    n_head: int
    d_model: int
    dropout: float = 0.0
    bias: bool = True

    def __post_init__(self) -> None:
        """Validate the fields as soon as a config is made.

        Raises ValueError, naming the offending field and its value, when vocab_size,
        block_size, n_layer, n_head or d_model is not a positive integer, when d_model is
        not divisible by n_head, or when dropout is outside [0, 1).
        """
        # Hint: `isinstance(True, int)` is True in Python; booleans are not valid sizes.
        ### BEGIN SOLUTION
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "d_model"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"GPTConfig.{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_head != 0:
            raise ValueError(f"GPTConfig.d_model ({self.d_model}) must be divisible by n_head "
                             f"({self.n_head}); pick a d_model that is a multiple of n_head")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GPTConfig.dropout must be in [0, 1), got {self.dropout!r}")
        ### END SOLUTION


class MiniGPT(nn.Module):
    """A GPT-2-style decoder-only language model."""

    def __init__(self, config: GPTConfig):
        """Build the layers (names as in the module docstring) and initialise them.

        - store `config` as `self.config`;
        - `tok_emb`, `pos_emb`, `drop`, `blocks`, `ln_f`, `lm_head` as listed above, with
          `Block(config.d_model, config.n_head, config.dropout, config.bias)` for each block;
        - tie the head: `self.lm_head.weight` must be the very same Parameter object as
          `self.tok_emb.weight`, so the model holds (and counts) that matrix once;
        - initialise GPT-2 style: `self.apply(init_gpt_weights)` (every Linear and Embedding
          weight ~ N(0, 0.02²), biases 0; LayerNorms stay at weight 1, bias 0), then re-draw
          the residual projections — each block's `attn.proj.weight` and `mlp.down.weight` —
          from N(0, scaled_init_std(n_layer)²), GPT-2's 0.02 / sqrt(2·n_layer).

        With this initialisation the logits are close to 0, so the first loss is close to
        ln(V): the model starts out guessing uniformly.
        """
        super().__init__()
        ### BEGIN SOLUTION
        self.config = config
        C = config.d_model
        self.tok_emb = nn.Embedding(config.vocab_size, C)
        self.pos_emb = nn.Embedding(config.block_size, C)
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(
            [Block(C, config.n_head, config.dropout, config.bias) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(C, bias=config.bias)
        self.lm_head = nn.Linear(C, config.vocab_size, bias=False)
        self.lm_head.weight = self.tok_emb.weight  # weight tying: one (V, C) matrix, used twice
        self.apply(init_gpt_weights)
        residual_std = scaled_init_std(config.n_layer)
        for block in self.blocks:
            nn.init.normal_(block.attn.proj.weight, mean=0.0, std=residual_std)
            nn.init.normal_(block.mlp.down.weight, mean=0.0, std=residual_std)
        ### END SOLUTION

    def forward(self, idx: torch.Tensor, targets: torch.Tensor | None = None):
        """Logits for every position, and the loss when targets are given.

        idx:     (B, T) int64 token ids, 1 ≤ T ≤ config.block_size.
        targets: optional (B, T) int64; targets[b, t] is the token that should follow
                 idx[b, :t+1]. Positions whose target is -100 are ignored.
        Returns (logits, loss):
            logits (B, T, V) float — logits[b, t] depends only on idx[b, :t+1] (causal);
            loss   a scalar tensor: the mean cross-entropy over the positions whose target
                   is not -100 (ignored positions count neither in the sum nor in the
                   divisor), or None when targets is None.
        Computation: x = drop(tok_emb(idx) + pos_emb(positions 0 … T−1)), then every block
        in order, then ln_f, then lm_head.
        Raises ValueError when T exceeds config.block_size (crop the context first).
        """
        ### BEGIN SOLUTION
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(f"sequence length {T} exceeds block_size {self.config.block_size}; "
                             f"crop the input to the last block_size tokens")
        pos = torch.arange(T, device=idx.device)                # (T,)
        x = self.drop(self.tok_emb(idx) + self.pos_emb(pos))    # (B, T, C)
        for block in self.blocks:
            x = block(x)                                        # (B, T, C)
        x = self.ln_f(x)                                        # (B, T, C)
        logits = self.lm_head(x)                                # (B, T, V)
        loss = None
        if targets is not None:
            loss = F.cross_entropy(logits.view(B * T, -1), targets.reshape(B * T), ignore_index=-100)
        return logits, loss
        ### END SOLUTION


def count_parameters(config: GPTConfig) -> int:
    """The number of parameters of MiniGPT(config), from a closed-form formula.

    Counts the token embeddings (V·C), the position embeddings (block_size·C), the L
    blocks (see `llmlab.lib.nn.block_parameter_count`), and the final LayerNorm (2·C with bias,
    C without). The tied LM head adds nothing: its weight is the token embedding, counted
    once — as `sum(p.numel() for p in model.parameters())` counts it.
    Must not build the model (GPT-2 small would take half a gigabyte): GPT-2 small's config
    gives 124,439,808.
    """
    ### BEGIN SOLUTION
    C = config.d_model
    embeddings = config.vocab_size * C + config.block_size * C
    blocks = config.n_layer * block_parameter_count(C, config.bias)
    final_norm = 2 * C if config.bias else C
    return embeddings + blocks + final_norm
    ### END SOLUTION


def get_batch(data: torch.Tensor, batch_size: int, block_size: int,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """A random batch of training windows from a token stream.

    data:  (N,) int64 token ids, N ≥ block_size + 1.
    Returns (x, y), both (batch_size, block_size) int64:
        x[b] = data[s_b : s_b + block_size]
        y[b] = data[s_b + 1 : s_b + block_size + 1]   (the inputs shifted by one: the targets)
    where the start positions s_b are independent and uniform on {0, …, N − block_size − 1}
    (every window that has a full target fits). All randomness comes from `generator`
    (the global RNG when it is None), so a seeded generator gives a reproducible batch.
    Raises ValueError when data is not 1-D or holds fewer than block_size + 1 tokens.
    """
    ### BEGIN SOLUTION
    if data.dim() != 1:
        raise ValueError(f"data must be a 1-D tensor of token ids, got shape {tuple(data.shape)}")
    if data.numel() < block_size + 1:
        raise ValueError(f"data holds {data.numel()} tokens, but a window of block_size {block_size} "
                         f"needs block_size + 1 = {block_size + 1}; use more data or a smaller block_size")
    starts = torch.randint(data.numel() - block_size, (batch_size,), generator=generator)  # (B,)
    offsets = torch.arange(block_size)                                                     # (T,)
    x = data[starts[:, None] + offsets]                                                    # (B, T)
    y = data[starts[:, None] + offsets + 1]                                                # (B, T)
    return x, y
    ### END SOLUTION


def generate(model: nn.Module, idx: torch.Tensor, max_new_tokens: int, temperature: float = 1.0,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Extend each row of `idx` by `max_new_tokens` tokens, one at a time.

    model: called as `model(context)` with a (B, t) int64 context, returns (logits, loss);
           its `model.config.block_size` is the longest context it accepts.
    idx:   (B, T0) int64 prompt; T0 may exceed block_size.
    Each step feeds the model the last `block_size` tokens only (the context is cropped
    from the left), takes the logits at the LAST position, and appends one token per row:
        temperature > 0:  a sample from softmax(logits / temperature), drawn with `generator`;
        temperature == 0: greedy, the argmax (ties go to the lowest id).
    Returns (B, T0 + max_new_tokens) int64, starting with idx unchanged.
    Runs without autograd (torch.no_grad) and with the model in eval mode (no dropout);
    the model's previous train/eval mode is restored on return.
    Raises ValueError when temperature < 0 or max_new_tokens < 0.
    """
    ### BEGIN SOLUTION
    if temperature < 0:
        raise ValueError(f"temperature must be ≥ 0 (0 means greedy), got {temperature}")
    if max_new_tokens < 0:
        raise ValueError(f"max_new_tokens must be ≥ 0, got {max_new_tokens}")
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            for _ in range(max_new_tokens):
                context = idx[:, -model.config.block_size:]               # (B, ≤ block_size)
                logits, _ = model(context)                                # (B, t, V)
                logits = logits[:, -1, :]                                 # (B, V)
                if temperature == 0:
                    next_id = logits.argmax(dim=-1, keepdim=True)         # (B, 1)
                else:
                    probs = F.softmax(logits / temperature, dim=-1)       # (B, V)
                    next_id = torch.multinomial(probs, 1, generator=generator)  # (B, 1)
                idx = torch.cat([idx, next_id], dim=1)                    # (B, t + 1)
    finally:
        model.train(was_training)
    return idx
    ### END SOLUTION


def train(model: nn.Module, data: torch.Tensor, steps: int, batch_size: int, block_size: int,
          lr: float = 1e-3, generator: torch.Generator | None = None) -> list[float]:
    """Train `model` on random batches of `data`; return the loss of every step.

    Puts the model in train mode, makes ONE optimizer for the whole run,
    `torch.optim.AdamW(model.parameters(), lr=lr)` (PyTorch's other defaults: betas
    (0.9, 0.999), eps 1e-8, weight_decay 0.01), then for each of `steps` steps:
        x, y = get_batch(data, batch_size, block_size, generator)   # one call per step
        _, loss = model(x, y)
        clear the old gradients, loss.backward(), optimizer.step()
    Returns a list of `steps` Python floats: the loss of each step's batch, measured before
    that step's update.
    """
    ### BEGIN SOLUTION
    model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=lr)
    losses = []
    for _ in range(steps):
        x, y = get_batch(data, batch_size, block_size, generator)   # (B, T), (B, T)
        _, loss = model(x, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    return losses
    ### END SOLUTION
