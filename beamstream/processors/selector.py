"""`FrameSelector`: assign frames to pattern slots and reject frames (DSSC style).

Frame ``k`` of a train belongs to slot ``k % len(pattern)``. A frame is rejected (its slot set to
-1) when it is at or beyond ``max_frames``, when a per-frame mask file says False (or does not
cover it), or when its monitor value (e.g. the XGM pulse energy) fails a rule. See
``docs/binning.md`` for the mask file format and the pulse-to-frame mapping.
"""

from __future__ import annotations

import threading
import zipfile
from collections import Counter
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from beamstream.processors.base import Rejected, TrainView, Transform
from beamstream.processors.params import ParamError, finite_float, positive_int, string_list
from beamstream.streamer.train import MissingData

__all__ = ["FrameSelector", "FrameMask", "MonitorRule", "calc_xgm_frame_indices"]

#: per-frame rejection reasons, in the order they are checked (a frame counts under the first)
BEYOND_MAX = "beyond max_frames"
MASKED = "masked"
MONITOR_MISSING = "monitor missing"
MONITOR_RANGE = "monitor out of range"
MONITOR_NOT_NUMBER = "monitor not a number"


def calc_xgm_frame_indices(nbunches: int, pattern: Sequence[str]) -> np.ndarray:
    """Frame indices of the monitor pulses, as dssc_process's ``calc_xgm_frame_indices``.

    Monitor pulse ``i`` belongs to the i-th non-dark frame: with ``frame_max = nbunches *
    len(pattern) // n_non_dark``, the indices are ``arange(i, frame_max, len(pattern))`` for
    every non-dark slot ``i``, concatenated and sorted. 4 bunches with
    ``["pumped", "pumped_dark", "unpumped", "unpumped_dark"]`` give ``[0, 2, 4, 6]``.
    """
    n = len(pattern)
    bright = [i for i, name in enumerate(pattern) if "dark" not in name]
    if not bright:
        return np.zeros(0, dtype=np.int64)
    frame_max = nbunches * n // len(bright)
    idx = np.concatenate([np.arange(i, frame_max, n, dtype=np.int64) for i in bright])
    return np.sort(idx)


class FrameMask:
    """A per-frame boolean mask ``(trains, frames)`` keyed by train id, read from a file.

    Formats: ``.npz`` with arrays ``train_ids`` (n,) integer and ``mask`` (n, frames) bool or
    0/1 integers; ``.h5``/``.hdf5`` with datasets ``trainId`` and ``mask`` of the same shapes.
    A train id may appear once. Frames beyond the mask's width are masked.

    Raises
    ------
    ParamError
        (key ``mask``) naming the file when it is unreadable, lacks an array or has a bad shape.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        ids, mask = self._read()
        if ids.ndim != 1 or ids.dtype.kind not in "iu":
            self._fail(f"train ids must be 1-D integers, got {ids.dtype} {ids.shape}")
        if mask.ndim != 2 or mask.shape[0] != ids.shape[0]:
            self._fail(f"mask must be (trains={ids.shape[0]}, frames), got shape {mask.shape}")
        if mask.dtype.kind in "iu" and mask.size and not np.isin(mask, (0, 1)).all():
            self._fail("an integer mask must hold only 0 and 1")
        elif mask.dtype.kind not in "biu":
            self._fail(f"mask must be bool (or 0/1 integers), got {mask.dtype}")
        uniq, counts = np.unique(ids, return_counts=True)
        if (counts > 1).any():
            self._fail(f"train id {int(uniq[counts > 1][0])} appears more than once")
        self.mask = np.ascontiguousarray(mask, dtype=bool)
        self.rows = {int(t): i for i, t in enumerate(ids.tolist())}

    def _fail(self, why: str) -> None:
        raise ParamError(
            "mask",
            "a .npz (train_ids, mask) or .h5 (trainId, mask) frame-mask file",
            f"{self.path}: {why}",
        )

    def _read(self) -> tuple[np.ndarray, np.ndarray]:
        suffix = self.path.suffix.lower()
        if suffix not in (".npz", ".h5", ".hdf5"):
            self._fail("unknown file type (use .npz or .h5)")
        if not self.path.is_file():
            self._fail("no such file")
        names = ("train_ids", "mask") if suffix == ".npz" else ("trainId", "mask")
        missing: list[str] = []
        arrays: list[np.ndarray] = []
        try:
            if suffix == ".npz":
                f = np.load(self.path, allow_pickle=False)
                if not isinstance(f, np.lib.npyio.NpzFile):
                    self._fail("not an .npz archive")
                with f:
                    missing = [n for n in names if n not in f.files]
                    arrays = [] if missing else [np.asarray(f[n]) for n in names]
            else:
                import h5py

                with h5py.File(self.path, "r") as f:
                    missing = [n for n in names if not isinstance(f.get(n), h5py.Dataset)]
                    arrays = [] if missing else [np.asarray(f[n][()]) for n in names]
        except (OSError, ValueError, EOFError, zipfile.BadZipFile) as exc:
            if isinstance(exc, ParamError):
                raise
            self._fail(f"cannot read it ({exc})")
        if missing:
            self._fail("no array " + ", ".join(repr(n) for n in missing))
        return arrays[0], arrays[1]

    def row(self, train_id: int) -> np.ndarray | None:
        """The mask of one train, or None when the train is not in the file."""
        i = self.rows.get(int(train_id))
        return None if i is None else self.mask[i]


class MonitorRule:
    """Keep frames whose monitor value (one per non-dark frame) lies in ``[min, max]``."""

    def __init__(self, index: int, table: Any):
        where = f"rules[{index}]"
        if not isinstance(table, Mapping):
            raise ParamError(where, "a table {source, key, min, max}", table)
        unknown = set(table) - {"source", "key", "min", "max"}
        if unknown:
            raise ParamError(f"{where}.{sorted(unknown)[0]}", "source, key, min or max", table)
        for k in ("source", "key"):
            if not isinstance(table.get(k), str) or not table.get(k):
                raise ParamError(f"{where}.{k}", "a non-empty string", table.get(k))
        self.source: str = table["source"]
        self.key: str = table["key"]
        lo, hi = table.get("min"), table.get("max")
        if lo is None and hi is None:
            raise ParamError(where, "at least one of min and max", table)
        self.min = -np.inf if lo is None else finite_float(f"{where}.min", lo)
        self.max = np.inf if hi is None else finite_float(f"{where}.max", hi)
        if self.min > self.max:
            raise ParamError(f"{where}.max", f"max >= min ({self.min})", hi)
        self.label = f"{self.source}/{self.key}"


class FrameSelector(Transform):
    """Assign each frame its pattern slot and reject frames by index, mask and monitor rules.

    Parameters
    ----------
    pattern
        Slot names repeated along the frames of a train; names containing ``"dark"`` are dark
        (no X-rays: they take no monitor value). Default ``["image"]``.
    max_frames
        Frames ``k >= max_frames`` are rejected (exclusive; dssc_process's label slice was
        inclusive and kept ``max_frames + 1`` frames). None: no limit.
    mask
        Path of a per-frame mask file (see `FrameMask`); trains absent from it are rejected
        (``train not in mask``), frames beyond its width are masked. Read and checked here.
    rules
        Monitor rules, tables ``{source, key, min, max}`` (bounds inclusive, either optional):
        the per-pulse monitor array is mapped onto the non-dark frames as
        `calc_xgm_frame_indices`; frames whose value is outside the bounds, NaN, or missing are
        rejected; a train without the monitor is rejected (``monitor missing``), one whose
        monitor is not numeric too (``monitor not a number``).
    name
        Instance name.

    Sets ``view.frame_slot`` (slot or -1), ``view.slots`` and ``view.products["monitor"]`` (the
    first rule's value per frame, NaN for dark frames; every rule in ``products["monitors"]``).
    Rejects trains without frames (``empty train``) or with none accepted
    (``no accepted frames``). Rejected frames are counted by reason in `frame_counts`.
    """

    context_keys = ("name",)

    def __init__(
        self,
        pattern: Sequence[str] = ("image",),
        max_frames: int | None = None,
        mask: str | None = None,
        rules: Sequence[Mapping[str, Any]] | None = None,
        name: str = "frames",
    ):
        self.pattern = string_list("pattern", pattern)
        if not self.pattern or len(set(self.pattern)) != len(self.pattern) or "" in self.pattern:
            raise ParamError("pattern", "a non-empty list of distinct, non-empty names", pattern)
        self.max_frames = None if max_frames is None else positive_int("max_frames", max_frames)
        self.mask = None if mask is None else FrameMask(_path("mask", mask))
        if rules is not None and not isinstance(rules, list | tuple):
            raise ParamError("rules", "a list of tables {source, key, min, max}", rules)
        self.rules = [MonitorRule(i, r) for i, r in enumerate(rules or ())]
        self.dark = np.array(["dark" in s for s in self.pattern], dtype=bool)
        if self.rules and self.dark.all():
            raise ParamError("rules", "a pattern with a non-dark slot", list(self.pattern))
        self.name = name
        self.frame_counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._xgm_cache: dict[int, np.ndarray] = {}

    def frame_pattern(self) -> tuple[str, ...]:
        """The slot names (the pattern), handed to the accumulators."""
        return self.pattern

    def provides(self) -> set[str]:
        return {"monitor", "monitors"} if self.rules else set()

    def describe(self) -> str:
        parts = [f"pattern {list(self.pattern)}"]
        if self.max_frames is not None:
            parts.append(f"max_frames {self.max_frames}")
        if self.mask is not None:
            parts.append(f"mask {self.mask.path}")
        parts += [f"{r.label} in [{r.min}, {r.max}]" for r in self.rules]
        return "FrameSelector: " + ", ".join(parts)

    def frame_indices(self, nbunches: int) -> np.ndarray:
        """Frame of each monitor pulse (cached `calc_xgm_frame_indices`)."""
        idx = self._xgm_cache.get(nbunches)
        if idx is None:
            idx = calc_xgm_frame_indices(nbunches, self.pattern)
            self._xgm_cache[nbunches] = idx
        return idx

    def monitor(self, view: TrainView, rule: MonitorRule, nf: int) -> np.ndarray:
        """The rule's monitor value per frame (NaN for dark frames and frames without one)."""
        try:
            raw = view.train.get(rule.source, rule.key)
        except MissingData:
            raise Rejected(MONITOR_MISSING) from None
        try:
            values = np.asarray(raw, dtype=np.float64).ravel()
        except (TypeError, ValueError):
            raise Rejected(MONITOR_NOT_NUMBER) from None
        # calc_xgm_frame_indices can give more frames than pulses for some patterns: cut
        idx = self.frame_indices(values.size)[: values.size]
        idx = idx[idx < nf]  # sorted: a prefix, aligned with the values
        out = np.full(nf, np.nan)
        out[idx] = values[: idx.size]
        return out

    def __call__(self, view: TrainView) -> TrainView:
        nf = view.n_frames
        if nf == 0:
            raise Rejected("empty train")
        n = len(self.pattern)
        slot = np.arange(nf, dtype=np.int64) % n
        rejected: Counter[str] = Counter()

        def reject(bad: np.ndarray, reason: str) -> None:
            bad &= slot >= 0
            nbad = int(bad.sum())
            if nbad:
                rejected[reason] += nbad
                slot[bad] = -1

        if self.max_frames is not None and nf > self.max_frames:
            reject(np.arange(nf) >= self.max_frames, BEYOND_MAX)
        if self.mask is not None:
            row = self.mask.row(view.train_id)
            if row is None:
                raise Rejected("train not in mask")
            keep = np.zeros(nf, dtype=bool)
            m = min(nf, row.size)
            keep[:m] = row[:m]
            reject(~keep, MASKED)
        if self.rules:
            dark = self.dark[np.arange(nf) % n]
            monitors = {r.label: self.monitor(view, r, nf) for r in self.rules}
            for rule in self.rules:
                values = monitors[rule.label]
                reject(~dark & np.isnan(values), MONITOR_MISSING)
                inside = (values >= rule.min) & (values <= rule.max)
                reject(~dark & ~inside, MONITOR_RANGE)
            view.products["monitor"] = monitors[self.rules[0].label]
            view.products["monitors"] = monitors
        n_ok = int((slot >= 0).sum())
        view.frame_slot = slot
        view.slots = self.pattern
        if rejected:
            with self._lock:
                self.frame_counts.update(rejected)
        if n_ok == 0:
            raise Rejected("no accepted frames")
        return view


def _path(key: str, value: Any) -> Path:
    if not isinstance(value, str | Path) or not str(value):
        raise ParamError(key, "a file path", value)
    return Path(value)
