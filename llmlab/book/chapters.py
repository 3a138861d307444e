"""Chapter sources → instructor notebooks with nbgrader metadata.

A chapter is `notebooks/NN_x.py` in jupytext percent format. Two directives, each the first
line of a code cell, connect it to the course:

    #| include: attention.py::softmax,causal_mask
        The cell becomes the named top-level definitions (functions, classes, assignments) of
        solutions/NN_x/attention.py, copied at build time — code exists once. `::header`
        is the module's imports and set-up before its first definition; no `::` includes
        the whole file. Solution regions stay marked; nbgrader's release replaces them.
        nbgrader metadata: an autograded answer cell ("solution": true).

    #| grade: test_softmax_matches_torch test_softmax_gradients
        The cell runs those pytest graders on the notebook's objects (llmlab.book.notebook) and
        is worth the sum of their points; hidden tests among them are wrapped in nbgrader's
        BEGIN/END HIDDEN TESTS markers, so the release leaves them out and autograding
        puts them back. nbgrader metadata: an autograder tests cell ("grade": true, locked).

The build fails when a chapter leaves out a definition of the solution files, includes one
twice, or names a test that does not exist — so notebooks and pytest cannot drift apart.
"""

from __future__ import annotations

import ast
import functools
import re
from pathlib import Path

import jupytext
import nbformat

from llmlab.authoring.sync import BEGIN
from llmlab.course import paths, topics
from llmlab.grading.inprocess import grader_locations

INCLUDE = re.compile(r"^#\|\s*include:\s*(\S+)\s*$")
GRADE = re.compile(r"^#\|\s*grade:\s*(.+?)\s*$")
HIDDEN_BEGIN, HIDDEN_END = "### BEGIN HIDDEN TESTS", "### END HIDDEN TESTS"


class ChapterError(Exception):
    pass


def chapter_sources() -> dict[str, Path]:
    folder = paths.root() / "notebooks"
    return {p.stem: p for p in sorted(folder.glob("[0-9][0-9]_*.py"))}


def _definitions(path: Path) -> tuple[str, dict[str, str], list[str]]:
    """(header, name -> source of each top-level definition, names in file order).

    A definition's source runs from its first line (with decorators and the comment lines
    directly above it) to the line before the next top-level statement, so trailing
    comments inside it — such as `### END SOLUTION` — stay with it."""
    source = path.read_text()
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    body = list(tree.body)
    if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the module docstring is for the file; the chapter says it in prose

    def start_of(node) -> int:
        first = min([node.lineno] + [d.lineno for d in getattr(node, "decorator_list", [])])
        while first > 1 and lines[first - 2].startswith("#"):
            first -= 1  # comment lines at column 0 directly above belong to the definition
        return first

    defs: dict[str, str] = {}
    order: list[str] = []
    header_end = None  # the header is every line (comments too) before the first definition
    header_start = body[0].lineno if body else len(lines) + 1
    if tree.body and body and tree.body[0] is not body[0]:
        header_start = tree.body[0].end_lineno + 1  # after the module docstring
    seen_definition = False
    for i, node in enumerate(body):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            name = node.name
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and seen_definition:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            name = ",".join(t.id for t in targets if isinstance(t, ast.Name))
        else:
            if seen_definition:
                raise ChapterError(f"{path}: top-level statement at line {node.lineno} after the first "
                                   f"definition cannot be placed in a chapter; move it up")
            continue
        if not seen_definition:
            header_end = start_of(node) - 1
        seen_definition = True
        end = start_of(body[i + 1]) - 1 if i + 1 < len(body) else len(lines)
        text = "".join(lines[start_of(node) - 1: end]).rstrip() + "\n"
        defs[name] = text
        order.append(name)
    if header_end is None:
        header_end = len(lines)
    header = "".join(lines[header_start - 1: header_end]).strip("\n") + "\n"
    return header, defs, order


def _include(topic: topics.Topic, spec: str, used: dict[tuple[str, str], int]) -> tuple[str, list[str]]:
    """The cell's source, and the names of the included definitions that hold a solution
    region (the units the student writes there)."""
    file, _, names = spec.partition("::")
    path = topic.solutions / file
    if not path.exists():
        raise ChapterError(f"{topic.slug}: include of {file}: no such file in solutions/{topic.slug}/")
    header, defs, order = _definitions(path)
    wanted = [n.strip() for n in names.split(",")] if names else ["header", *order]
    parts, units = [], []
    for name in wanted:
        if name == "header":
            parts.append(header.rstrip() + "\n")
        elif name in defs:
            parts.append(defs[name])
            if any(line.strip() == BEGIN for line in defs[name].splitlines()):
                units.append(name)
        else:
            raise ChapterError(f"{topic.slug}: {file} has no top-level definition {name!r} "
                               f"(it has: header, {', '.join(order)})")
        used[(file, name)] = used.get((file, name), 0) + 1
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n", units


def _grade_cell(topic: topics.Topic, tests: list[str]) -> tuple[str, float]:
    where = grader_locations(topic)
    missing = [t for t in tests if t not in where]
    if missing:
        raise ChapterError(f"{topic.slug}: grade cell names unknown tests {missing}")
    points = points_by_test(topic)
    public = [t for t in tests if not Path(where[t]).stem.endswith("_hidden")]
    hidden = [t for t in tests if t not in public]
    lines = ["from llmlab.book.notebook import run_graders", ""]
    if public:
        lines.append(f"run_graders({topic.slug!r}, {public!r}, globals())")
    if hidden:
        lines += [HIDDEN_BEGIN, f"run_graders({topic.slug!r}, {hidden!r}, globals())", HIDDEN_END]
    return "\n".join(lines) + "\n", sum(points[t] for t in tests)


def grade_cell_tests(source: str) -> list[str]:
    """The grader tests a built grade cell runs (public and hidden)."""
    tests = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and getattr(node.func, "id", "") == "run_graders":
            tests.extend(ast.literal_eval(node.args[1]))
    return tests


@functools.lru_cache(maxsize=None)
def _collected(root: str) -> dict[str, list[dict]]:
    """Every topic's tests with their points, from one pytest collection of the course at `root`."""
    from llmlab.grading import grade

    return grade.collect(topics.available())


def points_by_test(topic: topics.Topic) -> dict[str, float]:
    """Points of each grader test function, from pytest's own collection: a parametrized
    test is worth the points of all its cases, exactly as `pytest` and `llmlab grade` count."""
    points: dict[str, float] = {}
    for test in _collected(str(paths.root()))[topic.slug]:
        name = test["id"].split("::")[-1].split("[")[0]
        points[name] = points.get(name, 0.0) + float(test["points"])
    return points


def build_chapter(slug: str, source: Path) -> nbformat.NotebookNode:
    topic = topics.resolve(slug)
    nb = jupytext.read(source, fmt="py:percent")
    used: dict[tuple[str, str], int] = {}
    graded: list[str] = []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        first, _, rest = cell.source.partition("\n")
        if m := INCLUDE.match(first):
            source, units = _include(topic, m.group(1), used)
            cell.source = source.rstrip("\n")
            names = m.group(1).replace("::", "-").replace(",", "-").replace(".py", "")
            # A solution cell without BEGIN/END markers would be blanked whole by nbgrader;
            # given code (imports, helpers) is a read-only cell instead.
            has_region = any(line.strip() == BEGIN for line in cell.source.splitlines())
            cell.metadata["nbgrader"] = {"grade": False, "solution": has_region, "locked": not has_region,
                                         "grade_id": f"impl-{names}", "schema_version": 3}
            cell.metadata["llmlab"] = {"file": m.group(1).partition("::")[0], "units": units}  # for the site
        elif m := GRADE.match(first):
            tests = m.group(1).split()
            cell.source, points = _grade_cell(topic, tests)
            cell.source = cell.source.rstrip("\n")
            graded.extend(tests)
            cell.metadata["nbgrader"] = {"grade": True, "solution": False, "locked": True,
                                         "points": points, "grade_id": f"check-{index:02d}-{tests[0][5:]}",
                                         "schema_version": 3}
        cell.outputs, cell.execution_count = [], None
    _check_coverage(topic, used, graded)
    nb.cells.insert(_first_code_index(nb), _watch_cell())
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.pop("jupytext", None)
    return nb


def _first_code_index(nb: nbformat.NotebookNode) -> int:
    return next((i for i, c in enumerate(nb.cells) if c.cell_type == "code"), len(nb.cells))


def _watch_cell() -> nbformat.NotebookNode:
    """The locked set-up cell before all code: the graders' integrity snapshot
    (llmlab.book.notebook.watch); nbgrader restores its source when it grades."""
    cell = nbformat.v4.new_code_cell("# llmlab set-up: keep this cell first (the checks rely on it)\n"
                                     "from llmlab.book.notebook import watch\n\nwatch()")
    cell.metadata["nbgrader"] = {"grade": False, "solution": False, "locked": True,
                                 "grade_id": "llmlab-setup", "schema_version": 3}
    return cell


def _check_coverage(topic: topics.Topic, used: dict[tuple[str, str], int], graded: list[str]) -> None:
    problems = []
    for path in sorted(topic.solutions.glob("*.py")):
        _, _, order = _definitions(path)
        for name in ["header", *order]:
            count = used.get((path.name, name), 0)
            if count != 1:
                problems.append(f"{path.name}::{name} is included {count} times (must be once)")
    twice = sorted({t for t in graded if graded.count(t) > 1})
    if twice:
        problems.append(f"tests graded in more than one cell: {twice}")
    ungraded = sorted(set(grader_locations(topic)) - set(graded))
    if ungraded:
        problems.append(f"grader tests in no grade cell (the notebook must carry the same points as pytest): {ungraded}")
    if problems:
        raise ChapterError(f"{topic.slug}: " + "; ".join(problems))


def build(selected: list[str] | None, out: Path) -> list[Path]:
    """Write instructor notebooks to OUT/source/NN_x/NN_x.ipynb (nbgrader's layout)."""
    sources = chapter_sources()
    names = [topics.resolve(s).slug for s in selected] if selected else list(sources)
    written = []
    for slug in names:
        if slug not in sources:
            raise ChapterError(f"no chapter source notebooks/{slug}.py")
        nb = build_chapter(slug, sources[slug])
        target = out / "source" / slug / f"{slug}.ipynb"
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        written.append(target)
    return written
