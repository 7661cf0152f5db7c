"""`taco-eval run` end to end: generation and execution progress on stderr while its shards run in
Prefect tasks, ending at the run's real numbers; stdout left to the summary (`--json`); the prompt
format `auto` resolved to, in the shards' records, the manifest, the summary and the report."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_run_shows_progress_and_records_the_prompt_format(prefect_api, tiny_model_dir, tmp_path):
    # Greedy decoding repeats a problem's sample n times: 12 samples, but one program per problem.
    cmd = [sys.executable, "-m", "taco_eval", "run", "-d", "samples", "--limit", "4", "--shard-size", "2",
           "-m", str(tiny_model_dir), "-n", "3", "--temperature", "0", "--max-tokens", "12", "-b", "4",
           "--workers", "1", "--timeout", "2", "--no-cache", "-o", str(tmp_path / "out"), "--json"]  # fmt: skip
    env = {**os.environ, "PREFECT_API_URL": prefect_api}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout)  # stdout holds the JSON and nothing else
    manifest = json.loads((Path(summary["run_dir"]) / "manifest.json").read_text())
    shards = manifest["shards"].values()
    samples = sum(s["generation"]["samples"] for s in shards)
    tokens = sum(s["generation"]["tokens"] for s in shards)
    programs = sum(s["execution"]["programs"] for s in shards)
    tests = sum(s["execution"]["tests_run"] for s in shards)
    assert samples == 12 and programs < samples

    assert "\r" not in proc.stderr  # not a terminal: plain lines for a log
    lines = {
        stage: [ln for ln in proc.stderr.splitlines() if ln.startswith(stage + ": ")]
        for stage in ("generate", "execute")
    }
    assert lines["generate"][0] == f"generate: 0/{samples} samples (0%), 0 tokens"
    assert lines["execute"][0] == f"execute: 0/{samples} programs (0%), 0 tests"  # one per sample until judged
    assert re.fullmatch(
        rf"generate: {samples}/{samples} samples \(100%\), {tokens} tokens, [\d,.]+ tokens/s", lines["generate"][-1]
    )
    assert lines["execute"][-1].startswith(f"execute: {programs}/{programs} programs (100%), {tests} tests")

    # The tiny model's tokenizer has a chat template: the default `auto` chose it, and says so.
    assert manifest["config"]["prompt_format"] == "auto" and manifest["prompt_format"] == "chat"
    assert {s["generation"]["prompt_format"] for s in shards} == {"chat"} and summary["prompt_format"] == "chat"
    assert "| prompt format | chat (auto) |" in (Path(summary["run_dir"]) / "report.md").read_text()
