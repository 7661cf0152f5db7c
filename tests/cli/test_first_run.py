"""A new user's first `taco-eval run`: fresh HOME and PREFECT_HOME, no Prefect server running.

The first start of Prefect's temporary server migrates a new database (21-30 s measured here,
above Prefect's own 20 s wait); the CLI must allow for it, and when the server really cannot be
reached, say so in one line, never with a traceback.
"""

from __future__ import annotations

import os
import subprocess
import sys

from taco_eval import prefect_api


def _fresh_env(tmp_path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "TACO_EVAL_CACHE_DIR"}
    env.update(
        HOME=str(tmp_path / "home"),
        PREFECT_HOME=str(tmp_path / "prefect-home"),
        TACO_EVAL_CACHE_DIR=str(tmp_path / "cache"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
    )
    (tmp_path / "home").mkdir()
    return env


def _run(tiny_model_dir, tmp_path, env):
    cmd = [
        sys.executable,
        "-m",
        "taco_eval",
        "run",
        "-d",
        "samples",
        "--limit",
        "2",
        "--shard-size",
        "1",
        "-m",
        str(tiny_model_dir),
        "-n",
        "1",
        "--temperature",
        "0",
        "--max-tokens",
        "8",
        "-b",
        "2",
        "-o",
        str(tmp_path / "out"),
    ]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)


def test_first_run_in_a_fresh_home_completes(tiny_model_dir, tmp_path):
    proc = _run(tiny_model_dir, tmp_path, _fresh_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not any(w in proc.stderr + proc.stdout for w in ("FutureWarning", "DeprecationWarning", "UserWarning"))
    # The summary people read: pass@k overall and by difficulty, verdicts, shards, time, report.
    out = proc.stdout
    assert "pass@1" in out and "overall" in out and "verdicts:" in out
    assert "shards: 2 completed" in out and "wall time:" in out
    assert "prompt format: chat (auto)" in out  # the tiny model has a chat template
    report = next(line for line in out.splitlines() if line.startswith("report: ")).removeprefix("report: ")
    assert report.endswith("report.html") and os.path.exists(report)
    assert "{" not in out  # not the JSON dump (that is `--json`)


def test_server_that_does_not_start_in_time_is_one_line(tiny_model_dir, tmp_path):
    env = _fresh_env(tmp_path) | {prefect_api.TIMEOUT_VARIABLE: "0"}
    proc = _run(tiny_model_dir, tmp_path, env)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    (line,) = [ln for ln in proc.stderr.splitlines() if ln.startswith("taco-eval run: error:")]
    assert line.startswith("taco-eval run: error: the temporary Prefect server did not answer within 0 s")
    assert "PREFECT_API_URL" in line and prefect_api.TIMEOUT_VARIABLE in line


def test_startup_timeout_is_raised_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv(prefect_api.TIMEOUT_VARIABLE, raising=False)
    monkeypatch.delenv("PREFECT_API_URL", raising=False)
    prefect_api.prepare_environment()
    assert os.environ[prefect_api.TIMEOUT_VARIABLE] == str(prefect_api.STARTUP_TIMEOUT_S)
    monkeypatch.setenv(prefect_api.TIMEOUT_VARIABLE, "7")
    prefect_api.prepare_environment()
    assert os.environ[prefect_api.TIMEOUT_VARIABLE] == "7"


def test_library_warnings_are_hidden_unless_verbose():
    import warnings

    from taco_eval.cli import build_parser, quiet_libraries

    assert build_parser().parse_args(["run", "-v"]).verbose and build_parser().parse_args(["-v", "run"]).verbose
    assert not build_parser().parse_args(["run"]).verbose
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        quiet_libraries()
        warnings.warn("old API", FutureWarning)
        warnings.warn("ours", RuntimeWarning)
    assert [str(w.message) for w in seen] == ["ours"]
