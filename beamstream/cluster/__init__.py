"""Scale-out on Dask distributed (``beamstream[cluster]``); see ``docs/cluster.md``.

* live (`beamstream.cluster.live.LiveDriver`, ``beamstream run --workers N``): every Dask worker
  pulls trains itself from the PUSH source and keeps a partial state; at each snapshot the driver
  swaps the workers' interval deltas out, Dask merges them in a tree, and the driver adds the
  merged delta to its total and publishes it to the hub and sinks;
* offline (`beamstream.cluster.offline.reprocess`, ``beamstream reprocess``): the pipeline is
  mapped over train chunks of an archived run (each worker opens the file itself and reads only
  its chunk); results are merged in a fixed tree over the chunk indices as chunks complete.

Only `beamstream.cluster.dask_backend` imports ``distributed``; every other module here is pure
(importable, and the offline path usable in-process, without Dask).
"""

from __future__ import annotations

__all__: list[str] = []
