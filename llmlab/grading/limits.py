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


MEMORY_ENV = "LLMLAB_MEMORY_MB"  # the child's memory cap, applied by the child itself


def apply_in_child() -> None:
    """In the grading child, before any student code runs: no core dumps, and the memory cap
    the parent asked for (where the platform enforces one). Set here rather than in a
    preexec_fn, which is not safe while the parent runs threads (it grades topics in
    parallel and drains each child's output in a thread)."""
    memory_mb = os.environ.pop(MEMORY_ENV, None)
    if resource is None or memory_mb is None:
        return
    limits = [("RLIMIT_CORE", 0)]
    if memory_cap_supported():
        limits.append(("RLIMIT_AS", int(memory_mb) * 1024 * 1024))
    for name, value in limits:
        try:
            resource.setrlimit(getattr(resource, name), (value, value))
        except (ValueError, OSError):  # a hard limit already lower: keep it
            pass


def popen_options(memory_mb: int) -> dict:
    """Keyword arguments for subprocess.Popen: the child's own session (a timeout kills the
    topic's whole tree) or, on Windows, its own process group; and its memory cap, passed
    in the environment for apply_in_child."""
    env = {**os.environ, MEMORY_ENV: str(memory_mb)}
    if hasattr(os, "setsid"):
        return {"start_new_session": True, "env": env}
    if os.name == "nt":
        return {"creationflags": subprocess.CREATE_NEW_PROCESS_GROUP, "env": env}
    return {"env": env}


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
