"""The scan variable: `ScanAxis` (how values become bin keys) and the `ScanValue` transform.

A scan variable is one number per train (a delay, a photon energy, a motor position) by which the
frames are grouped. `ScanValue` reads it from the train, rejects trains whose value is missing or
not finite, and sets ``view.scan_value`` and ``view.scan_key`` (the key of the scan bin that the
accumulators add the train to).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from beamstream.processors.base import Rejected, TrainView, Transform
from beamstream.processors.params import ParamError, one_of, positive_float
from beamstream.streamer.train import MissingData

__all__ = ["ScanAxis", "ScanValue"]

MISSING = "scan value missing"
NAN = "scan value NaN"
OUT_OF_RANGE = "scan value out of range"
NOT_SCALAR = "scan value not scalar"
NOT_NUMBER = "scan value not a number"


class ScanAxis:
    """How scan values are turned into scan-bin keys.

    Parameters
    ----------
    source
        Where the value comes from; None means no scan variable (every train has key 0.0).
    edges
        Fixed, strictly increasing bin edges: the key of a value is the centre of its bin; the
        last bin includes its right edge (as `numpy.histogram`); values outside the edges are
        rejected (``scan value out of range``).
    stepsize
        Round to a grid: key = ``stepsize * round(value / stepsize)`` (round half to even, as
        dssc_process does with xarray/numpy).
    units
        Units of the scan variable (for the ``scan`` coordinate).
    name
        Name of the scan variable (for the coordinate's attributes).

    Without ``edges`` and ``stepsize`` every distinct value is its own bin (key = the value).
    """

    def __init__(
        self,
        source: str | None = None,
        edges: Sequence[float] | None = None,
        stepsize: float | None = None,
        units: str = "",
        name: str = "scan",
    ):
        if edges is not None and stepsize is not None:
            raise ParamError("stepsize", "either edges or stepsize, not both", stepsize)
        self.source = source
        self.edges: np.ndarray | None = None
        if edges is not None:
            self.edges = _edges(edges)
            self.centres = 0.5 * (self.edges[:-1] + self.edges[1:])
        self.stepsize = None if stepsize is None else positive_float("stepsize", stepsize)
        if not isinstance(units, str):
            raise ParamError("units", "a string", units)
        if not isinstance(name, str) or not name:
            raise ParamError("name", "a non-empty string", name)
        self.units = units
        self.name = name

    @property
    def mode(self) -> str:
        """``"none"``, ``"edges"``, ``"stepsize"`` or ``"distinct"``."""
        if self.source is None:
            return "none"
        if self.edges is not None:
            return "edges"
        return "distinct" if self.stepsize is None else "stepsize"

    def key(self, value: float | None) -> float:
        """The bin key of a scan value.

        Raises
        ------
        Rejected
            ``scan value NaN`` for NaN/inf/None, ``scan value out of range`` outside the edges.
        """
        if self.source is None:
            return 0.0
        if value is None or not math.isfinite(value):
            raise Rejected(NAN)
        value = float(value)
        if self.edges is not None:
            e = self.edges
            if not e[0] <= value <= e[-1]:
                raise Rejected(OUT_OF_RANGE)
            i = min(int(np.searchsorted(e, value, side="right")) - 1, len(e) - 2)
            return float(self.centres[i])
        if self.stepsize is not None:
            return float(self.stepsize * np.round(value / self.stepsize)) + 0.0
        return value + 0.0  # -0.0 and 0.0 are one bin

    def coords(self, keys: np.ndarray | Sequence[float]) -> np.ndarray:
        """The ``scan`` coordinate of the given bin keys (the keys are the bin values)."""
        return np.asarray(keys, dtype=np.float64).copy()

    def attrs(self) -> dict[str, Any]:
        """Attributes describing the binning, for the results' ``scan`` coordinate."""
        out: dict[str, Any] = {"scan_name": self.name, "scan_binning": self.mode}
        if self.edges is not None:
            out["scan_edges"] = self.edges.copy()
        if self.stepsize is not None:
            out["scan_stepsize"] = self.stepsize
        return out


class ScanValue(Transform):
    """Read the scan variable of each train and set ``view.scan_value``/``view.scan_key``.

    Parameters
    ----------
    source, key
        Where the value is (``Train.get``: ``key`` and ``key.value`` both work). ``source=None``
        (the default) means no scan variable: every train goes to bin 0.0.
    edges, stepsize, units
        The binning rule, see `ScanAxis`.
    reduce
        How to turn a per-pulse array into one value: None (default: reject the train with
        ``scan value not scalar``), ``"mean"`` or ``"first"``. Scalars and 1-element arrays
        never need it.
    name
        Instance name; also the scan variable's name.

    Rejection reasons: ``scan value missing`` (source/key absent, or an empty array),
    ``scan value NaN`` (NaN, inf or None), ``scan value out of range`` (outside ``edges``),
    ``scan value not scalar``, ``scan value not a number``.
    """

    context_keys = ("name",)

    def __init__(
        self,
        source: str | None = None,
        key: str | None = None,
        *,
        edges: Sequence[float] | None = None,
        stepsize: float | None = None,
        units: str = "",
        reduce: str | None = None,
        name: str = "scan",
    ):
        if source is not None and not (isinstance(source, str) and source):
            raise ParamError("source", "a source name (string) or nothing", source)
        if source is not None and not (isinstance(key, str) and key):
            raise ParamError("key", "the key of the scan value in source " + repr(source), key)
        if source is None and key is not None:
            raise ParamError("source", "a source when key is given", source)
        if reduce is not None:
            one_of("reduce", reduce, ("mean", "first"))
        self.key = key
        self.reduce = reduce
        self.axis = ScanAxis(source, edges, stepsize, units, name)
        self.name = name

    @property
    def source(self) -> str | None:
        return self.axis.source

    def describe(self) -> str:
        if self.source is None:
            return "ScanValue: no scan variable (one bin)"
        return f"ScanValue: {self.source}/{self.key}, binning {self.axis.mode}"

    def read(self, view: TrainView) -> float | None:
        """The raw scan value of a train (None for None), or raise `Rejected`."""
        try:
            raw = view.train.get(self.source, self.key)
        except MissingData:
            raise Rejected(MISSING) from None
        if raw is None:
            return None
        if isinstance(raw, bool | np.bool_ | str | bytes):
            raise Rejected(NOT_NUMBER)
        arr = np.asarray(raw)
        if arr.dtype.kind not in "iuf":
            raise Rejected(NOT_NUMBER)
        if arr.size == 0:
            raise Rejected(MISSING)
        if arr.size > 1:
            if self.reduce is None:
                raise Rejected(NOT_SCALAR)
            flat = arr.ravel()
            return float(flat[0] if self.reduce == "first" else flat.mean(dtype=np.float64))
        return float(arr.reshape(()))

    def __call__(self, view: TrainView) -> TrainView:
        if self.source is None:
            view.scan_value = None
            view.scan_key = 0.0
            return view
        value = self.read(view)
        view.scan_key = self.axis.key(value)
        view.scan_value = value
        return view


def _edges(edges: Any) -> np.ndarray:
    expected = "at least two strictly increasing finite numbers"
    if not isinstance(edges, list | tuple | np.ndarray):
        raise ParamError("edges", expected, edges)
    try:
        e = np.asarray(edges, dtype=np.float64)
    except (TypeError, ValueError):
        raise ParamError("edges", expected, edges) from None
    if any(isinstance(v, bool) for v in list(edges)):
        raise ParamError("edges", expected, edges)
    if e.ndim != 1 or e.size < 2 or not np.all(np.isfinite(e)) or not np.all(np.diff(e) > 0):
        raise ParamError("edges", expected, edges)
    return e
