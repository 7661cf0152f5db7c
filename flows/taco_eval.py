"""The `taco-eval` flow: load problems → per shard, generate (GPU lane) then execute (CPU pool),
generation of shard k+1 overlapping execution of shard k → metrics → report.

Generation runs in this process (one chained lane of tasks per local device) or on generation
lanes of a GPU work pool (`generation_lanes`); execution on this flow's threads or on a Dask
cluster (`dask_address` / `dask_workers`). Each shard's execution is submitted the moment its
generation is done (flows/shard_schedule.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
from typing import Any

from prefect import flow, get_run_logger
from prefect.filesystems import LocalFileSystem, RemoteFileSystem
from prefect.runtime import flow_run
from prefect.states import Failed

from storage.atomic import write_json
from storage.fs import is_remote, location
from storage.manifest import new_manifest
from storage.run_lock import run_lock
from storage.rundir import GENERATIONS, PREFECT_RESULTS, RESULTS, RunDir, run_id_for, shard_content
from storage.tables import read_rows
from tasks import defaults, progress
from tasks.types import JudgeConfig, MalformedRow, ProgramResult
from tasks.execution import sandbox
from tasks.execution.dask_cluster import ClusterError
from tasks.metrics import write_metrics
from tasks.plan import DatasetSpec, RunConfig, model_fingerprint, plan_shards, run_identity
from flows.shard_tasks import load_problems_task
from flows.shard_schedule import Execution, LocalGeneration, ShardWork, run_shards
from tasks.problems import load_spec
from tasks.dataset_check.subset import load_check, restrict_spec, selection_for
from flows.artifacts import publish_report_artifacts
from flows.finish import report_finished_run
from tasks.reporting.report import build_report


def _result_storage(output_dir: str) -> LocalFileSystem | RemoteFileSystem:
    """Prefect results and cache records live under the output root, in a saved block: a local
    folder, or (for an `s3://…` root) the same prefix, read and written through fsspec with the
    credentials of the process's environment (the block stores none)."""
    root = location(output_dir).resolve() / PREFECT_RESULTS
    block = RemoteFileSystem(basepath=str(root)) if is_remote(root) else LocalFileSystem(basepath=str(root))
    name = "taco-eval-results-" + hashlib.sha256(str(root).encode()).hexdigest()[:12]
    block.save(name, overwrite=True)
    return block


def _collect_results(rundir: RunDir, shard_ids: list[int]) -> tuple[list[ProgramResult], list[int]]:
    results, done = [], []
    for k in shard_ids:
        if rundir.sealed(RESULTS, k) is not None:
            results.extend(ProgramResult(**row) for row in read_rows(rundir.shard(RESULTS, k)))
            done.append(k)
    return results, done


@flow(name="taco-eval", log_prints=True)
def taco_eval_flow(
    dataset: str = "samples",
    split: str = "test",
    dataset_revision: str | None = None,
    difficulties: list[str] | None = None,
    skills: list[str] | None = None,
    task_ids: list[int] | None = None,
    limit: int | None = None,
    special_judges: str = "auto",
    model: str = defaults.DEFAULT_MODEL,
    model_revision: str | None = None,
    torch_dtype: str = "auto",
    device: str = "auto",
    devices: list[str] | None = None,
    backend: str = "hf",
    n: int = defaults.RUN_N,
    temperature: float = defaults.DEFAULT_TEMPERATURE,
    top_p: float = defaults.DEFAULT_TOP_P,
    max_tokens: int = defaults.RUN_MAX_TOKENS,
    seed: int = defaults.DEFAULT_SEED,
    prompt_format: str = defaults.DEFAULT_PROMPT_FORMAT,
    batch_size: str = "auto",
    timeout: float = defaults.DEFAULT_TIMEOUT_S,
    memory_limit_mb: int = defaults.DEFAULT_MEMORY_LIMIT_MB,
    all_tests: bool = False,
    isolation: str = "auto",
    workers: int | None = None,
    k: list[int] = list(defaults.DEFAULT_KS),
    shard_size: int = defaults.RUN_SHARD_SIZE,
    output_dir: str = defaults.RUN_OUTPUT_DIR,
    shard_ids: list[int] | None = None,
    force: bool = False,
    regression_threshold: float = defaults.REGRESSION_THRESHOLD,
    float_tolerance: float = defaults.FLOAT_TOLERANCE,
    wait_for_lock: bool = False,
    dataset_check: str | None = None,
    only_verified: bool = False,
    dask_address: str | None = None,
    dask_workers: int | None = None,
    generation_lanes: int | None = None,
    lane_queues: list[str] | None = None,
    lane_deployment: str = defaults.LANE_DEPLOYMENT,
    verdict_cache: bool = True,
) -> dict[str, Any]:
    logger = get_run_logger()
    check_scale_out(dask_address, dask_workers, generation_lanes, lane_queues, devices)
    if only_verified and not dataset_check:
        raise ValueError("only_verified needs dataset_check: the dataset_check.parquet of `taco-eval check-dataset`")
    check = load_check(dataset_check) if dataset_check else None
    cfg = RunConfig(
        dataset=DatasetSpec(
            dataset,
            split,
            dataset_revision,
            _tuple(difficulties),
            _tuple(skills),
            _tuple(task_ids),
            limit,
            special_judges,
        ),
        model=model,
        model_revision=model_revision,
        torch_dtype=torch_dtype,
        device=device,
        devices=_tuple(devices),
        backend=backend,
        n=n,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        seed=seed,
        prompt_format=prompt_format,
        batch_size=int(batch_size) if str(batch_size).isdigit() else batch_size,
        judge=JudgeConfig(
            timeout_s=timeout,
            memory_limit_mb=memory_limit_mb,
            early_stop=not all_tests,
            isolation=sandbox.resolve(isolation),
            float_tolerance=float_tolerance,
        ),
        workers=workers,
        ks=tuple(k),
        shard_size=shard_size,
        output_dir=output_dir,
    )
    dataset_dict = dataclasses.asdict(cfg.dataset)
    loaded_info = load_problems_task(dataset_dict)
    for m in loaded_info["malformed"]:
        logger.warning("skipping task %s (%s): %s", m["index"], m["problem_id"], m["reason"])
    verified = None if check is None else selection_for(check, load_spec(cfg.dataset), only_verified)
    if verified is not None and only_verified:
        # Generate and score the usable problems only: a selection of its own (and so a run id).
        cfg = dataclasses.replace(cfg, dataset=restrict_spec(cfg.dataset, verified))
        dataset_dict = dataclasses.asdict(cfg.dataset)
        loaded_info = load_problems_task(dataset_dict)
        logger.info(
            "only verified: %d usable problems; left out: %s",
            len(loaded_info["task_ids"]),
            verified.describe()["excluded"] or "none",
        )
    from tasks.generation.models import resolve_model

    model_path = resolve_model(cfg.model)
    dataset_fingerprint = loaded_info["dataset"]["fingerprint"]
    identity = run_identity(cfg, dataset_fingerprint, model_fingerprint(model_path, cfg.model_revision))
    run_id = run_id_for(identity)
    rundir = RunDir.under(cfg.output_dir, run_id)
    rundir.root.mkdir(parents=True, exist_ok=True)
    with run_lock(
        rundir.lock,
        wait=wait_for_lock,
        on_wait=lambda who: logger.info("waiting for %s, which runs this run", who),
        lease_s=defaults.RUN_LEASE_S,
    ):
        manifest = new_manifest(run_id, cfg.to_dict(), identity, code_version=defaults.CODE_VERSION)
        manifest["dataset"] = loaded_info["dataset"]
        manifest["isolation"] = sandbox.describe(cfg.judge.isolation)
        if verified is not None:
            manifest["dataset_check"] = verified.describe()
        write_json(rundir.manifest, manifest)
        logger.info("run %s in %s", run_id, rundir.root)

        shards = plan_shards(loaded_info["task_ids"], cfg.shard_size)
        chosen = set(range(len(shards))) if shard_ids is None else set(shard_ids) & set(range(len(shards)))
        storage = _result_storage(cfg.output_dir)
        model_dict = {
            "model": model_path,
            "revision": cfg.model_revision,
            "dtype": cfg.torch_dtype,
            "device": cfg.device,
            "backend": cfg.backend,
        }
        sampling = {
            "n": cfg.n,
            "temperature": cfg.temperature,
            "top_p": cfg.top_p,
            "max_tokens": cfg.max_tokens,
            "seed": cfg.seed,
            "prompt_format": cfg.prompt_format,
            "batch_size": cfg.batch_size,
        }
        work = ShardWork(
            rundir,
            shards,
            storage,
            dataset_dict,
            dataset_fingerprint,
            model_dict,
            sampling,
            dataclasses.asdict(cfg.judge),
            cfg.workers,
            verdict_cache,
        )
        fresh_gen, fresh_exec = set(), set()
        for shard_id in sorted(chosen):
            # Trust a shard only if its file matches its seal and the seal its plan; anything else
            # is recomputed.
            content = shard_content(shards[shard_id], cfg.n)
            gen_ok = not force and shard_ids is None and rundir.sealed(GENERATIONS, shard_id, content) is not None
            if not gen_ok:
                rundir.invalidate(GENERATIONS, shard_id)
                fresh_gen.add(shard_id)
            if not (gen_ok and rundir.sealed(RESULTS, shard_id) is not None):
                rundir.invalidate(RESULTS, shard_id)
                fresh_exec.add(shard_id)
        _announce_work(shards, fresh_gen, fresh_exec, cfg.n)

        with contextlib.ExitStack() as stack:
            runner = None
            try:  # a cluster or a lane deployment that cannot work stops the run before generation
                if dask_address is not None or dask_workers is not None:
                    from flows.dask_runner import dask_runner

                    runner = stack.enter_context(dask_runner(dask_address, dask_workers))
                if generation_lanes:
                    from flows.lanes import DeploymentLanes

                    generation = DeploymentLanes(
                        work, sorted(chosen), run_id, generation_lanes, lane_queues, lane_deployment
                    )
                    manifest["generation_lanes"] = {str(k): str(v) for k, v in generation.flow_runs.items()}
                else:
                    generation = LocalGeneration(
                        work, sorted(chosen), fresh_gen, list(cfg.devices) if cfg.devices else [cfg.device]
                    )
            except ClusterError as exc:
                return Failed(message=str(exc))
            failed = run_shards(run_id, sorted(chosen), generation, Execution(work, fresh_exec, runner))
        if runner is not None:
            manifest["dask"] = {"address": dask_address, "workers": dask_workers}
        loaded = load_spec(cfg.dataset)
        results, done = _collect_results(rundir, list(range(len(shards))))
        metrics = write_metrics(
            rundir.root,
            loaded.problems,
            [MalformedRow(**m) for m in loaded_info["malformed"]],
            results,
            cfg.ks,
            verified,
        )
        metrics_summary = {k: v for k, v in metrics.items() if k.startswith("pass@")}
        manifest["shards"] = {
            str(s): {
                "task_ids": shards[s],
                "generation": (rundir.sealed(GENERATIONS, s) or {}).get("stats"),
                "execution": (rundir.sealed(RESULTS, s) or {}).get("stats"),
            }
            for s in range(len(shards))
        }
        manifest["completed_shards"], manifest["failed_shards"] = done, failed
        # What `auto` became, as each shard's generation found it in the model's tokenizer.
        generated = [s["generation"] or {} for s in manifest["shards"].values()]
        used = sorted({g["prompt_format"] for g in generated if g.get("prompt_format")})
        manifest["prompt_format"] = ", ".join(used) or None
        write_json(rundir.manifest, manifest)
        summary = {
            "run_id": run_id,
            "run_dir": str(rundir.root),
            "metrics": metrics_summary,
            "completed_shards": done,
            "failed_shards": failed,
            "prompt_format": manifest["prompt_format"],
        }
        if failed:
            # A partial run is reported but not indexed: it would raise a false regression alert.
            if done:
                publish_report_artifacts(build_report(rundir.root, problems=loaded.problems))
            return Failed(
                message=f"shards {failed} failed (metrics cover shards {done}); retry the flow run to re-run only those",
                data=summary,
            )
        finished = report_finished_run(
            cfg.output_dir,
            rundir.root,
            problems=loaded.problems,
            deployment="auto",
            regression_threshold=regression_threshold,
            flow_run_id=str(flow_run.get_id()),
        )
        summary["report_html"] = str(finished["report"].html)
        summary["regression"] = finished["regression"]
        return summary


def _announce_work(shards: list[list[int]], fresh_gen: set[int], fresh_exec: set[int], n: int) -> None:
    """Tell this process's progress sink (the CLI's bars) the samples to generate and the programs
    to judge (one per sample until a shard's identical samples are counted) of the shards to compute."""
    report = progress.current()
    if report is None:
        return
    for stage, todo in ((progress.GENERATE, fresh_gen), (progress.EXECUTE, fresh_exec)):
        samples = sum(len(shards[s]) * n for s in todo)
        if samples:
            report(progress.ProgressEvent(stage, expected=samples))


def check_scale_out(
    dask_address: str | None,
    dask_workers: int | None,
    generation_lanes: int | None,
    lane_queues: list[str] | None,
    devices: list[str] | None,
) -> None:
    """Scale-out parameters that cannot work together fail the run before anything starts."""
    if dask_address is not None and dask_workers is not None:
        raise ValueError("give either dask_address (an existing cluster) or dask_workers (a local one), not both")
    if dask_workers is not None and dask_workers < 1:
        raise ValueError(f"dask_workers must be at least 1, got {dask_workers}")
    if generation_lanes is not None and generation_lanes < 1:
        raise ValueError(f"generation_lanes must be at least 1, got {generation_lanes}")
    if lane_queues and not generation_lanes:
        raise ValueError("lane_queues needs generation_lanes")
    if generation_lanes and devices:
        raise ValueError("devices are lanes on this machine, generation_lanes lanes on a work pool: give one of them")


def _tuple(value: list | None) -> tuple | None:
    return tuple(value) if value is not None else None
