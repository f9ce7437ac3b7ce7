"""`SeriesTracker`: the series state machine of one stream, grouping images into trains.

Pure bookkeeping (no threads, no I/O): `SeriesTracker.feed` takes a parsed message and returns
what follows from it, in order: `SeriesEvent` s (a series started or ended) and closed `Group` s
of images (``frames_per_train`` consecutive image ids of one series; the last group of a series
may be short). Train ids are contiguous over the series a tracker sees: ``base + image_id //
frames_per_train``, where the first series' base is ``series_id * SERIES_STRIDE`` and each
further series starts after the trains the previous one declared (``number_of_images``) or
used, whichever is more; so ids are monotonic and a plot over trains has no gaps between series.
Problems are counted in `SeriesTracker.dropped` by reason:

* ``image_before_start``: an image while no series is open (the image is dropped);
* ``image_of_other_series``: an image whose series is not the open one (dropped);
* ``start_mid_series``: a second start of the open series (ignored);
* ``missing_end``: a new series started before the open one ended (the open one is flushed);
* ``end_of_other_series``: an end that does not match the open series (ignored);
* ``shape_mismatch`` / ``unknown_channel``: image data that contradict the start (dropped).
"""

from __future__ import annotations

import collections
from dataclasses import dataclass, field
from typing import Any

from .messages import Image, SeriesEnd, SeriesStart

__all__ = ["SeriesTracker", "Group", "SeriesEvent", "SERIES_STRIDE"]

#: the first series' train ids start at its series_id * SERIES_STRIDE
SERIES_STRIDE = 1 << 32


@dataclass
class Group:
    """Images of one train: the series they belong to and their (image, payload) pairs."""

    series: SeriesStart
    index: int
    base: int = 0
    images: list[tuple[Image, Any]] = field(default_factory=list)

    @property
    def train_id(self) -> int:
        return self.base + self.index


@dataclass(frozen=True)
class SeriesEvent:
    """``kind`` ``"start"`` or ``"end"`` of ``series`` (``complete``: its end was received)."""

    kind: str
    series: SeriesStart
    complete: bool = True


class SeriesTracker:
    """Track the open series and group its images (see the module docstring).

    Parameters
    ----------
    frames_per_train
        Images per train (consecutive image ids ``k * N .. k * N + N - 1``).
    """

    def __init__(self, frames_per_train: int = 1):
        if frames_per_train < 1:
            raise ValueError(f"frames_per_train: expected >= 1, got {frames_per_train!r}")
        self.frames_per_train = frames_per_train
        self.series: SeriesStart | None = None
        self.group: Group | None = None
        self.dropped: collections.Counter[str] = collections.Counter()
        self.series_seen = 0
        self.images_in_series = 0
        self.base: int | None = None  # train id of image 0 of the open series
        self.next_base = 0  # where the next series' train ids start

    def feed(self, msg: SeriesStart | Image | SeriesEnd, payload: Any = None) -> list[Any]:
        """Events and closed groups that follow from ``msg`` (``payload``: kept with an image)."""
        if isinstance(msg, Image):
            return self._image(msg, payload)
        if isinstance(msg, SeriesStart):
            return self._start(msg)
        return self._end(msg)

    def switch(self, start: SeriesStart, base: int | None = None) -> list[Any]:
        """Make ``start`` the open series without counting a missing end (relayed streams,
        whose ends stay with the relay); ``base``: its first train id, as the relay counted."""
        return self._open(start, base)

    def flush(self) -> list[Group]:
        """Close the open group (idle stream or shutdown); the series stays open."""
        group, self.group = self.group, None
        return [group] if group is not None and group.images else []

    def check_image(self, msg: Image) -> str | None:
        """The reason ``msg`` cannot be used in the open series, or None."""
        if self.series is None:
            return "image_before_start"
        if msg.unique_id != self.series.unique_id or msg.series_id != self.series.series_id:
            return "image_of_other_series"
        s = self.series
        for ch, arr in msg.data.items():
            if s.channels and ch not in s.channels:
                return "unknown_channel"
            if s.image_size is not None and tuple(arr.shape[-2:]) != s.image_size:
                return "shape_mismatch"
        return None

    # -- internals ------------------------------------------------------------------------------
    def _start(self, msg: SeriesStart) -> list[Any]:
        if self.series is not None:
            if msg.unique_id == self.series.unique_id and msg.series_id == self.series.series_id:
                self.dropped["start_mid_series"] += 1
                return []
            self.dropped["missing_end"] += 1
        return self._open(msg)

    def _open(self, start: SeriesStart, base: int | None = None) -> list[Any]:
        """Close the open series (its end missing) and open ``start``."""
        out: list[Any] = []
        if self.series is not None:
            out += self.flush()
            out.append(SeriesEvent("end", self.series, complete=False))
        if base is None:
            base = self.next_base if self.base is not None else start.series_id * SERIES_STRIDE
        self.base = base
        n = start.number_of_images or 0
        self.next_base = base + -(-n // self.frames_per_train)
        self.series = start
        self.series_seen += 1
        self.images_in_series = 0
        out.append(SeriesEvent("start", start))
        return out

    def _end(self, msg: SeriesEnd) -> list[Any]:
        s = self.series
        if s is None or msg.unique_id != s.unique_id or msg.series_id != s.series_id:
            self.dropped["end_of_other_series"] += 1
            return []
        out: list[Any] = self.flush()
        out.append(SeriesEvent("end", s))
        self.series = None
        return out

    def _image(self, msg: Image, payload: Any) -> list[Any]:
        reason = self.check_image(msg)
        if reason is not None:
            self.dropped[reason] += 1
            return []
        assert self.series is not None
        self.images_in_series += 1
        index = msg.image_id // self.frames_per_train
        out: list[Any] = []
        if self.group is not None and self.group.index != index:
            out += self.flush()
        if self.group is None:
            self.group = Group(self.series, index, self.base or 0)
        self.next_base = max(self.next_base, (self.base or 0) + index + 1)
        self.group.images.append((msg, payload))
        if len(self.group.images) >= self.frames_per_train:
            out += self.flush()
        return out
