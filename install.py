"""Set up the course: create .venv and install llmlab with its pinned dependencies.

`make grade` and `make test` run this on first use; without `make` (Windows) run
`python install.py` yourself. Standard library only: it runs before anything is installed.

On Linux the pinned torch is taken from PyTorch's CPU-only wheel index first (the default
index resolves `torch==X` on Linux to the build with several GB of CUDA libraries); where
that index cannot be reached, the default index is used. LLMLAB_TORCH_INDEX overrides the
index URL; set it empty to skip that step. pip prints its progress as it goes.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def venv_python() -> Path:
    return VENV / ("Scripts/python.exe" if os.name == "nt" else "bin/python")


def torch_pin() -> str:
    """The exact torch requirement of pyproject.toml, e.g. "torch==2.13.0"."""
    match = re.search(r'"(torch==[^"]+)"', (ROOT / "pyproject.toml").read_text())
    if not match:
        raise SystemExit("install.py: pyproject.toml pins no torch version (expected \"torch==X.Y.Z\")")
    return match.group(1)


def pip(*args: str) -> int:
    return subprocess.call([str(venv_python()), "-m", "pip", *args])


def main() -> int:
    if sys.version_info < (3, 10):
        print(f"llmlab needs Python 3.10 or newer; this is {sys.version.split()[0]}")
        return 2
    if not venv_python().exists():
        print(f"[1/3] creating {VENV.name}/", flush=True)
        venv.create(VENV, with_pip=True)
    else:
        print(f"[1/3] {VENV.name}/ exists", flush=True)
    pip("install", "--upgrade", "pip")
    index = os.environ.get("LLMLAB_TORCH_INDEX", CPU_INDEX)
    if sys.platform.startswith("linux") and index:
        pin = torch_pin()
        print(f"[2/3] installing {pin} from PyTorch's CPU-only index ({index})", flush=True)
        if pip("install", "--index-url", index, "--timeout", "30", "--retries", "1", pin) != 0:
            print("      that index cannot be reached here: torch comes from the default index instead", flush=True)
    else:
        print("[2/3] torch comes with the other dependencies (the default build is CPU-only here)", flush=True)
    print("[3/3] installing llmlab and its pinned dependencies", flush=True)
    if pip("install", "-e", str(ROOT)) != 0:
        print("install.py: pip could not install the course; the messages above say why")
        return 1
    STAMP.touch()
    activate = r".venv\Scripts\activate" if os.name == "nt" else "source .venv/bin/activate"
    print(f"done. Activate the environment with `{activate}`, then run `llmlab grade` or `pytest exercises/NN_topic`.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
