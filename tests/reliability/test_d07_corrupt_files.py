"""Defect 7 and the corrupt-file suite: damaged metadata gives a located error (never a raw
KeyError traceback) in replay, resume, merge and report; damaged pixel data is detected by the
per-train CRC-32 of raw recordings and the train is skipped and counted.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest

from beamstream.cli import main
from beamstream.config import parse_config
from beamstream.formats.raw import RawWriter
from beamstream.formats.results import load_resume, read_results_file
from beamstream.replay.base import FormatError
from beamstream.replay.raw import RawReader
from beamstream.streamer.protocol import decode_train, encode_train
from tests.replay.synth import CONFIG, DET, make_trains
from tests.sinks.test_hdf5 import run_to

DAMAGE = {
    "no snapshot": lambda f: f.__delitem__("entry/snapshot"),
    "no provenance": lambda f: f.__delitem__("entry/provenance"),
    "bad segments": lambda f: f["entry/provenance"].attrs.__setitem__("segments_json", "{]"),
    "segments not a list": lambda f: f["entry/provenance"].attrs.__setitem__("segments_json", "42"),
    "state tree": lambda f: [f["entry/states"][g].clear() for g in f["entry/states"]],
}


@pytest.fixture(scope="module")
def good(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("good") / "r.h5"
    run_to(out, list(make_trains(10)))
    return out


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_results_metadata_is_a_located_error(
    good: Path, tmp_path: Path, damage: str, capsys
) -> None:
    bad = tmp_path / "bad.h5"
    shutil.copy(good, bad)
    with h5py.File(bad, "a") as f:
        DAMAGE[damage](f)
    with pytest.raises(ValueError, match=rf"{bad}: corrupt"):
        if damage == "state tree":
            load_resume(bad, parse_config(CONFIG))
        else:
            read_results_file(bad)
    for argv in (
        ["merge", str(good), str(bad), "-o", str(tmp_path / "m.h5")],
        ["report", str(bad), "-o", str(tmp_path / "r.html")],
    ):
        if damage == "state tree" and argv[0] == "report":
            continue  # a report does not read states
        code = main(argv)
        err = capsys.readouterr().err
        assert "Traceback" not in err, (argv, err)
        # merge needs everything; a report may still be made from what is intact
        if argv[0] == "merge" or code != 0:
            assert code == 1 and str(bad) in err, (argv, err)


def _recording(path: Path, n: int = 6) -> list:
    trains = [decode_train(encode_train(t)) for t in make_trains(n, shape=(64, 64))]
    w = RawWriter(path)
    w.write(trains)
    w.close()
    return trains


def test_corrupt_pixels_are_detected_on_replay(tmp_path: Path) -> None:
    raw = tmp_path / "raw.h5"
    trains = _recording(raw)
    with h5py.File(raw) as f:
        ds = f[f"sources/{DET.replace('/', '%2F')}/arrays/image.data/data"]
        assert ds.attrs["checksum"] == "crc32"
        offset = ds.id.get_chunk_info(2).byte_offset  # train 2's pixels (uncompressed)
    with open(raw, "r+b") as fh:  # a flipped bit is still a valid uint16 image
        fh.seek(offset + 100)
        byte = fh.read(1)
        fh.seek(offset + 100)
        fh.write(bytes([byte[0] ^ 0x04]))
    reader = RawReader(raw)
    got = list(reader)
    assert [t.train_id for t in got] == [t.train_id for i, t in enumerate(trains) if i != 2]
    assert reader.skipped == 1
    for a, b in zip([t for i, t in enumerate(trains) if i != 2], got, strict=True):
        np.testing.assert_array_equal(a.data[DET]["image.data"], b.data[DET]["image.data"])


@pytest.mark.parametrize("part", ["meta/count", "index/timestamp", "arrays"])
def test_damaged_recording_metadata_is_a_format_error(tmp_path: Path, part: str) -> None:
    raw = tmp_path / "raw.h5"
    _recording(raw)
    with h5py.File(raw, "a") as f:
        src = f[f"sources/{DET.replace('/', '%2F')}"]
        if part == "index/timestamp":
            del f["index/timestamp"]
        elif part == "arrays":
            del src["arrays/image.data/count"]
        else:
            del src[part]
    with pytest.raises(FormatError, match=rf"{raw}: corrupt raw recording"):
        RawReader(raw)
    code = main(["replay", str(raw), "--endpoint", "ipc:///nonexistent/x", "--trains", "1"])
    assert code == 1
