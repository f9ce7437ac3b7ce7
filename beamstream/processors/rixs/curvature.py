"""Curvature of the spectral lines on the hRIXS detector: correction and fitting.

A line of constant energy is imaged onto ``y = offset + a*x + b*x**2`` (detector pixel
coordinates: ``y`` along the dispersive/energy axis, ``x`` across it, pixel centres at integers).
The correction is ``y' = y - (a*x + b*x**2)``, which maps that line to ``y' = offset``.

`fit_curvature` finds the line centre in blocks of columns of an accumulated image (or of a
histogram of accumulated hits) with a Gaussian-plus-constant least-squares fit and fits the
parabola ``offset + a*x + b*x**2`` to the centres (one pass of outlier rejection).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from beamstream.processors.params import ParamError, finite_float, positive_int

__all__ = ["parse_curvature", "correct", "CurvatureFit", "fit_curvature", "fit_curvature_hits"]


def parse_curvature(value: Any, key: str = "curvature") -> tuple[float, float]:
    """Validate a ``[a, b]`` curvature pair (linear, quadratic coefficient)."""
    if value is None:
        return 0.0, 0.0
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise ParamError(key, "a [a, b] pair of numbers (y' = y - (a*x + b*x**2))", value)
    return finite_float(key, value[0]), finite_float(key, value[1])


def correct(y: np.ndarray, x: np.ndarray, a: float, b: float) -> np.ndarray:
    """Curvature-corrected position ``y - (a*x + b*x**2)``."""
    x = np.asarray(x, dtype=np.float64)
    return np.asarray(y, dtype=np.float64) - (a * x + b * x * x)


@dataclass(frozen=True)
class CurvatureFit:
    """Result of a curvature fit.

    Attributes
    ----------
    a, b
        Linear and quadratic coefficients (the ``curvature`` config pair).
    offset
        Line centre at ``x = 0`` (corrected position of the line), in pixels.
    x, y
        Block centres and the fitted line centre in each block (blocks that failed are left out).
    residual_rms
        RMS of the block centres about the parabola, in pixels.
    """

    a: float
    b: float
    offset: float
    x: np.ndarray = field(repr=False)
    y: np.ndarray = field(repr=False)
    residual_rms: float = 0.0

    def to_toml(self, source: str = "") -> str:
        """The parameters in config form (``curvature = [a, b]``) with a comment line."""
        head = f"# fit-curvature{': ' + source if source else ''}: {len(self.x)} blocks, "
        head += f"line centre at x = 0: {self.offset!r} px, rms residual {self.residual_rms:.3g} px"
        return f"{head}\ncurvature = [{self.a!r}, {self.b!r}]\n"


def _gauss_fit(coord: np.ndarray, prof: np.ndarray) -> float:
    """Centre of a single peak in ``prof`` by a Gaussian + constant fit; NaN on failure."""
    ok = np.isfinite(prof)
    coord, prof = coord[ok], prof[ok]
    if len(prof) < 5:
        return np.nan
    p = prof - np.median(prof)
    k = int(np.argmax(p))
    amp = p[k]
    if not amp > 0:
        return np.nan
    step = coord[1] - coord[0]
    near = np.abs(coord - coord[k]) <= 5 * max(step, 1.0)
    wsum = np.clip(p[near], 0, None).sum()
    mu = coord[k]
    var = (np.clip(p[near], 0, None) * (coord[near] - mu) ** 2).sum() / wsum if wsum > 0 else 1.0
    sig = float(np.clip(np.sqrt(var), 0.5 * step, 20.0))
    c = 0.0
    par = np.array([amp, mu, sig, c], dtype=np.float64)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore", under="ignore"):
        par = _levenberg(coord, p, par, step)
    if par is None or not (par[0] > 0 and coord[0] <= par[1] <= coord[-1]):
        return np.nan
    return float(par[1])


def _levenberg(coord: np.ndarray, p: np.ndarray, par: np.ndarray, step: float) -> np.ndarray | None:
    """Gauss + constant fit iterations from ``par``; None when the fit degenerates (a sparse
    block: no peak, overflowing widths)."""
    for _ in range(50):
        half = max(4.0 * par[2], 3.0 * step)
        sel = np.abs(coord - par[1]) <= half
        if sel.sum() < 5:
            return None
        t = coord[sel]
        g = np.exp(-0.5 * ((t - par[1]) / par[2]) ** 2)
        model = par[0] * g + par[3]
        r = p[sel] - model
        jac = np.column_stack(
            [
                g,
                par[0] * g * (t - par[1]) / par[2] ** 2,
                par[0] * g * (t - par[1]) ** 2 / par[2] ** 3,
                np.ones_like(t),
            ]
        )
        jtj = jac.T @ jac
        jtj[np.diag_indices(4)] *= 1.0 + 1e-6
        if not np.isfinite(jtj).all() or not np.isfinite(r).all():
            return None
        try:
            delta = np.linalg.solve(jtj, jac.T @ r)
        except np.linalg.LinAlgError:
            return None
        # keep the step sane: at most half a width in position, width stays positive
        delta[1] = np.clip(delta[1], -0.5 * par[2], 0.5 * par[2])
        par = par + delta
        par[2] = abs(par[2]) if par[2] != 0 else step
        if not np.isfinite(par).all():
            return None
        if abs(delta[1]) < 1e-9 * max(1.0, abs(par[1])):
            break
    return par


def _column_mean(block: np.ndarray) -> np.ndarray:
    """Mean over the finite values of each row of ``block`` (NaN for a row with none)."""
    ok = np.isfinite(block)
    n = ok.sum(axis=1)
    total = np.where(ok, block, 0.0).sum(axis=1)
    return np.divide(total, n, out=np.full(len(n), np.nan), where=n > 0)


def _fit_parabola(x: np.ndarray, y: np.ndarray) -> CurvatureFit:
    ok = np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 3:
        raise ValueError(f"curvature fit needs at least 3 blocks with a line, found {len(x)}")
    coef = np.polyfit(x, y, 2)
    res = y - np.polyval(coef, x)
    mad = np.median(np.abs(res - np.median(res)))
    keep = np.abs(res) <= max(5 * 1.4826 * mad, 1e-9)
    if keep.sum() >= 3 and not keep.all():
        x, y = x[keep], y[keep]
        coef = np.polyfit(x, y, 2)
        res = y - np.polyval(coef, x)
    b, a, off = (float(v) for v in coef)
    return CurvatureFit(a, b, off, x, y, float(np.sqrt(np.mean(res**2))))


def _blocks(n: int, block: int) -> list[tuple[int, int]]:
    return [(s, min(s + block, n)) for s in range(0, n, block) if min(s + block, n) - s > 0]


def fit_curvature(
    image: np.ndarray,
    *,
    block: int | None = None,
    x_offset: float = 0.0,
    y_offset: float = 0.0,
) -> CurvatureFit:
    """Fit the line curvature of an accumulated image.

    Parameters
    ----------
    image : ndarray, shape (y, x)
        Accumulated (e.g. summed) detector image, ``y`` the energy axis; a 3-D stack is summed
        over its first axis. Non-finite pixels are ignored.
    block
        Columns per block (default: width // 64, at least 1).
    x_offset, y_offset
        Detector coordinates of ``image[0, 0]`` (the ROI origin), so that the result applies to
        detector coordinates.

    Returns
    -------
    CurvatureFit
    """
    img = np.asarray(image, dtype=np.float64)
    if img.ndim == 3:
        img = np.nansum(img, axis=0)
    if img.ndim != 2:
        raise ValueError(f"expected a 2-D image (y, x), got shape {np.shape(image)}")
    h, w = img.shape
    block = positive_int("block", block) if block is not None else max(1, w // 64)
    ycoord = y_offset + np.arange(h, dtype=np.float64)
    xs, ys = [], []
    for s, e in _blocks(w, block):
        xs.append(x_offset + 0.5 * (s + e - 1))
        ys.append(_gauss_fit(ycoord, _column_mean(img[:, s:e])))
    return _fit_parabola(np.asarray(xs), np.asarray(ys))


def fit_curvature_hits(
    x: Sequence[float] | np.ndarray,
    y: Sequence[float] | np.ndarray,
    *,
    block: float | None = None,
    bin_width: float = 0.5,
) -> CurvatureFit:
    """Fit the line curvature from accumulated photon hits (detector coordinates).

    The hits are grouped into blocks of ``block`` pixels along ``x`` (default: the x extent / 32),
    each block's ``y`` values histogrammed in bins of ``bin_width`` pixels, and the peak of each
    histogram fitted as in `fit_curvature`.
    """
    x = np.asarray(x, dtype=np.float64).ravel()
    y = np.asarray(y, dtype=np.float64).ravel()
    ok = np.isfinite(x) & np.isfinite(y)
    x, y = x[ok], y[ok]
    if len(x) < 10:
        raise ValueError(f"curvature fit needs hits, got {len(x)}")
    xmin, xmax = float(x.min()), float(x.max())
    span = max(xmax - xmin, 1.0)
    block = float(block) if block is not None else span / 32
    if not block > 0:
        raise ValueError(f"block must be positive, got {block}")
    edges_y = np.arange(np.floor(y.min()) - 2, np.ceil(y.max()) + 2 + bin_width, bin_width)
    ycent = 0.5 * (edges_y[:-1] + edges_y[1:])
    nblk = max(1, int(np.ceil(span / block)))
    which = np.minimum(((x - xmin) / block).astype(np.int64), nblk - 1)
    xs, ys = [], []
    for k in range(nblk):
        sel = which == k
        if sel.sum() < 10:
            continue
        xs.append(float(x[sel].mean()))
        ys.append(_gauss_fit(ycent, np.histogram(y[sel], edges_y)[0].astype(np.float64)))
    return _fit_parabola(np.asarray(xs), np.asarray(ys))
