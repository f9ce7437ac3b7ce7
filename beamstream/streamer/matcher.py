"""`TrainMatcher`: build one `Train` per train id from the parts delivered by several inputs.

Pure bookkeeping (no sockets, no threads, no clock of its own): feed it ``add(input, train,
now)`` and ``expire(now)``, and it returns the trains that are ready. A train is ready when every
input delivered it, or when its deadline passed (``deadline`` seconds after its first part
arrived), or when it is evicted to keep at most ``max_pending`` trains waiting. Incomplete trains
are dropped (``incomplete="drop"``) or delivered with the missing inputs named in
`Train.missing` (``"accept"``).

Memory stays bounded whatever the inputs do: at most ``max_pending`` trains wait (each holding at
most one part per input), the ids of the last ``recent`` finished trains are remembered to tell
late from duplicate parts, and a part whose train id is far ahead of every other input
(``max_ahead``) is counted and not kept.

Counters per input: ``received``, ``matched`` (parts delivered in a train), ``late`` (its train was
already delivered or dropped without it), ``missing`` (trains finished without it),
``duplicate`` (a second part for the same train), ``ahead`` (train id beyond the window of the
others), and ``offset`` (the constant train-id offset detected against the reference input, the
first one; applied when ``correct_offsets`` is set, or configured per input with ``offsets``).
"""

from __future__ import annotations

import collections
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from beamstream.streamer.train import Train

__all__ = ["TrainMatcher", "INCOMPLETE_POLICIES", "COUNTERS"]

log = logging.getLogger(__name__)

INCOMPLETE_POLICIES = ("drop", "accept")
COUNTERS = ("received", "matched", "late", "missing", "duplicate", "ahead")


@dataclass
class _Pending:
    first_at: float
    parts: dict[str, Train] = field(default_factory=dict)


@dataclass
class _OffsetWatch:
    """Differences between an input's train ids and the reference's, while it matches nothing."""

    deltas: collections.deque[int]
    unmatched: int = 0
    #: the input's recent ``(train id, arrival time)`` (after the configured offset)
    tids: collections.deque[tuple[int, float]] = field(
        default_factory=lambda: collections.deque(maxlen=64)
    )


class TrainMatcher:
    """Match the parts of a train delivered by several inputs (see the module docstring).

    Parameters
    ----------
    inputs
        Names of the inputs (the first is the reference for offset detection).
    deadline
        Seconds a train waits for its missing parts after its first part arrived.
    max_pending
        Trains waiting at most; beyond, the least complete (then oldest) one is finished.
    incomplete
        ``"drop"`` or ``"accept"`` (missing inputs named in `Train.missing`).
    offsets
        ``{input: k}``: the input's train ids are ``k`` ahead of the reference (subtracted).
    correct_offsets
        Apply a detected constant offset (else it is only counted and logged).
    offset_after
        Consecutive unmatched parts with a constant train-id difference that detect an offset.
    max_ahead
        A part more than this many train ids ahead of every other input's latest is not kept
        (default: ``max_pending``).
    recent
        Finished train ids remembered (to count late and duplicate parts).
    """

    def __init__(
        self,
        inputs: Sequence[str],
        *,
        deadline: float = 0.2,
        max_pending: int = 32,
        incomplete: str = "drop",
        offsets: Mapping[str, int] | None = None,
        correct_offsets: bool = False,
        offset_after: int = 20,
        max_ahead: int | None = None,
        recent: int = 1024,
    ):
        names = [str(n) for n in inputs]
        if not names or len(set(names)) != len(names):
            raise ValueError(f"inputs: expected distinct names, got {names!r}")
        if incomplete not in INCOMPLETE_POLICIES:
            raise ValueError(
                f"incomplete: expected one of {INCOMPLETE_POLICIES}, got {incomplete!r}"
            )
        if deadline <= 0 or max_pending < 1 or offset_after < 2 or recent < 1:
            raise ValueError("deadline > 0, max_pending >= 1, offset_after >= 2, recent >= 1")
        unknown = set(offsets or {}) - set(names)
        if unknown:
            raise ValueError(f"offsets: unknown inputs {sorted(unknown)} (inputs: {names})")
        self.inputs = tuple(names)
        self.deadline = float(deadline)
        self.max_pending = int(max_pending)
        self.incomplete = incomplete
        self.correct_offsets = bool(correct_offsets)
        self.max_ahead = int(max_ahead if max_ahead is not None else max_pending)
        self.offsets = {n: int((offsets or {}).get(n, 0)) for n in names}
        self.detected = {n: 0 for n in names}
        self.counts = {n: collections.Counter({c: 0 for c in COUNTERS}) for n in names}
        self.totals: collections.Counter[str] = collections.Counter()
        self._pending: dict[int, _Pending] = {}
        self._finished: collections.OrderedDict[int, frozenset[str]] = collections.OrderedDict()
        self._recent = int(recent)
        self._latest: dict[str, int | None] = {n: None for n in names}
        self._sources: dict[str, set[str]] = {n: set() for n in names}
        self._watch = {
            n: _OffsetWatch(collections.deque(maxlen=int(offset_after))) for n in names[1:]
        }
        #: arrival times of the reference input's recent train ids (to pin an offset down)
        self._ref_times: collections.OrderedDict[int, float] = collections.OrderedDict()
        self._ref_keep = int(recent)

    # -- feeding ----------------------------------------------------------------------------
    def add(self, name: str, train: Train, now: float) -> list[Train]:
        """Take one part; returns the trains it completed or evicted (possibly none).

        ``now`` starts the deadline of a new train: the time the matcher first saw it (parts
        queued behind a busy consumer do not expire before the others were taken). Call
        `expire` after taking what is queued.
        """
        c = self.counts[name]
        c["received"] += 1
        self._observe_offset(name, train.train_id, now)
        tid = train.train_id - self.offsets[name]
        train.train_id = tid
        self._latest[name] = tid
        if len(self._sources[name]) < 256:
            self._sources[name].update(train.data)
        out: list[Train] = []
        done = self._finished.get(tid)
        if done is not None:
            c["duplicate" if name in done else "late"] += 1
            return out
        if self._is_late(tid):
            c["late"] += 1
            return out
        if self._is_ahead(name, tid):
            c["ahead"] += 1
            return out
        entry = self._pending.get(tid)
        if entry is None:
            while len(self._pending) >= self.max_pending:
                out.extend(self._finish(self._evictee(), "evicted"))
            entry = self._pending[tid] = _Pending(now)
        if name in entry.parts:
            c["duplicate"] += 1
            return out
        entry.parts[name] = train
        if len(entry.parts) == len(self.inputs):
            out.extend(self._finish(tid, "complete"))
        return out

    def expire(self, now: float) -> list[Train]:
        """Finish the trains whose deadline passed (oldest first)."""
        due = [t for t, e in self._pending.items() if now - e.first_at >= self.deadline]
        out: list[Train] = []
        for tid in sorted(due):
            out.extend(self._finish(tid, "deadline"))
        return out

    def flush(self) -> list[Train]:
        """Finish every waiting train (at the end of a run)."""
        out: list[Train] = []
        for tid in sorted(self._pending):
            out.extend(self._finish(tid, "flushed"))
        return out

    @property
    def pending(self) -> int:
        """Trains waiting for parts."""
        return len(self._pending)

    def stats(self) -> dict[str, Any]:
        """Counters per input and totals (``complete``, ``incomplete_accepted`` ...)."""
        per_input = {
            n: {**self.counts[n], "offset": self.offsets[n] or self.detected[n]}
            for n in self.inputs
        }
        return {"inputs": per_input, "pending": self.pending, **self.totals}

    # -- internals --------------------------------------------------------------------------
    def _is_late(self, tid: int) -> bool:
        if not self._finished:
            return False
        newest = next(reversed(self._finished))
        oldest = next(iter(self._finished))
        return tid < oldest and (len(self._finished) >= self._recent or tid < newest - self._recent)

    def _is_ahead(self, name: str, tid: int) -> bool:
        others = [t for n, t in self._latest.items() if n != name and t is not None]
        return bool(others) and tid > max(others) + self.max_ahead

    def _evictee(self) -> int:
        """The least complete waiting train, the oldest among equals."""
        return min(self._pending, key=lambda t: (len(self._pending[t].parts), t))

    def _finish(self, tid: int, why: str) -> list[Train]:
        entry = self._pending.pop(tid)
        present = frozenset(entry.parts)
        self._finished[tid] = present
        while len(self._finished) > self._recent:
            self._finished.popitem(last=False)
        missing = [n for n in self.inputs if n not in present]
        for n in missing:
            self.counts[n]["missing"] += 1
        if not missing:
            self.totals["complete"] += 1
        elif self.incomplete == "drop":
            self.totals[f"incomplete_dropped_{why}"] += 1
            return []
        else:
            self.totals["incomplete_accepted"] += 1
        for n in present:
            self.counts[n]["matched"] += 1
            if n in self._watch:
                self._watch[n].unmatched = 0 if not missing else self._watch[n].unmatched
        return [self._merge(tid, entry.parts, missing)]

    def _merge(self, tid: int, parts: dict[str, Train], missing: list[str]) -> Train:
        ordered = [parts[n] for n in self.inputs if n in parts]
        first = ordered[0]
        data, meta, dims = dict(first.data), dict(first.meta), dict(first.dims)
        buffers = list(first.buffers)
        for p in ordered[1:]:
            for src, values in p.data.items():
                data.setdefault(src, values)
            for src, m in p.meta.items():
                meta.setdefault(src, m)
            for src, d in p.dims.items():
                dims.setdefault(src, d)
            buffers.extend(p.buffers)
        timestamp = next((p.timestamp for p in ordered if p.timestamp is not None), None)
        lost = sorted({s for n in missing for s in self._sources[n]} - set(data))
        train = Train(tid, timestamp, data, meta, dims, buffers, sum(p.nbytes for p in ordered))
        train.received_at = max(p.received_at for p in ordered)
        train.missing = tuple(missing) + tuple(lost)
        return train

    def _observe_offset(self, name: str, raw_tid: int, now: float) -> None:
        """Detect a constant difference to the reference input while nothing matches.

        The rough difference (to the reference's latest train id, which jitters by a train or
        two) must be stable; the exact offset is the candidate near it that pairs this input's
        recent trains with the reference's trains that arrived at the same time (train ids
        alone cannot tell: consecutive ids overlap under any shift).
        """
        ref_name = self.inputs[0]
        if name == ref_name:
            self._ref_times[raw_tid - self.offsets[name]] = now
            while len(self._ref_times) > self._ref_keep:
                self._ref_times.popitem(last=False)
            return
        watch = self._watch[name]
        ref = self._latest[ref_name]
        if ref is None:
            return
        tid = raw_tid - self.offsets[name]
        watch.deltas.append(tid - ref)
        watch.tids.append((tid, now))
        watch.unmatched += 1
        if len(watch.deltas) < watch.deltas.maxlen or watch.unmatched < watch.deltas.maxlen:
            return
        deltas = sorted(watch.deltas)
        median = deltas[len(deltas) // 2]
        if deltas[-1] - deltas[0] > 4:
            return
        best = self._closest_in_time(watch, range(median - 3, median + 4))
        if best is None or best == 0 or best == self.detected[name]:
            return
        self.detected[name] = best
        if self.correct_offsets:
            self.offsets[name] += best
            self.detected[name] = 0
            watch.deltas.clear()
            watch.tids.clear()
            log.warning("input %s: train ids %+d from the reference; corrected", name, best)
        else:
            log.warning(
                "input %s: train ids %+d from the reference (set offsets or correct_offsets)",
                name,
                best,
            )

    def _closest_in_time(self, watch: _OffsetWatch, candidates: range) -> int | None:
        """The offset whose pairs of trains arrived closest in time (median gap), or None."""
        best: tuple[float, int] | None = None
        for c in candidates:
            gaps = sorted(
                abs(t - self._ref_times[tid - c])
                for tid, t in watch.tids
                if tid - c in self._ref_times
            )
            if len(gaps) < len(watch.tids) // 2:
                continue
            key = (gaps[len(gaps) // 2], c)
            if best is None or key < best:
                best = key
        return None if best is None else best[1]
