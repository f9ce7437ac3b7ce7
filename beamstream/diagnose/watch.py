"""Say why, while a run goes on, when nothing was processed after a while; and at its end."""

from __future__ import annotations

import sys
import threading
from typing import Any, Protocol, TextIO

from beamstream.config import PipelineConfig
from beamstream.diagnose.empty_run import explain_empty_run

__all__ = ["EmptyRunWatch", "explain_runner", "receiver_stats"]


class _RunnerLike(Protocol):
    config: PipelineConfig

    def status_dict(self) -> dict[str, Any]: ...


def explain_runner(runner: _RunnerLike, probe: bool = True) -> str:
    """`explain_empty_run` for a runner (its config, status and receiver stats)."""
    return explain_empty_run(runner.config, runner.status_dict(), receiver_stats(runner), probe)


def receiver_stats(runner: Any) -> dict[str, Any] | None:
    """The stats of the runner's receiver (`Receiver.stats`), None when it reads no socket."""
    rx = getattr(runner, "receiver", None)
    if rx is None:  # a runner whose executor owns the source
        rx = getattr(getattr(runner, "executor", None), "source", None)
    stats = getattr(rx, "stats", None)
    if not callable(stats):
        return None
    found = stats()
    return found if isinstance(found, dict) and "received" in found else None


class EmptyRunWatch:
    """A thread that prints the explanation once if no train was processed after ``after`` s.

    Use as a context manager around the run; leaving it stops the thread.
    """

    def __init__(self, runner: _RunnerLike, after: float, out: TextIO = sys.stderr):
        self.runner = runner
        self.after = after
        self.out = out
        self.fired = False
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="empty-run watch", daemon=True)

    def __enter__(self) -> EmptyRunWatch:
        if self.after > 0:
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._done.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _watch(self) -> None:
        if self._done.wait(self.after):
            return
        if self.runner.status_dict().get("processed", 0) == 0:
            self.fired = True
            text = explain_runner(self.runner)
            hub = getattr(self.runner, "hub", None)
            why = next((line for line in text.splitlines() if line.startswith("why: ")), "")
            if hub is not None and why:
                hub.info["diagnosis"] = why.removeprefix("why: ")  # shown in the dashboard
            self.out.write(f"\nbeamstream run: after {self.after:g} s, {text}\n")
            self.out.flush()
