"""The layers of docs/architecture.md, checked on every import statement (deferred ones included).

    taco_eval (the CLI)  →  flows (Prefect)  →  tasks (stages)  →  storage (disk)

A module may import its own layer and the layers to its right, never to its left. Inside `tasks/`:
the vocabulary (`types`, `statuses`, `defaults`) imports nothing of the project but itself, `execution` uses
only `statuses` and `defaults`, `generation` and `judging` never import each other, nothing imports
`reporting` but `flows` and the CLI. Only `flows/` imports Prefect. No module imports itself back
through a chain (no cycles).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LAYERS = ("taco_eval", "flows", "tasks", "storage")  # left may import right
PROJECT = set(LAYERS)
VOCABULARY = {"tasks.types", "tasks.statuses", "tasks.defaults"}
STAGES = ("tasks.generation", "tasks.execution", "tasks.judging", "tasks.reporting")


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def project_modules(root: Path = REPO) -> dict[str, Path]:
    return {_module_name(p): p for layer in LAYERS for p in sorted((root / layer).rglob("*.py"))}


def imports_of(name: str, path: Path, known: set[str]) -> set[str]:
    """Every module `name` imports (absolute names; `from a import b` counts `a.b` when it is a
    module, else `a`)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                full = f"{base}.{alias.name}"
                out.add(full if full in known else base)
    return out


def _stage(module: str) -> str | None:
    return next((s for s in STAGES if module == s or module.startswith(s + ".")), None)


def _in(module: str, prefix: str) -> bool:
    return module == prefix or module.startswith(prefix + ".")


def violations(modules: dict[str, Path]) -> list[str]:
    known = set(modules)
    found = []
    for name, path in modules.items():
        layer = LAYERS.index(name.split(".")[0])
        stage = _stage(name)
        for imp in sorted(imports_of(name, path, known)):
            top = imp.split(".")[0]
            where = f"{name} imports {imp}"
            if top == "prefect" and not _in(name, "flows"):
                found.append(f"{where}: only flows/ may import prefect")
            if top not in PROJECT:
                continue
            if LAYERS.index(top) < layer:
                found.append(f"{where}: {LAYERS[layer]}/ may not import the layer above it ({top}/)")
            if name in VOCABULARY and imp != "tasks" and imp not in VOCABULARY:
                found.append(f"{where}: the vocabulary imports nothing of the project but itself")
            if (
                stage == "tasks.execution"
                and top == "tasks"
                and imp != "tasks"
                and not _in(imp, "tasks.execution")
                and imp not in ("tasks.statuses", "tasks.defaults")
            ):
                found.append(f"{where}: execution uses only tasks.statuses and tasks.defaults")
            other = _stage(imp)
            if {stage, other} == {"tasks.generation", "tasks.judging"}:
                found.append(f"{where}: generation and judging never import each other")
            if other == "tasks.reporting" and top == "tasks" and _in(name, "tasks") and stage != other:
                found.append(f"{where}: only flows/ and the CLI use reporting")
    return found


def cycles(modules: dict[str, Path]) -> list[list[str]]:
    known = set(modules)
    graph = {n: sorted(i for i in imports_of(n, p, known) if i in known and i != n) for n, p in modules.items()}
    found, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in graph[node]:
            if state.get(nxt) == 1:
                found.append(stack[stack.index(nxt) :] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in graph:
        if node not in state:
            visit(node, [])
    # A package's __init__ importing its own submodule is not a loop of the kind meant here.
    return [c for c in found if not all(_in(m, c[0]) or _in(c[0], m) for m in c)]


def test_every_import_follows_the_layers():
    assert violations(project_modules()) == []


def test_no_import_cycles():
    assert cycles(project_modules()) == []


@pytest.mark.parametrize(
    ("module", "source", "rule"),
    [
        ("storage/rundir.py", "from tasks import defaults\n", "layer above"),
        ("tasks/metrics.py", "from flows.taco_eval import taco_eval_flow\n", "layer above"),
        ("tasks/reporting/report.py", "from prefect import task\n", "only flows/ may import prefect"),
        ("tasks/types.py", "from tasks.problems import load_spec\n", "vocabulary"),
        ("tasks/execution/runner.py", "from tasks.types import Problem\n", "execution uses only"),
        ("tasks/judging/rules.py", "def f():\n    from tasks.generation import prompts\n", "never import each other"),
        ("tasks/plan.py", "from tasks.reporting.rundata import load_run\n", "only flows/ and the CLI"),
    ],
)
def test_a_deliberate_violation_is_caught(tmp_path, module, source, rule):
    """The check is not vacuous: one added import (deferred ones too) breaks it."""
    modules = project_modules()
    broken = tmp_path / module
    broken.parent.mkdir(parents=True)
    broken.write_text(modules[_module_name(REPO / module)].read_text() + "\n\n" + source)
    # Keep the module's name (computed from REPO) but read the altered file.
    modules[_module_name(REPO / module)] = broken
    assert any(rule in v for v in violations(modules)), violations(modules)


def test_a_deliberate_cycle_is_caught(tmp_path):
    modules = project_modules()
    broken = tmp_path / "limits.py"
    broken.write_text(modules["tasks.execution.limits"].read_text() + "\nfrom tasks.execution import cgroups\n")
    modules["tasks.execution.limits"] = broken
    assert cycles(modules)
