"""`taco-eval generate` / `find-batch-size` end to end with the tiny local model: shards,
generations.json, resume, a killed run, and one-line usage errors."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from storage.tables import read_rows

REPO = Path(__file__).resolve().parents[2]


def cli(*argv):
    from taco_eval.cli import main

    return main([str(a) for a in argv])


def gen_args(model, out, *extra):
    return [
        "generate",
        "-m",
        model,
        "-n",
        2,
        "--temperature",
        0,
        "--max-tokens",
        6,
        "--limit",
        5,
        "--shard-size",
        2,
        "-o",
        out,
        "--no-progress",
        *extra,
    ]


def test_generate_writes_shards_and_taco_json_then_resumes(tiny_model_dir, tmp_path, capsys):
    out = tmp_path / "run"
    assert cli(*gen_args(tiny_model_dir, out)) == 0
    shards = sorted((out / "generations").glob("*.parquet"))
    assert [p.name for p in shards] == ["shard-00000.parquet", "shard-00001.parquet", "shard-00002.parquet"]
    rows = [r for p in shards for r in read_rows(p)]
    assert len(rows) == 10 and {r["task_id"] for r in rows} == set(range(5))
    taco = json.loads((out / "generations.json").read_text())
    assert [e["task_id"] for e in taco] == list(range(5))
    assert all(len(e["output"]) == 2 and e["prompt"].startswith("\nQUESTION:\n") for e in taco)
    by_task = {}
    for r in rows:
        by_task.setdefault(r["task_id"], {})[r["sample_idx"]] = r["code"]
    assert all(e["output"] == [by_task[e["task_id"]][0], by_task[e["task_id"]][1]] for e in taco)
    assert capsys.readouterr().out.strip() == str(out / "generations.json")

    # Same command again: nothing regenerated.
    mtimes = {p.name: p.stat().st_mtime_ns for p in shards}
    assert cli(*gen_args(tiny_model_dir, out)) == 0
    assert "3 complete shard(s) kept" in capsys.readouterr().err
    assert {p.name: p.stat().st_mtime_ns for p in shards} == mtimes

    # A lost shard is the only one generated again, identical (greedy).
    before = read_rows(shards[1])
    shards[1].unlink()
    assert cli(*gen_args(tiny_model_dir, out, "-b", 1)) == 0
    assert "2 complete shard(s) kept" in capsys.readouterr().err
    assert [r["code"] for r in read_rows(shards[1])] == [r["code"] for r in before]
    assert shards[0].stat().st_mtime_ns == mtimes["shard-00000.parquet"]

    # Another selection in the same folder: shard 1 was sealed for tasks 2-3 and is now planned for
    # task 2 alone, so it is generated again; the leftover shard 2 does not reach generations.json.
    assert cli(*gen_args(tiny_model_dir, out, "--limit", 3)) == 0
    assert "1 complete shard(s) kept" in capsys.readouterr().err
    assert sorted(r["task_id"] for r in read_rows(shards[1])) == [2, 2]
    assert [e["task_id"] for e in json.loads((out / "generations.json").read_text())] == [0, 1, 2]
    assert cli(*gen_args(tiny_model_dir, out)) == 0  # and back: shard 2's seal still holds
    assert "2 complete shard(s) kept" in capsys.readouterr().err
    assert [e["task_id"] for e in json.loads((out / "generations.json").read_text())] == list(range(5))

    # Other sampling settings in the same folder: refused, one line, exit 2.
    assert cli(*gen_args(tiny_model_dir, out, "--seed", 5)) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "other settings" in err and "seed" in err


def test_usage_errors_are_one_line_exit_2(tiny_model_dir, tmp_path, capsys):
    cases = [
        (gen_args(tmp_path / "no-such-model", tmp_path / "o1"), "no-such-model"),
        (gen_args(tiny_model_dir, tmp_path / "o2", "--temperature", -1), "--temperature"),
        (gen_args(tiny_model_dir, tmp_path / "o3", "--top-p", 0), "--top-p"),
        (gen_args(tiny_model_dir, tmp_path / "o4", "--devices", "tpu:0"), "--devices"),
        (gen_args(tiny_model_dir, tmp_path / "o5", "--shard-size", 0), "--shard-size"),
        (gen_args(tiny_model_dir, tmp_path / "o6", "--difficulties", "IMPOSSIBLE"), "no problems"),
    ]
    import shutil

    no_template = tmp_path / "no-template"
    shutil.copytree(tiny_model_dir, no_template)
    (no_template / "chat_template.jinja").unlink()
    cases.append((gen_args(no_template, tmp_path / "o10", "--prompt-format", "chat"), "no chat template"))
    import torch

    if not torch.cuda.is_available():
        cases.append((gen_args(tiny_model_dir, tmp_path / "o7", "--device", "cuda"), "CUDA"))
    try:
        import vllm  # noqa: F401
    except ImportError:
        cases.append((gen_args(tiny_model_dir, tmp_path / "o8", "--backend", "vllm"), "pip install"))
    for argv, needle in cases:
        assert cli(*argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and needle in err, (argv, err)
        assert err.startswith("taco-eval generate: error:")
    with pytest.raises(SystemExit) as exc:
        cli(*gen_args(tiny_model_dir, tmp_path / "o9", "-b", 0))
    assert exc.value.code == 2


KILL_SCRIPT = """
import sys, time
import tasks.generation.generate as g
real = g.generate_shard
def generate_shard(problems, model_cfg, sampling_cfg, shard_id, out_path, progress=None):
    if shard_id == 2:
        open(sys.argv[1], "w").write("shard 2 started")
        time.sleep(300)
    return real(problems, model_cfg, sampling_cfg, shard_id, out_path, progress)
g.generate_shard = generate_shard
from taco_eval.cli import main
sys.exit(main(sys.argv[2:]))
"""


def test_killed_run_keeps_finished_shards_and_resumes(tiny_model_dir, tmp_path):
    from tasks.generation.generate import sealed_shard
    from tasks.problems import load_problems

    out = tmp_path / "killed"
    marker = tmp_path / "marker"
    env = dict(os.environ, PYTHONPATH=str(REPO))
    proc = subprocess.Popen(
        [sys.executable, "-c", KILL_SCRIPT, str(marker), *map(str, gen_args(tiny_model_dir, out))],
        cwd=REPO,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 90
        while not marker.exists():
            assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
            assert time.monotonic() < deadline, "shard 2 never started"
            time.sleep(0.1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    problems = load_problems(limit=5).problems
    gen = out / "generations"
    assert sealed_shard(out, 0, problems[0:2], 2) and sealed_shard(out, 1, problems[2:4], 2)
    assert not (gen / "shard-00002.parquet").exists() and not (out / "generations.json").exists()
    kept = {p: p.stat().st_mtime_ns for p in gen.glob("shard-*.parquet")}

    assert cli(*gen_args(tiny_model_dir, out)) == 0
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # finished shards were not regenerated
    assert sealed_shard(out, 2, problems[4:5], 2)
    assert len(json.loads((out / "generations.json").read_text())) == 5


def test_find_batch_size_on_cpu(tiny_model_dir, capsys):
    assert (
        cli(
            "find-batch-size",
            "-m",
            tiny_model_dir,
            "--device",
            "cpu",
            "--max-batch-size",
            4,
            "--max-tokens",
            4,
            "--limit",
            3,
        )
        == 0
    )
    out = capsys.readouterr().out
    table = [line.split() for line in out.splitlines()[1:-1]]
    assert [int(row[0]) for row in table] == [1, 2, 4] and all(row[1] == "ok" for row in table)
    best = max(table, key=lambda row: float(row[2]))
    assert f"batch size: {best[0]} (best tokens/s on cpu)" in out.splitlines()[-1]


def test_find_batch_size_on_gpu_stops_at_the_first_oom(monkeypatch):
    """The search logic on a (simulated) GPU: the largest size before the first OOM wins."""
    import tasks.generation.generate as g
    from tasks.generation.backends.hf import ProbeResult

    tried = []

    class FakeGPU:
        device = "cuda:0"

        def encode(self, prompt):
            return [1] * 10

        def max_fitting_batch(self, total_len):
            return 10_000

        def probe(self, prompt, size, max_tokens, seed=0):
            tried.append(size)
            if size > 8:
                return ProbeResult(size, False, note="out of memory")
            return ProbeResult(size, True, tokens_per_s=100.0 / size, seconds=1.0, peak_memory_bytes=size << 20)

    monkeypatch.setattr(g, "load_backend", lambda cfg: FakeGPU())
    search = g.find_batch_size(g.ModelConfig("x", device="cuda:0"), "p", 8, sizes=(1, 2, 4, 8, 16, 32))
    assert search.best == 8 and search.criterion == "largest that fits"
    assert tried[1:] == [1, 2, 4, 8, 16]  # warm-up, then upward; 32 never tried after the OOM at 16
