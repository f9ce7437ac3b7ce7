"""`RawRecorder`: every received train written unchanged to a raw recording, for replay.

The layout is `beamstream.formats.raw` (``beamstream-raw/1``, see ``docs/replay.md``).
"""

from __future__ import annotations

import collections
import logging
import threading
from pathlib import Path
from typing import Any

import numpy as np

from beamstream.formats.raw import RawWriter
from beamstream.sinks.base import Sink
from beamstream.sinks.hub import Snapshot
from beamstream.streamer.train import Train

__all__ = ["RawRecorder"]

log = logging.getLogger(__name__)


class RawRecorder(Sink):
    """A sink that records every received train to a raw file (see the module doc for the layout).

    An option of the executor (`beamstream.executors.LocalExecutor` ``recorders``), which hands
    it every train as received. `put_train` only queues the train (never blocks); a writer
    thread writes batches. When the
    queue holds more than ``max_queue_bytes`` (the disk cannot keep up) new trains are dropped and
    counted in ``dropped``.

    Parameters
    ----------
    path
        The recording to create.
    compression
        ``none``, ``gzip``, ``lzf`` or an hdf5plugin filter (``lz4``, ``zstd``, ``bitshuffle``).
    max_queue_bytes
        Bound of the memory held by queued trains.
    """

    name = "raw"

    def __init__(
        self, path: str = "raw.h5", compression: str | None = None, max_queue_bytes: int = 1 << 30
    ):
        super().__init__(path=path, compression=compression)
        self.path = Path(path)
        self.compression = compression
        self.max_queue_bytes = int(max_queue_bytes)
        self.dropped = 0
        self.recorded = 0
        self._queue: collections.deque[Train] = collections.deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._done = False
        self._writer_thread: threading.Thread | None = None
        self._writer: RawWriter | None = None

    def open(self, hub: Any) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._writer = RawWriter(self.path, self.compression)
        self._writer_thread = threading.Thread(target=self._run, name="raw recorder", daemon=True)
        self._writer_thread.start()
        if hub is not None:
            hub.info["raw_path"] = str(self.path)

    def put_train(self, train: Train) -> None:  # type: ignore[override]
        size = sum(
            v.nbytes for _, d in train.data.items() for v in d.values() if isinstance(v, np.ndarray)
        )
        with self._cond:
            if self._queued_bytes + size > self.max_queue_bytes and self._queue:
                self.dropped += 1
                return
            self._queue.append(train)
            self._queued_bytes += size
            self._cond.notify()

    def write(self, snapshot: Snapshot) -> None:
        """Snapshots are not recorded (trains come through `put_train`)."""

    def close(self) -> None:
        with self._cond:
            self._done = True
            self._cond.notify()
        if self._writer_thread is not None:
            self._writer_thread.join()
        if self.dropped:
            log.warning("raw recorder: %d trains dropped (disk too slow)", self.dropped)

    def _run(self) -> None:
        writer = self._writer
        try:
            while True:
                with self._cond:
                    while not self._queue and not self._done:
                        self._cond.wait(0.5)
                    if not self._queue and self._done:
                        break
                    batch = []
                    while self._queue and len(batch) < 32:
                        batch.append(self._queue.popleft())
                try:
                    self.recorded += writer.write(batch)
                except Exception:
                    self.errors += 1
                    log.exception("raw recorder: writing %d trains failed", len(batch))
                with self._cond:
                    self._queued_bytes -= sum(
                        v.nbytes
                        for t in batch
                        for d in t.data.values()
                        for v in d.values()
                        if isinstance(v, np.ndarray)
                    )
        finally:
            writer.close()
