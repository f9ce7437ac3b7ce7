"""Loading of static per-pixel inputs (mask, dark, flat) from config values.

A value is an array, a ``.npy`` path, or an HDF5 path with the dataset after a colon
(``"mask.h5:/entry/mask"``) or given as a table ``{file = "mask.h5", dataset = "/entry/mask"}``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ..params import ParamError

__all__ = ["load_array"]

_H5_SUFFIXES = (".h5", ".hdf5", ".nxs", ".cxi")


def load_array(key: str, value: Any) -> np.ndarray | None:
    """Load a static per-pixel array for parameter ``key``; None stays None.

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
        return _read_h5(key, str(value["file"]), str(value["dataset"]))
    if not isinstance(value, str):
        raise ParamError(key, "a .npy path, 'file.h5:/dataset' or an array", value)
    path, dataset = value, None
    lower = value.lower()
    for suffix in _H5_SUFFIXES:
        pos = lower.find(suffix + ":")
        if pos >= 0:
            path, dataset = value[: pos + len(suffix)], value[pos + len(suffix) + 1 :]
            break
    if path.lower().endswith(_H5_SUFFIXES):
        if not dataset:
            raise ParamError(key, "an HDF5 path with its dataset, 'file.h5:/path/to/data'", value)
        return _read_h5(key, path, dataset)
    try:
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise ParamError(key, "a readable .npy file", f"{value} ({exc})") from exc


def _read_h5(key: str, path: str, dataset: str) -> np.ndarray:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return np.asarray(f[dataset][()])
    except (OSError, KeyError, TypeError) as exc:
        raise ParamError(key, "a readable HDF5 dataset", f"{path}:{dataset} ({exc})") from exc
