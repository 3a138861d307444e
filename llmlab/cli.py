"""The `llmlab` command line. Run `llmlab --help` or `llmlab COMMAND --help`."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from rich.console import Console

from llmlab.course import topics

console = Console(highlight=False, emoji=False)


def _topics(names):
    try:
        return topics.resolve_many(names)
    except topics.UnknownTopic as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise SystemExit(2)


def cmd_list(args) -> int:
    from llmlab.student import progress
    progress.print_list(console, _topics(None))
    return 0


def cmd_grade(args) -> int:
    from llmlab.grading import grade
    from llmlab.student import progress
    selected = _topics(args.topics)
    try:
        grade.check_impl(selected, args.impl)
        report = grade.grade(selected, impl=args.impl, time_limit=args.time_limit, memory_mb=args.memory_mb,
                             console=console, quiet=args.quiet, jobs=args.jobs)
    except grade.GradeError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return 2
    if args.impl == "exercises":
        focus = progress.working_on(selected)
        report["next_todo"] = grade.next_todo(report, prefer=focus.slug if focus else None)
    progress.record(report)
    grade.write_outputs(report, json_path=args.json, junit_path=args.junit)
    grade.print_table(console, report)
    if args.strict and report["score"] < report["max_score"]:
        return 1
    return 0


def cmd_grade_class(args) -> int:
    from llmlab.book import nbgrade
    from llmlab.grading import grade
    from llmlab.classroom import cluster, export, run, store, submissions
    selected = _topics(args.topics)
    out = Path(args.out) if args.out else Path(args.submissions).expanduser().resolve().parent / "graded"
    if args.jobs < 1:
        console.print("[red]error:[/red] --jobs must be at least 1")
        return 2
    try:
        summary = run.grade_class(Path(args.submissions), out, selected, jobs=args.jobs, time_limit=args.time_limit,
                                  memory_mb=args.memory_mb, console=None if args.quiet else console,
                                  scheduler=args.scheduler)
    except (submissions.SubmissionError, grade.GradeError, cluster.ClusterError, nbgrade.NbgraderError) as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return 2
    except KeyboardInterrupt:
        console.print(f"interrupted: every result so far is in {out / store.FILE}; run the same command to resume")
        return 130
    with store.Store(summary.out) as db:
        entries = db.entries()
    files = export.export_all(summary.out, entries, summary.students, summary.topics)
    console.print(f"{len(summary.students)} submissions x {len(summary.topics)} topics: {len(summary.graded)} graded, "
                  f"{len(summary.skipped)} unchanged since the last run, {len(summary.missing)} not submitted")
    console.print(f"scores: {files['scores']}; gradebook: {files['gradebook']}; feedback: {files['feedback']}/; "
                  f"Gradescope results: {files['gradescope']}/; what the class got wrong: {files['report']}; "
                  f"database: {summary.out / store.FILE}", soft_wrap=True)
    return 0


def cmd_gradescope_zip(args) -> int:
    from llmlab.classroom import gradescope
    try:
        out = gradescope.build(Path(args.out), _topics(args.topics))
    except gradescope.GradescopeError as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return 2
    console.print(f"Gradescope autograder written to {out}: upload it as the assignment's autograder "
                  f"(it holds the hidden tests; never give it to students)", soft_wrap=True)
    return 0


def cmd_sync(args) -> int:
    from llmlab.authoring import sync
    try:
        result = sync.sync(_topics(args.topics), check=args.check, force=args.force)
    except sync.SyncError as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    if args.check:
        if result.drift:
            console.print("[red]exercises/ is out of sync with solutions/:[/red]")
            for line in result.drift:
                console.print(f"  {line}")
            console.print("Run the command given for each file.")
            return 1
        console.print(f"exercises/ is in sync with solutions/ ({len(result.unchanged)} files).")
        return 0
    for path in result.written:
        console.print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    for path in result.backups:
        console.print(f"backed up your edited version to {path}")
    for path in result.kept_edited:
        console.print(f"[yellow]kept[/yellow] {path} (edited since it was generated; `--force` backs it up, then "
                      f"overwrites it)", soft_wrap=True)
    for path in result.changed_upstream:
        console.print(f"[yellow]changed upstream:[/yellow] the skeleton of {path.name[:-len('.upstream')]} changed "
                      f"since you started editing it; the new skeleton is in {path}: compare the two and bring "
                      f"the changes into your file", soft_wrap=True)
    console.print(f"{len(result.written)} written, {len(result.unchanged)} unchanged, {len(result.kept_edited)} kept.")
    return 0


def cmd_fixtures(args) -> int:
    from llmlab.authoring import fixtures
    from llmlab.testing import reference
    problems = []
    for topic in _topics(args.topics):
        try:
            if args.check:
                found = fixtures.check(topic)
                problems.extend(found)
                console.print(f"{topic.slug}: {'[red]differs[/red]' if found else 'ok'}")
            else:
                written = fixtures.write(topic)
                console.print(f"{topic.slug}: wrote {len(written)} files")
        except reference.ReferenceError as exc:
            console.print(f"[red]error:[/red] {exc}")
            return 1
    for line in problems:
        console.print(f"  {line}")
    return 1 if problems else 0


def cmd_mutants(args) -> int:
    from llmlab.authoring import mutants
    return mutants.main(_topics(args.topics), console, variants_only=args.variants, mutants_only=args.no_variants)


def cmd_mutate(args) -> int:
    from llmlab.authoring import mutate
    return mutate.main(_topics(args.topics), console, limit=args.limit, json_path=args.json)


def cmd_contract(args) -> int:
    from llmlab.authoring import contract
    return contract.main(_topics(args.topics), console)


def cmd_release(args) -> int:
    import tempfile

    from llmlab.authoring import release
    from llmlab.book import chapters, nbgrade

    def add_notebooks(bundle: Path) -> None:
        """The chapters' student notebooks (nbgrader release: no solutions, no hidden tests)."""
        if not chapters.chapter_sources() or args.no_notebooks:
            return
        with tempfile.TemporaryDirectory(prefix="llmlab-release-nb-") as tmp:
            built = Path(tmp) / "built"
            chapters.build(None, built)
            for notebook in nbgrade.release(built, Path(tmp) / "release"):
                (bundle / "notebooks").mkdir(exist_ok=True)
                (bundle / "notebooks" / notebook.name).write_bytes(notebook.read_bytes())

    try:
        out = release.release(Path(args.out), force=args.force, add=add_notebooks)
    except (release.ReleaseError, chapters.ChapterError, nbgrade.NbgraderError) as exc:
        console.print(f"[red]error:[/red] {exc} (nothing was written to {args.out})", soft_wrap=True)
        return 1
    console.print(f"student bundle written to {out}")
    return 0


def cmd_notebooks(args) -> int:
    from llmlab.book import chapters, execute, nbgrade
    from llmlab.course import paths
    built = Path(args.dir) if args.dir else paths.root() / "build" / "notebooks"
    try:
        if args.action == "build":
            for path in chapters.build(args.topics or None, built):
                console.print(f"built {path}")
        elif args.action == "execute":
            sources = sorted((built / "source").glob("*/*.ipynb"))
            if args.topics:
                wanted = {t.slug for t in _topics(args.topics)}
                sources = [p for p in sources if p.stem in wanted]
            if not sources:
                console.print(f"[red]error:[/red] no built notebooks in {built}; run `llmlab notebooks build` first")
                return 1
            failed = 0
            for path in sources:
                try:
                    target = built / "executed" / path.name
                    seconds = execute.execute(path, target, budget=args.budget)
                    console.print(f"executed {path.stem} in {seconds:.1f} s: {target}")
                except execute.ExecutionError as exc:
                    failed += 1
                    console.print(f"[red]FAILED[/red] {exc}")
            return 1 if failed else 0
        elif args.action == "release":
            out = Path(args.out) if args.out else built / "release"
            slugs = [t.slug for t in _topics(args.topics)] if args.topics else None
            for path in nbgrade.release(built, out, slugs=slugs):
                console.print(f"released {path}")
        elif args.action == "autograde":
            if len(args.topics) != 1:
                console.print("[red]error:[/red] give one folder of submissions: llmlab notebooks autograde SUBMISSIONS")
                return 2
            result = nbgrade.autograde(built, Path(args.topics[0]))
            csv_path = Path(args.csv) if args.csv else built / "scores.csv"
            json_path = Path(args.json) if args.json else built / "scores.json"
            nbgrade.write_scores(result, csv_path, json_path)
            feedback = built / "feedback"
            nbgrade.write_feedback(result, feedback)
            for student in result["students"]:
                console.print(f"{student['student']}: {student['score']:g} / {student['max_score']:g}")
            console.print(f"scores written to {csv_path} and {json_path}; feedback per student in {feedback}/")
    except (chapters.ChapterError, nbgrade.NbgraderError) as exc:
        console.print(f"[red]error:[/red] {exc}")
        return 1
    return 0


def cmd_book(args) -> int:
    import time

    from llmlab.book import nbgrade, site
    from llmlab.course import paths
    built = Path(args.dir) if args.dir else paths.root() / "build" / "notebooks"
    start = time.monotonic()
    try:
        out, pages = site.build(built, Path(args.out) if args.out else None, edition=args.edition)
    except (site.BookError, nbgrade.NbgraderError) as exc:
        console.print(f"[red]error:[/red] {exc}", soft_wrap=True)
        return 1
    console.print(f"{args.edition} edition: {pages} pages in {out} ({time.monotonic() - start:.1f} s); "
                  f"open {out / 'index.html'} in a browser, or serve the folder with "
                  f"`python -m http.server -d {out}`", soft_wrap=True)
    return 0


def cmd_doctor(args) -> int:
    from llmlab.student import doctor
    return doctor.main(console)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="llmlab",
        description="Build modern LLMs from scratch: grade your work, and (for maintainers) keep the course in sync.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("list", help="topics and your progress on each")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("grade", help="grade topics (each in its own process) and print a score table")
    p.add_argument("topics", nargs="*", help="topics to grade, e.g. 04_attention or 4 (default: all)")
    p.add_argument("--impl", default="exercises",
                   help="what to grade: exercises (default), solutions, or a folder holding NN_x/ folders")
    p.add_argument("--json", metavar="F", help="write the report as JSON to F")
    p.add_argument("--junit", metavar="F", help="write the report as JUnit XML to F")
    p.add_argument("--strict", action="store_true", help="exit 1 unless every topic gets full marks")
    p.add_argument("--time-limit", type=float, default=300, help="seconds per topic (default 300)")
    p.add_argument("--memory-mb", type=int, default=6144, help="memory limit per topic in MB (default 6144)")
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.add_argument("--jobs", type=int, default=1, help="topics graded at the same time, each in its own process (default 1)")
    p.set_defaults(func=cmd_grade)

    p = sub.add_parser(
        "grade-class", help="instructors: grade a class's submissions in parallel, resumably, and export the scores",
        description="Grade every submission in SUBMISSIONS (one entry per student: a folder holding NN_topic/ "
                    "folders of code or submitted NN_topic.ipynb notebooks, or a .zip of one), each submission x "
                    "topic in its own guarded process (notebooks by nbgrader). Results go to "
                    "an SQLite database in OUT as they arrive: run the same command again to resume an interrupted "
                    "run; only new or changed topic folders are graded again. Writes OUT/scores.csv, "
                    "OUT/gradebook.csv, OUT/feedback/<student>.md, OUT/gradescope/<student>/results.json and "
                    "OUT/class_report.md (per topic and unit, how many students made each named mistake).")
    p.add_argument("submissions", metavar="SUBMISSIONS", help="folder with one entry per student")
    p.add_argument("topics", nargs="*", help="topics to grade, e.g. 04_attention or 4 (default: all)")
    p.add_argument("--out", metavar="DIR", help="output folder (default: graded/ next to SUBMISSIONS)")
    p.add_argument("--jobs", type=int, default=max(1, (os.cpu_count() or 2) // 2),
                   help="submission x topic gradings at the same time (default: half the cores)")
    p.add_argument("--time-limit", type=float, default=300, help="seconds per submission x topic (default 300)")
    p.add_argument("--memory-mb", type=int, default=6144, help="memory limit per grading process in MB (default 6144)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="run the gradings on this Dask distributed scheduler "
                                                          "(e.g. tcp://host:8786; workers on the same course checkout)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_grade_class)

    p = sub.add_parser("gradescope-zip", help="instructors: a Gradescope autograder zip (the same graders, hidden "
                                              "tests included, offline)")
    p.add_argument("out", metavar="OUT.zip")
    p.add_argument("topics", nargs="*", help="topics it grades (default: all)")
    p.set_defaults(func=cmd_gradescope_zip)

    p = sub.add_parser("sync", help="regenerate exercises/ from solutions/ (maintainers)")
    p.add_argument("topics", nargs="*")
    p.add_argument("--check", action="store_true", help="fail if exercises/ differs from what solutions/ generates")
    p.add_argument("--force", action="store_true", help="also overwrite exercise files that were edited")
    p.set_defaults(func=cmd_sync)

    p = sub.add_parser("fixtures", help="regenerate reference/ from solutions/ (maintainers)")
    p.add_argument("topics", nargs="*")
    p.add_argument("--check", action="store_true", help="regenerate in memory and compare with reference/")
    p.set_defaults(func=cmd_fixtures)

    p = sub.add_parser("mutants", help="prove the graders catch every catalogued mistake and accept correct variants")
    p.add_argument("topics", nargs="*")
    p.add_argument("--variants", action="store_true", help="only the correct variants")
    p.add_argument("--no-variants", action="store_true", help="only the mutants")
    p.set_defaults(func=cmd_mutants)

    p = sub.add_parser("mutate", help="maintainers: automatic mutation of the solution regions; prints the survivors")
    p.add_argument("topics", nargs="*", help="topics (default: all)")
    p.add_argument("--limit", type=int, default=None, help="judge only the first N generated mutants")
    p.add_argument("--json", default=None, metavar="F", help="write the kill figures per topic as JSON")
    p.set_defaults(func=cmd_mutate)

    p = sub.add_parser("contract", help="maintainers: check each topic is complete (all parts, full branch coverage)")
    p.add_argument("topics", nargs="*", help="topics (default: all)")
    p.set_defaults(func=cmd_contract)

    p = sub.add_parser("release", help="write the student bundle (no solutions, no hidden tests) to OUT")
    p.add_argument("out")
    p.add_argument("--force", action="store_true", help="replace OUT if it exists")
    p.add_argument("--no-notebooks", action="store_true", help="leave the chapters' student notebooks out")
    p.set_defaults(func=cmd_release)

    p = sub.add_parser("notebooks", help="chapters: build, execute, release (nbgrader) and autograde notebooks")
    p.add_argument("action", choices=["build", "execute", "release", "autograde"],
                   help="build: instructor notebooks from notebooks/*.py; execute: run them headless; "
                        "release: student versions via nbgrader; autograde: grade submitted notebooks")
    p.add_argument("topics", nargs="*", help="build/execute/release: topics (default all); autograde: SUBMISSIONS folder")
    p.add_argument("--dir", help="built notebooks folder (default build/notebooks)")
    p.add_argument("--out", help="release: output folder (default build/notebooks/release)")
    p.add_argument("--budget", type=float, default=180, help="execute: seconds per notebook (default 180)")
    p.add_argument("--csv", help="autograde: scores CSV (default build/notebooks/scores.csv)")
    p.add_argument("--json", help="autograde: scores JSON (default build/notebooks/scores.json)")
    p.set_defaults(func=cmd_notebooks)

    p = sub.add_parser("book", help="maintainers: the textbook as a static website, from the executed chapters")
    p.add_argument("action", choices=["build"], help="build: render every executed chapter (`llmlab notebooks "
                                                     "execute` ran them) into a static site")
    p.add_argument("--out", help="output folder, replaced (default build/site; instructor: build/site-instructor)")
    p.add_argument("--edition", choices=["public", "instructor"], default="public",
                   help="public (default): exercises as the student sees them; instructor: with the solutions")
    p.add_argument("--dir", help="built notebooks folder (default build/notebooks)")
    p.set_defaults(func=cmd_book)

    p = sub.add_parser("doctor", help="check the environment and say how to fix each problem")
    p.set_defaults(func=cmd_doctor)
    return parser


MAINTAINER_ONLY = {"grade-class", "gradescope-zip", "sync", "fixtures", "mutants", "mutate", "contract", "release", "book"}
NOTEBOOK_MAINTAINER_ONLY = {"build", "execute", "release", "autograde"}


def _refused_in_bundle(args) -> str | None:
    """Why this command cannot run here, when this is a student bundle (no solutions/)."""
    from llmlab.course import paths
    if paths.solutions_dir().is_dir():
        return None
    if args.command in MAINTAINER_ONLY or (args.command == "notebooks" and args.action in NOTEBOOK_MAINTAINER_ONLY):
        name = args.command + (f" {args.action}" if args.command == "notebooks" else "")
        chapters = " The chapters are in notebooks/." if args.command == "notebooks" else ""
        return (f"`llmlab {name}` is a course maintainer's command and needs solutions/, which a student "
                f"bundle does not have. Here: `llmlab grade`, `pytest exercises/NN_topic`, `llmlab list`, "
                f"`llmlab doctor`.{chapters}")
    return None


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line. Topic names may also follow options (`notebooks build --dir X
    06_llama`), which argparse alone rejects once the topics positional has been passed."""
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and isinstance(getattr(args, "topics", None), list) and not any(e.startswith("-") for e in extra):
        args.topics += extra
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    refusal = _refused_in_bundle(args)
    if refusal:
        console.print(f"[red]error:[/red] {refusal}", soft_wrap=True)
        return 2
    try:
        return args.func(args)
    except KeyboardInterrupt:
        console.print("interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
