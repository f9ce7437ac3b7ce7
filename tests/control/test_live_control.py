"""A real `beamstream run` steered over HTTP: boundaries against the simulator's truth, the
version log in the results, replay with the log, persistence across kill -9."""

from __future__ import annotations

import json
import signal
import tomllib

import numpy as np
import pytest

from beamstream.config import load_config
from beamstream.control.client import ControlError
from beamstream.control.persist import applied_paths
from beamstream.control.segments import read_segments
from beamstream.control.versions import read_versions
from beamstream.formats.results import read_records, read_results_file
from beamstream.tools.run_cmd import run_pipeline
from tests.conftest import wait_for

from .liverun import (
    expected_accepted,
    make_sim,
    same_results,
    simulator,
    start_run,
    write_config,
)


@pytest.mark.timeout(240)
def test_steered_run_switches_at_a_boundary_and_replays_exactly(
    tmp_path, tcp_endpoint, processes, subprocess_env
):
    cfg = write_config(tmp_path, tcp_endpoint, threshold=100.0)
    out = tmp_path / "live" / "results.h5"
    out.parent.mkdir()
    with simulator(tcp_endpoint):
        proc, api, logf = start_run(processes, subprocess_env, cfg, out)
        assert api.config()["version"] == 1
        v2 = api.set({"processors.frames.rules[0].min": 1500.0})
        assert v2["applied"] and v2["kind"] == "new_segment" and v2["segment"] == 1
        with pytest.raises(ControlError, match="processors.*nope"):
            api.set({"processors.frames.nope": 1})
        n = api.status()["processed"]
        for body, kind, code in [
            (b"{oops", "application/json", 400),
            (b'{"set": {"run.interval": "fast"}}', "application/json", 422),
            (b"x" * (300 * 1024), "application/json", 413),
            (b"version = [", "application/toml", 422),
        ]:
            with pytest.raises(ControlError) as e:
                api.request("PATCH", "/config", body, kind)
            assert e.value.status == code and e.value.message
        assert api.config()["version"] == 2
        assert wait_for(lambda: api.status()["processed"] > n + 3, timeout=20)  # unaffected
        n = api.status()["processed"]
        assert wait_for(lambda: api.status()["processed"] >= n + 5, timeout=30)
        v3 = api.set({"run.interval": 0.5})
        assert v3["kind"] == "compatible" and v3["segment"] == 1
        v4 = api.reset()
        assert v4["kind"] == "reset" and v4["segment"] == 2
        n = api.status()["processed"]
        assert wait_for(lambda: api.status()["processed"] >= n + 5, timeout=30)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, logf.read_text()

    versions = read_versions(str(out)).list()
    assert [v.number for v in versions] == [1, 2, 3, 4]
    assert [v.kind for v in versions] == ["initial", "new_segment", "compatible", "reset"]
    assert versions[1].first_train_id == v2["first_train_id"]
    assert versions[0].last_train_id == versions[1].first_train_id - 1
    assert all(v.client == "test@127.0.0.1" for v in versions[1:])
    assert tomllib.loads(versions[1].config_text)["processors"][0]["rules"][0]["min"] == 1500.0

    # every train before the boundary used the old threshold, every one after it the new one
    sim = make_sim()
    rec = read_records(sorted(out.parent.glob("results.records*.h5")))
    boundary = versions[1].first_train_id
    ids, accepted = rec["train_id"], rec["accepted_frames"]
    assert (ids < boundary).sum() >= 3 and (ids >= boundary).sum() >= 10
    for tid, n in zip(ids.tolist(), accepted.tolist(), strict=True):
        expected = expected_accepted(sim, tid, 100.0 if tid < boundary else 1500.0)
        assert n == expected, (tid, boundary)
    assert len(set(accepted[ids < boundary])) == 1  # 100 uJ: nothing rejected
    assert accepted[ids >= boundary].min() < accepted[ids < boundary].min()

    # segments: 0 = version 1, 1 = versions 2 and 3 (compatible kept accumulating), 2 = reset
    segs = read_segments(str(out))
    assert [s["index"] for s in segs] == [0, 1]
    assert segs[0]["versions"] == [1] and segs[1]["versions"] == [2, 3]
    assert segs[0]["last_train_id"] == boundary - 1 and segs[1]["first_train_id"] == boundary
    assert segs[0]["processed"] == (ids < boundary).sum()
    final = read_results_file(out)
    assert final.snapshot["epoch"] == 2
    counts0 = segs[0]["results"]["binned"]["counts"].data
    assert counts0.sum() == accepted[ids < boundary].sum()

    # replay the same trains with the version log: bit for bit the same results
    first, last = int(ids.min()), int(ids.max())
    replay = tmp_path / "replay" / "results.h5"
    config = load_config(cfg)
    with simulator(tcp_endpoint, trains=last - first + 1, rate=0):
        status = run_pipeline(
            config,
            trains=last - first + 1,
            quiet=True,
            output=str(replay),
            dashboard=False,
            versions=str(out),
        )
    assert status["processed"] == last - first + 1
    again = read_results_file(replay)
    same_results(final.results, again.results)
    for a, b in zip(segs, read_segments(str(replay)), strict=True):
        same_results(a["results"], b["results"])
        assert a["first_train_id"] == b["first_train_id"]
        assert a["last_train_id"] == b["last_train_id"]
    replayed = read_versions(str(replay)).list()
    assert [(v.kind, v.first_train_id, v.segment) for v in replayed] == [
        (v.kind, v.first_train_id, v.segment) for v in versions
    ]


@pytest.mark.timeout(240)
def test_applied_config_survives_kill_9(tmp_path, tcp_endpoint, processes, subprocess_env):
    cfg = write_config(tmp_path, tcp_endpoint)
    out = tmp_path / "results.h5"
    with simulator(tcp_endpoint):
        proc, api, logf = start_run(processes, subprocess_env, cfg, out)
        v = api.set({"processors.frames.rules[0].min": 1400.0})
        assert v["applied"]
        log_path, toml_path = applied_paths(out)
        assert wait_for(lambda: "1400.0" in toml_path.read_text(), timeout=10)
        # a results snapshot after the switch (interval 1 s)
        assert wait_for(
            lambda: out.exists() and read_results_file(out).snapshot["epoch"] == 1, timeout=20
        )
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert json.loads(log_path.read_text())[-1]["number"] == 2

        proc, api, logf = start_run(processes, subprocess_env, cfg, out, "--resume", str(out))
        cfg_now = api.config()
        assert cfg_now["version"] == 2
        assert cfg_now["config"]["processors"][0]["rules"][0]["min"] == 1400.0
        v3 = api.set({"run.interval": 0.5})
        assert v3["number"] == 3 and v3["segment"] == 1
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, logf.read_text()
    versions = read_versions(str(out)).list()
    assert [v.number for v in versions] == [1, 2, 3]
    assert [s["index"] for s in read_segments(str(out))] == [0]  # kept across the restart
    assert np.isfinite(read_results_file(out).results["binned"]["counts"].data).all()
