"""Gate 7, the topic contract: a topic missing any part fails with a message that names it."""

import shutil

import pytest

from conftest import write
from llmlab.authoring import contract
from llmlab.course import topics

MUTANTS = '''
from llmlab.authoring.mutants import Mutant, Variant

MUTANTS = [Mutant(f"times {i}", "toy.py", find="return 2 * x", replace=f"return {i} * x") for i in range(10)]
VARIANTS = [Variant("sum", "toy.py", find="return 2 * x", replace="return x + x"),
            Variant("shift", "toy.py", find="return 2 * x", replace="return x * 2"),
            Variant("mul", "toy.py", find="return 2 * x", replace="return x.mul(2)")]
'''

CHAPTER = '''# %% [markdown]
# # Toy
'''


@pytest.fixture
def complete_course(synced_course):
    write(synced_course / "graders/01_toy/mutants.py", MUTANTS)
    write(synced_course / "notebooks/01_toy.py", CHAPTER)
    return synced_course


def test_a_complete_topic_meets_the_contract(complete_course, capsys):
    class Console:
        def print(self, text, **_):
            print(text)

    assert contract.main(topics.available(), Console()) == 0, capsys.readouterr().out
    assert "01_toy: complete" in capsys.readouterr().out


REMOVALS = {
    "solution": ("solutions/01_toy/toy.py", "no solution"),
    "skeleton": ("exercises/01_toy/toy.py", "no skeleton exercises/01_toy/toy.py"),
    "pytest entry": ("exercises/01_toy/test_01_toy.py", "no pytest entry"),
    "public graders": ("graders/01_toy/test_toy.py", "no public graders"),
    "hidden graders": ("graders/01_toy/test_toy_hidden.py", "no hidden graders"),
    "fixture generator": ("graders/01_toy/fixtures.py", "no reference data generator"),
    "reference data": ("reference/01_toy", "no reference data"),
    "mutant catalogue": ("graders/01_toy/mutants.py", "mutant catalogue: 0 mutants"),
    "chapter": ("notebooks/01_toy.py", "no chapter"),
}


@pytest.mark.parametrize("part", sorted(REMOVALS))
def test_a_missing_part_is_named(complete_course, part):
    path, message = REMOVALS[part]
    target = complete_course / path
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    problems = contract.missing_parts(topics.resolve("01_toy"))
    assert any(message in p for p in problems), f"removing the {part}: {problems}"


def test_too_few_mutants_or_variants_are_named(complete_course):
    text = MUTANTS.replace("range(10)", "range(9)").replace(
        '            Variant("mul", "toy.py", find="return 2 * x", replace="return x.mul(2)")]', "]")
    write(complete_course / "graders/01_toy/mutants.py", text)
    problems = contract.missing_parts(topics.resolve("01_toy"))
    assert any("9 mutants" in p and "at least 10" in p for p in problems), problems
    assert any("correct variants: 2" in p for p in problems), problems


def test_a_branch_the_public_graders_never_take_fails_coverage(complete_course):
    solution = complete_course / "solutions/01_toy/toy.py"
    solution.write_text(solution.read_text().replace(
        "    return 2 * x\n", "    if x.numel() > 10**6:\n        return x + x\n    return 2 * x\n"))
    [result] = contract.coverage_all([topics.resolve("01_toy")])
    assert any("line never runs" in m for m in result["missing"]), result
    assert any("the branch to line" in m for m in result["missing"]), result


def test_an_exclusion_needs_its_reason(complete_course):
    solution = complete_course / "solutions/01_toy/toy.py"
    solution.write_text(solution.read_text().replace("    return 2 * x\n", "    return 2 * x  # pragma: no cover\n"))
    problems = contract.missing_parts(topics.resolve("01_toy"))
    assert any("a coverage exclusion without its reason" in p for p in problems), problems
    solution.write_text(solution.read_text().replace("# pragma: no cover", "# pragma: no cover - only on GPUs, never here"))
    assert not any("exclusion" in p for p in contract.missing_parts(topics.resolve("01_toy")))
