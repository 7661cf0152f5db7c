"""The names TACO's reference prepends to every program, preloaded once per worker.

The reference pastes an import header in front of each program, so model code (and LeetCode
starter code) may use `List`, `deque`, `np`, `gcd`… without importing them. Workers import these
modules once; each test child starts from a copy of this namespace.
"""

from __future__ import annotations

import builtins
from typing import Any

# Modules imported eagerly so a forked test child finds them in sys.modules (cheap fork, and an
# unprivileged child never needs to read the interpreter's files for common imports).
PRELOAD_MODULES = (
    "sys",
    "time",
    "itertools",
    "collections",
    "functools",
    "math",
    "fractions",
    "typing",
    "numpy",
    "random",
    "heapq",
    "bisect",
    "string",
    "re",
    "operator",
    "copy",
    "decimal",
    "statistics",
    "array",
    "threading",
    "io",
    "os",
    "json",
    "queue",
    "dataclasses",
    "enum",
    "struct",
    "cmath",
    "textwrap",
    "unicodedata",
    "datetime",
    "calendar",
    "pprint",
    "types",
    "abc",
    "numbers",
    "traceback",
    "contextlib",
    "weakref",
)


def header_namespace() -> dict[str, Any]:
    """The globals a program sees before its first line, as after TACO's import header."""
    import collections
    import fractions
    import heapq
    import itertools
    import math
    import random
    import sys
    import time
    from functools import lru_cache
    from typing import List, Tuple

    import numpy as np

    ns: dict[str, Any] = {
        "__builtins__": builtins,
        "sys": sys,
        "time": time,
        "itertools": itertools,
        "collections": collections,
        "math": math,
        "fractions": fractions,
        "random": random,
        "heapq": heapq,
        "np": np,
        "lru_cache": lru_cache,
        "List": List,
        "Tuple": Tuple,
    }
    for name in ("accumulate", "product", "permutations", "combinations"):
        ns[name] = getattr(itertools, name)
    for name in ("Counter", "OrderedDict", "deque", "defaultdict", "ChainMap"):
        ns[name] = getattr(collections, name)
    for name in ("sqrt", "sin", "cos", "tan", "ceil", "fabs", "floor", "gcd", "exp", "log", "log2"):
        ns[name] = getattr(math, name)
    ns.update({name: getattr(heapq, name) for name in heapq.__all__})  # from heapq import *
    return ns


def preload() -> dict[str, Any]:
    import importlib

    for name in PRELOAD_MODULES:
        try:
            importlib.import_module(name)
        except ImportError:
            pass
    return header_namespace()
