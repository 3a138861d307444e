"""The rough edges a new user hit (issue: every rough edge a new user hits), on the toy course:
each test failed before its fix."""

import io
import os
import shutil
import time

import pytest
from rich.console import Console

from conftest import write
from llmlab.cli import main
from llmlab.course import topics
from llmlab.grading import grade
from llmlab.student import progress

pytestmark = pytest.mark.timeout(600)  # these grade a toy course in child processes


def two_topics(course):
    write(course / "solutions/02_calm/calm.py", '''
        def answer() -> int:
            """The answer."""
            ### BEGIN SOLUTION
            return 42
            ### END SOLUTION
    ''')
    write(course / "graders/02_calm/test_calm.py",
          "import pytest\nfrom llmlab.testing import check\n\n@pytest.mark.points(1)\ndef test_calm(impl):\n"
          "    check.equal(impl.answer(), 42, unit='answer')\n")
    from llmlab.authoring import sync
    sync.sync(topics.available())


def out_of(capsys) -> str:
    return " ".join(capsys.readouterr().out.split())  # rich wraps long lines


def test_a_missing_or_empty_impl_folder_is_an_error(synced_course, tmp_path, capsys):
    assert main(["grade", "--impl", str(tmp_path / "nowhere")]) == 2
    out = out_of(capsys)
    assert "no such folder" in out and "grading" not in out
    (tmp_path / "empty").mkdir()
    assert main(["grade", "--impl", str(tmp_path / "empty")]) == 2
    assert "no implementation in it" in out_of(capsys)


def test_a_syntax_error_or_a_deleted_file_is_one_message_and_a_status(course, capsys):
    two_topics(course)
    write(course / "exercises/01_toy/toy.py", "def double(x):\n    return 2 *\n")
    (course / "exercises/02_calm/calm.py").unlink()
    report = grade.grade(topics.available(), quiet=True, jobs=2)
    broken, deleted = report["topics"]
    assert broken["status"] == "import error", broken["status"]
    assert "exercises/01_toy/toy.py failed, line 2" in broken["detail"]
    assert deleted["status"] == "missing file" and "`llmlab sync 02_calm` restores the skeleton" in deleted["detail"]
    console = Console(file=io.StringIO(), width=300)
    grade.print_table(console, report)
    assert console.file.getvalue().count("Fix this error first") == 1, console.file.getvalue()
    assert main(["list"]) == 0
    out = out_of(capsys)
    assert "calm.py missing" in out and "done" not in out


def test_grading_one_topic_keeps_the_others_progress(course, capsys):
    two_topics(course)
    shutil.copy2(course / "solutions/02_calm/calm.py", course / "exercises/02_calm/calm.py")
    assert main(["grade", "02"]) == 0
    assert main(["grade", "01"]) == 0
    progress.record({"impl": "solutions", "topics": [{"topic": "01_toy", "score": 5.0, "max_score": 5.0,
                                                        "status": "ok"}]})  # not the student's work
    capsys.readouterr()
    main(["list"])
    out = out_of(capsys)
    assert "1 / 1" in out and "0 / 5" in out, out


def test_next_todo_follows_the_topic_being_worked_on(course, capsys):
    two_topics(course)
    os.utime(course / "exercises/02_calm/calm.py", (time.time() + 5, time.time() + 5))  # newest, but untouched
    main(["grade"])
    assert "Next TODO: 01_toy: double" in out_of(capsys), "nothing edited yet: course order"
    edited = course / "exercises/02_calm/calm.py"
    edited.write_text(edited.read_text() + "\n")   # the student is working on 02
    os.utime(edited, (time.time() + 5, time.time() + 5))
    main(["grade"])
    assert "Next TODO: 02_calm: answer" in out_of(capsys)
