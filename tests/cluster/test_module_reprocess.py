"""Reprocess of a 16-module EuXFEL run split by module group and by train chunk, on Dask."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from beamstream.cluster.module_reprocess import reprocess_by_module
from beamstream.config import parse_config
from beamstream.processors.pipeline import Pipeline
from beamstream.replay import open_reader
from tests.replay.agipd_run import AGIPD, write_agipd_run

CONFIG = f"""
version = 1
[source]
detector = "{AGIPD}/{{module}}CH0:xtdf"
modules = "0-15"
layout = ["frame", "gain", "ss", "fs"]
[[processors]]
type = "scan_binner"
name = "binned"
"""


@pytest.mark.filterwarnings("ignore:Falling back to raw data")
@pytest.mark.timeout(300)
def test_split_by_module_and_chunk_equals_one_process(tmp_path: Path, two_workers) -> None:
    run = write_agipd_run(tmp_path / "r0001", 16, ntrains=4, frames=3)
    config = parse_config(CONFIG)
    pipe = Pipeline(config)
    whole = pipe.empty_states()
    for train in open_reader(run):
        pipe.process(train, whole)
    part, groups = reprocess_by_module(config, str(run), 4, backend=two_workers, trains_per_chunk=2)
    assert groups == [(0, 1, 2, 3), (4, 5, 6, 7), (8, 9, 10, 11), (12, 13, 14, 15)]
    assert part.counters.processed == 4 and part.counters.frames == 12
    for field in ("sum", "pixel_count", "count", "trains"):
        np.testing.assert_array_equal(part.states["binned"][field], whole["binned"][field])
    # in one process, through the same split: the same
    local, _ = reprocess_by_module(config, str(run), 3, trains_per_chunk=3)
    np.testing.assert_array_equal(local.states["binned"]["sum"], whole["binned"]["sum"])


@pytest.mark.filterwarnings("ignore:Falling back to raw data")
@pytest.mark.timeout(300)
def test_reprocess_command_split_modules(tmp_path: Path) -> None:
    from beamstream.formats.results import read_results_file
    from beamstream.tools.reprocess_cmd import run_reprocess

    run = write_agipd_run(tmp_path / "r0001", 16, ntrains=3, frames=2)
    config = parse_config(CONFIG)
    pipe = Pipeline(config)
    whole = pipe.empty_states()
    for train in open_reader(run):
        pipe.process(train, whole)
    out = tmp_path / "out.h5"
    status = run_reprocess(
        config, str(run), trains_per_chunk=2, output=str(out), quiet=True, split_modules=4
    )
    assert status["chunks_done"] == status["chunks_total"] == 8  # 4 groups x 2 chunks
    assert status["processed"] == 3
    mean = read_results_file(out).results["binned"]["mean"].data
    np.testing.assert_array_equal(mean, pipe.finalize(whole)["binned"]["mean"].data)
