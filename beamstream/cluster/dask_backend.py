"""`DaskBackend`: the only module of beamstream that imports ``distributed``.

It connects to (or starts) a Dask cluster and offers the few operations the live driver and the
offline reprocessing need: pinned and long-running tasks, a pairwise merge tree of futures, and a
map whose results arrive as they complete. Per-train data never passes through it: workers read
trains themselves; only partial states and counters move, worker to worker and to the client.
"""

from __future__ import annotations

import logging
import sys
import uuid
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

from distributed import Client, Future, LocalCluster, as_completed, secede, wait

__all__ = ["DaskBackend"]

log = logging.getLogger(__name__)


def _quiet_dask_logs() -> None:
    """Dask's own logs (scheduler, nanny, worker life cycle: INFO, and warnings such as workers
    slow to stop) only when asked for with -v; beamstream logs what matters to a run itself."""
    level = max(logging.getLogger().getEffectiveLevel(), logging.INFO)
    quiet = logging.ERROR if level > logging.INFO else level
    for name in ("distributed", "dask"):
        logging.getLogger(name).setLevel(quiet)


def _long_running(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn`` as a long-running task (its thread leaves the worker's pool at once)."""
    secede()
    return fn(*args)


class DaskBackend:
    """A Dask client (and the LocalCluster it started, if any) with beamstream's operations.

    Parameters
    ----------
    client
        A connected client.
    cluster
        A cluster to close with the client (one `connect` started).
    """

    def __init__(self, client: Client, cluster: LocalCluster | None = None):
        self.client = client
        self.cluster = cluster

    @classmethod
    def connect(
        cls,
        workers: int | None = None,
        scheduler: str | None = None,
        dashboard_address: str | None = None,
        timeout: float = 60.0,
    ) -> DaskBackend:
        """Connect to ``scheduler``, or start a LocalCluster of ``workers`` worker processes.

        Local workers are single-threaded processes (``threads_per_worker=1``): beamstream
        scales by processes, each with its own receiver and pipeline.
        """
        _quiet_dask_logs()
        if scheduler:
            client = Client(scheduler, timeout=timeout)
            return cls(client)._announce()
        if not workers or workers < 1:
            raise ValueError(f"--workers: expected a positive number of workers, got {workers!r}")
        with warnings.catch_warnings():
            # "port 8787 is already in use ... instead": the link printed below has the port
            warnings.filterwarnings("ignore", message="Port .* is already in use")
            cluster = LocalCluster(
                n_workers=workers,
                threads_per_worker=1,
                processes=True,
                dashboard_address=dashboard_address,
                silence_logs=logging.ERROR,
            )
        try:
            client = Client(cluster, timeout=timeout)
            client.wait_for_workers(workers, timeout=timeout)
        except BaseException:
            cluster.close()
            raise
        return cls(client, cluster)._announce()

    def _announce(self) -> DaskBackend:
        """Say once (on stderr) where the Dask dashboard is."""
        link = getattr(self.client, "dashboard_link", None)
        if link:
            sys.stderr.write(f"Dask dashboard: {link}\n")
            sys.stderr.flush()
        return self

    def close(self) -> None:
        """Close the client, and the cluster when this backend started it."""
        try:
            self.client.close()
        finally:
            if self.cluster is not None:
                self.cluster.close()

    def __enter__(self) -> DaskBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- workers ------------------------------------------------------------------------------
    def workers(self) -> list[str]:
        """Addresses of the workers connected now (sorted)."""
        return sorted(self.client.scheduler_info(n_workers=-1)["workers"])

    def describe(self) -> str:
        link = getattr(self.client, "dashboard_link", None) if self.cluster is None else None
        return f"Dask scheduler {self.client.scheduler.address}" + (f" ({link})" if link else "")

    # -- tasks --------------------------------------------------------------------------------
    def submit_long(self, address: str, fn: Callable[..., Any], *args: Any, key: str) -> Future:
        """A long-running task on the worker at ``address`` only (never moved elsewhere)."""
        return self.client.submit(
            _long_running, fn, *args, key=key, workers=[address], pure=False, retries=0
        )

    def call_on(self, address: str, fn: Callable[..., Any], *args: Any) -> Future:
        """A task on the worker at ``address`` only."""
        return self.client.submit(fn, *args, workers=[address], pure=False)

    def wait(self, futures: Sequence[Future], timeout: float) -> None:
        """Wait until every future is done (finished, failed) or ``timeout`` s passed."""
        pending = [f for f in futures if f.status == "pending"]
        if pending:
            try:
                wait(pending, timeout=timeout)
            except TimeoutError:
                pass
            except Exception:  # a future cancelled meanwhile (its worker was lost): see state()
                log.debug("wait interrupted", exc_info=True)

    @staticmethod
    def state(future: Future) -> str:
        """``finished``, ``error``, ``cancelled`` or ``pending``."""
        return future.status if future.status in ("finished", "error", "cancelled") else "pending"

    @staticmethod
    def error(future: Future) -> BaseException | None:
        return future.exception() if future.status == "error" else None

    def result(self, future: Future, timeout: float | None = None) -> Any:
        return future.result(timeout=timeout)

    def cancel(self, futures: Iterable[Future]) -> None:
        futures = list(futures)
        if futures:
            self.client.cancel(futures, force=True)

    def merge_tree(self, futures: Sequence[Future], fn: Callable[..., Any], *args: Any) -> Future:
        """Merge ``futures`` pairwise with ``fn(*args, a, b)`` tasks, level by level, to one."""
        level = list(futures)
        if not level:
            raise ValueError("nothing to merge")
        while len(level) > 1:
            nxt = [
                self.client.submit(fn, *args, a, b, pure=False)
                for a, b in zip(level[::2], level[1::2], strict=False)
            ]
            if len(level) % 2:
                nxt.append(level[-1])
            level = nxt
        return level[0]

    def map_unordered(
        self,
        fn: Callable[..., Any],
        items: Sequence[Any],
        *args: Any,
        retries: int = 2,
        name: str = "beamstream-chunk",
    ) -> Iterator[tuple[int, Any]]:
        """``(index, fn(*args, items[index]))`` for every item, as they complete.

        A failed task is retried ``retries`` times (a task of a lost worker is re-run elsewhere
        by Dask); a task that still fails raises here. Results are released once yielded.
        """
        keys = [f"{name}-{uuid.uuid4().hex[:8]}-{i}" for i in range(len(items))]
        pending = dict(
            zip(
                keys,
                self.client.map(
                    fn,
                    *[[a] * len(items) for a in args],
                    items,
                    key=keys,
                    retries=retries,
                    pure=False,
                ),
                strict=True,
            )
        )
        index = {k: i for i, k in enumerate(keys)}
        try:
            for future, value in as_completed(list(pending.values()), with_results=True):
                del pending[future.key]  # the client lets go: the worker frees the result
                yield index[future.key], value
        finally:
            self.cancel(pending.values())
