"""Code that runs inside a forked test child, after it has been confined.

A stdin program must see exactly what `python3 program.py < input > output` gives it
(docs/execution.md, "What a program sees"): a real `__main__` module, the interpreter's own kind of
stdio objects, and at the end the interpreter's shutdown (non-daemon threads joined, atexit
handlers, flushes, module teardown) so output is kept or lost as real Python keeps or loses it.
A call-based program is loaded as a module that is not `__main__`, as TACO's reference imports it.

Nothing here returns into the worker: every path ends in `os._exit` with the exit status the
program itself would have had. How the program ended travels on a side channel (`REPORT_FD`),
written last, so no exit code a program can choose carries an internal meaning.
"""

from __future__ import annotations

import atexit
import gc
import io
import json
import os
import sys
import threading
import traceback
import types
from dataclasses import dataclass
from typing import Any

REPORT_FD = 3

# How the program ended (the report's `end`).
END_EXIT = "exit"  # ran to its end or called sys.exit: `code` is its exit status
END_EXCEPTION = "exception"  # uncaught exception (traceback on stderr), exit status 1
END_MEMORY = "memory"  # uncaught MemoryError
END_NO_ENTRY_POINT = "no_entry_point"  # call-based: no such function or Solution method
END_NOT_PLAIN_DATA = "not_plain_data"  # call-based: the return value is not plain data
END_RETURNED = "returned"  # call-based: the JSON return value follows the report line
ENDS = (END_EXIT, END_EXCEPTION, END_MEMORY, END_NO_ENTRY_POINT, END_NOT_PLAIN_DATA, END_RETURNED)

# The status Python exits with when flushing stdout fails at shutdown.
_FLUSH_FAILED_STATUS = 120
CALL_MODULE_NAME = "tmp_sol"  # the name TACO's reference gives the module it imports
_MAX_NESTING = 10_000


@dataclass(frozen=True)
class Stdio:
    """How the interpreter would set up its standard streams (taken from the worker's own)."""

    encoding: str
    errors: str
    recursion_limit: int
    buffer_size: int  # io.open takes the st_blksize of a regular file

    @classmethod
    def of_this_interpreter(cls, buffer_size: int) -> "Stdio":
        out = sys.__stdout__
        if out is not None and getattr(out, "encoding", None):
            return cls(out.encoding, out.errors or "strict", sys.getrecursionlimit(), buffer_size)
        return cls("utf-8", "strict", sys.getrecursionlimit(), buffer_size)


class NotPlainData(Exception):
    pass


def _numpy_plain(value: Any) -> Any:
    np = sys.modules.get("numpy")
    if np is None:
        raise NotPlainData(type(value).__name__)
    if type(value) is np.ndarray:
        return value.tolist()
    if type(value) is np.bool_:
        return bool(value)
    if type(value).__module__ == "numpy" and isinstance(value, np.integer):
        return int(value)
    if type(value).__module__ == "numpy" and isinstance(value, np.floating):
        return float(value)
    raise NotPlainData(type(value).__name__)


def to_plain(value: Any, depth: int = 0) -> Any:
    """Exact built-in types only: an object with a rigged `__eq__` never reaches the comparison."""
    if depth > _MAX_NESTING:
        raise NotPlainData("nesting too deep")
    kind = type(value)
    if value is None or kind in (bool, int, float, str):
        return value
    if kind in (list, tuple):
        return [to_plain(v, depth + 1) for v in value]
    if kind is dict:
        out = {}
        for k, v in value.items():
            if type(k) not in (str, int, float, bool) and k is not None:
                raise NotPlainData(f"dict key of type {type(k).__name__}")
            out[k] = to_plain(v, depth + 1)
        return out
    return _numpy_plain(value)


def _std_stream(fd: int, write: bool, name: str, stdio: Stdio, errors: str, line_buffering: bool) -> io.TextIOWrapper:
    # What CPython's create_stdio builds for a non-tty fd: a buffered binary file that does not
    # own the fd, its raw file named "<stdin>"…, and a text layer that splits lines at "\n" only.
    buffer = io.open(fd, "wb" if write else "rb", buffering=stdio.buffer_size, closefd=False)
    buffer.raw.name = name
    text = io.TextIOWrapper(buffer, encoding=stdio.encoding, errors=errors, newline="\n", line_buffering=line_buffering)
    text.mode = "w" if write else "r"
    return text


@dataclass
class Stage:
    """The program's module and stdio, built by the worker just before it forks the test child:
    every object a forked child builds or touches costs it a copy-on-write page fault."""

    module: types.ModuleType
    streams: tuple[io.TextIOWrapper, io.TextIOWrapper, io.TextIOWrapper]
    header: dict[str, Any]
    middle_collections: int  # collections of generation 1 so far (the child compares)
    replaced: tuple[Any, ...] = ()


def stage(header: dict[str, Any], stdio: Stdio, call_based: bool, workdir: str) -> Stage:
    module = types.ModuleType(CALL_MODULE_NAME if call_based else "__main__")
    module.__dict__.update(header)  # TACO's import header: a documented deviation users rely on
    # `python3 program.py` makes __file__ absolute; the program "lives" in its work dir.
    module.__dict__.update(__file__=os.path.join(workdir, "program.py"), __cached__=None)
    streams = (
        _std_stream(0, False, "<stdin>", stdio, stdio.errors, False),
        _std_stream(1, True, "<stdout>", stdio, stdio.errors, False),
        # Since Python 3.9 a non-interactive stderr is line buffered.
        _std_stream(2, True, "<stderr>", stdio, "backslashreplace", True),
    )
    return Stage(module, streams, header, gc.get_stats()[1]["collections"])


def _enter(stage: Stage, stdio: Stdio) -> types.ModuleType:
    """Make the interpreter look freshly started on the program (in the child)."""
    # The worker's own stdio objects stay referenced: freeing them here would flush and close them.
    stage.replaced = (sys.stdin, sys.stdout, sys.stderr, sys.__stdin__, sys.__stdout__, sys.__stderr__)
    sys.stdin, sys.stdout, sys.stderr = sys.__stdin__, sys.__stdout__, sys.__stderr__ = stage.streams
    sys.argv = ["program.py"]
    sys.setrecursionlimit(stdio.recursion_limit)
    # The worker imported `tempfile` and cached its temp dir; a program asks the environment anew.
    tempfile = sys.modules.get("tempfile")
    if tempfile is not None:
        tempfile.tempdir = None
    atexit._clear()  # the worker's handlers are not the program's
    sys.modules[stage.module.__name__] = stage.module  # pickling a class the program defines looks it up here
    return stage.module


def _report(end: str, code: int, payload: bytes = b"") -> None:
    """Replace anything the program wrote on the side channel with how it really ended."""
    data = b'{"end": "%s", "code": %d}\n' % (end.encode(), code) + payload
    os.ftruncate(REPORT_FD, 0)
    view, offset = memoryview(data), 0
    while offset < len(data):
        offset += os.pwrite(REPORT_FD, view[offset:], offset)


def _print_exception(exc: BaseException) -> None:
    try:
        sys.excepthook(type(exc), exc, exc.__traceback__)  # a program may install its own hook
    except BaseException:
        try:
            traceback.print_exception(type(exc), exc, exc.__traceback__, file=sys.__stderr__)
        except BaseException:
            pass


def _system_exit_status(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except BaseException:
        pass
    return 1


def _flush_std_files() -> bool:
    """Flush the current sys.stdout and sys.stderr as the interpreter does at exit."""
    ok = True
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name, None)
        try:
            if stream is not None and not stream.closed:
                stream.flush()
        except BaseException:
            ok = ok and name != "stdout"
    return ok


def _clear_module(module: types.ModuleType, header: dict[str, Any]) -> None:
    # As the interpreter's module teardown: names with one leading underscore first, then the
    # rest, so objects only the program held are collected (and buffered files it opened flush).
    # Header names still bound to the header's objects free nothing: leave them untouched.
    namespace = module.__dict__
    bound = [k for k, v in namespace.items() if k != "__builtins__" and v is not header.get(k)]
    for first_pass in (True, False):
        for key in bound:
            if (key.startswith("_") and not key.startswith("__")) == first_pass:
                namespace[key] = None


def _shutdown(stage: Stage, status: int) -> int:
    """The interpreter's finalisation, in its order; returns the final exit status."""
    try:
        threading._shutdown()  # joins non-daemon threads, like the interpreter does first
    except BaseException:
        pass
    try:
        atexit._run_exitfuncs()
    except BaseException:
        pass
    if not _flush_std_files():
        status = _FLUSH_FAILED_STATUS
    sys.stdout, sys.stderr, sys.stdin = sys.__stdout__, sys.__stderr__, sys.__stdin__
    try:
        _clear_module(stage.module, stage.header)
        # Objects reach the oldest generation only through a collection of the middle one: if
        # none ran in this child, collecting up to the middle one finds every object the program
        # made, without the full collection's sweep of the free lists (~0.15 ms of page faults).
        gc.collect(2 if gc.get_stats()[1]["collections"] != stage.middle_collections else 1)
    except BaseException:
        pass
    _flush_std_files()  # the interpreter's last flush: what fails here is lost without a word
    return status


def run_stdin_program(code_obj: Any, stage: Stage, stdio: Stdio) -> None:
    """Run the program as `python3 program.py`; never returns."""
    end, status = END_EXIT, 1
    try:
        main = _enter(stage, stdio)
        try:
            exec(code_obj, main.__dict__)
            error = None
        except BaseException as exc:
            error = exc
        _flush_std_files()  # as the interpreter does right after the main module, before a traceback
        if error is None:
            status = 0
        elif isinstance(error, SystemExit):
            status = _system_exit_status(error)
        else:
            end = END_MEMORY if isinstance(error, MemoryError) else END_EXCEPTION
            _print_exception(error)
        del error
        status = _shutdown(stage, status)
        _report(end, status)
    except BaseException:
        pass
    finally:
        os._exit(status)


def _find_entry_point(namespace: dict[str, Any], fn_name: str) -> Any:
    solution = namespace.get("Solution")
    if isinstance(solution, type) and hasattr(solution, fn_name):
        return getattr(solution(), fn_name)
    target = namespace.get(fn_name)
    return target if callable(target) else None


def _join_threads() -> None:
    main = threading.main_thread()
    for t in threading.enumerate():
        if t is not main and not t.daemon:
            t.join()


def run_call_program(code_obj: Any, stage: Stage, stdio: Stdio, fn_name: str, args: list[Any]) -> None:
    """Import the program as a module, call its entry point, report the return value; never returns."""
    end, status, payload = END_EXCEPTION, 1, b""
    try:
        module = _enter(stage, stdio)
        try:
            exec(code_obj, module.__dict__)
            target = _find_entry_point(module.__dict__, fn_name)
            if target is None:
                print(f"no function or Solution method named {fn_name!r}", file=sys.__stderr__)
                end = END_NO_ENTRY_POINT
            else:
                result = target(*args)
                _join_threads()
                try:
                    payload = json.dumps(to_plain(result)).encode("utf-8", "surrogatepass")
                    end, status = END_RETURNED, 0
                except (NotPlainData, RecursionError, TypeError, ValueError) as exc:
                    print(f"return value is not plain data: {exc}", file=sys.__stderr__)
                    end = END_NOT_PLAIN_DATA
        except SystemExit as exc:
            _join_threads()
            end, status = END_EXIT, _system_exit_status(exc)
        except BaseException as exc:
            end = END_MEMORY if isinstance(exc, MemoryError) else END_EXCEPTION
            _print_exception(exc)
        _flush_std_files()
        _report(end, status, payload)
    except BaseException:
        pass
    finally:
        os._exit(status)
