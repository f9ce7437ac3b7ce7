"""`Steering`: config versions inside a `beamstream.runner.Runner` (switches and segments).

The executor calls `Steering.switch` at a train boundary (the local executor before the train,
the Dask live executor at a train id beyond every worker's last one). A switch merges what the
old version processed so far, closes the segment when the change is not compatible (its states
are kept, never merged with the next ones), swaps the runner's pipeline and fingerprint, and has
the executor follow. Partials carry their version in their fingerprint (``<config>#v<N>``), so a
partial of an earlier version that arrives late (a Dask worker's trains below the boundary) goes
to its own segment (`Steering.take_apart`).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from beamstream.accumulation import Partial
from beamstream.control.controller import Controller, Switch
from beamstream.control.segments import ClosedSegment

if TYPE_CHECKING:
    from beamstream.runner import Runner

__all__ = ["Steering", "tagged"]

log = logging.getLogger(__name__)


def tagged(fingerprint: str, version: int) -> str:
    """``fingerprint`` of config version ``version`` (partials of two versions never merge)."""
    return f"{fingerprint.split('#')[0]}#v{version}"


class Steering:
    """The versions of one run (see the module docstring)."""

    def __init__(self, run: Runner, control: Controller):
        self.run = run
        self.control = control
        self.closed: list[ClosedSegment] = []
        self.segment_of: dict[str, int] = {}  # tagged fingerprint -> segment of its states
        self._segment_processed = 0  # trains processed before the current segment
        run.epoch = control.current.segment
        run.fingerprint = tagged(run.config.fingerprint, control.current.number)
        self.segment_of[run.fingerprint] = run.epoch
        control.status = run.status_dict
        control.on_snapshot = run.request_snapshot
        run.hub.info["config_version"] = control.current.number

    def versions(self) -> tuple[Any, ...]:
        """Copies of every version (for a snapshot)."""
        return tuple(dataclasses.replace(v) for v in self.control.log.list())

    def switch(self, switch: Switch, boundary: int) -> None:
        """Change to the versions of ``switch`` from train ``boundary`` on."""
        run = self.run
        run.collect()  # what the old version processed so far
        if switch.new_segment:
            self._close_segment()
        if switch.pipeline is not None:
            run.pipeline, run.config = switch.pipeline, switch.config
            run.hub.config_text = run.config.text
        if switch.new_segment:
            run.states = run.pipeline.empty_states()
        run.fingerprint = tagged(run.config.fingerprint, switch.version.number)
        self.segment_of[run.fingerprint] = run.epoch
        run.executor.reconfigure(run, boundary)
        run.hub.info["config_version"] = switch.version.number
        log.info(
            "config version %d (%s) from train %d",
            switch.version.number,
            switch.version.kind,
            boundary,
        )

    def _close_segment(self) -> None:
        run = self.run
        run.publish()
        mine = [v for v in self.control.log.list() if v.segment == run.epoch]
        firsts = [v.first_train_id for v in mine if v.first_train_id is not None]
        lasts = [v.last_train_id for v in mine if v.last_train_id is not None]
        processed = int(run.counters.processed)
        self.closed.append(
            ClosedSegment(
                index=run.epoch,
                versions=tuple(v.number for v in mine),
                first_train_id=min(firsts) if firsts else None,
                last_train_id=max(lasts) if lasts else None,
                processed=processed - self._segment_processed,
                states=run.states,
                pipeline=run.pipeline,
            )
        )
        self._segment_processed = processed
        run.epoch += 1

    def take_apart(self, part: Partial) -> Partial | None:
        """Apply the partials of other versions ``part`` carries (and ``part`` itself when it
        is of another version); what is left for the runner's own merge, or None."""
        for earlier in part.previous:
            self._route(earlier)
        part.previous = []
        if part.fingerprint == self.run.fingerprint:
            return part
        self._route(part)
        return None

    def _route(self, part: Partial) -> None:
        run = self.run
        segment = self.segment_of.get(part.fingerprint)
        if segment is None:
            raise ValueError(f"states of unknown config version {part.fingerprint}: never merged")
        if segment == run.epoch:  # a compatible earlier version of this segment
            run.states = run.pipeline.merge(run.states, part.states)
        else:  # trains below a boundary that arrived after it: to their closed segment
            closed = next(c for c in self.closed if c.index == segment)
            with closed._lock:
                closed.states = closed.pipeline.merge(closed.states, part.states)
                closed.processed += int(part.counters.processed)
                closed._results = None
        run.counters = run.counters.merge(part.counters)
        for rec in part.records:
            run.hub.add_record(rec)
