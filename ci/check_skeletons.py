"""CI gate 3: every graded test fails on the generated skeletons, and fails *because of a
TODO* — with the skeleton's NotImplementedError naming the unit — never with an import
error, a collection error, a crash, or a pass."""

from __future__ import annotations

import sys

from llmlab.course import topics
from llmlab.grading import grade


def main() -> int:
    report = grade.grade(topics.available(), impl="exercises", quiet=True)
    bad = []
    for topic in report["topics"]:
        if topic["status"] != "ok":
            bad.append(f"{topic['topic']}: status {topic['status']}: {topic['detail']}")
        prefix = f"NotImplementedError: TODO {topic['topic']}: "
        for test in topic["tests"]:
            if test["outcome"] != "failed" or not test["message"].startswith(prefix):
                first = test["message"].splitlines()[0] if test["message"] else ""
                bad.append(f"{test['id']}: {test['outcome']}: {first}")
        print(f"{topic['topic']}: {len(topic['tests'])} tests, all should fail with a TODO")
    for line in bad:
        print(f"  NOT CLEAN {line}")
    print(f"{len(bad)} tests do not fail cleanly on the skeletons" if bad else "every skeleton fails cleanly")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
