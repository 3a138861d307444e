"""The command line, and the student bundle made by `llmlab release`."""

from pathlib import Path

import pytest

from llmlab.authoring import release
from llmlab.cli import build_parser, main

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


TOY_CHAPTER = '''# %% [markdown]
# # A toy chapter

# %%
#| include: toy.py

# %%
#| grade: test_double_values test_double_reference test_counter test_double_negative
'''


def test_release_includes_the_student_notebooks(synced_course, tmp_path):
    (synced_course / "notebooks").mkdir()
    (synced_course / "notebooks/01_toy.py").write_text(TOY_CHAPTER)
    assert main(["release", str(tmp_path / "bundle")]) == 0
    notebook = tmp_path / "bundle/notebooks/01_toy.ipynb"
    text = notebook.read_text()
    assert "run_graders" in text and "YOUR CODE HERE" in text
    assert "BEGIN SOLUTION" not in text and "test_double_negative" not in text and "return 2 * x" not in text


def test_release_never_leaves_a_partial_folder(synced_course, tmp_path):
    def broken(folder):
        raise release.ReleaseError("planted failure while writing")

    with pytest.raises(release.ReleaseError, match="planted"):
        release.release(tmp_path / "bundle", add=broken)
    left = [p.name for p in tmp_path.iterdir() if p.name != "course"]
    assert left == [], f"a failed release left files behind: {left}"


@pytest.mark.parametrize("command", [["sync"], ["fixtures"], ["mutants"], ["mutate"], ["contract"],
                                     ["release", "elsewhere"], ["notebooks", "build"]])
def test_maintainer_commands_refuse_inside_a_bundle(synced_course, tmp_path, monkeypatch, capsys, command):
    bundle = release.release(tmp_path / "bundle")
    monkeypatch.setenv("LLMLAB_ROOT", str(bundle))
    monkeypatch.chdir(bundle)
    assert main(command) == 2
    out = " ".join(capsys.readouterr().out.split())
    assert "is a course maintainer's command and needs solutions/" in out and "llmlab grade" in out
    assert not (bundle / "elsewhere").exists()


def test_doctor_finds_nothing_wrong_with_the_course_set_up(monkeypatch, capsys):
    """Every module doctor checks is a dependency of pyproject.toml, installed by the set-up."""
    monkeypatch.setenv("LLMLAB_ROOT", str(REPO))
    assert main(["doctor"]) == 0, capsys.readouterr().out


def test_topics_may_follow_options_and_stray_arguments_are_refused(capsys):
    from llmlab import cli
    assert cli.parse(["notebooks", "build", "--dir", "X", "06_llama", "07_moe"]).topics == ["06_llama", "07_moe"]
    assert cli.parse(["grade", "--json", "F", "3"]).topics == ["3"]
    for argv in (["doctor", "extra"], ["grade", "01_tokenizer", "--no-such-flag"]):
        try:
            cli.parse(argv)
        except SystemExit as exc:
            assert exc.code == 2
        else:
            raise AssertionError(f"{argv} was accepted")
    assert "unrecognized arguments" in capsys.readouterr().err
