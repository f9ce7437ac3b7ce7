"""Static arrays from config values (masks, darks, flats, geometry tables), and config paths.

One loader, `load_array`, for every static array a config names:

* an array or a nested list (as given);
* ``"x.npy"``; ``"x.npz"`` (its only array, else ``default_key``) or ``"x.npz:key"``;
* ``"x.h5:/path/to/dataset"`` (also ``.hdf5``, ``.nxs``, ``.cxi``) or a table
  ``{file = "x.h5", dataset = "/path"}`` (``{file = "x.npz", dataset = "key"}`` too);
* ``"x.tif"`` / ``"x.tiff"`` (through tifffile).

Errors are `ParamError` s naming the key, what was expected and what was found; the pipeline
adds the file and table. `resolve_paths` makes every relative file path of a config value
(nested tables and lists included) relative to the config file's folder.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from beamstream.processors.params import ParamError

__all__ = ["load_array", "resolve_paths", "split_dataset", "FILE_SUFFIXES"]

_H5 = (".h5", ".hdf5", ".nxs", ".cxi")
_TIFF = (".tif", ".tiff")
#: suffixes of the files a config value can name (resolved against the config's folder)
FILE_SUFFIXES = (".npy", ".npz", *_H5, *_TIFF, ".poni", ".edf", ".json", ".txt", ".dat")
_EXPECTED = "an array, .npy, .npz[:key], file.h5:/dataset, {file, dataset} or .tif"


def split_dataset(value: str) -> tuple[str, str | None]:
    """``"x.h5:/entry/mask"`` -> ``("x.h5", "/entry/mask")``; a plain path -> ``(path, None)``."""
    lower = value.lower()
    for suffix in (*_H5, ".npz"):
        pos = lower.find(suffix + ":")
        if pos >= 0:
            return value[: pos + len(suffix)], value[pos + len(suffix) + 1 :]
    return value, None


def _is_path(value: str) -> bool:
    return split_dataset(value)[0].lower().endswith(FILE_SUFFIXES)


def resolve_paths(value: Any, folder: Path | None) -> Any:
    """``value`` with every relative file path made relative to ``folder`` (recursively).

    A string is a file path when it ends in one of `FILE_SUFFIXES` (before an optional
    ``:dataset``); other strings, numbers and absolute paths are kept.
    """
    if folder is None:
        return value
    if isinstance(value, Mapping):
        return {k: resolve_paths(v, folder) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(resolve_paths(v, folder) for v in value)
    if not isinstance(value, str) or not _is_path(value) or "://" in value:
        return value
    path, dataset = split_dataset(value)
    if Path(path).is_absolute():
        return value
    joined = str(folder / path)
    return joined if dataset is None else f"{joined}:{dataset}"


def load_array(key: str, value: Any, default_key: str | None = None) -> np.ndarray | None:
    """The static array of parameter ``key`` (see the module docstring); None stays None.

    ``default_key`` names the array of an ``.npz`` with several (e.g. ``"mask"``).

    Raises
    ------
    ParamError
        When the value is of the wrong type or the file or dataset cannot be read.
    """
    if value is None:
        return None
    if isinstance(value, np.ndarray):
        return value
    if isinstance(value, list):
        return np.asarray(value)
    if isinstance(value, Mapping):
        if "file" not in value or "dataset" not in value:
            raise ParamError(key, "a table {file = ..., dataset = ...}", dict(value))
        return _read(key, str(value["file"]), str(value["dataset"]), default_key)
    if not isinstance(value, str | Path):
        raise ParamError(key, _EXPECTED, value)
    path, dataset = split_dataset(str(value))
    return _read(key, path, dataset, default_key)


def _read(key: str, path: str, dataset: str | None, default_key: str | None) -> np.ndarray:
    lower = path.lower()
    try:
        if lower.endswith(_H5):
            if not dataset:
                raise ParamError(key, "an HDF5 path with its dataset, 'file.h5:/path'", path)
            return _read_h5(path, dataset)
        if lower.endswith(".npz"):
            return _read_npz(key, path, dataset or default_key)
        if lower.endswith(_TIFF):
            import tifffile

            return np.asarray(tifffile.imread(path))
        if lower.endswith(".npy"):
            return np.load(path, allow_pickle=False)
    except ParamError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:
        where = f"{path}:{dataset}" if dataset else path
        raise ParamError(key, f"a readable {_kind(lower)}", f"{where} ({exc})") from exc
    raise ParamError(key, _EXPECTED, path)


def _kind(lower_path: str) -> str:
    if lower_path.endswith(_H5):
        return "HDF5 dataset"
    if lower_path.endswith(_TIFF):
        return "TIFF file"
    return f"{Path(lower_path).suffix} file"


def _read_h5(path: str, dataset: str) -> np.ndarray:
    import h5py

    with h5py.File(path, "r") as f:
        return np.asarray(f[dataset][()])


def _read_npz(key: str, path: str, name: str | None) -> np.ndarray:
    with np.load(path, allow_pickle=False) as z:
        if name is None and len(z.files) == 1:
            name = z.files[0]
        if name not in z.files:
            raise ParamError(key, f"an .npz with the array {name!r} (or one array)", z.files)
        return np.asarray(z[name])
