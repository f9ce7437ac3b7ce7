"""The cluster package without Dask: imports, config versions, the in-process path."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from beamstream.accumulation import Accumulation, ConfigVersionError, combine
from beamstream.processors.pipeline import Pipeline
from tests.cluster.helpers import config
from tests.replay.synth import FIRST, make_trains


def test_single_process_paths_never_import_dask(subprocess_env):
    code = (
        "import sys, beamstream, beamstream.cli\n"
        "beamstream.cli.build_parser()\n"
        "import beamstream.tools.run_cmd, beamstream.tools.reprocess_cmd\n"
        "import beamstream.cluster.live, beamstream.cluster.offline, beamstream.cluster.worker\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('dask', 'distributed'))\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, env=subprocess_env, timeout=60)


def test_partials_of_different_config_versions_never_merge():
    cfg = config()
    pipeline = Pipeline(cfg)
    a, b = Accumulation(pipeline, "version-a"), Accumulation(pipeline, "version-b")
    trains = list(make_trains(4))
    for t in trains[:2]:
        a.process(t)
    for t in trains[2:]:
        b.process(t)
    pa, pb = a.take(), b.take()
    with pytest.raises(ConfigVersionError, match="never merged"):
        combine(pipeline, pa, pb)
    pb.fingerprint = "version-a"
    merged = combine(pipeline, pa, pb)
    assert merged.train_ids.tolist() == list(range(FIRST, FIRST + 4))
    assert merged.counters.processed == 4 and merged.counters.accepted_ids == (FIRST, FIRST + 3)
    whole = Accumulation(pipeline, "version-a")
    for t in trains:
        whole.process(t)
    assert merged.states["mean"] == whole.take().states["mean"]


def test_duplicate_train_in_one_partial_is_rejected():
    acc = Accumulation(Pipeline(config()), "v")
    t = next(make_trains(1))
    assert acc.process(t) and not acc.process(t)
    p = acc.take()
    c = p.counters
    assert c.received == 2 and c.processed == 1 and c.rejected == {"duplicate train id": 1}
    assert np.array_equal(p.train_ids, [FIRST, FIRST])
