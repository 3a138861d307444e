"""Mutant catalogues and correct variants: proof that graders reject wrong code and accept
right code written differently.

`graders/NN_x/mutants.py` (instructor-only; not in student bundles) defines

    MUTANTS = [Mutant("causal mask hides the diagonal", "attention.py",
                      find="torch.triu(ones, diagonal=1)", replace="torch.triu(ones, diagonal=0)",
                      message="hides the diagonal"), ...]
    VARIANTS = [Variant("softmax via logsumexp", "attention.py", find=..., replace=...), ...]

A mutant or variant is the reference solution with one textual edit (`find` must occur
exactly once in the file; several edits can be chained with `also`). `llmlab mutants`
applies each to a copy of solutions/NN_x and runs the topic's graders on it: every
mutant must fail at least one test (when `message` is given, some failure message must
contain it — that proves the grader names the mistake); every variant must pass all tests.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from llmlab import topics


@dataclass(frozen=True)
class Edit:
    file: str
    find: str
    replace: str


@dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    find: str
    replace: str
    message: str | None = None          # a substring some failure message must contain
    also: tuple[Edit, ...] = field(default=())

    def edits(self) -> list[Edit]:
        return [Edit(self.file, self.find, self.replace), *self.also]


@dataclass(frozen=True)
class Variant:
    name: str
    file: str
    find: str
    replace: str
    also: tuple[Edit, ...] = field(default=())

    def edits(self) -> list[Edit]:
        return [Edit(self.file, self.find, self.replace), *self.also]


class CatalogueError(Exception):
    pass


def catalogue(topic: topics.Topic) -> tuple[list[Mutant], list[Variant]]:
    path = topic.graders / "mutants.py"
    if not path.exists():
        return [], []
    spec = importlib.util.spec_from_file_location(f"llmlab_mutants_{topic.slug}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return list(getattr(module, "MUTANTS", [])), list(getattr(module, "VARIANTS", []))


def apply(topic: topics.Topic, edits: list[Edit], dest: Path) -> Path:
    """Copy solutions/NN_x into dest/NN_x and apply the edits there."""
    folder = dest / topic.slug
    shutil.copytree(topic.solutions, folder, ignore=shutil.ignore_patterns("__pycache__"))
    for edit in edits:
        path = folder / edit.file
        text = path.read_text()
        count = text.count(edit.find)
        if count != 1:
            raise CatalogueError(f"{topic.slug}: {edit.file}: the text to replace occurs {count} times "
                                 f"(must be exactly once): {edit.find[:80]!r}")
        path.write_text(text.replace(edit.find, edit.replace))
    return folder


@dataclass
class Verdict:
    name: str
    kind: str             # "mutant" | "variant"
    ok: bool              # mutant caught / variant accepted
    detail: str           # the failing tests (mutant) or why it was rejected (variant)


def run_pytest(topic: topics.Topic, folder: Path, stop_first: bool, timeout: float = 300) -> tuple[int, str]:
    cmd = [sys.executable, "-m", "pytest", str(topic.graders), "--impl", str(folder), "--runslow",
           "-q", "-p", "no:randomly", "--no-header", "-rf"]
    if stop_first:
        cmd.append("-x")
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=topic.graders.parent.parent)
    except subprocess.TimeoutExpired:
        return 124, "timed out"
    return proc.returncode, proc.stdout + proc.stderr


def judge(topic: topics.Topic, item: Mutant | Variant) -> Verdict:
    with tempfile.TemporaryDirectory(prefix="llmlab-mutant-") as tmp:
        folder = apply(topic, item.edits(), Path(tmp))
        is_mutant = isinstance(item, Mutant)
        # A mutant that names its message runs every test, so the message can be searched.
        code, output = run_pytest(topic, folder, stop_first=is_mutant and not item.message)
    failed = [line[len("FAILED "):].split(" - ")[0] for line in output.splitlines() if line.startswith("FAILED ")]
    if isinstance(item, Mutant):
        caught = code != 0 and (not item.message or item.message in output)
        if code != 0 and item.message and item.message not in output:
            detail = f"caught, but no failure message names it ({item.message!r})"
        else:
            detail = ", ".join(t.split("::")[-1] for t in failed[:4]) or _tail(output)
        return Verdict(item.name, "mutant", caught, detail)
    return Verdict(item.name, "variant", code == 0, "" if code == 0 else (", ".join(failed[:4]) or _tail(output)))


def _tail(output: str) -> str:
    lines = [line for line in output.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def main(selected: list[topics.Topic], console, variants_only: bool = False, mutants_only: bool = False) -> int:
    """Run the catalogues of the selected topics; print a kill matrix; 1 if anything is off."""
    from rich.table import Table

    bad = 0
    for topic in selected:
        try:
            muts, variants = catalogue(topic)
        except Exception as exc:  # a broken catalogue file is a maintainer error, reported plainly
            console.print(f"[red]{topic.slug}: cannot load graders/{topic.slug}/mutants.py: {exc}[/red]")
            bad += 1
            continue
        items = ([] if variants_only else muts) + ([] if mutants_only else variants)
        if not items:
            continue
        table = Table(title=f"{topic.slug}: {len(muts)} mutants, {len(variants)} correct variants")
        table.add_column("kind")
        table.add_column("name")
        table.add_column("verdict")
        table.add_column("evidence", overflow="fold")
        for item in items:
            try:
                verdict = judge(topic, item)
            except CatalogueError as exc:
                verdict = Verdict(item.name, "mutant" if isinstance(item, Mutant) else "variant", False, str(exc))
            bad += not verdict.ok
            label = ("caught" if verdict.ok else "[red]SURVIVED[/red]") if verdict.kind == "mutant" \
                else ("accepted" if verdict.ok else "[red]REJECTED[/red]")
            table.add_row(verdict.kind, verdict.name, label, verdict.detail)
        console.print(table)
    console.print("all mutants caught, all variants accepted" if not bad else f"[red]{bad} problems[/red]")
    return 1 if bad else 0
