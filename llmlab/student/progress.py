"""The student's progress: `llmlab list`, the record of grades, the topic being worked on.

Progress comes from two places: the TODOs still present in `exercises/NN_x/` (a static
scan, always current) and the last grade of each topic (`.llmlab/progress.json`). Only
grading the student's own exercises updates it, one topic at a time: grading one topic,
or grading a submission folder with `--impl`, never erases the others.
"""

from __future__ import annotations

import json
import re

from llmlab.course import loader, paths, topics

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


PROGRESS = "progress.json"


def last_scores() -> dict[str, tuple[float, float]]:
    """topic -> (score, max score) of its last grade."""
    try:
        record = json.loads((paths.state_dir() / PROGRESS).read_text())
        return {slug: (float(t["score"]), float(t["max_score"])) for slug, t in record.items()}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return {}


def record(report: dict) -> None:
    """Keep each graded topic's score (exercises only); other topics keep theirs."""
    if report.get("impl") != "exercises":
        return
    path = paths.state_dir() / PROGRESS
    try:
        kept = json.loads(path.read_text())
        if not isinstance(kept, dict):
            kept = {}
    except (OSError, ValueError):
        kept = {}
    for topic in report["topics"]:
        kept[topic["topic"]] = {"score": topic["score"], "max_score": topic["max_score"], "status": topic["status"]}
    try:
        path.parent.mkdir(exist_ok=True)
        path.write_text(json.dumps(kept, indent=1, sort_keys=True))
    except OSError:
        pass  # a read-only checkout still grades


def working_on(selected: list[topics.Topic]) -> topics.Topic | None:
    """The topic the student is working on: among those with TODOs left or below full marks,
    the one whose edited exercise file changed last; None when nothing is edited yet (then
    the next TODO comes in course order)."""
    scores = last_scores()
    best, newest = None, -1.0
    for topic in selected:
        score = scores.get(topic.slug)
        if not remaining_todos(topic) and score and score[0] >= score[1]:
            continue
        stamp = max((p.stat().st_mtime for p in loader.edited_modules(topic)), default=-1.0)
        if stamp > newest:
            best, newest = topic, stamp
    return best


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
        missing = loader.missing_modules(topic, topic.exercises)
        if missing:
            next_unit = f"{', '.join(missing)} missing: `llmlab sync {topic.slug}` restores it"
        elif todos:
            next_unit = todos[0]
        elif not topic.exercises.is_dir():
            next_unit = "—"
        else:
            next_unit = "no TODO left" + ("" if score and score[0] >= score[1] else ": run `llmlab grade` to check")
        table.add_row(topic.slug, topic.title, str(len(todos)),
                      f"{score[0]:g} / {score[1]:g}" if score else "—", next_unit)
    console.print(table)
    if not scores:
        console.print("Run `llmlab grade` (or `make grade`) to record scores.")
