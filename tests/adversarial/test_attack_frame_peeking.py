"""Finding the expected value in the caller's frames or among live objects (passes TACO): the
expected outputs never enter the program's process, at any level."""

from conftest import stdin_problem
from tasks.types import MODE_CALL, Problem

ATTACK = "frame peeking / gc scan for the expected output"

PEEK = """
import sys, gc
def f(x):
    fr = sys._getframe()
    while fr:
        for v in list(fr.f_locals.values()) + list(fr.f_globals.values()):
            if isinstance(v, list) and v and v[0] == [424242]:
                return v[0][0]
        fr = fr.f_back
    for o in gc.get_objects():
        if isinstance(o, (list, tuple)) and len(o) == 1 and o[0] == [424242]:
            return 424242
        if isinstance(o, dict) and "outputs" in o:
            return o["outputs"][0][0]
    return -1
"""


def test_frame_and_gc_peeking(attack, level, record):
    problem = Problem(0, "peek", "", "", "f", MODE_CALL, [[1]], [[424242]])
    r = attack.run(level, PEEK, problem)
    assert r.status == "wrong_answer"
    record(level, "wrong_answer (nothing to find)")


def test_stdin_program_peeking(attack, level, record):
    code = (
        "import gc\nfound = [o for o in gc.get_objects() if isinstance(o, str) and o.startswith('EXPECTED-')]\n"
        "print(found[0] if found else 'none')\n"
    )
    r = attack.run(level, code, stdin_problem(["1\n"], ["EXPECTED-7f3a\n"]))
    assert r.status == "wrong_answer" and "EXPECTED-7f3a" not in r.stdout
