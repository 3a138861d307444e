"""Topic 08: BERT — an encoder-only Transformer, pretrained by masked language modelling.

A GPT reads left to right and predicts the next token. BERT reads the whole sequence at
once — every position attends to every other real position, before and after it — and is
trained to recover tokens that were hidden from it (masked language modelling, MLM). Around
the encoder sit the pieces that make that work: the 80/10/10 masking rule (`mlm_mask`),
padding (`attention_mask`), segment embeddings for sentence pairs, the MLM head whose
decoder shares the token-embedding matrix, the `[CLS]` classifier and the MLM loss.

Shapes: B batch, T sequence length (T ≤ max_len), C = d_model, V = vocab_size,
H heads, D = C // H head size.

Conventions, fixed for the whole topic:
  - attention_mask is a (B, T) bool tensor, True = a REAL token, False = padding. A query
    never attends to a padding key; every row must hold at least one real token.
  - segment_ids are int64 in [0, n_segments): 0 for the first sentence (and its [CLS]),
    1 for the second; None means "all segment 0".
  - labels use -100 for "no prediction here" (the loss ignores those positions).
  - the special ids ([PAD], [CLS], [SEP], [MASK], ...) are chosen by the caller.

Attribute names are part of the contract (reference weights are loaded by name):

    BertEmbeddings   tok_emb (V, C), pos_emb (max_len, C), seg_emb (n_segments, C), ln, drop
    EncoderSelfAttention  qkv Linear(C, 3C), proj Linear(C, C), n_heads
    EncoderBlock     ln1, attn, ln2, mlp (llmlab.lib.nn.MLP), drop           (given)
    BertEncoder      embeddings, blocks (ModuleList of EncoderBlock), ln_f
    MLMHead          dense Linear(C, C), ln LayerNorm(C), decoder Linear(C, V) (with bias)
    BertForMaskedLM  encoder, mlm_head (mlm_head.decoder.weight IS the token-embedding matrix)
    ClsClassifier    pooler Linear(C, C), drop, out Linear(C, n_classes)
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.lib.nn import MLP, init_gpt_weights


@dataclass
class BertConfig:
    """The hyperparameters of a BERT (given: validated for you).

    vocab_size  V, number of token ids (special ids included)
    max_len     the longest sequence the model accepts (rows of the position table)
    n_layer     number of encoder blocks
    n_head      attention heads per block; must divide d_model
    d_model     C, the width of the residual stream
    n_segments  rows of the segment table (BERT: 2, sentence A and sentence B)
    dropout     dropout probability in [0, 1)
    """

    vocab_size: int
    max_len: int
    n_layer: int
    n_head: int
    d_model: int
    n_segments: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "max_len", "n_layer", "n_head", "d_model", "n_segments"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"BertConfig.{name} must be a positive integer, got {value!r}")
        if self.d_model % self.n_head != 0:
            raise ValueError(f"BertConfig.d_model ({self.d_model}) must be divisible by n_head ({self.n_head})")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"BertConfig.dropout must be in [0, 1), got {self.dropout!r}")


def mlm_mask(input_ids: torch.Tensor, mask_prob: float, special_ids, vocab_size: int, mask_id: int,
             generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Choose the positions BERT must predict and corrupt the input with the 80/10/10 rule.

    input_ids:   int64 tensor of any shape (usually (B, T)); it is NOT modified.
    mask_prob:   the probability in [0, 1] that a position is chosen (BERT uses 0.15).
    special_ids: ids that are never chosen ([PAD], [CLS], [SEP], [MASK], ...): a list, tuple
                 or set of ints, possibly empty.
    vocab_size:  V; random replacements are uniform on {0, …, V − 1} — the whole vocabulary,
                 special ids included, as BERT and Hugging Face draw them.
    mask_id:     the id of [MASK], in [0, V).
    generator:   all randomness comes from it (the global RNG when it is None).

    Every position whose id is not in special_ids is chosen independently with probability
    mask_prob. Each chosen position is then, independently of everything else,
        replaced by mask_id            with probability 0.8,
        replaced by a random id        with probability 0.1 (it may by chance equal the
                                       original id, or mask_id),
        left unchanged                 with probability 0.1.
    Positions that are not chosen are never changed.
    Returns (corrupted, labels), two new int64 tensors of input_ids' shape:
        corrupted  input_ids with the replacements above;
        labels     the ORIGINAL id at every chosen position, -100 everywhere else.
    Raises ValueError when mask_prob is outside [0, 1], when vocab_size < 1, or when mask_id
    is outside [0, vocab_size).
    """
    # Hint: draw one uniform number per position to choose, and one more per position to
    # pick among mask / random / keep; `torch.where` builds the outputs without in-place edits.
    ### BEGIN SOLUTION
    if not 0.0 <= mask_prob <= 1.0:
        raise ValueError(f"mask_prob must be in [0, 1], got {mask_prob!r}")
    if vocab_size < 1:
        raise ValueError(f"vocab_size must be at least 1, got {vocab_size!r}")
    if not 0 <= mask_id < vocab_size:
        raise ValueError(f"mask_id must be in [0, vocab_size) = [0, {vocab_size}), got {mask_id!r}")
    special = torch.isin(input_ids, torch.tensor(sorted(special_ids), dtype=input_ids.dtype))
    chosen = (torch.rand(input_ids.shape, generator=generator) < mask_prob) & ~special
    labels = torch.where(chosen, input_ids, torch.full_like(input_ids, -100))
    action = torch.rand(input_ids.shape, generator=generator)                  # 80 / 10 / 10
    random_ids = torch.randint(vocab_size, input_ids.shape, generator=generator)
    corrupted = torch.where(chosen & (action < 0.8), torch.full_like(input_ids, mask_id), input_ids)
    corrupted = torch.where(chosen & (action >= 0.8) & (action < 0.9), random_ids, corrupted)
    return corrupted, labels
    ### END SOLUTION


class BertEmbeddings(nn.Module):
    """What a token is, where it is, and which segment it belongs to, summed and normalised."""

    def __init__(self, config: BertConfig):
        """tok_emb nn.Embedding(V, C), pos_emb nn.Embedding(max_len, C), seg_emb
        nn.Embedding(n_segments, C), ln nn.LayerNorm(C), drop nn.Dropout(config.dropout);
        store `config` as `self.config`."""
        super().__init__()
        ### BEGIN SOLUTION
        self.config = config
        C = config.d_model
        self.tok_emb = nn.Embedding(config.vocab_size, C)
        self.pos_emb = nn.Embedding(config.max_len, C)
        self.seg_emb = nn.Embedding(config.n_segments, C)
        self.ln = nn.LayerNorm(C)
        self.drop = nn.Dropout(config.dropout)
        ### END SOLUTION

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) int64 ids -> (B, T, C) embeddings.

        input_ids:   (B, T) int64, 1 ≤ T ≤ config.max_len.
        segment_ids: (B, T) int64 in [0, n_segments), or None: every position in segment 0.
        Returns drop(ln(tok_emb(input_ids) + pos_emb(positions 0 … T−1) + seg_emb(segment_ids))),
        in the dtype of the parameters.
        Raises ValueError when T exceeds config.max_len, or when segment_ids is given with a
        shape other than input_ids'.
        """
        ### BEGIN SOLUTION
        B, T = input_ids.shape
        if T > self.config.max_len:
            raise ValueError(f"sequence length {T} exceeds max_len {self.config.max_len}")
        if segment_ids is None:
            segment_ids = torch.zeros_like(input_ids)
        elif segment_ids.shape != input_ids.shape:
            raise ValueError(f"segment_ids has shape {tuple(segment_ids.shape)}, "
                             f"expected input_ids' shape {tuple(input_ids.shape)}")
        pos = torch.arange(T, device=input_ids.device)                                   # (T,)
        x = self.tok_emb(input_ids) + self.pos_emb(pos) + self.seg_emb(segment_ids)      # (B, T, C)
        return self.drop(self.ln(x))
        ### END SOLUTION


class EncoderSelfAttention(nn.Module):
    """Multi-head BIDIRECTIONAL self-attention with a padding mask (no causal mask)."""

    def __init__(self, d_model: int, n_heads: int):
        """qkv nn.Linear(d_model, 3·d_model), proj nn.Linear(d_model, d_model), and the number
        of heads as `self.n_heads`. Raises ValueError when n_heads does not divide d_model."""
        super().__init__()
        ### BEGIN SOLUTION
        if d_model % n_heads != 0:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.proj = nn.Linear(d_model, d_model)
        ### END SOLUTION

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T, C) -> (B, T, C), in x's dtype (float32 or float64, that of the parameters).

        attention_mask: (B, T) bool, True = real token, False = padding; None = all real.
        q, k, v = qkv(x).split(C, dim=-1); each is viewed as (B, T, H, D) and transposed to
        (B, H, T, D), so head h uses features [h·D, (h+1)·D). In every head, query t of row b
        attends to ALL real keys of row b — before and after t — with the weights
        softmax over keys of q·k / sqrt(D); a padding key gets weight exactly 0. Padding
        query positions are computed like the others (they attend to the real keys too);
        callers ignore them. The heads' outputs are merged back to (B, T, C) in head order,
        then `proj` is applied.
        You may use F.scaled_dot_product_attention (mind what its boolean attn_mask means).
        Raises ValueError when attention_mask is not a bool tensor of shape (B, T), or when
        a row of it holds no real token (that row's attention would be undefined).
        """
        ### BEGIN SOLUTION
        B, T, C = x.shape
        if attention_mask is not None:
            if attention_mask.dtype != torch.bool or tuple(attention_mask.shape) != (B, T):
                raise ValueError(f"attention_mask must be a bool tensor of shape {(B, T)} (True = real token), "
                                 f"got {attention_mask.dtype} of shape {tuple(attention_mask.shape)}")
            if not bool(attention_mask.any(dim=-1).all()):
                raise ValueError("every row of attention_mask needs at least one real token (True)")
            attention_mask = attention_mask[:, None, None, :]                     # (B, 1, 1, T): keys
        q, k, v = self.qkv(x).split(C, dim=-1)                                     # 3 × (B, T, C)
        q, k, v = (t.view(B, T, self.n_heads, C // self.n_heads).transpose(1, 2) for t in (q, k, v))  # (B, H, T, D)
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=attention_mask)      # (B, H, T, D)
        y = y.transpose(1, 2).reshape(B, T, C)                                     # (B, T, C)
        return self.proj(y)
        ### END SOLUTION


class EncoderBlock(nn.Module):
    """Pre-norm encoder block (given): x + attn(ln1(x), mask), then x + mlp(ln2(x)).

    The same block as `llmlab.lib.nn.Block`, except that its attention is the bidirectional
    `EncoderSelfAttention` above and it passes the padding mask on."""

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0):
        super().__init__()
        self.ln1 = nn.LayerNorm(d_model)
        self.attn = EncoderSelfAttention(d_model, n_heads)
        self.ln2 = nn.LayerNorm(d_model)
        self.mlp = MLP(d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        x = x + self.drop(self.attn(self.ln1(x), attention_mask))
        x = x + self.drop(self.mlp(self.ln2(x)))
        return x


class BertEncoder(nn.Module):
    """Embeddings, a stack of bidirectional encoder blocks, a final LayerNorm."""

    def __init__(self, config: BertConfig):
        """embeddings BertEmbeddings(config), blocks nn.ModuleList of config.n_layer
        EncoderBlock(d_model, n_head, dropout), ln_f nn.LayerNorm(C); store `self.config`.
        Initialise BERT style with `self.apply(init_gpt_weights)`: every Linear and
        Embedding weight ~ N(0, 0.02²), biases 0, LayerNorms weight 1 and bias 0."""
        super().__init__()
        ### BEGIN SOLUTION
        self.config = config
        self.embeddings = BertEmbeddings(config)
        self.blocks = nn.ModuleList(
            [EncoderBlock(config.d_model, config.n_head, config.dropout) for _ in range(config.n_layer)])
        self.ln_f = nn.LayerNorm(config.d_model)
        self.apply(init_gpt_weights)
        ### END SOLUTION

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None) -> torch.Tensor:
        """(B, T) int64 ids -> (B, T, C) hidden states: ln_f(blocks(embeddings(ids, segments))).

        segment_ids and attention_mask as in BertEmbeddings and EncoderSelfAttention (None =
        segment 0 / all real); the same mask goes to every block. Because no block lets a
        real position see a padding key, the hidden states at real positions do not depend
        on the ids, the segments or the number of the padding positions after them.
        Raises ValueError as BertEmbeddings.forward and EncoderSelfAttention.forward do.
        """
        ### BEGIN SOLUTION
        x = self.embeddings(input_ids, segment_ids)          # (B, T, C)
        for block in self.blocks:
            x = block(x, attention_mask)                     # (B, T, C)
        return self.ln_f(x)
        ### END SOLUTION


class MLMHead(nn.Module):
    """From hidden states to a score for every vocabulary entry (BERT's prediction head)."""

    def __init__(self, config: BertConfig):
        """dense nn.Linear(C, C), ln nn.LayerNorm(C), decoder nn.Linear(C, V) WITH a bias;
        initialised with `self.apply(init_gpt_weights)` (decoder bias 0)."""
        super().__init__()
        ### BEGIN SOLUTION
        C = config.d_model
        self.dense = nn.Linear(C, C)
        self.ln = nn.LayerNorm(C)
        self.decoder = nn.Linear(C, config.vocab_size)
        self.apply(init_gpt_weights)
        ### END SOLUTION

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(..., C) -> (..., V) logits: decoder(ln(gelu(dense(hidden)))), exact GELU
        (F.gelu's default, not the tanh approximation)."""
        ### BEGIN SOLUTION
        return self.decoder(self.ln(F.gelu(self.dense(hidden))))
        ### END SOLUTION


def mlm_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """The masked-language-modelling loss.

    logits: (..., V) float; labels: (...) int64 (logits' shape without the last axis), each
            either -100 (ignore) or an id in [0, V).
    Returns a 0-d tensor in logits' dtype: the mean cross-entropy over the positions whose
    label is not -100 — ignored positions count neither in the sum nor in the divisor.
    When every label is -100 (nothing was masked) it returns 0, still connected to `logits`
    (its gradient is zero), instead of NaN. You may use F.cross_entropy.
    Raises ValueError when labels.shape != logits.shape[:-1].
    """
    ### BEGIN SOLUTION
    if tuple(labels.shape) != tuple(logits.shape[:-1]):
        raise ValueError(f"labels has shape {tuple(labels.shape)}, expected logits' shape without "
                         f"the vocabulary axis, {tuple(logits.shape[:-1])}")
    flat_logits = logits.reshape(-1, logits.shape[-1])                         # (N, V)
    flat_labels = labels.reshape(-1)                                           # (N,)
    if not bool((flat_labels != -100).any()):
        return logits.sum() * 0.0
    return F.cross_entropy(flat_logits, flat_labels, ignore_index=-100)
    ### END SOLUTION


class BertForMaskedLM(nn.Module):
    """The pretraining model: a BertEncoder and an MLMHead whose decoder is tied to the
    token embeddings."""

    def __init__(self, config: BertConfig):
        """encoder BertEncoder(config), mlm_head MLMHead(config); then tie:
        `mlm_head.decoder.weight` must be the very same Parameter as
        `encoder.embeddings.tok_emb.weight` (the decoder keeps its own bias); store `self.config`."""
        super().__init__()
        ### BEGIN SOLUTION
        self.config = config
        self.encoder = BertEncoder(config)
        self.mlm_head = MLMHead(config)
        self.mlm_head.decoder.weight = self.encoder.embeddings.tok_emb.weight   # one (V, C) matrix
        ### END SOLUTION

    def forward(self, input_ids: torch.Tensor, segment_ids: torch.Tensor | None = None,
                attention_mask: torch.Tensor | None = None, labels: torch.Tensor | None = None):
        """Returns (logits, loss): logits (B, T, V) = mlm_head(encoder(input_ids, segment_ids,
        attention_mask)); loss = mlm_loss(logits, labels) when labels (B, T) are given, else None."""
        ### BEGIN SOLUTION
        logits = self.mlm_head(self.encoder(input_ids, segment_ids, attention_mask))   # (B, T, V)
        loss = None if labels is None else mlm_loss(logits, labels)
        return logits, loss
        ### END SOLUTION


class ClsClassifier(nn.Module):
    """A sequence classifier on top of the encoder, reading the [CLS] position (position 0)."""

    def __init__(self, d_model: int, n_classes: int, dropout: float = 0.0):
        """pooler nn.Linear(d_model, d_model), drop nn.Dropout(dropout),
        out nn.Linear(d_model, n_classes). Raises ValueError when n_classes < 1."""
        super().__init__()
        ### BEGIN SOLUTION
        if n_classes < 1:
            raise ValueError(f"n_classes must be at least 1, got {n_classes!r}")
        self.pooler = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)
        self.out = nn.Linear(d_model, n_classes)
        ### END SOLUTION

    def forward(self, hidden: torch.Tensor) -> torch.Tensor:
        """(B, T, C) hidden states -> (B, n_classes) logits:
        out(drop(tanh(pooler(hidden[:, 0])))) — only the first ([CLS]) position is read."""
        ### BEGIN SOLUTION
        cls = hidden[:, 0]                                   # (B, C)
        return self.out(self.drop(torch.tanh(self.pooler(cls))))
        ### END SOLUTION
