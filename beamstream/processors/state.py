"""`BinnedState`: named arrays per scan bin whose merge is addition on the union of bins.

Every accumulator's state in beamstream is one of these (or holds several): sums, counts, sums
of squares and histograms, each with a leading axis over scan bins. Bins are identified by their
float key (the bin index for fixed edges, the rounded value for ``stepsize`` binning, the value
itself for distinct values, 0.0 without a scan variable). Two states with different bin sets merge
on the union of their keys, so merging is exact, associative and commutative (bit-exact for
integer fields).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["BinnedState"]


class BinnedState:
    """Named arrays ``field[bin, *shape]`` for a growing, sorted set of scan-bin keys.

    Parameters
    ----------
    fields
        ``{name: (shape, dtype)}`` of the per-bin arrays, e.g.
        ``{"sum": ((2, 128, 512), np.int64), "count": ((2,), np.int64)}``.
    keys
        Initial bin keys (e.g. all bins of a fixed-edge axis); more are added by `index`.
    meta
        Plain attributes that must agree for two states to merge (config version, bin edges,
        ...); also stored with the state when it is saved.
    """

    def __init__(
        self,
        fields: Mapping[str, tuple[tuple[int, ...], np.dtype | type]],
        keys: np.ndarray | list[float] = (),
        meta: Mapping[str, object] | None = None,
    ):
        self.specs = {
            n: (tuple(int(s) for s in shape), np.dtype(dt)) for n, (shape, dt) in fields.items()
        }
        self.meta = dict(meta or {})
        self.keys = np.asarray(sorted(float(k) for k in keys), dtype=np.float64)
        self.arrays = {
            n: np.zeros((len(self.keys), *shape), dtype=dt) for n, (shape, dt) in self.specs.items()
        }
        self._lookup = {k: i for i, k in enumerate(self.keys.tolist())}

    # -- the hot path -------------------------------------------------------------------------
    def index(self, key: float) -> int:
        """Row of ``key``, adding a zero row (kept sorted) when the key is new."""
        key = float(key)
        i = self._lookup.get(key)
        if i is not None:
            return i
        if key != key:
            raise ValueError("a scan-bin key cannot be NaN")
        pos = int(np.searchsorted(self.keys, key))
        self.keys = np.insert(self.keys, pos, key)
        for n, arr in self.arrays.items():
            self.arrays[n] = np.insert(arr, pos, np.zeros(arr.shape[1:], arr.dtype), axis=0)
        self._lookup = {k: j for j, k in enumerate(self.keys.tolist())}
        return pos

    def __getitem__(self, name: str) -> np.ndarray:
        return self.arrays[name]

    def __contains__(self, name: str) -> bool:
        return name in self.arrays

    def ensure_field(self, name: str, shape: tuple[int, ...], dtype: np.dtype | type) -> np.ndarray:
        """The array of field ``name``, adding it (zeros for every bin) when it is new.

        Accumulators whose shapes are known only from the first frame add their fields lazily;
        a state without a field merges with one that has it as if it held zeros.
        """
        spec = (tuple(int(s) for s in shape), np.dtype(dtype))
        have = self.specs.get(name)
        if have is None:
            self.specs[name] = spec
            self.arrays[name] = np.zeros((len(self.keys), *spec[0]), spec[1])
        elif have != spec:
            raise ValueError(
                f"field {name!r} is {have}, not {spec}: the data changed shape or type"
            )
        return self.arrays[name]

    # -- merging ------------------------------------------------------------------------------
    def compatible(self, other: BinnedState) -> None:
        """Raise ValueError unless ``other`` can merge with this state."""
        for name in self.specs.keys() & other.specs.keys():
            if self.specs[name] != other.specs[name]:
                raise ValueError(
                    f"field {name!r} differs: {self.specs[name]} vs {other.specs[name]}"
                )
        if _canon(self.meta) != _canon(other.meta):
            raise ValueError(f"states of different configurations: {self.meta} vs {other.meta}")

    def merge(self, other: BinnedState) -> BinnedState:
        """A new state holding the sums of both, on the union of their bins."""
        self.compatible(other)
        out = BinnedState(
            {**other.specs, **self.specs}, np.union1d(self.keys, other.keys), self.meta
        )
        for part in (self, other):
            rows = np.searchsorted(out.keys, part.keys)
            for n, arr in part.arrays.items():
                out.arrays[n][rows] += arr
        return out

    def merge_into(self, other: BinnedState) -> None:
        """Add ``other`` into this state in place."""
        self.compatible(other)
        for key in other.keys:
            self.index(key)
        for name, (shape, dtype) in other.specs.items():
            self.ensure_field(name, shape, dtype)
        rows = np.searchsorted(self.keys, other.keys)
        for n, arr in other.arrays.items():
            self.arrays[n][rows] += arr

    def copy(self) -> BinnedState:
        out = BinnedState(self.specs, (), self.meta)
        out.keys = self.keys.copy()
        out.arrays = {n: a.copy() for n, a in self.arrays.items()}
        out._lookup = dict(self._lookup)
        return out

    def equals(self, other: BinnedState) -> bool:
        """Exact equality of keys, fields and meta (NaN-free sums compare bitwise)."""
        return (
            self.specs == other.specs
            and _canon(self.meta) == _canon(other.meta)
            and np.array_equal(self.keys, other.keys)
            and all(np.array_equal(self.arrays[n], other.arrays[n]) for n in self.arrays)
        )

    def __eq__(self, other: object) -> bool:
        return isinstance(other, BinnedState) and self.equals(other)

    __hash__ = None  # type: ignore[assignment]

    # -- persistence --------------------------------------------------------------------------
    def to_dict(self) -> dict[str, object]:
        """Plain arrays and attributes (what the HDF5 sink stores to resume and merge)."""
        return {"keys": self.keys, "arrays": dict(self.arrays), "meta": dict(self.meta)}

    @classmethod
    def from_dict(cls, d: Mapping[str, object]) -> BinnedState:
        arrays = d["arrays"]
        specs = {n: (np.shape(a)[1:], np.asarray(a).dtype) for n, a in arrays.items()}
        out = cls(specs, (), d.get("meta") or {})
        out.keys = np.asarray(d["keys"], dtype=np.float64)
        out.arrays = {n: np.array(a) for n, a in arrays.items()}
        out._lookup = {k: i for i, k in enumerate(out.keys.tolist())}
        return out

    def __repr__(self) -> str:
        shapes = {n: a.shape for n, a in self.arrays.items()}
        return f"BinnedState(bins={len(self.keys)}, fields={shapes})"


def _canon(meta: Mapping[str, object]) -> dict[str, object]:
    out = {}
    for k, v in meta.items():
        if isinstance(v, np.ndarray | list | tuple):
            v = tuple(np.asarray(v).ravel().tolist())
        out[k] = v
    return out
