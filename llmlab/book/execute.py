"""Execute instructor notebooks headless on CPU (nbclient), each within its time budget."""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat

from llmlab.course import costs

BUDGET_S = 180  # DESIGN.md: each chapter executes in under 3 minutes on CPU


class ExecutionError(Exception):
    pass


MARKERS = ("### BEGIN SOLUTION", "### END SOLUTION", "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS")


def without_markers(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The executed notebook as a reader sees it: nbgrader's marker lines removed (the
    code between them stays; the cells keep their outputs and metadata)."""
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.source = "\n".join(line for line in cell.source.split("\n") if line.strip() not in MARKERS)
    return nb


def kernel_config(workdir: str):
    """Kernels talk to us over local IPC sockets in `workdir`, not TCP: nothing listens on
    the network, and the kernel's "running over TCP without encryption" warning, which
    students would read, does not arise."""
    from traitlets.config import Config

    config = Config()
    config.KernelManager.transport = "ipc"
    config.KernelManager.ip = str(Path(workdir) / "kernel")
    return config


def execute(notebook: Path, out: Path, budget: float = BUDGET_S) -> float:
    """Run every cell; write the executed notebook to OUT; return the seconds it took.

    Raises ExecutionError naming the failing cell, or when the budget is exceeded."""
    from nbclient import NotebookClient
    from nbclient.exceptions import CellExecutionError, CellTimeoutError

    nb = nbformat.read(notebook, as_version=4)
    os.environ["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures become outputs
    bindir = str(Path(sys.executable).parent)
    os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    start = time.monotonic()
    try:
        with tempfile.TemporaryDirectory(prefix="llmlab-run-") as workdir:  # files a chapter writes go here
            client = NotebookClient(nb, timeout=int(budget), kernel_name="python3", config=kernel_config(workdir),
                                    resources={"metadata": {"path": workdir}})
            client.execute()
    except CellTimeoutError as exc:
        raise ExecutionError(f"{notebook.name}: a cell ran past {budget:g} s: {str(exc)[:300]}") from None
    except CellExecutionError as exc:
        raise ExecutionError(f"{notebook.name}: a cell failed:\n{str(exc)[-2000:]}") from None
    seconds = time.monotonic() - start
    out.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(without_markers(nb), out)
    if seconds > budget:
        raise ExecutionError(f"{notebook.name}: took {seconds:.0f} s, over its {budget:g} s budget")
    return seconds


def _execute_one(job: tuple[Path, Path, float, int | None]) -> tuple[Path, float | None, str]:
    notebook, out, budget, threads = job
    if threads:  # the kernel inherits this process's environment
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
    try:
        return notebook, execute(notebook, out, budget), ""
    except ExecutionError as exc:
        return notebook, None, str(exc)


def execute_many(jobs: list[tuple[Path, Path]], budget: float = BUDGET_S, workers: int = 2):
    """Execute several notebooks, `workers` at a time (each kernel is its own process, with
    its share of the cores as its thread count). Yields (notebook, seconds or None, error
    message) in the order given."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=max(1, workers)) as pool:
        threads = max(1, (os.cpu_count() or 1) // workers) if workers > 1 else None
        for notebook, seconds, error in pool.map(_execute_one, [(src, out, budget, threads) for src, out in jobs]):
            if seconds is not None:
                costs.record(notebook.stem, seconds)
            yield notebook, seconds, error
