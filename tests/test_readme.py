"""Every command the READMEs show exists and takes the arguments shown; the cheap ones run."""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from llmlab.cli import build_parser

REPO = Path(__file__).resolve().parent.parent
READMES = [REPO / "README.md", REPO / "llmlab/data/STUDENT_README.md"]
PLACEHOLDERS = {"OUT": "/tmp/out", "PATH": "/tmp/submission", "F": "/tmp/report.json", "SUBMISSIONS": "/tmp/subs",
                "[--check]": "--check", "[TOPIC]": "01_tokenizer"}


def commands() -> list[tuple[str, str]]:
    """(readme name, command) for each command line inside a fenced code block."""
    found = []
    for readme in READMES:
        for block in re.findall(r"```(?:bash)?\n(.*?)```", readme.read_text(), flags=re.S):
            for line in block.splitlines():
                command = line.split("#")[0].strip()
                if re.match(r"(make|llmlab|pytest|python|source)\b", command):
                    found.append((readme.name, command))
    return found


def test_the_readmes_show_commands():
    shown = {c.split()[0] for _, c in commands()}
    assert {"make", "llmlab", "pytest"} <= shown, shown


@pytest.mark.parametrize("readme, command", commands(), ids=[f"{r}: {c}" for r, c in commands()])
def test_each_command_exists_as_shown(readme, command):
    words = [PLACEHOLDERS.get(w, w) for w in shlex.split(command)]
    if words[0] == "make":
        targets = re.findall(r"^([a-z]+):", (REPO / "Makefile").read_text(), flags=re.M)
        assert all(t in targets for t in words[1:]), f"{readme}: `{command}`: Makefile targets are {targets}"
    elif words[0] == "llmlab":
        build_parser().parse_args(words[1:])  # exits (fails the test) on an unknown command or option
    elif words[0] == "pytest":
        assert (REPO / words[1]).is_dir(), f"{readme}: `{command}`: no folder {words[1]}"
    elif words[0] == "python":
        assert (REPO / words[1]).is_file(), f"{readme}: `{command}`: no file {words[1]}"
    elif words[0] == "source":
        assert words[1] == ".venv/bin/activate"


def test_pytest_k_runs_only_one_units_tests():
    proc = subprocess.run([sys.executable, "-m", "pytest", "exercises/04_attention", "-k", "softmax", "--impl",
                           "solutions", "-q", "-p", "no:cacheprovider"], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout[-2000:]
    ran = re.search(r"(\d+) passed, (\d+) deselected", proc.stdout)
    assert ran and int(ran.group(1)) >= 3 and int(ran.group(2)) > 10, proc.stdout[-500:]
