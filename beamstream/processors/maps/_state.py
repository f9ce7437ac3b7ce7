"""`GrowingState`: a `BinnedState` whose rows grow in amortized O(1) (capacity doubling).

`BinnedState.index` copies every field (``np.insert``) and rebuilds its key lookup each time a
key is added: O(rows) per new key. The extractor with ``keep_trains`` adds a row per train, and
the scan map one per new cell, so over a long run that cost would grow without bound on the hot
path. Here the rows live in buffers with spare capacity: a key past the last one (train IDs
increase) is appended in place, with one entry added to the lookup; a key in between shifts the
rows after it. ``keys`` and ``arrays`` are views of the used rows, so everything else (merging,
persistence, results) sees an ordinary `BinnedState`, equal row for row.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..state import BinnedState

__all__ = ["GrowingState"]

_MIN_CAPACITY = 16


class GrowingState(BinnedState):
    """A `BinnedState` with spare row capacity (same contents, keys and merging)."""

    # -- storage: buffers with capacity; keys / arrays are views of the first _n rows ---------
    @property  # type: ignore[override]
    def keys(self) -> np.ndarray:
        return self._kbuf[: self._n]

    @keys.setter
    def keys(self, value: Any) -> None:
        k = np.array(value, dtype=np.float64).reshape(-1)
        self._kbuf = k
        self._n = len(k)
        self._bufs: dict[str, np.ndarray] = getattr(self, "_bufs", {})
        self._views: dict[str, np.ndarray] = {}

    @property  # type: ignore[override]
    def arrays(self) -> dict[str, np.ndarray]:
        return self._views

    @arrays.setter
    def arrays(self, value: Mapping[str, np.ndarray]) -> None:
        n = self._n
        if len(self._kbuf) != n:  # keys were set with spare capacity elsewhere: trim
            self._kbuf = self._kbuf[:n].copy()
        self._bufs = {name: np.ascontiguousarray(a) for name, a in value.items()}
        for name, a in self._bufs.items():
            if len(a) != n:
                raise ValueError(f"field {name!r} has {len(a)} rows, the keys {n}")
        self._views = {name: a[:n] for name, a in self._bufs.items()}

    def _grow(self, need: int) -> None:
        cap = max(_MIN_CAPACITY, 2 * len(self._kbuf), need)
        n = self._n
        kb = np.zeros(cap, np.float64)
        kb[:n] = self._kbuf[:n]
        self._kbuf = kb
        for name, a in self._bufs.items():
            b = np.zeros((cap, *a.shape[1:]), a.dtype)
            b[:n] = a[:n]
            self._bufs[name] = b

    # -- the hot path -------------------------------------------------------------------------
    def index(self, key: float) -> int:
        """Row of ``key``, adding a zero row (kept sorted) when the key is new."""
        key = float(key)
        i = self._lookup.get(key)
        if i is not None:
            return i
        if key != key:
            raise ValueError("a scan-bin key cannot be NaN")
        n = self._n
        kb = self._kbuf
        pos = n if n == 0 or key > kb[n - 1] else int(np.searchsorted(kb[:n], key))
        if n == len(kb):
            self._grow(n + 1)
            kb = self._kbuf
        if pos < n:  # shift the rows after it (numpy copies overlapping ranges correctly)
            kb[pos + 1 : n + 1] = kb[pos:n]
            for a in self._bufs.values():
                a[pos + 1 : n + 1] = a[pos:n]
        kb[pos] = key
        for a in self._bufs.values():
            a[pos] = 0
        self._n = n + 1
        self._views = {name: a[: n + 1] for name, a in self._bufs.items()}
        lookup = self._lookup
        if pos == n:
            lookup[key] = pos
        else:
            for j, k in enumerate(kb[pos : n + 1].tolist(), pos):
                lookup[k] = j
        return pos

    def ensure_field(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """The array of field ``name``, adding it (zeros for every bin) when it is new."""
        have = self._views.get(name)
        if have is not None and have.shape[1:] == shape and have.dtype == dtype:
            return have
        spec = (tuple(int(s) for s in shape), np.dtype(dtype))
        known = self.specs.get(name)
        if known is None:
            self.specs[name] = spec
            self._bufs[name] = np.zeros((len(self._kbuf), *spec[0]), spec[1])
            self._views[name] = self._bufs[name][: self._n]
        elif known != spec:
            raise ValueError(
                f"field {name!r} is {known}, not {spec}: the data changed shape or type"
            )
        return self._views[name]

    # -- copies, merges, pickling keep the class ----------------------------------------------
    @classmethod
    def adopt(cls, state: BinnedState) -> GrowingState:
        """A `GrowingState` with the contents of ``state`` (copied)."""
        out = cls(state.specs, (), state.meta)
        out.keys = state.keys.copy()
        out.arrays = {n: a.copy() for n, a in state.arrays.items()}
        out._lookup = {k: i for i, k in enumerate(out.keys.tolist())}
        return out

    def copy(self) -> GrowingState:
        return GrowingState.adopt(self)

    def merge(self, other: BinnedState) -> GrowingState:
        out = BinnedState.merge(self, other)
        return GrowingState.adopt(out)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "specs": self.specs,
            "meta": self.meta,
            "keys": self.keys.copy(),
            "arrays": {n: a.copy() for n, a in self.arrays.items()},
        }

    def __setstate__(self, st: dict[str, Any]) -> None:
        self.specs = dict(st["specs"])
        self.meta = dict(st["meta"])
        self.keys = st["keys"]
        self.arrays = st["arrays"]
        self._lookup = {k: i for i, k in enumerate(self.keys.tolist())}
