"""Graders for 01_tokenizer: CharTokenizer, ByteTokenizer, WordTokenizer.

Evidence per unit: golden ids from reference/01_tokenizer (fixed texts), independent
oracles on fresh inputs (Python's own UTF-8 codec and tiktoken with byte-level ranks for
bytes; a brute-force vocabulary builder and the documented regex for chars and words), and
properties with hypothesis (round trips, <unk> counts, vocabulary rules).
"""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

import tokenizer_oracle as O  # graders/01_tokenizer/tokenizer_oracle.py (on sys.path via the harness)
from llmlab.lib.corpus import course_corpus
from llmlab.testing import check, reference, strategies
from llmlab.testing.strategies import examples

TOPIC = "01_tokenizer"
SPECIALS = O.SPECIALS
PAD_ID, UNK_ID, BOS_ID, EOS_ID = O.PAD_ID, O.UNK_ID, O.BOS_ID, O.EOS_ID

# Text with everything a tokenizer meets: ASCII, accents, CJK, emoji, whitespace runs.
_ALPHABET = list("abcxyz ABC.,!?\n\t") + ["é", "ü", "東", "京", "🙂", "🚲", "\u0301"]
_text = strategies.texts(_ALPHABET, max_size=30)
_texts = st.lists(_text, min_size=1, max_size=4)


# ------------------------------------------------------------------ oracles and mistakes

def _shift(ids, by):
    return [i + by for i in ids]


def _expect_bad_ids(tok, unit):
    """decode must raise ValueError for an id equal to vocab_size and for -1."""
    for bad in ([tok.vocab_size], [-1]):
        check.expect_raises(ValueError, tok.decode, bad, unit=unit, case=check.describe(ids=bad),
                            why=f"ids must lie in [0, vocab_size) = [0, {tok.vocab_size}); -1 is not 'the last token'")


# ------------------------------------------------------------------ CharTokenizer

@pytest.mark.points(3)
def test_char_golden_vocab_and_ids(impl):
    rec = reference.load(TOPIC, "char")
    tok = impl.CharTokenizer().train(rec["train"])
    check.equal(list(tok.itos), rec["itos"], unit="CharTokenizer.train", what="vocabulary (itos)",
                case=check.describe(texts=rec["train"]),
                mistakes={"special tokens left out of the vocabulary (ids off by one or more)": rec["itos"][4:],
                          "<pad> left out: every id off by one": rec["itos"][1:]})
    check.equal(tok.vocab_size, len(rec["itos"]), unit="CharTokenizer.train", what="vocab_size")
    for text, expected in zip(rec["texts"], rec["ids"]):
        check.equal(tok.encode(text), expected, unit="CharTokenizer.encode", case=check.describe(text=text),
                    mistakes={"dropping unknown characters instead of mapping them to <unk>":
                              O.char_ids(rec["itos"], text, unk=False),
                              "character ids off by one": _shift(expected, -1)})


@pytest.mark.points(2)
@examples(25)
@given(texts=_texts)
def test_char_vocab_matches_brute_force(impl, texts):
    tok = impl.CharTokenizer().train(texts)
    expected = O.char_itos(texts)
    case = check.describe(texts=texts)
    check.equal(list(tok.itos), expected, unit="CharTokenizer.train", what="vocabulary (itos)", case=case,
                mistakes={"special tokens left out of the vocabulary": expected[4:],
                          "<pad> left out: every id off by one": expected[1:],
                          "characters in first-seen order instead of sorted by code point":
                          SPECIALS + list(dict.fromkeys("".join(texts)))})
    check.equal(dict(tok.stoi), {t: i for i, t in enumerate(expected)}, unit="CharTokenizer.train",
                what="stoi (must be the inverse of itos)", case=case)
    check.equal(tok.vocab_size, len(expected), unit="CharTokenizer.train", what="vocab_size", case=case)


@pytest.mark.points(2)
@examples(25)
@given(texts=_texts, data=st.data())
def test_char_round_trip_in_vocabulary(impl, texts, data):
    tok = impl.CharTokenizer().train(texts)
    seen = sorted(set("".join(texts)))
    # A fresh text made only of characters seen in training.
    text = "".join(data.draw(st.lists(st.sampled_from(seen), max_size=40), label="chars")) if seen else ""
    ids = tok.encode(text)
    case = check.describe(texts=texts, text=text)
    check.equal(ids, O.char_ids(O.char_itos(texts), text), unit="CharTokenizer.encode", case=case)
    check.equal(tok.decode(ids), text, unit="CharTokenizer.decode", what="decode(encode(text))", case=case)


@pytest.mark.points(2)
@examples(25)
@given(text=strategies.texts(list("abcdXYZ🙂東 "), max_size=30))
def test_char_unknown_characters_become_unk(impl, text):
    tok = impl.CharTokenizer().train(["abcd ", "dcba"])
    ids = tok.encode(text)
    itos = O.char_itos(["abcd ", "dcba"])
    case = check.describe(trained_on=["abcd ", "dcba"], text=text)
    check.equal(ids, O.char_ids(itos, text), unit="CharTokenizer.encode", case=case,
                mistakes={"dropping unknown characters instead of mapping them to <unk>":
                          O.char_ids(itos, text, unk=False)})
    n_unknown = sum(c not in "abcd " for c in text)
    check.equal(ids.count(UNK_ID), n_unknown, unit="CharTokenizer.encode",
                what="number of <unk> ids (one per unknown character)", case=case)


@pytest.mark.points(1)
def test_char_retrain_replaces_vocabulary(impl):
    tok = impl.CharTokenizer().train(["xyz"])
    tok.train(["ba"])
    check.equal(list(tok.itos), SPECIALS + ["a", "b"], unit="CharTokenizer.train",
                what="vocabulary after training again on ['ba'] (must replace the old one)",
                case=check.describe(first=["xyz"], then=["ba"]),
                mistakes={"train extends the previous vocabulary instead of replacing it":
                          SPECIALS + ["a", "b", "x", "y", "z"],
                          "train extends the previous vocabulary (appending) instead of replacing it":
                          SPECIALS + ["x", "y", "z", "a", "b"]})
    check.equal(tok.encode("xa"), [UNK_ID, 4], unit="CharTokenizer.encode",
                case=check.describe(after_retraining_on=["ba"], text="xa"))


@pytest.mark.points(1)
def test_char_empty_and_tuple_inputs(impl):
    tok = impl.CharTokenizer().train([])
    check.equal(list(tok.itos), SPECIALS, unit="CharTokenizer.train",
                what="vocabulary after train([]) (the four special tokens only)", case=check.describe(texts=[]))
    check.equal(tok.encode("ab"), [UNK_ID, UNK_ID], unit="CharTokenizer.encode",
                case=check.describe(trained_on=[], text="ab"),
                mistakes={"dropping unknown characters instead of mapping them to <unk>": []})
    tok = impl.CharTokenizer().train(["ab", ""])
    case = check.describe(trained_on=["ab", ""])
    check.equal(tok.encode(""), [], unit="CharTokenizer.encode", what="encode('') (no characters, no ids)", case=case)
    check.equal(tok.decode([]), "", unit="CharTokenizer.decode", what="decode([])", case=case)
    check.equal(tok.decode((BOS_ID, 4, 5, EOS_ID)), "<bos>ab<eos>", unit="CharTokenizer.decode",
                what="decode of a tuple of ids (any sequence of ints)", case=case)


@pytest.mark.points(2)
def test_char_decode_special_tokens(impl):
    tok = impl.CharTokenizer().train(["hello world"])
    ids = tok.encode("hello world")            # " " is the first ordinary token: id 4
    wrapped = [BOS_ID] + ids + [EOS_ID, PAD_ID, PAD_ID]
    case = check.describe(ids=wrapped)
    check.equal(tok.decode(wrapped), "<bos>hello world<eos><pad><pad>", unit="CharTokenizer.decode", case=case)
    check.equal(tok.decode(wrapped, skip_special=True), "hello world", unit="CharTokenizer.decode",
                what="decode(ids, skip_special=True)", case=case,
                mistakes={"skip_special also leaves out id 4 (only ids 0-3 are special)": "helloworld"})
    check.equal(tok.decode(tok.encode("hi!")), "h<unk><unk>", unit="CharTokenizer.decode",
                what="decode(encode('hi!')) with 'i' and '!' unknown", case=check.describe(text="hi!"))
    _expect_bad_ids(tok, "CharTokenizer.decode")


# ------------------------------------------------------------------ ByteTokenizer

_tiktoken_bytes = None


def _tiktoken():
    """tiktoken with byte-level ranks only (no merges): token t is byte t. Built offline."""
    global _tiktoken_bytes
    if _tiktoken_bytes is None:
        import tiktoken

        _tiktoken_bytes = tiktoken.Encoding(
            "llmlab-bytes", pat_str=r"[\s\S]+", special_tokens={},
            mergeable_ranks={bytes([b]): b for b in range(256)})
    return _tiktoken_bytes


@pytest.mark.points(2)
def test_byte_golden_ids(impl):
    rec = reference.load(TOPIC, "byte")
    tok = impl.ByteTokenizer()
    for text, expected in zip(rec["texts"], rec["ids"]):
        check.equal(tok.encode(text), expected, unit="ByteTokenizer.encode", case=check.describe(text=text),
                    mistakes={"byte ids off by one (byte b must have id 4 + b)": _shift(expected, -1),
                              "special tokens not reserved: byte b given id b": _shift(expected, -4),
                              "encoded code points instead of UTF-8 bytes": [4 + ord(c) for c in text]})


# (text, number of UTF-8 bytes): counted by hand from the UTF-8 encoding rules.
_BYTE_COUNTS = [("a", 1), ("é", 2), ("ß", 2), ("東", 3), ("東京", 6), ("🙂", 4), ("👍🏽", 8),
                ("🇩🇪", 8), ("e\u0301", 3), ("€1", 4)]


@pytest.mark.points(2)
def test_byte_emoji_and_cjk_byte_counts(impl):
    tok = impl.ByteTokenizer()
    for text, n_bytes in _BYTE_COUNTS:
        ids = tok.encode(text)
        case = check.describe(text=text, code_points=[hex(ord(c)) for c in text])
        check.equal(len(ids), n_bytes, unit="ByteTokenizer.encode", what="number of ids (one per UTF-8 byte)",
                    case=case, mistakes={"encoded code points instead of UTF-8 bytes": len(text)})
        check.equal(ids, [4 + b for b in text.encode("utf-8")], unit="ByteTokenizer.encode", case=case)


@pytest.mark.points(2)
@examples(25)
@given(text=strategies.texts(max_size=40))
def test_byte_matches_tiktoken(impl, text):
    tok = impl.ByteTokenizer()
    expected = [4 + t for t in _tiktoken().encode(text, disallowed_special=())]
    case = check.describe(text=text)
    check.equal(tok.vocab_size, 260, unit="ByteTokenizer", what="vocab_size (4 specials + 256 bytes)")
    check.equal(tok.encode(text), expected, unit="ByteTokenizer.encode", case=case,
                mistakes={"byte ids off by one (byte b must have id 4 + b)": _shift(expected, -1),
                          "special tokens not reserved: byte b given id b": _shift(expected, -4)})


@pytest.mark.points(3)
@examples(25)
@given(text=strategies.texts(max_size=60))
def test_byte_round_trip_any_unicode(impl, text):
    tok = impl.ByteTokenizer()
    ids = tok.encode(text)
    case = check.describe(text=text)
    check.that(all(4 <= i < 260 for i in ids), "ByteTokenizer.encode",
               "ids must lie in [4, 260): encode never emits special tokens", f"got {ids[:12]}", case=case)
    check.equal(tok.decode(ids), text, unit="ByteTokenizer.decode", what="decode(encode(text))", case=case)


# Byte strings that are not valid UTF-8, as a model might emit them.
_INVALID = [bytes([0xF0, 0x9F, 0x99]), bytes([0x80]), bytes([0xFF, 0x41]), bytes([0xC0, 0xAF]),
            "東".encode()[:2] + b"xy", b"ok" + bytes([0xE6])]


@pytest.mark.points(2)
@examples(25)
@given(raw=st.one_of(st.sampled_from(_INVALID), st.binary(max_size=12)))
def test_byte_decode_invalid_utf8_is_replaced(impl, raw):
    ids = [4 + b for b in raw]
    expected = raw.decode("utf-8", errors="replace")
    case = check.describe(bytes=raw)
    # Two oracles that must agree (a failure here is a grader problem, not the student's).
    check.equal(_tiktoken().decode(list(raw), errors="replace"), expected, unit="oracle cross-check",
                what="tiktoken's decode vs bytes.decode", case=case)
    try:
        got = impl.ByteTokenizer().decode(ids)
    except UnicodeDecodeError:
        check.fail("ByteTokenizer.decode", "raised UnicodeDecodeError on bytes that are not valid UTF-8",
                   'decode with errors="replace": every invalid part becomes U+FFFD', case=case)
    check.equal(got, expected, unit="ByteTokenizer.decode", case=case,
                mistakes={"decoded each byte on its own instead of the whole byte string":
                          "".join(bytes([b]).decode("utf-8", errors="replace") for b in raw),
                          "invalid bytes dropped instead of replaced by U+FFFD":
                          raw.decode("utf-8", errors="ignore")})


@pytest.mark.points(2)
def test_byte_decode_special_tokens(impl):
    tok = impl.ByteTokenizer()
    body = [4 + b for b in "hi 🙂".encode()]
    ids = [BOS_ID] + body + [EOS_ID, PAD_ID]
    case = check.describe(ids=ids)
    check.equal(tok.decode(ids), "<bos>hi 🙂<eos><pad>", unit="ByteTokenizer.decode", case=case,
                mistakes={"special ids decoded as raw bytes 0..3": "\x02hi 🙂\x03\x00"})
    check.equal(tok.decode(ids, skip_special=True), "hi 🙂", unit="ByteTokenizer.decode",
                what="decode(ids, skip_special=True)", case=case)
    # A special token inside a multi-byte character: removed first when skipped; otherwise
    # the bytes on each side are decoded separately.
    e6, rest = 4 + 0xE6, [4 + 0x9D, 4 + 0xB1]  # 東 = E6 9D B1
    split = [e6, BOS_ID] + rest
    case = check.describe(ids=split)
    check.equal(tok.decode(split, skip_special=True), "東", unit="ByteTokenizer.decode",
                what="decode(ids, skip_special=True)", case=case)
    check.equal(tok.decode(split), "\ufffd<bos>\ufffd\ufffd", unit="ByteTokenizer.decode", case=case)
    _expect_bad_ids(tok, "ByteTokenizer.decode")


@pytest.mark.points(1)
def test_byte_empty_tuple_and_surrogate_inputs(impl):
    tok = impl.ByteTokenizer()
    check.equal(tok.encode(""), [], unit="ByteTokenizer.encode", what="encode('') (no bytes, no ids)")
    check.equal(tok.decode([]), "", unit="ByteTokenizer.decode", what="decode([])")
    check.equal(tok.decode([], skip_special=True), "", unit="ByteTokenizer.decode",
                what="decode([], skip_special=True)")
    ids = (BOS_ID,) + tuple(4 + b for b in "é!".encode())
    check.equal(tok.decode(ids), "<bos>é!", unit="ByteTokenizer.decode",
                what="decode of a tuple of ids (any sequence of ints)", case=check.describe(ids=ids))
    text = "a\ud800b"  # a lone surrogate: a Python str that UTF-8 cannot encode
    check.expect_raises(UnicodeEncodeError, tok.encode, text, unit="ByteTokenizer.encode",
                        case=check.describe(text=text),
                        why="the docstring: a string holding a lone surrogate raises UnicodeEncodeError")


# ------------------------------------------------------------------ WordTokenizer

def _word_mistakes(texts, min_freq, max_size):
    return {
        "ties broken by first occurrence instead of by the word (ascending)":
            lambda: O.word_itos(texts, min_freq, max_size, ties="first"),
        "max_size must count the 4 special tokens":
            lambda: O.word_itos(texts, min_freq, max_size, cap_words=True),
        "min_freq applied with > instead of >=":
            lambda: O.word_itos(texts, min_freq, max_size, strict=True),
        "split on whitespace instead of WORD_PATTERN":
            lambda: O.word_itos(texts, min_freq, max_size, space_split=True),
    }


@pytest.mark.points(3)
def test_word_golden_vocabulary(impl):
    rec = reference.load(TOPIC, "word")
    texts = [course_corpus(**rec["corpus"])]
    tok = impl.WordTokenizer(min_freq=rec["min_freq"], max_size=rec["max_size"]).train(texts)
    check.equal(list(tok.itos), rec["itos"], unit="WordTokenizer.train", what="vocabulary (itos)",
                case=check.describe(corpus=f"course_corpus(**{rec['corpus']})", min_freq=rec["min_freq"],
                                    max_size=rec["max_size"]),
                mistakes=_word_mistakes(texts, rec["min_freq"], rec["max_size"]))


@pytest.mark.points(2)
def test_word_golden_ids(impl):
    rec = reference.load(TOPIC, "word")
    tok = impl.WordTokenizer(min_freq=rec["min_freq"], max_size=rec["max_size"]).train(
        [course_corpus(**rec["corpus"])])
    for text, expected in zip(rec["texts"], rec["ids"]):
        check.equal(tok.encode(text), expected, unit="WordTokenizer.encode", case=check.describe(text=text),
                    mistakes={"dropping unknown words instead of mapping them to <unk>":
                              O.word_ids(rec["itos"], text, drop_unk=True)})


# Few distinct pieces, so equal counts (ties) and min_freq/max_size cuts happen often.
_PIECES = ["the", " the", "cat", " cat", " sat", ".", ",", " 🙂", "東京", " 東京", "\n", "  ", "a", " a"]
_word_texts = st.lists(st.lists(st.sampled_from(_PIECES), max_size=12).map("".join), min_size=1, max_size=4)


@pytest.mark.points(3)
@examples(25)
@given(texts=_word_texts, min_freq=st.integers(1, 3), max_size=st.one_of(st.none(), st.integers(4, 12)))
def test_word_vocabulary_matches_oracle(impl, texts, min_freq, max_size):
    tok = impl.WordTokenizer(min_freq=min_freq, max_size=max_size).train(texts)
    expected = O.word_itos(texts, min_freq, max_size)
    case = check.describe(texts=texts, min_freq=min_freq, max_size=max_size)
    check.equal(list(tok.itos), expected, unit="WordTokenizer.train", what="vocabulary (itos)", case=case,
                mistakes=_word_mistakes(texts, min_freq, max_size))
    check.equal(dict(tok.stoi), {t: i for i, t in enumerate(expected)}, unit="WordTokenizer.train",
                what="stoi (must be the inverse of itos)", case=case)


@pytest.mark.points(1)
def test_word_tie_rule(impl):
    texts = ["b", "a", "c c", "d d d"]   # pieces: "b", "a", "c", " c", "d", " d", " d"
    tok = impl.WordTokenizer().train(texts)
    expected = SPECIALS + [" d", " c", "a", "b", "c", "d"]
    check.equal(list(tok.itos), expected, unit="WordTokenizer.train", what="vocabulary (itos)",
                case=check.describe(texts=texts),
                mistakes={"ties broken by first occurrence instead of by the word (ascending)":
                          SPECIALS + [" d", "b", "a", "c", " c", "d"]})


@pytest.mark.points(2)
def test_word_min_freq_and_max_size(impl):
    texts = ["x y y z z z w w w w"]  # pieces: "x" 1, " y" 2, " z" 3, " w" 4
    rules = [(1, None, [" w", " z", " y", "x"]), (2, None, [" w", " z", " y"]), (4, None, [" w"]),
             (5, None, []), (1, 6, [" w", " z"]), (3, 5, [" w"]), (1, 4, [])]
    for min_freq, max_size, words in rules:
        tok = impl.WordTokenizer(min_freq=min_freq, max_size=max_size).train(texts)
        check.equal(list(tok.itos), SPECIALS + words, unit="WordTokenizer.train", what="vocabulary (itos)",
                    case=check.describe(texts=texts, min_freq=min_freq, max_size=max_size),
                    mistakes=_word_mistakes(texts, min_freq, max_size))


@pytest.mark.points(2)
@examples(25)
@given(text=strategies.texts(_ALPHABET + ["_", "7", "\u3000", "\r"], max_size=40))
def test_word_pre_tokenization_matches_regex(impl, text):
    # Trained on the text itself, every piece is in the vocabulary: the ids spell out the
    # pre-tokenization, and decode must give the text back exactly.
    tok = impl.WordTokenizer().train([text])
    ids = tok.encode(text)
    case = check.describe(text=text)
    pieces = [tok.itos[i] for i in ids]
    check.equal(pieces, O.PATTERN.findall(text), unit="WordTokenizer.encode",
                what="pieces of encode(text) (tok.itos[i] for each id)", case=case,
                mistakes={"split on whitespace instead of WORD_PATTERN": text.split()})
    check.equal(tok.decode(ids), text, unit="WordTokenizer.decode", what="decode(encode(text))", case=case,
                mistakes={"pieces joined with spaces (they already carry their spaces)": " ".join(pieces)})


@pytest.mark.points(2)
@examples(25)
@given(texts=_word_texts, data=st.data())
def test_word_round_trip_and_unknown_words(impl, texts, data):
    tok = impl.WordTokenizer().train(texts)
    itos = O.word_itos(texts)
    known = [p for p in itos[4:] if p.strip()]
    unknown = ["dog", " dog", "?", " Zürich"]
    pieces = data.draw(st.lists(st.sampled_from(known + unknown) if known else st.sampled_from(unknown),
                                max_size=10), label="pieces")
    text = "".join(pieces)
    ids = tok.encode(text)
    case = check.describe(texts=texts, text=text)
    check.equal(ids, O.word_ids(itos, text), unit="WordTokenizer.encode", case=case,
                mistakes={"dropping unknown words instead of mapping them to <unk>":
                          O.word_ids(itos, text, drop_unk=True)})
    if all(p in itos for p in O.PATTERN.findall(text)):
        check.equal(tok.decode(ids), text, unit="WordTokenizer.decode", what="decode(encode(text))", case=case)


@pytest.mark.points(1)
def test_word_retrain_replaces_vocabulary(impl):
    tok = impl.WordTokenizer().train(["x y z"])     # pieces "x", " y", " z"
    tok.train(["b a"])                              # pieces "b", " a"
    check.equal(list(tok.itos), SPECIALS + [" a", "b"], unit="WordTokenizer.train",
                what="vocabulary after training again on ['b a'] (must replace the old one)",
                case=check.describe(first=["x y z"], then=["b a"]),
                mistakes={"train extends the previous vocabulary instead of replacing it":
                          SPECIALS + [" a", " y", " z", "b", "x"],
                          "train extends the previous vocabulary (appending) instead of replacing it":
                          SPECIALS + [" y", " z", "x", " a", "b"]})
    check.equal(dict(tok.stoi), {t: i for i, t in enumerate(SPECIALS + [" a", "b"])}, unit="WordTokenizer.train",
                what="stoi after training again (the inverse of the new itos)", case=check.describe(then=["b a"]))
    check.equal(tok.encode("x a"), [UNK_ID, 4], unit="WordTokenizer.encode",
                case=check.describe(after_retraining_on=["b a"], text="x a"))


@pytest.mark.points(1)
def test_word_empty_and_tuple_inputs(impl):
    tok = impl.WordTokenizer().train([])
    check.equal(list(tok.itos), SPECIALS, unit="WordTokenizer.train",
                what="vocabulary after train([]) (the four special tokens only)", case=check.describe(texts=[]))
    check.equal(tok.encode("hi there"), [UNK_ID, UNK_ID], unit="WordTokenizer.encode",
                case=check.describe(trained_on=[], text="hi there"),
                mistakes={"dropping unknown words instead of mapping them to <unk>": []})
    tok = impl.WordTokenizer().train(["hi there", ""])   # " there" id 4, "hi" id 5
    case = check.describe(trained_on=["hi there", ""])
    check.equal(tok.encode(""), [], unit="WordTokenizer.encode", what="encode('') (no pieces, no ids)", case=case)
    check.equal(tok.decode([]), "", unit="WordTokenizer.decode", what="decode([])", case=case)
    check.equal(tok.decode((BOS_ID, 5, 4)), "<bos>hi there", unit="WordTokenizer.decode",
                what="decode of a tuple of ids (any sequence of ints)", case=case)


@pytest.mark.points(1)
def test_word_decode_special_tokens(impl):
    tok = impl.WordTokenizer().train(["hello world"])
    ids = [BOS_ID] + tok.encode("hello world") + [EOS_ID, PAD_ID]
    case = check.describe(ids=ids)
    check.equal(tok.decode(ids), "<bos>hello world<eos><pad>", unit="WordTokenizer.decode", case=case)
    check.equal(tok.decode(ids, skip_special=True), "hello world", unit="WordTokenizer.decode",
                what="decode(ids, skip_special=True)", case=case)
    check.equal(tok.decode(tok.encode("hello there")), "hello<unk>", unit="WordTokenizer.decode",
                case=check.describe(text="hello there"))
    _expect_bad_ids(tok, "WordTokenizer.decode")
