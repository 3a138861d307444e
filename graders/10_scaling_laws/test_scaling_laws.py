"""Graders for 10_scaling_laws: parameter and FLOP counts, the Chinchilla rule, the power-law
fit, training memory and MFU.

Evidence per unit:
  - non_embedding_params: hand values (LLaMA-7B's 6.74e9 parameters), real TinyLlama models
    counted parameter by parameter, golden data;
  - flops_per_token: hand values, and `torch.utils.flop_counter.FlopCounterMode` on a real
    forward + backward of TinyLlama (fresh configurations and the course's trained
    checkpoint) under the math attention kernel, golden data, the linear growth in T;
  - chinchilla_optimal: hand values (Chinchilla's own budget), the two defining equations;
  - fit_power_law: exact synthetic data (the parameters come back), noisy synthetic data
    (the parameters come back within a stated error, linearised false-failure rate), the
    least-squares optimum against SciPy's Levenberg–Marquardt and a zero gradient of the sum
    of squares (autograd), equivariances, golden data;
  - training_memory_bytes: worked cases (ZeRO's 16 bytes per parameter) and the bytes a real
    torch.optim optimizer holds after a step, in float32 and bfloat16;
  - mfu: hand values and its defining ratio.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import scaling_laws_oracle as O
from llmlab.lib.llama import LlamaConfig, load_tiny_llama
from llmlab.testing import check, guard, reference, tensors
from llmlab.testing.strategies import examples, seeds
from llmlab.testing.tolerances import Tolerance


# Counting units work from the config: building or running a model (or the flop counter) is
# what they replace.
NO_MODEL = ["llmlab.lib.llama.TinyLlama.__init__", "torch.utils.flop_counter.FlopCounterMode.__init__"]


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _cfg_strategy():
    """Small valid LlamaConfigs as dicts: heads dividing d_model, kv heads dividing heads."""
    return st.builds(
        lambda V, T, L, H, g, D, hidden, qk: dict(vocab_size=V, block_size=T, n_layer=L, n_head=H,
                                                  n_kv_head=max(1, H // g), d_model=H * D, hidden=hidden,
                                                  qk_norm=qk),
        st.integers(2, 20), st.integers(1, 9), st.integers(1, 3), st.sampled_from([1, 2, 4]),
        st.sampled_from([1, 2, 4]), st.sampled_from([2, 4]), st.sampled_from([None, 12]), st.booleans(),
    )


# ---------------------------------------------------------------- non_embedding_params

@pytest.mark.points(2)
def test_non_embedding_params_by_hand(impl):
    # C = 64, H = 4, H_kv = 2, D = 16, F = int(170.7) = 170 -> 176. Per block: q 64·64, k and
    # v 64·32 each, o 64·64 (12 288), SwiGLU 3·64·176 (33 792), two norms 128: 46 208. Two
    # blocks and the final norm: 92 480.
    cfg = LlamaConfig(vocab_size=50, block_size=16, n_layer=2, n_head=4, n_kv_head=2, d_model=64)
    got = guard.call_without("non_embedding_params", NO_MODEL, impl.non_embedding_params, cfg,
                             hint="Count the parameters from the config's fields.")
    check.equal(got, 92_480, unit="non_embedding_params", case=check.describe(config=cfg),
                mistakes=O.param_mistakes(cfg, 92_480))
    check.that(_is_int(got), "non_embedding_params", f"must return a Python int, got {type(got).__name__}")
    llama = LlamaConfig(**O.LLAMA_7B)
    check.equal(guard.call_without("non_embedding_params", NO_MODEL, impl.non_embedding_params, llama),
                O.LLAMA_7B_NON_EMBEDDING, unit="non_embedding_params",
                case="LLaMA-7B: " + check.describe(**O.LLAMA_7B),
                what="LLaMA-7B's non-embedding parameters (6.74e9 in all, minus 2·32000·4096)",
                mistakes=O.param_mistakes(llama, O.LLAMA_7B_NON_EMBEDDING))


@pytest.mark.points(3)
@examples(12)
@given(fields=_cfg_strategy())
def test_non_embedding_params_match_real_model(impl, fields):
    cfg = LlamaConfig(**fields)
    expected = O.counted_params(cfg)
    check.equal(impl.non_embedding_params(cfg), expected, unit="non_embedding_params",
                case=check.describe(**fields), what="parameters of a real TinyLlama minus 2·V·C",
                mistakes=O.param_mistakes(cfg, expected))


@pytest.mark.points(2)
def test_non_embedding_params_edge_configs(impl):
    # one layer, one head (H = H_kv = 1, D = C), QK-norm on, an explicit hidden size that is
    # not a multiple of 16 (used as given), multi-query attention (H_kv = 1 < H).
    for fields in (dict(vocab_size=2, block_size=1, n_layer=1, n_head=1, n_kv_head=1, d_model=2, hidden=5),
                   dict(vocab_size=9, block_size=4, n_layer=2, n_head=2, n_kv_head=2, d_model=8, qk_norm=True),
                   dict(vocab_size=5, block_size=3, n_layer=3, n_head=4, n_kv_head=1, d_model=8, hidden=7,
                        qk_norm=True)):
        cfg = LlamaConfig(**fields)
        expected = O.counted_params(cfg)
        got = impl.non_embedding_params(cfg)
        check.equal(got, expected, unit="non_embedding_params", case=check.describe(**fields),
                    mistakes=O.param_mistakes(cfg, expected))
        check.that(_is_int(got), "non_embedding_params", f"must return a Python int, got {type(got).__name__}",
                   case=check.describe(**fields))


# ---------------------------------------------------------------- flops_per_token

@pytest.mark.points(2)
def test_flops_per_token_by_hand(impl):
    # C = 16, H = 4, H_kv = 2, D = 4, F = 48, V = 11, L = 2, T = 8. Per block q 256, k 128,
    # v 128, o 256, SwiGLU 3·16·48 = 2304: 3072; two blocks 6144, the head 176: N_mm = 6320.
    # Forward 2·6320 + 4·2·8·16 = 13 664; with the backward 3·13 664 = 40 992.
    cfg = O.config()
    case = check.describe(config=cfg)
    got = guard.call_without("flops_per_token", NO_MODEL, impl.flops_per_token, cfg,
                             hint="Count the FLOPs from the config's fields.")
    check.equal(got, 40_992, unit="flops_per_token", case=case, what="training FLOPs per token at T = block_size",
                mistakes=O.flops_mistakes(cfg, 8, True, 40_992))
    check.that(_is_int(got), "flops_per_token", f"must return a Python int, got {type(got).__name__}", case=case)
    check.equal(impl.flops_per_token(cfg, 8, backward=False), 13_664, unit="flops_per_token", case=case,
                what="forward FLOPs per token (backward=False)", mistakes=O.flops_mistakes(cfg, 8, False, 13_664))
    check.equal(impl.flops_per_token(cfg, 1), 3 * (2 * 6320 + 4 * 2 * 1 * 16), unit="flops_per_token",
                case=check.describe(config=cfg, seq_len=1), what="training FLOPs per token at T = 1",
                mistakes=O.flops_mistakes(cfg, 1, True, 3 * (2 * 6320 + 128)))


@pytest.mark.points(4)
@examples(4)
@given(fields=_cfg_strategy(), data=st.data())
def test_flops_per_token_matches_flop_counter(impl, fields, data):
    cfg = LlamaConfig(**fields)
    T = data.draw(st.integers(1, cfg.block_size), label="seq_len")
    expected = O.measured_flops(cfg, T, backward=True)
    check.equal(impl.flops_per_token(cfg, T), expected, unit="flops_per_token",
                case=check.describe(seq_len=T, **fields),
                what="training FLOPs per token (FlopCounterMode on a forward + backward of a real TinyLlama, "
                     "math attention kernel, divided by B·T)",
                mistakes=O.flops_mistakes(cfg, T, True, expected))


@pytest.mark.points(2)
def test_flops_per_token_forward_only_matches_flop_counter(impl):
    for fields, T in ((O.BASE, 8), (dict(O.BASE, n_kv_head=1, qk_norm=True, hidden=20), 3),
                      (dict(vocab_size=3, block_size=2, n_layer=1, n_head=1, n_kv_head=1, d_model=2), 1)):
        cfg = LlamaConfig(**fields)
        expected = O.measured_flops(cfg, T, backward=False, batch=1)
        check.equal(impl.flops_per_token(cfg, T, backward=False), expected, unit="flops_per_token",
                    case=check.describe(seq_len=T, backward=False, batch=1, **fields),
                    what="forward FLOPs per token (FlopCounterMode on a forward of a real TinyLlama)",
                    mistakes=O.flops_mistakes(cfg, T, False, expected))


@pytest.mark.points(2)
def test_flops_per_token_of_the_trained_checkpoint(impl):
    # The course's trained tiny LLaMA: its own weights, a batch of real text, the flop counter.
    model, codec, info = load_tiny_llama()
    cfg = model.config
    text = "Ada walked to the harbour in the morning, and she found a map there. " * 2
    ids = codec.encode(text)[: 2 * cfg.block_size].view(2, cfg.block_size)
    from torch.nn.attention import SDPBackend, sdpa_kernel
    from torch.utils.flop_counter import FlopCounterMode
    model.train()
    with sdpa_kernel(SDPBackend.MATH), FlopCounterMode(display=False) as counter:
        model(ids[:, :-1], ids[:, 1:])[1].backward()
    T = cfg.block_size - 1
    expected = counter.get_total_flops() // (2 * T)
    case = check.describe(config=cfg, seq_len=T)
    check.equal(impl.flops_per_token(cfg, T), expected, unit="flops_per_token", case=case,
                what="training FLOPs per token of the trained checkpoint (reference/06_llama)",
                mistakes=O.flops_mistakes(cfg, T, True, expected))
    check.equal(impl.flops_per_token(cfg), O.measured_flops(cfg, batch=1), unit="flops_per_token", case=case,
                what="training FLOPs per token at the default seq_len (block_size)")


@pytest.mark.points(2)
def test_flops_per_token_grows_linearly_with_seq_len(impl):
    # Only the attention products depend on T: each extra position of context adds
    # 12·L·H·D FLOPs per token to training, 4·L·H·D to a forward.
    cfg = O.config(n_layer=3, vocab_size=29)
    values = [impl.flops_per_token(cfg, T) for T in range(1, cfg.block_size + 1)]
    steps = [b - a for a, b in zip(values, values[1:])]
    check.equal(steps, [12 * 3 * 16] * (cfg.block_size - 1), unit="flops_per_token",
                case=check.describe(config=cfg), what="increase of the training FLOPs per token from T to T + 1",
                mistakes={"attention products left out (only 6N)": [0] * (cfg.block_size - 1),
                          "causal attention counted over half the score matrix": [6 * 3 * 16] * (cfg.block_size - 1)})
    check.equal(impl.flops_per_token(cfg, None), values[-1], unit="flops_per_token",
                case=check.describe(seq_len=None), what="seq_len=None means block_size")


@pytest.mark.points(1)
def test_flops_per_token_matches_reference(impl):
    for row in reference.load(O.TOPIC, "counts")["configs"]:
        cfg = LlamaConfig(**row["config"])
        case = check.describe(**row["config"])
        check.equal(impl.non_embedding_params(cfg), row["non_embedding_params"], unit="non_embedding_params",
                    case=case)
        check.equal(impl.flops_per_token(cfg, row["seq_len"]), row["flops_train"], unit="flops_per_token",
                    case=check.describe(seq_len=row["seq_len"], **row["config"]))
        check.equal(impl.flops_per_token(cfg, row["seq_len"], backward=False), row["flops_forward"],
                    unit="flops_per_token", case=check.describe(seq_len=row["seq_len"], backward=False))


@pytest.mark.points(1)
def test_flops_per_token_raises(impl):
    cfg = O.config()
    for T, why in ((0, "seq_len must be at least 1"), (9, "seq_len may not exceed block_size = 8"),
                   (-3, "seq_len must be at least 1")):
        check.expect_raises(ValueError, impl.flops_per_token, cfg, T, unit="flops_per_token", why=why,
                            case=check.describe(seq_len=T, block_size=8))


# ---------------------------------------------------------------- chinchilla_optimal

def _close_floats(got, expected, *, unit, case, what, mistakes=None, tol=None):
    check.that(isinstance(got, tuple) and len(got) == len(expected) and all(isinstance(v, float) for v in got),
               unit, f"must return a tuple of {len(expected)} Python floats, got {got!r}", case=case)
    wrong = {k: torch.tensor(v, dtype=torch.float64) for k, v in (mistakes or {}).items()}
    check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64), unit=unit,
                case=case, what=what, kind="elementwise", tol=tol, mistakes=wrong)


def _chinchilla_mistakes(C: float, r: float) -> dict:
    n = math.sqrt(C / (6 * r))
    return {"tokens_per_param ignored (N = D)": (math.sqrt(C / 6), math.sqrt(C / 6)),
            "(tokens, params) returned in the wrong order": (r * n, n),
            "compute taken as 2·N·D (forward only) instead of 6·N·D": (math.sqrt(C / (2 * r)), r * math.sqrt(C / (2 * r))),
            "square root forgotten": (C / (6 * r), C / 6),
            "tokens_per_param inverted (D = N / r)": (math.sqrt(C * r / 6), math.sqrt(C * r / 6) / r)}


@pytest.mark.points(2)
def test_chinchilla_optimal_hand_values(impl):
    # Chinchilla's budget 5.76e23: N = sqrt(5.76e23 / 120) = sqrt(4.8e21) = 6.928e10, D = 20·N.
    for C, r, expected in ((5.76e23, 20.0, (math.sqrt(4.8e21), 20 * math.sqrt(4.8e21))),
                           (6e20, 20.0, (math.sqrt(5e18), 20 * math.sqrt(5e18))),
                           (600, 1.0, (10.0, 10.0)),
                           (9600, 4.0, (20.0, 80.0))):
        got = impl.chinchilla_optimal(C) if r == 20.0 and C == 5.76e23 else impl.chinchilla_optimal(C, r)
        _close_floats(got, expected, unit="chinchilla_optimal", case=check.describe(compute=C, tokens_per_param=r),
                      what="(params, tokens)", mistakes=_chinchilla_mistakes(C, r))


@pytest.mark.points(2)
@examples(20)
@given(log_c=st.floats(3.0, 30.0), r=st.sampled_from([0.5, 1.0, 20.0, 37.5]), as_int=st.booleans())
def test_chinchilla_optimal_defining_equations(impl, log_c, r, as_int):
    C = int(10 ** log_c) if as_int else 10 ** log_c
    case = check.describe(compute=C, tokens_per_param=r)
    got = impl.chinchilla_optimal(C, tokens_per_param=r)
    n = math.sqrt(C / (6 * r))
    _close_floats(got, (n, r * n), unit="chinchilla_optimal", case=case, what="(params, tokens)",
                  mistakes=_chinchilla_mistakes(C, r))
    params, tokens = got
    check.that(abs(6 * params * tokens / C - 1) < 1e-12 and abs(tokens / params / r - 1) < 1e-12,
               "chinchilla_optimal", "the result must satisfy 6·params·tokens = compute and tokens = r·params",
               f"6·N·D / C = {6 * params * tokens / C!r}, D / N = {tokens / params!r}", case=case)


@pytest.mark.points(1)
def test_chinchilla_optimal_raises(impl):
    for args, why in (((0.0,), "compute must be positive"), ((-1e20,), "compute must be positive"),
                      ((float("inf"),), "compute must be finite"), ((float("nan"),), "compute must be finite"),
                      ((1e20, 0.0), "tokens_per_param must be positive"),
                      ((1e20, -20.0), "tokens_per_param must be positive"),
                      ((1e20, float("inf")), "tokens_per_param must be finite")):
        check.expect_raises(ValueError, impl.chinchilla_optimal, *args, unit="chinchilla_optimal", why=why,
                            case=check.describe(args=args))


# ---------------------------------------------------------------- fit_power_law

# A fit of exact data recovers its parameters up to the optimiser's precision: the docstring
# allows S to exceed its minimum (0 here) by 1e-20·Σy², which moves the parameters by about
# 1e-9 relative on these well-conditioned problems; 1e-6 leaves a wide margin.
EXACT_FIT = Tolerance(rtol=1e-6, atol=1e-8)

LAWS = [  # (a, alpha, c, x): Kaplan-like exponents, Chinchilla-like, a steep one, FLOP-sized x
    (406.4, 0.34, 1.69, torch.logspace(6, 12, 9, dtype=torch.float64)),
    (8.0, 0.076, 0.5, torch.logspace(3, 9, 12, dtype=torch.float64)),
    (3.0, 1.5, 2.0, torch.linspace(1, 10, 7, dtype=torch.float64)),
    (2.0e3, 0.3, 0.0, torch.logspace(13, 25, 8, dtype=torch.float64)),
]


def _fit_mistakes(x, y, a, alpha, c):
    g = math.exp(float(torch.as_tensor(x, dtype=torch.float64).log().mean()))
    return {"a returned for the centred x (the factor g^alpha not applied)":
            torch.tensor([a * g ** (-alpha), alpha, c], dtype=torch.float64),
            "exponent returned with the wrong sign": torch.tensor([a, -alpha, c], dtype=torch.float64)}


@pytest.mark.points(3)
def test_fit_power_law_recovers_exact_laws(impl):
    for a, alpha, c, x in LAWS:
        y = a * x ** (-alpha) + c
        case = check.describe(x=x, a=a, alpha=alpha, c=c)
        got = impl.fit_power_law(x, y)
        _close_floats(got, (a, alpha, c), unit="fit_power_law", case=case, tol=EXACT_FIT,
                      what="(a, alpha, c) fitted to exact data y = a·x^(−alpha) + c",
                      mistakes={k: tuple(v.tolist()) for k, v in _fit_mistakes(x, y, a, alpha, c).items()})


@pytest.mark.points(3)
def test_fit_power_law_recovers_parameters_from_noisy_data(impl):
    # Noise N(0, sigma²) on y. To first order the least-squares estimates are normal around
    # the true parameters with covariance sigma²·(JᵀJ)⁻¹ (J the Jacobian at the truth). Each
    # parameter must lie within z = 5.45 standard deviations: P(|N(0,1)| > 5.45) = 5e-8, so
    # 3 parameters × 4 data sets fail a correct fit with probability ≤ 12 · 5e-8 = 6e-7 ≤ 1e-6
    # (under the linearisation, which holds at these noise levels: sigma is 0.2 % of y).
    z = 5.45
    for i, (a, alpha, c, x) in enumerate(LAWS):
        clean = a * x ** (-alpha) + c
        sigma = 0.002 * float(clean.mean())
        y = clean + sigma * tensors.randn(x.shape, 100 + i)
        case = check.describe(x=x, a=a, alpha=alpha, c=c, sigma=sigma, seed=100 + i)
        got = impl.fit_power_law(x, y)
        check.that(isinstance(got, tuple) and len(got) == 3, "fit_power_law", "must return (a, alpha, c)", case=case)
        sds = O.linearised_sd(x, a, alpha, c, sigma)
        for name, value, truth, sd in zip(("a", "alpha", "c"), got, (a, alpha, c), sds):
            check.that(abs(value - truth) <= z * sd, "fit_power_law",
                       f"{name} = {value:.6g} is {abs(value - truth) / sd:.1f} standard deviations from the true "
                       f"{truth:.6g} (allowed {z})", f"standard deviation of the estimate: {sd:.3g}", case=case)


@pytest.mark.points(3)
@examples(5)
@given(seed=seeds(), law=st.sampled_from(range(len(LAWS))), noise=st.sampled_from([0.005, 0.02]))
def test_fit_power_law_is_the_least_squares_optimum(impl, seed, law, noise):
    a, alpha, c, x = LAWS[law]
    clean = a * x ** (-alpha) + c
    y = clean * (1 + noise * tensors.randn(x.shape, seed))
    case = check.describe(x=x, a=a, alpha=alpha, c=c, relative_noise=noise, seed=seed)
    got = impl.fit_power_law(x, y)
    best = O.fit_oracle(x, y, (a, alpha, c))
    s_got, s_best = O.rss(x, y, *got), O.rss(x, y, *best)
    limit = s_best * (1 + 1e-6) + 1e-20 * float((y ** 2).sum())
    check.that(s_got <= limit, "fit_power_law", "the fit is not the least-squares optimum",
               f"sum of squares {s_got:.8g} for your (a, alpha, c) = {got}",
               f"SciPy's least-squares fit reaches {s_best:.8g} with {tuple(round(v, 6) for v in best)}", case=case)
    # At an interior optimum the gradient of S vanishes: relative to the size of the terms.
    p = torch.tensor(got, dtype=torch.float64, requires_grad=True)
    resid = p[0] * x ** (-p[1]) + p[2] - y
    (resid ** 2).sum().backward()
    scale = torch.tensor([float((x ** -p[1].detach()).norm()), float((p[0] * x ** -p[1] * x.log()).norm().detach()),
                          math.sqrt(len(x))], dtype=torch.float64) * float(resid.norm().detach()) * 2
    check.that(bool((p.grad.abs() <= 1e-4 * scale + 1e-12).all()), "fit_power_law",
               "the gradient of the sum of squares at your parameters is not zero: not a least-squares optimum",
               f"gradient w.r.t. (a, alpha, c): {p.grad.tolist()}", case=case)


@pytest.mark.points(2)
def test_fit_power_law_equivariances(impl):
    # y -> k·y + b gives (k·a, alpha, k·c + b); x -> s·x gives (a·s^alpha, alpha, c).
    a, alpha, c, x = LAWS[1]
    y = (a * x ** (-alpha) + c) * (1 + 0.01 * tensors.randn(x.shape, 7))
    base = impl.fit_power_law(x, y)
    # The optimiser's precision (S within 1e-6 of its minimum) moves the parameters along
    # the problem's flattest direction by up to about 1e-4 relative here.
    tol = Tolerance(rtol=1e-3, atol=1e-6)
    case = check.describe(x=x, y=y)
    for k, b in ((3.0, 0.0), (0.5, -2.0)):
        _close_floats(impl.fit_power_law(x, k * y + b), (k * base[0], base[1], k * base[2] + b), unit="fit_power_law",
                      case=case + f"; y scaled by {k} and shifted by {b}", tol=tol,
                      what="fit of k·y + b (expected k·a, alpha, k·c + b from your fit of y)")
    s = 1e4
    _close_floats(impl.fit_power_law(x * s, y), (base[0] * s ** base[1], base[1], base[2]), unit="fit_power_law",
                  case=case + f"; x scaled by {s}", tol=tol,
                  what="fit of y against s·x (expected a·s^alpha, alpha, c from your fit of y)")


def _profile_minimum(x, y, lo: float, hi: float, n: int = 40_001) -> tuple[float, float]:
    """Brute force: the smallest sum of squares over alpha on a fine grid of [lo, hi], with
    the best (a, c) for each alpha in closed form. Returns (S, alpha)."""
    x = torch.as_tensor(x, dtype=torch.float64)
    y = torch.as_tensor(y, dtype=torch.float64)
    alphas = torch.linspace(lo, hi, n, dtype=torch.float64)
    basis = x[None, :] ** -alphas[:, None]                                  # (n, points)
    b = basis - basis.mean(dim=1, keepdim=True)
    slope = (b * (y - y.mean())).sum(dim=1) / (b * b).sum(dim=1)
    resid = slope[:, None] * b - (y - y.mean())
    s = (resid ** 2).sum(dim=1)
    i = int(s.argmin())
    return float(s[i]), float(alphas[i])


@pytest.mark.points(2)
def test_fit_power_law_at_the_edges_of_the_alpha_range(impl):
    # The docstring's range of exponents is [0.01, 4]: data from a steeper law (alpha 4.5) or
    # a flatter one (alpha 0.002) are fitted best at the edge of the range. Also a law whose
    # exponent (0.0735) lies between two points of any coarse grid of step 0.01.
    lo, hi = 0.01, 4.0
    for a, alpha, c, x, edge in ((2.0, 4.5, 1.0, torch.linspace(1, 3, 6, dtype=torch.float64), hi),
                                 (1.0, 0.002, 0.0, torch.logspace(0, 6, 8, dtype=torch.float64), lo),
                                 (6.0, 0.0735, 0.4, torch.logspace(2, 9, 9, dtype=torch.float64), None)):
        y = a * x ** (-alpha) + c
        case = check.describe(x=x, a=a, alpha=alpha, c=c)
        got = impl.fit_power_law(x, y)
        check.that(isinstance(got, tuple) and len(got) == 3, "fit_power_law", "must return (a, alpha, c)", case=case)
        s_brute, alpha_brute = _profile_minimum(x, y, lo, hi)
        s_got = O.rss(x, y, *got)
        check.that(s_got <= s_brute * (1 + 1e-6) + 1e-20 * float((y ** 2).sum()), "fit_power_law",
                   "the fit is not the least-squares optimum over 0.01 ≤ alpha ≤ 4",
                   f"sum of squares {s_got:.8g} at {got}; a brute-force search over alpha reaches "
                   f"{s_brute:.8g} at alpha = {alpha_brute:.6g}", case=case)
        expected = edge if edge is not None else alpha
        check.that(abs(got[1] - expected) <= 1e-6 * expected, "fit_power_law",
                   f"alpha = {got[1]!r}, expected {expected!r}"
                   + (" (the edge of the range, where the constrained optimum lies)" if edge is not None else ""),
                   case=case)


@pytest.mark.points(2)
def test_fit_power_law_input_forms(impl):
    a, alpha, c = 5.0, 0.5, 1.0
    x = [1.0, 4.0, 16.0, 64.0, 256.0]
    y = [a * v ** (-alpha) + c for v in x]
    for xs, ys, form in ((x, y, "lists"), (tuple(x), tuple(y), "tuples"),
                         (torch.tensor(x), torch.tensor(y), "float32 tensors"),
                         (torch.tensor([x, x], dtype=torch.float64).T[:, 1], torch.tensor([y, y]).T[:, 0],
                          "non-contiguous tensors"),
                         (x[:3], y[:3], "exactly 3 points"),
                         (x + [4.0, 16.0], y + [y[1], y[2]], "repeated x values")):
        # float32 inputs carry rounding of 6e-8 relative: the fitted values move by ~1e-6.
        tol = Tolerance(rtol=2e-4, atol=1e-5) if form == "float32 tensors" else EXACT_FIT
        _close_floats(impl.fit_power_law(xs, ys), (a, alpha, c), unit="fit_power_law", tol=tol,
                      case=f"x and y as {form}: " + check.describe(x=list(xs), y=[round(float(v), 4) for v in ys]),
                      what="(a, alpha, c)")


@pytest.mark.points(2)
def test_fit_power_law_matches_reference(impl):
    rec = reference.load(O.TOPIC, "fit")
    got = impl.fit_power_law(rec["x"], rec["y"])
    case = check.describe(x=rec["x"], y=rec["y"])
    s_got, s_ref = O.rss(rec["x"], rec["y"], *got), O.rss(rec["x"], rec["y"], *rec["params"].tolist())
    check.that(s_got <= s_ref * (1 + 1e-6), "fit_power_law", "worse sum of squares than the reference fit",
               f"yours {s_got:.8g} at {got}, reference {s_ref:.8g} at {rec['params'].tolist()}", case=case)
    _close_floats(got, tuple(rec["params"].tolist()), unit="fit_power_law", case=case,
                  tol=Tolerance(rtol=1e-3, atol=1e-6),   # as in the equivariance test: the flat direction
                  what="(a, alpha, c) of the reference data")


@pytest.mark.points(2)
def test_fit_power_law_raises(impl):
    good = [1.0, 2.0, 4.0, 8.0]
    y = [3.0, 2.0, 1.5, 1.2]
    nan, inf = float("nan"), float("inf")
    for xs, ys, why in ((good, y[:3], "x and y must have the same length"),
                        (good[:2], y[:2], "fewer than 3 points"),
                        ([1.0, 1.0, 2.0, 2.0], y, "fewer than 3 distinct x"),
                        ([0.0, 2.0, 4.0, 8.0], y, "x must be positive"),
                        ([-1.0, 2.0, 4.0, 8.0], y, "x must be positive"),
                        ([1.0, 2.0, inf, 8.0], y, "x must be finite"),
                        (good, [3.0, nan, 1.5, 1.2], "y must be finite"),
                        (good, [3.0, 2.0, -inf, 1.2], "y must be finite"),
                        (torch.tensor([good, good]), torch.tensor([y, y]), "x and y must be 1-D")):
        check.expect_raises(ValueError, impl.fit_power_law, xs, ys, unit="fit_power_law", why=why,
                            case=check.describe(x=xs, y=ys))


# ---------------------------------------------------------------- training_memory_bytes

OPTIMIZERS = ("sgd", "momentum", "adam", "adamw")
BYTES_PER_PARAM = {"fp32": (8, 12, 16, 16), "bf16": (4, 6, 8, 8), "mixed": (8, 12, 16, 16)}


def _memory_mistakes(precision: str) -> dict:
    """Bytes per parameter for (sgd, momentum, adam, adamw) under each known mistake: the
    four values together tell the mistakes apart (one optimizer alone often cannot)."""
    width = {"fp32": 4, "bf16": 2}.get(precision)
    out = {}
    if precision == "mixed":
        out["mixed precision without the float32 master weights"] = (4, 8, 12, 12)
        out["mixed precision with the states in bf16"] = (8, 10, 12, 12)
        out["gradients not counted"] = (6, 10, 14, 14)
    else:
        out["gradients not counted"] = tuple(width * (1 + s) for s in (0, 1, 2, 2))
    right = BYTES_PER_PARAM[precision]
    out["Adam counted with one state"] = right[:2] + (right[1], right[1])
    out["momentum buffer not counted"] = (right[0], right[0], right[2], right[3])
    return out


@pytest.mark.points(2)
def test_training_memory_worked_cases(impl):
    unit = "training_memory_bytes"
    for precision, expected in BYTES_PER_PARAM.items():
        got = tuple(impl.training_memory_bytes(1000, o, precision) / 1000 for o in OPTIMIZERS)
        check.equal(got, tuple(float(v) for v in expected), unit=unit, what=f"bytes per parameter for {OPTIMIZERS}",
                    case=check.describe(params=1000, precision=precision), mistakes=_memory_mistakes(precision))
    # ZeRO's example: 7.5e9 parameters, mixed-precision Adam, 16 bytes each.
    for n, optimizer, precision, expected in ((7_500_000_000, "adamw", "mixed", 120_000_000_000),
                                              (7_500_000_000, "adam", "mixed", 120_000_000_000),
                                              (0, "adamw", "mixed", 0), (1, "adam", "bf16", 8), (3, "sgd", "fp32", 24)):
        case = check.describe(params=n, optimizer=optimizer, precision=precision)
        got = impl.training_memory_bytes(n, optimizer, precision)
        check.equal(got, expected, unit=unit, case=case, what="bytes")
        check.that(_is_int(got), unit, f"must return a Python int, got {type(got).__name__}", case=case)
    check.equal(impl.training_memory_bytes(10), 160, unit=unit, case="params=10 with the defaults",
                what="bytes (defaults: adamw, fp32)")


@pytest.mark.points(3)
def test_training_memory_matches_real_optimizer_state(impl):
    # A real TinyLlama, one step of a real torch.optim optimizer, then the bytes of its
    # weights, gradients and per-element optimizer state (step counters are not per element).
    makers = {"sgd": lambda ps: torch.optim.SGD(ps, lr=0.1),
              "momentum": lambda ps: torch.optim.SGD(ps, lr=0.1, momentum=0.9),
              "adam": lambda ps: torch.optim.Adam(ps, lr=1e-3),
              "adamw": lambda ps: torch.optim.AdamW(ps, lr=1e-3)}
    for dtype, precision in ((torch.float32, "fp32"), (torch.bfloat16, "bf16")):
        for optimizer, make in makers.items():
            torch.manual_seed(0)
            model = O.TinyLlama(O.config()).to(dtype)
            n = sum(p.numel() for p in model.parameters())
            expected = O.measured_state_bytes(model, make)
            case = check.describe(params=n, optimizer=optimizer, precision=precision)
            check.equal(impl.training_memory_bytes(n, optimizer, precision), expected, unit="training_memory_bytes",
                        case=case, what=f"bytes a real {type(make([torch.nn.Parameter(torch.zeros(1))])).__name__} "
                                        f"run holds in {dtype}",
                        mistakes={k: n * v[OPTIMIZERS.index(optimizer)]
                                  for k, v in _memory_mistakes(precision).items()})


@pytest.mark.points(1)
def test_training_memory_raises(impl):
    for args, why in (((-1, "adamw", "fp32"), "params must be non-negative"),
                      ((10, "lion", "fp32"), "unknown optimizer"),
                      ((10, "AdamW", "fp32"), "optimizer names are lower-case"),
                      ((10, "adamw", "fp16"), "unknown precision"),
                      ((10, "adamw", "float32"), "unknown precision")):
        exc = check.expect_raises(ValueError, impl.training_memory_bytes, *args, unit="training_memory_bytes",
                                  why=why, case=check.describe(args=args))
        if args[1] == "lion":
            check.that("adamw" in str(exc) and "momentum" in str(exc), "training_memory_bytes",
                       "the ValueError should list the allowed optimizers", f"message was: {str(exc)!r}")
        if args[2] == "fp16":
            check.that("mixed" in str(exc) and "bf16" in str(exc), "training_memory_bytes",
                       "the ValueError should list the allowed precisions", f"message was: {str(exc)!r}")


# ---------------------------------------------------------------- mfu

@pytest.mark.points(2)
def test_mfu_hand_values_and_ratio(impl):
    # 16 000 tokens/s of a 1.3e9-parameter model (6N = 7.8e9 FLOPs per token) on a 312
    # TFLOP/s chip: 1.248e14 / 3.12e14 = 0.4.
    cases = [((16_000, 7.8e9, 312e12), 0.4), ((0.0, 1e9, 1e12), 0.0), ((3, 5, 15), 1.0), ((1e6, 4e9, 1e15), 4.0),
             ((2.5, 40_992, 1e6), 2.5 * 40_992 / 1e6), ((3, 0.5, 0.75), 2.0), ((10, 4.0, 0.5), 80.0)]
    for args, expected in cases:
        got = impl.mfu(*args)
        case = check.describe(tokens_per_s=args[0], flops_per_token=args[1], peak_flops=args[2])
        check.that(isinstance(got, float), "mfu", f"must return a Python float, got {type(got).__name__}", case=case)
        check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64), unit="mfu",
                    case=case, kind="elementwise",
                    mistakes={"ratio inverted": torch.tensor(args[2] / (args[0] * args[1]) if args[0] else math.inf,
                                                             dtype=torch.float64),
                              "flops_per_token left out": torch.tensor(args[0] / args[2], dtype=torch.float64)})


@pytest.mark.points(1)
def test_mfu_raises(impl):
    nan, inf = float("nan"), float("inf")
    for args, why in (((-1.0, 1e9, 1e12), "tokens_per_s must be ≥ 0"), ((nan, 1e9, 1e12), "tokens_per_s must be finite"),
                      ((inf, 1e9, 1e12), "tokens_per_s must be finite"), ((1.0, 0.0, 1e12), "flops_per_token must be > 0"),
                      ((1.0, -5.0, 1e12), "flops_per_token must be > 0"), ((1.0, inf, 1e12), "flops_per_token must be finite"),
                      ((1.0, 1e9, 0.0), "peak_flops must be > 0"), ((1.0, 1e9, nan), "peak_flops must be finite")):
        check.expect_raises(ValueError, impl.mfu, *args, unit="mfu", why=why, case=check.describe(args=args))
