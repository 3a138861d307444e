"""CI gate 3: the skeletons fail cleanly, and the student bundle grades without solutions.

1. Every graded test (public and hidden) fails on the generated skeletons *because of a
   TODO* — with the skeleton's NotImplementedError naming the unit — never with an import
   error, a collection error, a crash, or a pass.
2. In a student bundle (`llmlab release`: no solutions/, no hidden tests, no fixture
   generators), the reference code copied into exercises/ gets every public test — so the
   public graders stand on reference data and oracles alone.

The code under test here is the course's own, so the topics run under plain pytest (two at
a time), not in `llmlab grade`'s sandbox; gate 2 and the harness tests cover that path.

    python ci/check_skeletons.py [TOPIC ...]
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from llmlab.authoring import release
from llmlab.course import costs, paths, topics

JOBS = 2


def run_topic(root: Path, topic: topics.Topic, out: Path) -> tuple[list[dict], list[dict], str]:
    """(collected, results, output tail) of `pytest exercises/NN_x` in the course at `root`."""
    collected, results = out / f"{topic.slug}-collected.json", out / f"{topic.slug}-results.json"
    env = dict(os.environ, LLMLAB_ROOT=str(root), PYTHONPATH=str(root))
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", f"exercises/{topic.slug}", "-q", "--no-header",
                           "-p", "no:cacheprovider", "--runslow", "--llmlab-collect", str(collected),
                           "--llmlab-results", str(results)], cwd=root, env=env, capture_output=True, text=True)
    costs.record(topic.slug, time.monotonic() - start)
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-6:])
    read = lambda f: json.loads(f.read_text()) if f.exists() else []  # noqa: E731
    return read(collected), read(results), tail


def problems_of(topic: topics.Topic, collected: list[dict], results: list[dict], tail: str, solved: bool) -> list[str]:
    graded = [t for t in collected if t["points"] > 0]
    by_id = {r["id"]: r for r in results}
    if not graded:
        return [f"{topic.slug}: no graded test was collected:\n{tail}"]
    bad = []
    prefix = f"NotImplementedError: TODO {topic.slug}: "
    for test in graded:
        result = by_id.get(test["id"])
        if result is None:
            bad.append(f"{test['id']}: never reported (crash or collection error):\n{tail}")
        elif solved and result["outcome"] != "passed":
            bad.append(f"{test['id']}: {result['outcome']} in the bundle: {result['message'].splitlines()[0] if result['message'] else ''}")
        elif not solved and (result["outcome"] != "failed" or not result["message"].startswith(prefix)):
            first = result["message"].splitlines()[0] if result["message"] else ""
            bad.append(f"{test['id']}: {result['outcome']}: {first}")
    if solved and any(t["hidden"] for t in collected):
        bad.append(f"{topic.slug}: the bundle holds hidden tests")
    return bad


def main(names: list[str]) -> int:
    selected = topics.resolve_many(names)
    bad: list[str] = []
    with tempfile.TemporaryDirectory(prefix="llmlab-gate3-") as tmp:
        tmp = Path(tmp)
        with ThreadPoolExecutor(JOBS) as pool:
            runs = list(pool.map(lambda t: run_topic(paths.root(), t, tmp), selected))
        for topic, (collected, results, tail) in zip(selected, runs):
            found = problems_of(topic, collected, results, tail, solved=False)
            bad.extend(found)
            print(f"{topic.slug}: {len([t for t in collected if t['points'] > 0])} graded tests on the skeleton: "
                  f"{'every one fails with its TODO' if not found else f'{len(found)} do not fail cleanly'}")
        bundle = release.release(tmp / "bundle")
        for topic in selected:
            for src in topic.solutions.glob("*.py"):
                shutil.copy2(src, bundle / "exercises" / topic.slug / src.name)
        with ThreadPoolExecutor(JOBS) as pool:
            (tmp / "bundle-results").mkdir()
            runs = list(pool.map(lambda t: run_topic(bundle, t, tmp / "bundle-results"), selected))
        for topic, (collected, results, tail) in zip(selected, runs):
            found = problems_of(topic, collected, results, tail, solved=True)
            bad.extend(found)
            print(f"{topic.slug}: reference code in the student bundle: "
                  f"{'all' if not found else 'NOT all'} {len(collected)} public tests pass")
    for line in bad:
        print(f"  NOT CLEAN {line}")
    print(f"{len(bad)} problems" if bad else "every skeleton fails cleanly; the bundle grades without solutions")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
