"""`llmlab grade-class`: a class's submissions graded in parallel, stored as they arrive,
resumed after an interruption, re-graded when re-submitted, exported; hostile submissions
cannot touch each other's results. On the toy course (one topic, 5 points)."""

import csv
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import zipfile

import pytest

from llmlab import cli
from llmlab.authoring import mutants
from llmlab.course import topics
from llmlab.classroom import export, gradescope, report, run, store, submissions

pytestmark = pytest.mark.timeout(600)  # each result is a grading child process

HIDDEN_SOURCE = "-torch.ones(3)"  # a line of the toy's hidden test, which feedback must never show


def _class(course, tmp_path):
    """alice: the solution; bob: the skeleton; carol: a mutant (double returns x);
    dave: a zip of the solution; erin: nothing for the topic."""
    root = tmp_path / "submissions"
    toy = topics.resolve("01_toy")
    shutil.copytree(toy.solutions, root / "alice" / "01_toy")
    shutil.copytree(toy.exercises, root / "bob" / "01_toy")
    mutants.apply(toy, [mutants.Edit("toy.py", "return 2 * x", "return x")], root / "carol")
    with zipfile.ZipFile(root / "dave.zip", "w") as zf:
        for path in toy.solutions.glob("*.py"):
            zf.write(path, f"dave-work/01_toy/{path.name}")
    (root / "erin" / "notes").mkdir(parents=True)
    return root


def _entries(out):
    with store.Store(out) as db:
        return db.entries()


def test_grade_class_scores_exports_and_resubmission(synced_course, tmp_path):
    root, out = _class(synced_course, tmp_path), tmp_path / "out"
    selected = topics.available()
    summary = run.grade_class(root, out, selected, jobs=2)
    assert summary.students == ["alice", "bob", "carol", "dave", "erin"]
    assert sorted(summary.graded) == [(s, "01_toy") for s in ("alice", "bob", "carol", "dave")]
    assert summary.missing == [("erin", "01_toy")]
    entries = _entries(out)
    scores = {s: entries[s]["01_toy"]["score"] for s in entries}
    assert scores == {"alice": 5.0, "bob": 0.0, "carol": 1.0, "dave": 5.0, "erin": 0.0}
    assert entries["erin"]["01_toy"]["status"] == "missing"

    files = export.export_all(out, entries, summary.students, summary.topics)
    rows = list(csv.DictReader(open(files["scores"])))
    assert [(r["student"], r["01_toy points"], r["01_toy status"]) for r in rows] == [
        ("alice", "5", "ok"), ("bob", "0", "ok"), ("carol", "1", "ok"), ("dave", "5", "ok"), ("erin", "0", "missing")]
    book = {r["Student"]: r for r in csv.DictReader(open(files["gradebook"]))}
    assert book["carol"]["llmlab Points Possible"] == "5" and book["carol"]["llmlab Percent"] == "20.0"
    carol = (out / "feedback" / "carol.md").read_text()
    assert "known mistake: returned the input unchanged" in carol and "a hidden test" in carol
    assert all(HIDDEN_SOURCE not in p.read_text() for p in (out / "feedback").glob("*.md"))
    result = json.loads((out / "gradescope" / "carol" / "results.json").read_text())
    assert result["score"] == 1.0 and len(result["tests"]) == 4
    for test in result["tests"]:
        assert {"name", "score", "max_score", "output", "visibility"} <= set(test)
    assert sorted(t["visibility"] for t in result["tests"]).count("after_published") == 1

    page = files["report"].read_text()
    assert "- double: 1 of 4 returned the input unchanged" in page, page
    assert "- double: 1 of 4" in page.split("Left unimplemented")[1]  # bob's skeleton
    assert "test_double_values: 2 of 4" in page

    # the same command again: nothing changed, nothing graded
    again = run.grade_class(root, out, selected, jobs=2)
    assert again.graded == [] and len(again.skipped) == 5
    # carol re-submits the solution: only carol is graded again
    shutil.copy2(topics.resolve("01_toy").solutions / "toy.py", root / "carol" / "01_toy" / "toy.py")
    third = run.grade_class(root, out, selected, jobs=2)
    assert third.graded == [("carol", "01_toy")]
    assert _entries(out)["carol"]["01_toy"]["score"] == 5.0
    with sqlite3.connect(out / store.FILE) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert db.execute("SELECT COUNT(*) FROM results").fetchone()[0] == 5


def _stored(out) -> dict[str, float]:
    """student -> when its row was written, straight from the database."""
    if not (out / store.FILE).exists():
        return {}
    with sqlite3.connect(out / store.FILE) as db:
        return dict(db.execute("SELECT student, graded_at FROM results"))


@pytest.mark.skipif(os.name != "posix", reason="sends POSIX signals to the command")
def test_ctrl_c_and_a_killed_process_resume_without_grading_anything_twice(synced_course, tmp_path):
    import signal
    import time

    root, out = tmp_path / "submissions", tmp_path / "out"
    toy = topics.resolve("01_toy")
    for name in ("ann", "ben", "cat", "dan"):
        shutil.copytree(toy.solutions if name != "ben" else toy.exercises, root / name / "01_toy")
    command = [sys.executable, "-c", "import sys; from llmlab.cli import main; sys.exit(main(sys.argv[1:]))",
               "grade-class", str(root), "--out", str(out), "--jobs", "1", "--quiet"]

    def run_until(count: int, sig) -> subprocess.CompletedProcess:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + 240
        while len(_stored(out)) < count and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        assert proc.poll() is None, "the run ended before it could be interrupted: " + proc.communicate()[0]
        proc.send_signal(sig)
        text, _ = proc.communicate(timeout=120)
        return subprocess.CompletedProcess(command, proc.returncode, text)

    stopped = run_until(1, signal.SIGINT)  # Ctrl-C after the first stored result
    assert stopped.returncode == 130 and "run the same command to resume" in stopped.stdout, stopped.stdout
    first = _stored(out)
    assert 1 <= len(first) < 4
    killed = run_until(len(first) + 1, signal.SIGKILL)  # then a killed process, after one more result
    assert killed.returncode == -signal.SIGKILL
    second = _stored(out)
    assert all(second[s] == first[s] for s in first), "a stored result was graded again"
    assert len(first) < len(second) < 4
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{4 - len(second)} graded, {len(second)} unchanged" in " ".join(done.stdout.split()), done.stdout
    final = _stored(out)
    assert all(final[s] == second[s] for s in second) and len(final) == 4
    assert {s: e["01_toy"]["score"] for s, e in _entries(out).items()} == {
        "ann": 5.0, "ben": 0.0, "cat": 5.0, "dan": 5.0}


# the toy topic's Counter, as a working submission writes it
TOY_COUNTER = '''class Counter:
    def __init__(self):
        self.n = 0

    def tick(self):
        self.n += 1
        return self.n
'''

HOSTILE = '''
import os
from pathlib import Path

import torch

TARGETS = {targets!r}
attempts = []


def _try(what, action):
    try:
        action()
        attempts.append(what + ": done")
    except Exception as exc:
        attempts.append(what + (": refused" if isinstance(exc, PermissionError) else ": " + repr(exc)))


def double(x):
    _try("write the database", lambda: open(TARGETS["db"], "ab").write(b"garbage"))
    _try("write the scores", lambda: open(TARGETS["out"] + "/scores.csv", "w").write("mallory,100"))
    _try("change bob", lambda: open(TARGETS["bob"], "w").write("def double(x):\\n    return 0 * x\\n"))
    _try("read bob", lambda: open(TARGETS["bob"]).read())
    _try("list the class", lambda: os.listdir(TARGETS["root"]))
    _try("list the staging", lambda: os.listdir(TARGETS["out"] + "/.staging"))
    escaped = [a for a in attempts if not a.endswith(": refused")]
    if escaped:
        raise RuntimeError("escaped: " + "; ".join(escaped))
    return 2 * x


''' + TOY_COUNTER


def test_a_hostile_submission_cannot_touch_the_others_results(synced_course, tmp_path):
    root, out = tmp_path / "submissions", tmp_path / "out"
    toy = topics.resolve("01_toy")
    shutil.copytree(toy.solutions, root / "bob" / "01_toy")
    bob_file = root / "bob" / "01_toy" / "toy.py"
    before = bob_file.read_text()
    out.mkdir()
    db_path = out / store.FILE
    with store.Store(out):
        pass
    targets = {"db": str(db_path), "out": str(out), "bob": str(bob_file), "root": str(root)}
    (root / "mallory" / "01_toy").mkdir(parents=True)
    (root / "mallory" / "01_toy" / "toy.py").write_text(HOSTILE.format(targets=targets))
    crash = (toy.solutions / "toy.py").read_text().replace("return 2 * x", "import os; os._exit(3)")
    (root / "crasher" / "01_toy").mkdir(parents=True)
    (root / "crasher" / "01_toy" / "toy.py").write_text(crash)
    summary = run.grade_class(root, out, topics.available(), jobs=2)
    assert sorted(summary.graded) == [("bob", "01_toy"), ("crasher", "01_toy"), ("mallory", "01_toy")]
    assert bob_file.read_text() == before
    entries = _entries(out)  # the database is intact and readable
    assert entries["bob"]["01_toy"]["score"] == 5.0 and entries["bob"]["01_toy"]["status"] == "ok"
    mallory = entries["mallory"]["01_toy"]
    # every attempt was refused (the submission raises "escaped: ..." otherwise), so it earns its points
    assert mallory["score"] == 5.0, [t["message"] for t in mallory["tests"]]
    assert b"garbage" not in db_path.read_bytes()
    assert entries["crasher"]["01_toy"]["status"] == "crashed"  # a crash costs only its own topic


def test_the_class_report_counts_students_not_failures(tmp_path):
    """Two students; ann fails two hidden tests and one public test twice over (a notebook cell
    reporting two tests, each with its named mistake), bob one hidden test."""
    def test(name, message, hidden=False):
        return {"id": f"graders/t.py::{name}", "points": 0.0, "max_points": 1.0, "outcome": "failed",
                "message": message, "hidden": hidden}
    cell = ("FAIL test_a\n       softmax: values differ\n         known mistake: no max subtracted\n"
            "FAIL test_b\n       gelu: values differ\n         known mistake: tanh form\n")
    entries = {"ann": {"04_x": {"status": "ok", "score": 0.0, "max_score": 4.0, "tests": [
                   test("h1", "x: wrong", True), test("h2", "y: wrong", True), test("cell", cell)]}},
               "bob": {"04_x": {"status": "ok", "score": 3.0, "max_score": 4.0, "tests": [
                   test("h1", "NotImplementedError: TODO 04_x: causal_mask", True)]}}}
    page = report.write(tmp_path / "r.md", entries, ["ann", "bob"], ["04_x"]).read_text()
    assert "- hidden tests (any): 2 of 2" in page and "- cell: 1 of 2" in page, page
    assert "- softmax: 1 of 2 no max subtracted" in page and "- gelu: 1 of 2 tanh form" in page, page
    assert "- causal_mask: 1 of 2" in page.split("Left unimplemented")[1], page


def test_unsafe_zips_are_refused(tmp_path):
    bad = tmp_path / "eve.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("../../escaped.py", "x = 1")
    with pytest.raises(submissions.SubmissionError, match="unsafe path"):
        submissions.unpack(bad, tmp_path / "unpacked" / "eve")
    assert not (tmp_path / "escaped.py").exists()


def test_grade_class_cli_errors_are_one_clear_line(synced_course, tmp_path, capsys):
    assert cli.main(["grade-class", str(tmp_path / "nowhere")]) == 2
    assert "no such folder" in capsys.readouterr().out
    (tmp_path / "empty").mkdir()
    assert cli.main(["grade-class", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    text = capsys.readouterr().out
    assert "no submissions in" in text and "Traceback" not in text
    one = tmp_path / "one"
    shutil.copytree(topics.resolve("01_toy").solutions, one / "01_toy")
    assert cli.main(["grade-class", str(one), "--out", str(tmp_path / "o")]) == 2
    assert "looks like one submission" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        cli.main(["grade-class", "--help"])
    assert "resume" in capsys.readouterr().out


def test_the_gradescope_autograder_grades_with_the_hidden_tests(synced_course, tmp_path):
    archive = gradescope.build(tmp_path / "autograder.zip", topics.available())
    with zipfile.ZipFile(archive) as zf:
        names = set(zf.namelist())
        modes = {i.filename: i.external_attr >> 16 for i in zf.infolist()}
        zf.extractall(tmp_path / "source")
    assert {"setup.sh", "run_autograder", "graders/01_toy/test_toy_hidden.py", "conftest.py"} <= names
    assert all(modes[n] & 0o111 for n in ("setup.sh", "run_autograder"))
    assert not any(n.startswith(("solutions/", "exercises/")) or n == "graders/01_toy/fixtures.py" for n in names)
    assert "/autograder/results/results.json" in (tmp_path / "source" / "run_autograder").read_text()
    # what run_autograder runs, on an unpacked copy of the zip, with a wrong submission
    sub = tmp_path / "submission"
    mutants.apply(topics.resolve("01_toy"), [mutants.Edit("toy.py", "return 2 * x", "return x")], sub)
    env = {**os.environ, "LLMLAB_ROOT": str(tmp_path / "source"), "PYTHONPATH": str(tmp_path / "source")}
    results = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "llmlab.classroom.gradescope", str(sub), str(results)],
                          cwd=tmp_path / "source", env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    result = json.loads(results.read_text())
    assert result["score"] == 1.0 and len(result["tests"]) == 4  # the hidden test is graded too
    assert [t["visibility"] for t in result["tests"]].count("after_published") == 1


def test_the_student_bundle_carries_a_github_classroom_workflow(synced_course, tmp_path):
    import base64

    import yaml

    from llmlab.authoring import release
    from llmlab.grading import grade
    from llmlab.grading import github_classroom as github
    bundle = release.release(tmp_path / "bundle")
    flow = yaml.safe_load((bundle / github.WORKFLOW).read_text())
    steps = flow["jobs"]["run-autograding-tests"]["steps"]
    reporter = next(s for s in steps if "autograding-grading-reporter" in s.get("uses", ""))
    assert reporter["with"]["runners"] == "t01_toy" and "T01_TOY_RESULTS" in reporter["env"]
    assert "llmlab grade" in next(s for s in steps if s.get("id") == "grade")["run"]
    # what the grade step hands the reporter: points per topic, from `llmlab grade --json`
    wrong = tmp_path / "wrong"
    mutants.apply(topics.resolve("01_toy"), [mutants.Edit("toy.py", "return 2 * x", "return x")], wrong)
    report = grade.grade(topics.available(), impl=str(wrong), quiet=True)
    runner, _, payload = github.outputs(report).strip().partition("=")
    result = json.loads(base64.b64decode(payload))
    assert runner == "t01_toy" and result["status"] == "fail" and result["max_score"] == 5.0
    assert sum(t["score"] for t in result["tests"]) == report["score"] == 1.0


def test_a_dask_cluster_gives_the_serial_results_even_when_a_worker_dies(synced_course, tmp_path):
    distributed = pytest.importorskip("distributed")
    import signal

    root = tmp_path / "submissions"
    toy = topics.resolve("01_toy")
    shutil.copytree(toy.solutions, root / "ann" / "01_toy")
    shutil.copytree(toy.exercises, root / "ben" / "01_toy")
    mutants.apply(toy, [mutants.Edit("toy.py", "return 2 * x", "return x")], root / "cat")
    serial = run.grade_class(root, tmp_path / "serial", topics.available(), jobs=1)
    out = tmp_path / "dask"  # mallory, graded on the cluster only, tries the results and ann's files
    ann_file = root / "ann" / "01_toy" / "toy.py"
    targets = {"db": str(out / store.FILE), "out": str(out), "bob": str(ann_file), "root": str(root)}
    (root / "mallory" / "01_toy").mkdir(parents=True)
    (root / "mallory" / "01_toy" / "toy.py").write_text(HOSTILE.format(targets=targets))
    ann_before = ann_file.read_text()

    def shape(out):
        return {s: {t: (e["score"], e["status"], [x["outcome"] for x in e["tests"]]) for t, e in topics_.items()}
                for s, topics_ in _entries(out).items() if s != "mallory"}

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None,
                                  silence_logs=50) as cluster, distributed.Client(cluster) as client:
        pids = client.run(os.getpid)  # worker address -> pid
        killed = []

        def kill_a_busy_worker(student, topic, entry):  # after the first result: a worker dies mid-task
            if not killed:
                busy = [address for address, keys in client.processing().items() if keys]
                assert busy, "no task was running after the first result"
                killed.append(client.processing()[busy[0]])
                os.kill(pids[busy[0]], signal.SIGKILL)

        on_dask = run.grade_class(root, out, topics.available(), scheduler=cluster, on_result=kill_a_busy_worker)
    assert killed and sorted(on_dask.graded) == sorted(serial.graded + [("mallory", "01_toy")])
    assert shape(out) == shape(tmp_path / "serial")
    mallory = _entries(out)["mallory"]["01_toy"]  # every attempt refused, or it raises "escaped: ..."
    assert mallory["score"] == 5.0, [t["message"] for t in mallory["tests"]]
    assert ann_file.read_text() == ann_before and b"garbage" not in (out / store.FILE).read_bytes()


HOSTILE_NOTEBOOK_CELL = '''
import os

import torch

TARGETS = {targets!r}
attempts = []
for what, action in [("read ann", lambda: open(TARGETS["ann"], "rb").read()),
                     ("list the class", lambda: os.listdir(TARGETS["root"])),
                     ("write the database", lambda: open(TARGETS["db"], "ab").write(b"garbage")),
                     ("list the staging", lambda: os.listdir(TARGETS["out"] + "/.staging")),
                     ("start a process", lambda: os.system("true"))]:
    try:
        action()
        attempts.append(what + ": done")
    except PermissionError:
        pass
print("escaped:", attempts)


def double(x):
    return x if attempts else 2 * x  # full marks only if every attempt was refused


''' + TOY_COUNTER


def test_submitted_notebooks_are_graded_by_nbgrader_and_contained(chapter_course, tmp_path):
    import nbformat

    from llmlab.book import chapters
    chapters.build(None, tmp_path / "built")
    source = nbformat.read(tmp_path / "built/source/01_toy/01_toy.ipynb", as_version=4)
    [cell] = [c for c in source.cells if "return 2 * x" in c.source]
    root, out = tmp_path / "submissions", tmp_path / "out"
    (root / "ann").mkdir(parents=True)
    nbformat.write(source, root / "ann" / "01_toy.ipynb")  # the solution
    original = cell.source
    cell.source = original.replace("return 2 * x", "return x")
    (root / "bob" / "01_toy").mkdir(parents=True)
    nbformat.write(source, root / "bob" / "01_toy" / "01_toy.ipynb")  # nbgrader's layout, a known mistake
    targets = {"ann": str(root / "ann" / "01_toy.ipynb"), "root": str(root), "db": str(out / store.FILE),
               "out": str(out)}
    cell.source = HOSTILE_NOTEBOOK_CELL.format(targets=targets)
    (root / "mallory").mkdir()
    nbformat.write(source, root / "mallory" / "01_toy.ipynb")
    summary = run.grade_class(root, out, topics.available(), jobs=2)
    assert sorted(summary.graded) == [(s, "01_toy") for s in ("ann", "bob", "mallory")]
    entries = _entries(out)
    assert {s: (e["01_toy"]["score"], e["01_toy"]["max_score"]) for s, e in entries.items()} == {
        "ann": (5.0, 5.0), "bob": (0.0, 5.0), "mallory": (5.0, 5.0)}, entries["mallory"]
    assert b"garbage" not in (out / store.FILE).read_bytes()
    files = export.export_all(out, entries, summary.students, summary.topics)
    assert "- double: 1 of 3 returned the input unchanged" in files["report"].read_text()
    assert HIDDEN_SOURCE not in (out / "feedback" / "bob.md").read_text()
    again = run.grade_class(root, out, topics.available(), jobs=2)
    assert again.graded == [] and len(again.skipped) == 3
