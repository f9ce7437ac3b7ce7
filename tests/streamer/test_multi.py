"""`MatchedSource` over real sockets, and its config checks."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from beamstream.config import ConfigError, parse_config
from beamstream.sources import source_class
from beamstream.sources.matched import MatchedKaraboSource
from beamstream.streamer import Sender, Train
from beamstream.streamer.multi import InputSpec, MatchedSource


def _sender_thread(sender: Sender, trains: list[Train], stop: threading.Event) -> threading.Thread:
    def run() -> None:
        for t in trains:
            while not sender.send(t, timeout=0.2):
                if stop.is_set():
                    return

    th = threading.Thread(target=run, daemon=True)
    th.start()
    return th


@pytest.mark.timeout(30)
def test_two_endpoints_matched(tmp_path: Path) -> None:
    eps = [f"ipc://{tmp_path}/a.sock", f"ipc://{tmp_path}/b.sock"]
    tids = list(range(100, 120))
    a = [Train(t, 1.0 * t, {"DET/0": {"image.data": np.full((2, 4), t, np.float32)}}) for t in tids]
    # b skips train 105 and sends 110..114 in reverse order
    order = [t for t in tids if t != 105]
    order[9:14] = order[9:14][::-1]
    b = [
        Train(t, 1.0 * t, {"DET/1": {"image.data": np.full((2, 4), -t, np.float32)}}) for t in order
    ]
    stop = threading.Event()
    senders = [Sender(eps[0], socket="PUSH"), Sender(eps[1], socket="PUSH")]
    threads = [_sender_thread(s, trains, stop) for s, trains in zip(senders, (a, b), strict=True)]
    src = MatchedSource(
        [InputSpec(eps[0], "PULL", "a"), InputSpec(eps[1], "PULL", "b")],
        deadline_ms=300,
        incomplete="accept",
    )
    try:
        got = []
        while len(got) < len(tids):
            t = src.get(timeout=5)
            assert t is not None, f"only {len(got)} trains"
            got.append(t)
        st = src.stats()
    finally:
        stop.set()
        src.close()
        for th in threads:
            th.join(timeout=5)
        for s in senders:
            s.close()
    assert sorted(t.train_id for t in got) == tids
    for t in got:
        assert t.data["DET/0"]["image.data"][0, 0] == t.train_id
        if t.train_id == 105:
            assert t.missing == ("b", "DET/1") and "DET/1" not in t.data
        else:
            assert t.data["DET/1"]["image.data"][0, 0] == -t.train_id
            assert t.missing == ()
    m = st["matcher"]["inputs"]
    assert m["a"]["received"] == 20 and m["a"]["matched"] == 20
    assert m["b"]["received"] == 19 and m["b"]["missing"] == 1
    assert st["matcher"]["complete"] == 19 and st["matcher"]["incomplete_accepted"] == 1


def test_config_inputs_and_match_checked() -> None:
    good = """
version = 1
[source]
inputs = [
  {endpoint = "tcp://127.0.0.1:5000"},
  {endpoint = "tcp://127.0.0.1:5001", socket = "PULL", offset = 3},
]
detector = "SCS_DET_DSSC1M-1/DET/{module}CH0:xtdf"
modules = "0-3"
[source.match]
deadline_ms = 150
incomplete = "accept"
"""
    cfg = parse_config(good, "x.toml")
    assert cfg.source.type == "karabo_matched" and source_class(cfg) is MatchedKaraboSource
    assert cfg.source.modules == "0-3" and cfg.source.options["match"]["incomplete"] == "accept"
    bad = {
        "inputs = [{endpoint = 5}]": "x.toml: source.inputs[0].endpoint: expected an endpoint",
        'inputs = [{endpoint = "a", socket = "DEALER"}]': "source.inputs[0].socket",
        'inputs = [{endpoint = "a", port = 1}]': "source.inputs[0].port: expected one of",
        'match = {incomplete = "maybe"}': "source.match.incomplete: expected one of 'drop'",
        "match = {deadline_ms = -1}": "source.match.deadline_ms: expected a positive",
        'modules = "3-1"\ndetector = "D/{module}"': "source.modules: expected a range",
        'modules = "0-3"\ndetector = "D/0CH0"': "source.detector: expected a source name with",
    }
    for line, msg in bad.items():
        with pytest.raises(ConfigError, match=msg.replace("[", r"\[").replace("]", r"\]")):
            text = f"version = 1\n[source]\ntype = 'karabo_matched'\n{line}\n"
            if "inputs" not in line:
                text += "inputs = [{endpoint = 'tcp://127.0.0.1:5000'}]\n"
            source_class(parse_config(text, "x.toml"))


@pytest.mark.timeout(60)
def test_silent_and_flooding_inputs_do_not_stop_the_others(tmp_path: Path) -> None:
    """One input never sends, one floods train ids far ahead: the run goes on, all counted."""
    from beamstream.runner import Runner

    eps = {n: f"ipc://{tmp_path}/{n}.sock" for n in ("det", "silent", "flood")}
    det = [
        Train(t, None, {"DET": {"image.data": np.full((2, 3, 4), t % 7, np.float32)}})
        for t in range(500, 520)
    ]
    flood = [Train(10**9 + k, None, {"FLOOD": {"x": k}}) for k in range(300)]
    stop = threading.Event()
    senders = {n: Sender(e, socket="PUSH") for n, e in eps.items()}
    threads = [
        _sender_thread(senders["det"], det, stop),
        _sender_thread(senders["flood"], flood, stop),
    ]
    text = f"""
version = 1
[source]
detector = "DET"
inputs = [
    {{ endpoint = "{eps["det"]}", socket = "PULL", name = "det" }},
    {{ endpoint = "{eps["silent"]}", socket = "PULL", name = "silent" }},
    {{ endpoint = "{eps["flood"]}", socket = "PULL", name = "flood" }},
]
match = {{ deadline_ms = 100, max_pending = 8, incomplete = "accept" }}
[[processors]]
type = "scan_binner"
"""
    runner = Runner(parse_config(text), status_out=None)
    try:
        status = runner.run(trains=20, duration=30)
        matcher = runner.executor.source.stats()["matcher"]
    finally:
        stop.set()
        for th in threads:
            th.join(timeout=5)
        for s in senders.values():
            s.close()
    assert status["processed"] == 20, status
    inputs = matcher["inputs"]
    assert inputs["det"]["received"] == 20 and inputs["det"]["matched"] == 20
    assert inputs["silent"]["received"] == 0 and inputs["silent"]["missing"] == 20
    # (a flood part that arrives before any other input's first part cannot be judged ahead)
    assert inputs["flood"]["received"] == 300 and inputs["flood"]["ahead"] >= 299
    assert matcher["pending"] <= 8
    assert status["drops"]["flood: ahead"] == inputs["flood"]["ahead"]
    mean = runner.hub.latest().results["scan_binner"]["mean"].data[0, 0]
    assert mean[0, 0] == pytest.approx(np.mean([t % 7 for t in range(500, 520)]))
