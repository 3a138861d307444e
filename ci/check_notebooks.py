"""CI gate 6: chapters build, execute within budget and release through nbgrader; the
instructor notebooks earn full marks, autograding gives 0 to the untouched release and the
expected partial score to a submission with one planted bug.

Each instructor notebook executes once (two at a time); its score is read from that run by
nbgrader's own grading rule (llmlab.book.nbgrade.executed_scores) instead of executing it a
second time inside `nbgrader autograde`. The releases go through the real autograde.

The planted bug is the first mutant of the chosen topic's catalogue, applied to the same
text in the instructor notebook. The expected score is computed independently of nbgrader:
the topic's graders run under pytest on the mutated reference; every grade cell that holds
a failing test loses its points, every other cell keeps them.

    python ci/check_notebooks.py [--planted TOPIC] [--skip-execute]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import nbformat

from llmlab.authoring import mutants
from llmlab.book import chapters, execute, nbgrade
from llmlab.course import paths, topics


def failing_tests(topic: topics.Topic, mutant: mutants.Mutant) -> set[str]:
    with tempfile.TemporaryDirectory(prefix="llmlab-planted-") as tmp:
        folder = mutants.apply(topic, mutant.edits(), Path(tmp))
        proc = subprocess.run([sys.executable, "-m", "pytest", str(topic.graders), "--impl", str(folder), "-q",
                               "--runslow", "-p", "no:cacheprovider", "-rf", "--no-header"],
                              cwd=paths.root(), capture_output=True, text=True)
    failed = set()
    for line in proc.stdout.splitlines():
        if line.startswith("FAILED ") or line.startswith("ERROR "):
            failed.add(line.split()[1].split("::")[-1].split("[")[0])
    return failed


def expected_planted_score(notebook: nbformat.NotebookNode, failed: set[str]) -> float:
    score = 0.0
    for cell in notebook.cells:
        meta = cell.metadata.get("nbgrader", {})
        if not meta.get("grade"):
            continue
        names = {t for t in chapters.grade_cell_tests(cell.source)}
        if not names & failed:
            score += float(meta["points"])
    return score


def plant(notebook: nbformat.NotebookNode, mutant: mutants.Mutant) -> nbformat.NotebookNode:
    planted = nbformat.from_dict(json.loads(json.dumps(notebook)))
    for edit in mutant.edits():
        hits = [c for c in planted.cells if c.cell_type == "code" and edit.find in c.source]
        if len(hits) != 1:
            raise SystemExit(f"mutant {mutant.name!r}: its text occurs in {len(hits)} notebook cells, need exactly 1")
        hits[0].source = hits[0].source.replace(edit.find, edit.replace)
    return planted


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--planted", default="01_tokenizer", help="topic whose first mutant is planted")
    parser.add_argument("--skip-execute", action="store_true", help="skip the timed headless execution")
    args = parser.parse_args()

    built = paths.root() / "build" / "notebooks"
    if built.exists():
        shutil.rmtree(built)
    sources = chapters.chapter_sources()
    if not sources:
        print("no chapters yet")
        return 0
    for path in chapters.build(None, built):
        print(f"built {path.relative_to(paths.root())}")
    problems = []
    executed = {}
    if not args.skip_execute:
        jobs = [(path, built / "executed" / path.name) for path in sorted((built / "source").glob("*/*.ipynb"))]
        for path, seconds, error in execute.execute_many(jobs):
            if error:
                problems.append(error)
            else:
                executed[path.stem] = built / "executed" / path.name
                print(f"executed {path.stem} in {seconds:.1f} s (budget {execute.BUDGET_S} s)")
    released = nbgrade.release(built, built / "release")
    print(f"released {len(released)} notebooks; audit clean")

    subs = built / "submissions"
    names = nbgrade.assignments(built)
    for name in names:
        target = subs / "untouched" / name / f"{name}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(built / "release" / name / f"{name}.ipynb", target)
    planted_topic = topics.resolve(args.planted)
    expected = None
    if planted_topic.slug in names:
        catalogue, _ = mutants.catalogue(planted_topic)
        mutant = catalogue[0]
        source_nb = nbformat.read(built / "source" / planted_topic.slug / f"{planted_topic.slug}.ipynb", as_version=4)
        target = subs / "planted" / planted_topic.slug / f"{planted_topic.slug}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(plant(source_nb, mutant), target)
        expected = expected_planted_score(source_nb, failing_tests(planted_topic, mutant))
        print(f"planted {mutant.name!r} in {planted_topic.slug}; expected score {expected:g}")

    result = nbgrade.autograde(built, subs)
    nbgrade.write_scores(result, built / "scores.csv", built / "scores.json")
    by_student = {s["student"]: s for s in result["students"]}
    for name in names:
        if name not in executed:
            continue
        score, max_score = nbgrade.executed_scores(executed[name])
        pytest_points = sum(chapters.points_by_test(topics.resolve(name)).values())
        print(f"instructor {name}: {score:g} / {max_score:g} (pytest: {pytest_points:g})")
        if score != max_score or max_score <= 0:
            problems.append(f"instructor notebook {name} scored {score:g} / {max_score:g}")
        if max_score != pytest_points:
            problems.append(f"{name}: the notebook is worth {max_score:g} points, pytest {pytest_points:g}")
    for topic in by_student["untouched"]["topics"]:
        print(f"untouched  {topic['topic']}: {topic['score']:g} / {topic['max_score']:g}")
        if topic["score"] != 0:
            problems.append(f"untouched release {topic['topic']} scored {topic['score']:g}, expected 0")
    if expected is not None:
        got = by_student["planted"]["topics"][0]
        print(f"planted    {got['topic']}: {got['score']:g} / {got['max_score']:g} (expected {expected:g})")
        if got["score"] != expected or not 0 < expected < got["max_score"]:
            problems.append(f"planted bug in {got['topic']}: scored {got['score']:g}, expected {expected:g} "
                            f"(strictly between 0 and {got['max_score']:g})")
    for line in problems:
        print(f"PROBLEM {line}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
