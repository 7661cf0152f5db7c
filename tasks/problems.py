"""Load TACO-schema problems from the hub, a local file or folder, and normalise them.

TACO rows carry `input_output` as a JSON string and `skill_types` / `tags` as Python-literal
strings. Rows that cannot be judged (bad JSON, mismatched inputs/outputs, no tests) are returned
as `MalformedRow`s with their index and reason instead of stopping the run.
"""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import json
import os
import threading
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Sequence

from tasks.types import (
    JUDGE_CASE_INSENSITIVE,
    JUDGE_DEFAULT,
    JUDGE_FLOAT_TOLERANCE,
    JUDGE_NONDETERMINISTIC,
    JUDGES,
    MODE_CALL,
    MODE_STDIN,
    MalformedRow,
    Problem,
)
from tasks.tolerance import stated_tolerance

SAMPLES = "samples"  # name of the embedded default dataset
TACO_HUB_ID = "BAAI/TACO"
TACO_TEST_ROWS = 1000
_SPJ_CASE_TO_JUDGE = {
    0: JUDGE_DEFAULT,
    1: JUDGE_NONDETERMINISTIC,
    2: JUDGE_CASE_INSENSITIVE,
    3: JUDGE_FLOAT_TOLERANCE,
}
_DATA_SUFFIXES = (".arrow", ".parquet")


class DatasetError(Exception):
    """A dataset that cannot be read at all (as opposed to a malformed row)."""


@dataclass(frozen=True)
class ReferenceSolutions:
    """A row's `solutions` (TACO: a JSON string holding a list of programs): how many it has, the
    first few, or why they cannot be read."""

    total: int = 0
    codes: tuple[str, ...] = ()
    error: str | None = None


@dataclass
class LoadedProblems:
    problems: list[Problem]
    malformed: list[MalformedRow]
    source: str
    split: str
    revision: str | None = None
    rows_in_split: int = 0
    special_judges_applied: bool = False
    filters: dict[str, Any] = field(default_factory=dict)
    # task_id → the row's own reference solutions; loaded only when asked (`max_solutions`).
    solutions: dict[int, ReferenceSolutions] = field(default_factory=dict)

    def fingerprint(self) -> str:
        """Content hash of exactly the problems that will be scored."""
        digest = hashlib.sha256()
        for p in self.problems:
            digest.update(f"{p.task_id}:{p.problem_id}:{p.content_hash()}\n".encode())
            digest.update(hashlib.sha256(p.question.encode("utf-8", "replace")).digest())
        for m in self.malformed:
            digest.update(f"malformed:{m.index}\n".encode())
        return digest.hexdigest()

    def manifest_record(self) -> dict[str, Any]:
        """The manifest's `dataset` section: which data was scored (the pipeline and `evaluate`)."""
        return {
            "fingerprint": self.fingerprint(),
            "revision": self.revision,
            "rows_in_split": self.rows_in_split,
            "special_judges_applied": self.special_judges_applied,
        }

    @property
    def is_filtered(self) -> bool:
        return any(v is not None for v in self.filters.values())

    def by_task_id(self) -> dict[int, Problem]:
        return {p.task_id: p for p in self.problems}


# --- reading raw rows ------------------------------------------------------------------------


def _read_jsonl(path: Path) -> list[Any]:
    rows: list[Any] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, 1):
            if not raw.strip():
                continue
            try:
                rows.append(json.loads(raw.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError) as exc:
                # Keep the row's position so the report names it; normalise() rejects it.
                rows.append(_BadRow(f"line {lineno} is not valid UTF-8 JSON: {exc}"))
    return rows


@dataclass(frozen=True)
class _BadRow:
    reason: str


def _read_json(path: Path) -> list[Any]:
    try:
        data = json.loads(path.read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path}: not valid UTF-8 JSON ({exc}); expected a list of TACO rows") from exc
    if isinstance(data, dict) and isinstance(data.get("data"), list):
        data = data["data"]
    if not isinstance(data, list):
        raise DatasetError(f"{path}: expected a JSON list of TACO rows, got {type(data).__name__}")
    return data


def _read_table_files(files: Sequence[Path]) -> list[dict[str, Any]]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows: list[dict[str, Any]] = []
    for f in files:
        try:
            if f.suffix == ".parquet":
                table = pq.read_table(f)
            else:
                # `save_to_disk` / hub `.arrow` files are Arrow IPC streams.
                with pa.memory_map(str(f)) as source:
                    try:
                        table = pa.ipc.open_stream(source).read_all()
                    except pa.ArrowInvalid:
                        table = pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowException) as exc:
            raise DatasetError(f"{f}: cannot read as {f.suffix[1:]} ({exc})") from exc
        rows.extend(table.to_pylist())
    return rows


def _split_files(folder: Path, split: str) -> list[Path]:
    """Data files of `split` in a folder laid out like a hub repo or a `save_to_disk` dir."""
    found = []
    for f in sorted(folder.rglob("*")):
        if f.suffix not in _DATA_SUFFIXES or not f.is_file():
            continue
        rel = f.relative_to(folder)
        stem = rel.name.split(".")[0]
        if split in rel.parts[:-1] or stem == split or stem.startswith(f"{split}-"):
            found.append(f)
    return found


def _read_folder(folder: Path, split: str) -> list[dict[str, Any]]:
    files = _split_files(folder, split)
    if not files:
        # A single-split `save_to_disk` folder holds its files at the top level.
        if (folder / "state.json").exists():
            files = sorted(p for p in folder.glob("*.arrow"))
    if not files:
        raise DatasetError(
            f"{folder}: no .arrow or .parquet data files for split '{split}' "
            f"(looked for '{split}/…', '{split}-*.parquet', '{split}.parquet'); pass --split"
        )
    return _read_table_files(files)


def _read_hub(repo_id: str, split: str, revision: str | None) -> tuple[list[dict[str, Any]], str]:
    """Download the split's data files of a hub dataset (loading scripts are not run)."""
    from huggingface_hub import HfApi, hf_hub_download

    api = HfApi()
    try:
        info = api.dataset_info(repo_id, revision=revision)
    except Exception as exc:  # network, auth, 404: all end the same way for the user
        raise DatasetError(f"cannot reach hub dataset '{repo_id}': {exc}") from exc
    resolved = info.sha or revision or "main"
    for rev in (resolved, "refs/convert/parquet"):
        files = [
            f for f in api.list_repo_files(repo_id, repo_type="dataset", revision=rev) if f.endswith(_DATA_SUFFIXES)
        ]
        wanted = [f for f in files if split in Path(f).parts[:-1] or Path(f).name.startswith(f"{split}")]
        if wanted:
            local = [Path(hf_hub_download(repo_id, f, repo_type="dataset", revision=rev)) for f in sorted(wanted)]
            return _read_table_files(local), rev
    raise DatasetError(f"hub dataset '{repo_id}' has no data files for split '{split}'")


def read_raw_rows(source: str, split: str = "test", revision: str | None = None) -> tuple[list[Any], str | None]:
    """Raw TACO rows of one split, in order, and the resolved revision (hub only)."""
    if source == SAMPLES:
        text = resources.files("tasks").joinpath("data/sample_problems.jsonl")
        with resources.as_file(text) as path:
            return _read_jsonl(path), None
    path = Path(os.path.expanduser(source))
    if path.is_dir():
        if (path / "dataset_dict.json").exists() or (path / "state.json").exists():
            return _read_save_to_disk(path, split), None
        return _read_folder(path, split), None
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".jsonl":
            return _read_jsonl(path), None
        if suffix == ".json":
            return _read_json(path), None
        if suffix in _DATA_SUFFIXES:
            return _read_table_files([path]), None
        raise DatasetError(f"{path}: unsupported file type '{suffix}'; use .jsonl, .json, .parquet or .arrow")
    if source.count("/") == 1 and not source.startswith((".", "/", "~")):
        rows, rev = _read_hub(source, split, revision)
        return rows, rev
    raise DatasetError(f"dataset '{source}' is neither a local file/folder nor a hub id like '{TACO_HUB_ID}'")


def _read_save_to_disk(path: Path, split: str) -> list[dict[str, Any]]:
    import datasets

    try:
        ds = datasets.load_from_disk(str(path))
    except Exception as exc:
        raise DatasetError(f"{path}: cannot load with datasets.load_from_disk ({exc})") from exc
    if isinstance(ds, datasets.DatasetDict):
        if split not in ds:
            raise DatasetError(f"{path}: no split '{split}' (has: {', '.join(ds)}); pass --split")
        ds = ds[split]
    return ds.to_list()


# --- normalising -----------------------------------------------------------------------------


def _literal_list(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        try:
            value = ast.literal_eval(value) if value.strip() else []
        except (ValueError, SyntaxError):
            return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return (str(value),)


def _as_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return "\n".join(value)
    return json.dumps(value) if not isinstance(value, (int, float)) else str(value)


def normalise_row(index: int, row: Any, split: str, judge_override: str | None = None) -> Problem | MalformedRow:
    """One raw TACO row → Problem, or MalformedRow saying what is wrong with it."""
    problem_id = f"{split}/{index}"
    if isinstance(row, _BadRow):
        return MalformedRow(index, problem_id, row.reason)
    if not isinstance(row, dict):
        return MalformedRow(index, problem_id, f"row is a {type(row).__name__}, not an object")
    problem_id = str(row.get("problem_id") or row.get("id") or problem_id)
    io_raw = row.get("input_output")
    if io_raw is None or io_raw == "":
        return MalformedRow(index, problem_id, "missing 'input_output'")
    if isinstance(io_raw, (str, bytes)):
        try:
            io = json.loads(io_raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return MalformedRow(index, problem_id, f"'input_output' is not valid JSON ({exc})")
    else:
        io = io_raw
    if not isinstance(io, dict):
        return MalformedRow(index, problem_id, "'input_output' is not a JSON object")
    inputs, outputs = io.get("inputs"), io.get("outputs")
    if not isinstance(inputs, list) or not isinstance(outputs, list):
        return MalformedRow(index, problem_id, "'input_output' lacks 'inputs'/'outputs' lists")
    if len(inputs) != len(outputs):
        return MalformedRow(index, problem_id, f"{len(inputs)} inputs but {len(outputs)} outputs")
    if not inputs:
        return MalformedRow(index, problem_id, "no tests")
    fn_name = io.get("fn_name")
    if fn_name is not None and (not isinstance(fn_name, str) or not fn_name.isidentifier()):
        return MalformedRow(index, problem_id, f"'fn_name' {fn_name!r} is not a Python identifier")
    if fn_name:
        mode = MODE_CALL
        inputs = [args if isinstance(args, list) else [args] for args in inputs]
    else:
        mode = MODE_STDIN
        inputs = [_as_text(x) for x in inputs]
        outputs = [_as_text(y) for y in outputs]
    judge = row.get("judge") if row.get("judge") in JUDGES else (judge_override or JUDGE_DEFAULT)
    skills = _literal_list(row.get("skill_types"))
    question = str(row.get("question") or "")
    return Problem(
        task_id=index,
        problem_id=problem_id,
        question=question,
        starter_code=str(row.get("starter_code") or ""),
        fn_name=fn_name or None,
        mode=mode,
        inputs=inputs,
        outputs=outputs,
        difficulty=str(row.get("difficulty") or "UNKNOWN_DIFFICULTY"),
        skills=skills,
        judge=judge,
        source=str(row.get("source") or ""),
        float_tolerance=stated_tolerance(question),
    )


def reference_solutions(row: Any, keep: int) -> ReferenceSolutions:
    """The first `keep` of a raw row's reference solutions and their total count."""
    raw = row.get("solutions") if isinstance(row, dict) else None
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return ReferenceSolutions()
    if isinstance(raw, (str, bytes)):
        try:
            raw = json.loads(raw)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            return ReferenceSolutions(error=f"'solutions' is not valid JSON ({exc})")
    if not isinstance(raw, list) or not all(isinstance(code, str) for code in raw):
        return ReferenceSolutions(error="'solutions' is not a list of program texts")
    return ReferenceSolutions(len(raw), tuple(raw[:keep]))


_LOADED: dict[Any, LoadedProblems] = {}
_LOADED_LOCK = threading.Lock()


def load_spec(spec: Any) -> LoadedProblems:
    """`load_problems` for a `tasks.plan.DatasetSpec`, loaded once per process (flows' tasks run in
    threads of one process and must not pass problems through Prefect)."""
    with _LOADED_LOCK:
        if spec not in _LOADED:
            _LOADED[spec] = load_problems(
                spec.source,
                spec.split,
                revision=spec.revision,
                difficulties=spec.difficulties,
                skills=spec.skills,
                task_ids=spec.task_ids,
                limit=spec.limit,
                special_judges=spec.special_judges,
            )
        return _LOADED[spec]


def narrow(loaded: LoadedProblems, task_ids: Iterable[int]) -> LoadedProblems:
    """`loaded` with only the rows in `task_ids`: what loading its selection with those task ids
    (and no limit) gives."""
    keep = set(task_ids)
    return dataclasses.replace(
        loaded,
        problems=[p for p in loaded.problems if p.task_id in keep],
        malformed=[m for m in loaded.malformed if m.index in keep],
        filters={**loaded.filters, "task_ids": sorted(keep), "limit": None},
        solutions={t: s for t, s in loaded.solutions.items() if t in keep},
    )


def narrow_spec(spec: Any, task_ids: Iterable[int]) -> Any:
    """`spec`'s selection (filters and limit applied) narrowed to `task_ids`, as a spec of its own;
    its problems are taken from `load_spec(spec)`, not read again."""
    keep = sorted(set(task_ids))
    narrowed = dataclasses.replace(spec, task_ids=tuple(keep), limit=None)
    base = load_spec(spec)
    with _LOADED_LOCK:
        _LOADED.setdefault(narrowed, narrow(base, keep))
    return narrowed


def taco_special_judges() -> dict[int, str]:
    """TACO's test-split special-judge list (FlagOpen/TACO output_spj.jsonl) as task_id → judge."""
    text = resources.files("tasks").joinpath("data/taco_output_spj.jsonl").read_text()
    table = {}
    for line in text.splitlines():
        if line.strip():
            rec = json.loads(line)
            table[int(rec["idx"])] = _SPJ_CASE_TO_JUDGE.get(int(rec["case"]), JUDGE_DEFAULT)
    return table


def _looks_like_taco_test(source: str, split: str, rows: list[Any]) -> bool:
    if split != "test" or len(rows) != TACO_TEST_ROWS:
        return False
    first = next((r for r in rows if isinstance(r, dict)), {})
    return "TACO" in source.upper() or {"skill_types", "raw_tags", "input_output"} <= set(first)


def load_problems(
    source: str = SAMPLES,
    split: str = "test",
    *,
    revision: str | None = None,
    difficulties: Iterable[str] | None = None,
    skills: Iterable[str] | None = None,
    task_ids: Iterable[int] | None = None,
    limit: int | None = None,
    special_judges: str = "auto",
    max_solutions: int | None = None,
) -> LoadedProblems:
    """Load one split and normalise it; filters keep task_id = row index of the full split.
    `max_solutions`: also keep up to that many of each row's reference solutions (`solutions`)."""
    rows, resolved = read_raw_rows(source, split, revision)
    if special_judges not in ("auto", "taco", "none"):
        raise DatasetError(f"--special-judges must be auto, taco or none, not '{special_judges}'")
    use_spj = special_judges == "taco" or (special_judges == "auto" and _looks_like_taco_test(source, split, rows))
    spj = taco_special_judges() if use_spj else {}

    wanted_ids = None if task_ids is None else set(int(t) for t in task_ids)
    if wanted_ids is not None:
        out_of_range = sorted(t for t in wanted_ids if not 0 <= t < len(rows))
        if out_of_range:
            raise DatasetError(f"task ids {out_of_range[:10]} are outside the split's rows 0..{len(rows) - 1}")
    diff_set = None if difficulties is None else {d.strip().upper() for d in difficulties}
    skill_set = None if skills is None else {s.strip().lower() for s in skills}

    problems: list[Problem] = []
    malformed: list[MalformedRow] = []
    solutions: dict[int, ReferenceSolutions] = {}
    for index, row in enumerate(rows):
        if wanted_ids is not None and index not in wanted_ids:
            continue
        if diff_set is not None or skill_set is not None:
            meta = row if isinstance(row, dict) else {}
            if diff_set is not None and str(meta.get("difficulty", "")).upper() not in diff_set:
                continue
            if skill_set is not None and not skill_set & {s.lower() for s in _literal_list(meta.get("skill_types"))}:
                continue
        if limit is not None and len(problems) + len(malformed) >= limit:
            break
        item = normalise_row(index, row, split, spj.get(index))
        if isinstance(item, MalformedRow) and isinstance(row, dict) and row.get("difficulty"):
            item = dataclasses.replace(item, difficulty=str(row["difficulty"]))
        (problems if isinstance(item, Problem) else malformed).append(item)
        if max_solutions is not None:
            solutions[index] = reference_solutions(row, max_solutions)
    return LoadedProblems(
        problems=problems,
        malformed=malformed,
        source=source,
        split=split,
        revision=resolved,
        rows_in_split=len(rows),
        special_judges_applied=use_spj,
        filters={
            "difficulties": sorted(diff_set) if diff_set else None,
            "skills": sorted(skill_set) if skill_set else None,
            "task_ids": sorted(wanted_ids) if wanted_ids is not None else None,
            "limit": limit,
        },
        solutions=solutions,
    )
