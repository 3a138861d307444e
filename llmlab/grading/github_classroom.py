"""GitHub Classroom: the student bundle's workflow (.github/workflows/classroom.yml) and the
step that turns `llmlab grade --json` into the results of GitHub Classroom's reporter.

The workflow installs the course, runs the public graders (`llmlab grade`, each topic in its
own guarded process) and hands one result per topic to
classroom-resources/autograding-grading-reporter, which reports points per topic to
GitHub Classroom. The reporter reads each runner's result from `<RUNNER>_RESULTS`: base64 of
{"version": 1, "status": "pass|fail|error", "max_score": N, "tests": [{"name", "status",
"score", "message"}]}.
"""

from __future__ import annotations

import base64
import json
import sys
from pathlib import Path

WORKFLOW = Path(".github/workflows/classroom.yml")


def runner_id(slug: str) -> str:
    """A step output / runner name for a topic (GitHub ids start with a letter)."""
    return "t" + slug.lower()


def workflow(slugs: list[str]) -> str:
    env = "".join(f"          {runner_id(s).upper()}_RESULTS: \"${{{{ steps.grade.outputs.{runner_id(s)} }}}}\"\n"
                  for s in slugs)
    return f"""# GitHub Classroom autograding: the public graders, points per topic. Written by `llmlab release`.
name: Autograding Tests
on: [push, workflow_dispatch, repository_dispatch]
permissions:
  checks: write
  actions: read
  contents: read
jobs:
  run-autograding-tests:
    name: Autograding Tests
    runs-on: ubuntu-latest
    if: github.actor != 'github-classroom[bot]'
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: "3.12"
      - name: Install the course
        run: python install.py
      - name: Grade with the public graders
        id: grade
        run: |
          .venv/bin/llmlab grade --quiet --json grade.json || true
          .venv/bin/python -m llmlab.grading.github_classroom grade.json >> "$GITHUB_OUTPUT"
      - name: Report points per topic
        uses: classroom-resources/autograding-grading-reporter@v1
        env:
{env}        with:
          runners: {",".join(runner_id(s) for s in slugs)}
"""


def results(report: dict) -> dict[str, dict]:
    """runner id -> the reporter's result for that topic."""
    out = {}
    for topic in report["topics"]:
        tests = [{"name": t["id"].split("::")[-1], "status": "pass" if t["outcome"] == "passed" else "fail",
                  "score": t["points"], "max_score": t["max_points"],
                  "message": t["message"] if t["outcome"] != "passed" else "", "line_no": 0,
                  "test_code": ""} for t in topic["tests"]]
        status = "error" if topic["status"] != "ok" else (
            "pass" if all(t["status"] == "pass" for t in tests) else "fail")
        out[runner_id(topic["topic"])] = {"version": 1, "status": status, "max_score": topic["max_score"],
                                          "tests": tests}
    return out


def outputs(report: dict) -> str:
    """Lines for $GITHUB_OUTPUT: `runner=base64(result)`."""
    return "".join(f"{runner}={base64.b64encode(json.dumps(result).encode()).decode()}\n"
                   for runner, result in results(report).items())


if __name__ == "__main__":
    sys.stdout.write(outputs(json.loads(Path(sys.argv[1]).read_text())))
