"""`Result`s as xarray objects: one ``DataArray`` per result, one ``Dataset`` per processor.

Results of one processor may use the same dim name for different grids (q-phi: the cake's 500
``q`` bins and I(q)'s 1000; the binner: 4 pattern slots for ``mean``, 2 for
``mean_dark_subtracted``). Put side by side, xarray would outer-join them and pad with NaN;
`to_dataset` instead gives every distinct grid its own dim name: the first result keeps ``q``,
a result with another ``q`` grid gets ``q_<grid>`` (``attrs["grid"]``, e.g. ``q_1d``) or
``q_<result name>``. Every variable of the Dataset then holds exactly its result's values.
Coordinates carry ``units`` and ``long_name`` (see `beamstream.processors.presentation`).
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from typing import Any

import numpy as np

from beamstream.processors.base import Result
from beamstream.processors.presentation import coord_long_name

__all__ = ["to_dataarray", "to_dataset", "grid_dims", "result_html"]


def _coord(result: Result, dim: str, name: str) -> Any:
    import xarray as xr

    attrs = {"long_name": coord_long_name(result, dim)}
    if result.coord_units.get(dim):
        attrs["units"] = result.coord_units[dim]
    return xr.Variable((name,), np.asarray(result.coords[dim]), attrs)


def to_dataarray(result: Result, dims: tuple[str, ...] | None = None) -> Any:
    """``result`` as an ``xarray.DataArray`` (its dims renamed to ``dims`` if given)."""
    import xarray as xr

    names = tuple(dims) if dims is not None else result.dims
    coords = {
        names[i]: _coord(result, d, names[i])
        for i, d in enumerate(result.dims)
        if d in result.coords
    }
    attrs = {"long_name": result.name, **result.attrs}
    if result.units:
        attrs["units"] = result.units
    return xr.DataArray(
        np.asarray(result.data), dims=names, coords=coords, attrs=attrs, name=result.name
    )


def _same_grid(a: tuple[int, np.ndarray | None], b: tuple[int, np.ndarray | None]) -> bool:
    if a[0] != b[0] or (a[1] is None) != (b[1] is None):
        return False
    if a[1] is None:
        return True
    x, y = np.asarray(a[1]), np.asarray(b[1])
    if x.dtype.kind in "fc" and y.dtype.kind in "fc":
        return bool(np.array_equal(x, y, equal_nan=True))
    return bool(np.array_equal(x, y))


def grid_dims(results: Mapping[str, Result]) -> dict[str, tuple[str, ...]]:
    """Per result, its dim names in a shared Dataset: one name per distinct grid."""
    grids: dict[str, tuple[int, np.ndarray | None]] = {}
    out: dict[str, tuple[str, ...]] = {}
    for name, r in results.items():
        names = []
        for i, dim in enumerate(r.dims):
            grid = (int(np.shape(r.data)[i]), r.coords.get(dim))
            new = dim
            if dim in grids and not _same_grid(grids[dim], grid):
                tag = str(r.attrs.get("grid") or name).replace("/", "_")
                new, k = f"{dim}_{tag}", 2
                while new in grids and not _same_grid(grids[new], grid):
                    new, k = f"{dim}_{tag}_{k}", k + 1
            grids.setdefault(new, grid)
            names.append(new)
        out[name] = tuple(names)
    return out


def to_dataset(results: Mapping[str, Result]) -> Any:
    """One processor's results as an ``xarray.Dataset``, one variable per result, no padding.

    Variable names are the result names (``maps/int_saxs`` stays ``maps/int_saxs``).
    """
    import xarray as xr

    dims = grid_dims(results)
    return xr.Dataset({n: to_dataarray(r, dims[n]) for n, r in results.items()})


def result_html(result: Result) -> str:
    """A small HTML table of a result (for notebooks): shape, dims with ranges, units."""
    rows = []
    for i, dim in enumerate(result.dims):
        n = np.shape(result.data)[i]
        c = result.coords.get(dim)
        if c is None or len(c) == 0:
            span = f"{n} (no coordinate)"
        elif np.asarray(c).dtype.kind in "iuf":
            span = f"{n}: {c[0]:.6g} … {c[-1]:.6g} {result.coord_units.get(dim, '')}"
        else:
            span = f"{n}: " + ", ".join(str(v) for v in list(c)[:6]) + (" …" if n > 6 else "")
        rows.append((dim, coord_long_name(result, dim), span))
    data = np.asarray(result.data)
    finite = data[np.isfinite(data)] if data.dtype.kind in "fc" else data
    stats = f"min {finite.min():.6g}, max {finite.max():.6g}" if finite.size else "no finite value"
    body = "".join(
        f"<tr><td><b>{html.escape(d)}</b></td><td>{html.escape(ln)}</td>"
        f"<td>{html.escape(s)}</td></tr>"
        for d, ln, s in rows
    )
    head = (
        f"<b>Result {html.escape(result.name)}</b> {data.dtype} {data.shape}"
        f" {html.escape(result.units or '')} ({html.escape(stats)})"
    )
    return f"<div>{head}<table>{body}</table></div>"
