"""The default source: a Karabo Bridge `Receiver` (``[source] type = "karabo_bridge"``)."""

from __future__ import annotations

from beamstream.config import SourceConfig
from beamstream.sources import Source
from beamstream.streamer.receiver import Receiver, receiver_options

__all__ = ["KaraboBridgeSource"]


class KaraboBridgeSource(Receiver, Source):
    """A `Receiver` on ``source.endpoint`` (``socket``, ``queue``, ``policy``,
    ``max_frame_bytes`` and the CURVE keys from config)."""

    type_name = "karabo_bridge"

    @classmethod
    def from_config(cls, config: SourceConfig, path: str = "<string>") -> KaraboBridgeSource:
        return cls(config.endpoint, config.socket, **receiver_options(config, path))
