"""Runs that process nothing say why and exit non-zero; config typos get a did-you-mean."""

from __future__ import annotations

import io
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from beamstream.cli import main
from beamstream.config import ConfigError, load_config, parse_config
from beamstream.diagnose.probe import probe_endpoint
from beamstream.diagnose.suggest import did_you_mean
from beamstream.runner import Runner
from beamstream.simulate import DsscSimulator, simulate
from beamstream.streamer.sender import Sender
from beamstream.tools.run_cmd import run_with_diagnosis

ROOT = Path(__file__).resolve().parents[2]
DSSC = ROOT / "config" / "dssc_pump_probe.toml"


@contextmanager
def dssc_source(endpoint: str, socket: str = "REP", rate: float = 20) -> Iterator[None]:
    """A DSSC simulator serving ``endpoint`` in a thread, stopped on exit."""
    stop = threading.Event()
    server = threading.Thread(
        target=simulate,
        kwargs=dict(
            detector=DsscSimulator(seed=1, frames=4),
            endpoint=endpoint,
            socket=socket,
            rate=rate,
            stop_event=stop,
        ),
        daemon=True,
    )
    server.start()
    try:
        yield
    finally:
        stop.set()
        server.join(10)
    assert not server.is_alive()


def run(capsys: pytest.CaptureFixture, *args: str) -> tuple[int, str]:
    code = main(["run", *args, "--no-dashboard", "-q"])
    captured = capsys.readouterr()
    return code, captured.err


def test_nothing_listening(endpoint, capsys):
    code, err = run(capsys, str(DSSC), "--endpoint", endpoint, "--duration", "1.5")
    assert code == 1
    assert "no train was processed (0 message(s) received" in err
    assert f"why: nothing listening at {endpoint}" in err


def test_nothing_listening_on_tcp(tcp_endpoint, capsys):
    code, err = run(capsys, str(DSSC), "--endpoint", tcp_endpoint, "--duration", "1.5")
    assert code == 1
    assert f"why: nothing listening at {tcp_endpoint}" in err


def test_wrong_socket_pattern(endpoint, capsys):
    with dssc_source(endpoint, "REP"):
        code, err = run(
            capsys, str(DSSC), "--endpoint", endpoint, "--socket", "SUB", "--duration", "1.5"
        )
    assert code == 1
    assert "why: wrong socket pattern: the source at" in err
    assert "is a REP socket, which a SUB client cannot read" in err
    assert "source.socket = 'REQ' (--socket REQ)" in err


def test_listening_but_silent(endpoint, capsys):
    with Sender(endpoint, socket="PUB"):  # a PUB source that never sends
        code, err = run(
            capsys, str(DSSC), "--endpoint", endpoint, "--socket", "SUB", "--duration", "1.5"
        )
    assert code == 1
    assert "(it accepts SUB) but sent no train" in err


def test_all_trains_rejected_names_the_reason_and_what_arrived(endpoint, tmp_path, capsys):
    config = tmp_path / "typo.toml"
    config.write_text(DSSC.read_text().replace("0CH0:xtdf", "0CH0:xtd"))
    with dssc_source(endpoint):
        code, err = run(capsys, str(config), "--endpoint", endpoint, "--trains", "5")
    assert code == 1
    assert "why: all trains rejected: detector data missing (5)" in err
    assert (
        "SCS_DET_DSSC1M-1/DET/0CH0:xtd [image.data]: source not in the stream "
        "(did you mean 'SCS_DET_DSSC1M-1/DET/0CH0:xtdf'?)" in err
    )
    # the other inputs were found, with their types; the monitor's table lists what arrived
    assert "SCS_BLU_XGM/XGM/DOOCS:output [data.intensityTD]: found, float32[1000]" in err
    assert "image.data                       uint16[4, 128, 512]" in err


def test_a_misspelt_key_gets_a_suggestion(endpoint, tmp_path, capsys):
    config = tmp_path / "typo.toml"
    config.write_text(DSSC.read_text().replace('key = "actualPosition"', 'key = "actualPositon"'))
    with dssc_source(endpoint):
        code, err = run(capsys, str(config), "--endpoint", endpoint, "--trains", "3")
    assert code == 1
    assert "all trains rejected" in err
    assert "[actualPositon]: key not in this source (did you mean 'actualPosition'?)" in err


def test_the_explanation_comes_during_the_run_too(endpoint):
    config = load_config(DSSC).with_source(endpoint=endpoint).with_run(explain_after=0.5)
    out = io.StringIO()
    runner = Runner(config, status_out=out)
    status = run_with_diagnosis(runner, [], duration=1.5)
    assert status["processed"] == 0
    assert "beamstream run: after 0.5 s, no train was processed" in out.getvalue()
    assert "nothing listening" in status["explanation"]
    # the dashboard header shows the same reason
    assert runner.hub.info["diagnosis"].startswith(f"nothing listening at {endpoint}")


def test_a_run_that_processes_trains_exits_zero(endpoint, capsys):
    with dssc_source(endpoint):
        code = main(["run", str(DSSC), "--endpoint", endpoint, "--trains", "3", "--no-dashboard"])
    captured = capsys.readouterr()
    assert code == 0
    assert "processed 3 trains" in captured.out
    assert "first train processed" in captured.out
    assert "why:" not in captured.err


def test_probe_tells_the_server_pattern(endpoint):
    assert probe_endpoint(endpoint).listening is False
    for server, client in (("REP", "REQ"), ("PUB", "SUB"), ("PUSH", "PULL")):
        with Sender(endpoint, socket=server):
            found = probe_endpoint(endpoint)
        assert found.listening and found.accepts == (client,), (server, found)


def test_config_typos_get_did_you_mean():
    with pytest.raises(
        ConfigError, match=r"source\.endpont: .*'unknown key' \(did you mean 'endpoint'\?\)"
    ):
        parse_config('version = 1\n[source]\nendpont = "tcp://127.0.0.1:1"\n')
    with pytest.raises(
        ConfigError, match=r"run\.intervall: .*'unknown key' \(did you mean 'interval'\?\)"
    ):
        parse_config("version = 1\n[run]\nintervall = 1\n")
    assert (
        did_you_mean("image.dat", ["image.data", "image.cellId"]) == " (did you mean 'image.data'?)"
    )
    assert did_you_mean("zzz", ["image.data"]) == ""


def test_processor_typos_get_did_you_mean(tmp_path):
    from beamstream.processors.pipeline import Pipeline

    bad = parse_config('version = 1\n[[processors]]\ntype = "scan_biner"\n')
    with pytest.raises(
        ConfigError, match=r"unknown processor type 'scan_biner' \(did you mean 'scan_binner'\?\)"
    ):
        Pipeline(bad)
    bad = parse_config('version = 1\n[[processors]]\ntype = "scan_binner"\ndark_substract = true\n')
    with pytest.raises(
        ConfigError, match=r"dark_substract: unknown parameter \(did you mean 'dark_subtract'\?\)"
    ):
        Pipeline(bad)


def test_a_listener_that_is_not_zeromq(tcp_endpoint, capsys):
    import socket as pysocket

    host, port = tcp_endpoint.removeprefix("tcp://").split(":")
    with pysocket.socket() as server:
        server.bind((host, int(port)))
        server.listen(8)
        code, err = run(capsys, str(DSSC), "--endpoint", tcp_endpoint, "--duration", "1.5")
    assert code == 1
    assert f"why: something listens at {tcp_endpoint} but no ZeroMQ" in err
