"""The class's results: an SQLite database in the output folder, one row per (student, topic).

Only the parent process writes it, each result as it arrives (one short transaction each,
WAL journal), so a run stopped at any point keeps everything graded so far. A row records
the content hash of the topic folder it graded: an unchanged folder is not graded again, a
re-submission is.
"""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    student   TEXT NOT NULL,
    topic     TEXT NOT NULL,
    hash      TEXT NOT NULL,
    status    TEXT NOT NULL,
    score     REAL NOT NULL,
    max_score REAL NOT NULL,
    seconds   REAL NOT NULL,
    graded_at REAL NOT NULL,
    entry     TEXT NOT NULL,   -- the topic's report entry (llmlab grade --json shape) as JSON
    PRIMARY KEY (student, topic)
);
"""

FILE = "results.sqlite"


class Store:
    def __init__(self, out: Path):
        self.path = Path(out) / FILE
        self.db = sqlite3.connect(self.path, timeout=30)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.executescript(SCHEMA)

    def close(self) -> None:
        self.db.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def hashes(self) -> dict[tuple[str, str], str]:
        return {(s, t): h for s, t, h in self.db.execute("SELECT student, topic, hash FROM results")}

    def put(self, student: str, topic: str, digest: str, entry: dict) -> None:
        with self.db:
            self.db.execute(
                "INSERT OR REPLACE INTO results VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (student, topic, digest, entry["status"], entry["score"], entry["max_score"],
                 entry.get("seconds", 0.0), time.time(), json.dumps(entry)))

    def entries(self) -> dict[str, dict[str, dict]]:
        """student -> topic -> report entry."""
        out: dict[str, dict[str, dict]] = {}
        for student, topic, entry in self.db.execute(
                "SELECT student, topic, entry FROM results ORDER BY student, topic"):
            out.setdefault(student, {})[topic] = json.loads(entry)
        return out

    def count(self) -> int:
        return self.db.execute("SELECT COUNT(*) FROM results").fetchone()[0]
