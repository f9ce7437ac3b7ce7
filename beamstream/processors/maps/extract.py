"""`AttributeExtractor`: per-frame scalar attributes from what earlier processors produced.

It is an **Accumulator**, placed after the q-phi integrator in ``[[processors]]``: the pipeline
runs all transforms first and then the accumulators **in config order** within each train, so
the integrator's per-frame products (``view.products["<qphi>.iq"]``, ``"<qphi>.iqphi"``) are
there when the extractor runs. It writes

* ``view.products["attrs"]``: ``{attribute: (n_frames,) float64}`` (NaN for rejected frames and
  failed evaluations), read by `ScanMap`;
* ``view.records["<name>.<attribute>"]``: the mean over the train's accepted frames.

State (`BinnedState`): per train (``keep_trains``, key = train ID) or one row (key 0), the sums
and counts of finite values per attribute and the counts of problems (function raised, returned a
non-scalar, input missing). Results: ``attrs/<attribute>`` (per-train means, or the overall mean)
and ``attrs/problems``.

The built-ins that can be evaluated for all frames of a train at once (``roi``, ``total``,
``orientation``, ``anisotropy``, ``hermans``) are planned and evaluated by
`beamstream.processors.maps._batched`; everything else is called per frame here.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from ..base import Accumulator, Result, TrainView
from ..params import ParamError, float_range, positive_int
from ..state import BinnedState
from ._batched import BatchedBuiltins
from ._state import GrowingState
from .attributes import AttributeSpec, make_spec

__all__ = ["AttributeExtractor", "PROBLEMS"]

log = logging.getLogger(__name__)

#: per-attribute problem counters (state fields, and the ``kind`` coordinate of attrs/problems)
PROBLEMS = ("errors", "non_scalar", "missing_input")

_EPS32 = 1.0 + float(np.finfo(np.float32).eps)


def _centres(key: str, value: Any) -> np.ndarray:
    """Bin centres of ``[lo, hi, npt]`` in the q-phi integrator's (pyFAI's) convention."""
    if not isinstance(value, list | tuple) or len(value) != 3:
        raise ParamError(key, "[low, high, number of bins]", value)
    lo, hi = float_range(key, value[:2])
    n = positive_int(key, value[2])
    hi = hi * _EPS32 if hi > 0 else hi / _EPS32
    return lo + (np.arange(n) + 0.5) * (hi - lo) / n


class AttributeExtractor(Accumulator[BinnedState]):
    """Per-frame attributes computed by built-in or user functions (lixtools ``extract_attr``).

    Parameters
    ----------
    name
        Instance name (prefix of the records; the pipeline passes it).
    attributes
        ``{attribute: {function, input?, units?, **kwargs}}``: ``function`` is a built-in
        (``roi``, ``total``, ``monitor``, ``transmission``, ``orientation``, ``anisotropy``,
        ``hermans``) or ``package.module:function`` called as ``function(data, **kwargs)``;
        ``input`` is ``"iq"``, ``"iqphi"``, ``"frame"`` or ``"train"`` (built-ins have a
        default). See `beamstream.processors.maps.attributes`.
    qphi
        Name of the q-phi integrator whose per-frame products are read.
    axes
        Bin centres when the integrator does not publish them (``view.products["<qphi>.axes"]``
        ``= {"q_1d", "q", "phi"}``): ``{q_1d = [lo, hi, n], q = [lo, hi, n], phi = [lo, hi, n]}``
        with the integrator's ``q_range``, ``npt_q_1d``, ``npt_q``, ``phi_range``, ``npt_phi``.
    keep_trains
        Keep per-train means (state row per train ID, result over trains); otherwise one row.
    sample
        Sample name stored with the results (lixtools' first level).
    """

    context_keys = ("name",)

    def __init__(
        self,
        *,
        name: str = "attrs",
        attributes: Mapping[str, Mapping[str, Any]] | None = None,
        qphi: str = "qphi",
        axes: Mapping[str, Any] | None = None,
        keep_trains: bool = True,
        sample: str = "overall",
    ):
        if not isinstance(name, str) or not name:
            raise ParamError("name", "a non-empty string", name)
        self.name = name
        if not isinstance(attributes, Mapping) or not attributes:
            raise ParamError("attributes", "a table of {name = {function = ..., ...}}", attributes)
        self.specs: list[AttributeSpec] = [make_spec(str(k), v) for k, v in attributes.items()]
        if not isinstance(qphi, str) or not qphi:
            raise ParamError("qphi", "the name of the q-phi integrator", qphi)
        self.qphi = qphi
        self.axes: dict[str, np.ndarray] = {}
        if axes is not None:
            if not isinstance(axes, Mapping) or set(axes) - {"q_1d", "q", "phi"}:
                raise ParamError("axes", "a table with q_1d, q, phi = [lo, hi, n]", axes)
            self.axes = {k: _centres(f"axes.{k}", v) for k, v in axes.items()}
        if not isinstance(keep_trains, bool):
            raise ParamError("keep_trains", "true or false", keep_trains)
        self.keep_trains = keep_trains
        if not isinstance(sample, str) or not sample:
            raise ParamError("sample", "a non-empty string", sample)
        self.sample = sample
        self._warned: set[tuple[str, str]] = set()
        self._batched = BatchedBuiltins(self.specs, qphi, self._axis)
        self._plan = self._batched.plan
        self._record_keys = [f"{name}.{s.name}" for s in self.specs]

    @property
    def names(self) -> list[str]:
        """Attribute names, in config order."""
        return [s.name for s in self.specs]

    def requires(self) -> set[str]:
        return {f"{self.qphi}.{s.input}" for s in self.specs if s.input in ("iq", "iqphi")}

    def describe(self) -> str:
        parts = [f"{s.name}={s.function}({s.input})" for s in self.specs]
        return f"AttributeExtractor {self.name!r} from {self.qphi!r}: " + ", ".join(parts)

    # -- state --------------------------------------------------------------------------------
    def empty(self) -> BinnedState:
        n = len(self.specs)
        fields: dict[str, tuple[tuple[int, ...], type]] = {
            "sum": ((n,), np.float64),
            "count": ((n,), np.int64),
            "frames": ((), np.int64),
        }
        fields.update({p: ((n,), np.int64) for p in PROBLEMS})
        meta = {
            "processor": "AttributeExtractor",
            "attributes": json.dumps({s.name: s.describe() for s in self.specs}, sort_keys=True),
            "keep_trains": self.keep_trains,
        }
        return GrowingState(fields, (), meta)

    # -- inputs -------------------------------------------------------------------------------
    def _axis(self, view: TrainView, which: str, length: int) -> np.ndarray:
        published = view.products.get(f"{self.qphi}.axes")
        c = None
        if isinstance(published, Mapping) and which in published:
            c = np.asarray(published[which], dtype=np.float64)
        elif which in self.axes:
            c = self.axes[which]
        if c is None:
            raise ValueError(
                f"{self.name}: no {which} bin centres: the integrator {self.qphi!r} publishes "
                f"none; give axes.{which} = [lo, hi, n] (its range and number of bins)"
            )
        if len(c) != length:
            raise ValueError(
                f"{self.name}: axes.{which} has {len(c)} bins, the data {length}: use the "
                f"integrator's range and number of bins"
            )
        return c

    def _input(self, spec: AttributeSpec, view: TrainView) -> tuple[Any, dict[str, Any]] | None:
        """The per-frame-indexable input and the coordinate keywords, or None if absent."""
        extra: dict[str, Any] = {}
        if spec.input == "train":
            return view, extra
        if spec.input == "frame":
            return view.frames, extra
        arr = view.products.get(f"{self.qphi}.{spec.input}")
        if arr is None:
            return None
        if spec.wants_q:
            extra["q"] = self._axis(view, "q_1d" if spec.input == "iq" else "q", arr.shape[-1])
        if spec.wants_phi:
            extra["phi"] = self._axis(view, "phi", arr.shape[1])
        return arr, extra

    def _warn(self, attr: str, kind: str, msg: str) -> None:
        if (attr, kind) not in self._warned:
            self._warned.add((attr, kind))
            log.warning(
                "%s: attribute %r: %s (counted; further ones not logged)", self.name, attr, msg
            )

    # -- the hot path -------------------------------------------------------------------------
    def evaluate(self, view: TrainView) -> tuple[np.ndarray, np.ndarray, int]:
        """``(values (n_attr, n_frames), problems (n_attr, len(PROBLEMS)), n_evaluated)``."""
        if view.frames is not None:
            n, frames = view.n_frames, view.accepted()
        else:  # no detector: a train of slow data is one "frame"
            iq = view.products.get(f"{self.qphi}.iq")
            n = 1 if iq is None else len(iq)
            frames = (
                np.arange(n) if view.frame_slot is None else np.flatnonzero(view.frame_slot >= 0)
            )
        values = np.full((len(self.specs), n), np.nan)
        problems = np.zeros((len(self.specs), len(PROBLEMS)), dtype=np.int64)
        azim: dict[Any, np.ndarray] = {}
        for j, spec in enumerate(self.specs):
            how, arg = self._plan[j]
            if how != "call" and len(frames):
                if self._batched.evaluate(j, how, arg, view, frames, values, azim):
                    continue
            got = self._input(spec, view)
            if got is None or (spec.input == "frame" and got[0] is None):
                problems[j, 2] += len(frames)
                self._warn(spec.name, "missing", f"input {spec.input!r} missing")
                continue
            data, extra = got
            kw = {**spec.kwargs, **extra}
            for i in frames:
                i = int(i)
                try:
                    if spec.input == "train":
                        v = (
                            spec.func(data, frame=i, **kw)
                            if spec.wants_frame
                            else spec.func(data, **kw)
                        )
                    else:
                        v = spec.func(data[i], **kw)
                except Exception as e:  # a user function's bug must not stop the run
                    problems[j, 0] += 1
                    self._warn(spec.name, "error", f"{type(e).__name__}: {e}")
                    continue
                if np.ndim(v) != 0 or not isinstance(np.asarray(v).item(), int | float | bool):
                    problems[j, 1] += 1
                    shape = np.shape(v) if np.ndim(v) else type(v).__name__
                    self._warn(spec.name, "non_scalar", f"returned a non-scalar ({shape})")
                    continue
                values[j, i] = float(v)
        return values, problems, len(frames)

    def update(self, state: BinnedState, view: TrainView) -> None:
        """Evaluate every attribute on every accepted frame; add to ``state`` in place."""
        values, problems, nframes = self.evaluate(view)
        row = state.index(float(view.train_id) if self.keep_trains else 0.0)
        arrays = state.arrays
        finite = np.isfinite(values)
        sums = np.where(finite, values, 0.0).sum(axis=1)
        cnt = finite.sum(axis=1)
        arrays["sum"][row] += sums
        arrays["count"][row] += cnt
        arrays["frames"][row] += nframes
        if problems.any():
            for k, p in enumerate(PROBLEMS):
                arrays[p][row] += problems[:, k]
        out = view.products.setdefault("attrs", {})
        units = view.products.setdefault("attr_units", {})
        records = view.records
        for j, (spec, s, c) in enumerate(zip(self.specs, sums.tolist(), cnt.tolist(), strict=True)):
            out[spec.name] = values[j]
            units[spec.name] = spec.units
            records[self._record_keys[j]] = s / c if c else math.nan

    # -- results ------------------------------------------------------------------------------
    def finalize(self, state: BinnedState) -> dict[str, Result]:
        """``attrs/<attribute>`` (mean per train, or overall) and ``attrs/problems``."""
        out: dict[str, Result] = {}
        base = {"processor": self.name, "sample": self.sample, "data_key": "attrs"}
        s, c = state["sum"], state["count"]
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(c > 0, s / np.maximum(c, 1), np.nan)
        for j, spec in enumerate(self.specs):
            attrs = {**base, "sub_key": spec.name, **spec.describe()}
            rname = f"attrs/{spec.name}"
            if self.keep_trains:
                tid = state.keys.astype(np.int64)
                out[rname] = Result(
                    rname, mean[:, j], ("train",), {"train": tid}, spec.units, {}, attrs
                )
            else:
                total_s, total_c = s[:, j].sum(), c[:, j].sum()
                value = np.float64(total_s / total_c) if total_c else np.float64(np.nan)
                out[rname] = Result(rname, np.asarray(value), (), {}, spec.units, {}, attrs)
        probs = np.stack([state[p].sum(axis=0) for p in PROBLEMS], axis=1)
        out["attrs/problems"] = Result(
            "attrs/problems",
            probs,
            ("attribute", "kind"),
            {"attribute": np.array(self.names), "kind": np.array(PROBLEMS)},
            "frames",
            {},
            {**base, "sub_key": "problems"},
        )
        return out
