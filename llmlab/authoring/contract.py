"""The topic contract (CI gate 7): a registered topic is complete, or CI says what is missing.

Every topic under graders/ must have
- its solution (`solutions/NN_x/*.py` with at least one solution region),
- its skeleton (`exercises/NN_x/`, one file per solution file, and the pytest entry),
- public graders and hidden graders (`graders/NN_x/test_*.py`, `test_*_hidden.py`),
- reference data (`graders/NN_x/fixtures.py` and `reference/NN_x/manifest.json`),
- a mutant catalogue of at least MIN_MUTANTS mutants and MIN_VARIANTS correct variants,
- a chapter (`notebooks/NN_x.py`),
- and full branch coverage of its solution regions by its *public* graders run on the
  reference (coverage.py, branch mode). A line or branch may be excluded with
  `# pragma: no cover` / `# pragma: no branch` only when a reason follows the pragma
  (`# pragma: no branch - the loop always runs at least once`).

`llmlab contract [TOPIC…]` runs it; coverage runs each topic in its own process, two at a
time.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from llmlab.authoring import mutants
from llmlab.authoring.sync import BEGIN, solution_lines
from llmlab.course import costs, loader, paths, topics

MIN_MUTANTS = 10
MIN_VARIANTS = 3
_PRAGMA = re.compile(r"#\s*pragma:\s*no\s*(cover|branch)\b(.*)$")


def missing_parts(topic: topics.Topic) -> list[str]:
    """What the topic lacks, one line each (empty when complete; coverage not included)."""
    problems = []
    solution_files = sorted(topic.solutions.glob("*.py"))
    if not solution_files:
        problems.append(f"no solution: solutions/{topic.slug}/*.py")
    elif not any(BEGIN in p.read_text() for p in solution_files):
        problems.append(f"no solution region ({BEGIN}) in solutions/{topic.slug}/")
    for path in solution_files:
        if not (topic.exercises / path.name).exists():
            problems.append(f"no skeleton exercises/{topic.slug}/{path.name} (run `llmlab sync {topic.slug}`)")
    if not (topic.exercises / f"test_{topic.slug}.py").exists():
        problems.append(f"no pytest entry exercises/{topic.slug}/test_{topic.slug}.py (run `llmlab sync {topic.slug}`)")
    graders = sorted(topic.graders.glob("test_*.py"))
    if not [p for p in graders if not p.stem.endswith("_hidden")]:
        problems.append(f"no public graders: graders/{topic.slug}/test_*.py")
    if not [p for p in graders if p.stem.endswith("_hidden")]:
        problems.append(f"no hidden graders: graders/{topic.slug}/test_*_hidden.py")
    if not (topic.graders / "fixtures.py").exists():
        problems.append(f"no reference data generator: graders/{topic.slug}/fixtures.py")
    if not (topic.reference / "manifest.json").exists():
        problems.append(f"no reference data: reference/{topic.slug}/manifest.json (run `llmlab fixtures {topic.slug}`)")
    try:
        muts, variants = mutants.catalogue(topic)
    except Exception as exc:  # a broken catalogue is reported, not raised
        problems.append(f"graders/{topic.slug}/mutants.py does not load: {exc}")
    else:
        if len(muts) < MIN_MUTANTS:
            problems.append(f"mutant catalogue: {len(muts)} mutants in graders/{topic.slug}/mutants.py, "
                            f"at least {MIN_MUTANTS} required")
        if len(variants) < MIN_VARIANTS:
            problems.append(f"correct variants: {len(variants)} in graders/{topic.slug}/mutants.py, "
                            f"at least {MIN_VARIANTS} required")
    if not (paths.root() / "notebooks" / f"{topic.slug}.py").exists():
        problems.append(f"no chapter: notebooks/{topic.slug}.py")
    problems.extend(_unexplained_pragmas(solution_files))
    return problems


def _unexplained_pragmas(files: list[Path]) -> list[str]:
    problems = []
    for path in files:
        for number, line in enumerate(path.read_text().splitlines(), start=1):
            match = _PRAGMA.search(line)
            if match and len(match.group(2).strip(" -:—")) < 10:
                problems.append(f"{path.relative_to(paths.root())}:{number}: a coverage exclusion without its reason "
                                f"(write `# pragma: no {match.group(1)} - why it cannot be reached`)")
    return problems


def measure_coverage(topic: topics.Topic) -> dict:
    """Run the public graders on solutions/ under branch coverage, in this process.

    Returns {"lines": n, "missing": ["file.py:LINE ...", ...]} for the solution regions."""
    import coverage

    from llmlab.grading.inprocess import run_tests

    files = sorted(topic.solutions.glob("*.py"))
    cov = coverage.Coverage(branch=True, data_file=None, include=[str(p.resolve()) for p in files])
    cov.start()
    try:
        impl = loader.load(topic, "solutions")
        results = run_tests(topic, impl, public_only=True)
    finally:
        cov.stop()
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "coverage.json"
        cov.json_report(outfile=str(report))
        data = json.loads(report.read_text())["files"]
    failed = sorted(name for name, (outcome, _) in results.items() if outcome not in ("passed", "skipped"))
    missing, counted = [], 0
    for path in files:
        region = solution_lines(path.read_text())
        entry = next((v for k, v in data.items() if Path(k).resolve() == path.resolve()), None)
        if entry is None:
            if region:
                missing.append(f"{path.name}: never executed")
            continue
        counted += len(region & set(entry["executed_lines"]) | region & set(entry["missing_lines"]))
        for line in entry["missing_lines"]:
            if line in region:
                missing.append(f"{path.name}:{line}: line never runs")
        for start, end in entry.get("missing_branches", []):
            if start in region:
                where = "the function's exit" if end < 0 else f"line {end}"
                missing.append(f"{path.name}:{start}: the branch to {where} is never taken")
    return {"topic": topic.slug, "lines": counted, "missing": missing, "failed_tests": failed}


def coverage_all(selected: list[topics.Topic], jobs: int = 2) -> list[dict]:
    """measure_coverage for each topic in its own process (`jobs` at a time)."""
    def one(topic: topics.Topic) -> dict:
        start = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "llmlab.authoring.contract", topic.slug],
                              capture_output=True, text=True, cwd=paths.root())
        costs.record(topic.slug, time.monotonic() - start)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
        if proc.returncode != 0 or not lines:
            tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-8:])
            return {"topic": topic.slug, "lines": 0, "missing": [f"coverage run failed:\n{tail}"], "failed_tests": []}
        return json.loads(lines[-1])

    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        return list(pool.map(one, selected))


def main(selected: list[topics.Topic], console, jobs: int = 2) -> int:
    bad = 0
    coverage_by_topic = {c["topic"]: c for c in coverage_all(selected, jobs)}
    for topic in selected:
        problems = missing_parts(topic)
        cov = coverage_by_topic[topic.slug]
        if cov["failed_tests"]:
            problems.append(f"public graders fail on solutions/: {', '.join(cov['failed_tests'][:5])}")
        problems.extend(f"branch coverage of the solution regions by the public graders: {m}" for m in cov["missing"])
        if problems:
            bad += 1
            console.print(f"[red]{topic.slug}: incomplete[/red]")
            for line in problems:
                console.print(f"  {line}", soft_wrap=True)
        else:
            console.print(f"{topic.slug}: complete; the public graders run every line and branch of "
                          f"the {cov['lines']} solution-region lines")
    console.print(f"{len(selected) - bad} of {len(selected)} topics meet the topic contract")
    return 1 if bad else 0


if __name__ == "__main__":
    print(json.dumps(measure_coverage(topics.resolve(sys.argv[1]))))
