"""Read a scored run folder for reports: metrics, manifest, per-sample results, per-problem metadata.

Two layouts are supported:
- a pipeline run `<output>/runs/<run_id>/`: manifest.json, metrics.json, results/shard-NNNNN.parquet
  (only shards sealed by their shard-NNNNN.json with a matching checksum are read);
- a flat `taco-eval evaluate -o OUT` folder: results.parquet and metrics.json, no manifest.

Per-problem metadata (difficulty, skills, judge) is not in metrics.json; it comes, in order of
preference, from problems passed by the caller, a `dataset` to load, the folder's
`problem_info.json` (written by `write_problem_info`), or the dataset named in the manifest.
Without any, reports fall back to the aggregates in metrics.json.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any, Iterable, Sequence

from storage.atomic import write_json
from storage.fs import Location, location
from storage.tables import read_table
from storage.rundir import PROBLEM_INFO_JSON, RESULTS, RunDir

from tasks import statuses
from tasks.types import JUDGE_DEFAULT, Problem

PROBLEM_INFO = PROBLEM_INFO_JSON
# The result columns reports use (test_codes and detail are left on disk: large, unused here).
COLUMNS = ("task_id", "sample_idx", "passed", "status", "tests_run", "runtime_ms")


class RunFolderError(ValueError):
    """The folder is not a scored run (no metrics.json, no results)."""


@dataclass(frozen=True)
class ProblemInfo:
    task_id: int
    problem_id: str
    difficulty: str
    skills: tuple[str, ...]
    judge: str


@dataclass
class RunData:
    root: Location
    metrics: dict[str, Any]
    manifest: dict[str, Any] | None
    results: list[dict[str, Any]]
    problems: dict[int, ProblemInfo] | None
    problems_source: str | None
    layout: str  # "run" | "flat"
    notes: list[str] = field(default_factory=list)
    _counts: dict[int, tuple[int, int]] | None = field(default=None, repr=False)

    @property
    def run_id(self) -> str:
        return (self.manifest or {}).get("run_id") or self.root.name

    @property
    def config(self) -> dict[str, Any]:
        return (self.manifest or {}).get("config") or {}

    @property
    def model(self) -> str | None:
        return self.config.get("model")

    @property
    def ks(self) -> list[int]:
        return list(self.metrics.get("ks") or [])

    def counts(self) -> dict[int, tuple[int, int]]:
        """task_id → (samples, passed) for scored problems (skipped samples, and tasks outside the
        problem set, left out): the set metrics.json was computed on. Computed once."""
        if self._counts is None:
            raw: dict[int, list[int]] = {}
            for r in self.results:
                if r["status"] == statuses.SKIPPED:
                    continue
                nc = raw.setdefault(r["task_id"], [0, 0])
                nc[0] += 1
                nc[1] += bool(r["passed"])
            if self.problems is not None:
                keep = set(self.problems)
            else:
                keep = set(raw) - set(self.metrics.get("unknown_task_ids") or [])
            self._counts = {t: (n, c) for t, (n, c) in raw.items() if t in keep}
        return self._counts


def _read_json(path: Location) -> Any:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise RunFolderError(f"cannot read {path}: {exc}") from exc


def problem_infos(problems: Iterable[Problem]) -> dict[int, ProblemInfo]:
    return {p.task_id: ProblemInfo(p.task_id, p.problem_id, p.difficulty, tuple(p.skills), p.judge) for p in problems}


def write_problem_info(run_dir: str | os.PathLike | Location, problems: Iterable[Problem]) -> Location:
    """Write `problem_info.json` (task_id, problem_id, difficulty, skills, judge per problem) into
    the run folder, so reports can be re-rendered later without loading the dataset."""
    path = location(run_dir) / PROBLEM_INFO
    write_json(
        path,
        [
            {
                "task_id": i.task_id,
                "problem_id": i.problem_id,
                "difficulty": i.difficulty,
                "skills": list(i.skills),
                "judge": i.judge,
            }
            for i in sorted(problem_infos(problems).values(), key=lambda i: i.task_id)
        ],
    )
    return path


def _read_problem_info(path: Location) -> dict[int, ProblemInfo] | None:
    data = _read_json(path)
    if not isinstance(data, list):
        return None
    return {
        int(d["task_id"]): ProblemInfo(
            int(d["task_id"]),
            str(d.get("problem_id", "")),
            str(d.get("difficulty", "UNKNOWN")),
            tuple(d.get("skills") or ()),
            str(d.get("judge", JUDGE_DEFAULT)),
        )
        for d in data
    }


def _load_dataset(source: str, split: str, spec: dict[str, Any] | None = None) -> dict[int, ProblemInfo]:
    from tasks.problems import load_problems

    spec = spec or {}
    loaded = load_problems(
        source,
        split,
        revision=spec.get("revision"),
        difficulties=spec.get("difficulties"),
        skills=spec.get("skills"),
        task_ids=spec.get("task_ids"),
        limit=spec.get("limit"),
        special_judges=spec.get("special_judges") or "auto",
    )
    return problem_infos(loaded.problems)


def _read_columns(path: Location) -> list[dict[str, Any]]:
    try:
        return read_table(path, columns=list(COLUMNS)).to_pylist()
    except (OSError, ValueError, KeyError) as exc:  # pyarrow errors derive from these
        raise RunFolderError(f"cannot read {path}: {exc}") from exc


def read_results(root: Location) -> tuple[list[dict[str, Any]], str, list[str]]:
    """(rows, layout, notes): sealed result shards of a run folder, or a flat results.parquet."""
    notes: list[str] = []
    shard_files = sorted((root / RESULTS).glob("shard-*.parquet"))
    if shard_files:
        rundir, rows = RunDir(root), []
        for path in shard_files:
            try:
                shard_id = int(path.stem.split("-", 1)[1])
            except ValueError:
                continue
            if rundir.sealed(RESULTS, shard_id) is None:
                notes.append(f"{path.name} is not sealed (unfinished or corrupt): left out")
                continue
            rows.extend(_read_columns(path))
        return rows, "run", notes
    flat = RunDir(root).flat_results
    if flat.exists():
        return _read_columns(flat), "flat", notes
    raise RunFolderError(f"{root} has neither results/shard-*.parquet nor results.parquet")


def load_run(
    run_dir: str | os.PathLike | Location,
    *,
    problems: Sequence[Problem] | None = None,
    dataset: str | None = None,
    split: str = "test",
    load_manifest_dataset: bool = True,
) -> RunData:
    """Read a run folder (see the module doc for layouts and where problem metadata comes from)."""
    root = location(run_dir)
    if not root.is_dir():
        raise RunFolderError(f"{root} is not a folder")
    metrics = _read_json(RunDir(root).metrics)
    if not isinstance(metrics, dict):
        raise RunFolderError(f"{root} has no metrics.json: not a scored run folder")
    manifest = _read_json(RunDir(root).manifest)
    results, layout, notes = read_results(root)

    infos, source = None, None
    if problems is not None:
        infos, source = problem_infos(problems), "given by the caller"
    elif dataset is not None:
        infos, source = _load_dataset(dataset, split), f"dataset {dataset}:{split}"
    elif (root / PROBLEM_INFO).exists():
        infos, source = _read_problem_info(root / PROBLEM_INFO), PROBLEM_INFO
    elif load_manifest_dataset and manifest and (manifest.get("config") or {}).get("dataset"):
        spec = manifest["config"]["dataset"]
        try:
            infos = _load_dataset(spec["source"], spec.get("split", "test"), spec)
            source = f"dataset {spec['source']}:{spec.get('split', 'test')} (from the manifest)"
        except Exception as exc:  # noqa: BLE001 - any loader failure only costs the per-problem views
            notes.append(f"could not load the manifest's dataset for per-problem metadata: {exc}")
    if infos is None:
        notes.append(
            "no per-problem metadata (difficulty, skills, judge): tables come from metrics.json "
            "without confidence intervals; pass --dataset to add them"
        )
    return RunData(
        root, metrics, manifest if isinstance(manifest, dict) else None, results, infos, source, layout, notes
    )
