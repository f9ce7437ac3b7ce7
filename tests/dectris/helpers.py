"""Shared by the DECTRIS tests: parsed start messages of the simulator."""

from __future__ import annotations

import functools

from beamstream.dectris.cbor import decode_cbor
from beamstream.dectris.limits import DEFAULT_LIMITS
from beamstream.dectris.messages import SeriesStart, parse_v2
from beamstream.dectris.simulate import EigerSimulator


def parse_start(sim: EigerSimulator, series_id: int = 1) -> SeriesStart:
    """The `SeriesStart` of the simulator's first message."""
    kind, parts = next(iter(sim.messages(0, series_id)))
    assert kind == "start"
    start = parse_v2(decode_cbor(parts[0]), DEFAULT_LIMITS)
    assert isinstance(start, SeriesStart)
    return start


@functools.cache
def simulated_start() -> SeriesStart:
    """The start message of the default simulated Eiger (1024 x 1024)."""
    return parse_start(EigerSimulator())
