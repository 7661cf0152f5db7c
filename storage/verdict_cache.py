"""Verdicts cached across runs, keyed by (problem content, code, judge config).

A small SQLite file: only the dispatcher process writes, readers may be other runs.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path
from typing import Any, Iterable


def verdict_key(problem_hash: str, code_sha256: str, judge_key: str) -> str:
    # The same hash as `tasks.types.sha256_text` (kept identical: cache keys must not change).
    return hashlib.sha256(f"{problem_hash}\0{code_sha256}\0{judge_key}".encode("utf-8", "surrogatepass")).hexdigest()


class VerdictCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, verdict TEXT NOT NULL)")

    def get_many(self, keys: Iterable[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        keys = list(keys)
        for start in range(0, len(keys), 500):
            chunk = keys[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for key, verdict in self._db.execute(f"SELECT key, verdict FROM verdicts WHERE key IN ({marks})", chunk):
                found[key] = json.loads(verdict)
        return found

    def put(self, key: str, verdict: dict[str, Any]) -> None:
        self._db.execute("INSERT OR REPLACE INTO verdicts VALUES (?, ?)", (key, json.dumps(verdict)))

    def close(self) -> None:
        self._db.close()
