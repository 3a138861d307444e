"""Helpers shared by the 22_distillation graders (instructor code, not a test).

Independent oracles, written differently from the reference:
  - `kl_div_forward` / `kl_div_reverse`: the per-position KL through PyTorch's `F.kl_div`;
  - `kd_oracle`: Hinton's loss from `F.cross_entropy(ignore_index=-100)` and
    `F.kl_div(reduction="batchmean")` on the flattened positions;
  - `kd_mistakes`: the known mistakes of kd_loss, as functions of the same inputs;
  - `topk_oracle`: the k largest logits by a full sort, renormalised with an explicit
    exp / sum;
  - `sparse_oracle`: the sparse teacher scattered into a dense (..., V) distribution (zeros
    elsewhere), then Σ p log(p / q) over every class;
  - `greedy_rows`: the teacher's greedy continuation of each prompt alone (batch 1), one full
    call per token.
Fake and small models: `TableLM` (bigram logits, records its calls), `tiny_llama(seed)` (a
small given TinyLlama with every parameter drawn fresh).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from llmlab.lib.llama import LlamaConfig, TinyLlama
from llmlab.testing import tensors

TOPIC = "22_distillation"
CONFIG = dict(vocab_size=7, block_size=24, n_layer=1, n_head=2, n_kv_head=1, d_model=16)


# ---------------------------------------------------------------- KL and the loss

def kl_div_forward(student_logits, teacher_logits, T=1.0):
    """KL(p_T ‖ q_T) per position, through F.kl_div (its input is log q, its target p)."""
    return F.kl_div(F.log_softmax(student_logits / T, -1), F.log_softmax(teacher_logits / T, -1),
                    reduction="none", log_target=True).sum(-1)


def kl_div_reverse(student_logits, teacher_logits, T=1.0):
    """KL(q_T ‖ p_T) per position, through F.kl_div with the roles exchanged."""
    return F.kl_div(F.log_softmax(teacher_logits / T, -1), F.log_softmax(student_logits / T, -1),
                    reduction="none", log_target=True).sum(-1)


def _flat(student_logits, teacher_logits, targets):
    V = student_logits.shape[-1]
    return student_logits.reshape(-1, V), teacher_logits.reshape(-1, V), targets.reshape(-1)


def kd_oracle(student_logits, teacher_logits, targets, T, alpha):
    """(1 − α) CE + α T² KL with PyTorch's own reductions on the kept positions."""
    s, t, y = _flat(student_logits, teacher_logits.detach(), targets)
    keep = y != -100
    hard = F.cross_entropy(s, y, ignore_index=-100)
    soft = F.kl_div(F.log_softmax(s[keep] / T, -1), F.softmax(t[keep] / T, -1), reduction="batchmean")
    return (1 - alpha) * hard + alpha * T * T * soft


def kd_mistakes(T, alpha):
    """name -> a wrong loss function of (student_logits, teacher_logits, targets)."""
    def build(kl_term, ce_logits=lambda s: s, weights=(1 - alpha, alpha), scale=T * T):
        def loss(student_logits, teacher_logits, targets):
            s, t, y = _flat(student_logits, teacher_logits.detach(), targets)
            keep = y != -100
            hard = F.cross_entropy(ce_logits(s), y, ignore_index=-100)
            return weights[0] * hard + weights[1] * scale * kl_term(s, t, keep)
        return loss

    def kl(s_scale, t_scale, reverse=False, mean_over_classes=False, all_positions=False):
        def term(s, t, keep):
            rows = slice(None) if all_positions else keep
            log_q, log_p = F.log_softmax(s[rows] / s_scale, -1), F.log_softmax(t[rows] / t_scale, -1)
            pair = (log_p, log_q) if reverse else (log_q, log_p)
            per = F.kl_div(*pair, reduction="none", log_target=True)
            return per.mean() if mean_over_classes else per.sum(-1).mean()
        return term

    return {
        "the KL direction swapped: KL(student ‖ teacher) instead of KL(teacher ‖ student)": build(kl(T, T, reverse=True)),
        "the T² factor missing": build(kl(T, T), scale=1.0),
        "the teacher softened by T but the student not": build(kl(1.0, T)),
        "the student softened by T but the teacher not": build(kl(T, 1.0)),
        "alpha and 1 − alpha exchanged": build(kl(T, T), weights=(alpha, 1 - alpha)),
        "the KL averaged over positions × classes (F.kl_div's reduction='mean') instead of summed over "
        "classes": build(kl(T, T, mean_over_classes=True)),
        "the hard-label CE computed on the softened logits student_logits / T": build(kl(T, T), ce_logits=lambda s: s / T),
        "positions with target −100 counted in the KL term": build(kl(T, T, all_positions=True)),
    }


# ---------------------------------------------------------------- the sparse teacher

def topk_oracle(teacher_logits, k, T=1.0):
    """(probs, indices) of the k largest logits, by a full descending sort."""
    values, order = torch.sort(teacher_logits, dim=-1, descending=True)
    kept = values[..., :k]
    weights = torch.exp((kept - kept[..., :1]) / T)
    return weights / weights.sum(-1, keepdim=True), order[..., :k]


def dense_teacher(teacher_probs, teacher_indices, V):
    """The sparse teacher as a dense (..., V) distribution, 0 outside the kept classes."""
    dense = torch.zeros(*teacher_probs.shape[:-1], V, dtype=teacher_probs.dtype)
    return dense.scatter(-1, teacher_indices, teacher_probs)


def sparse_oracle(student_logits, teacher_probs, teacher_indices, T=1.0):
    """T² · mean over positions of Σ_v p_v log(p_v / q_v) over all V classes (0 log 0 = 0)."""
    p = dense_teacher(teacher_probs.detach(), teacher_indices, student_logits.shape[-1])
    log_q = F.log_softmax(student_logits / T, -1)
    terms = torch.where(p > 0, p * (torch.log(torch.where(p > 0, p, torch.ones_like(p))) - log_q),
                        torch.zeros_like(p))
    return T * T * terms.sum(-1).mean()


# ---------------------------------------------------------------- models for sequence distillation

def tiny_llama(seed: int, dtype: torch.dtype = torch.float32, scale: float = 0.5, **overrides) -> TinyLlama:
    """The given TinyLlama of CONFIG (changed by `overrides`), every parameter drawn fresh."""
    return tensors.random_model(TinyLlama(LlamaConfig(**{**CONFIG, **overrides})), seed, dtype, scale)


class TableLM(nn.Module):
    """logits[b, t] = table[idx[b, t]] for a (V, V) table (a bigram model). Records the shape,
    whether autograd was on and the train/eval mode of every call in `calls`."""

    def __init__(self, table: torch.Tensor):
        super().__init__()
        self.table = table
        self.anchor = nn.Parameter(torch.zeros((), dtype=table.dtype))   # outputs carry autograd history
        self.calls: list[tuple[tuple[int, ...], bool, bool]] = []

    def forward(self, idx: torch.Tensor, targets=None):
        self.calls.append((tuple(idx.shape), torch.is_grad_enabled(), self.training))
        return self.table[idx] + self.anchor, None


@torch.no_grad()
def greedy_rows(teacher, prompts, max_new):
    """Each prompt continued alone (batch 1), one full call per token, ties to the lowest id
    (a Python max over the row's list). Returns (B, T0 + max_new) int64."""
    rows = []
    for prompt in prompts:
        seq = prompt.tolist()
        for _ in range(max_new):
            last = teacher(torch.tensor([seq]))[0][0, -1].tolist()
            seq.append(last.index(max(last)))
        rows.append(seq)
    return torch.tensor(rows)
