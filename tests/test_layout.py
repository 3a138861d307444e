"""The package layout: imports inside llmlab run downward only (docs/architecture.md)."""

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "llmlab"

# Lower numbers sit lower; a module may import its own subpackage or a strictly lower layer.
LAYERS = {"course": 0, "lib": 1, "testing": 1, "grading": 2, "authoring": 3, "student": 3, "book": 4, "classroom": 5, "cli": 6}


def _layer_of(package: Path, path: Path) -> str:
    rel = path.relative_to(package)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, dotted module) of every absolute import, function-level ones included."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.lineno, node.module))
            if node.module == "llmlab":
                found.extend((node.lineno, f"llmlab.{alias.name}") for alias in node.names)
        elif isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
    return found


def layering_problems(package: Path) -> list[str]:
    problems = []
    for path in sorted(package.rglob("*.py")):
        own = _layer_of(package, path)
        if own == "__init__":
            continue
        if own not in LAYERS:
            problems.append(f"llmlab/{path.relative_to(package)} is in no layer")
            continue
        for line, module in _imports(path):
            parts = module.split(".")
            if parts[0] != "llmlab" or len(parts) < 2 or parts[1] == own:
                continue
            target = parts[1]
            if target not in LAYERS or LAYERS[target] >= LAYERS[own]:
                problems.append(f"llmlab/{path.relative_to(package)}:{line}: {own} imports {module}")
    return problems


def test_imports_inside_llmlab_run_downward():
    problems = layering_problems(PACKAGE)
    assert not problems, "imports must point to a lower layer (docs/architecture.md):\n" + "\n".join(problems)


def test_an_upward_or_sideways_import_is_caught(tmp_path):
    (tmp_path / "testing").mkdir()
    (tmp_path / "testing" / "check.py").write_text("def f():\n    from llmlab.grading import grade\n")
    (tmp_path / "student").mkdir()
    (tmp_path / "student" / "doctor.py").write_text("from llmlab import authoring\nfrom llmlab.course import paths\n")
    (tmp_path / "extra").mkdir()
    (tmp_path / "extra" / "x.py").write_text("")
    problems = layering_problems(tmp_path)
    assert problems == ["llmlab/extra/x.py is in no layer",
                        "llmlab/student/doctor.py:1: student imports llmlab.authoring",
                        "llmlab/testing/check.py:2: testing imports llmlab.grading"], problems
