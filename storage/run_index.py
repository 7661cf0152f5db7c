"""The run index: one JSON line per finished run under the output root (`<output>/run-index.jsonl`).

Each line is an entry built by `entry_for_run` (run_id, finished_at, deployment, model, dataset,
pass@k values, run_dir, ...). Lines are appended whole: the file is opened with O_APPEND, locked
with `flock` against concurrent writers, and each entry goes out in one `write` followed by
`fsync`. A reader skips a line that does not parse (a writer killed mid-line), so a torn tail never
hides the runs before it; the next append starts on a fresh line.

On object storage (an `s3://` output root) there is no append and no flock: an append reads the
index with its version tag and writes it back with the new line only if nobody changed it since
(a conditional put); a writer that lost the race reads again and retries.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import json
import os
from pathlib import Path
from typing import Any, Iterable

from storage.fs import Conflict, RemotePath, location
from storage.rundir import MANIFEST_JSON, METRICS_JSON

INDEX_NAME = "run-index.jsonl"
REQUIRED_KEYS = ("run_id", "run_dir")
_REMOTE_APPEND_TRIES = 20


def index_path(output_root: str | os.PathLike | RemotePath) -> Path | RemotePath:
    return location(output_root) / INDEX_NAME


def utc_now() -> str:
    return dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")


def parse_time(text: Any) -> dt.datetime:
    """An entry's `finished_at` as an aware datetime (naive times are taken as UTC; junk sorts first)."""
    try:
        value = dt.datetime.fromisoformat(str(text).replace("Z", "+00:00"))
    except ValueError:
        return dt.datetime.min.replace(tzinfo=dt.timezone.utc)
    return value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc)


def _read_json(path: Path | RemotePath) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


def entry_for_run(
    run_dir: str | os.PathLike,
    *,
    deployment: str | None = None,
    flow_run_id: str | None = None,
    finished_at: str | None = None,
    metrics: dict[str, Any] | None = None,
    manifest: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The index line for a finished run, read from its folder (metrics.json, manifest.json if any).

    `metrics` / `manifest` may be passed to skip re-reading them; a flat `taco-eval evaluate`
    folder (no manifest) gets its folder name as run_id and None for model and dataset.
    """
    root = location(run_dir).resolve()
    if metrics is None:
        metrics = _read_json(root / METRICS_JSON)
        if metrics is None:
            raise FileNotFoundError(f"{root / 'metrics.json'} is missing or not JSON")
    if manifest is None:
        manifest = _read_json(root / MANIFEST_JSON) or {}
    cfg = manifest.get("config") or {}
    ds = cfg.get("dataset") or {}
    ks = list(metrics.get("ks") or [])
    return {
        "run_id": manifest.get("run_id") or root.name,
        "finished_at": finished_at or utc_now(),
        "deployment": deployment,
        "flow_run_id": str(flow_run_id) if flow_run_id else None,
        "model": cfg.get("model"),
        "model_revision": cfg.get("model_revision"),
        "dataset": f"{ds['source']}:{ds.get('split', 'test')}" if ds.get("source") else None,
        "dataset_fingerprint": (manifest.get("dataset") or {}).get("fingerprint"),
        "n": cfg.get("n"),
        "temperature": cfg.get("temperature"),
        "ks": ks,
        "pass_at_k": {f"pass@{k}": metrics[f"pass@{k}"] for k in ks if f"pass@{k}" in metrics},
        "num_problems": metrics.get("num_problems"),
        "num_samples": metrics.get("num_samples"),
        "failed_shards": manifest.get("failed_shards") or [],
        "run_dir": str(root),
    }


def append_run(output_root: str | os.PathLike | RemotePath, entry: dict[str, Any]) -> Path | RemotePath:
    """Append one entry (a JSON object on one line) to the output root's run index, unless its
    run id is already there; returns the index's path."""
    missing = [k for k in REQUIRED_KEYS if not entry.get(k)]
    if missing:
        raise ValueError(f"run index entry lacks {missing}")
    entry = {"finished_at": utc_now(), **entry}
    data = (json.dumps(entry, ensure_ascii=False, default=str) + "\n").encode("utf-8")
    path = index_path(output_root)
    if isinstance(path, RemotePath):
        return _append_remote(path, entry["run_id"], data)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        if any(e.get("run_id") == entry["run_id"] for e in read_index(output_root)):
            return path  # one line per run id: an identical run finished again adds nothing to history
        size = os.fstat(fd).st_size
        if size:
            # A writer killed mid-line left no newline: start ours on a fresh line.
            with open(path, "rb") as fh:
                fh.seek(size - 1)
                if fh.read(1) != b"\n":
                    data = b"\n" + data
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock
    return path


def _append_remote(path: RemotePath, run_id: str, line: bytes) -> RemotePath:
    for _ in range(_REMOTE_APPEND_TRIES):
        try:
            old, tag = path.read_tagged()[:2]
        except FileNotFoundError:
            old, tag = b"", None
        if any(e.get("run_id") == run_id for e in _parse(old.decode("utf-8", errors="replace"))):
            return path
        new = old + (b"\n" if old and not old.endswith(b"\n") else b"") + line
        try:
            if tag is None:
                path.create(new)
            else:
                path.replace(new, tag)
            return path
        except (FileExistsError, Conflict):
            continue  # another run appended meanwhile: read it again
    raise OSError(f"cannot append to {path}: it kept changing under {_REMOTE_APPEND_TRIES} tries")


def read_index(output_root: str | os.PathLike | RemotePath) -> list[dict[str, Any]]:
    """Every entry of the run index, in file (append) order; unparsable lines are skipped."""
    path = index_path(output_root)
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return []
    return _parse(text)


def _parse(text: str) -> list[dict[str, Any]]:
    entries = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("run_id"):
            entries.append(entry)
    return entries


def sorted_by_time(entries: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Entries oldest first by `finished_at`; equal times keep their append order."""
    return [e for _, _, e in sorted((parse_time(e.get("finished_at")), i, e) for i, e in enumerate(entries))]


def select(
    entries: Iterable[dict[str, Any]],
    *,
    model: str | None = None,
    deployment: str | None = None,
    dataset: str | None = None,
) -> list[dict[str, Any]]:
    """Entries matching every filter given (None = any)."""
    return [
        e
        for e in entries
        if (model is None or e.get("model") == model)
        and (deployment is None or e.get("deployment") == deployment)
        and (dataset is None or e.get("dataset") == dataset)
    ]


def previous_run(
    output_root: str | os.PathLike,
    deployment: str | None,
    model: str | None,
    *,
    dataset: str | None = None,
    exclude_run_id: str | None = None,
    before: str | None = None,
) -> dict[str, Any] | None:
    """The latest indexed run of the same deployment (None matches runs made outside a
    deployment) and, when given, the same model and dataset; None if there is none.

    Call it before `append_run` for the current run, or pass `exclude_run_id`. `before` (ISO
    time) keeps only runs that finished earlier.
    """
    candidates = [e for e in read_index(output_root) if e.get("deployment") == deployment]
    candidates = select(candidates, model=model, dataset=dataset)
    if exclude_run_id is not None:
        candidates = [e for e in candidates if e.get("run_id") != exclude_run_id]
    if before is not None:
        limit = parse_time(before)
        candidates = [e for e in candidates if parse_time(e.get("finished_at")) < limit]
    ordered = sorted_by_time(candidates)
    return ordered[-1] if ordered else None
