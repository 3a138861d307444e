""""From scratch" enforcement: forbid the PyTorch functions a unit re-implements.

    with forbid("softmax", ["torch.softmax", "torch.nn.functional.softmax", "torch.Tensor.softmax"]):
        out = impl.softmax(x)

or, for one call, `out = call_without("softmax", SOFTMAX_BUILTINS, impl.softmax, x)`.

While the block runs, each named function is replaced by a stub that records the call and
raises `ForbiddenCall`. On exit the originals are restored, and if any forbidden function was
called (even if the student's code caught the exception) the check fails with a message
that names the function.
"""

from __future__ import annotations

import importlib
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from llmlab.testing import check
from llmlab.testing.check import GradingFailure


class ForbiddenCall(GradingFailure):
    pass


def _owner(path: str):
    """Resolve 'torch.nn.functional.softmax' to (module_or_class, 'softmax')."""
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attr in parts[cut:-1]:
            obj = getattr(obj, attr)
        return obj, parts[-1]
    raise ValueError(f"cannot resolve {path!r}")


@contextmanager
def forbid(unit: str, functions: list[str], hint: str = "") -> Iterator[None]:
    calls: list[str] = []
    saved = []

    def stub_for(path: str):
        def stub(*args, **kwargs):
            calls.append(path)
            raise ForbiddenCall(
                f"{unit}: must be written from scratch, but it called `{path}`, which computes "
                f"the very thing this unit implements. {hint}".strip()
            )

        return stub

    try:
        for path in functions:
            owner, name = _owner(path)
            saved.append((owner, name, owner.__dict__.get(name, getattr(owner, name))))
            setattr(owner, name, stub_for(path))
        yield
    finally:
        for owner, name, original in reversed(saved):
            setattr(owner, name, original)
    if calls:
        raise ForbiddenCall(
            f"{unit}: must be written from scratch, but it called `{calls[0]}`. "
            f"Use elementary tensor operations instead. {hint}".strip()
        )


def call_without(unit: str, functions: list[str], fn: Callable[..., Any], *args: Any, hint: str = "", **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` with `functions` forbidden while it runs."""
    __tracebackhide__ = True
    with forbid(unit, functions, hint):
        return fn(*args, **kwargs)


def gradcheck_without(unit: str, functions: list[str], fn: Callable[..., Any], inputs: list, *, case: str = "",
                      hint: str = "") -> None:
    """float64 gradcheck of `fn` with `functions` forbidden for the whole check (one guard
    around the hundreds of calls finite differences make)."""
    __tracebackhide__ = True
    with forbid(unit, functions, hint):
        check.gradcheck(fn, inputs, unit=unit, case=case)
