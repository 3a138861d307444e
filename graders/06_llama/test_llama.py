"""Graders for 06_llama (part 1): RMSNorm, swiglu_hidden_size, SwiGLU, rope_cache, rotate_half, apply_rope.

Evidence per unit:
  RMSNorm             F.rms_norm as the oracle (forbidden inside the unit), float64 gradcheck,
                      the eps placement on tiny inputs, golden data;
  swiglu_hidden_size  a brute-force search for the smallest multiple, LLaMA's examples;
  SwiGLU              its formula on the student's own weights, gradients, golden data;
  rope_cache          a Python loop over (position, pair) in float64, golden data;
  rotate_half         the explicit half swap;
  apply_rope          RoPE by complex multiplication (no cos/sin table), properties on random
                      positions (norms are kept, q(m)·k(n) depends only on m − n), offsets
                      and explicit positions, gradients, golden data.
"""

from __future__ import annotations

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import llama_oracle as O
from llmlab.testing import check, guard, reference, tensors
from llmlab.testing.strategies import examples, float_dtypes, seeds, shapes


# ================================================================= RMSNorm

def _rmsnorm(impl, dim, eps=None, dtype=torch.float64, seed=0):
    norm = impl.RMSNorm(dim) if eps is None else impl.RMSNorm(dim, eps)
    norm = norm.to(dtype)
    with torch.no_grad():
        norm.weight.copy_(1.0 + 0.5 * tensors.randn((dim,), seed, dtype))
    return norm


def _run_norm(norm, x):
    return guard.call_without("RMSNorm.forward", O.RMSNORM_BUILTINS, norm, x, hint=O.RMSNORM_HINT)


@pytest.mark.points(3)
@examples(15)
@given(shape=shapes(1, 3, 1, 6), dim=st.integers(1, 9), dtype=float_dtypes(), seed=seeds(),
       eps=st.sampled_from([1e-6, 1e-5, 0.1]), scale=st.sampled_from([1e-2, 1.0, 30.0]),
       transposed=st.booleans())
def test_rmsnorm_matches_torch(impl, shape, dim, dtype, seed, eps, scale, transposed):
    norm = _rmsnorm(impl, dim, eps, dtype, seed)
    x = tensors.randn(shape + (dim,), seed + 1, dtype, scale)
    if transposed and x.dim() >= 2:
        x = x.transpose(0, -1).contiguous().transpose(0, -1)          # same values, non-contiguous
    case = check.describe(x=x, eps=eps, contiguous=x.is_contiguous())
    w = norm.weight.detach()
    check.close(_run_norm(norm, x), O.rms_norm(x, w, eps), unit="RMSNorm.forward", case=case, kind="reduction",
                mistakes=O.rms_norm_mistakes(x, w, eps))


@pytest.mark.points(1)
def test_rmsnorm_parameters_and_eps(impl):
    norm = impl.RMSNorm(5)
    params = dict(norm.named_parameters())
    check.that(list(params) == ["weight"] and tuple(params["weight"].shape) == (5,), "RMSNorm.__init__",
               "RMSNorm(dim) has exactly one parameter, `weight` of shape (dim,) (no bias)",
               f"got {[(k, tuple(v.shape)) for k, v in params.items()]}")
    check.that(bool((params["weight"] == 1).all()), "RMSNorm.__init__", "weight must start at ones")
    check.that(norm.eps == 1e-6 and impl.RMSNorm(3, 0.25).eps == 0.25, "RMSNorm.__init__",
               "eps defaults to 1e-6 and is stored as self.eps", f"got {norm.eps}")
    # Tiny inputs: mean(x²) ≈ 1e-8 is comparable to eps = 1e-6, so where eps sits matters a lot.
    for eps in (1e-6, 1e-2):
        x = tensors.randn((3, 4), 7, scale=1e-4)
        norm = _rmsnorm(impl, 4, eps, seed=2)
        w = norm.weight.detach()
        check.close(_run_norm(norm, x), O.rms_norm(x, w, eps), unit="RMSNorm.forward", kind="reduction",
                    case=check.describe(x=x, eps=eps) + "; tiny inputs, where eps dominates",
                    mistakes=O.rms_norm_mistakes(x, w, eps))
    # A zero vector stays zero (0 / sqrt(eps)); a 0-d batch (a single vector) works.
    zero = torch.zeros(2, 4, dtype=torch.float64)
    check.close(_run_norm(_rmsnorm(impl, 4), zero), zero, unit="RMSNorm.forward", case="x = zeros (2, 4)")
    v = tensors.randn((4,), 8)
    norm = _rmsnorm(impl, 4, seed=3)
    check.close(_run_norm(norm, v), O.rms_norm(v, norm.weight.detach(), 1e-6), unit="RMSNorm.forward",
                kind="reduction", case=check.describe(x=v) + "; a single vector, no batch axes")


@pytest.mark.points(2)
def test_rmsnorm_gradients(impl):
    for seed, (shape, eps) in enumerate((((3, 5), 1e-6), ((2, 3, 4), 0.5))):
        norm = _rmsnorm(impl, shape[-1], eps, seed=seed)
        x = tensors.randn(shape, 10 + seed)
        w = norm.weight.detach()
        case = check.describe(x=x, eps=eps)
        check.grads(lambda xx, ww: guard.call_without("RMSNorm.forward", O.RMSNORM_BUILTINS, O.call_with, norm,
                                                     {"weight": ww}, xx),
                    lambda xx, ww: O.rms_norm(xx, ww, eps), [x, w], names=["x", "weight"], unit="RMSNorm.forward",
                    case=case)
        guard.gradcheck_without("RMSNorm.forward", O.RMSNORM_BUILTINS,
                                lambda xx, ww: O.call_with(norm, {"weight": ww}, xx), [x, w], case=case)
    # The gradient at x = 0 is finite (1 / sqrt(eps) times the weight): eps keeps it defined.
    norm = _rmsnorm(impl, 3, seed=4)
    x = torch.zeros(2, 3, dtype=torch.float64, requires_grad=True)
    _run_norm(norm, x).sum().backward()
    check.that(x.grad is not None and bool(torch.isfinite(x.grad).all()), "RMSNorm.forward",
               "the gradient at x = 0 must be finite (eps inside the sqrt keeps it defined)",
               f"got {None if x.grad is None else x.grad.tolist()}", case="x = zeros (2, 3)")


@pytest.mark.points(1)
def test_rmsnorm_reference_data(impl):
    rec = reference.load(O.TOPIC, "rmsnorm")
    norm = impl.RMSNorm(rec["x"].shape[-1], float(rec["eps"][0])).double()
    with torch.no_grad():
        norm.weight.copy_(rec["weight"])
    x = rec["x"].clone().requires_grad_(True)
    out = _run_norm(norm, x)
    check.close(out, rec["out"], unit="RMSNorm.forward", kind="reduction", case=check.describe(x=rec["x"]))
    out.backward(rec["upstream"])
    check.close(x.grad, rec["grad_x"], unit="RMSNorm.forward", kind="gradient", what="gradient w.r.t. x")
    check.close(norm.weight.grad, rec["grad_weight"], unit="RMSNorm.forward", kind="gradient",
                what="gradient w.r.t. weight")


# ================================================================= swiglu_hidden_size, SwiGLU

@pytest.mark.points(2)
@examples(25)
@given(d_model=st.integers(1, 5000), multiple_of=st.sampled_from([1, 2, 8, 16, 64, 256, 7]))
def test_swiglu_hidden_size(impl, d_model, multiple_of):
    case = check.describe(d_model=d_model, multiple_of=multiple_of)
    for d, m, want in ((64, 16, 176), (48, 16, 128), (4096, 256, 11008), (3, 16, 16)):   # LLaMA-7B: 11008
        check.equal(impl.swiglu_hidden_size(d, m), want, unit="swiglu_hidden_size",
                    case=check.describe(d_model=d, multiple_of=m),
                    mistakes={"rounded down instead of up": m * (int(8 * d / 3) // m),
                              "not rounded to a multiple": int(8 * d / 3), "GPT's 4·d_model": 4 * d})
    got = impl.swiglu_hidden_size(d_model, multiple_of)
    check.that(isinstance(got, int) and not isinstance(got, bool), "swiglu_hidden_size",
               f"should return a Python int, got {type(got).__name__}", case=case)
    h = int(8 * d_model / 3)
    check.equal(got, O.hidden_size(d_model, multiple_of), unit="swiglu_hidden_size", case=case,
                mistakes={"rounded down instead of up": multiple_of * (h // multiple_of),
                          "rounded up one multiple too far": multiple_of * (h // multiple_of + 1)})
    check.equal(impl.swiglu_hidden_size(d_model), O.hidden_size(d_model, 16), unit="swiglu_hidden_size",
                case=check.describe(d_model=d_model) + "; multiple_of defaults to 16")
    for bad in (dict(d_model=0, multiple_of=16), dict(d_model=-4, multiple_of=16), dict(d_model=8, multiple_of=0)):
        check.expect_raises(ValueError, impl.swiglu_hidden_size, unit="swiglu_hidden_size",
                            case=check.describe(**bad), why="d_model and multiple_of must be ≥ 1", **bad)


def _swiglu(impl, d_model, hidden=None, seed=0, dtype=torch.float64, **kw):
    return O.randomized(impl.SwiGLU(d_model, hidden, **kw), seed).to(dtype)


@pytest.mark.points(2)
def test_swiglu_structure_and_formula(impl):
    for d_model, hidden, kw, width in ((64, None, {}, 176), (12, None, dict(multiple_of=8), 32), (6, 10, {}, 10)):
        mlp = impl.SwiGLU(d_model, hidden, **kw)
        case = check.describe(d_model=d_model, hidden=hidden, **kw)
        O.expect_names(mlp, {"gate.weight": (width, d_model), "up.weight": (width, d_model),
                             "down.weight": (d_model, width)}, "SwiGLU.__init__", case)
        check.equal(getattr(mlp, "hidden", None), width, unit="SwiGLU.__init__", what="self.hidden", case=case)
    for seed, (dtype, shape) in enumerate(((torch.float64, (2, 3, 6)), (torch.float32, (5, 6)),
                                          (torch.float64, (6,)))):
        mlp = _swiglu(impl, 6, 10, seed, dtype)
        x = tensors.randn(shape, 20 + seed, dtype)
        p = O.params(mlp)
        args = (x, p["gate.weight"], p["up.weight"], p["down.weight"])
        check.close(mlp(x), O.swiglu(*args), unit="SwiGLU.forward", kind="matmul", case=check.describe(x=x),
                    mistakes=O.swiglu_mistakes(*args))


@pytest.mark.points(2)
def test_swiglu_gradients(impl):
    mlp = _swiglu(impl, 4, 6, seed=5)
    x = tensors.randn((2, 3, 4), 30)
    p = O.params(mlp)
    names = ["gate.weight", "up.weight", "down.weight"]
    case = check.describe(x=x, hidden=6)
    check.grads(lambda xx, *ws: O.call_with(mlp, dict(zip(names, ws)), xx),
                lambda xx, *ws: O.swiglu(xx, *ws), [x] + [p[n] for n in names], names=["x"] + names,
                unit="SwiGLU.forward", case=case)
    check.gradcheck(lambda xx, *ws: O.call_with(mlp, dict(zip(names, ws)), xx), [x] + [p[n] for n in names],
                    unit="SwiGLU.forward", case=case)


@pytest.mark.points(1)
def test_swiglu_reference_data(impl):
    rec = reference.load(O.TOPIC, "swiglu")
    d_model, hidden = rec["down.weight"].shape
    mlp = impl.SwiGLU(d_model, hidden).double()
    mlp.load_state_dict({k: rec[k] for k in ("gate.weight", "up.weight", "down.weight")})
    check.close(mlp(rec["x"]), rec["out"], unit="SwiGLU.forward", kind="matmul", case=check.describe(x=rec["x"]))


# ================================================================= rope_cache

@pytest.mark.points(2)
def test_rope_cache_values(impl):
    cases = [(8, 16, 10000.0, None), (2, 5, 10000.0, None), (6, 1, 10000.0, None), (16, 64, 500.0, None),
             (4, 9, 10.0, torch.float64), (8, 12, 1e6, torch.float64)]
    for head_dim, max_len, base, dtype in cases:
        case = check.describe(head_dim=head_dim, max_len=max_len, base=base, dtype=dtype)
        out = impl.rope_cache(head_dim, max_len, base) if dtype is None else \
            impl.rope_cache(head_dim, max_len, base, dtype=dtype)
        check.that(isinstance(out, tuple) and len(out) == 2, "rope_cache", "should return the pair (cos, sin)",
                   case=case)
        want_dtype = dtype or torch.float32
        cos, sin = O.rope_tables(head_dim, max_len, base, want_dtype)
        check.close(out[0], cos, unit="rope_cache", what="cos", case=case,
                    mistakes=O.rope_table_mistakes(head_dim, max_len, base, want_dtype))
        check.close(out[1], sin, unit="rope_cache", what="sin", case=case)
    cos, sin = impl.rope_cache(8, 4)   # the default base is 10000
    check.close(cos, O.rope_tables(8, 4, 10000.0, torch.float32)[0], unit="rope_cache", what="cos",
                case="head_dim=8, max_len=4 (default base and dtype)")
    for bad, why in ((dict(head_dim=7, max_len=4), "head_dim must be even"),
                     (dict(head_dim=0, max_len=4), "head_dim must be at least 2"),
                     (dict(head_dim=8, max_len=0), "max_len must be at least 1")):
        check.expect_raises(ValueError, impl.rope_cache, unit="rope_cache", case=check.describe(**bad), why=why, **bad)


@pytest.mark.points(1)
def test_rope_cache_reference_data(impl):
    rec = reference.load(O.TOPIC, "rope")
    max_len, head_dim = rec["cos"].shape
    cos, sin = impl.rope_cache(head_dim, max_len, float(rec["base"][0]))
    case = check.describe(head_dim=head_dim, max_len=max_len, base=float(rec["base"][0]))
    check.close(cos, rec["cos"], unit="rope_cache", what="cos", case=case)
    check.close(sin, rec["sin"], unit="rope_cache", what="sin", case=case)


# ================================================================= rotate_half

@pytest.mark.points(1)
def test_rotate_half(impl):
    x = torch.arange(1.0, 7.0, dtype=torch.float64)                  # [1 2 3 | 4 5 6]
    check.close(impl.rotate_half(x), torch.tensor([-4.0, -5, -6, 1, 2, 3], dtype=torch.float64),
                unit="rotate_half", case=check.describe(x=x), kind="exact",
                mistakes={O.INTERLEAVED: torch.tensor([-2.0, 1, -4, 3, -6, 5], dtype=torch.float64),
                          "halves swapped with the wrong sign: cat([x2, -x1])":
                          torch.tensor([4.0, 5, 6, -1, -2, -3], dtype=torch.float64)})
    for seed, (shape, dtype) in enumerate((((2, 3, 4, 8), torch.float32), ((5, 2), torch.float64))):
        y = tensors.randn(shape, 40 + seed, dtype)
        y = y.transpose(0, 1) if y.dim() == 4 else y                  # a non-contiguous view
        half = shape[-1] // 2
        check.close(impl.rotate_half(y), torch.cat([-y[..., half:], y[..., :half]], -1), unit="rotate_half",
                    kind="exact", case=check.describe(x=y, contiguous=y.is_contiguous()))



# ================================================================= apply_rope

def _tables(head_dim, max_len, base=10000.0, dtype=torch.float64):
    return O.rope_tables(head_dim, max_len, base, dtype)


@pytest.mark.points(3)
@examples(15)
@given(lead=shapes(0, 2, 1, 3), T=st.integers(1, 6), half=st.integers(1, 4), offset=st.integers(0, 9),
       dtype=float_dtypes(), seed=seeds(), transposed=st.booleans())
def test_apply_rope_matches_complex_oracle(impl, lead, T, half, offset, dtype, seed, transposed):
    D = 2 * half
    cos, sin = _tables(D, 16)
    x = tensors.randn(lead + (T, D), seed, dtype)
    if transposed:
        x = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    positions = torch.arange(offset, offset + T)
    case = check.describe(x=x, positions=f"offset {offset}", contiguous=x.is_contiguous())
    out = impl.apply_rope(x, cos, sin, offset)
    check.close(out, O.rope(x, positions), unit="apply_rope", case=case, kind="elementwise",
                mistakes=O.rope_mistakes(x, cos, sin, positions))


@pytest.mark.points(3)
@examples(20)
@given(m=st.integers(0, 60), n=st.integers(0, 60), shift=st.integers(-30, 30), half=st.integers(1, 8),
       seed=seeds())
def test_apply_rope_keeps_norms_and_depends_on_relative_position(impl, m, n, shift, half, seed):
    # Property: a rotation keeps the norm, and ⟨R(m)q, R(n)k⟩ depends only on m − n, for random
    # positions m, n and a random shift of both (float64 tables, so float64 tolerances apply).
    D = 2 * half
    cos, sin = _tables(D, 128)
    q, k = tensors.randn((1, D), seed), tensors.randn((1, D), seed + 1)
    m2, n2 = m + shift + 30, n + shift + 30                          # ≥ 0, < 128
    case = check.describe(q=q, k=k, m=m, n=n, shift=shift + 30)
    rq, rk = impl.apply_rope(q, cos, sin, m), impl.apply_rope(k, cos, sin, n)
    check.close(rq.norm(), q.norm(), unit="apply_rope", case=case, kind="reduction",
                what="norm of the rotated query (a rotation keeps lengths)")
    dot = (rq * rk).sum()
    moved = (impl.apply_rope(q, cos, sin, m2) * impl.apply_rope(k, cos, sin, n2)).sum()
    check.close(moved, dot, unit="apply_rope", case=case, kind="reduction",
                what=f"q(m + s)·k(n + s) (must equal q(m)·k(n): the score depends only on m − n = {m - n})")
    check.close(dot, (O.rope(q, torch.tensor([m])) * O.rope(k, torch.tensor([n]))).sum(), unit="apply_rope",
                case=case, kind="reduction", what="q(m)·k(n)",
                mistakes={O.INTERLEAVED: lambda: (O.rope(q, torch.tensor([m]), interleaved=True)
                                                  * O.rope(k, torch.tensor([n]), interleaved=True)).sum()})


@pytest.mark.points(2)
def test_apply_rope_offsets_and_explicit_positions(impl):
    cos, sin = _tables(8, 12)
    x = tensors.randn((2, 3, 7, 8), 50)
    whole = impl.apply_rope(x, cos, sin)                              # default: positions 0 … T − 1
    check.close(whole, O.rope(x, torch.arange(7)), unit="apply_rope", case=check.describe(x=x) + "; default positions")
    for offset, T in ((3, 4), (11, 1), (0, 12)):                       # T = 1 at the last row; T = L
        y = tensors.randn((2, T, 8), 51 + offset)
        case = check.describe(x=y, positions=f"offset {offset}")
        check.close(impl.apply_rope(y, cos, sin, offset), O.rope(y, torch.arange(offset, offset + T)),
                    unit="apply_rope", case=case,
                    mistakes=O.rope_mistakes(y, cos, sin, torch.arange(offset, offset + T)))
    for positions in (torch.tensor([5, 0, 11, 5]), torch.tensor([2]), torch.arange(4)):
        y = tensors.randn((3, len(positions), 8), 60)
        case = check.describe(x=y, positions=positions)
        check.close(impl.apply_rope(y, cos, sin, positions), O.rope(y, positions), unit="apply_rope", case=case,
                    mistakes=O.rope_mistakes(y, cos, sin, positions))
    # T = 0: nothing to rotate, with an offset or with an empty tensor of positions.
    empty = tensors.randn((2, 0, 8), 61)
    for positions in (5, torch.zeros(0, dtype=torch.long)):
        check.close(impl.apply_rope(empty, cos, sin, positions), empty, unit="apply_rope",
                    case=check.describe(x=empty, positions=positions) + "; T = 0")
    # float32 tables with float64 input: the tables are cast to x's dtype.
    c32, s32 = cos.float(), sin.float()
    out = impl.apply_rope(x, c32, s32, 2)
    check.that(out.dtype == torch.float64, "apply_rope", f"output dtype should be x's (float64), got {out.dtype}")
    check.close(out, x * c32[2:9].double() + torch.cat([-x[..., 4:], x[..., :4]], -1) * s32[2:9].double(),
                unit="apply_rope", case="float64 x, float32 tables")
    for args, why in (((x, cos, sin, 6), "positions 6 … 12 go past the 12 rows of the tables"),
                      ((x, cos, sin, -1), "a negative offset"),
                      ((x[..., :6], cos, sin, 0), "x has head size 6, the tables have width 8"),
                      ((x[:, :, :2], cos, sin, torch.tensor([3, 12])), "position 12 is past the tables"),
                      ((x[:, :, :1], cos, sin, torch.tensor([12])), "position 12 is past the tables"),
                      ((x[:, :, :2], cos, sin, torch.tensor([-1, 0])), "a negative position")):
        check.expect_raises(ValueError, impl.apply_rope, *args, unit="apply_rope", why=why,
                            case=check.describe(x=args[0], positions=args[3]))


@pytest.mark.points(2)
def test_apply_rope_gradients(impl):
    cos, sin = _tables(6, 10)
    x = tensors.randn((2, 4, 6), 70)
    for positions in (3, torch.tensor([9, 1, 1, 4])):
        p = torch.arange(3, 7) if isinstance(positions, int) else positions
        case = check.describe(x=x, positions=positions)
        check.grads(lambda t: impl.apply_rope(t, cos, sin, positions), lambda t: O.rope(t, p), [x], names=["x"],
                    unit="apply_rope", case=case,
                    mistakes={O.INTERLEAVED: lambda t: O.rope(t, p, interleaved=True)})
        check.gradcheck(lambda t: impl.apply_rope(t, cos, sin, positions), [x], unit="apply_rope", case=case)


@pytest.mark.points(1)
def test_apply_rope_reference_data(impl):
    rec = reference.load(O.TOPIC, "rope")
    case = check.describe(x=rec["x"], positions=rec["positions"])
    check.close(impl.apply_rope(rec["x"], rec["cos"], rec["sin"], rec["positions"]), rec["out"], unit="apply_rope",
                case=case, mistakes={O.INTERLEAVED: lambda: O.rope(rec["x"], rec["positions"], interleaved=True)})
    check.close(impl.apply_rope(rec["x"], rec["cos"], rec["sin"], int(rec["offset"][0])), rec["out_offset"],
                unit="apply_rope", case=check.describe(x=rec["x"], positions=f"offset {int(rec['offset'][0])}"))
