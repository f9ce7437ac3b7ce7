"""The processor contract: `Transform`, `Accumulator`, `Result` and the `TrainView` they share.

A pipeline runs, for every train, its transforms in order (each may reject the train) and then
every accumulator's ``update(state, view)``. Accumulator states merge exactly (see
`beamstream.processors.state.BinnedState`); means, intensities and differences are computed only in
``finalize``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar, Generic, TypeVar

import numpy as np

from beamstream.streamer.train import Train

__all__ = ["Result", "TrainView", "Transform", "Accumulator", "Rejected", "Processor"]


class Rejected(Exception):
    """Raised (or returned as reason) when a transform rejects a train; `reason` is counted.

    ``detail`` says more for the log (e.g. the shape found and the shape expected) without
    multiplying the counted reasons.
    """

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Result:
    """A named array with its axes, coordinates, units and attributes.

    ``dims`` names every axis of ``data``; ``coords`` maps some of those names to 1-D coordinate
    arrays; ``units`` is the unit of the values, ``coord_units`` of the coordinates.
    """

    name: str
    data: np.ndarray
    dims: tuple[str, ...]
    coords: dict[str, np.ndarray] = field(default_factory=dict)
    units: str = ""
    coord_units: dict[str, str] = field(default_factory=dict)
    attrs: dict[str, Any] = field(default_factory=dict)

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
    name: str = ""

    def describe(self) -> str:
        """One line saying what the processor does with its resolved parameters."""
        return f"{type(self).__name__}"


class Transform(Processor, ABC):
    """A stateless per-train step; returns the (possibly new) view or raises `Rejected`."""

    kind = "transform"

    @abstractmethod
    def __call__(self, view: TrainView) -> TrainView: ...


S = TypeVar("S")


class Accumulator(Processor, ABC, Generic[S]):
    """A stateful step whose state merges exactly.

    ``empty()`` returns a new state; ``update(state, view)`` adds one train in place (the hot path);
    ``finalize(state)`` returns named results. ``merge(a, b)`` returns a new state equal to having
    processed the trains of ``a`` and ``b`` together (associative and commutative).
    """

    kind = "accumulator"

    @abstractmethod
    def empty(self) -> S: ...

    @abstractmethod
    def update(self, state: S, view: TrainView) -> None: ...

    @abstractmethod
    def finalize(self, state: S) -> dict[str, Result]: ...

    def merge(self, a: S, b: S) -> S:
        """Merge two states; the default defers to ``a.merge(b)``."""
        return a.merge(b)  # type: ignore[attr-defined]
