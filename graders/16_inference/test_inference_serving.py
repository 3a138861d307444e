"""Graders for 16_inference (serving): BlockAllocator and simulate_continuous_batching.

Evidence per unit:
  - BlockAllocator: a scripted run worked out by hand (lowest free block first, blocks reused
    after a free, tables in logical order, slots); random operation sequences (hypothesis)
    against a plain simulation of the pool (`inference_oracle.AllocatorModel`) with the
    invariants checked after every operation — no block leaks, no block is shared, every
    table holds ceil(length / block_size) blocks, freeing everything returns the whole pool;
    errors leave the state unchanged; golden data;
  - simulate_continuous_batching: a schedule worked out by hand (admission limits, the KV
    reservation, head-of-line blocking, idle steps); random workloads (hypothesis) against
    an independent step-by-step oracle (`inference_oracle.batching_oracle`) and invariants
    (batch and memory limits, first come first served, output lengths, no idle capacity while
    the queue's head fits); golden data; every Raises clause.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

import inference_oracle as O
from llmlab.testing import check, reference
from llmlab.testing.strategies import examples

TOPIC = O.TOPIC
UNIT = "BlockAllocator"


# ================================================================= BlockAllocator

@pytest.mark.points(2)
def test_allocator_by_hand(impl):
    pool = impl.BlockAllocator(6, 4)
    check.equal(pool.num_free, 6, unit="BlockAllocator.num_free", what="free blocks of a new pool")
    check.equal(pool.allocate("a", 5), [0, 1], unit="BlockAllocator.allocate", what="table of a 5-token prompt")
    check.equal(pool.allocate("b", 3), [2], unit="BlockAllocator.allocate", what="table of a 3-token prompt")
    check.equal(pool.allocate("c"), [], unit="BlockAllocator.allocate", what="table of an empty sequence")
    check.equal(pool.append("b"), [], unit="BlockAllocator.append", what="new blocks for b's 4th token (room left)")
    check.equal(pool.append("b", 1), [3], unit="BlockAllocator.append", what="new blocks for b's 5th token")
    check.equal(pool.append("c", 0), [], unit="BlockAllocator.append", what="new blocks for 0 tokens")
    check.equal(pool.num_free, 2, unit="BlockAllocator.num_free", what="free blocks after 4 were taken")
    check.equal(pool.slot("a", 4), (1, 0), unit="BlockAllocator.slot", what="slot of a's token 4")
    check.equal(pool.slot("b", 3), (2, 3), unit="BlockAllocator.slot", what="slot of b's token 3")
    check.equal(pool.slot("b", 4), (3, 0), unit="BlockAllocator.slot", what="slot of b's token 4")
    pool.free("a")
    check.equal(pool.num_free, 4, unit="BlockAllocator.free", what="free blocks after freeing a")
    check.equal(pool.append("c", 9), [0, 1, 4], unit="BlockAllocator.append",
                what="new blocks for 9 tokens of c (the lowest free ones, in increasing order)")
    check.equal(pool.block_table("c"), [0, 1, 4], unit="BlockAllocator.block_table", what="c's table")
    check.equal(pool.slot("c", 8), (4, 0), unit="BlockAllocator.slot", what="slot of c's token 8")
    table = pool.block_table("b")
    table.append(99)
    check.equal(pool.block_table("b"), [2, 3], unit="BlockAllocator.block_table",
                what="b's table after changing the returned list (it must be a copy)")
    pool.free("b")
    pool.free("c")
    check.equal(pool.num_free, 6, unit="BlockAllocator.free", what="free blocks after freeing everything")
    check.equal(pool.allocate("d", 24), [0, 1, 2, 3, 4, 5], unit="BlockAllocator.allocate",
                what="a sequence that fills the whole pool")
    single = impl.BlockAllocator(1, 1)
    check.equal((single.allocate(0, 1), single.num_free, single.slot(0, 0)), ([0], 0, (0, 0)), unit=UNIT,
                what="(table, num_free, slot) of a one-block pool with blocks of one token")


@st.composite
def _operations(draw):
    num_blocks, block_size = draw(st.integers(1, 8)), draw(st.integers(1, 4))
    ops = draw(st.lists(st.tuples(st.sampled_from(["allocate", "append", "append", "free"]),
                                  st.sampled_from(["s0", "s1", "s2", 3]), st.integers(-1, 9)), max_size=25))
    return num_blocks, block_size, ops


def _state(pool, ids):
    return {s: pool.block_table(s) for s in ids}


def _check_invariants(pool, model, case):
    tables = {s: pool.block_table(s) for s in model.tables}
    owned = [b for t in tables.values() for b in t]
    check.that(len(owned) == len(set(owned)), UNIT, "a block is shared by two sequences (or listed twice)",
               f"tables: {tables}", case=case)
    check.equal(tables, model.tables, unit=UNIT, what="block tables", case=case)
    check.equal(pool.num_free, model.num_blocks - len(owned), unit="BlockAllocator.num_free",
                what="free blocks (every block is either owned or free: none may leak)", case=case)
    for s, t in tables.items():
        check.equal(len(t), math.ceil(model.lengths[s] / model.block_size), unit=UNIT, case=case,
                    what=f"number of blocks of {s!r} (ceil(length / block_size))")
        if model.lengths[s]:
            last = model.lengths[s] - 1
            check.equal(pool.slot(s, last), (t[last // model.block_size], last % model.block_size),
                        unit="BlockAllocator.slot", what=f"slot of the last token of {s!r}", case=case)


def _apply(pool, op, seq, n):
    """Run one operation on the student's pool: its result or the name of its exception."""
    try:
        if op == "free":
            return pool.free(seq)
        return getattr(pool, op)(seq, n)
    except (ValueError, KeyError, MemoryError) as exc:
        return type(exc).__name__


@pytest.mark.points(3)
@examples(40)
@given(spec=_operations())
def test_allocator_random_operations_never_leak(impl, spec):
    num_blocks, block_size, ops = spec
    pool, model = impl.BlockAllocator(num_blocks, block_size), O.AllocatorModel(num_blocks, block_size)
    done = []
    for op, seq, n in ops:
        done.append((op, seq, n))
        case = check.describe(num_blocks=num_blocks, block_size=block_size, operations=done)
        want = model.free_seq(seq) if op == "free" else getattr(model, op)(seq, n)
        got = _apply(pool, op, seq, n)
        check.equal(got, want, unit=f"BlockAllocator.{op}", case=case,
                    what=f"result of {op}({seq!r}{'' if op == 'free' else f', {n}'}) (or the exception raised)")
        _check_invariants(pool, model, case)
    for seq in list(model.tables):
        pool.free(seq)
    check.equal(pool.num_free, num_blocks, unit="BlockAllocator.free", what="free blocks after freeing every sequence",
                case=check.describe(num_blocks=num_blocks, block_size=block_size, operations=done))


@pytest.mark.points(1)
def test_allocator_errors_leave_state_unchanged(impl):
    pool = impl.BlockAllocator(4, 2)
    pool.allocate("a", 3)
    pool.allocate("b", 2)
    before = (_state(pool, ["a", "b"]), pool.num_free)
    cases = [(MemoryError, pool.allocate, ("c", 5), "5 tokens need 3 blocks, 1 is free"),
             (MemoryError, pool.append, ("a", 4), "4 more tokens need 2 more blocks, 1 is free"),
             (ValueError, pool.allocate, ("a", 1), "the sequence already exists"),
             (ValueError, pool.allocate, ("c", -1), "n_tokens < 0"),
             (ValueError, pool.append, ("a", -1), "n_tokens < 0"),
             (KeyError, pool.append, ("zz", 1), "unknown sequence"),
             (KeyError, pool.free, ("zz",), "unknown sequence"),
             (KeyError, pool.block_table, ("zz",), "unknown sequence"),
             (KeyError, pool.slot, ("zz", 0), "unknown sequence"),
             (IndexError, pool.slot, ("a", 3), "position ≥ length"),
             (IndexError, pool.slot, ("a", -1), "position < 0")]
    for error, fn, args, why in cases:
        case = check.describe(call=f"{fn.__name__}{args}", pool="4 blocks of 2; a: 3 tokens, b: 2 tokens")
        check.expect_raises(error, fn, *args, unit=f"BlockAllocator.{fn.__name__}", why=why, case=case)
        check.equal((_state(pool, ["a", "b"]), pool.num_free), before, unit=f"BlockAllocator.{fn.__name__}",
                    what="(tables, num_free) after the error (nothing may change)", case=case)
    check.that("c" not in _try_tables(pool, "c"), UNIT, "a failed allocate must not leave the sequence behind")
    check.equal(pool.append("a", 1), [], unit="BlockAllocator.append", what="the 4th token of a fits its last block")
    check.equal(pool.append("a", 1), [3], unit="BlockAllocator.append", what="a's 5th token takes the last free block")
    pool.free("a")
    check.expect_raises(KeyError, pool.free, "a", unit="BlockAllocator.free", why="freeing twice is an error")
    for args, why in (((0, 4), "num_blocks must be positive"), ((4, 0), "block_size must be positive"),
                      ((-2, 4), "num_blocks must be positive"), ((4, 2.5), "block_size must be an integer"),
                      ((True, 4), "a bool is not a size")):
        check.expect_raises(ValueError, impl.BlockAllocator, *args, unit="BlockAllocator.__init__", why=why,
                            case=check.describe(num_blocks=args[0], block_size=args[1]))


def _try_tables(pool, seq):
    try:
        pool.block_table(seq)
    except KeyError:
        return {}
    return {seq: True}


# ================================================================= simulate_continuous_batching

def _requests(impl, rows):
    return [impl.Request(*row) for row in rows]


@pytest.mark.timeout(10)    # each takes under 0.3 s: a simulation that never ends fails in 10 s, not 60
@pytest.mark.points(2)
def test_batching_by_hand(impl):
    unit = "simulate_continuous_batching"
    # max_batch 2, kv_capacity 10. Step 0: A (3 + 2 = 5) and B (2 + 3 = 5) fill batch and
    # memory; C (arrives 0, needs 5) waits. A finishes in step 1 (two tokens). Step 2: C joins
    # B (5 + 5 = 10); D (arrives 1, needs 3) waits: the batch is full. B finishes in step 2;
    # step 3: D joins C (5 + 3 = 8). C and D finish in step 3. E arrives at step 7, so steps
    # 4–6 are idle; E makes its two tokens in steps 7 and 8.
    rows = [("A", 0, 3, 2), ("B", 0, 2, 3), ("C", 0, 3, 2), ("D", 1, 2, 1), ("E", 7, 1, 2)]
    schedule, sizes = impl.simulate_continuous_batching(_requests(impl, rows), 2, 10)
    check.equal(schedule, {"A": (0, 1), "B": (0, 2), "C": (2, 3), "D": (3, 3), "E": (7, 8)}, unit=unit,
                what="schedule id -> (start, finish)", case=check.describe(requests=rows, max_batch=2, kv_capacity=10))
    check.equal(sizes, [2, 2, 2, 2, 0, 0, 0, 1, 1], unit=unit, what="batch size of every step",
                case=check.describe(requests=rows, max_batch=2, kv_capacity=10))
    # Head-of-line blocking: X (needs 9) cannot join Y (needs 4) under capacity 12; Z
    # (needs 2) would fit but must not overtake X. Ties in arrival go by list order.
    rows = [("Y", 0, 2, 2), ("X", 1, 5, 4), ("Z", 1, 1, 1)]
    schedule, sizes = impl.simulate_continuous_batching(_requests(impl, rows), 4, 12)
    check.equal(schedule, {"Y": (0, 1), "X": (2, 5), "Z": (2, 2)}, unit=unit,
                what="schedule with the queue's head blocked by memory (no overtaking)",
                case=check.describe(requests=rows, max_batch=4, kv_capacity=12))
    check.equal(sizes, [1, 1, 2, 1, 1, 1], unit=unit, what="batch size of every step",
                case=check.describe(requests=rows, max_batch=4, kv_capacity=12))
    rows = [(1, 2, 1, 1), (0, 2, 1, 1)]
    schedule, sizes = impl.simulate_continuous_batching(_requests(impl, rows), 1, 5)
    check.equal(schedule, {1: (2, 2), 0: (3, 3)}, unit=unit, what="equal arrivals served in list order",
                case=check.describe(requests=rows, max_batch=1, kv_capacity=5))
    check.equal(sizes, [0, 0, 1, 1], unit=unit, what="batch sizes (idle steps before the first arrival)",
                case=check.describe(requests=rows, max_batch=1, kv_capacity=5))


@st.composite
def _workloads(draw):
    n = draw(st.integers(0, 9))
    cap = draw(st.integers(4, 30))
    rows = []
    for i in range(n):
        prompt = draw(st.integers(1, 6))
        rows.append((i, draw(st.integers(0, 12)), prompt, draw(st.integers(1, min(8, max(1, cap - prompt))))))
    rows = [r for r in rows if r[2] + r[3] <= cap]
    return rows, draw(st.integers(1, 4)), cap


@pytest.mark.timeout(10)    # each takes under 0.3 s: a simulation that never ends fails in 10 s, not 60
@pytest.mark.points(3)
@examples(40)
@given(spec=_workloads())
def test_batching_matches_oracle_and_invariants(impl, spec):
    unit = "simulate_continuous_batching"
    rows, max_batch, cap = spec
    requests = _requests(impl, rows)
    case = check.describe(requests=rows, max_batch=max_batch, kv_capacity=cap)
    schedule, sizes = impl.simulate_continuous_batching(requests, max_batch, cap)
    want_schedule, want_sizes = O.batching_oracle(requests, max_batch, cap)
    check.equal(schedule, want_schedule, unit=unit, what="schedule id -> (start, finish)", case=case)
    check.equal(sizes, want_sizes, unit=unit, what="batch size of every step", case=case)
    for r in requests:
        start, finish = schedule[r.id]
        check.that(start >= r.arrival and finish - start + 1 == r.output_len, unit,
                   f"request {r.id} ran from step {start} to {finish}; it arrived at {r.arrival} and makes "
                   f"{r.output_len} tokens, one per step", case=case)
    for t, size in enumerate(sizes):
        active = [r for r in requests if schedule[r.id][0] <= t <= schedule[r.id][1]]
        check.that(size == len(active) <= max_batch, unit, f"step {t}: batch size {size}, {len(active)} requests "
                   f"running, max_batch {max_batch}", case=case)
        check.that(sum(r.prompt_len + r.output_len for r in active) <= cap, unit,
                   f"step {t}: the running requests reserve more than kv_capacity {cap}", case=case)


@pytest.mark.timeout(10)    # each takes under 0.3 s: a simulation that never ends fails in 10 s, not 60
@pytest.mark.points(1)
def test_batching_reference_raises_and_edges(impl):
    unit = "simulate_continuous_batching"
    r = reference.load(TOPIC, "serving")
    b = r["batching"]
    schedule, sizes = impl.simulate_continuous_batching(_requests(impl, b["requests"]), b["max_batch"], b["kv_capacity"])
    check.equal([[rid, *schedule[rid]] for rid in sorted(schedule)], b["schedule"], unit=unit,
                what="schedule (golden data)")
    check.equal(sizes, b["batch_sizes"], unit=unit, what="batch sizes (golden data)")
    a = r["allocator"]
    pool = impl.BlockAllocator(a["num_blocks"], a["block_size"])
    got = [_apply(pool, op, seq, n) for op, seq, n in a["ops"]]
    check.equal(got, a["results"], unit=UNIT, what="results of the scripted operations (golden data)")
    check.equal({s: pool.block_table(s) for s in a["tables"]}, a["tables"], unit=UNIT, what="final tables (golden)")
    check.equal(impl.simulate_continuous_batching([], 2, 8), ({}, []), unit=unit, what="no requests")
    check.equal(impl.simulate_continuous_batching([], 1, 1), ({}, []), unit=unit,
                what="no requests, max_batch 1 and kv_capacity 1 (the smallest valid limits)")
    check.equal(impl.simulate_continuous_batching(_requests(impl, [("only", 3, 4, 4)]), 1, 8),
                ({"only": (3, 6)}, [0, 0, 0, 1, 1, 1, 1]), unit=unit, what="one request that needs the whole memory")
    good = [("a", 0, 2, 2)]
    for rows, max_batch, cap, why in ((good, 0, 8, "max_batch < 1"), (good, 1, 0, "kv_capacity < 1"),
                                      ([], 0, 8, "max_batch < 1 (even with no requests)"),
                                      ([], 1, 0, "kv_capacity < 1 (even with no requests)"),
                                      ([("a", 0, 2, 2), ("a", 1, 1, 1)], 2, 8, "two requests share an id"),
                                      ([("a", -1, 2, 2)], 1, 8, "arrival < 0"), ([("a", 0, 0, 2)], 1, 8, "prompt_len < 1"),
                                      ([("a", 0, 2, 0)], 1, 8, "output_len < 1"),
                                      ([("a", 0, 5, 4)], 1, 8, "a request needs more than kv_capacity alone")):
        check.expect_raises(ValueError, impl.simulate_continuous_batching, _requests(impl, rows), max_batch, cap,
                            unit=unit, why=why, case=check.describe(requests=rows, max_batch=max_batch, kv_capacity=cap))
