"""`ModuleLayout`: a detector sent as one source per module, as the canonical
``(frame, module, y, x)`` view.

Each module's array is brought to ``(frame, y, x)`` (axis names as for `FrameLayout`, a ``gain``
axis reduced to one index) and copied once into a pooled, preallocated buffer. A module that is
absent, has the wrong shape or dtype, carries another train id, or whose cell/pulse ids disagree
with the other modules' is left out: its pixels are NaN in the buffer (so every accumulator
excludes them, never counts them as zero), ``view.products["module_present"]`` is False for it and
the reason is counted (``view.products["excluded"]``). A train without any usable module is
rejected.
"""

from __future__ import annotations

import logging
import sys
from typing import Any

import numpy as np

from beamstream.processors.base import Rejected, TrainView, Transform
from beamstream.processors.layout import FrameLayout, canonical_axes, default_dims, describe_shape
from beamstream.streamer.modules import module_sources
from beamstream.streamer.ratelog import RateLimitedLog

__all__ = ["ModuleLayout", "BufferPool"]

#: keys next to ``<prefix>.data`` whose values must agree between modules
_ID_KEYS = ("cellId", "pulseId")

_log = RateLimitedLog(logging.getLogger(__name__), interval=5.0)


class BufferPool:
    """Preallocated buffers, reused once nothing outside the pool refers to them.

    ``take(shape, dtype)`` returns a buffer of that shape no longer referenced elsewhere (checked
    with the reference count), or a new one while fewer than ``size`` exist, or else a fresh
    unpooled array.
    """

    def __init__(self, size: int = 4):
        self.size = int(size)
        self._buffers: list[np.ndarray] = []

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        for i, buf in enumerate(self._buffers):
            # references: the list, the loop variable and getrefcount's argument
            if sys.getrefcount(buf) <= 3:
                if buf.shape == shape and buf.dtype == dtype:
                    return buf
                self._buffers[i] = np.empty(shape, dtype)
                return self._buffers[i]
        buf = np.empty(shape, dtype)
        if len(self._buffers) < self.size:
            self._buffers.append(buf)
        return buf


class ModuleLayout(Transform):
    """Assemble per-module sources into ``(frame, module, y, x)`` (see the module docstring).

    Parameters
    ----------
    source
        Source name with ``{module}``, e.g. ``SCS_DET_DSSC1M-1/DET/{module}CH0:xtdf``.
    modules
        Module numbers, in the order of the module axis.
    key
        Key of the image data in each module source (``key.value`` spelling accepted).
    layout
        Axis names of one module's array (``frame``, ``y``, ``x``, optionally ``gain``); None:
        the message's ``dims``, else ``(frame, y, x)``.
    frame_shape
        Expected ``(y, x)`` of one module frame (or ``(module, y, x)``); None: from the first
        usable module.
    gain
        Index kept along a ``gain`` axis (default 0).
    pool
        Buffers kept for reuse.
    """

    def __init__(
        self,
        source: str,
        modules: tuple[int, ...],
        key: str = "image.data",
        layout: tuple[str, ...] | None = None,
        frame_shape: tuple[int, ...] | None = None,
        gain: int | None = None,
        pool: int = 4,
    ):
        self.pattern = source
        self.modules = tuple(int(m) for m in modules)
        self.sources = module_sources(source, self.modules)
        self.key = key
        self.layout = canonical_axes(tuple(layout)) if layout else None
        shape = tuple(frame_shape) if frame_shape else None
        self.module_shape = shape[-2:] if shape else None
        self.gain = int(gain or 0)
        self.dtype: np.dtype | None = None  # of the modules, from the first usable one
        self.prefix = key.rsplit(".", 1)[0] if "." in key else ""
        self.pool = BufferPool(pool)
        self.name = "layout"

    def describe(self) -> str:
        layout = list(self.layout) if self.layout else "from message"
        return (
            f"ModuleLayout({self.pattern}[{self.key}], modules {list(self.modules)}, "
            f"layout={layout}, gain index {self.gain})"
        )

    def __call__(self, view: TrainView) -> TrainView:
        train = view.train
        #: (module, counted reason, detail for the log) of every module left out
        excluded: list[tuple[int, str, str]] = []
        arrays: list[np.ndarray | None] = []
        for m, src in zip(self.modules, self.sources, strict=True):
            arr, why, detail = self._module(train, src)
            if why:
                excluded.append((m, why, detail))
            arrays.append(arr)
        nf = self._frames(arrays, excluded)
        self._check_ids(train, arrays, excluded)
        present = np.array([a is not None for a in arrays])
        _log_exclusions(train.train_id, excluded)
        if not present.any():
            raise Rejected("detector data missing", f"no usable module of {self.pattern}")
        view.frames = self._assemble(arrays, nf)
        view.products["module_present"] = present
        view.products["modules"] = self.modules
        if excluded:
            view.products["excluded"] = [f"module {m}: {why}" for m, why, _ in excluded]
        view.records["modules_present"] = int(present.sum())
        return view

    # -- one module ---------------------------------------------------------------------------
    def _module(self, train: Any, src: str) -> tuple[np.ndarray | None, str, str]:
        """``(frames, reason, detail)``: the module as ``(frame, y, x)``, or why it is left out."""
        if src not in train.data:
            return None, "missing", ""
        arr = train.get(src, self.key, None)
        if not isinstance(arr, np.ndarray) or arr.dtype.kind not in "biuf":
            what = f"dtype {arr.dtype}" if isinstance(arr, np.ndarray) else type(arr).__name__
            return None, "not a numeric array", f"{src}[{self.key}]: {what}"
        if self.dtype is None:
            self.dtype = arr.dtype
        elif arr.dtype != self.dtype:
            return (
                None,
                "wrong dtype",
                f"{src}[{self.key}]: found {arr.dtype}, expected {self.dtype}",
            )
        tid = train.meta.get(src, {}).get("timestamp.tid")
        if tid is not None and int(tid) != train.train_id:
            return None, "other train id", f"{src}: train id {tid}, expected {train.train_id}"
        dims = self.layout or _dims(train, src, self.key) or default_dims(arr.ndim)
        if len(dims) != arr.ndim or "module" in dims:
            detail = f"{src}[{self.key}]: found shape {arr.shape}, expected axes {list(dims)}"
            return None, "wrong shape", detail
        try:
            frames = FrameLayout.to_canonical(arr, dims, self.gain)
        except Rejected as r:
            return None, r.reason, r.detail
        if self.module_shape is None:
            self.module_shape = frames.shape[1:]
        elif frames.shape[1:] != self.module_shape:
            order = ("frame", "y", "x")
            detail = (
                f"{src}[{self.key}]: found {describe_shape(order, frames.shape)}, expected "
                + describe_shape(order, (None, *self.module_shape))
            )
            return None, "wrong shape", detail
        return frames, "", ""

    def _frames(self, arrays: list[np.ndarray | None], excluded: list[tuple[int, str, str]]) -> int:
        """The frame count most modules agree on; modules with another count are left out."""
        counts = [a.shape[0] for a in arrays if a is not None]
        if not counts:
            return 0
        values, freq = np.unique(counts, return_counts=True)
        nf = int(values[np.argmax(freq)])
        for i, a in enumerate(arrays):
            if a is not None and a.shape[0] != nf:
                arrays[i] = None
                detail = f"{a.shape[0]} frames, the other modules {nf}"
                excluded.append((self.modules[i], "frame count differs", detail))
        return nf

    def _check_ids(
        self, train: Any, arrays: list[np.ndarray | None], excluded: list[tuple[int, str, str]]
    ) -> None:
        """Leave out modules whose cell/pulse ids differ from the first module's that has them."""
        for key in _ID_KEYS:
            full = f"{self.prefix}.{key}" if self.prefix else key
            ref = None
            for i, (m, src) in enumerate(zip(self.modules, self.sources, strict=True)):
                if arrays[i] is None:
                    continue
                ids = train.get(src, full, None)
                if not isinstance(ids, np.ndarray):
                    continue
                ids = ids.reshape(-1)
                if ref is None:
                    ref = ids
                elif ids.shape != ref.shape or not np.array_equal(ids, ref):
                    arrays[i] = None
                    excluded.append((m, f"{key} differ", f"{src}[{full}]"))

    def _assemble(self, arrays: list[np.ndarray | None], nf: int) -> np.ndarray:
        """One copy of every usable module into a pooled ``(frame, module, y, x)`` buffer."""
        dtype = self.dtype if self.dtype.kind == "f" else np.dtype(np.float32)  # NaN: left out
        y, x = self.module_shape
        buf = self.pool.take((nf, len(arrays), y, x), dtype)
        for i, a in enumerate(arrays):
            if a is None:
                buf[:, i] = np.nan
            else:
                np.copyto(buf[:, i], a, casting="unsafe")
        return buf


def _log_exclusions(train_id: int, excluded: list[tuple[int, str, str]]) -> None:
    """One rate-limited line per reason: the modules left out and the first detail."""
    by_reason: dict[str, list[tuple[int, str]]] = {}
    for m, why, detail in excluded:
        by_reason.setdefault(why, []).append((m, detail))
    for why, items in by_reason.items():
        modules = ", ".join(str(m) for m, _ in items)
        detail = next((d for _, d in items if d), "")
        _log.warning(why, "train %d: modules %s left out: %s %s", train_id, modules, why, detail)


def _dims(train: Any, src: str, key: str) -> tuple[str, ...] | None:
    dims = train.get_dims(src, key)
    if dims is None:
        return None
    try:
        return canonical_axes(tuple(dims))
    except ValueError:
        return None
