"""Fixtures for the harness's own tests: a tiny course built in a temporary folder."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

TOY_SOLUTION = '''\
"""A toy topic for the harness tests."""

import torch


def double(x: torch.Tensor) -> torch.Tensor:
    """Return 2·x, same shape and dtype."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION


class Counter:
    """Counts calls."""

    def __init__(self):
        self.n = 0

    def tick(self) -> int:
        """Add one and return the new count."""
        # Hint: one line.
        ### BEGIN SOLUTION
        self.n += 1
        return self.n
        ### END SOLUTION
'''

TOY_GRADERS = '''\
import pytest
import torch

from llmlab.testing import check, reference


@pytest.mark.points(2)
def test_double_values(impl):
    x = torch.arange(4.0)
    check.close(impl.double(x), 2 * x, unit="double", case=check.describe(x=x),
                mistakes={"returned the input unchanged": x})


@pytest.mark.points(1)
def test_double_reference(impl):
    ref = reference.load("01_toy", "double")
    check.close(impl.double(ref["x"]), ref["y"], unit="double")


@pytest.mark.points(1)
def test_counter(impl):
    c = impl.Counter()
    check.equal([c.tick(), c.tick()], [1, 2], unit="Counter.tick")
'''

TOY_HIDDEN = '''\
import pytest
import torch

from llmlab.testing import check


@pytest.mark.hidden
@pytest.mark.points(1)
def test_double_negative(impl):
    x = -torch.ones(3)
    check.close(impl.double(x), 2 * x, unit="double")
'''

TOY_FIXTURES = '''\
import torch

SEED = 3


def generate(impl):
    x = torch.randn(5)
    return {"double": {"x": x, "y": impl.double(x)}, "info": {"n": 5}}
'''

TOY_CHAPTER = '''# %% [markdown]
# # A toy chapter

# %%
#| include: toy.py

# %%
#| grade: test_double_values test_double_reference

# %%
#| grade: test_counter test_double_negative
'''


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


@pytest.fixture
def course(tmp_path, monkeypatch):
    """A course checkout with one topic, 01_toy; LLMLAB_ROOT points at it."""
    root = tmp_path / "course"
    root.mkdir()
    for name in ("conftest.py", "pyproject.toml"):
        shutil.copy2(REPO / name, root / name)
    write(root / "solutions/01_toy/toy.py", TOY_SOLUTION)
    write(root / "graders/01_toy/test_toy.py", TOY_GRADERS)
    write(root / "graders/01_toy/test_toy_hidden.py", TOY_HIDDEN)
    write(root / "graders/01_toy/fixtures.py", TOY_FIXTURES)
    monkeypatch.setenv("LLMLAB_ROOT", str(root))
    monkeypatch.chdir(root)
    return root


@pytest.fixture
def synced_course(course):
    from llmlab.authoring import fixtures
    from llmlab.authoring import sync
    from llmlab.course import topics
    sync.sync(topics.available())
    for topic in topics.available():
        fixtures.write(topic)
    return course


@pytest.fixture
def chapter_course(synced_course):
    (synced_course / "notebooks").mkdir()
    (synced_course / "notebooks/01_toy.py").write_text(TOY_CHAPTER)
    return synced_course
