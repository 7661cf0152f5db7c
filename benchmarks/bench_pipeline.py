"""Overlap of generation and execution: the `taco-eval` flow vs the same work run sequentially.

In one run, on the same problems, model and sampling settings:
  (a) sequential: generate every shard, then execute every shard (the same stage functions);
  (b) overlapped: the `taco-eval` flow (generation of shard k+1 runs while shard k executes).
Each mode starts from an empty output folder and an empty verdict cache. On a CPU-only machine the
two lanes are given one core each (torch threads = 1, one execution worker) so that they do not
fight for the same core; on a GPU box, generation runs on the GPU.

Prints the wall time of each mode, their ratio, and wall(overlapped) / max(generation, execution)
with the stage times taken from the sequential run.

    python benchmarks/bench_pipeline.py [--model smollm2] [--limit 10] [-n 4] [--max-tokens 160]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="smollm2")
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--shard-size", type=int, default=2)
    ap.add_argument("-n", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=160)
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the generation lane's cores)")
    ap.add_argument("--workers", type=int, default=1, help="execution workers (the execution lane's cores)")
    args = ap.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    import torch

    torch.set_num_threads(args.threads)

    from storage.rundir import GENERATIONS, RESULTS, RunDir
    from tasks.types import JudgeConfig
    from tasks.generation.generate import ModelConfig, SamplingConfig, generate_shard, load_backend
    from tasks.generation.models import resolve_model
    from tasks.plan import DatasetSpec, plan_shards
    from tasks.problems import load_spec
    from tasks.judging.shards import execute_shard

    spec = DatasetSpec(limit=args.limit)
    loaded = load_spec(spec)
    shards = plan_shards([p.task_id for p in loaded.problems], args.shard_size)
    model_path = resolve_model(args.model)
    model_cfg = ModelConfig(model=model_path)
    sampling = SamplingConfig(
        n=args.n,
        temperature=0.2,
        top_p=0.95,
        max_tokens=args.max_tokens,
        seed=1234,
        prompt_format="taco",
        batch_size="auto",
    )
    judge = JudgeConfig(timeout_s=args.timeout)
    load_backend(model_cfg)  # both modes start with the model already loaded
    by_id = loaded.by_task_id()
    print(
        f"workload: {len(loaded.problems)} problems in {len(shards)} shards, n={args.n}, "
        f"max_tokens={args.max_tokens}, model={args.model}, torch threads={args.threads}, "
        f"execution workers={args.workers}"
    )

    seq = RunDir(work / "sequential")
    t0 = time.perf_counter()
    for k, ids in enumerate(shards):
        generate_shard([by_id[t] for t in ids], model_cfg, sampling, k, seq.shard(GENERATIONS, k))
    gen_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    for k in range(len(shards)):
        execute_shard(loaded, seq.shard(GENERATIONS, k), seq.shard(RESULTS, k), judge, args.workers)
    exec_s = time.perf_counter() - t1
    seq_wall = time.perf_counter() - t0
    print(f"sequential : generation {gen_s:7.1f} s + execution {exec_s:7.1f} s = wall {seq_wall:7.1f} s")

    import tasks.defaults as cfg

    cfg.VERDICT_CACHE = work / "verdicts.sqlite"  # empty: the flow judges every program, like (a)
    from prefect.testing.utilities import prefect_test_harness

    from flows.taco_eval import taco_eval_flow

    with prefect_test_harness(server_startup_timeout=60):
        t2 = time.perf_counter()
        state = taco_eval_flow(
            dataset="samples",
            limit=args.limit,
            shard_size=args.shard_size,
            model=model_path,
            n=args.n,
            temperature=0.2,
            max_tokens=args.max_tokens,
            batch_size="auto",
            timeout=args.timeout,
            workers=args.workers,
            k=[1],
            output_dir=str(work / "flow"),
            return_state=True,
        )
        flow_wall = time.perf_counter() - t2
    assert state.is_completed(), state.message
    manifest = json.loads((Path(state.result()["run_dir"]) / "manifest.json").read_text())
    flow_gen = sum(s["generation"]["wall_s"] for s in manifest["shards"].values())
    flow_exec = sum(s["execution"]["wall_s"] for s in manifest["shards"].values())
    print(
        f"overlapped : wall {flow_wall:7.1f} s (flow, Prefect overhead included); inside it generation "
        f"{flow_gen:.1f} s, execution {flow_exec:.1f} s"
    )
    print(f"speed-up   : {seq_wall / flow_wall:.2f}x over sequential")
    print(f"wall / max(generation, execution), stage times of the sequential run: {flow_wall / max(gen_s, exec_s):.2f}")
    print(
        f"wall / max(generation, execution), stage times inside the flow run:   "
        f"{flow_wall / max(flow_gen, flow_exec):.2f}"
    )


if __name__ == "__main__":
    main()
