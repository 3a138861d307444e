"""Topic 18: long context — stretching RoPE, local attention, ALiBi, attention sinks, needles.

A model trained on sequences of length L has only ever seen RoPE angles p·θ_i for positions
p < L. Run it on longer text and the slow dimensions (small θ_i, long wavelengths) turn to
angles it never saw, and quality collapses. Three rules rescale the inverse frequencies θ_i
so that a model trained at length L reads text of length s·L (s is the *scale*):

- position interpolation (PI): θ_i / s for every i — positions squeezed into [0, L);
- NTK-aware scaling: a larger base b' = b·s^(D/(D−2)), which leaves the fastest dimension
  unchanged and divides the slowest one by exactly s;
- YaRN: per dimension, by its wavelength λ_i = 2π/θ_i: dimensions that turn many times
  within L (r_i = L/λ_i > β) keep θ_i, dimensions that turn less than α times are
  interpolated (θ_i / s), a linear ramp in r_i between; and the attention logits are
  sharpened by the temperature factor (0.1·ln s + 1)², applied as a factor 0.1·ln s + 1 on
  both the cos and the sin tables (so on both queries and keys).

Attention can also be kept local: a sliding window (each query sees its last `window` keys),
ALiBi (no positions at all, a linear penalty −m_h·distance per head), and a streaming cache
that keeps the first tokens (attention sinks) plus a recent window. A needle-in-a-haystack
harness measures whether a model can still retrieve a fact from anywhere in its context.

Conventions: RoPE in the half-split layout of `llmlab.lib.llama` (dimension i is rotated with
dimension i + D/2 at angle p·θ_i, i < D/2); D is the head size (even); inverse frequencies
are (D/2,) float64 tensors θ_i = base^(−2i/D), fastest (θ_0 = 1) first. Logarithms are
natural. A "model" is any module called as `model(idx)` with idx (1, T) int64 that returns
`(logits (1, T, V), loss)`, as the given TinyLlama does.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from llmlab.lib.llama import LlamaConfig, TinyLlama


def rope_inv_freq(head_dim: int, base: float = 10000.0) -> torch.Tensor:
    """Given: RoPE's inverse frequencies θ_i = base^(−2i/D), i = 0 … D/2 − 1, as (D/2,) float64."""
    if head_dim < 2 or head_dim % 2:
        raise ValueError(f"RoPE needs an even head_dim ≥ 2, got {head_dim}")
    return base ** (-torch.arange(0, head_dim, 2, dtype=torch.float64) / head_dim)


# ---------------------------------------------------------------- RoPE tables from frequencies

def rope_tables(inv_freq: torch.Tensor, max_len: int, attention_scale: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The cos and sin tables of RoPE for given inverse frequencies, in the half-split layout.

    inv_freq:        (D/2,) float32 or float64, the inverse frequency θ_i of each pair.
    max_len:         number of positions, ≥ 1: positions 0 … max_len − 1.
    attention_scale: a factor multiplied into both tables (YaRN's 0.1·ln s + 1; 1 for none).
    The angle of position p and pair i is p·θ_i, computed in float64; column i and column
    i + D/2 of a row both hold that angle (as `llmlab.lib.llama.rope_cache` lays them out).
    Returns (cos, sin), each (max_len, D) float32: attention_scale·cos(angle) and
    attention_scale·sin(angle). With θ_i = base^(−2i/D) and attention_scale 1 they equal
    `llmlab.lib.llama.rope_cache(D, max_len, base)`, so they can replace a TinyLlama's
    `rope_cos` and `rope_sin` buffers.
    Raises ValueError when inv_freq is not 1-D or empty, or max_len < 1.
    """
    ### BEGIN SOLUTION
    if inv_freq.dim() != 1 or inv_freq.numel() == 0 or max_len < 1:
        raise ValueError(f"rope_tables: need a non-empty 1-D inv_freq and max_len ≥ 1, "
                         f"got shape {tuple(inv_freq.shape)} and max_len {max_len}")
    positions = torch.arange(max_len, dtype=torch.float64)                  # (max_len,)
    angle = positions[:, None] * inv_freq.double()[None, :]                 # (max_len, D/2)
    angle = torch.cat([angle, angle], dim=-1)                               # (max_len, D)
    return (attention_scale * angle.cos()).float(), (attention_scale * angle.sin()).float()
    ### END SOLUTION


def with_rope(model: TinyLlama, inv_freq: torch.Tensor, max_len: int, attention_scale: float = 1.0) -> TinyLlama:
    """Given: a copy of `model` that reads up to `max_len` tokens with RoPE tables built from
    `inv_freq` (and `attention_scale`) by `rope_tables`; same weights, eval mode."""
    config = LlamaConfig(**{**model.config.__dict__, "block_size": max_len})
    copy = TinyLlama(config).to(model.lm_head.weight.dtype)
    copy.load_state_dict(model.state_dict())
    cos, sin = rope_tables(inv_freq, max_len, attention_scale)
    copy.rope_cos, copy.rope_sin = cos, sin
    return copy.eval()


# ---------------------------------------------------------------- three scaling rules

def pi_inv_freq(inv_freq: torch.Tensor, scale: float) -> torch.Tensor:
    """Position interpolation: every inverse frequency divided by the scale, θ_i / s.

    inv_freq: (D/2,) float32 or float64.   scale: s ≥ 1, new context length / trained length.
    Equivalent to reading position p as p / s. Returns (D/2,) of inv_freq's dtype;
    differentiable in inv_freq.
    Raises ValueError when scale < 1.
    """
    ### BEGIN SOLUTION
    if scale < 1:
        raise ValueError(f"pi_inv_freq: scale must be ≥ 1, got {scale}")
    return inv_freq / scale
    ### END SOLUTION


def ntk_inv_freq(head_dim: int, scale: float, base: float = 10000.0) -> torch.Tensor:
    """NTK-aware scaling: RoPE's inverse frequencies with the base raised to b' = b·s^(D/(D−2)).

    head_dim: D, even, ≥ 4.   scale: s ≥ 1.   base: b > 0, the trained RoPE base.
    Returns (D/2,) float64: θ'_i = b'^(−2i/D), i = 0 … D/2 − 1. The exponent D/(D−2) is chosen
    so that the fastest pair is unchanged (θ'_0 = 1) and the slowest, i = D/2 − 1, is divided
    by exactly s (as position interpolation would do); the pairs between are scaled by
    s^(−2i/(D−2)).
    Raises ValueError when head_dim is odd or < 4, or scale < 1.
    """
    ### BEGIN SOLUTION
    if head_dim < 4 or head_dim % 2:
        raise ValueError(f"ntk_inv_freq: head_dim must be even and ≥ 4, got {head_dim}")
    if scale < 1:
        raise ValueError(f"ntk_inv_freq: scale must be ≥ 1, got {scale}")
    new_base = base * scale ** (head_dim / (head_dim - 2))
    return rope_inv_freq(head_dim, new_base)
    ### END SOLUTION


def yarn_inv_freq(inv_freq: torch.Tensor, scale: float, original_len: int,
                  alpha: float = 1.0, beta: float = 32.0) -> torch.Tensor:
    """YaRN's frequencies ("NTK-by-parts"): interpolate each pair by how often it turns within L.

    inv_freq:     (D/2,) float32 or float64, the trained θ_i (all > 0).
    scale:        s ≥ 1.   original_len: L ≥ 1, the trained context length.
    alpha, beta:  0 ≤ alpha < beta, the ramp's ends (the paper's 1 and 32 for LLaMA).
    For each pair: wavelength λ_i = 2π/θ_i, ratio r_i = L/λ_i (turns within L), ramp
        γ_i = 0 if r_i < alpha,  1 if r_i > beta,  (r_i − alpha)/(beta − alpha) between;
    and θ'_i = (1 − γ_i)·θ_i/s + γ_i·θ_i. So high frequencies (r_i > beta) are unchanged and
    low ones (r_i < alpha) are interpolated exactly as PI would. The attention temperature is
    a separate unit, `yarn_attention_scale`.
    Returns (D/2,) of inv_freq's dtype; differentiable in inv_freq (γ_i depends on θ_i too).
    Raises ValueError when scale < 1, original_len < 1, or not 0 ≤ alpha < beta.
    """
    ### BEGIN SOLUTION
    if scale < 1 or original_len < 1 or not 0 <= alpha < beta:
        raise ValueError(f"yarn_inv_freq: need scale ≥ 1, original_len ≥ 1 and 0 ≤ alpha < beta, "
                         f"got scale={scale}, original_len={original_len}, alpha={alpha}, beta={beta}")
    wavelength = 2 * math.pi / inv_freq                                     # (D/2,)
    r = original_len / wavelength                                           # turns within L
    gamma = ((r - alpha) / (beta - alpha)).clamp(0.0, 1.0)                  # 0: interpolate, 1: keep
    return (1 - gamma) * inv_freq / scale + gamma * inv_freq
    ### END SOLUTION


def yarn_attention_scale(scale: float) -> float:
    """YaRN's attention temperature as the factor on the RoPE tables: sqrt(1/t) = 0.1·ln s + 1.

    scale: s ≥ 1. Multiplying both the cos and the sin tables by this factor multiplies every
    attention logit q·k by its square, 1/t. Returns a Python float (1.0 at s = 1).
    Raises ValueError when scale < 1.
    """
    ### BEGIN SOLUTION
    if scale < 1:
        raise ValueError(f"yarn_attention_scale: scale must be ≥ 1, got {scale}")
    return 0.1 * math.log(scale) + 1.0
    ### END SOLUTION


# ---------------------------------------------------------------- local attention and ALiBi

def sliding_window_mask(T: int, window: int, sinks: int = 0) -> torch.Tensor:
    """Which keys each query may see under causal sliding-window attention (plus sink tokens).

    T: sequence length ≥ 1.   window: ≥ 1, keys per query in the window (the query itself
    included).   sinks: ≥ 0, the first `sinks` positions stay visible to every later query.
    Returns (T, T) bool, True where query i may attend to key j:
        j ≤ i  and  (i − j < window  or  j < sinks).
    window ≥ T gives the plain causal mask.
    Raises ValueError when T < 1, window < 1 or sinks < 0.
    """
    ### BEGIN SOLUTION
    if T < 1 or window < 1 or sinks < 0:
        raise ValueError(f"sliding_window_mask: need T ≥ 1, window ≥ 1 and sinks ≥ 0, "
                         f"got T={T}, window={window}, sinks={sinks}")
    i = torch.arange(T)[:, None]                                            # (T, 1) queries
    j = torch.arange(T)[None, :]                                            # (1, T) keys
    return (j <= i) & ((i - j < window) | (j < sinks))                      # (T, T)
    ### END SOLUTION


def alibi_slopes(n_heads: int) -> torch.Tensor:
    """ALiBi's per-head slopes m_h (Press et al. 2022).

    n_heads: H ≥ 1. For H a power of two the slopes are the geometric sequence
        m_h = 2^(−8(h+1)/H),  h = 0 … H − 1.
    Otherwise, with M the largest power of two below H: the M slopes of the power-of-two rule
    for M, followed by the first H − M of the slopes for 2M taken at even indices
    (m_0, m_2, m_4, … of the 2M rule) — the rule of the paper's code.
    Returns (H,) float64, in that order.
    Raises ValueError when n_heads < 1.
    """
    ### BEGIN SOLUTION
    if n_heads < 1:
        raise ValueError(f"alibi_slopes: n_heads must be ≥ 1, got {n_heads}")

    def power_of_two(n: int) -> torch.Tensor:
        return 2.0 ** (-8.0 * torch.arange(1, n + 1, dtype=torch.float64) / n)

    closest = 2 ** math.floor(math.log2(n_heads))
    if closest == n_heads:
        return power_of_two(n_heads)
    extra = power_of_two(2 * closest)[0::2][:n_heads - closest]
    return torch.cat([power_of_two(closest), extra])
    ### END SOLUTION


def alibi_bias(slopes: torch.Tensor, T: int) -> torch.Tensor:
    """ALiBi's additive attention bias: bias[h, i, j] = −slopes[h]·(i − j).

    slopes: (H,) float32 or float64.   T: sequence length ≥ 1.
    Returns (H, T, T) of slopes' dtype, to be added to the attention logits of head h before
    the softmax, together with a causal mask: the past (j < i) is penalised linearly in the
    distance, the diagonal is 0, and the future (j > i, masked anyway) is positive.
    Differentiable in slopes.
    Raises ValueError when slopes is not 1-D or T < 1.
    """
    ### BEGIN SOLUTION
    if slopes.dim() != 1 or T < 1:
        raise ValueError(f"alibi_bias: need 1-D slopes and T ≥ 1, got shape {tuple(slopes.shape)} and T={T}")
    pos = torch.arange(T, dtype=slopes.dtype)
    distance = pos[:, None] - pos[None, :]                                   # (T, T): i − j
    return -slopes[:, None, None] * distance                                 # (H, T, T)
    ### END SOLUTION


# ---------------------------------------------------------------- a streaming cache with sinks

class StreamingCache:
    """Keys and values of a stream of tokens: the first `n_sink` (attention sinks) and the most
    recent `window`, everything between evicted (StreamingLLM, Xiao et al. 2024).

    Attributes (their names are part of the contract):
        keys, values  (B, H, n_kept, D): the kept entries in stream order (sinks first), or
                      None before the first append;
        positions     (n_kept,) int64: the stream position (0, 1, 2, … over all tokens ever
                      appended) of each kept entry, in the same order;
        seen          the number of tokens appended so far.
    The kept positions are always 0 … min(n_sink, seen) − 1 followed by
    max(n_sink, seen − window) … seen − 1: nothing is evicted while seen ≤ n_sink + window.
    (StreamingLLM applies RoPE with positions inside the cache, 0 … n_kept − 1, so entries are
    stored as given, before any rotation.)
    """

    def __init__(self, n_sink: int, window: int):
        """n_sink ≥ 0, window ≥ 1. Starts empty: keys = values = None, positions (0,) int64,
        seen = 0.

        Raises ValueError when n_sink < 0 or window < 1.
        """
        ### BEGIN SOLUTION
        if n_sink < 0 or window < 1:
            raise ValueError(f"StreamingCache: need n_sink ≥ 0 and window ≥ 1, got {n_sink} and {window}")
        self.n_sink, self.window = n_sink, window
        self.keys = self.values = None
        self.positions = torch.zeros(0, dtype=torch.long)
        self.seen = 0
        ### END SOLUTION

    def append(self, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add the keys and values of the next n tokens, then evict down to sinks + window.

        k, v: (B, H, n, D), n ≥ 1, the same shape, with B, H, D and dtype of earlier appends.
        The new tokens get stream positions seen … seen + n − 1; `seen` grows by n; then
        every entry that is neither one of the first n_sink of the stream nor among the
        last `window` is dropped (so a chunk longer than the window keeps only its tail).
        Returns (keys, values) after eviction (the attributes).
        Raises ValueError when k and v differ in shape, are not 4-D with n ≥ 1, or do not
        match the B, H, D of the entries already held.
        """
        ### BEGIN SOLUTION
        if k.dim() != 4 or k.shape != v.shape or k.shape[2] < 1:
            raise ValueError(f"StreamingCache.append: need k and v of the same shape (B, H, n ≥ 1, D), "
                             f"got {tuple(k.shape)} and {tuple(v.shape)}")
        n = k.shape[2]
        new_pos = torch.arange(self.seen, self.seen + n)                     # (n,)
        if self.keys is None:
            keys, values, positions = k, v, new_pos
        else:
            if (k.shape[0], k.shape[1], k.shape[3]) != (self.keys.shape[0], self.keys.shape[1], self.keys.shape[3]):
                raise ValueError(f"StreamingCache.append: k {tuple(k.shape)} does not match the cached "
                                 f"entries {tuple(self.keys.shape)} in B, H or D")
            keys = torch.cat([self.keys, k], dim=2)                          # (B, H, n_kept + n, D)
            values = torch.cat([self.values, v], dim=2)
            positions = torch.cat([self.positions, new_pos])
        self.seen += n
        keep = (positions < self.n_sink) | (positions >= self.seen - self.window)   # (n_kept + n,)
        self.keys, self.values, self.positions = keys[:, :, keep], values[:, :, keep], positions[keep]
        return self.keys, self.values
        ### END SOLUTION


# ---------------------------------------------------------------- needle in a haystack

def insert_needle(haystack: torch.Tensor, needle: torch.Tensor, depth: float) -> torch.Tensor:
    """The haystack with the needle inserted at a relative depth.

    haystack: (T,) int64, T ≥ 0.   needle: (n,) int64, n ≥ 1.   depth: in [0, 1].
    The needle goes in front of haystack[floor(depth·T)]: depth 0 puts it first, depth 1
    after the whole haystack. Returns (T + n,) int64: haystack[:c], needle, haystack[c:]
    with c = floor(depth·T). The inputs are not modified.
    Raises ValueError when depth is outside [0, 1] or the needle is empty.
    """
    ### BEGIN SOLUTION
    if not 0.0 <= depth <= 1.0 or needle.numel() == 0:
        raise ValueError(f"insert_needle: need depth in [0, 1] and a non-empty needle, got depth={depth}, "
                         f"needle of shape {tuple(needle.shape)}")
    cut = math.floor(depth * haystack.shape[0])
    return torch.cat([haystack[:cut], needle, haystack[cut:]])
    ### END SOLUTION


def needle_in_haystack(model: nn.Module, haystack: torch.Tensor, needle: torch.Tensor, question: torch.Tensor,
                       answer: torch.Tensor, depths) -> torch.Tensor:
    """Can the model retrieve the needle? One greedy test per depth.

    model:    a model (see the module docstring); the caller sets eval mode and keeps every
              prompt plus answer within its context length.
    haystack: (T,) int64.   needle: (n,) int64, n ≥ 1.   question: (m,) int64.
    answer:   (a,) int64, a ≥ 1, the tokens a correct model says after the question.
    depths:   a sequence (list or tuple) of floats in [0, 1].
    For each depth: prompt = insert_needle(haystack, needle, depth) followed by the question;
    generate a = len(answer) tokens greedily after it (each step calls model(sequence[None])
    on the whole text so far and takes the argmax of the last position, ties to the lowest
    id); the test passes when all a generated tokens equal the answer.
    Runs under torch.no_grad(). Returns (len(depths),) bool: True where the test passed.
    Raises ValueError when the answer is empty (and as insert_needle does for a bad depth
    or an empty needle).
    """
    ### BEGIN SOLUTION
    if answer.numel() == 0:
        raise ValueError("needle_in_haystack: the answer must hold at least one token")
    passed = []
    with torch.no_grad():
        for depth in depths:
            seq = torch.cat([insert_needle(haystack, needle, depth), question])     # (T + n + m,)
            for _ in range(answer.shape[0]):
                logits = model(seq[None])[0][0, -1]                                 # (V,)
                seq = torch.cat([seq, logits.argmax().reshape(1)])
            passed.append(bool(torch.equal(seq[-answer.shape[0]:], answer)))
    return torch.tensor(passed, dtype=torch.bool)
    ### END SOLUTION
