"""Set up the course: create .venv and install llmlab with its pinned dependencies.

`make grade` and `make test` run this on first use; without `make` (Windows) run
`python install.py` yourself. Standard library only: it runs before anything is installed.

On Linux the pinned torch is taken from PyTorch's CPU-only wheel index first (the default
index resolves `torch==X` on Linux to the build with several GB of CUDA libraries); where
that index cannot be reached, the default index is used. LLMLAB_TORCH_INDEX overrides the
index URL; set it empty to skip that step. pip prints its progress as it goes.

    python install.py            the course (students and maintainers)
    python install.py --site     and the textbook site's tools (`make site`)
    python install.py --browser  and a headless Chromium for the site's browser test (`make
                                 test`): the system's package, installed with apt-get when
                                 missing and this is Debian or Ubuntu as root; never a browser
                                 download of a tool's own. LLMLAB_CHROMIUM names another one.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent
VENV = ROOT / ".venv"
STAMP = VENV / ".installed"
SITE_STAMP = VENV / ".site-installed"
BROWSER_STAMP = VENV / ".browser-installed"
BROWSERS = ("chromium", "chromium-browser", "google-chrome")
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


def find_browser() -> str | None:
    """The headless browser the site's test drives: LLMLAB_CHROMIUM, else the first on PATH."""
    named = os.environ.get("LLMLAB_CHROMIUM")
    if named:
        return named if Path(named).exists() else None
    return next((found for found in map(shutil.which, BROWSERS) if found), None)


def ensure_browser() -> int:
    found = find_browser()
    if found:
        print(f"browser: {found}", flush=True)
        return 0
    if sys.platform.startswith("linux") and shutil.which("apt-get") and os.geteuid() == 0:
        print("browser: installing Debian's chromium package (apt-get)", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        if (subprocess.call(["apt-get", "update", "-qq"], env=env) == 0
                and subprocess.call(["apt-get", "install", "-y", "-qq", "chromium"], env=env) == 0 and find_browser()):
            print(f"browser: {find_browser()}", flush=True)
            return 0
    print("install.py: the site's browser test needs Chromium and none was found. Install your system's "
          "package (Debian/Ubuntu: `sudo apt-get install chromium`; macOS: Google Chrome), or set "
          "LLMLAB_CHROMIUM to the browser's executable.")
    return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Set up .venv for the course.")
    parser.add_argument("--site", action="store_true", help="also the textbook site's tools")
    parser.add_argument("--browser", action="store_true", help="also a headless Chromium for the site's test "
                                                               "(implies --site)")
    args = parser.parse_args([] if argv is None else argv)
    args.site = args.site or args.browser
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
    print("[3/3] installing llmlab and its pinned dependencies" + (" with the site's tools" if args.site else ""),
          flush=True)
    if pip("install", "-e", f"{ROOT}[site]" if args.site else str(ROOT)) != 0:
        print("install.py: pip could not install the course; the messages above say why")
        return 1
    STAMP.touch()
    if args.site:
        SITE_STAMP.touch()
    if args.browser:
        if ensure_browser() != 0:
            return 1
        BROWSER_STAMP.touch()
    activate = r".venv\Scripts\activate" if os.name == "nt" else "source .venv/bin/activate"
    print(f"done. Activate the environment with `{activate}`, then run `llmlab grade` or `pytest exercises/NN_topic`.")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
