"""Filling the disk: as many files as possible in the time allowed. Whatever is written goes with
the test's temp dir; at `bwrap` the sandbox's /tmp is a size-capped tmpfs."""

import shutil
import tempfile

from conftest import stdin_problem

ATTACK = "file flood"

CODE = """
import os
i = 0
try:
    while True:
        with open(f"f{i}", "wb") as fh:
            fh.write(b"x" * 16384)
        i += 1
except OSError as e:
    print("stopped", e.errno, i)
"""


def test_file_flood_is_cleaned_up(attack, level, record):
    free_before = shutil.disk_usage(tempfile.gettempdir()).free
    r = attack.run(level, CODE, stdin_problem(["1\n"], ["1\n"]), extra_budget_s=10)
    assert r.status in ("timeout", "wrong_answer", "runtime_error")
    free_after = shutil.disk_usage(tempfile.gettempdir()).free
    assert free_after > free_before - 256 * 1024 * 1024, "the flood was not cleaned up"
    note = f"stopped by ENOSPC ({r.stdout.split()[2]} files)" if r.stdout.startswith("stopped 28") else r.status
    record(level, f"{note}; files removed after the test")
