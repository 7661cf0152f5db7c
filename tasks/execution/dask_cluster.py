"""Where execution runs when it is spread over machines: a Dask cluster.

`connect` reaches an existing scheduler, or starts a LocalCluster of worker processes on this
machine, and checks every worker before any work is sent (README, "Scaling out"):

- a worker process must not be daemonic (`distributed.worker.daemon: False`; for `dask worker`
  the environment variable `DASK_DISTRIBUTED__WORKER__DAEMON=False`): the execution pool it starts
  has children of its own, which `multiprocessing` refuses to a daemonic process. (The pool is
  built on `multiprocess`, which keeps its own process table and did start in a daemonic worker
  here; the rule stays, so that no pool depends on which of the two libraries it uses.);
- it must import the project (the modules a task needs), which also warms it up;
- it must reach the one Prefect API of the run, when there is one: a worker without one would
  start a temporary server of its own.

`placement` sizes a worker's execution pool: the cores it may use shared among the threads of
every Dask worker on its host, so that several workers on one machine do not oversubscribe it.
"""

from __future__ import annotations

import contextlib
import importlib
import multiprocessing
import os
import threading
import urllib.request
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

from tasks import defaults

DAEMON_KEY = "distributed.worker.daemon"
DAEMON_ENV = "DASK_DISTRIBUTED__WORKER__DAEMON"


class ClusterError(RuntimeError):
    """The cluster cannot run our work: the message says what is wrong and how to fix it."""


@dataclass(frozen=True)
class WorkerReport:
    """What a worker process says about itself (`probe`, run on every worker)."""

    daemon: bool
    import_error: str | None
    api_error: str | None


def probe(modules: Sequence[str] = (), api_url: str | None = None) -> WorkerReport:
    """Runs on a worker: can it start an execution pool, import `modules`, reach `api_url`?"""
    import_error = None
    for name in modules:
        try:
            importlib.import_module(name)
        except Exception as exc:  # noqa: BLE001 - any failure to import is reported, not raised
            import_error = f"{name}: {type(exc).__name__}: {exc}"
            break
    api_error = None
    if api_url:
        try:
            with urllib.request.urlopen(api_url.rstrip("/") + "/health", timeout=defaults.DASK_API_CHECK_TIMEOUT_S):
                pass
        except OSError as exc:
            api_error = str(exc)
    return WorkerReport(
        daemon=multiprocessing.current_process().daemon,
        import_error=import_error,
        api_error=api_error,
    )


def problems_of(reports: dict[str, WorkerReport], api_url: str | None) -> list[str]:
    """One line per worker that cannot run our work, saying how to fix it."""
    lines = []
    for address, r in sorted(reports.items()):
        if r.daemon:
            lines.append(
                f"{_who(address)} is a daemonic process, so it cannot start an execution pool: "
                f"start workers with {DAEMON_ENV}=False (or `distributed.worker.daemon: false` in the Dask config)"
            )
        if r.import_error:
            lines.append(
                f"{_who(address)} cannot import taco-eval ({r.import_error}): install it where it runs, "
                "or start it with PYTHONPATH set to the checkout"
            )
        if r.api_error:
            lines.append(
                f"{_who(address)} cannot reach the Prefect API at {api_url} ({r.api_error}): every worker must "
                "reach the run's one Prefect server; start it with `prefect server start --host 0.0.0.0` and set "
                "PREFECT_API_URL to an address the workers can reach"
            )
    return lines


@contextlib.contextmanager
def connect(
    address: str | None = None,
    workers: int | None = None,
    *,
    check_modules: Sequence[str] = (),
    api_url: str | None = None,
) -> Iterator[Any]:
    """A `distributed.Client` to the scheduler at `address`, or to a LocalCluster of `workers`
    single-threaded worker processes started here (and stopped on exit); every worker checked."""
    if (address is None) == (workers is None):
        raise ValueError("give either a scheduler address or a number of local workers")
    import dask
    import distributed

    # Global, not a `with dask.config.set`: a LocalCluster's nanny reads it again whenever it
    # restarts a worker that died.
    dask.config.set({DAEMON_KEY: False})
    with contextlib.ExitStack() as stack:
        if workers is not None:
            if workers < 1:
                raise ValueError(f"a local Dask cluster needs at least 1 worker, got {workers}")
            cluster = stack.enter_context(
                distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True)
            )
            address = cluster.scheduler_address
        try:
            client = stack.enter_context(
                distributed.Client(address, timeout=defaults.DASK_CONNECT_TIMEOUT_S, set_as_default=False)
            )
        except OSError as exc:
            raise ClusterError(
                f"cannot reach the Dask scheduler at {address} ({exc}); start one with `dask scheduler` "
                "and pass its address (tcp://HOST:8786)"
            ) from exc
        try:
            client.wait_for_workers(1, timeout=defaults.DASK_WORKER_WAIT_S)
        except TimeoutError:
            raise ClusterError(
                f"no Dask worker joined the scheduler at {address} within {defaults.DASK_WORKER_WAIT_S:g} s; "
                f"start one: {DAEMON_ENV}=False dask worker {address} --nthreads 1"
            ) from None
        # The scheduler unpickles task specs too: it must import the project as well.
        reports = {"scheduler": client.run_on_scheduler(probe, list(check_modules))}
        reports.update(client.run(probe, list(check_modules), api_url))
        problems = problems_of(reports, api_url)
        if problems:
            raise ClusterError("; ".join(problems))
        yield client


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def share_of_host(cores: int, threads_on_host: int) -> int:
    """Execution workers for one Dask worker thread: its host's cores over the host's threads."""
    return max(1, cores // max(1, threads_on_host))


@dataclass(frozen=True)
class Placement:
    """Where a piece of work runs: its execution pool's size and slot, and the Dask worker."""

    pool_workers: int | None = None  # None: one per core
    pool_slot: int | None = None  # threads of one worker process get a pool each
    worker: str | None = None  # the Dask worker's address; None outside a cluster


def placement() -> Placement:
    """The calling thread's place: outside a Dask worker, the default (a pool over every core).
    On a worker, the host's cores are shared among the threads of every Dask worker on that host,
    and each thread of a worker with several gets its own pool, so shards run side by side."""
    try:
        from distributed import get_worker

        worker = get_worker()
    except (ImportError, ValueError):
        return Placement()
    host = _host(worker.address)
    everyone = worker.client.scheduler_info(n_workers=-1)["workers"]
    threads = sum(w["nthreads"] for a, w in everyone.items() if _host(a) == host) or worker.state.nthreads
    slot = threading.get_ident() if worker.state.nthreads > 1 else None
    return Placement(share_of_host(_cores(), threads), slot, worker.address)


def _who(address: str) -> str:
    return address if address == "scheduler" else f"worker {address}"


def _host(address: str) -> str:
    return address.split("://", 1)[-1].rsplit(":", 1)[0]
