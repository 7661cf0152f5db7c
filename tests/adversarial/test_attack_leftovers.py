"""What a program leaves behind must not reach the next program: deep trees, read-only or tagged
work dirs, symlinks to the evaluator's files, files in TMPDIR; and a huge program must not cost
the worker memory or time."""

import os

from conftest import stdin_problem

ATTACK = "leftovers for the next program (deep trees, read-only/xattr dir, symlinks, TMPDIR) and a 2 MB program"

ECHO = stdin_problem(["7\n"], ["7\n"])
# A correct program that needs its cwd and its temp dir: it fails if either was spoiled.
USES_DISK = (
    "import os, tempfile\nopen('mine.txt', 'w').write(input())\n"
    "with tempfile.NamedTemporaryFile('w+') as f:\n    f.write(open('mine.txt').read())\n    f.flush()\n"
    "    text = open(f.name).read()\n"
    "print(text, sorted(os.listdir('.')), sorted(os.listdir(tempfile.gettempdir())))\n"
)
CLEAN = stdin_problem(["7\n"], ["7 ['mine.txt'] ['mine.txt']\n"])


def _after(attack, level, code):
    """Run `code`, then a correct program on the same worker: it must see a clean, usable dir."""
    attack.run(level, code, ECHO)
    r = attack.run(level, USES_DISK, CLEAN)
    assert r.status == "passed", r.detail


def test_deep_tree(attack, level, record):
    _after(
        attack,
        level,
        "import os\nfor _ in range(5000):\n    os.mkdir('d')\n    os.chdir('d')\nopen('f', 'w').write('x')\n",
    )
    record(level, "next program clean", "leftovers: 5000-deep folder tree")


def test_read_only_tagged_dir(attack, level, record):
    code = (
        "import os\nopen('left.txt', 'w').write('secret of the last program')\n"
        "try:\n    os.setxattr('.', 'user.tag', b'x')\nexcept OSError:\n    pass\n"
        "os.mkdir('ro')\nos.chmod('ro', 0)\nos.chmod('.', 0o500)\n"
    )
    _after(attack, level, code)
    _after(attack, level, "import os\nos.chmod('.', 0o500)\n")  # an empty dir looks reusable
    record(level, "next program clean", "leftovers: read-only, xattr-tagged work dir")


def test_symlinks_to_the_evaluators_files(attack, level, record, decoys):
    code = (
        f"import os\nos.symlink({str(decoys.secret_file)!r}, 'file_link')\n"
        f"os.symlink({str(decoys.root)!r}, 'dir_link')\nos.mkdir('sub')\nos.symlink('..', 'sub/up')\n"
    )
    _after(attack, level, code)
    assert decoys.secret_file.exists() and not decoys.changed()
    record(level, "links removed, never followed", "leftovers: symlinks to the evaluator's files")


def test_files_in_tmpdir(attack, level, record):
    _after(
        attack,
        level,
        "import tempfile\nfor i in range(50):\n    tempfile.NamedTemporaryFile(delete=False).write(b'x')\n",
    )
    record(level, "next program clean", "leftovers: files in TMPDIR")


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        return next(int(line.split()[1]) for line in fh if line.startswith("VmRSS:"))


def test_huge_program_compiles_under_limits(attack, level, record):
    pool = attack.pool(level)
    huge = "x = [" + "1, " * 700_000 + "]\nprint(7)\n"  # 2.1 MB
    assert len(huge) > 2_000_000
    before = [_rss_kib(pid) for pid in pool.worker_pids() if os.path.exists(f"/proc/{pid}")]
    r = attack.run(level, huge, ECHO, extra_budget_s=10.0)
    assert r.status in ("passed", "compile_error"), r.detail
    after = [_rss_kib(pid) for pid in pool.worker_pids() if os.path.exists(f"/proc/{pid}")]
    if before and after and level != "bwrap":  # a bwrap worker's pid is bwrap's, not Python's
        assert max(after) - max(before) < 200_000, (before, after)  # KiB
    record(level, f"{r.status}, worker memory unchanged", "a 2 MB program")
