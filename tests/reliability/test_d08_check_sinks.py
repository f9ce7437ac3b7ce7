"""Defect 8: `beamstream check` refuses every sink misconfiguration that `run` refuses, and the
error names the file, the sink table and the problem."""

from __future__ import annotations

from pathlib import Path

import pytest

from beamstream.cli import main

BASE = """
version = 1
[source]
endpoint = "ipc:///unused"
socket = "PULL"
[[processors]]
type = "tests.processors.userplugin:FrameTotals"
name = "totals"
[[sinks]]
type = "console"
"""

BAD_SINKS = {
    "unknown parameter": '[[sinks]]\ntype = "hdf5"\ncompresion = "gzip"\n',
    "unknown compression": '[[sinks]]\ntype = "hdf5"\ncompression = "zip"\n',
    "unknown type": '[[sinks]]\ntype = "hdf6"\n',
    "bad port": '[[sinks]]\ntype = "dashboard"\nport = 70000\n',
    "missing mask": '[[sinks]]\ntype = "dashboard"\nmask = "no-such-mask.npy"\n',
}


@pytest.mark.parametrize("case", list(BAD_SINKS))
def test_check_refuses_what_run_refuses(tmp_path: Path, case: str, capsys) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text(BASE + BAD_SINKS[case])
    assert main(["check", str(cfg)]) == 1
    err = capsys.readouterr().err
    assert f"{cfg}: sinks[1] (" in err, err
    assert main(["run", str(cfg), "--trains", "1", "--timeout", "1", "-q", "--no-dashboard"]) == 1
    assert f"{cfg}: sinks[1] (" in capsys.readouterr().err


def test_check_passes_good_sinks(tmp_path: Path, capsys) -> None:
    cfg = tmp_path / "p.toml"
    cfg.write_text(BASE + '[[sinks]]\ntype = "hdf5"\npath = "out.h5"\ncompression = "gzip"\n')
    assert main(["check", str(cfg)]) == 0
    assert "sink        hdf5" in capsys.readouterr().out
    assert not (tmp_path / "out.h5").exists()  # checking writes nothing
