"""Topic 15: decoding — turning a language model's next-token logits into text.

A language model gives, for a context, one vector of logits over the vocabulary: a
distribution for the next token. Decoding chooses tokens from it, one at a time:

- **greedy** takes the most likely token; **sampling** draws from the softmax, reshaped by a
  *temperature* and truncated by *filters* (top-k, top-p, min-p) that remove the unlikely
  tail; a *repetition penalty* (CTRL's rule) makes tokens already in the context less likely;
- **stop conditions** end a sequence at an end-of-sequence token or a stop sequence;
- **beam search** keeps the `width` most likely partial sequences instead of one, and picks
  the best finished one under a length penalty;
- **batched generation** runs several prompts of different lengths at once, padded on the
  left, with position ids and an attention mask that make every row behave as if alone;
- a **chat template** turns a conversation into the one string the model reads.

Conventions. Logits are (..., V) float32 or float64, the vocabulary on the last axis; a
filtered-out token has the logit −inf (probability exactly 0). Token ids are int64 in
[0, V). A "model" is an nn.Module called as

    logits, loss = model(ids, positions=positions, attention_mask=attention_mask)

with ids (B, T) int64, positions (B, T) int64 (the position of each token in its own
sequence), attention_mask (B, T) bool (True = a real token, False = padding nothing attends
to); logits is (B, T, V) and logits[b, t] predicts the token after ids[b, :t + 1]. The given
`llmlab.lib.llama.TinyLlama` has this signature. Every decoding routine calls the model
with all three arguments, under torch.no_grad(), on the whole sequence so far (no cache).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

NEG_INF = float("-inf")


# ---------------------------------------------------------------- choosing one token

def greedy(logits: torch.Tensor) -> torch.Tensor:
    """The most likely token of every row.

    logits: (..., V) float32 or float64, V ≥ 1; entries may be −inf (filtered out), every
        row has at least one finite entry.
    Returns (...) int64 (a 0-d tensor for 1-D logits): the index of the largest logit of
    each row. Ties go to the lowest id.
    """
    ### BEGIN SOLUTION
    return logits.argmax(dim=-1)
    ### END SOLUTION


def top_k_filter(logits: torch.Tensor, k: int) -> torch.Tensor:
    """Keep the k largest logits of every row; set the others to −inf.

    logits: (..., V) float32 or float64, at least one finite entry per row.
    k: int ≥ 1; k ≥ V keeps every token.
    A token is kept when its logit is ≥ the k-th largest logit of its row, so tokens tied
    with the k-th largest are all kept (a row may keep more than k). Kept logits are
    returned unchanged, with their gradient (1 for kept, 0 for removed entries).
    Returns a new tensor of the shape and dtype of `logits` (the input is not modified).
    Raises ValueError when k is not an int ≥ 1 (a bool is not an int here).
    """
    ### BEGIN SOLUTION
    if isinstance(k, bool) or not isinstance(k, int) or k < 1:
        raise ValueError(f"top_k_filter: k must be an int ≥ 1, got {k!r}")
    if k >= logits.shape[-1]:
        return logits.clone()
    kth = logits.topk(k, dim=-1).values[..., -1:]                    # (..., 1)
    return logits.masked_fill(logits < kth, NEG_INF)
    ### END SOLUTION


def top_p_filter(logits: torch.Tensor, p: float) -> torch.Tensor:
    """Nucleus filtering: keep the smallest set of most likely tokens whose mass is ≥ p.

    logits: (..., V) float32 or float64, at least one finite entry per row.
    p: float with 0 < p ≤ 1.
    Per row: probs = softmax(logits) (in the logits' dtype); rank the tokens by descending
    probability, ties by ascending id (a stable sort); the token of rank r is kept when the
    cumulative probability of the tokens ranked before it, probs[rank 0] + … + probs[rank
    r − 1] (summed in rank order), is < p. So the token whose probability makes the mass
    reach or cross p is kept, and the most likely token is always kept. Kept logits are
    returned unchanged (not renormalised), removed ones become −inf; gradients as for
    top_k_filter.
    Returns a new tensor of the shape and dtype of `logits`.
    Raises ValueError when p is not in (0, 1].
    """
    # Hint: sort once; the cumulative sum *before* each rank is cumsum minus nothing at rank 0,
    # i.e. the cumulative sum shifted right by one. Map the decision back with scatter.
    ### BEGIN SOLUTION
    if not 0.0 < p <= 1.0:
        raise ValueError(f"top_p_filter: p must be in (0, 1], got {p!r}")
    probs = logits.softmax(dim=-1)                                              # (..., V)
    sorted_probs, order = probs.sort(dim=-1, descending=True, stable=True)     # (..., V)
    mass = sorted_probs.cumsum(dim=-1)                                          # (..., V)
    before = torch.cat([torch.zeros_like(mass[..., :1]), mass[..., :-1]], dim=-1)
    remove_sorted = before >= p                                                 # (..., V)
    remove = remove_sorted.scatter(-1, order, remove_sorted)                    # back to id order
    return logits.masked_fill(remove, NEG_INF)
    ### END SOLUTION


def min_p_filter(logits: torch.Tensor, min_p: float) -> torch.Tensor:
    """Keep the tokens at least min_p times as likely as the most likely token.

    logits: (..., V) float32 or float64, at least one finite entry per row.
    min_p: float with 0 ≤ min_p ≤ 1.
    Per row: probs = softmax(logits); a token is kept when probs ≥ min_p · max(probs) (so
    min_p = 0 keeps every token, min_p = 1 keeps the tokens tied with the most likely one).
    Kept logits are returned unchanged, removed ones become −inf; gradients as for
    top_k_filter. Returns a new tensor of the shape and dtype of `logits`.
    Raises ValueError when min_p is not in [0, 1].
    """
    ### BEGIN SOLUTION
    if not 0.0 <= min_p <= 1.0:
        raise ValueError(f"min_p_filter: min_p must be in [0, 1], got {min_p!r}")
    probs = logits.softmax(dim=-1)                                      # (..., V)
    threshold = min_p * probs.max(dim=-1, keepdim=True).values          # (..., 1)
    return logits.masked_fill(probs < threshold, NEG_INF)
    ### END SOLUTION


def repetition_penalty(logits: torch.Tensor, context: torch.Tensor, penalty: float,
                       context_mask: torch.Tensor | None = None) -> torch.Tensor:
    """CTRL's repetition penalty: make the tokens already in the context less likely.

    logits:  (B, V) float32 or float64.
    context: (B, T) int64 ids in [0, V), T ≥ 0: the tokens seen so far by each row.
    penalty: float > 0 (1 changes nothing; > 1 discourages repetition).
    context_mask: optional (B, T) bool; context[b, t] counts only where it is True (padding
        is not context). None means every entry counts.
    For every id v that occurs in row b's counted context (once or many times: the penalty
    is applied once per id, not once per occurrence):
        logits[b, v] < 0  ->  logits[b, v] · penalty
        logits[b, v] ≥ 0  ->  logits[b, v] / penalty
    (dividing a negative logit would make the token MORE likely). Other entries are
    unchanged. Differentiable in `logits`. Returns a new tensor of the shape and dtype of
    `logits`.
    Raises ValueError when penalty ≤ 0, when logits is not 2-D or context not 2-D with the
    same B, or when context_mask's shape differs from context's.
    """
    ### BEGIN SOLUTION
    if penalty <= 0:
        raise ValueError(f"repetition_penalty: penalty must be > 0, got {penalty!r}")
    if logits.dim() != 2 or context.dim() != 2 or context.shape[0] != logits.shape[0]:
        raise ValueError(f"repetition_penalty: need logits (B, V) and context (B, T), got "
                         f"{tuple(logits.shape)} and {tuple(context.shape)}")
    if context_mask is None:
        context_mask = torch.ones_like(context, dtype=torch.bool)
    elif context_mask.shape != context.shape:
        raise ValueError(f"repetition_penalty: context_mask has shape {tuple(context_mask.shape)}, "
                         f"context {tuple(context.shape)}")
    counts = torch.zeros(logits.shape, dtype=torch.long).scatter_add_(-1, context, context_mask.long())
    seen = counts > 0                                                                     # (B, V)
    penalised = torch.where(logits < 0, logits * penalty, logits / penalty)               # (B, V)
    return torch.where(seen, penalised, logits)
    ### END SOLUTION


def sampling_probs(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
                   top_p: float | None = None, min_p: float | None = None) -> torch.Tensor:
    """The distribution `sample` draws from.

    logits: (..., V) float32 or float64. temperature: float > 0.
    The steps, in this order, each on the output of the one before:
        1. scaled = logits / temperature;
        2. top_k_filter(·, top_k)  unless top_k is None;
        3. top_p_filter(·, top_p)  unless top_p is None — so top-p measures mass in the
           distribution already tempered and renormalised over the top-k tokens;
        4. min_p_filter(·, min_p)  unless min_p is None;
        5. softmax over the last axis (removed tokens get probability exactly 0).
    Returns (..., V) probabilities in the logits' dtype (every row sums to 1),
    differentiable in `logits`.
    Raises ValueError when temperature ≤ 0 (and the filters' own ValueErrors).
    """
    ### BEGIN SOLUTION
    if temperature <= 0:
        raise ValueError(f"sampling_probs: temperature must be > 0, got {temperature!r}")
    scaled = logits / temperature                                   # (..., V)
    if top_k is not None:
        scaled = top_k_filter(scaled, top_k)
    if top_p is not None:
        scaled = top_p_filter(scaled, top_p)
    if min_p is not None:
        scaled = min_p_filter(scaled, min_p)
    return scaled.softmax(dim=-1)
    ### END SOLUTION


def sample(logits: torch.Tensor, temperature: float = 1.0, top_k: int | None = None,
           top_p: float | None = None, min_p: float | None = None,
           generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one token per row.

    logits: (..., V) float32 or float64.
    temperature > 0: one independent draw per row from sampling_probs(logits, temperature,
        top_k, top_p, min_p); all randomness comes from `generator` (the global RNG when it is
        None), so identically seeded generators give identical draws.
    temperature == 0: greedy(logits) — the filters never remove the most likely token, so
        they change nothing; no random numbers are drawn.
    Returns (...) int64 (a 0-d tensor for 1-D logits).
    Raises ValueError when temperature < 0 (and the filters' own ValueErrors).
    """
    ### BEGIN SOLUTION
    if temperature < 0:
        raise ValueError(f"sample: temperature must be ≥ 0 (0 means greedy), got {temperature!r}")
    if temperature == 0:
        return greedy(logits)
    probs = sampling_probs(logits, temperature, top_k, top_p, min_p)      # (..., V)
    flat = probs.reshape(-1, probs.shape[-1])                             # (N, V)
    draws = torch.multinomial(flat, 1, generator=generator)               # (N, 1)
    return draws.reshape(probs.shape[:-1])
    ### END SOLUTION


# ---------------------------------------------------------------- generating sequences

def should_stop(generated: list[int], eos_id: int | None = None, stop_sequences=()) -> bool:
    """Whether generation must stop after the tokens generated so far.

    generated: the generated token ids so far (the prompt excluded), a list of ints.
    eos_id: the end-of-sequence id, or None for none.
    stop_sequences: a list or tuple of stop sequences, each a non-empty list or tuple of ids.
    True when eos_id is not None and the last generated token is eos_id, or when the
    generated tokens end with one of the stop sequences (all of it generated; a match that
    would need prompt tokens does not count). False for an empty `generated`.
    Raises ValueError when a stop sequence is empty.
    """
    ### BEGIN SOLUTION
    for stop in stop_sequences:
        if len(stop) == 0:
            raise ValueError("should_stop: a stop sequence must not be empty")
    if not generated:
        return False
    if eos_id is not None and generated[-1] == eos_id:
        return True
    return any(len(generated) >= len(stop) and list(generated[-len(stop):]) == list(stop)
               for stop in stop_sequences)
    ### END SOLUTION


def generate(model: nn.Module, prompt: torch.Tensor, max_new: int, *, temperature: float = 1.0,
             top_k: int | None = None, top_p: float | None = None, min_p: float | None = None,
             rep_penalty: float = 1.0, eos_id: int | None = None, stop_sequences=(),
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Extend one prompt, one token at a time, until a stop condition or max_new tokens.

    prompt: (T0,) int64, T0 ≥ 1. max_new: int ≥ 0.
    Each step, with seq the (T,) sequence so far (prompt and generated tokens):
        1. logits = model(seq[None], positions=[[0, 1, …, T − 1]],
                          attention_mask=all True (1, T))[0][0, -1]          # (V,)
        2. if rep_penalty != 1: logits = repetition_penalty(logits[None], seq[None],
           rep_penalty)[0] (the prompt counts as context);
        3. token = sample(logits, temperature, top_k, top_p, min_p, generator);
        4. append it; stop if should_stop(generated tokens, eos_id, stop_sequences).
    The model runs under torch.no_grad(); the caller keeps T0 + max_new within the model's
    context length.
    Returns (T0 + n,) int64: the prompt followed by the n ≤ max_new generated tokens (the
    eos token or stop sequence that ended it included).
    Raises ValueError when prompt is not 1-D with T0 ≥ 1, or max_new < 0.
    """
    ### BEGIN SOLUTION
    if prompt.dim() != 1 or prompt.numel() == 0:
        raise ValueError(f"generate: prompt must be a non-empty 1-D tensor, got shape {tuple(prompt.shape)}")
    if max_new < 0:
        raise ValueError(f"generate: max_new must be ≥ 0, got {max_new}")
    seq = prompt.clone()
    generated: list[int] = []
    with torch.no_grad():
        for _ in range(max_new):
            T = seq.shape[0]
            positions = torch.arange(T)[None]                                  # (1, T)
            mask = torch.ones(1, T, dtype=torch.bool)                           # (1, T)
            logits = model(seq[None], positions=positions, attention_mask=mask)[0][0, -1]   # (V,)
            if rep_penalty != 1:
                logits = repetition_penalty(logits[None], seq[None], rep_penalty)[0]
            token = sample(logits, temperature, top_k, top_p, min_p, generator)
            seq = torch.cat([seq, token.reshape(1)])
            generated.append(int(token))
            if should_stop(generated, eos_id, stop_sequences):
                break
    return seq
    ### END SOLUTION


def beam_search(model: nn.Module, prompt: torch.Tensor, width: int, max_new: int, *,
                length_penalty: float = 1.0, eos_id: int | None = None) -> tuple[torch.Tensor, float]:
    """Beam search: the most likely continuation under a length penalty, `width` at a time.

    prompt: (T0,) int64, T0 ≥ 1. width: int ≥ 1. max_new: int ≥ 1.
    A hypothesis is the prompt plus n generated tokens; its log-probability s is the sum of
    log_softmax(logits of the position before each generated token), computed in float64
    (`logits.double()`), and its score is s / n ** length_penalty (length_penalty 0: the
    plain sum; 1: the mean log-probability per generated token).
    The algorithm, starting from one live hypothesis (the prompt, s = 0):
      for step = 1 … max_new:
        - every live hypothesis h (in order) is extended by every token v (in id order):
          candidate (h, v) with s_h + log p(v | h); the model sees each live sequence with
          positions 0 … T − 1 and an all-True mask;
        - the `width` candidates with the largest s are kept, over all live hypotheses
          together (ties: the earlier live hypothesis, then the lower token id);
        - a kept candidate ending in eos_id is finished (n = step) and never extended; the
          others are the new live hypotheses, in rank order;
        - stop when no live hypothesis is left.
      After the last step the live hypotheses are finished too (n = max_new).
    Returns (tokens, score): the finished hypothesis with the largest score, as a
    (T0 + n,) int64 tensor (prompt included, eos included), and its score as a Python float.
    Ties: the hypothesis finished first (earlier step; within a step, higher rank).
    With width 1 this is greedy decoding that stops at eos. With width ≥ V ** max_new no
    candidate is ever dropped, so the result is the best of all possible sequences.
    Runs under torch.no_grad().
    Raises ValueError when prompt is not 1-D with T0 ≥ 1, width < 1 or max_new < 1.
    """
    ### BEGIN SOLUTION
    if prompt.dim() != 1 or prompt.numel() == 0:
        raise ValueError(f"beam_search: prompt must be a non-empty 1-D tensor, got shape {tuple(prompt.shape)}")
    if width < 1 or max_new < 1:
        raise ValueError(f"beam_search: width and max_new must be ≥ 1, got {width} and {max_new}")
    live = prompt[None]                                              # (A, T)
    live_logp = torch.zeros(1, dtype=torch.float64)                  # (A,)
    finished: list[tuple[torch.Tensor, float, int]] = []             # (tokens, s, n)
    with torch.no_grad():
        for step in range(1, max_new + 1):
            A, T = live.shape
            positions = torch.arange(T).expand(A, T)
            mask = torch.ones(A, T, dtype=torch.bool)
            logits = model(live, positions=positions, attention_mask=mask)[0][:, -1]   # (A, V)
            logp = F.log_softmax(logits.double(), dim=-1)                               # (A, V)
            V = logp.shape[-1]
            candidates = (live_logp[:, None] + logp).flatten()                         # (A·V,) beam-major
            best = candidates.sort(descending=True, stable=True).indices[:width]
            keep_rows, keep_logp = [], []
            for i in best.tolist():
                a, v = divmod(i, V)
                seq = torch.cat([live[a], torch.tensor([v])])
                if eos_id is not None and v == eos_id:
                    finished.append((seq, float(candidates[i]), step))
                else:
                    keep_rows.append(seq)
                    keep_logp.append(candidates[i])
            if not keep_rows:
                break
            live, live_logp = torch.stack(keep_rows), torch.stack(keep_logp)
        else:                                                        # max_new steps, live ones left
            finished.extend((seq, float(s), max_new) for seq, s in zip(live, live_logp))
    scored = [(s / n ** length_penalty, seq) for seq, s, n in finished]
    best_score, best_seq = max(scored, key=lambda item: item[0])     # max keeps the first of ties
    return best_seq, best_score
    ### END SOLUTION


# ---------------------------------------------------------------- batches and chat

def left_pad(prompts, pad_id: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack prompts of different lengths into one batch, padded on the LEFT.

    prompts: a non-empty list or tuple of 1-D int64 tensors, each of length ≥ 1.
    pad_id: the id written into the padding (any id: the mask, not the id, marks padding).
    Returns (ids, attention_mask, positions), each (B, L) with L the longest length:
        ids[b]            = pad_id repeated L − len_b times, then prompts[b]   (int64)
        attention_mask[b] = False on the padding, True on the prompt           (bool)
        positions[b]      = 0 on the padding, then 0, 1, …, len_b − 1           (int64)
    so the last column holds every row's last prompt token, and each prompt token gets the
    position it has in its own sequence.
    Raises ValueError when prompts is empty or a prompt is not 1-D with length ≥ 1.
    """
    ### BEGIN SOLUTION
    if len(prompts) == 0:
        raise ValueError("left_pad: prompts must not be empty")
    for p in prompts:
        if p.dim() != 1 or p.numel() == 0:
            raise ValueError(f"left_pad: every prompt must be a non-empty 1-D tensor, got shape {tuple(p.shape)}")
    L = max(p.numel() for p in prompts)
    B = len(prompts)
    ids = torch.full((B, L), pad_id, dtype=torch.long)
    mask = torch.zeros(B, L, dtype=torch.bool)
    positions = torch.zeros(B, L, dtype=torch.long)
    for b, p in enumerate(prompts):
        n = p.numel()
        ids[b, L - n:] = p
        mask[b, L - n:] = True
        positions[b, L - n:] = torch.arange(n)
    return ids, mask, positions
    ### END SOLUTION


def generate_batch(model: nn.Module, prompts, max_new: int, *, pad_id: int, temperature: float = 1.0,
                   top_k: int | None = None, top_p: float | None = None, min_p: float | None = None,
                   rep_penalty: float = 1.0, eos_id: int | None = None, stop_sequences=(),
                   generator: torch.Generator | None = None) -> list[torch.Tensor]:
    """`generate` for several prompts at once: one model call per step for the whole batch.

    prompts: as for left_pad; max_new: int ≥ 0; the options as for generate.
    The batch starts as left_pad(prompts, pad_id). Each step calls the model once on the
    (B, L) ids with the attention mask and positions (a row's real tokens at positions 0,
    1, 2, … of its own sequence), takes the logits of the last column (B, V), applies the
    repetition penalty with the row's real tokens only as context (padding is not context),
    and draws one token per row with `sample`. A row that has met a stop condition takes no
    more tokens: it is extended by pad_id with the mask False (the model must ignore it).
    Generation ends after max_new steps or when every row has stopped.
    Returns a list of B (len_b + n_b,) int64 tensors: each prompt followed by its own
    generated tokens — with greedy decoding (temperature 0) exactly what
    generate(model, prompts[b], max_new, ...) returns for that prompt alone.
    Runs under torch.no_grad().
    Raises ValueError as left_pad does, and when max_new < 0.
    """
    ### BEGIN SOLUTION
    if max_new < 0:
        raise ValueError(f"generate_batch: max_new must be ≥ 0, got {max_new}")
    ids, mask, positions = left_pad(prompts, pad_id)                  # (B, L) each
    B = ids.shape[0]
    generated: list[list[int]] = [[] for _ in range(B)]
    done = torch.zeros(B, dtype=torch.bool)
    with torch.no_grad():
        for _ in range(max_new):
            logits = model(ids, positions=positions, attention_mask=mask)[0][:, -1]   # (B, V)
            if rep_penalty != 1:
                logits = repetition_penalty(logits, ids, rep_penalty, context_mask=mask)
            tokens = sample(logits, temperature, top_k, top_p, min_p, generator)       # (B,)
            tokens = torch.where(done, torch.full_like(tokens, pad_id), tokens)
            ids = torch.cat([ids, tokens[:, None]], dim=1)
            mask = torch.cat([mask, ~done[:, None]], dim=1)
            positions = torch.cat([positions, positions[:, -1:] + 1], dim=1)
            for b in range(B):
                if not done[b]:
                    generated[b].append(int(tokens[b]))
                    done[b] = should_stop(generated[b], eos_id, stop_sequences)
            if bool(done.all()):
                break
    return [torch.cat([p, torch.tensor(g, dtype=torch.long)]) for p, g in zip(prompts, generated)]
    ### END SOLUTION


CHAT_ROLES = ("system", "user", "assistant")


def apply_chat_template(messages, add_generation_prompt: bool = True) -> str:
    """Render a conversation as the one string a chat model reads.

    messages: a non-empty list or tuple of dicts, each with exactly the keys "role" and
        "content", both str. Roles: optionally one "system" message, first; then "user" and
        "assistant" alternating, starting with "user".
    Each message becomes  "<|" + role + "|>\\n" + content + "<|end|>\\n"  and the pieces are
    concatenated in order. With add_generation_prompt, "<|assistant|>\\n" is appended: the
    model writes the assistant's reply after it.
        [{"role": "user", "content": "Hi"}]  ->  "<|user|>\\nHi<|end|>\\n<|assistant|>\\n"
    Content is copied verbatim (newlines and any Unicode allowed, empty allowed).
    Raises ValueError when messages is empty; a message is not a dict with exactly those
    keys or has a non-str role or content; a role is unknown; the system message is not
    first; user and assistant do not alternate starting with user; a content contains "<|"
    or "|>" (it could forge a turn); or add_generation_prompt is True after an assistant
    message (the reply is already there).
    """
    ### BEGIN SOLUTION
    if len(messages) == 0:
        raise ValueError("apply_chat_template: messages must not be empty")
    parts = []
    expected = "user"
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or set(message) != {"role", "content"}:
            raise ValueError(f"apply_chat_template: message {i} must be a dict with exactly the keys "
                             f"'role' and 'content', got {message!r}")
        role, content = message["role"], message["content"]
        if not isinstance(role, str) or not isinstance(content, str):
            raise ValueError(f"apply_chat_template: message {i} needs str role and content")
        if role not in CHAT_ROLES:
            raise ValueError(f"apply_chat_template: unknown role {role!r} in message {i}")
        if role == "system":
            if i != 0:
                raise ValueError(f"apply_chat_template: the system message must come first (message {i})")
        elif role != expected:
            raise ValueError(f"apply_chat_template: message {i} should be from {expected!r}, got {role!r}")
        else:
            expected = "assistant" if role == "user" else "user"
        if "<|" in content or "|>" in content:
            raise ValueError(f"apply_chat_template: message {i} contains a reserved marker '<|' or '|>'")
        parts.append(f"<|{role}|>\n{content}<|end|>\n")
    if add_generation_prompt:
        if messages[-1]["role"] == "assistant":
            raise ValueError("apply_chat_template: the last message is the assistant's already; "
                             "use add_generation_prompt=False")
        parts.append("<|assistant|>\n")
    return "".join(parts)
    ### END SOLUTION
