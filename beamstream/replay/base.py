"""`Reader`: the common shape of replay readers (iterables of `Train` with a length)."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beamstream.replay.select import Include, TrainRange, apply_include, parse_include, parse_trains
from beamstream.streamer.ratelog import RateLimitedLog
from beamstream.streamer.train import Train

__all__ = ["Reader", "FormatError"]

log = logging.getLogger(__name__)


class FormatError(ValueError):
    """A file that is not what a reader expects: the message names the file and the expectation."""


class Reader:
    """Archived data as an iterable of `Train` s, in the file's order, selected and counted.

    Subclasses set ``self.train_ids`` (every train of the source, in order) in ``__init__``
    and implement `_read(position)`. Iterating is restartable (each ``iter()`` starts over).

    Parameters
    ----------
    path
        What to read.
    trains
        ``START:STOP:STEP`` / ``id:START:STOP:STEP`` text, a ``slice`` of positions, or a
        `TrainRange`.
    include
        ``SOURCE_GLOB[KEY_GLOB]`` patterns (text or `Include`); none: everything.
    """

    #: the format's name (``raw``, ``euxfel``, ``lix``, ``tiff``)
    format = ""
    #: when several readers can open a path, the lowest order wins
    detect_order = 100

    @classmethod
    def can_open(cls, path: Path, h5: Any = None) -> bool:
        """True when this reader recognises ``path`` (``h5``: the open HDF5 file, if it is one)."""
        return False

    def __init__(
        self,
        path: str | Path,
        trains: str | slice | TrainRange | None = None,
        include: Sequence[str | Include] | None = None,
    ):
        self.path = Path(path)
        self.selection = parse_trains(trains)
        inc = list(include or ())
        self.includes = [i for i in inc if isinstance(i, Include)] + parse_include(
            [i for i in inc if isinstance(i, str)]
        )
        self.train_ids: np.ndarray = np.zeros(0, np.uint64)
        #: trains skipped because their data could not be read
        self.skipped = 0
        self._warn = RateLimitedLog(log, interval=5.0)

    def positions(self) -> np.ndarray:
        """Positions of the selected trains."""
        return self.selection.indices(self.train_ids)

    def __len__(self) -> int:
        return len(self.positions())

    def __iter__(self) -> Iterator[Train]:
        for pos in self.positions():
            try:
                train = self._read(int(pos))
            except (OSError, ValueError, KeyError, RuntimeError) as e:
                self.skipped += 1
                self._warn.warning(
                    "skip",
                    "%s: train %s skipped (%s: %s)",
                    self.path,
                    self.train_ids[pos],
                    type(e).__name__,
                    e,
                )
                continue
            if train is None:
                continue
            train = apply_include(train, self.includes)
            if train is not None:
                yield train

    def _read(self, position: int) -> Train | None:
        raise NotImplementedError

    def close(self) -> None:
        """Release open files."""

    def __enter__(self) -> Reader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def describe(self) -> str:
        n = len(self)
        return f"{self.format} {self.path}: {n} of {len(self.train_ids)} trains selected"
