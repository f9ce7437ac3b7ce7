"""Per-frame attribute functions: the built-ins and loading user functions by dotted path.

An attribute function turns one frame's data into one number, as lixtools' ``extract_attr``
does: its **first argument is the data**, the rest are keyword arguments from the config. What
the data is depends on the attribute's ``input``:

``"iq"``
    the frame's I(q), a 1-D array over the q bins of the q-phi integrator's 1-D output;
``"iqphi"``
    the frame's I(phi, q), a 2-D array ``(n_phi, n_q)``;
``"frame"``
    the frame's raw image (``view.frames[i]``);
``"train"``
    the `TrainView` itself (for monitors and other slow data); the function also receives
    ``frame=i``.

A function that declares a ``q`` (or ``phi``) keyword parameter receives the bin centres of the
input (q in the integrator's unit, phi in degrees, in its azimuth convention).

Conventions of the built-ins (see docs/maps.md):

* ``roi``: NaN-ignoring **mean** of the bins inside ``q_range`` (and ``phi_range``), minus the
  mean over ``bkg_q_range`` (one ``[lo, hi]`` or a list of them) when given.
* ``orientation``: direction of maximum intensity of the second azimuthal harmonic,
  ``0.5 * atan2(sum I sin 2phi, sum I cos 2phi)`` in degrees, in [0, 180).
* ``anisotropy``: ``2 |sum I exp(2i phi)| / sum I`` (``a`` for ``I ~ 1 + a cos 2(phi - phi0)``).
* ``hermans``: ``P2 = (3 <cos^2 psi> - 1) / 2`` with ``psi = phi - axis`` and
  ``<cos^2 psi> = sum I cos^2 psi |sin psi| / sum I |sin psi|`` (the ``|sin psi|`` weight is the
  usual correction for a fibre-symmetric distribution seen in one detector plane). ``axis``
  defaults to the measured ``orientation``. For ``I ~ 1 + a cos 2psi``, ``P2 = 4a / (15 - 5a)``.
"""

from __future__ import annotations

import importlib
import inspect
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..base import TrainView
from ..params import ParamError, float_range
from ._kernels import finite_sum, masked_row_means

__all__ = [
    "AttributeSpec",
    "BUILTINS",
    "INPUTS",
    "load_function",
    "make_spec",
    "roi",
    "total",
    "monitor",
    "transmission",
    "azimuthal_profile",
    "orientation",
    "anisotropy",
    "hermans",
]

INPUTS = ("iq", "iqphi", "frame", "train")


# -- helpers ----------------------------------------------------------------------------------
def _checked(v: Any) -> bool:
    return type(v) is tuple and len(v) == 2 and type(v[0]) is float and type(v[1]) is float


def _one(key: str, value: Any) -> tuple[float, float]:
    """A ``[lo, hi]`` range (already checked tuples pass straight through)."""
    return value if _checked(value) else float_range(key, value)


def _ranges(key: str, value: Any) -> tuple[tuple[float, float], ...]:
    """``[lo, hi]`` or ``[[lo, hi], ...]`` as a tuple of pairs."""
    if type(value) is tuple and value and all(_checked(v) for v in value):
        return value
    if isinstance(value, list | tuple) and value and isinstance(value[0], list | tuple):
        return tuple(float_range(key, v) for v in value)
    return (float_range(key, value),)


_SELECT_CACHE: dict[tuple[int, tuple[tuple[float, float], ...]], tuple[np.ndarray, np.ndarray]] = {}


def _select(x: np.ndarray, ranges: Sequence[tuple[float, float]]) -> np.ndarray:
    """Boolean mask of ``x`` inside any of ``ranges`` (cached per coordinate array object)."""
    key = (id(x), tuple(ranges))
    hit = _SELECT_CACHE.get(key)
    if hit is not None and hit[0] is x:  # the array itself is kept, so its id is not reused
        return hit[1]
    sel = np.zeros(len(x), dtype=bool)
    for lo, hi in ranges:
        sel |= (x >= lo) & (x <= hi)
    if len(_SELECT_CACHE) > 256:
        _SELECT_CACHE.clear()
    _SELECT_CACHE[key] = (x, sel)
    return sel


def _nanmean(a: np.ndarray, axis: int | None = None) -> Any:
    """Mean of the finite values (NaN where there are none), without warnings."""
    finite = np.isfinite(a)
    n = finite.sum(axis=axis)
    s = np.where(finite, a, 0.0).sum(axis=axis)
    if axis is None:
        return s / n if n else math.nan
    return np.divide(s, n, out=np.full(np.shape(s), np.nan), where=n > 0)


# -- built-ins --------------------------------------------------------------------------------
def roi(
    data: np.ndarray,
    q_range: Sequence[float] | None = None,
    phi_range: Sequence[float] | None = None,
    bkg_q_range: Sequence[Any] | None = None,
    *,
    q: np.ndarray,
    phi: np.ndarray | None = None,
) -> float:
    """Mean intensity in a q (and phi) range, optionally minus a background q range.

    Parameters
    ----------
    data
        I(q) ``(n_q,)`` or I(phi, q) ``(n_phi, n_q)``.
    q_range, phi_range
        ``[lo, hi]`` (inclusive) in the units of ``q`` / degrees; None: all bins.
    bkg_q_range
        ``[lo, hi]`` or a list of such ranges; the mean there is subtracted.
    q, phi
        Bin centres (supplied by the extractor).
    """
    data = np.asarray(data)
    if data.ndim == 1 and q_range is not None:  # the common case, in one compiled pass
        sel = _select(q, (_one("q_range", q_range),))
        bkg = None if bkg_q_range is None else _select(q, _ranges("bkg_q_range", bkg_q_range))
        use_b = bkg is not None
        return float(masked_row_means(data[None, :], sel, bkg if use_b else sel, use_b)[0])
    if data.ndim == 2:
        if phi is None:
            raise ValueError("roi on I(phi, q) needs phi")
        rows = slice(None) if phi_range is None else _select(phi, (_one("phi_range", phi_range),))
        data = data[rows]
    elif phi_range is not None:
        raise ValueError("phi_range needs I(phi, q) input")
    cols = slice(None) if q_range is None else _select(q, (_one("q_range", q_range),))
    value = float(_nanmean(data[..., cols]))
    if bkg_q_range is not None:
        value -= float(_nanmean(data[..., _select(q, _ranges("bkg_q_range", bkg_q_range))]))
    return value


def total(data: np.ndarray) -> float:
    """Sum of all finite values (a frame's total counts, or the sum of I(q)), in float64."""
    return finite_sum(data)


def _slow(view: TrainView, frame: int, source: str, key: str) -> float:
    v = view.train.get(source, key)
    a = np.asarray(v, dtype=np.float64)
    if a.ndim == 0:
        return float(a)
    if a.ndim == 1 and len(a) == view.n_frames:
        return float(a[frame])
    raise ValueError(f"{source} {key}: expected a number or one per frame, got shape {a.shape}")


def monitor(view: TrainView, *, frame: int, source: str, key: str) -> float:
    """A monitor value (incident or transmitted intensity, ...) from ``source``/``key``.

    A number is used for every frame of the train; a 1-D array with one value per frame gives
    each frame its own.
    """
    return _slow(view, frame, source, key)


def transmission(
    view: TrainView,
    *,
    frame: int,
    source: str,
    key: str,
    incident_source: str,
    incident_key: str,
) -> float:
    """Transmission ``transmitted / incident`` from two monitors (NaN when incident is 0)."""
    t = _slow(view, frame, source, key)
    i0 = _slow(view, frame, incident_source, incident_key)
    return t / i0 if i0 != 0 else math.nan


def azimuthal_profile(
    data: np.ndarray,
    q_range: Sequence[float],
    bkg_q_range: Sequence[Any] | None,
    q: np.ndarray,
) -> np.ndarray:
    """I(phi): mean over the q bins in ``q_range`` minus the mean over ``bkg_q_range``."""
    data = np.asarray(data)
    if data.ndim != 2:
        raise ValueError(f"expected I(phi, q), got shape {data.shape}")
    sel = _select(q, (_one("q_range", q_range),))
    if bkg_q_range is None:
        return masked_row_means(data, sel, sel, False)
    return masked_row_means(data, sel, _select(q, _ranges("bkg_q_range", bkg_q_range)), True)


def _harmonics(prof: np.ndarray, phi: np.ndarray) -> tuple[float, float, float]:
    ok = np.isfinite(prof)
    w, p = prof[ok], np.radians(phi[ok])
    return float(w.sum()), float((w * np.cos(2 * p)).sum()), float((w * np.sin(2 * p)).sum())


def orientation(
    data: np.ndarray,
    q_range: Sequence[float],
    bkg_q_range: Sequence[Any] | None = None,
    *,
    q: np.ndarray,
    phi: np.ndarray,
) -> float:
    """Direction of maximum intensity (second harmonic) in degrees, in [0, 180)."""
    _, c, s = _harmonics(azimuthal_profile(data, q_range, bkg_q_range, q), phi)
    return float(np.mod(0.5 * math.degrees(math.atan2(s, c)), 180.0))


def anisotropy(
    data: np.ndarray,
    q_range: Sequence[float],
    bkg_q_range: Sequence[Any] | None = None,
    *,
    q: np.ndarray,
    phi: np.ndarray,
) -> float:
    """Second-harmonic amplitude ``2 |sum I exp(2i phi)| / sum I`` (NaN when sum I is 0)."""
    s0, c, s = _harmonics(azimuthal_profile(data, q_range, bkg_q_range, q), phi)
    return 2.0 * math.hypot(c, s) / s0 if s0 != 0 else math.nan


def hermans(
    data: np.ndarray,
    q_range: Sequence[float],
    bkg_q_range: Sequence[Any] | None = None,
    axis: float | None = None,
    *,
    q: np.ndarray,
    phi: np.ndarray,
) -> float:
    """Hermans' orientation parameter P2 over a q range (see the module docstring).

    Parameters
    ----------
    data
        I(phi, q) of one frame.
    q_range
        ``[lo, hi]`` of the ring.
    bkg_q_range
        Background q range(s) subtracted per phi (isotropic background would dilute P2).
    axis
        Reference direction in degrees (azimuth convention of ``phi``); None: the measured
        `orientation`.
    """
    prof = azimuthal_profile(data, q_range, bkg_q_range, q)
    ok = np.isfinite(prof)
    w, p = prof[ok], np.radians(phi[ok])
    if axis is None:
        ref = 0.5 * math.atan2(float((w * np.sin(2 * p)).sum()), float((w * np.cos(2 * p)).sum()))
    else:
        ref = math.radians(float(axis))
    psi = p - ref
    ws = w * np.abs(np.sin(psi))
    den = float(ws.sum())
    if den == 0:
        return math.nan
    c2 = float((ws * np.cos(psi) ** 2).sum()) / den
    return 1.5 * c2 - 0.5


#: name -> (function, default input)
BUILTINS: dict[str, tuple[Callable[..., Any], str]] = {
    "roi": (roi, "iq"),
    "total": (total, "frame"),
    "monitor": (monitor, "train"),
    "transmission": (transmission, "train"),
    "orientation": (orientation, "iqphi"),
    "anisotropy": (anisotropy, "iqphi"),
    "hermans": (hermans, "iqphi"),
}


def load_function(spec: str) -> Callable[..., Any]:
    """A built-in name or ``package.module:function`` (imported)."""
    if spec in BUILTINS:
        return BUILTINS[spec][0]
    if ":" not in spec:
        raise ParamError(
            "function", "a built-in (" + ", ".join(BUILTINS) + ") or package.module:function", spec
        )
    module, _, attr = spec.partition(":")
    try:
        obj = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as e:
        raise ParamError(
            "function", "an importable package.module:function", f"{spec} ({e})"
        ) from None
    if not callable(obj):
        raise ParamError("function", "a callable", spec)
    return obj


@dataclass(frozen=True)
class AttributeSpec:
    """One configured attribute: its function, input and keyword arguments."""

    name: str
    function: str
    func: Callable[..., Any] = field(repr=False, compare=False)
    input: str
    kwargs: Mapping[str, Any]
    units: str = ""
    wants_q: bool = False
    wants_phi: bool = False
    wants_frame: bool = False

    def describe(self) -> dict[str, Any]:
        return {"function": self.function, "input": self.input, "kwargs": dict(self.kwargs)}


def make_spec(name: str, table: Mapping[str, Any]) -> AttributeSpec:
    """An `AttributeSpec` from a config table ``{function, input?, units?, **kwargs}``."""
    where = f"attributes.{name}"
    if not isinstance(table, Mapping):
        raise ParamError(where, "a table with 'function' and its keyword arguments", table)
    table = dict(table)
    fname = table.pop("function", None)
    if not isinstance(fname, str):
        raise ParamError(f"{where}.function", "a built-in name or package.module:function", fname)
    try:
        func = load_function(fname)
    except ParamError as e:
        raise ParamError(f"{where}.function", e.expected, e.got) from None
    default_input = BUILTINS[fname][1] if fname in BUILTINS else None
    inp = table.pop("input", default_input)
    if inp not in INPUTS:
        raise ParamError(f"{where}.input", "one of " + ", ".join(map(repr, INPUTS)), inp)
    units = table.pop("units", "")
    if not isinstance(units, str):
        raise ParamError(f"{where}.units", "a string", units)
    try:
        params = inspect.signature(func).parameters
    except (TypeError, ValueError):  # builtins without signature: pass kwargs as given
        params = {}
    var_kw = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    names = set(params)
    if fname in BUILTINS:  # check ranges once, here (and as tuples they are not re-checked)
        for k in ("q_range", "phi_range"):
            if table.get(k) is not None:
                table[k] = float_range(f"{where}.{k}", table[k])
        if table.get("bkg_q_range") is not None:
            table["bkg_q_range"] = _ranges(f"{where}.bkg_q_range", table["bkg_q_range"])
    for reserved in ("q", "phi", "frame"):
        if reserved in table:
            raise ParamError(f"{where}.{reserved}", "no value (supplied by the extractor)", table)
    if params and not var_kw:
        unknown = sorted(set(table) - names)
        if unknown:
            known = ", ".join(n for n in list(params)[1:] if n not in ("q", "phi", "frame"))
            raise ParamError(f"{where}.{unknown[0]}", f"a parameter of {fname} ({known})", "?")
    wants_q, wants_phi = "q" in names, "phi" in names
    if wants_q and inp not in ("iq", "iqphi"):
        raise ParamError(f"{where}.input", f"'iq' or 'iqphi' for {fname} (it takes q)", inp)
    if wants_phi and inp != "iqphi" and params["phi"].default is inspect.Parameter.empty:
        raise ParamError(f"{where}.input", f"'iqphi' for {fname} (it takes phi)", inp)
    return AttributeSpec(
        name,
        fname,
        func,
        inp,
        table,
        units,
        wants_q,
        wants_phi and inp == "iqphi",
        "frame" in names or (var_kw and inp == "train"),
    )
