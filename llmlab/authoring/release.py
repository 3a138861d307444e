"""`llmlab release OUT`: the student bundle.

What a student receives: the skeletons (generated fresh from solutions/), the public
graders, the reference data, the `llmlab` package, set-up files, a student README and —
added by the `llmlab release` command through `add` — the student notebooks of the chapters.
Left out: solutions/, hidden tests (`graders/*/test_*_hidden.py`), mutant catalogues and
fixture generators (both are written against the reference solution), and maintainer files.
The bundle is checked before it is reported done: no solution region and no hidden test
may be in it.
"""

from __future__ import annotations

import re
import shutil
import tempfile
from pathlib import Path

from llmlab.authoring import sync
from llmlab.course import paths, topics
from llmlab.course.loader import digest, write_record
from llmlab.grading import github_classroom as github  # the bundle's GitHub Classroom workflow

TOP_FILES = ["conftest.py", "pyproject.toml", "Makefile", "install.py", ".gitignore"]
GRADER_EXCLUDE = ("mutants.py", "fixtures.py")


class ReleaseError(Exception):
    pass


def is_hidden_grader(path: Path) -> bool:
    return path.name.startswith("test_") and path.stem.endswith("_hidden")


def release(out: Path, force: bool = False, add=None) -> Path:
    """Write the student bundle to OUT, all or nothing: it is built in a sibling folder and
    moved into place only when complete and audited. `add(folder)`, if given, writes more
    into the bundle before the audit (the CLI adds the student notebooks this way)."""
    root = paths.root()
    out = out.expanduser().resolve()
    if out == root or root in out.parents:
        raise ReleaseError(f"write the bundle outside the course checkout (got {out})")
    if out.exists() and any(out.iterdir()) and not force:
        raise ReleaseError(f"{out} exists and is not empty; pass --force to replace it")
    selected = topics.available()
    if not selected:
        raise ReleaseError("no topics found; run this in the course repository")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.partial-", dir=out.parent))
    try:
        _write_bundle(staging, root, selected)
        if add is not None:
            add(staging)
        problems = audit(staging)
        if problems:
            raise ReleaseError("the bundle failed its audit:\n  " + "\n  ".join(problems))
        if out.exists():
            shutil.rmtree(out)
        staging.rename(out)
    finally:
        if staging.exists():
            shutil.rmtree(staging)
    return out


def _write_bundle(out: Path, root: Path, selected: list[topics.Topic]) -> None:
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    package = Path(__file__).resolve().parent.parent  # the llmlab that is running
    shutil.copytree(package, out / "llmlab", ignore=ignore)
    for name in TOP_FILES:
        if (root / name).exists():
            shutil.copy2(root / name, out / name)
    shutil.copy2(package / "data" / "STUDENT_README.md", out / "README.md")
    (out / github.WORKFLOW).parent.mkdir(parents=True, exist_ok=True)
    (out / github.WORKFLOW).write_text(github.workflow([t.slug for t in selected]))
    for topic in selected:
        record = {}
        for path, text in sync.expected_files(topic).items():
            dest = out / "exercises" / topic.slug / path.name
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_text(text)
            record[path.name] = digest(text)
        write_record(out / "exercises" / topic.slug, record)
        gdest = out / "graders" / topic.slug
        gdest.mkdir(parents=True, exist_ok=True)
        for path in sorted(topic.graders.iterdir()):
            if path.is_file() and path.suffix == ".py" and not is_hidden_grader(path) \
                    and path.name not in GRADER_EXCLUDE:
                shutil.copy2(path, gdest / path.name)
        if topic.reference.is_dir():
            shutil.copytree(topic.reference, out / "reference" / topic.slug, ignore=ignore)


def audit(bundle: Path) -> list[str]:
    """What must never be in a student bundle."""
    problems = []
    if (bundle / "solutions").exists():
        problems.append("solutions/ is present")
    for path in bundle.rglob("*.py"):
        text = path.read_text(errors="replace")
        rel = path.relative_to(bundle)
        if any(line.strip() in (sync.BEGIN, sync.END) for line in text.splitlines()):
            problems.append(f"{rel} contains a solution region")
        if "pytest.mark.hidden" in text and rel.parts[0] == "graders":
            problems.append(f"{rel} contains a hidden test")
        if rel.parts[0] == "graders" and (is_hidden_grader(path) or path.name in GRADER_EXCLUDE):
            problems.append(f"{rel} is instructor-only")
        if re.search(r"^\s*(from|import)\s+solutions\b", text, re.M):
            problems.append(f"{rel} imports solutions")
    return problems
