"""Golden reference data as graders read it: stored small, loaded without pickle.

`reference/NN_x/` holds one file per record: a dict of arrays as `<name>.npz`, anything
else as `<name>.json`, and `manifest.json` with each file's SHA-256. `load` verifies the
checksum, so a modified file is reported, not trusted. The files are written by
`llmlab fixtures` (llmlab.authoring.fixtures), which uses the storage functions here.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from typing import Any

import numpy as np
import torch

from llmlab.course import paths

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


def json_bytes(value: Any) -> bytes:
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
            files[f"{name}.json"] = json_bytes(record)
    return files


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def read_npz(data: bytes) -> dict[str, np.ndarray]:
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
            if sha(data) != manifest.get("files", {}).get(file_name):
                raise ReferenceError(f"reference/{topic}/{file_name} was modified (checksum mismatch); "
                                     f"restore it with `git checkout reference/{topic}`")
            return json.loads(data) if file_name.endswith(".json") else read_npz(data)
    raise ReferenceError(f"reference/{topic} has no record {name!r}")
