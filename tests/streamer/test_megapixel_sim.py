"""Multi-module simulators: names, shapes, truth, split endpoints, offsets, the CLI."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from beamstream.simulate.megapixel import MegapixelSimulator
from beamstream.simulate.split import Delivery, plan_endpoints, simulate_split
from beamstream.streamer.multi import InputSpec, MatchedSource


@pytest.mark.parametrize(
    "kind, n, first, shape, dtype, key",
    [
        ("dssc1m", 16, "SCS_DET_DSSC1M-1/DET/0CH0:xtdf", (128, 512), np.uint16, "image.data"),
        ("agipd1m", 16, "SPB_DET_AGIPD1M-1/DET/0CH0:xtdf", (512, 128), np.float32, "image.data"),
        (
            "jungfrau4m",
            8,
            "SPB_IRDA_JF4M/DET/JNGFR01:daqOutput",
            (512, 1024),
            np.float32,
            "data.adc",
        ),
    ],
)
def test_sources_shapes_and_truth(kind, n, first, shape, dtype, key) -> None:
    sim = MegapixelSimulator(kind, seed=1, frames=4, modules=2, xgm_jitter=0.0)
    assert len(MegapixelSimulator(kind).sources) == n
    assert sim.sources[0] == first and len(sim.sources) == 2
    train = sim.train(sim.first_train_id)
    arr = train.data[first][key]
    assert arr.shape == (4, *shape) and arr.dtype == dtype
    assert train.dims[first][key] == ("frame", "ss", "fs")
    assert set(sim.slow_sources) <= set(train.data)
    # the same train again: identical (a function of seed and train id)
    np.testing.assert_array_equal(sim.train(sim.first_train_id).data[first][key], arr)
    # frame 2 is an unpumped frame of the default pattern: its mean is dark + base
    mt = sim.truth.modules[0]
    expected = mt.expected_mean(sim.truth.delay_of(0), "unpumped")
    assert abs(float(arr[2].mean()) - expected.mean()) < 0.2


def test_missing_modules_are_deterministic() -> None:
    sim = MegapixelSimulator("dssc1m", frames=2)
    d = Delivery(missing=(3,), missing_rate=0.25)
    gone = [d.missing_modules(sim, sim.first_train_id + k) for k in range(40)]
    assert all(3 in g for g in gone)
    assert gone == [d.missing_modules(sim, sim.first_train_id + k) for k in range(40)]
    rate = np.mean([len(g - {3}) / 15 for g in gone])
    assert 0.15 < rate < 0.35


@pytest.mark.timeout(60)
def test_slow_data_offset_detected_and_corrected(tmp_path: Path) -> None:
    sim = MegapixelSimulator("agipd1m", frames=2, modules=2)
    plan = plan_endpoints(f"ipc://{tmp_path}/mp", sim, 1)
    assert [len(s) for _, s in plan] == [2, 3]
    stop = threading.Event()
    server = threading.Thread(
        target=simulate_split,
        args=(sim, plan),
        kwargs=dict(rate=20, trains=60, delivery=Delivery(offset=50), stop_event=stop),
        daemon=True,
    )
    server.start()
    src = MatchedSource(
        [InputSpec(plan[0][0], "REQ", "det"), InputSpec(plan[1][0], "REQ", "slow")],
        deadline_ms=150,
        correct_offsets=True,
    )
    try:
        got = [t for t in iter(lambda: src.get(timeout=5), None)][:5]
        stats = src.stats()["matcher"]
    finally:
        stop.set()
        src.close()
        server.join(10)
    assert stats["inputs"]["slow"]["offset"] == 50
    assert got, "no train matched after the offset was corrected"
    for t in got:  # matched: detector and slow data of the same train
        assert t.meta[sim.xgm_source]["timestamp.tid"] == t.train_id + 50
        assert set(sim.sources) <= set(t.data)


@pytest.mark.timeout(90)
def test_cli_serves_split_endpoints(tmp_path: Path) -> None:
    base = f"ipc://{tmp_path}/cli"
    cmd = [
        sys.executable, "-m", "beamstream", "simulate", "--detector", "jungfrau4m",
        "--modules", "2", "--frames", "2", "--split", "2", "--trains", "4", "--rate", "0",
        "--endpoint", base, "--socket", "PUSH", "--quiet",
    ]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        eps = [f"{base}-{i}" for i in range(3)]
        with MatchedSource(
            [InputSpec(e, "PULL", f"in{i}") for i, e in enumerate(eps)], deadline_ms=2000
        ) as src:
            trains = [src.get(timeout=30) for _ in range(4)]
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 0, err
    assert "sent 12 parts from 3 endpoints" in out.decode()
    assert [t.train_id for t in trains] == [10_000_000_000 + k for k in range(4)]
    assert all(t.missing == () for t in trains)
    assert "SPB_IRDA_JF4M/DET/JNGFR02:daqOutput" in trains[0].data
