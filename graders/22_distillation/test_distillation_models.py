"""Graders for 22_distillation: hidden-state distillation and sequence-level distillation.

HiddenDistillLoss: the projection's type, widths, bias and default initialisation; a hand
value and the golden value; an `F.linear` + `F.mse_loss` oracle on several shapes with the
gradients of the student's states, the weight and the bias; the teacher detached; Raises.
sequence_distill_batch: the batched greedy continuation equals each prompt continued alone
(random TinyLlamas, golden data); the targets mask exactly the prompt's predictions; one
teacher call per new token on the whole batch, under no_grad in eval mode, mode restored;
ties to the lowest id; prompts untouched; Raises.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given
from hypothesis import strategies as st
from torch import nn

import distill_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds


def _hidden(impl, d_s, d_t, seed, dtype=torch.float64):
    module = impl.HiddenDistillLoss(d_s, d_t).to(dtype)
    with torch.no_grad():
        module.proj.weight.copy_(tensors.randn((d_t, d_s), seed, dtype, 0.5))
        module.proj.bias.copy_(tensors.randn((d_t,), seed + 1, dtype, 0.5))
    return module


# ---------------------------------------------------------------- HiddenDistillLoss

@pytest.mark.points(1)
def test_hidden_projection_and_by_hand(impl):
    torch.manual_seed(0)
    module = impl.HiddenDistillLoss(3, 5)
    check.that(isinstance(module, nn.Module) and isinstance(getattr(module, "proj", None), nn.Linear),
               "HiddenDistillLoss", "self.proj must be an nn.Linear", case="d_student=3, d_teacher=5")
    proj = module.proj
    check.equal((proj.in_features, proj.out_features, proj.bias is not None), (3, 5, True),
                unit="HiddenDistillLoss", case="d_student=3, d_teacher=5",
                what="(in_features, out_features, has a bias) of proj (student width → teacher width)",
                mistakes={"the projection maps teacher → student": (5, 3, True)})
    torch.manual_seed(0)
    default = nn.Linear(3, 5)
    check.close(proj.weight, default.weight, unit="HiddenDistillLoss", kind="exact", case="torch.manual_seed(0)",
                what="proj.weight (PyTorch's default initialisation, drawn first after the seed)")
    check.equal(sorted(n for n, _ in module.named_parameters()), ["proj.bias", "proj.weight"],
                unit="HiddenDistillLoss", case="d_student=3, d_teacher=5", what="the trainable parameters")
    # by hand: proj = [[1, 0], [0, 2], [1, 1]] plus bias [0, 1, −1]; one position s = [1, 2], teacher [1, 4, 0]
    # proj(s) = [1, 5, 2], differences [0, 1, 2], mean of squares (0 + 1 + 4) / 3 = 5/3
    module = impl.HiddenDistillLoss(2, 3).double()
    with torch.no_grad():
        module.proj.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0], [1.0, 1.0]]))
        module.proj.bias.copy_(torch.tensor([0.0, 1.0, -1.0]))
    s = torch.tensor([[1.0, 2.0]], dtype=torch.float64)
    t = torch.tensor([[1.0, 4.0, 0.0]], dtype=torch.float64)
    check.close(module(s, t), torch.tensor(5 / 3, dtype=torch.float64), unit="HiddenDistillLoss.forward",
                case=check.describe(student_hidden=s, teacher_hidden=t), kind="loss",
                what="mean of (proj(s) − t)² (by hand (0 + 1 + 4) / 3)",
                mistakes={"summed instead of averaged": torch.tensor(5.0, dtype=torch.float64),
                          "the bias left out": torch.tensor(((1 - 1) ** 2 + (4 - 4) ** 2 + (3 - 0) ** 2) / 3,
                                                           dtype=torch.float64)})
    ref = reference.load(O.TOPIC, "hidden")
    module = impl.HiddenDistillLoss(4, 6).double()
    with torch.no_grad():
        module.proj.weight.copy_(ref["weight"])
        module.proj.bias.copy_(ref["bias"])
    check.close(module(ref["student"], ref["teacher"]), ref["loss"][0], unit="HiddenDistillLoss.forward",
                case=check.describe(student_hidden=ref["student"], teacher_hidden=ref["teacher"]), kind="loss",
                what="the reference loss")


@pytest.mark.points(2)
@examples(6)
@given(seed=seeds(), lead=st.sampled_from([(1,), (5,), (2, 3), (1, 2, 2)]), widths=st.sampled_from([(4, 6), (3, 3),
                                                                                                   (6, 2)]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_hidden_matches_oracle_and_gradients(impl, seed, lead, widths, dtype):
    d_s, d_t = widths
    module = _hidden(impl, d_s, d_t, seed, dtype)
    s, t = tensors.randn(lead + (d_s,), seed + 2, dtype), tensors.randn(lead + (d_t,), seed + 3, dtype)
    case = check.describe(student_hidden=s, teacher_hidden=t, d_student=d_s, d_teacher=d_t)
    W, b = module.proj.weight.detach().clone(), module.proj.bias.detach().clone()
    oracle = lambda a, c, w, bias: F.mse_loss(F.linear(a, w, bias), c.detach())

    check.close(module(s, t), oracle(s, t, W, b), unit="HiddenDistillLoss.forward", case=case, kind="loss",
                what="the loss (compared with F.mse_loss(F.linear(s, W, b), t))",
                mistakes={"averaged over positions only (summed over features)":
                              ((F.linear(s, W, b) - t) ** 2).sum(-1).mean(),
                          "summed instead of averaged": ((F.linear(s, W, b) - t) ** 2).sum()})

    # gradients w.r.t. the student's states (the oracle detaches the teacher: its gradient is not compared) ...
    module.double()
    check.grads(module, lambda a, c: oracle(a, c, W.double(), b.double()),
                [s.double(), t.double()], names=["student_hidden", "teacher_hidden"],
                unit="HiddenDistillLoss.forward", case=case)
    # ... and w.r.t. the projection's own parameters
    module.zero_grad()
    module(s.double(), t.double()).backward()
    w_leaf, b_leaf = W.double().requires_grad_(True), b.double().requires_grad_(True)
    oracle(s.double(), t.double(), w_leaf, b_leaf).backward()
    for name, got, want in (("proj.weight", module.proj.weight.grad, w_leaf.grad),
                            ("proj.bias", module.proj.bias.grad, b_leaf.grad)):
        check.that(got is not None, "HiddenDistillLoss.forward", f"no gradient reaches {name}", case=case)
        check.close(got, want, unit="HiddenDistillLoss.forward", case=case, kind="gradient",
                    what=f"the gradient w.r.t. {name}")


@pytest.mark.points(1)
def test_hidden_teacher_detached_and_raises(impl):
    module = _hidden(impl, 3, 4, 7)
    s = tensors.randn((2, 3), 8).requires_grad_(True)
    t = tensors.randn((2, 4), 9).requires_grad_(True)
    module(s, t).backward()
    case = check.describe(student_hidden=s, teacher_hidden=t)
    check.that(s.grad is not None, "HiddenDistillLoss.forward", "no gradient reaches student_hidden", case=case)
    check.that(t.grad is None or bool((t.grad == 0).all()), "HiddenDistillLoss.forward",
               "a gradient reached teacher_hidden: the teacher is a constant (detach it)", case=case)
    narrow = impl.HiddenDistillLoss(1, 1).double()                        # widths of 1 are allowed
    with torch.no_grad():
        narrow.proj.weight.fill_(2.0)
        narrow.proj.bias.fill_(-1.0)
    one_s, one_t = torch.tensor([[1.0], [3.0]], dtype=torch.float64), torch.tensor([[0.0], [4.0]], dtype=torch.float64)
    check.close(narrow(one_s, one_t), torch.tensor(1.0, dtype=torch.float64), unit="HiddenDistillLoss",
                case="HiddenDistillLoss(1, 1), weight 2, bias −1; student [[1], [3]], teacher [[0], [4]]", kind="loss",
                what="the loss with d_student = d_teacher = 1 (by hand ((2 − 1 − 0)² + (6 − 1 − 4)²) / 2 = 1)")
    for args, why in (((0, 4), "d_student < 1"), ((3, 0), "d_teacher < 1")):
        check.expect_raises(ValueError, impl.HiddenDistillLoss, *args, unit="HiddenDistillLoss",
                            case=f"HiddenDistillLoss{args}", why=why)
    s0, t0 = s.detach(), t.detach()
    for a, b, why in ((s0[:, :2], t0, "student width is not d_student"), (s0, t0[:, :3], "teacher width is not d_teacher"),
                      (s0, t0[:1], "leading shapes differ"), (s0[0], t0, "leading shapes differ"),
                      (torch.tensor(1.0), t0, "0-d student_hidden"), (s0, torch.tensor(1.0), "0-d teacher_hidden")):
        check.expect_raises(ValueError, module, a, b, unit="HiddenDistillLoss.forward",
                            case=check.describe(student_hidden=a, teacher_hidden=b), why=why)


# ---------------------------------------------------------------- sequence_distill_batch

@pytest.mark.points(2)
def test_sequence_batch_greedy_and_targets(impl):
    for seed, B, T0, max_new in ((220, 3, 4, 5), (223, 1, 1, 6), (224, 2, 3, 1)):
        teacher = O.tiny_llama(seed)
        prompts = tensors.randint((B, T0), seed + 1, O.CONFIG["vocab_size"])
        case = check.describe(prompts=prompts, max_new=max_new, teacher=f"tiny_llama({seed})")
        inputs, targets = impl.sequence_distill_batch(teacher, prompts, max_new)
        seq = O.greedy_rows(teacher, prompts, max_new)                   # (B, T0 + max_new)
        check.equal(inputs, seq[:, :-1], unit="sequence_distill_batch", case=case,
                    what="inputs = the prompts with the teacher's greedy continuation, without the last token")
        want = seq[:, 1:].clone()
        want[:, :T0 - 1] = -100
        unmasked = seq[:, 1:]
        off_by_one = want.clone()
        off_by_one[:, :T0] = -100
        check.equal(targets, want, unit="sequence_distill_batch", case=case,
                    what="targets = inputs shifted by one, with the first T0 − 1 (the prompt's own predictions) −100",
                    mistakes={"the prompt's predictions not masked": unmasked,
                              "the first generated token masked too (T0 columns, not T0 − 1)": off_by_one})
        check.that(inputs.dtype == torch.int64 and targets.dtype == torch.int64, "sequence_distill_batch",
                   f"inputs and targets must be int64, got {inputs.dtype} and {targets.dtype}", case=case)
    ref = reference.load(O.TOPIC, "sequence")
    inputs, targets = impl.sequence_distill_batch(O.tiny_llama(221), ref["prompts"], 5)
    case = check.describe(prompts=ref["prompts"], max_new=5, teacher="tiny_llama(221)")
    check.equal(inputs, ref["inputs"], unit="sequence_distill_batch", case=case, what="the reference inputs")
    check.equal(targets, ref["targets"], unit="sequence_distill_batch", case=case, what="the reference targets")


@pytest.mark.points(1)
def test_sequence_batch_calls_modes_and_ties(impl):
    # a bigram teacher with ties: after 0 the logits of 1 and 2 are equal (lowest id: 1)
    table = torch.tensor([[0.0, 2.0, 2.0, -1.0],
                          [1.0, 0.0, 3.0, 0.5],
                          [4.0, 0.0, 0.0, 4.0],
                          [0.0, 1.0, 0.0, 1.0]], dtype=torch.float64)
    prompts = torch.tensor([[3, 0], [1, 2]])
    saved = prompts.clone()
    for training in (True, False):
        teacher = O.TableLM(table).train(training)
        inputs, targets = impl.sequence_distill_batch(teacher, prompts, 4)
        case = check.describe(prompts=prompts, max_new=4, teacher_training=training)
        # row 0: 0 → 1 (tie 1/2), 1 → 2, 2 → 0 (tie 0/3), 0 → 1; row 1: 2 → 0, 0 → 1, 1 → 2, 2 → 0
        check.equal(inputs.tolist(), [[3, 0, 1, 2, 0], [1, 2, 0, 1, 2]], unit="sequence_distill_batch", case=case,
                    what="greedy continuation of a bigram teacher with ties (ties go to the lowest id)")
        check.equal(targets.tolist(), [[-100, 1, 2, 0, 1], [-100, 0, 1, 2, 0]], unit="sequence_distill_batch",
                    case=case, what="targets")
        check.equal([c[0] for c in teacher.calls], [(2, 2), (2, 3), (2, 4), (2, 5)], unit="sequence_distill_batch",
                    case=case, what="shapes of the teacher calls (one call per new token on the whole batch so far)")
        check.that(not any(c[1] for c in teacher.calls), "sequence_distill_batch",
                   "the teacher ran with autograd on: generate under torch.no_grad()", case=case)
        check.that(not any(c[2] for c in teacher.calls), "sequence_distill_batch",
                   "the teacher ran in train mode: call teacher.eval() before generating", case=case)
        check.that(teacher.training == training, "sequence_distill_batch",
                   f"the teacher's mode was not restored: it was {'train' if training else 'eval'} before, "
                   f"{'train' if teacher.training else 'eval'} after", case=case)
        check.that(not inputs.requires_grad and torch.equal(prompts, saved), "sequence_distill_batch",
                   "the outputs must not require grad, and prompts must be left unchanged", case=case)


@pytest.mark.points(1)
def test_sequence_batch_raises(impl):
    teacher = O.TableLM(torch.zeros(4, 4, dtype=torch.float64))
    for prompts, max_new, why in ((torch.tensor([1, 2]), 3, "1-D prompts"), (torch.zeros(0, 3, dtype=torch.long), 3,
                                                                             "B = 0"),
                                  (torch.zeros(2, 0, dtype=torch.long), 3, "T0 = 0"),
                                  (torch.zeros(2, 2, 1, dtype=torch.long), 3, "3-D prompts"),
                                  (torch.zeros(2, 2, dtype=torch.long), 0, "max_new = 0")):
        check.expect_raises(ValueError, impl.sequence_distill_batch, teacher, prompts, max_new,
                            unit="sequence_distill_batch", case=check.describe(prompts=prompts, max_new=max_new),
                            why=why)
