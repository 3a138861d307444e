"""Find the class's submissions: one entry per student in the SUBMISSIONS folder.

An entry is a folder holding, per topic, an NN_x/ folder of code or a submitted chapter
notebook (NN_x.ipynb, or NN_x/NN_x.ipynb as nbgrader releases it), possibly one level down
(archives often wrap everything in one folder), or a .zip of such a folder. A topic folder
with .py files is graded as code; otherwise its notebook is. Zips are unpacked into the
output folder with every member checked: no absolute path, no `..`, no link, and a cap on
the unpacked size, so a hostile archive cannot write outside its own folder.
"""

from __future__ import annotations

import hashlib
import re
import shutil
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path

from llmlab.classroom import job
from llmlab.course import topics

MAX_UNPACKED = 200 * 2**20  # bytes one student's zip may unpack to
MAX_MEMBERS = 5000
_SAFE = re.compile(r"[^A-Za-z0-9._@+-]+")


class SubmissionError(Exception):
    pass


@dataclass(frozen=True)
class Submission:
    student: str
    folder: Path  # holds the NN_x/ folders
    source: Path  # the entry in SUBMISSIONS it came from


def student_name(entry: Path) -> str:
    name = entry.name[:-4] if entry.suffix.lower() == ".zip" else entry.name
    name = _SAFE.sub("_", name).strip("._")
    return name or "student"


def discover(root: Path, unpack_to: Path, selected: list[topics.Topic]) -> list[Submission]:
    """The submissions in `root`, sorted by student; zips are unpacked under `unpack_to`."""
    root = Path(root).expanduser()
    if not root.exists():
        raise SubmissionError(f"{root}: no such folder")
    if not root.is_dir():
        raise SubmissionError(f"{root} is not a folder; expected a folder with one entry per student "
                              f"(SUBMISSIONS/<student>/NN_topic/ or SUBMISSIONS/<student>.zip)")
    slugs = {t.slug for t in selected}
    if any((root / s).is_dir() for s in slugs):
        raise SubmissionError(f"{root} looks like one submission (it holds topic folders such as "
                              f"{next(s for s in sorted(slugs) if (root / s).is_dir())}/); put each student's "
                              f"folder inside SUBMISSIONS, or grade one submission with `llmlab grade --impl {root}`")
    found: dict[str, Submission] = {}
    notebooks: list[str] = []
    for entry in sorted(root.iterdir()):
        if entry.name.startswith(".") or entry.is_symlink():
            continue
        if entry.is_dir():
            folder = entry
        elif entry.suffix.lower() == ".zip":
            folder = unpack(entry, Path(unpack_to) / student_name(entry))
        elif entry.suffix.lower() == ".ipynb":
            notebooks.append(entry.name)
            continue
        else:
            continue
        name = student_name(entry)
        if name in found:
            raise SubmissionError(f"two entries for student {name!r}: {found[name].source.name} and {entry.name}")
        found[name] = Submission(name, topic_parent(folder, slugs), entry)
    if not found and notebooks:
        raise SubmissionError(f"{root} holds notebooks ({', '.join(notebooks[:3])}) but no student folders; put "
                              f"each student's notebooks in a folder of their own: SUBMISSIONS/<student>/NN_topic.ipynb")
    if not found:
        raise SubmissionError(f"no submissions in {root}; expected one entry per student: "
                              f"<student>/NN_topic/*.py, <student>/NN_topic.ipynb or <student>.zip")
    return [found[k] for k in sorted(found)]


def _holds_topics(folder: Path, slugs: set[str]) -> bool:
    return any((folder / s).is_dir() or (folder / f"{s}.ipynb").is_file() for s in slugs)


def topic_parent(folder: Path, slugs: set[str]) -> Path:
    """The folder holding the topic folders: `folder` itself, or its only subfolder."""
    if _holds_topics(folder, slugs):
        return folder
    subs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith((".", "__"))]
    if len(subs) == 1 and _holds_topics(subs[0], slugs):
        return subs[0]
    return folder


def topic_source(folder: Path, slug: str) -> tuple[str, Path | None]:
    """What a submission holds for one topic: ("folder", NN_x/) when that folder has .py files,
    else ("notebook", the NN_x.ipynb), else ("missing", None)."""
    code = folder / slug
    if code.is_dir() and any(p.is_file() for p in code.glob("*.py")):
        return job.FOLDER, code
    for notebook in (code / f"{slug}.ipynb", folder / f"{slug}.ipynb"):
        if notebook.is_file() and not notebook.is_symlink():
            return job.NOTEBOOK, notebook
    return job.MISSING, None


def unpack(archive: Path, dest: Path) -> Path:
    """Unpack a student's zip into `dest` (replaced), refusing unsafe members."""
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            if len(members) > MAX_MEMBERS:
                raise SubmissionError(f"{archive.name}: {len(members)} files (at most {MAX_MEMBERS})")
            if sum(m.file_size for m in members) > MAX_UNPACKED:
                raise SubmissionError(f"{archive.name}: unpacks to more than {MAX_UNPACKED // 2**20} MB")
            for m in members:
                parts = Path(m.filename.replace("\\", "/")).parts
                mode = m.external_attr >> 16
                if m.filename.startswith(("/", "\\")) or ".." in parts or (parts and ":" in parts[0]):
                    raise SubmissionError(f"{archive.name}: unsafe path in the archive: {m.filename!r}")
                if stat.S_ISLNK(mode):
                    raise SubmissionError(f"{archive.name}: the archive holds a link: {m.filename!r}")
            if dest.exists():
                shutil.rmtree(dest)
            dest.mkdir(parents=True)
            for m in members:
                if m.is_dir() or "__MACOSX" in m.filename:
                    continue
                target = dest.joinpath(*Path(m.filename.replace("\\", "/")).parts)
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(m) as src, open(target, "wb") as out:
                    shutil.copyfileobj(src, out)
    except zipfile.BadZipFile:
        raise SubmissionError(f"{archive.name}: not a valid zip file") from None
    return dest


def topic_hash(folder: Path) -> str:
    """A content hash of one submitted topic folder (file names and bytes) or notebook,
    "missing" if absent."""
    if folder.is_file():
        return hashlib.sha256(folder.read_bytes()).hexdigest()
    if not folder.is_dir():
        return "missing"
    h = hashlib.sha256()
    for path in sorted(folder.rglob("*")):
        if path.is_file() and "__pycache__" not in path.parts and not path.is_symlink():
            h.update(path.relative_to(folder).as_posix().encode() + b"\0")
            h.update(hashlib.sha256(path.read_bytes()).digest())
    return h.hexdigest()


def graders_hash(topic: topics.Topic) -> str:
    """A content hash of the topic's graders, reference data and chapter source: a result
    graded by other graders is not reused."""
    from llmlab.course import paths
    h = hashlib.sha256()
    for folder in (topic.graders, paths.reference_dir() / topic.slug, paths.root() / "notebooks" / f"{topic.slug}.py"):
        h.update(topic_hash(folder).encode())
    return h.hexdigest()[:16]
