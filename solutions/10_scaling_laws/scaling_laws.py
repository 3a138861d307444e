"""Topic 10: scaling laws and compute — what a training run costs, and what it buys.

A language model's training cost is counted in floating-point operations (FLOPs): about 6
per parameter per token (2 for the forward matmuls, 4 for the backward), plus the attention
products, which grow with the context length. Given a FLOP budget, the Chinchilla rule says
how to split it between parameters and tokens; a power law L = a·x^(−alpha) + c, fitted to
measured losses, says what a larger budget would buy. Around them: the memory a training
run needs for weights, gradients and optimizer state, and the model FLOPs utilisation
(MFU) that says how much of a chip's peak a run achieves.

The model everything is counted for is the given `llmlab.lib.llama.TinyLlama` with its
`LlamaConfig`: token embedding (V, C), L pre-norm blocks (RMSNorm, grouped-query attention
with rotary positions, RMSNorm, SwiGLU), a final RMSNorm and an untied LM head (C → V).

Shapes: V vocab_size, C d_model, L n_layer, H n_head, H_kv n_kv_head, D = C // H head size,
F the SwiGLU hidden size (config.hidden, or `llmlab.lib.llama.swiglu_hidden(C)` when None),
T the sequence length.
"""

from __future__ import annotations

import math
from typing import Sequence

import torch

from llmlab.lib.llama import LlamaConfig, swiglu_hidden

ALPHA_RANGE = (0.01, 4.0)       # the exponents fit_power_law searches


def non_embedding_params(config: LlamaConfig) -> int:
    """The number of parameters of TinyLlama(config) outside the vocabulary matrices.

    Counts everything except the token embedding (V·C) and the LM head (C·V), Kaplan et
    al.'s convention for N: per block the attention projections q (C·H·D), k and v
    (C·H_kv·D each), o (H·D·C), the SwiGLU gate, up and down (C·F each), the two RMSNorm
    gains (C each) and, when config.qk_norm, the query and key norm gains (D each); then
    the final RMSNorm gain (C). F is config.hidden when it is set, else swiglu_hidden(C)
    (int(8C/3) rounded UP to a multiple of 16).
    Returns a Python int; must not build the model (LLaMA-7B would take 27 GB). Equals
    sum(p.numel() for p in TinyLlama(config).parameters()) − 2·V·C.
    """
    # Hint: the given `swiglu_hidden` implements LLaMA's hidden-size rule.
    ### BEGIN SOLUTION
    C, H, H_kv = config.d_model, config.n_head, config.n_kv_head
    D = C // H
    F = config.hidden or swiglu_hidden(C)
    attention = C * H * D + 2 * C * H_kv * D + H * D * C          # q, k, v, o
    mlp = 3 * C * F                                                # gate, up, down
    norms = 2 * C + (2 * D if config.qk_norm else 0)               # attn_norm, mlp_norm (+ q_norm, k_norm)
    return config.n_layer * (attention + mlp + norms) + C          # + the final norm
    ### END SOLUTION


def flops_per_token(config: LlamaConfig, seq_len: int | None = None, backward: bool = True) -> int:
    """Matmul FLOPs that TinyLlama(config) spends per token on sequences of length seq_len.

    Counts 2 FLOPs per multiply–add of every matrix product, and nothing else:
      - the weight matrices a token passes through: in each of the L blocks q, k, v, o and
        the SwiGLU gate, up and down, then the LM head (C·V). The embedding lookup (a
        gather) and the RMSNorm gains (elementwise) cost no matmul FLOPs. With N_mm the
        number of those weights, the forward costs 2·N_mm per token;
      - the two attention products of each layer, the scores q·kᵀ and the weighted sum of
        the values: each costs 2·T·H·D per token (H query heads; grouped kv heads are
        broadcast to all H, so H_kv does not enter). Causal attention is counted over the
        FULL T×T score matrix, as PyTorch's math kernel computes it (the mask is applied
        after the product, so masked scores are computed too; a kernel that skips them,
        like FlashAttention, does about half): 4·L·T·H·D per token forward.
    With backward=True (training) the backward pass is added, twice the forward (one matmul
    for the gradient w.r.t. the activations, one for the weights): 6·N_mm + 12·L·T·H·D in
    all. With backward=False, the forward only: 2·N_mm + 4·L·T·H·D.
    This is exactly what torch.utils.flop_counter.FlopCounterMode counts for a forward
    (and backward) of TinyLlama under `torch.nn.attention.sdpa_kernel(SDPBackend.MATH)`,
    divided by the number of tokens B·T.
    seq_len: an int in [1, config.block_size]; None means config.block_size.
    Returns a Python int, counted from the config: must not build or run the model (nor
    use the flop counter). Raises ValueError when seq_len is outside [1, block_size].
    """
    ### BEGIN SOLUTION
    T = config.block_size if seq_len is None else seq_len
    if not 1 <= T <= config.block_size:
        raise ValueError(f"seq_len must be in [1, block_size = {config.block_size}], got {seq_len}")
    C, H, H_kv = config.d_model, config.n_head, config.n_kv_head
    D = C // H
    F = config.hidden or swiglu_hidden(C)
    per_block = C * H * D + 2 * C * H_kv * D + H * D * C + 3 * C * F
    n_matmul = config.n_layer * per_block + C * config.vocab_size     # + the LM head
    forward = 2 * n_matmul + 4 * config.n_layer * T * H * D          # weights, then q·kᵀ and p·v
    return 3 * forward if backward else forward
    ### END SOLUTION


def chinchilla_optimal(compute: float, tokens_per_param: float = 20.0) -> tuple[float, float]:
    """The compute-optimal model size and number of training tokens for a FLOP budget.

    Uses training compute C = 6·N·D (6 FLOPs per parameter per token) and the Chinchilla
    rule of thumb D = tokens_per_param · N (Hoffmann et al. 2022 found about 20 tokens per
    parameter). Solving both: N = sqrt(C / (6·tokens_per_param)), D = tokens_per_param·N.
    compute: FLOPs, a positive finite int or float. tokens_per_param: positive, finite.
    Returns (params, tokens) as Python floats (not rounded): 6·params·tokens == compute.
    Chinchilla's budget, 5.76e23 FLOPs, gives about 6.93e10 parameters and 1.39e12 tokens.
    Raises ValueError when compute or tokens_per_param is not positive and finite.
    """
    ### BEGIN SOLUTION
    for name, value in (("compute", compute), ("tokens_per_param", tokens_per_param)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be positive and finite, got {value!r}")
    params = math.sqrt(compute / (6.0 * tokens_per_param))
    return params, tokens_per_param * params
    ### END SOLUTION


def fit_power_law(x: torch.Tensor | Sequence[float], y: torch.Tensor | Sequence[float]) -> tuple[float, float, float]:
    """Least-squares fit of y ≈ a · x^(−alpha) + c, a saturating power law.

    x: 1-D positive values (a tensor of any float dtype, need not be contiguous, or a list
       or tuple of numbers), with at least 3 distinct values; y: the same length, finite.
    Returns (a, alpha, c), Python floats, that minimise the sum of squared residuals
        S(a, alpha, c) = Σ_i (a · x_i^(−alpha) + c − y_i)²
    over all real a and c and ALPHA_RANGE[0] ≤ alpha ≤ ALPHA_RANGE[1] (0.01 to 4), to a
    precision where S exceeds its minimum by at most 1e-6 of that minimum plus
    1e-20·Σ_i y_i². Computed in float64 whatever the input dtype. x may span many orders of
    magnitude (model sizes 1e3 … 1e12, FLOPs 1e12 … 1e25): x^(−alpha) must not underflow.
    Raises ValueError when x or y is not 1-D, their lengths differ, there are fewer than 3
    points or fewer than 3 distinct x, an x is not positive, or a value is not finite.
    """
    # Hint: for a fixed alpha the model is linear in (a, c): the best a and c have a closed
    # form (a line fit of y against x^(−alpha)). That leaves a search over one number, alpha.
    # Work with u = log x − mean(log x), so that the basis exp(−alpha·u) stays near 1.
    ### BEGIN SOLUTION
    xs = torch.as_tensor(x, dtype=torch.float64)
    ys = torch.as_tensor(y, dtype=torch.float64)
    if xs.dim() != 1 or ys.dim() != 1 or xs.shape != ys.shape:
        raise ValueError(f"x and y must be 1-D of the same length, got shapes {tuple(xs.shape)} and {tuple(ys.shape)}")
    if not (bool(torch.isfinite(xs).all()) and bool(torch.isfinite(ys).all())):
        raise ValueError("x and y must be finite")
    if bool((xs <= 0).any()):
        raise ValueError(f"x must be positive, got {xs.min().item()}")
    if torch.unique(xs).numel() < 3:
        raise ValueError(f"a 3-parameter fit needs at least 3 distinct x, got {torch.unique(xs).numel()}")
    log_x = xs.log()
    shift = log_x.mean()
    u = log_x - shift                                                # (n,) centred log x

    def project(alpha: torch.Tensor):
        """For each alpha (k,): the best (a', c) of y ≈ a'·exp(−alpha·u) + c, and S."""
        basis = torch.exp(-alpha[:, None] * u)                       # (k, n)
        b = basis - basis.mean(dim=1, keepdim=True)
        a_s = (b * (ys - ys.mean())).sum(dim=1) / (b * b).sum(dim=1)   # (k,)
        c = ys.mean() - a_s * basis.mean(dim=1)                      # (k,)
        rss = ((a_s[:, None] * basis + c[:, None] - ys) ** 2).sum(dim=1)
        return rss, a_s, c

    lo, hi = ALPHA_RANGE
    grid = torch.linspace(lo, hi, 400, dtype=torch.float64)
    k = int(project(grid)[0].argmin())
    left, right = grid[max(k - 1, 0)].item(), grid[min(k + 1, len(grid) - 1)].item()
    golden = (math.sqrt(5) - 1) / 2
    for _ in range(100):                                             # golden-section search
        m1, m2 = right - golden * (right - left), left + golden * (right - left)
        s = project(torch.tensor([m1, m2], dtype=torch.float64))[0]
        if s[0] <= s[1]:
            right = m2
        else:
            left = m1
    alpha = torch.tensor([(left + right) / 2], dtype=torch.float64)
    _, a_s, c = project(alpha)
    return float(a_s[0] * torch.exp(alpha[0] * shift)), float(alpha[0]), float(c[0])
    ### END SOLUTION


BYTES_PER_VALUE = {"fp32": 4, "bf16": 2}
OPTIMIZER_STATES = {"sgd": 0, "momentum": 1, "adam": 2, "adamw": 2}


def training_memory_bytes(params: int, optimizer: str = "adamw", precision: str = "fp32") -> int:
    """Bytes of model state a training run holds: weights, gradients and optimizer state.

    Activations, buffers and the framework's workspace are not counted. Per parameter:
      optimizer states: "sgd" 0 (plain SGD), "momentum" 1 (the momentum buffer), "adam"
      and "adamw" 2 (exp_avg and exp_avg_sq);
      precision "fp32": weights, gradients and every state in float32, 4 bytes each;
      precision "bf16": weights, gradients and every state in bfloat16, 2 bytes each
        (pure bf16 training, no master copy);
      precision "mixed": bf16 weights and gradients (2 + 2 bytes) plus a float32 master
        copy of the weights (4) and float32 states (4 each) — the accounting of the ZeRO
        paper, where mixed-precision Adam takes 16 bytes per parameter (7.5e9 parameters:
        1.2e11 bytes).
    params: a non-negative int. Returns a Python int.
    Raises ValueError for a negative params, or an optimizer or precision not listed
    (the message lists the allowed names).
    """
    ### BEGIN SOLUTION
    if params < 0:
        raise ValueError(f"params must be non-negative, got {params}")
    if optimizer not in OPTIMIZER_STATES:
        raise ValueError(f"unknown optimizer {optimizer!r}; use one of {sorted(OPTIMIZER_STATES)}")
    if precision not in ("fp32", "bf16", "mixed"):
        raise ValueError(f"unknown precision {precision!r}; use one of ['bf16', 'fp32', 'mixed']")
    states = OPTIMIZER_STATES[optimizer]
    if precision == "mixed":
        per_param = 2 + 2 + 4 + 4 * states                           # bf16 w, bf16 g, fp32 master, fp32 states
    else:
        per_param = BYTES_PER_VALUE[precision] * (2 + states)       # weights, gradients, states
    return params * per_param
    ### END SOLUTION


def mfu(tokens_per_s: float, flops_per_token: float, peak_flops: float) -> float:
    """Model FLOPs utilisation: the fraction of the hardware's peak a run achieves.

    mfu = tokens_per_s · flops_per_token / peak_flops, with flops_per_token the model's
    FLOPs per token (e.g. from `flops_per_token`, forward and backward when training) and
    peak_flops the hardware's peak FLOP/s in the run's precision. It may exceed 1 only when
    the inputs are inconsistent; it is not clipped.
    tokens_per_s ≥ 0; flops_per_token > 0; peak_flops > 0; all finite.
    Returns a Python float. Raises ValueError when an argument breaks these rules.
    """
    ### BEGIN SOLUTION
    if not (math.isfinite(tokens_per_s) and tokens_per_s >= 0):
        raise ValueError(f"tokens_per_s must be finite and ≥ 0, got {tokens_per_s!r}")
    for name, value in (("flops_per_token", flops_per_token), ("peak_flops", peak_flops)):
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be positive and finite, got {value!r}")
    return float(tokens_per_s * flops_per_token / peak_flops)
    ### END SOLUTION
