"""A user processor defined outside beamstream, loaded in tests by its dotted path."""

from __future__ import annotations

import numpy as np

from beamstream.processors.base import Accumulator, Rejected, Result, TrainView, Transform
from beamstream.processors.params import positive_int
from beamstream.processors.state import BinnedState


class FrameTotals(Accumulator[BinnedState]):
    """Sum of all pixels of accepted frames and frame counts, per scan bin and slot."""

    context_keys = ("name", "slots")

    def __init__(self, slots: tuple[str, ...] = ("image",), name: str = "totals", scale: int = 1):
        self.slots = tuple(slots)
        self.name = name
        self.scale = positive_int("scale", scale)

    def empty(self) -> BinnedState:
        n = len(self.slots)
        return BinnedState({"total": ((n,), np.float64), "frames": ((n,), np.int64)})

    def update(self, state: BinnedState, view: TrainView) -> None:
        row = state.index(view.scan_key)
        for k in view.accepted():
            slot = view.frame_slot[k] if view.frame_slot is not None else 0
            value = float(view.frames[k].sum())
            if value < 0:
                raise ValueError("negative frame")  # lets tests provoke a processing error
            state["total"][row, slot] += value * self.scale
            state["frames"][row, slot] += 1

    def finalize(self, state: BinnedState) -> dict[str, Result]:
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = state["total"] / state["frames"]
        coords = {"scan": state.keys, "slot": np.array(self.slots)}
        return {
            "mean_total": Result("mean_total", mean, ("scan", "slot"), coords),
            "frames": Result("frames", state["frames"].copy(), ("scan", "slot"), coords),
        }


class RejectOddTrains(Transform):
    """Rejects trains with an odd train id."""

    def __init__(self, name: str = "odd"):
        self.name = name

    def __call__(self, view: TrainView) -> TrainView:
        if view.train_id % 2:
            raise Rejected("odd train")
        return view


class PatternNamedTransform(Transform):
    """A user transform that happens to keep a ``pattern`` attribute (not a frame pattern)."""

    def __init__(self, pattern: str = "SRC*", name: str = "sources"):
        self.pattern = pattern
        self.slots = pattern
        self.name = name

    def __call__(self, view: TrainView) -> TrainView:
        return view


class NeedsProduct(Accumulator[BinnedState]):
    """Requires a product nobody provides (for the contract check)."""

    def __init__(self, key: str = "qphi.iq", name: str = "needy"):
        self.key = key
        self.name = name

    def requires(self) -> set[str]:
        return {self.key}

    def empty(self) -> BinnedState:
        return BinnedState({})

    def update(self, state: BinnedState, view: TrainView) -> None:
        view.products[self.key]

    def finalize(self, state: BinnedState) -> dict[str, Result]:
        return {}
