"""nbgrader, driven from llmlab: release student notebooks and autograde submissions.

Each run works in a fresh nbgrader course folder in a temporary directory (source/,
release/, submitted/, autograded/ and the gradebook database live there and vanish with
it); only the requested products are copied out. nbgrader shells out to `alembic`, so the
folder of the running Python is put first on PATH.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from llmlab.course import costs

CONFIG = """\
c = get_config()
c.CourseDirectory.root = {root!r}
c.CourseDirectory.db_url = "sqlite:///" + {db!r}
c.Execute.timeout = {timeout}
c.Execute.kernel_name = "python3"
c.ClearSolutions.code_stub = {{"python": "# YOUR CODE HERE\\nraise NotImplementedError()"}}
c.KernelManager.transport = "ipc"  # local sockets, no TCP (and no warning about it); see book/execute.py
c.KernelManager.ip = {kernel!r}
"""


class NbgraderError(Exception):
    pass


def _env(threads: int | None = None) -> dict:
    """nbgrader's environment: this Python's bin/ first on PATH (it shells out to alembic);
    with `threads`, the thread count of the kernels it starts (when groups run side by side)."""
    bindir = str(Path(sys.executable).parent)
    env = dict(os.environ, PATH=bindir + os.pathsep + os.environ.get("PATH", ""))
    if threads:
        env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(threads)
    return env


def _course(tmp: Path, source: Path, timeout: int, slug: str | None = None, kernel: Path | None = None) -> Path:
    """An nbgrader course folder in `tmp`: every built assignment, or only `slug`'s."""
    course = tmp / "course"
    if slug is None:
        shutil.copytree(source / "source", course / "source")
    else:
        shutil.copytree(source / "source" / slug, course / "source" / slug)
    (course / "nbgrader_config.py").write_text(CONFIG.format(root=str(course), db=str(tmp / "gradebook.db"),
                                                             timeout=timeout, kernel=str(kernel or tmp / "kernel")))
    return course


def _nbgrader(course: Path, *args: str, threads: int | None = None) -> None:
    cmd = [sys.executable, "-m", "nbgrader", *args, "--force"]
    proc = subprocess.run(cmd, cwd=course, env=_env(threads), capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-20:])
        raise NbgraderError(f"`nbgrader {' '.join(args)}` failed:\n{tail}")


def assignments(built: Path) -> list[str]:
    return sorted(p.name for p in (built / "source").iterdir() if p.is_dir())


def release(built: Path, out: Path, timeout: int = 300, slugs: list[str] | None = None) -> list[Path]:
    """Student notebooks (solutions and hidden tests stripped by nbgrader) into OUT/NN_x/:
    every built chapter (OUT is replaced), or only the chapters `slugs` (their folders are)."""
    if not (built / "source").is_dir():
        raise NbgraderError(f"no built notebooks in {built}; run `llmlab notebooks build` first")
    missing = [slug for slug in slugs or [] if not (built / "source" / slug).is_dir()]
    if missing:
        raise NbgraderError(f"{', '.join(missing)} not built in {built}; "
                            f"run `llmlab notebooks build {' '.join(missing)}` first")
    with tempfile.TemporaryDirectory(prefix="llmlab-nbgrader-") as tmp:
        course = _course(Path(tmp), built, timeout)
        if slugs is None:
            _nbgrader(course, "generate_assignment", "*")  # nbgrader globs the assignment id: all at once
            if out.exists():
                shutil.rmtree(out)
            shutil.copytree(course / "release", out)
            folders = [out]
        else:
            folders = []
            for slug in slugs:
                _nbgrader(course, "generate_assignment", slug)
                if (out / slug).exists():
                    shutil.rmtree(out / slug)
                shutil.copytree(course / "release" / slug, out / slug)
                folders.append(out / slug)
    problems = [problem for folder in folders for problem in audit(folder)]
    if problems:
        raise NbgraderError("the released notebooks failed their audit:\n  " + "\n  ".join(problems))
    return sorted(path for folder in folders for path in folder.rglob("*.ipynb"))


def hidden_test_names() -> set[str]:
    """Names of every instructor-only grader test of the course."""
    from llmlab.course import topics
    from llmlab.grading.inprocess import grader_locations

    return {name for topic in topics.available() for name, file in grader_locations(topic).items()
            if Path(file).stem.endswith("_hidden")}


def audit(folder: Path) -> list[str]:
    """What must never be in a released notebook."""
    problems = []
    hidden = hidden_test_names()
    for path in sorted(folder.rglob("*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        for cell in nb.cells:
            text = cell.source
            for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
                if marker in text:
                    problems.append(f"{path.name}: a cell contains {marker!r}")
            for name in sorted(n for n in hidden if n in text):
                problems.append(f"{path.name}: a cell names the hidden test {name}")
            if "solutions/" in text or "import solutions" in text or "from solutions" in text:
                problems.append(f"{path.name}: a cell refers to solutions/")
            if cell.cell_type == "code" and cell.get("outputs"):
                problems.append(f"{path.name}: a cell has stored outputs")
    return problems


def _collect_submissions(submissions: Path, names: list[str]) -> dict[str, dict[str, Path]]:
    """student -> {assignment: notebook}. Accepts SUB/student/NN_x/NN_x.ipynb or SUB/student/NN_x.ipynb."""
    found: dict[str, dict[str, Path]] = {}
    if not submissions.is_dir():
        raise NbgraderError(f"{submissions} is not a folder of submissions (expected SUBMISSIONS/<student>/...)")
    for student in sorted(p for p in submissions.iterdir() if p.is_dir()):
        for name in names:
            for candidate in (student / name / f"{name}.ipynb", student / f"{name}.ipynb"):
                if candidate.exists():
                    found.setdefault(student.name, {})[name] = candidate
                    break
    if not found:
        raise NbgraderError(f"no submitted notebooks found in {submissions}; expected "
                            f"<student>/<NN_topic>/<NN_topic>.ipynb or <student>/<NN_topic>.ipynb")
    return found


def autograde(built: Path, submissions: Path, timeout: int = 300, jobs: int = 2) -> dict:
    """Grade every submitted notebook; returns {"students": [report per student]} where each
    student's report has the JSON shape of `llmlab grade`.

    The submitted notebooks are split into `jobs` groups, each graded by nbgrader in a course
    folder (and gradebook) of its own, the groups at the same time; the reports are merged."""
    from concurrent.futures import ThreadPoolExecutor

    names = assignments(built)
    subs = _collect_submissions(submissions, names)
    work = [(student, name, path) for student, notebooks in subs.items() for name, path in sorted(notebooks.items())]
    groups = [work[i::max(1, jobs)] for i in range(max(1, jobs))]
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        threads = max(1, (os.cpu_count() or 1) // jobs) if jobs > 1 else None
        parts = list(pool.map(lambda group: _autograde_group(built, group, timeout, threads), [g for g in groups if g]))
    merged: dict[str, dict] = {}
    for part in parts:
        for report in part:
            into = merged.setdefault(report["student"], {**report, "topics": [], "score": 0.0, "max_score": 0.0})
            into["topics"].extend(report["topics"])
    for report in merged.values():
        report["topics"].sort(key=lambda t: t["topic"])
        report["score"] = sum(t["score"] for t in report["topics"])
        report["max_score"] = sum(t["max_score"] for t in report["topics"])
    return {"students": [merged[student] for student in subs if student in merged]}


def _autograde_group(built: Path, group: list[tuple[str, str, Path]], timeout: int, threads: int | None) -> list[dict]:
    """nbgrader autograde of (student, assignment, notebook) triples in one course folder."""
    import time

    from nbgrader.api import Gradebook

    start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="llmlab-nbgrader-") as tmp:
        course = _course(Path(tmp), built, timeout)
        _nbgrader(course, "generate_assignment", "*")
        students: dict[str, dict[str, Path]] = {}
        for student, name, path in group:
            target = course / "submitted" / student / name / f"{name}.ipynb"
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
            students.setdefault(student, {})[name] = path
        with Gradebook("sqlite:///" + str(Path(tmp) / "gradebook.db")) as gb:
            for student in students:
                gb.update_or_create_student(student)
        _nbgrader(course, "autograde", "*", threads=threads)  # every submitted assignment of every student
        with Gradebook("sqlite:///" + str(Path(tmp) / "gradebook.db")) as gb:
            reports = [_student_report(gb, student, notebooks, course / "autograded" / student)
                       for student, notebooks in students.items()]
    share = (time.monotonic() - start) / len(group)
    for _, name, _ in group:
        costs.record(name, share)
    return reports


def autograde_one(built: Path, slug: str, notebook: Path, folder: Path, kernel: Path, time_limit: float,
                  memory_mb: int, env: dict[str, str], on_start=None) -> dict:
    """Grade one submitted notebook of `slug` in an nbgrader course folder of its own under
    `folder` (replaced), the kernel's local sockets under `kernel`; returns the topic's report
    entry (the `llmlab grade --json` shape, tests per grade cell). Class grading uses it:
    `env` (the folders the kernel must not touch) and the `memory_mb` cap reach nbgrader and the
    notebook's kernel, whose locked first cell applies them; past `time_limit` seconds the
    whole nbgrader tree is stopped and the entry's status is "timeout".
    `on_start(proc)` is called with the nbgrader process once started."""
    import time

    from nbgrader.api import Gradebook

    from llmlab.grading import limits

    start = time.monotonic()
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    course = _course(folder, built, max(1, int(time_limit)), slug, kernel)
    _nbgrader(course, "generate_assignment", slug)
    target = course / "submitted" / "student" / slug / f"{slug}.ipynb"
    target.parent.mkdir(parents=True)
    shutil.copy2(notebook, target)
    with Gradebook("sqlite:///" + str(folder / "gradebook.db")) as gb:
        gb.update_or_create_student("student")
    options = limits.popen_options(memory_mb)
    options["env"].update(_env(1), **env, JUPYTER_RUNTIME_DIR=str(folder / "runtime"))
    proc = subprocess.Popen([sys.executable, "-m", "nbgrader", "autograde", slug, "--force"], cwd=course,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, **options)
    if on_start:
        on_start(proc)
    status, detail = "ok", ""
    try:
        output, _ = proc.communicate(timeout=time_limit)
    except subprocess.TimeoutExpired:
        limits.kill_tree(proc)
        output, _ = proc.communicate()
        status, detail = "timeout", f"stopped after {time_limit:g} s (time limit per notebook)"
    try:
        with Gradebook("sqlite:///" + str(folder / "gradebook.db")) as gb:
            entry = _student_report(gb, "student", {slug: notebook}, course / "autograded" / "student")["topics"][0]
    except Exception as exc:  # the gradebook itself could not be read: say so, score 0
        entry = {"topic": slug, "score": 0.0, "max_score": 0.0, "status": "crashed", "detail": str(exc), "tests": []}
    if status == "ok" and (proc.returncode != 0 or entry["status"] != "ok"):
        tail = "\n".join(output.decode(errors="replace").strip().splitlines()[-10:])
        status, detail = "crashed", entry.get("detail") or f"nbgrader autograde failed:\n{tail}"
    if status != "ok":
        entry.update(status=status, detail=detail)
    entry["seconds"] = time.monotonic() - start
    return entry


def cell_messages(notebook: Path) -> dict[str, str]:
    """grade_id -> what the autograded cell printed (the graders' messages) and its error."""
    if not notebook.exists():
        return {}
    messages = {}
    for cell in nbformat.read(notebook, as_version=4).cells:
        grade_id = cell.metadata.get("nbgrader", {}).get("grade_id")
        if not grade_id or cell.cell_type != "code":
            continue
        parts = []
        for output in cell.get("outputs", []):
            if output.get("output_type") == "stream":
                parts.append(output.get("text", ""))
            elif output.get("output_type") == "error":
                parts.append(f"{output.get('ename')}: {output.get('evalue')}\n")
        messages[grade_id] = "".join(parts).strip()
    return messages


def _student_report(gb, student: str, notebooks: dict[str, Path], autograded: Path) -> dict:
    topics_out = []
    for name in sorted(notebooks):
        try:
            nb = gb.find_submission_notebook(name, name, student)
        except Exception as exc:  # nbgrader raises MissingEntry; the message says what is missing
            topics_out.append({"topic": name, "score": 0.0, "max_score": 0.0, "status": "crashed",
                               "detail": f"not graded: {exc}", "tests": []})
            continue
        tests = []
        messages = cell_messages(autograded / name / f"{name}.ipynb")
        for grade in sorted(nb.grades, key=lambda g: g.name):
            if grade.max_score_gradecell is None or not grade.cell.cell_type == "code":
                continue
            points = float(grade.score or 0.0)
            tests.append({"id": f"{name}.ipynb::{grade.name}", "points": points,
                          "max_points": float(grade.max_score), "outcome": "passed" if points >= grade.max_score else "failed",
                          "message": messages.get(grade.name, "")})
        topics_out.append({"topic": name, "score": float(nb.score), "max_score": float(nb.max_score),
                           "status": "ok", "tests": tests})
    return {"student": student, "impl": "notebooks", "score": sum(t["score"] for t in topics_out),
            "max_score": sum(t["max_score"] for t in topics_out), "topics": topics_out}


def executed_scores(notebook: Path) -> tuple[float, float]:
    """(score, max score) of an executed instructor notebook, by nbgrader's own rule for a
    grade cell (`nbgrader.utils.determine_grade`: an error or stderr output scores 0, else
    full points) — what `nbgrader autograde` gives the same notebook, without running it
    a second time."""
    from nbgrader.utils import determine_grade, is_grade

    nb = nbformat.read(notebook, as_version=4)
    score = total = 0.0
    for cell in nb.cells:
        if is_grade(cell):
            got, points = determine_grade(cell)
            score += got or 0.0
            total += points
    return score, total


def write_feedback(result: dict, folder: Path) -> list[Path]:
    """FOLDER/<student>/<NN_x>.md per graded notebook: the score and, per graded cell, its
    points and the graders' messages. Cell outputs only, never test source (hidden tests
    included: a student learns that a hidden check failed and why, not its code)."""
    written = []
    for student in result["students"]:
        for topic in student["topics"]:
            lines = [f"# {topic['topic']}: {topic['score']:g} / {topic['max_score']:g}", ""]
            if topic.get("detail"):
                lines += [topic["detail"], ""]
            for test in topic["tests"]:
                cell = test["id"].split("::")[-1]
                lines.append(f"## {cell}: {test['points']:g} / {test['max_points']:g}")
                if test["outcome"] != "passed" and test["message"]:
                    lines += ["", "```", test["message"], "```"]
                lines.append("")
            path = folder / student["student"] / f"{topic['topic']}.md"
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("\n".join(lines))
            written.append(path)
    return written


def write_scores(result: dict, csv_path: Path | None, json_path: Path | None) -> None:
    if json_path:
        json_path.write_text(json.dumps(result, indent=1))
    if csv_path:
        with open(csv_path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["student", "topic", "score", "max_score"])
            for student in result["students"]:
                for topic in student["topics"]:
                    writer.writerow([student["student"], topic["topic"], f"{topic['score']:g}", f"{topic['max_score']:g}"])
