"""One grading job: one submission x topic, a topic folder or a submitted notebook, graded
in a private working folder with the guards of `llmlab grade` (local threads and Dask
workers run the same function).

- a topic folder is copied into the working folder and graded by the per-topic child
  process (llmlab.grading.grade.run_topic);
- a notebook is autograded by nbgrader in a course folder of its own inside the working
  folder (llmlab.book.nbgrade.autograde_one); the chapter's locked first cell installs the
  same guards in the kernel.

The child (or kernel) is told, through the environment, the folders it may neither read nor
change (the class's submissions, the results, the other jobs' working folders) and the one
it may use (its own).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from llmlab.book import nbgrade
from llmlab.course import topics
from llmlab.grading import grade, sandbox

FOLDER, NOTEBOOK, MISSING = "folder", "notebook", "missing"


def failed_entry(topic: topics.Topic, tests: list[dict], status: str, detail: str) -> dict:
    """A topic's report entry scoring 0 on every test, each test saying why."""
    return {"topic": topic.slug, "title": topic.title, "score": 0.0,
            "max_score": float(sum(t["points"] for t in tests)), "status": status, "detail": detail,
            "seconds": 0.0,
            "tests": [{"id": t["id"], "points": 0.0, "max_points": float(t["points"]), "outcome": "error",
                       "message": detail, "hidden": bool(t.get("hidden"))} for t in tests]}


def run(kind: str, topic: topics.Topic, source: Path, tests: list[dict], work: Path, private: list[Path],
        sockets: Path, built: Path | None, time_limit: float, memory_mb: int, test_timeout: float,
        on_start=None) -> dict:
    """Grade `source` (kind FOLDER: the submitted NN_x/ folder; NOTEBOOK: the submitted .ipynb)
    in `work` (replaced, removed afterwards); `sockets`: a short folder for the kernel's local
    sockets; `built`: the built chapters (for notebooks)."""
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    kernel = Path(tempfile.mkdtemp(dir=sockets))
    env = {sandbox.PRIVATE_ENV: os.pathsep.join(str(p) for p in private),
           sandbox.ALLOWED_ENV: os.pathsep.join([str(work), str(kernel)])}
    try:
        if kind == NOTEBOOK:
            entry = nbgrade.autograde_one(built, topic.slug, source, work / "nbgrader", kernel / "k", time_limit,
                                          memory_mb, env, on_start)
            if entry["status"] != "ok":  # a notebook that did not run to the end: every test, 0 points
                entry = failed_entry(topic, tests, entry["status"], entry.get("detail", ""))
            return entry
        copy = work / topic.slug
        try:
            shutil.copytree(source, copy, symlinks=True, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        except OSError as exc:  # the submission's own doing (unreadable files, odd names): its topic only
            return failed_entry(topic, tests, "crashed",
                                f"the submitted {topic.slug}/ folder could not be copied for grading: {exc}")
        return grade.run_topic(topic, copy, tests, time_limit, memory_mb, test_timeout, env=env, on_start=on_start)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(kernel, ignore_errors=True)
