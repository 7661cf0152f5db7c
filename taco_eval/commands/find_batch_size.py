"""`taco-eval find-batch-size`: the batch size to pass to `generate -b`.

Generates a fixed number of tokens for batches of 1, 2, 4, … up to `--max-batch-size` copies of
the longest prompt of the chosen problems. On a GPU it stops at the first out-of-memory error
(caught: the machine never runs out) and reports the largest batch that fitted; on CPU it skips
batches whose estimated memory exceeds half the free RAM and reports the fastest in tokens/s.
"""

from __future__ import annotations

import argparse
import sys

from taco_eval.commands.common import add_dataset_options, add_generation_options, load_from_args
from taco_eval.errors import UsageError
from tasks import defaults


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "find-batch-size",
        help="find the largest batch that fits (GPU) or the fastest one (CPU)",
        description="Probe batch sizes 1, 2, 4, … with the longest prompt of the chosen problems.",
    )
    add_generation_options(p, default_max_tokens=defaults.FIND_BATCH_SIZE_MAX_TOKENS)
    add_dataset_options(p)
    p.add_argument(
        "--max-batch-size",
        type=int,
        default=defaults.FIND_BATCH_SIZE_MAX_BATCH,
        help=f"largest batch to try (default {defaults.FIND_BATCH_SIZE_MAX_BATCH})",
    )


def _fmt_bytes(value: int | None) -> str:
    return "-" if value is None else f"{value / 2**30:.2f} GiB"


def run(args: argparse.Namespace) -> int:
    from taco_eval.commands.generate import model_config_from_args
    from tasks.generation.backends.base import BackendError
    from tasks.generation.generate import GenerationError, build_prompts, find_batch_size, load_backend
    from tasks.generation.prompts import PromptError, resolve_prompt_format
    from tasks.reporting.summary import prompt_format_text

    if args.max_batch_size < 1:
        raise UsageError(f"--max-batch-size must be at least 1, got {args.max_batch_size}")
    if args.max_tokens < 1:
        raise UsageError(f"--max-tokens must be at least 1, got {args.max_tokens}")
    if args.backend != "hf":
        raise UsageError("find-batch-size measures the hf backend; vLLM sizes its batches itself")
    model_cfg = model_config_from_args(args)
    problems = load_from_args(args).problems
    if not problems:
        raise UsageError("no problems to take a prompt from")
    try:
        backend = load_backend(model_cfg)
        prompt_format = resolve_prompt_format(args.prompt_format, backend.tokenizer)
        prompts = build_prompts(problems, prompt_format, backend.tokenizer)
    except (BackendError, PromptError) as exc:
        raise UsageError(str(exc)) from exc
    prompt = max(prompts, key=lambda p: len(backend.encode(p)))
    sizes = []
    size = 1
    while size <= args.max_batch_size:
        sizes.append(size)
        size *= 2
    if sizes[-1] != args.max_batch_size:
        sizes.append(args.max_batch_size)
    print(
        f"device {backend.device}, prompt of {len(backend.encode(prompt))} tokens in the "
        f"{prompt_format_text(args.prompt_format, prompt_format)} format, "
        f"{args.max_tokens} new tokens per sequence",
        file=sys.stderr,
    )
    print(f"{'batch':>5}  {'result':<10} {'tok/s':>8} {'seconds':>8}  peak GPU memory")

    def report(res) -> None:
        status = "ok" if res.ok else (res.note or "failed")
        print(
            f"{res.batch_size:>5}  {status:<10} {res.tokens_per_s:>8.1f} {res.seconds:>8.2f}  "
            f"{_fmt_bytes(res.peak_memory_bytes)}",
            flush=True,
        )

    try:
        search = find_batch_size(model_cfg, prompt, args.max_tokens, sizes, report=report)
    except GenerationError as exc:
        raise UsageError(str(exc)) from exc
    if search.best is None:
        print("no batch size fits, not even 1: try a smaller --max-tokens or --torch-dtype float16", file=sys.stderr)
        return 1
    print(
        f"batch size: {search.best} ({search.criterion} on {search.device}); use: taco-eval generate -b {search.best} …"
    )
    return 0
