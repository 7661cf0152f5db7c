"""Objects whose `__eq__` always answers True (passes TACO's call-based check): only exact
built-in types are serialised, and the comparison happens in the dispatcher on plain data."""

import pytest

from tasks.types import MODE_CALL, Problem

ATTACK = "always-equal objects"

CASES = {
    "object": "class E:\n    def __eq__(self, o): return True\n    __hash__ = object.__hash__\ndef f(x):\n    return E()\n",
    "int subclass": "class I(int):\n    def __eq__(self, o): return True\n    __hash__ = int.__hash__\ndef f(x):\n    return I(0)\n",
    "str subclass": "class S(str):\n    def __eq__(self, o): return True\n    __hash__ = str.__hash__\ndef f(x):\n    return S('x')\n",
    "list subclass": "class L(list):\n    def __eq__(self, o): return True\ndef f(x):\n    return L()\n",
    "patched builtins": (
        "import builtins\nclass M(type):\n    def __eq__(cls, o): return True\n"
        "def f(x):\n    builtins.int = M('int', (), {})\n    return None\n"
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_always_equal(attack, level, record, case):
    problem = Problem(0, "eq", "", "", "f", MODE_CALL, [[1]], [[42]])
    r = attack.run(level, CASES[case], problem)
    assert r.status == "wrong_answer", r.detail
    if case == "object":
        record(level, "wrong_answer (not plain data)")
