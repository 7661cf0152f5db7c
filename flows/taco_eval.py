"""The `taco-eval` flow: load problems → per shard, generate (GPU lane) then execute (CPU pool),
generation of shard k+1 overlapping execution of shard k → metrics → report.

Generation tasks of a lane are chained (`wait_for` the previous one, failures allowed so a failed
shard does not stop the next); each shard's execution is submitted with its generation future as
input and starts the moment that generation completes.
"""

from __future__ import annotations

import dataclasses
import hashlib
from typing import Any

from prefect import flow, get_run_logger
from prefect.artifacts import create_progress_artifact, update_progress_artifact
from prefect.filesystems import LocalFileSystem, RemoteFileSystem
from prefect.futures import as_completed
from prefect.runtime import flow_run
from prefect.states import Failed
from prefect.utilities.annotations import allow_failure

from storage.atomic import write_json
from storage.fs import is_remote, location
from storage.manifest import new_manifest
from storage.run_lock import run_lock
from storage.rundir import GENERATIONS, PREFECT_RESULTS, RESULTS, RunDir, run_id_for, shard_content
from storage.tables import read_rows
from tasks import defaults, progress
from tasks.types import JudgeConfig, MalformedRow, ProgramResult
from tasks.execution import sandbox
from tasks.metrics import write_metrics
from tasks.plan import DatasetSpec, RunConfig, model_fingerprint, plan_shards, run_identity
from flows.shard_tasks import execute_shard_task, generate_shard_task, load_problems_task
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
) -> dict[str, Any]:
    logger = get_run_logger()
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
        judge_dict = dataclasses.asdict(cfg.judge)
        lanes = list(cfg.devices) if cfg.devices else [cfg.device]

        progress_id = create_progress_artifact(
            progress=0.0, key="taco-eval-progress", description=f"run {run_id}: shards generated and judged"
        )
        reuse: dict[int, tuple[bool, bool]] = {}  # shard → (generation reused, execution reused)
        for shard_id in sorted(chosen):
            # Trust a shard only if its file matches its seal and the seal its plan; anything else
            # is recomputed.
            content = shard_content(shards[shard_id], cfg.n)
            gen_ok = not force and shard_ids is None and rundir.sealed(GENERATIONS, shard_id, content) is not None
            if not gen_ok:
                rundir.invalidate(GENERATIONS, shard_id)
            exec_ok = gen_ok and rundir.sealed(RESULTS, shard_id) is not None
            if not exec_ok:
                rundir.invalidate(RESULTS, shard_id)
            reuse[shard_id] = gen_ok, exec_ok
        _announce_work(shards, reuse, cfg.n)

        prev_by_lane: dict[int, Any] = {}
        gen_futures, exec_futures = {}, {}
        for shard_id, (gen_ok, exec_ok) in reuse.items():
            lane = shard_id % len(lanes)
            prev = prev_by_lane.get(lane)
            gen = generate_shard_task.with_options(
                result_storage=storage,
                refresh_cache=not gen_ok,
                task_run_name=f"generate-shard-{shard_id}",
            ).submit(
                str(rundir.root),
                shard_id,
                shards[shard_id],
                dataset_dict,
                dataset_fingerprint,
                {**model_dict, "device": lanes[lane]},
                sampling,
                wait_for=[allow_failure(prev)] if prev is not None else None,
            )
            exe = execute_shard_task.with_options(
                result_storage=storage,
                refresh_cache=not exec_ok,
                task_run_name=f"execute-shard-{shard_id}",
            ).submit(str(rundir.root), shard_id, gen, dataset_dict, dataset_fingerprint, judge_dict, cfg.workers)
            prev_by_lane[lane] = gen
            gen_futures[shard_id], exec_futures[shard_id] = gen, exe

        kind_of = {id(f): GENERATIONS for f in gen_futures.values()} | {id(f): RESULTS for f in exec_futures.values()}
        done_steps, total_steps = 0, 2 * len(chosen)
        samples = {GENERATIONS: 0, RESULTS: 0}
        for fut in as_completed(list(gen_futures.values()) + list(exec_futures.values())):
            done_steps += 1
            if fut.state.is_completed():
                samples[kind_of[id(fut)]] += fut.result()["stats"].get("samples", 0)
            samples_generated, programs_judged = samples[GENERATIONS], samples[RESULTS]
            update_progress_artifact(
                progress_id,
                100.0 * done_steps / max(1, total_steps),
                description=f"{samples_generated} samples generated, {programs_judged} judged",
            )

        for f in exec_futures.values():
            f.wait()
        failed = sorted(s for s, f in exec_futures.items() if not f.state.is_completed())
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


def _announce_work(shards: list[list[int]], reuse: dict[int, tuple[bool, bool]], n: int) -> None:
    """Tell this process's progress sink (the CLI's bars) the samples to generate and the programs
    to judge (one per sample until a shard's identical samples are counted) of the shards to compute."""
    report = progress.current()
    if report is None:
        return
    to_generate = sum(len(shards[s]) * n for s, (gen_ok, _) in reuse.items() if not gen_ok)
    to_judge = sum(len(shards[s]) * n for s, (_, exec_ok) in reuse.items() if not exec_ok)
    for stage, samples in ((progress.GENERATE, to_generate), (progress.EXECUTE, to_judge)):
        if samples:
            report(progress.ProgressEvent(stage, expected=samples))


def _tuple(value: list | None) -> tuple | None:
    return tuple(value) if value is not None else None
