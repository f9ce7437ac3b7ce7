"""DECTRIS detector streams (Eiger2, Pilatus4): Stream V2 (CBOR) and the legacy stream (v1).

* `DectrisSource`: the ``[source] type = "dectris"`` source (PULL, decode, decompress in a pool,
  group images into trains);
* `beamstream.dectris.cbor`, `.messages`, `.legacy`: decoding with size limits;
* `beamstream.dectris.encode`: encoding (simulator, replay);
* `beamstream.dectris.geometry`: the q-phi geometry, mask and flat from a series' start message;
* `beamstream.dectris.positions`, `.bluesky`: scan positions of images.

See docs/dectris.md.
"""

from __future__ import annotations

__all__ = ["DectrisSource"]


def __getattr__(name: str):  # noqa: ANN202 - lazy, so that importing the package stays cheap
    if name == "DectrisSource":
        from .source import DectrisSource

        return DectrisSource
    raise AttributeError(name)
