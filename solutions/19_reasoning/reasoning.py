"""Topic 19: chain of thought and thinking models — answers a program can check, traces a model can learn.

A model that "thinks" writes its working before its answer. Three things make that trainable:

  1. a TEMPLATE that separates the two:  prompt <think> working </think> \\boxed{answer};
  2. a VERIFIER: a program that reads the final answer out of free text (the last box, an
     "Answer:" line, or as a fallback the last number outside verification lines), writes
     numbers in one canonical form, and turns "right format, right answer" into a reward;
  3. DATA: worked traces (here: column-by-column addition with carries), kept or thrown away
     by that verifier (rejection sampling), and a loss that weighs the thinking tokens and the
     answer tokens separately.

Sampling several traces and voting on their answers (self-consistency) buys accuracy: with
two possible answers and per-sample accuracy p > 1/2, the majority of n samples is right with
a probability given by the binomial distribution, which grows with n.

Text is a Python str; masks are bool tensors over the characters of a text (one token per
character, as with the given `llmlab.lib.text.CharCodec`); logits are float32 or float64.
"""

from __future__ import annotations

import math
import re
from typing import Callable, Sequence

import torch
import torch.nn.functional as F

THINK_OPEN = "<think>"
THINK_CLOSE = "</think>"
BOXED = "\\boxed{"
FORMAT_REWARD = 0.1       # a well-formatted completion with a wrong answer
CORRECT_REWARD = 1.0      # a well-formatted completion with the right answer


# ---------------------------------------------------------------- reading answers

def normalize_number(text: str) -> str | None:
    """The canonical form of a number written as text, or None when `text` is not one number.

    Accepted, after stripping surrounding whitespace (str.strip): an optional sign "+" or "-";
    an integer part of ASCII digits 0-9; optionally "." and one or more digits. The integer part
    is plain digits ("1234", leading zeros allowed) or thousands groups with ONE kind of
    separator, "," or a single space " ": 1 to 3 digits, then groups of exactly 3 digits, each
    after a separator ("1,234,567", "1 234 567"; not "12,34", "1,234 567", "1234,567",
    "1  234"). Nothing else is a number: not "5.", ".5", "1e3", "1/2", "$5", "٣" (non-ASCII digits).
    Canonical form: separators removed; leading zeros of the integer part removed (at least one
    digit kept); trailing zeros of the fraction removed, and the "." with them when no digit is
    left; "+" dropped; "-" kept only when the value is not zero.
    Examples: "-0012.500" -> "-12.5", " +1,000 " -> "1000", "1 234.0" -> "1234", "-0.00" -> "0",
    "0.250" -> "0.25", "12,34" -> None.
    Returns a str or None.
    Raises TypeError when text is not a str.
    """
    ### BEGIN SOLUTION
    if not isinstance(text, str):
        raise TypeError(f"normalize_number: text must be a str, got {type(text).__name__}")
    match = re.fullmatch(r"([+-]?)([0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?: [0-9]{3})+|[0-9]+)(?:\.([0-9]+))?",
                         text.strip())
    if match is None:
        return None
    sign, whole, fraction = match.group(1), match.group(2), match.group(3) or ""
    whole = whole.replace(",", "").replace(" ", "").lstrip("0") or "0"
    fraction = fraction.rstrip("0")
    number = whole + "." + fraction if fraction else whole
    if sign == "-" and number != "0":
        number = "-" + number
    return number
    ### END SOLUTION


def last_box(text: str) -> str | None:
    """The content of the last complete, non-empty box of a text, stripped; None when there is none.

    A complete box is the 7 characters `\\boxed{`, a content whose braces balance (nested
    `{...}` counted) and the `}` that closes it; a box whose braces never close is not complete
    ("\\boxed{1" holds none). Among the complete boxes whose content is not empty after
    stripping whitespace (str.strip), the one that STARTS last decides: in
    "\\boxed{1} then \\boxed{2}" it is "2", in "\\boxed{\\boxed{3}}" the inner one, "3", and in
    "\\boxed{\\frac{1}{2}}" it is "\\frac{1}{2}". Other braces of the text do not matter.
    Returns the stripped content (a str) or None.
    """
    # Hint: from each "\\boxed{" walk forward with a depth counter; str.find(sub, start) finds the next one.
    ### BEGIN SOLUTION
    boxes = []
    start = text.find(BOXED)
    while start != -1:
        depth, i = 1, start + len(BOXED)
        while i < len(text) and depth > 0:
            depth += {"{": 1, "}": -1}.get(text[i], 0)
            i += 1
        content = text[start + len(BOXED):i - 1].strip()
        if depth == 0 and content:
            boxes.append(content)
        start = text.find(BOXED, start + 1)
    return boxes[-1] if boxes else None
    ### END SOLUTION


def extract_answer(text: str) -> str | None:
    """The final answer of a completion, or None when it states none.

    The first of these rules that finds an answer decides:
    1. Boxed. When last_box(text) is not None: its canonical form when normalize_number
       accepts it ("\\boxed{1 234}" -> "1234"), else it as it is ("\\frac{1}{2}").
    2. "Answer:". The LAST occurrence of "answer:" in any letter case ("Answer:", "ANSWER:",
       "Final answer:"), and the rest of its line up to the next "\\n", stripped, with one
       trailing "." removed: its canonical form when normalize_number accepts it ("1 234"),
       else the FIRST number (below) in it, canonical ("42 apples" -> "42"). No number on
       that line: this rule finds nothing.
    3. Fallback. The LAST number in the text outside verification lines: lines (split at
       "\\n") that begin, after leading whitespace, with "check" or "verif" in any letter case
       ("Check: 6 * 7 = 42", "Verification: ..."). Canonical form.
    Otherwise None.
    A number in running text is a match of the Python regular expression
        (?<![\\w.])-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\\.[0-9]+)?(?!\\w)
    found left to right without overlaps (re.finditer): "1,234" is one number, "x2" and
    "3rd" hold none, "7-5" holds 7 and 5, "= -5" holds -5, "3.14" is one number.
    Returns a str or None.
    Raises TypeError when text is not a str.
    """
    # Hint: rule 1 is last_box; re.finditer(..., re.IGNORECASE) finds every "answer:".
    ### BEGIN SOLUTION
    if not isinstance(text, str):
        raise TypeError(f"extract_answer: text must be a str, got {type(text).__name__}")
    number = r"(?<![\w.])-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?(?!\w)"
    box = last_box(text)
    if box is not None:
        return normalize_number(box) or box
    markers = list(re.finditer("answer:", text, re.IGNORECASE))
    if markers:
        rest = text[markers[-1].end():].split("\n")[0].strip()
        rest = rest[:-1] if rest.endswith(".") else rest
        if normalize_number(rest) is not None:
            return normalize_number(rest)
        first = re.search(number, rest)
        if first is not None:
            return normalize_number(first.group())
    found = [m.group() for line in text.split("\n")
             if not line.lstrip().lower().startswith(("check", "verif"))
             for m in re.finditer(number, line)]
    return normalize_number(found[-1]) if found else None
    ### END SOLUTION


# ---------------------------------------------------------------- voting

def majority_vote(answers: Sequence[str | None]) -> str | None:
    """Self-consistency: the answer given most often, a sample without an answer (None) ignored.

    answers: a list or tuple of str or None, compared exactly as strings (normalise first).
    Tie rule: among the answers with the highest count, the one whose FIRST occurrence comes
    earliest in `answers` (["7", "5", "5", "7"] -> "7").
    Returns a str, or None when no entry is a str (an empty input included). The input is not
    modified.
    """
    ### BEGIN SOLUTION
    counts: dict[str, int] = {}                      # insertion order = order of first occurrence
    for answer in answers:
        if answer is not None:
            counts[answer] = counts.get(answer, 0) + 1
    best, best_count = None, 0
    for answer, count in counts.items():
        if count > best_count:
            best, best_count = answer, count
    return best
    ### END SOLUTION


def majority_accuracy(p: float, n: int) -> float:
    """The probability that majority_vote of n samples is correct in the two-answer setting.

    Each sample is independently correct with probability p and otherwise gives the same wrong
    answer. With k correct samples out of n the vote is correct when k > n / 2; at a tie
    (n even, k = n / 2) the tie rule returns the answer seen first, and given a tie the first
    sample is correct with probability exactly 1/2. So
        P = Σ_{k > n/2} C(n, k) p^k (1 − p)^(n − k) + ½ C(n, n/2) p^(n/2) (1 − p)^(n/2),
    the last term for even n only (with 0^0 = 1).
    p: float in [0, 1].   n: int ≥ 1.
    Returns a Python float (within a relative 1e-12 of the exact value for n ≤ 200).
    Raises ValueError when p is outside [0, 1] or n < 1.
    """
    ### BEGIN SOLUTION
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"majority_accuracy: p must be in [0, 1], got {p}")
    if n < 1:
        raise ValueError(f"majority_accuracy: n must be ≥ 1, got {n}")
    total = 0.0
    for k in range(n + 1):
        term = math.comb(n, k) * p ** k * (1.0 - p) ** (n - k)
        if 2 * k > n:
            total += term
        elif 2 * k == n:
            total += 0.5 * term
    return total
    ### END SOLUTION


# ---------------------------------------------------------------- the thinking template

def format_thinking(prompt: str, thinking: str, answer: str) -> str:
    """The thinking template: prompt + "<think>" + thinking + "</think>" + "\\boxed{" + answer + "}".

    Nothing is added or stripped (no spaces, no newlines): format_thinking("2+2=", "", "4") is
    "2+2=<think></think>\\boxed{4}". Generation starts after the "<think>" that ends the prompt
    part: the model writes its thinking, closes it, and boxes its answer.
    Returns a str.
    Raises ValueError when prompt, thinking or answer contains "<think>" or "</think>" (the
    template must hold each tag exactly once).
    """
    ### BEGIN SOLUTION
    for name, part in (("prompt", prompt), ("thinking", thinking), ("answer", answer)):
        if THINK_OPEN in part or THINK_CLOSE in part:
            raise ValueError(f"format_thinking: {name} must not contain {THINK_OPEN!r} or {THINK_CLOSE!r}")
    return prompt + THINK_OPEN + thinking + THINK_CLOSE + BOXED + answer + "}"
    ### END SOLUTION


def think_masks(text: str) -> tuple[torch.Tensor, torch.Tensor]:
    """Which characters of a templated text are thinking and which are the answer.

    text: a str with exactly one "<think>" and, after it, exactly one "</think>".
    Returns (thinking, answer), two (len(text),) bool tensors:
      thinking True from the character right after "<think>" through the last character of
               "</think>" (the model learns to write its working AND to close it);
      answer   True on every character after "</think>".
    Everything up to the end of "<think>" is the prompt, in neither mask; the masks never
    overlap.
    Raises ValueError when the text does not hold exactly one "<think>" followed by exactly
    one "</think>".
    """
    ### BEGIN SOLUTION
    opened, closed = text.find(THINK_OPEN), text.find(THINK_CLOSE)
    if (text.count(THINK_OPEN) != 1 or text.count(THINK_CLOSE) != 1
            or closed < opened + len(THINK_OPEN)):
        raise ValueError("think_masks: the text needs exactly one '<think>' followed by exactly one '</think>'")
    position = torch.arange(len(text))                                          # (L,)
    thinking = (position >= opened + len(THINK_OPEN)) & (position < closed + len(THINK_CLOSE))
    answer = position >= closed + len(THINK_CLOSE)
    return thinking, answer
    ### END SOLUTION


def thinking_loss(logits: torch.Tensor, targets: torch.Tensor, thinking_mask: torch.Tensor,
                  answer_mask: torch.Tensor, thinking_weight: float = 1.0) -> torch.Tensor:
    """Cross-entropy on the thinking and answer tokens, with the thinking tokens weighted.

    logits:        (..., V) float32 or float64, the prediction for each target position.
    targets:       (...) int64 in [0, V).
    thinking_mask, answer_mask: (...) bool, aligned with targets (already shifted: entry t says
                   what kind of token targets[t] is); they must not overlap.
    thinking_weight: float ≥ 0; 0 trains on the answer only, 1 on every token of the
                   completion alike.
    With CE_t = −log softmax(logits[t])[targets[t]] and weight w_t = thinking_weight on
    thinking positions, 1 on answer positions and 0 elsewhere (the prompt):
        loss = Σ_t w_t CE_t / Σ_t w_t      (over all positions of the batch together).
    Returns a 0-d tensor of the logits' dtype, differentiable w.r.t. logits.
    Raises ValueError when the shapes disagree, the masks overlap, thinking_weight < 0, or
    Σ_t w_t = 0 (no token to learn from).
    """
    ### BEGIN SOLUTION
    if (logits.shape[:-1] != targets.shape or thinking_mask.shape != targets.shape
            or answer_mask.shape != targets.shape):
        raise ValueError(f"thinking_loss: need logits (..., V) and targets and masks (...), got {tuple(logits.shape)}, "
                         f"{tuple(targets.shape)}, {tuple(thinking_mask.shape)}, {tuple(answer_mask.shape)}")
    if bool((thinking_mask & answer_mask).any()):
        raise ValueError("thinking_loss: a position cannot be both thinking and answer")
    if thinking_weight < 0:
        raise ValueError(f"thinking_loss: thinking_weight must be ≥ 0, got {thinking_weight}")
    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")   # (N,)
    weights = (thinking_weight * thinking_mask.reshape(-1) + answer_mask.reshape(-1)).to(ce.dtype)   # (N,)
    total = weights.sum()
    if not total > 0:
        raise ValueError("thinking_loss: no position has a positive weight")
    return (weights * ce).sum() / total
    ### END SOLUTION


# ---------------------------------------------------------------- the verifier as a reward

def verifiable_reward(completion: str, truth: str | int) -> float:
    """The reward of a completion (the text after the prompt, starting with "<think>").

    Well formatted: after leading whitespace the completion starts with "<think>", it holds
    exactly one "<think>" and exactly one "</think>", and the part after "</think>" holds a
    complete, non-empty box (last_box of that part is not None).
    Correct: the answer of that box — extract_answer(the part after "</think>"), rule 1 —
    equals normalize_number(str(truth)); numbers inside the thinking never count.
    Returns CORRECT_REWARD = 1.0 when well formatted and correct, FORMAT_REWARD = 0.1 when
    well formatted and wrong, and 0.0 when not well formatted, even if the answer is right.
    truth: a str or int that normalize_number accepts once written with str().
    Raises ValueError when normalize_number(str(truth)) is None.
    """
    ### BEGIN SOLUTION
    expected = normalize_number(str(truth))
    if expected is None:
        raise ValueError(f"verifiable_reward: truth must be a number, got {truth!r}")
    if (not completion.lstrip().startswith(THINK_OPEN) or completion.count(THINK_OPEN) != 1
            or completion.count(THINK_CLOSE) != 1):
        return 0.0
    box = last_box(completion.split(THINK_CLOSE)[1])
    if box is None:
        return 0.0
    return CORRECT_REWARD if (normalize_number(box) or box) == expected else FORMAT_REWARD
    ### END SOLUTION


def rejection_sample(sample: Callable[[str], str], prompt: str, truth: str | int, n_keep: int,
                     max_tries: int) -> tuple[list[str], int]:
    """Rejection sampling of correct traces: draw completions and keep the verified ones.

    sample:    a callable, sample(prompt) -> one completion (a str); each call draws anew.
    Calls sample(prompt) at most max_tries times, one call at a time, and keeps — in the order
    drawn, duplicates included — every completion with verifiable_reward(completion, truth)
    equal to CORRECT_REWARD; it stops as soon as n_keep are kept.
    Returns (kept, tries): kept a list of at most n_keep str, tries the number of calls made.
    Raises ValueError when n_keep < 1 or max_tries < 1 (before any call).
    """
    ### BEGIN SOLUTION
    if n_keep < 1 or max_tries < 1:
        raise ValueError(f"rejection_sample: need n_keep ≥ 1 and max_tries ≥ 1, got {n_keep} and {max_tries}")
    kept, tries = [], 0
    while tries < max_tries and len(kept) < n_keep:
        completion = sample(prompt)
        tries += 1
        if verifiable_reward(completion, truth) == CORRECT_REWARD:
            kept.append(completion)
    return kept, tries
    ### END SOLUTION


# ---------------------------------------------------------------- a task with worked traces

def addition_trace(a: int, b: int) -> str:
    """The worked trace of a + b: column addition with carries, ones column first.

    a, b: int ≥ 0. Both are written with leading zeros to the same number of digits, that of
    the longer one. For each column, from the ones up, with x and y the two digits and c the
    carry into the column (0 for the ones column), the step is "x+y+c=s" with s = x + y + c in
    decimal (one or two digits); the carry out of the column is s // 10. Steps are joined by
    "," with no spaces: addition_trace(47, 85) is "7+5+0=12,4+8+1=13" (47 + 85 = 132: the
    last digit of each step, from the last step to the first, after the last step's carry).
    Returns a str.
    Raises ValueError when a or b is negative.
    """
    ### BEGIN SOLUTION
    if a < 0 or b < 0:
        raise ValueError(f"addition_trace: a and b must be ≥ 0, got {a} and {b}")
    width = max(len(str(a)), len(str(b)))
    xs, ys = str(a).zfill(width)[::-1], str(b).zfill(width)[::-1]     # ones digit first
    steps, carry = [], 0
    for x, y in zip(xs, ys):
        s = int(x) + int(y) + carry
        steps.append(f"{x}+{y}+{carry}={s}")
        carry = s // 10
    return ",".join(steps)
    ### END SOLUTION
