"""Pipeline TOML files: parsing, located error messages, every file in config/ loads."""

from __future__ import annotations

from pathlib import Path

import pytest

from beamstream.config import ConfigError, load_config, parse_config
from beamstream.dectris.geometry import needs_stream_geometry, resolve_config
from beamstream.dectris.source import DectrisSource
from beamstream.processors.pipeline import Pipeline
from tests.dectris.helpers import simulated_start

CONFIG_DIR = Path(__file__).resolve().parents[1] / "config"

GOOD = """
version = 1
[source]
endpoint = "ipc:///tmp/x"
socket = "PULL"
detector = "DET/0:xtdf"
key = "image.data"
layout = ["frame", "ss", "fs"]
[[processors]]
type = "tests.processors.userplugin:FrameTotals"
name = "totals"
scale = 2
[run]
interval = 0.5
"""


def test_good_config_loads_into_frozen_dataclasses():
    cfg = parse_config(GOOD, "good.toml")
    assert cfg.source.socket == "PULL"
    assert cfg.source.layout == ("frame", "ss", "fs")
    assert cfg.processors[0].name == "totals"
    assert dict(cfg.processors[0].params) == {"scale": 2}
    assert cfg.run.interval == 0.5
    with pytest.raises(AttributeError):
        cfg.source.socket = "SUB"  # frozen
    assert cfg.with_source(socket="SUB").source.socket == "SUB"


@pytest.mark.parametrize(
    "change, message",
    [
        ('socket = "PULL"', None),
        (
            'socket = "DEALER"',
            "bad.toml: source.socket: expected one of 'REQ', 'SUB', 'PULL', got 'DEALER'",
        ),
        ("queue = 0", "bad.toml: source.queue: expected a positive integer, got 0"),
        ("queue = -3", "bad.toml: source.queue: expected a non-negative integer, got -3"),
        ('colour = "red"', "bad.toml: source.colour: expected one of the keys"),
        ('socket = "PULL"\nlayout2 = 1', "bad.toml: source.layout2: expected one of the keys"),
    ],
)
def test_source_errors_name_file_table_key(change, message):
    text = GOOD.replace('socket = "PULL"', change)
    if message is None:
        parse_config(text, "bad.toml")
        return
    with pytest.raises(ConfigError) as e:
        parse_config(text, "bad.toml")
    assert str(e.value).startswith(message)


def test_layout_must_be_a_list():
    text = GOOD.replace('layout = ["frame", "ss", "fs"]', 'layout = "frame"')
    with pytest.raises(ConfigError) as e:
        parse_config(text, "bad.toml")
    assert str(e.value) == "bad.toml: source.layout: expected a list of strings, got 'frame'"


def test_processor_parameter_error_is_located():
    text = GOOD.replace("scale = 2", "scale = -3")
    with pytest.raises(ConfigError) as e:
        Pipeline(parse_config(text, "config/x.toml"))
    assert str(e.value) == (
        "config/x.toml: processors[0] (tests.processors.userplugin:FrameTotals).scale: "
        "expected a positive integer, got -3"
    )


def test_unknown_processor_parameter_is_an_error():
    text = GOOD.replace("scale = 2", "sclae = 2")
    with pytest.raises(ConfigError, match=r"processors\[0\].*\.sclae: unknown parameter"):
        Pipeline(parse_config(text, "x.toml"))


def test_version_checks():
    with pytest.raises(ConfigError, match="version: expected an integer"):
        parse_config(GOOD.replace("version = 1", ""), "x.toml")
    with pytest.raises(ConfigError, match="version: expected at most 1"):
        parse_config(GOOD.replace("version = 1", "version = 7"), "x.toml")


def test_not_toml_and_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="x.toml: not valid TOML"):
        parse_config("version = = 1", "x.toml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "nope.toml")


def test_duplicate_processor_names():
    text = (
        GOOD
        + '\n[[processors]]\ntype = "tests.processors.userplugin:FrameTotals"\nname = "totals"\n'
    )
    # TOML appends the second table to the array; [run] came before, so rebuild the order
    text = text.replace("[run]\ninterval = 0.5\n", "") + "[run]\ninterval = 0.5\n"
    with pytest.raises(ConfigError, match=r"processors\[1\].*name: expected a name not used"):
        parse_config(text, "x.toml")


def test_scan_table_checks():
    base = GOOD + '[scan]\nsource = "MOTOR"\nkey = "pos"\n'
    assert parse_config(base + "stepsize = 0.5\n").scan.stepsize == 0.5
    with pytest.raises(ConfigError, match="scan.edges: expected at least 2 increasing numbers"):
        parse_config(base + "edges = [3, 1]\n", "x.toml")
    with pytest.raises(ConfigError, match="scan.key: expected a value, got 'nothing'"):
        parse_config(GOOD + '[scan]\nsource = "MOTOR"\n', "x.toml")


def test_every_file_in_config_dir_builds():
    files = sorted(CONFIG_DIR.glob("*.toml"))
    assert files, "config/ holds example pipelines"
    for path in files:
        cfg = load_config(path)
        if cfg.source.type == "dectris":
            DectrisSource.check(cfg.source, str(path))
        if needs_stream_geometry(cfg):  # as when the detector's series starts
            cfg, applied = resolve_config(cfg, simulated_start())
            assert applied
        pipeline = Pipeline(cfg)
        assert pipeline.accumulators, f"{path.name} has no accumulator"
