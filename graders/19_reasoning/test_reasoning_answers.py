"""Graders for 19_reasoning: reading answers — normalize_number, last_box, extract_answer.

normalize_number: hand values (every rule of the grammar and of the canonical form), numbers
built by hypothesis from parts against a Decimal oracle, golden data, the Raises clause.
last_box: hand cases (nested braces, several boxes, unclosed and empty boxes), a stack-based
oracle on hypothesis texts.
extract_answer: the fixture suite of tricky completions with hand-written answers (known
mistakes named), completions assembled by hypothesis whose answer is known by construction,
a character-by-character oracle, golden data, the Raises clause.
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import reasoning_oracle as O
from llmlab.testing import check, reference
from llmlab.testing.strategies import examples

NORMALIZE_CASES = [
    ("42", "42"), ("-0012.500", "-12.5"), (" +1,000 ", "1000"), ("1 234.0", "1234"), ("-0.00", "0"),
    ("0.250", "0.25"), ("1000", "1000"), ("120", "120"), ("0", "0"), ("007", "7"), ("-5", "-5"),
    ("1,234,567.890", "1234567.89"), ("1 000 000", "1000000"), ("\t3.10\n", "3.1"), ("-0", "0"),
    ("0012", "12"), ("999,999", "999999"),
    ("12,34", None), ("1,234 567", None), ("1234,567", None), ("1  234", None), ("5.", None), (".5", None),
    ("1e3", None), ("1/2", None), ("$5", None), ("٣", None), ("", None), ("--5", None), ("5-", None),
    ("1,2345", None), (",123", None), ("1,", None), ("forty", None), ("1.2.3", None), ("+-1", None),
]


def _int_zeros_stripped(canonical):
    """The known mistake's output: the canonical form with the integer part's trailing zeros gone too."""
    if canonical is None:
        return "<none>"
    sign, body = ("-", canonical[1:]) if canonical.startswith("-") else ("", canonical)
    whole, dot, fraction = body.partition(".")
    wrong = sign + (whole.strip("0") or "0") + dot + fraction
    return wrong if wrong != canonical else "<none>"


@pytest.mark.points(2)
def test_normalize_number_by_hand(impl):
    for text, expected in NORMALIZE_CASES:
        check.equal(impl.normalize_number(text), expected, unit="normalize_number", case=check.describe(text=text),
                    mistakes={"trailing zeros stripped from the integer part too": _int_zeros_stripped(expected),
                              "the sign of zero kept": "-0" if text.strip().startswith("-0") else "<none>",
                              "leading zeros kept": text.strip().lstrip("+") if expected and text.strip()[:1] == "0"
                              and len(expected) < len(text.strip()) else "<none>"})


def _parts():
    """(text, canonical) of a well-formed number built from parts."""
    def build(sign, whole, fraction, sep, zeros, pad):
        digits = str(whole)
        if sep and len(digits) > 3:
            head = len(digits) % 3 or 3
            written = digits[:head] + "".join(sep + digits[i:i + 3] for i in range(head, len(digits), 3))
        else:
            written = "0" * zeros + digits
        text = pad + sign + written + (("." + fraction) if fraction else "") + pad
        frac = fraction.rstrip("0")
        canon = digits + ("." + frac if frac else "")
        if sign == "-" and canon != "0":
            canon = "-" + canon
        return text, canon
    return st.builds(build, st.sampled_from(["", "+", "-"]), st.integers(0, 10 ** 9),
                     st.sampled_from(["", "0", "5", "50", "05", "000", "125", "10"]),
                     st.sampled_from(["", ",", " "]), st.integers(0, 2), st.sampled_from(["", " ", "\n"]))


@pytest.mark.points(2)
@examples(40)
@given(built=_parts(), junk=st.sampled_from(["", "x", ".", ",", "e5", " 1", "%", "/2"]))
def test_normalize_number_built_numbers_and_oracle(impl, built, junk):
    text, canon = built
    check.equal(impl.normalize_number(text), canon, unit="normalize_number", case=check.describe(text=text),
                what="the canonical form of a well-formed number")
    broken = text.strip() + junk
    check.equal(impl.normalize_number(broken), O.normalize_oracle(broken), unit="normalize_number",
                case=check.describe(text=broken), what="the number with something appended (grammar of the docstring)")


@pytest.mark.points(1)
def test_normalize_number_reference_and_raises(impl):
    ref = reference.load(O.TOPIC, "normalize")
    got = [impl.normalize_number(s) for s in ref["inputs"]]
    check.equal(got, ref["outputs"], unit="normalize_number", what="the reference strings",
                case=check.describe(inputs=ref["inputs"][:6]))
    check.equal(got, [O.normalize_oracle(s) for s in ref["inputs"]], unit="normalize_number",
                what="the reference strings (against the Decimal oracle)", case=check.describe(inputs=ref["inputs"][:6]))
    for bad in (12, None, b"12", 1.5):
        check.expect_raises(TypeError, impl.normalize_number, bad, unit="normalize_number",
                            case=check.describe(text=bad), why="text is not a str")


BOX_CASES = [
    ("\\boxed{42}", "42"), ("\\boxed{1} then \\boxed{2}", "2"), ("\\boxed{\\boxed{3}}", "3"),
    ("\\boxed{\\frac{1}{2}}", "\\frac{1}{2}"), ("\\boxed{1", None), ("\\boxed{5} and \\boxed{7", "5"), ("\\boxed{5} and \\boxed{78", "5"),
    ("\\boxed{ } \\boxed{}", None), ("\\boxed{ 8 } \\boxed{  }", "8"), ("no box {here}", None), ("", None),
    ("} \\boxed{x{y}z} {", "x{y}z"), ("\\boxed{{a}{b}}", "{a}{b}"), ("\\boxed{\\boxed{4}", "4"),
    ("\\boxed{a}} }", "a"), ("\\boxed {9}", None), ("\\boxed{2}\\boxed{\\text{ten}}", "\\text{ten}"),
]


@pytest.mark.points(2)
def test_last_box_by_hand(impl):
    for text, expected in BOX_CASES:
        first = O.last_box_oracle(text[:text.find("}") + 1]) if "}" in text else None
        check.equal(impl.last_box(text), expected, unit="last_box", case=check.describe(text=text),
                    mistakes={"the first box instead of the last": first if first != expected else "<none>",
                              "content not stripped": text[7:-1] if text.startswith("\\boxed{ ") else "<none>"})


@pytest.mark.points(1)
@examples(50)
@given(pieces=st.lists(st.sampled_from(["\\boxed{", "{", "}", "7", "x", " ", "\\frac", "12"]), max_size=12))
def test_last_box_matches_stack_oracle(impl, pieces):
    text = "".join(pieces)
    check.equal(impl.last_box(text), O.last_box_oracle(text), unit="last_box", case=check.describe(text=text),
                what="the content of the last complete non-empty box (oracle: one pass with a stack of braces)")


@pytest.mark.points(3)
def test_extract_answer_fixture_suite(impl):
    for text, expected, why in O.SUITE:
        boxes = [b for b in (O.last_box_oracle(text[:i + 1]) for i in range(len(text))) if b is not None]
        check.equal(impl.extract_answer(text), expected, unit="extract_answer",
                    case=check.describe(text=text), what=f"the final answer ({why})",
                    mistakes={"taking the first number instead of the final answer": O.first_number(text)
                              if O.first_number(text) != expected else "<none>",
                              "the first boxed answer instead of the last": (O.normalize_oracle(boxes[0]) or boxes[0])
                              if boxes and boxes[0] != boxes[-1] else "<none>",
                              "the verification line taken (the last number of the text)":
                              (O.normalize_oracle(O.numbers_in(text)[-1]) if O.numbers_in(text) else None)
                              if "heck" in text or "erif" in text else "<none>"})


def _completion():
    """(completion, its answer) assembled from parts whose answer is known by construction."""
    def build(intro, value, style, check_line, distractor):
        answer = str(value)
        body = f"We have {intro} items and {distractor} more."
        if style == "box":
            text, expected = f"{body}\nSo \\boxed{{{value:,}}}.", answer
        elif style == "two_boxes":
            text, expected = f"\\boxed{{{distractor}}} is wrong; \\boxed{{{value}}}", answer
        elif style == "answer":
            text, expected = f"{body}\nAnswer: {value}.", answer
        elif style == "plain":
            text, expected = f"{body}\nIn total {value}", answer
        else:
            text, expected = "I am not sure.", None
        if check_line:
            text += f"\nCheck: {distractor} + {intro} = {distractor + intro}"
        return text, expected
    return st.builds(build, st.integers(0, 99), st.integers(-5000, 10 ** 6),
                     st.sampled_from(["box", "two_boxes", "answer", "plain", "none"]), st.booleans(),
                     st.integers(0, 999))


@pytest.mark.points(2)
@examples(50)
@given(built=_completion())
def test_extract_answer_constructed_and_oracle(impl, built):
    text, expected = built
    got = impl.extract_answer(text)
    check.equal(got, expected, unit="extract_answer", case=check.describe(text=text),
                what="the answer the completion was built with",
                mistakes={"taking the first number instead of the final answer": O.first_number(text)
                          if O.first_number(text) != expected else "<none>"})
    noisy = text.replace("items", "items (3rd batch, 1,000,000 x2)")
    check.equal(impl.extract_answer(noisy), O.extract_oracle(noisy), unit="extract_answer",
                case=check.describe(text=noisy), what="the answer (oracle: the docstring's rules, numbers read by hand)")


@pytest.mark.points(1)
def test_extract_answer_reference_and_raises(impl):
    ref = reference.load(O.TOPIC, "extract")
    got = [impl.extract_answer(t) for t in ref["texts"]]
    check.equal(got, ref["answers"], unit="extract_answer", what="the answers of the reference completions",
                case=check.describe(n=len(ref["texts"])))
    for bad in (42, None, ["Answer: 1"]):
        check.expect_raises(TypeError, impl.extract_answer, bad, unit="extract_answer",
                            case=check.describe(text=bad), why="text is not a str")
