"""Graders for 17_speculative: the two distributions, one round of verification, the formula.

acceptance_rate, residual_distribution: hand values, golden data, oracles written differently
(1 − TV distance; a where-based residual), gradients against those oracles and float64
gradcheck with the clip active, edge rows, every Raises clause.
speculative_accept: the central property — the emitted tokens follow the TARGET's
distributions — by chi-square tests (stated false-failure rates) on the first token, on the
number of accepted drafts, on later positions, on the bonus token and on joint pairs, with
known mistakes named; deterministic cases; golden draws; input forms; Raises.
greedy_accept: hand cases, ties, a loop oracle on hypothesis inputs, Raises.
expected_tokens_per_call: hand values, an exact enumeration oracle, a simulation with a
Hoeffding bound, the value measured from speculative_accept, Raises.
"""

from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import speculative_oracle as O
from llmlab.testing import check, reference, stats, tensors
from llmlab.testing.strategies import examples, seeds
from llmlab.testing.tolerances import Tolerance


def _dist(shape, seed, dtype=torch.float64, scale=1.5):
    """Rows of distributions over the last axis, every entry > 0."""
    return torch.softmax(tensors.randn(shape, seed, torch.float64, scale), dim=-1).to(dtype)


# ---------------------------------------------------------------- acceptance_rate

@pytest.mark.points(1)
def test_acceptance_rate_by_hand_and_reference(impl):
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    q = torch.tensor([0.2, 0.6, 0.2], dtype=torch.float64)
    case = check.describe(p=p, q=q)
    check.close(impl.acceptance_rate(p, q), torch.tensor(0.7, dtype=torch.float64), unit="acceptance_rate",
                case=case, kind="reduction", what="α = Σ min(p, q) (by hand 0.2 + 0.3 + 0.2 = 0.7)",
                mistakes={"Σ max(p, q) instead of Σ min(p, q)": torch.tensor(1.3, dtype=torch.float64),
                          "Σ p·q instead of Σ min(p, q)": torch.tensor(0.32, dtype=torch.float64)})
    same = impl.acceptance_rate(q, q)
    check.close(same, torch.tensor(1.0, dtype=torch.float64), unit="acceptance_rate", kind="reduction",
                case=check.describe(p=q, q=q), what="α of two equal distributions (every draft accepted)")
    ref = reference.load(O.TOPIC, "acceptance")
    out = impl.acceptance_rate(ref["p"], ref["q"])
    check.close(out, ref["alpha"], unit="acceptance_rate", kind="reduction", what="α of the reference rows",
                case=check.describe(p=ref["p"], q=ref["q"]))
    out32 = impl.acceptance_rate(ref["p"].float(), ref["q"].float())
    check.close(out32, ref["alpha"].float(), unit="acceptance_rate", kind="reduction",
                what="α of the reference rows in float32 (the inputs' dtype)",
                case=check.describe(p=ref["p"].float(), q=ref["q"].float()))


@pytest.mark.points(2)
@examples(6)
@given(seed=seeds(), shape=st.sampled_from([(5,), (1, 7), (3, 4), (2, 3, 6)]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_acceptance_rate_matches_tv_oracle_and_gradients(impl, seed, shape, dtype):
    p, q = _dist(shape, seed, dtype), _dist(shape, seed + 1, dtype)
    case = check.describe(p=p, q=q)
    oracle = lambda a, b: 1.0 - 0.5 * (a - b).abs().sum(dim=-1)          # 1 − total variation
    check.close(impl.acceptance_rate(p, q), oracle(p, q), unit="acceptance_rate", case=case, kind="reduction",
                what="α (compared with 1 − ½ Σ |p − q|)")
    if p.dim() > 1:                                                      # a non-contiguous view of the same rows
        pt, qt = p.transpose(0, -1).contiguous().transpose(0, -1), q.transpose(0, -1).contiguous().transpose(0, -1)
        check.close(impl.acceptance_rate(pt, qt), oracle(p, q), unit="acceptance_rate", kind="reduction",
                    case=check.describe(p=pt, contiguous=pt.is_contiguous()), what="α of non-contiguous inputs")
    # gradients: d/dp is 1 where p < q, d/dq is 1 where q < p (no ties in these inputs)
    check.grads(impl.acceptance_rate, lambda a, b: 0.5 * (a + b - (a - b).abs()).sum(dim=-1),
                [p.double(), q.double()], names=["target_probs", "draft_probs"], unit="acceptance_rate", case=case)


@pytest.mark.points(1)
def test_acceptance_rate_gradcheck_and_raises(impl):
    p, q = _dist((3, 5), 3), _dist((3, 5), 4)
    check.gradcheck(impl.acceptance_rate, [p, q], unit="acceptance_rate", case=check.describe(p=p, q=q))
    for a, b, why in ((p, q[:, :4], "different shapes"), (p[0], q, "different shapes"),
                      (torch.tensor(0.5), torch.tensor(0.5), "0-d inputs")):
        check.expect_raises(ValueError, impl.acceptance_rate, a, b, unit="acceptance_rate",
                            case=check.describe(target_probs=a, draft_probs=b), why=why)


# ---------------------------------------------------------------- residual_distribution

@pytest.mark.points(1)
def test_residual_by_hand_and_reference(impl):
    p = torch.tensor([[0.4, 0.4, 0.2], [0.5, 0.3, 0.2]], dtype=torch.float64)
    q = torch.tensor([[0.1, 0.3, 0.6], [0.2, 0.6, 0.2]], dtype=torch.float64)
    expected = torch.tensor([[0.75, 0.25, 0.0], [1.0, 0.0, 0.0]], dtype=torch.float64)
    diff = p - q
    out = impl.residual_distribution(p, q)
    if isinstance(out, torch.Tensor) and bool((out < 0).any()):
        check.fail("residual_distribution", "the residual has negative entries (it must be a distribution)",
                   f"got {out.tolist()}", case=check.describe(p=p, q=q), mistake="p − q not clipped at 0")
    check.close(out, expected, unit="residual_distribution", kind="reduction", case=check.describe(p=p, q=q),
                what="normalise(max(0, p − q)) (by hand: [0.3, 0.1, 0] / 0.4 and [0.3, 0, 0] / 0.3)",
                mistakes={"max(0, p − q) not normalised": diff.clamp(min=0),
                          "|p − q| instead of max(0, p − q)": diff.abs() / diff.abs().sum(-1, keepdim=True),
                          "resampled from p instead of the residual": p})
    ref = reference.load(O.TOPIC, "residual")
    check.close(impl.residual_distribution(ref["p"], ref["q"]), ref["out"], unit="residual_distribution",
                kind="reduction", what="residual of the reference rows (row 2 has p = q)",
                case=check.describe(p=ref["p"], q=ref["q"]))


@pytest.mark.points(2)
@examples(8)
@given(seed=seeds(), shape=st.sampled_from([(6,), (1, 4), (3, 5), (2, 2, 7)]),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_residual_matches_oracle_and_gradients(impl, seed, shape, dtype):
    p, q = _dist(shape, seed, dtype), _dist(shape, seed + 7, dtype)
    case = check.describe(p=p, q=q)

    def oracle(a, b):
        kept = torch.where(a > b, a - b, torch.zeros_like(a))
        return kept / kept.sum(dim=-1, keepdim=True)

    out = impl.residual_distribution(p, q)
    check.close(out, oracle(p, q), unit="residual_distribution", case=case, kind="reduction")
    check.that(bool((out[p <= q] == 0).all()), "residual_distribution",
               "the residual must be exactly 0 wherever p ≤ q (a token the draft already over-proposes)", case=case)
    if p.dim() > 1:
        pt = p.transpose(0, -1).contiguous().transpose(0, -1)
        check.close(impl.residual_distribution(pt, q), oracle(p, q), unit="residual_distribution",
                    kind="reduction", case=check.describe(p=pt, contiguous=pt.is_contiguous()),
                    what="residual of a non-contiguous target_probs")
    check.grads(impl.residual_distribution, oracle, [p.double(), q.double()], names=["target_probs", "draft_probs"],
                unit="residual_distribution", case=case)


@pytest.mark.points(1)
def test_residual_equal_rows_gradcheck_and_raises(impl):
    p = _dist((3, 4), 11)
    q = torch.stack([p[0], _dist((4,), 12), _dist((4,), 13)])              # row 0: p = q exactly
    out = impl.residual_distribution(p, q)
    case = check.describe(p=p, q=q)
    check.close(out[0], p[0], unit="residual_distribution", kind="exact", case=case,
                what="row 0, where p = q (residual mass 0): the docstring returns p unchanged")
    check.that(bool(torch.isfinite(out).all()), "residual_distribution", "the output contains NaN or inf",
               "a row with Σ max(0, p − q) = 0 must not be divided by 0", case=case)
    check.close(out.sum(-1), torch.ones(3, dtype=torch.float64), unit="residual_distribution", kind="reduction",
                case=case, what="the sum of every row")
    # float64 finite differences on rows where the clip is active in some entries
    check.gradcheck(impl.residual_distribution, [p[1:], q[1:]], unit="residual_distribution",
                    case=check.describe(p=p[1:], q=q[1:]))
    for a, b, why in ((p, q[:2], "different shapes"), (torch.tensor(1.0), torch.tensor(1.0), "0-d inputs")):
        check.expect_raises(ValueError, impl.residual_distribution, a, b, unit="residual_distribution",
                            case=check.describe(target_probs=a, draft_probs=b), why=why)


# ---------------------------------------------------------------- speculative_accept: statistics

# One round with k = 2 over V = 4, the same rows in every call. α_0 = 0.6, α_1 = 0.8, so
# P(n = 0, 1, 2) = 0.4, 0.12, 0.48.
Q = torch.tensor([[0.1, 0.4, 0.3, 0.2], [0.25, 0.25, 0.25, 0.25]], dtype=torch.float64)
P = torch.tensor([[0.4, 0.1, 0.2, 0.3], [0.1, 0.2, 0.3, 0.4], [0.5, 0.05, 0.15, 0.3]], dtype=torch.float64)
ROUNDS = 3000
_SAMPLES: dict[int, tuple] = {}


def _rounds(impl):
    """ROUNDS calls of speculative_accept on Q, P (drafts drawn by the grader from Q): a list of
    (tokens as a list, n). Computed in the first test that needs it, once per implementation."""
    key = id(impl)
    if key not in _SAMPLES or _SAMPLES[key][0] is not impl:
        drafts = torch.multinomial(Q, ROUNDS, replacement=True, generator=tensors.generator(170)).t()  # (N, k)
        gen = tensors.generator(171)
        out = []
        for x in drafts:
            tokens, n = impl.speculative_accept(Q, P, x.contiguous(), gen)
            out.append((tokens.tolist(), n))
        _SAMPLES[key] = (impl, out)
    return _SAMPLES[key][1]


_CASE = check.describe(draft_probs=Q, target_probs=P, k=2, rounds=ROUNDS)


@pytest.mark.points(3)
def test_accept_first_token_follows_target(impl):
    # The central property on one position: the first emitted token is distributed as p_0,
    # whatever the draft. Chi-square at rate 1e-6: a correct implementation fails with
    # probability ≤ 1e-6.
    rounds = _rounds(impl)
    counts = torch.bincount(torch.tensor([t[0] for t, _ in rounds]), minlength=4).tolist()
    stats.chi_square(counts, P[0].tolist(), unit="speculative_accept", rate=1e-6, case=_CASE,
                     what="the first emitted token (must follow the target's p_0)", mistakes={
        "resampled from p instead of the residual max(0, p − q)": O.first_token_probs(P[0], Q[0], "from_p"),
        "acceptance ratio inverted (q/p instead of p/q)": O.first_token_probs(P[0], Q[0], "inverted"),
        "scalar probabilities instead of distributions: the residual subtracts the drafted token's q(x) "
        "from every entry": O.first_token_probs(P[0], Q[0], "scalar_q"),
        "every draft token accepted": O.first_token_probs(P[0], Q[0], "always"),
        "tokens follow the draft's q instead of the target's p": Q[0]})


@pytest.mark.points(2)
def test_accept_number_accepted_follows_acceptance_rates(impl):
    # n = j with probability α_0 ⋯ α_{j−1} (1 − α_j); chi-square at rate 1e-6 (false failure ≤ 1e-6).
    rounds = _rounds(impl)
    ns = [n for _, n in rounds]
    check.that(all(type(n) is int for n in ns[:5]), "speculative_accept",
               f"n should be a Python int, got {type(ns[0]).__name__}", case=_CASE)
    lengths_ok = all(len(t) == n + 1 for t, n in rounds)
    check.that(lengths_ok, "speculative_accept",
               "tokens must hold the n accepted drafts plus exactly one drawn token (length n + 1)",
               "a round always emits one token of its own: the residual sample or the bonus token", case=_CASE)
    counts = torch.bincount(torch.tensor(ns), minlength=3).tolist()
    inverted_alpha = [sum(float(q) * min(1.0, float(q / p)) for p, q in zip(P[i], Q[i])) for i in range(2)]
    inv = [1 - inverted_alpha[0], inverted_alpha[0] * (1 - inverted_alpha[1]), inverted_alpha[0] * inverted_alpha[1]]
    stats.chi_square(counts, O.accepted_count_probs(P, Q), unit="speculative_accept", rate=1e-6, case=_CASE,
                     what="the number n of accepted drafts (expected 0.4, 0.12, 0.48 for n = 0, 1, 2)",
                     mistakes={"acceptance ratio inverted (q/p instead of p/q)": torch.tensor(inv),
                               "every draft token accepted": torch.tensor([0.0, 0.0, 1.0])})


@pytest.mark.points(3)
def test_accept_later_positions_bonus_and_pairs_follow_target(impl):
    # Given that the first j drafts were accepted, the token at position j follows p_j; the
    # bonus token (all k accepted) follows p_k; the accepted pair (t_0, t_1 | n ≥ 1) follows
    # normalise(min(p_0, q_0)) ⊗ p_1. Three chi-square tests at rate 1e-6 / 3 each: a correct
    # implementation fails this test with probability ≤ 1e-6.
    rounds = _rounds(impl)
    later = [t[1] for t, n in rounds if n >= 1 and len(t) > 1]
    counts1 = torch.bincount(torch.tensor(later), minlength=4).tolist()
    stats.chi_square(counts1, P[1].tolist(), unit="speculative_accept", rate=1e-6 / 3, case=_CASE,
                     what="the token at position 1 when draft 0 was accepted (must follow p_1)")
    bonus = [t[2] for t, n in rounds if n == 2 and len(t) > 2]
    check.that(len(bonus) > 0, "speculative_accept",
               "no round emitted a bonus token: when all k drafts are accepted the round must draw one more "
               "token from target_probs[k]", case=_CASE)
    counts2 = torch.bincount(torch.tensor(bonus), minlength=4).tolist()
    stats.chi_square(counts2, P[2].tolist(), unit="speculative_accept", rate=1e-6 / 3, case=_CASE,
                     what="the bonus token after all k = 2 drafts were accepted (must follow p_2)",
                     mistakes={"bonus token drawn from target_probs[k − 1] instead of target_probs[k]": P[1],
                               "bonus token drawn from the draft's last row": Q[1]})
    accepted0 = torch.minimum(P[0], Q[0]) / torch.minimum(P[0], Q[0]).sum()
    pairs = [t[0] * 4 + t[1] for t, n in rounds if n >= 1 and len(t) > 1]
    joint = (accepted0[:, None] * P[1][None, :]).reshape(-1)
    stats.chi_square(torch.bincount(torch.tensor(pairs), minlength=16).tolist(), joint.tolist(),
                     unit="speculative_accept", rate=1e-6 / 3, case=_CASE,
                     what="the pair (t_0, t_1) of rounds that accepted draft 0")


# ---------------------------------------------------------------- speculative_accept: exact cases

@pytest.mark.points(2)
def test_accept_deterministic_cases(impl):
    V = 4
    onehot = lambda i: torch.nn.functional.one_hot(torch.tensor(i), V).double()
    q = torch.stack([_dist((V,), 20), _dist((V,), 21), _dist((V,), 22)])             # (3, V)
    drafts = torch.tensor([1, 3, 0])
    # p = q on the drafted rows: every ratio is 1, so all three are accepted; p_3 one-hot picks the bonus
    p_all = torch.cat([q, onehot(2)[None]])
    tokens, n = impl.speculative_accept(q, p_all, drafts, tensors.generator(1))
    case = check.describe(draft_probs=q, target_probs=p_all, draft_tokens=drafts)
    check.that(isinstance(tokens, torch.Tensor) and tokens.dtype == torch.int64, "speculative_accept",
               "tokens should be an int64 tensor", f"got {getattr(tokens, 'dtype', type(tokens))}", case=case)
    check.equal(n, 3, unit="speculative_accept", case=case, what="n when p = q (every ratio is 1)")
    check.equal(tokens.tolist(), [1, 3, 0, 2], unit="speculative_accept", case=case,
                what="tokens when all drafts are accepted: the drafts, then the bonus token from target_probs[k]",
                mistakes={"no bonus token when all drafts are accepted": [1, 3, 0],
                          "bonus token drawn from target_probs[k − 1] instead of target_probs[k]": [1, 3, 0, 0]})
    # p_1[3] = 0: draft 1 is always rejected; the residual of row 1 is one-hot at 2 (row 0 has p = q)
    p_rej = torch.stack([q[0], onehot(2), onehot(1), onehot(0)])
    tokens, n = impl.speculative_accept(q, p_rej, drafts, tensors.generator(2))
    case = check.describe(draft_probs=q, target_probs=p_rej, draft_tokens=drafts)
    check.equal((tokens.tolist(), n), ([1, 2], 1), unit="speculative_accept", case=case,
                what="(tokens, n) when draft 1 has target probability 0 and the residual of row 1 is one-hot at 2",
                mistakes={"the drafted token kept after its rejection": ([1, 3], 1),
                          "no token drawn after the rejection": ([1], 1)})
    # ratios ≥ 1 everywhere (p_i[x] ≥ q_i[x]): always accepted, whatever the uniforms
    p_big = torch.stack([onehot(1), onehot(3), onehot(0), onehot(3)])
    for seed in range(5):
        tokens, n = impl.speculative_accept(q, p_big, drafts, tensors.generator(seed))
        check.equal((tokens.tolist(), n), ([1, 3, 0, 3], 3), unit="speculative_accept",
                    case=check.describe(target_probs=p_big, draft_tokens=drafts, seed=seed),
                    what="(tokens, n) when p_i[x_i] = 1 ≥ q_i[x_i] (accept with probability min(1, p/q) = 1)")
    # k = 0: no drafts, one token from target_probs[0]
    tokens, n = impl.speculative_accept(torch.zeros(0, V, dtype=torch.float64), onehot(3)[None],
                                        torch.zeros(0, dtype=torch.long), tensors.generator(3))
    check.equal((tokens.tolist(), n), ([3], 0), unit="speculative_accept",
                case="k = 0: draft_probs (0, 4), target_probs (1, 4) one-hot at 3",
                what="(tokens, n) for k = 0 (just one token from target_probs[0])")


@pytest.mark.points(2)
def test_accept_reference_draws_and_generator(impl):
    # The docstring fixes the order of the random draws, so a seeded generator reproduces the
    # reference's rounds exactly.
    ref = reference.load(O.TOPIC, "accept")
    q, p, drafts = ref["draft_probs"], ref["target_probs"], ref["draft_tokens"]
    before = (q.clone(), p.clone(), drafts.clone())
    gen = tensors.generator(int(ref["seed"][0]))
    torch.manual_seed(0)                                                 # the global RNG must not matter
    got_tokens, got_n = [], []
    for i in range(drafts.shape[0]):
        tokens, n = impl.speculative_accept(q[i], p[i], drafts[i], gen)
        got_tokens.append(tokens.tolist() + [-1] * (q.shape[1] + 1 - len(tokens)))
        got_n.append(n)
    case = check.describe(draft_probs=q[0], target_probs=p[0], rounds=drafts.shape[0], seed=int(ref["seed"][0]))
    check.equal(got_n, ref["n"].tolist(), unit="speculative_accept", case=case,
                what="n of each round with the seeded generator (one uniform per examined draft, in order; "
                     "one multinomial draw at the end)")
    check.equal(got_tokens, ref["tokens"].tolist(), unit="speculative_accept", case=case,
                what="tokens of each round (padded with −1) with the seeded generator")
    check.that(all(torch.equal(a, b) for a, b in zip(before, (q, p, drafts))), "speculative_accept",
               "the inputs were modified in place", case=case)
    # generator=None draws from the global generator: seeding it reproduces a seeded generator's rounds
    torch.manual_seed(int(ref["seed"][0]))
    global_rounds = [impl.speculative_accept(q[i], p[i], drafts[i], None) for i in range(5)]
    check.equal([(t.tolist(), n) for t, n in global_rounds],
                [(ref["tokens"][i][:int(ref["n"][i]) + 1].tolist(), int(ref["n"][i])) for i in range(5)],
                unit="speculative_accept", case=check.describe(generator=None, global_seed=int(ref["seed"][0])),
                what="the first 5 rounds with generator=None after torch.manual_seed (the global generator)")


@pytest.mark.points(1)
def test_accept_input_forms_and_raises(impl):
    # float32 rows, a non-contiguous draft_probs, batch of one draft; inputs left unchanged
    q = _dist((3, 5), 30, torch.float32)
    qt = q.t().contiguous().t()
    p = _dist((3, 5), 31, torch.float32)
    drafts = torch.tensor([4])
    saved = (qt.clone(), p.clone(), drafts.clone())
    ref_tokens, ref_n = impl.speculative_accept(q[:1], p[:2], drafts, tensors.generator(5))
    tokens, n = impl.speculative_accept(qt[:1], p[:2], drafts, tensors.generator(5))
    case = check.describe(draft_probs=qt[:1], contiguous=qt.is_contiguous(), target_probs=p[:2], draft_tokens=drafts)
    check.equal((tokens.tolist(), n), (ref_tokens.tolist(), ref_n), unit="speculative_accept", case=case,
                what="a non-contiguous draft_probs gives the same round as a contiguous copy")
    check.that(tokens.dtype == torch.int64 and tokens.shape == (n + 1,), "speculative_accept",
               f"tokens should be int64 of shape (n + 1,), got {tokens.dtype} {tuple(tokens.shape)}", case=case)
    check.that(all(torch.equal(a, b) for a, b in zip(saved, (qt, p, drafts))), "speculative_accept",
               "the inputs were modified in place", case=case)
    bad = ((q, p, torch.tensor([0, 1, 2]), "target_probs must have k + 1 = 4 rows"),
           (q, p[:2], torch.tensor([0, 1, 2]), "target_probs must have k + 1 = 4 rows"),
           (q[:2], p, torch.tensor([0, 1, 2]), "draft_tokens must have k = 2 entries"),
           (q[:2], p[:, :4], torch.tensor([0, 1]), "V differs between draft_probs and target_probs"),
           (q[0], p[:2], torch.tensor([0]), "draft_probs must be 2-D (k, V)"),
           (q[:2], p, torch.tensor([[0, 1]]), "draft_tokens must be 1-D (k,)"),
           (q[:1], p[:2], torch.tensor([[0]]), "draft_tokens must be 1-D (k,), not (1, 1)"))
    for a, b, x, why in bad:
        check.expect_raises(ValueError, impl.speculative_accept, a, b, x, tensors.generator(0),
                            unit="speculative_accept",
                            case=check.describe(draft_probs=a, target_probs=b, draft_tokens=x), why=why)


# ---------------------------------------------------------------- greedy_accept

@pytest.mark.points(1)
def test_greedy_accept_by_hand_and_ties(impl):
    logits = torch.tensor([[0.0, 3.0, 1.0, 0.0], [2.0, 0.0, 0.0, 1.0], [0.0, 0.0, 0.0, 5.0], [1.0, 0.0, 4.0, 0.0]])
    # target choices: 1, 0, 3, 2
    cases = (([1, 0, 3], [1, 0, 3, 2], 3), ([1, 0, 2], [1, 0, 3], 2), ([2, 0, 3], [1], 0), ([1, 2, 3], [1, 0], 1))
    for drafts, tokens_expected, n_expected in cases:
        d = torch.tensor(drafts)
        tokens, n = impl.greedy_accept(d, logits)
        case = check.describe(draft_tokens=d, target_choices=[1, 0, 3, 2])
        check.equal(n, n_expected, unit="greedy_accept", case=case, what="n (leading drafts equal to the target)",
                    mistakes={"counts every match, not only the leading ones": sum(
                        int(a == b) for a, b in zip(drafts, [1, 0, 3]))})
        check.equal(tokens.tolist(), tokens_expected, unit="greedy_accept", case=case,
                    what="tokens: the accepted drafts, then the target's own choice",
                    mistakes={"no bonus/correction token": tokens_expected[:-1]})
        check.that(tokens.dtype == torch.int64 and type(n) is int, "greedy_accept",
                   f"tokens should be int64 and n a Python int, got {tokens.dtype} and {type(n).__name__}", case=case)
    tied = torch.tensor([[1.0, 2.0, 2.0], [3.0, 3.0, 0.0]], dtype=torch.float64)
    tokens, n = impl.greedy_accept(torch.tensor([1]), tied)
    check.equal((tokens.tolist(), n), ([1, 0], 1), unit="greedy_accept", case=check.describe(target_logits=tied),
                what="ties go to the lowest id (row 0: ids 1 and 2 tie; row 1: ids 0 and 1)")
    tokens, n = impl.greedy_accept(torch.zeros(0, dtype=torch.long), tied[1:])
    check.equal((tokens.tolist(), n), ([0], 0), unit="greedy_accept", case="k = 0", what="(tokens, n) for k = 0")


@pytest.mark.points(2)
@examples(20)
@given(seed=seeds(), k=st.integers(1, 6), V=st.integers(2, 7), agree=st.integers(0, 6),
       dtype=st.sampled_from([torch.float32, torch.float64]))
def test_greedy_accept_matches_loop_oracle(impl, seed, k, V, agree, dtype):
    logits = tensors.randn((k + 1, V), seed, dtype)
    choice = logits.argmax(-1)
    drafts = tensors.randint((k,), seed + 1, high=V)
    drafts[:min(agree, k)] = choice[:min(agree, k)]                     # a prefix that agrees, then random
    expected, n_expected = [], 0
    for i in range(k):
        if int(drafts[i]) != int(choice[i]):
            break
        n_expected += 1
    expected = choice[:n_expected + 1].tolist()
    tokens, n = impl.greedy_accept(drafts, logits)
    case = check.describe(draft_tokens=drafts, target_logits=logits)
    check.equal((tokens.tolist(), n), (expected, n_expected), unit="greedy_accept", case=case,
                what="(tokens, n) against a loop that stops at the first mismatch")


@pytest.mark.points(1)
def test_greedy_accept_raises(impl):
    logits = torch.randn(3, 4, generator=tensors.generator(0))
    for d, lg, why in ((torch.tensor([0, 1, 2]), logits, "target_logits must have k + 1 rows"),
                       (torch.tensor([0]), logits, "target_logits must have k + 1 rows"),
                       (torch.tensor([[0], [1]]), logits, "draft_tokens must be 1-D (k,), not (2, 1)"),
                       (torch.tensor([0, 1]), logits[0], "target_logits must be 2-D")):
        check.expect_raises(ValueError, impl.greedy_accept, d, lg, unit="greedy_accept",
                            case=check.describe(draft_tokens=d, target_logits=lg), why=why)


# ---------------------------------------------------------------- expected_tokens_per_call

@pytest.mark.points(1)
def test_expected_tokens_by_hand(impl):
    cases = ((0.5, 2, 1.75), (0.0, 4, 1.0), (1.0, 4, 5.0), (0.8, 0, 1.0), (0.6, 1, 1.6), (0.9, 3, 3.439))
    for alpha, k, expected in cases:
        got = impl.expected_tokens_per_call(alpha, k)
        case = check.describe(alpha=alpha, k=k)
        check.that(type(got) is float, "expected_tokens_per_call", f"should return a Python float, got "
                   f"{type(got).__name__}", case=case)
        wrong = {"the bonus token left out: (1 − α^k)/(1 − α)": (1 - alpha ** k) / (1 - alpha) if alpha < 1 else k,
                 "k ignored: 1/(1 − α)": 1 / (1 - alpha) if alpha < 1 else math.inf}
        check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64),
                    unit="expected_tokens_per_call", case=case, kind="reduction",
                    mistakes={k_: torch.tensor(float(v), dtype=torch.float64) for k_, v in wrong.items()})
    near = 1.0 - 1e-9
    got = impl.expected_tokens_per_call(near, 3)
    # the closed form loses digits near α = 1; the docstring promises a relative 1e-6 there
    check.close(torch.tensor(got, dtype=torch.float64), torch.tensor(sum(near ** i for i in range(4)), dtype=torch.float64),
                unit="expected_tokens_per_call", case=check.describe(alpha=near, k=3), tol=Tolerance(1e-6, 0.0),
                what="value at α = 1 − 1e-9 (close to k + 1 = 4)")


@pytest.mark.points(2)
def test_expected_tokens_matches_enumeration_and_simulation(impl):
    # Oracle 1: Σ_j P(n = j)(j + 1) with P(n = j) = α^j (1 − α) for j < k and α^k for j = k.
    for alpha in (0.0, 0.1, 0.35, 0.5, 0.77, 0.95, 1.0):
        for k in (1, 2, 3, 5, 8):
            exact = sum(alpha ** j * (1 - alpha) * (j + 1) for j in range(k)) + alpha ** k * (k + 1)
            check.close(torch.tensor(impl.expected_tokens_per_call(alpha, k), dtype=torch.float64),
                        torch.tensor(exact, dtype=torch.float64), unit="expected_tokens_per_call",
                        case=check.describe(alpha=alpha, k=k), kind="reduction",
                        what="E[tokens per call] (compared with Σ_j P(n = j)(j + 1))")
    # Oracle 2: simulation of 200 000 rounds with i.i.d. acceptance. Each round emits between 1
    # and k + 1 tokens, so by Hoeffding the mean is within k·sqrt(ln(2/5e-7) / (2N)) of the
    # expectation except with probability ≤ 5e-7; two checks: false failure ≤ 1e-6 for the test.
    N = 200_000
    gen = tensors.generator(17)
    for alpha, k in ((0.6, 4), (0.85, 6)):
        accept = torch.rand(N, k, generator=gen, dtype=torch.float64) < alpha          # (N, k)
        emitted = accept.long().cumprod(dim=1).sum(dim=1) + 1                          # leading accepts + 1
        bound = k * math.sqrt(math.log(2 / 5e-7) / (2 * N))
        got = impl.expected_tokens_per_call(alpha, k)
        mean = float(emitted.double().mean())
        check.that(abs(got - mean) <= bound, "expected_tokens_per_call",
                   f"{got:.4f} is not within {bound:.4f} of the simulated mean {mean:.4f} over {N} rounds",
                   case=check.describe(alpha=alpha, k=k))


@pytest.mark.points(1)
def test_expected_tokens_matches_measured_rounds(impl):
    # The formula against speculative_accept itself: with context-free rows whose acceptance
    # rate is α at every position, the mean of n + 1 over 2000 rounds is within
    # k·sqrt(ln(2/1e-6)/(2·2000)) of expected_tokens_per_call(α, k) except with probability ≤ 1e-6.
    p = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    q = torch.tensor([0.2, 0.3, 0.5], dtype=torch.float64)                 # α = 0.2 + 0.3 + 0.2 = 0.7
    k, N = 3, 2000
    drafts = torch.multinomial(q, N * k, replacement=True, generator=tensors.generator(40)).view(N, k)
    gen = tensors.generator(41)
    qs, ps = q.expand(k, 3), p.expand(k + 1, 3)
    emitted = [impl.speculative_accept(qs, ps, x, gen)[1] + 1 for x in drafts]
    mean = sum(emitted) / N
    alpha = float(impl.acceptance_rate(p, q))
    formula = impl.expected_tokens_per_call(alpha, k)
    bound = k * math.sqrt(math.log(2 / 1e-6) / (2 * N))
    check.that(abs(formula - mean) <= bound and abs(formula - 2.533) < 1e-9, "expected_tokens_per_call",
               f"measured {mean:.4f} tokens per round, formula {formula:.4f} at α = {alpha:.4f}, k = {k} "
               f"(exact 1 + 0.7 + 0.49 + 0.343 = 2.533; allowed deviation {bound:.4f})",
               case=check.describe(target_probs=p, draft_probs=q, k=k, rounds=N))


@pytest.mark.points(1)
def test_expected_tokens_raises(impl):
    for alpha, k, why in ((-0.1, 2, "alpha < 0"), (1.5, 2, "alpha > 1"), (0.5, -1, "k < 0")):
        check.expect_raises(ValueError, impl.expected_tokens_per_call, alpha, k, unit="expected_tokens_per_call",
                            case=check.describe(alpha=alpha, k=k), why=why)
