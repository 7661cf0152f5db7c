"""Read generations: TACO's `generations.json` or the project's generations Parquet."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pyarrow as pa

from storage.fs import RemotePath, location
from storage.tables import read_table


class GenerationsError(Exception):
    """The generations file cannot be used; the message says what is wrong and where."""


def _from_taco_json(path: Path | RemotePath) -> list[tuple[int, int, str]]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError as exc:
        raise GenerationsError(f"{path}: not UTF-8 text ({exc})") from exc
    except json.JSONDecodeError as exc:
        raise GenerationsError(f"{path}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})") from exc
    if not isinstance(data, list):
        raise GenerationsError(
            f'{path}: expected a JSON list of {{"task_id": int, "output": [code, ...]}} (TACO\'s '
            f"generations.json), got a {type(data).__name__}"
        )
    rows: list[tuple[int, int, str]] = []
    seen: set[int] = set()
    for pos, entry in enumerate(data):
        where = f"{path}: entry {pos}"
        if not isinstance(entry, dict):
            raise GenerationsError(f"{where} is a {type(entry).__name__}, expected an object with task_id and output")
        task_id = entry.get("task_id", pos)
        if isinstance(task_id, bool) or not isinstance(task_id, int) or task_id < 0:
            raise GenerationsError(f"{where}: task_id {task_id!r} is not a non-negative integer")
        if task_id in seen:
            raise GenerationsError(f"{where}: task_id {task_id} appears twice")
        seen.add(task_id)
        outputs = entry.get("output")
        if not isinstance(outputs, list):
            raise GenerationsError(f"{where}: 'output' must be a list of code strings, got {type(outputs).__name__}")
        for idx, code in enumerate(outputs):
            if code is None:
                code = ""
            if not isinstance(code, str):
                raise GenerationsError(f"{where}: output[{idx}] is a {type(code).__name__}, expected a string")
            rows.append((task_id, idx, code))
    return rows


def _from_parquet(files: list[Path] | list[RemotePath]) -> list[tuple[int, int, str]]:
    rows: list[tuple[int, int, str]] = []
    for f in files:
        try:
            table = read_table(f, columns=["task_id", "sample_idx", "code"])
        except (OSError, pa.ArrowException, KeyError) as exc:
            raise GenerationsError(
                f"{f}: not a generations Parquet file with task_id, sample_idx, code ({exc})"
            ) from exc
        d = table.to_pydict()
        rows.extend(zip(d["task_id"], d["sample_idx"], [c or "" for c in d["code"]]))
    return rows


def read_generations(path: str | os.PathLike | RemotePath) -> list[tuple[int, int, str]]:
    """(task_id, sample_idx, code) for every sample, from a .json, .parquet or a shard folder
    (local, or a URL such as s3://bucket/prefix/generations.json)."""
    p = location(path)
    if p.is_dir():
        files = sorted(p.glob("shard-*.parquet")) or sorted((p / "generations").glob("shard-*.parquet"))
        if not files:
            raise GenerationsError(f"{p}: folder has no shard-*.parquet files (nor generations/shard-*.parquet)")
        rows = _from_parquet(files)
    elif not p.exists():
        raise GenerationsError(f"{p}: no such file")
    elif p.suffix == ".parquet":
        rows = _from_parquet([p])
    else:
        rows = _from_taco_json(p)
    if not rows:
        raise GenerationsError(f"{p}: contains no generations")
    return rows
