"""Parquet schemas of the data contracts (docs/architecture.md) and their atomic reads/writes."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from storage.atomic import atomic_path
from storage.fs import RemotePath, location

GENERATIONS_SCHEMA = pa.schema(
    [
        ("task_id", pa.int64()),
        ("problem_id", pa.string()),
        ("sample_idx", pa.int64()),
        ("completion", pa.string()),
        ("code", pa.string()),
        ("num_tokens", pa.int64()),
        ("finish_reason", pa.string()),
        ("seed", pa.int64()),
        ("batch_size", pa.int64()),
    ]
)

RESULTS_SCHEMA = pa.schema(
    [
        ("task_id", pa.int64()),
        ("sample_idx", pa.int64()),
        ("code_sha256", pa.string()),
        ("passed", pa.bool_()),
        ("status", pa.string()),
        ("tests_run", pa.int64()),
        ("tests_total", pa.int64()),
        ("test_codes", pa.list_(pa.int8())),
        ("runtime_ms", pa.float64()),
        ("detail", pa.string()),
        ("cached", pa.bool_()),
    ]
)


def write_rows(path: str | os.PathLike | RemotePath, rows: Iterable[Any], schema: pa.Schema) -> Path | RemotePath:
    """Write dataclass instances or dicts as one Parquet file, atomically."""
    records = [dataclasses.asdict(r) if dataclasses.is_dataclass(r) else dict(r) for r in rows]
    columns = {name: [rec.get(name) for rec in records] for name in schema.names}
    table = pa.Table.from_pydict(columns, schema=schema)
    with atomic_path(path) as tmp:
        pq.write_table(table, tmp)
    return location(path)


def read_table(path: str | os.PathLike | RemotePath, columns: list[str] | None = None) -> pa.Table:
    """A Parquet file as a table; a remote file is fetched whole in one request first."""
    where = location(path)
    if isinstance(where, RemotePath):
        return pq.read_table(pa.BufferReader(where.read_bytes()), columns=columns)
    return pq.read_table(where, columns=columns)


def read_rows(path: str | os.PathLike | RemotePath) -> list[dict[str, Any]]:
    return read_table(path).to_pylist()
