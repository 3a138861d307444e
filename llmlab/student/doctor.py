"""`llmlab doctor`: check the environment; for each problem, say how to fix it."""

from __future__ import annotations

import importlib
import importlib.metadata as md
import json
import sys
import tempfile
from pathlib import Path

from llmlab.course import loader, paths, topics

TORCH_VERSION = "2.13.0"
MODULES = ["numpy", "scipy", "pytest", "hypothesis", "regex", "tiktoken", "rich",
           "tqdm", "matplotlib", "nbformat", "nbclient", "jupytext", "nbgrader"]


def checks() -> list[tuple[str, bool, str]]:
    """(what was checked, ok, how to fix it)."""
    root = paths.root()
    results: list[tuple[str, bool, str]] = []

    def add(what: str, ok: bool, fix: str = "") -> None:
        results.append((what, ok, fix))

    add(f"Python {sys.version.split()[0]} (3.10 or newer)", sys.version_info >= (3, 10),
        "install Python 3.10+ and run `make grade` again (it recreates .venv)")
    try:
        import torch
        version = torch.__version__.split("+")[0]
        add(f"torch {torch.__version__} (course pins {TORCH_VERSION})", version == TORCH_VERSION,
            f"`.venv/bin/pip install torch=={TORCH_VERSION}` (an unpinned torch pulls a multi-GB CUDA build)")
    except ImportError:
        add("torch is installed", False, f"`.venv/bin/pip install torch=={TORCH_VERSION}`, or run `make grade`")
    missing = []
    for name in MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            missing.append(name)
    add("course dependencies import" + (f" (missing: {', '.join(missing)})" if missing else ""), not missing,
        "`.venv/bin/pip install -e .` in the course folder (or delete .venv and run `make grade`)")
    try:
        md.distribution("llmlab")
        here = Path(importlib.import_module("llmlab").__file__).resolve().parent.parent
        add(f"llmlab is loaded from this checkout ({here})", here == root,
            "`.venv/bin/pip install -e .` so the package points at this folder")
    except md.PackageNotFoundError:
        add("llmlab is installed", False, "`.venv/bin/pip install -e .` in the course folder")
    in_venv = Path(sys.prefix).resolve() == (root / ".venv").resolve()
    add("running inside the course's .venv", in_venv,
        "`source .venv/bin/activate` (or call `.venv/bin/llmlab`); `make grade` does this for you")
    alembic = Path(sys.executable).parent / "alembic"
    add("alembic is installed next to this Python (nbgrader runs it; llmlab puts it on PATH)", alembic.exists(),
        "`.venv/bin/pip install -e .` (nbgrader and alembic come with the course's dependencies)")
    for folder in ("exercises", "graders", "reference", "conftest.py"):
        add(f"course layout: {folder} present", (root / folder).exists(),
            "run llmlab from a complete course checkout or student bundle")
    try:
        with tempfile.NamedTemporaryFile(prefix="llmlab-doctor-"):
            pass
        add("temporary folder is writable", True)
    except OSError as exc:
        add(f"temporary folder is writable ({exc})", False, "set TMPDIR to a writable folder")
    for topic in topics.available():
        add(*_reference_ok(topic))
        add(*_imports_ok(topic))
    return results


def _reference_ok(topic: topics.Topic) -> tuple[str, bool, str]:
    from llmlab.testing import reference
    manifest = topic.reference / reference.MANIFEST
    what = f"{topic.slug}: reference data intact"
    if not manifest.exists():
        return what + " (none stored)", True, ""
    files = json.loads(manifest.read_text()).get("files", {})
    bad = [name for name, sha in files.items()
           if not (topic.reference / name).exists() or reference.sha((topic.reference / name).read_bytes()) != sha]
    return what + (f" (changed: {', '.join(bad)})" if bad else ""), not bad, \
        f"restore it: `git checkout reference/{topic.slug}` (or copy it from the course bundle)"


def _imports_ok(topic: topics.Topic) -> tuple[str, bool, str]:
    what = f"{topic.slug}: exercises import"
    try:
        loader.load(topic, "exercises")
        return what, True, ""
    except NotImplementedError:
        return what, True, ""
    except loader.ImplementationError as exc:
        return f"{what} ({exc})", False, "fix the error in the file named above"


def main(console) -> int:
    problems = 0
    for what, ok, fix in checks():
        if ok:
            console.print(f"[green]ok[/green]   {what}")
        else:
            problems += 1
            console.print(f"[red]FAIL[/red] {what}\n     fix: {fix}")
    console.print("No problems found." if not problems else f"{problems} problem(s) found.")
    return 1 if problems else 0
