"""Guards for a grading child process (`llmlab grade` runs each topic in one).

Student code runs in the same process as the graders, so nothing here is a security
boundary against an attacker who studies the harness; it makes every ordinary way of
cheating or breaking a grading run fail loudly and costs the student the affected tests:

- an audit hook (PEP 578: it cannot be removed once installed) refuses, after set-up:
  network access; writing, deleting or renaming anything under the protected folders
  (graders/, reference/, the llmlab package, conftest.py, pyproject.toml); starting
  processes; killing other processes; loading native code with ctypes;
- `Integrity` remembers the functions of torch, numpy, pytest and llmlab and, after each
  test, reports and undoes any that the code under test replaced (e.g. a patched
  `torch.allclose`);
- results leave the child only as records signed with a key the parent passes through a
  file that is read and deleted before any student code runs (see llmlab.grading.grade).
"""

from __future__ import annotations

import hashlib
import hmac
import importlib
import json
import os
import sys
from pathlib import Path

KEY_ENV = "LLMLAB_GRADING_KEY_FILE"  # where the parent left the signing key
# Class grading (llmlab.classroom): folders the child may neither read nor change
# (the class's submissions, the output folder with its results database), os.pathsep-separated,
# and the one folder inside them it may use (its own staged copy of the submission).
PRIVATE_ENV = "LLMLAB_GRADING_PRIVATE"
ALLOWED_ENV = "LLMLAB_GRADING_ALLOWED"

_BLOCKED_ALWAYS = {
    "socket.connect": "network access",
    "socket.bind": "network access",
    "socket.getaddrinfo": "network access",
    "socket.gethostbyname": "network access",
    "socket.gethostbyaddr": "network access",
    "socket.sendto": "network access",
    "urllib.Request": "network access",
    "subprocess.Popen": "starting processes",
    "os.system": "starting processes",
    "os.exec": "starting processes",
    "os.posix_spawn": "starting processes",
    "os.spawn": "starting processes",
    "os.fork": "starting processes",
    "os.forkpty": "starting processes",
    "pty.spawn": "starting processes",
    "ctypes.dlopen": "loading native code",
    "ctypes.dlsym": "loading native code",
}
_PATH_EVENTS = {  # event -> indices of path arguments
    "os.remove": (0,), "os.rmdir": (0,), "os.mkdir": (0,), "os.chmod": (0,), "os.chown": (0,),
    "os.rename": (0, 1), "os.replace": (0, 1), "os.link": (0, 1), "os.symlink": (1,),
    "os.truncate": (0,), "os.utime": (0,), "shutil.rmtree": (0,), "shutil.move": (0, 1),
    "shutil.copyfile": (1,), "shutil.copytree": (1,), "shutil.chown": (0,),
}
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND


class Refused(PermissionError):
    pass


def protected_paths(root: Path) -> list[Path]:
    package = Path(__file__).resolve().parents[1]  # the llmlab package
    return [root / "graders", root / "reference", package, root / "conftest.py", root / "pyproject.toml"]


def private_paths() -> tuple[list[Path], list[Path]]:
    """(folders the child may not touch at all, folders inside them it may use), from the
    environment the class grader set; both empty outside class grading."""
    def split(name: str) -> list[Path]:
        return [Path(p) for p in os.environ.pop(name, "").split(os.pathsep) if p]
    return split(PRIVATE_ENV), split(ALLOWED_ENV)


_READ_EVENTS = {"os.listdir", "os.scandir", "glob.glob", "os.chdir"}  # their first argument is the path


def install_audit_hook(protected: list[Path], private: list[Path] = (), allowed: list[Path] = ()) -> None:
    prefixes = tuple(str(p.resolve()) for p in protected)
    hidden = tuple(str(p.resolve()) for p in private)
    usable = tuple(str(p.resolve()) for p in allowed)
    own_pid = os.getpid()

    def under(path, roots: tuple[str, ...]) -> bool:
        if isinstance(path, int) or path is None or not roots:
            return False
        try:
            text = os.fsdecode(path)
        except TypeError:
            return False
        full = os.path.realpath(text)
        return any(full == p or full.startswith(p + os.sep) for p in roots)

    def secret(path) -> bool:
        return under(path, hidden) and not under(path, usable)

    def inside(path) -> bool:
        return under(path, prefixes) or secret(path)

    def hook(event: str, args: tuple) -> None:
        if event in _BLOCKED_ALWAYS:
            raise Refused(f"{_BLOCKED_ALWAYS[event]} is not allowed while grading ({event})")
        if hidden and event == "open" and args and secret(args[0]):
            raise Refused(f"reading {os.fsdecode(args[0])} is not allowed while grading")
        if hidden and event in _READ_EVENTS and args and secret(args[0]):
            raise Refused(f"looking into {os.fsdecode(args[0])} is not allowed while grading ({event})")
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, None))[:3]
            writing = (isinstance(mode, str) and any(c in mode for c in "wax+")) or \
                      (isinstance(flags, int) and flags & _WRITE_FLAGS)
            if writing and inside(path):
                raise Refused(f"writing to {os.fsdecode(path)} is not allowed while grading")
        elif event in _PATH_EVENTS:
            for i in _PATH_EVENTS[event]:
                if i < len(args) and inside(args[i]):
                    raise Refused(f"changing {os.fsdecode(args[i])} is not allowed while grading ({event})")
        elif event in ("os.kill", "os.killpg", "signal.pthread_kill"):
            if event != "os.kill" or args[0] not in (own_pid, 0):
                raise Refused("signalling other processes is not allowed while grading")

    sys.addaudithook(hook)


WATCHED = [
    "builtins", "math", "json", "torch", "torch.nn", "torch.nn.functional", "torch.testing",
    "torch.autograd", "torch.linalg", "numpy", "numpy.testing", "pytest", "_pytest.runner",
    "_pytest.python", "_pytest.reports", "_pytest.main", "_pytest.outcomes", "_pytest.fixtures",
    "llmlab.testing.check", "llmlab.testing.stats", "llmlab.testing.guard", "llmlab.testing.tolerances",
    "llmlab.testing.reference", "llmlab.testing.properties", "llmlab.testing.tensors", "llmlab.testing.strategies",
    "llmlab.course.loader", "llmlab.grading.pytest_plugin", "llmlab.grading.sandbox",
]
WATCHED_CLASSES = [("torch", "Tensor"), ("torch.nn", "Module"), ("torch.nn", "Parameter")]


class Integrity:
    """Snapshot of the functions graders rely on; detects and undoes replacements."""

    def __init__(self, ignore: frozenset[str] = frozenset()) -> None:
        self.ignore = ignore  # "module.name"s that the host legitimately replaces
        self.owners = []
        for name in WATCHED:
            try:
                self.owners.append((name, importlib.import_module(name)))
            except ImportError:
                continue
        for module, cls in WATCHED_CLASSES:
            self.owners.append((f"{module}.{cls}", getattr(importlib.import_module(module), cls)))
        self.saved = [(label, owner, dict(vars(owner))) for label, owner in self.owners]

    def changes(self) -> list[str]:
        """Names replaced or deleted since the snapshot; each is restored."""
        changed = []
        for label, owner, saved in self.saved:
            current = vars(owner)
            for key, value in saved.items():
                now = current.get(key, _MISSING)
                if now is not value and _torch_wraps(now, value):
                    saved[key] = now  # torch's own wrapper, installed late: the new normal
                    continue
                if now is not value and f"{label}.{key}" not in self.ignore:
                    changed.append(f"{label}.{key}")
                    try:
                        setattr(owner, key, value)
                    except (AttributeError, TypeError):
                        pass
        return changed


_MISSING = object()


def _torch_wraps(now, original) -> bool:
    """torch wraps a few of its own functions when a submodule is first imported (torch._dynamo,
    which any optimizer imports, wraps torch.manual_seed): a wrapper written inside torch
    around the original is not tampering. Checked by where its code lives, so a student's
    functools.wraps does not pass for one. (Importing torch._dynamo up front instead cost
    every grading child about two seconds.)"""
    import torch

    code = getattr(now, "__code__", None)
    return (getattr(now, "__wrapped__", None) is original and code is not None
            and Path(code.co_filename).resolve().is_relative_to(Path(torch.__file__).resolve().parent))


def read_key() -> bytes | None:
    """The signing key from the file the parent wrote in its private temporary folder,
    deleted as soon as it is read (before any student code runs), or None outside
    `llmlab grade`. A file, not an inherited pipe, because Windows cannot pass one."""
    path = os.environ.pop(KEY_ENV, None)
    if path is None:
        return None
    with open(path, "rb") as handle:
        key = handle.read()
    os.remove(path)
    return key


def sign(key: bytes, record: dict) -> str:
    body = json.dumps(record, sort_keys=True)
    mac = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return json.dumps({"record": record, "mac": mac})


def verify(key: bytes, line: str) -> dict | None:
    """The record of a signed line, or None if the line is not genuine."""
    try:
        data = json.loads(line)
        record, mac = data["record"], data["mac"]
        body = json.dumps(record, sort_keys=True)
    except (json.JSONDecodeError, KeyError, TypeError):
        return None
    expected = hmac.new(key, body.encode(), hashlib.sha256).hexdigest()
    return record if hmac.compare_digest(expected, str(mac)) else None
