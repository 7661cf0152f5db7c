"""The run manifest: full config, environment and per-shard measurements."""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import os
import platform
import subprocess
from pathlib import Path
from typing import Any

_PACKAGES = ("taco-eval", "prefect", "torch", "transformers", "datasets", "pyarrow", "multiprocess", "numpy")


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {}
    for name in _PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def git_revision() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=5)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=5,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    rev = out.stdout.strip()
    return (rev + ("-dirty" if dirty else "")) if out.returncode == 0 and rev else None


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment(code_version: str) -> dict[str, Any]:
    return {
        "packages": package_versions(),
        "python": platform.python_version(),
        "git_revision": git_revision(),
        "code_version": code_version,
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "hostname": platform.node(),
    }


def new_manifest(
    run_id: str, run_config: dict[str, Any], identity: dict[str, Any], *, code_version: str
) -> dict[str, Any]:
    """`code_version`: `tasks.defaults.CODE_VERSION` (storage imports nothing of the project)."""
    return {
        "run_id": run_id,
        "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "config": run_config,
        "identity": identity,
        "environment": environment(code_version),
        "shards": {},
    }
