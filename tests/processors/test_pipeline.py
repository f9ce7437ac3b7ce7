"""Pipeline runtime: registry, layouts, rejections, errors, runner over a real socket."""

from __future__ import annotations

import threading
import time
from importlib.metadata import EntryPoint

import numpy as np
import pytest

from beamstream import plugins
from beamstream.config import ConfigError, parse_config
from beamstream.executors import LocalExecutor
from beamstream.processors import registry
from beamstream.processors.layout import FrameLayout
from beamstream.processors.pipeline import Pipeline
from beamstream.runner import Runner
from beamstream.sinks.hub import Hub
from beamstream.streamer import Sender, Train

DET = "DET/0:xtdf"
CONFIG = """
version = 1
[source]
endpoint = "{endpoint}"
socket = "PUSH_CLIENT"
detector = "DET/0:xtdf"
key = "image.data"
layout = {layout}
[[processors]]
type = "tests.processors.userplugin:FrameTotals"
name = "totals"
[run]
interval = 0.05
status_interval = 100
"""


def make_config(endpoint="ipc:///unused", socket="PULL", layout='["frame", "ss", "fs"]', extra=""):
    text = CONFIG.format(endpoint=endpoint, layout=layout).replace("PUSH_CLIENT", socket)
    return parse_config(text.replace("[run]", extra + "\n[run]"), "test.toml")


def train(tid, frames, **extra):
    data = {DET: {"image.data": frames}}
    data.update(extra)
    return Train(tid, 1.0e9 + tid / 10, data)


def test_unknown_processor_lists_known_names():
    cfg = make_config().processors[0]
    text = CONFIG.format(endpoint="x", layout="[]").replace(cfg.type, "no_such_thing")
    with pytest.raises(ConfigError) as e:
        Pipeline(parse_config(text.replace("PUSH_CLIENT", "PULL"), "t.toml"))
    msg = str(e.value)
    assert "unknown processor type 'no_such_thing'" in msg
    assert "scan_binner" in msg and "frame_selector" in msg


def test_two_plugins_with_one_name_is_an_error(monkeypatch):
    eps = [
        EntryPoint("dup", "pkg_a.mod:A", registry.GROUP),
        EntryPoint("dup", "pkg_b.mod:B", registry.GROUP),
    ]
    monkeypatch.setattr(plugins, "entry_points", lambda group: eps)
    with pytest.raises(registry.RegistryError, match="registered twice.*pkg_a.mod:A.*pkg_b.mod:B"):
        registry.resolve("dup")


def test_dotted_path_must_be_a_processor():
    with pytest.raises(registry.RegistryError, match="not a processor"):
        registry.resolve("numpy:ndarray")
    with pytest.raises(registry.RegistryError, match="cannot load"):
        registry.resolve("tests.processors.userplugin:Nope")


def test_user_processor_accumulates_known_values():
    p = Pipeline(make_config())
    states = p.empty_states()
    for tid in range(4):
        p.process(train(tid, np.full((3, 4, 5), tid, np.uint16)), states)
    res = p.finalize(states)["totals"]
    assert res["frames"].data.tolist() == [[12]]
    assert res["mean_total"].data[0, 0] == pytest.approx(20 * (0 + 1 + 2 + 3) / 4)


def test_online_layout_is_transposed_without_copy():
    online = np.arange(2 * 3 * 4, dtype=np.uint16).reshape(4, 3, 2)  # (fs, ss, frame)
    lay = FrameLayout(DET, "image.data", ("fs", "ss", "frame"))
    from beamstream.processors.base import TrainView

    view = lay(TrainView(train(1, online)))
    assert view.frames.shape == (2, 3, 4)
    assert np.shares_memory(view.frames, online)
    assert view.frames[1, 2, 3] == online[3, 2, 1]


def test_layout_from_message_dims():
    t = train(1, np.zeros((5, 2, 3), np.float32))
    t.dims = {DET: {"image.data": ("ss", "fs", "pulse")}}
    from beamstream.processors.base import TrainView

    view = FrameLayout(DET, "image.data")(TrainView(t))
    assert view.frames.shape == (3, 5, 2)


def test_runner_counts_rejections_errors_and_duplicates():
    good = np.ones((2, 4, 5), np.float32)
    feed = [
        train(1, good),
        train(1, good),  # duplicate id
        train(2, np.ones((2, 4, 6), np.float32)),  # wrong shape for the first-seen layout
        Train(3, None, {"OTHER": {"x": 1}}),  # no detector source
        train(4, -good),  # the processor raises
        train(5, good * 2),
        train(6, np.full((2, 4, 5), np.nan, np.float32)),
    ]
    runner = Runner(make_config(), LocalExecutor(feed), status_out=None)
    status = runner.run()
    assert status["processed"] == 3
    assert status["rejected"] == {
        "duplicate train id": 1,
        "wrong shape": 1,
        "detector data missing": 1,
    }
    assert status["errors"] == {"ValueError": 1}
    final = runner.hub.latest()
    assert final.final
    assert final.results["totals"]["frames"].data.tolist() == [[6]]


def test_transform_plugin_rejects_and_is_counted():
    extra = '[[processors]]\ntype = "tests.processors.userplugin:RejectOddTrains"\n'
    text = make_config().text
    # transforms must come before accumulators: put it first
    text = text.replace("[[processors]]", extra + "[[processors]]", 1)
    feed = [train(t, np.ones((1, 2, 2), np.uint16)) for t in range(10)]
    runner = Runner(parse_config(text, "t.toml"), LocalExecutor(feed), status_out=None)
    status = runner.run()
    assert status["processed"] == 5 and status["rejected"] == {"odd train": 5}


def test_transform_after_accumulator_is_a_config_error():
    extra = '[[processors]]\ntype = "tests.processors.userplugin:RejectOddTrains"\n'
    with pytest.raises(ConfigError, match="a transform must come before the accumulators"):
        Pipeline(make_config(extra=extra))


@pytest.mark.timeout(30)
def test_runner_end_to_end_over_ipc(endpoint):
    sender = Sender(endpoint, "PUSH")
    n = 20
    frames = [np.full((2, 4, 5), i, np.uint16) for i in range(n)]

    def feed():
        for i in range(n):
            sender.send(train(100 + i, frames[i]), timeout=5)

    th = threading.Thread(target=feed, daemon=True)
    hub = Hub()
    runner = Runner(make_config(endpoint=endpoint), hub=hub, status_out=None)
    th.start()
    try:
        t0 = time.monotonic()
        status = runner.run(trains=n, duration=20)
    finally:
        th.join(5)
        sender.close()
    assert time.monotonic() - t0 < 20
    assert status["processed"] == n
    assert status["last_train_id"] == 100 + n - 1
    res = hub.latest().results["totals"]
    assert res["mean_total"].data[0, 0] == pytest.approx(20 * np.mean(range(n)))
    records, last, missed = hub.records_since(0)
    assert [r["train_id"] for r in records] == list(range(100, 100 + n)) and missed == 0
