"""Inside a chapter notebook: run the topic's graders on the objects the notebook defines.

An autograded cell of a built chapter reads

    from llmlab.book.notebook import run_graders
    run_graders("04_attention", ["test_softmax_matches_torch", "test_softmax_gradients"], globals())

which runs exactly those pytest graders — the same ones `pytest exercises/04_attention`
runs — with the notebook's namespace as the implementation under test. It prints each
failure's message and raises `AssertionError` if any test fails, so nbgrader scores the
cell 0; when all pass, the cell earns the sum of the tests' points.
"""

from __future__ import annotations

from types import SimpleNamespace

from llmlab.course import loader, topics
from llmlab.grading.inprocess import run_tests


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
