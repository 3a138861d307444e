"""Inside a chapter notebook: run the topic's graders on the objects the notebook defines.

An autograded cell of a built chapter reads

    from llmlab.notebook import run_graders
    run_graders("04_attention", ["test_softmax_matches_torch", "test_softmax_gradients"], globals())

which runs exactly those pytest graders — the same ones `pytest exercises/04_attention`
runs — with the notebook's namespace as the implementation under test. It prints each
failure's message and raises `AssertionError` if any test fails, so nbgrader scores the
cell 0; when all pass, the cell earns the sum of the tests' points.
"""

from __future__ import annotations

import ast
import contextlib
import io
from types import SimpleNamespace

from llmlab import loader, topics


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

    from llmlab import pytest_plugin

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


def run_graders(topic: str, tests: list[str], namespace: dict) -> None:
    resolved = topics.resolve(topic)
    public = {k: v for k, v in namespace.items() if not k.startswith("_")}
    impl = loader.Implementation(resolved, resolved.graders, {"notebook": SimpleNamespace(**public)})
    results = run_tests(resolved, impl, tests)
    failed = []
    for test in tests:
        outcome, message = results.get(test, ("error", "the test did not run"))
        mark = "ok  " if outcome == "passed" else "FAIL"
        print(f"{mark} {test}")
        if outcome != "passed":
            failed.append(test)
            for line in message.splitlines():
                print(f"       {line}")
    if failed:
        raise AssertionError(f"{len(failed)} of {len(tests)} checks failed: {', '.join(failed)}")
