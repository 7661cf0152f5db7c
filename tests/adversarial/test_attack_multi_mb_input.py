"""Multi-megabyte inputs and outputs go through without a pipe deadlock."""

from conftest import stdin_problem

ATTACK = "multi-MB input and output"


def test_eight_megabytes_in_and_out(attack, level, record):
    data = " ".join(str(i) for i in range(1_200_000))  # ~8 MB
    problem = stdin_problem([data + "\n"], [data + "\n"])
    r = attack.run(level, "import sys\nsys.stdout.write(sys.stdin.read())\n", problem)
    assert r.status == "passed", r.detail
    record(level, "passed")
