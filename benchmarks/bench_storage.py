"""Run storage on S3 against a local folder: the `taco-eval` flow on the same work, output root a
local folder or an `s3://` prefix of moto's server on localhost (tests/s3_server.py).

Each mode starts from an empty output root and an empty verdict cache, and runs `--repeats` times,
alternating. moto on localhost has no network latency, so the ratio shows what the storage layer
itself adds (uploads through local scratch, seal checks that re-read shards, conditional writes,
Prefect results through fsspec); the request counts per shard, times a real store's latency
(~10-30 ms per request in-region), estimate what S3 adds on top.

    python benchmarks/bench_storage.py [--model tiny] [--limit 10] [--shard-size 2] [-n 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="tiny", help="'tiny' (built locally, tests/tiny_model.py) or a model folder")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--shard-size", type=int, default=2)
    ap.add_argument("-n", type=int, default=2)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-storage-"))
    import torch

    torch.set_num_threads(1)
    from tests import s3_server as moto_s3

    server, env = moto_s3.start()
    os.environ.update(env)
    model = args.model
    if model == "tiny":
        from tests.tiny_model import build_tiny_model

        model = str(build_tiny_model(work / "tiny-model"))

    import tasks.defaults as cfg
    from prefect.testing.utilities import prefect_test_harness

    from flows.taco_eval import taco_eval_flow

    def run(output_dir: str, cache: Path) -> float:
        cfg.VERDICT_CACHE = cache  # empty: every program is judged in both modes
        t0 = time.perf_counter()
        state = taco_eval_flow(
            dataset="samples",
            limit=args.limit,
            shard_size=args.shard_size,
            model=model,
            n=args.n,
            temperature=0.0,
            max_tokens=args.max_tokens,
            batch_size="4",
            workers=1,
            k=[1],
            timeout=2.0,
            output_dir=output_dir,
            return_state=True,
        )
        assert state.is_completed(), state.message
        return time.perf_counter() - t0

    shards = -(-args.limit // args.shard_size)
    walls: dict[str, list[float]] = {"local": [], "s3": []}
    per_shard = None
    with prefect_test_harness(server_startup_timeout=60):
        run(str(work / "warm-up"), work / "warm-up.sqlite")  # model load, Prefect block registration
        for i in range(args.repeats):
            walls["local"].append(run(str(work / f"local{i}"), work / f"local{i}.sqlite"))
            bucket = moto_s3.new_bucket(env)
            before = moto_s3.requests(server)
            walls["s3"].append(run(f"{bucket}/out", work / f"s3-{i}.sqlite"))
            per_shard = {m: c / shards for m, c in (moto_s3.requests(server) - before).items()}
    server.stop()
    local, s3 = statistics.median(walls["local"]), statistics.median(walls["s3"])
    print(
        f"workload: {args.limit} problems in {shards} shards, n={args.n}, max_tokens={args.max_tokens}, model={args.model}"
    )
    print(f"local folder : median wall {local:6.2f} s  {['%.2f' % w for w in walls['local']]}")
    print(f"s3 (moto)    : median wall {s3:6.2f} s  {['%.2f' % w for w in walls['s3']]}")
    print(f"ratio s3/local: {s3 / local:.2f}")
    print("S3 requests per shard (generation + execution + its share of the run's files): "
          + ", ".join(f"{m} {c:.1f}" for m, c in sorted(per_shard.items())))  # fmt: skip


if __name__ == "__main__":
    main()
