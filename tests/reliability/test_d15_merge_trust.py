"""Defect 15: `beamstream merge` imports only registered plug-in processors from the configs
stored in its input files; a dotted path (code named by the file) needs ``--trust``."""

from __future__ import annotations

import sys
from pathlib import Path

from beamstream.cli import main
from beamstream.formats.results import read_results_file
from beamstream.formats.results_writer import write_results_file
from tests.replay.synth import CONFIG, make_trains
from tests.sinks.test_hdf5 import run_to

EVIL = """
from pathlib import Path
Path({marker!r}).write_text("ran")
"""


def _foreign_file(path: Path, module: str) -> None:
    """A results file from elsewhere whose stored config names a module of its choosing."""
    text = CONFIG.replace("tests.processors.userplugin:FrameTotals", f"{module}:Totals")
    write_results_file(
        path,
        config_text=text,
        config_path="elsewhere.toml",
        results={},
        states={},
        segments=[],
        snapshot={"seq": 1, "time": 0.0, "epoch": 0, "final": True},
    )


def test_merge_refuses_unregistered_processors(tmp_path: Path, monkeypatch, capsys) -> None:
    marker = tmp_path / "marker"
    (tmp_path / "evil_plugin_x.py").write_text(EVIL.format(marker=str(marker)))
    monkeypatch.syspath_prepend(str(tmp_path))
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    _foreign_file(a, "evil_plugin_x")
    _foreign_file(b, "evil_plugin_x")
    assert main(["merge", str(a), str(b), "-o", str(tmp_path / "m.h5")]) == 1
    err = capsys.readouterr().err
    assert "evil_plugin_x:Totals" in err and "--trust" in err
    assert not marker.exists() and "evil_plugin_x" not in sys.modules  # nothing was imported


def test_merge_with_trust_and_registered_types(tmp_path: Path, capsys) -> None:
    trains = list(make_trains(20))
    a, b = tmp_path / "a.h5", tmp_path / "b.h5"
    run_to(a, trains[:10])
    run_to(b, trains[10:])
    out = tmp_path / "m.h5"
    # the test config names a user plug-in by its dotted path: refused, then trusted
    assert main(["merge", str(a), str(b), "-o", str(out)]) == 1
    assert "tests.processors.userplugin:FrameTotals" in capsys.readouterr().err
    assert main(["merge", str(a), str(b), "-o", str(out), "--trust"]) == 0
    assert sum(s["processed"] for s in read_results_file(out).segments) == 20
    registered = CONFIG.replace(
        '[[processors]]\ntype = "tests.processors.userplugin:FrameTotals"\nname = "totals"\n', ""
    )
    c, d = tmp_path / "c.h5", tmp_path / "d.h5"
    run_to(c, trains[:10], registered)
    run_to(d, trains[10:], registered)
    assert main(["merge", str(c), str(d), "-o", str(tmp_path / "n.h5")]) == 0  # no --trust
