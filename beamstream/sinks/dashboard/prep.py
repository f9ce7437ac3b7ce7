"""Pure data preparation for display: classify results by dims, select, aggregate, decimate.

Nothing here imports Bokeh or touches a socket: these functions turn `Result` arrays into small
arrays ready to be put into ColumnDataSources, and run in the dashboard's thread (never in the
processing thread).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np

from beamstream.processors.base import Result
from beamstream.sinks.dashboard._kernels import weighted_nanmean

__all__ = [
    "Kind",
    "Selection",
    "classify",
    "short_name",
    "sibling",
    "reduce_scan",
    "pick",
    "flatten_modules",
    "decimate",
    "color_levels",
    "image_geometry",
    "select_groups",
    "all_missing",
    "numeric_scalars",
    "on_pixels",
    "HIDDEN_PREFIXES",
]

#: dims along which a single value is chosen by the "scan bin" control
SCAN_DIM = "scan"
#: trailing pixel dims of detector images
PIXEL_DIMS = ("y", "x")
#: results whose short name starts with one of these are auxiliaries (weights, errors), not panels
HIDDEN_PREFIXES = ("count_", "sigma_", "weight", "dark_frames")


@dataclass(frozen=True)
class Kind:
    """How a result is shown.

    Attributes
    ----------
    kind
        ``"scalar"`` (no data dims: lines vs scan), ``"curve"`` (one data dim), ``"bars"`` (one
        dim of named categories), ``"image"`` (detector pixels ``[module,] y, x``) or ``"map"``
        (two data dims with coordinates, e.g. a scan map ``y, x`` in motor units).
    data_dims
        The trailing dims that are drawn.
    group_dims
        Leading dims other than ``scan`` (e.g. ``slot``, ``pair``): one line per value for
        scalars and curves, one chosen value for images and maps.
    has_scan
        Whether the result has a ``scan`` dim.
    """

    kind: str
    data_dims: tuple[str, ...]
    group_dims: tuple[str, ...]
    has_scan: bool


@dataclass(frozen=True)
class Selection:
    """What the controls choose: a scan key (None: all bins) and a slot/group name."""

    scan: float | None = None
    slot: str | None = None


def short_name(name: str) -> str:
    """The last dotted component of a result name (``rixs.spectrum`` -> ``spectrum``)."""
    return name.rsplit(".", 1)[-1]


def classify(res: Result) -> Kind | None:
    """How to show ``res``, from its dims (None for results that get no panel)."""
    dims = tuple(res.dims)
    if (
        short_name(res.name).startswith(HIDDEN_PREFIXES)
        or np.asarray(res.data).dtype.kind not in "biuf"
    ):
        return None
    has_scan = SCAN_DIM in dims
    lead = tuple(d for d in dims if d != SCAN_DIM)
    if lead and all(not _is_group(d) and _categorical(res, d) for d in lead):
        data, kind = lead, "bars"  # counts by named categories (one dim, or their pairs)
    elif dims[-2:] == PIXEL_DIMS and not all(d in res.coords for d in PIXEL_DIMS):
        data = ("module", *PIXEL_DIMS) if len(dims) >= 3 and dims[-3] == "module" else PIXEL_DIMS
        kind = "image"
    elif len(lead) >= 2 and not _is_group(lead[-1]) and not _is_group(lead[-2]):
        data, kind = lead[-2:], "map"
    elif lead and not _is_group(lead[-1]):
        data, kind = lead[-1:], "curve"
    else:
        data, kind = (), "scalar"
    group = tuple(d for d in lead[: len(lead) - len(data)])
    return Kind(kind, tuple(data), group, has_scan)


def _categorical(res: Result, dim: str) -> bool:
    """Whether ``dim`` has named (string) categories, e.g. the reasons frames were not placed."""
    c = res.coords.get(dim)
    return c is not None and np.asarray(c).dtype.kind in "USO"


def _is_group(dim: str) -> bool:
    return dim in ("slot", "pair", "category", "monitor")


def sibling(results: dict[str, Result], res: Result, role: str) -> Result | None:
    """The result of the same processor giving ``role`` (``"weight"`` or ``"sigma"``) of ``res``.

    Weights: ``count_<tag>`` for ``I_<tag>``, ``<prefix>.weight``, ``counts``, ``<prefix>.frames``;
    sigma: ``sigma_<tag>`` for ``I_<tag>``. Only results whose dims are a prefix of (or equal to)
    ``res.dims`` qualify.
    """
    name = short_name(res.name)
    prefix = res.name[: len(res.name) - len(name)]
    tag = name[2:] if name.startswith("I_") else None
    if role == "sigma":
        names = [f"{prefix}sigma_{tag}"] if tag else []
    else:
        names = [f"{prefix}count_{tag}"] if tag else []
        names += [f"{prefix}weight", f"{prefix}counts", f"{prefix}frames"]
    for n in names:
        other = results.get(n)
        if other is None or other is res:
            continue
        if tuple(res.dims[: len(other.dims)]) == tuple(other.dims):
            if role == "sigma" and other.dims != res.dims:
                continue
            aligned = _align(other, res)
            if aligned is not None:
                return aligned
    return None


def _align(other: Result, res: Result) -> Result | None:
    """``other`` with its leading dims matched to ``res``'s by coordinate value (e.g. the
    ``counts`` of all slots for a result of the non-dark slots only); None when they cannot be
    matched."""
    data = np.asarray(other.data)
    shape = np.shape(res.data)[: data.ndim]
    if data.shape == shape and all(
        d not in other.coords
        or d not in res.coords
        or np.array_equal(np.asarray(other.coords[d]), np.asarray(res.coords[d]))
        for d in other.dims
    ):
        return other
    coords = dict(other.coords)
    for axis, d in enumerate(other.dims):
        if data.shape[axis] == shape[axis] and (d not in res.coords or d not in other.coords):
            continue
        if d not in res.coords or d not in other.coords:
            return None
        have = [str(v) for v in np.asarray(other.coords[d]).tolist()]
        want = [str(v) for v in np.asarray(res.coords[d]).tolist()]
        if not set(want) <= set(have):
            return None
        data = np.take(data, [have.index(w) for w in want], axis=axis)
        coords[d] = np.asarray(res.coords[d])
    return Result(other.name, data, other.dims, coords, other.units, other.coord_units, other.attrs)


def _broadcast(weights: np.ndarray, ndim: int) -> np.ndarray:
    return weights.reshape(weights.shape + (1,) * (ndim - weights.ndim))


def reduce_scan(
    res: Result,
    scan: float | None,
    weights: Result | None = None,
    sigma: Result | None = None,
) -> tuple[np.ndarray, np.ndarray | None]:
    """``res`` without its scan dim: one bin (nearest key), or all bins (``scan=None``).

    All bins are combined as the weighted mean ``sum(w * v) / sum(w)`` with the sibling weights
    (counts), or as the NaN-aware mean without them. Returns ``(values, sigma or None)``.
    """
    data = np.asarray(res.data, dtype=np.float64)
    sig = None if sigma is None else np.asarray(sigma.data, dtype=np.float64)
    if SCAN_DIM not in res.dims:
        return data, sig
    axis = res.dims.index(SCAN_DIM)
    if data.shape[axis] == 0:
        return np.take(data, [], axis=axis).sum(axis=axis) * np.nan, None
    if scan is not None:
        keys = np.asarray(res.coords.get(SCAN_DIM, np.arange(data.shape[axis])), dtype=np.float64)
        i = int(np.nanargmin(np.abs(keys - scan))) if keys.size else 0
        return np.take(data, i, axis=axis), None if sig is None else np.take(sig, i, axis=axis)
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        if weights is None:
            out = np.nanmean(data, axis=axis)
            if sig is not None:
                n = np.sum(np.isfinite(sig), axis=axis)
                sig = np.sqrt(np.nansum(sig**2, axis=axis)) / np.where(n > 0, n, np.nan)
            return out, sig
        w1 = np.asarray(weights.data, np.float64)
        if axis == 0 and w1.shape == data.shape[:1] and sig is None:
            # one weight per bin (images): one pass, no temporary arrays
            out = np.empty(data.shape[1:])
            weighted_nanmean(data.reshape(data.shape[0], -1), w1, out.reshape(-1))
            return out, None
        w = np.broadcast_to(_broadcast(w1, data.ndim), data.shape)
        w = np.where(np.isfinite(data), w, 0.0)
        total = w.sum(axis=axis)
        out = np.where(total > 0, np.nansum(w * data, axis=axis) / total, np.nan)
        if sig is not None:
            sig = np.sqrt(np.nansum((w * sig) ** 2, axis=axis)) / np.where(total > 0, total, np.nan)
        return out, sig


def _group_index(res: Result, dim: str, slot: str | None) -> int:
    """Index of ``slot`` along group dim ``dim`` of ``res`` where it is a coordinate value,
    else 0."""
    names = [str(s) for s in res.coords.get(dim, ())]
    return names.index(slot) if slot is not None and slot in names else 0


def pick(values: np.ndarray, dims: tuple[str, ...], res: Result, slot: str | None) -> np.ndarray:
    """Choose one value of every group dim of ``values`` (dims without scan): ``slot`` where it
    is a coordinate value, else the first."""
    out = values
    for d in dims:
        out = out[_group_index(res, d, slot)] if out.shape[0] else out
    return out


def select_groups(res: Result | None, dims: tuple[str, ...], slot: str | None) -> Result | None:
    """``res`` with one value of each group dim in ``dims`` chosen as `pick` does (``slot``
    where it is a coordinate value, else the first); other dims, the scan dim included, kept.

    Choosing before `reduce_scan` reduces only what is drawn (a view, not a copy). Empty group
    dims are kept.
    """
    if res is None:
        return None
    data, dims_left = np.asarray(res.data), list(res.dims)
    for d in dims:
        if d not in dims_left or data.shape[dims_left.index(d)] == 0:
            continue
        axis = dims_left.index(d)
        data = data[(slice(None),) * axis + (_group_index(res, d, slot),)]
        dims_left.remove(d)
    if len(dims_left) == len(res.dims):
        return res
    coords = {k: v for k, v in res.coords.items() if k in dims_left}
    return Result(res.name, data, tuple(dims_left), coords, res.units, res.coord_units, res.attrs)


def flatten_modules(img: np.ndarray) -> np.ndarray:
    """``(module, y, x)`` -> ``(module * y, x)`` (modules stacked along y); 2-D unchanged."""
    img = np.asarray(img)
    if img.ndim == 3:
        return img.reshape(-1, img.shape[-1])
    return img


def decimate(img: np.ndarray, max_size: int = 512, reduce: str = "mean") -> tuple[np.ndarray, int]:
    """Block-reduce a 2-D image so that neither side exceeds ``max_size``.

    Returns the float32 image and the integer block size (1: unchanged). NaNs are ignored in the
    mean (a block of NaNs stays NaN); ``reduce="max"`` keeps the maximum (for masks).
    """
    img = np.asarray(img)
    f = max(1, math.ceil(max(img.shape) / max_size)) if img.size else 1
    if f == 1:
        return np.ascontiguousarray(img, dtype=np.float32), 1
    ny, nx = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    if ny == 0 or nx == 0:
        return np.ascontiguousarray(img[::f, ::f], dtype=np.float32), f
    a = img[:ny, :nx]
    if reduce == "max":
        out = a.reshape(ny // f, f, nx // f, f).max(axis=(1, 3))
        return np.ascontiguousarray(out, dtype=np.float32), f
    # f * f strided adds of the small image: much faster than a 4-d reshape reduction
    a = a.astype(np.float32, copy=False)
    has_nan = a.dtype.kind == "f" and bool(np.isnan(a).any())
    total = np.zeros((ny // f, nx // f), np.float32)
    count = np.zeros((ny // f, nx // f), np.float32) if has_nan else None
    for i in range(f):
        for j in range(f):
            part = a[i::f, j::f]
            if count is not None:
                ok = ~np.isnan(part)
                total += np.where(ok, part, 0)
                count += ok
            else:
                total += part
    if count is None:
        return total / np.float32(f * f), f
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count > 0, total / count, np.nan).astype(np.float32), f


def color_levels(
    img: np.ndarray, scale: str = "linear", fixed: tuple[float, float] | None = None
) -> tuple[np.ndarray, float, float]:
    """The image to draw and its colour levels.

    ``scale="log"`` draws ``log10`` of positive values (others become NaN, drawn transparent).
    Auto levels are the 0.5 and 99.5 percentiles of the finite values, or the median and the
    99.99 percentile when a few values stand far above the rest (single photons on a noisy
    background would otherwise be lost in the noise); ``fixed`` levels are in data units (their
    log10 for the log scale).
    """
    out = np.asarray(img, dtype=np.float32)
    if scale == "log":
        with np.errstate(invalid="ignore", divide="ignore"):
            out = np.where(out > 0, np.log10(out), np.nan).astype(np.float32)
    if fixed is not None:
        lo, hi = float(fixed[0]), float(fixed[1])
        if scale == "log":
            lo = math.log10(lo) if lo > 0 else -1.0
            hi = math.log10(hi) if hi > 0 else lo + 1.0
        return out, lo, hi if hi > lo else lo + 1.0
    finite = out[np.isfinite(out)]
    if finite.size == 0:
        return out, 0.0, 1.0
    lo, mid, hi, top = (float(v) for v in np.percentile(finite, (0.5, 50, 99.5, 99.99)))
    if top - hi > 4 * (hi - lo) > 0:
        # sparse bright events (single photons on a camera): background dark, events bright
        lo, hi = mid, top
    if not hi > lo:
        lo, hi = float(finite.min()), float(finite.max())
        if not hi > lo:
            hi = lo + 1.0
    return out, lo, hi


def image_geometry(res: Result | None, shape: tuple[int, int], data_dims: tuple[str, ...]):
    """``(x, y, dw, dh, x_label, y_label)`` placing an image: pixel units for detector images,
    coordinate units (bin edges from centres) for maps."""
    ny, nx = shape
    if res is None or on_pixels(res, data_dims) or len(data_dims) < 2:
        return 0.0, 0.0, float(nx), float(ny), "x [pixel]", "y [pixel]"
    ydim, xdim = data_dims[-2], data_dims[-1]

    def span(dim: str, n: int) -> tuple[float, float]:
        c = np.asarray(res.coords.get(dim, np.arange(n)), dtype=np.float64)
        if c.size < 2:
            return (float(c[0]) - 0.5 if c.size else 0.0), 1.0
        step = (c[-1] - c[0]) / (c.size - 1)
        return float(c[0] - step / 2), float(step * c.size)

    x0, dw = span(xdim, nx)
    y0, dh = span(ydim, ny)

    def label(dim: str) -> str:
        u = res.coord_units.get(dim, "")
        return f"{dim} [{u}]" if u else dim

    return x0, y0, dw, dh, label(xdim), label(ydim)


def on_pixels(res: Result | None, data_dims: tuple[str, ...]) -> bool:
    """Whether an image is drawn on detector pixels (``y, x`` without coordinates), not on the
    coordinates of its axes (a q-phi map, a scan map in motor units)."""
    if data_dims[-2:] != PIXEL_DIMS:
        return False
    return res is None or not all(d in res.coords for d in PIXEL_DIMS)


def all_missing(values: Any) -> bool:
    """Whether ``values`` hold no finite number (empty or all NaN/inf)."""
    a = np.asarray(values)
    if a.size == 0:
        return True
    if a.dtype.kind not in "biufc":
        return False
    return not bool(np.isfinite(a).any())


def numeric_scalars(record: dict[str, Any]) -> dict[str, float]:
    """The plain numeric scalars of a per-train record (bools as 0/1; None as NaN)."""
    out: dict[str, float] = {}
    for k, v in record.items():
        if isinstance(v, bool | np.bool_):
            out[k] = float(v)
        elif isinstance(v, int | float | np.integer | np.floating):
            out[k] = float(v)
        elif v is None and k in ("scan_value", "timestamp"):
            out[k] = math.nan
    return out
