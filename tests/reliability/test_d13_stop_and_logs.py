"""Defect 13: trains still queued at stop are counted; a failing sink logs one traceback, then
rate-limited lines; the log says when a source went away and came back."""

from __future__ import annotations

import logging
import time

import numpy as np
import pytest

from beamstream.config import parse_config
from beamstream.executors import LocalExecutor
from beamstream.runner import Runner
from beamstream.sinks.base import Sink
from beamstream.streamer import Receiver, Sender, Train
from tests.conftest import wait_for


def _train(tid: int) -> Train:
    return Train(tid, 1.7e9, {"DET": {"image.data": np.full((2, 4, 5), tid, np.uint16)}})


@pytest.mark.timeout(30)
def test_trains_queued_at_stop_are_counted(endpoint: str) -> None:
    sender = Sender(endpoint, socket="PUSH")
    rx = Receiver(endpoint, "PULL", queue=10, policy="block")
    try:
        for tid in range(1, 6):
            assert sender.send(_train(tid), timeout=5)
        assert wait_for(lambda: rx.stats()["queued"] == 5, 5)
        assert rx.get(1).train_id == 1 and rx.get(1).train_id == 2
    finally:
        rx.close()
        sender.close()
    stats = rx.stats()
    assert stats["dropped"] == {"lost:queued at stop": 3}
    assert stats["delivered"] + stats["dropped_total"] == stats["received"]


class _Failing(Sink):
    name = "failing"

    def write(self, snapshot) -> None:  # noqa: ANN001
        raise OSError("the network file system went away")


CONFIG = """
version = 1
[source]
detector = "DET"
layout = ["frame", "ss", "fs"]
[[processors]]
type = "tests.processors.userplugin:FrameTotals"
name = "totals"
[run]
interval = 0.01
status_interval = 100
"""


def test_failing_sink_logs_one_traceback(caplog) -> None:
    sink = _Failing()

    def slow():
        for tid in range(60):
            time.sleep(0.01)
            yield _train(tid)

    with caplog.at_level(logging.WARNING, logger="beamstream.sinks.base"):
        executor = LocalExecutor(slow())
        Runner(parse_config(CONFIG, "t.toml"), executor, [sink], status_out=None).run()
    assert sink.errors >= 20
    records = [r for r in caplog.records if "failing" in r.getMessage()]
    assert sum(r.exc_info is not None for r in records) == 1
    assert len(records) <= 3  # first with its traceback, then counted lines per 30 s
    assert sink.health() == {"errors": sink.errors}


@pytest.mark.timeout(30)
def test_source_away_and_back_is_logged(endpoint: str, caplog) -> None:
    with caplog.at_level(logging.INFO, logger="beamstream.streamer.watch"):
        sender = Sender(endpoint, socket="PUSH")
        rx = Receiver(endpoint, "PULL", queue=10, policy="block")
        try:
            assert sender.send(_train(1), timeout=5) and rx.get(5).train_id == 1
            sender.close()
            assert wait_for(lambda: "went away" in caplog.text, 5)
            sender = Sender(endpoint, socket="PUSH")
            assert sender.send(_train(2), timeout=5) and rx.get(5).train_id == 2
            assert wait_for(lambda: caplog.text.count("connected to source") >= 2, 5)
        finally:
            rx.close()
            sender.close()
