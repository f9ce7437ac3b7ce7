"""A stand-in for a run: a thread that takes versions at train boundaries like the runner."""

from __future__ import annotations

import threading

from beamstream.control.controller import Controller


class FakeRun:
    """Calls ``next_switch``/``processed`` for train ids 1000, 1001, ... every ``period`` s."""

    def __init__(self, controller: Controller, period: float = 0.005, limit: int = 100000):
        self.controller = controller
        self.period = period
        self.limit = limit
        self.switches: list = []
        self.train_id = 1000
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> FakeRun:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _run(self) -> None:
        for _ in range(self.limit):
            if self._stop.wait(self.period):
                return
            switch = self.controller.next_switch(self.train_id)
            if switch is not None:
                self.switches.append((self.train_id, switch))
            self.controller.processed(self.train_id)
            self.train_id += 1
