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
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmlab.course import costs, topics


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


ITEM_TIMEOUT_S = 180  # one item's graders; a mutant that loops past every test's own limit


def _as_json(item: Mutant | Variant) -> dict:
    return {"name": item.name, "kind": "mutant" if isinstance(item, Mutant) else "variant",
            "message": getattr(item, "message", None), "edits": [asdict(e) for e in item.edits()]}


def judge_all(topic: topics.Topic, items: list[Mutant | Variant], test_timeout: float | None = None) -> list[Verdict]:
    """Judge every item in one worker process (graders imported once; each item's code is
    loaded fresh from its own folder), which is many times faster than a process per item.

    A worker silent for ITEM_TIMEOUT_S is killed: its current item is judged by that
    (a mutant caught by the time limit, a variant rejected) and a new worker takes the rest."""
    start = time.monotonic()
    specs = [_as_json(item) for item in items]
    verdicts: list[Verdict] = []
    while len(verdicts) < len(specs):
        rest = specs[len(verdicts):]
        with tempfile.NamedTemporaryFile("w", suffix=".json", delete=False) as handle:
            json.dump({"topic": topic.slug, "items": rest, "test_timeout": test_timeout}, handle)
        try:
            verdicts.extend(_run_worker(topic, Path(handle.name), rest))
        finally:
            Path(handle.name).unlink()
    costs.record(topic.slug, time.monotonic() - start)
    return verdicts


def _run_worker(topic: topics.Topic, spec_file: Path, specs: list[dict]) -> list[Verdict]:
    """Verdicts from one worker, up to and including the item it hung on (if any)."""
    import queue
    import threading

    cmd = [sys.executable, "-m", "llmlab.authoring.mutants", str(spec_file)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            cwd=topic.graders.parent.parent)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout] + [lines.put(None)], daemon=True).start()
    verdicts: list[Verdict] = []
    other: list[str] = []
    while len(verdicts) < len(specs):
        try:
            line = lines.get(timeout=ITEM_TIMEOUT_S)
        except queue.Empty:
            proc.kill()
            spec = specs[len(verdicts)]
            caught = spec["kind"] == "mutant"
            verdicts.append(Verdict(spec["name"], spec["kind"], caught,
                                    f"the graders ran past {ITEM_TIMEOUT_S} s (killed)"))
            return verdicts
        if line is None:
            break
        if line.startswith("{"):
            verdicts.append(Verdict(**json.loads(line)))
        else:
            other.append(line.rstrip())
    proc.wait()
    if len(verdicts) < len(specs):
        tail = "\n".join(other[-10:])
        raise CatalogueError(f"{topic.slug}: the mutant worker stopped after {len(verdicts)} of {len(specs)} items:\n{tail}")
    return verdicts


def _words(name: str) -> set[str]:
    """'MultiHeadAttention.forward' -> {'multiheadattention', 'multi', 'attention', 'forward'}:
    the whole names and the first and last words, lower case."""
    found = set()
    for part in name.split("."):
        words = [w.lower() for w in re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", part)]
        found |= {part.lower().replace("_", "")} | ({words[0], words[-1]} if words else set())
    return {w for w in found if len(w) > 2}


def tests_of_edited_units(topic: topics.Topic, edits: list[Edit]) -> list[str]:
    """The grader tests whose names mention a unit an edit falls in (`test_layernorm_*` for
    an edit inside LayerNorm.forward): where a mistake is most likely caught first."""
    from llmlab.authoring.sync import units_by_line
    from llmlab.grading.inprocess import grader_locations

    keys: set[str] = set()
    for edit in edits:
        path = topic.solutions / edit.file
        source = path.read_text()
        at = source.find(edit.find)
        if at >= 0:
            unit = units_by_line(source, path).get(source.count("\n", 0, at) + 1)
            keys |= _words(unit) if unit else set()
    return [t for t in grader_locations(topic) if any(k in t[len("test_"):].replace("_", "") for k in keys)]


def judge(topic: topics.Topic, spec: dict, test_timeout: float | None = None) -> Verdict:
    """Apply one item to a copy of the reference and run the graders on it (in this process).

    A mutant's run ends at the first failure that names it (or at the first failure when it
    requires no message); a variant's at its first failure. The tests of the edited units
    run first; the others only when those did not settle the verdict."""
    from llmlab.course import loader
    from llmlab.grading.inprocess import grader_locations, run_tests

    is_mutant = spec["kind"] == "mutant"
    message = spec.get("message")
    stop_on = (lambda m: message in m) if is_mutant and message else (lambda m: True)
    edits = [Edit(**e) for e in spec["edits"]]
    first = tests_of_edited_units(topic, edits)
    with tempfile.TemporaryDirectory(prefix="llmlab-mutant-") as tmp:
        folder = apply(topic, edits, Path(tmp))
        try:
            impl = loader.load(topic, folder)
            results = run_tests(topic, impl, first, stop_on=stop_on, timeout=test_timeout) if first else {}
            settled = any(outcome not in ("passed", "skipped") and stop_on(msg) for outcome, msg in results.values())
            if not settled:
                rest = [t for t in grader_locations(topic) if t not in results]
                if rest:
                    results.update(run_tests(topic, impl, rest, stop_on=stop_on, timeout=test_timeout))
        except loader.ImplementationError as exc:
            results = {"(import)": ("failed", str(exc))}
    failed = {name: msg for name, (outcome, msg) in results.items() if outcome not in ("passed", "skipped")}
    if is_mutant:
        named = not message or any(message in msg for msg in failed.values())
        if failed and not named:
            detail = f"caught, but no failure message names it ({message!r})"
        else:
            detail = ", ".join(list(failed)[:4]) or "every test passed"
        return Verdict(spec["name"], "mutant", bool(failed) and named, detail)
    return Verdict(spec["name"], "variant", not failed, "; ".join(f"{n}: {m.splitlines()[0] if m else ''}"
                                                                  for n, m in list(failed.items())[:3]))


def main(selected: list[topics.Topic], console, variants_only: bool = False, mutants_only: bool = False,
         jobs: int = 2) -> int:
    """Run the catalogues of the selected topics (`jobs` topics at a time, each in its own
    worker); print a kill matrix per topic; 1 if anything is off."""
    from concurrent.futures import ThreadPoolExecutor

    from rich.table import Table

    bad = 0
    work = []
    for topic in selected:
        try:
            muts, variants = catalogue(topic)
        except Exception as exc:  # a broken catalogue file is a maintainer error, reported plainly
            console.print(f"[red]{topic.slug}: cannot load graders/{topic.slug}/mutants.py: {exc}[/red]")
            bad += 1
            continue
        items = ([] if variants_only else muts) + ([] if mutants_only else variants)
        if items:
            work.append((topic, muts, variants, items))
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        futures = [pool.submit(judge_all, topic, items) for topic, _, _, items in work]
        for (topic, muts, variants, items), future in zip(work, futures):
            try:
                verdicts = future.result()
            except CatalogueError as exc:
                console.print(f"[red]{exc}[/red]")
                bad += 1
                continue
            table = Table(title=f"{topic.slug}: {len(muts)} mutants, {len(variants)} correct variants")
            for column in ("kind", "name", "verdict"):
                table.add_column(column)
            table.add_column("evidence", overflow="fold")
            for verdict in verdicts:
                bad += not verdict.ok
                label = ("caught" if verdict.ok else "[red]SURVIVED[/red]") if verdict.kind == "mutant" \
                    else ("accepted" if verdict.ok else "[red]REJECTED[/red]")
                table.add_row(verdict.kind, verdict.name, label, verdict.detail)
            console.print(table)
    console.print("all mutants caught, all variants accepted" if not bad else f"[red]{bad} problems[/red]")
    return 1 if bad else 0


def _worker(spec_file: str) -> None:
    """`python -m llmlab.authoring.mutants SPEC.json`: judge the items of SPEC.json in order,
    printing one JSON verdict per line."""
    spec = json.loads(Path(spec_file).read_text())
    topic = topics.resolve(spec["topic"])
    for item in spec["items"]:
        try:
            verdict = judge(topic, item, spec.get("test_timeout"))
        except CatalogueError as exc:
            verdict = Verdict(item["name"], item["kind"], False, str(exc))
        print(json.dumps(asdict(verdict)), flush=True)


if __name__ == "__main__":
    _worker(sys.argv[1])
