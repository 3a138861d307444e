"""Topic 12: LoRA — low-rank adapters on a frozen model, merging them, saving them, 4-bit NF4
base weights, and merging whole fine-tuned models.

LoRA (Hu et al. 2021) freezes a pretrained weight W (out × in) and learns a low-rank update
instead: y = W x + (α / r) · B A x, with A (r × in) random and B (out × r) zero at the start,
so the adapted model begins exactly where the pretrained one was. Only A and B train:
r·(in + out) numbers per layer instead of in·out. The update can later be folded into W
(`merge_lora`), so inference costs nothing extra, and the adapters alone can be saved and
loaded (`lora_state_dict`, `load_lora_state_dict`). QLoRA (Dettmers et al. 2023) stores the
frozen W in 4 bits with the NF4 code book (`nf4_quantize`, `nf4_dequantize`). Task arithmetic
(`task_vector_merge`) and spherical interpolation (`slerp`) merge whole fine-tuned models.

Shapes: in = in_features, out = out_features, r the rank; `...` any leading dimensions.
"""

from __future__ import annotations

import math

import torch
from torch import nn

# The 16 values of the NF4 ("4-bit NormalFloat") code book of QLoRA (Dettmers et al. 2023,
# "QLoRA: Efficient Finetuning of Quantized LLMs", arXiv:2305.14314), exactly as bitsandbytes
# defines them: `get_4bit_type("nf4")` in bitsandbytes/functional.py
# (github.com/bitsandbytes-foundation/bitsandbytes, commit 01327aa0119fa503ea16322dd72f69f202e4502e).
# Each value is a quantile of N(0, 1), scaled so the extremes are ±1; 0 is exact. Index i is
# the 4-bit code of value NF4_CODE[i]; the values are float32 numbers, in increasing order.
NF4_CODE = (
    -1.0, -0.6961928009986877, -0.5250730514526367, -0.39491748809814453,
    -0.28444138169288635, -0.18477343022823334, -0.09105003625154495, 0.0,
    0.07958029955625534, 0.16093020141124725, 0.24611230194568634, 0.33791524171829224,
    0.44070982933044434, 0.5626170039176941, 0.7229568362236023, 1.0,
)


class LoRALinear(nn.Module):
    """A frozen nn.Linear plus a trainable low-rank update: base(x) + (alpha / r) · B A x."""

    def __init__(self, base: nn.Linear, r: int, alpha: float, dropout: float = 0.0):
        """Wrap `base` and create the adapter.

        base:    an nn.Linear(in, out), with or without bias. Kept as `self.base` — the very
                 same object, not a copy — and frozen: requires_grad is set to False on its
                 weight (and bias).
        r:       the rank, a positive int (a bool is not accepted).
        alpha:   a positive int or float (not a bool); the update is scaled by alpha / r.
        dropout: probability in [0, 1) of the dropout applied to the adapter's input.
        Attributes:
            base, r, alpha     as given;
            scaling            alpha / r (a Python float);
            lora_A             nn.Parameter (r, in), entries i.i.d. uniform on
                               [−1/sqrt(in), 1/sqrt(in)] (nn.Linear's own default, which
                               `nn.init.kaiming_uniform_(A, a=math.sqrt(5))` also gives),
                               drawn from the global RNG;
            lora_B             nn.Parameter (out, r), all zeros — so at initialisation the
                               layer computes exactly base(x);
            dropout            nn.Dropout(dropout);
            merged             False (see merge_lora).
        lora_A and lora_B have base.weight's dtype and device, and require grad.
        Raises TypeError when base is not an nn.Linear; ValueError when r is not a positive
        int, alpha is not a positive int or float, or dropout is outside [0, 1).
        """
        super().__init__()
        ### BEGIN SOLUTION
        if not isinstance(base, nn.Linear):
            raise TypeError(f"LoRALinear wraps an nn.Linear, got {type(base).__name__}")
        if isinstance(r, bool) or not isinstance(r, int) or r < 1:
            raise ValueError(f"r must be a positive int, got {r!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
            raise ValueError(f"alpha must be a positive number, got {alpha!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)                                   # the pretrained layer stays frozen
        self.r, self.alpha = r, alpha
        self.scaling = alpha / r
        w = base.weight                                               # (out, in)
        bound = 1.0 / math.sqrt(base.in_features)
        self.lora_A = nn.Parameter(torch.empty(r, base.in_features, dtype=w.dtype, device=w.device)
                                   .uniform_(-bound, bound))          # (r, in)
        self.lora_B = nn.Parameter(torch.zeros(base.out_features, r, dtype=w.dtype, device=w.device))  # (out, r)
        self.dropout = nn.Dropout(dropout)
        self.merged = False
        ### END SOLUTION

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., in) in base.weight's dtype -> (..., out), the same dtype.

        Not merged: base(x) + scaling · (dropout(x) @ lora_Aᵀ) @ lora_Bᵀ — dropout acts on
        the adapter's input only, never on the base path.
        Merged:     base(x) alone (base.weight already holds the update).
        """
        ### BEGIN SOLUTION
        out = self.base(x)                                            # (..., out)
        if self.merged:
            return out
        low_rank = self.dropout(x) @ self.lora_A.T                    # (..., r)
        return out + self.scaling * (low_rank @ self.lora_B.T)        # (..., out)
        ### END SOLUTION

    def delta_weight(self) -> torch.Tensor:
        """The update as one matrix: scaling · lora_B @ lora_A, (out, in), in base.weight's
        dtype, connected to the autograd graph of lora_A and lora_B (what merging adds to
        base.weight)."""
        ### BEGIN SOLUTION
        return self.scaling * (self.lora_B @ self.lora_A)             # (out, in)
        ### END SOLUTION


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight: for each LoRALinear in model.modules() (the
    model itself included) that is not merged yet, base.weight += delta_weight() and
    merged = True. A layer that is already merged is left unchanged (merging twice is merging
    once). Runs without autograd. Returns `model`, changed in place; its outputs stay the same
    up to float rounding.
    """
    ### BEGIN SOLUTION
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoRALinear) and not module.merged:
                module.base.weight += module.delta_weight()
                module.merged = True
    return model
    ### END SOLUTION


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo merge_lora: for each merged LoRALinear in model.modules(), base.weight −=
    delta_weight() and merged = False; layers that are not merged are left unchanged. Runs
    without autograd. Returns `model`, changed in place (base.weight comes back up to float
    rounding).
    """
    ### BEGIN SOLUTION
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, LoRALinear) and module.merged:
                module.base.weight -= module.delta_weight()
                module.merged = False
    return model
    ### END SOLUTION


def apply_lora(model: nn.Module, targets, r: int, alpha: float, dropout: float = 0.0) -> nn.Module:
    """Put adapters on the target layers of `model` and freeze everything else.

    targets: a list, tuple or set of attribute names; a submodule matches when it is an
             nn.Linear and its own name (the last part of its qualified name: "q_proj" in
             "blocks.0.attn.q_proj") is one of them.
    Every match is replaced, in its parent, by LoRALinear(that very nn.Linear, r, alpha,
    dropout). Afterwards every parameter of `model` except the adapters' lora_A and lora_B
    has requires_grad False: embeddings, norms, heads and unmatched layers are frozen too.
    Returns `model`, changed in place.
    Raises TypeError when targets is a str (write ("q_proj",), not "q_proj"); ValueError
    when no nn.Linear of the model matches a target (nothing would be trained).
    """
    ### BEGIN SOLUTION
    if isinstance(targets, str):
        raise TypeError(f"targets must be a collection of names such as ({targets!r},), not a str")
    names = set(targets)
    matches = [(parent, name, child) for parent in model.modules()
               for name, child in parent.named_children() if name in names and isinstance(child, nn.Linear)]
    if not matches:
        raise ValueError(f"no nn.Linear of the model is named one of {sorted(names)}")
    for p in model.parameters():
        p.requires_grad_(False)                                       # freeze the whole model first
    for parent, name, child in matches:
        setattr(parent, name, LoRALinear(child, r, alpha, dropout))   # new adapters require grad
    return model
    ### END SOLUTION


def trainable_fraction(model: nn.Module) -> float:
    """The share of the model's parameters that train: the number of elements of the
    parameters with requires_grad divided by the number of elements of all parameters, as a
    Python float in [0, 1]. Each Parameter counts once (as model.parameters() lists it, so a
    tied weight is not counted twice).
    Raises ValueError when the model has no parameters.
    """
    ### BEGIN SOLUTION
    total = trainable = 0
    for p in model.parameters():
        total += p.numel()
        if p.requires_grad:
            trainable += p.numel()
    if total == 0:
        raise ValueError("the model has no parameters")
    return trainable / total
    ### END SOLUTION


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters alone, for saving: for every LoRALinear of `model` at qualified name p,
    the entries "p.lora_A" and "p.lora_B" (just "lora_A", "lora_B" when `model` is itself a
    LoRALinear) — the names model.state_dict() gives them — in model.state_dict()'s order.
    The values are detached copies that share no memory with the model (changing one leaves
    the model unchanged). Base weights, norms and embeddings are not included.
    """
    ### BEGIN SOLUTION
    state = {}
    for prefix, module in model.named_modules():
        if isinstance(module, LoRALinear):
            dot = f"{prefix}." if prefix else ""
            state[dot + "lora_A"] = module.lora_A.detach().clone()   # (r, in)
            state[dot + "lora_B"] = module.lora_B.detach().clone()   # (out, r)
    return state
    ### END SOLUTION


def load_lora_state_dict(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Copy adapters saved by lora_state_dict into the LoRALinear layers of `model` (in place,
    without autograd; the parameters stay the same objects and keep requiring grad).

    `state` must hold exactly the model's adapter names ("p.lora_A", "p.lora_B" for each
    LoRALinear at p), each with the shape of that parameter; values are converted to the
    parameter's dtype. Everything is checked before anything is copied, so on an error the
    model is unchanged.
    Raises KeyError naming the missing and unexpected keys; ValueError naming a key whose
    shape differs. Returns `model`.
    """
    ### BEGIN SOLUTION
    own = {}
    for prefix, module in model.named_modules():
        if isinstance(module, LoRALinear):
            dot = f"{prefix}." if prefix else ""
            own[dot + "lora_A"], own[dot + "lora_B"] = module.lora_A, module.lora_B
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own))
    if missing or unexpected:
        raise KeyError(f"adapter state dict does not fit the model: missing {missing}, unexpected {unexpected}")
    for name, param in own.items():
        if tuple(state[name].shape) != tuple(param.shape):
            raise ValueError(f"{name}: shape {tuple(state[name].shape)} in the state dict, "
                             f"{tuple(param.shape)} in the model")
    with torch.no_grad():
        for name, param in own.items():
            param.copy_(state[name])
    return model
    ### END SOLUTION


def nf4_quantize(w: torch.Tensor, block_size: int = 64) -> tuple[torch.Tensor, torch.Tensor]:
    """Block-wise absmax quantisation of `w` to the 16 values of NF4_CODE (QLoRA's 4 bits).

    w:          float32 or float64 tensor of any shape (contiguous or not).
    block_size: a positive int; w.numel() must be a positive multiple of it.
    The blocks are consecutive runs of block_size elements of w.flatten() (row-major order).
    Returns (codes, absmax):
        absmax  (n_blocks,), w's dtype: the largest |w| in each block;
        codes   uint8, w's shape: for each element, the index 0…15 of the value of NF4_CODE
                nearest to w / absmax of its block (computed in w's dtype, the code values
                converted to w's dtype); an exact tie between two values goes to the LOWER
                index; a block of zeros (absmax 0) gets index 7, the code of 0.0.
    Every element comes back from nf4_dequantize within half the largest gap of the code
    book (between −1.0 and −0.6962, so 0.1519) times its block's absmax; the largest |w| of
    each block comes back exactly.
    Raises ValueError when block_size < 1 or w.numel() is not a positive multiple of it.
    """
    ### BEGIN SOLUTION
    if block_size < 1 or w.numel() == 0 or w.numel() % block_size != 0:
        raise ValueError(f"w.numel() = {w.numel()} must be a positive multiple of block_size = {block_size}")
    blocks = w.reshape(-1, block_size)                                # (n_blocks, block_size)
    absmax = blocks.abs().amax(dim=1)                                 # (n_blocks,)
    scale = torch.where(absmax > 0, absmax, torch.ones_like(absmax))  # a zero block divides by 1
    x = blocks / scale[:, None]                                       # (n_blocks, block_size) in [−1, 1]
    code = torch.tensor(NF4_CODE, dtype=torch.float32).to(w.dtype)    # (16,)
    codes = (x[..., None] - code).abs().argmin(dim=-1)                # first minimum: the lower index wins
    return codes.to(torch.uint8).reshape(w.shape), absmax
    ### END SOLUTION


def nf4_dequantize(codes: torch.Tensor, absmax: torch.Tensor, block_size: int = 64) -> torch.Tensor:
    """The inverse map of nf4_quantize: NF4_CODE[codes] times the absmax of each code's block.

    codes:  uint8 tensor of any shape, values 0…15, codes.numel() = absmax.numel() · block_size
            (blocks are consecutive runs of codes.flatten(), as in nf4_quantize).
    absmax: (n_blocks,) float32 or float64.
    Returns a tensor of codes' shape in absmax's dtype.
    Raises ValueError when codes.numel() != absmax.numel() · block_size or a code exceeds 15.
    """
    ### BEGIN SOLUTION
    if codes.numel() != absmax.numel() * block_size:
        raise ValueError(f"{codes.numel()} codes do not fill {absmax.numel()} blocks of {block_size}")
    if codes.numel() and int(codes.max()) > 15:
        raise ValueError(f"NF4 codes are 0…15, got {int(codes.max())}")
    code = torch.tensor(NF4_CODE, dtype=torch.float32).to(absmax.dtype)  # (16,)
    values = code[codes.long()].reshape(-1, block_size)                  # (n_blocks, block_size)
    return (values * absmax[:, None]).reshape(codes.shape)
    ### END SOLUTION


def task_vector_merge(base: dict[str, torch.Tensor], finetuned, weights) -> dict[str, torch.Tensor]:
    """Task arithmetic (Ilharco et al. 2023): add the weighted task vectors τ_i = θ_i − θ_base.

    base:      a state dict (name -> tensor).
    finetuned: a non-empty list or tuple of state dicts with exactly base's keys and shapes.
    weights:   a list or tuple of numbers, one per finetuned dict.
    Returns a new dict with base's keys in base's order: for every floating-point entry,
        base[k] + Σ_i weights[i] · (finetuned[i][k] − base[k])   (in base[k]'s dtype);
    entries that are not floating point (counters, integer buffers) are copied from base.
    The inputs are not modified.
    Raises ValueError when finetuned is empty, when len(weights) != len(finetuned), or when
    the keys of a finetuned dict differ from base's.
    """
    ### BEGIN SOLUTION
    if len(finetuned) == 0:
        raise ValueError("task_vector_merge needs at least one fine-tuned state dict")
    if len(weights) != len(finetuned):
        raise ValueError(f"{len(weights)} weights for {len(finetuned)} fine-tuned state dicts")
    for i, state in enumerate(finetuned):
        if set(state) != set(base):
            raise ValueError(f"fine-tuned state dict {i} has keys {sorted(set(state) ^ set(base))} "
                             f"that base does not share")
    merged = {}
    for key, theta in base.items():
        if not theta.is_floating_point():
            merged[key] = theta.clone()
            continue
        merged[key] = theta + sum(w * (state[key] - theta) for w, state in zip(weights, finetuned))
    return merged
    ### END SOLUTION


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical linear interpolation between a and b (same shape, same float dtype), treated as
    flat vectors, for t in [0, 1]:

        cos θ = ⟨a, b⟩ / (‖a‖ ‖b‖), clamped to [−1, 1]
        slerp = sin((1 − t)·θ) / sin θ · a  +  sin(t·θ) / sin θ · b

    so t = 0 gives a, t = 1 gives b, and for ‖a‖ = ‖b‖ the path follows the great circle
    (the norm stays ‖a‖ and the angle to a grows as t·θ). When |cos θ| > 0.9995 (a and b
    nearly parallel or opposite, sin θ ≈ 0) it returns the linear interpolation
    (1 − t)·a + t·b instead. Differentiable in a and b. Returns a's shape and dtype.
    Raises ValueError when the shapes differ, t is outside [0, 1], or a or b is all zeros.
    """
    ### BEGIN SOLUTION
    if a.shape != b.shape:
        raise ValueError(f"slerp needs tensors of one shape, got {tuple(a.shape)} and {tuple(b.shape)}")
    if not 0.0 <= t <= 1.0:
        raise ValueError(f"t must be in [0, 1], got {t}")
    na, nb = a.norm(), b.norm()
    if na == 0 or nb == 0:
        raise ValueError("slerp is undefined for an all-zero tensor")
    cos = ((a * b).sum() / (na * nb)).clamp(-1.0, 1.0)
    if bool(cos.detach().abs() > 0.9995):
        return (1 - t) * a + t * b                                    # sin θ ≈ 0: interpolate linearly
    theta = torch.arccos(cos)
    return (torch.sin((1 - t) * theta) * a + torch.sin(t * theta) * b) / torch.sin(theta)
    ### END SOLUTION
