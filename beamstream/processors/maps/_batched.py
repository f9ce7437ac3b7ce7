"""Batched evaluation of the attribute built-ins over all frames of a train (the extractor's
hot path).

`plan` decides once, at construction, how each configured attribute is evaluated:
``("roi", None)`` (``roi`` of I(q) over a q range: one kernel call for all frames),
``("total", None)``, ``("azim", (group, axis))`` (``orientation`` / ``anisotropy`` /
``hermans`` of I(phi, q): the profiles and sums once per group of equal ranges) or
``("call", None)`` (the function per frame, done by the extractor). `BatchedBuiltins` evaluates
the batched cases with the numba kernels; the values equal the per-frame functions' bit for bit.
q/phi masks, bin centres and cos/sin 2phi are cached per coordinate array.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from ..base import TrainView
from ._kernels import azimuthal_sums, finite_sum, masked_row_means
from .attributes import AttributeSpec, _ranges, _select

__all__ = ["BatchedBuiltins", "plan"]

#: ``axis(view, which, length)``: checked bin centres ``which`` ("q_1d", "q", "phi")
AxisLookup = Callable[[TrainView, str, int], np.ndarray]


def _plain_axis(axis: Any) -> bool:
    """Whether a hermans ``axis`` is None or a finite number (the batched path's cases)."""
    if axis is None:
        return True
    return type(axis) in (int, float) and math.isfinite(axis)


def plan(specs: Sequence[AttributeSpec]) -> list[tuple[str, Any]]:
    """Per spec how it is evaluated: ``("roi", None)`` (roi of I(q) over a q range: one
    kernel call for all frames), ``("total", None)``, ``("azim", (group, axis))``
    (orientation / anisotropy / hermans of I(phi, q): the profiles and sums once per group
    of equal ranges) or ``("call", None)`` (the function per frame)."""
    out: list[tuple[str, Any]] = []
    groups: dict[tuple[Any, Any], int] = {}
    for spec in specs:
        f, kw = spec.function, spec.kwargs
        if f == "roi" and spec.input == "iq" and set(kw) <= {"q_range", "bkg_q_range"}:
            ok = kw.get("q_range") is not None
            out.append(("roi", None) if ok else ("call", None))
        elif f == "total" and spec.input == "frame" and not kw:
            out.append(("total", None))
        elif (
            f in ("orientation", "anisotropy", "hermans")
            and spec.input == "iqphi"
            and kw.get("q_range") is not None
            and set(kw) <= {"q_range", "bkg_q_range", "axis"}
            and (f == "hermans" or "axis" not in kw)
            and _plain_axis(kw.get("axis"))
        ):
            g = groups.setdefault((kw["q_range"], kw.get("bkg_q_range")), len(groups))
            axis = kw.get("axis")
            out.append(("azim", (g, math.nan if axis is None else math.radians(float(axis)))))
        else:
            out.append(("call", None))
    return out


class BatchedBuiltins:
    """The batched built-ins of one extractor, with their per-coordinate-array caches.

    Parameters
    ----------
    specs
        The extractor's attributes, in config order.
    qphi
        Name of the q-phi integrator whose per-frame products are read.
    axis
        ``axis(view, which, length)``: the checked bin centres (raises ``ValueError`` when
        there are none, or of another length).
    """

    def __init__(self, specs: Sequence[AttributeSpec], qphi: str, axis: AxisLookup):
        self.specs = specs
        self.qphi = qphi
        self._axis = axis
        #: per spec: ``(how, arg)`` (see `plan`)
        self.plan = plan(self.specs)
        self._coord_cache: dict[tuple[str, int], tuple[Any, np.ndarray]] = {}
        self._sel_cache: dict[tuple[str, int], tuple[np.ndarray, Any]] = {}
        self._trig_cache: tuple[np.ndarray, tuple[np.ndarray, ...]] | None = None

    def _coords(self, view: TrainView, which: str, length: int) -> np.ndarray:
        """``axis``, checked once per published axes object (the integrator keeps one)."""
        published = view.products.get(f"{self.qphi}.axes")
        key = (which, length)
        hit = self._coord_cache.get(key)
        if hit is not None and hit[0] is published:
            return hit[1]
        c = self._axis(view, which, length)
        self._coord_cache[key] = (published, c)
        return c

    def evaluate(
        self,
        j: int,
        how: str,
        arg: Any,
        view: TrainView,
        frames: np.ndarray,
        values: np.ndarray,
        azim: dict[Any, np.ndarray],
    ) -> bool:
        """Evaluate spec ``j`` with a batched built-in into ``values[j]``; False when its input
        is not the expected array (the caller then calls the function per frame)."""
        spec = self.specs[j]
        if how == "total":
            data = view.frames
            if not isinstance(data, np.ndarray) or data.dtype.kind != "f":
                return False
            row = values[j]
            for i in frames.tolist():
                row[i] = finite_sum(data[i])
            return True
        arr = view.products.get(f"{self.qphi}.{spec.input}")
        kw = spec.kwargs
        if how == "roi":
            if not isinstance(arr, np.ndarray) or arr.ndim != 2 or arr.dtype.kind != "f":
                return False
            q = self._coords(view, "q_1d", arr.shape[-1])
            sel, bsel, use_b = self._selections(("roi", j), q, kw)
            if len(frames) == len(arr):
                values[j] = masked_row_means(arr, sel, bsel, use_b)
            else:
                values[j, frames] = masked_row_means(arr[frames], sel, bsel, use_b)
            return True
        # azimuthal built-ins
        if not isinstance(arr, np.ndarray) or arr.ndim != 3 or arr.dtype.kind != "f":
            return False
        if arr.shape[1] > 128:  # the kernel adds like numpy up to 128 phi bins
            return False
        g, axis = arg
        hermans = spec.function == "hermans"
        key = (g, axis if hermans else None)
        res = azim.get(key)
        if res is None and not hermans:  # orientation / anisotropy: any of the group's sums
            res = next((r for k, r in azim.items() if k[0] == g), None)
        if res is None:
            q = self._coords(view, "q", arr.shape[-1])
            phi = self._coords(view, "phi", arr.shape[1])
            prof = azim.get(("prof", g))
            if prof is None:
                sel, bsel, use_b = self._selections(("azim", g), q, kw)
                data = arr if len(frames) == len(arr) else arr[frames]
                nf, nphi, nq = data.shape
                prof = masked_row_means(data.reshape(nf * nphi, nq), sel, bsel, use_b)
                prof = prof.reshape(nf, nphi)
                azim[("prof", g)] = prof
            p, c2p, s2p = self._trig(phi)
            res = azimuthal_sums(prof, p, c2p, s2p, axis, hermans)
            azim[key] = res
        f = spec.function
        row = values[j]
        if f == "hermans":
            row[frames] = res[:, 3]
            return True
        for i, (s0, c, s, _) in zip(frames.tolist(), res.tolist(), strict=True):
            if f == "orientation":  # float % is np.mod (same sign rule, fmod based)
                row[i] = (0.5 * math.degrees(math.atan2(s, c))) % 180.0
            else:
                row[i] = 2.0 * math.hypot(c, s) / s0 if s0 != 0 else math.nan
        return True

    def _selections(
        self, key: tuple[str, int], q: np.ndarray, kw: Mapping[str, Any]
    ) -> tuple[np.ndarray, np.ndarray, bool]:
        """``(sel, bkg_sel, use_bkg)`` of ``q_range`` / ``bkg_q_range`` (cached per q array)."""
        hit = self._sel_cache.get(key)
        if hit is not None and hit[0] is q:
            return hit[1]
        sel = _select(q, (kw["q_range"],))
        bkg = kw.get("bkg_q_range")
        use_b = bkg is not None
        bsel = _select(q, _ranges("bkg_q_range", bkg)) if use_b else sel
        self._sel_cache[key] = (q, (sel, bsel, use_b))
        return sel, bsel, use_b

    def _trig(self, phi: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """phi in radians and numpy's cos, sin of twice it (cached per phi array)."""
        hit = self._trig_cache
        if hit is not None and hit[0] is phi:
            return hit[1]
        p = np.radians(phi)
        out = (p, np.cos(2 * p), np.sin(2 * p))
        self._trig_cache = (phi, out)
        return out
