"""A plug-in replay reader for the tests: ``<n>.counts`` text files of n one-value trains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from beamstream.replay.base import Reader
from beamstream.streamer.train import Train


class CountsReader(Reader):
    """Trains ``1..n`` with ``{"COUNTER": {"value": i}}`` from a file holding ``n``."""

    format = "counts"

    @classmethod
    def can_open(cls, path: Path, h5: Any = None) -> bool:
        return path.suffix == ".counts"

    def __init__(self, path: str | Path, **options: Any):
        super().__init__(path, **options)
        n = int(Path(path).read_text())
        self.train_ids = np.arange(1, n + 1, dtype=np.uint64)

    def _read(self, position: int) -> Train | None:
        tid = int(self.train_ids[position])
        return Train(tid, None, {"COUNTER": {"value": tid}})
