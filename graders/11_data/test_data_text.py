"""Graders for 11_data, text stages: html_to_text, quality_filter, normalize_text, exact_dedup.

Evidence per unit:
  - golden data (reference/11_data): HTML pages and their text, a labelled set of documents
    with the filter's decisions, a list of documents and the indices dedup keeps;
  - independent oracles: documents generated from known pieces, whose text follows from the
    pieces without parsing; the five filter rules recomputed in integer arithmetic; dedup by
    pairwise comparison of normalised texts (no hashing);
  - properties and hand cases at every boundary the docstrings state.
"""

from __future__ import annotations

import html as html_lib

import pytest
from hypothesis import given
from hypothesis import strategies as st

import data_oracle as O
from llmlab.testing import check, reference
from llmlab.testing.strategies import examples

TOPIC = "11_data"


# ---------------------------------------------------------------- html_to_text

HTML_CASES = [
    # (html, expected text, what it shows[, known mistakes: their output on this page])
    ("<p>Hello <b>wor</b>ld</p><p>second</p>", "Hello world\nsecond", "inline tags join, block tags break",
     {"every tag breaks a line (inline tags too)": "Hello\nwor\nld\nsecond",
      "block tags do not break lines": "Hello worldsecond"}),
    ("<title>A &amp; B</title><style>p { color: red }</style><script>if (a < b) { x(); }</script>body",
     "A & B\nbody", "entities decoded; script and style dropped",
     {"script or style content kept": "A & B\np { color: red }if (a < b) { x(); }body"}),
    ("<!DOCTYPE html><!-- a comment --><div>x&nbsp;&nbsp; y\t\n z</div>", "x y\nz",
     "comments and doctype give nothing; &nbsp; is whitespace; newlines in text break lines",
     {"whitespace inside a line not collapsed": "x\xa0\xa0 y\nz"}),
    ("one<br>two<br/>three", "one\ntwo\nthree", "<br> and <br/> break lines"),
    ("<ul><li>a</li><li></li><li> b </li></ul>", "a\nb", "empty lines dropped, lines stripped"),
    ("caf&#233; <span>ok</span>", "café ok", "numeric character references"),
    ("</style>visible<script>x</script>after<script>unclosed", "visibleafter",
     "a stray end tag is ignored; an unclosed script drops the rest",
     {"skip depth goes negative on a stray end tag": "x"}),
    ("<style>a</style>x<style>b</style>y", "xy", "the skip depth returns to 0 after each element"),
    ("text after the last tag <i>is</i> kept: R&D", "text after the last tag is kept: R&D",
     "close() flushes the text the parser holds back"),
    ("<P>Upper</P><SCRIPT>hidden()</SCRIPT><Div>case</DIV>", "Upper\ncase", "tag names are case-insensitive"),
    ("", "", "empty document"),
    ("<p> \n </p>", "", "only whitespace"),
]


@pytest.mark.points(3)
def test_html_to_text_by_hand(impl):
    for source, expected, what, *wrong in HTML_CASES:
        out = impl.html_to_text(source)
        check.that(isinstance(out, str), "html_to_text", f"should return a str, got {type(out).__name__}",
                   case=check.describe(html=source))
        check.equal(out, expected, unit="html_to_text", what=f"text ({what})", case=check.describe(html=source),
                    mistakes=wrong[0] if wrong else None)


_WORDS = ["alpha", "b&c", "x<y", "naïve", "東京", "'q'", "end.", "a\u00a0b", "tab\there"]
_PIECE = st.one_of(
    st.tuples(st.just("text"), st.sampled_from(_WORDS)),
    st.tuples(st.just("space"), st.sampled_from([" ", "  ", "\n", "\t "])),
    st.tuples(st.just("block"), st.sampled_from(["p", "div", "li", "h2", "br", "tr"]), st.booleans()),
    st.tuples(st.just("inline"), st.sampled_from(["b", "i", "span", "a", "em"]), st.booleans()),
    st.tuples(st.just("skip"), st.sampled_from(["script", "style"]), st.sampled_from(["x = 1 < 2;", "p{}", ""])),
    st.tuples(st.just("comment"), st.sampled_from(["note", "<p>not a tag</p>"])),
)


def _render(pieces) -> tuple[str, str]:
    """(html, expected text): the expected text follows from the pieces without parsing."""
    markup, text = [], []
    for piece in pieces:
        kind = piece[0]
        if kind == "text":
            markup.append(html_lib.escape(piece[1]))
            text.append(piece[1])
        elif kind == "space":
            markup.append(piece[1])
            text.append(piece[1])
        elif kind in ("block", "inline"):
            markup.append(f"<{piece[1]}>" if piece[2] else f"</{piece[1]}>")
            text.append("\n" if kind == "block" else "")
        elif kind == "skip":
            markup.append(f"<{piece[1]}>{piece[2]}</{piece[1]}>")
        else:
            markup.append(f"<!--{piece[1]}-->")
    lines = (" ".join(line.split()) for line in "".join(text).split("\n"))
    return "".join(markup), "\n".join(line for line in lines if line)


@pytest.mark.points(2)
@examples(40)
@given(pieces=st.lists(_PIECE, max_size=14))
def test_html_to_text_generated_pages(impl, pieces):
    source, expected = _render(pieces)
    check.equal(impl.html_to_text(source), expected, unit="html_to_text",
                what="text of a page built from known pieces", case=check.describe(html=source))


@pytest.mark.points(1)
def test_html_to_text_matches_reference(impl):
    record = reference.load(TOPIC, "html")
    for source, expected in zip(record["pages"], record["texts"]):
        check.equal(impl.html_to_text(source), expected, unit="html_to_text", what="text of a reference page",
                    case=check.describe(html=source))


# ---------------------------------------------------------------- quality_filter

def _lines(n_plain: int, n_special: int, special: str) -> str:
    plain = [f"line number {i} reads well" for i in range(n_plain)]
    return "\n".join(plain + [special] * n_special)


QUALITY_CASES = [
    # (document, expected (keep, reasons), the rule and boundary it shows)
    ("the cat sat on mats", (True, []), "exactly 5 words is enough"),
    ("the cat sat there", (False, ["too_few_words"]), "4 words"),
    ("", (False, ["too_few_words"]), "no words: only too_few_words"),
    (" \n\t ", (False, ["too_few_words"]), "whitespace only"),
    ("abc abc abc abc abc", (True, []), "mean word length exactly 3"),
    ("abc abc abc abc ab", (False, ["mean_word_length"]), "mean word length 2.8"),
    ("abcdefghij abcdefghij abcdefghij abcdefghij abcdefghij", (True, []), "mean word length exactly 10"),
    ("abcdefghijk abcdefghij abcdefghij abcdefghij abcdefghij", (False, ["mean_word_length"]), "mean 10.2"),
    ("word word word word 1234", (True, []), "alphabetic fraction exactly 0.8"),
    ("word word word 1234 1234", (False, ["alpha_words"]), "alphabetic fraction 0.6"),
    ("word word word wo2d 12.4", (True, []), "a word with one letter counts as alphabetic"),
    (_lines(7, 3, "and then..."), (True, []), "ellipsis lines exactly 3 of 10"),
    (_lines(6, 4, "and then…"), (False, ["ellipsis_lines"]), "ellipsis lines 4 of 10 (the character …)"),
    (_lines(6, 4, "same line here"), (True, []), "3 repeated lines of 10 (the first copy is not a repeat)"),
    (_lines(5, 4, "same line here"), (False, ["duplicate_lines"]), "3 repeats of 9 lines"),
    ("  same line here  \n\nsame line here\nanother line right here", (False, ["duplicate_lines"]),
     "lines are stripped and empty lines are not lines"),
    ("1 2 3 4", (False, ["too_few_words", "mean_word_length", "alpha_words"]), "several rules, in order"),
    ("incomprehensibilities...\nantidisestablishmentarianism...\ncounterrevolutionaries extraordinarily "
     "uncharacteristically", (False, ["mean_word_length", "ellipsis_lines"]), "two rules, in order"),
]


@pytest.mark.points(3)
def test_quality_filter_rules_and_boundaries(impl):
    for doc, expected, what in QUALITY_CASES:
        out = impl.quality_filter(doc)
        case = check.describe(doc=doc)
        check.that(isinstance(out, tuple) and len(out) == 2 and isinstance(out[0], bool)
                   and isinstance(out[1], list), "quality_filter",
                   f"should return a tuple (keep: bool, reasons: list), got {out!r}", case=case)
        check.equal(out, expected, unit="quality_filter", what=f"decision ({what})", case=case)


_LINE = st.sampled_from(["The market opened early today.", "and so on...", "wait…", "1 2 3", "x", "",
                         "Click here!!!", "a tremendously extraordinarily long vocabulary", "Ada found a map."])


@pytest.mark.points(2)
@examples(40)
@given(lines=st.lists(_LINE, max_size=9))
def test_quality_filter_against_integer_oracle(impl, lines):
    doc = "\n".join(lines)
    check.equal(impl.quality_filter(doc), O.quality(doc), unit="quality_filter", what="decision",
                case=check.describe(doc=doc))


@pytest.mark.points(1)
def test_quality_filter_labelled_reference(impl):
    for item in reference.load(TOPIC, "quality"):
        check.equal(list(impl.quality_filter(item["doc"])), [item["keep"], item["reasons"]],
                    unit="quality_filter", what="decision on a labelled document", case=check.describe(doc=item["doc"]))


# ---------------------------------------------------------------- normalize_text and exact_dedup

@pytest.mark.points(1)
def test_normalize_text_cases(impl):
    cases = [("Hello   World", "hello world"), ("  \tTabs\nand\u00a0nbsp\u3000ideographic  ", "tabs and nbsp ideographic"),
             ("ﬁne ＡＢＣ", "fine abc"), ("Punctuation, kept!", "punctuation, kept!"), ("", ""), ("ÉCOLE", "école")]
    for text, expected in cases:
        check.equal(impl.normalize_text(text), expected, unit="normalize_text", what="normalised text",
                    case=check.describe(text=text),
                    mistakes={"no NFKC normalisation": " ".join(text.lower().split()),
                              "case kept": " ".join(text.split())})


@pytest.mark.points(2)
def test_exact_dedup_keeps_first_occurrences_in_order(impl):
    docs = ["The Cat", "dog", "the  cat", "THE CAT\n", "Dog", "bird", "ﬁsh", "fish"]
    for form in (list, tuple):
        check.equal(impl.exact_dedup(form(docs)), [0, 1, 5, 6], unit="exact_dedup", what="indices kept",
                    case=check.describe(docs=form(docs)),
                    mistakes={"keeps the last occurrence": [3, 4, 5, 7],
                              "texts not normalised before hashing": [0, 1, 2, 3, 4, 5, 6, 7],
                              "indices sorted by text, not by position": [5, 1, 6, 0]})
    check.equal(impl.exact_dedup([]), [], unit="exact_dedup", what="indices kept", case="docs=[]")
    check.equal(impl.exact_dedup(["", " ", "x"]), [0, 2], unit="exact_dedup", what="indices kept",
                case=check.describe(docs=["", " ", "x"]))


@pytest.mark.points(2)
@examples(30)
@given(docs=st.lists(st.sampled_from(["a b", "A  b", "a b ", "ab", "b a", "ﬁ", "fi", "Ｆｉ", "x\ty"]), max_size=12))
def test_exact_dedup_against_pairwise_oracle(impl, docs):
    check.equal(impl.exact_dedup(docs), O.dedup(docs), unit="exact_dedup", what="indices kept",
                case=check.describe(docs=docs))
    record = reference.load(TOPIC, "dedup")
    check.equal(impl.exact_dedup(record["docs"]), record["kept"], unit="exact_dedup",
                what="indices kept on the reference list", case=check.describe(docs=record["docs"]))
