"""A looping unit fails its test within the time limit, named, under plain pytest too; the
rest of the topic still runs; an interrupted test never earns its points."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import write

REPO = Path(__file__).resolve().parent.parent

LINE = "        x_hat = (x - mean) / torch.sqrt(var + self.eps)"
LOOP = "        while True:  # a planted bug\n            pass\n"


@pytest.mark.timeout(300)
def test_a_looping_unit_fails_only_its_tests_under_plain_pytest(tmp_path):
    """04_attention with LayerNorm.forward looping, graded by plain `pytest` with a 2 s limit:
    every LayerNorm test times out with a message naming the limit (one of them is a
    hypothesis test, which pytest-timeout's Failed left replaying the loop forever), and
    softmax's tests still pass."""
    folder = tmp_path / "04_attention"
    shutil.copytree(REPO / "solutions/04_attention", folder)
    path = folder / "attention.py"
    text = path.read_text()
    assert text.count(LINE) == 1
    path.write_text(text.replace(LINE, LOOP + LINE))
    results = tmp_path / "results.json"
    proc = subprocess.run([sys.executable, "-m", "pytest", "exercises/04_attention", "--impl", str(folder),
                           "--timeout=2", "-q", "-p", "no:cacheprovider", "--llmlab-results", str(results)],
                          cwd=REPO, capture_output=True, text=True, timeout=280, env=dict(os.environ, LLMLAB_ROOT=str(REPO)))
    outcomes = {r["id"].split("::")[-1]: r for r in json.loads(results.read_text())}
    looping = [r for name, r in outcomes.items() if name.startswith("test_layernorm")]
    assert len(looping) >= 3 and all(r["outcome"] == "timeout" for r in looping), looping
    assert all("time limit of 2 s" in r["message"] and "attention.py" in r["message"] for r in looping), looping[0]
    softmax = [r for name, r in outcomes.items() if name.startswith("test_softmax")]
    assert softmax and all(r["outcome"] == "passed" for r in softmax), softmax
    assert "llmlab:" in proc.stdout


def test_an_interrupted_test_earns_nothing(course):
    write(course / "graders/01_toy/test_toy.py", '''
        import time
        import pytest

        @pytest.mark.points(1)
        def test_fast(impl):
            pass

        @pytest.mark.points(5)
        def test_hangs(impl):
            time.sleep(120)
    ''')
    (course / "graders/01_toy/test_toy_hidden.py").unlink()
    write(course / "exercises/01_toy/toy.py", "def double(x):\n    return 2 * x\n")
    proc = subprocess.Popen([sys.executable, "-m", "pytest", "graders/01_toy", "-q", "-p", "no:cacheprovider",
                             "--timeout=0"], cwd=course, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    time.sleep(6)
    proc.send_signal(signal.SIGINT)
    out, _ = proc.communicate(timeout=60)
    assert "llmlab: 1 / 6 points" in out, out


def test_a_traceback_entry_without_a_line_number_still_gets_reported():
    """A time limit's signal can land on an instruction without a line number (tb_lineno None
    in Python 3.11+); pytest's report code failed on it with an INTERNALERROR, seen on tight
    loops inside hypothesis tests. The plugin numbers such entries before pytest reports."""
    from types import SimpleNamespace

    from llmlab.grading.pytest_plugin import _number_every_line
    from llmlab.grading.timeouts import TestTimeout

    frame = sys._getframe()
    unnumbered = SimpleNamespace(tb_next=None, tb_frame=frame, tb_lasti=0, tb_lineno=None)
    call = SimpleNamespace(excinfo=SimpleNamespace(tb=unnumbered, value=TestTimeout(2)))
    _number_every_line(call)
    assert isinstance(call.excinfo, pytest.ExceptionInfo)
    assert isinstance(call.excinfo.tb.tb_lineno, int) and call.excinfo.tb.tb_frame is frame
    assert "TestTimeout" in str(call.excinfo.getrepr())
