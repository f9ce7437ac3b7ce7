"""The default source: a Karabo Bridge `Receiver` (``[source] type = "karabo_bridge"``)."""

from __future__ import annotations

from beamstream.config import SourceConfig
from beamstream.sources import Source
from beamstream.streamer.receiver import Receiver

__all__ = ["KaraboBridgeSource"]


class KaraboBridgeSource(Receiver, Source):
    """A `Receiver` on ``source.endpoint`` (``socket``, ``queue`` and ``policy`` from config)."""

    type_name = "karabo_bridge"

    @classmethod
    def from_config(cls, config: SourceConfig, path: str = "<string>") -> KaraboBridgeSource:
        return cls(config.endpoint, config.socket, queue=config.queue, policy=config.policy)
