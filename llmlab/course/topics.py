"""The topic registry: the 23 topics of the syllabus, and which of them exist here.

A topic is named `NN_slug`. It exists in this checkout when `graders/NN_slug/` exists
(true for both the course repository and a student bundle).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from llmlab.course import paths

TITLES = {
    "01_tokenizer": "Tokenizer basics",
    "02_bpe": "Byte-level BPE",
    "03_embeddings": "Embeddings and positions",
    "04_attention": "Attention and the Transformer block",
    "05_mini_gpt": "Mini-GPT",
    "06_llama": "From GPT-2 to LLaMA",
    "07_moe": "Mixture of experts",
    "08_bert": "Encoder-only pretraining",
    "09_training": "Training loop and loss",
    "10_scaling_laws": "Scaling laws and compute",
    "11_data": "Data engineering",
    "12_lora": "LoRA",
    "13_midtraining": "Mid-training, annealing, continued pretraining",
    "14_rlhf": "Reward models, PPO, DPO, GRPO",
    "15_generation": "Decoding",
    "16_inference": "KV cache, FlashAttention, quantisation",
    "17_speculative": "Speculative decoding",
    "18_long_context": "Long context",
    "19_reasoning": "Chain of thought and thinking models",
    "20_vlm": "Vision-language models",
    "21_evaluation": "Evaluation",
    "22_distillation": "Knowledge distillation",
    "23_policy_distillation": "On-policy distillation",
}

PARTS = {  # SYLLABUS.md's five parts: title -> the topic numbers in it
    "Part 1 — Foundations": range(1, 6),
    "Part 2 — Training": range(6, 15),
    "Part 3 — Inference": range(15, 18),
    "Part 4 — Frontiers": range(18, 21),
    "Part 5 — Production": range(21, 24),
}

_NAME = re.compile(r"^(\d\d)_[a-z0-9_]+$")


@dataclass(frozen=True)
class Topic:
    slug: str  # "04_attention"

    @property
    def number(self) -> int:
        return int(self.slug[:2])

    @property
    def title(self) -> str:
        return TITLES.get(self.slug, self.slug)

    @property
    def part(self) -> str:
        return next(name for name, numbers in PARTS.items() if self.number in numbers)

    @property
    def solutions(self):
        return paths.solutions_dir() / self.slug

    @property
    def exercises(self):
        return paths.exercises_dir() / self.slug

    @property
    def graders(self):
        return paths.graders_dir() / self.slug

    @property
    def reference(self):
        return paths.reference_dir() / self.slug

    def __str__(self) -> str:
        return self.slug


class UnknownTopic(ValueError):
    pass


def available() -> list[Topic]:
    """Topics present in this checkout, in course order."""
    gdir = paths.graders_dir()
    if not gdir.is_dir():
        return []
    found = [p.name for p in gdir.iterdir() if p.is_dir() and _NAME.match(p.name)]
    return [Topic(s) for s in sorted(found)]


def resolve(name: str) -> Topic:
    """Accept '04_attention', '04', '4' or 'attention' (also a path ending in the slug)."""
    key = str(name).rstrip("/").split("/")[-1].strip()
    topics = available()
    for t in topics:
        if key in (t.slug, t.slug[:2], str(t.number), t.slug[3:]):
            return t
    names = ", ".join(t.slug for t in topics) or "(none: is this a course checkout?)"
    raise UnknownTopic(f"unknown topic {name!r}. Available topics: {names}")


def resolve_many(names: list[str] | None) -> list[Topic]:
    if not names:
        return available()
    return [resolve(n) for n in names]
