"""Exports of the class's results (from the database, so they can be rebuilt at any time):

- scores.csv: one row per student; per topic its points and status, then the total;
- gradebook.csv: what an LMS imports (student, points, points possible, percent);
- feedback/<student>.md: per topic, the score and the graders' message for each test not
  passed (messages only: the source of hidden tests is never shown);
- gradescope/<student>/results.json: Gradescope's autograder results format
  (https://gradescope-autograders.readthedocs.io/en/latest/specs/): score, and per test
  name, score, max_score, output, visibility (hidden tests: "after_published");
- class_report.md: what the class got wrong (report.py).
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from llmlab.classroom import report


def _rows(entries: dict[str, dict[str, dict]], students: list[str], slugs: list[str]):
    for student in students:
        got = entries.get(student, {})
        yield student, [got.get(slug) for slug in slugs]


def scores_csv(path: Path, entries, students, slugs) -> Path:
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["student"] + [c for s in slugs for c in (f"{s} points", f"{s} max", f"{s} status")]
                     + ["total", "max"])
        for student, topics in _rows(entries, students, slugs):
            cells = []
            for entry in topics:
                cells += ["", "", "not graded"] if entry is None else \
                    [f"{entry['score']:g}", f"{entry['max_score']:g}", entry["status"]]
            total = sum(e["score"] for e in topics if e)
            possible = sum(e["max_score"] for e in topics if e)
            out.writerow([student] + cells + [f"{total:g}", f"{possible:g}"])
    return path


def gradebook_csv(path: Path, entries, students, slugs, assignment: str = "llmlab") -> Path:
    with open(path, "w", newline="") as handle:
        out = csv.writer(handle)
        out.writerow(["Student", f"{assignment} Points", f"{assignment} Points Possible", f"{assignment} Percent"])
        for student, topics in _rows(entries, students, slugs):
            total = sum(e["score"] for e in topics if e)
            possible = sum(e["max_score"] for e in topics if e)
            out.writerow([student, f"{total:g}", f"{possible:g}",
                          f"{100 * total / possible:.1f}" if possible else ""])
    return path


def _test_name(test: dict) -> str:
    return test["id"].split("::")[-1]


def feedback(folder: Path, entries, students, slugs) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    written = []
    for student, topics in _rows(entries, students, slugs):
        total = sum(e["score"] for e in topics if e)
        possible = sum(e["max_score"] for e in topics if e)
        lines = [f"# Feedback for {student}", "", f"Total: {total:g} / {possible:g}", ""]
        for slug, entry in zip(slugs, topics):
            if entry is None:
                lines += [f"## {slug}: not graded", ""]
                continue
            status = "" if entry["status"] == "ok" else f" ({entry['status']})"
            lines += [f"## {slug}: {entry['score']:g} / {entry['max_score']:g}{status}", ""]
            if entry["status"] not in ("ok",) and entry.get("detail"):
                lines += [entry["detail"], ""]
            for test in entry["tests"]:
                if test["outcome"] == "passed":
                    continue
                name = "a hidden test" if test.get("hidden") else f"`{_test_name(test)}`"
                points = f"{test['max_points']:g} point" + ("" if test["max_points"] == 1 else "s")
                lines += [f"- {name} ({points}): {test['outcome']}", ""]
                if test["message"]:
                    lines += ["  ```", *[f"  {line}" for line in test["message"].splitlines()], "  ```", ""]
            if entry["score"] >= entry["max_score"] > 0:
                lines += ["Full marks.", ""]
        path = folder / f"{student}.md"
        path.write_text("\n".join(lines))
        written.append(path)
    return written


def gradescope_result(entries: list[dict | None], slugs: list[str]) -> dict:
    """One submission's results.json (Gradescope's autograder format) from its topic entries."""
    tests = []
    for slug, entry in zip(slugs, entries):
        for test in (entry or {}).get("tests", []):
            tests.append({
                "name": f"{slug}: {'hidden test' if test.get('hidden') else _test_name(test)}",
                "score": test["points"], "max_score": test["max_points"],
                "output": test["message"] if test["outcome"] != "passed" else "",
                "visibility": "after_published" if test.get("hidden") else "visible",
                "status": "passed" if test["outcome"] == "passed" else "failed",
            })
    return {"score": sum(t["score"] for t in tests), "tests": tests, "visibility": "visible",
            "stdout_visibility": "hidden"}


def gradescope(folder: Path, entries, students, slugs) -> list[Path]:
    written = []
    for student, topics in _rows(entries, students, slugs):
        path = folder / student / "results.json"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(gradescope_result(topics, slugs), indent=1))
        written.append(path)
    return written


def export_all(out: Path, entries, students, slugs) -> dict[str, Path]:
    out = Path(out)
    return {
        "scores": scores_csv(out / "scores.csv", entries, students, slugs),
        "gradebook": gradebook_csv(out / "gradebook.csv", entries, students, slugs),
        "feedback": feedback(out / "feedback", entries, students, slugs) and out / "feedback",
        "gradescope": gradescope(out / "gradescope", entries, students, slugs) and out / "gradescope",
        "report": report.write(out / "class_report.md", entries, students, slugs),
    }
