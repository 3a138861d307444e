"""Instructor-only graders for 22_distillation (left out of student bundles).

  - kd_loss on the logits of the course's trained tiny LLaMA (teacher) and a random student
    over real text, against the oracle, value and gradient, in float32;
  - gradient descent on free student logits with kd_loss (alpha = 1) reaches the teacher's
    softened distribution, and with reverse_kl as the loss too (both divergences vanish only
    at q = p);
  - sequence_distill_batch with the trained tiny LLaMA equals each prompt continued alone.
"""

from __future__ import annotations

import pytest
import torch

import distill_oracle as O
from llmlab.lib.corpus import course_corpus
from llmlab.lib.llama import load_tiny_llama
from llmlab.testing import check, tensors
from llmlab.testing.tolerances import Tolerance


def _windows(codec, n=4, length=32):
    ids = codec.encode(course_corpus()[:20_000])
    rows = torch.stack([ids[1000 * i: 1000 * i + length + 1] for i in range(n)])    # (n, length + 1)
    return rows[:, :-1], rows[:, 1:]


@pytest.mark.hidden
@pytest.mark.points(2)
def test_kd_loss_trained_teacher_hidden(impl):
    teacher, codec, _ = load_tiny_llama()
    x, y = _windows(codec)
    student = O.tiny_llama(229, vocab_size=codec.vocab_size, block_size=64)
    with torch.no_grad():
        t_logits = teacher(x)[0]                                         # (4, 32, V) float32
        s_logits = student(x)[0]
    y = y.clone()
    y[:, :3] = -100                                                       # a prompt-like prefix ignored
    for T, alpha in ((2.0, 0.5), (4.0, 0.9)):
        case = check.describe(student_logits=s_logits, teacher_logits=t_logits, targets=y, T=T, alpha=alpha,
                              teacher="trained tiny_llama")
        check.close(impl.kd_loss(s_logits, t_logits, y, T, alpha), O.kd_oracle(s_logits, t_logits, y, T, alpha),
                    unit="kd_loss", case=case, kind="loss", what="the loss on real text",
                    mistakes={k: (lambda fn=fn: fn(s_logits, t_logits, y)) for k, fn in O.kd_mistakes(T, alpha).items()})
        check.grads(lambda a, b: impl.kd_loss(a, b, y, T, alpha), lambda a, b: O.kd_oracle(a, b, y, T, alpha),
                    [s_logits, t_logits], names=["student_logits", "teacher_logits"], unit="kd_loss", case=case)


@pytest.mark.hidden
@pytest.mark.points(2)
def test_gradient_descent_reaches_teacher_hidden(impl):
    t = tensors.randn((5, 6), 91, torch.float64, 2.0)
    y = tensors.randint((5,), 92, 6)
    T = 2.0
    target = torch.softmax(t / T, -1)
    for unit, loss_fn in (("kd_loss", lambda s: impl.kd_loss(s, t, y, T, 1.0)),
                          ("reverse_kl", lambda s: impl.reverse_kl(s, t, T).mean())):
        s = torch.zeros(5, 6, dtype=torch.float64, requires_grad=True)
        opt = torch.optim.Adam([s], lr=0.1)
        for _ in range(400):
            opt.zero_grad()
            loss_fn(s).backward()
            opt.step()
        reached = torch.softmax(s.detach() / T, -1)
        check.close(reached, target, unit=unit, kind="reduction",
                    # 400 Adam steps from uniform logits get within about 1e-4 of the minimum here
                    tol=Tolerance(0.0, 2e-3),
                    case=check.describe(teacher_logits=t, T=T, steps=400, optimiser="Adam(lr=0.1)"),
                    what="the student's softened distribution after minimising the loss (must reach the teacher's)")


@pytest.mark.hidden
@pytest.mark.points(1)
def test_sequence_batch_trained_teacher_hidden(impl):
    teacher, codec, _ = load_tiny_llama()
    x, _ = _windows(codec, n=3, length=10)
    inputs, targets = impl.sequence_distill_batch(teacher, x, 12)
    seq = O.greedy_rows(teacher, x, 12)
    case = check.describe(prompts=x, max_new=12, teacher="trained tiny_llama")
    check.equal(inputs, seq[:, :-1], unit="sequence_distill_batch", case=case,
                what="inputs: the trained teacher's greedy continuations of corpus prompts")
    want = seq[:, 1:].clone()
    want[:, :9] = -100
    check.equal(targets, want, unit="sequence_distill_batch", case=case, what="targets")
