"""The small typed records that cross module boundaries (docs/architecture.md, "Data contracts")."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

from tasks import defaults

MODE_STDIN = "stdin"
MODE_CALL = "call"

# Judge modes (rules: tasks/judging/rules.py); TACO's output_spj.jsonl `case` values map onto them.
JUDGE_DEFAULT = "default"
JUDGE_NONDETERMINISTIC = "nondeterministic"  # case 1: no checker exists, default rule applied
JUDGE_CASE_INSENSITIVE = "case_insensitive"  # case 2
JUDGE_FLOAT_TOLERANCE = "float_tolerance"  # case 3
JUDGES = (JUDGE_DEFAULT, JUDGE_NONDETERMINISTIC, JUDGE_CASE_INSENSITIVE, JUDGE_FLOAT_TOLERANCE)


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Problem:
    task_id: int  # 0-based row index in the loaded split, as TACO's scripts use
    problem_id: str
    question: str
    starter_code: str
    fn_name: str | None
    mode: str  # MODE_STDIN | MODE_CALL
    inputs: list[Any]
    outputs: list[Any]
    difficulty: str = "UNKNOWN"
    skills: tuple[str, ...] = ()
    judge: str = JUDGE_DEFAULT
    source: str = ""
    # What the statement allows float answers to be off by (tasks.tolerance); None: it says nothing.
    float_tolerance: float | None = None

    @property
    def num_tests(self) -> int:
        return len(self.inputs)

    def content_hash(self) -> str:
        """Hash of everything that decides a verdict for this problem."""
        payload = json.dumps(
            [self.mode, self.fn_name, self.inputs, self.outputs, self.judge, self.float_tolerance],
            sort_keys=True,
            ensure_ascii=False,
            default=repr,
        )
        return sha256_text(payload)


@dataclass(frozen=True)
class MalformedRow:
    index: int
    problem_id: str
    reason: str
    difficulty: str = "UNKNOWN_DIFFICULTY"  # the row's own, when it states one


@dataclass(frozen=True)
class JudgeConfig:
    """Everything besides problem and code that can change a verdict."""

    timeout_s: float = defaults.DEFAULT_TIMEOUT_S
    memory_limit_mb: int = defaults.DEFAULT_MEMORY_LIMIT_MB
    output_limit_bytes: int = defaults.DEFAULT_OUTPUT_LIMIT_BYTES
    early_stop: bool = True
    isolation: str = "process"
    # Default tolerance of decimal answers where the statement states none; 0: exact (README, "Deliberate differences…").
    float_tolerance: float = defaults.FLOAT_TOLERANCE

    def cache_key(self) -> str:
        return sha256_text(json.dumps([defaults.CODE_VERSION, dataclasses.asdict(self)], sort_keys=True))


@dataclass
class ProgramResult:
    """One row of results.parquet (storage/tables.py: RESULTS_SCHEMA)."""

    task_id: int
    sample_idx: int
    code_sha256: str
    passed: bool
    status: str
    tests_run: int
    tests_total: int
    test_codes: list[int] = field(default_factory=list)
    runtime_ms: float = 0.0
    detail: str = ""
    cached: bool = False
