"""Shared by the simulated detectors: train ids, timestamps, metadata, per-train random streams."""

from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from beamstream.streamer.train import Train

__all__ = [
    "FIRST_TRAIN_ID",
    "TRAIN_PERIOD",
    "EPOCH",
    "SimulatedDetector",
    "source_metadata",
]

#: the first train id, as karabo-bridge's simulator uses
FIRST_TRAIN_ID = 10_000_000_000
#: seconds between trains (10 Hz at European XFEL)
TRAIN_PERIOD = 0.1
#: Unix time of `FIRST_TRAIN_ID` for the deterministic timestamps (2024-01-01T00:00:00Z)
EPOCH = 1_704_067_200


def source_metadata(source: str, train_id: int, timestamp: float) -> dict[str, Any]:
    """The Karabo Bridge metadata map of one source.

    Parameters
    ----------
    source
        Source name.
    train_id
        Train id (``timestamp.tid``).
    timestamp
        Unix time in seconds.

    Returns
    -------
    dict
        ``source``, ``timestamp`` (float), ``timestamp.sec`` (str), ``timestamp.frac`` (str,
        18 digits of attoseconds, nanosecond resolution) and ``timestamp.tid`` (int).
    """
    sec = math.floor(timestamp)
    nanos = round((timestamp - sec) * 1e9)
    if nanos >= 1_000_000_000:
        sec, nanos = sec + 1, nanos - 1_000_000_000
    return {
        "source": source,
        "timestamp": float(timestamp),
        "timestamp.sec": str(int(sec)),
        "timestamp.frac": f"{nanos * 10**9:018d}",
        "timestamp.tid": int(train_id),
    }


class SimulatedDetector(ABC):
    """Base class of the simulated detectors: deterministic trains from ``(seed, train_id)``.

    Subclasses build their noise-free components once in ``__init__`` and implement
    `_train_data`, which adds the per-train randomness drawn from `rng` streams. Every train can
    thus be regenerated on its own, in any order, with identical content.

    Parameters
    ----------
    seed
        Seed of everything random (a non-negative integer).
    frames
        Frames per train.
    first_train_id
        Train id of the first train of `trains`.
    """

    #: the detector's name in `beamstream simulate --detector`
    detector: ClassVar[str] = ""
    #: the main (detector) source and its image key
    source: str = ""
    image_key: str = ""

    def __init__(self, seed: int = 0, frames: int = 1, first_train_id: int = FIRST_TRAIN_ID):
        if int(seed) < 0:
            raise ValueError(f"seed: expected a non-negative integer, got {seed!r}")
        if int(frames) < 1:
            raise ValueError(f"frames: expected a positive integer, got {frames!r}")
        self.seed = int(seed)
        self.frames = int(frames)
        self.first_train_id = int(first_train_id)

    # -- randomness -----------------------------------------------------------------------------
    def rng(self, train_id: int, stream: int) -> np.random.Generator:
        """The random generator of one train and one stream (independent of every other)."""
        return np.random.default_rng([self.seed, int(train_id), int(stream)])

    def noise_seed(self, train_id: int) -> int:
        """A 63-bit seed for the numba noise kernels of one train."""
        return int(self.rng(train_id, 99).integers(0, 2**63 - 1))

    def static_rng(self, stream: int) -> np.random.Generator:
        """The random generator of the static (train-independent) components."""
        return np.random.default_rng([self.seed, int(stream)])

    # -- trains ---------------------------------------------------------------------------------
    def timestamp_of(self, train_id: int) -> float:
        """The deterministic timestamp of a train: `EPOCH` + 0.1 s per train past the first id."""
        return EPOCH + (int(train_id) - FIRST_TRAIN_ID) * TRAIN_PERIOD

    def train(self, train_id: int, timestamp: float | None = None) -> Train:
        """Generate one train.

        Parameters
        ----------
        train_id
            The train id; the content depends only on ``(seed, train_id)`` and the options.
        timestamp
            Unix time to put in the metadata (default: `timestamp_of`, deterministic). A live
            server passes the wall-clock time.

        Returns
        -------
        Train
            With ``data``, ``meta`` (every source) and ``dims`` (every detector array).
        """
        train_id = int(train_id)
        ts = self.timestamp_of(train_id) if timestamp is None else float(timestamp)
        data, dims = self._train_data(train_id)
        meta = {src: source_metadata(src, train_id, ts) for src in data}
        return Train(train_id, ts, data, meta, dims)

    def trains(self, n: int | None = None, start: int | None = None) -> Iterator[Train]:
        """Iterate over ``n`` consecutive trains (endless if None) from ``start``.

        ``start`` defaults to `first_train_id`.
        """
        tid = self.first_train_id if start is None else int(start)
        count = 0
        while n is None or count < n:
            yield self.train(tid + count)
            count += 1

    def __iter__(self) -> Iterator[Train]:
        return self.trains()

    def train_index(self, train_id: int) -> int:
        """Trains since `first_train_id` (the position in step and scan sequences)."""
        return int(train_id) - self.first_train_id

    @property
    @abstractmethod
    def truth(self) -> Any:
        """The train-independent ground truth."""

    @abstractmethod
    def train_truth(self, train_id: int) -> dict[str, Any]:
        """The ground truth of one train (without generating its images)."""

    @abstractmethod
    def _train_data(
        self, train_id: int
    ) -> tuple[dict[str, dict[str, Any]], dict[str, dict[str, tuple[str, ...]]]]:
        """``data`` and ``dims`` of one train."""
