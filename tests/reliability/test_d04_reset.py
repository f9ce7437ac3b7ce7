"""Defect 4: the local-reset attack, and a reset that keeps the earlier epoch in the results.

Any local process can open a Bokeh session on the dashboard (``pull_session``) and send the
reset button's click. Without the run's token the click is refused (and counted); with it the
reset happens, and the data of the closed epoch stays in the results file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from bokeh.client import pull_session
from bokeh.events import ButtonClick

from beamstream.config import parse_config
from beamstream.executors import LocalExecutor
from beamstream.formats.epochs import read_closed_epochs
from beamstream.formats.results import read_results_file
from beamstream.runner import Runner
from beamstream.sinks.dashboard import DashboardSink
from beamstream.sinks.hdf5 import HDF5Sink
from beamstream.sinks.hub import Hub
from beamstream.streamer.train import Train
from tests.conftest import wait_for

CONFIG = """
version = 1
[source]
endpoint = "ipc:///unused"
socket = "PULL"
detector = "DET/0:xtdf"
key = "image.data"
layout = ["frame", "ss", "fs"]
[[processors]]
type = "tests.processors.userplugin:FrameTotals"
name = "totals"
[run]
interval = 0.05
status_interval = 100
"""


def _click_reset(url: str, token: str | None = None, secret: str = "") -> None:
    """What a hostile local process does: a session of its own, and the reset button's click."""
    args = {} if token is None else {"token": token}
    with pull_session(url=url, arguments=args) as session:
        if secret and token != secret:  # the token is nowhere in what the session sees
            time.sleep(0.5)
            assert secret not in json.dumps(session.document.to_json(), default=str)
        button = session.document.select_one({"name": "reset"})
        session.document.callbacks.send_event(ButtonClick(button))
        session.push()  # let the event reach the server
        time.sleep(0.5)


@pytest.mark.timeout(60)
def test_reset_needs_the_token(free_port) -> None:
    calls: list[int] = []
    sink = DashboardSink(port=free_port(), out=None, on_reset=lambda: calls.append(1))
    hub = Hub()
    try:
        sink.serve(hub)
        plain = sink.server.url
        assert sink.token not in str(hub.info)  # hub info is shown on pages and stored in files
        _click_reset(plain, secret=sink.token)
        assert calls == [] and sink.refused_resets >= 1
        assert sink.control_url.startswith(plain) and "token=" in sink.control_url
        _click_reset(plain, "wrong")
        assert calls == [] and sink.refused_resets >= 2
        _click_reset(plain, sink.token)
        assert wait_for(lambda: calls == [1], 5)
    finally:
        sink.stop()


def test_token_needed_beyond_localhost() -> None:
    with pytest.raises(ValueError, match="token"):
        DashboardSink(address="0.0.0.0", token="", out=None)
    assert DashboardSink(address="127.0.0.1", token="", out=None).token == ""


def _trains(first: int, n: int):
    for t in range(first, first + n):
        yield Train(t, None, {"DET/0:xtdf": {"image.data": np.full((2, 4, 5), t, np.uint16)}})


def test_reset_keeps_the_closed_epoch(tmp_path: Path) -> None:
    out = tmp_path / "r.h5"

    def feed():
        yield from _trains(0, 10)
        runner.reset()
        yield from _trains(10, 5)

    sink = HDF5Sink(str(out), fsync=False)
    runner = Runner(parse_config(CONFIG, "t.toml"), LocalExecutor(feed()), [sink], status_out=None)
    runner.run()
    rf = read_results_file(out)
    assert rf.snapshot["epoch"] == 1
    epochs = read_closed_epochs(out)
    assert [e["epoch"] for e in epochs] == [0]
    closed = epochs[0]
    # the reset applies at the next train boundary the executor checks (after train 9 or 10)
    assert closed["first_train_id"] == 0 and closed["last_train_id"] in (9, 10)
    assert closed["processed"] == closed["last_train_id"] + 1
    total_closed = closed["states"]["totals"]
    assert total_closed  # the earlier epoch's sums are in the file
    assert rf.segments[-1]["processed"] == 15
