"""What each part of `make test` costs, per topic: the figures behind its cost table.

A gate that works topic by topic calls `record(topic, seconds)`; when the environment
names a costs file (LLMLAB_COSTS, set by ci/gates.py together with LLMLAB_GATE), one JSON
line per call is appended to it. Outside CI nothing is written.
"""

from __future__ import annotations

import json
import os


def record(topic: str, seconds: float) -> None:
    target = os.environ.get("LLMLAB_COSTS")
    if not target:
        return
    line = json.dumps({"gate": os.environ.get("LLMLAB_GATE", ""), "topic": topic, "seconds": round(seconds, 2)})
    with open(target, "a") as handle:  # one short write per line: safe with parallel writers
        handle.write(line + "\n")
