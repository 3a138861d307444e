"""Independent oracles for the 11_data graders: slow loops and plain-Python arithmetic written
from the docstrings, and a runner that computes MinHash signatures in a second Python process.

Nothing here imports the solution; the units under test arrive through the `impl` fixture.
"""

from __future__ import annotations

import hashlib
import inspect
import json
import os
import subprocess
import sys
import textwrap
import types
import unicodedata

import torch

P = (1 << 31) - 1
FIM_PREFIX, FIM_MIDDLE, FIM_SUFFIX = "<|fim_prefix|>", "<|fim_middle|>", "<|fim_suffix|>"


# ---------------------------------------------------------------- text

def normalize(text: str) -> str:
    return " ".join(unicodedata.normalize("NFKC", text).lower().split())


def dedup(docs) -> list[int]:
    """First occurrences by comparing normalised texts pairwise (no hashing at all)."""
    kept = []
    for i, doc in enumerate(docs):
        if all(normalize(doc) != normalize(docs[j]) for j in kept):
            kept.append(i)
    return kept


# ---------------------------------------------------------------- MinHash and LSH

def base_hash(s: str) -> int:
    return int.from_bytes(hashlib.sha256(s.encode("utf-8")).digest()[:8], "big") % P


def minhash(items, num_perm: int, seed: int) -> list[int]:
    """The signature in Python integers (no int64 arithmetic), from the same seeded draws."""
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(1, P, (num_perm,), generator=g).tolist()
    b = torch.randint(0, P, (num_perm,), generator=g).tolist()
    xs = [base_hash(s) for s in set(items)]
    return [min((ai * x + bi) % P for x in xs) for ai, bi in zip(a, b)]


def word_shingles(text: str, k: int) -> set[str]:
    words = normalize(text).split()
    if not words:
        return set()
    if len(words) < k:
        return {" ".join(words)}
    return {" ".join(words[i:i + k]) for i in range(len(words) - k + 1)}


def lsh_pairs(signatures: torch.Tensor, bands: int, rows: int) -> set[tuple[int, int]]:
    """Brute force over all pairs: equal in every row of some band."""
    sig = signatures.tolist()
    n = len(sig)
    return {(i, j) for i in range(n) for j in range(i + 1, n)
            if any(sig[i][b * rows:(b + 1) * rows] == sig[j][b * rows:(b + 1) * rows] for b in range(bands))}


def candidate_probability(s: float, bands: int, rows: int) -> float:
    return 1.0 - (1.0 - s ** rows) ** bands


def signatures_with_agreement(n_pairs: int, length: int, s: float, seed: int) -> torch.Tensor:
    """(2·n_pairs, length) int64: rows 2p and 2p + 1 agree at each position independently with
    probability s and are otherwise drawn independently from [0, 2^40) (so accidental equality
    has probability 2^-40 per position)."""
    g = torch.Generator().manual_seed(seed)
    first = torch.randint(0, 1 << 40, (n_pairs, length), generator=g)
    other = torch.randint(0, 1 << 40, (n_pairs, length), generator=g)
    agree = torch.rand((n_pairs, length), generator=g) < s
    second = torch.where(agree, first, other)
    return torch.stack([first, second], dim=1).reshape(2 * n_pairs, length)


# ---------------------------------------------------------------- packing

def pack(docs, block_size: int, eos_id: int):
    """Slow loops: the stream, padded rows, and positions counted token by token."""
    tokens, segs = [], []
    for k, doc in enumerate(docs):
        for t in list(doc) + [eos_id]:
            tokens.append(int(t))
            segs.append(k)
    while len(tokens) % block_size:
        tokens.append(eos_id)
        segs.append(-1)
    rows = len(tokens) // block_size
    ids = [tokens[r * block_size:(r + 1) * block_size] for r in range(rows)]
    seg = [segs[r * block_size:(r + 1) * block_size] for r in range(rows)]
    pos = []
    for r in range(rows):
        row, count = [], 0
        for t in range(block_size):
            count = count + 1 if t > 0 and seg[r][t] == seg[r][t - 1] else 0
            row.append(count)
        pos.append(row)
    return torch.tensor(ids), torch.tensor(seg), torch.tensor(pos)


def mask_blocks(segment_ids: torch.Tensor) -> torch.Tensor:
    """The mask built block by block: a lower-triangular block of ones for every run of equal
    segment ids in a row (faster than `mask_loops` for long rows)."""
    R, T = segment_ids.shape
    m = torch.zeros(R, T, T, dtype=torch.bool)
    for r in range(R):
        start = 0
        for t in range(1, T + 1):
            if t == T or segment_ids[r, t] != segment_ids[r, start]:
                m[r, start:t, start:t] = torch.ones(t - start, t - start, dtype=torch.bool).tril()
                start = t
    return m


def mask_loops(segment_ids: torch.Tensor) -> torch.Tensor:
    R, T = segment_ids.shape
    m = torch.zeros(R, T, T, dtype=torch.bool)
    for r in range(R):
        for i in range(T):
            for j in range(i + 1):
                m[r, i, j] = bool(segment_ids[r, i] == segment_ids[r, j])
    return m


# ---------------------------------------------------------------- FIM and mixtures

def fim(doc: str, rng, mode: str) -> str:
    n = len(doc)
    i, j = rng.randint(0, n), rng.randint(0, n)
    lo, hi = sorted((i, j))
    pre, mid, suf = doc[:lo], doc[lo:hi], doc[hi:]
    if mode == "psm":
        return FIM_PREFIX + pre + FIM_SUFFIX + suf + FIM_MIDDLE + mid
    return FIM_PREFIX + FIM_SUFFIX + suf + FIM_MIDDLE + pre + mid


def fim_reassemble(out: str, mode: str) -> str | None:
    """The document back from a FIM string, or None when the sentinels are not laid out as the
    mode prescribes."""
    if mode == "psm":
        if not out.startswith(FIM_PREFIX) or out.count(FIM_SUFFIX) != 1 or out.count(FIM_MIDDLE) != 1:
            return None
        body = out[len(FIM_PREFIX):]
        pre, rest = body.split(FIM_SUFFIX)
        if FIM_MIDDLE not in rest:
            return None
        suf, mid = rest.split(FIM_MIDDLE)
        return pre + mid + suf
    if not out.startswith(FIM_PREFIX + FIM_SUFFIX) or out.count(FIM_MIDDLE) != 1:
        return None
    suf, rest = out[len(FIM_PREFIX + FIM_SUFFIX):].split(FIM_MIDDLE)
    return rest + suf


def mixture(weights, temperature: float) -> list[float]:
    q = [float(w) ** (1.0 / temperature) if w > 0 else 0.0 for w in weights]
    total = sum(q)
    return [v / total for v in q]


# ---------------------------------------------------------------- a second process

_CHILD = r"""
import json, runpy, sys
request = json.loads(sys.stdin.read())
if request["path"]:
    ns = runpy.run_path(request["path"], run_name="llmlab_child_impl")
else:
    ns = {"__name__": "llmlab_child_impl"}
    exec(compile(request["source"], "<student code>", "exec"), ns)
fn = ns["minhash_signature"]
out = [fn(items, num_perm, seed).tolist() for items, num_perm, seed in request["cases"]]
print(json.dumps({"signatures": out, "hash_of_probe": hash("llmlab probe")}))
"""


def _bundle(fn: types.FunctionType) -> str:
    """Source text that re-creates `fn` with the globals it needs (for code defined in a
    notebook, which has no file): every module it can see is imported under its name, plain
    constants are written out, and functions and classes of the same namespace are copied
    with `inspect.getsource`, following the names their code uses."""
    namespace = fn.__globals__
    lines, defs, seen = [], [], set()

    def names_of(code):
        out = set(code.co_names)
        for const in code.co_consts:
            if isinstance(const, types.CodeType):
                out |= names_of(const)
        return out

    todo = [fn.__name__]
    while todo:
        name = todo.pop()
        if name in seen or name not in namespace:
            continue
        seen.add(name)
        value = namespace[name]
        if isinstance(value, types.ModuleType):
            lines.append(f"import {value.__name__}\n{name} = sys.modules[{value.__name__!r}]")
        elif isinstance(value, (int, float, str, bytes, bool, tuple, frozenset)):
            lines.append(f"{name} = {value!r}")
        elif inspect.isfunction(value) or inspect.isclass(value):
            if value.__module__ == fn.__module__:
                defs.append(textwrap.dedent(inspect.getsource(value)))
                codes = [value.__code__] if inspect.isfunction(value) else [
                    m.__code__ for m in vars(value).values() if inspect.isfunction(m)]
                for code in codes:
                    todo.extend(names_of(code))
            else:
                lines.append(f"from {value.__module__} import {value.__qualname__} as {name}")
    return "from __future__ import annotations\nimport sys\n" + "\n".join(lines) + "\n\n" + "\n\n".join(defs)


def signatures_in_child(fn, cases: list[tuple[list[str], int, int]], hash_seed: str) -> dict:
    """Run `fn` (a minhash_signature) in a fresh Python process with PYTHONHASHSEED=hash_seed
    on each (items, num_perm, seed) case; returns {"signatures": [...], "hash_of_probe": int}.
    Raises PermissionError where starting a process is not allowed (under `llmlab grade`)."""
    path = fn.__globals__.get("__file__")
    source = "" if path and str(path).endswith(".py") and os.path.exists(path) else _bundle(fn)
    request = json.dumps({"path": path if not source else "", "source": source, "cases": cases})
    env = dict(os.environ, PYTHONHASHSEED=hash_seed, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-c", _CHILD], input=request, capture_output=True, text=True,
                          env=env, timeout=60)
    if done.returncode != 0:
        raise RuntimeError(done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "the child failed")
    return json.loads(done.stdout.strip().splitlines()[-1])


# ---------------------------------------------------------------- quality (written after the oracles above)

def quality(doc: str) -> tuple[bool, list[str]]:
    """The five rules, each computed on its own from the docstring's definitions."""
    words = doc.split()
    if len(words) == 0:
        return False, ["too_few_words"]
    lines = [s.strip() for s in doc.splitlines() if s.strip()]
    reasons = []
    if len(words) < 5:
        reasons.append("too_few_words")
    if not 3 * len(words) <= sum(map(len, words)) <= 10 * len(words):
        reasons.append("mean_word_length")
    if 10 * sum(1 for w in words if any(c.isalpha() for c in w)) < 8 * len(words):
        reasons.append("alpha_words")
    if 10 * sum(1 for s in lines if s.endswith("...") or s.endswith("…")) > 3 * len(lines):
        reasons.append("ellipsis_lines")
    if 10 * (len(lines) - len(set(lines))) > 3 * len(lines):
        reasons.append("duplicate_lines")
    return not reasons, reasons
