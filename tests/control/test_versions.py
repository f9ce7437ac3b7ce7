"""The version log: HDF5 round trip, lookup by train id, saved beside the results atomically."""

from __future__ import annotations

import os
from pathlib import Path

import h5py
import pytest

from beamstream.control.ctl_cmd import parse_assignment
from beamstream.control.persist import applied_paths, load_applied, save_applied
from beamstream.control.versions import Version, VersionLog, read_versions, write_versions


def _log() -> VersionLog:
    log = VersionLog.start("version = 1\n", 100.0)
    log.last.first_train_id, log.last.last_train_id, log.last.trains = 5, 19, 15
    log.add(
        Version(
            2,
            "version = 1\n# b\n",
            "new_segment",
            1,
            "a = 1",
            "ctl@127.0.0.1",
            101.5,
            102.0,
            20,
            2**63 + 7,
            3,
        )
    )
    log.add(Version(3, "version = 1\n# c\n", "compatible", 1, "b = 2", "dashboard", 103.0))
    return log


def test_hdf5_round_trip(tmp_path: Path):
    path = tmp_path / "r.h5"
    with h5py.File(path, "w") as f:
        write_versions(f.create_group("entry"), _log())
    back = read_versions(str(path))
    assert [v.to_dict() for v in back] == [v.to_dict() for v in _log()]
    assert back.list()[1].last_train_id == 2**63 + 7  # unsigned 64-bit train ids
    with h5py.File(path, "r") as f:
        assert f["entry/control"].attrs["current_version"] == 3
    assert len(read_versions(str(tmp_path / "r.h5").replace("r.h5", "r.h5"))) == 3


def test_version_for_a_train():
    log = _log()
    assert log.version_for(3).number == 1
    assert log.version_for(19).number == 1
    assert log.version_for(20).number == 2
    assert log.version_for(10**6).number == 2  # version 3 never reached a train
    assert [v.number for v in log.applied()] == [1, 2]


def test_saved_beside_the_results_atomically(tmp_path: Path):
    results = tmp_path / "run.h5"
    assert load_applied(results) is None
    save_applied(results, _log())
    log_path, toml_path = applied_paths(results)
    assert log_path.name == "run.versions.json" and toml_path.name == "run.applied.toml"
    assert toml_path.read_text() == "version = 1\n# b\n"  # the last applied version
    assert [v.number for v in load_applied(results)] == [1, 2, 3]
    assert not [p for p in os.listdir(tmp_path) if p.startswith(".")]  # no temporary left
    log_path.write_text("{broken")
    with pytest.raises(ValueError, match="not a beamstream version log"):
        load_applied(results)


def test_ctl_assignments_take_toml_values():
    assert parse_assignment("a.b[0].min=200") == ("a.b[0].min", 200)
    assert parse_assignment('p=["a", "b"]') == ("p", ["a", "b"])
    assert parse_assignment("mode=exact") == ("mode", "exact")
    with pytest.raises(ValueError, match="KEY=VALUE"):
        parse_assignment("novalue")
