"""`beamstream reprocess` on Dask equals a single-process run; a killed worker changes nothing."""

from __future__ import annotations

import functools

import numpy as np
import pytest

from beamstream.cluster.chunks import MergeTree, plan_chunks
from beamstream.cluster.offline import reprocess
from beamstream.formats.results import read_results_file
from beamstream.sinks.hdf5 import HDF5Sink
from tests.cluster.helpers import (
    config,
    float_train,
    killing_chunk,
    results_equal,
    single_process,
    write_raw,
)
from tests.replay.synth import FIRST, make_trains

N = 45


@pytest.fixture(scope="module")
def int_run(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("int")
    return write_raw(d / "run.h5", make_trains(N))


@pytest.fixture(scope="module")
def float_run(tmp_path_factory: pytest.TempPathFactory):
    d = tmp_path_factory.mktemp("float")
    return write_raw(d / "run.h5", (float_train(FIRST + i) for i in range(N)))


def _reprocess(path, out, backend=None, k=7, **kw):
    sink = HDF5Sink(str(out), records=True, fsync=False)
    status = reprocess(
        config(),
        str(path),
        backend=backend,
        trains_per_chunk=k,
        sinks=[sink],
        status_out=None,
        **kw,
    )
    return status, read_results_file(out)


def test_merge_tree_is_independent_of_arrival_order():
    rng = np.random.default_rng(1)
    leaves = [rng.random(50) * 10.0 ** rng.integers(-8, 8) for _ in range(13)]
    roots = set()
    for seed in range(6):
        tree = MergeTree(13, np.add)
        for i in np.random.default_rng(seed).permutation(13):
            assert not tree.complete
            tree.add(int(i), leaves[i])
        roots.add(tree.root().tobytes())
    assert len(roots) == 1
    # the fixed shape: ((((0+1)+(2+3))+((4+5)+(6+7)))+(((8+9)+(10+11))+12))
    pair = [leaves[i] + leaves[i + 1] for i in range(0, 12, 2)]
    quad = [pair[0] + pair[1], pair[2] + pair[3], pair[4] + pair[5]]
    expected = (quad[0] + quad[1]) + (quad[2] + leaves[12])
    assert tree.root().tobytes() == expected.tobytes()


def test_plan_chunks_cover_every_train_once(int_run):
    chunks = plan_chunks(int_run, 7)
    assert [len(c) for c in chunks] == [7] * 6 + [3]
    seen = [t.train_id for c in chunks for t in c.open()]
    assert seen == list(range(FIRST, FIRST + N))
    strided = plan_chunks(int_run, 4, trains="3:40:5")
    ids = [t.train_id for c in strided for t in c.open()]
    assert ids == list(range(FIRST + 3, FIRST + 40, 5))


def test_reprocess_equals_single_process(int_run, two_workers, tmp_path):
    ref_results, _ = single_process(config(), make_trains(N), tmp_path / "ref.h5")
    ref = read_results_file(tmp_path / "ref.h5")
    status, got = _reprocess(int_run, tmp_path / "dask.h5", two_workers)
    assert status["processed"] == N and status["chunks_done"] == status["chunks_total"] == 7
    assert status["accepted_train_ids"] == (FIRST, FIRST + N - 1)
    results_equal(got.results, ref.results)
    results_equal(got.results, ref_results)
    for name, st in ref.states.items():
        np.testing.assert_array_equal(got.states[name]["keys"], st["keys"])
        for field, arr in st["arrays"].items():
            np.testing.assert_array_equal(got.states[name]["arrays"][field], arr)
    assert got.snapshot["final"]
    # per-train records were added in train order
    from beamstream.formats.results import read_records

    assert read_records(got.records_paths())["train_id"].tolist() == list(range(FIRST, FIRST + N))


def test_float_result_is_bit_identical_to_in_process_chunking(float_run, two_workers, tmp_path):
    _, local = _reprocess(float_run, tmp_path / "local.h5", None, k=4)
    _, dask = _reprocess(float_run, tmp_path / "dask.h5", two_workers, k=4)
    results_equal(dask.results, local.results)
    mean = dask.results["mean"]["mean"].data
    assert mean.dtype.kind == "f" and np.isfinite(mean).all() and mean.max() > 100


def test_killed_worker_chunk_is_retried(int_run, two_workers, tmp_path):
    _, ref = _reprocess(int_run, tmp_path / "ref.h5", None)
    marker = tmp_path / "killed"
    fn = functools.partial(killing_chunk, marker=str(marker), victim=2)
    status, got = _reprocess(int_run, tmp_path / "dask.h5", two_workers, chunk_fn=fn)
    assert marker.exists()  # a worker process really died in chunk 2
    assert status["processed"] == N and status["chunks_done"] == 7
    results_equal(got.results, ref.results)
