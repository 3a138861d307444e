"""The command line, and the student bundle made by `llmlab release`."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmlab.authoring import release
from llmlab.cli import build_parser, main
from llmlab.course import topics

REPO = Path(__file__).resolve().parent.parent


def test_help_lists_every_command():
    text = build_parser().format_help()
    for command in ("list", "grade", "sync", "fixtures", "mutants", "release", "doctor"):
        assert command in text, f"`llmlab --help` does not mention {command}"


def test_unknown_topic_is_a_clear_error(course, capsys):
    with pytest.raises(SystemExit) as info:
        main(["grade", "99_nothing"])
    assert info.value.code == 2
    assert "unknown topic '99_nothing'" in capsys.readouterr().out


def test_list_shows_todos_left(synced_course, capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    assert "01_toy" in out and "double" in out


def test_sync_check_exit_codes(synced_course):
    assert main(["sync", "--check"]) == 0
    (synced_course / "exercises/01_toy/toy.py").write_text("# emptied\n")
    assert main(["sync", "--check"]) == 1


def test_doctor_reports_problems_with_fixes(synced_course, capsys):
    (synced_course / "reference/01_toy/info.json").write_text("{}")
    main(["doctor"])
    out = capsys.readouterr().out
    assert "01_toy: reference data intact (changed: info.json)" in out
    assert "fix: restore it" in out


def test_release_refuses_to_write_into_the_checkout(synced_course):
    with pytest.raises(release.ReleaseError, match="outside"):
        release.release(synced_course / "bundle")


def test_release_leaves_out_solutions_and_hidden_tests(synced_course, tmp_path):
    out = release.release(tmp_path / "bundle")
    files = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert not any(f.startswith("solutions/") for f in files)
    assert "graders/01_toy/test_toy.py" in files
    assert "graders/01_toy/test_toy_hidden.py" not in files and "graders/01_toy/fixtures.py" not in files
    assert "exercises/01_toy/toy.py" in files and "reference/01_toy/manifest.json" in files
    assert release.audit(out) == []
    (out / "graders/01_toy/test_toy_hidden.py").write_text("import pytest\n@pytest.mark.hidden\ndef test_x(): pass\n")
    assert any("hidden" in p for p in release.audit(out))
    with pytest.raises(release.ReleaseError, match="not empty"):
        release.release(out)
