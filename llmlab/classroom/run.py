"""The class's job queue: every (submission, topic) graded as one job (job.py: the
per-topic child process for code, nbgrader for a notebook).

Work already in the database with the same content hash is skipped, so the same command
resumes an interrupted run and re-grades only re-submitted topics. The children run
`jobs` at a time (threads here, each waiting on its own child process, which does the
work); only this process writes results, each as it arrives.

Each job works in a private folder under OUT/.staging and is told (through the grading
sandbox) that the SUBMISSIONS folder and OUT are off limits, its own folder excepted: a
submission cannot read, change or fake another's results.
"""

from __future__ import annotations

import shutil
import tempfile
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from llmlab.classroom import job
from llmlab.classroom import submissions as subs
from llmlab.classroom.store import Store
from llmlab.course import paths, topics
from llmlab.grading import grade, limits


@dataclass
class Summary:
    out: Path
    students: list[str]
    topics: list[str]
    graded: list[tuple[str, str]] = field(default_factory=list)   # graded by this run
    skipped: list[tuple[str, str]] = field(default_factory=list)  # unchanged since an earlier run
    missing: list[tuple[str, str]] = field(default_factory=list)  # no topic folder submitted


def grade_class(root: Path, out: Path, selected: list[topics.Topic], jobs: int = 1, time_limit: float = 300,
                memory_mb: int = 6144, test_timeout: float = 60, console=None,
                on_result: Callable[[str, str, dict], None] | None = None, scheduler=None) -> Summary:
    """Grade every submission in `root` on the selected topics into `out` (see the module doc).
    `on_result(student, topic, entry)` is called after each result is stored. With `scheduler`
    (a Dask scheduler address, or a cluster object), the gradings run on that Dask cluster
    (llmlab.classroom.cluster) instead of `jobs` local threads."""
    root, out = Path(root).expanduser().resolve(), Path(out).expanduser().resolve()
    if out == root or out.is_relative_to(root):
        raise subs.SubmissionError(f"the output folder {out} must not be inside the submissions folder {root}")
    out.mkdir(parents=True, exist_ok=True)
    found = subs.discover(root, out / "unpacked", selected)
    dask = None
    if scheduler is not None:  # reach the cluster first: a wrong address fails before any work
        from llmlab.classroom import cluster
        dask = cluster.client(scheduler)
    try:
        return _grade(root, out, selected, found, jobs, time_limit, memory_mb, test_timeout, console, on_result, dask)
    finally:
        if dask is not None:
            dask.close()


def _grade(root, out, selected, found, jobs, time_limit, memory_mb, test_timeout, console, on_result,
           dask) -> Summary:
    summary = Summary(out, [s.student for s in found], [t.slug for t in selected])
    protected = grade.ProtectedFiles([paths.graders_dir(), paths.reference_dir()])

    with Store(out) as store:
        known = store.hashes()
        todo, fresh = [], []
        graders = {t.slug: subs.graders_hash(t) for t in selected}  # new graders: everything is graded again
        for sub in found:
            for topic in selected:
                kind, source = subs.topic_source(sub.folder, topic.slug)
                digest = f"{kind}:{subs.topic_hash(source) if source else ''}:{graders[topic.slug]}"
                if known.get((sub.student, topic.slug)) == digest:
                    summary.skipped.append((sub.student, topic.slug))
                else:
                    fresh.append((sub, topic, kind, source, digest))
        collected = grade.collect(selected) if fresh else {}
        for sub, topic, kind, source, digest in fresh:
            if kind == job.MISSING:
                detail = f"no {topic.slug}/ folder or {topic.slug}.ipynb notebook in this submission"
                store.put(sub.student, topic.slug, digest,
                          job.failed_entry(topic, collected[topic.slug], "missing", detail))
                summary.missing.append((sub.student, topic.slug))
            else:
                todo.append((sub, topic, kind, source, digest))
        built = _build_chapters(out, {topic.slug for _, topic, kind, _, _ in todo if kind == job.NOTEBOOK})

        live: set = set()  # the grading children now running, stopped at once on an interruption
        sockets = Path(tempfile.mkdtemp(prefix="llmlab-class-"))  # short paths: kernels' local sockets
        private = [root, out, sockets]  # no job may read or change these, its own working folders excepted

        def one(sub: subs.Submission, topic: topics.Topic, kind: str, source: Path) -> dict:
            return job.run(kind, topic, source, collected[topic.slug], out / ".staging" / sub.student / topic.slug,
                           private, sockets, built, time_limit, memory_mb, test_timeout, on_start=live.add)

        pending: dict = {}

        def stop_all() -> None:
            for future in pending:
                future.cancel()
            for proc in list(live):
                if proc.poll() is None:
                    limits.kill_tree(proc)

        progress = _progress(console, len(todo), len(summary.skipped))

        def store_one(sub, topic, digest, entry) -> None:
            changed = protected.changes()
            if changed:
                raise grade.GradeError(f"{', '.join(changed[:3])} changed during grading; results from "
                                       f"then on were not stored. Restore them (`git checkout graders "
                                       f"reference`) and run the same command again to resume.")
            store.put(sub.student, topic.slug, digest, entry)
            summary.graded.append((sub.student, topic.slug))
            if progress:
                progress.advance(sub.student, topic.slug, entry)
            if on_result:
                on_result(sub.student, topic.slug, entry)

        try:
            if dask is not None:
                _on_cluster(dask, todo, collected, time_limit, memory_mb, test_timeout, [root, out], store_one)
                return summary
            pool = ThreadPoolExecutor(max_workers=max(1, jobs))
            try:
                pending = {pool.submit(one, sub, topic, kind, source): (sub, topic, digest)
                           for sub, topic, kind, source, digest in todo}
                while pending:
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for future in done:
                        sub, topic, digest = pending.pop(future)
                        store_one(sub, topic, digest, future.result())
            except BaseException:
                stop_all()  # Ctrl-C, a failed write: what was stored stays; the rest is graded on the next run
                raise
            finally:
                pool.shutdown(wait=True, cancel_futures=True)
        finally:
            shutil.rmtree(sockets, ignore_errors=True)
            if progress:
                progress.stop()
    return summary


def _build_chapters(out: Path, slugs: set[str]) -> Path | None:
    """The instructor notebooks of the topics with submitted notebooks, built into OUT/.chapters."""
    if not slugs:
        return None
    from llmlab.book import chapters
    missing = sorted(s for s in slugs if s not in chapters.chapter_sources())
    if missing:
        raise subs.SubmissionError(f"notebooks were submitted for {', '.join(missing)}, which has no chapter "
                                   f"(notebooks/NN_topic.py); submit its NN_topic/ folder of code instead")
    built = out / ".chapters"
    chapters.build(sorted(slugs), built)
    return built


def _on_cluster(client, todo, collected, time_limit, memory_mb, test_timeout, private, store_one) -> None:
    """Submit every grading to the Dask cluster; store each result as it comes back. `private`:
    this machine's folders the tasks may not touch (SUBMISSIONS and OUT)."""
    from distributed import as_completed

    from llmlab.classroom import cluster
    futures = {}
    for sub, topic, kind, source, digest in todo:
        future = client.submit(cluster.grade_task, kind, cluster.pack(source), topic.slug,
                               collected[topic.slug], digest.rpartition(":")[2], time_limit, memory_mb,
                               test_timeout, [str(p) for p in private], pure=False, retries=2,
                               key=f"grade-{sub.student}-{topic.slug}")
        futures[future] = (sub, topic, digest)
    try:
        for future in as_completed(list(futures)):
            sub, topic, digest = futures[future]
            store_one(sub, topic, digest, future.result())
    except BaseException:
        client.cancel(list(futures))
        raise


class _Bar:
    """A rich progress bar with a running count of results."""

    def __init__(self, console, total: int, skipped: int):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
        self.full = self.failed = 0
        self.skipped = skipped
        self.progress = Progress(TextColumn("grading"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                                 TextColumn("{task.description}"), console=console, transient=False)
        self.task = self.progress.add_task(self._text(), total=total)
        self.progress.start()

    def _text(self) -> str:
        return f"full marks {self.full} · not ok {self.failed} · unchanged (skipped) {self.skipped}"

    def advance(self, student: str, topic: str, entry: dict) -> None:
        if entry["status"] != "ok":
            self.failed += 1
        elif entry["score"] >= entry["max_score"]:
            self.full += 1
        self.progress.update(self.task, advance=1, description=self._text())

    def stop(self) -> None:
        self.progress.stop()


def _progress(console, total: int, skipped: int):
    return _Bar(console, total, skipped) if console is not None else None
