"""`llmlab sync`: skeleton generation, drift detection, and protection of student edits."""

from pathlib import Path

import pytest

from llmlab.authoring import sync
from llmlab.course import topics


def test_skeleton_replaces_each_region_with_a_named_todo(course):
    src = (course / "solutions/01_toy/toy.py").read_text()
    out = sync.make_skeleton(src, Path("toy.py"), "01_toy")
    assert "return 2 * x" not in out and "self.n += 1" not in out, "solution code leaked into the skeleton"
    assert 'raise NotImplementedError("TODO 01_toy: double")' in out
    assert 'raise NotImplementedError("TODO 01_toy: Counter.tick")' in out
    assert "# Hint: one line." in out, "hint comments above a region must stay"
    assert '"""Return 2·x, same shape and dtype."""' in out, "docstrings must stay"
    assert "BEGIN SOLUTION" not in out and "END SOLUTION" not in out


def test_skeleton_keeps_indentation_and_compiles(course):
    src = (course / "solutions/01_toy/toy.py").read_text()
    out = sync.make_skeleton(src, Path("toy.py"), "01_toy")
    compile(out, "toy.py", "exec")
    line = next(l for l in out.splitlines() if "Counter.tick" in l and "raise" in l)
    assert line.startswith(" " * 8 + "raise"), f"method-level TODO lost its indentation: {line!r}"


@pytest.mark.parametrize("source, error", [
    ("def f():\n    ### BEGIN SOLUTION\n    return 1\n", "without ### END"),
    ("def f():\n    return 1\n    ### END SOLUTION\n", "without ### BEGIN"),
    ("### BEGIN SOLUTION\nX = 1\n### END SOLUTION\n", "inside a function"),
    ("def f():\n    ### BEGIN SOLUTION\n    ### BEGIN SOLUTION\n    pass\n    ### END SOLUTION\n", "nested"),
    ("def f(:\n    pass\n", "does not parse"),
])
def test_malformed_regions_are_reported_with_their_line(source, error):
    with pytest.raises(sync.SyncError, match=error):
        sync.make_skeleton(source, Path("bad.py"), "01_toy")


def test_sync_writes_skeleton_and_entry_then_check_is_clean(course):
    result = sync.sync(topics.available())
    names = sorted(p.name for p in result.written)
    assert names == ["test_01_toy.py", "toy.py"], names
    assert sync.sync(topics.available(), check=True).drift == []


def test_check_reports_drift_when_a_solution_changes(course):
    sync.sync(topics.available())
    sol = course / "solutions/01_toy/toy.py"
    sol.write_text(sol.read_text().replace("Return 2·x", "Return twice x"))
    drift = sync.sync(topics.available(), check=True).drift
    assert any("toy.py" in d for d in drift), drift


def test_student_edits_are_kept_unless_forced(course):
    sync.sync(topics.available())
    exercise = course / "exercises/01_toy/toy.py"
    edited = exercise.read_text().replace('raise NotImplementedError("TODO 01_toy: double")', "return x + x")
    exercise.write_text(edited)
    sol = course / "solutions/01_toy/toy.py"
    sol.write_text(sol.read_text() + "\n# changed\n")
    result = sync.sync(topics.available())
    assert exercise in result.kept_edited and exercise.read_text() == edited, "a student's work was overwritten"
    result = sync.sync(topics.available(), force=True)
    assert exercise in result.written and "# changed" in exercise.read_text()


def test_force_backs_up_an_edited_file_and_upstream_changes_are_announced(course):
    sync.sync(topics.available())
    exercise = course / "exercises/01_toy/toy.py"
    edited = exercise.read_text().replace('raise NotImplementedError("TODO 01_toy: double")', "return x + x")
    exercise.write_text(edited)
    assert sync.sync(topics.available()).changed_upstream == [], "nothing changed upstream yet"
    sol = course / "solutions/01_toy/toy.py"
    sol.write_text(sol.read_text().replace("Return 2·x", "Return twice x"))
    result = sync.sync(topics.available())
    upstream = course / "exercises/01_toy/toy.py.upstream"
    assert result.changed_upstream == [upstream] and "Return twice x" in upstream.read_text()
    assert exercise.read_text() == edited
    drift = sync.sync(topics.available(), check=True).drift
    assert any("was edited" in d and "`llmlab sync --force 01_toy`" in d for d in drift), drift
    result = sync.sync(topics.available(), force=True)
    [backup] = result.backups
    assert backup.read_text() == edited and ".llmlab/backups/" in backup.as_posix()
    assert "Return twice x" in exercise.read_text()
