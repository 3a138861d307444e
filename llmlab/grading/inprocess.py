"""Run a topic's graders inside this process on a given implementation.

Used where starting a pytest process per run would dominate the cost: the autograded cells
of a chapter notebook (llmlab.book.notebook), and the mutant worker, which judges many
implementations with the graders imported once (llmlab.authoring.mutants).
"""

from __future__ import annotations

import ast
import contextlib
import io
from pathlib import Path
from typing import Callable

from llmlab.course import loader, topics


def grader_locations(topic: topics.Topic) -> dict[str, str]:
    """test function name -> grader file (path relative to the course root), public files
    first (hidden tests are the slow, thorough ones), then by file name."""
    found = {}
    for path in sorted(topic.graders.glob("test_*.py"), key=lambda p: (p.stem.endswith("_hidden"), p.name)):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                found[node.name] = str(path)
    return found


class _Outcomes:
    """A pytest plugin that keeps each test's outcome and message, and ends the session
    early once a failure satisfies `stop_on`."""

    def __init__(self, stop_on: Callable[[str], bool] | None = None) -> None:
        self.results: dict[str, tuple[str, str]] = {}
        self.stop_on = stop_on
        self.session = None

    def pytest_sessionstart(self, session) -> None:
        self.session = session

    def pytest_runtest_logreport(self, report) -> None:
        name = report.nodeid.split("::")[-1].split("[")[0]  # all parametrizations count as one test
        if self.results.get(name, ("",))[0] == "failed":
            return
        if report.failed or name not in self.results or report.when == "call":
            message = ""
            if report.failed:
                message = str(report.longrepr) if not hasattr(report.longrepr, "reprcrash") \
                    else str(report.longrepr.reprcrash.message)
            self.results[name] = ("failed" if report.failed else report.outcome, message)
            if report.failed and self.stop_on is not None and self.stop_on(message):
                self.session.shouldstop = "enough evidence"


def run_tests(topic: topics.Topic, impl: loader.Implementation, tests: list[str] | None = None, *,
              public_only: bool = False, stop_on: Callable[[str], bool] | None = None,
              timeout: float | None = None) -> dict[str, tuple[str, str]]:
    """Run grader tests of `topic` in this process with `impl` under test: the named
    `tests`, or all of them (the public ones with `public_only`).

    `stop_on(message)` ends the run at the first failure whose message it accepts;
    `timeout` overrides each test's time limit. Returns test name -> (outcome, message);
    all parametrizations of a test count as one."""
    import pytest
    import torch

    from llmlab.grading import pytest_plugin

    where = grader_locations(topic)
    unknown = [t for t in tests or [] if t not in where]
    if unknown:
        raise ValueError(f"{topic.slug} has no grader test(s) {unknown}")
    if tests:
        targets = [f"{where[t]}::{t}" for t in tests]
    elif public_only:
        targets = sorted({f for f in where.values() if not Path(f).stem.endswith("_hidden")})
    else:
        targets = [str(topic.graders)]
    args = targets + ["-q", "--no-header", "-p", "no:cacheprovider", "--runslow"]
    if timeout is not None:
        args.append(f"--timeout={timeout:g}")
    outcomes = _Outcomes(stop_on)
    threads = torch.get_num_threads()  # the plugin sets one thread for grading; give it back after
    pytest_plugin.NOTEBOOK_IMPL = impl
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pytest's own report; callers print theirs
            pytest.main(args, plugins=[outcomes])
    finally:
        pytest_plugin.NOTEBOOK_IMPL = None
        torch.set_num_threads(threads)
    return outcomes.results
