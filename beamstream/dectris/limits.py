"""Explicit size limits for decoding untrusted DECTRIS stream messages."""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

from beamstream.streamer.protocol import MalformedMessage  # the same counted-reason error

__all__ = ["DectrisLimits", "DEFAULT_LIMITS", "MalformedMessage"]


@dataclass(frozen=True)
class DectrisLimits:
    """Upper bounds on every length a message declares.

    Attributes
    ----------
    max_message_bytes
        One received message (all parts); larger ones are refused by the socket.
    max_array_bytes
        One decoded array (uncompressed size, from dims and dtype and from the compression
        header): a decompression bomb is refused before anything is allocated.
    max_ndim
        Dimensions of one MultiDimArray.
    max_channels
        Channels (threshold images) of one image message.
    max_depth
        Nesting depth of a CBOR item.
    max_json_bytes
        One JSON part of a legacy (v1) message.
    """

    max_message_bytes: int = 512 << 20
    max_array_bytes: int = 256 << 20
    max_ndim: int = 3
    max_channels: int = 8
    max_depth: int = 32
    max_json_bytes: int = 16 << 20

    @classmethod
    def from_mapping(cls, raw: dict[str, Any], where: str = "limits") -> DectrisLimits:
        """Build from a config table; ValueError naming ``where.key`` for a bad entry."""
        known = {f.name for f in fields(cls)}
        for k, v in raw.items():
            if k not in known:
                raise ValueError(f"{where}.{k}: expected one of {', '.join(sorted(known))}")
            if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                raise ValueError(f"{where}.{k}: expected a positive integer, got {v!r}")
        return cls(**raw)


DEFAULT_LIMITS = DectrisLimits()
