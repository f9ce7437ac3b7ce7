"""Raw recorder: trains written unchanged and read back identically."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest

from beamstream.config import parse_config
from beamstream.executors import LocalExecutor
from beamstream.formats.raw import RawWriter
from beamstream.replay import FormatError, open_reader
from beamstream.replay.raw import RawReader
from beamstream.runner import Runner
from beamstream.sinks.recorder import RawRecorder
from beamstream.streamer.protocol import decode_train, encode_train
from beamstream.streamer.train import Train
from tests.replay.synth import CONFIG, DET, MOTOR, assert_same_train, make_train, make_trains


def _wire(trains: list[Train]) -> list[Train]:
    """The trains as a receiver decodes them (what the recorder gets in a live run)."""
    return [decode_train(encode_train(t)) for t in trains]


@pytest.mark.timeout(30)
def test_round_trip_is_identical(tmp_path: Path) -> None:
    trains = _wire(list(make_trains(12)))
    # variable frame counts, a missing source, a 0-d array, a changed trailing shape
    trains.append(decode_train(encode_train(make_train(20000, frames=7))))
    odd = make_train(20001, shape=(5, 5))
    del odd.data[MOTOR]
    del odd.meta[MOTOR]
    odd.data[DET]["image.scalar"] = np.array(3.5)
    odd.timestamp = None
    for m in odd.meta.values():
        for k in ("timestamp", "timestamp.sec", "timestamp.frac"):
            m.pop(k)
    trains.append(decode_train(encode_train(odd)))
    writer = RawWriter(tmp_path / "raw.h5")
    writer.write(trains[:5])
    writer.write(trains[5:])
    writer.close()
    with RawReader(tmp_path / "raw.h5") as reader:
        assert len(reader) == len(trains)
        back = list(reader)
    assert len(back) == len(trains)
    for a, b in zip(trains, back, strict=True):
        assert_same_train(a, b)
    assert back[-1].timestamp is None and back[-1].data[DET]["image.scalar"].shape == ()
    with h5py.File(tmp_path / "raw.h5") as f:  # the documented layout
        assert f.attrs["beamstream_format"] == "beamstream-raw/1"
        np.testing.assert_array_equal(f["index/train_id"][:3], [10000, 10001, 10002])
        det = f"sources/{DET.replace('/', '%2F')}/arrays"
        assert f[f"{det}/image.data/data"].chunks[0] == 4  # one train per chunk
        assert f[f"{det}/image.data/count"][12] == 7
        assert f[f"{det}/image.data@2/count"][13] == 4  # the (5, 5) frames: a second version


@pytest.mark.timeout(30)
def test_selection_reads_only_what_is_asked(tmp_path: Path) -> None:
    writer = RawWriter(tmp_path / "raw.h5")
    writer.write(_wire(list(make_trains(10))))
    writer.close()
    reader = open_reader(tmp_path / "raw.h5", trains="2:8:3", include=[f"{DET}[image.data]"])
    got = list(reader)
    assert [t.train_id for t in got] == [10002, 10005]
    assert list(got[0].data) == [DET] and list(got[0].data[DET]) == ["image.data"]
    by_id = open_reader(
        tmp_path / "raw.h5", trains="id:10007:", include=["*MOTOR*[actualPosition]"]
    )
    got = list(by_id)
    assert [t.train_id for t in got] == [10007, 10008, 10009]
    assert got[0].data == {MOTOR: {"actualPosition.value": 10007 % 3}}


@pytest.mark.timeout(30)
def test_recorder_sink_in_a_run(tmp_path: Path) -> None:
    pytest.importorskip("hdf5plugin")
    config = parse_config(CONFIG, "t.toml")
    rec = RawRecorder(str(tmp_path / "rec.h5"), compression="lz4")
    trains = _wire(list(make_trains(30)))
    Runner(config, LocalExecutor(trains, recorders=[rec]), status_out=None).run()
    assert rec.recorded == 30 and rec.dropped == 0 and rec.errors == 0
    back = list(RawReader(tmp_path / "rec.h5"))
    for a, b in zip(trains, back, strict=True):
        assert_same_train(a, b)


@pytest.mark.timeout(30)
def test_bad_files_give_clear_errors(tmp_path: Path) -> None:
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(OSError, match=r"text\.h5: not a readable HDF5 file"):
        RawReader(tmp_path / "text.h5")
    with h5py.File(tmp_path / "other.h5", "w") as f:
        f["x"] = 1
    with pytest.raises(FormatError, match=r"other\.h5: not a beamstream raw recording"):
        RawReader(tmp_path / "other.h5")
    with pytest.raises(FormatError, match=r"other\.h5: unknown HDF5 layout \(expected"):
        open_reader(tmp_path / "other.h5")
    with pytest.raises(OSError, match="no such file"):
        open_reader(tmp_path / "missing.h5")
    # truncated: a recording cut short on disk
    writer = RawWriter(tmp_path / "raw.h5", swmr=False)
    writer.write(_wire(list(make_trains(5))))
    writer.close()
    data = (tmp_path / "raw.h5").read_bytes()
    (tmp_path / "cut.h5").write_bytes(data[: len(data) // 3])
    with pytest.raises(OSError, match=r"cut\.h5: not a readable HDF5 file"):
        RawReader(tmp_path / "cut.h5")


@pytest.mark.timeout(30)
def test_corrupt_dataset_skips_that_train(tmp_path: Path) -> None:
    writer = RawWriter(tmp_path / "raw.h5", compression="gzip")
    writer.write(_wire(list(make_trains(6, shape=(64, 64)))))
    writer.close()
    with h5py.File(tmp_path / "raw.h5") as f:
        ds = f[f"sources/{DET.replace('/', '%2F')}/arrays/image.data/data"]
        offset = ds.id.get_chunk_info(2).byte_offset  # train 2's chunk
    with open(tmp_path / "raw.h5", "r+b") as fh:
        fh.seek(offset)
        fh.write(b"\xff" * 64)
    reader = RawReader(tmp_path / "raw.h5")
    got = [t.train_id for t in reader]
    assert got == [10000, 10001, 10003, 10004, 10005]
    assert reader.skipped == 1
