"""10 GB allocations die on the address-space limit, not on the machine's memory."""

from conftest import stdin_problem

ATTACK = "10 GB allocation"


def test_bytearray_10gb(attack, level, record):
    r = attack.run(level, "x = bytearray(10 * 1024**3)\nprint(len(x))\n", stdin_problem(["1\n"], ["1\n"]))
    assert r.status == "memory_limit"
    record(level, "memory_limit", "10 GB bytearray")


def test_numpy_10gb(attack, level, record):
    r = attack.run(level, "x = np.ones(10 * 1024**3 // 8)\nprint(x.sum())\n", stdin_problem(["1\n"], ["1\n"]))
    assert r.status == "memory_limit"
    record(level, "memory_limit", "10 GB numpy array")


def test_growing_until_the_limit(attack, level, record):
    # Untouched pages cost no RAM, but they count against the address-space limit all the same.
    code = "xs = []\nwhile True:\n    xs.append(np.empty(256 * 1024 * 1024, dtype=np.uint8))\n"
    r = attack.run(level, code, stdin_problem(["1\n"], ["1\n"]))
    assert r.status == "memory_limit"
    record(level, "memory_limit", "growing list of 256 MB arrays")
