"""Where things live in a course checkout (or a student bundle).

The root is the folder that holds `llmlab/`, `graders/` and `exercises/`. It is found from
the `LLMLAB_ROOT` environment variable if set, else from this package's location (the
course is installed in editable mode, so the package sits inside the checkout).
"""

from __future__ import annotations

import os
from pathlib import Path


def root() -> Path:
    env = os.environ.get("LLMLAB_ROOT")
    if env:
        return Path(env).resolve()
    return Path(__file__).resolve().parents[2]


def solutions_dir() -> Path:
    return root() / "solutions"


def exercises_dir() -> Path:
    return root() / "exercises"


def graders_dir() -> Path:
    return root() / "graders"


def reference_dir() -> Path:
    return root() / "reference"


def state_dir() -> Path:
    """Per-checkout scratch state (last grade report); ignored by git."""
    return root() / ".llmlab"
