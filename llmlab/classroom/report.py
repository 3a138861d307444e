"""What the class got wrong: a page an instructor can teach from (OUT/class_report.md).

Graders name known mistakes in their messages (`known mistake: NAME`, see
llmlab.testing.check) and each message starts with the unit it checks (`softmax: ...`).
Per topic this counts, among the students who submitted it:
- per unit and named mistake, the students whose failures matched it
  ("31 of 120 forgot 1/sqrt(d_k)");
- per unit, the students who left its TODO unimplemented;
- the tests failed by the most students, and the topics' crashes and timeouts.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from pathlib import Path

_MISTAKE = re.compile(r"^\s*known mistake: (.+?)\s*$", re.M)
_TODO = re.compile(r"NotImplementedError: TODO \S+: ([^\s(]+)")
_UNIT = re.compile(r"^(?:[A-Za-z_.]+(?:Error|Failure|Exception): )?([A-Za-z_][\w.]*(?:\(\))?): ")


def unit_of(line: str) -> str | None:
    """The unit a line of a grader's message names (`softmax: ...`, or a TODO's unit), if any."""
    line = line.strip()
    todo = _TODO.search(line)
    if todo:
        return todo.group(1)
    match = _UNIT.match(line)
    return match.group(1) if match else None


def findings(message: str) -> tuple[list[tuple[str, str]], list[str]]:
    """([(unit, named mistake)], [units left unimplemented]) in one test's message. The unit is
    named on the message's first line; a notebook's grade cell reports several tests in one
    message, each after its own `FAIL test_name` line."""
    mistakes, todo, unit, first = [], [], None, True
    for line in message.splitlines():
        text = line.strip()
        if text.startswith(("FAIL ", "ok ")):
            first = True
            continue
        if first and text:
            unit, first = unit_of(text), False
        mistake = _MISTAKE.match(line)
        if mistake:
            mistakes.append((unit or "?", mistake.group(1)))
        elif _TODO.search(line):
            todo.append(unit_of(text) or "?")
    return mistakes, todo


def analyse(entries: dict[str, dict[str, dict]], students: list[str], slugs: list[str]) -> dict:
    """{slug: {"submitted": n, "mistakes": {(unit, mistake): [students]}, "todo": {unit: [students]},
    "failed_tests": Counter(test name -> students), "status": Counter(status -> students)}};
    the hidden tests count together, as one line (a student failing any of them counts once)."""
    out = {}
    for slug in slugs:
        mistakes: dict[tuple[str, str], set[str]] = defaultdict(set)
        todo: dict[str, set[str]] = defaultdict(set)
        failing: dict[str, set[str]] = defaultdict(set)
        status: Counter = Counter()
        submitted = 0
        for student in students:
            entry = entries.get(student, {}).get(slug)
            if entry is None or entry["status"] == "missing":
                continue
            submitted += 1
            if entry["status"] != "ok":
                status[entry["status"]] += 1
            for test in entry["tests"]:
                if test["outcome"] in ("passed", "skipped"):
                    continue
                name = "hidden tests (any)" if test.get("hidden") else test["id"].split("::")[-1]
                failing[name].add(student)
                found_mistakes, found_todo = findings(test["message"] or "")
                for unit in found_todo:
                    todo[unit].add(student)
                for unit, mistake in found_mistakes:
                    mistakes[(unit, mistake)].add(student)
        out[slug] = {"submitted": submitted, "mistakes": {k: sorted(v) for k, v in mistakes.items()},
                     "todo": {k: sorted(v) for k, v in todo.items()},
                     "failed_tests": Counter({k: len(v) for k, v in failing.items()}), "status": status}
    return out


def write(path: Path, entries, students, slugs, top: int = 5) -> Path:
    found = analyse(entries, students, slugs)
    lines = ["# What the class got wrong", "",
             f"{len(students)} submissions. Counts are students (each counted once per line) among those "
             f"who submitted the topic.", ""]
    for slug in slugs:
        info = found[slug]
        n = info["submitted"]
        lines += [f"## {slug}", "", f"{n} of {len(students)} submitted it."]
        if n == 0:
            lines.append("")
            continue
        full = sum(1 for s in students if (e := entries.get(s, {}).get(slug)) and e["status"] != "missing"
                   and e["score"] >= e["max_score"] > 0)
        lines += [f"{full} of {n} got full marks.", ""]
        if info["mistakes"]:
            lines += ["Named mistakes:", ""]
            for (unit, mistake), who in sorted(info["mistakes"].items(), key=lambda kv: (-len(kv[1]), kv[0])):
                lines.append(f"- {unit}: {len(who)} of {n} {mistake}")
            lines.append("")
        if info["todo"]:
            lines += ["Left unimplemented (TODO):", ""]
            for unit, who in sorted(info["todo"].items(), key=lambda kv: (-len(kv[1]), kv[0])):
                lines.append(f"- {unit}: {len(who)} of {n}")
            lines.append("")
        if info["failed_tests"]:
            lines += ["Tests failed most:", ""]
            for name, count in info["failed_tests"].most_common(top):
                lines.append(f"- {name}: {count} of {n}")
            lines.append("")
        if info["status"]:
            lines += ["Topics that did not run to the end: "
                      + ", ".join(f"{count} {status}" for status, count in sorted(info["status"].items())), ""]
    path.write_text("\n".join(lines))
    return path
