"""`FrameLayout`: the detector array of a train as the canonical ``(frame, [module,] y, x)`` view.

Online and file data differ in axis order at real facilities (online AGIPD was
``(module, fs, ss, pulse)``, files are ``(pulse, module, ss, fs)``). The layout is declared in
config, or carried by the message's ``dims`` header extension, and this step absorbs the
difference once, by transposing (a view, no copy). A ``gain`` axis (raw AGIPD/LPD stack the
analogue data and the digital gain on one axis) is reduced to one index of it, ``gain`` (default 0,
the data plane).
"""

from __future__ import annotations

import numpy as np

from beamstream.processors.base import Rejected, TrainView, Transform

__all__ = ["FrameLayout", "canonical_axes", "AXIS_ALIASES", "describe_shape"]

#: accepted axis names for each canonical axis
AXIS_ALIASES = {
    "frame": ("frame", "frames", "pulse", "pulses", "cell", "cells", "memory_cell", "trainpulse"),
    "module": ("module", "modules"),
    "y": ("y", "ss", "slow_scan", "row", "rows", "dim_0"),
    "x": ("x", "fs", "fast_scan", "col", "cols", "column", "dim_1"),
    "gain": ("gain", "data_gain", "gain_stage"),
}
_CANON = {alias: canon for canon, names in AXIS_ALIASES.items() for alias in names}


def canonical_axes(dims: tuple[str, ...]) -> tuple[str, ...]:
    """Map declared axis names to canonical ones; ValueError for unknown or repeated axes."""
    out = []
    for d in dims:
        canon = _CANON.get(d.lower())
        if canon is None:
            known = ", ".join(sorted(_CANON))
            raise ValueError(f"unknown axis name {d!r} in layout {list(dims)} (known: {known})")
        out.append(canon)
    if len(set(out)) != len(out) or "y" not in out or "x" not in out:
        raise ValueError(f"layout {list(dims)}: needs y and x axes, each axis once")
    return tuple(out)


def describe_shape(dims: tuple[str, ...], shape: tuple[int | None, ...]) -> str:
    """``(frame=64, y=512, x=128)``; None lengths print as the axis name alone."""
    parts = [d if n is None else f"{d}={n}" for d, n in zip(dims, shape, strict=True)]
    return "(" + ", ".join(parts) + ")"


def default_dims(ndim: int) -> tuple[str, ...]:
    return {2: ("y", "x"), 3: ("frame", "y", "x"), 4: ("frame", "module", "y", "x")}.get(ndim, ())


class FrameLayout(Transform):
    """Find the detector array and present it as ``(frame, [module,] y, x)``.

    Parameters
    ----------
    source, key
        Where the detector array is in the train (``key.value`` spelling accepted).
    layout
        Axis names of the array as sent, e.g. ``["frame", "ss", "fs"]`` or
        ``["module", "fs", "ss", "frame"]``; None: the message's ``dims`` or, failing that,
        ``(y, x)`` / ``(frame, y, x)`` / ``(frame, module, y, x)`` by number of axes.
    frame_shape
        Expected shape of one frame (``([module,] y, x)``); trains that differ are rejected
        (reason ``wrong shape``, the log names the shape found and the shape expected).
    gain
        Index kept along a ``gain`` axis (default 0).
    """

    def __init__(
        self,
        source: str,
        key: str = "image.data",
        layout: tuple[str, ...] | None = None,
        frame_shape: tuple[int, ...] | None = None,
        gain: int | None = None,
    ):
        self.source = source
        self.key = key
        self.layout = canonical_axes(tuple(layout)) if layout else None
        self.frame_shape = tuple(frame_shape) if frame_shape else None
        self.gain = int(gain or 0)
        self.name = "layout"

    def describe(self) -> str:
        layout = list(self.layout) if self.layout else "from message"
        return f"FrameLayout({self.source}[{self.key}], layout={layout})"

    def __call__(self, view: TrainView) -> TrainView:
        arr = view.train.get(self.source, self.key, None)
        if arr is None:
            raise Rejected("detector data missing")
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
            raise Rejected("detector data not a numeric array")
        dims = self.layout or self._message_dims(view) or default_dims(arr.ndim)
        if len(dims) != arr.ndim:
            raise Rejected(
                "wrong shape",
                f"{self.source}[{self.key}]: found shape {arr.shape}, expected {len(dims)} "
                f"axes {list(dims)}",
            )
        frames = self.to_canonical(arr, dims, self.gain)
        if self.frame_shape is None:
            self.frame_shape = frames.shape[1:]
        elif frames.shape[1:] != self.frame_shape:
            order = ("frame", *[d for d in ("module", "y", "x") if d in dims])
            raise Rejected(
                "wrong shape",
                f"{self.source}[{self.key}]: found {describe_shape(order, frames.shape)}, "
                f"expected {describe_shape(order, (None, *self.frame_shape))}",
            )
        view.frames = frames
        return view

    def _message_dims(self, view: TrainView) -> tuple[str, ...] | None:
        dims = view.train.get_dims(self.source, self.key)
        if dims is None:
            return None
        try:
            return canonical_axes(dims)
        except ValueError:
            raise Rejected("bad dims in message") from None

    @staticmethod
    def to_canonical(arr: np.ndarray, dims: tuple[str, ...], gain: int = 0) -> np.ndarray:
        """Transpose (a view) to ``(frame, [module,] y, x)``, adding a frame axis if absent.

        A ``gain`` axis is reduced to index ``gain``; an index beyond it is `Rejected`.
        """
        if "gain" in dims:
            axis = dims.index("gain")
            if not 0 <= gain < arr.shape[axis]:
                raise Rejected(
                    "wrong shape", f"gain index {gain} for a gain axis of length {arr.shape[axis]}"
                )
            arr = arr[(slice(None),) * axis + (gain,)]  # a view
            dims = dims[:axis] + dims[axis + 1 :]
        order = [d for d in ("frame", "module", "y", "x") if d in dims]
        out = arr.transpose([dims.index(d) for d in order])
        if "frame" not in dims:
            out = out[np.newaxis]
        return out
