"""Graders for 11_data, near-duplicate detection: shingles, jaccard, minhash_signature,
lsh_buckets and lsh_candidates.

Evidence per unit:
  - golden data (reference/11_data): signatures of reference shingle sets, buckets of a
    reference signature matrix;
  - independent oracles: MinHash in Python integers (no int64 arithmetic) from the same
    seeded draws; LSH candidates by brute force over all pairs and bands; shingles and
    Jaccard from their definitions;
  - properties: signatures identical in a second process with another PYTHONHASHSEED (and
    never computed with the built-in `hash`), invariant to order and repeats; the fraction of
    equal positions estimates the Jaccard similarity; the LSH candidate rate equals
    1 − (1 − s^r)^b in simulation (binomial tests with stated false-failure rates).
"""

from __future__ import annotations

import os
import random

import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

import data_oracle as O
from llmlab.testing import check, guard, reference, stats
from llmlab.testing.strategies import examples, seeds

TOPIC = "11_data"
HASH_BUILTIN = ["builtins.hash"]
SALTED = "uses Python's salted hash()"


# ---------------------------------------------------------------- shingles and jaccard

@pytest.mark.points(2)
def test_shingles_cases_and_raises(impl):
    text = "The cat  sat on THE mat"
    cases = [
        (text, 3, {"the cat sat", "cat sat on", "sat on the", "on the mat"}, "n ≥ k, normalised"),
        (text, 6, {"the cat sat on the mat"}, "n = k: one shingle"),
        (text, 9, {"the cat sat on the mat"}, "n < k: all the words"),
        ("a b a b a b", 2, {"a b", "b a"}, "repeats collapse in a set"),
        ("one", 1, {"one"}, "k = 1"),
        ("  \n ", 2, set(), "no words"),
        ("ﬁne  Day", 1, {"fine", "day"}, "NFKC and lower case"),
    ]
    for source, k, expected, what in cases:
        out = impl.shingles(source, k)
        case = check.describe(text=source, k=k)
        check.that(isinstance(out, set), "shingles", f"should return a set, got {type(out).__name__}", case=case)
        check.equal(out, expected, unit="shingles", what=f"shingles ({what})", case=case,
                    mistakes={"text not normalised": set(source.split()) if k == 1 else None,
                              "the last shingle is missing (range off by one)":
                                  {"the cat sat", "cat sat on", "sat on the"} if k == 3 else None})
    check.equal(impl.shingles("a b c d e f"), O.word_shingles("a b c d e f", 5), unit="shingles",
                what="shingles with the default k = 5", case="text='a b c d e f'")
    for k in (0, -2):
        check.expect_raises(ValueError, impl.shingles, "a b c", k, unit="shingles", case=f"k={k}", why="k < 1")


@pytest.mark.points(1)
@examples(25)
@given(words=st.lists(st.sampled_from(["a", "B", "c", "dé", "a"]), max_size=9), k=st.integers(1, 4))
def test_shingles_against_oracle(impl, words, k):
    text = " ".join(words)
    check.equal(impl.shingles(text, k), O.word_shingles(text, k), unit="shingles", what="shingles",
                case=check.describe(text=text, k=k))


@pytest.mark.points(1)
def test_jaccard_cases(impl):
    cases = [({1, 2, 3}, {2, 3, 4}, 0.5), ([1, 1, 2], (2, 2, 3), 1 / 3), (set(), set(), 1.0), ({"a"}, set(), 0.0),
             (["x", "y"], ["y", "x"], 1.0), (frozenset("abcd"), "cdef", 2 / 6)]
    for a, b, expected in cases:
        out = impl.jaccard(a, b)
        case = check.describe(a=a, b=b)
        check.that(isinstance(out, float), "jaccard", f"should return a float, got {type(out).__name__}", case=case)
        check.that(abs(out - expected) <= 1e-12, "jaccard", f"got {out!r}, expected {expected!r}", case=case)


# ---------------------------------------------------------------- minhash_signature

_ITEMS = st.lists(st.text(st.sampled_from("abcé東 "), min_size=0, max_size=6), min_size=1, max_size=12)


@pytest.mark.points(3)
@examples(25)
@given(items=_ITEMS, num_perm=st.integers(1, 40), seed=seeds())
def test_minhash_matches_python_integer_oracle(impl, items, num_perm, seed):
    case = check.describe(shingles=items, num_perm=num_perm, seed=seed)
    out = guard.call_without("minhash_signature", HASH_BUILTIN, impl.minhash_signature, items, num_perm, seed,
                             hint="Python's hash() is salted per process; use hashlib.sha256 as the docstring says.")
    expected = torch.tensor(O.minhash(items, num_perm, seed), dtype=torch.int64)
    check.close(out, expected, unit="minhash_signature", kind="exact", what="signature", case=case,
                mistakes={"b drawn before a": lambda: _swapped_draws(items, num_perm, seed)})


def _swapped_draws(items, num_perm, seed):
    g = torch.Generator().manual_seed(seed)
    b = torch.randint(0, O.P, (num_perm,), generator=g).tolist()
    a = torch.randint(1, O.P, (num_perm,), generator=g).tolist()
    xs = [O.base_hash(s) for s in set(items)]
    return torch.tensor([min((ai * x + bi) % O.P for x in xs) for ai, bi in zip(a, b)])


@pytest.mark.points(1)
def test_minhash_matches_reference(impl):
    record = reference.load(TOPIC, "minhash")
    for items, num_perm, seed, sig in zip(record["sets"], record["num_perm"], record["seed"], record["signatures"]):
        check.close(impl.minhash_signature(items, num_perm, seed), torch.tensor(sig, dtype=torch.int64),
                    unit="minhash_signature", kind="exact", what="signature of a reference set",
                    case=check.describe(shingles=items, num_perm=num_perm, seed=seed))


@pytest.mark.points(2)
def test_minhash_input_forms_and_raises(impl):
    items = ["the cat sat", "cat sat on", "sat on the", "on the mat"]
    base = impl.minhash_signature(set(items), 16, 3)
    for name, form in (("list", list(items)), ("tuple", tuple(reversed(items))), ("with repeats", items + items[:2]),
                       ("generator", (s for s in items)), ("frozenset", frozenset(items))):
        check.close(impl.minhash_signature(form, 16, 3), base, unit="minhash_signature", kind="exact",
                    what=f"signature of the same set given as a {name}", case=check.describe(shingles=items))
    check.that(base.dtype == torch.int64 and bool(((base >= 0) & (base < O.P)).all()), "minhash_signature",
               "signature must be int64 with values in [0, 2^31 − 1)", case=check.describe(signature=base))
    check.close(impl.minhash_signature(items, 1, 3), torch.tensor(O.minhash(items, 1, 3)), unit="minhash_signature",
                kind="exact", what="signature with num_perm = 1", case="num_perm=1")
    check.that(not torch.equal(impl.minhash_signature(items, 16, 4), base), "minhash_signature",
               "another seed must give other hash functions", case="seed 3 vs 4")
    for bad, why in (((items, 0, 0), "num_perm < 1"), ((set(), 8, 0), "empty set of shingles"),
                     (([], 8, 0), "empty list of shingles")):
        check.expect_raises(ValueError, impl.minhash_signature, *bad, unit="minhash_signature",
                            case=check.describe(shingles=bad[0], num_perm=bad[1]), why=why)


@pytest.mark.slow            # the second process imports torch again: 3-5 s of the 10 s budget
@pytest.mark.points(3)
def test_minhash_identical_across_processes(impl):
    # A second Python process with another PYTHONHASHSEED must compute the same signatures:
    # Python's str hash is salted per process, so a signature built on it differs.
    cases = [(["alpha beta", "beta gamma", "gamma delta", "ünïcode 東京"], 24, 0), (["x"], 5, 123)]
    parent = [guard.call_without("minhash_signature", HASH_BUILTIN, impl.minhash_signature, items, k, seed,
                                 hint="Python's hash() is salted per process; use hashlib.sha256.").tolist()
              for items, k, seed in cases]
    seed_here = os.environ.get("PYTHONHASHSEED", "")
    other = "4242" if seed_here != "4242" else "4243"
    try:
        child = O.signatures_in_child(impl.minhash_signature, cases, other)
    except PermissionError:
        # `llmlab grade` forbids starting processes; the guard above (no built-in hash while
        # the unit runs) is then the evidence, together with the reference signatures.
        return
    check.that(child["hash_of_probe"] != hash("llmlab probe"), "minhash_signature",
               "the second process unexpectedly shares this process's string-hash salt", case=f"PYTHONHASHSEED={other}")
    for (items, k, seed), mine, theirs in zip(cases, parent, child["signatures"]):
        check.that(mine == theirs, "minhash_signature",
                   f"a second process (PYTHONHASHSEED={other}) computed a different signature",
                   f"this process: {mine[:6]}…", f"other process: {theirs[:6]}…",
                   f"known mistake: {SALTED} — use hashlib.sha256 as the docstring says",
                   case=check.describe(shingles=items, num_perm=k, seed=seed))


@pytest.mark.points(2)
def test_minhash_estimates_jaccard(impl):
    # 60 pairs of shingle sets with known Jaccard similarity J (from 0.1 to 0.9), 128
    # positions each. Under MinHash's model each position agrees with probability J,
    # independently; per group of equal J the number of agreeing positions is binomial.
    # Nine groups, each tested at rate 1e-7: a correct implementation fails with probability
    # ≤ 1e-6 (the hash functions are fixed by the seeds, so the verdict is the same every run).
    rng = random.Random(11)
    K = 128
    for tenths in range(1, 10):
        agree = total = 0
        for pair in range(60):
            union = 40
            shared = round(union * tenths / 10)
            pool = [f"w{rng.random():.12f}" for _ in range(union)]
            a = pool[:shared] + pool[shared:shared + (union - shared) // 2]
            b = pool[:shared] + pool[shared + (union - shared) // 2:]
            J = shared / union
            sa = impl.minhash_signature(a, K, 1000 + pair)
            sb = impl.minhash_signature(b, K, 1000 + pair)
            agree += int((sa == sb).sum())
            total += K
        stats.proportion(agree, total, J, unit="minhash_signature", rate=1e-7,
                         what=f"fraction of equal positions for sets with Jaccard {J:.2f}",
                         case=f"60 pairs of 40-element unions, num_perm={K}")


# ---------------------------------------------------------------- LSH

SIG = torch.tensor([[1, 2, 3, 4, 5, 6],
                    [1, 2, 9, 9, 5, 6],
                    [7, 2, 3, 4, 0, 0],
                    [1, 2, 3, 4, 5, 7]])


@pytest.mark.points(2)
def test_lsh_buckets_by_hand(impl):
    expected = [{(1, 2): [0, 1, 3], (7, 2): [2]}, {(3, 4): [0, 2, 3], (9, 9): [1]}, {(5, 6): [0, 1], (0, 0): [2], (5, 7): [3]}]
    out = impl.lsh_buckets(SIG, 3, 2)
    case = check.describe(signatures=SIG, bands=3, rows=2)
    check.that(isinstance(out, list) and len(out) == 3 and all(isinstance(d, dict) for d in out), "lsh_buckets",
               "should return a list of `bands` dicts", case=case)
    check.equal(out, expected, unit="lsh_buckets", what="buckets", case=case,
                mistakes={"bands and rows swapped": [{(1, 2, 3): [0, 3], (1, 2, 9): [1], (7, 2, 3): [2]},
                                                     {(4, 5, 6): [0], (9, 5, 6): [1], (4, 0, 0): [2], (4, 5, 7): [3]}]})
    check.that(all(type(v) is int for d in out for key in d for v in key), "lsh_buckets",
               "bucket keys must be tuples of Python ints", case=case)
    two = impl.lsh_buckets(SIG, 2, 3)
    check.equal(two, [{(1, 2, 3): [0, 3], (1, 2, 9): [1], (7, 2, 3): [2]},
                      {(4, 5, 6): [0], (9, 5, 6): [1], (4, 0, 0): [2], (4, 5, 7): [3]}],
                unit="lsh_buckets", what="buckets with bands=2, rows=3", case=check.describe(signatures=SIG))
    wide = torch.cat([SIG, SIG], dim=1)[:, ::2]                 # non-contiguous, the same values as SIG[:, [0, 2, 4, 0, 2, 4]]
    check.equal(impl.lsh_buckets(wide, 6, 1), [{(int(v),): [i for i in range(4) if int(wide[i, c]) == int(v)]
                                                for v in dict.fromkeys(wide[:, c].tolist())} for c in range(6)],
                unit="lsh_buckets", what="buckets of a non-contiguous signature matrix (rows=1)",
                case=check.describe(signatures=wide))
    check.equal(impl.lsh_buckets(torch.zeros(0, 4, dtype=torch.int64), 2, 2), [{}, {}], unit="lsh_buckets",
                what="buckets of no documents", case="signatures of shape (0, 4)")
    check.equal(impl.lsh_candidates(SIG, 3, 2), {(0, 1), (0, 3), (1, 3), (0, 2), (2, 3)}, unit="lsh_candidates",
                what="candidate pairs", case=case)
    record = reference.load(TOPIC, "lsh")
    check.equal(impl.lsh_buckets(torch.tensor(record["signatures"]), record["bands"], record["rows"]),
                [{tuple(k): v for k, v in band} for band in record["buckets"]], unit="lsh_buckets",
                what="buckets of the reference signatures", case="reference/11_data/lsh")


@pytest.mark.points(1)
def test_lsh_raises(impl):
    for bands, rows, why in ((4, 2, "bands · rows = 8 ≠ 6"), (2, 2, "bands · rows = 4 ≠ 6"), (0, 6, "bands < 1"),
                             (6, 0, "rows < 1"), (-1, -6, "negative bands and rows")):
        case = check.describe(signatures=SIG, bands=bands, rows=rows)
        check.expect_raises(ValueError, impl.lsh_buckets, SIG, bands, rows, unit="lsh_buckets", case=case, why=why)
        check.expect_raises(ValueError, impl.lsh_candidates, SIG, bands, rows, unit="lsh_candidates", case=case,
                            why=why)
    empty = torch.zeros(3, 0, dtype=torch.int64)               # K = 0 = bands · rows, but a band needs a row
    for bands, rows in ((0, 5), (4, 0), (0, 0)):
        check.expect_raises(ValueError, impl.lsh_buckets, empty, bands, rows, unit="lsh_buckets",
                            case=check.describe(signatures=empty, bands=bands, rows=rows), why="bands and rows must be ≥ 1")


@pytest.mark.points(2)
@examples(25)
@given(n=st.integers(0, 9), bands=st.integers(1, 4), rows=st.integers(1, 3), seed=seeds())
def test_lsh_candidates_against_brute_force(impl, n, bands, rows, seed):
    g = torch.Generator().manual_seed(seed)
    sig = torch.randint(0, 3, (n, bands * rows), generator=g)        # few values: many collisions
    case = check.describe(signatures=sig, bands=bands, rows=rows)
    out = impl.lsh_candidates(sig, bands, rows)
    check.that(isinstance(out, set), "lsh_candidates", f"should return a set, got {type(out).__name__}", case=case)
    check.equal(out, O.lsh_pairs(sig, bands, rows), unit="lsh_candidates", what="candidate pairs", case=case,
                mistakes={"bands and rows swapped": O.lsh_pairs(sig, rows, bands) if bands * rows == sig.shape[1]
                          else None})


@pytest.mark.points(3)
def test_lsh_candidate_rate_matches_formula(impl):
    # Pairs of signatures agreeing at each position independently with probability s (the
    # MinHash model with Jaccard s): the candidate rate must be 1 − (1 − s^r)^b. Five
    # settings × three similarities, 400 pairs each, each binomial test at rate 1e-6 / 15,
    # so a correct implementation fails with probability ≤ 1e-6.
    settings = [(4, 5), (8, 2), (2, 8), (16, 1), (5, 4)]
    for i, (bands, rows) in enumerate(settings):
        for j, s in enumerate((0.3, 0.6, 0.85)):
            sig = O.signatures_with_agreement(400, bands * rows, s, seed=100 * i + j)
            pairs = impl.lsh_candidates(sig, bands, rows)
            hits = sum((2 * p, 2 * p + 1) in pairs for p in range(400))
            p_expected = O.candidate_probability(s, bands, rows)
            try:
                stats.proportion(hits, 400, p_expected, unit="lsh_candidates", rate=1e-6 / 15,
                                 what=f"candidate rate of pairs with agreement s={s}",
                                 case=f"bands={bands}, rows={rows}: 1 − (1 − s^r)^b = {p_expected:.4f}")
            except check.GradingFailure as failure:
                swapped = O.candidate_probability(s, rows, bands)
                lo, hi = stats.binomial_interval(400, swapped, 1e-6)
                if lo <= hits <= hi and abs(swapped - p_expected) > 0.05:
                    raise check.GradingFailure(f"{failure}\n  known mistake: bands and rows swapped") from None
                raise
