"""A dataset check's folder (`taco-eval check-dataset -o OUT`): its file names, the Parquet schema of
`dataset_check.parquet` and reading it back for `--dataset-check PATH`.

Rows of `dataset_check.parquet` (one per problem): `task_id`, `problem_id`, `difficulty`,
`solutions_total`, `solutions_run`, `solutions_passed`, `status`, `tests_total`, `failing_tests`
(indices of the tests every solution run fails), `detail` (the first mismatch), `tests_sha256`
(a hash of the tests checked, so a check is never applied to other data).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable

import pyarrow as pa
import pyarrow.parquet as pq

from storage.rundir import REPORT_HTML, REPORT_MD, file_sha256
from storage.tables import write_rows

DATASET_CHECK_PARQUET = "dataset_check.parquet"
DATASET_CHECK_JSON = "dataset_check.json"

CHECK_SCHEMA = pa.schema(
    [
        ("task_id", pa.int64()),
        ("problem_id", pa.string()),
        ("difficulty", pa.string()),
        ("solutions_total", pa.int64()),
        ("solutions_run", pa.int64()),
        ("solutions_passed", pa.int64()),
        ("status", pa.string()),
        ("tests_total", pa.int64()),
        ("failing_tests", pa.list_(pa.int64())),
        ("detail", pa.string()),
        ("tests_sha256", pa.string()),  # what the problem's tests were: a check is refused for others
    ]
)
# What a file needs to be used by `--dataset-check` (the contract; the rest is extra).
REQUIRED_COLUMNS = ("task_id", "problem_id", "status")


class CheckFileError(ValueError):
    """A `--dataset-check` path that is not a readable dataset check (the message says why)."""


class CheckDir:
    """The output folder of a dataset check."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)

    @property
    def parquet(self) -> Path:
        return self.root / DATASET_CHECK_PARQUET

    @property
    def summary(self) -> Path:
        return self.root / DATASET_CHECK_JSON

    @property
    def report(self) -> Path:
        return self.root / REPORT_MD

    @property
    def report_html(self) -> Path:
        return self.root / REPORT_HTML


def write_check_rows(path: str | os.PathLike, rows: Iterable[Any]) -> Path:
    return write_rows(path, rows, CHECK_SCHEMA)


def check_file(path: str | os.PathLike) -> Path:
    """The `dataset_check.parquet` that `path` names: the file itself, or the folder holding it."""
    given = Path(os.path.expanduser(str(path)))
    target = given / DATASET_CHECK_PARQUET if given.is_dir() else given
    if not target.is_file():
        where = f"{given} has no {DATASET_CHECK_PARQUET}" if given.is_dir() else f"{given} does not exist"
        raise CheckFileError(
            f"dataset check {where}; pass the {DATASET_CHECK_PARQUET} written by `taco-eval check-dataset -o OUT` "
            "(or OUT itself)"
        )
    return target


def read_check_rows(path: str | os.PathLike) -> tuple[Path, str, list[dict[str, Any]]]:
    """(file, its sha256, rows) of a dataset check; `CheckFileError` if it is not one."""
    target = check_file(path)
    try:
        table = pq.read_table(target)
    except (OSError, pa.ArrowException) as exc:
        raise CheckFileError(f"dataset check {target} cannot be read as Parquet ({exc})") from exc
    missing = [c for c in REQUIRED_COLUMNS if c not in table.column_names]
    if missing:
        raise CheckFileError(
            f"dataset check {target} lacks the column(s) {', '.join(missing)}: not a file written by "
            "`taco-eval check-dataset`"
        )
    return target, file_sha256(target), table.to_pylist()
