"""Use a dataset check in a run: which of the run's problems are usable (verified or partial), which
are left out and why, and the run's problem selection restricted to the usable ones (`--only-verified`).

A check is tied to the data it was made on by task_id, problem_id and a hash of each problem's tests:
a check of another dataset, split or version is refused, never applied to the wrong problems.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from typing import Any, Iterable

from storage.dataset_check import CheckFileError, read_check_rows
from tasks import statuses
from tasks.plan import DatasetSpec
from tasks.problems import LoadedProblems, narrow, narrow_spec
from tasks.types import Problem, sha256_text

# Why a problem of the run is not in the verified subset, besides its check status: the check
# has no row for it (it was made on a smaller selection).
NOT_CHECKED = "not_checked"
EXCLUSION_REASONS = (statuses.BROKEN, statuses.NO_SOLUTIONS, statuses.SKIPPED, NOT_CHECKED)


class DatasetCheckError(ValueError):
    """A dataset check that cannot be used for this run; the message says why and what to do."""


def tests_sha256(problem: Problem) -> str:
    """A problem's tests (mode, function name, inputs, outputs): what a check's verdict is about."""
    payload = json.dumps(
        [problem.mode, problem.fn_name, problem.inputs, problem.outputs], ensure_ascii=False, default=repr
    )
    return sha256_text(payload)


@dataclass(frozen=True)
class DatasetCheck:
    path: str
    sha256: str
    statuses: dict[int, str]  # task_id → check status
    problem_ids: dict[int, str]
    tests: dict[int, str]  # task_id → tests_sha256, for the rows that have one

    def reason(self, task_id: int) -> str | None:
        """Why `task_id` is left out of the verified subset; None if it is usable."""
        status = self.statuses.get(task_id)
        return None if status in statuses.USABLE else (status or NOT_CHECKED)

    def mismatch(self, loaded: LoadedProblems) -> str | None:
        """Why this check does not describe `loaded`'s problems (None when it does)."""
        here = {p.task_id: p.problem_id for p in loaded.problems} | {m.index: m.problem_id for m in loaded.malformed}
        fix = f"run `taco-eval check-dataset` on {loaded.source}:{loaded.split}"
        for task_id in sorted(set(here) & set(self.problem_ids)):
            if here[task_id] != self.problem_ids[task_id]:
                return (
                    f"dataset check {self.path} was made on other data: task {task_id} is "
                    f"'{self.problem_ids[task_id]}' there but '{here[task_id]}' in {loaded.source}:{loaded.split}; {fix}"
                )
        for p in loaded.problems:
            if p.task_id in self.tests and self.tests[p.task_id] != tests_sha256(p):
                return (
                    f"dataset check {self.path} was made on other data: the tests of task {p.task_id} "
                    f"({p.problem_id}) differ from the ones it checked; {fix}"
                )
        return None


def load_check(path: str | os.PathLike) -> DatasetCheck:
    """Read `dataset_check.parquet` (or the folder holding it); `DatasetCheckError` if unusable."""
    try:
        target, sha256, rows = read_check_rows(path)
    except CheckFileError as exc:
        raise DatasetCheckError(str(exc)) from exc
    found: dict[int, str] = {}
    problem_ids: dict[int, str] = {}
    tests: dict[int, str] = {}
    for row in rows:
        task_id, status = row.get("task_id"), row.get("status")
        if not isinstance(task_id, int) or status not in statuses.CHECK_STATUSES:
            raise DatasetCheckError(
                f"dataset check {target}: row {row.get('task_id')!r} has status {status!r}; expected one of "
                f"{', '.join(statuses.CHECK_STATUSES)} (write the file with `taco-eval check-dataset`)"
            )
        if task_id in found:
            raise DatasetCheckError(f"dataset check {target}: task {task_id} appears twice")
        found[task_id], problem_ids[task_id] = status, str(row.get("problem_id"))
        if row.get("tests_sha256"):
            tests[task_id] = row["tests_sha256"]
    return DatasetCheck(str(target.resolve()), sha256, found, problem_ids, tests)


@dataclass(frozen=True)
class VerifiedSelection:
    """A run's problems seen through a dataset check: the usable ones and the rest by reason."""

    check: DatasetCheck
    only_verified: bool
    usable: frozenset[int]
    excluded: dict[str, list[int]]  # reason (EXCLUSION_REASONS) → task ids, for reasons with any

    def describe(self) -> dict[str, Any]:
        """For manifest.json and metrics.json: which check, how it was used, what it left out."""
        return {
            "path": self.check.path,
            "sha256": self.check.sha256,
            "only_verified": self.only_verified,
            "usable_problems": len(self.usable),
            "excluded": {reason: len(ids) for reason, ids in self.excluded.items()},
        }


def select(check: DatasetCheck, task_ids: Iterable[int], only_verified: bool) -> VerifiedSelection:
    """Split a run's selection (its problems' and malformed rows' task ids) by the check."""
    usable, excluded = set(), {reason: [] for reason in EXCLUSION_REASONS}
    for task_id in sorted(set(task_ids)):
        reason = check.reason(task_id)
        if reason is None:
            usable.add(task_id)
        else:
            excluded[reason].append(task_id)
    return VerifiedSelection(check, only_verified, frozenset(usable), {r: ids for r, ids in excluded.items() if ids})


def selection_for(check: DatasetCheck, loaded: LoadedProblems, only_verified: bool) -> VerifiedSelection:
    """`select` over everything `loaded` selected, after checking that the check describes it."""
    problem = check.mismatch(loaded)
    if problem is not None:
        raise DatasetCheckError(problem)
    selection = select(check, [p.task_id for p in loaded.problems] + [m.index for m in loaded.malformed], only_verified)
    if only_verified and not selection.usable:
        raise DatasetCheckError(
            f"dataset check {check.path} finds none of the {len(loaded.problems) + len(loaded.malformed)} "
            "selected problems usable (verified or partial): nothing to evaluate with --only-verified"
        )
    return selection


def restrict_spec(spec: DatasetSpec, selection: VerifiedSelection) -> DatasetSpec:
    """The selection `--only-verified` runs on: exactly the usable task ids of the original one
    (its filters and limit already applied), so the run's dataset fingerprint, and with it the run
    id, differs from the unrestricted run's."""
    return narrow_spec(spec, selection.usable)


def keep_usable(loaded: LoadedProblems, selection: VerifiedSelection) -> LoadedProblems:
    """`loaded` with only the usable problems."""
    return narrow(loaded, selection.usable)
