"""Golden data for 22_distillation, generated from solutions/ by `llmlab fixtures 22_distillation`.

Records (float64 unless stated; scalars stored with shape (1,)):
  soft        logits (3, 5) and soft_targets at T = 0.5, 1 and 4;
  kl          student, teacher (4, 6) logits and forward_kl, reverse_kl at T = 2;
  kd          student, teacher (2, 5, 7), targets (2, 5) with two −100, T = 3, alpha = 0.3:
              the loss and its gradient w.r.t. the student's logits;
  topk        teacher (4, 9), k = 3, T = 2: probs and indices (int64);
  sparse      student (4, 9) with topk's teacher, T = 2: the loss and its gradient;
  hidden      the projection's weight (6, 4) and bias (6,), student (2, 3, 4), teacher
              (2, 3, 6) hidden states and the loss;
  sequence    prompts (3, 4) (int64) continued by distill_oracle.tiny_llama(221) for 5 tokens:
              inputs and targets (int64).
"""

from __future__ import annotations

import torch

import distill_oracle as O

SEED = 22


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)

    def randn(*shape, scale=1.0):
        return torch.randn(*shape, generator=g, dtype=torch.float64) * scale

    records = {}
    logits = randn(3, 5, scale=2.0)
    records["soft"] = {"logits": logits, "t_half": impl.soft_targets(logits, 0.5),
                       "t_one": impl.soft_targets(logits, 1.0), "t_four": impl.soft_targets(logits, 4.0)}

    s, t = randn(4, 6, scale=2.0), randn(4, 6, scale=2.0)
    records["kl"] = {"student": s, "teacher": t, "forward": impl.forward_kl(s, t, 2.0),
                     "reverse": impl.reverse_kl(s, t, 2.0)}

    s, t = randn(2, 5, 7, scale=2.0), randn(2, 5, 7, scale=2.0)
    targets = torch.randint(0, 7, (2, 5), generator=g)
    targets[0, 1] = targets[1, 4] = -100
    leaf = s.clone().requires_grad_(True)
    loss = impl.kd_loss(leaf, t, targets, 3.0, 0.3)
    loss.backward()
    records["kd"] = {"student": s, "teacher": t, "targets": targets, "T": torch.tensor([3.0], dtype=torch.float64),
                     "alpha": torch.tensor([0.3], dtype=torch.float64), "loss": loss.detach().reshape(1),
                     "grad": leaf.grad}

    teacher = randn(4, 9, scale=2.0)
    probs, indices = impl.topk_teacher_probs(teacher, 3, 2.0)
    records["topk"] = {"teacher": teacher, "probs": probs, "indices": indices}

    s = randn(4, 9, scale=2.0)
    leaf = s.clone().requires_grad_(True)
    loss = impl.sparse_kd_loss(leaf, probs, indices, 2.0)
    loss.backward()
    records["sparse"] = {"student": s, "probs": probs, "indices": indices, "loss": loss.detach().reshape(1),
                         "grad": leaf.grad}

    module = impl.HiddenDistillLoss(4, 6).double()
    weight, bias = randn(6, 4, scale=0.5), randn(6, scale=0.5)
    with torch.no_grad():
        module.proj.weight.copy_(weight)
        module.proj.bias.copy_(bias)
    hs, ht = randn(2, 3, 4), randn(2, 3, 6)
    records["hidden"] = {"weight": weight, "bias": bias, "student": hs, "teacher": ht,
                         "loss": module(hs, ht).detach().reshape(1)}

    prompts = torch.randint(0, O.CONFIG["vocab_size"], (3, 4), generator=g)
    inputs, targets = impl.sequence_distill_batch(O.tiny_llama(221), prompts, 5)
    records["sequence"] = {"prompts": prompts, "inputs": inputs, "targets": targets}
    return records
