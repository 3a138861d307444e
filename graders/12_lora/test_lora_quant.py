"""Graders for 12_lora: NF4 block quantisation (nf4_quantize, nf4_dequantize) and model merging
(task_vector_merge, slerp).

Evidence per unit:
  - golden data (reference/12_lora): codes and absmax of a seeded tensor whose blocks differ
    in scale, slerp of seeded vectors;
  - independent oracles: the grader's own copy of bitsandbytes' NF4 table, brute-force
    nearest-code search, the task-arithmetic sum written out, slerp from an orthonormal
    basis of the plane of a and b, float64 finite differences;
  - properties: the error bound (half the largest gap times the block's absmax), the block
    maximum coming back exactly, quantising a dequantised tensor changes nothing, the tie
    rule, slerp's endpoints, norm and angle.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import lora_oracle as O
from llmlab.testing import check, reference, tensors
from llmlab.testing.strategies import examples, seeds

TOPIC = "12_lora"
GLOBAL_ABSMAX = "one absmax for the whole tensor instead of one per block"


def _blocky(shape, seed, block_size, dtype=torch.float32):
    """Normal values whose blocks have scales from 0.01 to 10 (so a global absmax shows)."""
    w = tensors.randn(shape, seed, torch.float64).flatten()
    n_blocks = w.numel() // block_size
    scales = 10.0 ** tensors.rand((n_blocks,), seed + 1, low=-2, high=1)
    return (w.view(n_blocks, block_size) * scales[:, None]).reshape(shape).to(dtype)


def _check_nearest(impl, w, block_size, case):
    codes, absmax = impl.nf4_quantize(w, block_size)
    check.that(isinstance(codes, torch.Tensor) and codes.dtype == torch.uint8 and tuple(codes.shape) == tuple(w.shape),
               "nf4_quantize", "codes should be a uint8 tensor of w's shape",
               f"got {type(codes).__name__} {getattr(codes, 'dtype', '')} {tuple(getattr(codes, 'shape', ()))}", case=case)
    blocks = w.reshape(-1, block_size)
    expected_absmax = blocks.abs().amax(dim=1)
    check.close(absmax, expected_absmax, unit="nf4_quantize", kind="exact", case=case,
                what="absmax (the largest |w| of each block of consecutive elements)",
                mistakes={GLOBAL_ABSMAX: w.abs().max().expand(expected_absmax.shape)})
    x = blocks / expected_absmax.clamp_min(1e-300)[:, None]
    margin = 1e-6 if w.dtype == torch.float32 else 1e-12            # rounding of x near a midpoint
    ok = O.nearest_ok(x, codes.reshape(-1, block_size), margin)
    if not bool(ok.all()):
        i = int((~ok).flatten().nonzero()[0])
        xi = float(x.flatten()[i])
        best = int((O.NF4.double() - xi).abs().argmin())
        check.fail("nf4_quantize", "a code is not the nearest NF4 value", f"element {i}: w/absmax = {xi:.6f}, "
                   f"code {int(codes.flatten()[i])} (value {float(O.NF4[int(codes.flatten()[i])]):.6f}), nearest is "
                   f"code {best} (value {float(O.NF4[best]):.6f})", f"{int((~ok).sum())} of {ok.numel()} codes are off",
                   case=case)
    return codes, absmax


# ---------------------------------------------------------------- nf4_quantize / nf4_dequantize

@pytest.mark.points(1)
def test_nf4_code_book_is_qloras(impl):
    # the 16 values, read back through nf4_dequantize with absmax 1: exactly bitsandbytes' table
    for dtype in (torch.float32, torch.float64):
        values = impl.nf4_dequantize(torch.arange(16, dtype=torch.uint8), torch.ones(1, dtype=dtype), 16)
        check.close(values, O.NF4.to(dtype), unit="nf4_dequantize", kind="exact",
                    case=check.describe(codes="0…15", absmax=[1.0], dtype=dtype),
                    what="the NF4 code book (QLoRA / bitsandbytes get_4bit_type('nf4'), in index order)")


@pytest.mark.points(3)
def test_nf4_quantize_picks_nearest_code(impl):
    for seed, shape, block_size, dtype in ((0, (8, 64), 64, torch.float32), (1, (3, 5, 8), 8, torch.float64),
                                           (2, (96,), 32, torch.float32), (3, (4, 6), 24, torch.float64),
                                           (4, (2, 2), 1, torch.float32), (6, (1,), 1, torch.float64)):
        w = _blocky(shape, seed, block_size, dtype)
        _check_nearest(impl, w, block_size, check.describe(w=w, block_size=block_size))
    w = _blocky((16, 12), 5, 16).t()                                 # non-contiguous: blocks of w.flatten()
    codes, _ = _check_nearest(impl, w, 16, check.describe(w=w, block_size=16, contiguous=False))
    codes_c, _ = impl.nf4_quantize(w.contiguous(), 16)
    check.close(codes, codes_c, unit="nf4_quantize", kind="exact", what="codes of a non-contiguous w",
                case=check.describe(w=w, contiguous=False))
    check.equal(impl.nf4_quantize(torch.ones(4, 16))[0].shape, torch.Size([4, 16]), unit="nf4_quantize",
                what="codes shape with the default block_size 64", case=check.describe(w="ones(4, 16)"))


@pytest.mark.points(1)
def test_nf4_ties_and_zero_blocks(impl):
    # float64, a block with absmax exactly 1: w/absmax is exact, each midpoint an exact tie
    table = O.NF4.double()
    mids = (table[:-1] + table[1:]) / 2                               # 15 exact midpoints
    w = torch.cat([mids, torch.tensor([1.0])])                        # (16,), block max 1
    codes, _ = impl.nf4_quantize(w, 16)
    check.equal(codes.tolist(), list(range(15)) + [15], unit="nf4_quantize", case=check.describe(w="15 midpoints, 1.0"),
                what="codes of exact midpoints (a tie goes to the LOWER index)",
                mistakes={"ties go to the higher index": list(range(1, 16)) + [15]})
    w = torch.cat([torch.zeros(8), torch.tensor([0.0, -2.0, 0.5, 2.0, 0, 0, 0, 0])])
    codes, absmax = impl.nf4_quantize(w, 8)
    case = check.describe(w=w, block_size=8)
    check.close(absmax, torch.tensor([0.0, 2.0]), unit="nf4_quantize", kind="exact", case=case, what="absmax")
    check.equal(codes.tolist(), [7] * 8 + [7, 0, 10, 15, 7, 7, 7, 7], unit="nf4_quantize", case=case,
                what="codes (a zero block gets code 7, the value 0.0; −absmax gets 0, +absmax 15)")
    back = impl.nf4_dequantize(codes, absmax, 8)
    check.that(bool(torch.isfinite(back).all()) and bool((back[:8] == 0).all()), "nf4_dequantize",
               "a zero block must come back as zeros (no NaN from 0 / 0)", case=case)


@pytest.mark.points(2)
@examples(8)
@given(seed=seeds(), n_blocks=st.integers(1, 6), block_size=st.sampled_from([1, 2, 16, 64]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_nf4_error_bound_and_round_trip(impl, seed, n_blocks, block_size, dtype):
    w = _blocky((n_blocks, block_size), seed, block_size, dtype)
    case = check.describe(w=w, block_size=block_size)
    codes, absmax = impl.nf4_quantize(w, block_size)
    back = impl.nf4_dequantize(codes, absmax, block_size)
    check.that(back.dtype == dtype and tuple(back.shape) == tuple(w.shape), "nf4_dequantize",
               f"should return w's shape and absmax's dtype, got {back.dtype} {tuple(back.shape)}", case=case)
    err = (back - w).abs().reshape(-1, block_size)                   # (n_blocks, block_size)
    slack = 1e-6 if dtype == torch.float32 else 1e-12                 # the product rounds once more
    bound = (O.NF4_HALF_GAP + slack) * absmax[:, None].to(err.dtype)
    worst = float((err / absmax[:, None].clamp_min(1e-300)).max())
    check.that(bool((err <= bound).all()), "nf4_dequantize(nf4_quantize(w))",
               f"error above the NF4 bound: max |w − ŵ| / absmax = {worst:.4f} > {O.NF4_HALF_GAP:.4f} "
               "(half the largest gap of the code book)",
               "known mistake: " + GLOBAL_ABSMAX if worst > 1 else "", case=case)
    peak = w.reshape(-1, block_size).abs().argmax(dim=1)
    rows = torch.arange(n_blocks)
    check.close(back.reshape(-1, block_size)[rows, peak], w.reshape(-1, block_size)[rows, peak],
                unit="nf4_dequantize(nf4_quantize(w))", kind="exact", case=case,
                what="the largest |w| of each block (code ±1 times absmax: it comes back exactly)")
    again, absmax2 = impl.nf4_quantize(back, block_size)
    check.close(again, codes, unit="nf4_quantize", kind="exact", case=case,
                what="codes of the dequantised tensor (quantising it again must change nothing)")


@pytest.mark.points(1)
def test_nf4_matches_reference(impl):
    rec = reference.load(TOPIC, "nf4")
    block_size = int(rec["block_size"])
    case = check.describe(w=rec["w"], block_size=block_size)
    codes, absmax = impl.nf4_quantize(rec["w"], block_size)
    check.close(codes, rec["codes"], unit="nf4_quantize", kind="exact", case=case, what="codes")
    check.close(absmax, rec["absmax"], unit="nf4_quantize", kind="exact", case=case, what="absmax")
    check.close(impl.nf4_dequantize(rec["codes"], rec["absmax"], block_size), rec["dequantized"],
                unit="nf4_dequantize", kind="elementwise", case=case, what="dequantised values")


@pytest.mark.points(1)
def test_nf4_errors(impl):
    for w, block_size, why in ((torch.ones(10), 4, "10 elements do not fill blocks of 4"),
                               (torch.ones(8), 0, "block_size must be positive"),
                               (torch.ones(0), 4, "an empty tensor has no blocks"),
                               (torch.ones(3, 5), 64, "15 elements with the default block_size 64")):
        args = (w, block_size) if block_size != 64 else (w,)
        check.expect_raises(ValueError, impl.nf4_quantize, *args, unit="nf4_quantize", why=why,
                            case=check.describe(w=w, block_size=block_size))
    for codes, absmax, why in ((torch.zeros(12, dtype=torch.uint8), torch.ones(2), "12 codes for 2 blocks of 8"),
                               (torch.full((8,), 16, dtype=torch.uint8), torch.ones(1), "code 16 does not exist"),
                               (torch.tensor([0, 3, 15, 7, 16, 1, 2, 9], dtype=torch.uint8), torch.ones(1),
                                "one code of 16 among valid codes")):
        check.expect_raises(ValueError, impl.nf4_dequantize, codes, absmax, 8, unit="nf4_dequantize", why=why,
                            case=check.describe(codes=codes, absmax=absmax, block_size=8))


# ---------------------------------------------------------------- task_vector_merge

def _states(seed, n):
    base = {"w": tensors.randn((3, 4), seed), "b": tensors.randn((4,), seed + 1).float(),
            "steps": torch.tensor([7])}
    tuned = [{"w": base["w"] + tensors.randn((3, 4), seed + 10 + i), "b": base["b"] + tensors.randn((4,), seed + 20 + i).float(),
              "steps": torch.tensor([100 + i])} for i in range(n)]
    return base, tuned


@pytest.mark.points(2)
def test_task_vector_merge(impl):
    for seed, weights in ((0, [0.5, 0.25]), (1, (1.0,)), (2, [0.3, -0.2, 0.7])):
        base, tuned = _states(seed, len(weights))
        copies = [{k: v.clone() for k, v in s.items()} for s in [base, *tuned]]
        container = tuple(tuned) if seed == 1 else tuned
        merged = impl.task_vector_merge(base, container, weights)
        case = check.describe(weights=weights, keys=list(base))
        check.equal(list(merged), list(base), unit="task_vector_merge", what="keys (base's, in base's order)", case=case)
        for key in ("w", "b"):
            expected = base[key] + sum(w * (t[key] - base[key]) for w, t in zip(weights, tuned))
            check.close(merged[key], expected, unit="task_vector_merge", kind="elementwise", case=case,
                        what=f"{key} = base + Σ wᵢ (θᵢ − base)",
                        mistakes={"weighted average of the fine-tuned weights instead of adding task vectors":
                                  sum(w * t[key] for w, t in zip(weights, tuned)),
                                  "task vectors added without their weights":
                                  base[key] + sum(t[key] - base[key] for t in tuned)})
        check.close(merged["steps"], base["steps"], unit="task_vector_merge", kind="exact", case=case,
                    what="an integer entry (copied from base)")
        for original, now in zip(copies, [base, *tuned]):
            for k in original:
                check.close(now[k], original[k], unit="task_vector_merge", kind="exact", case=case,
                            what=f"input entry {k} after merging (inputs must not be modified)")
    base, tuned = _states(3, 1)
    zero = impl.task_vector_merge(base, tuned, [0.0])
    check.close(zero["w"], base["w"], unit="task_vector_merge", kind="exact", what="weight 0 gives base",
                case=check.describe(weights=[0.0]))


@pytest.mark.points(1)
def test_task_vector_merge_errors(impl):
    base, tuned = _states(4, 2)
    renamed = [tuned[0], {("v" if k == "w" else k): v for k, v in tuned[1].items()}]
    for args, why in (((base, [], []), "no fine-tuned state dicts"),
                      ((base, tuned, [0.5]), "two state dicts, one weight"),
                      ((base, renamed, [0.5, 0.5]), "a fine-tuned dict has other keys")):
        check.expect_raises(ValueError, impl.task_vector_merge, *args, unit="task_vector_merge", why=why,
                            case=check.describe(n_finetuned=len(args[1]), n_weights=len(args[2])))


# ---------------------------------------------------------------- slerp

def _slerp_oracle(a, b, t):
    """Slerp from the rotation picture, in float64: in an orthonormal basis (u, v) of the plane
    of a and b, the unit direction at t is (cos tθ, sin tθ); solve for the coefficients
    (c_a, c_b) that give it from the unit directions of a and b, and apply them to a and b."""
    a64, b64 = a.double().flatten(), b.double().flatten()
    u = a64 / a64.norm()
    v = b64 - (b64 @ u) * u
    v = v / v.norm()
    theta = math.atan2(float(b64 @ v), float(b64 @ u))               # angle of b from a in the plane
    directions = torch.tensor([[1.0, math.cos(theta)], [0.0, math.sin(theta)]], dtype=torch.float64)
    target = torch.tensor([math.cos(t * theta), math.sin(t * theta)], dtype=torch.float64)
    ca, cb = torch.linalg.solve(directions, target).tolist()
    return (ca * a64 + cb * b64).reshape(a.shape).to(a.dtype)


@pytest.mark.points(2)
def test_slerp_values_and_geometry(impl):
    for seed, shape, t in ((0, (6,), 0.3), (1, (2, 3, 4), 0.5), (2, (5, 5), 0.9), (3, (6,), 0.4)):
        a, b = tensors.randn(shape, seed), tensors.randn(shape, seed + 50)
        if seed == 3:
            b = -a + 0.8 * b                                          # an obtuse angle: cos θ < 0
        case = check.describe(a=a, b=b, t=t)
        got = impl.slerp(a, b, t)
        check.close(got, _slerp_oracle(a, b, t), unit="slerp", kind="reduction", case=case, what="slerp(a, b, t)",
                    mistakes={"linear interpolation": (1 - t) * a + t * b, "t and 1 − t swapped": _slerp_oracle(a, b, 1 - t)})
        check.close(impl.slerp(a, b, 0.0), a, unit="slerp", kind="reduction", case=case, what="slerp at t = 0 (a)")
        check.close(impl.slerp(a, b, 1.0), b, unit="slerp", kind="reduction", case=case, what="slerp at t = 1 (b)")
    # equal norms: the path keeps the norm and its angle to a grows as t·θ
    a = tensors.randn((8,), 4)
    b = tensors.randn((8,), 5)
    b = b / b.norm() * a.norm()
    theta = math.acos(float(a @ b / (a.norm() * b.norm())))
    for t in (0.25, 0.6):
        p = impl.slerp(a, b, t)
        case = check.describe(a=a, b=b, t=t)
        check.close(p.norm(), a.norm(), unit="slerp", kind="reduction", case=case, what="‖slerp‖ for ‖a‖ = ‖b‖")
        angle = math.acos(max(-1.0, min(1.0, float(p @ a / (p.norm() * a.norm())))))
        check.that(abs(angle - t * theta) < 1e-9, "slerp", f"angle to a is {angle:.6f}, expected t·θ = {t * theta:.6f}",
                   case=case)
    a32, b32 = tensors.randn((4, 3), 6, torch.float32), tensors.randn((4, 3), 7, torch.float32)
    out = impl.slerp(a32, b32, 0.4)
    check.that(out.dtype == torch.float32 and out.shape == a32.shape, "slerp", "should return a's shape and dtype",
               f"got {out.dtype} {tuple(out.shape)}", case=check.describe(a=a32, b=b32))
    check.close(out, _slerp_oracle(a32, b32, 0.4), unit="slerp", kind="reduction", case=check.describe(a=a32, b=b32))


@pytest.mark.points(1)
def test_slerp_parallel_falls_back_to_lerp(impl):
    a = tensors.randn((5,), 8)
    for b, why in ((2.0 * a, "b = 2a (cos θ = 1)"), (-3.0 * a, "b = −3a (cos θ = −1)"),
                   (a + 1e-3 * tensors.randn((5,), 9), "b ≈ a")):
        check.close(impl.slerp(a, b, 0.3), 0.7 * a + 0.3 * b, unit="slerp", kind="elementwise",
                    case=check.describe(a=a, b=why, t=0.3), what="slerp of (nearly) parallel vectors: (1 − t)a + t b")
    # just below the threshold (cos θ = 0.999 < 0.9995) it must be slerp, not lerp
    u = torch.tensor([1.0, 0.0, 0.0], dtype=torch.float64)
    v = torch.tensor([0.999, math.sqrt(1 - 0.999 ** 2), 0.0], dtype=torch.float64) * 3.0
    check.close(impl.slerp(u, v, 0.5), _slerp_oracle(u, v, 0.5), unit="slerp", kind="reduction",
                case=check.describe(a=u, b=v, t=0.5, cos=0.999), what="slerp just below the lerp threshold",
                mistakes={"linear interpolation": 0.5 * u + 0.5 * v})


@pytest.mark.points(1)
def test_slerp_gradcheck_and_errors(impl):
    a, b = tensors.randn((4,), 10), tensors.randn((4,), 11)
    check.gradcheck(lambda x, y: impl.slerp(x, y, 0.35), [a, b], unit="slerp", case=check.describe(a=a, b=b, t=0.35))
    for args, why in (((a, torch.ones(5, dtype=torch.float64), 0.5), "shapes differ"),
                      ((a, b, 1.5), "t above 1"), ((a, b, -0.1), "t below 0"),
                      ((torch.zeros(4, dtype=torch.float64), b, 0.5), "a is all zeros"),
                      ((a, torch.zeros(4, dtype=torch.float64), 0.5), "b is all zeros")):
        check.expect_raises(ValueError, impl.slerp, *args, unit="slerp", why=why, case=check.describe(t=args[2]))


@pytest.mark.points(1)
def test_slerp_matches_reference(impl):
    rec = reference.load(TOPIC, "slerp")
    for i, t in enumerate(rec["t"].tolist()):
        check.close(impl.slerp(rec["a"], rec["b"], t), rec["out"][i], unit="slerp", kind="reduction",
                    case=check.describe(a=rec["a"], b=rec["b"], t=t))
