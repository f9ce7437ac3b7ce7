"""A plug-in source for the tests: trains from a counter, a new epoch on request."""

from __future__ import annotations

from typing import Any

import numpy as np

from beamstream.config import ConfigError, SourceConfig
from beamstream.sources import Source
from beamstream.streamer.train import Train

DET = "DET/0:xtdf"


class CountingSource(Source):
    """``trains`` trains of ones (``[source] trains = N``); ``new_epoch_at`` emits an event."""

    type_name = "counting"

    def __init__(self, trains: int, new_epoch_at: int | None = None):
        self.left = list(range(1, trains + 1))
        self.new_epoch_at = new_epoch_at
        self._closed = False
        self.sent = 0

    @classmethod
    def check(cls, config: SourceConfig, path: str = "<string>") -> None:
        for key in config.options:
            if key not in ("trains", "new_epoch_at"):
                raise ConfigError(f"{path}: source.{key}: unknown parameter of 'counting'")
        n = config.options.get("trains")
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ConfigError(f"{path}: source.trains: expected a positive integer, got {n!r}")

    @classmethod
    def from_config(cls, config: SourceConfig, path: str = "<string>") -> CountingSource:
        return cls(config.options["trains"], config.options.get("new_epoch_at"))

    def get(self, timeout: float | None = None) -> Train | None:
        if not self.left:
            self._closed = True
            return None
        tid = self.left.pop(0)
        if tid == self.new_epoch_at:
            self.emit("new_epoch")
        self.sent += 1
        return Train(tid, None, {DET: {"image.data": np.full((2, 3, 4), tid, np.uint16)}})

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        self._closed = True

    def stats(self) -> dict[str, Any]:
        return {"received": self.sent, "dropped": {"overload": 0}, "MB_per_s": 0.0}
