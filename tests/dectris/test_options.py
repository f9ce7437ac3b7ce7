"""`[source] type = "dectris"` options: located errors; the CLI simulator."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from beamstream.config import ConfigError, parse_config
from beamstream.dectris.source import DectrisSource
from beamstream.simulate.cli import main as simulate_main

BASE = 'version = 1\n[source]\ntype = "dectris"\nsocket = "PULL"\n'


@pytest.mark.parametrize(
    "extra,message",
    [
        ('stream = "v3"', "source.stream: expected 'v2' (CBOR) or 'v1' (legacy), got 'v3'"),
        ("frames_per_train = 0", "source.frames_per_train: expected a positive integer, got 0"),
        ("threads = true", "source.threads: expected a positive integer, got True"),
        ("bogus = 1", "source.bogus: expected one of the dectris options"),
        ("series_epoch = 1", "source.series_epoch: expected true or false, got 1"),
        ("flush_timeout = -1", "source.flush_timeout: expected a positive number"),
        ("positions = 3", "source.positions: expected a table"),
        ('positions = { from = "ftp" }', "source.positions.from: expected 'user_data'"),
        ('positions = { from = "user_data" }', "source.positions.motors: expected a non-empty"),
        (
            'positions = { from = "table", path = "/nonexistent.csv" }',
            "source.positions.table: cannot read /nonexistent.csv",
        ),
        (
            "limits = { max_array_bytes = 0 }",
            "source.limits.max_array_bytes: expected a positive integer, got 0",
        ),
        ("limits = { max_bytes = 5 }", "source.limits.max_bytes: expected one of"),
        ("record = 5", "source.record: expected a path prefix"),
        ('relay_host = "tcp://x"', "source.relay_host: expected an interface name or address"),
    ],
)
def test_bad_options_are_located(extra, message):
    cfg = parse_config(BASE + extra + "\n", "x.toml")
    with pytest.raises(ConfigError) as info:
        DectrisSource.check(cfg.source, "x.toml")
    assert str(info.value).startswith("x.toml: ") and message in str(info.value)


def test_push_socket_refused():
    cfg = parse_config(BASE.replace('"PULL"', '"SUB"'), "x.toml")
    with pytest.raises(ConfigError, match="source.socket: expected 'PULL'"):
        DectrisSource.check(cfg.source, "x.toml")


def test_options_build_the_source(endpoint):
    cfg = parse_config(BASE + 'frames_per_train = 3\nstream = "v1"\nlimits = { max_ndim = 2 }\n'
                       f'endpoint = "{endpoint}"\ndetector = "pilatus"\n')  # fmt: skip
    with DectrisSource.from_config(cfg.source) as src:
        assert (src.stream, src.name, src.tracker.frames_per_train) == ("v1", "pilatus", 3)
        assert src.limits.max_ndim == 2 and src.stats()["received"] == 0


@pytest.mark.timeout(60)
def test_simulate_cli_eiger_v1(endpoint):
    argv = [
        "simulate",
        "--detector",
        "eiger",
        "--stream",
        "v1",
        "--compression",
        "lz4",
        "--socket",
        "PUSH",
        "--endpoint",
        endpoint,
        "--trains",
        "3",
        "--rate",
        "0",
        "-q",
    ]
    rc: list[int] = []
    with DectrisSource(endpoint, stream="v1") as src:
        t = threading.Thread(target=lambda: rc.append(simulate_main(argv)), daemon=True)
        t.start()
        trains = [src.get(timeout=30) for _ in range(3)]
        t.join(30)
    assert rc == [0]
    assert all(tr is not None for tr in trains)
    a = trains[2].data["eiger"]["image.data"]
    assert a.shape == (1, 1024, 1024) and a.dtype == np.uint32
    assert trains[2].data["eiger"]["image_id"].tolist() == [2]


def test_simulate_cli_refuses_bad_combinations(capsys):
    assert simulate_main(["simulate", "-d", "eiger", "--stream", "v1", "--channels", "2"]) == 2
    assert "one image per frame" in capsys.readouterr().err
    assert simulate_main(["simulate", "-d", "eiger", "--socket", "PUB"]) == 2
