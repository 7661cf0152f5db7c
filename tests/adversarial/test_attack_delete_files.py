"""Deleting files: its own cwd (harmless: a private temp dir), then the evaluator's run folder
and dataset (decoys outside the sandbox).

Attack programs here only ever target decoys and their own scratch space, never real paths: at
the `process` level nothing stops them, and a test must not damage the machine when it runs
there (or when a sandbox is broken)."""

from conftest import stdin_problem

ATTACK = "delete cwd files and evaluator paths"


def _code(decoys):
    return f"""
import os, shutil
for f in os.listdir("."):
    shutil.rmtree(f) if os.path.isdir(f) else os.remove(f)
gone = []
for path in [{str(decoys.results)!r}, {str(decoys.dataset)!r}, {str(decoys.evaluator)!r}]:
    try:
        os.remove(path)
        gone.append(os.path.basename(path))
    except OSError:
        pass
try:
    shutil.rmtree({str(decoys.root / "run")!r})
    gone.append("run/")
except OSError:
    pass
# The worker's scratch folder (the parent of cwd) holds only this worker's test dirs.
scratch = os.path.dirname(os.getcwd())
try:
    for f in os.listdir(scratch):
        if os.path.join(scratch, f) != os.getcwd():
            shutil.rmtree(os.path.join(scratch, f), ignore_errors=True)
except OSError:
    pass
open("junk", "w").write("x")
print(" ".join(gone) or "none")
"""


def test_deleting_files(attack, level, record, decoys):
    r = attack.run(level, _code(decoys), stdin_problem(["1\n"], ["none\n"]), decoys_may_change=level == "process")
    if level == "process":
        assert r.status == "wrong_answer" and not r.decoys_intact, r.detail
        record(level, f"NOT blocked: deleted {r.stdout.strip()} (cwd: private temp dir)")
    else:
        assert r.status == "passed" and r.decoys_intact, (r.detail, r.decoys_changed)
        record(level, "blocked: only its own temp dir changed")
