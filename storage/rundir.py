"""The run directory: `<output>/runs/<run_id>/` and every file in it (DESIGN §2).

Shards are sealed by a sidecar `shard-NNNNN.json` holding the Parquet file's sha256 and the
shard's stats, written after the Parquet file: a shard counts as done only when both exist and the
checksum matches, so a truncated or corrupt file is recomputed, never trusted.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from storage.atomic import write_json

GENERATIONS = "generations"
RESULTS = "results"


def file_sha256(path: str | os.PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_id_for(identity: dict[str, Any]) -> str:
    """Content hash of everything that changes the numbers."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


class RunDir:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @classmethod
    def under(cls, output: str | os.PathLike, run_id: str) -> "RunDir":
        return cls(Path(output) / "runs" / run_id)

    @property
    def manifest(self) -> Path:
        return self.root / "manifest.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def taco_metrics(self) -> Path:
        return self.root / "taco_metrics.json"

    @property
    def report(self) -> Path:
        return self.root / "report.md"

    @property
    def plots(self) -> Path:
        return self.root / "plots"

    def shard(self, kind: str, shard_id: int) -> Path:
        return self.root / kind / f"shard-{shard_id:05d}.parquet"

    def _seal_path(self, kind: str, shard_id: int) -> Path:
        return self.shard(kind, shard_id).with_suffix(".json")

    def seal(self, kind: str, shard_id: int, stats: dict[str, Any]) -> dict[str, Any]:
        """Record the finished shard's checksum and stats; returns the record."""
        path = self.shard(kind, shard_id)
        record = {"shard_id": shard_id, "file": path.name, "sha256": file_sha256(path), "stats": stats}
        write_json(self._seal_path(kind, shard_id), record)
        return record

    def sealed(self, kind: str, shard_id: int) -> dict[str, Any] | None:
        """The shard's record if its file exists and matches its checksum, else None."""
        path, seal = self.shard(kind, shard_id), self._seal_path(kind, shard_id)
        try:
            record = json.loads(seal.read_text())
            if record.get("sha256") == file_sha256(path):
                return record
        except (OSError, ValueError):
            pass
        return None

    def invalidate(self, kind: str, shard_id: int) -> None:
        self._seal_path(kind, shard_id).unlink(missing_ok=True)
