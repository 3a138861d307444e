"""`llmlab list`: the topics, and how far the student is on each.

Progress comes from two places: the TODOs still present in `exercises/NN_x/` (a static
scan, always current) and the score of the last `llmlab grade` run, if any.
"""

from __future__ import annotations

import json
import re

from llmlab.course import paths, topics

TODO_LINE = re.compile(r'raise NotImplementedError\("TODO [^:]+: ([^"]+)"\)')


def remaining_todos(topic: topics.Topic) -> list[str]:
    """Units whose TODO is still in the exercise files, in file order."""
    units = []
    folder = topic.exercises
    if not folder.is_dir():
        return units
    for path in sorted(folder.glob("*.py")):
        if path.name.startswith("test_"):
            continue
        for match in TODO_LINE.finditer(path.read_text(errors="replace")):
            if match.group(1) not in units:
                units.append(match.group(1))
    return units


def last_scores() -> dict[str, tuple[float, float]]:
    path = paths.state_dir() / "last_grade.json"
    if not path.exists():
        return {}
    try:
        report = json.loads(path.read_text())
        if report.get("impl") != "exercises":
            return {}
        return {t["topic"]: (t["score"], t["max_score"]) for t in report["topics"]}
    except (json.JSONDecodeError, KeyError, TypeError):
        return {}


def print_list(console, selected: list[topics.Topic]) -> None:
    from rich.table import Table

    scores = last_scores()
    table = Table(title="llmlab topics")
    table.add_column("topic")
    table.add_column("title")
    table.add_column("TODOs left", justify="right")
    table.add_column("last grade", justify="right")
    table.add_column("next unit")
    for topic in selected:
        todos = remaining_todos(topic)
        score = scores.get(topic.slug)
        table.add_row(topic.slug, topic.title, str(len(todos)),
                      f"{score[0]:g} / {score[1]:g}" if score else "—",
                      todos[0] if todos else ("done" if topic.exercises.is_dir() else "—"))
    console.print(table)
    if not scores:
        console.print("Run `llmlab grade` (or `make grade`) to record scores.")
