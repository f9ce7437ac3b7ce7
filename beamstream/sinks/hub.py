"""`Hub`: the latest finalized snapshot and the recent per-train records, read by sinks.

Processing publishes to the hub and never waits for a sink: each sink reads in its own thread,
at its own pace. Per-train records are kept in a bounded buffer with sequence numbers; a sink
that falls too far behind learns how many it missed.
"""

from __future__ import annotations

import collections
import os
import threading
import time
from collections.abc import Callable
from typing import Any

from beamstream.processors.base import Result

__all__ = ["Hub", "Snapshot", "describe_source"]


class Snapshot:
    """Finalized results (and the states they came from) at one moment of a run.

    ``results`` may be given as a callable: it is then computed once, on first access, by
    whichever sink asks first (in that sink's thread), so the processing loop only pays for
    copying the states, not for finalizing them.
    """

    __slots__ = (
        "seq",
        "time",
        "states",
        "status",
        "epoch",
        "final",
        "versions",
        "closed",
        "records_seq",
        "_results",
        "_lock",
    )

    def __init__(
        self,
        seq: int,
        time: float,
        results: dict[str, dict[str, Result]] | Callable[[], dict[str, dict[str, Result]]],
        states: dict[str, Any],
        status: dict[str, Any] | None = None,
        *,
        epoch: int = 0,
        final: bool = False,
        versions: tuple[Any, ...] = (),
        closed: tuple[Any, ...] = (),
    ):
        self.seq = seq
        self.time = time
        self.states = states
        self.status = dict(status or {})
        self.epoch = epoch
        self.final = final
        #: the run's config versions (`beamstream.control.versions.Version` copies), if steered
        self.versions = versions
        #: closed segments (`beamstream.control.segments.ClosedSegment`), oldest first
        self.closed = closed
        #: the hub's record sequence number when published: the records of the trains whose
        #: updates the states hold are exactly those up to it (set by `Hub.publish`)
        self.records_seq = 0
        self._results = results
        self._lock = threading.Lock()

    @property
    def results(self) -> dict[str, dict[str, Result]]:
        """Every accumulator's results, by accumulator name (finalized on first access)."""
        if callable(self._results):
            with self._lock:
                if callable(self._results):
                    self._results = self._results()
        return self._results

    def __repr__(self) -> str:
        return f"Snapshot(seq={self.seq}, epoch={self.epoch}, final={self.final})"

    def _repr_html_(self) -> str:
        from beamstream.sinks.reprs import human_time, results_table_html

        facts = {
            "time": human_time(self.time),
            "final": self.final,
            "processed trains": self.status.get("processed", ""),
            "train ids": " – ".join(str(t) for t in self.status.get("accepted_train_ids") or []),
        }
        return results_table_html(f"Snapshot {self.seq} (epoch {self.epoch})", self.results, facts)


class Hub:
    """Shared between the processing loop (writer) and the sinks (readers).

    Parameters
    ----------
    max_records
        How many per-train records are kept for sinks that read them.
    max_record_bytes
        And at most this many bytes of record arrays (per-frame I(q, phi) records are large):
        the oldest records go first.
    config_text
        The pipeline config (TOML text), for sinks that store it.
    """

    def __init__(
        self, max_records: int = 10000, config_text: str = "", max_record_bytes: int = 1 << 30
    ):
        self.config_text = config_text
        self.info: dict[str, Any] = {}  # run-level facts for sinks (output path, dashboard URL)
        #: fraction of the last half second the processing loop was busy (0..1); displays
        #: spend less time updating as it nears 1, so they never slow processing down
        self.busy = 0.0
        self._cond = threading.Condition()
        self._snapshot: Snapshot | None = None
        self._records: collections.deque[tuple[int, dict[str, Any], int]] = collections.deque()
        self._max_records = max(1, int(max_records))
        self._max_record_bytes = int(max_record_bytes)
        self._record_bytes = 0
        self._record_seq = 0
        self._status: dict[str, Any] = {}
        self._closed = False
        self._latest_view: Any = None
        #: unix time of the first processed train (set by `set_latest`)
        self.first_view_at: float | None = None
        self._closed_epochs: list[Snapshot] = []

    # -- writer side --------------------------------------------------------------------------
    def publish(self, snapshot: Snapshot) -> None:
        with self._cond:
            snapshot.records_seq = self._record_seq
            self._snapshot = snapshot
            self._status = dict(snapshot.status)
            self._cond.notify_all()

    def close_epoch(self, snapshot: Snapshot) -> None:
        """Keep ``snapshot`` as the last of its epoch (an accumulation reset follows): sinks
        that store results keep it as a closed segment (`closed_epochs`)."""
        with self._cond:
            self._closed_epochs.append(snapshot)

    def closed_epochs(self) -> list[Snapshot]:
        """The last snapshot of each epoch closed by a reset, oldest first."""
        with self._cond:
            return list(self._closed_epochs)

    def add_record(self, record: dict[str, Any]) -> None:
        size = _nbytes(record)
        with self._cond:
            self._record_seq += 1
            self._records.append((self._record_seq, record, size))
            self._record_bytes += size
            while len(self._records) > 1 and (
                len(self._records) > self._max_records
                or self._record_bytes > self._max_record_bytes
            ):
                self._record_bytes -= self._records.popleft()[2]

    def set_status(self, status: dict[str, Any]) -> None:
        with self._cond:
            self._status = dict(status)

    def set_latest(self, latest: Any) -> None:
        """The most recent processed train's view (e.g. for a live image); no copy."""
        if self.first_view_at is None:
            self.first_view_at = time.time()  # when the run processed its first train
        self._latest_view = latest

    def close(self) -> None:
        """No more snapshots will come (sinks finish and stop)."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    # -- reader side --------------------------------------------------------------------------
    @property
    def closed(self) -> bool:
        return self._closed

    def latest(self) -> Snapshot | None:
        return self._snapshot

    def _repr_html_(self) -> str:
        snap = self._snapshot
        return snap._repr_html_() if snap is not None else "<div>Hub: no snapshot yet</div>"

    def latest_view(self) -> Any:
        return self._latest_view

    def status(self) -> dict[str, Any]:
        with self._cond:
            return dict(self._status)

    def wait_snapshot(self, after_seq: int, timeout: float | None = None) -> Snapshot | None:
        """The latest snapshot once its seq exceeds ``after_seq`` (None on timeout or close)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._snapshot is None or self._snapshot.seq <= after_seq:
                if self._closed:
                    return None
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    return None
                self._cond.wait(0.2 if left is None else min(left, 0.2))
            return self._snapshot

    def records_since(
        self, seq: int, limit: int | None = None, upto: int | None = None
    ) -> tuple[list[dict[str, Any]], int, int]:
        """Records after ``seq`` (up to ``upto``): ``(records, last_seq, missed)``; missed were
        already dropped."""
        with self._cond:
            if not self._records:
                return [], seq, 0
            first = self._records[0][0]
            missed = max(0, min(first - 1, first - 1 if upto is None else upto) - seq)
            out = [r for s, r, _ in self._records if s > seq and (upto is None or s <= upto)]
            if limit is not None:
                out = out[:limit]
            last = seq + missed + len(out)
            return out, last, missed


def _nbytes(value: Any) -> int:
    """Approximate memory of a record: its arrays' bytes (nested dicts included)."""
    if isinstance(value, dict):
        return sum(_nbytes(v) for v in value.values()) + 64
    return int(getattr(value, "nbytes", 16))


def describe_source(hub: Hub, config: Any) -> None:
    """Put where the run's data comes from into ``hub.info`` (shown in the dashboard header)."""
    src = config.source
    hub.info["source"] = f"{src.endpoint} ({src.socket})"
    if config.path and config.path != "<string>":
        hub.info["config_name"] = os.path.basename(config.path)
