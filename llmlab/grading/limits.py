"""Limits for a grading child process, as far as the platform allows them.

| what                         | Linux            | macOS                   | Windows                      |
|------------------------------|------------------|-------------------------|------------------------------|
| time limit per topic         | yes              | yes                     | yes                          |
| kill the whole process tree  | own session      | own session             | the child only (new group)   |
| memory cap (RLIMIT_AS)       | yes              | no: macOS ignores it    | no: no `resource` module     |
| no core dumps (RLIMIT_CORE)  | yes              | yes                     | not needed                   |

Each facility is detected, not assumed from the platform's name (except macOS's RLIMIT_AS,
which exists but is not enforced), so a missing one degrades to what the platform can do,
with one note for the student, never to a crash. Tests simulate the missing facilities.
"""

from __future__ import annotations

import os
import subprocess
import sys

try:
    import resource
except ImportError:  # Windows
    resource = None


def memory_cap_supported() -> bool:
    return resource is not None and hasattr(resource, "RLIMIT_AS") and sys.platform != "darwin"


def notes(memory_mb: int) -> list[str]:
    """What cannot be enforced here, one line each (empty on Linux)."""
    found = []
    if not memory_cap_supported():
        found.append(f"the {memory_mb} MB memory limit per topic is not enforced on this platform "
                     f"(no working RLIMIT_AS); the time limits still apply")
    if not hasattr(os, "setsid"):
        found.append("a topic that times out is stopped, but processes it started itself may survive")
    return found


def _apply(memory_mb: int) -> None:
    """Runs in the child before it starts (POSIX preexec_fn)."""
    os.setsid()  # own process group: a timeout kills the topic's whole tree
    if resource is None:
        return
    limits = [("RLIMIT_CORE", 0)]
    if memory_cap_supported():
        limits.append(("RLIMIT_AS", memory_mb * 1024 * 1024))
    for name, value in limits:
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
        except (ValueError, OSError):  # a hard limit already lower: keep it
            pass


def popen_options(memory_mb: int) -> dict:
    """Keyword arguments for subprocess.Popen that put the child under its limits."""
    if hasattr(os, "setsid"):
        return {"preexec_fn": lambda: _apply(memory_mb)}
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP}
    return {}


def kill_tree(proc: subprocess.Popen) -> None:
    """Stop the child and, where the platform allows, everything it started."""
    try:
        if hasattr(os, "killpg") and hasattr(os, "setsid"):
            os.killpg(proc.pid, 9)
        else:
            proc.kill()
    except (ProcessLookupError, PermissionError):
        pass
    proc.wait()
