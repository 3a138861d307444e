"""`llmlab grade` and the pytest entry, on the toy course: scores, reports, isolation."""

import json
import subprocess
import sys
import xml.etree.ElementTree as ET

import pytest

from llmlab.course import topics
from llmlab.grading import grade

pytestmark = pytest.mark.timeout(600)  # these tests grade whole (toy) courses in child processes


def run(*args, cwd):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_pytest_entry_grades_the_exercise_folder(synced_course):
    proc = run("-m", "pytest", "exercises/01_toy", cwd=synced_course)
    assert proc.returncode == 1, proc.stdout
    assert "NotImplementedError: TODO 01_toy: double" in proc.stdout
    assert "llmlab: 0 / 5 points" in proc.stdout, proc.stdout
    proc = run("-m", "pytest", "graders/01_toy", "--impl", "solutions", cwd=synced_course)
    assert proc.returncode == 0 and "llmlab: 5 / 5 points" in proc.stdout, proc.stdout


def test_grade_json_matches_the_documented_shape(synced_course, tmp_path):
    report = grade.grade(topics.available(), impl="solutions", quiet=True)
    assert report["score"] == report["max_score"] == 5.0
    topic = report["topics"][0]
    assert {"topic", "score", "max_score", "status", "tests"} <= set(topic)
    assert topic["status"] == "ok"
    for test in topic["tests"]:
        assert {"id", "points", "max_points", "outcome", "message"} <= set(test)
    assert sum(t["hidden"] for t in topic["tests"]) == 1
    grade.write_outputs(report, json_path=str(tmp_path / "r.json"), junit_path=str(tmp_path / "r.xml"))
    assert json.loads((tmp_path / "r.json").read_text())["score"] == 5.0
    suite = ET.parse(tmp_path / "r.xml").getroot().find("testsuite")
    assert suite.get("tests") == "4" and suite.get("failures") == "0"


def test_skeleton_scores_zero_and_names_the_next_todo(synced_course):
    report = grade.grade(topics.available(), impl="exercises", quiet=True)
    assert report["score"] == 0
    assert all(t["outcome"] == "failed" for t in report["topics"][0]["tests"])
    assert report["next_todo"].startswith("01_toy: double (at exercises/01_toy/toy.py:"), report["next_todo"]


def test_a_wrong_submission_gets_partial_credit_with_the_mistake_named(synced_course, tmp_path):
    sub = tmp_path / "sub" / "01_toy"
    sub.mkdir(parents=True)
    text = (synced_course / "solutions/01_toy/toy.py").read_text().replace("return 2 * x", "return x")
    (sub / "toy.py").write_text(text)
    report = grade.grade(topics.available(), impl=str(tmp_path / "sub"), quiet=True)
    tests = {t["id"].split("::")[-1]: t for t in report["topics"][0]["tests"]}
    assert tests["test_counter"]["outcome"] == "passed"
    assert "known mistake: returned the input unchanged" in tests["test_double_values"]["message"]
    assert report["score"] == 1.0


def test_crash_and_timeout_cost_only_their_topic(synced_course, tmp_path):
    sub = tmp_path / "sub" / "01_toy"
    sub.mkdir(parents=True)
    (sub / "toy.py").write_text("import os\nos._exit(0)\n")
    report = grade.grade(topics.available(), impl=str(tmp_path / "sub"), quiet=True)
    topic = report["topics"][0]
    assert topic["score"] == 0 and all(t["outcome"] != "passed" for t in topic["tests"]), topic
    (sub / "toy.py").write_text("import time\nwhile True:\n    time.sleep(0.1)\n")
    report = grade.grade(topics.available(), impl=str(tmp_path / "sub"), quiet=True, time_limit=8)
    topic = report["topics"][0]
    assert topic["status"] == "timeout" and topic["score"] == 0, topic
    assert all(t["outcome"] == "timeout" for t in topic["tests"])


def test_an_error_on_a_valid_input_says_the_input_was_valid(synced_course, tmp_path):
    sub = tmp_path / "sub" / "01_toy"
    sub.mkdir(parents=True)
    text = (synced_course / "solutions/01_toy/toy.py").read_text().replace(
        "return 2 * x", "raise ValueError('x must be positive')")
    (sub / "toy.py").write_text(text)
    proc = run("-m", "pytest", "graders/01_toy", "--impl", str(sub), "-q", cwd=synced_course)
    assert "ValueError: x must be positive (at " in proc.stdout
    assert "raised on an input the docstring allows, so the unit should not raise here" in proc.stdout, proc.stdout
