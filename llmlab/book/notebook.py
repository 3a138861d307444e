"""Inside a chapter notebook: run the topic's graders on the objects the notebook defines.

An autograded cell of a built chapter reads

    from llmlab.book.notebook import run_graders
    run_graders("04_attention", ["test_softmax_matches_torch", "test_softmax_gradients"], globals())

which runs exactly those pytest graders — the same ones `pytest exercises/04_attention`
runs — with the notebook's namespace as the implementation under test. It prints each
failure's message and raises `AssertionError` if any test fails, so nbgrader scores the
cell 0; when all pass, the cell earns the sum of the tests' points.

The chapter's first code cell (locked; nbgrader restores it when grading) calls `watch()`,
which snapshots the functions the graders rely on (llmlab's checks, pytest, torch; see
llmlab.grading.sandbox.Integrity) before any student code runs. A grade cell finding one of
them replaced — a solution cell that patched `check.close` or `torch.allclose` — restores
it and scores 0, as `llmlab grade` does.
"""

from __future__ import annotations

from types import SimpleNamespace

from llmlab.course import loader, paths, topics
from llmlab.grading import limits, sandbox
from llmlab.grading.inprocess import run_tests

_WATCH: sandbox.Integrity | None = None
# ipykernel installs its own `input` for every cell it runs (to forward input requests).
KERNEL_MANAGED = frozenset({"builtins.input", "builtins.raw_input"})


def watch() -> None:
    """Snapshot what the graders rely on (the chapter's first cell calls this). In a kernel
    that class grading started (`llmlab grade-class`, which names the folders the notebook
    must not touch), also install the grading child's guards: its memory cap, and no reading
    other submissions or the results, no writing the graders, no processes, no network."""
    global _WATCH
    _WATCH = sandbox.Integrity(ignore=KERNEL_MANAGED)  # imports torch, numpy and pytest, before the guards
    private, allowed = sandbox.private_paths()
    if private:
        limits.apply_in_child()
        sandbox.install_audit_hook(sandbox.protected_paths(paths.root()), private, allowed)


def _tampered() -> str | None:
    if _WATCH is None:
        return ("the chapter's first code cell (llmlab set-up: `watch()`) did not run; "
                "run the notebook from the top")
    changed = _WATCH.changes()
    if changed:
        names = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
        return f"tampering: the notebook replaced {names}, which the graders rely on. They were restored"
    return None


def run_graders(topic: str, tests: list[str], namespace: dict) -> None:
    problem = _tampered()
    if problem:
        print(f"FAIL {problem}; these checks score 0.")
        raise AssertionError(problem)
    resolved = topics.resolve(topic)
    public = {k: v for k, v in namespace.items() if not k.startswith("_")}
    impl = loader.Implementation(resolved, resolved.graders, {"notebook": SimpleNamespace(**public)})
    results = run_tests(resolved, impl, tests)
    problem = _tampered()  # the code under test may have patched something while the tests ran
    if problem:
        print(f"FAIL {problem}; these checks score 0.")
        raise AssertionError(problem)
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
