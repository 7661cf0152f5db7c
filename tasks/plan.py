"""A run's configuration, its identity (what changes the numbers) and its shard plan."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence, TypeVar

from tasks import defaults
from tasks.types import JudgeConfig

T = TypeVar("T")


@dataclass(frozen=True)
class DatasetSpec:
    source: str = "samples"
    split: str = "test"
    revision: str | None = None
    difficulties: tuple[str, ...] | None = None
    skills: tuple[str, ...] | None = None
    task_ids: tuple[int, ...] | None = None
    limit: int | None = None
    special_judges: str = "auto"


@dataclass(frozen=True)
class RunConfig:
    """Every parameter of `taco-eval run` / the `taco-eval` flow."""

    dataset: DatasetSpec = field(default_factory=DatasetSpec)
    model: str = defaults.DEFAULT_MODEL
    model_revision: str | None = None
    torch_dtype: str = "auto"
    device: str = "auto"
    devices: tuple[str, ...] | None = None
    backend: str = "hf"
    n: int = defaults.RUN_N
    temperature: float = defaults.DEFAULT_TEMPERATURE
    top_p: float = defaults.DEFAULT_TOP_P
    max_tokens: int = defaults.RUN_MAX_TOKENS
    seed: int = defaults.DEFAULT_SEED
    prompt_format: str = defaults.DEFAULT_PROMPT_FORMAT
    batch_size: int | str = "auto"
    judge: JudgeConfig = field(default_factory=JudgeConfig)
    workers: int | None = None
    ks: tuple[int, ...] = defaults.DEFAULT_KS
    shard_size: int = defaults.RUN_SHARD_SIZE
    output_dir: str = defaults.RUN_OUTPUT_DIR

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def model_fingerprint(model: str, revision: str | None) -> str:
    """A local folder: names, sizes and mtimes of its files; a hub id: the revision asked for."""
    path = Path(os.path.expanduser(model))
    if not path.is_dir():
        return f"{model}@{revision or 'main'}"
    digest = hashlib.sha256()
    for f in sorted(p for p in path.rglob("*") if p.is_file()):
        st = f.stat()
        digest.update(f"{f.relative_to(path)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return f"local:{digest.hexdigest()[:16]}"


def run_identity(cfg: RunConfig, dataset_fingerprint: str, model_fp: str) -> dict[str, Any]:
    """Everything that changes the numbers (and nothing that does not: paths, workers)."""
    return {
        "code_version": defaults.CODE_VERSION,
        "dataset": dataset_fingerprint,
        "model": model_fp,
        "dtype": cfg.torch_dtype,
        "backend": cfg.backend,
        "sampling": {k: getattr(cfg, k) for k in ("n", "temperature", "top_p", "max_tokens", "seed", "prompt_format")},
        "judge": dataclasses.asdict(cfg.judge),
        "shard_size": cfg.shard_size,
    }


def chunks(items: Sequence[T], shard_size: int) -> list[list[T]]:
    """The one shard rule, for the flow's run folders and `generate`'s folders alike: consecutive
    runs of `shard_size` items in the order given; shard k is the k-th run."""
    if shard_size < 1:
        raise ValueError(f"shard size must be at least 1, got {shard_size}")
    return [list(items[i : i + shard_size]) for i in range(0, len(items), shard_size)]


def plan_shards(task_ids: list[int], shard_size: int) -> list[list[int]]:
    """A run's shards: its task ids in ascending order, `shard_size` to a shard."""
    return chunks(sorted(task_ids), shard_size)
