"""Getting the expected output instead of computing it: from the dataset file on disk, from the
bundled dataset, from the evaluator's memory. Workers never hold expected outputs, so only the
disk is a way in, and only at the `process` level."""

import os
from importlib import resources

from conftest import stdin_problem

ATTACK = "read the expected outputs"


def test_reading_the_dataset_file(attack, level, record, decoys):
    code = f"""
import json
try:
    row = json.loads(open({str(decoys.dataset)!r}).readline())
    print(json.loads(row["input_output"])["outputs"][0], end="")
except OSError as e:
    print("denied", e.errno)
"""
    r = attack.run(level, code, stdin_problem(["1\n"], [decoys.answer + "\n"]))
    if level == "process":
        assert r.status == "passed"
        record(level, "NOT blocked: passed by reading the dataset file")
    else:
        assert r.status == "wrong_answer" and "denied" in r.stdout
        record(level, "wrong_answer: dataset unreadable")


def test_reading_the_bundled_dataset(attack, level, record):
    path = str(resources.files("taco_eval").joinpath("data/sample_problems.jsonl"))
    code = f"try:\n    open({path!r}).read(10)\n    print('read')\nexcept OSError:\n    print('denied')\n"
    r = attack.run(level, code, stdin_problem(["1\n"], ["denied\n"]))
    if level == "process":
        record(level, f"NOT blocked: {r.stdout.strip()}", "read the bundled dataset")
    else:
        assert r.status == "passed", r.stdout
        record(level, "blocked", "read the bundled dataset")


MEMORY_SCAN = """
import os, re
def parent(pid):
    with open(f"/proc/{pid}/stat") as fh:
        return int(fh.read().rsplit(")", 1)[1].split()[1])
target = parent(os.getppid())  # the worker's parent: the dispatcher, which holds the outputs
found = "no"
try:
    with open(f"/proc/{target}/maps") as maps, open(f"/proc/{target}/mem", "rb", 0) as mem:
        for line in maps:
            addr, perms = line.split()[:2]
            if not perms.startswith("rw"):
                continue
            lo, hi = (int(x, 16) for x in addr.split("-"))
            if hi - lo > 1 << 28:
                continue
            try:
                mem.seek(lo)
                chunk = mem.read(hi - lo)
            except OSError:
                continue
            m = re.search(rb"ANSWER-[0-9a-f]{16}", chunk)
            if m:
                found = m.group().decode()
                break
except OSError as e:
    found = f"denied {e.errno}"
print(found)
"""


def test_reading_the_dispatchers_memory(attack, level, record, decoys):
    # The expected output only exists in the dispatcher (this pytest process).
    r = attack.run(level, MEMORY_SCAN, stdin_problem(["1\n"], [decoys.answer + "\n"]))
    name = "read the evaluator's memory (/proc/pid/mem)"
    if level == "process" and os.geteuid() != 0:
        # Same uid, no capabilities on either side: only the kernel's ptrace policy (Yama) decides.
        record(level, f"{r.status}: {'NOT blocked' if r.status == 'passed' else 'blocked by Yama'}", name)
        return
    assert r.status != "passed", "a program read the expected output from the evaluator's memory"
    assert decoys.answer not in r.stdout
    how = "the child has no capabilities, the evaluator has" if level == "process" else "/proc not readable"
    record(level, f"{r.status}; blocked: {how}", name)
