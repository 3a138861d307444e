"""What a new user sees when the set-up is off: one line that says what to run."""

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_pytest_outside_the_course_environment_prints_one_line(tmp_path):
    (tmp_path / "torch.py").write_text("raise ImportError(\"No module named 'torch'\")\n")
    proc = subprocess.run([sys.executable, "-m", "pytest", "exercises/04_attention"], cwd=REPO, capture_output=True,
                          text=True, env={"PYTHONPATH": f"{tmp_path}:{REPO}", "PATH": "/usr/bin:/bin"})
    lines = (proc.stdout + proc.stderr).strip().splitlines()
    assert proc.returncode == 4 and len(lines) == 1, lines
    assert "No module named 'torch'" in lines[0] and "source .venv/bin/activate" in lines[0]
