"""Engine throughput and generation path on the tiny model of each architecture (tests/tiny_archs.py).

For every architecture: build the tiny random model, load it as the CLI does, warm up, then time
`generate_shard` on the bundled sample problems (TACO prompts) with the same settings as
`bench_generate.py` (n = 20, T = 0.2, top-p 0.95, 64 new tokens, -b auto), torch threads set
explicitly. Prints one Markdown table row per architecture: path ("fast" or "fallback", with the
parts that fall back) and tokens/s (wall and per CPU-second: the machine may be shared).

    python benchmarks/bench_archs.py                 # every architecture
    python benchmarks/bench_archs.py llama gemma2    # some
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("archs", nargs="*", help="model types from tests/tiny_archs.py (default: all)")
    ap.add_argument("--problems", type=int, default=3)
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--max-tokens", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    from tasks.generation.generate import ModelConfig, SamplingConfig, clear_backend_cache, generate_shard, load_backend
    from tasks.problems import load_problems
    from tests.tiny_archs import ARCHS, build_arch_model
    from tests.tiny_model import build_tokenizer

    tokenizer = build_tokenizer()
    problems = load_problems(limit=args.problems).problems
    sampling = SamplingConfig(n=args.n, temperature=0.2, top_p=0.95, max_tokens=args.max_tokens, seed=1234)
    print(
        f"{len(problems)} TACO prompts × {args.n} samples, {args.max_tokens} new tokens, T=0.2, top-p 0.95, "
        f"-b auto, torch threads {torch.get_num_threads()}, load average {os.getloadavg()[0]:.1f} "
        f"on {os.cpu_count()} cores",
        flush=True,
    )
    print("| architecture | path | tokens/s (wall) | tokens per CPU-s |\n|---|---|---|---|", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for arch in args.archs or ARCHS:
            model_cfg = ModelConfig(str(build_arch_model(arch, tokenizer, Path(tmp) / arch)), device="cpu")
            backend = load_backend(model_cfg, quiet=True)
            generate_shard(problems[:1], model_cfg, SamplingConfig(n=2, max_tokens=4), 0, Path(tmp) / "warm.parquet")
            cpu = time.process_time()
            stats = generate_shard(problems, model_cfg, sampling, 0, Path(tmp) / f"{arch}.parquet")
            cpu = time.process_time() - cpu
            path, reason = backend.generation_path
            parts = ", ".join(note.split(":")[0] for note in reason.split("; ") if note)
            print(
                f"| {arch} | {path}{f' ({parts})' if parts else ''} | {stats.tokens_per_s:.0f} | "
                f"{stats.tokens / cpu:.0f} |",
                flush=True,
            )
            clear_backend_cache()
    return 0


if __name__ == "__main__":
    sys.exit(main())
