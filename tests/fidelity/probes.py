"""Probe programs for the differential test: idioms of real solutions around stdio, exit and modules.

Each probe is (name, program, stdin). The ground truth for what it prints is `python3 program.py <
input` run by the test; the engine must give the same stdout bytes and the same exit class. Probes
must not depend on anything that legitimately differs between two interpreter runs (paths, pids,
hash order of strings, timing).
"""

FASTIO = """
import os, sys
from io import BytesIO, IOBase
BUFSIZE = 8192
class FastIO(IOBase):
    newlines = 0
    def __init__(self, file):
        self._fd = file.fileno()
        self.buffer = BytesIO()
        self.writable = "x" in file.mode or "r" not in file.mode
        self.write = self.buffer.write if self.writable else None
    def read(self):
        while True:
            b = os.read(self._fd, max(os.fstat(self._fd).st_size, BUFSIZE))
            if not b:
                break
            ptr = self.buffer.tell()
            self.buffer.seek(0, 2), self.buffer.write(b), self.buffer.seek(ptr)
        self.newlines = 0
        return self.buffer.read()
    def readline(self):
        while self.newlines == 0:
            b = os.read(self._fd, max(os.fstat(self._fd).st_size, BUFSIZE))
            self.newlines = b.count(b"\\n") + (not b)
            ptr = self.buffer.tell()
            self.buffer.seek(0, 2), self.buffer.write(b), self.buffer.seek(ptr)
        self.newlines -= 1
        return self.buffer.readline()
    def flush(self):
        if self.writable:
            os.write(self._fd, self.buffer.getvalue())
            self.buffer.truncate(0), self.buffer.seek(0)
class IOWrapper(IOBase):
    def __init__(self, file):
        self.buffer = FastIO(file)
        self.flush = self.buffer.flush
        self.writable = self.buffer.writable
        self.write = lambda s: self.buffer.write(s.encode("ascii"))
        self.read = lambda: self.buffer.read().decode("ascii")
        self.readline = lambda: self.buffer.readline().decode("ascii")
sys.stdin, sys.stdout = IOWrapper(sys.stdin), IOWrapper(sys.stdout)
input = lambda: sys.stdin.readline().rstrip("\\r\\n")
"""

NUMS = "3\n1 2 3\n"

PROBES = [
    (
        "main_guard",
        "def main():\n    print(sum(map(int, input().split())))\nif __name__ == '__main__':\n    main()\n",
        "1 2\n",
    ),
    ("name_is_main", "print(__name__)\n", ""),
    (
        "main_module_registered",
        "import sys\nX = 5\nprint(sys.modules['__main__'].X, sys.modules[__name__] is sys.modules['__main__'])\n",
        "",
    ),
    ("import_main", "import __main__\nY = 'y'\nprint(__main__.Y)\n", ""),
    (
        "pickle_own_class",
        "import pickle\nclass P:\n    def __init__(self):\n        self.x = 7\nprint(pickle.loads(pickle.dumps(P())).x)\n",
        "",
    ),
    (
        "dataclass",
        "from dataclasses import dataclass\n@dataclass(order=True)\nclass A:\n    x: int\n    y: str = 'q'\nprint(sorted([A(3), A(1)]))\n",
        "",
    ),
    (
        "future_annotations",
        "from __future__ import annotations\ndef f(x: List[int]) -> int:\n    return 1\nprint(f.__annotations__)\n",
        "",
    ),
    (
        "module_dunders",
        "import os\nprint(__spec__, __package__, os.path.basename(__file__), os.path.isabs(__file__), type(__builtins__).__name__)\n",
        "",
    ),
    ("argv", "import sys\nprint(sys.argv)\n", ""),
    ("stdio_names", "import sys\nprint(sys.stdin.name, sys.stdout.name, sys.stderr.name)\n", ""),
    (
        "stdio_modes",
        "import sys\nprint(sys.stdin.mode, sys.stdout.mode, sys.stderr.mode, sys.stdin.buffer.mode, sys.stdout.buffer.mode)\n",
        "",
    ),
    (
        "stdio_types",
        "import sys\nfor s in (sys.stdin, sys.stdout, sys.stderr):\n    print(type(s).__name__, type(s.buffer).__name__, type(s.buffer.raw).__name__)\n",
        "",
    ),
    (
        "stdio_fileno_isatty",
        "import sys\nprint([s.fileno() for s in (sys.stdin, sys.stdout, sys.stderr)], sys.stdin.isatty(), sys.stdout.isatty())\n",
        "",
    ),
    (
        "stdio_encoding",
        "import sys\nprint(sys.stdin.encoding, sys.stdout.encoding, sys.stdin.errors, sys.stdout.errors, sys.stderr.errors)\n",
        "",
    ),
    (
        "stdio_buffering",
        "import sys\nprint(sys.stdout.line_buffering, sys.stdout.write_through, sys.stderr.line_buffering)\n",
        "",
    ),
    (
        "dunder_stdio_same",
        "import sys\nprint(sys.stdin is sys.__stdin__, sys.stdout is sys.__stdout__, sys.stderr is sys.__stderr__)\n",
        "",
    ),
    ("stdin_closefd", "import sys\nprint(sys.stdin.buffer.raw.closefd, sys.stdout.buffer.raw.closefd)\n", ""),
    ("fstat_size", "import os\nprint(os.fstat(0).st_size)\n", NUMS),
    (
        "stdin_seekable",
        "import sys\nprint(sys.stdin.seekable(), sys.stdin.read())\nsys.stdin.seek(0)\nprint(sys.stdin.read())\n",
        NUMS,
    ),
    ("fastio_template", FASTIO + "n = int(input())\nprint(sum(map(int, input().split())) * n)\n", NUMS),
    ("fastio_read_all", FASTIO + "data = sys.stdin.read().split()\nprint(len(data))\n", NUMS),
    (
        "os_read_loop",
        "import os\nchunks = []\nwhile True:\n    b = os.read(0, 2)\n    if not b:\n        break\n    chunks.append(b)\nprint(b''.join(chunks).split())\n",
        NUMS,
    ),
    (
        "bytesio_readline",
        "import io, os\ninput = io.BytesIO(os.read(0, os.fstat(0).st_size)).readline\nn = int(input())\nprint(n, input().split())\n",
        NUMS,
    ),
    (
        "stdin_readline_alias",
        "from sys import stdin\ninput = stdin.readline\nn = int(input())\nprint(sum(map(int, input().split())), repr(input()))\n",
        NUMS,
    ),
    ("stdin_buffer_read", "import sys\nprint(sys.stdin.buffer.read().split())\n", NUMS),
    ("for_line_in_stdin", "import sys\nfor line in sys.stdin:\n    print(repr(line))\n", NUMS),
    ("open0", "print(open(0).read().split())\n", NUMS),
    ("open0_rb", "print(open(0, 'rb').read())\n", NUMS),
    ("crlf_input", "print(repr(input()), repr(input()))\n", "a\r\nb\r\n"),
    ("readlines_crlf", "import sys\nprint(sys.stdin.readlines())\n", "x\r\ny\rz\n"),
    ("no_trailing_newline_input", "print(repr(input()))\n", "last"),
    ("input_prompt", "x = input('Enter: ')\nprint('got', x)\n", "5\n"),
    ("input_eof", "print('before')\ninput()\ninput()\n", "one\n"),
    ("read_twice", "import sys\na = sys.stdin.read()\nb = sys.stdin.read()\nprint(len(a), repr(b))\n", NUMS),
    ("unicode_output", "print('héllo ✓ 漢字')\n", ""),
    ("unicode_input", "s = input()\nprint(len(s), s[::-1])\n", "żółw ✓\n"),
    (
        "invalid_utf8_input",
        "import sys\ntry:\n    print(len(sys.stdin.read()))\nexcept UnicodeDecodeError as e:\n    print('decode error', e.reason)\n",
        "ok \udcff\n",
    ),
    ("print_then_buffer_write", "import sys\nprint('text')\nsys.stdout.buffer.write(b'bytes\\n')\n", ""),
    ("print_then_os_write", "import os\nprint('buffered')\nos.write(1, b'direct\\n')\n", ""),
    (
        "os_write_big",
        "import os\ndata = b'x' * 200000 + b'\\n'\nv = memoryview(data)\nwhile v:\n    v = v[os.write(1, v):]\n",
        "",
    ),
    ("big_print", "print('\\n'.join(str(i) for i in range(100000)))\n", ""),
    ("print_end_sep", "print(*range(5), sep=',', end='')\nprint('|', end='')\n", ""),
    ("stdout_write", "import sys\nsys.stdout.write('a')\nsys.stdout.write('b\\n')\nsys.stderr.write('noise\\n')\n", ""),
    ("os_exit_loses_buffer", "import os\nprint('lost')\nos._exit(0)\n", ""),
    ("os_exit_after_flush", "import os, sys\nprint('kept')\nsys.stdout.flush()\nos._exit(0)\n", ""),
    ("os_exit_nonzero_flush_true", "import os\nprint('kept', flush=True)\nos._exit(3)\n", ""),
    ("atexit_print", "import atexit\natexit.register(print, 'bye')\nprint('hi')\n", ""),
    (
        "atexit_order",
        "import atexit\natexit.register(print, 'first registered')\natexit.register(print, 'last registered')\n",
        "",
    ),
    (
        "atexit_stringio_collect",
        "import atexit, io, sys\nbuf = io.StringIO()\nreal = sys.stdout\nsys.stdout = buf\n@atexit.register\ndef dump():\n    real.write(buf.getvalue())\nfor i in range(3):\n    print(i)\n",
        "",
    ),
    (
        "atexit_after_sys_exit",
        "import atexit, sys\natexit.register(lambda: print('cleanup'))\nprint('work')\nsys.exit(0)\n",
        "",
    ),
    ("atexit_after_exception", "import atexit\natexit.register(lambda: print('cleanup'))\nprint('work')\n1 / 0\n", ""),
    ("atexit_handler_raises", "import atexit\natexit.register(lambda: 1 / 0)\nprint('x')\n", ""),
    (
        "atexit_unregister",
        "import atexit\ndef f():\n    print('no')\natexit.register(f)\natexit.unregister(f)\nprint('yes')\n",
        "",
    ),
    ("sys_exit_zero", "import sys\nprint(1)\nsys.exit(0)\n", ""),
    ("sys_exit_none", "import sys\nprint(1)\nsys.exit()\n", ""),
    ("sys_exit_three", "import sys\nprint(1)\nsys.exit(3)\n", ""),
    ("sys_exit_message", "import sys\nprint(1)\nsys.exit('fatal')\n", ""),
    ("sys_exit_256", "import sys\nprint(1)\nsys.exit(256)\n", ""),
    ("sys_exit_true", "import sys\nsys.exit(True)\n", ""),
    ("builtin_exit_quit", "print('a')\nexit()\n", ""),
    ("builtin_quit_code", "print('a')\nquit(0)\n", ""),
    ("raise_systemexit", "print('a')\nraise SystemExit\n", ""),
    ("exception_keeps_output", "print('partial')\nraise ValueError('boom')\n", ""),
    ("keyboard_interrupt", "print('k')\nraise KeyboardInterrupt\n", ""),
    ("assert_fails", "print('a')\nassert 1 == 2\n", ""),
    ("debug_flag", "print(__debug__)\n", ""),
    ("recursion_limit_default", "import sys\nprint(sys.getrecursionlimit())\n", ""),
    ("recursion_error", "def f(n):\n    return f(n + 1)\nprint('start')\nf(0)\n", ""),
    (
        "deep_recursion_thread",
        "import sys, threading\nsys.setrecursionlimit(10 ** 6)\nthreading.stack_size(2 ** 26)\ndef f(n):\n    return 0 if n == 0 else 1 + f(n - 1)\ndef main():\n    print(f(50000))\nthreading.Thread(target=main).start()\n",
        "",
    ),
    (
        "thread_prints_after_main",
        "import threading, time\ndef late():\n    time.sleep(0.05)\n    print('late')\nthreading.Thread(target=late).start()\nprint('main done')\n",
        "",
    ),
    (
        "sys_exit_in_thread",
        "import sys, threading\nt = threading.Thread(target=lambda: sys.exit(5))\nt.start()\nt.join()\nprint('still here')\n",
        "",
    ),
    (
        "del_at_exit",
        "class D:\n    def __del__(self):\n        print('deleted')\nd = D()\nprint('end of program')\n",
        "",
    ),
    (
        "unclosed_open_fd1",
        "import sys\nprint('first', flush=True)\nf = open(1, 'w', closefd=False)\nf.write('unflushed file\\n')\n",
        "",
    ),
    ("fdopen_stdout", "import os\nout = os.fdopen(1, 'w')\nout.write('via fdopen\\n')\n", ""),
    ("replace_stdout_with_file", "import sys\nprint('before')\nsys.stdout = open(1, 'w')\nprint('after')\n", ""),
    (
        "replace_stdout_keep_fd",
        "import sys\nprint('before')\nsys.stdout = open(1, 'w', closefd=False)\nprint('after')\n",
        "",
    ),
    ("close_fd1_with_pending_output", "import os\nprint('pending')\nos.close(1)\n", ""),
    ("stdout_close", "import sys\nprint('closing')\nsys.stdout.close()\n", ""),
    ("stdout_reconfigure", "import sys\nsys.stdout.reconfigure(line_buffering=True)\nprint('a')\nprint('b')\n", ""),
    ("cwd_writable", "open('scratch.txt', 'w').write('data')\nprint(open('scratch.txt').read())\n", ""),
    (
        "tempfile_use",
        "import tempfile\nwith tempfile.TemporaryFile() as f:\n    f.write(b'abc')\n    f.seek(0)\n    print(f.read())\nwith tempfile.NamedTemporaryFile('w+') as g:\n    g.write('named')\n    g.flush()\n    print(open(g.name).read())\nd = tempfile.mkdtemp()\nprint(bool(d))\n",
        "",
    ),
    (
        "numpy_use",
        "import numpy as np\na = np.array(list(map(int, input().split())))\nprint(a.sum(), a.dtype)\n",
        "1 2 3\n",
    ),
    ("globals_main", "print(globals()['__name__'], 'main' in dir())\ndef main():\n    pass\n", ""),
    ("exec_in_globals", "exec('Z = 3')\nprint(Z)\n", ""),
    ("class_module_name", "class K:\n    pass\nprint(K.__module__, K.__qualname__)\n", ""),
    ("sys_stdout_write_return", "import sys\nn = sys.stdout.write('abc\\n')\nprint(n)\n", ""),
    ("print_to_stderr_only", "import sys\nprint('err', file=sys.stderr)\n", ""),
]
