"""The CI gates of DESIGN.md, in order, and what they cost. Run through `make test`.

Each gate is a command; all run even when one fails. At the end a table gives the
seconds of each gate, the seconds each topic spent in it (measured in the topic's own
process, through LLMLAB_COSTS: see llmlab.course.costs), and the projected total at 23
topics: a gate's fixed part (its wall time less its topics' share) plus its per-topic
share scaled to 23 topics.

    python ci/gates.py [--only N ...]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT / "build"
FULL_COURSE = 23
JOBS = 2  # topics at a time in the gates that parallelise (2 cores)

GATES = [
    ("1", "harness tests", [sys.executable, "-m", "pytest", "tests", "-q", "-p", "no:cacheprovider", "-n", str(JOBS),
                           "--dist", "worksteal"]),  # long tests are uneven: idle workers take over queued ones
    ("2", "solutions get full marks", ["llmlab", "grade", "--impl", "solutions", "--strict", "--quiet",
                                       "--jobs", str(JOBS), "--json", str(BUILD / "grade-solutions.json"),
                                       "--junit", str(BUILD / "grade-solutions.xml")]),
    ("3", "skeletons fail with their TODOs; the bundle grades without solutions", [sys.executable, "ci/check_skeletons.py"]),
    ("4a", "exercises in sync", ["llmlab", "sync", "--check"]),
    ("4b", "reference data reproducible", ["llmlab", "fixtures", "--check"]),
    ("5", "every mutant caught, every correct variant accepted", ["llmlab", "mutants"]),
    ("6", "notebooks build, execute, release and autograde", [sys.executable, "ci/check_notebooks.py"]),
    ("7", "topic contract: every part present, full branch coverage", ["llmlab", "contract"]),
    ("8", "the textbook site builds and passes its browser test", [sys.executable, "ci/check_site.py"]),
]
PARALLEL = {"2", "3", "5", "6", "7"}  # gates that run JOBS topics at a time
FIXED = {"1", "4a"}  # cost independent of the number of topics (the harness tests grade a toy course)
WHOLE = {"8"}  # no per-topic costs recorded: its whole wall time is taken to grow with the topics


def run_gate(number: str, name: str, command: list[str], costs_file: Path) -> tuple[bool, float]:
    print(f"\n=== gate {number}: {name}", flush=True)
    env = dict(os.environ, LLMLAB_GATE=number)
    if number not in FIXED:  # a fixed gate's toy topics are not course topics
        env["LLMLAB_COSTS"] = str(costs_file)
    start = time.monotonic()
    ok = subprocess.run(command, cwd=ROOT, env=env).returncode == 0
    seconds = time.monotonic() - start
    print(f"--- {'ok' if ok else 'FAILED'}: gate {number} ({seconds:.0f} s)", flush=True)
    return ok, seconds


def cost_table(walls: dict[str, float], costs_file: Path) -> list[str]:
    per = defaultdict(lambda: defaultdict(float))   # gate -> topic -> seconds
    if costs_file.exists():
        for line in costs_file.read_text().splitlines():
            entry = json.loads(line)
            per[entry["gate"]][entry["topic"]] += entry["seconds"]
    topics = sorted({t for g in per.values() for t in g})
    n = len(topics) or 1
    head = f"{'gate':<5} {'wall s':>7} " + " ".join(f"{t[:5]:>5}" for t in topics) + f" {'at 23':>7}"
    lines = ["cost of make test (seconds; topic columns: the topic's own seconds in that gate)", head]
    projected_total = 0.0
    for number, _, _ in GATES:
        if number not in walls:
            continue
        wall = walls[number]
        topic_seconds = per.get(number, {})
        share = sum(topic_seconds.values()) / (JOBS if number in PARALLEL else 1)
        share = wall if number in WHOLE else min(share, wall)
        projected = (wall - share) + share * FULL_COURSE / n
        projected_total += projected
        cells = " ".join(f"{topic_seconds.get(t, 0):5.0f}" for t in topics)
        lines.append(f"{number:<5} {wall:7.0f} {cells} {projected:7.0f}")
    sums = " ".join(f"{sum(per[g].get(t, 0) for g in per):5.0f}" for t in topics)
    lines.append(f"{'topic':<5} {'':>7} {sums}   (each topic's seconds summed over the gates)")
    lines.append(f"total {sum(walls.values()):7.0f} s now ({n} topics); projected at {FULL_COURSE} topics: "
                 f"{projected_total:.0f} s ({projected_total / 60:.1f} min)")
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", help="gate numbers to run (default: all)")
    args = parser.parse_args()
    BUILD.mkdir(exist_ok=True)
    costs_file = BUILD / "costs.jsonl"
    costs_file.unlink(missing_ok=True)
    walls, failed = {}, []
    for number, name, command in GATES:
        if args.only and number not in args.only:
            continue
        ok, walls[number] = run_gate(number, name, command, costs_file)
        if not ok:
            failed.append(f"{number} {name}")
    print()
    for line in cost_table(walls, costs_file):
        print(line)
    print()
    if failed:
        print("failed gates: " + "; ".join(failed))
    print(f"gates: {len(walls) - len(failed)} passed, {len(failed)} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
