"""Sources are plug-ins selected by `[source] type`; each checks its own parameters."""

from __future__ import annotations

import pytest

from beamstream.cli import main
from beamstream.config import ConfigError, parse_config
from beamstream.runner import Runner
from beamstream.sources import SOURCES, open_source, source_class
from beamstream.sources.karabo import KaraboBridgeSource

CONFIG = """
version = 1
[source]
type = "tests.engine.fake_source:CountingSource"
{options}
detector = "DET/0:xtdf"
key = "image.data"
layout = ["frame", "y", "x"]
[[processors]]
type = "tests.processors.userplugin:FrameTotals"
name = "totals"
[run]
interval = 0.05
status_interval = 100
"""


def config(options: str = "trains = 10"):
    return parse_config(CONFIG.format(options=options), "src.toml")


def test_default_source_is_the_karabo_bridge_receiver():
    cfg = parse_config('version = 1\n[source]\nendpoint = "tcp://127.0.0.1:45999"\n', "k.toml")
    assert cfg.source.type == "karabo_bridge"
    assert source_class(cfg) is KaraboBridgeSource
    assert SOURCES.available()["karabo_bridge"] == "beamstream.sources.karabo:KaraboBridgeSource"
    with open_source(cfg) as src:
        assert src.get(timeout=0.05) is None and not src.closed
        assert src.stats()["received"] == 0


def test_a_plugin_source_runs_and_its_stats_are_counted():
    runner = Runner(config(), status_out=None)
    status = runner.run()
    assert status["processed"] == status["received"] == 10
    assert runner.counters.sources["source"]["received"] == 10
    assert status["drops"] == {"overload": 0}
    assert runner.hub.latest().results["totals"]["frames"].data.tolist() == [[20]]


def test_a_source_event_starts_a_new_epoch():
    runner = Runner(config("trains = 10\nnew_epoch_at = 7"), status_out=None)
    status = runner.run()
    assert status["epoch"] == 1 and status["processed"] == 10
    # the final snapshot holds the new epoch only: trains 7..10, two frames each
    assert runner.hub.latest().results["totals"]["frames"].data.tolist() == [[8]]


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ("trains = 0", "src.toml: source.trains: expected a positive integer, got 0"),
        ("trains = 3\ncolour = 1", "src.toml: source.colour: unknown parameter of 'counting'"),
    ],
)
def test_a_source_checks_its_own_parameters(options, message):
    with pytest.raises(ConfigError, match=message):
        source_class(config(options))


def test_unknown_source_type_and_karabo_options_are_located(tmp_path, capsys):
    with pytest.raises(ConfigError, match="source.type: unknown source type 'nope'"):
        source_class(parse_config('version = 1\n[source]\ntype = "nope"\n', "t.toml"))
    with pytest.raises(ConfigError, match="source.colour: expected one of the keys"):
        parse_config('version = 1\n[source]\ncolour = "red"\n', "t.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text(CONFIG.format(options="trains = -1"))
    assert main(["check", str(bad)]) == 1
    assert "source.trains: expected a positive integer" in capsys.readouterr().err


def test_a_plugin_reader_by_dotted_path_and_unknown_formats(tmp_path):
    from beamstream.replay import READERS, open_reader

    path = tmp_path / "run.counts"
    path.write_text("4")
    with open_reader(path, format="tests.engine.fake_reader:CountsReader", trains="1:4") as r:
        assert [t.data["COUNTER"]["value"] for t in r] == [2, 3, 4]
    with pytest.raises(ValueError, match="unknown reader type 'nope'; known: euxfel, lix, raw"):
        open_reader(path, format="nope")
    assert set(READERS.available()) >= {"raw", "euxfel", "lix", "tiff"}


def test_run_records_raw_trains_through_the_executor(tmp_path):
    from beamstream.replay import open_reader
    from beamstream.tools.run_cmd import run_pipeline

    raw = tmp_path / "rec.h5"
    text = CONFIG.format(options="trains = 6") + f'[[sinks]]\ntype = "raw"\npath = "{raw}"\n'
    status = run_pipeline(parse_config(text, "src.toml"), quiet=True, dashboard=False)
    assert status["processed"] == 6
    with open_reader(raw) as r:
        assert [t.train_id for t in r] == [1, 2, 3, 4, 5, 6]
