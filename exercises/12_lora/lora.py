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
        # TODO(LoRALinear.__init__): your code here.
        raise NotImplementedError("TODO 12_lora: LoRALinear.__init__")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x (..., in) in base.weight's dtype -> (..., out), the same dtype.

        Not merged: base(x) + scaling · (dropout(x) @ lora_Aᵀ) @ lora_Bᵀ — dropout acts on
        the adapter's input only, never on the base path.
        Merged:     base(x) alone (base.weight already holds the update).
        """
        # TODO(LoRALinear.forward): your code here.
        raise NotImplementedError("TODO 12_lora: LoRALinear.forward")

    def delta_weight(self) -> torch.Tensor:
        """The update as one matrix: scaling · lora_B @ lora_A, (out, in), in base.weight's
        dtype, connected to the autograd graph of lora_A and lora_B (what merging adds to
        base.weight)."""
        # TODO(LoRALinear.delta_weight): your code here.
        raise NotImplementedError("TODO 12_lora: LoRALinear.delta_weight")


def merge_lora(model: nn.Module) -> nn.Module:
    """Fold every adapter into its base weight: for each LoRALinear in model.modules() (the
    model itself included) that is not merged yet, base.weight += delta_weight() and
    merged = True. A layer that is already merged is left unchanged (merging twice is merging
    once). Runs without autograd. Returns `model`, changed in place; its outputs stay the same
    up to float rounding.
    """
    # TODO(merge_lora): your code here.
    raise NotImplementedError("TODO 12_lora: merge_lora")


def unmerge_lora(model: nn.Module) -> nn.Module:
    """Undo merge_lora: for each merged LoRALinear in model.modules(), base.weight −=
    delta_weight() and merged = False; layers that are not merged are left unchanged. Runs
    without autograd. Returns `model`, changed in place (base.weight comes back up to float
    rounding).
    """
    # TODO(unmerge_lora): your code here.
    raise NotImplementedError("TODO 12_lora: unmerge_lora")


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
    # TODO(apply_lora): your code here.
    raise NotImplementedError("TODO 12_lora: apply_lora")


def trainable_fraction(model: nn.Module) -> float:
    """The share of the model's parameters that train: the number of elements of the
    parameters with requires_grad divided by the number of elements of all parameters, as a
    Python float in [0, 1]. Each Parameter counts once (as model.parameters() lists it, so a
    tied weight is not counted twice).
    Raises ValueError when the model has no parameters.
    """
    # TODO(trainable_fraction): your code here.
    raise NotImplementedError("TODO 12_lora: trainable_fraction")


def lora_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """The adapters alone, for saving: for every LoRALinear of `model` at qualified name p,
    the entries "p.lora_A" and "p.lora_B" (just "lora_A", "lora_B" when `model` is itself a
    LoRALinear) — the names model.state_dict() gives them — in model.state_dict()'s order.
    The values are detached copies that share no memory with the model (changing one leaves
    the model unchanged). Base weights, norms and embeddings are not included.
    """
    # TODO(lora_state_dict): your code here.
    raise NotImplementedError("TODO 12_lora: lora_state_dict")


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
    # TODO(load_lora_state_dict): your code here.
    raise NotImplementedError("TODO 12_lora: load_lora_state_dict")


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
    # TODO(nf4_quantize): your code here.
    raise NotImplementedError("TODO 12_lora: nf4_quantize")


def nf4_dequantize(codes: torch.Tensor, absmax: torch.Tensor, block_size: int = 64) -> torch.Tensor:
    """The inverse map of nf4_quantize: NF4_CODE[codes] times the absmax of each code's block.

    codes:  uint8 tensor of any shape, values 0…15, codes.numel() = absmax.numel() · block_size
            (blocks are consecutive runs of codes.flatten(), as in nf4_quantize).
    absmax: (n_blocks,) float32 or float64.
    Returns a tensor of codes' shape in absmax's dtype.
    Raises ValueError when codes.numel() != absmax.numel() · block_size or a code exceeds 15.
    """
    # TODO(nf4_dequantize): your code here.
    raise NotImplementedError("TODO 12_lora: nf4_dequantize")


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
    # TODO(task_vector_merge): your code here.
    raise NotImplementedError("TODO 12_lora: task_vector_merge")


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
    # TODO(slerp): your code here.
    raise NotImplementedError("TODO 12_lora: slerp")
