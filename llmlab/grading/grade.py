"""`llmlab grade`: grade topics, each in its own process, and report.

1. Collect (one trusted pytest process that imports graders only — student code is
   loaded lazily by the `impl` fixture, so collection never runs it): every test id with
   its points.
2. Run each topic in a child process with a time limit, a memory limit and capped output.
   The child writes per-test outcomes to a report file.
3. Score in this process: a test earns its collected points only if the child reported it
   passed. A test the child never reported (crash, timeout) earns nothing and says why.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import xml.etree.ElementTree as ET
from pathlib import Path

from llmlab.course import costs, loader, paths, topics
from llmlab.grading import limits, sandbox

OUTPUT_CAP = 200_000  # bytes of child output kept for diagnostics


class GradeError(Exception):
    pass


def _pytest_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "--no-header", "-q", *args]


def collect(selected: list[topics.Topic]) -> dict[str, list[dict]]:
    """topic slug -> collected tests [{id, points, hidden, slow}] in file order."""
    with tempfile.TemporaryDirectory(prefix="llmlab-collect-") as tmp:
        target = Path(tmp) / "collected.json"
        cmd = _pytest_cmd("--collect-only", "--llmlab-collect", str(target),
                          *[str(t.graders.relative_to(paths.root())) for t in selected])
        proc = subprocess.run(cmd, cwd=paths.root(), capture_output=True, text=True, timeout=300)
        if not target.exists():
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
            raise GradeError(f"collecting the graders failed (exit {proc.returncode}):\n{tail}")
        tests = json.loads(target.read_text())
    by_topic: dict[str, list[dict]] = {t.slug: [] for t in selected}
    for test in tests:
        if test["topic"] in by_topic:
            by_topic[test["topic"]].append(test)
    return by_topic


class _CappedOutput:
    """Drains a child's output in a thread, keeping only the first and last bytes."""

    def __init__(self, stream, cap: int = OUTPUT_CAP):
        self.head, self.tail, self.dropped, self.cap = b"", b"", 0, cap
        self.thread = threading.Thread(target=self._drain, args=(stream,), daemon=True)
        self.thread.start()

    def _drain(self, stream) -> None:
        for chunk in iter(lambda: stream.read(65536), b""):
            if len(self.head) < self.cap // 2:
                take = self.cap // 2 - len(self.head)
                self.head, chunk = self.head + chunk[:take], chunk[take:]
            self.tail = (self.tail + chunk)[-self.cap // 2:]
            self.dropped += max(0, len(chunk) - self.cap // 2)

    def text(self) -> str:
        self.thread.join(timeout=5)
        gap = f"\n[... {self.dropped} bytes of output dropped ...]\n" if self.dropped else ""
        return (self.head + gap.encode() + self.tail).decode(errors="replace")


def _read_records(report_file: Path, key: bytes) -> tuple[dict[str, dict], bool, bool, str | None]:
    """(test records by id, finished, tampered, the test running when the report ends) from
    the child's signed report."""
    records, finished, tampered, seq, running = {}, False, False, 0, None
    if not report_file.exists():
        return records, finished, tampered, running
    for line in report_file.read_text(errors="replace").splitlines():
        record = sandbox.verify(key, line)
        if record is None or record.get("seq") != seq + 1:
            tampered = True
            continue
        seq += 1
        if record.get("kind") == "end":
            finished = True
        elif record.get("kind") == "start":
            running = record.get("id")
        elif record.get("kind") == "test":
            if record.get("id") in records:
                tampered = True
            records[record.get("id")] = record
            running = None if running == record.get("id") else running
    return records, finished, tampered, running


def run_topic(topic: topics.Topic, folder: Path, tests: list[dict], time_limit: float, memory_mb: int,
              test_timeout: float = 60, env: dict[str, str] | None = None, on_start=None) -> dict:
    """Run one topic's graders in a child process; return the topic's report entry.
    `env`: extra environment for the child (class grading passes the folders it must not touch);
    `on_start(proc)`: called with the child once started (class grading stops them on Ctrl-C)."""
    start = time.monotonic()
    key = os.urandom(32)
    with tempfile.TemporaryDirectory(prefix="llmlab-grade-") as tmp:
        report_file = Path(tmp) / "report.jsonl"
        cmd = _pytest_cmd(str(topic.graders.relative_to(paths.root())), "--impl", str(folder),
                          "--runslow", "--llmlab-report", str(report_file), f"--timeout={test_timeout:g}")
        key_file = Path(tmp) / "key"
        key_file.write_bytes(key)  # the child reads and deletes it before any student code runs
        options = limits.popen_options(memory_mb)
        options["env"][sandbox.KEY_ENV] = str(key_file)
        options["env"].update(env or {})
        status, detail = "ok", ""
        proc = subprocess.Popen(cmd, cwd=paths.root(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, **options)
        output = _CappedOutput(proc.stdout)
        if on_start:
            on_start(proc)
        try:
            code = proc.wait(timeout=time_limit)
        except subprocess.TimeoutExpired:
            limits.kill_tree(proc)
            code = None
            status, detail = "timeout", f"the topic ran past its {time_limit:g} s limit and was stopped"
        text = output.text()
        proc.stdout.close()
        reported, finished, tampered, running = _read_records(report_file, key)
        if code is not None and (code not in (0, 1) or not finished):
            status = "crashed"
            detail = _crash_reason(code, text)
        if tampered:
            status, detail = "crashed", "the results channel was tampered with; no result of this topic counts"
            reported = {}
        broken = [r for r in reported.values() if r.get("import_error")]
        if status == "ok" and reported and len(broken) == len(reported):
            detail = str(broken[0].get("message", ""))
            status = "missing file" if " is missing: " in detail else "import error"
    results = []
    for test in tests:
        got = reported.get(test["id"])
        if got is None and status == "timeout" and running is not None:
            outcome = "timeout"
            if test["id"] == running:
                message = (f"Timeout: this test was running when the topic's {time_limit:g} s limit stopped it. "
                           f"Look for an infinite loop or a very slow algorithm in the unit it tests.")
            else:
                message = f"not run: the topic was stopped while {running.split('::')[-1]} was running"
        elif got is None:
            outcome = "timeout" if status == "timeout" else "error"
            message = detail or "the test did not report a result"
        else:
            outcome = got.get("outcome", "error")
            message = str(got.get("message", ""))
            if outcome not in ("passed", "failed", "error", "timeout", "skipped"):
                outcome, message = "error", f"unknown outcome {outcome!r}"
        max_points = float(test["points"])
        results.append({
            "id": test["id"],
            "points": max_points if outcome == "passed" else 0.0,
            "max_points": max_points,
            "outcome": outcome,
            "message": message,
            "hidden": bool(test.get("hidden")),
        })
    return {
        "topic": topic.slug,
        "title": topic.title,
        "score": sum(r["points"] for r in results),
        "max_score": sum(r["max_points"] for r in results),
        "status": status,
        "detail": detail,
        "seconds": round(time.monotonic() - start, 2),
        "tests": results,
    }


class ProtectedFiles:
    """Fingerprints of the graders and reference data, to notice a child that changed them
    despite its guards (the child's audit hook refuses such writes). Nothing is restored or
    deleted: the checkout may be someone's working tree. Results graded while the files
    differ from the start of the run do not count."""

    def __init__(self, roots: list[Path]):
        self.roots = roots
        self.digests = self._digest()

    def _digest(self) -> dict[Path, str]:
        digests = {}
        for root in self.roots:
            files = [root] if root.is_file() else sorted(root.rglob("*")) if root.is_dir() else []
            for path in files:
                if path.is_file() and "__pycache__" not in path.parts:
                    digests[path] = hashlib.sha256(path.read_bytes()).hexdigest()
        return digests

    def changes(self) -> list[str]:
        now = self._digest()
        changed = sorted(set(now) ^ set(self.digests) | {p for p in now if self.digests.get(p) != now[p]})
        root = paths.root()
        return [str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in changed]


def _crash_reason(code: int, output: str) -> str:
    if code < 0:
        import signal
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        what = {"SIGSEGV": "a segmentation fault", "SIGKILL": "killed (out of memory?)",
                "SIGABRT": "aborted"}.get(name, name)
        return f"the topic's process died: {what}"
    lines = [line for line in output.strip().splitlines() if line.strip()]
    last = lines[-1] if lines else ""
    return (f"the topic's process exited (code {code}) before reporting its results"
            + (f": {last[:200]}" if last else ""))


def check_impl(selected: list[topics.Topic], impl: str) -> None:
    """Raise GradeError unless `impl` holds an implementation of at least one selected topic."""
    if impl in ("exercises", "solutions"):
        return
    path = Path(impl).expanduser()
    if not path.exists():
        raise GradeError(f"--impl {impl}: no such folder")
    found = [t for t in selected if any(loader.impl_folder(t, impl).glob("*.py"))]
    if not found:
        names = ", ".join(t.slug for t in selected[:3]) + (", ..." if len(selected) > 3 else "")
        raise GradeError(f"--impl {impl}: no implementation in it; expected a topic folder such as "
                         f"{impl.rstrip('/')}/{selected[0].slug}/ with .py files (topics: {names})")


def grade(selected: list[topics.Topic], impl: str = "exercises", time_limit: float = 300,
          memory_mb: int = 6144, console=None, quiet: bool = False, test_timeout: float = 60,
          jobs: int = 1) -> dict:
    """Grade the selected topics, `jobs` child processes at a time; the report keeps course order.

    Graders and reference data are fingerprinted before the run; a topic that finishes
    while they differ is voided (with several jobs, every topic finishing after the change)."""
    from concurrent.futures import ThreadPoolExecutor

    collected = collect(selected)
    report = {"impl": str(impl), "score": 0.0, "max_score": 0.0, "topics": [], "notes": limits.notes(memory_mb)}
    if console and not quiet:
        for note in report["notes"]:
            console.print(f"note: {note}")
    protected = ProtectedFiles([paths.graders_dir(), paths.reference_dir()])

    def one(topic: topics.Topic) -> dict:
        entry = run_topic(topic, loader.impl_folder(topic, impl), collected[topic.slug], time_limit, memory_mb,
                          test_timeout)
        costs.record(topic.slug, entry["seconds"])
        changed = protected.changes()
        if changed:
            entry.update(status="crashed", score=0.0,
                         detail=f"{', '.join(changed[:3])} changed during grading, so no result of this topic "
                                f"counts; restore them (`git checkout graders reference`) and grade again")
            for test in entry["tests"]:
                test.update(points=0.0, outcome="error", message=entry["detail"])
        if console and not quiet:
            console.print(f"graded {topic.slug}: {entry['score']:g}/{entry['max_score']:g} ({entry['seconds']:.1f} s)"
                          + ("" if entry["status"] == "ok" else f" [red]{entry['status']}[/red]"))
        return entry

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        report["topics"] = list(pool.map(one, selected))
    report["score"] = sum(t["score"] for t in report["topics"])
    report["max_score"] = sum(t["max_score"] for t in report["topics"])
    report["next_todo"] = next_todo(report)
    return report


def next_todo(report: dict, prefer: str | None = None) -> str | None:
    """What the student should work on next: the first unfinished unit of topic `prefer`
    (the one the student is working on) if it is unfinished, else in course order."""
    ordered = sorted(report["topics"], key=lambda t: t["topic"] != prefer)
    for topic in ordered:
        if topic["score"] >= topic["max_score"]:
            continue
        if topic["status"] in ("import error", "missing file"):
            return f"{topic['topic']}: fix the {topic['status']} above first"
        if topic["status"] != "ok" and not any(t["outcome"] in ("failed", "passed") for t in topic["tests"]):
            return f"{topic['topic']}: {_without_slug(topic)}"
        for test in topic["tests"]:
            if test["outcome"] == "passed" or test["outcome"] == "skipped":
                continue
            message = test["message"]
            if message.startswith("NotImplementedError: TODO "):
                # "NotImplementedError: TODO 04_attention: softmax (at exercises/...:12)"
                return message[len("NotImplementedError: TODO "):]
            first = message.splitlines()[0] if message else test["outcome"]
            return f"{topic['topic']}: fix {test['id'].split('::')[-1]} — {first}"
    return None


def write_outputs(report: dict, json_path: str | None = None, junit_path: str | None = None) -> None:
    if json_path:
        Path(json_path).write_text(json.dumps(report, indent=1))
    if junit_path:
        Path(junit_path).write_bytes(junit_xml(report))


def junit_xml(report: dict) -> bytes:
    suites = ET.Element("testsuites", name=f"llmlab ({report['impl']})")
    for topic in report["topics"]:
        tests = topic["tests"]
        suite = ET.SubElement(suites, "testsuite", name=topic["topic"], tests=str(len(tests)),
                              failures=str(sum(t["outcome"] == "failed" for t in tests)),
                              errors=str(sum(t["outcome"] in ("error", "timeout") for t in tests)),
                              skipped=str(sum(t["outcome"] == "skipped" for t in tests)),
                              time=str(topic["seconds"]))
        for test in tests:
            file_part, _, name = test["id"].rpartition("::")
            case = ET.SubElement(suite, "testcase", classname=topic["topic"], name=name, file=file_part)
            ET.SubElement(case, "properties")
            prop = case.find("properties")
            ET.SubElement(prop, "property", name="points", value=f"{test['points']:g}/{test['max_points']:g}")
            if test["outcome"] == "failed":
                ET.SubElement(case, "failure", message=test["message"].splitlines()[0] if test["message"] else "").text = test["message"]
            elif test["outcome"] in ("error", "timeout"):
                ET.SubElement(case, "error", message=test["outcome"]).text = test["message"]
            elif test["outcome"] == "skipped":
                ET.SubElement(case, "skipped", message=test["message"])
    return ET.tostring(suites, encoding="utf-8", xml_declaration=True)


def _without_slug(topic: dict) -> str:
    """The topic's detail without a leading "NN_x: " (it is printed next to the slug)."""
    detail, prefix = topic["detail"], f"{topic['topic']}: "
    return detail[len(prefix):] if detail.startswith(prefix) else detail


def print_table(console, report: dict) -> None:
    from rich.markup import escape  # messages hold code such as `x[i]`, which is not markup
    from rich.table import Table

    table = Table(title=f"llmlab grade ({report['impl']})")
    table.add_column("topic")
    table.add_column("title")
    table.add_column("score", justify="right")
    table.add_column("tests passed", justify="right")
    table.add_column("status")
    for topic in report["topics"]:
        passed = sum(t["outcome"] == "passed" for t in topic["tests"])
        status = topic["status"] if topic["status"] != "ok" else "ok"
        style = "green" if topic["score"] == topic["max_score"] and topic["max_score"] > 0 else ""
        table.add_row(topic["topic"], topic["title"], f"{topic['score']:g} / {topic['max_score']:g}",
                      f"{passed} / {len(topic['tests'])}", status, style=style)
    table.add_section()
    table.add_row("total", "", f"{report['score']:g} / {report['max_score']:g}", "", "")
    console.print(table)
    for topic in report["topics"]:
        if topic["status"] != "ok":
            console.print(f"[red]{topic['topic']}: {topic['status']}[/red] — {escape(_without_slug(topic))}", soft_wrap=True)
    if report.get("next_todo"):
        console.print(f"[bold]Next TODO:[/bold] {escape(report['next_todo'])}", soft_wrap=True)
    elif report["max_score"] > 0:
        console.print("[bold green]Full marks on every graded topic.[/bold green]")
