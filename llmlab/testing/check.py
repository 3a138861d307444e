"""The graders' checking toolkit: comparisons whose failures teach.

Every check names the unit under test, the input case, and what differs: the first
mismatching index, the values there, the largest absolute and relative errors against the
tolerance, how many elements differ — and, when the student's output equals the output of
a known mistake from the topic's catalogue, the name of that mistake.

    from llmlab.testing import check
    check.close(out, expected, unit="softmax", case=check.describe(x=x, dim=-1),
                kind="reduction", mistakes={"softmax over the wrong axis": wrong})
"""

from __future__ import annotations

from typing import Any, Callable, Mapping

import torch
from torch.autograd.gradcheck import GradcheckError

from llmlab.testing.tolerances import Tolerance, tolerance


class GradingFailure(AssertionError):
    """A check failed. The message is written for the student; the traceback adds nothing."""


Mistakes = Mapping[str, Any] | None


def describe(**values: Any) -> str:
    """A compact description of an input case: tensors by dtype and shape, the rest by repr."""
    parts = []
    for name, value in values.items():
        if isinstance(value, torch.Tensor):
            shape = tuple(value.shape)
            text = f"{name}: {str(value.dtype).replace('torch.', '')} tensor of shape {shape}"
            if value.numel() <= 8:
                text += f" = {value.detach().tolist()}"
            parts.append(text)
        else:
            text = repr(value)
            if len(text) > 120:
                text = text[:117] + "..."
            parts.append(f"{name}={text}")
    return "; ".join(parts)


def fail(unit: str, what: str, *details: str, case: str = "", mistake: str | None = None) -> None:
    """Raise a GradingFailure with the course's message layout."""
    __tracebackhide__ = True
    lines = [f"{unit}: {what}"]
    if case:
        lines.append(f"  input: {case}")
    lines.extend(f"  {d}" for d in details if d)
    if mistake:
        lines.append(f"  known mistake: {mistake}")
    raise GradingFailure("\n".join(lines))


def that(condition: bool, unit: str, what: str, *details: str, case: str = "") -> None:
    """Fail with `what` unless `condition` holds."""
    __tracebackhide__ = True
    if not condition:
        fail(unit, what, *details, case=case)


def expect_raises(error: type[BaseException] | tuple[type[BaseException], ...], fn: Callable[..., Any], *args: Any,
                  unit: str, case: str = "", why: str = "", **kwargs: Any) -> BaseException:
    """Call `fn(*args, **kwargs)` and fail unless it raises `error`; return the exception.

    The failure names the unit, the input and the exception expected, and says what
    happened instead (a value returned, or another exception). `why` says which rule of
    the docstring the input breaks. A TODO's NotImplementedError and failed checks pass
    through untouched, even when `error` is a base class of them.
    """
    __tracebackhide__ = True
    expected = " or ".join(e.__name__ for e in (error if isinstance(error, tuple) else (error,)))
    because = f" ({why})" if why else ""
    try:
        result = fn(*args, **kwargs)
    except (NotImplementedError, GradingFailure):
        raise
    except error as exc:
        return exc
    except Exception as exc:
        fail(unit, f"should raise {expected}{because}, but raised {type(exc).__name__}: {exc}", case=case)
    fail(unit, f"should raise {expected}{because}, but returned {_short(result)}", case=case)


def _fmt(x: float) -> str:
    return f"{x:.6g}"


def _digits_to_tell_apart(a: float, b: float) -> int:
    """Significant digits needed to print a and b differently (6 to 17)."""
    for digits in range(6, 18):
        if f"{a:.{digits}g}" != f"{b:.{digits}g}":
            return digits
    return 17


def _resolve(mistake: Any) -> Any:
    return mistake() if callable(mistake) else mistake


def matching_mistake(actual: Any, mistakes: Mistakes, tol: Tolerance | None = None) -> str | None:
    """The name of the first catalogued mistake whose output `actual` reproduces, if any."""
    if not mistakes:
        return None
    for name, candidate in mistakes.items():
        try:
            wrong = _resolve(candidate)
        except Exception:  # a mistake oracle that cannot run on this input names nothing
            continue
        if isinstance(actual, torch.Tensor) and isinstance(wrong, torch.Tensor):
            if actual.shape != wrong.shape:
                continue
            a = actual.detach().to(torch.float64) if actual.is_floating_point() else actual.detach()
            w = wrong.detach().to(a.dtype) if a.is_floating_point() else wrong.detach()
            t = tol or tolerance(actual.dtype, "matmul")
            if a.is_floating_point():
                if torch.allclose(a, w, rtol=t.rtol, atol=max(t.atol, 1e-12), equal_nan=True):
                    return name
            elif torch.equal(a, w.to(a.dtype)):
                return name
        elif not isinstance(actual, torch.Tensor) and not isinstance(wrong, torch.Tensor):
            if actual == wrong:
                return name
    return None


def close(
    actual: Any,
    expected: torch.Tensor,
    *,
    unit: str,
    case: str = "",
    kind: str = "elementwise",
    tol: Tolerance | None = None,
    what: str = "output",
    mistakes: Mistakes = None,
    check_dtype: bool = True,
) -> None:
    """Check that tensor `actual` equals `expected` within the tolerance policy.

    `kind` picks the tolerance (see llmlab.testing.tolerances); pass `tol` only with a reason
    written next to the call.
    """
    __tracebackhide__ = True
    if not isinstance(actual, torch.Tensor):
        fail(unit, f"{what} should be a torch.Tensor, got {type(actual).__name__}", case=case)
    expected = expected.detach()
    t = tol or tolerance(expected.dtype, kind)
    if tuple(actual.shape) != tuple(expected.shape):
        fail(
            unit,
            f"{what} has the wrong shape",
            f"got shape {tuple(actual.shape)}, expected {tuple(expected.shape)}",
            case=case,
            mistake=matching_mistake(actual, mistakes),
        )
    if check_dtype and actual.dtype != expected.dtype:
        fail(unit, f"{what} has dtype {actual.dtype}, expected {expected.dtype}", case=case)
    a = actual.detach()
    if a.device != expected.device:
        a = a.to(expected.device)
    if not expected.is_floating_point():
        bad = a != expected.to(a.dtype)
        if bool(bad.any()):
            idx = tuple(int(i) for i in bad.nonzero()[0])
            fail(
                unit,
                f"{what} differs from the expected values",
                f"first mismatch at index {idx}: got {a[idx].item()}, expected {expected[idx].item()}",
                f"{int(bad.sum())} of {bad.numel()} elements differ",
                case=case,
                mistake=matching_mistake(actual, mistakes),
            )
        return
    a64, e64 = a.to(torch.float64), expected.to(torch.float64)
    finite_e = torch.isfinite(e64)
    nan_mismatch = torch.isnan(a64) != torch.isnan(e64)
    inf_mismatch = (~finite_e & ~torch.isnan(e64)) & (a64 != e64)
    err = (a64 - e64).abs()
    allowed = t.atol + t.rtol * e64.abs()
    bad = nan_mismatch | inf_mismatch | (finite_e & ~(err <= allowed))
    if not bool(bad.any()):
        return
    idx = tuple(int(i) for i in bad.nonzero()[0])
    finite_err = torch.where(finite_e & torch.isfinite(a64), err, torch.zeros_like(err))
    nonzero = e64.abs() > 0
    rel = torch.where(nonzero, finite_err / e64.abs().clamp_min(1e-300), torch.zeros_like(err))
    rel_text = f", max rel error {rel.max().item():.3g}" if bool(nonzero.any()) else ""
    got, want = a64[idx].item(), e64[idx].item()
    digits = _digits_to_tell_apart(got, want)
    shown = min(17, digits + 1) if digits > 6 else 6  # one digit past the first that differs
    details = [
        f"first mismatch at index {idx}: got {got:.{shown}g}, expected {want:.{shown}g}",
        f"max abs error {finite_err.max().item():.3g}{rel_text} (allowed: {t}; dtypes: got "
        f"{str(actual.dtype).replace('torch.', '')}, expected {str(expected.dtype).replace('torch.', '')})",
        f"{int(bad.sum())} of {bad.numel()} elements differ",
    ]
    max_rel = rel.max().item() if bool(nonzero.any()) else float("inf")
    if expected.dtype == torch.float64 and max_rel < 1e-5:
        details.append(f"the values agree to only about {digits - 1} significant digits: part of the computation "
                       f"may run in float32 (a float32 constant or tensor, or .float()); keep float64 inputs in float64")
    if bool(torch.isnan(a64).any()) and not bool(torch.isnan(e64).any()):
        details.append("your output contains NaN where the expected values are finite")
    fail(unit, f"{what} differs from the expected values", *details, case=case,
         mistake=matching_mistake(actual, mistakes))


def equal(actual: Any, expected: Any, *, unit: str, case: str = "", what: str = "output",
          mistakes: Mistakes = None) -> None:
    """Exact equality for Python values: sequences report the first differing position."""
    __tracebackhide__ = True
    if isinstance(expected, torch.Tensor):
        close(actual, expected, unit=unit, case=case, what=what, mistakes=mistakes, kind="exact")
        return
    if actual == expected:
        return
    mistake = matching_mistake(actual, mistakes)
    if isinstance(expected, (list, tuple, str, bytes)) and isinstance(actual, (list, tuple, str, bytes)):
        n = min(len(actual), len(expected))
        first = next((i for i in range(n) if actual[i] != expected[i]), n)
        details = []
        if first < n:
            details.append(f"first difference at position {first}: got {actual[first]!r}, expected {expected[first]!r}")
        if len(actual) != len(expected):
            details.append(f"length {len(actual)}, expected {len(expected)}")
        details.append(f"got      {_short(actual)}")
        details.append(f"expected {_short(expected)}")
        fail(unit, f"{what} differs", *details, case=case, mistake=mistake)
    if isinstance(expected, dict) and isinstance(actual, dict):
        missing = [k for k in expected if k not in actual]
        extra = [k for k in actual if k not in expected]
        changed = [k for k in expected if k in actual and actual[k] != expected[k]]
        details = []
        if missing:
            details.append(f"missing keys: {_short(missing)}")
        if extra:
            details.append(f"unexpected keys: {_short(extra)}")
        if changed:
            k = changed[0]
            details.append(f"{len(changed)} values differ; first: key {k!r}: got {actual[k]!r}, expected {expected[k]!r}")
        fail(unit, f"{what} differs", *details, case=case, mistake=mistake)
    fail(unit, f"{what} differs", f"got {_short(actual)}, expected {_short(expected)}", case=case, mistake=mistake)


def _short(value: Any, limit: int = 160) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def grads(
    student: Callable[..., torch.Tensor],
    oracle: Callable[..., torch.Tensor],
    inputs: list[torch.Tensor],
    *,
    unit: str,
    case: str = "",
    kind: str = "gradient",
    names: list[str] | None = None,
    seed: int = 0,
    mistakes: Mapping[str, Callable[..., torch.Tensor]] | None = None,
) -> None:
    """Compare the gradients of `student(*inputs)` and `oracle(*inputs)` w.r.t. every
    floating input, for one seeded random upstream gradient (so every output element
    contributes, with a different weight)."""
    __tracebackhide__ = True

    def backward(fn: Callable[..., torch.Tensor]) -> tuple[torch.Tensor, list[torch.Tensor | None]]:
        leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
        out = fn(*leaves)
        return out, leaves

    s_out, s_leaves = backward(student)
    if not isinstance(s_out, torch.Tensor):
        fail(unit, f"should return a torch.Tensor, got {type(s_out).__name__}", case=case)
    if not s_out.requires_grad:
        fail(unit, "the output is not connected to the inputs in the autograd graph "
             "(did you detach, use .data, numpy, or build a new tensor from Python numbers?)", case=case)
    o_out, o_leaves = backward(oracle)
    gen = torch.Generator().manual_seed(seed)
    upstream = torch.randn(o_out.shape, generator=gen, dtype=torch.float64).to(o_out.dtype)
    if tuple(s_out.shape) != tuple(o_out.shape):
        fail(unit, "output has the wrong shape", f"got {tuple(s_out.shape)}, expected {tuple(o_out.shape)}", case=case)
    s_out.backward(upstream.to(s_out.dtype))
    o_out.backward(upstream)
    labels = names or [f"input {i}" for i in range(len(inputs))]
    for label, s, o in zip(labels, s_leaves, o_leaves):
        if not o.is_floating_point() or o.grad is None:
            continue
        if s.grad is None:
            fail(unit, f"no gradient reaches {label}", case=case)
        wrong = None
        if mistakes:
            wrong = {name: (lambda fn=fn: _grad_of(fn, inputs, upstream, labels.index(label)))
                     for name, fn in mistakes.items()}
        close(s.grad, o.grad, unit=unit, case=case, kind=kind, what=f"gradient w.r.t. {label}", mistakes=wrong)


def _grad_of(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], upstream: torch.Tensor, i: int) -> torch.Tensor:
    leaves = [x.detach().clone().requires_grad_(x.is_floating_point()) for x in inputs]
    fn(*leaves).backward(upstream)
    return leaves[i].grad


def gradcheck(fn: Callable[..., torch.Tensor], inputs: list[torch.Tensor], *, unit: str, case: str = "") -> None:
    """float64 finite-difference check of `fn`'s backward (torch.autograd.gradcheck).

    Inputs are cast to float64; the tolerances are gradcheck's defaults (eps 1e-6,
    atol 1e-5, rtol 1e-3), which correct float64 code passes by orders of magnitude.
    """
    __tracebackhide__ = True
    leaves = [x.detach().to(torch.float64).requires_grad_(True) if x.is_floating_point() else x for x in inputs]
    try:
        ok = torch.autograd.gradcheck(fn, leaves, eps=1e-6, atol=1e-5, rtol=1e-3, raise_exception=True)
    except GradcheckError as exc:
        first = str(exc).strip().splitlines()[:6]
        fail(unit, "the backward pass disagrees with finite differences (float64 gradcheck)",
             *first, case=case)
    else:
        that(ok, unit, "gradcheck failed", case=case)
