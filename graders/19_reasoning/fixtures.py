"""Golden data for 19_reasoning, generated from solutions/ by `llmlab fixtures 19_reasoning`.

Records (JSON unless stated):
  normalize   40 number strings built from seeded parts (signs, leading and trailing zeros,
              both separators, malformed groups) and normalize_number of each;
  extract     the grader suite's completions plus 40 seeded completions assembled from
              reasoning lines, boxes, "Answer:" lines and verification lines, and
              extract_answer of each;
  vote        30 seeded lists of answers (with None and ties) and majority_vote of each;
  accuracy    (npz, float64) p and n on a grid and majority_accuracy(p, n);
  loss        (npz) logits (2, 7, 5) float64, targets, the two masks, three thinking
              weights and thinking_loss with its gradient w.r.t. the logits for each;
  reward      seeded completions of the addition task (right and wrong answers, broken
              formats) with their truths and verifiable_reward;
  traces      30 seeded (a, b) pairs of 1 to 4 digits and addition_trace of each.
"""

from __future__ import annotations

import random

import torch

import reasoning_oracle as O

SEED = 19


def _number(rng: random.Random) -> str:
    digits = rng.choice(["0", "7", "42", "305", "1234", "0007", "1000000", "98765"])
    whole = digits
    if len(digits.lstrip("0")) > 3 and rng.random() < 0.6:
        sep = rng.choice([",", " "])
        d = digits.lstrip("0")
        head = len(d) % 3 or 3
        whole = d[:head] + "".join(sep + d[i:i + 3] for i in range(head, len(d), 3))
    if rng.random() < 0.15:
        whole = whole.replace(",", ",,", 1) if "," in whole else whole[:-1] + "," + whole[-1:]
    fraction = rng.choice(["", "", ".5", ".250", ".000", ".", ".01"])
    return rng.choice(["", "", "-", "+"]) + whole + fraction


def _completion(rng: random.Random) -> str:
    lines = [f"Take {rng.randint(0, 99)} and {rng.randint(0, 999)}."]
    answer = _number(rng)
    style = rng.choice(["box", "box2", "answer", "plain", "none"])
    if style == "box":
        lines.append(f"So \\boxed{{{answer}}}.")
    elif style == "box2":
        lines.append(f"\\boxed{{{rng.randint(0, 9)}}} no, \\boxed{{{answer}}}")
    elif style == "answer":
        lines.append(f"Answer: {answer}")
    elif style == "plain":
        lines.append(f"The result is {answer}")
    if rng.random() < 0.5:
        lines.append(f"Check: {rng.randint(0, 9)} + {rng.randint(0, 9)} = {rng.randint(0, 99)}")
    return "\n".join(lines)


def generate(impl) -> dict:
    rng = random.Random(SEED)
    records = {}
    numbers = [_number(rng) for _ in range(40)]
    records["normalize"] = {"inputs": numbers, "outputs": [impl.normalize_number(s) for s in numbers]}

    texts = [s for s, _, _ in O.SUITE] + [_completion(rng) for _ in range(40)]
    records["extract"] = {"texts": texts, "answers": [impl.extract_answer(t) for t in texts]}

    lists = [[rng.choice(["3", "5", "8", None]) for _ in range(rng.randint(0, 7))] for _ in range(30)]
    records["vote"] = {"answers": lists, "winners": [impl.majority_vote(a) for a in lists]}

    ps = torch.tensor([0.0, 0.2, 0.45, 0.5, 0.55, 0.7, 0.9, 1.0], dtype=torch.float64)
    ns = torch.tensor([1, 2, 3, 4, 5, 8, 11, 20])
    grid = torch.tensor([[impl.majority_accuracy(float(p), int(n)) for n in ns] for p in ps], dtype=torch.float64)
    records["accuracy"] = {"p": ps, "n": ns, "accuracy": grid}

    g = torch.Generator().manual_seed(SEED)
    logits = torch.randn(2, 7, 5, generator=g, dtype=torch.float64) * 2
    targets = torch.randint(0, 5, (2, 7), generator=g)
    thinking = torch.tensor([[0, 0, 1, 1, 1, 0, 0], [0, 1, 1, 1, 1, 1, 0]], dtype=torch.bool)
    answer = torch.tensor([[0, 0, 0, 0, 0, 1, 1], [0, 0, 0, 0, 0, 0, 1]], dtype=torch.bool)
    weights = torch.tensor([0.0, 0.5, 1.0], dtype=torch.float64)
    rec = {"logits": logits, "targets": targets, "thinking": thinking, "answer": answer, "weights": weights}
    for i, w in enumerate(weights.tolist()):
        x = logits.clone().requires_grad_(True)
        loss = impl.thinking_loss(x, targets, thinking, answer, w)
        loss.backward()
        rec[f"loss_{i}"], rec[f"grad_{i}"] = loss.detach(), x.grad
    records["loss"] = rec

    completions, truths = [], []
    for _ in range(30):
        a, b = rng.randint(0, 999), rng.randint(0, 999)
        answer = str(a + b + rng.choice([0, 0, 1, -10]))
        text = impl.format_thinking(f"{a}+{b}=", impl.addition_trace(a, b), answer)
        completion = text[len(f"{a}+{b}="):]
        kind = rng.choice(["ok", "ok", "no_open", "no_box", "two_close", "answer_line"])
        if kind == "no_open":
            completion = completion.replace("<think>", "")
        elif kind == "no_box":
            completion = completion.replace("\\boxed{", "").rstrip("}")
        elif kind == "two_close":
            completion = completion.replace("</think>", "</think></think>")
        elif kind == "answer_line":
            completion = completion.replace("\\boxed{", "Answer: ").rstrip("}")
        completions.append(completion)
        truths.append(a + b)
    records["reward"] = {"completions": completions, "truths": truths,
                         "rewards": [impl.verifiable_reward(c, t) for c, t in zip(completions, truths)]}

    pairs = [(rng.randint(0, 10 ** rng.randint(1, 4) - 1), rng.randint(0, 10 ** rng.randint(1, 4) - 1))
             for _ in range(30)]
    records["traces"] = {"pairs": pairs, "traces": [impl.addition_trace(a, b) for a, b in pairs]}
    return records
