"""Golden reference data: generated from solutions/, stored small, loaded without pickle.

Each topic's generator is `graders/NN_x/fixtures.py`:

    SEED = 0
    def generate(impl) -> dict[str, dict[str, torch.Tensor] | JSON]:
        ...

It receives the reference implementation and returns named records. A record that is a
dict of tensors/arrays is stored as `reference/NN_x/<name>.npz`; anything else is stored as
`<name>.json`. `manifest.json` records the generator, seed, torch version and each file's
SHA-256. Loading verifies the checksum, so a modified file is reported, not trusted.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import sys
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from llmlab import loader, paths, topics
from llmlab.tolerances import tolerance

MANIFEST = "manifest.json"


class ReferenceError(Exception):
    pass


# ------------------------------------------------------------------ storage

def _to_numpy(value: Any) -> np.ndarray:
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _npz_bytes(arrays: dict[str, Any]) -> bytes:
    """An .npz archive with fixed timestamps, so identical data gives identical bytes."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name in sorted(arrays):
            array = _to_numpy(arrays[name])
            if array.dtype == object:
                raise ReferenceError(f"array {name!r} has dtype object; store numbers only")
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            data = io.BytesIO()
            np.lib.format.write_array(data, np.asarray(array, order="C"), allow_pickle=False)  # keeps 0-d
            archive.writestr(info, data.getvalue())
    return buffer.getvalue()


def _json_bytes(value: Any) -> bytes:
    return (json.dumps(value, indent=1, sort_keys=True, ensure_ascii=False) + "\n").encode()


def _is_arrays(record: Any) -> bool:
    return isinstance(record, dict) and record and all(
        isinstance(v, (torch.Tensor, np.ndarray)) for v in record.values())


def encode(records: dict[str, Any]) -> dict[str, bytes]:
    """File name -> bytes for each record."""
    files = {}
    for name, record in records.items():
        if _is_arrays(record):
            files[f"{name}.npz"] = _npz_bytes(record)
        else:
            files[f"{name}.json"] = _json_bytes(record)
    return files


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# ------------------------------------------------------------------ generation

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
    meta["files"] = {name: _sha(data) for name, data in sorted(files.items())}
    (out / MANIFEST).write_bytes(_json_bytes(meta))
    return [out / name for name in files]


def check(topic: topics.Topic) -> list[str]:
    """Problems found when regenerating the topic's data and comparing with what is stored."""
    records, _ = generate(topic)
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
        if _sha(stored) != manifest.get("files", {}).get(name):
            problems.append(f"{topic.slug}: {name} does not match the checksum in {MANIFEST}")
        if stored == data:
            continue
        problems.extend(f"{topic.slug}: {name}: {p}" for p in _compare(name, stored, data))
    return problems


def _compare(name: str, stored: bytes, fresh: bytes) -> list[str]:
    if name.endswith(".json"):
        return [] if json.loads(stored) == json.loads(fresh) else ["regenerated JSON differs"]
    a, b = _read_npz(stored), _read_npz(fresh)
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
            t = tolerance(torch.from_numpy(x[:0]).dtype, "model")
            if not np.allclose(x, y, rtol=t.rtol, atol=t.atol, equal_nan=True):
                problems.append(f"{key}: values differ beyond {t}")
        elif not np.array_equal(x, y):
            problems.append(f"{key}: values differ")
    return problems


def _read_npz(data: bytes) -> dict[str, np.ndarray]:
    with np.load(io.BytesIO(data), allow_pickle=False) as archive:
        return {k: archive[k] for k in archive.files}


# ------------------------------------------------------------------ loading (graders)

_CACHE: dict[tuple[str, str], Any] = {}


def load(topic: str, name: str) -> Any:
    """A stored record: dict of torch tensors (npz) or the JSON value. Checksum-verified."""
    key = (topic, name)
    if key not in _CACHE:
        _CACHE[key] = _read_verified(topic, name)
    value = _CACHE[key]
    if isinstance(value, dict) and all(isinstance(v, np.ndarray) for v in value.values()):
        return {k: torch.from_numpy(v.copy()) for k, v in value.items()}  # fresh tensors per call
    return json.loads(json.dumps(value))  # a fresh copy: graders may not alter the cache


def _read_verified(topic: str, name: str) -> Any:
    folder = paths.reference_dir() / topic
    manifest_path = folder / MANIFEST
    if not manifest_path.exists():
        raise ReferenceError(f"no reference data for {topic} ({manifest_path} missing); "
                             f"maintainers run `llmlab fixtures {topic}`")
    manifest = json.loads(manifest_path.read_text())
    for file_name in (f"{name}.npz", f"{name}.json"):
        path = folder / file_name
        if path.exists():
            data = path.read_bytes()
            if _sha(data) != manifest.get("files", {}).get(file_name):
                raise ReferenceError(f"reference/{topic}/{file_name} was modified (checksum mismatch); "
                                     f"restore it with `git checkout reference/{topic}`")
            return json.loads(data) if file_name.endswith(".json") else _read_npz(data)
    raise ReferenceError(f"reference/{topic} has no record {name!r}")
