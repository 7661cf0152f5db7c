"""Execute-shard tasks on a Dask cluster through prefect-dask's DaskTaskRunner.

The runner is started explicitly, before generation begins: the Dask client would otherwise
connect on the first shard (a LocalCluster takes ~20 s to start), and a cluster that cannot run
our work fails the run before any GPU time is spent. Only execution goes there: generation tasks
stay on the flow's own thread runner, in the process that holds the model.

Every worker must reach the run's one Prefect API (without one, each worker process would start
a temporary server of its own). With no PREFECT_API_URL, `api_for_cluster` makes the temporary
server this run starts anyway the run's API when the cluster is a LocalCluster on this machine,
and refuses an external cluster, whose workers could not reach it.
"""

from __future__ import annotations

import contextlib
from typing import Any, Iterator

from prefect.settings import PREFECT_API_URL, temporary_settings

from tasks.execution import dask_cluster

NEEDS_API = (
    "execution on an existing Dask cluster needs a Prefect server that every Dask worker reaches: start "
    "one with `prefect server start --host 0.0.0.0` and set PREFECT_API_URL=http://HOST:4200/api here and "
    "on the workers (--dask-workers, a cluster on this machine, can share this run's temporary server)"
)


@contextlib.contextmanager
def api_for_cluster(address: str | None, workers: int | None) -> Iterator[None]:
    """Around a run: with no PREFECT_API_URL set and a LocalCluster asked for, the temporary
    Prefect server becomes the run's API (workers on this machine reach it); for an existing
    cluster, a clear error."""
    if PREFECT_API_URL.value() or (address is None and workers is None):
        yield
        return
    if address is not None:
        raise dask_cluster.ClusterError(NEEDS_API)
    from prefect.server.api.server import SubprocessASGIServer

    server = SubprocessASGIServer()
    server.start()
    with temporary_settings({PREFECT_API_URL: server.api_url}):
        yield


@contextlib.contextmanager
def dask_runner(address: str | None, workers: int | None) -> Iterator[Any]:
    """A started DaskTaskRunner on the scheduler at `address`, or on a LocalCluster of `workers`
    processes (stopped on exit); every worker checked first (`dask_cluster.connect`)."""
    from prefect_dask import DaskTaskRunner

    api_url = PREFECT_API_URL.value()
    if not api_url:
        raise dask_cluster.ClusterError(NEEDS_API)
    with dask_cluster.connect(address, workers, check_modules=("flows.shard_tasks",), api_url=api_url) as client:
        with DaskTaskRunner(address=client.scheduler.address) as runner:
            runner.client  # connect now, not on the first shard
            yield runner
