"""Batched generation of TACO completions (records: docs/architecture.md; measurements: README, "Generation engine").

The unit of work is a shard: a few problems whose n samples each are generated together and
written as one Parquet file (`generations/shard-00003.parquet`) the moment they are done, so a
killed run keeps every shard it finished. A Prefect flow calls `generate_shard` once per shard;
the CLI calls `generate_run`, which skips complete shards (resume) and spreads the remaining ones
over one lane per device.

The model is loaded once per process (`load_backend`, cached by model, revision, dtype, device
and backend) and never travels through task inputs or results: the configs below are small,
frozen, hashable and JSON-serialisable.
"""

from __future__ import annotations

import json
import os
import queue
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from storage.atomic import write_json, write_text
from storage.rundir import GENERATION_CONFIG_JSON, GENERATIONS, GenerateDir, shard_content
from storage.tables import GENERATIONS_SCHEMA, read_rows, write_rows
from tasks import defaults
from tasks.types import Problem
from tasks.generation.backends import BACKENDS, DTYPES
from tasks.plan import plan_shards
from tasks.generation.backends.base import Backend, GenerationParams, ProgressFn, derive_seed
from tasks.generation.prompts import PROMPT_FORMATS, PROMPT_TACO, build_prompt, extract_code, stop_strings_for


class GenerationError(Exception):
    """A generation run cannot proceed (bad config, an output folder from another config…)."""


# --- configs -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelConfig:
    model: str  # hub id, local folder, or alias (`smollm2`)
    revision: str | None = None
    dtype: str = "auto"  # auto | float32 | float16 | bfloat16
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    backend: str = "hf"  # hf | vllm

    def __post_init__(self):
        if not isinstance(self.model, str) or not self.model.strip():
            raise ValueError("ModelConfig.model must be a non-empty string")
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, not '{self.dtype}'")
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {', '.join(BACKENDS)}, not '{self.backend}'")
        device = (self.device or "").strip().lower()
        if not (device in ("auto", "cpu", "cuda") or (device.startswith("cuda:") and device[5:].isdigit())):
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, not '{self.device}'")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SamplingConfig:
    n: int = defaults.GENERATE_N
    temperature: float = defaults.DEFAULT_TEMPERATURE  # 0 → greedy decoding
    top_p: float = defaults.DEFAULT_TOP_P
    max_tokens: int = defaults.GENERATE_MAX_TOKENS
    seed: int = defaults.DEFAULT_SEED
    prompt_format: str = PROMPT_TACO  # taco | chat
    batch_size: int | str = "auto"  # sequences per generate call, or "auto"

    def __post_init__(self):
        if isinstance(self.batch_size, str) and self.batch_size.strip().isdigit():
            object.__setattr__(self, "batch_size", int(self.batch_size))
        if not isinstance(self.n, int) or self.n < 1:
            raise ValueError(f"n must be an integer ≥ 1, not {self.n!r}")
        if not 0 <= float(self.temperature) <= 100:
            raise ValueError(f"temperature must be ≥ 0, not {self.temperature!r}")
        if not 0 < float(self.top_p) <= 1:
            raise ValueError(f"top_p must be in (0, 1], not {self.top_p!r}")
        if not isinstance(self.max_tokens, int) or self.max_tokens < 1:
            raise ValueError(f"max_tokens must be an integer ≥ 1, not {self.max_tokens!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be an integer ≥ 0, not {self.seed!r}")
        if self.prompt_format not in PROMPT_FORMATS:
            raise ValueError(f"prompt_format must be one of {', '.join(PROMPT_FORMATS)}, not '{self.prompt_format}'")
        if self.batch_size != "auto" and (not isinstance(self.batch_size, int) or self.batch_size < 1):
            raise ValueError(f"batch_size must be 'auto' or an integer ≥ 1, not {self.batch_size!r}")

    @property
    def greedy(self) -> bool:
        return float(self.temperature) == 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def params(self, shard_id: int) -> GenerationParams:
        """Backend parameters for one shard: its seed is derived from the base seed and shard id."""
        return GenerationParams(
            n=self.n,
            temperature=float(self.temperature),
            top_p=float(self.top_p),
            max_tokens=self.max_tokens,
            seed=shard_seed(self.seed, shard_id),
            batch_size=self.batch_size,
            stop_strings=stop_strings_for(self.prompt_format),
        )


def shard_seed(base_seed: int, shard_id: int) -> int:
    return derive_seed(base_seed, shard_id)


@dataclass
class ShardStats:
    shard_id: int
    problems: int
    samples: int
    tokens: int  # tokens actually generated (greedy runs generate once per problem)
    wall_s: float
    tokens_per_s: float
    batch_size: int | None  # the batch size in force at the end of the shard
    peak_gpu_memory_bytes: int | None = None
    path: str = ""
    device: str = ""
    skipped: bool = False  # already complete on disk (resume)
    generation_path: str = ""  # "fast" | "fallback" (hf: parts of its fast path do not apply) | "vllm"
    generation_path_reason: str = ""  # why, for "fallback"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- the model cache ---------------------------------------------------------------------------

_BACKENDS: dict[tuple, Backend] = {}
_BACKENDS_LOCK = threading.Lock()
_KEY_LOCKS: dict[tuple, threading.Lock] = {}


def _concrete_device(device: str) -> str:
    from tasks.generation.backends.hf import resolve_device

    return resolve_device(device)


def _cache_key(model_cfg: ModelConfig) -> tuple:
    device = model_cfg.device if model_cfg.backend == "vllm" else _concrete_device(model_cfg.device)
    return (model_cfg.backend, model_cfg.model, model_cfg.revision, model_cfg.dtype, device)


def load_backend(model_cfg: ModelConfig, *, quiet: bool = False) -> Backend:
    """The backend for this model config, loaded once per process and then reused."""
    key = _cache_key(model_cfg)
    with _BACKENDS_LOCK:
        if key in _BACKENDS:
            return _BACKENDS[key]
        key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with key_lock:  # two lanes asking for the same model load it once
        with _BACKENDS_LOCK:
            if key in _BACKENDS:
                return _BACKENDS[key]
        from tasks.generation.models import resolve_model

        path = resolve_model(model_cfg.model)
        if model_cfg.backend == "vllm":
            from tasks.generation.backends.vllm import VLLMBackend

            backend: Backend = VLLMBackend(path, model_cfg.revision, model_cfg.dtype, model_cfg.device, quiet=quiet)
        else:
            from tasks.generation.backends.hf import HFBackend

            backend = HFBackend(path, model_cfg.revision, model_cfg.dtype, key[-1], quiet=quiet)
        with _BACKENDS_LOCK:
            _BACKENDS[key] = backend
        return backend


def clear_backend_cache() -> None:
    with _BACKENDS_LOCK:
        _BACKENDS.clear()
        _KEY_LOCKS.clear()


# --- one shard ---------------------------------------------------------------------------------


def build_prompts(problems: Sequence[Problem], prompt_format: str, tokenizer: Any = None) -> list[str]:
    return [build_prompt(p, prompt_format, tokenizer) for p in problems]


def generate_shard(
    problems: list[Problem],
    model_cfg: ModelConfig,
    sampling_cfg: SamplingConfig,
    shard_id: int,
    out_path: str | os.PathLike,
    progress: ProgressFn | None = None,
) -> ShardStats:
    """Generate `sampling_cfg.n` samples for each problem and write them, atomically, as one
    Parquet file (GENERATIONS_SCHEMA, one row per sample)."""
    backend = load_backend(model_cfg)
    prompts = build_prompts(problems, sampling_cfg.prompt_format, backend.tokenizer)
    params = sampling_cfg.params(shard_id)
    backend.reset_peak_memory()
    start = time.perf_counter()
    samples = backend.generate(prompts, params, progress) if problems else []
    wall = time.perf_counter() - start
    rows = []
    tokens = 0
    for problem, per_problem in zip(problems, samples):
        for idx, s in enumerate(per_problem):
            rows.append(
                {
                    "task_id": problem.task_id,
                    "problem_id": problem.problem_id,
                    "sample_idx": idx,
                    "completion": s.text,
                    "code": extract_code(s.text, sampling_cfg.prompt_format),
                    "num_tokens": s.num_tokens,
                    "finish_reason": s.finish_reason,
                    "seed": s.seed,
                    "batch_size": s.batch_size,
                }
            )
        tokens += (
            per_problem[0].num_tokens if sampling_cfg.greedy and per_problem else sum(s.num_tokens for s in per_problem)
        )
    write_rows(out_path, rows, GENERATIONS_SCHEMA)
    size = backend.batch_size_in_use
    if size is None and rows:
        size = rows[-1]["batch_size"]
    path, reason = backend.generation_path
    return ShardStats(
        shard_id=shard_id,
        problems=len(problems),
        samples=len(rows),
        tokens=tokens,
        wall_s=wall,
        tokens_per_s=tokens / wall if wall > 0 else 0.0,
        batch_size=size,
        peak_gpu_memory_bytes=backend.peak_memory_bytes(),
        path=str(out_path),
        device=backend.device,
        generation_path=path,
        generation_path_reason=reason,
    )


# --- TACO's generations.json ---------------------------------------------------------------------


def taco_generations(rows: Iterable[dict[str, Any]], prompts: dict[int, str] | None = None) -> list[dict[str, Any]]:
    """Rows → TACO's `[{"task_id", "prompt", "output": [code, …]}]`, by task id then sample."""
    by_task: dict[int, list[tuple[int, str]]] = {}
    for row in rows:
        by_task.setdefault(int(row["task_id"]), []).append((int(row["sample_idx"]), row["code"]))
    out = []
    for task_id in sorted(by_task):
        entry: dict[str, Any] = {"task_id": task_id}
        if prompts is not None and task_id in prompts:
            entry["prompt"] = prompts[task_id]
        entry["output"] = [code for _, code in sorted(by_task[task_id])]
        out.append(entry)
    return out


def write_taco_generations_json(
    rows: Iterable[dict[str, Any]], path: str | os.PathLike, prompts: dict[int, str] | None = None
) -> Path:
    """Write TACO's generations.json (readable by `taco-eval evaluate` and TACO's compute_metric.py)."""
    write_text(path, json.dumps(taco_generations(rows, prompts), indent=1, ensure_ascii=False) + "\n")
    return Path(path)


# --- a whole run: shards, resume, lanes ----------------------------------------------------------


def shard_path(out_dir: str | os.PathLike, shard_id: int) -> Path:
    return GenerateDir(out_dir).shard(GENERATIONS, shard_id)


def generate_plan(problems: Sequence[Problem], shard_size: int) -> list[tuple[int, list[Problem]]]:
    """`generate`'s shards, (shard id, problems): the pipeline's plan (tasks.plan.plan_shards)."""
    by_id = {p.task_id: p for p in problems}
    return [(sid, [by_id[t] for t in ids]) for sid, ids in enumerate(plan_shards(list(by_id), shard_size))]


def sealed_shard(out_dir: str | os.PathLike, shard_id: int, problems: Sequence[Problem], n: int) -> dict | None:
    """The shard's seal when it holds exactly samples 0..n-1 of these problems, else None."""
    return GenerateDir(out_dir).sealed(GENERATIONS, shard_id, shard_content([p.task_id for p in problems], n))


def run_fingerprint(model_cfg: ModelConfig, sampling_cfg: SamplingConfig, shard_size: int) -> dict[str, Any]:
    """What must match for an output folder's shards to be reused: everything that changes the
    samples except the batch size and device (both recorded per row / per shard)."""
    model = model_cfg.to_dict()
    model.pop("device")
    sampling = sampling_cfg.to_dict()
    sampling.pop("batch_size")
    return {"code_version": defaults.CODE_VERSION, "model": model, "sampling": sampling, "shard_size": shard_size}


def check_or_write_run_config(
    out_dir: str | os.PathLike, model_cfg: ModelConfig, sampling_cfg: SamplingConfig, shard_size: int
) -> None:
    path = GenerateDir(out_dir).config
    want = run_fingerprint(model_cfg, sampling_cfg, shard_size)
    if path.is_file():
        try:
            have = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError):
            have = None
        if have != want:
            diff = _describe_difference(have, want)
            raise GenerationError(
                f"{out_dir} holds generations made with other settings ({diff}); use another -o folder or delete it"
            )
        return
    write_json(path, want)


def _describe_difference(have: Any, want: dict[str, Any]) -> str:
    if not isinstance(have, dict):
        return f"unreadable {GENERATION_CONFIG_JSON}"
    diffs = []
    for section in ("model", "sampling"):
        a, b = have.get(section) or {}, want[section]
        diffs += [f"{k}: {a.get(k)!r} there, {b[k]!r} now" for k in b if a.get(k) != b[k]]
    for key in ("shard_size", "code_version"):
        if have.get(key) != want[key]:
            diffs.append(f"{key}: {have.get(key)!r} there, {want[key]!r} now")
    return "; ".join(diffs) or "different settings"


@dataclass
class RunSummary:
    shards: list[ShardStats] = field(default_factory=list)
    failed: dict[int, str] = field(default_factory=dict)
    generations_json: str | None = None
    wall_s: float = 0.0

    @property
    def generated(self) -> list[ShardStats]:
        return [s for s in self.shards if not s.skipped]

    @property
    def tokens(self) -> int:
        return sum(s.tokens for s in self.generated)

    @property
    def samples(self) -> int:
        return sum(s.samples for s in self.generated)

    @property
    def generation_paths(self) -> list[str]:
        """Each distinct generation path of the generated shards, with its reason when it has one."""
        return sorted(
            {
                f"{s.generation_path} ({s.generation_path_reason})" if s.generation_path_reason else s.generation_path
                for s in self.generated
            }
        )


def lane_devices(devices: Sequence[str] | None) -> list[str]:
    """One lane per distinct device; CPU (or nothing given) is a single lane."""
    if not devices:
        return ["auto"]
    lanes: list[str] = []
    for d in devices:
        d = d.strip().lower()
        if d in ("cpu", "auto"):
            d = "cpu" if d == "cpu" else "auto"
        if d not in lanes:
            lanes.append(d)
    if len(lanes) > 1 and any(d in ("cpu", "auto") for d in lanes):
        # Several lanes on one CPU only fight over its cores.
        lanes = [d for d in lanes if d not in ("cpu", "auto")] or ["cpu"]
    return lanes


def run_lanes(
    jobs: Sequence[Any], lanes: Sequence[str], work: Callable[[str, Any], Any]
) -> tuple[list[Any], dict[Any, BaseException]]:
    """Run `work(lane, job)` for every job, one worker thread per lane pulling from a shared queue
    (each job goes to exactly one lane). A failing job does not stop the others. Returns the
    results in completion order and the exceptions by job."""
    results: list[Any] = []
    errors: dict[Any, BaseException] = {}
    if len(lanes) <= 1:
        lane = lanes[0] if lanes else "auto"
        for job in jobs:
            try:
                results.append(work(lane, job))
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as exc:  # noqa: BLE001 - reported per job
                errors[job] = exc
        return results, errors

    todo: "queue.Queue[Any]" = queue.Queue()
    for job in jobs:
        todo.put(job)
    lock = threading.Lock()
    stop = threading.Event()

    def lane_loop(lane: str) -> None:
        while not stop.is_set():
            try:
                job = todo.get_nowait()
            except queue.Empty:
                return
            try:
                res = work(lane, job)
                with lock:
                    results.append(res)
            except Exception as exc:  # noqa: BLE001
                with lock:
                    errors[job] = exc

    threads = [threading.Thread(target=lane_loop, args=(lane,), name=f"lane-{lane}", daemon=True) for lane in lanes]
    for t in threads:
        t.start()
    try:
        for t in threads:
            while t.is_alive():
                t.join(timeout=0.2)
    except KeyboardInterrupt:
        stop.set()
        raise
    return results, errors


def generate_run(
    problems: Sequence[Problem],
    model_cfg: ModelConfig,
    sampling_cfg: SamplingConfig,
    out_dir: str | os.PathLike,
    *,
    shard_size: int = defaults.GENERATE_SHARD_SIZE,
    devices: Sequence[str] | None = None,
    progress: ProgressFn | None = None,
    on_shard: Callable[[ShardStats], None] | None = None,
    write_json_file: bool = True,
) -> RunSummary:
    """Generate every shard not already complete under `out_dir`, then write generations.json.

    Shards are written as they finish; a shard that fails is reported in `RunSummary.failed`
    while the others go on (the caller decides whether that fails the run).
    """
    start = time.perf_counter()
    out_dir = Path(out_dir)
    check_or_write_run_config(out_dir, model_cfg, sampling_cfg, shard_size)
    summary = RunSummary()
    plan = generate_plan(problems, shard_size)
    todo = []
    for shard_id, shard in plan:
        path = shard_path(out_dir, shard_id)
        if sealed_shard(out_dir, shard_id, shard, sampling_cfg.n) is not None:
            summary.shards.append(
                ShardStats(
                    shard_id, len(shard), len(shard) * sampling_cfg.n, 0, 0.0, 0.0, None, path=str(path), skipped=True
                )
            )
        else:
            todo.append(shard_id)
    shards = dict(plan)
    lanes = lane_devices(devices if devices else [model_cfg.device])

    def work(lane: str, shard_id: int) -> ShardStats:
        cfg = ModelConfig(model_cfg.model, model_cfg.revision, model_cfg.dtype, lane, model_cfg.backend)
        shard = shards[shard_id]
        stats = generate_shard(shard, cfg, sampling_cfg, shard_id, shard_path(out_dir, shard_id), progress)
        GenerateDir(out_dir).seal(
            GENERATIONS, shard_id, asdict(stats), shard_content([p.task_id for p in shard], sampling_cfg.n)
        )
        if on_shard is not None:
            on_shard(stats)
        return stats

    done, errors = run_lanes(todo, lanes, work)
    summary.shards.extend(done)
    summary.shards.sort(key=lambda s: s.shard_id)
    summary.failed = {job: _one_line(exc) for job, exc in errors.items()}
    if write_json_file and not summary.failed:
        summary.generations_json = str(
            write_run_generations_json(out_dir, problems, model_cfg, sampling_cfg, shard_size)
        )
    summary.wall_s = time.perf_counter() - start
    return summary


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}"


def prompt_tokenizer(model_cfg: ModelConfig):
    """A tokenizer for rendering chat prompts: the loaded backend's if there is one, else the
    tokenizer alone (no model load)."""
    with _BACKENDS_LOCK:
        for key, backend in _BACKENDS.items():
            if key[:4] == (model_cfg.backend, model_cfg.model, model_cfg.revision, model_cfg.dtype):
                return backend.tokenizer
    from transformers import AutoTokenizer

    from tasks.generation.models import resolve_model

    return AutoTokenizer.from_pretrained(resolve_model(model_cfg.model), revision=model_cfg.revision)


def write_run_generations_json(
    out_dir: str | os.PathLike,
    problems: Sequence[Problem],
    model_cfg: ModelConfig,
    sampling_cfg: SamplingConfig,
    shard_size: int,
) -> Path:
    """TACO's generations.json from the folder's planned shards (never a stale shard left over
    from another selection)."""
    rows = [
        row for shard_id, _ in generate_plan(problems, shard_size) for row in read_rows(shard_path(out_dir, shard_id))
    ]
    tokenizer = prompt_tokenizer(model_cfg) if sampling_cfg.prompt_format != PROMPT_TACO else None
    prompts = {p.task_id: build_prompt(p, sampling_cfg.prompt_format, tokenizer) for p in problems}
    return write_taco_generations_json(rows, GenerateDir(out_dir).generations_json, prompts)


# --- find-batch-size -----------------------------------------------------------------------------

PROBE_SIZES = (1, 2, 4, 8, 16, 32)


@dataclass
class BatchSearch:
    device: str
    results: list[Any]  # ProbeResult per size tried (or skipped)
    best: int | None
    criterion: str  # "largest that fits" (GPU) | "best tokens/s" (CPU)


def find_batch_size(
    model_cfg: ModelConfig,
    prompt: str,
    max_tokens: int = 64,
    sizes: Sequence[int] = PROBE_SIZES,
    report: Callable[[Any], None] | None = None,
) -> BatchSearch:
    """Try batch sizes from small to large with a prompt and a fixed generation length.

    On a GPU: stop at the first out-of-memory error (caught, the cache emptied: nothing crashes)
    and report the largest size that fitted. On CPU (no OOM signal: the machine would swap or the
    kernel would kill us), skip sizes whose estimated memory exceeds half the free RAM and report
    the size with the best tokens/s.
    """
    if model_cfg.backend != "hf":
        raise GenerationError("find-batch-size measures the hf backend (vLLM sizes its batches itself)")
    from tasks.generation.backends.hf import ProbeResult

    backend = load_backend(model_cfg)
    on_gpu = backend.device.startswith("cuda")
    prompt_len = len(backend.encode(prompt))
    fits = backend.max_fitting_batch(prompt_len + max_tokens)
    backend.probe(prompt, 1, min(4, max_tokens))  # warm-up: first calls pay one-off costs
    results: list[Any] = []
    for size in sorted(set(int(s) for s in sizes)):
        if not on_gpu and fits is not None and size > fits:
            res = ProbeResult(
                size,
                False,
                note=f"skipped: would need ~{size * backend.sequence_bytes(prompt_len + max_tokens) / 2**30:.1f} GiB",
            )
            results.append(res)
            if report:
                report(res)
            break
        res = backend.probe(prompt, size, max_tokens)
        results.append(res)
        if report:
            report(res)
        if not res.ok:
            break
    ok = [r for r in results if r.ok]
    if not ok:
        best = None
    elif on_gpu:
        best = max(r.batch_size for r in ok)
    else:
        best = max(ok, key=lambda r: r.tokens_per_s).batch_size
    return BatchSearch(backend.device, results, best, "largest that fits" if on_gpu else "best tokens/s")
