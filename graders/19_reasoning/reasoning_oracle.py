"""Helpers shared by the 19_reasoning graders (instructor code, not a test).

Independent oracles, written differently from the reference:
  - `normalize_oracle`: the number grammar checked by hand (split at ".", groups measured),
    the canonical form from `decimal.Decimal`;
  - `last_box_oracle`: one left-to-right pass with a stack of open braces, recording the
    content of every box when its brace closes;
  - `numbers_in`: the numbers of running text, read character by character (no regex);
  - `extract_oracle`: the three rules of extract_answer on top of those;
  - `vote_oracle`: counts by list.count, ties by list.index;
  - `accuracy_by_enumeration`: majority accuracy by enumerating all 2^n outcomes and voting
    with the tie rule;
  - `trace_oracle`: the addition trace from divmod on the numbers, not on their strings.
The extraction fixture suite: `SUITE`, tricky completions with their hand-written answers.
"""

from __future__ import annotations

import itertools
from decimal import Decimal

import torch
import torch.nn.functional as F

TOPIC = "19_reasoning"
DIGITS = "0123456789"


def _grouped(whole: str, sep: str) -> bool:
    groups = whole.split(sep)
    return len(groups) > 1 and 1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:]) \
        and all(g and all(c in DIGITS for c in g) for g in groups)


def normalize_oracle(text: str) -> str | None:
    s = text.strip()
    sign = ""
    if s[:1] in ("+", "-"):
        sign, s = s[0], s[1:]
    whole, dot, fraction = s.partition(".")
    if dot and (not fraction or not all(c in DIGITS for c in fraction)):
        return None
    plain = bool(whole) and all(c in DIGITS for c in whole)
    if not (plain or _grouped(whole, ",") or _grouped(whole, " ")):
        return None
    value = Decimal(whole.replace(",", "").replace(" ", "") + (("." + fraction) if dot else ""))
    if value == 0:
        return "0"
    out = format(value.normalize(), "f")
    return "-" + out if sign == "-" else out


def last_box_oracle(text: str) -> str | None:
    found = []                                   # (start of the box, content)
    stack = []                                   # (index after the "{", start of the box or None)
    i = 0
    while i < len(text):
        if text.startswith("\\boxed{", i):
            stack.append((i + 7, i))
            i += 7
            continue
        if text[i] == "{":
            stack.append((i + 1, None))
        elif text[i] == "}" and stack:
            begin, box_start = stack.pop()
            if box_start is not None and text[begin:i].strip():
                found.append((box_start, text[begin:i].strip()))
        i += 1
    return max(found)[1] if found else None


def _word(c: str) -> bool:
    return c.isalnum() or c == "_"


def numbers_in(text: str) -> list[str]:
    """Numbers of running text, as the regex of extract_answer's docstring finds them."""
    out, i = [], 0
    while i < len(text):
        j = i + (text[i] == "-")
        if j < len(text) and text[j] in DIGITS and (i == 0 or not (_word(text[i - 1]) or text[i - 1] == ".")):
            candidates = []
            k = j
            while k < len(text) and text[k] in DIGITS:
                k += 1
            plain_end = k
            # the grouped form: 1-3 digits, then (",ddd")+
            if plain_end - j <= 3:
                g = plain_end
                while text[g:g + 1] == "," and len(text[g + 1:g + 4]) == 3 and all(c in DIGITS for c in text[g + 1:g + 4]):
                    g += 4
                if g > plain_end:
                    for end in range(g, plain_end, -4):
                        candidates.append(end)
            candidates.append(plain_end)
            match = None
            for end in candidates:                      # the regex tries grouped first, longest first
                ends = []
                if text[end:end + 1] == "." and text[end + 1:end + 2] in DIGITS and text[end + 1:end + 2]:
                    f = end + 1
                    while f < len(text) and text[f] in DIGITS:
                        f += 1
                    ends.append(f)
                ends.append(end)
                for e in ends:
                    if e == len(text) or not _word(text[e]):
                        match = e
                        break
                if match is not None:
                    break
            if match is not None:
                out.append(text[i:match])
                i = match
                continue
        i += 1
    return out


def extract_oracle(text: str) -> str | None:
    box = last_box_oracle(text)
    if box is not None:
        return normalize_oracle(box) or box
    low = text.lower()
    at = low.rfind("answer:")
    if at >= 0:
        rest = text[at + 7:].split("\n")[0].strip()
        if rest.endswith("."):
            rest = rest[:-1]
        if normalize_oracle(rest) is not None:
            return normalize_oracle(rest)
        nums = numbers_in(rest)
        if nums:
            return normalize_oracle(nums[0])
    nums = [n for line in text.split("\n") if not line.lstrip().lower().startswith(("check", "verif"))
            for n in numbers_in(line)]
    return normalize_oracle(nums[-1]) if nums else None


def first_number(text: str) -> str | None:
    """The known mistake: the first number of the text, whatever the rules say."""
    nums = numbers_in(text)
    return normalize_oracle(nums[0]) if nums else None


def vote_oracle(answers) -> str | None:
    given = [a for a in answers if a is not None]
    if not given:
        return None
    best = max(given.count(a) for a in given)
    return min((a for a in given if given.count(a) == best), key=given.index)


def accuracy_by_enumeration(p: float, n: int) -> float:
    total = 0.0
    for outcome in itertools.product((True, False), repeat=n):
        k = sum(outcome)
        prob = p ** k * (1 - p) ** (n - k)
        if vote_oracle(["right" if o else "wrong" for o in outcome]) == "right":
            total += prob
    return total


def trace_oracle(a: int, b: int) -> str:
    width = max(len(str(a)), len(str(b)))
    steps, carry = [], 0
    for i in range(width):
        x, y = a // 10 ** i % 10, b // 10 ** i % 10
        steps.append(f"{x}+{y}+{carry}={x + y + carry}")
        carry = (x + y + carry) // 10
    return ",".join(steps)


def weighted_ce(logits, targets, thinking, answer, weight):
    """Σ w CE / Σ w with the log-softmax written out."""
    logp = logits - logits.logsumexp(dim=-1, keepdim=True)
    ce = -logp.gather(-1, targets[..., None])[..., 0]
    w = thinking.to(logits.dtype) * weight + answer.to(logits.dtype)
    return (w * ce).sum() / w.sum()


def plain_ce(logits, targets):
    return F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1))


# (completion, the answer by the docstring's rules, what makes it tricky)
SUITE = [
    ("We add 17 and 25 to get 42.\n\\boxed{42}\nVerification: 42 - 17 = 25, so 25 + 17 = 42 and 40 + 2 = 42 + 0 = 42!",
     "42", "a verification line after the boxed answer"),
    ("Answer: 42\nCheck: 42 - 2 = 40", "42", "a check line after the Answer: line (its last number is 40)"),
    ("First guess \\boxed{12}. On second thought the total is \\boxed{13}.", "13",
     "several boxed answers: the last one wins"),
    ("The area is \\boxed{\\frac{1}{2}} square units.", "\\frac{1}{2}", "nested braces inside the box"),
    ("Altogether \\boxed{1,234} apples.", "1234", "a boxed number with a comma separator"),
    ("So the answer is \\boxed{ 1 234 }.", "1234", "a boxed number with a space separator and padding"),
    ("Summing 3 numbers gives 1,234,567 in total.", "1234567", "a separated number in running text"),
    ("I cannot solve this problem.", None, "no answer at all"),
    ("", None, "an empty completion"),
    ("Start with 5 and 7.\nTheir sum is 12.\nCheck: 7 + 5 = 12 and 12 - 5 = 7", "12",
     "fallback: the last number outside the verification line"),
    ("step 1: 3 * 4 = 12\nstep 2: 12 + 30 = 42\n  verify: 42 - 30 = 12", "42",
     "fallback with an indented lower-case verify line"),
    ("final answer: -7.50 degrees.", "-7.5", "Answer: line in lower case, sign and trailing zero"),
    ("Answer: 2,500.", "2500", "Answer: line with a separator and a trailing period"),
    ("ANSWER: 3 apples and 4 pears", "3", "the first number of the Answer: line"),
    ("Answer: 10\nAnswer: 11", "11", "the last Answer: line wins"),
    ("Answer: unknown\nThe count was 9.", "9", "an Answer: line without a number falls back"),
    ("\\boxed{7} and then \\boxed{8", "7", "an unclosed box is not an answer"),
    ("\\boxed{} so \\boxed{  }", None, "empty boxes are not answers, and nothing else is a number"),
    ("\\boxed{\\boxed{3}}", "3", "a box inside a box: the inner one starts last"),
    ("Answer: 5\nbut \\boxed{6}", "6", "a box beats an Answer: line"),
    ("The 3rd try of v2 gave x2", None, "numbers glued to letters are not numbers"),
    ("temperature went 7-5 then = -5", "-5", "a minus after '=' is a sign, after a digit it is not"),
    ("pi is about 3.14159.", "3.14159", "a decimal at the end of a sentence"),
    ("It costs 0042.000 dollars", "42", "leading and trailing zeros in running text"),
]
