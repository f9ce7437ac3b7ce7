"""ROI sums of detector images and the delay-scan curve built from them (no Bokeh here)."""

from __future__ import annotations

import numpy as np

from beamstream.processors.base import Result
from beamstream.sinks.dashboard._kernels import nan_roi_sums
from beamstream.sinks.dashboard.prep import SCAN_DIM, short_name

__all__ = ["roi_sums", "pump_probe_curve"]


def _stack(images: np.ndarray, image_ndim: int) -> np.ndarray:
    """Leading dims kept, the last ``image_ndim`` dims as one 2-D image (modules along y)."""
    a = np.asarray(images)
    lead = a.shape[: a.ndim - image_ndim]
    return a.reshape(*lead, -1, a.shape[-1]) if image_ndim == 3 else a


def roi_sums(
    images: np.ndarray, roi: tuple[int, int, int, int] | None, image_ndim: int = 2
) -> np.ndarray:
    """NaN-ignoring sums inside ``roi = (x0, x1, y0, y1)`` (pixels, end excluded) of each image.

    ``images`` holds images in its last ``image_ndim`` dims (2: ``(y, x)``; 3: ``(module, y,
    x)``, modules stacked along y); the result has its leading shape. An image whose ROI holds
    no finite pixel (e.g. a scan bin where nothing was counted) gives NaN.
    """
    a = _stack(images, image_ndim)
    lead, (ny, nx) = a.shape[:-2], a.shape[-2:]
    stack = a.reshape(-1, ny, nx)
    x0, x1, y0, y1 = (0, nx, 0, ny) if roi is None else (int(v) for v in roi)
    x0, x1 = min(max(x0, 0), nx), min(max(x1, 0), nx)
    y0, y1 = min(max(y0, 0), ny), min(max(y1, 0), ny)
    sums = np.empty(stack.shape[0])
    counts = np.empty(stack.shape[0], dtype=np.int64)
    if stack.dtype.kind not in "biuf":
        stack = stack.astype(np.float64)
    nan_roi_sums(stack, y0, max(y1, y0), x0, max(x1, x0), sums, counts)
    return np.where(counts > 0, sums, np.nan).reshape(lead)


def pump_probe_curve(
    results: dict[str, Result],
    pp: Result,
    roi: tuple[int, int, int, int] | None,
) -> dict[str, np.ndarray]:
    """The delay-scan curve: the ROI sum of the pump-probe difference image per scan bin.

    One point per scan bin (sorted by scan value; NaN where the bin has no data). Error bars are
    the counting (Poisson) error of the ROI sums of the mean images the difference is made of,
    ``sqrt(sum_s |S_s| / n_s)`` over the pumped and unpumped slots (and their dark slots when the
    difference is dark-subtracted, ``pp.attrs["dark_subtracted"]``, as named by the
    ``mean_dark_subtracted`` result's ``dark_slot`` attribute), with ``n_s`` the frame
    counts of the bin (from the ``counts`` result), i.e. assuming pixel values in photons.
    Without ``mean``/``counts`` siblings the errors are NaN.
    """
    data = np.asarray(pp.data)
    if SCAN_DIM in pp.dims and pp.dims.index(SCAN_DIM) != 0:
        data = np.moveaxis(data, pp.dims.index(SCAN_DIM), 0)
    elif SCAN_DIM not in pp.dims:
        data = data[np.newaxis]
    keys = np.asarray(pp.coords.get(SCAN_DIM, np.arange(data.shape[0])), dtype=np.float64)
    y = roi_sums(data, roi, data.ndim - 1)
    err = _counting_errors(results, pp, roi, data.shape[0])
    order = np.argsort(keys, kind="stable")
    y, err, keys = y[order], err[order], keys[order]
    return {"x": keys, "y": y, "lower": y - err, "upper": y + err}


def _counting_errors(
    results: dict[str, Result], pp: Result, roi: tuple[int, int, int, int] | None, n: int
) -> np.ndarray:
    """Per scan bin counting error of the ROI sum of ``pp`` (see `pump_probe_curve`)."""
    err = np.full(n, np.nan)
    prefix = pp.name[: len(pp.name) - len(short_name(pp.name))]
    mean, counts = results.get(prefix + "mean"), results.get(prefix + "counts")
    if mean is None or counts is None or "slot" not in mean.coords:
        return err
    slots = [str(s) for s in mean.coords["slot"]]
    m, c = np.asarray(mean.data), np.asarray(counts.data, dtype=np.float64)
    if not (m.shape[:2] == c.shape[:2] == (n, len(slots))):
        return err
    if "pumped" not in slots or "unpumped" not in slots:
        return err
    used = [slots.index("pumped"), slots.index("unpumped")]
    sub = results.get(prefix + "mean_dark_subtracted")
    if pp.attrs.get("dark_subtracted") and sub is not None:
        # the binner names each subtracted slot's dark slot
        bright = [str(s) for s in sub.coords.get("slot", ())]
        dark = dict(zip(bright, [str(d) for d in sub.attrs.get("dark_slot", ())], strict=False))
        used += [slots.index(dark[s]) for s in ("pumped", "unpumped") if dark.get(s) in slots]
    n_used = c[:, used]
    ok = np.all(n_used > 0, axis=1)
    if not ok.any():
        return err
    sums = np.abs(np.stack([roi_sums(m[:, s], roi, m.ndim - 2) for s in used], axis=1))
    err[ok] = np.sqrt(np.sum(sums[ok] / n_used[ok], axis=1))  # NaN where a slot's ROI is all NaN
    return err
