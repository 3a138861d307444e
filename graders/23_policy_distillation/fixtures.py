"""Golden data for 23_policy_distillation, generated from solutions/ by `llmlab fixtures 23_policy_distillation`.

Records (float64 unless stated):
  kl              logp_sample, logp_ref (4, 5) log-probabilities of tokens, and the k1, k2, k3
                  estimates of each element;
  reverse_kl      student and teacher logits (3, 4, 6) and the per-token reverse KL (3, 4);
  jsd             student and teacher logits (5, 6), betas (5,) = 0, 0.1, 0.5, 0.9, 1 and the
                  divergence of each beta (5, 5) (row i for betas[i]);
  on_policy_step  bigram tables (V = 5) of a student and a teacher, prompts (4, 2), the seed
                  of the step's generator and the learning rate of plain SGD; the sampled ids
                  (4, 2 + 3), the returned mean reverse-KL estimate and the student's table
                  after the step;
  gkd_step        the same tables and prompts, off-policy responses (4, 3), beta 0.5 and for
                  lam = 0 and lam = 1 (one seed each) the ids, the on_policy flag, the loss and
                  the student's table after the step.
"""

from __future__ import annotations

import torch

import policy_distillation_oracle as O

SEED = 23


def generate(impl) -> dict:
    g = torch.Generator().manual_seed(SEED)
    f64 = dict(generator=g, dtype=torch.float64)
    records = {}

    logq = torch.log_softmax(torch.randn(4, 5, **f64) * 1.5, dim=-1)
    logp = torch.log_softmax(torch.randn(4, 5, **f64) * 1.5, dim=-1)
    records["kl"] = {"logp_sample": logq, "logp_ref": logp,
                     **{k: impl.kl_estimate(logq, logp, k) for k in ("k1", "k2", "k3")}}

    s, t = torch.randn(3, 4, 6, **f64) * 2, torch.randn(3, 4, 6, **f64) * 2
    records["reverse_kl"] = {"student": s, "teacher": t, "out": impl.token_reverse_kl(s, t)}

    s, t = torch.randn(5, 6, **f64) * 2, torch.randn(5, 6, **f64) * 2
    betas = torch.tensor([0.0, 0.1, 0.5, 0.9, 1.0], dtype=torch.float64)
    records["jsd"] = {"student": s, "teacher": t, "betas": betas,
                      "out": torch.stack([impl.generalized_jsd(s, t, float(b)) for b in betas])}

    student_table, teacher_table = torch.randn(5, 5, **f64), torch.randn(5, 5, **f64) * 2
    prompts = torch.randint(0, 5, (4, 2), generator=g)
    lr, seed = 0.5, 2323
    student = O.TableLM(student_table)
    opt = O.RecordingOptimizer(student.parameters(), lr=lr)
    ids, kl = impl.on_policy_distill_step(student, O.TableLM(teacher_table), prompts, opt, 3,
                                          torch.Generator().manual_seed(seed))
    records["on_policy_step"] = {"student_table": student_table, "teacher_table": teacher_table, "prompts": prompts,
                                 "seed": torch.tensor([seed]), "lr": torch.tensor([lr], dtype=torch.float64),
                                 "ids": ids, "kl": torch.tensor([kl], dtype=torch.float64),
                                 "table_after": student.table.detach().clone()}

    responses = torch.randint(0, 5, (4, 3), generator=g)
    rec = {"student_table": student_table, "teacher_table": teacher_table, "prompts": prompts,
           "responses": responses, "beta": torch.tensor([0.5], dtype=torch.float64),
           "lr": torch.tensor([lr], dtype=torch.float64)}
    for lam in (0, 1):
        student = O.TableLM(student_table)
        opt = O.RecordingOptimizer(student.parameters(), lr=lr)
        seed = 2300 + lam
        ids, on_policy, loss = impl.gkd_step(student, O.TableLM(teacher_table), prompts, responses, opt,
                                             float(lam), 0.5, torch.Generator().manual_seed(seed))
        rec.update({f"seed_lam{lam}": torch.tensor([seed]), f"ids_lam{lam}": ids,
                    f"on_policy_lam{lam}": torch.tensor([on_policy]),
                    f"loss_lam{lam}": torch.tensor([loss], dtype=torch.float64),
                    f"table_after_lam{lam}": student.table.detach().clone()})
    records["gkd_step"] = rec
    return records
