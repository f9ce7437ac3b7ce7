"""Recording a DECTRIS stream as it arrives: one NXmx master + data pair per series.

`StreamRecorder` takes the parsed messages from the receive thread (``put`` never blocks; when
its queue is full the message is counted as lost) and writes them in its own thread with
`NXmxWriter`: compressed images unchanged (direct chunk writes), the start message's geometry,
mask, flatfield and plain fields, and each image's id, time and user data. `beamstream replay`
serves the files back as a V2 stream.
"""

from __future__ import annotations

import collections
import logging
import queue
import threading
from pathlib import Path
from typing import Any

from .messages import Image, SeriesEnd, SeriesStart
from .nxmx import NXmxWriter

__all__ = ["StreamRecorder"]

log = logging.getLogger(__name__)


class StreamRecorder:
    """Write series to ``<prefix>_<series_id>_master.h5`` (+ ``_data_000001.h5``).

    Parameters
    ----------
    prefix
        Path prefix of the files (folders are created).
    queue_size
        Messages waiting to be written before further ones are counted as lost.
    """

    def __init__(self, prefix: str | Path, queue_size: int = 256):
        self.prefix = Path(prefix)
        self.prefix.parent.mkdir(parents=True, exist_ok=True)
        self._q: queue.Queue[Any] = queue.Queue(maxsize=queue_size)
        self.lost: collections.Counter[str] = collections.Counter()
        self.files: list[Path] = []
        self.images = 0
        self._writer: NXmxWriter | None = None
        self._thread = threading.Thread(target=self._run, name="dectris recorder", daemon=True)
        self._thread.start()

    def put(self, msg: SeriesStart | Image | SeriesEnd) -> None:
        """Queue a message for writing (never blocks)."""
        try:
            self._q.put_nowait(msg)
        except queue.Full:
            self.lost["record_overload"] += 1

    def close(self) -> None:
        """Write what is queued, close the files."""
        self._q.put(None)
        self._thread.join(timeout=60)

    def _run(self) -> None:
        while True:
            msg = self._q.get()
            if msg is None:
                break
            try:
                self._write(msg)
            except (OSError, ValueError, TypeError) as e:
                self.lost["record_error"] += 1
                log.error("recording %s: %s", self.prefix, e)
        self._finish()

    def _write(self, msg: Any) -> None:
        if isinstance(msg, SeriesStart):
            if self._writer is not None and msg.unique_id == self._writer.start.unique_id:
                return  # a repeated start of the open series
            self._finish()
            self._writer = NXmxWriter(self.prefix, msg)
            self.files.append(self._writer.master)
        elif isinstance(msg, Image):
            w = self._writer
            if w is None or msg.unique_id != w.start.unique_id:
                self.lost["record_no_series"] += 1
                return
            w.image(msg)
            self.images += 1
        elif isinstance(msg, SeriesEnd):
            self._finish()

    def _finish(self) -> None:
        if self._writer is not None:
            self._writer.close()
            self._writer = None
