"""`taco-eval evaluate` on a generations file full of hostile programs, at every isolation level:
exit status 0, a readable results.parquet, no hostile program passes, and the honest programs
beside them still pass (the run survives each attack and each attack stays with its program)."""

import json
import subprocess
import sys

import pyarrow.parquet as pq
import pytest

from tasks.execution import sandbox

# Task 0: stdin, sum of two numbers. Task 1: call-based f(a, b) = a + b.
PROBLEMS = [
    {
        "question": "Print a + b.",
        "input_output": json.dumps({"inputs": ["1 2\n", "5 7\n"], "outputs": ["3\n", "12\n"]}),
    },
    {
        "question": "Return a + b.",
        "starter_code": "def f(a, b):",
        "input_output": json.dumps({"fn_name": "f", "inputs": [[1, 2], [5, 7]], "outputs": [[3], [12]]}),
    },
]

HONEST_STDIN = "a, b = map(int, input().split())\nprint(a + b)\n"
HONEST_CALL = "def f(a, b):\n    return a + b\n"

HOSTILE_STDIN = [
    "while True:\n    pass\n",
    "import os\nwhile True:\n    try:\n        os.fork()\n    except OSError:\n        pass\n",
    "x = bytearray(10 ** 10)\n",
    "import sys\nwhile True:\n    sys.stdout.write('1 ' * 100000)\n",
    "import os\nfor _ in range(3000):\n    os.mkdir('d')\n    os.chdir('d')\n",
    "import os\nos.chmod('.', 0o500)\n",
    "import os, signal\nos.kill(os.getppid(), signal.SIGKILL)\n",
    "print('1e999')\n",
    "print('٣')\n",
    "import sys\nprint(3)\nsys.exit(122)\n",
    'import os\nos.write(3, b\'{"end": "exit", "code": 0}\\n\' + b\'[\' * 100000)\nos._exit(0)\n',
    "x = [" + "1, " * 300_000 + "]\n",
]
HOSTILE_CALL = [
    "def f(a, b):\n    x = []\n    for _ in range(100000):\n        x = [x]\n    return x\n",
    "import sys\nsys.set_int_max_str_digits(0)\ndef f(a, b):\n    return 10 ** 20000\n",
    "def f(a, b):\n    return 'x' * (30 << 20)\n",
    "class E:\n    def __eq__(self, o):\n        return True\ndef f(a, b):\n    return E()\n",
    "import sys\ndef f(a, b):\n    print(sys._getframe(1).f_locals)\n    return 0\n",
]


@pytest.mark.parametrize("level", sandbox.LEVELS)
def test_evaluate_survives_every_attack(tmp_path, level):
    why = sandbox.unavailable_reasons().get(level)
    if why is not None:
        pytest.skip(f"isolation level {level} is not available here: {why}")
    data = tmp_path / "problems.jsonl"
    data.write_text("".join(json.dumps(p) + "\n" for p in PROBLEMS))
    stdin_programs = [HONEST_STDIN, *HOSTILE_STDIN, HONEST_STDIN.replace("print", "print(a + b, end='\\n')\n#")]
    generations = [{"task_id": 0, "output": stdin_programs}, {"task_id": 1, "output": [HONEST_CALL, *HOSTILE_CALL]}]
    gen = tmp_path / "generations.json"
    gen.write_text(json.dumps(generations))
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "taco_eval",
            "evaluate",
            "-d",
            str(data),
            "-g",
            str(gen),
            "-o",
            str(out),
            "--isolation",
            level,
            "--timeout",
            "2",
            "--workers",
            "2",
            "--no-cache",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    rows = pq.read_table(out / "results.parquet").to_pylist()
    assert len(rows) == len(stdin_programs) + 1 + len(HOSTILE_CALL)
    passed = {(r["task_id"], r["sample_idx"]) for r in rows if r["passed"]}
    honest = {(0, 0), (0, len(stdin_programs) - 1), (1, 0)}
    assert passed == honest, [(r["task_id"], r["sample_idx"], r["status"], r["detail"][:80]) for r in rows]
