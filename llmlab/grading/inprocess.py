"""Run a topic's graders inside this process on a given implementation.

Used where starting a pytest process per run would dominate the cost: the autograded cells
of a chapter notebook (llmlab.book.notebook), and the mutant worker, which judges many
implementations with the graders imported once (llmlab.authoring.mutants).
"""

from __future__ import annotations

import ast
import contextlib
import io

from llmlab.course import loader, topics


def grader_locations(topic: topics.Topic) -> dict[str, str]:
    """test function name -> grader file (path relative to the course root)."""
    found = {}
    for path in sorted(topic.graders.glob("test_*.py")):
        tree = ast.parse(path.read_text())
        for node in tree.body:
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test_"):
                found[node.name] = str(path)
    return found


class _Outcomes:
    """A pytest plugin that keeps each test's outcome and message."""

    def __init__(self) -> None:
        self.results: dict[str, tuple[str, str]] = {}

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


def run_tests(topic: topics.Topic, impl: loader.Implementation, tests: list[str] | None = None,
              stop_first: bool = False) -> dict[str, tuple[str, str]]:
    """Run grader tests of `topic` in this process with `impl` under test.

    Returns test name -> (outcome, message); all parametrizations of a test count as one."""
    import pytest

    from llmlab.grading import pytest_plugin

    where = grader_locations(topic)
    unknown = [t for t in tests or [] if t not in where]
    if unknown:
        raise ValueError(f"{topic.slug} has no grader test(s) {unknown}")
    targets = [f"{where[t]}::{t}" for t in tests] if tests else [str(topic.graders)]
    args = targets + ["-q", "--no-header", "-p", "no:cacheprovider", "--runslow"] + (["-x"] if stop_first else [])
    import torch

    outcomes = _Outcomes()
    threads = torch.get_num_threads()  # the plugin sets one thread for grading; give it back after
    pytest_plugin.NOTEBOOK_IMPL = impl
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # pytest's own report; callers print theirs
            pytest.main(args, plugins=[outcomes])
    finally:
        pytest_plugin.NOTEBOOK_IMPL = None
        torch.set_num_threads(threads)
    return outcomes.results
