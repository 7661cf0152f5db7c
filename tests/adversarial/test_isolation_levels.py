"""The isolation levels themselves: choosing one, what each sandbox lets in, the building blocks."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tasks.execution import bwrap, cgroups, landlock, sandbox, seccomp_filter
from tasks.execution.limits import Limits
from tasks.execution.pool import ExecutionPool
from tasks.execution.worker import ProgramJob

ROOT = Path(__file__).resolve().parents[2]


def test_auto_picks_the_strongest_available_level():
    assert sandbox.resolve("auto") == sandbox.available_levels()[-1]
    assert sandbox.available_levels()[0] == "process"


def test_only_process_available_gives_one_loud_warning(monkeypatch, capsys):
    monkeypatch.setattr(sandbox, "unavailable_reasons", lambda: {"seccomp": "no libseccomp", "bwrap": "no bwrap"})
    monkeypatch.setattr(sandbox, "_warned", False)
    assert sandbox.resolve("auto") == "process"
    assert sandbox.resolve("auto") == "process"
    err = capsys.readouterr().err
    assert err.count("WARNING: taco-eval is running untrusted programs with isolation 'process' only") == 1
    assert "no libseccomp" in err and "no bwrap" in err and "apt install bubblewrap" in err


def test_unknown_or_unavailable_levels_are_clear_errors(monkeypatch):
    with pytest.raises(sandbox.IsolationUnavailable, match="unknown isolation level 'docker'"):
        sandbox.resolve("docker")
    monkeypatch.setattr(sandbox, "unavailable_reasons", lambda: {"bwrap": "bwrap is not installed"})
    with pytest.raises(sandbox.IsolationUnavailable, match="'bwrap' is not available on this machine: bwrap is not"):
        sandbox.resolve("bwrap")
    with pytest.raises(ValueError, match="resolve 'auto'"):
        ExecutionPool(1, isolation="auto")


def test_describe_says_what_the_level_amounts_to():
    for level in sandbox.available_levels():
        d = sandbox.describe(level)
        assert d["level"] == level
        assert set(d) >= {"bwrap", "seccomp_filter", "landlock_abi", "unprivileged_uid", "pids_cgroup"}
    if "bwrap" in sandbox.available_levels():
        assert sandbox.describe("bwrap")["bwrap"]
        assert sandbox.describe("bwrap")["unprivileged_uid"] == (os.geteuid() == 0)


def test_programs_may_read_only_interpreter_and_system_folders():
    paths = sandbox.readable_paths()
    for p in sandbox.python_paths():
        assert not (ROOT == Path(p) or ROOT.is_relative_to(p)), f"{p} would expose the project and its data"
    assert not any(p in ("/", "/home", "/root", "/tmp", "/work", str(Path.home())) for p in paths)


@pytest.mark.skipif(bwrap.executable() is None, reason="bwrap is not installed")
def test_bwrap_binds_module_files_never_project_or_data_folders():
    argv = bwrap.command(sandbox.python_paths(), "pass", os.geteuid() == 0)
    binds = [argv[i + 1] for i, a in enumerate(argv) if a in ("--ro-bind", "--bind", "--ro-bind-try", "--bind-try")]
    under_root = [b for b in binds if Path(b).is_relative_to(ROOT)]
    venv = Path(os.path.realpath(sys.prefix))
    for b in under_root:
        assert b.endswith(".py") or Path(b).is_relative_to(venv), f"{b}: only module files of the project are bound"
    assert not any("data" in Path(b).parts for b in under_root)
    assert "--bind" not in argv and "--bind-try" not in argv  # nothing writable from outside
    for flag in ("--unshare-net", "--unshare-pid", "--die-with-parent", "--clearenv", "--new-session"):
        assert flag in argv
    remounted = {argv[i + 1] for i, a in enumerate(argv) if a == "--remount-ro"}
    assert remounted >= {"/", "/dev", "/dev/shm"}  # only the size-capped /tmp is writable


def test_seccomp_filter_has_the_pid_placeholder():
    if "seccomp" in sandbox.unavailable_reasons():
        pytest.skip(sandbox.unavailable_reasons()["seccomp"])
    f = seccomp_filter.CompiledFilter()
    assert f.offsets and f.instructions > len(seccomp_filter.DENIED) // 4


def test_landlock_ruleset_confines_a_child(tmp_path):
    if landlock.abi_version() < 1:
        pytest.skip("no Landlock in this kernel")
    inside, outside = tmp_path / "in", tmp_path / "out"
    inside.mkdir()
    outside.mkdir()
    (outside / "secret").write_text("s")
    rules = landlock.Ruleset(sandbox.readable_paths(), [str(inside)], sandbox.DEVICES)
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            seccomp_filter.set_no_new_privs()
            rules.restrict_self()
            (inside / "ok").write_text("x")
            try:
                (outside / "secret").read_text()
            except PermissionError:
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    rules.close()
    assert os.waitstatus_to_exitcode(status) == 0
    assert (inside / "ok").exists()


def test_worker_cgroups_are_never_shared_and_cap_pids_and_test_memory():
    if not cgroups.available():
        pytest.skip("no writable cgroups here")
    limits = Limits(memory_limit_mb=100, max_processes=6)
    a, b = cgroups.create("w0", limits), cgroups.create("w0", limits)
    try:
        assert a.slots != b.slots
        pids = a.slots.get("pids", a.slots.get("v2"))
        assert (pids / "pids.max").read_text().strip() == "10"  # the worker and its child count too
        assert (pids / "tests" / "pids.max").read_text().strip() == "6"  # a test alone: its own cap
        if cgroups.available()["memory"]:
            memory = a.slots.get("memory", a.slots.get("v2")) / "tests"
            limit = memory / ("memory.max" if a.version == "v2" else "memory.limit_in_bytes")
            assert int(limit.read_text()) == (100 + cgroups.MEMORY_HEADROOM_MB) << 20
    finally:
        a.remove()
        b.remove()
    assert not any(p.exists() for p in [*a.slots.values(), *b.slots.values()])


@pytest.mark.skipif(os.environ.get("CI") != "true", reason="CI installs bubblewrap and libseccomp; a laptop may not")
def test_ci_exercises_the_strong_levels():
    # Every strong-level test skips when its level is unavailable: in CI that must be a failure,
    # or a broken sandbox start (a venv hidden by the private /tmp, say) would pass unnoticed.
    assert sandbox.unavailable_reasons() == {}


@pytest.mark.skipif(bwrap.executable() is None, reason="bwrap is not installed")
def test_bwrap_sandbox_has_its_own_ipc_namespace():
    if "bwrap" in sandbox.unavailable_reasons():
        pytest.skip(sandbox.unavailable_reasons()["bwrap"])
    argv = bwrap.command(
        sandbox.python_paths(), "import os; print(os.readlink('/proc/self/ns/ipc'))", os.geteuid() == 0
    )
    inside = subprocess.run(argv, capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL).stdout.strip()
    assert inside.startswith("ipc:[") and inside != os.readlink("/proc/self/ns/ipc")


def test_no_test_child_runs_as_root_at_the_strong_levels(level):
    if os.geteuid() != 0 or level == "process":
        pytest.skip("only root drops to an unprivileged uid, and only at the strong levels")
    code = "import os\nprint(*os.getresuid(), *os.getresgid())\n"
    with ExecutionPool(1, Limits(timeout_s=5), level) as pool:
        (run,) = list(pool.run([ProgramJob(0, code, None, [""])], lambda job, i, outcome: (outcome, True)))
    ids = [int(x) for x in run.verdicts[0].stdout.split()]
    assert len(ids) == 6 and 0 not in ids, ids
    assert sandbox.describe(level)["unprivileged_uid"]
