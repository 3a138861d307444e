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
import json
import shutil
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmlab.course import topics


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


def judge_all(topic: topics.Topic, items: list[Mutant | Variant]) -> list[Verdict]:
    """Judge every item in one worker process (graders imported once; each item's code is
    loaded fresh from its own folder), which is many times faster than a process per item."""
    muts, variants = catalogue(topic)
    full = muts + variants
    cmd = [sys.executable, "-m", "llmlab.authoring.mutants", topic.slug, *[str(full.index(item)) for item in items]]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=topic.graders.parent.parent, timeout=1800)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    verdicts = [Verdict(**json.loads(line)) for line in lines]
    if len(verdicts) != len(items):
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-10:])
        raise CatalogueError(f"{topic.slug}: the mutant worker stopped after {len(verdicts)} of {len(items)} items:\n{tail}")
    return verdicts


def judge(topic: topics.Topic, item: Mutant | Variant) -> Verdict:
    """Apply one item to a copy of the reference and run the graders on it (in this process)."""
    from llmlab.course import loader
    from llmlab.grading.inprocess import run_tests

    is_mutant = isinstance(item, Mutant)
    with tempfile.TemporaryDirectory(prefix="llmlab-mutant-") as tmp:
        folder = apply(topic, item.edits(), Path(tmp))
        try:
            impl = loader.load(topic, folder)
            results = run_tests(topic, impl, stop_first=is_mutant and not item.message)
        except loader.ImplementationError as exc:
            results = {"(import)": ("failed", str(exc))}
    failed = {name: msg for name, (outcome, msg) in results.items() if outcome not in ("passed", "skipped")}
    if is_mutant:
        named = not item.message or any(item.message in msg for msg in failed.values())
        if failed and not named:
            detail = f"caught, but no failure message names it ({item.message!r})"
        else:
            detail = ", ".join(list(failed)[:4]) or "every test passed"
        return Verdict(item.name, "mutant", bool(failed) and named, detail)
    return Verdict(item.name, "variant", not failed, "; ".join(f"{n}: {m.splitlines()[0] if m else ''}"
                                                              for n, m in list(failed.items())[:3]))


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
        try:
            verdicts = judge_all(topic, items)
        except CatalogueError as exc:
            console.print(f"[red]{exc}[/red]")
            bad += 1
            continue
        for item in items:
            verdict = verdicts[items.index(item)]
            bad += not verdict.ok
            label = ("caught" if verdict.ok else "[red]SURVIVED[/red]") if verdict.kind == "mutant" \
                else ("accepted" if verdict.ok else "[red]REJECTED[/red]")
            table.add_row(verdict.kind, verdict.name, label, verdict.detail)
        console.print(table)
    console.print("all mutants caught, all variants accepted" if not bad else f"[red]{bad} problems[/red]")
    return 1 if bad else 0


def _worker(argv: list[str]) -> None:
    """`python -m llmlab.authoring.mutants TOPIC I J ...`: judge catalogue items I, J... (mutants first,
    then variants), printing one JSON verdict per line."""
    topic = topics.resolve(argv[0])
    muts, variants = catalogue(topic)
    items = muts + variants
    for index in argv[1:]:
        item = items[int(index)]
        try:
            verdict = judge(topic, item)
        except CatalogueError as exc:
            verdict = Verdict(item.name, "mutant" if isinstance(item, Mutant) else "variant", False, str(exc))
        print(json.dumps(asdict(verdict)), flush=True)


if __name__ == "__main__":
    # Run the worker of the imported module, not of __main__: catalogues import
    # llmlab.authoring.mutants, and their Mutant class must be the one isinstance checks against.
    from llmlab.authoring.mutants import _worker as worker

    worker(sys.argv[1:])
