"""The pytest side of the harness (registered by the repository's root conftest.py).

- `--impl exercises|solutions|PATH` chooses the implementation under test; by default a
  test collected from `exercises/NN_x/` (the topic's pytest entry) grades that folder, and a
  test collected from `graders/NN_x/` grades `exercises/NN_x/`.
- the `impl` fixture hands graders the loaded implementation (see llmlab.course.loader).
- markers: `points(n)`, `hidden`, `slow` (skipped unless --runslow), `timeout(seconds)`.
- every test phase runs under a time limit (`--timeout`, the `timeout` ini value, or the
  marker; llmlab.grading.timeouts): a looping unit fails that test, named, and the rest of
  the topic still runs. A test interrupted before it finished earns nothing.
- failures of known kinds (a failed check, a TODO not done, a file that does not import)
  are reported as one clear message instead of a traceback into grader code.
- `--llmlab-report FILE` streams signed per-test outcomes and `--llmlab-collect FILE` writes
  the collected tests with their points (both used by `llmlab grade`); `--llmlab-results
  FILE` writes unsigned outcomes and messages at the end, for trusted runs (CI gates).
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import traceback
import types
from pathlib import Path

import pytest

from llmlab.course import loader, paths, topics
from llmlab.grading import limits, sandbox
from llmlab.grading.timeouts import Alarm, TestTimeout
from llmlab.testing.check import GradingFailure

# Hypothesis keeps a cache folder; keep it out of the course and the notebooks' folders.
os.environ.setdefault("HYPOTHESIS_STORAGE_DIRECTORY", os.path.join(tempfile.gettempdir(), "llmlab-hypothesis"))

_TOPIC_DIR = re.compile(r"^\d\d_[a-z0-9_]+$")
_RESULTS = pytest.StashKey[dict]()
_GUARD = pytest.StashKey[object]()
_IMPORT_ERRORS_SHOWN = pytest.StashKey[set]()


def pytest_addoption(parser):
    group = parser.getgroup("llmlab")
    group.addoption("--impl", default=None,
                    help="implementation to grade: exercises (default), solutions, or a folder")
    group.addoption("--runslow", action="store_true", help="also run tests marked slow")
    try:
        group.addoption("--timeout", type=float, default=None,
                        help="seconds each test phase may take (default: the `timeout` ini value, else 60)")
        parser.addini("timeout", "seconds each test phase may take", default="60")
    except ValueError:  # pytest-timeout (an old environment) defines them too; see pytest_configure
        pass
    group.addoption("--llmlab-report", default=None,
                    help="(used by llmlab grade) stream signed per-test outcomes to this file")
    group.addoption("--llmlab-collect", default=None, help="write collected tests and points as JSON to this file")
    group.addoption("--llmlab-results", default=None,
                    help="write each test's outcome and message as JSON to this file (unsigned; for trusted runs)")


def pytest_configure(config):
    config.addinivalue_line("markers", "points(n): points this test is worth when it passes")
    config.addinivalue_line("markers", "hidden: instructor-only test, left out of student bundles")
    config.addinivalue_line("markers", "slow: long experiment; runs only with --runslow")
    config.addinivalue_line("markers", "timeout(seconds): time limit of this test")
    if config.pluginmanager.has_plugin("timeout"):  # one mechanism only: ours survives hypothesis
        config.pluginmanager.unregister(name="timeout")
    config.stash[_RESULTS] = {}
    # Graders run tiny models: one thread is as fast on an idle machine and many times
    # faster on a busy one (thread contention), and it makes timings repeatable.
    import torch
    torch.set_num_threads(int(os.environ.get("LLMLAB_THREADS", "1")))
    config.stash[_GUARD] = _GradingGuard.start(config)
    from llmlab.testing import strategies

    strategies.load_profile()  # derandomized, no deadline: see llmlab.testing.strategies


def topic_of(path: Path) -> topics.Topic | None:
    for part in reversed(Path(path).resolve().parts):
        if _TOPIC_DIR.match(part):
            return topics.Topic(part)
    return None


def impl_folder_for(config, collected_file: Path) -> tuple[topics.Topic, Path]:
    topic = topic_of(collected_file)
    if topic is None:
        raise pytest.UsageError(f"cannot tell which topic {collected_file} belongs to")
    chosen = config.getoption("--impl")
    if chosen:
        return topic, loader.impl_folder(topic, chosen)
    folder = Path(collected_file).resolve().parent
    if folder == topic.graders.resolve():
        return topic, topic.exercises
    return topic, folder


_IMPL_CACHE: dict[Path, loader.Implementation | loader.ImplementationError] = {}
NOTEBOOK_IMPL: loader.Implementation | None = None  # set by llmlab.book.notebook.run_graders


@pytest.fixture
def impl(request) -> loader.Implementation:
    """The implementation under test (loaded once per folder and session)."""
    if NOTEBOOK_IMPL is not None:
        return NOTEBOOK_IMPL
    topic, folder = impl_folder_for(request.config, Path(str(request.node.path)))
    key = folder.resolve()
    if key not in _IMPL_CACHE:
        try:
            _IMPL_CACHE[key] = loader.load(topic, folder)
        except loader.ImplementationError as exc:  # fails the same way for every test: say it once, fast
            _IMPL_CACHE[key] = exc
    if isinstance(_IMPL_CACHE[key], loader.ImplementationError):
        raise _IMPL_CACHE[key]
    return _IMPL_CACHE[key]


def time_limit(item) -> float:
    """Seconds each phase of `item` may take: its `timeout` marker, else --timeout, else the ini value."""
    mark = item.get_closest_marker("timeout")
    if mark and mark.args:
        return float(mark.args[0])
    option = item.config.getoption("--timeout", None)
    return float(option) if option is not None else float(item.config.getini("timeout") or 0)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    with Alarm(time_limit(item)):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    with Alarm(time_limit(item)):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_teardown(item):
    with Alarm(time_limit(item)):
        return (yield)


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow experiment: run with --runslow (llmlab grade runs it)")
    for item in items:
        if item.get_closest_marker("slow"):
            item.add_marker(skip)


def points_of(item) -> float:
    mark = item.get_closest_marker("points")
    return float(mark.args[0]) if mark and mark.args else 0.0


def pytest_collection_finish(session):
    target = session.config.getoption("--llmlab-collect")
    if not target:
        return
    tests = []
    for item in session.items:
        topic = topic_of(Path(str(item.path)))
        tests.append({
            "id": item.nodeid,
            "topic": topic.slug if topic else None,
            "points": points_of(item),
            "hidden": item.get_closest_marker("hidden") is not None,
            "slow": item.get_closest_marker("slow") is not None,
        })
    Path(target).write_text(json.dumps(tests, indent=1))


# ---------------------------------------------------------------- failure messages

def _location_in(tb, folder: Path | None) -> str:
    """'file.py:LINE' of the last traceback frame inside the implementation folder."""
    if folder is None:
        return ""
    last = ""
    for frame in traceback.extract_tb(tb):
        path = Path(frame.filename).resolve()
        if path.is_relative_to(folder.resolve()):
            shown = path.relative_to(paths.root()) if path.is_relative_to(paths.root()) else path
            last = f"{shown}:{frame.lineno}"
    return last


def _trace_in(tb, folder: Path) -> str:
    """The traceback's frames inside the implementation folder, formatted."""
    frames = [f for f in traceback.extract_tb(tb) if Path(f.filename).resolve().is_relative_to(folder.resolve())]
    return "".join(traceback.format_list(frames))


def explain(excinfo, folder: Path | None, limit: float | None = None) -> tuple[str, str | None]:
    """(message for the report, replacement longrepr or None to keep pytest's)."""
    exc = excinfo.value
    where = _location_in(excinfo.tb, folder)
    at = f" (at {where})" if where else ""
    if isinstance(exc, TestTimeout):
        of = f" of {limit:g} s" if limit else ""
        msg = (f"Timeout: the test ran past its time limit{of}{at}. Look for an infinite loop or a very slow "
               f"algorithm in the unit it tests.")
        return msg, msg
    if isinstance(exc, GradingFailure):
        return str(exc), str(exc)
    if isinstance(exc, NotImplementedError):
        msg = f"NotImplementedError: {exc}{at}"
        return msg, msg + "\nThis unit is still a TODO: write it, then run the tests again."
    if isinstance(exc, loader.ImplementationError):
        return str(exc), str(exc)  # the same for every test; shortened after the first (_record)
    text = str(exc).strip().splitlines()
    first = text[0] if text else ""
    message = f"{type(exc).__name__}: {first}{at}"
    if not where:
        return message, None
    message += " — raised on an input the docstring allows, so the unit should not raise here"
    return message, message + "\nwhere it was raised, in your code:\n" + _trace_in(excinfo.tb, folder)


def _number_every_line(call) -> None:
    """A time limit's signal can land on an instruction without a line number (Python 3.11+:
    tb_lineno None, e.g. the jump back of a tight loop), and pytest's report code then fails
    with an INTERNALERROR. Such traceback entries get their frame's line (else its first)."""
    if call.excinfo is None:
        return
    entries, tb = [], call.excinfo.tb
    while tb is not None:
        entries.append(tb)
        tb = tb.tb_next
    if all(entry.tb_lineno is not None for entry in entries):
        return
    rebuilt = None
    for entry in reversed(entries):
        frame = entry.tb_frame
        line = entry.tb_lineno if entry.tb_lineno is not None else (frame.f_lineno or frame.f_code.co_firstlineno)
        rebuilt = types.TracebackType(rebuilt, frame, entry.tb_lasti, line)
    call.excinfo = pytest.ExceptionInfo.from_exception(call.excinfo.value.with_traceback(rebuilt))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    _number_every_line(call)
    outcome = yield
    rep = outcome.get_result()
    guard = item.config.stash[_GUARD]
    changed = guard.tampering() if guard is not None and call.when in ("call", "teardown") else []
    if changed:
        names = ", ".join(changed[:5]) + (" ..." if len(changed) > 5 else "")
        message = (f"tampering: the code under test replaced {names}, which the graders rely on. "
                   f"They were restored; this test scores 0.")
        rep.outcome, rep.longrepr = "failed", message
        _record(item, rep, message, GradingFailure(message))
    elif call.excinfo is None or not rep.failed:
        _record(item, rep, None)
    else:
        folder = None
        try:
            folder = impl_folder_for(item.config, Path(str(item.path)))[1]
        except pytest.UsageError:
            pass
        message, longrepr = explain(call.excinfo, folder, time_limit(item))
        if longrepr is not None:
            rep.longrepr = longrepr
        _record(item, rep, message, call.excinfo.value)
    if guard is not None and call.when == "teardown":
        entry = item.config.stash[_RESULTS][item.nodeid]
        guard.emit({"kind": "test", "id": item.nodeid, "outcome": entry["outcome"], "message": entry["message"],
                    "import_error": entry.get("kind") == "import"})


def _record(item, rep, message, exc=None):
    results = item.config.stash[_RESULTS]
    entry = results.setdefault(item.nodeid, {
        "id": item.nodeid, "outcome": "unfinished", "message": "the test did not finish (interrupted)",
        "points": points_of(item), "hidden": item.get_closest_marker("hidden") is not None,
    })
    if rep.when == "call" and rep.passed and entry["outcome"] == "unfinished":
        entry["outcome"], entry["message"] = "passed", ""
        return
    if rep.skipped and rep.when in ("setup", "call"):
        entry["outcome"] = "skipped"
        reason = rep.longrepr[2] if isinstance(rep.longrepr, tuple) else str(rep.longrepr)
        entry["message"] = str(reason)
        return
    if not rep.failed or entry["outcome"] in ("failed", "error", "timeout"):
        return
    graded_failure = isinstance(exc, (GradingFailure, NotImplementedError, AssertionError))
    if message and message.startswith("Timeout"):
        entry["outcome"] = "timeout"
    elif rep.when == "call" or graded_failure:
        entry["outcome"] = "failed"
    else:
        entry["outcome"] = "error"
    entry["message"] = message or ""
    if isinstance(exc, loader.ImplementationError):
        entry["kind"] = "import"
        shown = item.config.stash.setdefault(_IMPORT_ERRORS_SHOWN, set())
        if str(exc) in shown:
            rep.longrepr = "the implementation does not import (see the first failure above)"
        shown.add(str(exc))


class _GradingGuard:
    """Active only under `llmlab grade`: signs each test's record as it finishes, watches
    for tampering with the functions graders rely on, and keeps student code away from
    the network, the protected folders and other processes (see llmlab.grading.sandbox)."""

    def __init__(self, report, key: bytes, integrity: sandbox.Integrity):
        self._report = report
        self._key = key
        self._integrity = integrity
        self._seq = 0

    @classmethod
    def start(cls, config):
        target = config.getoption("--llmlab-report")
        key = sandbox.read_key()
        if not target:
            return None
        if key is None:
            raise pytest.UsageError("--llmlab-report is used by `llmlab grade`; run that instead")
        limits.apply_in_child()  # memory cap and no core dumps, before any student code
        report = open(target, "w", buffering=1)  # opened before the audit hook forbids it
        guard = cls(report, key, sandbox.Integrity())
        private, allowed = sandbox.private_paths()
        sandbox.install_audit_hook(sandbox.protected_paths(paths.root()) + [Path(target)], private, allowed)
        return guard

    def tampering(self) -> list[str]:
        return self._integrity.changes()

    def emit(self, record: dict) -> None:
        self._seq += 1
        self._report.write(sandbox.sign(self._key, {**record, "seq": self._seq}) + "\n")


@pytest.hookimpl(wrapper=True)
def pytest_pyfunc_call(pyfuncitem):
    """Under `llmlab grade`, an interrupt or pytest.exit() raised by the code under test
    fails that test instead of ending the whole run."""
    if pyfuncitem.config.stash[_GUARD] is None:
        return (yield)
    try:
        return (yield)
    except KeyboardInterrupt:
        raise RuntimeError("the code under test raised KeyboardInterrupt") from None
    except pytest.exit.Exception as exc:
        raise RuntimeError(f"the code under test called pytest.exit(): {exc}") from None


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """Under `llmlab grade`: say which test starts, so a topic stopped by its time limit
    can name the test that was running. Returns None: pytest's own protocol runs the test."""
    guard = item.config.stash[_GUARD]
    if guard is not None:
        guard.emit({"kind": "start", "id": item.nodeid})


def pytest_sessionfinish(session):
    guard = session.config.stash[_GUARD]
    if guard is not None:
        guard.emit({"kind": "end"})
    target = session.config.getoption("--llmlab-results")
    if target:
        Path(target).write_text(json.dumps(list(session.config.stash[_RESULTS].values()), indent=1))

def pytest_terminal_summary(terminalreporter, config):
    results = config.stash[_RESULTS].values()
    got = sum(r["points"] for r in results if r["outcome"] == "passed")
    total = sum(r["points"] for r in results if r["outcome"] != "skipped")
    if total == 0:
        return
    terminalreporter.write_line(f"llmlab: {got:g} / {total:g} points", bold=True)
    todo = next((r for r in results if r["message"].startswith("NotImplementedError")), None)
    if todo:
        terminalreporter.write_line(f"next TODO: {todo['message'][len('NotImplementedError: '):]}")
