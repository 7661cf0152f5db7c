"""Every folder and file name of a run: the pipeline's `<output>/runs/<run_id>/`, the flat folders
of `taco-eval evaluate` and `taco-eval generate` (docs/architecture.md, "Data contracts").

Shards are sealed by a sidecar `shard-NNNNN.json` holding the Parquet file's sha256 and the
shard's stats, written after the Parquet file: a shard counts as done only when both exist and the
checksum matches, so a truncated or corrupt file is recomputed, never trusted.

A run folder may be a local path or a URL (`s3://bucket/prefix/runs/<run_id>`, see storage/fs.py):
on object storage each file is written once at its final key (data first, seal last), and the seal
is a conditional create: a valid seal is never overwritten, even when two writers race for a shard.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from storage.atomic import write_json
from storage.fs import RemotePath, location

GENERATIONS = "generations"  # shard kinds: also the folder names
RESULTS = "results"
RUNS = "runs"
MANIFEST_JSON = "manifest.json"
RUN_LOCK = "run.lock"  # held by the process running this run (storage/run_lock.py)
METRICS_JSON = "metrics.json"
TACO_METRICS_JSON = "taco_metrics.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
PLOTS = "plots"
PROBLEM_INFO_JSON = "problem_info.json"
RESULTS_PARQUET = "results.parquet"  # a flat `evaluate` folder's results
GENERATIONS_JSON = "generations.json"  # TACO's format, in a `generate` folder
GENERATION_CONFIG_JSON = "generation_config.json"  # what a `generate` folder's shards were made with
PREFECT_RESULTS = ".prefect-results"  # under the output root: Prefect's persisted task results


def file_sha256(path: str | os.PathLike | RemotePath) -> str:
    where = location(path)
    if isinstance(where, RemotePath):
        return hashlib.sha256(where.read_bytes()).hexdigest()  # one GET (opening costs a HEAD first)
    digest = hashlib.sha256()
    with open(where, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def run_id_for(identity: dict[str, Any]) -> str:
    """Content hash of everything that changes the numbers."""
    canonical = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:16]


def shard_name(shard_id: int) -> str:
    return f"shard-{shard_id:05d}.parquet"


class RunDir:
    """A run folder: the pipeline's `<output>/runs/<run_id>/`, or a flat `evaluate` folder (which has
    `results.parquet` instead of sealed `results/` shards). Its paths are `Path`s, or `RemotePath`s
    when the root is a URL."""

    def __init__(self, root: str | os.PathLike | RemotePath):
        self.root = location(root)

    @classmethod
    def under(cls, output: str | os.PathLike | RemotePath, run_id: str) -> "RunDir":
        return cls(location(output) / RUNS / run_id)

    @property
    def manifest(self) -> Path:
        return self.root / MANIFEST_JSON

    @property
    def metrics(self) -> Path:
        return self.root / METRICS_JSON

    @property
    def taco_metrics(self) -> Path:
        return self.root / TACO_METRICS_JSON

    @property
    def report(self) -> Path:
        return self.root / REPORT_MD

    @property
    def report_html(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def problem_info(self) -> Path:
        return self.root / PROBLEM_INFO_JSON

    @property
    def flat_results(self) -> Path:
        return self.root / RESULTS_PARQUET

    @property
    def plots(self) -> Path:
        return self.root / PLOTS

    @property
    def lock(self) -> Path:
        return self.root / RUN_LOCK

    def shard(self, kind: str, shard_id: int) -> Path:
        return self.root / kind / shard_name(shard_id)

    def _seal_path(self, kind: str, shard_id: int) -> Path:
        return self.shard(kind, shard_id).with_suffix(".json")

    def seal(self, kind: str, shard_id: int, stats: dict[str, Any], content: Any = None) -> dict[str, Any]:
        """Record the finished shard's checksum, stats and `content` (what the shard was planned to
        hold, e.g. its task ids and samples per task); returns the record."""
        path = self.shard(kind, shard_id)
        record = {"shard_id": shard_id, "file": path.name, "sha256": file_sha256(path), "stats": stats}
        if content is not None:
            record["content"] = content
        try:
            write_json(self._seal_path(kind, shard_id), record, once=True)
        except FileExistsError:
            # Object storage, a seal already there: a valid one (another writer finished this very
            # shard, e.g. Dask re-running a task) stands; a stale one is replaced. Either way the seal
            # holds the checksum of data read back from the key, so it is trusted only while it matches.
            current = self.sealed(kind, shard_id, content)
            if current is not None:
                return current
            write_json(self._seal_path(kind, shard_id), record)
        return record

    def sealed(self, kind: str, shard_id: int, content: Any = None) -> dict[str, Any] | None:
        """The shard's record if its file exists and matches its checksum (and, when `content` is
        given, the seal records exactly that content), else None: the one test of "this shard is done"
        for the pipeline and for `taco-eval generate`."""
        path, seal = self.shard(kind, shard_id), self._seal_path(kind, shard_id)
        try:
            record = json.loads(seal.read_text())
            if record.get("sha256") == file_sha256(path) and (content is None or record.get("content") == content):
                return record
        except (OSError, ValueError):
            pass
        return None

    def invalidate(self, kind: str, shard_id: int) -> None:
        self._seal_path(kind, shard_id).unlink(missing_ok=True)


def shard_content(task_ids: list[int], n: int) -> dict[str, Any]:
    """What a generations shard is planned to hold: samples 0..n-1 of these tasks. Recorded in its
    seal, so a folder reused with another selection (`--limit 5`, then `--limit 10`) never trusts a
    shard planned for the old one."""
    return {"task_ids": list(task_ids), "n": n}


class GenerateDir(RunDir):
    """A `taco-eval generate` output folder: sealed `generations/shard-NNNNN.parquet` shards (the same
    seals as a run folder's), `generation_config.json`, `generations.json`."""

    @property
    def generations_json(self) -> Path:
        return self.root / GENERATIONS_JSON

    @property
    def config(self) -> Path:
        return self.root / GENERATION_CONFIG_JSON
