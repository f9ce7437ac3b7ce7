"""`Controller`: accepts config changes and resets, and hands them to the run at a train boundary.

The API (any thread) calls `Controller.apply`, `Controller.reset`; each accepted request becomes
the next `Version`, queued. The processing loop calls `Controller.next_switch` before every train:
when versions are due it takes them all, as one `Switch`, so every processor changes on the same
train. With a scripted log (`Controller.replaying`) versions become due at the train ids the log
recorded, which replays a live session exactly.
"""

from __future__ import annotations

import collections
import logging
import threading
import time
import tomllib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from beamstream.config import PipelineConfig, parse_config
from beamstream.control.patch import Change, ChangeError, apply_change
from beamstream.control.persist import save_applied
from beamstream.control.validate import NEW_SEGMENT, check_change
from beamstream.control.versions import RESET, Version, VersionLog
from beamstream.processors.pipeline import Pipeline

__all__ = ["Controller", "Switch"]

log = logging.getLogger(__name__)


@dataclass
class Switch:
    """Versions taken at one train boundary.

    ``pipeline`` is None when only resets were taken (the pipeline stays); ``new_segment``: the
    accumulation restarts from empty states.
    """

    versions: list[Version]
    config: PipelineConfig | None
    pipeline: Pipeline | None
    new_segment: bool

    @property
    def version(self) -> Version:
        return self.versions[-1]


@dataclass
class _Pending:
    version: Version
    config: PipelineConfig | None
    pipeline: Pipeline | None
    due: int  # the train id from which it applies (0: the next train)
    applied: threading.Event
    new_segment: bool = False  # a replayed version that started a segment


class Controller:
    """Config versions of one run.

    Parameters
    ----------
    config
        The config the run starts with (version 1, or the last version of ``versions``).
    versions
        An earlier log to continue (a resumed run); a new one by default.
    roots
        Folders that files named in a change may be in (the run's output folder).
    persist_to
        A results file path: the log and the applied config are saved beside it at each switch.
    wait
        Seconds `apply` waits for its version to reach a train before answering ``pending``.
    """

    def __init__(
        self,
        config: PipelineConfig,
        *,
        versions: VersionLog | None = None,
        roots: Sequence[str | Path] = (),
        persist_to: str | Path | None = None,
        wait: float = 5.0,
    ):
        self.config = config
        self.log = (
            versions
            if versions is not None and len(versions)
            else VersionLog.start(config.text, time.time())
        )
        self.roots = [Path(r) for r in roots]
        self.persist_to = persist_to
        self.wait = float(wait)
        self.on_snapshot: Callable[[], Any] | None = None
        self.status: Callable[[], dict[str, Any]] | None = None
        self._lock = threading.Lock()
        self._latest = config  # the config of the last accepted version (maybe still pending)
        self._queue: collections.deque[_Pending] = collections.deque()
        self._next_due: int | None = None  # smallest due train id in the queue
        self._segment = self.log.last.segment
        self._current = self.log.last
        self._saver: _Saver | None = None  # started with the run (`start_saving`)

    @classmethod
    def replaying(cls, config: PipelineConfig, versions: VersionLog) -> Controller:
        """A controller that switches at the train ids recorded in ``versions`` (from a results
        file): version 1 must be the run's starting config; later versions are queued with the
        source of ``config``."""
        applied = versions.applied()
        first = _with_source(applied[0].config_text, config)
        ctl = cls(first, versions=VersionLog([replace(applied[0])]))
        previous, segment = first, applied[0].segment
        for v in applied[1:]:
            cfg = previous if v.kind == RESET else _with_source(v.config_text, config)
            pipeline = None if v.kind == RESET else Pipeline(cfg)
            copy = replace(v, number=ctl.log.last.number + 1, first_train_id=None)
            copy.last_train_id, copy.trains, copy.applied_at = None, 0, None
            due = int(v.first_train_id)
            ctl._enqueue(copy, cfg if pipeline else None, pipeline, due, v.segment != segment)
            previous, segment = cfg, v.segment
        return ctl

    # -- the API side (any thread) --------------------------------------------------------------
    @property
    def current(self) -> Version:
        """The version the run processes trains with now."""
        return self._current

    def current_config(self) -> tuple[int, str]:
        """The number and config text of the version the run processes trains with now."""
        v = self._current
        return v.number, v.config_text

    def status_info(self) -> dict[str, Any]:
        """The run's status with the current version, segment and queued versions."""
        out: dict[str, Any] = {}
        for _ in range(3):  # the run's counters change under us: a rare race, try again
            try:
                out = dict(self.status() if self.status is not None else {})
                break
            except RuntimeError:
                continue
        out.update(
            version=self._current.number,
            segment=self._current.segment,
            pending_versions=len(self._queue),
            latest_version=self.log.last.number,
        )
        return out

    def apply(self, change: Change, wait: float | None = None) -> dict[str, Any]:
        """Validate ``change`` and queue it as the next version; wait for its first train.

        Raises
        ------
        ChangeError
            The change is refused (located message); the running version is untouched.
        """
        with self._lock:
            text = apply_change(self._latest.text, change)
            if tomllib.loads(text) == tomllib.loads(self._latest.text):
                return {"unchanged": True, **self._current.to_dict(text=False)}
            checked = check_change(self._latest, text, self.roots)
            version = Version(
                number=self.log.last.number + 1,
                config_text=text,
                kind=checked.kind,
                change=change.describe(),
                client=change.client,
                requested_at=time.time(),
            )
            pending = self._enqueue(version, checked.config, checked.pipeline, due=0)
        return self._answer(pending, wait)

    def reset(self, client: str = "", wait: float | None = None) -> dict[str, Any]:
        """Queue a reset: the accumulation restarts (a new segment) at the next train."""
        with self._lock:
            version = Version(
                number=self.log.last.number + 1,
                config_text=self._latest.text,
                kind=RESET,
                change="reset",
                client=client,
                requested_at=time.time(),
            )
            pending = self._enqueue(version, None, None, due=0)
        return self._answer(pending, wait)

    def versions(self) -> list[dict[str, Any]]:
        """Every version, oldest first, without config texts."""
        return [v.to_dict(text=False) for v in self.log.list()]

    def snapshot(self) -> dict[str, Any]:
        """Ask the run for a snapshot now (published to every sink)."""
        if self.on_snapshot is None:
            raise ChangeError("snapshot: this run cannot take snapshots on request")
        self.on_snapshot()
        return {"requested": True, "version": self._current.number}

    def _enqueue(
        self,
        version: Version,
        config: PipelineConfig | None,
        pipeline: Pipeline | None,
        due: int,
        new_segment: bool = False,
    ) -> _Pending:
        pending = _Pending(version, config, pipeline, due, threading.Event(), new_segment)
        self.log.add(version)
        if config is not None:
            self._latest = config
        self._queue.append(pending)
        self._next_due = min(due, self._next_due) if self._next_due is not None else due
        return pending

    def _answer(self, pending: _Pending, wait: float | None) -> dict[str, Any]:
        applied = pending.applied.wait(self.wait if wait is None else wait)
        out = pending.version.to_dict(text=False)
        out["applied"] = applied
        return out

    # -- the run side (processing thread) -----------------------------------------------------
    def next_switch(self, train_id: int) -> Switch | None:
        """The versions due at ``train_id`` (None: keep going); call before every train."""
        due = self._next_due
        if due is None or train_id < due:
            return None
        with self._lock:
            taken = []
            while self._queue and self._queue[0].due <= train_id:
                taken.append(self._queue.popleft())
            self._next_due = self._queue[0].due if self._queue else None
            if not taken:
                return None
            return self._take(taken, train_id)

    def _take(self, taken: list[_Pending], train_id: int) -> Switch:
        now = time.time()
        new_segment = any(p.new_segment or p.version.kind in (NEW_SEGMENT, RESET) for p in taken)
        if new_segment:
            self._segment += 1
        for p in taken:  # all start at this train; the last one gets its trains
            p.version.applied_at = now
            p.version.segment = self._segment
            p.version.first_train_id = train_id
        last = taken[-1].version
        built = [p for p in taken if p.pipeline is not None]
        config = built[-1].config if built else None
        self._current = last
        if config is not None:
            self.config = config
        if self._saver is not None:
            self._saver.dirty()
        for p in taken:
            p.applied.set()
        return Switch(
            [p.version for p in taken], config, built[-1].pipeline if built else None, new_segment
        )

    def pending(self) -> bool:
        """True when versions wait for a boundary (a driver without per-train calls asks)."""
        return self._next_due is not None

    def next_due(self) -> int | None:
        """The train id the next queued version is due at (0: the next train; None: none)."""
        return self._next_due

    def note_trains(self, last_train_id: int | None, trains: int) -> None:
        """Count ``trains`` processed with the current version up to ``last_train_id`` (for
        runs whose trains are processed elsewhere, e.g. on Dask workers)."""
        v = self._current
        if last_train_id is not None:
            v.last_train_id = max(v.last_train_id or last_train_id, last_train_id)
        v.trains += int(trains)

    def processed(self, train_id: int) -> None:
        """Count a train processed with the current version (call after each train)."""
        v = self._current
        if v.first_train_id is None:  # the version the run started with
            v.first_train_id = train_id
        v.last_train_id = train_id
        v.trains += 1

    def start_saving(self) -> None:
        """Save the log beside the results from now on (when the run starts: a run refused
        before that leaves no file)."""
        if self.persist_to and self._saver is None:
            self._saver = _Saver(self.persist_to, self.log)

    def close(self) -> None:
        """Save the log a last time and stop the saver."""
        if self._saver is not None:
            self._saver.stop()


class _Saver:
    """Saves the version log beside the results in its own thread (never in the loop)."""

    def __init__(self, path: str | Path, versions: VersionLog):
        self.path, self.log = path, versions
        self._event = threading.Event()
        self._stop = False
        self._thread = threading.Thread(target=self._run, name="version log saver", daemon=True)
        self._thread.start()
        self.dirty()

    def dirty(self) -> None:
        self._event.set()

    def _run(self) -> None:
        while True:
            self._event.wait()
            self._event.clear()
            try:
                save_applied(self.path, self.log)
            except OSError as e:  # counted in the log; the run goes on
                log.error("cannot save the applied config beside %s: %s", self.path, e)
            if self._stop:
                return

    def stop(self) -> None:
        self._stop = True
        self._event.set()
        self._thread.join(10)


def _with_source(text: str, config: PipelineConfig) -> PipelineConfig:
    """``text`` parsed, with the source of ``config`` (where the replayed trains come from)."""
    parsed = parse_config(text, config.path)
    return replace(parsed, source=config.source)
