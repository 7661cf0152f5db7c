"""Generation throughput: TACO's loop against the batched engine, same prompts, same model.

(a) TACO's `generation.py` loop: one `model.generate` call per sample (seed i for sample i, no
    batching, no stop strings: it runs to EOS or max tokens and truncates afterwards);
(b) this engine: `tasks.generation.generate.generate_shard` over the same problems (cross-prompt batches,
    `num_return_sequences`, stop strings halting generation).

Both use the same loaded model and tokenizer, the same sampling settings and the same number of
torch threads (set explicitly: on a shared small machine thread contention swings timings), and
both are warmed up first. Tokens/s counts generated tokens; wall time per sample is printed too
(the engine also wins by stopping at TACO's stop strings instead of running on).

    python benchmarks/bench_generate.py --model tiny
    python benchmarks/bench_generate.py --model smollm2 --problems 2 --max-tokens 64
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def taco_loop(model, tokenizer, prompts, n, temperature, top_p, max_tokens, device):
    """TACO's generation.py `predict` loop, verbatim in behaviour: 1 sample per generate call."""
    import random

    import numpy as np
    import torch

    from tasks.generation.prompts import truncate_at_stop

    tokens = samples = 0
    codes = []
    for prompt in prompts:
        for i in range(n):
            seed = i
            if seed is not None and seed > 0:  # TACO's set_random_seed (seed 0 is not set)
                random.seed(seed)
                np.random.seed(seed)
                torch.manual_seed(seed)
            enc = tokenizer(prompt, truncation=False, return_tensors="pt")
            prompt_len = enc["input_ids"].shape[1]
            with torch.no_grad():
                out = model.generate(
                    **enc.to(device),
                    do_sample=True,
                    temperature=temperature,
                    top_p=top_p,
                    max_new_tokens=max_tokens,
                    pad_token_id=tokenizer.pad_token_id,
                )
            new = out[0, prompt_len:]
            tokens += int(new.shape[0])
            samples += 1
            codes.append(truncate_at_stop(tokenizer.decode(new, skip_special_tokens=True)))
    return tokens, samples, codes


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="'tiny' (built locally), 'smollm2', or a model folder")
    ap.add_argument("--problems", type=int, default=3, help="bundled sample problems to use (default 3)")
    ap.add_argument("-n", type=int, default=20, help="samples per problem (default 20)")
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--temperature", type=float, default=0.2)
    ap.add_argument("--top-p", type=float, default=0.95)
    ap.add_argument("-b", "--batch-size", default="auto")
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads for both (default 1: steadiest on a shared machine)"
    )
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--json", default=None, help="also write the figures to this file")
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from tasks.generation.generate import ModelConfig, SamplingConfig, build_prompts, generate_shard, load_backend
    from tasks.problems import load_problems

    model_arg = args.model
    if model_arg == "tiny":
        sys.path.insert(0, str(REPO / "tests"))
        from tiny_model import build_tiny_model

        model_arg = str(build_tiny_model(Path(tempfile.mkdtemp(prefix="bench-tiny-"))))
    model_cfg = ModelConfig(model_arg, device=args.device)
    t0 = time.perf_counter()
    backend = load_backend(model_cfg, quiet=True)
    load_s = time.perf_counter() - t0
    batch = int(args.batch_size) if str(args.batch_size).isdigit() else args.batch_size
    sampling = SamplingConfig(
        n=args.n,
        temperature=args.temperature,
        top_p=args.top_p,
        max_tokens=args.max_tokens,
        seed=1234,
        batch_size=batch,
    )
    problems = load_problems(limit=args.problems).problems
    prompts = build_prompts(problems, "taco")
    model, tok = backend.model, backend.tokenizer
    lengths = [len(backend.encode(p)) for p in prompts]
    print(
        f"model {args.model} ({model_arg}), {sum(p.numel() for p in model.parameters()) / 1e6:.1f}M params, "
        f"{backend.torch_dtype}, device {backend.device}, torch threads {torch.get_num_threads()}, "
        f"loaded in {load_s:.1f}s",
        flush=True,
    )
    print(
        f"{len(prompts)} prompts of {min(lengths)}-{max(lengths)} tokens, n={args.n}, max_tokens={args.max_tokens}, "
        f"temperature={args.temperature}, top_p={args.top_p}",
        flush=True,
    )

    # Warm-up both paths (first calls pay one-off costs; the engine builds its stop criterion).
    taco_loop(model, tok, prompts[:1], 1, args.temperature, args.top_p, 4, backend.device)
    with tempfile.TemporaryDirectory() as tmp:
        generate_shard(
            problems[:1], model_cfg, SamplingConfig(n=2, max_tokens=4, batch_size=batch), 0, Path(tmp) / "warm.parquet"
        )

    start, cpu = time.perf_counter(), time.process_time()
    loop_tokens, loop_samples, _ = taco_loop(
        model, tok, prompts, args.n, args.temperature, args.top_p, args.max_tokens, backend.device
    )
    loop_s, loop_cpu = time.perf_counter() - start, time.process_time() - cpu
    loop_tps = loop_tokens / loop_s
    print(
        f"(a) TACO loop : {loop_samples} samples, {loop_tokens} tokens in {loop_s:.1f}s (cpu {loop_cpu:.1f}s) = "
        f"{loop_tps:.1f} tok/s ({loop_tokens / loop_cpu:.1f} per cpu-s), {loop_s / loop_samples:.2f} s/sample",
        flush=True,
    )

    cpu = time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        stats = generate_shard(problems, model_cfg, sampling, 0, Path(tmp) / "shard-00000.parquet")
    eng_cpu = time.process_time() - cpu
    eng_tps = stats.tokens / stats.wall_s
    print(
        f"(b) engine    : {stats.samples} samples, {stats.tokens} tokens in {stats.wall_s:.1f}s (cpu {eng_cpu:.1f}s) = "
        f"{eng_tps:.1f} tok/s ({stats.tokens / eng_cpu:.1f} per cpu-s), {stats.wall_s / stats.samples:.2f} s/sample, "
        f"batch size {stats.batch_size}",
        flush=True,
    )
    ratio = eng_tps / loop_tps
    cpu_ratio = (stats.tokens / eng_cpu) / (loop_tokens / loop_cpu)
    print(
        f"engine / TACO loop: {ratio:.1f}x tokens/s (wall), {cpu_ratio:.1f}x tokens per cpu-second, "
        f"{(loop_s / loop_samples) / (stats.wall_s / stats.samples):.1f}x samples/s; "
        f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "model": args.model,
                    "params_m": sum(p.numel() for p in model.parameters()) / 1e6,
                    "dtype": str(backend.torch_dtype),
                    "threads": torch.get_num_threads(),
                    "cpu": platform.processor(),
                    "problems": len(prompts),
                    "n": args.n,
                    "max_tokens": args.max_tokens,
                    "taco_loop": {
                        "tokens": loop_tokens,
                        "samples": loop_samples,
                        "seconds": loop_s,
                        "cpu_seconds": loop_cpu,
                        "tokens_per_s": loop_tps,
                    },
                    "engine": {
                        "tokens": stats.tokens,
                        "samples": stats.samples,
                        "seconds": stats.wall_s,
                        "cpu_seconds": eng_cpu,
                        "tokens_per_s": eng_tps,
                        "batch_size": stats.batch_size,
                    },
                    "ratio_tokens_per_s": ratio,
                    "ratio_tokens_per_cpu_s": cpu_ratio,
                    "load_average": os.getloadavg()[0],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
