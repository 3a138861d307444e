"""Known mistakes (MUTANTS) and other correct implementations (VARIANTS) for 19_reasoning.

Each is one textual edit (or a few chained with `also`) of solutions/19_reasoning/reasoning.py.
`llmlab mutants 19_reasoning` proves every mutant fails a grader — naming the mistake where
`message` is set — and every variant gets full marks. SYLLABUS.md's known mistakes are all
here (marked "syllabus").
"""

from llmlab.authoring.mutants import Edit, Mutant, Variant

F = "reasoning.py"

MUTANTS = [
    # ---- the syllabus's three known mistakes
    Mutant("syllabus: taking the first number instead of the final answer", F,
           find="return normalize_number(found[-1]) if found else None",
           replace="return normalize_number(found[0]) if found else None",
           message="taking the first number instead of the final answer"),
    Mutant("syllabus: the tie rule of the vote ignored (the later of the tied answers wins)", F,
           find="if count > best_count:", replace="if count >= best_count:",
           message="the tie rule of the vote ignored"),
    Mutant("syllabus: a reward for correct answers in the wrong format (tags not checked)", F,
           find="""            or completion.count(THINK_CLOSE) != 1):
        return 0.0""",
           replace="""            or completion.count(THINK_CLOSE) != 1):
        return CORRECT_REWARD if extract_answer(completion) == expected else 0.0""",
           message="a reward for correct answers in the wrong format"),
    Mutant("syllabus: a reward for correct answers in the wrong format (no box needed)", F,
           find="""    if box is None:
        return 0.0""",
           replace="""    if box is None:
        return CORRECT_REWARD if extract_answer(completion) == expected else 0.0""",
           message="a reward for correct answers in the wrong format"),

    # ---- last_box / extract_answer
    Mutant("the first box instead of the last", F,
           find="return boxes[-1] if boxes else None", replace="return boxes[0] if boxes else None",
           message="the first box instead of the last"),
    Mutant("an unclosed box accepted", F, find="if depth == 0 and content:", replace="if content:"),
    Mutant("box content not stripped", F,
           find="content = text[start + len(BOXED):i - 1].strip()", replace="content = text[start + len(BOXED):i - 1]"),
    Mutant("verification lines not skipped in the fallback", F,
           find='if not line.lstrip().lower().startswith(("check", "verif"))', replace="if True",
           message="the verification line taken"),
    Mutant("the first Answer: line instead of the last", F,
           find="rest = text[markers[-1].end():]", replace="rest = text[markers[0].end():]"),
    Mutant("Answer: matched case-sensitively", F,
           find='markers = list(re.finditer("answer:", text, re.IGNORECASE))',
           replace='markers = list(re.finditer("Answer:", text))'),
    Mutant("the Answer: line's number not normalised", F,
           find="            return normalize_number(first.group())", replace="            return first.group()"),
    Mutant("numbers glued to letters read as numbers", F,
           find=r'''number = r"(?<![\w.])-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?(?!\w)"''',
           replace=r'''number = r"-?(?:[0-9]{1,3}(?:,[0-9]{3})+|[0-9]+)(?:\.[0-9]+)?"'''),

    # ---- normalize_number
    Mutant("normalize: trailing zeros stripped from the integer part too", F,
           find='whole = whole.replace(",", "").replace(" ", "").lstrip("0") or "0"',
           replace='whole = whole.replace(",", "").replace(" ", "").strip("0") or "0"',
           message="trailing zeros stripped from the integer part too"),
    Mutant("normalize: the sign of zero kept", F,
           find='if sign == "-" and number != "0":', replace='if sign == "-":', message="the sign of zero kept"),
    Mutant("normalize: groups of any length accepted", F,
           find=r"[0-9]{1,3}(?:,[0-9]{3})+|[0-9]{1,3}(?: [0-9]{3})+|[0-9]+)",
           replace=r"[0-9]+(?:,[0-9]+)+|[0-9]{1,3}(?: [0-9]{3})+|[0-9]+)"),
    Mutant("normalize: trailing zeros of the fraction kept", F,
           find='fraction = fraction.rstrip("0")', replace="fraction = fraction"),

    # ---- majority_vote / majority_accuracy
    Mutant("vote: None counted as an answer", F,
           find="        if answer is not None:\n            counts[answer]", replace="        if True:\n            counts[answer]",
           message="None counted as an answer"),
    Mutant("accuracy: the tie counted as a loss", F,
           find="total += 0.5 * term", replace="total += 0.0 * term", message="the tie counted as a loss"),
    Mutant("accuracy: the tie counted as a win", F,
           find="if 2 * k > n:", replace="if 2 * k >= n:", message="the tie counted as a win"),

    # ---- template, masks, loss
    Mutant("template: the answer not boxed", F,
           find='return prompt + THINK_OPEN + thinking + THINK_CLOSE + BOXED + answer + "}"',
           replace="return prompt + THINK_OPEN + thinking + THINK_CLOSE + answer", message="answer not boxed"),
    Mutant("masks: </think> left out of the thinking mask", F,
           find="(position < closed + len(THINK_CLOSE))", replace="(position < closed)",
           message="</think> left out of the thinking mask"),
    Mutant("masks: <think> included in the thinking mask", F,
           find="thinking = (position >= opened + len(THINK_OPEN))", replace="thinking = (position >= opened)",
           message="<think> included in the thinking mask"),
    Mutant("loss: divided by the number of positions", F,
           find="return (weights * ce).sum() / total", replace="return (weights * ce).mean()",
           message="divided by the number of positions"),
    Mutant("loss: the thinking weight ignored", F,
           find="weights = (thinking_weight * thinking_mask.reshape(-1) + answer_mask.reshape(-1))",
           replace="weights = (thinking_mask.reshape(-1) + answer_mask.reshape(-1))", message="weights ignored"),
    Mutant("loss: prompt tokens counted", F,
           find="return (weights * ce).sum() / total", replace="return ce.mean()",
           message="prompt tokens counted in the loss"),

    # ---- reward, rejection sampling, traces
    Mutant("reward: numbers inside the thinking counted", F,
           find="box = last_box(completion.split(THINK_CLOSE)[1])", replace="box = last_box(completion)"),
    Mutant("reward: no format reward for a wrong answer", F,
           find="return CORRECT_REWARD if (normalize_number(box) or box) == expected else FORMAT_REWARD",
           replace="return CORRECT_REWARD if (normalize_number(box) or box) == expected else 0.0",
           message="no format reward for a wrong answer"),
    Mutant("rejection: well-formatted wrong answers kept", F,
           find="if verifiable_reward(completion, truth) == CORRECT_REWARD:",
           replace="if verifiable_reward(completion, truth) > 0:", message="well-formatted wrong answers kept"),
    Mutant("rejection: no stop once n_keep are kept", F,
           find="while tries < max_tries and len(kept) < n_keep:", replace="while tries < max_tries:",
           message="no stop once n_keep are kept"),
    Mutant("trace: the carry not propagated", F, find="carry = s // 10", replace="carry = 0"),
    Mutant("trace: the columns from the most significant digit", F,
           find="xs, ys = str(a).zfill(width)[::-1], str(b).zfill(width)[::-1]",
           replace="xs, ys = str(a).zfill(width), str(b).zfill(width)"),
]

VARIANTS = [
    Variant("vote with max over the counts (the first maximal key in first-seen order)", F,
            find="""    best, best_count = None, 0
    for answer, count in counts.items():
        if count > best_count:
            best, best_count = answer, count
    return best""",
            replace="""    return max(counts, key=counts.get) if counts else None"""),
    Variant("last box found by scanning the starts from the end", F,
            find="""    boxes = []
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
    return boxes[-1] if boxes else None""",
            replace="""    start = text.rfind(BOXED)
    while start != -1:
        depth = 0
        for end in range(start + len(BOXED) - 1, len(text)):
            depth += (text[end] == "{") - (text[end] == "}")
            if depth == 0:
                if text[start + len(BOXED):end].strip():
                    return text[start + len(BOXED):end].strip()
                break
        start = text.rfind(BOXED, 0, start)
    return None"""),
    Variant("majority accuracy as a tail sum plus the tie term", F,
            find="""    total = 0.0
    for k in range(n + 1):
        term = math.comb(n, k) * p ** k * (1.0 - p) ** (n - k)
        if 2 * k > n:
            total += term
        elif 2 * k == n:
            total += 0.5 * term
    return total""",
            replace="""    tail = math.fsum(math.comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(n // 2 + 1, n + 1))
    tie = 0.5 * math.comb(n, n // 2) * (p * (1 - p)) ** (n // 2) if n % 2 == 0 else 0.0
    return float(tail + tie)"""),
    Variant("loss with log_softmax and gather", F,
            find="""    ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), reduction="none")   # (N,)""",
            replace="""    ce = -F.log_softmax(logits, dim=-1).gather(-1, targets[..., None]).reshape(-1)"""),
    Variant("trace by divmod on the numbers", F,
            find="""    width = max(len(str(a)), len(str(b)))
    xs, ys = str(a).zfill(width)[::-1], str(b).zfill(width)[::-1]     # ones digit first
    steps, carry = [], 0
    for x, y in zip(xs, ys):
        s = int(x) + int(y) + carry""",
            replace="""    steps, carry = [], 0
    for _ in range(max(len(str(a)), len(str(b)))):
        (a, x), (b, y) = divmod(a, 10), divmod(b, 10)
        s = x + y + carry"""),
]

EQUIVALENT: dict[str, str] = {
    "reasoning.py: `1` -> `2` in `start = text.find(BOXED, start + 1)`":
        "the next \\boxed{ cannot start 1 character after the previous one: that character is 'b', not a "
        "backslash, so searching from start + 2 finds the same boxes",
    "reasoning.py: `0` -> `1` in `counts[answer] = counts.get(answer, 0) + 1`":
        "every count grows by the same 1, so the order of the counts, the winner and the ties are unchanged",
    "reasoning.py: `1` -> `2` in `counts[answer] = counts.get(answer, 0) + 1`":
        "every count is doubled, so the order of the counts, the winner and the ties are unchanged",
    "reasoning.py: `+` -> `-` in `or closed < opened + len(THINK_OPEN)):`":
        "with one tag of each kind, '</think>' cannot start inside '<think>' or overlap it from the left (their "
        "characters differ), so closed < opened - 7, closed < opened and closed < opened + 7 are the same test",
    "reasoning.py: `or` -> `and` in `if a < 0 or b < 0:`":
        "a negative a or b still raises ValueError: its '-' sign reaches int() as a digit of its column",
}
