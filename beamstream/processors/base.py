"""The processor contract: `Transform`, `Accumulator`, `State`, `Context`, `Result`, `TrainView`.

A pipeline runs, for every train, its transforms in order (each may reject the train) and then
every accumulator's ``update(state, view)``. Accumulator states follow the `State` protocol and
merge exactly (see `beamstream.processors.state.BinnedState`); means, intensities and differences
are computed only in ``finalize``.

Building: `Processor.from_config` gets the processor's config table and a `Context` (instance
name, frame-pattern slots, scan units, frame shape and dims, geometry, the config's folder); the
default passes the table to the constructor, and a processor that needs the context says so by
overriding it. Processors declare the per-train products they `provide` and `require`; the
pipeline refuses one whose requirement no earlier processor provides. The frame pattern comes
only from a transform's declared `Transform.frame_pattern`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, Protocol, Self, TypeVar, runtime_checkable

import numpy as np

from beamstream.streamer.train import Train

__all__ = [
    "Result",
    "TrainView",
    "Transform",
    "Accumulator",
    "Rejected",
    "Processor",
    "State",
    "Context",
]


@runtime_checkable
class State(Protocol):
    """What an accumulator state is: mergeable, copyable, storable as plain arrays.

    ``merge(other)`` returns a new state equal to having processed the trains of both
    (associative, commutative; the inputs are not modified); ``copy()`` an independent copy;
    ``to_dict()`` / ``from_dict(d)`` a plain dict of arrays and values (what HDF5 stores to
    resume and merge files), a round trip that is exact; ``compatible(other)`` raises
    ValueError unless the two may merge (same configuration).
    """

    def merge(self, other: Any) -> Any: ...
    def copy(self) -> Any: ...
    def to_dict(self) -> dict[str, Any]: ...
    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Any: ...
    def compatible(self, other: Any) -> None: ...


@dataclass(frozen=True)
class Context:
    """What a processor may know about its pipeline when it is built.

    Attributes
    ----------
    name
        The instance name (the ``name`` key of its table, else its type name).
    slots
        The frame-pattern slot names declared by the frame selector before it, else
        ``("image",)``.
    scan_units
        Units of the scan variable (empty without one).
    frame_shape, dims
        The source's declared frame shape and layout, when given.
    geometry
        Detector geometry when known (None otherwise).
    config_dir
        The folder of the config file (relative paths are resolved against it already).
    provided
        Per-train product keys provided by the processors before this one.
    """

    name: str
    slots: tuple[str, ...] = ("image",)
    scan_units: str = ""
    frame_shape: tuple[int, ...] | None = None
    dims: tuple[str, ...] | None = None
    geometry: Any = None
    config_dir: Path | None = None
    provided: frozenset[str] = frozenset()

    def fill(self, params: Mapping[str, Any], *keys: str) -> dict[str, Any]:
        """``params`` with ``keys`` (``name``, ``slots``, ``scan_units``, ``frame_shape``) taken
        from the context where the table does not set them."""
        out = dict(params)
        for key in keys:
            value = getattr(self, key)
            if key not in out and value is not None:
                out[key] = list(value) if isinstance(value, tuple) else value
        return out


class Rejected(Exception):
    """Raised (or returned as reason) when a transform rejects a train; `reason` is counted."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class Result:
    """A named array with its axes, coordinates, units and attributes.

    ``dims`` names every axis of ``data``; ``coords`` maps some of those names to 1-D coordinate
    arrays; ``units`` is the unit of the values, ``coord_units`` of the coordinates and
    ``coord_long_names`` their descriptions (e.g. the scan motor's ``source/key``). Well-known
    ``attrs``: ``errors`` (the name of the result holding this one's standard errors, or
    ``"poisson"`` for counts), ``default_plot`` (True on the processor's main result).
    """

    name: str
    data: np.ndarray
    dims: tuple[str, ...]
    coords: dict[str, np.ndarray] = field(default_factory=dict)
    units: str = ""
    coord_units: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)
    coord_long_names: dict[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if np.ndim(self.data) != len(self.dims):
            raise ValueError(
                f"result {self.name!r}: {np.ndim(self.data)}-d data but dims {self.dims}"
            )
        for name, values in self.coords.items():
            if name not in self.dims:
                raise ValueError(f"result {self.name!r}: coordinate {name!r} is not a dim")
            axis = self.dims.index(name)
            if len(values) != np.shape(self.data)[axis]:
                raise ValueError(
                    f"result {self.name!r}: coordinate {name!r} has {len(values)} values for "
                    f"an axis of length {np.shape(self.data)[axis]}"
                )

    def to_xarray(self) -> Any:
        """This result as an ``xarray.DataArray`` (coordinates with ``units`` and ``long_name``).

        Raises
        ------
        ImportError
            Without xarray installed.
        """
        from beamstream.processors.xr import to_dataarray

        return to_dataarray(self)

    def _repr_html_(self) -> str:
        from beamstream.processors.xr import result_html

        return result_html(self)


@dataclass
class TrainView:
    """What processors see of one train.

    Attributes
    ----------
    train
        The train as received.
    frames
        The detector data in the canonical ``(frame, [module,] y, x)`` layout (a view where
        possible), or None for pipelines without a detector.
    frame_slot
        Per frame, the index of its pattern slot in ``slots``, or -1 when the frame is rejected
        (masked, beyond ``max_frames``, failed a monitor rule).
    slots
        The frame-pattern slot names, e.g. ``("pumped", "unpumped")``; ``("image",)`` by default.
    scan_key
        The scan bin key of the train (a float; 0.0 when there is no scan variable); None until
        the scan transform sets it.
    scan_value
        The raw scan value (before binning), when there is a scan variable.
    products
        Per-train intermediate products that later processors read (e.g. per-frame I(q)).
    records
        Per-train reduced values for the per-train records (train id, accepted frames, ...).
    """

    train: Train
    frames: np.ndarray | None = None
    frame_slot: np.ndarray | None = None
    slots: tuple[str, ...] = ("image",)
    scan_key: float | None = 0.0
    scan_value: float | None = None
    products: dict[str, Any] = field(default_factory=dict)
    records: dict[str, Any] = field(default_factory=dict)

    @property
    def train_id(self) -> int:
        return self.train.train_id

    @property
    def n_frames(self) -> int:
        return 0 if self.frames is None else int(self.frames.shape[0])

    def accepted(self) -> np.ndarray:
        """Indices of accepted frames (all frames when no selection ran)."""
        if self.frame_slot is None:
            return np.arange(self.n_frames)
        return np.flatnonzero(self.frame_slot >= 0)

    def is_dark_slot(self) -> np.ndarray:
        """Boolean per slot: True for dark slots (names containing 'dark')."""
        return np.array(["dark" in s for s in self.slots], dtype=bool)


class Processor:
    """Common base: a processor is built from its config table (keyword arguments).

    Subclasses set ``kind`` ('transform' or 'accumulator'). ``name`` is the instance name used for
    results (defaults to the registered type name).
    """

    kind: ClassVar[str] = ""
    #: `Context` values the constructor takes as keyword arguments (unless the table sets
    #: them): any of ``name``, ``slots``, ``scan_units``, ``frame_shape``
    context_keys: ClassVar[tuple[str, ...]] = ()
    name: str = ""

    @classmethod
    def from_config(cls, params: Mapping[str, Any], context: Context) -> Self:
        """Build from the config table's parameters and the declared `context_keys`.

        Override to use more of ``context``. The pipeline sets ``name`` afterwards.
        """
        return cls(**context.fill(params, *cls.context_keys))

    def provides(self) -> set[str]:
        """Keys this processor puts in ``view.products`` for later processors."""
        return set()

    def requires(self) -> set[str]:
        """Keys of ``view.products`` this processor reads (another processor must provide)."""
        return set()

    def describe(self) -> str:
        """One line saying what the processor does with its resolved parameters."""
        return f"{type(self).__name__}"


class Transform(Processor, ABC):
    """A stateless per-train step; returns the (possibly new) view or raises `Rejected`."""

    kind = "transform"

    def frame_pattern(self) -> tuple[str, ...] | None:
        """The slot names this transform assigns frames to (a frame selector), else None."""
        return None

    @abstractmethod
    def __call__(self, view: TrainView) -> TrainView: ...


S = TypeVar("S")


class Accumulator(Processor, ABC, Generic[S]):
    """A stateful step whose state merges exactly.

    ``empty()`` returns a new `State`; ``update(state, view)`` adds one train in place (the hot
    path); ``finalize(state)`` returns named results. ``merge(a, b)`` returns a new state equal
    to having processed the trains of ``a`` and ``b`` together (associative and commutative).
    """

    kind = "accumulator"
    #: names of results to show first (the science result), in order of preference
    plot_preference: ClassVar[tuple[str, ...]] = ()

    @abstractmethod
    def empty(self) -> S: ...

    @abstractmethod
    def update(self, state: S, view: TrainView) -> None: ...

    @abstractmethod
    def finalize(self, state: S) -> dict[str, Result]: ...

    def merge(self, a: S, b: S) -> S:
        """Merge two states; the default defers to ``a.merge(b)``."""
        return a.merge(b)  # type: ignore[attr-defined]

    def main_result(self, results: dict[str, Result]) -> str | None:
        """The name of the result a viewer shows first: the first of ``plot_preference`` that
        ``results`` holds (None: no preference)."""
        return next((n for n in self.plot_preference if n in results), None)
