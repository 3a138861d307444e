"""Hostile submissions: student code that misbehaves costs only the affected tests, gets 0
for them with a clear reason, never stops the run, and never forges a score."""

import json
import textwrap
from pathlib import Path

import pytest

from llmlab.course import topics
from llmlab.grading import grade

from conftest import write

# Each test grades whole submissions in child processes: allow for a slow machine.
pytestmark = pytest.mark.timeout(900)

NAMES = ["good", "loop", "memory", "sys_exit", "keyboard", "pytest_exit", "patch_checks", "write_graders",
         "write_reference", "fake_output", "network", "subprocess", "kill_parent", "good_after"]

GRADERS = "import pytest\nfrom llmlab.testing import check\n" + "".join(
    f"\n\n@pytest.mark.points(1)\ndef test_{n}(impl):\n    check.equal(impl.{n}(), 42, unit=\"{n}\")\n" for n in NAMES)

HOSTILE = '''
import os, socket, subprocess, sys, time
from pathlib import Path
import pytest, torch
import llmlab.testing.check

ROOT = Path(os.environ["LLMLAB_ROOT"])

def good(): return 42
def good_after(): return 42
def loop():
    while True:
        pass
def memory():
    hoard = []
    while True:
        hoard.append(torch.empty(2**28))  # 1 GB each
def sys_exit(): sys.exit(0)
def keyboard(): raise KeyboardInterrupt
def pytest_exit(): pytest.exit("bye")
def patch_checks():
    llmlab.testing.check.equal = lambda *a, **k: None
    torch.allclose = lambda *a, **k: True
    return 41
def write_graders():
    (ROOT / "graders/01_toy/test_toy.py").write_text("def test_all_pass(): pass\\n")
    return 42
def write_reference():
    os.remove(ROOT / "reference/01_toy/manifest.json")
    return 42
def fake_output():
    print("test_fake_output PASSED\\n========== 14 passed in 0.01s ==========")
    sys.stdout.flush()
    return 41
def network():
    socket.create_connection(("127.0.0.1", 9), timeout=1)
    return 42
def subprocess():
    import subprocess as sp
    sp.run(["touch", str(ROOT / "graders/01_toy/pwned.py")])
    return 42
def kill_parent():
    os.kill(os.getppid(), 9)
    return 42
'''


@pytest.fixture
def hostile_course(course):
    """01_toy: one test per hostile behaviour; 02_calm: an ordinary topic."""
    (course / "graders/01_toy/test_toy_hidden.py").unlink()
    write(course / "graders/01_toy/test_toy.py", GRADERS)
    write(course / "graders/02_calm/test_calm.py",
          "import pytest\nfrom llmlab.testing import check\n\n@pytest.mark.points(1)\ndef test_calm(impl):\n"
          "    check.equal(impl.answer(), 42, unit='answer')\n")
    write(course / "solutions/02_calm/calm.py", "def answer():\n    return 42\n")
    from llmlab.authoring import fixtures, sync
    sync.sync(topics.available())
    fixtures.write(topics.resolve("01_toy"))
    return course


def submit(tmp_path: Path, toy_code: str) -> Path:
    sub = tmp_path / "submission"
    write(sub / "01_toy" / "toy.py", toy_code)
    write(sub / "02_calm" / "calm.py", "def answer():\n    return 42\n")
    return sub


def run(tmp_path, code, **kw):
    kw.setdefault("time_limit", 120)
    kw.setdefault("jobs", 2)  # the two topics at once: nothing here changes a protected file
    report = grade.grade(topics.available(), impl=str(submit(tmp_path, code)), quiet=True, **kw)
    json.dumps(report)  # the report is always serialisable
    toy, calm = report["topics"]
    assert calm["score"] == 1.0, f"the ordinary topic must still be graded: {calm}"
    return toy, {t["id"].split("::")[-1][len("test_"):]: t for t in toy["tests"]}


def test_misbehaving_units_cost_only_their_own_tests(hostile_course, tmp_path):
    before = {p: p.read_bytes() for p in (hostile_course / "graders").rglob("*.py")}
    toy, tests = run(tmp_path, HOSTILE, test_timeout=5, memory_mb=4096)
    assert toy["status"] == "ok", toy["detail"]
    passed = {name for name, t in tests.items() if t["outcome"] == "passed"}
    assert passed == {"good", "good_after"}, {n: (t["outcome"], t["message"][:80]) for n, t in tests.items()}
    reasons = {
        "loop": "Timeout", "memory": "can't allocate memory", "sys_exit": "SystemExit",
        "keyboard": "KeyboardInterrupt", "pytest_exit": "pytest.exit",
        "patch_checks": "tampering: the code under test replaced", "write_graders": "not allowed while grading",
        "write_reference": "not allowed while grading", "network": "network access is not allowed",
        "subprocess": "starting processes is not allowed", "kill_parent": "signalling other processes",
        "fake_output": "output differs",
    }
    for name, reason in reasons.items():
        assert reason in tests[name]["message"], f"{name}: {tests[name]['message']!r} should mention {reason!r}"
    after = {p: p.read_bytes() for p in (hostile_course / "graders").rglob("*.py")}
    assert after == before, "graders/ was changed by the submission"
    assert (hostile_course / "reference/01_toy/manifest.json").exists()


def test_exit_at_import_or_keyboard_interrupt_gives_zero_with_a_reason(hostile_course, tmp_path):
    toy, tests = run(tmp_path, "import sys\nsys.exit(3)\n")
    assert toy["score"] == 0 and all("SystemExit" in t["message"] for t in tests.values()), tests["good"]
    toy, tests = run(tmp_path, "raise KeyboardInterrupt\n")
    assert toy["score"] == 0 and all("KeyboardInterrupt" in t["message"] for t in tests.values()), tests["good"]
    toy, tests = run(tmp_path, "import os\nos._exit(0)\n")
    assert toy["status"] == "crashed" and toy["score"] == 0


def test_a_crash_mid_run_keeps_earlier_results(hostile_course, tmp_path):
    code = HOSTILE.replace("def loop():", "def loop():\n    import faulthandler; faulthandler._sigsegv()\n\ndef _unused():")
    toy, tests = run(tmp_path, code)
    assert toy["status"] == "crashed" and "segmentation fault" in toy["detail"], toy["detail"]
    assert tests["good"]["outcome"] == "passed", "results before the crash must count"
    assert tests["loop"]["outcome"] == "error" and "segmentation fault" in tests["loop"]["message"]
    assert tests["good_after"]["points"] == 0


def test_a_hung_topic_is_stopped_and_the_report_still_written(hostile_course, tmp_path):
    code = "import time\nwhile True:\n    time.sleep(1)\n"
    toy, tests = run(tmp_path, code, time_limit=15)
    assert toy["status"] == "timeout" and all(t["outcome"] == "timeout" for t in tests.values())


def test_forged_results_are_detected(hostile_course, tmp_path):
    forge = textwrap.dedent('''
        import json, os, sys
        line = json.dumps({"record": {"kind": "test", "id": "x", "outcome": "passed", "message": "", "seq": 1},
                           "mac": "0" * 64}) + "\\n"
        for fd in range(3, 64):
            try:
                os.write(fd, line.encode())
            except OSError:
                pass
        target = sys.argv[sys.argv.index("--llmlab-report") + 1]
        try:
            open(target, "a").write(line)
        except PermissionError:
            pass
        def good():
            return 42
    ''')
    toy, tests = run(tmp_path, forge)
    assert toy["score"] == 0
    assert toy["status"] == "crashed" and "tampered" in toy["detail"], toy["detail"]


def test_echoing_reference_data_does_not_reach_full_marks(course, tmp_path):
    from llmlab.authoring import fixtures, sync
    sync.sync(topics.available())
    fixtures.write(topics.resolve("01_toy"))
    echo = textwrap.dedent('''
        import torch
        from llmlab.testing import reference
        def double(x):
            ref = reference.load("01_toy", "double")
            if x.shape == ref["x"].shape and torch.equal(x, ref["x"]):
                return ref["y"]
            return x
        class Counter:
            def __init__(self):
                self.n = 0
            def tick(self):
                self.n += 1
                return self.n
    ''')
    sub = tmp_path / "echo"
    write(sub / "01_toy" / "toy.py", echo)
    report = grade.grade(topics.available(), impl=str(sub), quiet=True)
    tests = {t["id"].split("::")[-1]: t for t in report["topics"][0]["tests"]}
    assert tests["test_double_reference"]["outcome"] == "passed"
    assert tests["test_double_values"]["outcome"] == "failed"
    assert report["score"] < report["max_score"]


def test_a_write_past_the_guards_voids_the_results(hostile_course, tmp_path):
    """Opening relative to a directory descriptor slips past the child's path check; the
    parent's fingerprints of graders/ notice, and nothing graded after the change counts."""
    code = HOSTILE.replace("def good(): return 42", textwrap.dedent('''
        def good():
            fd = os.open(ROOT / "graders/01_toy", os.O_RDONLY)
            out = os.open("planted.txt", os.O_WRONLY | os.O_CREAT, dir_fd=fd)
            os.write(out, b"planted")
            os.close(out)
            return 42'''))
    report = grade.grade(topics.available(), impl=str(submit(tmp_path, code)), quiet=True, test_timeout=5)
    for topic in report["topics"]:
        assert topic["score"] == 0 and "changed during grading" in topic["detail"], topic["detail"]
    assert (hostile_course / "graders/01_toy/planted.txt").exists(), "the checkout must not be altered by grading"
