"""`EuXFELReader`: European XFEL run directories and files, through extra-data (optional).

Needs ``pip install beamstream[euxfel]`` (extra-data). Control values keep the file spelling
(``beamPosition.ixPos.value``, with ``.timestamp`` siblings); `Train.get` finds them by either
spelling. Detector modules are separate sources (as in the files) or, with ``stack_modules``,
one ``<DETECTOR>/DET/APPEND`` source whose ``image.data`` (and ``image.gain``/``image.mask``) is
stacked ``(frame, module, ss, fs)``, as ``karabo-bridge-serve-files --append-detector-modules``
does. Arrays of Python objects (strings) are dropped, as the reference streamer does.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beamstream.replay.base import FormatError, Reader
from beamstream.replay.select import Include, TrainRange
from beamstream.streamer.train import Train

__all__ = ["EuXFELReader"]

_STACKED = ("image.data", "image.gain", "image.mask")


def _extra_data() -> Any:
    try:
        import extra_data
    except ImportError:
        raise ImportError(
            "reading European XFEL runs needs extra-data: pip install 'beamstream[euxfel]'"
        ) from None
    return extra_data


class EuXFELReader(Reader):
    """Trains of a European XFEL run directory (or one of its HDF5 files).

    Parameters
    ----------
    path
        A run directory (``r0123/``) or a single EuXFEL HDF5 file.
    trains, include
        Selection (see `Reader`); include patterns select through extra-data, so unselected
        data is never read.
    stack_modules
        Stack the modules of a multi-module detector (AGIPD, LPD, DSSC) into one source.
    """

    format = "euxfel"
    detect_order = 2

    @classmethod
    def can_open(cls, path: Path, h5: Any = None) -> bool:
        if path.is_dir():
            return any(path.glob("*.h5"))
        return h5 is not None and "INDEX" in h5 and "METADATA" in h5

    def __init__(
        self,
        path: str | Path,
        trains: str | TrainRange | None = None,
        include: Sequence[str | Include] | None = None,
        stack_modules: bool = False,
    ):
        super().__init__(path, trains, include)
        ed = _extra_data()
        try:
            dc = (
                ed.RunDirectory(str(self.path)) if self.path.is_dir() else ed.H5File(str(self.path))
            )
        except FileNotFoundError as e:
            raise FormatError(f"{self.path}: no European XFEL data found ({e})") from None
        except Exception as e:  # extra-data raises assorted errors for foreign files
            raise FormatError(
                f"{self.path}: not a European XFEL run or file (expected INDEX/ and METADATA/ "
                f"groups as extra-data reads them): {type(e).__name__}: {e}"
            ) from None
        if self.includes:
            patterns = []
            for inc in self.includes:
                patterns.append((inc.source, inc.key))
                if not inc.key.endswith("*"):
                    patterns.append((inc.source, inc.key + ".value"))
            try:
                dc = dc.select([p for p in patterns if _matches(dc, p)])
            except Exception as e:
                raise FormatError(
                    f"{self.path}: no data matches the include patterns: {e}"
                ) from None
        self._dc = dc
        self.train_ids = np.asarray(dc.train_ids, dtype=np.int64)
        self.timestamps = _timestamps(dc, len(self.train_ids))
        self._det = _detector(dc) if stack_modules else None

    def _read(self, pos: int) -> Train | None:
        tid, raw = self._dc.train_from_id(int(self.train_ids[pos]))
        data: dict[str, dict[str, Any]] = {}
        meta: dict[str, dict[str, Any]] = {}
        dims: dict[str, dict[str, tuple[str, ...]]] = {}
        for src, values in raw.items():
            md = values.pop("metadata", {"source": src, "timestamp.tid": tid})
            _drop_objects(values)
            if not values:
                continue
            data[src], meta[src] = values, md
            arr = values.get("image.data")
            if src.endswith(":xtdf") and isinstance(arr, np.ndarray) and arr.ndim == 3:
                dims[src] = {"image.data": ("frame", "ss", "fs")}
        if self._det is not None:
            self._stack(int(tid), data, meta, dims)
        if not data:
            return None
        ts = self.timestamps[pos]
        return Train(int(tid), None if np.isnan(ts) else float(ts), data, meta, dims)

    def _stack(self, tid: int, data: dict, meta: dict, dims: dict) -> None:
        ed = _extra_data()
        det, name = self._det
        mods = {s: data[s] for s in det.data.detector_sources if s in data}
        if not mods:
            return
        first = dict(next(iter(mods.values())))
        for key in _STACKED:
            if all(key in m for m in mods.values()):
                first[key] = ed.stack_detector_data(mods, key)
        for s in mods:
            data.pop(s)
            meta.pop(s, None)
            dims.pop(s, None)
        data[name] = first
        meta[name] = {"source": name, "timestamp.tid": tid}
        if isinstance(first.get("image.data"), np.ndarray) and first["image.data"].ndim == 4:
            dims[name] = {"image.data": ("frame", "module", "ss", "fs")}


def _matches(dc: Any, pattern: tuple[str, str]) -> bool:
    try:
        dc.select([pattern])
    except Exception:
        return False
    return True


def _drop_objects(values: dict[str, Any]) -> None:
    for k in [k for k, v in values.items() if isinstance(v, np.ndarray) and v.dtype == object]:
        values.pop(k)
        if k.endswith(".value"):
            values.pop(k[: -len(".value")] + ".timestamp", None)


def _timestamps(dc: Any, n: int) -> np.ndarray:
    """Unix times of the trains from the run's INDEX (NaN where the files have none)."""
    try:
        ts = np.asarray(dc.train_timestamps(), dtype="datetime64[ns]")
    except Exception:
        return np.full(n, np.nan)
    out = ts.astype(np.int64).astype(np.float64) / 1e9
    out[np.isnat(ts)] = np.nan
    return out


def _detector(dc: Any) -> tuple[Any, str] | None:
    from extra_data.components import XtdfDetectorBase

    for cls in XtdfDetectorBase.__subclasses__():
        try:
            det = cls(dc)
        except Exception:
            continue
        return det, f"{det.detector_name}/DET/APPEND"
    return None
