"""Per-train records files: ragged array columns, scalar columns, SWMR reading, crash safety."""

from __future__ import annotations

import logging
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from beamstream.formats.appendfile import AppendFile
from beamstream.formats.h5layout import open_h5
from beamstream.formats.records import RaggedRows, RecordsWriter, read_columns
from beamstream.formats.results import open_results, read_records
from beamstream.formats.results_writer import segment_from_status, write_results_file
from tests.replay.synth import CONFIG


def write(path: Path, batches: list[list[dict]]) -> RecordsWriter:
    af = AppendFile(path)
    w = RecordsWriter(af)
    for b in batches:
        w.append(b)
    af.close()
    return w


def hits(n: int, seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x": rng.uniform(0, 2048, n),
        "y": rng.uniform(0, 512, n).astype(np.float32),
        "sum": rng.integers(0, 5000, n, dtype=np.int32),
        "double": rng.random(n) < 0.1,
    }


def assert_rows_equal(got: np.ndarray, expected: list[np.ndarray]) -> None:
    assert got.dtype == object and len(got) == len(expected)
    for g, e in zip(got, expected, strict=True):
        assert g.shape == np.shape(e)
        np.testing.assert_array_equal(g, e)


@pytest.mark.timeout(30)
def test_hit_lists_of_any_length_round_trip_exactly(tmp_path: Path, caplog) -> None:
    # the first batch's hit lists are shorter than later ones (916 then 952: once cropped)
    lengths = [[916, 3, 0], [952], [0, 5000, 1, 17]]
    batches, expected = [], []
    tid = 0
    for lens in lengths:
        batch = []
        for n in lens:
            h = hits(n, tid)
            batch.append({"train_id": tid, "rixs.hits": h, "rixs.hits_truncated": 0})
            expected.append(h)
            tid += 1
        batches.append(batch)
    with caplog.at_level(logging.WARNING):
        w = write(tmp_path / "r.h5", batches)
    assert w.warnings == {} and not caplog.records
    rec = read_records([tmp_path / "r.h5"])
    assert rec["train_id"].tolist() == list(range(tid))
    for field in ("x", "y", "sum", "double"):
        got = rec[f"rixs.hits.{field}"]
        assert_rows_equal(got, [e[field] for e in expected])
        assert all(g.dtype == expected[0][field].dtype for g in got)
    # the layout: concatenated values, (start, count) per row
    with open_h5(tmp_path / "r.h5") as f:
        total = sum(sum(lens) for lens in lengths)
        assert f["records/rixs.hits.x"].shape == (total,)
        idx = f["records_index/rixs.hits.x"][()]
        assert idx[:, 1].tolist() == [n for lens in lengths for n in lens]
        assert idx[:, 0].tolist() == np.concatenate([[0], np.cumsum(idx[:-1, 1])]).tolist()
        assert f["records/rixs.hits.x"].attrs["index"] == "/records_index/rixs.hits.x"
    flat = read_records([tmp_path / "r.h5"], ragged="flat")["rixs.hits.sum"]
    assert isinstance(flat, RaggedRows) and len(flat) == tid
    np.testing.assert_array_equal(flat.values, np.concatenate([e["sum"] for e in expected]))
    np.testing.assert_array_equal(flat.row(3), expected[3]["sum"])


@pytest.mark.timeout(30)
def test_varying_frame_counts_round_trip(tmp_path: Path) -> None:
    nq = 7
    frames = [[2, 5], [9], [0, 1, 30]]
    expected = []
    batches = []
    for fr in frames:
        batch = []
        for n in fr:
            iq = np.arange(n * nq, dtype=np.float64).reshape(n, nq) + len(expected)
            batch.append({"train_id": len(expected), "qphi": {"iq": iq, "frames": n}})
            expected.append(iq)
        batches.append(batch)
    w = write(tmp_path / "r.h5", batches)
    assert w.warnings == {}
    rec = read_records([tmp_path / "r.h5"])
    assert_rows_equal(rec["qphi.iq"], expected)
    assert rec["qphi.frames"].tolist() == [n for fr in frames for n in fr]
    with open_h5(tmp_path / "r.h5") as f:
        assert f["records/qphi.iq"].shape == (sum(map(sum, frames)), nq)


@pytest.mark.timeout(30)
def test_scalar_columns_unchanged(tmp_path: Path) -> None:
    write(
        tmp_path / "r.h5",
        [
            [
                {"train_id": 1, "ts": 1.5, "ok": True, "state": "ON", "n": np.int32(3)},
                {"train_id": 2, "ts": 2.5, "ok": False, "state": "OFF", "n": np.int32(4)},
            ],
            [{"train_id": 3, "ts": 3.5, "ok": True, "state": b"X", "n": 5}],
        ],
    )
    with open_h5(tmp_path / "r.h5") as f:
        assert "records_index" not in f  # no array-valued key: no index
        assert f["records/train_id"].shape == (3,) and f["records/train_id"].dtype == np.uint64
        assert f["records/ts"][()].tolist() == [1.5, 2.5, 3.5]
        assert f["records/ok"].dtype == np.bool_
        assert f["records/state"][()].tolist() == [b"ON", b"OFF", b"X"]
        assert f["records/n"].dtype == np.int32
    rec = read_records([tmp_path / "r.h5"])
    assert rec["train_id"].tolist() == [1, 2, 3] and rec["ts"].ndim == 1
    assert rec["ok"].tolist() == [True, False, True]


@pytest.mark.timeout(30)
def test_missing_values_late_keys_and_nested_dicts(tmp_path: Path) -> None:
    w = write(
        tmp_path / "r.h5",
        [
            [{"train_id": 1, "a": {"b": {"c": [1, 2]}, "s": 1.0}}, {"train_id": 2}],
            [{"train_id": 3, "a": {"s": 2.0}, "late": np.ones((2, 2))}],
            [{"train_id": 4, "a": {"b": {"c": [3]}}, "late": np.zeros((0, 2)), "n": 7}],
            [{"train_id": 5, "a": {"b": {"c": None}}, "late": None}],
        ],
    )
    assert w.warnings == {}
    rec = read_records([tmp_path / "r.h5"])
    assert set(rec) == {"train_id", "a.b.c", "a.s", "late", "n"}
    assert_rows_equal(rec["a.b.c"], [np.array([1, 2]), np.zeros(0), np.zeros(0), [3], np.zeros(0)])
    assert_rows_equal(
        rec["late"], [np.zeros((0, 2))] * 2 + [np.ones((2, 2))] + [np.zeros((0, 2))] * 2
    )
    np.testing.assert_array_equal(rec["a.s"], [1.0, np.nan, 2.0, np.nan, np.nan])
    assert rec["n"].tolist() == [0, 0, 0, 7, 0]
    with open_h5(tmp_path / "r.h5") as f:  # rows before the key existed: count 0
        assert f["records_index/late"][()].tolist() == [[0, 0], [0, 0], [0, 2], [2, 0], [2, 0]]


@pytest.mark.timeout(30)
def test_trailing_dim_mismatch_is_counted_and_skipped(tmp_path: Path, caplog) -> None:
    with caplog.at_level(logging.WARNING, logger="beamstream.formats.records"):
        w = write(
            tmp_path / "r.h5",
            [
                [{"iq": np.ones((2, 4))}, {"iq": np.ones((3, 5))}],
                [{"iq": np.full((1, 4), 2.0)}] + [{"iq": np.ones(4)}] * 11,
                [{"iq": 1.0, "v": [1, 2]}, {"v": np.ones((2, 2))}],
            ],
        )
    assert w.warnings == {"mismatched:iq": 13, "mismatched:v": 1}
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 3  # rate limited: the 1st and 10th of 'iq', the 1st of 'v'
    assert "record 'iq': value of shape (3, 5) skipped (trailing dims must be (4,))" in warned[0]
    rec = read_records([tmp_path / "r.h5"])
    assert [r.shape for r in rec["iq"]] == [(2, 4), (0, 4), (1, 4)] + [(0, 4)] * 13
    assert rec["iq"][2].tolist() == [[2.0] * 4]
    assert [r.tolist() for r in rec["v"]][-2:] == [[1, 2], []]


@pytest.mark.timeout(30)
def test_open_results_returns_per_train_arrays(tmp_path: Path) -> None:
    write(
        tmp_path / "r.records.h5",
        [[{"train_id": 1, "h": [1, 2, 3]}, {"train_id": 2, "h": [4]}]],
    )
    write(tmp_path / "r.records-2.h5", [[{"train_id": 3, "h": [5, 6], "f": 0.5}]])
    write_results_file(
        tmp_path / "r.h5",
        config_text=CONFIG,
        config_path="t.toml",
        results={},
        states={},
        segments=[segment_from_status({}, time.time(), "r.records-2.h5")],
        snapshot={"seq": 1, "time": time.time(), "epoch": 0, "final": True},
        records_files=["r.records.h5", "r.records-2.h5"],
        fsync=False,
    )
    res = open_results(tmp_path / "r.h5")
    recs = res.records
    assert recs["train_id"].values.tolist() == [1, 2, 3]
    assert recs["h"].dims == ("train_id",)
    assert recs["h"].sel(train_id=3).item().tolist() == [5, 6]
    assert [r.tolist() for r in recs["h"].values] == [[1, 2, 3], [4], [5, 6]]
    np.testing.assert_array_equal(recs["f"].values, [np.nan, np.nan, 0.5])
    flat = read_records(res.file.records_paths(), ragged="flat")["h"]
    assert flat.values.tolist() == [1, 2, 3, 4, 5, 6] and flat.offsets.tolist() == [0, 3, 4, 6]


# -- SWMR and crash safety ----------------------------------------------------------------------
WRITER = """
import sys, time
import numpy as np
from beamstream.formats.appendfile import AppendFile
from beamstream.formats.records import RecordsWriter

def row(t):
    return {{
        "train_id": t,
        "hits": np.arange((t * 7) % 23) + 1000 * t,
        "iq": np.full(((t % 4), 3), float(t)),
        **({{"late": [t] * (t % 3)}} if t >= 30 else {{}}),
    }}

af = AppendFile(sys.argv[1])
w = RecordsWriter(af)
t = 0
for b in range({batches}):
    n = 1 + b % 3
    {before_batch}
    w.append([row(t + i) for i in range(n)])
    t += n
    print("batch", b, t, flush=True)
    time.sleep({sleep})
af.close()
print("done", flush=True)
"""


def check_consistent(rec: dict) -> int:
    """Every row read matches what the writer wrote for its train id; returns the row count."""
    tids = rec.get("train_id", np.zeros(0, np.int64))
    n = len(tids)
    assert tids.tolist() == list(range(n))
    assert all(len(v) == n for v in rec.values())
    for t in range(n):
        np.testing.assert_array_equal(rec["hits"][t], np.arange((t * 7) % 23) + 1000 * t)
        np.testing.assert_array_equal(rec["iq"][t], np.full((t % 4, 3), float(t)))
        if "late" in rec:
            assert rec["late"][t].tolist() == ([t] * (t % 3) if t >= 30 else [])
    return n


@pytest.mark.timeout(60)
def test_reading_while_writing_sees_consistent_rows(tmp_path: Path, processes, subprocess_env):
    path = tmp_path / "live.records.h5"
    script = WRITER.format(batches=40, sleep=0.05, before_batch="pass")
    proc = processes.start([sys.executable, "-c", script, str(path)], env=subprocess_env)
    seen: set[int] = set()
    deadline = time.monotonic() + 45
    while proc.poll() is None and time.monotonic() < deadline:
        if not path.exists():
            time.sleep(0.005)
            continue
        try:
            rec = read_records([path])
        except OSError:  # the writer reopens the file without SWMR to add a column: retry
            time.sleep(0.005)
            continue
        seen.add(check_consistent(rec))
    out = processes.stop(proc)
    assert proc.returncode == 0 and "done" in out, out
    final = check_consistent(read_records([path]))
    assert final == sum(1 + b % 3 for b in range(40))
    assert len(seen - {0, final}) >= 2, seen  # rows were read while the file grew


@pytest.mark.timeout(60)
def test_crash_between_values_and_index_leaves_a_readable_file(
    tmp_path: Path, processes, subprocess_env
) -> None:
    path = tmp_path / "crash.records.h5"
    # in the 5th batch, die (like kill -9: nothing closed or flushed) at the first index write,
    # after the ragged values of that batch were written and flushed
    crash = textwrap.dedent(
        """
        if b == 4:
            import os
            ext = af.extend
            def dying(name, block):
                if name.startswith("records_index/"):
                    os._exit(9)
                return ext(name, block)
            af.extend = dying
        """
    ).replace("\n", "\n    ")
    script = WRITER.format(batches=10, sleep=0, before_batch=crash)
    proc = processes.start([sys.executable, "-c", script, str(path)], env=subprocess_env)
    proc.wait(30)
    out = processes.stop(proc)
    assert proc.returncode == 9 and "batch 3" in out and "batch 4" not in out, out
    with open_h5(path) as f:  # a killed SWMR writer's file opens
        cols, rows = read_columns(f)
        assert rows == sum(1 + b % 3 for b in range(4))
        assert len(f["records/hits"]) > cols["hits"].offsets[-1]  # the dead batch's values
    assert check_consistent(read_records([path])) == rows
