"""Graders for 21_evaluation, estimators and ratings: pass_at_k, bootstrap_ci,
expected_calibration_error, elo_ratings, bradley_terry.

pass_at_k: brute-force enumeration of every k-subset, exact rational arithmetic for large n,
the biased estimator named, golden values, Raises.
bootstrap_ci: golden intervals, an oracle written as a loop with the same documented draws
and a hand-written quantile, coverage in simulation (stats.binomial_interval, stated
false-failure rate), properties (seeds, nesting, constant scores, global RNG), Raises.
expected_calibration_error: hand values at the bin edges, golden data, a loop oracle on
hypothesis inputs, gradients, Raises.
elo_ratings: hand values, a loop oracle, invariances (zero sum, shift, symmetry, relabelling).
bradley_terry: optimality of the returned θ (autograd gradient of the objective), mean 0,
golden data, invariances (order of the games, symmetry, relabelling), Raises.
"""

from __future__ import annotations

import itertools
import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import evaluation_oracle as O
from llmlab.testing import check, reference, stats, tensors
from llmlab.testing.strategies import examples, seeds
from llmlab.testing.tolerances import Tolerance

# ---------------------------------------------------------------- pass_at_k

def _biased(n, c, k):
    return 1 - (1 - c / n) ** k


@pytest.mark.points(2)
def test_pass_at_k_matches_brute_force_enumeration(impl):
    # pass@k = P(a k-subset of the n samples contains a correct one): enumerate every subset.
    for n in range(1, 8):
        for c in range(n + 1):
            for k in range(1, n + 1):
                subsets = list(itertools.combinations(range(n), k))          # samples 0 … c − 1 are correct
                exact = sum(any(i < c for i in s) for s in subsets) / len(subsets)
                got = impl.pass_at_k(n, c, k)
                case = check.describe(n=n, c=c, k=k)
                check.that(type(got) is float, "pass_at_k", f"should return a Python float, got {type(got).__name__}",
                           case=case)
                check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(exact, dtype=torch.float64),
                            unit="pass_at_k", case=case, kind="reduction",
                            what="pass@k (compared with the fraction of all k-subsets holding a correct sample)",
                            mistakes={"the biased estimator 1 − (1 − c/n)^k (sampling with replacement)":
                                      torch.tensor(_biased(n, c, k), dtype=torch.float64)})


@pytest.mark.points(1)
def test_pass_at_k_exact_for_large_n_and_raises(impl):
    ref = reference.load(O.TOPIC, "pass_at_k")
    cases = [tuple(r[:3]) for r in ref] + [(100_000, 37, 10), (100_000, 99_990, 11), (50_000, 2_500, 1_000),
                                           (3_000, 1, 1), (100_000, 1, 99_999)]
    for n, c, k in cases:
        exact = 1 - Fraction(math.comb(n - c, k), math.comb(n, k))          # exact rational arithmetic
        got = impl.pass_at_k(n, c, k)
        check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(float(exact), dtype=torch.float64),
                    unit="pass_at_k", case=check.describe(n=n, c=c, k=k), tol=Tolerance(0.0, 1e-9),  # the docstring's 1e-9
                    what="pass@k against exact rational arithmetic (math.comb)",
                    mistakes={"the biased estimator 1 − (1 − c/n)^k":
                              torch.tensor(_biased(n, c, k), dtype=torch.float64)})
    for r in ref:
        check.close(torch.tensor(impl.pass_at_k(*r[:3]), dtype=torch.float64), torch.tensor(r[3], dtype=torch.float64),
                    unit="pass_at_k", case=check.describe(n=r[0], c=r[1], k=r[2]), tol=Tolerance(0.0, 1e-9),
                    what="the reference value")  # the docstring's 1e-9
    check.equal([impl.pass_at_k(9, 0, 4), impl.pass_at_k(9, 6, 4), impl.pass_at_k(9, 9, 1)], [0.0, 1.0, 1.0],
                unit="pass_at_k", case="(n, c, k) = (9, 0, 4), (9, 6, 4), (9, 9, 1)",
                what="exactly 0.0 when c = 0 and exactly 1.0 when n − c < k")
    for n, c, k, why in ((5, 6, 1, "c > n"), (5, -1, 1, "c < 0"), (5, 2, 0, "k < 1"), (5, 2, 6, "k > n")):
        check.expect_raises(ValueError, impl.pass_at_k, n, c, k, unit="pass_at_k", case=check.describe(n=n, c=c, k=k),
                            why=why)


# ---------------------------------------------------------------- bootstrap_ci

def _bootstrap_oracle(scores, n_boot, alpha, seed):
    """The documented draws, resample by resample, and a hand-written quantile."""
    x = scores.double().tolist()
    g = torch.Generator().manual_seed(seed)
    means = []
    for _ in range(n_boot):
        row = torch.randint(0, len(x), (len(x),), generator=g).tolist()   # same stream as one (n_boot, n) call
        means.append(sum(x[i] for i in row) / len(x))
    return O.quantile(means, alpha / 2), O.quantile(means, 1 - alpha / 2)


@pytest.mark.points(2)
def test_bootstrap_ci_reference_and_loop_oracle(impl):
    ref = reference.load(O.TOPIC, "bootstrap")
    scores = ref["scores"]
    for i, (n_boot, alpha, seed) in enumerate(((500, 0.1, 0), (2000, 0.05, 7), (1, 0.5, 3), (300, 0.3, 11))):
        case = check.describe(scores=scores, n_boot=n_boot, alpha=alpha, seed=seed)
        got = impl.bootstrap_ci(scores, n_boot, alpha, seed)
        expected = (float(ref[f"lo_{i}"]), float(ref[f"hi_{i}"]))
        check.that(isinstance(got, tuple) and len(got) == 2, "bootstrap_ci", f"should return (lo, hi), got {got!r}",
                   case=case)
        mean = float(scores.mean())
        check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64),
                    unit="bootstrap_ci", case=case, kind="reduction", what="the reference interval",
                    mistakes={"resamples without replacement (each resample a permutation: the interval has zero "
                              "width at the sample mean)": torch.tensor([mean, mean], dtype=torch.float64),
                              "quantiles at alpha and 1 − alpha (alpha not halved)":
                              lambda: torch.tensor(_bootstrap_oracle(scores, n_boot, 2 * alpha, seed)
                                                   if alpha < 0.5 else (0.0, 0.0), dtype=torch.float64)})
    for seed, n, n_boot, alpha, dtype in ((5, 12, 300, 0.1, torch.float64), (6, 1, 10, 0.2, torch.float32),
                                          (7, 25, 77, 0.01, torch.float32)):
        scores = tensors.rand((n,), seed, dtype)
        case = check.describe(scores=scores, n_boot=n_boot, alpha=alpha, seed=seed)
        got = impl.bootstrap_ci(scores, n_boot, alpha, seed)
        check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(_bootstrap_oracle(scores, n_boot, alpha, seed),
                                                                         dtype=torch.float64),
                    unit="bootstrap_ci", case=case, kind="reduction",
                    what="(lo, hi) against the documented draws resample by resample and a hand-written quantile")
    correct = torch.tensor([True, False, True, True, False, True, True, True])
    got = impl.bootstrap_ci(correct, 400, 0.2, 1)
    check.close(torch.tensor(got, dtype=torch.float64),
                torch.tensor(_bootstrap_oracle(correct.double(), 400, 0.2, 1), dtype=torch.float64),
                unit="bootstrap_ci", kind="reduction", case=check.describe(scores=correct, n_boot=400, alpha=0.2, seed=1),
                what="(lo, hi) of bool scores (cast to float64)")


@pytest.mark.points(2)
def test_bootstrap_ci_coverage_in_simulation(impl):
    # 1000 data sets of 40 draws from N(0, 1); a 90% interval each (n_boot 200). The percentile
    # bootstrap slightly under-covers at n = 40: its true coverage here was measured as 0.8805
    # (20 000 data sets, standard error 0.0023), so it lies in [0.87, 0.89]. A correct
    # implementation then covers 0 in a count inside the union of the two binomial intervals
    # at rate 1e-6 (false failure ≤ 1e-6).
    M, n = 1000, 40
    data = torch.randn(M, n, generator=tensors.generator(2121), dtype=torch.float64)
    hits, widths = 0, []
    for i in range(M):
        lo, hi = impl.bootstrap_ci(data[i], 200, 0.1, 5000 + i)
        hits += lo <= 0.0 <= hi
        widths.append(hi - lo)
    low, _ = stats.binomial_interval(M, 0.87, 1e-6)
    _, high = stats.binomial_interval(M, 0.89, 1e-6)
    mean_width = sum(widths) / M
    case = check.describe(datasets=M, n=n, n_boot=200, alpha=0.1, data="N(0, 1)")
    if mean_width < 1e-9:
        check.fail("bootstrap_ci", "every interval has zero width", f"coverage {hits}/{M}", case=case,
                   mistake="resamples without replacement (each resample a permutation of the data)")
    check.that(low <= hits <= high, "bootstrap_ci",
               f"the 90% intervals covered the true mean in {hits} of {M} data sets (expected about 880; a correct "
               f"implementation lands in [{low}, {high}] with probability ≥ 1 − 1e-6)",
               f"mean width {mean_width:.4f} (about 2·1.645/sqrt(40) ≈ 0.52 expected)", case=case)


@pytest.mark.points(1)
def test_bootstrap_ci_properties_and_raises(impl):
    scores = tensors.rand((30,), 9)
    a = impl.bootstrap_ci(scores, 300, 0.1, 4)
    torch.manual_seed(0)
    state = torch.get_rng_state()
    b = impl.bootstrap_ci(scores, 300, 0.1, 4)
    case = check.describe(scores=scores, n_boot=300, alpha=0.1, seed=4)
    check.that(a == b, "bootstrap_ci", f"the same seed gave different intervals {a} and {b}", case=case)
    check.that(torch.equal(state, torch.get_rng_state()), "bootstrap_ci",
               "the global random state changed: draw only from torch.Generator().manual_seed(seed)", case=case)
    intervals = [impl.bootstrap_ci(scores, 300, alpha, 4) for alpha in (0.5, 0.2, 0.05, 0.01)]
    nested = all(o[0] <= i[0] <= i[1] <= o[1] for i, o in zip(intervals, intervals[1:]))
    check.that(nested, "bootstrap_ci", f"intervals of levels 50%, 80%, 95%, 99% (same draws) are not nested: "
               f"{intervals}", case=case)
    mean = float(scores.mean())
    check.that(intervals[-1][0] < mean < intervals[-1][1], "bootstrap_ci",
               f"the 99% interval {intervals[-1]} does not contain the sample mean {mean:.4f}", case=case)
    const = torch.full((9,), 0.25, dtype=torch.float64)
    check.close(torch.tensor(impl.bootstrap_ci(const, 50, 0.1, 0), dtype=torch.float64),
                torch.tensor([0.25, 0.25], dtype=torch.float64), unit="bootstrap_ci", kind="reduction",
                case=check.describe(scores=const), what="the interval of constant scores")
    for s, n_boot, alpha, why in ((scores[None], 10, 0.1, "scores must be 1-D"), (scores[:0], 10, 0.1, "empty"),
                                  (scores, 0, 0.1, "n_boot < 1"), (scores, 10, 0.0, "alpha = 0"),
                                  (scores, 10, 1.0, "alpha = 1")):
        check.expect_raises(ValueError, impl.bootstrap_ci, s, n_boot, alpha, 0, unit="bootstrap_ci",
                            case=check.describe(scores=s, n_boot=n_boot, alpha=alpha), why=why)


# ---------------------------------------------------------------- expected_calibration_error

@pytest.mark.points(1)
def test_ece_by_hand_reference_and_raises(impl):
    # bins of width 0.1: 0.05 -> bin 0; 0.3 and 0.35 -> bin 3; 0.9 and 1.0 -> bin 9 (the last bin is closed)
    conf = torch.tensor([0.05, 0.3, 0.35, 0.9, 1.0], dtype=torch.float64)
    correct = torch.tensor([False, True, False, True, True])
    # (1/5)|0 − 0.05| + (2/5)|0.5 − 0.325| + (2/5)|1 − 0.95| = 0.01 + 0.07 + 0.02 = 0.1
    case = check.describe(confidences=conf, correct=correct, n_bins=10)
    check.close(impl.expected_calibration_error(conf, correct, 10), torch.tensor(0.1, dtype=torch.float64),
                unit="expected_calibration_error", case=case, kind="reduction",
                what="ECE (by hand: 0.01 + 0.07 + 0.02 = 0.1)",
                mistakes={"bins averaged without their weights n_b / N": torch.tensor((0.05 + 0.175 + 0.05) / 3,
                                                                                       dtype=torch.float64),
                          "signed gaps summed before the absolute value (|accuracy − mean confidence| overall)":
                          torch.tensor(0.08, dtype=torch.float64)})
    ref = reference.load(O.TOPIC, "calibration")
    for n_bins in (10, 7):
        check.close(impl.expected_calibration_error(ref["confidences"], ref["correct"], n_bins), ref[f"ece_{n_bins}"],
                    unit="expected_calibration_error", kind="reduction", what="ECE of the reference data",
                    case=check.describe(confidences=ref["confidences"], n_bins=n_bins))
    check.close(impl.expected_calibration_error(conf.float(), correct.long(), 1),
                (0.6 - conf.float().double().mean()).abs(), unit="expected_calibration_error", kind="reduction",
                case="float32 confidences, int64 correct, n_bins = 1",
                what="ECE with one bin: |accuracy − mean confidence| (float64 result)")
    ok = torch.tensor([0.2, 0.8])
    bad = ((ok, torch.tensor([True]), 10, "shapes differ"), (ok[None], torch.tensor([[True, False]]), 10, "not 1-D"),
           (ok[:0], torch.tensor([], dtype=torch.bool), 10, "N = 0"), (ok, torch.tensor([True, False]), 0, "n_bins < 1"),
           (torch.tensor([0.2, 1.2]), torch.tensor([True, False]), 10, "confidence > 1"),
           (torch.tensor([-0.1, 0.5]), torch.tensor([True, False]), 10, "confidence < 0"))
    for c, y, b, why in bad:
        check.expect_raises(ValueError, impl.expected_calibration_error, c, y, b, unit="expected_calibration_error",
                            case=check.describe(confidences=c, correct=y, n_bins=b), why=why)


@pytest.mark.points(2)
@examples(10)
@given(seed=seeds(), n=st.integers(1, 60), n_bins=st.integers(1, 15), dtype=st.sampled_from([torch.float32,
                                                                                                torch.float64]))
def test_ece_matches_loop_oracle_and_gradients(impl, seed, n, n_bins, dtype):
    conf = tensors.rand((n,), seed, dtype)
    conf[: n // 4] = (tensors.randint((n // 4,), seed + 1, high=n_bins + 1).double() / n_bins).to(dtype)  # bin edges
    correct = tensors.rand((n,), seed + 2) < conf.double()
    case = check.describe(confidences=conf, correct=correct, n_bins=n_bins)
    expected = O.ece_loop(conf.double().tolist(), correct.tolist(), n_bins)
    out = impl.expected_calibration_error(conf, correct, n_bins)
    check.close(out, torch.tensor(expected, dtype=torch.float64), unit="expected_calibration_error", case=case,
                kind="reduction", what="ECE (compared with a bin-by-bin loop)")

    def oracle(c):                                                       # the same bins, held fixed
        bins = torch.clamp((c.detach().double() * n_bins).floor().long(), max=n_bins - 1)
        one_hot = torch.nn.functional.one_hot(bins, n_bins).double()     # (N, B)
        return ((correct.double() - c.double()) @ one_hot).abs().sum() / n

    # gradients on confidences away from the bin edges: |gap| has no derivative where a bin's gap is 0
    # (a lone confidence of exactly 1.0 that is correct), and the docstring does not fix one there
    smooth = tensors.rand((n,), seed + 3, dtype, low=0.01, high=0.99)
    check.grads(lambda c: impl.expected_calibration_error(c, correct, n_bins), oracle, [smooth],
                names=["confidences"], unit="expected_calibration_error", case=check.describe(confidences=smooth,
                                                                                              n_bins=n_bins))


# ---------------------------------------------------------------- elo_ratings

def _elo_loop(games, scores, n_players, k=32.0, initial=1000.0):
    r = {i: float(initial) for i in range(n_players)}
    for (a, b), s in zip(games.tolist(), scores.tolist()):
        qa, qb = 10 ** (r[a] / 400), 10 ** (r[b] / 400)                 # E_a = q_a / (q_a + q_b)
        ea = qa / (qa + qb)
        r[a], r[b] = r[a] + k * (s - ea), r[b] + k * ((1 - s) - (1 - ea))
    return torch.tensor([r[i] for i in range(n_players)], dtype=torch.float64)


def _games(seed, n_players, n_games):
    a = tensors.randint((n_games,), seed, high=n_players)
    b = (a + tensors.randint((n_games,), seed + 1, high=n_players - 1) + 1) % n_players
    u = tensors.rand((n_games,), seed + 2)
    scores = torch.where(u < 0.15, 0.5, (u < 0.6).double())
    return torch.stack([a, b], dim=1), scores


@pytest.mark.points(2)
def test_elo_by_hand_oracle_and_invariances(impl):
    games, scores = torch.tensor([[0, 1], [1, 2]]), torch.tensor([1.0, 0.5], dtype=torch.float64)
    # game 1: equal ratings, E = 0.5: player 0 +16, player 1 −16. game 2: 984 vs 1000,
    # E_1 = 1 / (1 + 10^(16/400)) = 0.47699, draw: player 1 + 32·0.02301 = +0.7363
    e1 = 1 / (1 + 10 ** (16 / 400))
    expected = torch.tensor([1016.0, 984 + 32 * (0.5 - e1), 1000 - 32 * (0.5 - e1)], dtype=torch.float64)
    case = check.describe(games=games, scores=scores)
    check.close(impl.elo_ratings(games, scores, 3), expected, unit="elo_ratings", case=case, kind="reduction",
                what="ratings after two games (by hand: 1016, 984.736, 999.264)",
                mistakes={"the second player updated with the first player's new rating": _elo_seq(games, scores)})
    games, scores = _games(3, 5, 60)
    case = check.describe(games=games, scores=scores, n_players=5)
    out = impl.elo_ratings(games, scores, 5)
    check.close(out, _elo_loop(games, scores, 5), unit="elo_ratings", case=case, kind="reduction",
                what="ratings (compared with a loop oracle)")
    check.close(out.sum(), torch.tensor(5000.0, dtype=torch.float64), unit="elo_ratings", case=case, kind="reduction",
                what="the sum of the ratings (Elo is zero-sum: it stays n_players · initial)")
    shifted = impl.elo_ratings(games, scores, 5, initial=1234.5)
    check.close(shifted, out + 234.5, unit="elo_ratings", case=case + "; initial=1234.5", kind="reduction",
                what="ratings when every player starts 234.5 higher (shift invariance)")
    swapped = impl.elo_ratings(games.flip(1), 1 - scores, 5)
    check.close(swapped, out, unit="elo_ratings", case=case + "; (a, b) swapped, scores 1 − s", kind="reduction",
                what="ratings when every game is written from the other player's side (symmetry)")
    perm = torch.tensor([3, 0, 4, 1, 2])
    relabelled = impl.elo_ratings(perm[games], scores, 5)
    check.close(relabelled[perm], out, unit="elo_ratings", case=case + "; players relabelled i -> perm[i]",
                kind="reduction", what="ratings of relabelled players")
    out_k = impl.elo_ratings(games, scores, 6, k=10.0)
    check.close(out_k, _elo_loop(games, scores, 6, k=10.0), unit="elo_ratings", kind="reduction",
                case=case + "; k=10, a sixth player without games", what="ratings with k = 10")


def _elo_seq(games, scores):
    """Known mistake: player b's update uses player a's rating after the game."""
    r = [1000.0] * 3
    for (a, b), s in zip(games.tolist(), scores.tolist()):
        r[a] += 32 * (s - 1 / (1 + 10 ** ((r[b] - r[a]) / 400)))
        r[b] += 32 * ((1 - s) - 1 / (1 + 10 ** ((r[a] - r[b]) / 400)))
    return torch.tensor(r, dtype=torch.float64)


# ---------------------------------------------------------------- bradley_terry

def _bt_gradient(theta, games, scores, l2):
    t = theta.detach().clone().requires_grad_(True)
    d = t[games[:, 0]] - t[games[:, 1]]
    objective = (scores * torch.nn.functional.logsigmoid(d) + (1 - scores) * torch.nn.functional.logsigmoid(-d)).sum()
    (objective - l2 / 2 * (t ** 2).sum()).backward()
    return t.grad


def _check_bt_optimal(theta, games, scores, n_players, l2, case):
    check.that(isinstance(theta, torch.Tensor) and theta.shape == (n_players,) and theta.dtype == torch.float64,
               "bradley_terry", f"should return a ({n_players},) float64 tensor, got "
               f"{getattr(theta, 'dtype', type(theta))} {tuple(getattr(theta, 'shape', ()))}", case=case)
    grad = _bt_gradient(theta, games, scores, l2)
    worst = float(grad.abs().max())
    check.that(worst <= 1e-8, "bradley_terry",
               f"θ does not maximise the penalised log-likelihood: the largest |∂L/∂θ_i| is {worst:.3g} > 1e-8",
               f"θ = {[round(v, 5) for v in theta.tolist()]}", case=case)


@pytest.mark.points(2)
def test_bradley_terry_is_the_penalised_maximum_likelihood(impl):
    ref = reference.load(O.TOPIC, "ratings")
    games, scores = ref["games"], ref["scores"]
    for l2, key in ((0.01, "bt"), (1.0, "bt_l2_1")):
        case = check.describe(games=games, scores=scores, n_players=6, l2=l2)
        theta = impl.bradley_terry(games, scores, 6, l2)
        _check_bt_optimal(theta, games, scores, 6, l2, case)
        # two points whose gradients are within 1e-8 of 0 lie within 2·1e-8·√P / l2 of each other (strong concavity)
        check.close(theta, ref[key], unit="bradley_terry", case=case, tol=Tolerance(0.0, 1e-7 / l2),
                    what="θ of the reference games")
    check.close(impl.elo_ratings(games, scores, 6), ref["elo"], unit="elo_ratings", kind="reduction",
                case=check.describe(games=games, n_players=6), what="Elo ratings of the reference games")
    # a player who wins every game (no finite MLE without the penalty), a player without games
    games = torch.tensor([[0, 1]] * 30 + [[1, 2]] * 6 + [[2, 1]] * 4)
    scores = torch.tensor([1.0] * 30 + [1.0, 0.0, 1.0, 0.5, 1.0, 0.0] + [1.0, 0.0, 0.0, 0.5], dtype=torch.float64)
    case = check.describe(games="player 0 beats 1 thirty times; 1 and 2 play 10 games", n_players=4, l2=0.01)
    theta = impl.bradley_terry(games, scores, 4)
    _check_bt_optimal(theta, games, scores, 4, 0.01, case)
    # for a player without games ∂L/∂θ = −l2·θ, so |θ| ≤ 1e-8 / l2 = 1e-6 within the gradient tolerance
    check.close(theta[3:], torch.zeros(1, dtype=torch.float64), unit="bradley_terry", case=case,
                tol=Tolerance(0.0, 1e-6), what="θ of a player without games")
    # Σ_i ∂L/∂θ_i = −l2·Σθ (the log-likelihood's gradient sums to 0), so |Σθ| ≤ 4·1e-8 / l2 = 4e-6
    check.close(theta.sum(), torch.tensor(0.0, dtype=torch.float64), unit="bradley_terry", case=case,
                tol=Tolerance(0.0, 4e-6), what="the sum of θ (the maximiser has mean 0)")


@pytest.mark.points(1)
@examples(6)
@given(seed=seeds(), n_players=st.integers(2, 7), n_games=st.integers(1, 40), l2=st.sampled_from([0.05, 0.5, 3.0]))
def test_bradley_terry_invariances(impl, seed, n_players, n_games, l2):
    games, scores = _games(seed, n_players, n_games)
    case = check.describe(games=games, scores=scores, n_players=n_players, l2=l2)
    theta = impl.bradley_terry(games, scores, n_players, l2)
    _check_bt_optimal(theta, games, scores, n_players, l2, case)
    # the tolerance: two maximisers within the gradient tolerance differ by at most 1e-8·√P / l2
    tol = Tolerance(0.0, 1e-7 / l2)
    order = torch.randperm(n_games, generator=tensors.generator(seed))
    check.close(impl.bradley_terry(games[order], scores[order], n_players, l2), theta, unit="bradley_terry",
                case=case + "; games shuffled", tol=tol, what="θ after shuffling the games (order does not matter)")
    check.close(impl.bradley_terry(games.flip(1), 1 - scores, n_players, l2), theta, unit="bradley_terry",
                case=case + "; (a, b) swapped, scores 1 − s", tol=tol, what="θ of the games written the other way")
    perm = torch.randperm(n_players, generator=tensors.generator(seed + 1))
    check.close(impl.bradley_terry(perm[games], scores, n_players, l2)[perm], theta, unit="bradley_terry",
                case=case + f"; players relabelled by {perm.tolist()}", tol=tol, what="θ of relabelled players")


@pytest.mark.points(1)
def test_ratings_raise_on_malformed_games(impl):
    games, scores = torch.tensor([[0, 1], [1, 2]]), torch.tensor([1.0, 0.0], dtype=torch.float64)
    bad = ((games[:, :1], scores, 3, "games must be (G, 2)"), (games, scores[:1], 3, "scores must be (G,)"),
           (games, scores, 2, "player 2 ≥ n_players"), (torch.tensor([[0, 0]]), scores[:1], 3, "a player against itself"),
           (games, torch.tensor([1.5, 0.0], dtype=torch.float64), 3, "score > 1"),
           (games, torch.tensor([1.0, -0.5], dtype=torch.float64), 3, "score < 0"),
           (torch.tensor([[-1, 1]]), scores[:1], 3, "negative player id"))
    for g, s, p, why in bad:
        for fn, unit in ((impl.elo_ratings, "elo_ratings"), (impl.bradley_terry, "bradley_terry")):
            check.expect_raises(ValueError, fn, g, s, p, unit=unit, case=check.describe(games=g, scores=s, n_players=p),
                                why=why)
    for l2 in (0.0, -1.0):
        check.expect_raises(ValueError, impl.bradley_terry, games, scores, 3, l2, unit="bradley_terry",
                            case=check.describe(l2=l2), why="l2 ≤ 0")
