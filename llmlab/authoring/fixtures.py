"""`llmlab fixtures`: golden reference data generated from solutions/.

Each topic's generator is `graders/NN_x/fixtures.py`:

    SEED = 0
    def generate(impl) -> dict[str, dict[str, torch.Tensor] | JSON]:
        ...

It receives the reference implementation and returns named records, stored by
llmlab.testing.reference (npz for dicts of tensors, JSON otherwise) with a manifest that
records the generator, seed, torch version and each file's SHA-256. `check` regenerates in
memory and compares within the "model" tolerance (another machine may round differently).
"""

from __future__ import annotations

import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llmlab.course import costs, loader, topics
from llmlab.testing.reference import MANIFEST, ReferenceError, encode, json_bytes, read_npz, sha
from llmlab.testing.tolerances import tolerance


def generator_module(topic: topics.Topic):
    path = topic.graders / "fixtures.py"
    if not path.exists():
        return None
    spec = importlib.util.spec_from_file_location(f"llmlab_fixtures_{topic.slug}", path)
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, str(topic.graders))  # generators may import the topic's grader helpers
    try:
        spec.loader.exec_module(module)
    finally:
        sys.path.remove(str(topic.graders))
    return module


def generate(topic: topics.Topic) -> tuple[dict[str, Any], dict]:
    """Run the topic's generator on solutions/. Returns (records, manifest without files)."""
    module = generator_module(topic)
    if module is None:
        return {}, {}
    if not topic.solutions.is_dir():
        raise ReferenceError(f"{topic.slug}: reference data is generated from solutions/, which this checkout lacks")
    impl = loader.load(topic, "solutions")
    seed = int(getattr(module, "SEED", 0))
    torch.manual_seed(seed)
    records = module.generate(impl)
    meta = {
        "topic": topic.slug,
        "generator": f"graders/{topic.slug}/fixtures.py",
        "seed": seed,
        "torch_version": torch.__version__,
    }
    return records, meta


def write(topic: topics.Topic) -> list[Path]:
    records, meta = generate(topic)
    if not records:
        return []
    files = encode(records)
    out = topic.reference
    out.mkdir(parents=True, exist_ok=True)
    for stale in out.iterdir():
        if stale.name not in files and stale.name != MANIFEST:
            stale.unlink()
    for name, data in files.items():
        (out / name).write_bytes(data)
    meta["files"] = {name: sha(data) for name, data in sorted(files.items())}
    (out / MANIFEST).write_bytes(json_bytes(meta))
    return [out / name for name in files]


def check(topic: topics.Topic) -> list[str]:
    """Problems found when regenerating the topic's data and comparing with what is stored."""
    start = time.monotonic()
    records, _ = generate(topic)
    costs.record(topic.slug, time.monotonic() - start)
    if not records:
        return []
    problems = []
    manifest_path = topic.reference / MANIFEST
    if not manifest_path.exists():
        return [f"{topic.slug}: no {MANIFEST}; run `llmlab fixtures {topic.slug}`"]
    manifest = json.loads(manifest_path.read_text())
    fresh = encode(records)
    if sorted(fresh) != sorted(manifest.get("files", {})):
        problems.append(f"{topic.slug}: stored files {sorted(manifest.get('files', {}))} != generated {sorted(fresh)}")
    for name, data in fresh.items():
        path = topic.reference / name
        if not path.exists():
            problems.append(f"{topic.slug}: {name} is missing")
            continue
        stored = path.read_bytes()
        if sha(stored) != manifest.get("files", {}).get(name):
            problems.append(f"{topic.slug}: {name} does not match the checksum in {MANIFEST}")
        if stored == data:
            continue
        problems.extend(f"{topic.slug}: {name}: {p}" for p in _compare(name, stored, data))
    return problems


def _compare(name: str, stored: bytes, fresh: bytes) -> list[str]:
    if name.endswith(".json"):
        return [] if json.loads(stored) == json.loads(fresh) else ["regenerated JSON differs"]
    a, b = read_npz(stored), read_npz(fresh)
    if sorted(a) != sorted(b):
        return [f"arrays {sorted(a)} != regenerated {sorted(b)}"]
    problems = []
    for key in a:
        x, y = a[key], b[key]
        if x.shape != y.shape or x.dtype != y.dtype:
            problems.append(f"{key}: {x.dtype}{x.shape} != regenerated {y.dtype}{y.shape}")
        elif np.issubdtype(x.dtype, np.floating):
            # Regeneration on another machine may differ by rounding; "model" is the
            # loosest kind a generator composes.
            t = tolerance(torch.from_numpy(np.empty(0, x.dtype)).dtype, "model")
            if not np.allclose(x, y, rtol=t.rtol, atol=t.atol, equal_nan=True):
                problems.append(f"{key}: values differ beyond {t}")
        elif not np.array_equal(x, y):
            problems.append(f"{key}: values differ")
    return problems
