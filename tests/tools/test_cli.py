"""The `beamstream` command: help texts, `check`, and a clean stop of `run` on SIGTERM."""

from __future__ import annotations

import signal
import sys
import threading
import time
from pathlib import Path

import pytest

from beamstream.cli import build_parser, main
from beamstream.simulate import DsscSimulator, simulate

ROOT = Path(__file__).resolve().parents[2]
CONFIGS = sorted((ROOT / "config").glob("*.toml"))


def test_every_subcommand_has_help(capsys):
    parser = build_parser()
    commands = parser._subparsers._group_actions[0].choices  # noqa: SLF001 - argparse internals
    expected = {"demo", "run", "check", "simulate", "monitor", "replay", "merge", "report"}
    assert expected <= set(commands)
    for name in commands:
        with pytest.raises(SystemExit) as e:
            main([name, "--help"])
        assert e.value.code == 0
        assert f"usage: beamstream {name}" in capsys.readouterr().out


def test_check_prints_the_resolved_pipelines(capsys):
    assert main(["check", *map(str, CONFIGS)]) == 0
    out = capsys.readouterr().out
    for path in CONFIGS:
        assert f"{path}: version 1" in out
    assert "accumulator binned: ScanBinner" in out or "accumulator binned" in out


def test_check_reports_a_located_error(tmp_path, capsys):
    bad = tmp_path / "bad.toml"
    bad.write_text('version = 1\n[source]\nsocket = "DEALER"\n')
    assert main(["check", str(bad)]) == 1
    err = capsys.readouterr().err
    assert f"{bad}: source.socket: expected one of 'REQ', 'SUB', 'PULL', got 'DEALER'" in err


@pytest.mark.timeout(90)
def test_run_stops_cleanly_on_sigterm_with_a_final_snapshot(
    endpoint, processes, subprocess_env, tmp_path
):
    sim = DsscSimulator(seed=1, frames=8)
    stop = threading.Event()
    server = threading.Thread(
        target=simulate,
        kwargs=dict(detector=sim, endpoint=endpoint, socket="REP", rate=20, stop_event=stop),
        daemon=True,
    )
    server.start()
    out_file = tmp_path / "results.h5"
    argv = [
        sys.executable, "-m", "beamstream", "run", str(ROOT / "config" / "dssc_pump_probe.toml"),
        "--endpoint", endpoint, "--no-dashboard", "-q", "-o", str(out_file),
    ]  # fmt: skip
    try:
        proc = processes.start(argv, env=subprocess_env)
        deadline = time.monotonic() + 60
        while not out_file.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert out_file.exists(), "no results file after the first snapshot"
        time.sleep(1.0)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0
        output = processes.stop(proc)
    finally:
        stop.set()
        server.join(10)
    processed = int(output.split("processed ")[1].split()[0])
    assert processed > 0
    from beamstream.sinks import open_results

    results = open_results(out_file, records=False)
    # the final snapshot holds every processed train
    trains = results.results["binned"]["trains"].values
    assert int(trains.sum()) == processed
