"""Faults around the programs: a worker killed mid-run, the disk filling up while writing.

(A truncated Parquet shard and CUDA out-of-memory are faults of the flow and of generation: see
tests/flows/test_flow.py and the generation tests.)
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from storage.generations import read_generations
from tasks.types import JudgeConfig
from tasks.judging import rules as judging
from tasks.judging.evaluate import Sample, _verdict_from_run, evaluate_samples
from tasks.execution import sandbox
from tasks.execution.limits import Limits
from tasks.execution.pool import ExecutionPool
from tasks.execution.worker import ProgramJob
from tasks.problems import load_problems

DATA = Path(__file__).resolve().parents[1] / "data"
ROOT = Path(__file__).resolve().parents[2]
STRONGEST = sandbox.available_levels()[-1]
LEVELS = sorted({"process", STRONGEST}, key=sandbox.LEVELS.index)


def _workload():
    problems = load_problems("samples").by_task_id()
    samples = []
    for name in ("sample_reference_generations.json", "sample_wrong_generations.json"):
        for task_id, idx, code in read_generations(DATA / name):
            samples.append(Sample(task_id, len(samples), code))
    # A slow program keeps a worker busy when the kill lands.
    samples.append(Sample(0, len(samples), "import time\ntime.sleep(0.3)\n" + samples[0].code))
    return problems, samples


def _key(status, tests_run, codes):
    return status, tests_run, list(codes)


@pytest.mark.parametrize("level", LEVELS)
def test_worker_killed_mid_run_gives_identical_verdicts(level):
    problems, samples = _workload()
    config = JudgeConfig(timeout_s=4.0, early_stop=False, isolation=level)
    undisturbed, _ = evaluate_samples(problems, samples, config, workers=2)
    expected = {r.sample_idx: _key(r.status, r.tests_run, r.test_codes) for r in undisturbed}

    jobs = [
        ProgramJob(s.sample_idx, s.code, problems[s.task_id].fn_name, problems[s.task_id].inputs, stop_on_failure=False)
        for s in samples
    ]
    by_job = {s.sample_idx: problems[s.task_id] for s in samples}
    seen = {"tests": 0}
    killed: list[int] = []

    with ExecutionPool(2, Limits(timeout_s=4.0), level) as pool:

        def judge(job, index, outcome):
            seen["tests"] += 1
            if seen["tests"] in (25, 120):  # while programs are running on both workers
                pid = pool.worker_pids()[len(killed) % 2]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            verdict = judging.judge_test(by_job[job.job_id], index, outcome)
            return verdict, True

        runs = list(pool.run(jobs, judge))
        restarts = pool.worker_restarts
    assert len(killed) == 2 and restarts >= 2
    assert all(r.crashed is None for r in runs)  # retried in a fresh worker, not blamed
    got = {}
    for run in runs:
        v = _verdict_from_run(run, by_job[run.job.job_id].num_tests)
        got[run.job.job_id] = _key(v["status"], v["tests_run"], v["test_codes"])
    assert got == expected
    assert sum(1 for v in expected.values() if v[0] == "passed") >= 20


def test_worker_killed_while_idle_is_replaced_without_blame():
    with ExecutionPool(1, Limits(timeout_s=2.0)) as pool:
        os.kill(pool.worker_pids()[0], signal.SIGKILL)
        (run,) = list(pool.run([ProgramJob(0, "print(input())", None, ["5\n"])], lambda j, i, o: (o, True)))
        assert run.crashed is None and run.verdicts[0].stdout == b"5\n"


# --- disk full --------------------------------------------------------------------------------

WRITER = textwrap.dedent("""
    import errno, json, os, resource, signal, sys
    sys.path.insert(0, {root!r})
    from storage.atomic import write_bytes, write_json
    from storage.tables import RESULTS_SCHEMA, write_rows
    if {fsize} is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # write() then fails with EFBIG
        resource.setrlimit(resource.RLIMIT_FSIZE, ({fsize}, {fsize}))
    out = {{}}
    big = os.urandom(1 << 20)
    for name, call in [
        ("bytes", lambda: write_bytes({folder!r} + "/results.bin", big)),
        ("json", lambda: write_json({folder!r} + "/metrics.json", {{"x": big.hex()}})),
        ("parquet", lambda: write_rows({folder!r} + "/results.parquet",
                                      [{{"detail": big.hex(), "task_id": i}} for i in range(4)], RESULTS_SCHEMA)),
    ]:
        try:
            call()
            out[name] = "written"
        except OSError as exc:
            out[name] = [exc.errno, str(exc)]
    print(json.dumps(out))
""")


def _check_nothing_half_written(folder: Path, result: dict, old: dict[str, bytes]):
    for name in ("bytes", "json", "parquet"):
        errno_, message = result[name]
        assert errno_ in (28, 27), message  # ENOSPC / EFBIG
        assert message  # a readable reason travels with the error
    leftovers = sorted(p.name for p in folder.iterdir() if p.name not in old)
    assert leftovers == [], f"half-written files left behind: {leftovers}"
    for name, content in old.items():
        assert (folder / name).read_bytes() == content, f"{name} lost its previous content"


def test_file_size_limit_while_writing_leaves_no_half_file(tmp_path):
    old = {"results.bin": b"previous run\n"}
    (tmp_path / "results.bin").write_bytes(old["results.bin"])
    code = WRITER.format(root=str(ROOT), fsize=64 * 1024, folder=str(tmp_path))
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    _check_nothing_half_written(tmp_path, json.loads(proc.stdout), old)


def _can_mount_private_tmpfs() -> bool:
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        return False
    probe = subprocess.run(["unshare", "--mount", "--propagation", "private", "true"], capture_output=True)
    return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_private_tmpfs(), reason="needs root and unshare to mount a private tmpfs")
def test_disk_full_while_writing_leaves_no_half_file(tmp_path):
    # A 256 KiB tmpfs, mounted in a mount namespace of the writer's own: invisible to the machine.
    folder = tmp_path / "small"
    folder.mkdir()
    code = WRITER.format(root=str(ROOT), fsize=None, folder=str(folder))
    script = tmp_path / "writer.py"
    script.write_text(code)
    old = {"metrics.json": b'{"old": true}\n'}
    shell = (
        f"mount -t tmpfs -o size=256k tmpfs {folder} && "
        f"printf '%s\\n' '{{\"old\": true}}' > {folder}/metrics.json && "
        f"{sys.executable} {script} && ls -A {folder} && cat {folder}/metrics.json"
    )
    proc = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", shell],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    result = json.loads(lines[0])
    for name in ("bytes", "json", "parquet"):
        assert result[name][0] == 28, result  # ENOSPC
    assert lines[1:] == ["metrics.json", '{"old": true}'], "a half file was left, or the old file was lost"
    _ = old
