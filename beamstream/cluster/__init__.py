"""Scale-out on Dask distributed (``beamstream[cluster]``); see ``docs/cluster.md``.

Two executors of the one `beamstream.runner.Runner`:

* live (`beamstream.cluster.live.DaskLiveExecutor`, ``beamstream run --workers N``): every Dask
  worker pulls trains itself from the PUSH source and keeps a partial state; at each collect the
  workers' interval deltas are swapped out and merged by Dask in a tree, and the runner adds the
  merged delta to its total and publishes it to the hub and sinks;
* offline (`beamstream.cluster.offline.DaskChunkExecutor`, ``beamstream reprocess``): the
  pipeline is mapped over train chunks of an archived run (each worker opens the file itself and
  reads only its chunk); results are merged in a fixed tree over the chunk indices.

Only `beamstream.cluster.dask_backend` imports ``distributed``; every other module here is pure
(importable, and the offline path usable in-process, without Dask).
"""

from __future__ import annotations

__all__: list[str] = []
