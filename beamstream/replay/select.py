"""Selecting what to replay: a train range/stride and ``SOURCE_GLOB[KEY_GLOB]`` include patterns."""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from beamstream.streamer.train import Train

__all__ = ["TrainRange", "Include", "parse_trains", "parse_include", "apply_include"]

_INCLUDE = re.compile(r"^(?P<src>[^\[\]]+)(?:\[(?P<key>[^\[\]]*)\])?$")


@dataclass(frozen=True)
class TrainRange:
    """``START:STOP:STEP`` over train positions (Python slice rules), or over train ids.

    ``by_id=False``: positions in the file's sequence of trains (``-10:`` = the last ten);
    ``by_id=True`` (``id:START:STOP:STEP``): train ids ``START <= id < STOP``, every ``STEP``-th
    of those.
    """

    start: int | None = None
    stop: int | None = None
    step: int | None = None
    by_id: bool = False

    def indices(self, train_ids: Sequence[int] | np.ndarray) -> np.ndarray:
        """Positions of the selected trains among ``train_ids`` (the file's order)."""
        ids = np.asarray(train_ids)
        if not self.by_id:
            return np.arange(len(ids))[slice(self.start, self.stop, self.step)]
        keep = np.ones(len(ids), bool)
        if self.start is not None:
            keep &= ids >= self.start
        if self.stop is not None:
            keep &= ids < self.stop
        return np.flatnonzero(keep)[:: self.step or 1]


def parse_trains(text: str | slice | TrainRange | None) -> TrainRange:
    """Parse ``START:STOP:STEP`` (positions) or ``id:START:STOP:STEP`` (train ids).

    A Python ``slice`` (``slice(0, 20)``, ``np.s_[::2]``) selects positions like the text form;
    a `TrainRange` is returned as it is.

    Raises
    ------
    ValueError
        Saying what was expected.
    """
    if isinstance(text, TrainRange):
        return text
    if isinstance(text, slice):
        return _from_slice(text)
    if not isinstance(text, str | None):
        raise ValueError(
            f"trains={text!r}: expected 'START:STOP:STEP', 'id:START:STOP:STEP' or a slice"
        )
    if text is None or text == "":
        return TrainRange()
    by_id = text.startswith("id:")
    body = text[3:] if by_id else text
    parts = body.split(":")
    if len(parts) > 3:
        raise ValueError(f"--trains {text!r}: expected START:STOP:STEP or id:START:STOP:STEP")
    try:
        vals = [int(p) if p.strip() else None for p in parts] + [None] * (3 - len(parts))
    except ValueError:
        raise ValueError(f"--trains {text!r}: expected integers in START:STOP:STEP") from None
    if len(parts) == 1 and vals[0] is not None:  # a single number: from there on
        vals = [vals[0], None, None]
    if vals[2] is not None and vals[2] <= 0:
        raise ValueError(f"--trains {text!r}: STEP must be a positive integer")
    return TrainRange(vals[0], vals[1], vals[2], by_id)


def _from_slice(s: slice) -> TrainRange:
    vals = []
    for name in ("start", "stop", "step"):
        v = getattr(s, name)
        if v is not None and not isinstance(v, int | np.integer):
            raise ValueError(f"trains={s!r}: {name} must be an integer or None")
        vals.append(None if v is None else int(v))
    if vals[2] is not None and vals[2] <= 0:
        raise ValueError(f"trains={s!r}: step must be a positive integer")
    return TrainRange(vals[0], vals[1], vals[2])


@dataclass(frozen=True)
class Include:
    """One ``SOURCE_GLOB[KEY_GLOB]`` pattern (``*``: anything; no ``[..]``: all keys)."""

    source: str
    key: str = "*"

    def source_matches(self, source: str) -> bool:
        return fnmatch.fnmatchcase(source, self.source)

    def key_matches(self, key: str) -> bool:
        return fnmatch.fnmatchcase(key, self.key) or (
            key.endswith(".value") and fnmatch.fnmatchcase(key[: -len(".value")], self.key)
        )


def parse_include(patterns: Sequence[str] | None) -> list[Include]:
    """Parse include patterns; an empty list means everything."""
    out = []
    for p in patterns or ():
        m = _INCLUDE.match(p.strip())
        if not m:
            raise ValueError(f"--include {p!r}: expected SOURCE_GLOB or SOURCE_GLOB[KEY_GLOB]")
        out.append(Include(m["src"], m["key"] or "*"))
    return out


def wanted(includes: Sequence[Include], source: str, key: str) -> bool:
    """Whether ``source``/``key`` is selected (everything when there are no patterns)."""
    if not includes:
        return True
    return any(i.source_matches(source) and i.key_matches(key) for i in includes)


def wanted_source(includes: Sequence[Include], source: str) -> bool:
    return not includes or any(i.source_matches(source) for i in includes)


def apply_include(train: Train, includes: Sequence[Include]) -> Train | None:
    """The train with only the selected sources and keys (None when nothing is left)."""
    if not includes:
        return train
    data, meta, dims = {}, {}, {}
    for src, values in train.data.items():
        if not wanted_source(includes, src):
            continue
        kept = {k: v for k, v in values.items() if wanted(includes, src, k)}
        if not kept:
            continue
        data[src] = kept
        if src in train.meta:
            meta[src] = train.meta[src]
        if src in train.dims:
            dims[src] = {k: d for k, d in train.dims[src].items() if k in kept}
    if not data:
        return None
    return Train(train.train_id, train.timestamp, data, meta, dims, train.buffers, train.nbytes)
