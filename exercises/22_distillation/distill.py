"""Topic 22: knowledge distillation — a small student learns from a large teacher's outputs.

A trained teacher knows more than the one correct label of each example: its whole output
distribution says which wrong answers are nearly right. Distillation (Hinton, Vinyals and
Dean 2015) trains a student to match that distribution, softened by a temperature T:

    loss = (1 − α) · CE(student, labels) + α · T² · KL(p_T ‖ q_T),
    p_T = softmax(teacher_logits / T),   q_T = softmax(student_logits / T).

The gradient of the soft term scales like 1/T² at large T, so the factor T² keeps its size
comparable across temperatures (and comparable to the hard-label term). Variants covered
here: the forward KL(teacher ‖ student) against the reverse KL(student ‖ teacher), a teacher
compressed to its top-k logits (renormalised over the kept k), hidden-state distillation
through a learned projection (FitNets, TinyBERT), and sequence-level distillation (Kim and
Rush 2016): training on the teacher's own generated text.

Shapes: V vocabulary (number of classes), "..." any leading positions (batch, sequence).
Logits are float32 or float64 and finite; probabilities and KL values are in nats. A
"model" is any module called as `model(idx)` with idx (B, T) int64 that returns
`(logits (B, T, V), loss)`, as the given `llmlab.lib.llama.TinyLlama` does.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

IGNORE_INDEX = -100           # a target that no loss term counts (padding, prompt positions)


def _check_temperature(unit: str, T: float) -> None:
    """Raise ValueError naming the unit unless T > 0 (given helper)."""
    if not T > 0:
        raise ValueError(f"{unit}: the temperature T must be > 0, got {T}")


def _check_logit_pair(unit: str, student_logits: torch.Tensor, teacher_logits: torch.Tensor) -> None:
    """Raise ValueError naming the unit when two logit tensors differ in shape or are 0-d (given helper)."""
    if student_logits.shape != teacher_logits.shape or student_logits.dim() == 0:
        raise ValueError(f"{unit}: student and teacher logits must have the same shape (..., V), "
                         f"got {tuple(student_logits.shape)} and {tuple(teacher_logits.shape)}")


# ---------------------------------------------------------------- softened distributions

def soft_targets(logits: torch.Tensor, T: float) -> torch.Tensor:
    """The softened distribution softmax(logits / T) over the last axis.

    logits: (..., V) float32 or float64, at least 1-D.   T: temperature, a number > 0.
    Returns (..., V) in the dtype of logits; every row sums to 1. T = 1 is the ordinary
    softmax; T > 1 flattens the distribution (T → ∞: uniform), T < 1 sharpens it (T → 0:
    one-hot at the argmax). Differentiable in logits.
    Raises ValueError when T ≤ 0 or logits is 0-d.
    """
    # TODO(soft_targets): your code here.
    raise NotImplementedError("TODO 22_distillation: soft_targets")


def forward_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """The forward KL(p_T ‖ q_T) per position: the teacher's softened distribution p_T against
    the student's q_T, both at the same temperature T.

    student_logits, teacher_logits: (..., V) float32 or float64 of the same shape, finite.
    T: temperature > 0; p_T = softmax(teacher_logits / T), q_T = softmax(student_logits / T).
    Returns (...) in the inputs' dtype: Σ over the last axis of p_T · (log p_T − log q_T)
    (≥ 0; exactly the "mean-seeking" KL: q is penalised wherever p has mass and q has little).
    Compute the logarithms with log_softmax, so large logits do not overflow. Differentiable
    in both inputs.
    Raises ValueError when the shapes differ, the inputs are 0-d, or T ≤ 0.
    """
    # Hint: F.log_softmax(x / T, dim=-1) gives log p_T without computing p_T first.
    # TODO(forward_kl): your code here.
    raise NotImplementedError("TODO 22_distillation: forward_kl")


def reverse_kl(student_logits: torch.Tensor, teacher_logits: torch.Tensor, T: float = 1.0) -> torch.Tensor:
    """The reverse KL(q_T ‖ p_T) per position: the student's softened distribution q_T against
    the teacher's p_T.

    Same arguments, shapes and errors as forward_kl. Returns (...): Σ over the last axis of
    q_T · (log q_T − log p_T) (≥ 0; "mode-seeking": the student is penalised for mass where
    the teacher has little, not for missing some of the teacher's modes). Differentiable in
    both inputs.
    Raises ValueError when the shapes differ, the inputs are 0-d, or T ≤ 0.
    """
    # TODO(reverse_kl): your code here.
    raise NotImplementedError("TODO 22_distillation: reverse_kl")


# ---------------------------------------------------------------- the distillation loss

def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, targets: torch.Tensor,
            T: float = 2.0, alpha: float = 0.5) -> torch.Tensor:
    """Hinton's distillation loss: (1 − alpha) · CE + alpha · T² · KL(p_T ‖ q_T).

    student_logits, teacher_logits: (..., V) float32 or float64 of the same shape, at least
        2-D (positions, then classes).
    targets: (...) int64, the hard labels: a class in [0, V) or IGNORE_INDEX (−100).
    T: temperature > 0.   alpha: weight of the soft term, in [0, 1].
    Only the M positions whose target is not −100 count, in both terms:
      CE = the mean over the M positions of −log softmax(student_logits)[target]
           (the student at temperature 1, as in ordinary training);
      KL = the mean over the M positions of forward_kl(student_logits, teacher_logits, T)
           (a sum over the V classes, then a mean over positions — not a mean over
           positions × classes).
    The teacher is a constant: no gradient flows into teacher_logits (it is detached).
    Returns a 0-d tensor in the logits' dtype. alpha = 0 gives CE exactly; alpha = 1 gives
    T² · KL, which is 0 when the student's logits equal the teacher's.
    Raises ValueError when the logits' shapes differ or are not at least 2-D, targets is not
    logits.shape[:-1], T ≤ 0, alpha is outside [0, 1], or every target is −100.
    """
    # TODO(kd_loss): your code here.
    raise NotImplementedError("TODO 22_distillation: kd_loss")


# ---------------------------------------------------------------- a sparse (top-k) teacher

def topk_teacher_probs(teacher_logits: torch.Tensor, k: int, T: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Compress the teacher to its k largest logits per position, renormalised over the kept k.

    teacher_logits: (..., V) float32 or float64, at least 1-D.   k: int in [1, V].   T > 0.
    Returns (probs, indices), both (..., k):
      indices: int64, the positions of the k largest logits of each row, in descending order
               of logit (which of several equal logits comes first, or is kept at the k-th
               place, is not specified);
      probs:   the logits' dtype, softmax(kept logits / T) over the k kept entries, so each
               row sums to 1 (the mass of the dropped V − k classes is redistributed over the
               kept ones in proportion). probs[..., j] belongs to indices[..., j].
    With k = V this is soft_targets(teacher_logits, T), permuted. Differentiable in teacher_logits.
    Raises ValueError when k is not in [1, V], T ≤ 0, or teacher_logits is 0-d.
    """
    # TODO(topk_teacher_probs): your code here.
    raise NotImplementedError("TODO 22_distillation: topk_teacher_probs")


def sparse_kd_loss(student_logits: torch.Tensor, teacher_probs: torch.Tensor, teacher_indices: torch.Tensor,
                   T: float = 1.0) -> torch.Tensor:
    """The soft distillation term against a sparse teacher: T² · mean over positions of
    KL(p ‖ q_T), with p the teacher's probabilities on k kept classes (0 elsewhere).

    student_logits:  (..., V) float32 or float64, at least 1-D.
    teacher_probs:   (..., k) of the same dtype, each row ≥ 0 summing to 1 (as returned by
                     topk_teacher_probs); k ≤ V.
    teacher_indices: (..., k) int64 in [0, V), distinct within a row: teacher_probs[..., j]
                     is the teacher's probability of class teacher_indices[..., j].
    T: temperature > 0; q_T = softmax(student_logits / T) over ALL V classes.
    Per position: KL = Σ_j p_j · (log p_j − log q_T[indices_j]), where an entry with p_j = 0
    contributes 0. Returns a 0-d tensor: T² times the mean of KL over all positions (every
    position counts; with k = V this equals kd_loss's soft term T² · KL). The teacher is a
    constant: no gradient flows into teacher_probs.
    Raises ValueError when teacher_probs and teacher_indices differ in shape, their leading
    shape is not student_logits.shape[:-1], k > V, or T ≤ 0.
    """
    # Hint: torch.gather picks log q_T at the kept classes; torch.xlogy(p, p) is p · log p with 0 · log 0 = 0.
    # TODO(sparse_kd_loss): your code here.
    raise NotImplementedError("TODO 22_distillation: sparse_kd_loss")


# ---------------------------------------------------------------- hidden states

class HiddenDistillLoss(nn.Module):
    """Hidden-state distillation: a learned linear map lifts the student's hidden states to
    the teacher's width, and the loss is the mean squared error to the teacher's states."""

    def __init__(self, d_student: int, d_teacher: int):
        """Holds one projection, `self.proj = nn.Linear(d_student, d_teacher)` (with a bias,
        PyTorch's default initialisation); it is trained together with the student.
        Raises ValueError when d_student or d_teacher is < 1.
        """
        super().__init__()
        # TODO(HiddenDistillLoss.__init__): your code here.
        raise NotImplementedError("TODO 22_distillation: HiddenDistillLoss.__init__")

    def forward(self, student_hidden: torch.Tensor, teacher_hidden: torch.Tensor) -> torch.Tensor:
        """student_hidden (..., d_student) and teacher_hidden (..., d_teacher) with the same
        leading shape, in proj's dtype.
        Returns a 0-d tensor: the mean over every element (all positions and all d_teacher
        features) of (proj(student_hidden) − teacher_hidden)². Gradients reach student_hidden
        and proj's weight and bias; the teacher is a constant (no gradient reaches
        teacher_hidden).
        Raises ValueError when the last axes are not d_student and d_teacher or the leading
        shapes differ.
        """
        # TODO(HiddenDistillLoss.forward): your code here.
        raise NotImplementedError("TODO 22_distillation: HiddenDistillLoss.forward")


# ---------------------------------------------------------------- sequence-level distillation

def sequence_distill_batch(teacher: nn.Module, prompts: torch.Tensor, max_new: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Sequence-level distillation: the teacher's own greedy continuations of `prompts` become
    the student's training batch (Kim and Rush 2016).

    teacher: a model (see the module docstring).
    prompts: (B, T0) int64, B ≥ 1, T0 ≥ 1.   max_new: tokens to generate, ≥ 1. The caller
             keeps T0 + max_new − 1 within the teacher's context length (no cropping).
    Generation: max_new steps; each step makes ONE teacher call on the whole batch so far,
    (B, T0 + i), with full recomputation (no cache), and appends to every row the argmax of
    that row's logits at the last position (ties go to the lowest id). seq is (B, T0 + max_new).
    Returns (inputs, targets), both (B, T0 + max_new − 1) int64: inputs = seq[:, :-1] and
    targets = seq[:, 1:] with its first T0 − 1 columns set to −100, so that the only counted
    targets are the max_new generated tokens (a student trained with these learns to continue
    the prompts as the teacher does, and never to predict the prompts themselves).
    Runs under torch.no_grad with the teacher in eval mode; its previous train/eval mode is
    restored on return. prompts is not modified.
    Raises ValueError when prompts is not 2-D with B ≥ 1 and T0 ≥ 1, or max_new < 1.
    """
    # TODO(sequence_distill_batch): your code here.
    raise NotImplementedError("TODO 22_distillation: sequence_distill_batch")
