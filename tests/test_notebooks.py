"""Chapters on the toy course: execution output, autograde messages, feedback, tampering."""

import json

import nbformat
import pytest

from llmlab.book import chapters, nbgrade
from llmlab.cli import main

pytestmark = pytest.mark.timeout(600)  # nbgrader and Jupyter kernels

def test_execute_says_where_it_wrote_and_the_reader_sees_no_markers(chapter_course, capfd):
    assert main(["notebooks", "build"]) == 0
    assert main(["notebooks", "execute"]) == 0
    out, err = capfd.readouterr()
    executed = chapter_course / "build/notebooks/executed/01_toy.ipynb"
    assert str(executed) in " ".join(out.split()).replace(" ", "") or str(executed) in out.replace("\n", "")
    assert "without encryption" not in out + err and "TCP" not in out + err
    text = executed.read_text()
    assert "return 2 * x" in text
    for marker in ("BEGIN SOLUTION", "END SOLUTION", "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"):
        assert marker not in text, marker


def _submission(source: nbformat.NotebookNode, old: str, new: str) -> nbformat.NotebookNode:
    nb = nbformat.from_dict(json.loads(json.dumps(source)))
    [cell] = [c for c in nb.cells if old in c.source]
    cell.source = cell.source.replace(old, new)
    return nb


def test_autograde_carries_messages_writes_feedback_and_zeroes_tampering(chapter_course, tmp_path):
    built = tmp_path / "built"
    chapters.build(None, built)
    source = nbformat.read(built / "source/01_toy/01_toy.ipynb", as_version=4)
    subs = tmp_path / "subs"
    wrong = _submission(source, "return 2 * x", "return x")
    patched = _submission(source, "return 2 * x", "import llmlab.testing.check as c\n    c.close = c.equal = "
                                                   "lambda *a, **k: None\n    return x")
    for student, nb in (("wrong", wrong), ("patcher", patched)):
        (subs / student).mkdir(parents=True)
        nbformat.write(nb, subs / student / "01_toy.ipynb")
    result = nbgrade.autograde(built, subs)
    by = {s["student"]: s["topics"][0] for s in result["students"]}
    wrong_cells = {t["id"].split("::")[-1]: t for t in by["wrong"]["tests"]}
    values = wrong_cells["check-02-double_values"]
    assert values["points"] == 0 and "FAIL test_double_values" in values["message"], values
    assert "known mistake: returned the input unchanged" in values["message"], values["message"]
    assert by["patcher"]["score"] <= by["wrong"]["score"], (by["patcher"], by["wrong"])
    assert any("tampering" in t["message"] for t in by["patcher"]["tests"]), by["patcher"]["tests"]
    feedback = nbgrade.write_feedback(result, tmp_path / "feedback")
    text = (tmp_path / "feedback/wrong/01_toy.md").read_text()
    assert tmp_path / "feedback/wrong/01_toy.md" in feedback and "returned the input unchanged" in text
    assert "-torch.ones(3)" not in text and "def test_" not in text, "feedback must not show test source"


def test_release_of_named_chapters_replaces_only_their_folders(chapter_course, tmp_path):
    built, out = tmp_path / "built", tmp_path / "release"
    chapters.build(None, built)
    (out / "02_other").mkdir(parents=True)
    (out / "02_other/02_other.ipynb").write_text("{}")
    released = nbgrade.release(built, out, slugs=["01_toy"])
    assert released == [out / "01_toy/01_toy.ipynb"]
    assert "return 2 * x" not in released[0].read_text()
    assert (out / "02_other/02_other.ipynb").exists(), "releasing one chapter must keep the others"
    with pytest.raises(nbgrade.NbgraderError, match="llmlab notebooks build 02_other"):
        nbgrade.release(built, out, slugs=["02_other"])
