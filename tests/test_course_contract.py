"""Contracts every real topic must keep (checked on the course repository itself)."""

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

from llmlab.authoring import release, sync
from llmlab.course import topics

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def collected(tmp_path_factory):
    """Every grader test of the repository, with points and markers (one collection run)."""
    out = tmp_path_factory.mktemp("collect") / "c.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider",
                           "--llmlab-collect", str(out), "graders"], cwd=REPO, capture_output=True, text=True,
                          env={**__import__("os").environ, "LLMLAB_ROOT": str(REPO)}, timeout=300)
    assert out.exists(), proc.stdout + proc.stderr
    return json.loads(out.read_text())


def real_topics():
    import os
    os.environ.setdefault("LLMLAB_ROOT", str(REPO))
    return [t for t in topics.available()]


def test_every_grader_test_carries_points(collected):
    missing = [t["id"] for t in collected if t["points"] <= 0]
    assert not missing, f"tests without @pytest.mark.points: {missing}"


def test_hidden_tests_live_exactly_in_hidden_files(collected):
    for test in collected:
        in_hidden_file = Path(test["id"].split("::")[0]).stem.endswith("_hidden")
        assert test["hidden"] == in_hidden_file, (
            f"{test['id']}: tests in test_*_hidden.py must be marked hidden, and only those")


def test_grader_file_names_are_unique_across_topics():
    seen = {}
    for path in sorted((REPO / "graders").glob("*/test_*.py")):
        assert path.name not in seen, f"{path} and {seen[path.name]} share a file name"
        seen[path.name] = path


def test_solution_regions_cover_whole_unit_bodies():
    """The skeleton raises at once: no statement before a region inside the same unit, except
    docstrings, `super().__init__()` and hint comments (graders rely on immediate NIE)."""
    for path in sorted((REPO / "solutions").glob("*/*.py")):
        skeleton = sync.make_skeleton(path.read_text(), path, path.parent.name)
        tree = ast.parse(skeleton)
        for node in ast.walk(tree):
            if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                continue
            body = [s for s in node.body if not (isinstance(s, ast.Expr) and isinstance(s.value, ast.Constant))]
            raises = [i for i, s in enumerate(body) if isinstance(s, ast.Raise) and "TODO" in ast.unparse(s)]
            if not raises:
                continue
            before = [ast.unparse(s) for s in body[: raises[0]] if "super().__init__" not in ast.unparse(s)]
            assert not before, f"{path}:{node.lineno} {node.name}: code runs before the TODO: {before}"


def test_graders_never_import_solutions():
    for path in (REPO / "graders").rglob("*.py"):
        if path.name in release.GRADER_EXCLUDE:
            continue
        text = path.read_text()
        assert "import solutions" not in text and "from solutions" not in text, path
        assert "\"solutions\"" not in text and "'solutions'" not in text, f"{path} names the solutions folder"


def test_reference_folder_stays_small():
    total = sum(p.stat().st_size for p in (REPO / "reference").rglob("*") if p.is_file())
    assert total < 5 * 1024 * 1024, f"reference/ is {total / 1e6:.1f} MB; the budget is a few MB"


def _grader_files():
    return sorted(p for p in (REPO / "graders").glob("*/*.py") if p.name not in ("mutants.py", "fixtures.py"))


def test_graders_never_import_private_names_of_other_modules():
    """Helpers shared within a topic live in a public helper module; no test_*.py imports
    from another test module, and nothing imports a _private name from a grader module."""
    local = {p.stem for p in (REPO / "graders").glob("*/*.py")}
    for path in _grader_files():
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module in local:
                assert not node.module.startswith("test_"), f"{path}:{node.lineno} imports the test module {node.module}"
                private = [a.name for a in node.names if a.name.startswith("_")]
                assert not private, f"{path}:{node.lineno} imports private {private} from {node.module}"
            if isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("test_"), f"{path}:{node.lineno} imports the test module {alias.name}"


def test_graders_use_the_toolkit_for_errors_and_hypothesis_settings():
    """`check.expect_raises`, not pytest.raises (it names the unit and the input); the course
    hypothesis profile, not local phases or health checks (llmlab.testing.strategies)."""
    for path in _grader_files():
        text = path.read_text()
        assert "pytest.raises(" not in text, f"{path}: use check.expect_raises, which names the unit and input"
        for name in ("HealthCheck", "Phase", "suppress_health_check"):
            assert name not in text, f"{path}: {name}: the course profile owns it; use strategies.examples(n)"
