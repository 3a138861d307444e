"""The checking toolkit: it must fail wrong values with a teaching message, and pass
equivalent correct formulations within the tolerance policy."""

import pytest
import torch

from llmlab.testing import check
from llmlab.testing.check import GradingFailure
from llmlab.testing.tolerances import Tolerance, tolerance


def test_close_passes_equal_and_fails_different_values_with_details():
    x = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    check.close(x.clone(), x, unit="u")
    wrong = x.clone()
    wrong[1, 0] = 3.5
    with pytest.raises(GradingFailure) as info:
        check.close(wrong, x, unit="myunit", case=check.describe(x=x))
    msg = str(info.value)
    for part in ("myunit:", "index (1, 0)", "got 3.5", "expected 3", "1 of 4 elements differ", "input: x: float32"):
        assert part in msg, f"{part!r} missing from:\n{msg}"


def test_close_names_a_known_mistake():
    x = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    right = torch.softmax(x, dim=-1)
    wrong = torch.softmax(x, dim=0)
    with pytest.raises(GradingFailure, match="known mistake: softmax over the wrong axis"):
        check.close(wrong, right, unit="softmax", mistakes={"softmax over the wrong axis": lambda: torch.softmax(x, 0)})
    with pytest.raises(GradingFailure) as info:
        check.close(wrong * 2, right, unit="softmax", mistakes={"softmax over the wrong axis": wrong})
    assert "known mistake" not in str(info.value), "a mistake was named although the output does not match it"


def test_close_reports_shape_dtype_type_and_nan():
    x = torch.zeros(2, 3)
    with pytest.raises(GradingFailure, match=r"(?s)wrong shape.*\(3, 2\).*\(2, 3\)"):
        check.close(torch.zeros(3, 2), x, unit="u")
    with pytest.raises(GradingFailure, match="dtype"):
        check.close(torch.zeros(2, 3, dtype=torch.float64), x, unit="u")
    with pytest.raises(GradingFailure, match="should be a torch.Tensor"):
        check.close([[0.0] * 3] * 2, x, unit="u")
    with pytest.raises(GradingFailure, match="NaN"):
        check.close(torch.full((2, 3), float("nan")), x, unit="u")
    inf = torch.tensor([float("inf"), 1.0])
    check.close(inf.clone(), inf, unit="u")
    with pytest.raises(GradingFailure):
        check.close(torch.tensor([-float("inf"), 1.0]), inf, unit="u")


def test_integer_tensors_compare_exactly():
    ids = torch.tensor([1, 2, 3])
    check.close(ids.clone(), ids, unit="u")
    with pytest.raises(GradingFailure, match="index \\(2,\\)"):
        check.close(torch.tensor([1, 2, 4]), ids, unit="u")


def test_equivalent_formulations_pass_the_policy():
    """rsqrt vs 1/sqrt, mean vs sum/n, fused vs split softmax: all must pass."""
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(64, 512, generator=gen)
    var = x.pow(2).mean(-1, keepdim=True) + 1e-6
    check.close(x * torch.rsqrt(var), x / torch.sqrt(var), unit="rmsnorm", kind="reduction")
    check.close(x.sum(-1) / x.shape[-1], x.mean(-1), unit="mean", kind="reduction")
    e = (x - x.max(-1, keepdim=True).values).exp()
    check.close(e / e.sum(-1, keepdim=True), torch.softmax(x, -1), unit="softmax", kind="reduction")
    w = torch.randn(512, 256, generator=gen)
    check.close((x.double() @ w.double()).float(), x @ w, unit="matmul", kind="matmul")


def test_policy_separates_mistakes_from_rounding():
    gen = torch.Generator().manual_seed(2)
    q, k = torch.randn(8, 16, generator=gen), torch.randn(8, 16, generator=gen)
    right = torch.softmax(q @ k.T / 4.0, -1)
    with pytest.raises(GradingFailure):
        check.close(torch.softmax(q @ k.T, -1), right, unit="attention", kind="matmul")


def test_tolerance_policy_is_defined_per_dtype_and_kind():
    assert tolerance(torch.float64, "matmul").rtol < tolerance(torch.float32, "matmul").rtol
    assert tolerance(torch.int64, "matmul") == Tolerance(0.0, 0.0)
    with pytest.raises(ValueError, match="unknown tolerance kind"):
        tolerance(torch.float32, "loose")
    with pytest.raises(ValueError, match="float32 or float64"):
        tolerance(torch.float16, "matmul")


def test_equal_reports_first_difference():
    check.equal([1, 2, 3], [1, 2, 3], unit="u")
    with pytest.raises(GradingFailure, match="position 1: got 5, expected 2"):
        check.equal([1, 5, 3], [1, 2, 3], unit="u")
    with pytest.raises(GradingFailure, match="length 2, expected 3"):
        check.equal([1, 2], [1, 2, 3], unit="u")
    with pytest.raises(GradingFailure, match="missing keys"):
        check.equal({"a": 1}, {"a": 1, "b": 2}, unit="u")
    with pytest.raises(GradingFailure, match="known mistake: off by one"):
        check.equal([2, 3], [1, 2], unit="u", mistakes={"off by one": [2, 3]})


def test_grads_compares_against_an_oracle_and_names_mistakes():
    x = torch.randn(4, 5, generator=torch.Generator().manual_seed(3))
    check.grads(lambda t: torch.softmax(t, -1), lambda t: torch.softmax(t, -1), [x], unit="softmax")
    with pytest.raises(GradingFailure, match="gradient w.r.t. x"):
        check.grads(lambda t: torch.softmax(t, 0), lambda t: torch.softmax(t, -1), [x], unit="softmax", names=["x"])
    with pytest.raises(GradingFailure, match="not connected"):
        check.grads(lambda t: torch.softmax(t.detach(), -1), lambda t: torch.softmax(t, -1), [x], unit="softmax")


def test_gradcheck_catches_a_wrong_backward():
    class Wrong(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x):
            ctx.save_for_backward(x)
            return x ** 2

        @staticmethod
        def backward(ctx, g):
            (x,) = ctx.saved_tensors
            return g * x  # should be 2x

    check.gradcheck(lambda t: t ** 2, [torch.randn(3)], unit="square")
    with pytest.raises(GradingFailure, match="finite differences"):
        check.gradcheck(Wrong.apply, [torch.randn(3)], unit="square")


def test_that_and_fail():
    check.that(True, "u", "never shown")
    with pytest.raises(GradingFailure, match="u: outputs must be causal"):
        check.that(False, "u", "outputs must be causal")


def test_low_digit_differences_show_enough_digits_and_the_dtypes():
    expected = torch.tensor([1 / 3], dtype=torch.float64)
    computed_in_float32 = expected.float().double()          # right dtype, float32 accuracy
    with pytest.raises(check.GradingFailure) as info:
        check.close(computed_in_float32, expected, unit="third")
    text = str(info.value)
    assert "got 0.333333343, expected 0.333333333" in text, text
    assert "agree to only about 7 significant digits" in text
    assert "dtypes: got float64, expected float64" in text and "float32" in text.split("dtypes")[1]
