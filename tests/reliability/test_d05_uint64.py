"""Defect 5: train ids are unsigned 64-bit everywhere (a train id >= 2**63 froze the file)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np

from beamstream.formats.results import read_records, read_results_file
from beamstream.streamer.protocol import MalformedMessage, decode_train, encode_train
from tests.replay.synth import make_trains
from tests.sinks.test_hdf5 import run_to

BIG = 2**63 + 5


def _big_trains(n: int):
    for i, t in enumerate(make_trains(n)):
        t.train_id = BIG + i
        yield t


def test_train_ids_beyond_int64_are_written(tmp_path: Path) -> None:
    out = tmp_path / "r.h5"
    trains = list(_big_trains(6))
    assert decode_train(encode_train(trains[0])).train_id == BIG
    sink = run_to(out, trains)
    assert sink.health()["write_errors"] == {} and sink.health()["final_written"]
    rf = read_results_file(out)
    assert rf.snapshot["final"] and rf.last_train_id == BIG + 5
    with h5py.File(out) as f:
        prov = f["entry/provenance"]
        assert prov["first_train_id"].dtype == np.uint64
        assert int(prov["first_train_id"][()]) == BIG
        assert int(prov["last_train_id"][()]) == BIG + 5
    ids = read_records(rf.records_paths(), rows=rf.records_rows())["train_id"]
    assert ids.dtype == np.uint64
    assert ids.tolist() == [BIG + i for i in range(6)]


def test_train_id_beyond_uint64_is_malformed() -> None:
    t = next(_big_trains(1))
    t.train_id = 2**64
    try:
        frames = encode_train(t)
    except (OverflowError, TypeError):
        return  # msgpack cannot even write it
    try:
        decode_train(frames)
    except MalformedMessage as e:
        assert e.reason == "no train id"


def test_recordings_replay_train_ids_beyond_int64(tmp_path: Path) -> None:
    from beamstream.formats.raw import RawWriter
    from beamstream.replay.raw import RawReader

    trains = [decode_train(encode_train(t)) for t in _big_trains(4)]
    w = RawWriter(tmp_path / "raw.h5")
    w.write(trains)
    w.close()
    with RawReader(tmp_path / "raw.h5", trains=f"id:{BIG + 1}:{BIG + 3}") as reader:
        back = list(reader)
    assert [t.train_id for t in back] == [BIG + 1, BIG + 2]
    assert decode_train(encode_train(back[0])).train_id == BIG + 1
