"""Optional CURVE security: `beamstream keys`, encrypted and authenticated streams between the
sender (simulator, replay) and the receiver (runs, Dask workers: built from the config)."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import zmq

from beamstream.cli import main
from beamstream.config import load_config
from beamstream.runner import Runner
from beamstream.streamer import Receiver, Sender, Train
from beamstream.streamer.curve import CurveClient, CurveServer, curve_available, generate_keys
from beamstream.streamer.receiver import receiver_for

pytestmark = pytest.mark.skipif(not curve_available(), reason="libzmq without CURVE")


def _train(tid: int) -> Train:
    return Train(tid, 1.7e9, {"DET": {"image.data": np.full((2, 4, 5), tid, np.uint16)}})


@pytest.fixture
def keys(tmp_path: Path) -> dict[str, Path]:
    return generate_keys(tmp_path / "keys", clients=2)


def _feed(sender: Sender, stop: threading.Event) -> None:
    tid = 1
    while not stop.is_set():
        if sender.send(_train(tid), timeout=0.1):
            tid += 1


@pytest.mark.timeout(60)
@pytest.mark.parametrize("kind", ["PULL", "REQ"])
def test_authorized_client_receives_others_do_not(keys, endpoint: str, kind: str) -> None:
    server = CurveServer.from_files(keys["server_secret"], keys["authorized"])
    sender = Sender(endpoint, socket={"PULL": "PUSH", "REQ": "REP"}[kind], curve=server)
    stop = threading.Event()
    feeder = threading.Thread(target=_feed, args=(sender, stop))
    feeder.start()
    good = CurveClient.from_files(keys["server"], keys["client_secret"])
    # a stranger: a valid key pair of its own, not among the authorized ones
    stranger_keys = generate_keys(keys["server"].parent.parent / "other")
    stranger = CurveClient.from_files(keys["server"], stranger_keys["client_secret"])
    receivers = {
        "good": Receiver(endpoint, kind, curve=good, request_timeout=1.0),
        "plain": Receiver(endpoint, kind, request_timeout=1.0),
        "stranger": Receiver(endpoint, kind, curve=stranger, request_timeout=1.0),
    }
    try:
        assert receivers["good"].get(10) is not None
        time.sleep(1.0)
        assert receivers["plain"].get(0.1) is None
        assert receivers["stranger"].get(0.1) is None
        assert receivers["plain"].stats()["received"] == 0
        assert receivers["stranger"].stats()["received"] == 0
    finally:
        for rx in receivers.values():
            rx.close()
        stop.set()
        feeder.join(10)
        sender.close()


def test_keys_command(tmp_path: Path, capsys) -> None:
    d = tmp_path / "k"
    assert main(["keys", str(d)]) == 0
    names = sorted(p.name for p in d.iterdir())
    assert names == [
        "authorized",
        "client.key",
        "client.key_secret",
        "server.key",
        "server.key_secret",
    ]
    assert (d / "authorized" / "client.key").is_file()
    assert (d / "server.key_secret").stat().st_mode & 0o077 == 0
    assert main(["keys", str(d)]) == 1  # never overwritten
    assert "exists already" in capsys.readouterr().err


@pytest.mark.timeout(90)
def test_run_receives_from_curve_simulator(
    keys, tcp_endpoint: str, tmp_path: Path, processes, subprocess_env
) -> None:
    """The simulator serves with CURVE; a pipeline run receives through its config's keys
    (relative to the config file), as Dask workers do (`receiver_for`)."""
    cfg = keys["server"].parent.parent / "p.toml"
    cfg.write_text(
        f"""
version = 1
[source]
endpoint = "{tcp_endpoint}"
socket = "REQ"
detector = "SPB_DET_AGIPD1M-1/DET/0CH0:xtdf"
curve_server_key = "keys/server.key"
curve_client_key = "keys/client2.key_secret"
[run]
status_interval = 100
"""
    )
    argv = [sys.executable, "-m", "beamstream", "simulate", "-d", "saxs", "-e", tcp_endpoint]
    argv += ["-r", "0", "-q", "--curve-secret", str(keys["server_secret"])]
    argv += ["--curve-clients", str(keys["authorized"])]
    proc = processes.start(argv, env=subprocess_env)
    config = load_config(cfg)
    assert receiver_for(config, start=False).curve is not None
    status = Runner(config, status_out=None).run(trains=3, duration=60)
    processes.stop(proc)
    assert status["received"] >= 3


def test_half_configured_keys_are_refused(tmp_path: Path) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text('version = 1\n[source]\ncurve_server_key = "server.key"\n')
    with pytest.raises(ValueError, match="go together"):
        receiver_for(load_config(cfg), start=False)
    with pytest.raises(ValueError, match="no such key file"):
        CurveServer.from_files(tmp_path / "missing.key_secret")


def test_zmq_curve_sockets_really_encrypt(keys) -> None:
    sock = zmq.Context.instance().socket(zmq.PULL)
    try:
        CurveClient.from_files(keys["server"], keys["client_secret"]).apply(sock)
        assert sock.get(zmq.MECHANISM) == zmq.CURVE
    finally:
        sock.close(0)
