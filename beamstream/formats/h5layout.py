"""HDF5 building blocks shared by the results sink, `open_results`, merge and the raw recorder.

* `write_tree` / `read_tree`: nested ``dict``s of arrays and plain values <-> HDF5 groups
  (arrays become datasets, plain values JSON attributes), used for accumulator states;
* `write_result` / `read_result`: a `Result` <-> a NeXus ``NXdata`` group (``signal``, ``axes``,
  ``<axis>_indices``, ``units``);
* `atomic_h5`: write a whole file under a temporary name and `os.replace` it into place.
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from beamstream.processors.base import Result
from beamstream.processors.presentation import DIM_LONG_NAMES, coord_long_name, interpretation

__all__ = [
    "to_json",
    "from_json",
    "write_tree",
    "read_tree",
    "write_result",
    "write_nxdata",
    "read_result",
    "atomic_h5",
    "h5name",
    "iter_results",
    "open_h5",
    "STR",
    "compression_kwargs",
]

#: variable-length UTF-8 strings
STR = h5py.string_dtype()
_KIND = "beamstream_kind"


def _plain(obj: Any) -> Any:
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    if isinstance(obj, bytes):
        return obj.decode("utf-8", "replace")
    return str(obj)  # Paths, enums, ...: their text


def to_json(obj: Any) -> str:
    """JSON text of plain values (numpy scalars and arrays as numbers and lists)."""
    return json.dumps(obj, default=_plain, allow_nan=True, sort_keys=False)


def from_json(text: Any) -> Any:
    if isinstance(text, bytes):
        text = text.decode()
    return json.loads(text)


def h5name(name: str) -> str:
    """A name usable as one HDF5 link name (``/`` escaped as ``%2F``, ``.`` alone avoided)."""
    name = str(name).replace("%", "%25").replace("/", "%2F")
    return name if name not in ("", ".", "..") else f"%{name}"


def _unname(name: str) -> str:
    if name in ("%", "%.", "%.."):
        return name[1:]
    return name.replace("%2F", "/").replace("%25", "%")


def _storable(arr: np.ndarray) -> np.ndarray:
    if arr.dtype.kind == "U":
        return arr.astype(object)
    return arr


def _restore(ds: h5py.Dataset) -> np.ndarray:
    arr = ds[()]
    orig = ds.attrs.get("numpy_dtype")
    if orig is not None and str(orig).lstrip("<>|=").startswith("U"):
        return np.asarray(arr).astype(object).astype(str) if np.ndim(arr) else np.str_(arr.decode())
    if isinstance(arr, np.ndarray) and arr.dtype == object:
        return np.array([v.decode() if isinstance(v, bytes) else v for v in arr.ravel()]).reshape(
            arr.shape
        )
    return np.asarray(arr)


def _dataset(
    group: h5py.Group, name: str, arr: np.ndarray, compression: Mapping[str, Any] | None = None
) -> h5py.Dataset:
    arr = np.asarray(arr)
    store = _storable(arr)
    kw: dict[str, Any] = {}
    if compression and arr.ndim and arr.size > 1024 and store.dtype != object:
        kw.update(compression, chunks=True)
    if store.dtype == object:
        ds = group.create_dataset(name, data=store, dtype=STR)
    else:
        ds = group.create_dataset(name, data=store, **kw)
    if arr.dtype.kind == "U":
        ds.attrs["numpy_dtype"] = arr.dtype.str
    return ds


def write_tree(group: h5py.Group, tree: Mapping[str, Any]) -> None:
    """Write a nested dict: arrays as datasets, dicts as sub-groups, the rest as JSON attributes."""
    group.attrs[_KIND] = "tree"
    plain = {}
    for key, value in tree.items():
        name = h5name(str(key))
        if isinstance(value, np.ndarray):
            _dataset(group, name, value)
        elif isinstance(value, Mapping):
            write_tree(group.create_group(name, track_order=True), value)
        else:
            plain[str(key)] = value
    if plain:
        group.attrs["values_json"] = to_json(plain)


def read_tree(group: h5py.Group) -> dict[str, Any]:
    """Read back what `write_tree` wrote."""
    out: dict[str, Any] = {}
    for name, obj in group.items():
        if isinstance(obj, h5py.Dataset):
            out[_unname(name)] = _restore(obj)
        else:
            out[_unname(name)] = read_tree(obj)
    if "values_json" in group.attrs:
        out.update(from_json(group.attrs["values_json"]))
    return out


def write_result(
    group: h5py.Group,
    result: Result,
    compression: Mapping[str, Any] | None = None,
    *,
    errors: np.ndarray | None = None,
    title: str = "",
) -> h5py.Group:
    """Write one result as an ``NXdata`` group named after it (signal ``data``).

    A name with ``/`` (``maps/int_saxs``, lixtools' ``data key / sub key``) is stored nested:
    ``NXcollection`` groups for the leading parts, the ``NXdata`` group for the last.
    ``errors`` (standard errors, the shape of the data) are stored as ``data_errors``, which
    NeXus viewers draw as error bars; ``title`` as the group's ``title``.
    """
    *parents, leaf = [p for p in result.name.split("/") if p] or [result.name]
    for part in parents:
        sub = group.get(h5name(part))
        if sub is None:
            sub = group.create_group(h5name(part), track_order=True)
            sub.attrs["NX_class"] = "NXcollection"
        group = sub
    g = group.create_group(h5name(leaf), track_order=True)
    g.attrs["result_name"] = result.name
    write_nxdata(g, result, np.asarray(result.data), result.dims, compression, errors, title)
    if result.attrs:
        g.attrs["result_attrs_json"] = to_json(result.attrs)
    return g


def write_nxdata(
    g: h5py.Group,
    result: Result,
    data: np.ndarray | h5py.Dataset,
    dims: tuple[str, ...],
    compression: Mapping[str, Any] | None = None,
    errors: np.ndarray | None = None,
    title: str = "",
) -> None:
    """Fill ``g`` as an ``NXdata`` group: ``data`` over ``dims`` (a subset of ``result``'s dims,
    for a squeezed view), numeric coordinates as axes (text coordinates are stored but are no
    axes), units, long names, ``@interpretation``, errors and title. ``data`` may be a dataset
    of the same file holding those values: it is then hard-linked, not copied."""
    g.attrs["NX_class"] = "NXdata"
    g.attrs["signal"] = "data"
    g.attrs["axes"] = [d if _is_axis(result, d) else "." for d in dims]
    g.attrs["dims"] = list(dims)
    for i, dim in enumerate(dims):
        if _is_axis(result, dim):
            g.attrs[f"{dim}_indices"] = i
    if title:
        g.attrs["title"] = title
    if isinstance(data, h5py.Dataset):  # the same values already stored: a hard link, no copy
        g["data"] = data
        ds = g["data"]
    else:
        ds = _dataset(g, "data", data, compression)
    ds.attrs["long_name"] = result.name + (f" ({result.units})" if result.units else "")
    ds.attrs["interpretation"] = interpretation(result, tuple(dims))
    if result.units:
        ds.attrs["units"] = result.units
    if errors is not None:
        e = _dataset(g, "data_errors", np.asarray(errors), compression)
        if result.units:
            e.attrs["units"] = result.units
    for dim in dims:
        if dim not in result.coords:
            continue
        c = _dataset(g, h5name(dim), np.asarray(result.coords[dim]))
        unit = result.coord_units.get(dim, "")
        c.attrs["long_name"] = coord_long_name(result, dim) + (f" ({unit})" if unit else "")
        if unit:
            c.attrs["units"] = unit


def _is_axis(result: Result, dim: str) -> bool:
    """A coordinate viewers can use as an axis: numeric (text labels are not)."""
    c = result.coords.get(dim)
    return c is not None and np.asarray(c).dtype.kind in "biuf"


def read_result(g: h5py.Group) -> Result:
    """The `Result` stored by `write_result`."""
    name = str(g.attrs.get("result_name", _unname(g.name.rsplit("/", 1)[-1])))
    ds = g["data"]
    dims = tuple(str(d) for d in g.attrs["dims"])
    coords, coord_units, long_names = {}, {}, {}
    for dim in dims:
        if h5name(dim) in g:
            c = g[h5name(dim)]
            coords[dim] = _restore(c)
            unit = _str_attr(c, "units")
            if unit:
                coord_units[dim] = unit
            long_name = _str_attr(c, "long_name").removesuffix(f" ({unit})" if unit else "")
            if long_name and long_name != DIM_LONG_NAMES.get(dim, dim):
                long_names[dim] = long_name
    attrs = from_json(g.attrs["result_attrs_json"]) if "result_attrs_json" in g.attrs else {}
    units = str(ds.attrs.get("units", ""))
    return Result(name, _restore(ds), dims, coords, units, coord_units, attrs, long_names)


def iter_results(group: h5py.Group) -> list[h5py.Group]:
    """Every ``NXdata`` result group below ``group`` (nested names included), in order."""
    found = []
    for obj in group.values():
        if not isinstance(obj, h5py.Group):
            continue
        if _str_attr(obj, "NX_class") == "NXdata":
            found.append(obj)
        else:
            found += iter_results(obj)
    return found


def _str_attr(obj: h5py.HLObject, key: str) -> str:
    v = obj.attrs.get(key, "")
    return v.decode() if isinstance(v, bytes) else str(v)


def open_h5(path: str | os.PathLike[str]) -> h5py.File:
    """Open an HDF5 file for reading; a file left open by a killed SWMR writer opens too.

    Raises
    ------
    OSError
        Naming the file, when it is missing or not HDF5.
    """
    p = Path(path)
    if not p.exists():
        raise OSError(f"{p}: no such file")
    try:
        return h5py.File(p, "r")
    except OSError as first:
        if "already open for write" not in str(first):  # truncated, not HDF5, ...
            raise OSError(f"{p}: not a readable HDF5 file ({first})") from None
        try:  # the writer was killed while in SWMR mode: the consistency flags are still set
            return h5py.File(p, "r", libver="latest", swmr=True)
        except OSError:
            raise OSError(f"{p}: not a readable HDF5 file ({first})") from None


@contextlib.contextmanager
def atomic_h5(path: str | os.PathLike[str], fsync: bool = True) -> Iterator[h5py.File]:
    """Write a new HDF5 file at ``path`` atomically.

    The file is built in memory, written as ``<path>.tmp-<pid>`` (fsynced), and renamed over
    ``path``: readers and a crash at any moment see either the previous complete file or the new
    complete one, never a half-written one. A failed write (a full disk) raises `OSError`
    and leaves the previous file and no temporary.
    """
    final = Path(path)
    tmp = final.with_name(f"{final.name}.tmp-{os.getpid()}")
    # built in memory, then written with plain file I/O: a full disk is a clean OSError here,
    # never an HDF5 library left with dirty metadata it keeps failing to flush
    f = h5py.File(
        f"{final.name}-{id(final)}", "w", driver="core", backing_store=False, track_order=True
    )
    try:
        yield f
        f.flush()
        image = f.id.get_file_image()
    finally:
        f.close()
    try:
        with open(tmp, "wb") as out:
            out.write(image)
            out.flush()
            if fsync:
                os.fsync(out.fileno())
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)  # the previous file stays as it was, without debris
        raise
    if fsync:
        with contextlib.suppress(OSError):
            _fsync(final.parent)


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def compression_kwargs(name: str | None) -> dict[str, Any]:
    """h5py dataset keywords for a compression name.

    ``None``/``"none"``: no compression; ``"gzip"``, ``"lzf"``: built into h5py; ``"lz4"``,
    ``"zstd"``, ``"bitshuffle"``, ``"blosc"``: through hdf5plugin when it is installed.

    Raises
    ------
    ValueError
        For an unknown name, or a plugin name without hdf5plugin.
    """
    if name is None or name == "none":
        return {}
    if name in ("gzip", "lzf"):
        return {"compression": name}
    plugins = {"lz4": "LZ4", "zstd": "Zstd", "bitshuffle": "Bitshuffle", "blosc": "Blosc"}
    if name not in plugins:
        raise ValueError(f"compression {name!r}: expected none, gzip, lzf, {', '.join(plugins)}")
    try:
        import hdf5plugin
    except ImportError:
        raise ValueError(
            f"compression {name!r} needs hdf5plugin (pip install hdf5plugin)"
        ) from None
    return dict(getattr(hdf5plugin, plugins[name])())
