"""`ControlSession`: the control side of ``beamstream run`` (versions, persistence, the API).

* a new run starts version 1 from its config file;
* ``--resume FILE`` continues the version log saved beside FILE (the last applied config), with
  the closed segments FILE holds;
* ``--versions FILE`` replays FILE's version log (switching at the recorded train ids);
* the API is served on the dashboard's server, or on its own port without a dashboard.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any, TextIO

from beamstream.config import PipelineConfig, parse_config
from beamstream.config import text_fingerprint as pipeline_fingerprint
from beamstream.control.api import ControlServer
from beamstream.control.controller import Controller
from beamstream.control.persist import load_applied
from beamstream.control.segments import ClosedSegment, read_segments
from beamstream.control.versions import read_versions

__all__ = ["ControlSession", "results_path"]

log = logging.getLogger(__name__)


def results_path(config: PipelineConfig, output: str | None, resume: str | None) -> Path | None:
    """Where the run's results file goes (None: the run writes none)."""
    if output is not None:
        return Path(output)
    hdf5 = [s for s in config.sinks if s.type == "hdf5"]
    if hdf5:
        return Path(str(hdf5[0].params.get("path", "results.h5")))
    return Path(resume) if resume is not None else None


class ControlSession:
    """The controller of one ``beamstream run`` and how it is reached."""

    def __init__(self, config: PipelineConfig, controller: Controller, resume: str | None):
        self.config = config
        self.controller = controller
        self.resume = resume
        self.server: ControlServer | None = None
        self.url: str | None = None

    @classmethod
    def prepare(
        cls,
        config: PipelineConfig,
        *,
        output: str | None = None,
        resume: str | None = None,
        versions: str | None = None,
    ) -> ControlSession:
        """The starting config and controller of a run (see the module docstring)."""
        results = results_path(config, output, resume)
        roots = [results.resolve().parent] if results is not None else []
        if versions is not None:
            recorded = read_versions(versions)
            if not len(recorded):
                raise ValueError(f"{versions}: no version log (/entry/control/versions)")
            ctl = Controller.replaying(config, recorded)
            ctl.roots = roots
            return cls(ctl.config, ctl, None)
        if resume is not None:
            saved = _resumable_log(resume)
            if saved is not None:
                last = saved.applied()[-1]
                start = replace(parse_config(last.config_text, config.path), source=config.source)
                ctl = Controller(start, versions=saved, roots=roots, persist_to=results)
                return cls(start, ctl, resume)
        ctl = Controller(config, roots=roots, persist_to=results)
        return cls(config, ctl, resume)

    def adopt(self, config: PipelineConfig) -> None:
        """Run version 1 with ``config`` as completed at start (e.g. a geometry read from the
        detector's stream) rather than as written."""
        self.config = config
        self.controller.config = config
        self.controller._latest = config

    def closed_segments(self) -> list[ClosedSegment]:
        """The closed segments of the resumed file (their results and states as stored)."""
        if self.resume is None:
            return []
        out = []
        for seg in read_segments(self.resume):
            closed = ClosedSegment(
                index=int(seg["index"]),
                versions=tuple(seg.get("versions", ())),
                first_train_id=seg.get("first_train_id"),
                last_train_id=seg.get("last_train_id"),
                processed=int(seg.get("processed", 0)),
                states=seg["states"],
                pipeline=None,
            )
            closed._results = seg["results"]
            out.append(closed)
        return out

    @contextlib.contextmanager
    def serving(
        self,
        runner: Any,
        sinks: list[Any],
        port: int = 0,
        address: str = "127.0.0.1",
        token: str | None = None,
        out: TextIO | None = None,
    ) -> Iterator[ControlSession]:
        """Serve the API for the duration of the run (on the dashboard, or on its own port)."""
        from beamstream.sinks.dashboard import connect_control

        self.controller.start_saving()
        if runner.steering is not None:
            runner.steering.closed[:0] = self.closed_segments()
        if connect_control(sinks, self.controller, token) is None:
            self.server = ControlServer(self.controller, port, address, token)
            self.url = self.server.start()
            runner.hub.info["control_url"] = self.url
            if out is not None:
                extra = f" (token {self.server.token})" if self.server.token else ""
                out.write(f"beamstream control API: {self.url}/api/v1{extra}\n")
                out.flush()
        try:
            yield self
        finally:
            if self.server is not None:
                self.server.stop()
            self.controller.close()


def _resumable_log(resume: str) -> Any:
    """The version log saved beside ``resume`` whose last applied config made its states;
    otherwise the log stored in the file itself (a kill between a switch and the next results
    write), or None."""
    saved = load_applied(resume)
    in_file = read_versions(resume) if Path(resume).is_file() else None
    try:
        from beamstream.formats.results import read_results_file

        stored = read_results_file(resume).config_text
    except (OSError, ValueError):
        return saved
    for candidate in (saved, in_file):
        if candidate is not None and len(candidate):
            last = candidate.applied()[-1]
            if pipeline_fingerprint(last.config_text) == pipeline_fingerprint(stored):
                return candidate
    if saved is not None:
        log.warning(
            "%s: the saved versions do not match its states; resuming its own config", resume
        )
    return None
