"""`llmlab mutate`: automatic mutants of the solution regions, judged by the graders."""

from conftest import write
from llmlab.authoring import mutate
from llmlab.course import topics


class Console:
    def __init__(self):
        self.lines = []

    def print(self, text, **_):
        self.lines.append(str(text))


def test_mutants_come_only_from_solution_regions(tmp_path):
    source = write(tmp_path / "m.py", '''
        def f(x, y):
            """x < y outside the region is left alone."""
            z = x + 1
            ### BEGIN SOLUTION
            if x < y and not z:
                return -x * 2.5
            ### END SOLUTION
    ''')
    ids = [g.id for g in mutate.generate(source, "m.py")]
    assert "m.py: `<` -> `<=` in `if x < y and not z:`" in ids
    assert "m.py: `and` -> `or` in `if x < y and not z:`" in ids
    assert "m.py: `not` -> `` in `if x < y and not z:`" in ids
    assert "m.py: `*` -> `/` in `return -x * 2.5`" in ids
    assert "m.py: `2.5` -> `5.0` in `return -x * 2.5`" in ids
    assert "m.py: `-` -> `` in `return -x * 2.5`" in ids
    assert not any("z = x + 1" in i for i in ids), "code outside the region must not be mutated"
    for g in mutate.generate(source, "m.py"):
        text = source.read_text()
        mutated = text[:g.start] + g.replacement + text[g.end:]
        compile(mutated, "m.py", "exec")  # every mutant is valid Python


def test_the_toy_graders_kill_every_mutant(synced_course):
    figures = mutate.run(topics.resolve("01_toy"), Console())
    assert figures["mutants"] >= 6 and figures["survivors"] == 0 and figures["kill_rate"] == 1.0, figures


def test_survivors_are_reported_until_listed_as_equivalent(synced_course):
    solution = synced_course / "solutions/01_toy/toy.py"
    solution.write_text(solution.read_text().replace("    return 2 * x\n", "    return 2 * x + 0 * x\n"))
    console = Console()
    figures = mutate.run(topics.resolve("01_toy"), console)
    survivor = "toy.py: `+` -> `-` in `return 2 * x + 0 * x`"
    assert figures["survivors"] >= 1 and any(survivor in line for line in console.lines), console.lines
    write(synced_course / "graders/01_toy/mutants.py",
          f'EQUIVALENT = {{"{survivor}": "0 * x is zero, so adding or subtracting it changes nothing",\n'
          f'              "toy.py: gone": "a mutant that no longer exists"}}\n')
    console = Console()
    listed = mutate.run(topics.resolve("01_toy"), console)
    assert listed["equivalent"] >= 1 and listed["survivors"] == figures["survivors"] - listed["equivalent"]
    assert any("stale EQUIVALENT entry" in line and "toy.py: gone" in line for line in console.lines)
    assert listed["kill_rate_non_equivalent"] > listed["kill_rate"]
