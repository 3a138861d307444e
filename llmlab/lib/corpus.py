"""The course text corpus: procedural English, generated from a seed (nothing downloaded).

A small grammar writes short stories about a handful of characters, places and things:
declarative sentences, questions, dialogue lines, numbers and dates, lists, and a sprinkle
of non-ASCII words (café, naïve, Zürich, 東京, emoji) so tokenizers meet real Unicode. The
text has the statistics that make the course's experiments meaningful — a Zipf-like word
distribution, repeated phrases, long-range agreement between a name and its pronoun —
while staying small enough to train on a laptop CPU.

`course_corpus(n_paragraphs, seed)` is deterministic: the same arguments give the same
text on every machine (Python's `random.Random` is specified to be reproducible).
"""

from __future__ import annotations

import random

NAMES = [("Ada", "she"), ("Bruno", "he"), ("Chen", "he"), ("Dana", "she"), ("Emil", "he"),
         ("Farah", "she"), ("Gus", "he"), ("Hana", "she"), ("Ivo", "he"), ("Jun", "she"),
         ("Kofi", "he"), ("Lena", "she"), ("Zoë", "she"), ("René", "he")]
PLACES = ["the harbour", "the old mill", "the market", "the library", "the garden", "the station",
          "the bakery", "the river bank", "the hill", "the workshop", "the café", "Zürich", "東京"]
THINGS = ["a red kite", "a small boat", "a map", "a lantern", "a loaf of bread", "a blue notebook",
          "an old clock", "a basket of apples", "a letter", "a wooden box", "a compass", "a violin",
          "a jar of honey", "a bicycle", "a telescope"]
ADJECTIVES = ["quiet", "bright", "cold", "warm", "busy", "strange", "calm", "windy", "early", "late",
              "naïve", "cheerful", "tired", "curious"]
VERBS_PAST = ["found", "carried", "painted", "repaired", "sold", "lost", "opened", "borrowed",
              "cleaned", "hid", "shared", "measured"]
VERBS_MOTION = ["walked to", "ran to", "cycled to", "sailed to", "hurried to", "wandered to"]
TIMES = ["in the morning", "at noon", "in the evening", "at night", "on Monday", "on Friday",
         "after the rain", "before sunrise"]
FEELINGS = ["happy", "worried", "surprised", "proud", "sleepy", "hungry", "excited"]
EMOJI = ["🙂", "🚲", "📚", "🍎", "⛵"]
MONTHS = ["January", "March", "May", "July", "September", "November"]


def _sentence(rng: random.Random) -> str:
    name, pronoun = rng.choice(NAMES)
    other, _ = rng.choice(NAMES)
    kind = rng.random()
    if kind < 0.25:
        return (f"{name} {rng.choice(VERBS_MOTION)} {rng.choice(PLACES)} {rng.choice(TIMES)}, "
                f"and {pronoun} {rng.choice(VERBS_PAST)} {rng.choice(THINGS)} there.")
    if kind < 0.40:
        return f"It was a {rng.choice(ADJECTIVES)} day at {rng.choice(PLACES)}, and {name} felt {rng.choice(FEELINGS)}."
    if kind < 0.52:
        thing = rng.choice(THINGS)
        return f'"Have you seen {thing}?" asked {name}. "No," said {other}, "but {pronoun} had it {rng.choice(TIMES)}."'
    if kind < 0.62:
        count = rng.randint(2, 99)
        price = rng.randint(1, 500) / 10
        return f"{name} counted {count} coins and paid {price:.2f} euros for {rng.choice(THINGS)}."
    if kind < 0.70:
        return (f"On {rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1890, 2030)}, "
                f"{name} wrote a letter to {other}.")
    if kind < 0.78:
        items = rng.sample(THINGS, 3)
        return f"In the box were {items[0]}, {items[1]} and {items[2]}."
    if kind < 0.84:
        return f"{name} smiled {rng.choice(EMOJI)} because {pronoun} liked {rng.choice(PLACES)}."
    if kind < 0.92:
        return f"Why did {name} leave {rng.choice(PLACES)} so {rng.choice(['early', 'late', 'quickly'])}?"
    return f"{name} and {other} {rng.choice(VERBS_PAST)} {rng.choice(THINGS)} together {rng.choice(TIMES)}."


def course_corpus(n_paragraphs: int = 400, seed: int = 0) -> str:
    """Paragraphs of 3–7 sentences, separated by blank lines. About 110 characters per
    sentence, so the default is roughly 200 KB of text."""
    if n_paragraphs < 1:
        raise ValueError("n_paragraphs must be at least 1")
    rng = random.Random(seed)
    paragraphs = []
    for _ in range(n_paragraphs):
        paragraphs.append(" ".join(_sentence(rng) for _ in range(rng.randint(3, 7))))
    return "\n\n".join(paragraphs) + "\n"


def train_val_split(text: str, val_fraction: float = 0.1) -> tuple[str, str]:
    """Split at a paragraph boundary: the last `val_fraction` of paragraphs is validation."""
    if not 0 < val_fraction < 1:
        raise ValueError("val_fraction must be between 0 and 1")
    paragraphs = text.strip("\n").split("\n\n")
    cut = max(1, int(len(paragraphs) * (1 - val_fraction)))
    return "\n\n".join(paragraphs[:cut]) + "\n", "\n\n".join(paragraphs[cut:]) + "\n"
