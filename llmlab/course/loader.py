"""Load a topic's implementation by path: from exercises/, solutions/ or any folder.

Topic folders start with a digit, so they are never imported by dotted name. Every `*.py`
file of the folder (except tests and conftest) is executed as its own module, and the
public names of all of them are offered through one `Implementation` object: graders
write `impl.softmax(x)` whatever file `softmax` lives in.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType

from llmlab.course import paths
from llmlab.course.topics import Topic


RECORD = ".generated.json"  # exercises/NN_x/.generated.json: the files sync (or release) wrote there, with hashes


class ImplementationError(Exception):
    """The implementation folder cannot be used (missing, or a file fails to import)."""


def digest(text: str) -> str:
    """The hash the exercises record keeps of a file's text."""
    return hashlib.sha256(text.encode()).hexdigest()


def read_record(topic: Topic) -> dict[str, str]:
    """{file name: hash} of the topic's exercise files as sync (or release) last wrote them;
    one record per topic folder, so topics are generated and committed independently."""
    try:
        return json.loads((topic.exercises / RECORD).read_text())
    except (OSError, ValueError):
        return {}


def write_record(folder: Path, record: dict[str, str]) -> None:
    """Write a topic's record into its exercise folder (`folder` is exercises/NN_x)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / RECORD).write_text(json.dumps(dict(sorted(record.items())), indent=1) + "\n")


def edited_modules(topic: Topic) -> list[Path]:
    """The topic's exercise files whose text differs from what was generated: the student's work."""
    record = read_record(topic)
    return [path for path in sorted(topic.exercises.glob("*.py"))
            if path.name in record and record[path.name] != digest(path.read_text())]


def expected_modules(topic: Topic) -> list[str]:
    """The module files a topic's implementation holds (e.g. ["attention.py"]), as recorded
    when its skeleton was written; empty when no record exists."""
    return sorted(n for n in read_record(topic) if not n.startswith("test_"))


def missing_modules(topic: Topic, folder: Path) -> list[str]:
    return [name for name in expected_modules(topic) if not (folder / name).exists()]


def impl_folder(topic: Topic, impl: str | Path = "exercises") -> Path:
    """Map `exercises`, `solutions` or a PATH to the folder that holds the topic's files.

    A PATH may be the topic folder itself or a folder that contains `NN_slug/`.
    """
    if str(impl) == "exercises":
        return topic.exercises
    if str(impl) == "solutions":
        return topic.solutions
    path = Path(impl).expanduser()
    if not path.is_absolute():
        path = (Path.cwd() / path).resolve()
    if (path / topic.slug).is_dir():
        return path / topic.slug
    return path


def module_files(folder: Path) -> list[Path]:
    return sorted(
        p
        for p in folder.glob("*.py")
        if not p.name.startswith("test_") and p.name != "conftest.py" and not p.name.startswith("_")
    )


class Implementation:
    """The public names of a topic's modules, with errors that say what to do."""

    def __init__(self, topic: Topic, folder: Path, modules: dict[str, ModuleType]):
        self._topic = topic
        self._folder = folder
        self._modules = modules

    @property
    def folder(self) -> Path:
        return self._folder

    @property
    def modules(self) -> dict[str, ModuleType]:
        return dict(self._modules)

    def __getattr__(self, name: str):
        if name.startswith("_"):
            raise AttributeError(name)
        for module in self._modules.values():
            if hasattr(module, name):
                return getattr(module, name)
        files = ", ".join(f"{m}.py" for m in self._modules) or "no .py files"
        raise AttributeError(
            f"{self._topic.slug}: `{name}` is not defined in {_show(self._folder)} ({files}). "
            f"Keep the names and signatures of the skeleton: graders call `{name}`."
        )

    def __repr__(self) -> str:
        return f"<Implementation {self._topic.slug} from {_show(self._folder)}>"


def _show(path: Path) -> str:
    try:
        return str(path.relative_to(paths.root()))
    except ValueError:
        return str(path)


def load(topic: Topic, impl: str | Path = "exercises") -> Implementation:
    folder = impl_folder(topic, impl)
    if not folder.is_dir():
        raise ImplementationError(
            f"{topic.slug}: implementation folder {_show(folder)} does not exist. "
            f"Pass --impl exercises, --impl solutions, or a folder that holds {topic.slug}/."
        )
    missing = missing_modules(topic, folder)
    if missing:
        where = ", ".join(f"{_show(folder / name)}" for name in missing)
        fix = (f"`llmlab sync {topic.slug}` restores the skeleton (your other files are kept)"
               if folder.resolve() == topic.exercises.resolve() else f"the folder must hold {', '.join(missing)}")
        raise ImplementationError(f"{topic.slug}: {where} is missing: {fix}.")
    files = module_files(folder)
    if not files:
        raise ImplementationError(f"{topic.slug}: no .py files in {_show(folder)}.")
    modules: dict[str, ModuleType] = {}
    tag = abs(hash(str(folder.resolve()))) % 10**8
    for path in files:
        name = f"llmlab_impl_{topic.slug}_{tag}_{path.stem}"
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except NotImplementedError:
            raise
        except BaseException as exc:  # report which file broke and how, not a deep traceback
            # BaseException too: sys.exit() or KeyboardInterrupt at import must not end a run.
            del sys.modules[name]
            line = ""
            if isinstance(exc, SyntaxError) and exc.lineno:
                line = f", line {exc.lineno}"
            raise ImplementationError(
                f"{topic.slug}: importing {_show(path)} failed{line}: "
                f"{type(exc).__name__}: {exc}. Fix this error first; no test of the topic can run until the file imports."
            ) from exc
        modules[path.stem] = module
    return Implementation(topic, folder, modules)
