"""The textbook as a static website: the executed chapters rendered by Sphinx with MyST-NB
and the Sphinx Book Theme (docs/decisions.md says why), offline and self-contained.

    build(built, out, edition="public")  ->  out/index.html, out/chapters/NN_x.html, ...

Nothing executes again: the inputs are what `llmlab notebooks` produced,

    built/executed/NN_x.ipynb          instructor notebooks with their outputs (`execute`)
    built/release/NN_x/NN_x.ipynb      student notebooks (`release`; made here when missing)

and every executed chapter becomes a page, so the site grows with the course.

Editions. The public edition shows each implementation cell and each check cell as the
student gets it (the release's source: the TODO, no hidden test) and keeps every other
cell and its outputs, so a reader sees the experiments as they ran. The instructor edition
shows the solutions, each under a line that says so.

The site needs no other host: MathJax 3 comes from the `django-static-mathjax` package (its
static files only; nothing of Django is used or installed) and is copied into the site, the
theme bundles its fonts and icons, and Sphinx's search index is a script file, so search
works from a static host and from disk alike.
"""

from __future__ import annotations

import copy
import shutil
import textwrap
from pathlib import Path

import nbformat

from llmlab.book import nbgrade
from llmlab.course import paths, topics

EDITIONS = ("public", "instructor")
MATHJAX_COMPONENT = "tex-svg.js"  # TeX in, SVG out: no web fonts to load


class BookError(Exception):
    pass


# --- one chapter -----------------------------------------------------------------------

def _nbgrader(cell) -> dict:
    return cell.metadata.get("nbgrader", {})


def units(notebook: nbformat.NotebookNode) -> list[tuple[str, str]]:
    """(file, unit) for each unit the student writes, in chapter order (the build records
    them in each implementation cell's metadata: llmlab.book.chapters)."""
    return [(cell.metadata["llmlab"]["file"], unit) for cell in notebook.cells
            if _nbgrader(cell).get("solution") for unit in cell.metadata.get("llmlab", {}).get("units", [])]


def _markdown(text: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_markdown_cell(textwrap.dedent(text).strip())


def _work_on_it(slug: str) -> nbformat.NotebookNode:
    return _markdown(f"""
        :::{{admonition}} Work on this chapter
        :class: tip
        - **As a notebook:** download the student notebook
          {{download}}`{slug}.ipynb <../downloads/{slug}.ipynb>`, open it in Jupyter, write each
          TODO and run the check cell below it.
        - **In the course repository** ([set-up](../setup.md)): write the TODOs in
          `exercises/{slug}/`, then grade with `pytest exercises/{slug}` (or `llmlab grade {slug}`).
        :::
        """)


def chapter(executed: nbformat.NotebookNode, released: nbformat.NotebookNode, slug: str,
            edition: str = "public") -> nbformat.NotebookNode:
    """The notebook a chapter page renders.

    public: implementation and check cells take the released (student) source and lose
    their outputs; instructor: the executed source stays, each solution under a note."""
    student = {_nbgrader(c)["grade_id"]: c.source for c in released.cells if _nbgrader(c).get("grade_id")}
    nb = copy.deepcopy(executed)
    cells = []
    for cell in nb.cells:
        meta = cell.metadata.pop("nbgrader", {})
        written = cell.metadata.pop("llmlab", {})
        if meta.get("solution") and written:
            names = ", ".join(f"`{unit}`" for unit in written["units"])
            if edition == "public":
                cells.append(_markdown(f"*Exercise:* you write {names} here, or in `exercises/{slug}/{written['file']}`."))
            else:
                cells.append(_markdown(f"**Solution (instructor edition):** {names} as in "
                                       f"`solutions/{slug}/{written['file']}`."))
        if edition == "public" and (meta.get("solution") or meta.get("grade")):
            if meta["grade_id"] not in student:
                raise BookError(f"{slug}: the student notebook has no cell {meta['grade_id']!r}; "
                                f"run `llmlab notebooks build {slug}` and `llmlab notebooks release {slug}` again")
            cell.source = student[meta["grade_id"]]
            cell.outputs = []
            cell.execution_count = None
        cells.append(cell)
    nb.cells = cells[:1] + [_work_on_it(slug)] + cells[1:]
    return nb


# --- the book's own pages ----------------------------------------------------------------

def _home(chapters: list[tuple[topics.Topic, list[tuple[str, str]]]], edition: str) -> str:
    lines = [
        "# llmlab: build modern language models from scratch",
        "",
        "A textbook with an autograder. Each chapter explains one piece of a modern language model,",
        "works a small case by hand, has you implement it in PyTorch against graders that check",
        "values and gradients, and ends with an experiment that runs on a laptop CPU. The outputs",
        "and plots on these pages are those of the chapters as they ran.",
        "",
        "New here? [Set up and grade locally](setup.md) takes two commands.",
        "",
    ]
    if edition == "instructor":
        lines += [":::{warning}", "Instructor edition: the implementation cells show the solutions.", ":::", ""]
    toc = []
    for part in topics.PARTS:
        members = [(t, u) for t, u in chapters if t.part == part]
        if not members:
            continue
        lines += [f"## {part}", "", "| chapter | what you build |", "|---|---|"]
        for topic, chapter_units in members:
            built = ", ".join(f"`{unit}`" for _, unit in chapter_units) or "(no exercise)"
            lines.append(f"| [{topic.slug[:2]} · {topic.title}](chapters/{topic.slug}.ipynb) | {built} |")
        lines.append("")
        toc += ["```{toctree}", ":hidden:", f":caption: {part}", ""]
        toc += [f"chapters/{t.slug}" for t, _ in members] + ["```", ""]
    return "\n".join(lines + ["```{toctree}", ":hidden:", ":caption: Start here", "", "setup", "```", ""] + toc)


SETUP = """\
# Set up and grade locally

Everything runs on a laptop CPU (Linux, macOS or Windows) and nothing is downloaded at run
time. You need Python 3.10 or newer and a copy of the course (the repository, or the student
bundle your instructor gives you).

## Two commands

```bash
make grade      # first run: creates .venv and installs the pinned dependencies
source .venv/bin/activate
```

Without `make` (Windows): `python install.py`, then `.venv\\Scripts\\activate`.
`llmlab doctor` checks the set-up and says how to fix what it finds.

## Work on a chapter in the repository

Each chapter's exercises are in `exercises/NN_topic/`: every unit you write is a function or
method whose body raises `NotImplementedError("TODO ...")`, and its docstring is the
specification (shapes, dtypes, conventions, tie rules). Grade while you work:

```bash
pytest exercises/04_attention              # one chapter
pytest exercises/04_attention -k softmax   # only the tests whose name contains "softmax"
llmlab grade                               # every chapter, then the next TODO to work on
llmlab list                                # the TODOs left and your last grade per chapter
```

A failure names the unit, the input that failed, the first mismatching index, the error
against the tolerance and, when your output matches a known mistake, the mistake.

## Work in a notebook

Each chapter page has a link to its student notebook. Open it in Jupyter from the course
folder (`jupyter lab`, in the activated environment), write each TODO and run the check cell
below it: it runs the same graders, with the same points.
"""


def _conf(edition: str) -> str:
    return textwrap.dedent(f'''\
        # Generated by llmlab.book.site: the textbook site's Sphinx configuration.
        project = "llmlab"
        author = "the llmlab authors"
        html_title = "llmlab{' (instructor edition)' if edition == 'instructor' else ''}"
        extensions = ["myst_nb"]
        myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence"]
        nb_execution_mode = "off"       # the chapters ran in `llmlab notebooks execute`
        nb_ipywidgets_js = {{}}           # no widget scripts from another host
        html_theme = "sphinx_book_theme"
        html_theme_options = {{"show_toc_level": 2, "use_download_button": False,
                              "use_fullscreen_button": False}}
        html_static_path = ["_static"]
        html_context = {{"default_mode": "auto"}}  # light or dark as the reader's system prefers
        html_show_search_summary = False  # summaries fetch each result page: refused from disk
        html_show_sourcelink = False
        html_copy_source = False
        mathjax_path = "mathjax/{MATHJAX_COMPONENT}"
        exclude_patterns = ["downloads"]  # files for the download links, not pages
        ''')


def _mathjax() -> Path:
    """MathJax's es5 folder; fails with what to run when the site's tools are not installed."""
    import importlib.util
    try:
        import myst_nb  # noqa: F401
        import sphinx_book_theme  # noqa: F401
        spec = importlib.util.find_spec("mathjax")  # the package's files, without importing it
    except ImportError as exc:
        raise BookError(f"the site's tools are not installed ({exc.name} is missing): run "
                        f"`python install.py --site` (or `make site`)") from None
    folder = Path(spec.submodule_search_locations[0]) / "static" / "mathjax" / "es5" if spec else None
    if folder is None or not (folder / MATHJAX_COMPONENT).exists():
        raise BookError("MathJax is not installed: run `python install.py --site` (or `make site`)")
    return folder


def _copy_mathjax(es5: Path, target: Path) -> None:
    """The one combined component the pages load, and the folders it loads parts from."""
    shutil.copytree(es5, target, ignore=lambda folder, names: [
        n for n in names if folder == str(es5) and n.endswith(".js") and n != MATHJAX_COMPONENT])


# --- the whole site ----------------------------------------------------------------------

def _inputs(built: Path) -> list[tuple[topics.Topic, Path, Path]]:
    """(topic, executed notebook, released notebook) of each executed chapter; releases
    the chapters whose student notebook is missing."""
    executed = sorted((built / "executed").glob("[0-9][0-9]_*.ipynb"))
    if not executed:
        raise BookError(f"no executed chapters in {built / 'executed'}: run `llmlab notebooks build` and "
                        f"`llmlab notebooks execute` first (or `make site`, which does both)")
    found = []
    for path in executed:
        try:
            topic = topics.resolve(path.stem)
        except topics.UnknownTopic:
            raise BookError(f"{path} is no chapter of this course; remove it") from None
        found.append((topic, path, built / "release" / topic.slug / f"{topic.slug}.ipynb"))
    missing = [t.slug for t, _, released in found if not released.exists()]
    if missing:
        nbgrade.release(built, built / "release", slugs=missing)
    return found


def build(built: Path | None = None, out: Path | None = None, edition: str = "public") -> tuple[Path, int]:
    """Render the site into OUT (replaced); return (OUT, number of HTML pages)."""
    if edition not in EDITIONS:
        raise BookError(f"unknown edition {edition!r}: use one of {', '.join(EDITIONS)}")
    mathjax = _mathjax()
    from sphinx.cmd.build import build_main
    built = built or paths.root() / "build" / "notebooks"
    out = out or default_out(edition)
    inputs = _inputs(built)
    source = paths.root() / "build" / "site-source" / edition
    if source.exists():
        shutil.rmtree(source)
    (source / "chapters").mkdir(parents=True)
    (source / "downloads").mkdir()
    chapters = []
    for topic, executed_path, released_path in inputs:
        executed = nbformat.read(executed_path, as_version=4)
        released = nbformat.read(released_path, as_version=4)
        nbformat.write(chapter(executed, released, topic.slug, edition), source / "chapters" / f"{topic.slug}.ipynb")
        shutil.copy2(released_path, source / "downloads" / f"{topic.slug}.ipynb")
        chapters.append((topic, units(executed)))
    (source / "index.md").write_text(_home(chapters, edition))
    (source / "setup.md").write_text(SETUP)
    (source / "conf.py").write_text(_conf(edition))
    _copy_mathjax(mathjax, source / "_static" / "mathjax")
    log = source / "warnings.log"
    if out.exists():
        shutil.rmtree(out)
    code = build_main(["-b", "html", "-q", "-W", "--keep-going", "-w", str(log), str(source), str(out)])
    if code != 0:
        raise BookError(f"sphinx-build failed (exit {code}); its warnings:\n{log.read_text()[-3000:]}")
    return out, len(list(out.rglob("*.html")))


def default_out(edition: str) -> Path:
    return paths.root() / "build" / ("site" if edition == "public" else "site-instructor")
