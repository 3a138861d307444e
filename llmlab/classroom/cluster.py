"""Past one machine: `llmlab grade-class --scheduler ADDRESS` runs the gradings on a Dask
distributed cluster (https://distributed.dask.org) instead of local threads.

Each task carries one submitted topic folder or notebook as bytes (workers need not share a
file system with the instructor's machine), writes it into a private folder on the worker
and runs the same job (job.py) with the same guards. Workers
must run the same course checkout: a task refuses to grade when the worker's graders and
reference data differ from the submitting machine's. Results come back to the submitting
process, the only writer of the database. A worker that dies mid-task (killed, out of
memory) loses only its running tasks, which the scheduler runs again on another worker.
"""

from __future__ import annotations

import tempfile
from pathlib import Path


class ClusterError(Exception):
    pass


def pack(source: Path) -> dict[str, bytes]:
    """The submitted topic folder's files (no __pycache__, no links) or notebook, as
    {relative path: bytes}."""
    if source.is_file():
        return {source.name: source.read_bytes()}
    return {p.relative_to(source).as_posix(): p.read_bytes() for p in sorted(source.rglob("*"))
            if p.is_file() and not p.is_symlink() and "__pycache__" not in p.parts}


def grade_task(kind: str, files: dict[str, bytes], slug: str, tests: list[dict], graders: str, time_limit: float,
               memory_mb: int, test_timeout: float, private: list[str]) -> dict:
    """Runs on a worker: unpack one submitted topic folder or notebook privately and grade it.
    `private`: the submitting machine's SUBMISSIONS and OUT folders, off limits too (a worker
    may run on that machine)."""
    from llmlab.book import chapters
    from llmlab.course import topics
    from llmlab.classroom import job, submissions
    topic = topics.resolve(slug)
    if submissions.graders_hash(topic) != graders:
        raise ClusterError(f"this worker's graders of {slug} differ from the submitting machine's: run the "
                           f"workers on the same course checkout")
    tasks = Path(tempfile.gettempdir()) / "llmlab-class-tasks"  # every task's folder: off limits to the others
    tasks.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="task-", dir=tasks) as tmp:
        inbox = Path(tmp) / "submission"
        for name, data in files.items():
            target = inbox.joinpath(*Path(name).parts)
            if not target.resolve().is_relative_to(inbox.resolve()):
                raise ClusterError(f"unsafe file name in the submission: {name!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        built = None
        if kind == job.NOTEBOOK:
            built = Path(tmp) / "chapters"
            chapters.build([slug], built)
        source = next(inbox.iterdir()) if kind == job.NOTEBOOK else inbox
        return job.run(kind, topic, source, tests, Path(tmp) / "work", [tasks, *map(Path, private)], tasks, built,
                       time_limit, memory_mb, test_timeout)


def client(address):
    """A distributed.Client for `address` (a scheduler address, or a Cluster object in tests)."""
    try:
        from distributed import Client
    except ImportError:
        raise ClusterError("--scheduler needs Dask distributed: pip install 'distributed'") from None
    try:
        return Client(address, timeout=30)
    except (OSError, TimeoutError) as exc:
        raise ClusterError(f"cannot reach the Dask scheduler at {address}: {exc}") from None
