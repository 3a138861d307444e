"""The textbook site on the toy course: what each edition shows, the pages, the errors."""

import nbformat
import pytest

from llmlab.book import chapters, nbgrade, site
from llmlab.cli import main

pytestmark = pytest.mark.timeout(600)  # nbgrader and Sphinx

TOY_CHAPTER = '''# %% [markdown]
# # 01 · A toy chapter
#
# Doubling, where $y = 2x$.

# %%
#| include: toy.py

# %%
#| grade: test_double_values test_double_reference test_double_negative

# %%
print("an experiment's output")

# %%
#| grade: test_counter
'''


@pytest.fixture
def built(synced_course):
    """Built, released and "executed" notebooks: every code cell gets an output, as a run
    would give it (a real execution is gate 6's job)."""
    (synced_course / "notebooks").mkdir()
    (synced_course / "notebooks/01_toy.py").write_text(TOY_CHAPTER)
    folder = synced_course / "build/notebooks"
    chapters.build(None, folder)
    nbgrade.release(folder, folder / "release")
    nb = nbformat.read(folder / "source/01_toy/01_toy.ipynb", as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=f"ran: {cell.source[:20]}\n")]
    (folder / "executed").mkdir()
    nbformat.write(nb, folder / "executed/01_toy.ipynb")
    return folder


def _notebooks(built):
    executed = nbformat.read(built / "executed/01_toy.ipynb", as_version=4)
    released = nbformat.read(built / "release/01_toy/01_toy.ipynb", as_version=4)
    return executed, released


def test_the_public_edition_shows_what_the_student_gets_and_keeps_the_experiments(built):
    executed, released = _notebooks(built)
    page = site.chapter(executed, released, "01_toy")
    text = nbformat.writes(page)
    assert "return 2 * x" not in text and "NotImplementedError" in text
    assert "test_double_negative" not in text  # the hidden test, gone with the release
    assert "nbgrader" not in text
    [experiment] = [c for c in page.cells if "an experiment" in c.source]
    assert experiment.outputs, "a plain cell keeps its outputs"
    graded = [c for c in page.cells if "run_graders" in c.source]
    assert graded and all(not c.outputs for c in graded), "a check cell's result belongs to the reader's own run"
    notes = [c.source for c in page.cells if c.cell_type == "markdown" and "*Exercise:*" in c.source]
    assert notes == ["*Exercise:* you write `double`, `Counter` here, or in `exercises/01_toy/toy.py`."]
    assert "Work on this chapter" in page.cells[1].source and "pytest exercises/01_toy" in page.cells[1].source


def test_the_instructor_edition_marks_each_solution_and_a_stale_release_is_named(built):
    executed, released = _notebooks(built)
    assert site.units(executed) == [("toy.py", "double"), ("toy.py", "Counter")]
    text = nbformat.writes(site.chapter(executed, released, "01_toy", edition="instructor"))
    assert "return 2 * x" in text and text.count("Solution (instructor edition)") == 1
    released.cells = [c for c in released.cells if "double" not in c.source]
    with pytest.raises(site.BookError, match="llmlab notebooks release 01_toy"):
        site.chapter(executed, released, "01_toy")


def test_the_site_builds_with_the_parts_a_download_and_math(built, tmp_path):
    import shutil
    shutil.rmtree(built / "release")  # a missing student notebook is released on the way
    out, pages = site.build(built, tmp_path / "site")
    assert (built / "release/01_toy/01_toy.ipynb").exists()
    assert pages == len(list(out.rglob("*.html"))) and (out / "chapters/01_toy.html").exists()
    home = (out / "index.html").read_text()
    assert "Part 1 — Foundations" in home and "<code class=\"docutils literal notranslate\"><span class=\"pre\">double</span></code>" in home
    assert "Part 2" not in home  # parts without chapters are left out
    chapter = (out / "chapters/01_toy.html").read_text()
    assert 'class="math notranslate nohighlight"' in chapter and "mathjax/tex-svg.js" in chapter
    assert "return 2 * x" not in chapter
    [download] = list((out / "_downloads").rglob("01_toy.ipynb"))
    assert nbgrade.audit(download.parent) == []
    assert (out / "_static/mathjax/tex-svg.js").exists() and not (out / "_static/mathjax/tex-chtml.js").exists() and (out / "searchindex.js").exists()
    assert (out / "setup.html").exists()


def test_the_command_builds_both_editions(built, capsys):
    assert main(["book", "build", "--edition", "instructor"]) == 0
    out = built.parent / "site-instructor"
    assert "Solution (instructor edition)" in (out / "chapters/01_toy.html").read_text()
    assert "instructor edition: " in capsys.readouterr().out


def test_no_executed_chapters_say_what_to_run(synced_course, capsys):
    assert main(["book", "build"]) == 1
    assert "llmlab notebooks execute" in " ".join(capsys.readouterr().out.split())


def test_missing_site_tools_say_what_to_install(synced_course, monkeypatch):
    monkeypatch.setitem(__import__("sys").modules, "myst_nb", None)
    with pytest.raises(site.BookError, match="python install.py --site"):
        site.build(synced_course / "build/notebooks")
