"""Code that runs inside a forked test child, after it has been confined.

Nothing here may return into the worker: every path ends in `os._exit`. The child reports how it
ended through its exit status (the EXIT_* codes) and, for call-based programs, writes the return
value as JSON to fd 3; the worker turns these into statuses.
"""

from __future__ import annotations

import io
import json
import os
import sys
import threading
import traceback
from typing import Any

EXIT_OK = 0
EXIT_EXCEPTION = 120
EXIT_MEMORY = 121
EXIT_NO_ENTRY_POINT = 122
EXIT_NOT_PLAIN_DATA = 123
EXIT_SETUP_FAILED = 124

RESULT_FD = 3
_MAX_NESTING = 10_000


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


def _install_stdio() -> tuple[io.TextIOWrapper, io.TextIOWrapper]:
    sys.stdin = io.TextIOWrapper(io.BufferedReader(io.FileIO(0, "r", closefd=False)), encoding="utf-8",
                                 errors="surrogateescape")
    out = io.TextIOWrapper(io.BufferedWriter(io.FileIO(1, "w", closefd=False), 1 << 16), encoding="utf-8",
                           errors="surrogateescape")
    err = io.TextIOWrapper(io.FileIO(2, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                           write_through=True)
    sys.stdout, sys.stderr = out, err
    sys.argv = ["program.py"]
    return out, err


def _join_threads() -> None:
    # The interpreter would join non-daemon threads at exit; os._exit does not, and competitive
    # programs often run `main` in a big-stack thread.
    main = threading.main_thread()
    for t in threading.enumerate():
        if t is not main and not t.daemon:
            t.join()


def _flush(*streams: Any) -> None:
    for s in streams:
        try:
            s.flush()
        except Exception:
            pass


def _exit_code_of(exc: SystemExit) -> int:
    code = exc.code
    if code is None:
        return EXIT_OK
    if isinstance(code, int):
        return code & 0xFF if code & 0xFF not in (EXIT_EXCEPTION, EXIT_MEMORY) else 1
    print(code, file=sys.stderr)
    return 1


def _write_result(text: str) -> None:
    data = text.encode("utf-8", "surrogatepass")
    view = memoryview(data)
    while view:
        view = view[os.write(RESULT_FD, view):]


def _find_entry_point(namespace: dict[str, Any], fn_name: str) -> Any:
    solution = namespace.get("Solution")
    if isinstance(solution, type) and hasattr(solution, fn_name):
        return getattr(solution(), fn_name)
    target = namespace.get(fn_name)
    return target if callable(target) else None


def run_program(code_obj: Any, namespace: dict[str, Any], fn_name: str | None, args: list[Any] | None) -> None:
    """Execute the program (and call its entry point); never returns."""
    out, err = _install_stdio()
    status = EXIT_OK
    try:
        try:
            exec(code_obj, namespace)
            if fn_name is not None:
                target = _find_entry_point(namespace, fn_name)
                if target is None:
                    print(f"no function or Solution method named {fn_name!r}", file=err)
                    status = EXIT_NO_ENTRY_POINT
                else:
                    result = target(*(args or []))
                    _join_threads()
                    try:
                        _write_result(json.dumps(to_plain(result)))
                    except (NotPlainData, RecursionError, TypeError, ValueError) as exc:
                        print(f"return value is not plain data: {exc}", file=err)
                        status = EXIT_NOT_PLAIN_DATA
            else:
                _join_threads()
        except SystemExit as exc:
            _join_threads()
            status = _exit_code_of(exc)
        except MemoryError:
            status = EXIT_MEMORY
        except BaseException:
            try:
                traceback.print_exc(file=err)
            except BaseException:
                pass
            status = EXIT_EXCEPTION
        _flush(sys.stdout, out, sys.stderr, err)
    except BaseException:
        status = EXIT_EXCEPTION
    finally:
        os._exit(status)
