"""`ScanBinner`: exact, mergeable per-(scan bin, pattern slot) sums of detector frames.

The state keeps, per scan bin, the sum of the accepted frames of every slot, the number of frames
per slot (and, for float data, per pixel: NaN pixels are a dynamic mask, neither summed nor
counted) and the number of trains. Means, dark subtraction and pump-probe differences are computed
only in `ScanBinner.finalize`, so partial states from threads, workers or files merge exactly
(bit-exact for integer data). ``mode="dssc_process"`` reproduces dssc_process's mean of per-train
means for regression comparisons. See ``docs/binning.md``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numba
import numpy as np

from beamstream.processors import _binner_kernels as kernels
from beamstream.processors.base import Accumulator, Result, TrainView
from beamstream.processors.params import ParamError, one_of, positive_int, string_list
from beamstream.processors.state import BinnedState

__all__ = ["ScanBinner", "FrameMismatch", "dark_slots"]

#: pixel dimension names by the number of pixel axes
PIXEL_DIMS = {2: ("y", "x"), 3: ("module", "y", "x")}


class FrameMismatch(ValueError):
    """The frames of a train do not match the shape or kind of the accumulated sums."""


def dark_slots(slots: Sequence[str]) -> dict[int, int]:
    """``{slot: its dark slot}`` for every non-dark slot of a pattern.

    The dark slot of ``"pumped"`` is the dark slot whose name without ``"dark"`` (and ``_``/``-``
    separators) is ``"pumped"`` (e.g. ``"pumped_dark"``); failing that, the pattern's only dark
    slot (e.g. ``"dark"``). Slots with neither are left out.
    """
    dark = [i for i, s in enumerate(slots) if "dark" in s]
    stem = {s.replace("dark", "").strip("_-"): i for i, s in ((i, slots[i]) for i in dark)}
    out = {}
    for i, s in enumerate(slots):
        if "dark" in s:
            continue
        if s in stem:
            out[i] = stem[s]
        elif len(dark) == 1:
            out[i] = dark[0]
    return out


class ScanBinner(Accumulator[BinnedState]):
    """Sum accepted frames per (scan bin, pattern slot); means and pump-probe in finalize.

    Parameters
    ----------
    slots
        The frame-pattern slot names (the pipeline passes the FrameSelector's pattern).
    dark_subtract
        Also give ``mean_dark_subtracted``: each non-dark slot's mean minus the mean of its dark
        slot (see `dark_slots`), from the accumulated sums (exact and mergeable).
    mode
        ``"exact"`` (default): the mean over all accepted frames. ``"dssc_process"``: the mean
        over trains of each train's mean over its accepted frames (dssc_process's result; it
        differs from exact when trains have different numbers of accepted frames).
    scan_units
        Units of the ``scan`` coordinate of the results.
    threads
        Threads of the numba kernels (None: numba's default, all cores; 1: never start threads).
        Trains smaller than `parallel_min_bytes` always use one thread (a thread launch costs
        more than it saves there).
    name
        Instance name.

    Raises
    ------
    FrameMismatch
        From `update` when frames change shape or kind (integer/float) mid-run.
    """

    context_keys = ("name", "slots", "scan_units")

    #: frame bytes per train below which the single-threaded kernel is used
    parallel_min_bytes: int = 1 << 20

    plot_preference = ("pump_probe", "mean_dark_subtracted", "mean")

    def __init__(
        self,
        *,
        slots: Sequence[str] = ("image",),
        dark_subtract: bool = False,
        mode: str = "exact",
        scan_units: str = "",
        threads: int | None = None,
        name: str = "binned",
    ):
        self.slots = string_list("slots", slots)
        if not self.slots or len(set(self.slots)) != len(self.slots):
            raise ParamError("slots", "a non-empty list of distinct names", slots)
        if not isinstance(dark_subtract, bool):
            raise ParamError("dark_subtract", "true or false", dark_subtract)
        self.mode = one_of("mode", mode, ("exact", "dssc_process"))
        self.dark_subtract = dark_subtract
        self.dark_of = dark_slots(self.slots)
        if dark_subtract and not self.dark_of:
            raise ParamError("dark_subtract", "a pattern with dark slots", list(self.slots))
        if not isinstance(scan_units, str):
            raise ParamError("scan_units", "a string", scan_units)
        self.scan_units = scan_units
        self.threads = None if threads is None else positive_int("threads", threads)
        self.name = name
        self._slot_cache: dict[int, np.ndarray] = {}
        self._protos: dict[tuple[np.dtype, bool], np.ndarray] = {}

    def describe(self) -> str:
        dark = ", dark-subtracted" if self.dark_subtract else ""
        return f"ScanBinner: slots {list(self.slots)}, mode {self.mode}{dark}"

    def empty(self) -> BinnedState:
        return BinnedState(
            {"trains": ((), np.int64)}, meta={"slots": self.slots, "mode": self.mode}
        )

    # -- update -------------------------------------------------------------------------------
    def _frame_slots(self, view: TrainView, nf: int) -> np.ndarray:
        if view.frame_slot is None:
            slot = self._slot_cache.get(nf)
            if slot is None:
                slot = np.arange(nf, dtype=np.int64) % len(self.slots)
                self._slot_cache[nf] = slot
            return slot
        if tuple(view.slots) != self.slots:
            raise FrameMismatch(f"frames are in slots {view.slots}, the binner has {self.slots}")
        slot = np.asarray(view.frame_slot)
        if slot.shape != (nf,):
            raise FrameMismatch(f"frame_slot has shape {slot.shape} for {nf} frames")
        return slot.astype(np.int64, copy=False)

    def _fields(self, state: BinnedState, frames: np.ndarray) -> bool:
        """Add the data fields on first use (or check them); True for float data."""
        kind = frames.dtype.kind
        if kind not in "biuf":
            raise FrameMismatch(f"frames of dtype {frames.dtype} cannot be binned")
        is_float = kind == "f"
        pix = tuple(frames.shape[1:])
        if len(pix) not in PIXEL_DIMS:
            raise FrameMismatch(f"frames must be (frame, [module,] y, x), got {frames.shape}")
        have = state.specs.get("sum")
        if have is not None and have[0][1:] == pix and ("pixel_count" in state.specs) == is_float:
            return is_float  # the usual case: fields exist and match
        exact_int = self.mode == "exact" and not is_float
        wanted = {
            "sum": ((len(self.slots), *pix), np.dtype(np.int64 if exact_int else np.float64)),
            "count": ((len(self.slots),), np.dtype(np.int64)),
        }
        if is_float:
            wanted["pixel_count"] = ((len(self.slots), *pix), np.dtype(np.int64))
        if have is not None:
            had_float = "pixel_count" in state.specs
            if have[0] != wanted["sum"][0] or had_float != is_float:
                was = f"{'float' if had_float else 'integer'} frames of pixel shape {have[0][1:]}"
                now = f"{'float' if is_float else 'integer'} frames of pixel shape {pix}"
                raise FrameMismatch(f"{self.name}: the sums hold {was}; this train has {now}")
        for field, (shape, dtype) in wanted.items():
            state.ensure_field(field, shape, dtype)
        return is_float

    def _parallel(self, flat: np.ndarray) -> bool:
        """Whether to use the multi-threaded kernel (and set its thread count)."""
        if (
            self.threads == 1
            or flat.nbytes < self.parallel_min_bytes
            or flat.shape[1] <= kernels.BLOCK
        ):
            return False
        if self.threads is not None:
            numba.set_num_threads(min(self.threads, numba.config.NUMBA_NUM_THREADS))
        return True

    def update(self, state: BinnedState, view: TrainView) -> None:
        """Add the accepted frames of one train to the sums of its scan bin."""
        frames = view.frames
        if frames is None or frames.shape[0] == 0:
            return
        if view.scan_key is None:
            raise ValueError(f"{self.name}: train {view.train_id} has no scan key")
        nf = frames.shape[0]
        slot = self._frame_slots(view, nf)
        nslot = len(self.slots)
        top = int(slot.max())
        if top < 0:  # no accepted frame: the train adds nothing, not even its bin
            return
        if top >= nslot:
            raise FrameMismatch(f"slot index {top} for {nslot} slots")
        is_float = self._fields(state, frames)
        row = state.index(view.scan_key)
        flat = frames.reshape(nf, -1)
        if frames.dtype.kind == "b":
            flat = flat.view(np.uint8)
        all_sums = state["sum"]
        if not all_sums.flags.c_contiguous:  # pragma: no cover - BinnedState arrays are C order
            raise RuntimeError("the sums are not C-contiguous")
        sums = all_sums[row].reshape(nslot, -1)
        counts = state["count"][row]
        per_train_mean = self.mode == "dssc_process"
        parallel = self._parallel(flat)
        if is_float:
            pixel_counts = state["pixel_count"][row].reshape(nslot, -1)
            add = kernels.add_float if parallel else kernels.add_float_serial
            add(flat, slot, sums, counts, pixel_counts, per_train_mean)
        else:
            proto = self._protos.get((flat.dtype, nf <= 65536))
            if proto is None:
                proto = np.empty(0, kernels.scratch_dtype(flat.dtype, nf))
                self._protos[(flat.dtype, nf <= 65536)] = proto
            add = kernels.add_int if parallel else kernels.add_int_serial
            add(flat, slot, sums, counts, per_train_mean, proto)
        state["trains"][row] += 1

    # -- finalize -----------------------------------------------------------------------------
    def finalize(self, state: BinnedState) -> dict[str, Result]:
        """Results: ``mean``, ``counts``, ``trains`` and, where possible, ``pump_probe`` and
        ``mean_dark_subtracted`` (see ``docs/binning.md``). NaN where nothing was counted."""
        keys = state.keys.copy()
        slots = np.array(self.slots)
        coords = {"scan": keys, "slot": slots}
        cu = {"scan": self.scan_units}
        attrs = {"mode": self.mode, "slots": list(self.slots)}
        out = {
            "trains": Result("trains", state["trains"].copy(), ("scan",), {"scan": keys}, "", cu),
        }
        if "sum" not in state:
            return out
        counts = state["count"].copy()
        out["counts"] = Result("counts", counts, ("scan", "slot"), coords, "", cu, attrs)
        sums = state["sum"]
        pix = sums.shape[2:]
        pixdims = PIXEL_DIMS[len(pix)]
        if "pixel_count" in state:
            den = state["pixel_count"]
        else:
            den = counts.reshape(counts.shape + (1,) * len(pix))
        mean = np.full(sums.shape, np.nan)
        np.divide(sums, den, out=mean, where=np.broadcast_to(den > 0, sums.shape))
        dims = ("scan", "slot", *pixdims)
        out["mean"] = Result("mean", mean, dims, coords, "", cu, attrs)
        base = mean
        if self.dark_subtract:
            bright = sorted(self.dark_of)
            sub = np.stack([mean[:, i] - mean[:, self.dark_of[i]] for i in bright], axis=1)
            dark_attrs = {**attrs, "dark_slot": [self.slots[self.dark_of[i]] for i in bright]}
            c = {"scan": keys, "slot": slots[bright]}
            out["mean_dark_subtracted"] = Result(
                "mean_dark_subtracted", sub, dims, c, "", cu, dark_attrs
            )
            base = np.full_like(mean, np.nan)
            base[:, bright] = sub
        if "pumped" in self.slots and "unpumped" in self.slots:
            p, u = self.slots.index("pumped"), self.slots.index("unpumped")
            pp = base[:, p] - base[:, u]
            pp_attrs = {**attrs, "dark_subtracted": self.dark_subtract}
            out["pump_probe"] = Result(
                "pump_probe", pp, ("scan", *pixdims), {"scan": keys}, "", cu, pp_attrs
            )
        return out
