"""A Gradescope autograder for the course: `llmlab gradescope-zip OUT.zip [TOPIC...]`.

The zip follows Gradescope's documented layout (https://gradescope-autograders.readthedocs.io/
en/latest/specs/): `setup.sh` and `run_autograder` at its root; Gradescope unpacks it to
/autograder/source, runs setup.sh once when it builds the image, and run_autograder once per
submission with the student's files in /autograder/submission, reading
/autograder/results/results.json. The zip holds the llmlab package, the graders (hidden
tests included), the reference data and the set-up files, never solutions/; grading needs no
network. `python -m llmlab.classroom.gradescope SUBMISSION RESULTS` is what
run_autograder calls: the same per-topic child processes as `llmlab grade`.
"""

from __future__ import annotations

import json
import sys
import zipfile
from pathlib import Path

from llmlab.course import paths, topics

EXCLUDE = ("mutants.py", "fixtures.py")  # written against the reference solution; not needed to grade
TOP_FILES = ["conftest.py", "pyproject.toml", "install.py"]

SETUP_SH = """#!/usr/bin/env bash
# Gradescope runs this once, when it builds the autograder image.
set -euo pipefail
if ! python3 -c 'import venv, ensurepip' 2>/dev/null; then
    apt-get update && apt-get install -y python3 python3-venv python3-pip
fi
cd /autograder/source
python3 install.py   # .venv with the course's pinned dependencies (CPU torch)
"""

RUN_AUTOGRADER = """#!/usr/bin/env bash
# Gradescope runs this once per submission: the student's files are in /autograder/submission.
cd /autograder/source
export LLMLAB_ROOT=/autograder/source
mkdir -p /autograder/results
exec .venv/bin/python -m llmlab.classroom.gradescope /autograder/submission \\
    /autograder/results/results.json{topics}
"""


class GradescopeError(Exception):
    pass


def build(out: Path, selected: list[topics.Topic]) -> Path:
    """Write the autograder zip to `out`."""
    root = paths.root()
    package = Path(__file__).resolve().parents[1]  # the llmlab package that is running
    out = Path(out).expanduser().resolve()
    if out.suffix != ".zip":
        raise GradescopeError(f"{out.name}: the autograder must be a .zip file")
    out.parent.mkdir(parents=True, exist_ok=True)

    def add(zf: zipfile.ZipFile, path: Path, name: str) -> None:
        if "__pycache__" not in path.parts and path.suffix != ".pyc":
            zf.write(path, name)

    def script(zf: zipfile.ZipFile, name: str, text: str) -> None:
        info = zipfile.ZipInfo(name)
        info.external_attr = 0o100755 << 16  # executable, as Gradescope runs them directly
        info.compress_type = zipfile.ZIP_DEFLATED
        zf.writestr(info, text)

    every = [t.slug for t in selected] == [t.slug for t in topics.available()]
    slugs = "" if every else "".join(f" {t.slug}" for t in selected)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        script(zf, "setup.sh", SETUP_SH)
        script(zf, "run_autograder", RUN_AUTOGRADER.format(topics=slugs))
        for path in sorted(package.rglob("*")):
            if path.is_file():
                add(zf, path, "llmlab/" + path.relative_to(package).as_posix())
        for name in TOP_FILES:
            if (root / name).exists():
                add(zf, root / name, name)
        for topic in selected:
            for path in sorted(topic.graders.rglob("*")):
                if path.is_file() and path.name not in EXCLUDE:
                    add(zf, path, f"graders/{topic.slug}/" + path.relative_to(topic.graders).as_posix())
            if topic.reference.is_dir():
                for path in sorted(topic.reference.rglob("*")):
                    if path.is_file():
                        add(zf, path, f"reference/{topic.slug}/" + path.relative_to(topic.reference).as_posix())
    return out


def run(submission: Path, results: Path, names: list[str] | None = None) -> dict:
    """Grade one Gradescope submission folder and write its results.json."""
    from llmlab.classroom import export
    from llmlab.classroom.submissions import topic_parent
    from llmlab.grading import grade
    selected = topics.resolve_many(names or None)
    folder = topic_parent(Path(submission), {t.slug for t in selected})
    present = [t for t in selected if (folder / t.slug).is_dir()]
    report = grade.grade(present, impl=str(folder), quiet=True) if present else {"topics": []}
    by_slug = {entry["topic"]: entry for entry in report["topics"]}
    result = export.gradescope_result([by_slug.get(t.slug) for t in selected], [t.slug for t in selected])
    missing = [t.slug for t in selected if t.slug not in by_slug]
    if missing:
        result["output"] = ("No folder submitted for: " + ", ".join(missing)
                            + ". Upload your NN_topic/ folders (or a zip of them).")
    Path(results).write_text(json.dumps(result, indent=1))
    return result


if __name__ == "__main__":
    run(Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:])
