"""Merge refuses overlapping train ids (or counts them) and unregistered processors."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from beamstream.config import parse_config
from beamstream.executors import LocalExecutor
from beamstream.formats.results import merge_results, open_results
from beamstream.runner import Runner
from beamstream.sinks.hdf5 import HDF5Sink
from beamstream.tools import merge_cmd
from tests.replay.synth import CONFIG, FIRST, make_trains


def run_to(path: Path, trains) -> None:
    sink = HDF5Sink(str(path), fsync=False)
    Runner(parse_config(CONFIG, "t.toml"), LocalExecutor(trains), [sink], status_out=None).run()


def cli(argv: list[str]) -> int:
    parser = argparse.ArgumentParser()
    merge_cmd.register(parser.add_subparsers())
    args = parser.parse_args(argv)
    return args.func(args)


@pytest.mark.timeout(60)
def test_overlapping_train_ids_are_refused_or_counted(tmp_path, userplugin_registered, capsys):
    trains = list(make_trains(30))
    run_to(tmp_path / "a.h5", trains[:20])
    run_to(tmp_path / "b.h5", trains[10:])  # trains 10..19 in both
    run_to(tmp_path / "a_again.h5", trains[:20])
    with pytest.raises(ValueError, match=r"share 10 train ids in .*: 10 trains would be counted"):
        merge_results([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "c.h5")
    assert not (tmp_path / "c.h5").exists()
    with pytest.raises(ValueError, match=r"20 trains would be counted twice"):
        merge_results([tmp_path / "a.h5", tmp_path / "a_again.h5"], tmp_path / "c.h5")
    rf = merge_results(
        [tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "c.h5", allow_overlap=True
    )
    assert rf.overlap_trains == 10
    assert open_results(tmp_path / "c.h5").provenance["processed"] == 40  # 10 counted twice
    out = str(tmp_path / "d.h5")
    assert (
        cli(
            [
                "merge",
                str(tmp_path / "a.h5"),
                str(tmp_path / "a_again.h5"),
                "-o",
                out,
                "--allow-overlap",
            ]
        )
        == 0
    )
    assert "warning: 20 trains were in more than one file" in capsys.readouterr().out


@pytest.mark.timeout(60)
def test_overlap_from_ranges_without_records(tmp_path, userplugin_registered):
    trains = list(make_trains(12))
    for name, part in (("a", trains[:8]), ("b", trains[4:])):
        sink = HDF5Sink(str(tmp_path / f"{name}.h5"), fsync=False, records=False)
        Runner(parse_config(CONFIG, "t.toml"), LocalExecutor(part), [sink], status_out=None).run()
    with pytest.raises(ValueError, match=rf"share up to 4 train ids in {FIRST + 4}-{FIRST + 7}"):
        merge_results([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "c.h5")


@pytest.mark.timeout(60)
def test_only_registered_processors_are_merged(tmp_path):
    trains = list(make_trains(8))
    run_to(tmp_path / "a.h5", trains[:4])
    run_to(tmp_path / "b.h5", trains[4:])
    # FrameTotals is given by a dotted path no installed package registers: refused, unloaded
    with pytest.raises(
        ValueError,
        match=r"a\.h5: processors 'tests\.processors\.userplugin:"
        r"FrameTotals' are not registered plug-ins",
    ):
        merge_results([tmp_path / "a.h5", tmp_path / "b.h5"], tmp_path / "c.h5")
    assert not (tmp_path / "c.h5").exists()
