"""`taco-eval generate`: sample completions for TACO problems with the batched engine.

Writes `OUTPUT_DIR/generations/shard-00000.parquet`, … (one file per `--shard-size` problems, each
written as soon as it is done) and `OUTPUT_DIR/generations.json` in TACO's format. Re-running the
same command resumes: complete shards are kept, the rest are generated.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from taco_eval.commands.common import add_dataset_options, add_generation_options, csv_list, load_from_args
from storage.fs import is_remote
from taco_eval.errors import UsageError
from taco_eval.progress import GenerationProgress
from tasks import defaults


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "generate",
        help="sample completions with the batched generation engine",
        description="Generate n completions per problem (batched across prompts, stop strings halt "
        "generation, Parquet shards written as they finish, resumable) and write TACO's "
        "generations.json for `taco-eval evaluate`.",
    )
    add_generation_options(p)
    add_dataset_options(p)
    g = p.add_argument_group("output")
    g.add_argument("-o", "--output-dir", required=True, help="folder for generations/ and generations.json")
    g.add_argument(
        "--shard-size",
        type=int,
        default=defaults.GENERATE_SHARD_SIZE,
        help=f"problems per Parquet shard (default {defaults.GENERATE_SHARD_SIZE})",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bar")


def model_config_from_args(args: argparse.Namespace):
    """ModelConfig from the generation options; bad values → UsageError."""
    from tasks.generation.backends.base import BackendUnavailable
    from tasks.generation.generate import ModelConfig
    from tasks.generation.models import ModelNotFound, resolve_model

    model = args.model
    local = Path(os.path.expanduser(model))
    if local.is_dir():
        model = str(local.resolve())
    try:
        cfg = ModelConfig(
            model=model, revision=args.model_revision, dtype=args.torch_dtype, device=args.device, backend=args.backend
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if cfg.backend == "vllm":
        from tasks.generation.backends.vllm import import_vllm

        try:
            import_vllm()
        except BackendUnavailable as exc:
            raise UsageError(str(exc)) from exc
    try:
        resolve_model(cfg.model)  # a missing folder fails here, before any problem is loaded
    except ModelNotFound as exc:
        raise UsageError(str(exc)) from exc
    return cfg


def sampling_config_from_args(args: argparse.Namespace):
    from tasks.generation.generate import SamplingConfig

    if args.temperature < 0:
        raise UsageError(f"--temperature must be ≥ 0 (0 means greedy), got {args.temperature:g}")
    if not 0 < args.top_p <= 1:
        raise UsageError(f"--top-p must be in (0, 1], got {args.top_p:g}")
    if args.max_tokens < 1:
        raise UsageError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    if args.n < 1:
        raise UsageError(f"-n must be at least 1, got {args.n}")
    if args.seed < 0:
        raise UsageError(f"--seed must be ≥ 0, got {args.seed}")
    try:
        return SamplingConfig(
            n=args.n,
            temperature=args.temperature,
            top_p=args.top_p,
            max_tokens=args.max_tokens,
            seed=args.seed,
            prompt_format=args.prompt_format,
            batch_size=args.batch_size,
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from exc


def devices_from_args(args: argparse.Namespace) -> list[str] | None:
    if not args.devices:
        return None
    devices = csv_list(args.devices)
    for d in devices:
        d = d.lower()
        if not (d in ("auto", "cpu", "cuda") or (d.startswith("cuda:") and d[5:].isdigit())):
            raise UsageError(f"--devices: bad device '{d}' (cpu, cuda or cuda:N, comma-separated)")
    return devices


def run(args: argparse.Namespace) -> int:
    from tasks.generation.backends.base import BackendError
    from tasks.generation.generate import (
        GenerationError,
        generate_run,
        generate_plan,
        sealed_shard,
    )
    from tasks.generation.prompts import PromptError, build_prompt

    if args.shard_size < 1:
        raise UsageError(f"--shard-size must be at least 1, got {args.shard_size}")
    if is_remote(args.output_dir):
        raise UsageError(
            f"-o {args.output_dir}: `taco-eval generate` writes a local folder; runs on shared storage: "
            "taco-eval run -o s3://bucket/prefix"
        )
    sampling = sampling_config_from_args(args)
    devices = devices_from_args(args)
    model_cfg = model_config_from_args(args)
    if model_cfg.backend == "vllm" and devices and len({d.lower() for d in devices}) > 1:
        raise UsageError(
            "--devices with --backend vllm: vLLM takes one GPU set per process; run one "
            "`taco-eval generate` per GPU with CUDA_VISIBLE_DEVICES, or use the hf backend"
        )
    loaded = load_from_args(args)
    if loaded.malformed:
        print(
            f"taco-eval generate: {len(loaded.malformed)} malformed problem(s) skipped "
            f"(first: row {loaded.malformed[0].index}: {loaded.malformed[0].reason})",
            file=sys.stderr,
        )
    problems = loaded.problems
    if not problems:
        raise UsageError("no problems left to generate for (check --limit, --difficulties, --skills, --task-ids)")
    out_dir = Path(args.output_dir)
    remaining = sum(
        len(shard) * sampling.n
        for sid, shard in generate_plan(problems, args.shard_size)
        if sealed_shard(out_dir, sid, shard, sampling.n) is None
    )
    if remaining:
        from tasks.generation.generate import ModelConfig, lane_devices, load_backend

        # Load the model of every lane now: a model that cannot load or a device that does not
        # exist is a usage error, not a failure of every shard.
        for lane in lane_devices(devices if devices else [model_cfg.device]):
            try:
                backend = load_backend(
                    ModelConfig(model_cfg.model, model_cfg.revision, model_cfg.dtype, lane, model_cfg.backend)
                )
                build_prompt(problems[0], sampling.prompt_format, backend.tokenizer)  # e.g. no chat template
            except (BackendError, PromptError) as exc:
                raise UsageError(str(exc)) from exc
    progress = GenerationProgress(remaining, enabled=not args.no_progress)
    try:
        summary = generate_run(
            problems, model_cfg, sampling, out_dir, shard_size=args.shard_size, devices=devices, progress=progress
        )
    except (GenerationError, PromptError) as exc:
        raise UsageError(str(exc)) from exc
    finally:
        progress.close()
    skipped = sum(1 for s in summary.shards if s.skipped)
    done = summary.generated
    rate = summary.tokens / sum(s.wall_s for s in done) if done and sum(s.wall_s for s in done) > 0 else 0.0
    sizes = sorted({s.batch_size for s in done if s.batch_size is not None})
    print(
        f"generated {summary.samples} samples for {sum(s.problems for s in done)} problems in "
        f"{len(done)} shard(s), {summary.tokens} tokens, {rate:.1f} tok/s, batch size "
        f"{','.join(map(str, sizes)) or '-'}; {skipped} complete shard(s) kept",
        file=sys.stderr,
    )
    if summary.generation_paths:
        print(f"generation path: {'; '.join(summary.generation_paths)}", file=sys.stderr)
    if summary.failed:
        for shard_id, reason in sorted(summary.failed.items()):
            print(f"taco-eval generate: shard {shard_id} failed: {reason}", file=sys.stderr)
        print(
            f"taco-eval generate: {len(summary.failed)} shard(s) failed; re-run the same command to retry them",
            file=sys.stderr,
        )
        return 1
    print(summary.generations_json)
    return 0
