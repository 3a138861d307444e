"""Golden data for 01_tokenizer: exact ids on fixed texts, produced by solutions/.

Every record stores its inputs next to its outputs, so graders read both from the record
(graders never import this file). All records are JSON: ids are small integers.
"""

from llmlab.lib.corpus import course_corpus

SEED = 0

# Texts for exact-id checks: ASCII, accents, CJK, emoji (incl. a skin-tone modifier and a
# flag made of two code points), a combining accent, whitespace runs, and text that looks
# like a special token but is ordinary text.
TEXTS = [
    "hello",
    "Hello, World?",
    "café 東京 🙂!",
    "naïve 👍🏽 and 🇩🇪",
    "e\u0301 is e + combining acute",
    "tab\there\n\nnew  line ",
    "<bos> is just text",
    "",
]

CHAR_TRAIN = ["hello world", "the café in Zürich", "東京 🙂!", "A quick test, with punctuation."]

WORD_CORPUS = {"n_paragraphs": 30, "seed": 3}
WORD_MIN_FREQ = 2
WORD_MAX_SIZE = 150

PAD_SEQS = [[5, 6, 7], [8], [], [9, 10, 11, 12, 13], [0, 14]]
PAD_CASES = [
    {"pad_id": 0, "max_len": None, "side": "right", "truncate": "right"},
    {"pad_id": 0, "max_len": None, "side": "left", "truncate": "right"},
    {"pad_id": 99, "max_len": 3, "side": "right", "truncate": "right"},
    {"pad_id": 99, "max_len": 3, "side": "left", "truncate": "left"},
    {"pad_id": 1, "max_len": 7, "side": "left", "truncate": "right"},
]


def generate(impl):
    char = impl.CharTokenizer().train(CHAR_TRAIN)
    byte = impl.ByteTokenizer()

    corpus = course_corpus(**WORD_CORPUS)
    word = impl.WordTokenizer(min_freq=WORD_MIN_FREQ, max_size=WORD_MAX_SIZE).train([corpus])
    # Held-out text from another seed: mostly in-vocabulary pieces, some <unk>.
    word_texts = TEXTS + course_corpus(n_paragraphs=2, seed=11).split("\n\n")

    pad_cases = []
    for case in PAD_CASES:
        ids, mask = impl.pad_batch(PAD_SEQS, **case)
        pad_cases.append({**case, "ids": ids.tolist(), "mask": mask.tolist()})

    return {
        "char": {"train": CHAR_TRAIN, "texts": TEXTS, "itos": char.itos,
                 "ids": [char.encode(t) for t in TEXTS]},
        "byte": {"texts": TEXTS, "ids": [byte.encode(t) for t in TEXTS]},
        "word": {"corpus": WORD_CORPUS, "min_freq": WORD_MIN_FREQ, "max_size": WORD_MAX_SIZE,
                 "itos": word.itos, "texts": word_texts, "ids": [word.encode(t) for t in word_texts]},
        "pad": {"seqs": PAD_SEQS, "cases": pad_cases},
    }
